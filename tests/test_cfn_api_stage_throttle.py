"""The stage throttle is one bucket for every caller and is spent before the JWT is checked (API Gateway does the
same). Probed from outside on the local cloud, whose gateway applies the template's limits: a stranger with the API
URL and junk tokens must not lock the owner out with a burst a single client can send."""
from __future__ import annotations

import threading

import pytest
import requests

from tlfif_common import names

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

STRANGER_REQUESTS = 40  # four times the old stage burst (10), well inside one client's reach


def _junk_burst(api_url: str, n: int) -> list[int]:
    statuses: list[int] = []
    barrier = threading.Barrier(n)

    def fire(i: int) -> None:
        with requests.Session() as session:
            barrier.wait()
            answer = session.get(api_url + "/ping", headers={"Authorization": f"Bearer junk.{i}.token"}, timeout=30)
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_a_stranger_with_junk_tokens_does_not_lock_the_owner_out(local_cloud_factory):
    assert STRANGER_REQUESTS < names.API_THROTTLE_BURST
    cloud = local_cloud_factory("--boot-seconds", "1")
    owner = cloud.token("owner")
    assert cloud.api("GET", "/ping", token=owner).status_code == 200  # the router's clients exist
    statuses = _junk_burst(cloud.info["api_url"], STRANGER_REQUESTS)
    assert set(statuses) == {401}, statuses  # refused by the authorizer, not by the shared bucket
    answer = cloud.api("GET", "/ping", token=owner)
    assert answer.status_code == 200 and answer.json()["status"] == "ok"
