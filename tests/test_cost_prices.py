"""THE price table: complete (every price has its region, date, source and wording), packaged, and read right."""
from __future__ import annotations

import configparser
import importlib.util
import json
import os
import re
import subprocess
import sys
import zipfile
from datetime import date
from importlib import resources
from pathlib import Path

import pytest

from tlfif_common import names, prices

ROOT = Path(__file__).resolve().parents[1]
BASES = {"aws", "third-party", "derived"}


@pytest.fixture(scope="module")
def raw():
    return json.loads(resources.files("tlfif_common").joinpath("prices.json").read_text(encoding="utf-8"))


def test_the_table_ships_as_package_data():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["options.package_data"]["tlfif_common"].strip() == "*.json"
    assert resources.files("tlfif_common").joinpath("prices.json").is_file()


def test_the_lambda_zip_carries_the_table_and_the_cost_handlers(tmp_path):
    spec = importlib.util.spec_from_file_location("build_zip", ROOT / "cloud" / "lambda" / "build_zip.py")
    build_zip = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_zip)
    build_zip.build(tmp_path / "router.zip", vendor_deps=False)
    with zipfile.ZipFile(tmp_path / "router.zip") as archive:
        assert "tlfif_common/prices.json" in archive.namelist()
        archive.extractall(tmp_path / "root")
    probe = ("import tlfif_router.cost_reporter, tlfif_router.budget_killer, tlfif_router.cost_route; "
             "from tlfif_common import prices; print(prices.__file__); "
             "print(prices.load().ec2_hourly_usd('g4dn.xlarge', 'eu-central-1'))")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "root"), "PYTHONDONTWRITEBYTECODE": "1"}
    where, price = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                                  timeout=60, check=True, cwd=tmp_path).stdout.split()
    assert where.startswith(str(tmp_path / "root")) and price == "0.658"


def test_every_aws_price_names_region_date_source_and_wording(raw):
    table = prices.load()
    assert table.regions == ["eu-central-1", "us-east-1"]
    for key, item in raw["aws"].items():
        assert item["unit"] and item["what"], key
        assert item["source"].startswith("https://"), key
        regions = set(item["regions"])
        assert regions == {"global"} or regions == set(table.regions), f"{key}: {sorted(regions)}"
        for region, entry in item["regions"].items():
            where = f"{key} {region}"
            assert isinstance(entry["usd"], (int, float)) and entry["usd"] > 0, where
            assert date.fromisoformat(entry["date"]) <= date.fromisoformat(raw["compiled"]), where
            assert entry["basis"] in BASES, where
            assert len(entry["text"]) > 20, where
            if entry["basis"] == "derived":
                assert "x" in entry["text"] or "×" in entry["text"], f"{where}: a derived price says how"


def test_openai_prices_are_dated_and_sourced(raw):
    openai = raw["openai"]
    assert openai["source"].startswith("https://") and date.fromisoformat(openai["date"])
    from app.models.settings import DEFAULT_OPENAI_MODEL

    assert DEFAULT_OPENAI_MODEL in openai["models"]
    for model, p in openai["models"].items():
        assert 0 < p["cached_input"] <= p["input"] < p["output"], model


def test_lookup_by_region_falls_back_to_global_and_refuses_unknown_regions():
    table = prices.load()
    gpu = table.aws("ec2.g4dn.xlarge", "eu-central-1")
    assert (gpu.usd, gpu.region, gpu.unit) == (0.658, "eu-central-1", "instance-hour")
    assert gpu.source == "https://aws.amazon.com/ec2/pricing/on-demand/" and "Frankfurt" in gpu.text
    assert table.ec2_hourly_usd("g4dn.xlarge", "us-east-1") == 0.526
    ce = table.aws("cost_explorer.api_request", "eu-central-1")
    assert (ce.usd, ce.region) == (0.01, "global")
    with pytest.raises(prices.UnknownRegion, match="'mars-1'.*eu-central-1, us-east-1"):
        table.aws("ec2.g4dn.xlarge", "mars-1")
    with pytest.raises(prices.PriceError, match="ec2.p5.48xlarge"):
        table.ec2_hourly_usd("p5.48xlarge", "eu-central-1")


def test_openai_token_cost():
    table = prices.load()
    # gpt-4o-mini: $0.15 in, $0.075 cached in, $0.60 out per 1M tokens.
    # 1,200 prompt tokens of which 200 cached, 300 completion tokens:
    # 1,000 × 0.15/1e6 + 200 × 0.075/1e6 + 300 × 0.60/1e6 = 0.00015 + 0.000015 + 0.00018 = $0.000345
    cost = table.openai_cost_usd("gpt-4o-mini-2024-07-18", prompt_tokens=1200, completion_tokens=300,
                                 cached_tokens=200)
    assert cost == pytest.approx(0.000345)
    assert table.openai_price("GPT-4o-mini").model == "gpt-4o-mini"
    assert table.openai_price("gpt-4o").input == 2.50  # not the longer gpt-4o-mini by accident
    assert table.openai_price("some-future-model") is None
    assert table.openai_cost_usd("some-future-model", prompt_tokens=1, completion_tokens=1) is None


def test_usd_to_eur_from_environment_or_table():
    table = prices.load()
    assert prices.usd_to_eur({}, table) == table.table_usd_to_eur == 0.86
    assert prices.usd_to_eur({names.ENV_USD_TO_EUR: " 0.9123 "}, table) == 0.9123
    for bad in ("abc", "0", "-1", "92"):
        with pytest.raises(ValueError, match=names.ENV_USD_TO_EUR):
            prices.usd_to_eur({names.ENV_USD_TO_EUR: bad}, table)


def test_names_used_by_the_cost_parts():
    assert names.METRIC_CURRENT_SPEND_EUR == "CurrentSpendEUR"
    assert names.METRIC_BUDGET_STOPS == "BudgetStops"
    assert re.fullmatch(r"/tl-fif/cost/[a-z_]+", names.SSM_COST_MONTH_TO_DATE)
    assert names.COST_POLL_HOURS == 24
