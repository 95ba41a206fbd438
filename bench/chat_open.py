"""How long the Tk thread is busy rendering a chat that opens (or another branch of it). Prints figures; not a test.

    .venv/bin/python bench/chat_open.py [-n 50] [--forks 0.0..1.0] [--repeat 5]

Publishes chat.opened with N finished exchanges (a paragraph of answer each) to a real OutputPane, under its own
Xvfb when DISPLAY is unset, and times the render (the pane's text, each prompt's Edit, the ‹ n/m › of exchanges
with alternatives — `--forks` is the share of them —, each answer's Copy and the last one's Regenerate) and the
first `update()` after it. Opening a chat is one Tk-thread stretch: target ≤ 50 ms for the 50 exchanges a chat
shows (chat_controller.RENDER_LIMIT). The Markdown of each answer comes later, off the Tk thread.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

ANSWER = "TL-FIF runs TinyLlama on a GPU that stops itself when idle. " * 8


def exchanges(n: int, forks: float) -> list[dict]:
    every = round(1 / forks) if forks > 0 else 0
    return [{"request_id": f"r{i}", "backend": "aws", "backend_label": "AWS TinyLlama", "prompt": f"Prompt {i}?",
             "answer": ANSWER, "model": "tinyllama", "started_at": 1_795_000_000.0 + i,
             "finished_at": 1_795_000_001.0 + i, "latency_ms": 900, "tokens": 80, "status": "done", "error": "",
             "idle": 5, "stats": {"latency_ms": 900, "tokens": 80}, "parent_id": f"r{i - 1}" if i else "",
             "alternative": 1, "alternatives": 2 if every and i % every == 0 else 1} for i in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="exchanges shown (default 50, the render limit)")
    parser.add_argument("--forks", type=float, default=0.0, help="share of them with alternatives (0 to 1)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    xvfb = None
    if not os.environ.get("DISPLAY"):
        from support.xvfb import XvfbServer

        xvfb = XvfbServer().start()
        os.environ["DISPLAY"] = xvfb.display
    import tkinter as tk

    from app.bus import Bus
    from app.views.output_pane import OutputPane

    try:
        root = tk.Tk()
        root.geometry("1000x700")
        bus = Bus()
        pane = OutputPane(root, bus)
        pane.pack(fill="both", expand=True)
        root.update()
        items = exchanges(args.n, args.forks)
        renders, updates = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            bus.send("chat.opened", chat_id="c", title="bench", exchanges=items, hidden=0, system="",
                     temperature=0.7, max_tokens=512)
            t1 = time.perf_counter()
            root.update()
            renders.append((t1 - t0) * 1000)
            updates.append((time.perf_counter() - t1) * 1000)
        widgets = len(pane.winfo_children())
        root.destroy()
    finally:
        if xvfb:
            xvfb.stop()
    print(f"{args.n} exchanges, {args.forks:.0%} with alternatives, {widgets} embedded widgets")
    print(f"render p50 {statistics.median(renders):.1f} ms, max {max(renders):.1f} ms; "
          f"first update p50 {statistics.median(updates):.1f} ms (target render + update <= 50 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
