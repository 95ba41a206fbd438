"""Cold import of the router Lambda's handler module (RQL 3.3: cold start < 500 ms). Prints figures; not a test.

    .venv/bin/python bench/router_cold_import.py [-n 15]

Each sample is a fresh interpreter that imports `tlfif_router.handler` and constructs nothing. Three figures:
  cold import             — the import alone, timed inside the child (what the handler module adds to init)
  no bytecode cache       — the same with an empty PYTHONPYCACHEPREFIX, so every module (ours, boto's, the
                            standard library's) is compiled from source: an upper bound for a zip without .pyc
  first-use setup         — for context: what the first /ping then costs before any network I/O (boto3 import,
                            the EC2 and SSM clients, the redis import); deferred out of the import on purpose
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

IMPORT_ONLY = """
import time
t = time.perf_counter()
import tlfif_router.handler
print((time.perf_counter() - t) * 1000)
"""

FIRST_USE = """
import time
import tlfif_router.handler
from tlfif_router.config import RouterConfig
from tlfif_router.deps import Deps
t = time.perf_counter()
deps = Deps(RouterConfig(responses_bucket="b", gpu_instance_id="i-0", jwt_issuer="x", jwt_audience="y",
                         redis_url="redis://127.0.0.1:1/0"))
deps.ec2, deps.ssm, deps.queue
print((time.perf_counter() - t) * 1000)
"""


def sample(code: str, runs: int, extra_env: dict | None = None) -> list[float]:
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-central-1", "AWS_ACCESS_KEY_ID": "bench",
           "AWS_SECRET_ACCESS_KEY": "bench", **(extra_env or {})}
    out = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="tlfif-bench-pyc-") as empty_cache:
            if "PYTHONPYCACHEPREFIX" in (extra_env or {}):
                env["PYTHONPYCACHEPREFIX"] = empty_cache
            result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                    check=True)
        out.append(float(result.stdout.strip().splitlines()[-1]))
    return out


def describe(label: str, values: list[float]) -> str:
    return f"{label} p50 {statistics.median(values):.0f} ms, max {max(values):.0f} ms (n={len(values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description="cold import time of tlfif_router.handler")
    parser.add_argument("-n", "--runs", type=int, default=15)
    args = parser.parse_args()
    sample(IMPORT_ONLY, 1)  # make sure bytecode caches exist, as in a built runtime
    cold = sample(IMPORT_ONLY, args.runs)
    print(describe("cold import", cold) + " — target < 500 ms")
    print(describe("cold import, no bytecode cache", sample(IMPORT_ONLY, max(3, args.runs // 3),
                                                            {"PYTHONPYCACHEPREFIX": ""})))
    print(describe("first-use setup (boto3 + ec2/ssm clients + redis, no I/O)", sample(FIRST_USE,
                                                                                       max(3, args.runs // 3))))
    return 0 if statistics.median(cold) < 500 else 1


if __name__ == "__main__":
    sys.exit(main())
