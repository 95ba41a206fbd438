"""Faults from outside: what the QA run sent the local cloud's API over HTTP, as a client would.

Bad bodies are a JSON 400 naming the field (they were 500 "internal error"); another user's job is answered as an
id that never existed, whatever its state (a finished one answered 409, telling a stranger it had existed).
"""
from __future__ import annotations

import time

import pytest
import requests

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

HUGE_INT = "9" * 4301  # one digit more than Python converts between int and str
UNKNOWN_ID = "0b5d3c1e-2f4a-4b6c-8d7e-9f0a1b2c3d4e"


def post_raw(cloud, path: str, token: str, raw: str) -> requests.Response:
    return cloud.api("POST", path, token=token, data=raw.encode("ascii"),
                     headers={"Content-Type": "application/json"})


def assert_refused(answer: requests.Response, status: int, field: str) -> None:
    assert answer.status_code == status, (answer.status_code, answer.text[:300])
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), str) and body.get("field") == field, body


@pytest.mark.parametrize("path, raw, field", [
    ("/infer", f'{{"prompt": "hi", "idle": {HUGE_INT}}}', "idle"),
    ("/keepwarm", f'{{"on": true, "max_minutes": {HUGE_INT}}}', "max_minutes"),
    ("/infer", '{"prompt": "\\ud800", "idle": 5}', "prompt"),
    ("/infer", '{"prompt": "hi", "idle": 5, "messages": [{"role": "user", "content": "\\ud800"}]}',
     "messages[0].content"),
])
def test_the_reported_500s_are_400s_naming_the_field(local_cloud, path, raw, field):
    token = local_cloud.token("fault-bad-input")
    assert_refused(post_raw(local_cloud, path, token, raw), 400, field)
    time.sleep(0.25)  # stay under the per-user limit of the shared cloud


def wait_final(url: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    with requests.Session() as http:
        while True:
            answer = http.get(url, timeout=10)
            if answer.status_code == 200 and answer.json().get("status") in ("done", "error", "cancelled"):
                return answer.json()
            assert time.monotonic() < deadline, f"no final result in {timeout} s"
            time.sleep(0.2)


def test_another_users_finished_job_is_answered_as_no_such_job(local_cloud):
    owner, stranger = local_cloud.token("fault-owner"), local_cloud.token("fault-stranger")
    sent = local_cloud.api("POST", "/infer", token=owner, json={"prompt": "count to three", "idle": 5})
    assert sent.status_code == 202, sent.text
    job_id = sent.json()["id"]
    assert wait_final(sent.json()["result_url"])["status"] == "done"

    unknown = local_cloud.api("POST", f"/cancel/{UNKNOWN_ID}", token=stranger)
    theirs = local_cloud.api("POST", f"/cancel/{job_id}", token=stranger)
    assert unknown.status_code == 404
    assert (theirs.status_code, theirs.json()) == (unknown.status_code, unknown.json())
    time.sleep(0.25)
    assert local_cloud.api("POST", f"/cancel/{job_id}", token=owner).status_code == 409



@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_not_sent_as_json_is_400_naming_the_content_type(local_cloud, content_type):
    answer = local_cloud.api("POST", "/infer", token=local_cloud.token("fault-content-type"),
                             data=b'{"prompt": "hi", "idle": 5}', headers={"Content-Type": content_type})
    assert_refused(answer, 400, "content-type")
    time.sleep(0.25)
