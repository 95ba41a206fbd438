"""Reads a CloudFormation YAML template into plain dicts, the short tags (!Ref, !GetAtt, !Sub ...) in long form.

CloudFormation takes templates in JSON too, so `dumps` writes JSON: what `tl-fif deploy` uploads after packaging.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    pass


# An unquoted 2012-10-17 stays the string CloudFormation reads, not a date JSON cannot hold.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _intrinsic(loader: _Loader, tag_suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")  # !GetAtt Child.Outputs.X -> [Child, Outputs.X]
        value = [resource, attribute]
    return {f"Fn::{tag_suffix}": value}


_Loader.add_multi_constructor("!", _intrinsic)


def loads(text: str) -> dict:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass with the CloudFormation tags only


def load(path: Path | str) -> dict:
    return loads(Path(path).read_text(encoding="utf-8"))


def dumps(template: dict) -> str:
    return json.dumps(template, indent=1, sort_keys=False)
