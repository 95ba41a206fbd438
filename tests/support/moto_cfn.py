"""moto's CloudFormation, its gaps filled at its boundary so that cloud/cfn/main.yaml deploys as it is.

Written against moto 5.2.5 (`pip show moto`); each piece says what it stands in for, so it can go when moto gains it:

- `!GetAtt Child.Outputs.X` on a nested stack: moto's Stack model has no attribute lookup (AttributeError).
- `${Res.A.B}` in `!Sub`: moto passes only `A` to the resource; the whole `A.B` is what CloudFormation asks for.
- `AWS::EC2::Instance` from a `LaunchTemplate`: moto reads ImageId/InstanceType/SubnetId from the instance's own
  properties only (KeyError 'ImageId'); the stand-in copies them from the launch template's version first.
- `AWS::ElasticLoadBalancingV2::LoadBalancer`: moto drops `Type` (every one becomes an application LB, whose
  listeners refuse TCP); the stand-in passes it on.
- `!GetAtt Version.Version` on `AWS::Lambda::Version`: moto's model keeps the number but has no lookup.
- executing a change set: moto applies it in one call with no resource events, keeps the outputs of the template
  the stack had before (a created stack: none), and answers HTTP 500 when a resource fails ("TODO: handle execution
  errors and implement rollback"). The stand-in records a CREATE_IN_PROGRESS/COMPLETE event per resource, rebuilds
  the outputs, and on a failure records what CloudFormation reports: the resource's CREATE_FAILED with moto's
  message, each enclosing nested stack's failure, the root's ROLLBACK_COMPLETE (the resources moto made stay).
- resource types moto skips (it logs "No Moto CloudFormation support" and leaves the logical id unresolved, then
  fails the stack at the first `!GetAtt`/`!Ref` of it): small models below with plausible attributes, for the
  types the templates reference (`MODELS`). Types nobody references stay skipped; `SKIPPED` records every type
  moto skipped, so a test can print the coverage.

`install()` patches moto in this process, which is where conftest's ThreadedMotoServer runs.
"""
from __future__ import annotations

import hashlib
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.core.common_models import CloudFormationModel

MOTO_VERSION = "5.2.5"
SKIPPED: set[str] = set()
_installed = False


def _id(*parts: str, length: int = 10) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


class _Stub:
    """A resource moto does not model: a physical id for `!Ref` and the attributes `!GetAtt` reads. Each model
    subclasses CloudFormationModel directly too: moto lists the direct subclasses."""
    TYPE = ""

    def __init__(self, name: str, properties: dict, account_id: str, region: str):
        self.name, self.properties, self.account_id, self.region = name, properties, account_id, region
        self.physical_resource_id = self.make_id()

    def make_id(self) -> str:
        return self.name

    def attributes(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        attributes = self.attributes()
        if attribute_name not in attributes:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
            raise UnformattedGetAttTemplateException()
        return attributes[attribute_name]

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict, account_id: str,
                                        region_name: str, **kwargs: Any) -> _Stub:
        return cls(resource_name, cloudformation_json.get("Properties") or {}, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str,
                                        cloudformation_json: dict, account_id: str, region_name: str) -> _Stub:
        return cls(new_resource_name, cloudformation_json.get("Properties") or {}, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict, account_id: str,
                                        region_name: str) -> None:
        return None


# moto 5.2.5: no CloudFormation model for these (checked with moto.cloudformation.parsing.get_model_map()).
class ServerlessCache(_Stub, CloudFormationModel):
    TYPE = "AWS::ElastiCache::ServerlessCache"

    def make_id(self) -> str:
        return self.properties.get("ServerlessCacheName") or self.name.lower()[:40]

    def attributes(self) -> dict[str, Any]:
        host = (f"{self.physical_resource_id}-{_id(self.name, length=6)}.serverless.{self.region[:6]}"
                ".cache.amazonaws.com")
        return {"Endpoint.Address": host, "Endpoint.Port": "6379", "ReaderEndpoint.Address": host,
                "ReaderEndpoint.Port": "6380",
                "ARN": f"arn:aws:elasticache:{self.region}:{self.account_id}:serverlesscache:"
                       f"{self.physical_resource_id}"}


