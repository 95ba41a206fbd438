"""The GPU image's size in the estimate comes from what the image scripts install (ami-components.json), never a
copied figure: every install in install.sh / install-weights.sh is listed there and every entry is installed."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from app.cli import cfn_yaml, cost_estimate, cost_inputs
from app.cli.cost_estimate import Usage, estimate
from tlfif_common import prices

IMAGE = Path(__file__).resolve().parents[1] / "cloud" / "gpu" / "image"
CFN = IMAGE.parents[1] / "cfn"


def installs_in_scripts() -> set[str]:
    """What the scripts put on the image, as the table names it: apt:PKG, pip:SPEC, snap:NAME, copy:DIR, weights:DEST,
    and base_os:NAME for the image ami.json starts from."""
    install = (IMAGE / "scripts" / "install.sh").read_text()
    found: set[str] = set()
    for command in re.findall(r"^apt-get install (.+?)(?<!\\)$", install, flags=re.M | re.S):
        words = shlex.split(command.replace("\\\n", " "))
        found |= {f"apt:{w}" for w in words if not w.startswith("-")}
    for spec in re.findall(r"/bin/pip install --quiet (?!--upgrade pip)(.+)$", install, flags=re.M):
        words = shlex.split(spec)
        found.add("pip:-r " + Path(words[1]).name if words[0] == "-r" else f"pip:{words[0]}")
    found |= {f"snap:{name}" for name in re.findall(r"\bsnap install (\S+)", install)}
    for sources in re.findall(r'^cp -r (.+) /opt/tl-fif/lib/$', install, flags=re.M):
        found |= {"copy:" + Path(s).name for s in shlex.split(sources)}
    weights = (IMAGE / "scripts" / "install-weights.sh").read_text()
    found.add("weights:" + re.search(r"^DEST=(\S+)$", weights, flags=re.M).group(1))
    base_os = json.loads((IMAGE / "ami.json").read_text())["variables"]["base_os"]
    found.add(f"base_os:{base_os}")
    return found


def table() -> dict:
    return json.loads((IMAGE / "ami-components.json").read_text())


def test_the_table_lists_exactly_what_the_scripts_install():
    scripts = installs_in_scripts()
    listed = [item for c in table()["components"] for item in c["installs"]]
    assert len(listed) == len(set(listed)), "an install is listed twice"
    assert set(listed) - scripts == set(), "listed in ami-components.json but no longer installed"
    assert scripts - set(listed) == set(), "installed by the image scripts but missing from ami-components.json"
    assert {"apt:nginx", "pip:vllm==${VLLM_VERSION}", "pip:-r requirements-watcher.txt",
            "weights:/opt/tl-fif/models/tinyllama"} <= scripts  # the parser above still reads the scripts


def test_every_component_names_its_source_and_a_sane_range():
    for component in table()["components"]:
        assert len(component["source"]) > 20, component["name"]
        low, top = cost_inputs.component_range(component)
        assert low > 0 or component["name"] == "SSM agent snap", component["name"]
        assert top is None or top >= low, component["name"]


def test_the_vllm_wheels_are_the_pinned_versions():
    variables = json.loads((IMAGE / "ami.json").read_text())["variables"]
    (vllm,) = [c for c in table()["components"] if "pip:vllm==${VLLM_VERSION}" in c["installs"]]
    assert f"vllm=={variables['vllm_version']}" in vllm["wheels"]
    pipeline = (CFN / "pipeline.yaml").read_text()
    assert re.search(rf"VllmVersion:\n\s+Type: String\n\s+Default: {re.escape(variables['vllm_version'])}\n", pipeline)
    (weights,) = [c for c in table()["components"] if any(i.startswith("weights:") for i in c["installs"])]
    model = variables["weights_url"].removeprefix("hf://")
    assert model in weights["source"]
    # The weights are also what the models bucket holds in the estimate.
    assert cost_estimate.PROFILES["lean"].models_gb == pytest.approx(cost_inputs.component_range(weights)[0]
                                                                     * cost_inputs.GIB / 1e9, rel=0.05)


def test_the_priced_size_is_the_top_of_the_range_bounded_by_the_baked_volume():
    size = cost_inputs.ami_size()
    (builder,) = json.loads((IMAGE / "ami.json").read_text())["builders"]
    volume = builder["launch_block_device_mappings"][0]["volume_size"]
    assert size.low_gib < size.top_gib <= volume
    tops = [c[2] for c in size.components]
    if None in tops or sum(tops) > volume:
        assert size.top_gib == volume and f"{volume} GiB volume ami.json bakes on" in size.top_source
    lean = estimate("lean", Usage(), "eu-central-1", prices.load(), 0.86)
    (ami,) = [line for line in lean.lines if line.component == "AMI snapshots"]
    assert f"× {size.top_gib:g} GiB (the top of {size.low_gib:.1f}–{size.top_gib:g} GiB" in ami.detail
    assert ami.usd == pytest.approx(lean.profile.amis_kept * size.top_gib * prices.load().usd("ebs.snapshot",
                                                                                              "eu-central-1"))


def test_a_smaller_bake_volume_lowers_the_priced_image(tmp_path, monkeypatch):
    for name in ("ami.json", "ami-components.json"):
        (tmp_path / name).write_text((IMAGE / name).read_text())
    ami = json.loads((tmp_path / "ami.json").read_text())
    ami["builders"][0]["launch_block_device_mappings"][0]["volume_size"] = 20
    (tmp_path / "ami.json").write_text(json.dumps(ami))
    monkeypatch.setattr(cost_inputs, "IMAGE_DIR", tmp_path)
    assert cost_inputs.ami_size().top_gib == 20
    components = json.loads((tmp_path / "ami-components.json").read_text())
    components["components"][0]["gib"] = [2.6, 3.0]  # a base image with a known top: the components' sum is priced
    (tmp_path / "ami-components.json").write_text(json.dumps(components))
    size = cost_inputs.ami_size()
    assert size.top_gib == pytest.approx(sum(c[2] for c in size.components)) and size.top_gib < 20


def test_every_allowed_instance_type_has_a_price():
    table_ = prices.load()
    for template in ("pipeline", "main", "gpu"):
        for name, spec in cfn_yaml.load(CFN / f"{template}.yaml")["Parameters"].items():
            if name.endswith("InstanceType"):
                for instance_type in spec["AllowedValues"]:
                    for region in ("eu-central-1", "us-east-1"):
                        assert table_.ec2_hourly_usd(instance_type, region) > 0, (template, name, instance_type)
