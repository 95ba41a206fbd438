"""Fault suite, load: a burst of simultaneous connections and concurrent users, against the running local cloud over
HTTP only. No timing assertions (bench/gateway_burst.py prints latencies).
"""
from __future__ import annotations

import http.client
import json
import secrets
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

BURST = 128
USERS = 16


def test_a_burst_of_128_connections_is_all_accepted_and_answered(local_cloud):
    api = urlsplit(local_cloud.info["api_url"])
    tokens = [local_cloud.token(f"burst-{n}") for n in range(USERS)]
    barrier = threading.Barrier(BURST)
    outcomes: list = [None] * BURST

    def client(i: int) -> None:
        barrier.wait()
        conn = http.client.HTTPConnection(api.hostname, api.port, timeout=60)
        try:
            conn.request("GET", "/ping", headers={"Authorization": f"Bearer {tokens[i % USERS]}"})
            answer = conn.getresponse()
            outcomes[i] = (answer.status, answer.getheader("Content-Type"), answer.read())
        except (OSError, http.client.HTTPException) as err:
            outcomes[i] = (type(err).__name__, None, b"")
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    statuses = [o[0] if o else "no answer" for o in outcomes]
    assert all(status in (200, 429) for status in statuses), sorted(map(str, statuses))
    assert statuses.count(200) >= USERS  # every user got through at least once; the rest is the per-user limit
    for status, content_type, body in outcomes:
        assert content_type == "application/json" and (status == 200 or "error" in json.loads(body))


def test_concurrent_users_each_see_only_their_own_answer(local_cloud):
    users = 8
    markers = {f"cross-{n}": f"marker-{secrets.token_hex(6)}" for n in range(users)}
    finals: dict[str, dict] = {}
    errors: list[str] = []
    barrier = threading.Barrier(users)

    def user(name: str) -> None:
        token = local_cloud.token(name)
        with requests.Session() as http:
            barrier.wait()
            sent = http.post(local_cloud.info["api_url"] + "/infer", timeout=30, headers={
                "Authorization": f"Bearer {token}"}, json={"prompt": f"echo {markers[name]} please", "idle": 5})
            if sent.status_code != 202:
                errors.append(f"{name}: {sent.status_code} {sent.text[:200]}")
                return
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                got = http.get(sent.json()["result_url"], timeout=10)
                if got.status_code == 200 and got.json()["status"] in ("done", "error", "cancelled"):
                    finals[name] = got.json()
                    return
                time.sleep(0.1)
            errors.append(f"{name}: no final result in 60 s")

    threads = [threading.Thread(target=user, args=(name,)) for name in markers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not errors, errors
    for name, doc in finals.items():
        assert doc["status"] == "done", doc
        assert markers[name] in doc["text"]
        assert not any(other in doc["text"] for who, other in markers.items() if who != name), (name, doc["text"])
    assert set(finals) == set(markers)
