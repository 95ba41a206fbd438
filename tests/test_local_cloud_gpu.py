"""Local cloud: the GPU lifecycle end to end — cold start, progressive result, queueing, /stop, idle expiry,
SIGTERM — through the API and the presigned result URL only (processes are looked up in /proc).
Each test runs its own local cloud: it needs the GPU stopped at the start.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from support.fake_openai import FakeOpenAI
from support.local_cloud import RELAXED_THROTTLE, pid_running, result_docs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

BOOT_SECONDS = 1.0
ECHO_DELAY_MS = 60
PROMPT = "please tell me a story about a llama who learned to cook pasta on a rainy tuesday"


def poll_result(url: str, timeout: float) -> tuple[dict, list[dict]]:
    """Read the result object until it is done or failed: (that doc, every distinct doc seen)."""
    seen = result_docs(url, timeout, until=("done", "error"))
    return seen[-1], seen


def test_cold_start_progressive_result_queue_and_stop(local_cloud_factory):
    cloud = local_cloud_factory("--boot-seconds", str(BOOT_SECONDS), "--echo-delay-ms", str(ECHO_DELAY_MS),
                                *RELAXED_THROTTLE)
    token = cloud.token("gpu-user")
    observer = cloud.token("gpu-observer")  # /ping polling has its own per-user budget
    assert cloud.gpu_state(observer) == "stopped"
    assert cloud.watcher_pids() == []

    first = cloud.api("POST", "/infer", token=token, json={"prompt": PROMPT, "idle": 5})
    sent = time.monotonic()
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["status"] == "starting" and body["id"] and isinstance(body["eta"], int)
    state = cloud.gpu_state(observer)
    if time.monotonic() - sent < BOOT_SECONDS:  # (a very slow machine may already be past the boot)
        assert state in ("pending", "running")

    doc, seen = poll_result(body["result_url"], timeout=BOOT_SECONDS + 5)
    took_first = time.monotonic() - sent
    assert took_first <= BOOT_SECONDS + 5
    assert doc["status"] == "done" and doc["id"] == body["id"]
    assert PROMPT in doc["text"] and doc["text"].startswith("[echo engine")
    running = [d["text"] for d in seen if d["status"] == "running"]
    assert len(set(running)) >= 2, f"the result should grow over several reads, saw {running}"
    texts = running + [doc["text"]]
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:], strict=False)), texts

    assert cloud.gpu_state(observer) == "ready"
    [watcher] = cloud.watcher_pids()

    second = cloud.api("POST", "/infer", token=token, json={"prompt": "and another one", "idle": 5})
    sent = time.monotonic()
    assert second.status_code == 202, second.text
    assert second.json()["status"] == "queued"
    doc2, _ = poll_result(second.json()["result_url"], timeout=10)
    assert doc2["status"] == "done" and "and another one" in doc2["text"]
    assert time.monotonic() - sent < took_first

    stop = cloud.api("POST", "/stop", token=token)
    assert stop.status_code == 200, stop.text
    assert stop.json()["status"] == "stopping"
    stopped_at = time.monotonic()
    cloud.wait_for_gpu(observer, {"stopped"}, timeout=10)
    assert time.monotonic() - stopped_at <= 10
    deadline = time.monotonic() + 5
    while pid_running(watcher):
        assert time.monotonic() < deadline, f"watcher pid {watcher} still runs after the stop"
        time.sleep(0.05)
    assert cloud.watcher_pids() == []


def test_engine_url_answers_and_idle_expiry_stops_the_gpu_on_its_own(local_cloud_factory):
    """`--engine URL`: the watcher talks to an OpenAI-compatible server; a shortened minute: it stops itself."""
    reply = "Hello from an OpenAI-compatible server"
    with FakeOpenAI(reply=reply, chunk_delay=0.01) as engine:
        cloud = local_cloud_factory("--boot-seconds", str(BOOT_SECONDS), "--minute-seconds", "0.5",
                                    "--engine", engine.base_url, *RELAXED_THROTTLE)
        token = cloud.token("idle-user")
        answer = cloud.api("POST", "/infer", token=token, json={"prompt": "say hello", "idle": 1})
        assert answer.status_code == 202 and answer.json()["status"] == "starting", answer.text
        doc, _ = poll_result(answer.json()["result_url"], timeout=BOOT_SECONDS + 5)
        assert doc["status"] == "done" and doc["text"] == reply, doc
        assert engine.chat_requests[-1].body["messages"][-1] == {"role": "user", "content": "say hello"}
        watchers = cloud.watcher_pids()
        seen = cloud.wait_for_gpu(token, {"stopped"}, timeout=15, interval=0.3)  # 1 "minute" = 0.5 s after the job
        assert seen[-1] == "stopped"
        assert _eventually_gone(watchers)
        assert cloud.watcher_pids() == []


def _eventually_gone(pids: list[int], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(pid_running(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_sigterm_stops_everything_it_started(local_cloud_factory):
    cloud = local_cloud_factory("--boot-seconds", "0.5", *RELAXED_THROTTLE)
    token = cloud.token("term-user")
    answer = cloud.api("POST", "/infer", token=token, json={"prompt": "hello", "idle": 5})
    assert answer.status_code == 202, answer.text
    poll_result(answer.json()["result_url"], timeout=10)
    children = cloud.descendants()
    assert any("redis-server" in cmd for cmd in children.values()), children
    assert any("tlfif_watcher" in cmd for cmd in children.values()), children

    assert cloud.stop(signal.SIGTERM, timeout=15) == 0
    assert _eventually_gone(list(children)), {pid: cmd for pid, cmd in children.items() if pid_running(pid)}
    assert not cloud.state_file.exists()  # `cloud token` now says that none is running


def test_missing_redis_server_is_one_line_naming_the_package(tmp_path):
    env = dict(os.environ, TLFIF_REDIS_SERVER=str(tmp_path / "no-redis-server"),
               TLFIF_LOCAL_STATE=str(tmp_path / "state.json"))
    done = subprocess.run([sys.executable, "-m", "tlfif_local", "up"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "redis-server" in lines[0] and "install" in lines[0], done.stderr


def test_ping_shows_every_gpu_transition(local_cloud_factory):
    """stopped → pending → running → ready (cold start), then stopping → stopped (/stop), as one /ping poller sees."""
    import threading

    cloud = local_cloud_factory("--boot-seconds", "4", "--echo-delay-ms", "0", *RELAXED_THROTTLE)
    token, observer = cloud.token("transition-user"), cloud.token("transition-observer")
    seen: list[str] = []
    done = threading.Event()

    def watch() -> None:  # the only /ping caller for `observer`: 4 polls a second, within the per-user limit
        while not done.is_set():
            state = cloud.gpu_state(observer)
            if not seen or seen[-1] != state:
                seen.append(state)
            done.wait(0.25)

    def wait_seen(state: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not seen or seen[-1] != state:
            assert time.monotonic() < deadline, f"no {state} in {timeout} s; seen {seen}"
            time.sleep(0.05)

    poller = threading.Thread(target=watch, daemon=True)
    poller.start()
    try:
        wait_seen("stopped", 5)
        answer = cloud.api("POST", "/infer", token=token, json={"prompt": "hello", "idle": 5})
        assert answer.status_code == 202 and answer.json()["status"] == "starting", answer.text
        poll_result(answer.json()["result_url"], timeout=15)
        wait_seen("ready", 5)
        assert cloud.api("POST", "/stop", token=token).status_code == 200
        wait_seen("stopped", 10)
    finally:
        done.set()
        poller.join(5)
    assert seen[:4] == ["stopped", "pending", "running", "ready"], seen
    assert seen[4:] in (["stopping", "stopped"], ["stopped"]), seen
