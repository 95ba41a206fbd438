"""A burst against the local API: do N simultaneous connections all get an answer? Prints figures; not a test.

    .venv/bin/python bench/gateway_burst.py [-n 128] [--users 16] [--path /infer] [--rounds 3] [--relaxed]

Starts the local cloud (a separate process, the API template's stage throttling unless --relaxed), mints a token
per user, then per round opens N connections at once (one thread each, released together by a barrier), each
sending one request (POST /infer with a unique prompt, or GET /ping) round-robin over the users. Prints per round
and in total: accepted (an HTTP answer came back), reset (connection refused/reset/closed without an answer),
5xx, the status counts (429 is the throttle answering), and p50/p99 latency of the answered requests.
"""
from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import requests

from tlfif_local.embedded import start_in_background


def one_request(host: str, port: int, method: str, path: str, token: str, body: bytes | None,
                barrier: threading.Barrier, results: list, index: int) -> None:
    barrier.wait()
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        answer = conn.getresponse()
        answer.read()
        results[index] = (answer.status, time.perf_counter() - started)
    except (ConnectionError, http.client.HTTPException, OSError) as err:
        results[index] = (type(err).__name__, time.perf_counter() - started)
    finally:
        conn.close()


def burst(api_url: str, n: int, tokens: list[str], path: str, tag: str) -> list:
    parts = urlsplit(api_url)
    barrier = threading.Barrier(n)
    results: list = [None] * n
    threads = []
    for i in range(n):
        body = json.dumps({"prompt": f"burst {tag} client {i}", "idle": 5}).encode() if path == "/infer" else None
        method = "POST" if path == "/infer" else "GET"
        threads.append(threading.Thread(target=one_request, daemon=True, args=(
            parts.hostname, parts.port, method, path, tokens[i % len(tokens)], body, barrier, results, i)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def summary(results: list) -> str:
    answered = [r for r in results if r and isinstance(r[0], int)]
    latencies = sorted(r[1] * 1000 for r in answered)
    statuses = Counter(str(r[0]) if r else "no result" for r in results)
    reset = len(results) - len(answered)
    five = sum(1 for r in answered if r[0] >= 500)
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan")
    return (f"accepted {len(answered)}/{len(results)}  reset {reset}  5xx {five}  "
            f"p50 {p50:.0f} ms  p99 {p99:.0f} ms  statuses {dict(sorted(statuses.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=128, help="simultaneous connections (default 128)")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--path", choices=("/infer", "/ping"), default="/infer")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--relaxed", action="store_true", help="stage throttling raised: every request reaches "
                                                               "the router")
    args = parser.parse_args()
    logging.getLogger("tlfif_local.embedded").setLevel(logging.ERROR)  # the cloud's own warnings (pool size)

    workdir = Path(tempfile.mkdtemp(prefix="gateway-burst-"))
    env = dict(os.environ, TLFIF_LOCAL_STATE=str(workdir / "state.json"))
    extra = ["--throttle-rate", "100000", "--throttle-burst", "100000"] if args.relaxed else []
    with start_in_background(port=0, boot_seconds=60, extra_args=extra, env=env) as cloud:
        state = json.loads((workdir / "state.json").read_text())
        tokens = [requests.post(state["admin_token_url"], timeout=10,
                                headers={"Authorization": f"Bearer {state['admin_secret']}"},
                                json={"user": f"burst-{u}"}).json()["id_token"] for u in range(args.users)]
        print(f"{args.n} simultaneous connections, {args.users} users, {args.path}, "
              f"{'relaxed' if args.relaxed else 'template'} stage throttling")
        total: list = []
        for round_no in range(args.rounds):
            results = burst(cloud.info["api_url"], args.n, tokens, args.path, f"r{round_no}")
            total += results
            print(f"round {round_no + 1}: {summary(results)}")
            time.sleep(2.5)  # the throttle's bucket and the per-user limit refill between rounds
        print(f"total:   {summary(total)}")


if __name__ == "__main__":
    main()
