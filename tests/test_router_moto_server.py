"""The router exactly as the local cloud runs it: configuration and clients built by the handler itself from the
environment, AWS reached over HTTP at AWS_ENDPOINT_URL (moto's server), the result fetched with a plain GET."""
from __future__ import annotations

import json

import pytest
import requests

from tlfif_common import names
from tlfif_common import redis_keys as keys
from tlfif_router import handler as router

from support.router_cloud import SERVICES, SUB, create_gpu_cloud, invoke, load_event, router_env

ETA = names.BOOT_ETA_SECONDS  # /ping's cold-start ETA while no boot has been recorded

pytestmark = pytest.mark.timeout(60)


def test_handler_builds_its_own_clients_and_result_url_fetches_over_http(moto_endpoint, moto_clients, redis_url,
                                                                          redis_client, monkeypatch):
    clients = {service: moto_clients(service) for service in SERVICES}
    instance_id = create_gpu_cloud(clients)
    clients["ec2"].stop_instances(InstanceIds=[instance_id])
    router_env(monkeypatch, redis_url=redis_url, instance_id=instance_id)
    monkeypatch.setenv(names.ENV_AWS_ENDPOINT_URL, moto_endpoint)
    router.reset_deps()  # as in a fresh execution environment
    try:
        answer = invoke(load_event("infer", body={"prompt": "hi", "idle": 2}))
        assert answer.status == 202 and answer.body["status"] == "starting", answer
        state = clients["ec2"].describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        assert state["State"]["Name"] == "running"
        assert redis_client.llen(keys.PENDING) == 1

        url = answer.body["result_url"]
        assert url.startswith(f"{moto_endpoint}/{names.LOCAL_RESPONSES_BUCKET}/{answer.body['id']}.json?")
        assert requests.get(url, timeout=5).status_code == 404
        result = {"id": answer.body["id"], "status": "done", "text": "hello"}
        clients["s3"].put_object(Bucket=names.LOCAL_RESPONSES_BUCKET, Key=f"{answer.body['id']}.json",
                                 Body=json.dumps(result).encode())
        assert requests.get(url, timeout=5).json() == result

        item = clients["dynamodb"].get_item(TableName=names.SESSIONS_TABLE, Key={names.SESSIONS_KEY: {"S": SUB}})
        assert item["Item"]["instance_id"] == {"S": instance_id}
        metrics = {m["MetricName"] for m in clients["cloudwatch"].list_metrics(
            Namespace=names.METRICS_NAMESPACE)["Metrics"]}
        assert metrics == {names.METRIC_REQUESTS, names.METRIC_COLD_STARTS}

        assert invoke(load_event("ping")).body == {"status": "ok", "gpu": "running", "queue_depth": 1, "eta": ETA}
        assert invoke(load_event("stop")).body == {"status": "stopping"}
        assert invoke(load_event("ping")).body["gpu"] == "stopped"
    finally:
        router.reset_deps()
