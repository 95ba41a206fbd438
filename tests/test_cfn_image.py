"""The GPU image (cloud/gpu/image): Packer template, systemd/supervisord/nginx files and bake scripts agree with
the RQL, with each other, with the templates and with the watcher code. Packer itself is not run here (it needs
AWS); `docs/deploy.md` has the bake."""
from __future__ import annotations

import ast
import configparser
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from support.cfn_support import CFN_DIR, REPO, as_list, closure, evaluate, load, module_file
from tlfif_common import names

IMAGE = REPO / "cloud" / "gpu" / "image"
FILES = IMAGE / "files"
SCRIPTS = IMAGE / "scripts"
PACKER_IAM = json.loads((REPO / "tests" / "data" / "packer_amazon_ebs_iam.json").read_text())
CODEBUILD_OWN = {"logs:CreateLogStream", "logs:PutLogEvents", "s3:GetObject", "s3:PutObject"}  # logs, artifacts


@pytest.fixture(scope="module")
def packer():
    return json.loads((IMAGE / "ami.json").read_text())


def _unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#", ";"))
    parser.optionxform = str
    parser.read(path)
    return parser


def _template_path(source: str) -> Path:
    return (IMAGE / source.replace("{{template_dir}}/", "")).resolve()


def test_packer_parameters_and_x86_64_builder(packer):
    variables = packer["variables"]
    assert {"base_os", "weights_url", "vllm_version"} <= set(variables)
    (builder,) = packer["builders"]
    assert builder["type"] == "amazon-ebs"
    assert builder["source_ami_filter"]["filters"]["architecture"] == "x86_64"
    assert builder["source_ami_filter"]["filters"]["name"] == "{{user `base_os`}}"
    assert variables["served_model_name"] == names.DEFAULT_MODEL
    pipeline = load(CFN_DIR / "pipeline.yaml")["Parameters"]
    assert pipeline["VllmVersion"]["Default"] == variables["vllm_version"]
    assert pipeline["BaseOs"]["Default"] == variables["base_os"]
    assert pipeline["WeightsUrl"]["Default"] == variables["weights_url"]


def test_packer_builder_is_locked_down(packer):
    (builder,) = packer["builders"]
    assert builder["encrypt_boot"] is True
    assert all(m["encrypted"] is True for m in builder["launch_block_device_mappings"])
    assert builder["metadata_options"]["http_tokens"] == "required"
    assert builder["metadata_options"]["http_put_response_hop_limit"] == 1
    assert builder["ssh_interface"] == "session_manager"  # no inbound port on the build instance
    assert builder["temporary_security_group_source_cidrs"] == ["127.0.0.1/32"]
    assert "0.0.0.0/0" not in json.dumps(packer)
    # the pipeline's bake role may only stop/terminate what carries these tags; its deploy role prunes these AMIs
    assert builder["run_tags"]["Project"] == names.TAG_PROJECT_VALUE and builder["run_tags"]["Role"] == "ami-bake"
    assert builder["tags"]["Project"] == names.TAG_PROJECT_VALUE and builder["tags"]["Role"] == "gpu-ami"
    pipeline = (CFN_DIR / "pipeline.yaml").read_text()
    assert '"aws:RequestTag/Role": ami-bake' in pipeline and '"aws:ResourceTag/Role": gpu-ami' in pipeline