class ReplicationGroup(_Stub, CloudFormationModel):
    TYPE = "AWS::ElastiCache::ReplicationGroup"

    def make_id(self) -> str:
        return self.properties.get("ReplicationGroupId") or self.name.lower()[:40]

    def attributes(self) -> dict[str, Any]:
        host = f"master.{self.physical_resource_id}.{_id(self.name, length=6)}.euc1.cache.amazonaws.com"
        return {"PrimaryEndPoint.Address": host, "PrimaryEndPoint.Port": "6379",
                "ReaderEndPoint.Address": host.replace("master.", "replica."), "ReaderEndPoint.Port": "6379"}


class CacheSubnetGroup(_Stub, CloudFormationModel):
    TYPE = "AWS::ElastiCache::SubnetGroup"

    def make_id(self) -> str:
        return self.properties.get("CacheSubnetGroupName") or self.name.lower()


class HttpApi(_Stub, CloudFormationModel):
    TYPE = "AWS::ApiGatewayV2::Api"

    def make_id(self) -> str:
        return _id(self.name, self.region)

    def attributes(self) -> dict[str, Any]:
        return {"ApiId": self.physical_resource_id,
                "ApiEndpoint": f"https://{self.physical_resource_id}.execute-api.{self.region}.amazonaws.com"}


class ApiAuthorizer(_Stub, CloudFormationModel):
    TYPE = "AWS::ApiGatewayV2::Authorizer"

    def make_id(self) -> str:
        return _id(self.name, length=6)


class UserPool(_Stub, CloudFormationModel):
    TYPE = "AWS::Cognito::UserPool"

    def make_id(self) -> str:
        return f"{self.region}_{_id(self.name, length=9)}"

    def attributes(self) -> dict[str, Any]:
        provider = f"cognito-idp.{self.region}.amazonaws.com/{self.physical_resource_id}"
        return {"Arn": f"arn:aws:cognito-idp:{self.region}:{self.account_id}:userpool/{self.physical_resource_id}",
                "ProviderName": provider, "ProviderURL": f"https://{provider}",
                "UserPoolId": self.physical_resource_id}


class UserPoolDomain(_Stub, CloudFormationModel):
    TYPE = "AWS::Cognito::UserPoolDomain"

    def make_id(self) -> str:
        return str(self.properties.get("Domain") or self.name.lower())


class UserPoolClient(_Stub, CloudFormationModel):
    TYPE = "AWS::Cognito::UserPoolClient"

    def make_id(self) -> str:
        return _id(self.name, length=26)

    def attributes(self) -> dict[str, Any]:
        return {"ClientId": self.physical_resource_id, "Name": self.properties.get("ClientName", "")}


class LambdaAlias(_Stub, CloudFormationModel):
    """A real alias in moto's Lambda backend (the API's permission and integration name it), modelled here."""
    TYPE = "AWS::Lambda::Alias"

    def make_id(self) -> str:
        from moto.awslambda.models import lambda_backends

        backend = lambda_backends[self.account_id][self.region]
        alias = backend.create_alias(self.properties.get("Name", "prod"), str(self.properties["FunctionName"]),
                                     str(self.properties.get("FunctionVersion", "$LATEST")),
                                     self.properties.get("Description", ""), None)
        return alias.arn

    def attributes(self) -> dict[str, Any]:
        return {"AliasArn": self.physical_resource_id}


