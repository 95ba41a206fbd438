"""The templates and the code agree: every name in the templates equals `tlfif_common.names`, every environment
variable the code reads is set by the templates, every handler exists, the root stack wires its children right.

The environment check reads the code when it runs (ast, no import): it follows each Lambda handler's and the GPU
watcher's imports through `tlfif_router`, `tlfif_common` and `tlfif_watcher`, so a variable added to the code
tomorrow fails here until a template sets it.
"""
from __future__ import annotations

import ast
import fnmatch
import re

import pytest

from app.models import settings as app_settings
from support.cfn_support import (CFN_DIR, ENV_LINE, PACKAGES, PROFILES, REPO, ROOT_TEMPLATE, actions, all_stacks,
                                  app_stack, as_list, closure, env_reads, evaluate, gpu_env_file, load,
                                  module_file, nested_stacks, resources, statements, sub_text)
from tlfif_common import names

GPU_ENV_FILE = "/etc/tl-fif/watcher.env"
# Never set by a template: the endpoint override exists for moto and the local cloud only.
TEST_ONLY = ("AWS_ENDPOINT_URL",)
# Set by the Lambda runtime itself (and reserved: a template may not set them).
LAMBDA_RUNTIME = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_", "AWS_EXECUTION_ENV", "AWS_ACCESS_KEY_ID",
                  "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# The instance role's credentials come from IMDS.
GPU_PROVIDED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
# Either one is enough (tlfif_router.config.RouterConfig: Redis directly in full, the queue function in lean).
ALTERNATIVES = [{names.ENV_REDIS_URL, names.ENV_QUEUE_FUNCTION}]
ENV_VALUES = {value for key, value in vars(names).items() if key.startswith("ENV_")}


def required_env(entry_modules: tuple[str, ...], provided: tuple[str, ...]) -> dict[str, set[str]]:
    """{variable: modules that read it} for everything reachable from the entry modules."""
    out: dict[str, set[str]] = {}
    for module in closure(*entry_modules):
        if module == "tlfif_common.names":
            continue  # it defines the names; the modules that use them are the readers
        for var in env_reads(module):
            if var.startswith(TEST_ONLY) or var.startswith(provided):
                continue
            out.setdefault(var, set()).add(module)
    return out


def lambda_functions(profile):
    return [(name, res["Properties"]) for _s, name, res in resources(app_stack(profile), "AWS::Lambda::Function")]


# ------------------------------------------------------------------------------------------ environment
@pytest.mark.parametrize("profile", PROFILES)
def test_every_variable_a_lambda_reads_is_set_on_it(profile):
    functions = lambda_functions(profile)
    assert {props["Handler"] for _n, props in functions} >= {
        "tlfif_router.handler.handler", "tlfif_router.cost_reporter.handler", "tlfif_router.budget_killer.handler"}
    for name, props in functions:
        module = props["Handler"].rpartition(".")[0]
        assert module_file(module), f"{name}: handler module {module} does not exist under cloud/lambda"
        env = set(props.get("Environment", {}).get("Variables", {}))
        needed = required_env((module,), LAMBDA_RUNTIME)
        for group in ALTERNATIVES:
            if group & set(needed):
                assert group & env, f"{name} ({profile}) sets none of {sorted(group)}"
                for var in group:
                    needed.pop(var, None)
        missing = {var: sorted(mods) for var, mods in needed.items() if var not in env}
        assert not missing, f"{name} ({profile}) reads variables its template does not set: {missing}"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_variable_the_watcher_reads_is_in_its_env_file(profile):
    env = gpu_env_file(app_stack(profile), GPU_ENV_FILE)
    needed = required_env(("tlfif_watcher.__main__", "tlfif_watcher"), GPU_PROVIDED)
    assert names.ENV_REDIS_URL in needed  # the scan found the watcher's config
    missing = {var: sorted(mods) for var, mods in needed.items() if var not in env}
    assert not missing, f"the GPU env file ({profile}) lacks variables the watcher reads: {missing}"
    assert env["TLFIF_ENGINE_URL"] == names.DEFAULT_ENGINE_URL
    assert env["TLFIF_IMDS_URL"] == names.DEFAULT_IMDS_URL


