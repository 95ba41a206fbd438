"""The wire contract (`tlfif_common.api`) is the one the template deploys, the router serves and the gateway routes;
the result object reads back what the watcher writes and refuses what is not one."""
from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

from tlfif_common import api
from tlfif_local import gateway
from tlfif_router.routes import ROUTES

API_TEMPLATE = Path(__file__).resolve().parent.parent / "cloud" / "cfn" / "api.yaml"


def template_route_keys() -> list[str]:
    template = cfn_yaml.load(str(API_TEMPLATE))
    return [resource["Properties"]["RouteKey"] for resource in template["Resources"].values()
            if resource["Type"] == "AWS::ApiGatewayV2::Route"]


def test_the_api_template_deploys_exactly_the_contract_routes():
    keys = template_route_keys()
    assert len(keys) == len(set(keys))
    assert set(keys) == set(api.ROUTE_KEYS)


def test_the_router_serves_every_contract_route_and_nothing_else():
    assert set(ROUTES) == set(api.ROUTE_KEYS)


def test_the_gateway_emulation_routes_the_contract_routes():
    assert [route.key for route in gateway.ROUTES] == list(api.ROUTE_KEYS)
    route, params, _ = gateway.match_route("POST", "/cancel/abc")
    assert route.key == api.CANCEL and params == {"id": "abc"}


def test_every_ec2_state_maps_to_a_ping_state():
    assert set(api.GPU_STATE_OF_EC2.values()) <= set(api.GPU_STATES)
    assert api.GPU_READY not in api.GPU_STATE_OF_EC2.values()  # only the router's readiness check says ready


def test_error_body_names_the_problem_and_keeps_extras():
    assert api.error_body("idle is required", field="idle") == {"error": "idle is required", "field": "idle"}


def test_a_result_round_trips_through_its_dict():
    result = api.Result("j1", api.STATUS_ERROR, text="so far", tokens=3, ttft_ms=12, latency_ms=40, model="m",
                        error=api.result_error(api.ERR_ENGINE, "it broke"), turns_dropped=2)
    assert api.Result.from_dict(result.to_dict()) == result
    assert list(result.to_dict()) == list(api.RESULT_FIELDS)
    assert result.final and not api.Result("j1", api.STATUS_RUNNING).final


def test_a_result_error_without_message_repeats_its_code():
    assert api.Result("j", api.STATUS_ERROR, error=api.result_error(api.ERR_EXPIRED)).to_dict()["error"] == {
        "code": api.ERR_EXPIRED, "message": api.ERR_EXPIRED}
    assert api.result_error(None) is None


def test_a_sparse_result_reads_with_defaults():
    result = api.Result.from_dict({"id": "j", "status": "running", "text": None, "tokens": None})
    assert (result.text, result.tokens, result.ttft_ms, result.error, result.turns_dropped) == ("", 0, None, None, 0)


@pytest.mark.parametrize("doc, words", [
    ([], "JSON object"),
    ({"status": "finished"}, "status"),
    ({"status": "done", "text": 5}, "text"),
    ({"status": "done", "tokens": "7"}, "tokens"),
    ({"status": "done", "tokens": True}, "tokens"),
    ({"status": "done", "latency_ms": "fast"}, "latency_ms"),
    ({"status": "error", "error": "boom"}, "error"),
    ({"status": "done", "turns_dropped": -1}, "turns_dropped"),
    ({"status": "done", "turns_dropped": "2"}, "turns_dropped"),
])
def test_what_is_not_a_result_is_refused_by_name(doc, words):
    with pytest.raises(ValueError, match=words):
        api.Result.from_dict(doc)


def test_is_final_reads_a_plain_document():
    assert api.is_final({"status": "cancelled"}) and not api.is_final({"status": "running"})
    assert not api.is_final(None) and not api.is_final({})