class CompositeAlarm(_Stub, CloudFormationModel):
    TYPE = "AWS::CloudWatch::CompositeAlarm"

    def make_id(self) -> str:
        return self.properties.get("AlarmName") or self.name

    def attributes(self) -> dict[str, Any]:
        return {"Arn": f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:{self.physical_resource_id}"}


MODELS = (ServerlessCache, ReplicationGroup, CacheSubnetGroup, HttpApi, ApiAuthorizer, UserPool, UserPoolDomain,
          UserPoolClient, LambdaAlias, CompositeAlarm)


def _stack_attribute(self: cfn_models.Stack, attribute_name: str) -> Any:
    """`!GetAtt Child.Outputs.X`: the nested stack's output X."""
    if attribute_name.startswith("Outputs."):
        output = self.output_map[attribute_name.split(".", 1)[1]]
        if output is not None:
            return output.value
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
    raise UnformattedGetAttTemplateException()


def _lambda_version_attribute(self: Any, attribute_name: str) -> Any:
    if attribute_name == "Version":
        return self.version
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
    raise UnformattedGetAttTemplateException()


def _instance_from_launch_template(original: Any) -> Any:
    def create(cls: Any, resource_name: str, cloudformation_json: dict, account_id: str, region_name: str,
               **kwargs: Any) -> Any:
        from moto.ec2.models import ec2_backends

        properties = cloudformation_json["Properties"]
        spec = properties.get("LaunchTemplate")
        if spec and "ImageId" not in properties:
            backend = ec2_backends[account_id][region_name]
            template = backend.describe_launch_templates(template_ids=[spec["LaunchTemplateId"]])[0]
            version = template.get_version(spec.get("Version") or template.latest_version_number)
            data = version.data
            properties = dict(properties, ImageId=data["ImageId"], InstanceType=data.get("InstanceType"))
            interfaces = data.get("NetworkInterfaces") or [{}]
            if interfaces[0].get("SubnetId"):
                properties["SubnetId"] = interfaces[0]["SubnetId"]
            cloudformation_json = dict(cloudformation_json, Properties=properties)
        return original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    return classmethod(create)


_creating: list[tuple[Any, str, str]] = []  # (resources map, logical id, type) of the resources being made
_failed: list[tuple[list, str]] = []  # the innermost failure: (what was being made, outermost first; reason)


def _event(stack: Any, logical_id: str, physical_id: str, kind: str, status: str, reason: str | None = None) -> None:
    stack.events.append(cfn_models.Event(stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical_id,
                                         physical_resource_id=physical_id, resource_type=kind, resource_status=status,
                                         resource_status_reason=reason, resource_properties=None))


def _stack_of(resources_map: Any) -> Any:
    return cfn_models.cloudformation_backends[resources_map._account_id][resources_map._region_name] \
        .stacks.get(resources_map.stack_id)


def _with_events(original: Any) -> Any:
    def create(logical_id: str, resource_json: dict, resources_map: Any, account_id: str, region_name: str) -> Any:
        kind = resource_json.get("Type", "")
        condition = resource_json.get("Condition")
        stack = _stack_of(resources_map)
        made = condition is None or resources_map.lazy_condition_map[condition]
        if made and stack is not None:
            _event(stack, logical_id, "", kind, "CREATE_IN_PROGRESS")
        _creating.append((resources_map, logical_id, kind))
        try:
            resource = original(logical_id, resource_json, resources_map, account_id, region_name)
        except Exception as error:
            if not _failed:
                _failed.append((list(_creating), getattr(error, "message", None) or str(error)))
            raise
        finally:
            _creating.pop()
        if resource is not None and stack is not None:
            _event(stack, logical_id, str(getattr(resource, "physical_resource_id", "") or ""), kind,
                   "CREATE_COMPLETE")
        return resource
    return create


def _execute_with_rollback(original: Any) -> Any:
    def execute(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self.change_sets.get(change_set_name) or next(
            (cs for cs in self.change_sets.values() if cs.change_set_name == change_set_name), None)
        _failed.clear()
        try:
            original(self, change_set_name, stack_name)
        except Exception as error:
            if change_set is None:
                raise
            _record_failure(self, change_set, error)
            return
        stack = self.stacks[change_set.stack_id]
        stack._parse_template()
        stack.output_map = stack._create_output_map()
        if change_set.parameters:
            stack.parameters = change_set.parameters
    return execute


def _record_failure(backend: Any, change_set: Any, error: Exception) -> None:
    creating = change_set.change_set_type == "CREATE"
    failed = "CREATE_FAILED" if creating else "UPDATE_FAILED"
    root = backend.stacks[change_set.stack_id]
    cause = "?"
    if _failed:
        chain, reason = _failed[0]  # outermost first; the last is the resource that failed
        resources_map, cause, kind = chain[-1]
        _event(_stack_of(resources_map), cause, "", kind, "CREATE_FAILED", reason)
        pairs = list(zip(chain, chain[1:], strict=False))  # (a nested stack resource, what it was making)
        for (parent_map, child_logical, _kind), (child_map, _l, _k) in reversed(pairs):
            child = _stack_of(child_map)
            child.status = "CREATE_FAILED"
            _event(child, child.name, child.stack_id, "AWS::CloudFormation::Stack", "CREATE_FAILED",
                   f"The following resource(s) failed to create: [{cause}]. ")
            _event(_stack_of(parent_map), child_logical, child.stack_id, "AWS::CloudFormation::Stack", failed,
                   f"Embedded stack {child.stack_id} was not successfully created: The following resource(s) "
                   f"failed to create: [{cause}]. ")
            cause = child_logical
    rollback = "ROLLBACK" if creating else "UPDATE_ROLLBACK"
    _event(root, root.name, root.stack_id, "AWS::CloudFormation::Stack", f"{rollback}_IN_PROGRESS",
           f"The following resource(s) failed to create: [{cause}]. Rollback requested by user.")
    _event(root, root.name, root.stack_id, "AWS::CloudFormation::Stack", f"{rollback}_COMPLETE")
    root.status = f"{rollback}_COMPLETE"
    change_set.execution_status = "EXECUTE_FAILED"


def _load_balancer_with_type(cls: Any, resource_name: str, cloudformation_json: dict, account_id: str,
                             region_name: str, **kwargs: Any) -> Any:
    from moto.elbv2.models import elbv2_backends

    properties = cloudformation_json["Properties"]
    return elbv2_backends[account_id][region_name].create_load_balancer(
        resource_name, properties.get("SecurityGroups"), properties.get("Subnets"),
        scheme=properties.get("Scheme", "internet-facing"), loadbalancer_type=properties.get("Type"))


def install() -> None:
    """Patches moto in this process (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    cfn_models.Stack.get_cfn_attribute = _stack_attribute
    for cache in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cache.cache_clear()
    missing = [model.TYPE for model in MODELS if model.TYPE in parsing.get_model_map() and
               parsing.get_model_map()[model.TYPE] is not model]
    assert not missing, f"moto now models {missing}: drop their stand-ins from {__name__}"

    original_clean = parsing.clean_json

    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::GetAtt" in resource_json:
            parts = resource_json["Fn::GetAtt"]
            if isinstance(parts, list) and len(parts) > 2:  # ${Res.A.B} from !Sub: the attribute is "A.B"
                resource_json = {"Fn::GetAtt": [parts[0], ".".join(parts[1:])]}
        return original_clean(resource_json, resources_map)

    parsing.clean_json = clean_json

    parsing.parse_and_create_resource = _with_events(parsing.parse_and_create_resource)
    cfn_models.CloudFormationBackend.execute_change_set = _execute_with_rollback(
        cfn_models.CloudFormationBackend.execute_change_set)

    from moto.elbv2.models import FakeLoadBalancer
    FakeLoadBalancer.create_from_cloudformation_json = classmethod(_load_balancer_with_type)

    from moto.awslambda.models import LambdaVersion
    LambdaVersion.get_cfn_attribute = _lambda_version_attribute

    from moto.ec2.models.instances import Instance
    Instance.create_from_cloudformation_json = _instance_from_launch_template(Instance.create_from_cloudformation_json)

    original_class = parsing.resource_class_from_type

    def resource_class_from_type(resource_type: str) -> Any:
        found = original_class(resource_type)
        if found is None and resource_type not in parsing.NULL_MODELS:
            SKIPPED.add(resource_type)
        return found

    parsing.resource_class_from_type = resource_class_from_type