def dr_node_env() -> dict[str, str]:
    """KEY=VALUE lines of the watcher.env the DR test's node writes (ops.yaml, TL-FIF-DR-Test's launch step)."""
    import yaml

    content = evaluate(CFN_DIR / "ops.yaml").resources["DrTestDocument"]["Properties"]["Content"]
    (launch,) = [step for step in content["mainSteps"] if step["name"] == "launch"]
    config = yaml.safe_load(re.sub(r"\$\{[^}]+\}", "X", sub_text(launch["inputs"]["UserData"]["Fn::Base64"])))
    (entry,) = [f for f in config["write_files"] if f["path"] == GPU_ENV_FILE]
    return dict(m.groups() for line in entry["content"].splitlines() if (m := ENV_LINE.match(line)))


def test_every_variable_anywhere_in_the_cloud_code_is_set_somewhere():
    """Catches modules no handler imports statically (lazy importlib) - each read must be set by some template."""
    set_anywhere = set()
    for profile in PROFILES:
        for _name, props in lambda_functions(profile):
            set_anywhere |= set(props.get("Environment", {}).get("Variables", {}))
        set_anywhere |= set(gpu_env_file(app_stack(profile), GPU_ENV_FILE))
    set_anywhere |= set(dr_node_env())  # the DR test's node sets its metric namespace
    for package in ("tlfif_router", "tlfif_watcher", "tlfif_common"):
        for path in PACKAGES[package].rglob("*.py"):
            rel = path.relative_to(PACKAGES[package]).with_suffix("")
            module = ".".join([package, *rel.parts]).removesuffix(".__init__")
            if module == "tlfif_common.names":
                continue
            for var in env_reads(module):
                if var.startswith(TEST_ONLY) or var.startswith(LAMBDA_RUNTIME + GPU_PROVIDED):
                    continue
                assert var in set_anywhere, f"{module} reads {var}, which no template sets"


def test_templates_set_only_known_variables():
    allowed = ENV_VALUES | {"AWS_REGION", "AWS_DEFAULT_REGION"}
    for profile in PROFILES:
        for name, props in lambda_functions(profile):
            unknown = set(props.get("Environment", {}).get("Variables", {})) - ENV_VALUES
            assert not unknown, f"{name} sets {unknown}, not in tlfif_common.names"
        unknown = set(gpu_env_file(app_stack(profile), GPU_ENV_FILE)) - allowed
        assert not unknown, f"GPU env file sets {unknown}, not in tlfif_common.names"


def test_the_supervised_watcher_loads_the_env_file_cloud_init_writes():
    wrapper = (REPO / "cloud" / "gpu" / "image" / "files" / "run-watcher").read_text()
    assert f'ENV_FILE={GPU_ENV_FILE}' in wrapper
    assert "-m tlfif_watcher" in wrapper


def test_handlers_exist_and_define_the_function():
    for profile in PROFILES:
        for name, props in lambda_functions(profile):
            module, _, func = props["Handler"].rpartition(".")
            tree = ast.parse(module_file(module).read_text(encoding="utf-8"))
            defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
            assert func in defined, f"{name}: {module} defines no {func}()"


# ------------------------------------------------------------------------------------------ names
def _grants(stacks, role_name, action, resource_suffix):
    """Does an Allow statement of `role_name` grant `action` on a resource ending in `resource_suffix`?"""
    for where, statement in statements(stacks):
        if f":{role_name}/" not in where or statement["Effect"] != "Allow" or action not in actions(statement):
            continue
        for resource in as_list(statement.get("Resource")):
            text = sub_text(resource)
            if text and fnmatch.fnmatch(resource_suffix, "*" + re.sub(r"\$\{[^}]+\}", "*", text).split(":")[-1]):
                return True
    return False


