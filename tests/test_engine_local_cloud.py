"""`tl-fif cloud up --model <gemma gguf>`: real answers through the whole local cloud (gateway → router → Redis →
watcher → llama-cpp-python server → S3 → the presigned result URL), cancel, and an engine killed mid-answer."""
from __future__ import annotations

import os
import re
import signal
import time

import pytest
from support.local_cloud import FINAL_STATUSES, RELAXED_THROTTLE, CloudProcess, pid_running, result_docs
from support.local_model import SMALL_CONTEXT

from tlfif_watcher.engines.echo import ECHO_LABEL

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ANSWER_TIMEOUT = 120.0  # the first answer includes the instance boot and the model load


@pytest.fixture(scope="module")
def cloud(gemma_gguf, tmp_path_factory):
    proc = CloudProcess.start(["--model", gemma_gguf, "--ctx", str(SMALL_CONTEXT), "--boot-seconds", "0",
                               *RELAXED_THROTTLE], tmp_path_factory.mktemp("model-cloud"))
    yield proc
    proc.stop()
    assert not engine_pids(proc), "the engine server outlived the local cloud"


def engine_pids(cloud: CloudProcess) -> list[int]:
    return [pid for pid, cmd in cloud.descendants().items() if "tlfif_local.llama_server" in cmd]


def engine_log(cloud: CloudProcess) -> str:
    paths = re.findall(r"\[engine\] llama\.cpp server pid \d+ .* log (\S+)", cloud.log_text())
    assert paths, cloud.log_text()[-2000:]
    with open(paths[-1], errors="replace") as f:
        return f.read()


def infer(cloud: CloudProcess, token: str, prompt: str, max_tokens: int = 32) -> dict:
    answer = cloud.api("POST", "/infer", token=token,
                       json={"prompt": prompt, "idle": 5, "params": {"temperature": 0, "max_tokens": max_tokens}})
    assert answer.status_code == 202, answer.text
    return answer.json()


def poll(url: str, timeout: float = ANSWER_TIMEOUT, until: tuple[str, ...] = FINAL_STATUSES) -> list[dict]:
    return result_docs(url, timeout, until)


def test_infer_returns_a_real_completion_progressively(cloud):
    token = cloud.token("model-user")
    body = infer(cloud, token, "The three primary colours are")
    seen = poll(body["result_url"])
    final = seen[-1]

    assert final["status"] == "done", final
    assert final["text"].strip() and ECHO_LABEL not in final["text"]
    assert 1 <= final["tokens"] <= 32
    assert final["model"].endswith(".gguf")
    assert final["ttft_ms"] > 0 and final["latency_ms"] >= final["ttft_ms"]
    assert final["turns_dropped"] == 0
    running = [doc for doc in seen if doc["status"] == "running"]
    assert running, "no progress snapshot before the final result"
    assert all(final["text"].startswith(doc["text"]) for doc in running)


def test_a_history_too_long_for_the_context_is_trimmed_and_the_result_says_so(cloud):
    token = cloud.token("history-user")
    filler = " ".join(f"item{j}" for j in range(30))
    history = []
    for i in range(4):
        history += [{"role": "user", "content": f"Question {i}: {filler}"},
                    {"role": "assistant", "content": f"Answer {i}."}]
    answer = cloud.api("POST", "/infer", token=token,
                       json={"prompt": "Summarise.", "idle": 5, "messages": history,
                             "params": {"temperature": 0, "max_tokens": 16, "system": "Be brief."}})
    assert answer.status_code == 202, answer.text
    final = poll(answer.json()["result_url"])[-1]

    assert final["status"] == "done", final  # untrimmed, llama.cpp would refuse it (see test_engine_llama_cpp)
    assert 1 <= final["turns_dropped"] < 4


def test_cancel_ends_the_job_cancelled_and_the_engine_stops_generating(cloud):
    token = cloud.token("cancel-user")
    infer(cloud, token, "Warm up.", max_tokens=1)  # the engine is up: the next job starts at once
    body = infer(cloud, token, "Count slowly from one to one hundred, one number per line: one, two,")
    poll(body["result_url"], until=("running", "done"))
    answer = cloud.api("POST", f"/cancel/{body['id']}", token=token)
    assert answer.status_code in (200, 202), answer.text
    final = poll(body["result_url"], until=("cancelled", "done", "error"))[-1]

    assert final["status"] == "cancelled", final
    assert final["tokens"] < 32
    deadline = time.monotonic() + 10
    while "Disconnected from client" not in engine_log(cloud):  # the server saw the stream closed
        assert time.monotonic() < deadline, engine_log(cloud)[-2000:]
        time.sleep(0.1)


def test_an_engine_killed_mid_answer_ends_the_job_in_error_and_a_restarted_engine_answers(cloud):
    token = cloud.token("kill-user")
    infer(cloud, token, "Warm up.", max_tokens=1)
    [pid] = engine_pids(cloud)
    body = infer(cloud, token, "Write a list of twenty fruits, one per line:")
    poll(body["result_url"], until=("running", "done"))
    os.kill(pid, signal.SIGKILL)
    final = poll(body["result_url"])[-1]

    assert final["status"] == "error", final
    assert final["error"]["code"] == "engine_error"
    assert "llama.cpp" in final["error"]["message"]

    again = infer(cloud, token, "The opposite of hot is", max_tokens=8)
    after = poll(again["result_url"])[-1]
    assert after["status"] == "done" and after["text"].strip(), after
    assert engine_pids(cloud) and pid not in engine_pids(cloud)


def test_the_engine_server_does_not_outlive_a_killed_local_cloud(gemma_gguf, tmp_path):
    killed = CloudProcess.start(["--model", gemma_gguf, "--ctx", str(SMALL_CONTEXT), "--boot-seconds", "0",
                                 *RELAXED_THROTTLE], tmp_path / "killed-cloud")
    children: dict[int, str] = {}
    try:
        token = killed.token("doomed-user")
        body = infer(killed, token, "Hello", max_tokens=1)
        assert poll(body["result_url"])[-1]["status"] == "done"
        engines = engine_pids(killed)
        assert len(engines) == 1, killed.descendants()
        children = killed.descendants()
        killed.proc.kill()  # no chance to stop anything in order
        killed.proc.wait(30)
        deadline = time.monotonic() + 30
        while pid_running(engines[0]):
            assert time.monotonic() < deadline, "the engine server outlived its local cloud"
            time.sleep(0.1)
    finally:
        killed.stop()
        for leftover in children:  # redis-server and the watcher: their supervision is not this test's subject
            if pid_running(leftover):
                os.kill(leftover, signal.SIGTERM)
