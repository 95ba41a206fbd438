"""Reads the CloudFormation templates in cloud/cfn the way CloudFormation would for one cost profile.

`cfnlint.decode` parses the YAML short tags (!Ref, !Sub, !GetAtt, !If ...) into their long form. `evaluate()` then
does what CloudFormation does before it creates anything: resolve the parameters (defaults, overridden by what
the root stack passes), evaluate the Conditions, drop resources whose Condition is false, and replace every
Fn::If by the branch taken (Ref AWS::NoValue removes the key or list item). Everything else (Ref, GetAtt, Sub) is
left as it is: the tests read those forms.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Iterator

from cfnlint.decode import cfn_yaml

from tlfif_common import names

REPO = Path(__file__).resolve().parents[2]
CFN_DIR = REPO / "cloud" / "cfn"
ROOT_TEMPLATE = CFN_DIR / "main.yaml"
PROFILES = ("full", "lean")

_REMOVED = object()  # what Ref AWS::NoValue becomes


def template_paths() -> list[Path]:
    return sorted(CFN_DIR.glob("*.yaml"))


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, str):
        return str(node)
    return node


@cache
def _load_cached(path: str) -> Any:
    return _plain(cfn_yaml.load(path))


def load(path: Path) -> dict:
    """The template as plain dicts/lists/str, intrinsic functions in their long form ({"Fn::If": [...]})."""
    import copy

    return copy.deepcopy(_load_cached(str(path)))


@dataclass
class Evaluated:
    """One template as CloudFormation sees it for one set of parameter values."""
    path: Path
    params: dict[str, Any]
    conditions: dict[str, bool]
    resources: dict[str, dict]
    outputs: dict[str, dict]
    raw: dict = field(repr=False)

    @property
    def name(self) -> str:
        return self.path.name

    def of_type(self, resource_type: str) -> dict[str, dict]:
        return {name: res for name, res in self.resources.items() if res.get("Type") == resource_type}


def _param_value(template: dict, name: str, overrides: dict[str, Any]) -> Any:
    if name in overrides:
        return overrides[name]
    spec = template.get("Parameters", {}).get(name)
    if spec is None:
        raise KeyError(f"Ref to unknown parameter {name}")
    return spec.get("Default", f"<{name}>")


def _condition_value(expr: Any, template: dict, params: dict[str, Any], conditions: dict[str, bool]) -> Any:
    if isinstance(expr, dict) and len(expr) == 1:
        (fn, arg), = expr.items()
        if fn == "Ref":
            return params[arg] if arg in params else f"<{arg}>"
        if fn == "Condition":
            return _evaluate_condition(arg, template, params, conditions)
        if fn == "Fn::Equals":
            left, right = (_condition_value(part, template, params, conditions) for part in arg)
            return str(left) == str(right)
        if fn == "Fn::Not":
            return not _condition_value(arg[0], template, params, conditions)
        if fn == "Fn::And":
            return all(_condition_value(part, template, params, conditions) for part in arg)
        if fn == "Fn::Or":
            return any(_condition_value(part, template, params, conditions) for part in arg)
        raise ValueError(f"unsupported function in a condition: {fn}")
    return expr


def _evaluate_condition(name: str, template: dict, params: dict[str, Any], conditions: dict[str, bool]) -> bool:
    if name not in conditions:
        conditions[name] = bool(_condition_value(template["Conditions"][name], template, params, conditions))
    return conditions[name]


def _resolve_ifs(node: Any, conditions: dict[str, bool]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return _resolve_ifs(when_true if conditions[name] else when_false, conditions)
        if node == {"Ref": "AWS::NoValue"}:
            return _REMOVED
        out = {}
        for key, value in node.items():
            value = _resolve_ifs(value, conditions)
            if value is not _REMOVED:
                out[key] = value
        return out
    if isinstance(node, list):
        items = [_resolve_ifs(item, conditions) for item in node]
        return [item for item in items if item is not _REMOVED]
    return node


def evaluate(path: Path, overrides: dict[str, Any] | None = None) -> Evaluated:
    template = load(path)
    overrides = dict(overrides or {})
    params = {name: _param_value(template, name, overrides) for name in template.get("Parameters", {})}
    conditions: dict[str, bool] = {}
    for name in template.get("Conditions", {}):
        _evaluate_condition(name, template, params, conditions)
    resources = {}
    for name, resource in template.get("Resources", {}).items():
        if "Condition" in resource and not conditions[resource["Condition"]]:
            continue
        resources[name] = _resolve_ifs(resource, conditions)
    outputs = {}
    for name, output in template.get("Outputs", {}).items():
        if "Condition" in output and not conditions[output["Condition"]]:
            continue
        outputs[name] = _resolve_ifs(output, conditions)
    return Evaluated(path, params, conditions, resources, outputs, template)


def nested_stacks(root: dict) -> dict[str, tuple[Path, dict]]:
    """Logical id → (child template path, Parameters as the root passes them)."""
    out = {}
    for name, resource in root.get("Resources", {}).items():
        if resource.get("Type") == "AWS::CloudFormation::Stack":
            url = resource["Properties"]["TemplateURL"]
            out[name] = ((ROOT_TEMPLATE.parent / url).resolve(), resource["Properties"].get("Parameters", {}))
    return out


def app_stack(profile: str, gpu_mode: str | None = None) -> list[Evaluated]:
    """The root stack and every nested stack for one cost profile (and GpuMode, default the template's), as deployed
    from main.yaml; a stack nested in a child (gpu.yaml's Scale) is included when its condition holds."""
    root = evaluate(ROOT_TEMPLATE, {"CostProfile": profile, **({"GpuMode": gpu_mode} if gpu_mode else {})})
    stacks = [root]
    for _name, (path, passed) in nested_stacks(root.raw).items():
        child = evaluate(path, _overrides(root, passed))
        stacks.append(child)
        for resource in child.of_type("AWS::CloudFormation::Stack").values():
            props = resource["Properties"]
            stacks.append(evaluate((path.parent / props["TemplateURL"]).resolve(),
                                   _overrides(child, props.get("Parameters", {}))))
    return stacks


def _overrides(parent: Evaluated, passed: dict) -> dict[str, Any]:
    overrides = {}
    for key, value in passed.items():
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parent.params:
            overrides[key] = parent.params[value["Ref"]]
        elif isinstance(value, dict) and set(value) == {"Ref"}:  # one of the parent's resources
            overrides[key] = f"<ref {value['Ref']}>"
        elif isinstance(value, (str, int, float)):
            overrides[key] = value
        else:  # GetAtt of another nested stack's output: a placeholder that is not any profile name
            overrides[key] = f"<{key}>"
    return overrides


def all_stacks(profile: str) -> list[Evaluated]:
    """The app stacks of `profile` plus the stand-alone pipeline stack."""
    return app_stack(profile) + [evaluate(CFN_DIR / "pipeline.yaml")]


def resources(stacks: list[Evaluated], resource_type: str | None = None) -> Iterator[tuple[Evaluated, str, dict]]:
    for stack in stacks:
        for name, resource in stack.resources.items():
            if resource_type is None or resource.get("Type") == resource_type:
                yield stack, name, resource


def as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def sub_text(value: Any) -> str | None:
    """The text of a plain string or of a Fn::Sub (its template string); None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        arg = value["Fn::Sub"]
        return arg if isinstance(arg, str) else arg[0]
    return None


def policy_documents(stacks: list[Evaluated]) -> Iterator[tuple[str, dict]]:
    """(where, policy document) for every inline policy, managed policy, bucket policy and topic policy."""
    for stack, name, res in resources(stacks):
        props = res.get("Properties", {})
        kind = res["Type"]
        where = f"{stack.name}:{name}"
        if kind == "AWS::IAM::Role":
            for policy in as_list(props.get("Policies")):
                yield f"{where}/{policy.get('PolicyName')}", policy["PolicyDocument"]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy",
                      "AWS::SNS::TopicPolicy"):
            yield where, props["PolicyDocument"]


def statements(stacks: list[Evaluated]) -> Iterator[tuple[str, dict]]:
    for where, document in policy_documents(stacks):
        for statement in as_list(document.get("Statement")):
            yield where, statement


def actions(statement: dict) -> list[str]:
    return [str(action) for action in as_list(statement.get("Action"))]


ENV_LINE = re.compile(r"^\s*([A-Z][A-Z0-9_]*)=(.*)$")


def gpu_env_file(stacks: list[Evaluated], path: str) -> dict[str, str]:
    """KEY=VALUE lines of the file the launch template's cloud-config writes at `path`."""
    import yaml

    for _stack, _name, res in resources(stacks, "AWS::EC2::LaunchTemplate"):
        user_data = res["Properties"]["LaunchTemplateData"].get("UserData")
        text = sub_text(user_data.get("Fn::Base64")) if isinstance(user_data, dict) else None
        if text is None:
            continue
        config = yaml.safe_load(re.sub(r"\$\{[^}]+\}", "X", text))
        for entry in config.get("write_files", []):
            if entry.get("path") == path:
                return dict(m.groups() for line in entry["content"].splitlines() if (m := ENV_LINE.match(line)))
    raise AssertionError(f"no launch template writes {path}")


# ------------------------------------------------------------------------------------------ code reading (ast)
PACKAGES = {
    "tlfif_router": REPO / "cloud" / "lambda" / "tlfif_router",
    "tlfif_common": REPO / "cloud" / "common" / "tlfif_common",
    "tlfif_watcher": REPO / "cloud" / "gpu" / "tlfif_watcher",
}
ENV_NAME = re.compile(r"^(TLFIF|AWS)_[A-Z0-9_]+$")


def module_file(module: str) -> Path | None:
    top, _, rest = module.partition(".")
    base = PACKAGES.get(top)
    if base is None:
        return None
    path = base.joinpath(*rest.split(".")) if rest else base
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imported_modules(module: str) -> set[str]:
    path = module_file(module)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(module, path).split(".")
                base = base[: len(base) - (node.level - 1)]
                parent = ".".join(base + ([node.module] if node.module else []))
            else:
                parent = node.module or ""
            found.add(parent)
            found.update(f"{parent}.{alias.name}" for alias in node.names)
    return {name for name in found if module_file(name) is not None}


def closure(*modules: str) -> set[str]:
    seen, todo = set(), [m for m in modules if module_file(m)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(imported_modules(module) - seen)
        parts = module.split(".")
        for i in range(1, len(parts)):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            parent = ".".join(parts[:i])
            if parent not in seen and module_file(parent):
                todo.append(parent)
    return seen


def env_reads(module: str) -> set[str]:
    """Environment variable names a module mentions: names.ENV_* and string constants shaped like TLFIF_x/AWS_x."""
    tree = ast.parse(module_file(module).read_text(encoding="utf-8"))
    imported_env = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("names"):
            imported_env.update(a.asname or a.name for a in node.names if a.name.startswith("ENV_"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("ENV_") and isinstance(node.value, ast.Name) \
                and node.value.id == "names":
            out.add(getattr(names, node.attr))
        elif isinstance(node, ast.Name) and node.id in imported_env:
            out.add(getattr(names, node.id))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and ENV_NAME.match(node.value):
            out.add(node.value)
    return out
