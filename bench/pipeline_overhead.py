"""What the TL-FIF pipeline adds on top of the engine. Prints figures; not a test.

    .venv/bin/python bench/pipeline_overhead.py [-n 40] [--echo-delay-ms 20] [--words 10]

Starts the local cloud (a separate process, default limits), signs a user in, boots the GPU once, then for each of
N prompts measures
  end to end — POST /infer through the API Gateway emulation → router (in-process) → Redis → watcher (echo engine,
               fixed delay per word) → S3 result object (moto) → polling the presigned `result_url` until `done`
               (interval 5 ms, ×1.5 per unchanged read, at most 25 ms; back to 5 ms whenever the object changed);
  direct     — the same echo engine, same prompt, same delay, called in this process and drained.
and prints p50/p95 of (end to end − direct) per prompt: the pipeline's overhead. Target: p50 ≤ 50 ms.
The two are interleaved so that machine load hits both alike.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

from tlfif_common.jobs import Job
from tlfif_local.embedded import start_in_background
from tlfif_watcher.engines.echo import EchoEngine

POLL_START_S = 0.005
POLL_FACTOR = 1.5
POLL_MAX_S = 0.025


def poll_until_final(http: requests.Session, url: str, timeout: float = 30.0) -> dict:
    interval = POLL_START_S
    last = None
    deadline = time.perf_counter() + timeout
    while True:
        answer = http.get(url, timeout=10)
        if answer.status_code == 200:
            doc = answer.json()
            if doc["status"] in ("done", "error"):
                return doc
            if doc != last:
                last, interval = doc, POLL_START_S
        if time.perf_counter() > deadline:
            raise RuntimeError(f"no final result within {timeout} s")
        time.sleep(interval)
        interval = min(interval * POLL_FACTOR, POLL_MAX_S)


def direct_ms(engine: EchoEngine, prompt: str) -> float:
    job = Job.create({"prompt": prompt, "idle": 5}, bucket="direct", user="bench", now_ms=int(time.time() * 1000))
    started = time.perf_counter()
    text = "".join(engine.generate(job))
    elapsed = (time.perf_counter() - started) * 1000
    assert prompt in text
    return elapsed


def end_to_end_ms(http: requests.Session, api_url: str, token: str, prompt: str) -> tuple[float, float, float]:
    """(end to end, /infer answer, the watcher's own latency_ms for the job) in ms."""
    started = time.perf_counter()
    answer = http.post(f"{api_url}/infer", json={"prompt": prompt, "idle": 5}, timeout=30,
                       headers={"Authorization": f"Bearer {token}"})
    accepted = time.perf_counter()
    if answer.status_code != 202:
        raise RuntimeError(f"/infer answered {answer.status_code}: {answer.text}")
    doc = poll_until_final(http, answer.json()["result_url"])
    elapsed = (time.perf_counter() - started) * 1000
    if doc["status"] != "done" or prompt not in doc["text"]:
        raise RuntimeError(f"unexpected result: {doc}")
    return elapsed, (accepted - started) * 1000, float(doc["latency_ms"])


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40, help="prompts measured (default 40)")
    parser.add_argument("--echo-delay-ms", type=int, default=20, help="echo engine delay per word (default 20)")
    parser.add_argument("--words", type=int, default=10, help="words per prompt (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured prompts after the boot (default 3)")
    args = parser.parse_args()

    state_dir = tempfile.mkdtemp(prefix="tlfif-bench-")
    env = dict(os.environ, TLFIF_LOCAL_STATE=str(Path(state_dir) / "state.json"))
    cloud = start_in_background(boot_seconds=0.5, extra_args=["--echo-delay-ms", str(args.echo_delay_ms)], env=env)
    try:
        state = json.loads((Path(state_dir) / "state.json").read_text())
        token = requests.post(state["admin_token_url"], json={"user": "bench"}, timeout=10,
                              headers={"Authorization": f"Bearer {state['admin_secret']}"}).json()["id_token"]
        api_url = cloud.info["api_url"]
        engine = EchoEngine(args.echo_delay_ms)
        http = requests.Session()
        boot_started = time.perf_counter()
        end_to_end_ms(http, api_url, token, "boot the GPU")  # cold start: not measured
        print(f"cold start (boot 0.5 s + watcher start + first job): {(time.perf_counter() - boot_started):.1f} s")
        for i in range(args.warmup):
            end_to_end_ms(http, api_url, token, f"warm up {i}")
            time.sleep(0.25)

        overhead, e2e, direct, accept, in_watcher = [], [], [], [], []
        for i in range(args.n):
            prompt = " ".join(f"w{i}x{j}" for j in range(args.words))
            d = direct_ms(engine, prompt)
            e, a, w = end_to_end_ms(http, api_url, token, prompt)
            direct.append(d)
            e2e.append(e)
            accept.append(a)
            in_watcher.append(w)
            overhead.append(e - d)
            time.sleep(0.25)  # stay under the API's 5 requests/s stage limit and the router's per-user limit
        pieces = len(engine.generate(Job.create({"prompt": prompt, "idle": 5}, bucket="b", user=None,
                                                now_ms=0))._pieces)
        print(f"{args.n} prompts, echo engine {args.echo_delay_ms} ms/word, {pieces} words per answer")
        print(f"direct        p50 {percentile(direct, 50):.1f} ms   p95 {percentile(direct, 95):.1f} ms")
        print(f"end to end    p50 {percentile(e2e, 50):.1f} ms   p95 {percentile(e2e, 95):.1f} ms")
        rest = [e - a - w for e, a, w in zip(e2e, accept, in_watcher, strict=True)]
        print("where it goes:")
        print(f"  /infer answered (gateway + router)       p50 {percentile(accept, 50):.1f} ms   "
              f"p95 {percentile(accept, 95):.1f} ms")
        infer_lines = [line for line in list(cloud.access_log)[-args.n:] if line.get("routeKey") == "POST /infer"]
        gateway_own = [int(line["responseLatency"]) - int(line["integrationLatency"]) for line in infer_lines]
        router = [int(line["integrationLatency"]) for line in infer_lines]
        if infer_lines:
            print(f"    of which the router handler (access log integrationLatency) p50 "
                  f"{statistics.median(router):.0f} ms; the gateway itself p50 {statistics.median(gateway_own):.0f} ms")
        print(f"  watcher job time − direct (progress writes) p50 "
              f"{statistics.median(w - d for w, d in zip(in_watcher, direct, strict=True)):.1f} ms")
        print(f"  the rest (queue pickup, final write, ack, polling) p50 {percentile(rest, 50):.1f} ms   "
              f"p95 {percentile(rest, 95):.1f} ms")
        print("overhead (end to end − direct):")
        print(f"p50 {percentile(overhead, 50):.1f} ms")
        print(f"p95 {percentile(overhead, 95):.1f} ms")
        verdict = "meets" if percentile(overhead, 50) <= 50 else "misses"
        print(f"target p50 ≤ 50 ms: {verdict}")
    finally:
        cloud.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
