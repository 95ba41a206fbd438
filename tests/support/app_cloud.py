"""The app's tests run against the real local cloud: one for the session, seen through a fresh FaultProxy per test.

    def test_x(api):                            # registered in conftest.py
        api.endpoints()                         # what the app is given: the API through the proxy, the real issuer
        api.fail("POST", "/infer", 502)         # FaultProxy's scripting, and its record of every call
        api.stop_gpu(); api.boot_gpu(); api.ready_gpu()
        api.keep_warm_until(); api.set_month_cost(1.25, [0.5, 0.75])
        api.reply(prompt)                       # what the echo engine answers

The cloud boots its GPU in 2 s (long enough to see "starting", short enough for a suite) and its router's per-user
limit is raised: the app's pollers run at test speed. Each test leaves the GPU as it likes; the next one asks for
the state it needs.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import redis

from support.fault_proxy import FaultProxy
from support.local_cloud import RELAXED_THROTTLE, CloudProcess
from tlfif_common.workqueue import WorkQueue
from tlfif_watcher.engines.echo import echo_text

BOOT_S = 2.0
APP_CLOUD_ARGS = ["--boot-seconds", str(BOOT_S), "--echo-delay-ms", "20", "--user-rps", "1000", *RELAXED_THROTTLE]
OBSERVER = "test-observer"  # the tests' own user for /ping, /stop, /keepwarm; the app signs in as local-user


class CloudApi(FaultProxy):
    """The API's proxy; `issuer` and `results` are proxies in front of the OIDC issuer and the result objects (S3)."""

    def __init__(self, cloud: CloudProcess):
        state = cloud.state()
        self.cloud = cloud
        self.results = FaultProxy(state["aws_endpoint_url"]).start()
        super().__init__(cloud.info["api_url"], rewrite={state["aws_endpoint_url"]: self.results.url})
        self.issuer = FaultProxy(cloud.info["issuer"]).start()
        self.info = dict(cloud.info, api_url=self.url,
                         **{key: cloud.info[key].replace(cloud.info["issuer"], self.issuer.url)
                            for key in ("authorize_url", "token_url", "jwks_url")})

    def stop(self) -> None:
        super().stop()
        self.issuer.stop()
        self.results.stop()

    def grants(self, grant_type: str) -> list:
        """POST /token calls of this grant type ("authorization_code": sign-ins, "refresh_token": refreshes)."""
        return [c for c in self.issuer.calls_to("POST", urlsplit(self.info["token_url"]).path)
                if parse_qs(c.body or "").get("grant_type") == [grant_type] and c.status == 200]

    def issued(self) -> list[str]:
        """Every token the issuer handed out through the proxy."""
        return [value for call in self.grants("authorization_code") + self.grants("refresh_token")
                for key, value in call.answer.items() if key.endswith("_token")]

    def refuse_refresh(self) -> None:
        """The issuer's next token request is refused as an expired or revoked refresh token is."""
        self.issuer.fail("POST", urlsplit(self.info["token_url"]).path, 400, error="invalid_grant")

    def endpoints(self, **changes):
        from dataclasses import replace

        from app.services.endpoints import FixedEndpoint

        return FixedEndpoint(replace(self.cloud.endpoint(self.info), **changes))

    @staticmethod
    def reply(prompt: str) -> str:
        return echo_text(prompt)

    # --- the GPU, as the tests' own user sees it (straight to the cloud, not through the proxy) ----------------
    def _token(self) -> str:
        return self.cloud.token(user=OBSERVER)

    def gpu_state(self) -> str:
        return self.cloud.gpu_state(self._token())

    def stop_gpu(self) -> None:
        if self.gpu_state() != "stopped":
            assert self.cloud.api("POST", "/stop", token=self._token()).status_code == 200
            self.cloud.wait_for_gpu(self._token(), {"stopped"}, 30)

    def boot_gpu(self) -> None:
        """From stopped: a job of the observer's starts the instance; returns while it boots."""
        self.stop_gpu()
        answer = self.cloud.api("POST", "/infer", token=self._token(), json={"prompt": "boot", "idle": 5})
        assert answer.status_code == 202 and answer.json()["status"] == "starting", answer.text

    def ready_gpu(self) -> None:
        if self.gpu_state() in ("stopped", "stopping"):
            self.boot_gpu()
        self.cloud.wait_for_gpu(self._token(), {"ready"}, 30)

    # --- state only Redis and moto hold ------------------------------------------------------------------------
    def _aws(self, service: str):
        state = self.cloud.state()
        return boto3.client(service, endpoint_url=state["aws_endpoint_url"], region_name=self.cloud.info["region"],
                            **{key.lower(): value for key, value in state["aws_credentials"].items()})

    def keep_warm_until(self) -> int | None:
        client = redis.Redis.from_url(self.cloud.state()["redis_url"])
        try:
            return WorkQueue(client).keep_warm_until()
        finally:
            client.close()

    def keep_warm_off(self) -> None:
        answer = self.cloud.api("POST", "/keepwarm", token=self._token(), json={"on": False})
        assert answer.status_code == 200, answer.text

    def cold_start_eta(self) -> int:
        """The ETA /ping answers now, which /infer's `starting` repeats: the median of the boots the cloud's watcher
        recorded (measured: the watcher's start included), the configured boot time until one exists."""
        answer = self.cloud.api("GET", "/ping", token=self._token())
        assert answer.status_code == 200, answer.text
        return answer.json()["eta"]

    def boot_samples(self) -> str | None:
        """The cold-start durations the watchers recorded (names.SSM_BOOT_SECONDS, a JSON list), or None."""
        from tlfif_common import names

        ssm = self._aws("ssm")
        try:
            return ssm.get_parameter(Name=names.SSM_BOOT_SECONDS)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            return None

    def set_boot_samples(self, value: str | None) -> None:
        """Replace (None: remove) the recorded cold starts /ping's `eta` is the median of."""
        from tlfif_common import names

        ssm = self._aws("ssm")
        if value is not None:
            ssm.put_parameter(Name=names.SSM_BOOT_SECONDS, Value=value, Type="String", Overwrite=True)
            return
        try:
            ssm.delete_parameter(Name=names.SSM_BOOT_SECONDS)
        except ssm.exceptions.ParameterNotFound:
            pass

    def set_month_cost(self, month_eur: float, daily: list[float]) -> list[dict]:
        """Publishes figures as the cost reporter does (its own `publish`, into the cloud's moto); the daily list."""
        from tlfif_common import prices
        from tlfif_router.cost_reporter import Spend, publish

        now = datetime.now(timezone.utc)
        days = [{"date": f"{now:%Y-%m}-{i + 1:02d}", "eur": eur} for i, eur in enumerate(daily)]
        spend = Spend(month=f"{now:%Y-%m}", as_of=f"{now:%Y-%m-%dT%H:%M:%SZ}", month_to_date_eur=month_eur,
                      currency="USD", usd_to_eur=prices.usd_to_eur(), daily=days)
        publish(spend, cloudwatch=self._aws("cloudwatch"), ssm=self._aws("ssm"))
        return days

    def clear_month_cost(self) -> None:
        from tlfif_common import names

        ssm = self._aws("ssm")
        try:
            ssm.delete_parameter(Name=names.SSM_COST_MONTH_TO_DATE)
        except ssm.exceptions.ParameterNotFound:
            pass

    def put_result(self, result) -> str:
        """Writes a result object where the watcher writes it (its own ResultStore); a presigned URL to read it."""
        from tlfif_common import names
        from tlfif_watcher.result_store import ResultStore

        s3 = self._aws("s3")
        store = ResultStore(s3, names.LOCAL_RESPONSES_BUCKET)
        bucket, key = store.location(result.id)
        store.put((bucket, key), result)
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=300)
        return url.replace(self.cloud.state()["aws_endpoint_url"], self.results.url)

    def result_of(self, job_id: str) -> dict:
        """The job's result object now, read from the result_url its /infer answer gave."""
        [infer] = [c for c in self.calls_to("POST", "/infer") if (c.answer or {}).get("id") == job_id]
        return self.result(infer.answer["result_url"])

    def _direct(self, result_url: str) -> str:
        """The tests' own reads go straight to S3: the results proxy records only what the app reads."""
        return result_url.replace(self.results.url, self.cloud.state()["aws_endpoint_url"])

    def result(self, result_url: str) -> dict:
        return json.loads(self.cloud.http.get(self._direct(result_url), timeout=10).content)

    def wait_result(self, result_url: str, statuses: set[str], timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            answer = self.cloud.http.get(self._direct(result_url), timeout=10)
            if answer.status_code == 200 and answer.json()["status"] in statuses:
                return answer.json()
            if time.monotonic() > deadline:
                raise AssertionError(f"result never reached {statuses}: {answer.status_code} {answer.text[:200]}")
            time.sleep(0.05)


@pytest.fixture(scope="session")
def app_cloud(tmp_path_factory):
    cloud = CloudProcess.start(APP_CLOUD_ARGS, tmp_path_factory.mktemp("app-cloud"))
    yield cloud
    cloud.stop()


@pytest.fixture
def api(app_cloud):
    """The session's local cloud behind a fresh fault proxy; keep-warm off and no cost figures at the start."""
    with CloudApi(app_cloud) as proxy:
        proxy.keep_warm_off()
        proxy.clear_month_cost()
        yield proxy
