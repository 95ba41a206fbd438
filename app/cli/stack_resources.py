"""The resources of a deployed stack and of every stack nested in it (CloudFormation ListStackResources)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator


@dataclass(frozen=True)
class Resource:
    stack: str
    logical_id: str
    physical_id: str
    kind: str
    status: str


def walk(cfn: Any, stack: str, depth: int = 0) -> Iterator[Resource]:
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
        for item in page["StackResourceSummaries"]:
            resource = Resource(stack, item["LogicalResourceId"], item.get("PhysicalResourceId", ""),
                                item["ResourceType"], item.get("ResourceStatus", ""))
            yield resource
            if resource.kind == "AWS::CloudFormation::Stack" and resource.physical_id and depth < 3:
                yield from walk(cfn, resource.physical_id, depth + 1)


def of_type(cfn: Any, stack: str, kind: str) -> list[Resource]:
    return [resource for resource in walk(cfn, stack) if resource.kind == kind and resource.physical_id]
