"""Fault suite, processes: signals to `tl-fif cloud up`, its Redis and its watcher — from outside (signals, HTTP,
/proc and the CLI only). Each test runs its own local cloud.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
import requests
from support.local_cloud import RELAXED_THROTTLE, descendants, pid_running

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

LEFTOVER_SECONDS = 15
PROMPT = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen"


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(interval)


def read_result(url: str) -> dict | None:
    answer = requests.get(url, timeout=10)
    return answer.json() if answer.status_code == 200 else None


@pytest.mark.parametrize("sig, times", [(signal.SIGTERM, 1), (signal.SIGKILL, 1), (signal.SIGTERM, 100)],
                         ids=["SIGTERM", "SIGKILL", "SIGTERM-burst"])
def test_cloud_up_leaves_no_process_behind_whatever_its_death(local_cloud_factory, sig, times):
    """A burst of SIGTERMs (a second one landing while the first one's handler runs) must not leave the cloud
    waiting on a lock for ever."""
    cloud = local_cloud_factory("--boot-seconds", "1", *RELAXED_THROTTLE)
    token = cloud.token("tree-user")
    assert cloud.api("POST", "/infer", token=token, json={"prompt": "wake up", "idle": 5}).status_code == 202
    wait_until(cloud.watcher_pids, 20, "the watcher starts")
    tree = cloud.descendants()
    assert any("redis-server" in cmd for cmd in tree.values()) and cloud.watcher_pids(), tree
    port = urlsplit(cloud.info["api_url"]).port

    for _ in range(times):
        try:
            cloud.proc.send_signal(sig)
        except ProcessLookupError:
            break
    cloud.proc.wait(LEFTOVER_SECONDS)
    # After a SIGKILL the children are re-parented: look for the pids seen before, not below the dead parent.
    wait_until(lambda: not any(pid_running(pid) for pid in tree), LEFTOVER_SECONDS,
               f"every process of the tree ends after {sig.name} ({tree})")

    # A later `cloud up` is not confused by what the dead one left: its state file, its port.
    env = dict(os.environ, TLFIF_LOCAL_STATE=str(cloud.state_file))
    token_cli = subprocess.run([sys.executable, "-m", "tlfif_local", "token"], env=env, capture_output=True,
                               text=True, timeout=60)
    assert token_cli.returncode == 2 and "no local cloud is running" in token_cli.stderr, token_cli.stderr
    again = local_cloud_factory("--port", str(port), "--boot-seconds", "1", *RELAXED_THROTTLE)
    assert again.api("GET", "/ping", token=again.token("tree-user")).status_code == 200


def test_redis_death_is_a_json_503_then_redis_comes_back_with_its_jobs(local_cloud_factory):
    # The GPU never finishes booting here, so queued jobs stay in the queue for the whole test.
    cloud = local_cloud_factory("--boot-seconds", "600", *RELAXED_THROTTLE)
    token, observer = cloud.token("redis-user"), cloud.token("redis-observer")
    for n in range(2):
        sent = cloud.api("POST", "/infer", token=token, json={"prompt": f"before the crash {n}", "idle": 5})
        assert sent.status_code == 202, sent.text
    assert cloud.api("GET", "/ping", token=observer).json()["queue_depth"] == 2
    [redis_pid] = [pid for pid, cmd in cloud.descendants().items() if "redis-server" in cmd]

    os.kill(redis_pid, signal.SIGKILL)
    killed = time.monotonic()
    queued = 2
    while True:  # /infer needs the queue: a JSON 503 while Redis is down (a 202 only if it is already back)
        answer = cloud.api("POST", "/infer", token=token, json={"prompt": "during the outage", "idle": 5})
        if answer.status_code != 202:
            break
        queued += 1
        assert time.monotonic() - killed <= 10, "no 503 within 10 s of Redis's death"
        time.sleep(0.05)
    assert time.monotonic() - killed <= 10
    assert answer.status_code == 503 and answer.headers["Content-Type"].startswith("application/json")
    assert answer.json()["error"]
    assert cloud.proc.poll() is None

    back = wait_until(lambda: (lambda a: a if a.status_code == 200 and a.json()["queue_depth"] is not None
                               else None)(cloud.api("GET", "/ping", token=observer)),
                      20, "service resumes once Redis is back", interval=0.25)
    assert back.json()["queue_depth"] == queued  # the jobs queued before the crash are still there
    assert not pid_running(redis_pid)
    after = cloud.api("POST", "/infer", token=token, json={"prompt": "after the crash", "idle": 5})
    assert after.status_code == 202, after.text
    assert cloud.api("GET", "/ping", token=observer).json()["queue_depth"] == queued + 1
    assert cloud.proc.poll() is None


def test_a_watcher_killed_mid_answer_gives_exactly_one_complete_result(local_cloud_factory, monkeypatch):
    monkeypatch.setenv("TLFIF_LEASE_SECONDS", "2")  # the crashed watcher's job is reaped after 2 s, not 15
    cloud = local_cloud_factory("--boot-seconds", "1", "--echo-delay-ms", "150", *RELAXED_THROTTLE)
    token = cloud.token("crash-user")
    sent = cloud.api("POST", "/infer", token=token, json={"prompt": PROMPT, "idle": 5})
    assert sent.status_code == 202, sent.text
    url = sent.json()["result_url"]
    partial = wait_until(lambda: (lambda d: d if d and d["status"] == "running" and d["text"] else None)(
        read_result(url)), 30, "a partial answer")
    [watcher] = cloud.watcher_pids()
    os.kill(watcher, signal.SIGKILL)

    final = wait_until(lambda: (lambda d: d if d and d["status"] not in ("queued", "running") else None)(
        read_result(url)), 40, "a final result after the watcher's crash", interval=0.1)
    assert final["status"] == "done", final
    assert final["text"].count(PROMPT) == 1 and final["text"].startswith("[echo engine"), final["text"]
    assert len(final["text"]) >= len(partial["text"])
    time.sleep(1.5)  # nothing rewrites a final result (no second, duplicate answer lands later)
    assert read_result(url) == final


EMBEDDING_APP = """
import sys, time
from tlfif_local.embedded import start_in_background
handle = start_in_background(port=0, boot_seconds=1)
print(handle.pid, flush=True)
time.sleep(600)
"""


def test_an_app_killed_with_its_embedded_cloud_leaves_no_process_behind(tmp_path):
    env = dict(os.environ, TLFIF_LOCAL_STATE=str(tmp_path / "state.json"))
    app = subprocess.Popen([sys.executable, "-c", EMBEDDING_APP], stdout=subprocess.PIPE, text=True, env=env)
    try:
        cloud_pid = int(app.stdout.readline())
        tree = wait_until(lambda: (lambda t: t if any("redis-server" in c for c in t.values()) else None)(
            descendants(app.pid)), 20, "the embedded cloud's redis-server runs")
        assert cloud_pid in tree
        app.kill()
        app.wait(10)
        wait_until(lambda: not any(pid_running(pid) for pid in tree), LEFTOVER_SECONDS,
                   f"every process of the embedded cloud ends after the app's SIGKILL ({tree})")
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