def test_ssm_names():
    root = load(ROOT_TEMPLATE)
    assert root["Parameters"]["LatestAmiId"]["Default"] == names.SSM_LATEST_AMI_ID
    assert root["Parameters"]["LatestAmiId"]["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    for profile in PROFILES:
        stacks = all_stacks(profile)
        params = {r["Properties"]["Name"] for _s, _n, r in resources(stacks, "AWS::SSM::Parameter")}
        assert names.SSM_LAMBDA_PROD_VERSION in params
        ready = "parameter" + names.ssm_ready_param("i-0123456789abcdef0")
        assert _grants(stacks, "GpuRole", "ssm:PutParameter", ready)
        assert _grants(stacks, "GpuRole", "ssm:DeleteParameter", ready)
        assert _grants(stacks, "RouterRole", "ssm:GetParameter", ready)
        assert _grants(stacks, "RouterRole", "ssm:GetParameter", "parameter" + names.SSM_COST_MONTH_TO_DATE)
        assert _grants(stacks, "CostReporterRole", "ssm:PutParameter", "parameter" + names.SSM_COST_MONTH_TO_DATE)
        assert _grants(stacks, "BudgetKillerRole", "ssm:PutParameter", "parameter" + names.SSM_BUDGET_STOP)
        assert _grants(stacks, "DeployRole", "ssm:PutParameter", "parameter" + names.SSM_LATEST_AMI_ID)
        assert _grants(stacks, "DeployRole", "ssm:PutParameter", "parameter" + names.SSM_LAMBDA_PROD_VERSION)
        assert _grants(stacks, "DrAutomationRole", "ssm:GetParameter", ready)
    pipeline = (CFN_DIR / "pipeline.yaml").read_text()
    assert f"--name {names.SSM_LATEST_AMI_ID} " in pipeline and f"--name {names.SSM_LAMBDA_PROD_VERSION} " in pipeline


def test_table_tags_metrics_and_defaults():
    for profile in PROFILES:
        stacks = app_stack(profile)
        (_, _, table), = resources(stacks, "AWS::DynamoDB::Table")
        # named after the (nested) stack, so a second stack in the account gets its own table; the router reads
        # the name from TLFIF_SESSIONS_TABLE (tests/test_deploy_rehearsal.py runs it with the deployed value)
        assert table["Properties"]["TableName"] == {"Fn::Sub": "${AWS::StackName}-" + names.SESSIONS_TABLE}
        assert table["Properties"]["KeySchema"] == [{"AttributeName": names.SESSIONS_KEY, "KeyType": "HASH"}]

        gpu_tags = {names.TAG_PROJECT_KEY: names.TAG_PROJECT_VALUE, names.TAG_ROLE_KEY: names.TAG_ROLE_GPU}
        (_, _, template), = resources(stacks, "AWS::EC2::LaunchTemplate")
        for spec in template["Properties"]["LaunchTemplateData"]["TagSpecifications"]:
            tags = {t["Key"]: t["Value"] for t in spec["Tags"]}
            assert gpu_tags.items() <= tags.items(), spec["ResourceType"]
        (_, _, instance), = resources(stacks, "AWS::EC2::Instance")
        assert gpu_tags.items() <= {t["Key"]: t["Value"] for t in instance["Properties"]["Tags"]}.items()
        (_, _, dlm), = resources(stacks, "AWS::DLM::LifecyclePolicy")
        targets = dlm["Properties"]["PolicyDetails"]["TargetTags"]
        assert targets == [{"Key": names.TAG_ROLE_KEY, "Value": names.TAG_ROLE_GPU}]
        assert dlm["Properties"]["PolicyDetails"]["Schedules"][0]["RetainRule"] == {"Count": 7}

        metric_names = {v for k, v in vars(names).items() if k.startswith("METRIC_")}
        alarms = list(resources(stacks, "AWS::CloudWatch::Alarm"))
        assert alarms
        for _s, name, alarm in alarms:
            props = alarm["Properties"]
            if props["Namespace"] != "AWS/EC2":
                assert props["Namespace"] == names.METRICS_NAMESPACE, name
                assert props["MetricName"] in metric_names, f"{name}: {props['MetricName']} is not in names"
        spend = [a for _s, n, a in alarms if a["Properties"]["MetricName"] == names.METRIC_CURRENT_SPEND_EUR]
        assert spend, "the EUR 15 alarm watches the cost reporter's metric"

    root = load(ROOT_TEMPLATE)["Parameters"]
    assert root["RedirectPort"]["Default"] == app_settings.DEFAULT_REDIRECT_PORT
    assert root["DefaultIdleMinutes"]["Default"] == app_settings.DEFAULT_IDLE
    assert root["CostPollSchedule"]["Default"] == f"rate({names.COST_POLL_HOURS} hours)"
    ops = load(CFN_DIR / "ops.yaml")["Parameters"]
    assert ops["CostPollSchedule"]["Default"] == root["CostPollSchedule"]["Default"]
    api = load(CFN_DIR / "api.yaml")["Parameters"]
    assert api["BootEtaSeconds"]["Default"] == names.BOOT_ETA_SECONDS
    assert api["RedirectPort"]["Default"] == app_settings.DEFAULT_REDIRECT_PORT
    assert load(CFN_DIR / "gpu.yaml")["Parameters"]["EngineModel"]["Default"] == names.DEFAULT_MODEL


def test_every_gpu_mode_parameter_offers_the_modes_the_code_knows():
    for path in sorted(CFN_DIR.glob("*.yaml")):
        spec = load(path).get("Parameters", {}).get("GpuMode")
        if spec is not None:
            assert spec["AllowedValues"] == list(names.GPU_MODES), path.name
            assert spec["Default"] == names.GPU_MODE_SINGLE, path.name


# ------------------------------------------------------------------------------------------ wiring
def test_root_passes_each_child_exactly_its_parameters():
    root = load(ROOT_TEMPLATE)
    children = nested_stacks(root)
    assert set(children) == {"Network", "Data", "Gpu", "Api", "Ops"}
    outputs = {name: load(path).get("Outputs", {}) for name, (path, _p) in children.items()}
    for name, (path, passed) in children.items():
        child = load(path).get("Parameters", {})
        assert set(passed) <= set(child), f"{name} gets unknown parameters {set(passed) - set(child)}"
        needed = {p for p, spec in child.items() if "Default" not in spec}
        assert needed <= set(passed), f"{name} is not given {needed - set(passed)}"
        if "CostProfile" in child:
            assert passed["CostProfile"] == {"Ref": "CostProfile"}, name
        for value in passed.values():
            if isinstance(value, dict) and "Fn::GetAtt" in value:
                stack, attribute = value["Fn::GetAtt"]
                output = attribute.removeprefix("Outputs.")
                assert output in outputs[stack], f"{name}: {stack} has no output {output}"
                assert "Condition" not in outputs[stack][output], f"{stack}.{output} is conditional"
    for output in load(ROOT_TEMPLATE)["Outputs"].values():
        value = output["Value"]
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            stack, attribute = value["Fn::GetAtt"]
            assert attribute.removeprefix("Outputs.") in outputs[stack]


def test_lambda_code_is_the_zip_make_builds():
    makefile = (REPO / "Makefile").read_text()
    match = re.search(r"^lambda-zip:.*\n\t.*--output\s+(\S+)", makefile, re.MULTILINE)
    assert match, "Makefile target lambda-zip names its --output"
    built = (REPO / match.group(1)).resolve()
    for path in (CFN_DIR / "api.yaml", CFN_DIR / "ops.yaml"):
        for name, res in evaluate(path).of_type("AWS::Lambda::Function").items():
            assert (path.parent / res["Properties"]["Code"]).resolve() == built, f"{path.name}:{name}"
    assert f"fileb://{match.group(1)}" in (CFN_DIR / "pipeline.yaml").read_text()
