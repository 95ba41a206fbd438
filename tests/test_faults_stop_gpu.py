"""Fault suite, Stop GPU: the user's kill switch ends the answers it interrupts — from outside (HTTP only).

POST /stop while an answer is generated and another waits behind it: both end `cancelled` "GPU stopped" within
15 s (the first with the text so far), and a prompt sent after the stop restarts the GPU and is answered.
"""
from __future__ import annotations

import time

import pytest
import requests
from support.local_cloud import RELAXED_THROTTLE

from tlfif_common import api

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

STOP_ENDS_WITHIN_S = 15
PROMPT = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"


def read_result(url: str) -> dict | None:
    answer = requests.get(url, timeout=10)
    return answer.json() if answer.status_code == 200 else None


def wait_result(url: str, accept, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        doc = read_result(url)
        if doc and accept(doc):
            return doc
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s (last {doc})"
        time.sleep(0.1)


def test_stop_gpu_ends_the_answer_it_interrupts_and_the_queued_one(local_cloud_factory):
    cloud = local_cloud_factory("--boot-seconds", "1", "--echo-delay-ms", "150", "--user-rps", "1000",
                                *RELAXED_THROTTLE)
    token = cloud.token("stop-user")
    sent = [cloud.api("POST", "/infer", token=token, json={"prompt": f"{PROMPT} {n}", "idle": 5}) for n in (1, 2)]
    assert all(s.status_code == 202 for s in sent), [s.text for s in sent]
    generating, queued = (s.json()["result_url"] for s in sent)
    partial = wait_result(generating, lambda d: d["status"] == api.STATUS_RUNNING and d["text"], 30,
                          "a partial answer")

    assert cloud.api("POST", "/stop", token=token).status_code == 200
    stopped_at = time.monotonic()
    ended = wait_result(generating, lambda d: d["status"] in api.FINAL_STATUSES, STOP_ENDS_WITHIN_S,
                        "the interrupted answer's final result")
    waiting = wait_result(queued, lambda d: d["status"] in api.FINAL_STATUSES,
                          STOP_ENDS_WITHIN_S - (time.monotonic() - stopped_at), "the queued job's final result")

    for doc in (ended, waiting):
        assert doc["status"] == api.STATUS_CANCELLED, doc
        assert doc["error"] == {"code": api.ERR_GPU_STOPPED, "message": api.GPU_STOPPED_MESSAGE}, doc
    assert ended["text"].startswith(partial["text"]) and f"{PROMPT} 1" not in ended["text"], ended["text"]
    assert waiting["text"] == ""
    cloud.wait_for_gpu(token, {"stopped"}, 30)
    assert cloud.api("GET", "/ping", token=token).json()["queue_depth"] == 0

    # A prompt after the stop is the user asking again: it restarts the GPU and is answered.
    again = cloud.api("POST", "/infer", token=token, json={"prompt": "after the stop", "idle": 5})
    assert again.status_code == 202 and again.json()["status"] == api.INFER_STARTING, again.text
    done = wait_result(again.json()["result_url"], lambda d: d["status"] in api.FINAL_STATUSES, 40, "the new answer")
    assert done["status"] == api.STATUS_DONE and done["text"].endswith("after the stop"), done