def test_every_provisioned_file_exists_and_cleanup_runs_last(packer):
    sources = [p["source"] for p in packer["provisioners"] if p["type"] == "file"]
    (shell,) = [p for p in packer["provisioners"] if p["type"] == "shell" and "scripts" in p]
    for source in sources + shell["scripts"]:
        assert _template_path(source).exists(), source
    assert shell["scripts"][-1].endswith("cleanup.sh")
    assert _template_path(sources[-1]) == module_file("tlfif_watcher").parent
    assert _template_path(sources[-2]) == module_file("tlfif_common").parent


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.sh")) + ["tlfif-firstboot", "run-watcher"])
def test_shell_scripts_parse(script):
    path = SCRIPTS / script if (SCRIPTS / script).exists() else FILES / script
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_vllm_unit_serves_loopback_fp16_eager_2048_offline():
    unit = _unit(FILES / "run_vllm.service")
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[:3] == ["/opt/vllm/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]

    def flag(name):
        return argv[argv.index(name) + 1]

    assert (flag("--host"), flag("--port")) == ("127.0.0.1", "8000")
    assert names.DEFAULT_ENGINE_URL == f"http://{flag('--host')}:{flag('--port')}/v1"
    assert flag("--dtype") == "half" and "--enforce-eager" in argv and flag("--max-model-len") == "2048"
    assert flag("--served-model-name") == "@SERVED_MODEL_NAME@"  # install.sh puts served_model_name there
    install = (SCRIPTS / "install.sh").read_text()
    assert 's#@SERVED_MODEL_NAME@#${SERVED_MODEL_NAME}#' in install
    weights = (SCRIPTS / "install-weights.sh").read_text()
    assert f"DEST={flag('--model')}\n" in weights
    environment = (FILES / "run_vllm.service").read_text()
    assert "Environment=HF_HUB_OFFLINE=1" in environment and "Environment=TRANSFORMERS_OFFLINE=1" in environment
    assert unit["Service"]["User"] == "tlfif"


def test_weights_are_baked_never_fetched_at_boot():
    for path in FILES.iterdir():
        text = path.read_text()
        assert "snapshot_download" not in text and "WEIGHTS_URL" not in text and "hf://" not in text, path.name
        for url in re.findall(r"https?://[^\s\"';]+", text):
            assert url.startswith(("http://127.0.0.1", "http://169.254.169.254")), f"{path.name} fetches {url}"
    assert "snapshot_download" in (SCRIPTS / "install-weights.sh").read_text()


def test_watcher_runs_under_supervisord():
    conf = configparser.ConfigParser(interpolation=None)
    conf.read(FILES / "supervisor-tlfif-watcher.conf")
    program = conf["program:tlfif-watcher"]
    assert program["command"] == "/opt/tl-fif/bin/run-watcher"
    assert program["user"] == "tlfif" and program["autorestart"] == "true"
    wrapper = (FILES / "run-watcher").read_text()
    assert wrapper.rstrip().endswith("exec /opt/tl-fif/venv/bin/python -m tlfif_watcher")
    install = (SCRIPTS / "install.sh").read_text()
    assert '"$IMAGE/run-watcher" /opt/tl-fif/bin/run-watcher' in install
    assert "/etc/supervisor/conf.d/tlfif-watcher.conf" in install
    assert "useradd --system" in install and " tlfif\n" in install
    gpu = (CFN_DIR / "gpu.yaml").read_text()
    assert "owner: root:tlfif" in gpu  # the watcher (user tlfif) can read the env file cloud-init writes


def test_nginx_terminates_tls_on_443_with_the_first_boot_certificate():
    conf = (FILES / "nginx-tl-fif.conf").read_text()
    assert re.search(r"listen 443 ssl;", conf) and "listen 80" not in conf
    assert "proxy_pass http://127.0.0.1:8000;" in conf
    certificate = re.search(r"ssl_certificate\s+(\S+);", conf).group(1)
    key = re.search(r"ssl_certificate_key\s+(\S+);", conf).group(1)
    firstboot = (FILES / "tlfif-firstboot").read_text()
    assert 'TLS=/etc/tl-fif/tls' in firstboot
    assert (certificate, key) == ("/etc/tl-fif/tls/cert.pem", "/etc/tl-fif/tls/key.pem")
    assert '-keyout "$TLS/key.pem" -out "$TLS/cert.pem"' in firstboot
    unit = _unit(FILES / "tlfif-firstboot.service")
    assert unit["Unit"]["Before"] == "nginx.service"
    assert unit["Unit"]["ConditionPathExists"] == f"!{certificate}"


def test_no_sshd_and_ssm_agent_on():
    cleanup = (SCRIPTS / "cleanup.sh").read_text()
    assert "apt-get purge -y -qq openssh-server" in cleanup and "systemctl mask ssh.socket ssh.service" in cleanup
    install = (SCRIPTS / "install.sh").read_text()
    assert "systemctl enable snap.amazon-ssm-agent.amazon-ssm-agent.service" in install
    assert "systemctl enable run_vllm.service tlfif-firstboot.service nginx.service supervisor.service" in install


def test_watcher_requirements_cover_its_imports():
    provides = {"botocore": "boto3", "pynvml": "nvidia-ml-py"}
    listed = {re.split(r"[<>=!~ \[]", line)[0].strip().lower()
              for line in (IMAGE / "requirements-watcher.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")}
    third_party = set()
    for module in closure("tlfif_watcher.__main__", "tlfif_watcher"):
        tree = ast.parse(module_file(module).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                third_party.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                third_party.add(node.module.split(".")[0])
    third_party -= set(sys.stdlib_module_names) | {"tlfif_common", "tlfif_watcher", "__future__"}
    assert third_party, "the scan found the watcher's imports"
    for package in third_party:
        assert provides.get(package, package).lower() in listed, f"the watcher imports {package}"


def _bake_role_actions() -> tuple[set[str], set[str]]:
    """(allowed, denied) actions of the pipeline's BakeRole, the role Packer runs under in CodeBuild."""
    role = evaluate(CFN_DIR / "pipeline.yaml").resources["BakeRole"]
    allowed, denied = set(), set()
    for policy in role["Properties"]["Policies"]:
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            (allowed if statement["Effect"] == "Allow" else denied).update(as_list(statement["Action"]))
    return allowed, denied


def test_the_documented_iam_list_is_about_the_options_ami_json_sets(packer):
    (builder,) = packer["builders"]
    documented = set(PACKER_IAM["documented_minimal"]).union(*PACKER_IAM["documented_for_options"].values())
    for why, needed in PACKER_IAM["required_by_ami_json"].items():
        assert set(needed) <= documented, f"{why}: {set(needed) - documented} is not in the plugin's documentation"
        option = why.split("=")[0].split(" ")[0].split(",")[0]
        if option in ("encrypt_boot", "ena_support"):
            assert builder[option] is True, option
        elif option in ("iam_instance_profile", "subnet_id", "security_group_id", "source_ami_filter",
                        "ami_description", "tags"):
            assert builder.get(option), option
    assert builder["ssh_interface"] == "session_manager" and "kms_key_id" not in builder


def test_bake_role_allows_every_call_the_builder_makes():
    allowed, _denied = _bake_role_actions()
    for why, needed in PACKER_IAM["required_by_ami_json"].items():
        assert set(needed) <= allowed, f"{why}: BakeRole lacks {sorted(set(needed) - allowed)}"


def test_bake_role_allows_nothing_the_builder_does_not_need():
    allowed, denied = _bake_role_actions()
    needed = set().union(*PACKER_IAM["required_by_ami_json"].values())
    assert allowed - CODEBUILD_OWN - needed == set()
    assert not any("*" in action for action in allowed)
    # the intermediate image of encrypt_boot is untagged, so deletion is scoped by region; shipped images are denied
    assert {"ec2:DeregisterImage", "ec2:DeleteSnapshot"} <= denied


def _fake_tools(tmp_path: Path, tools: dict[str, str]) -> dict[str, str]:
    """A PATH holding only bash's basics and the given stand-ins for GPU-side tools (no GPU can run here)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("bash", "date", "seq", "sleep"):
        real = subprocess.run(["bash", "-c", f"command -v {name}"], capture_output=True, text=True).stdout.strip()
        (bin_dir / name).symlink_to(real)
    (bin_dir / "python3").symlink_to(sys.executable)
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return {"PATH": str(bin_dir), "SERVED_MODEL_NAME": names.DEFAULT_MODEL}


def _smoke(env: dict[str, str], **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/bash", str(SCRIPTS / "smoke-test.sh")], env={**env, **extra},
                          capture_output=True, text=True, timeout=60)


GPU_HOST = {"nvidia-smi": 'echo "Tesla T4, 7.5, 550.0"', "systemctl": "exit 0", "journalctl": "exit 0"}


def test_smoke_test_fails_loudly_without_a_gpu(tmp_path):
    env = _fake_tools(tmp_path, {"systemctl": "exit 0", "journalctl": "exit 0"})
    result = _smoke(env)
    assert result.returncode != 0 and "nvidia-smi not found" in result.stderr


def test_smoke_test_fails_when_the_model_answers_nothing(tmp_path):
    empty = '{"choices": [{"text": "  "}]}'
    env = _fake_tools(tmp_path, {**GPU_HOST, "curl": f"case \"$*\" in *completions*) echo '{empty}';; esac; exit 0"})
    result = _smoke(env)
    assert result.returncode != 0 and "empty text" in result.stderr


def test_smoke_test_passes_on_an_answer_and_skips_only_when_told(tmp_path):
    answer = '{"choices": [{"text": " Paris."}]}'
    env = _fake_tools(tmp_path, {**GPU_HOST, "curl": f"case \"$*\" in *completions*) echo '{answer}';; esac; exit 0"})
    result = _smoke(env)
    assert result.returncode == 0, result.stderr
    assert "smoke answer: Paris." in result.stdout
    bare = _fake_tools(tmp_path / "bare", {})
    assert _smoke(bare, SMOKE_TEST="false").returncode != 0  # the old "off" value is no longer a silent skip
    skipped = _smoke(bare, SMOKE_TEST="skip")
    assert skipped.returncode == 0 and "SKIPPED" in skipped.stderr


def test_the_pipeline_skips_the_smoke_test_only_on_a_cpu_build_type():
    pipeline = load(CFN_DIR / "pipeline.yaml")
    spec = pipeline["Resources"]["BakeProject"]["Properties"]["Source"]["BuildSpec"]
    assert "in g*) echo true;; *) echo skip;; esac" in spec
    gpu_types = [t for t in pipeline["Parameters"]["BakeInstanceType"]["AllowedValues"] if t.startswith("g")]
    assert pipeline["Parameters"]["BakeInstanceType"]["Default"] in gpu_types


def test_vllm_pin_runs_the_v1_engine_on_a_t4(packer):
    """The V1 engine serves compute capability 7.5 since 0.10.2 (Triton/Flex attention); T4 has no bf16."""
    version = tuple(int(part) for part in packer["variables"]["vllm_version"].split("."))
    assert version >= (0, 10, 2)
    argv = shlex.split(_unit(FILES / "run_vllm.service")["Service"]["ExecStart"])
    assert argv[argv.index("--dtype") + 1] == "half"
    deploy = (REPO / "docs" / "deploy.md").read_text()
    assert f"`{packer['variables']['vllm_version']}`" in deploy
