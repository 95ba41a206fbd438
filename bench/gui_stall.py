"""How long the Tk thread stalls while the app works. Prints figures; not a test.

    .venv/bin/python bench/gui_stall.py [-n 20] [--local-cloud] [--screenshot docs/screenshot.png]

Runs the real app window (under its own Xvfb when DISPLAY is unset) and an `after()` heartbeat every 5 ms, while
N prompts go through it one after another (typed into the PromptBox and sent with Ctrl+Enter), the CostLabel polls
every 200 ms, the GPU status polls, and the backend is switched to OpenAI for a quarter of the prompts and back.
Prints `max stall X ms`: the longest gap between two heartbeats (a heartbeat is due every 5 ms, so an idle Tk
thread shows ~5-6 ms). Target: ≤ 50 ms.

By default the AWS backend talks to a local cloud process set up as the app tests' (tests/support/app_cloud.py: the
real router, Redis, watcher and echo engine, answers growing word by word, the month's cost figures published) and
OpenAI to tests/support/fake_openai.py (SSE streaming); `--local-cloud` runs the AWS prompts through the embedded
local cloud the app starts itself instead.
`--screenshot PATH` saves the window after the last answer (needs Pillow: `pip install pillow`); `--theme dark`
(or light, system) picks the colours for it.
`--markdown` makes every answer a longer Markdown one (heading, bold, a list, a fenced code block; the echo engine
repeats it from the prompt): the pane renders
each final answer with tags and embeds Copy buttons, which is what this then measures too.
`--long-markdown LINES` sends the prompts to OpenAI (the fake server) and streams back an answer of that many lines
(headings, paragraphs, lists, highlighted code blocks, tables, links), one line per chunk: the streaming, then the
parse (on the render worker) and the batched insert of the rendered answer.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

HEARTBEAT_MS = 5
MARKDOWN_REPLY = ("## Answer\nTL-FIF runs **TinyLlama** on a GPU that *stops itself* when idle. Steps:\n"
                  "1. Send a prompt with `Ctrl+Enter`\n2. Watch the answer grow\n   - press **Esc** to stop it\n"
                  "```python\nimport requests\nfor word in answer.split():\n    print(word)\n```\n"
                  "That is *all* — the GPU costs only while it runs.")
LONG_BLOCK = ("## Part {i}\nSome **bold** text, `inline code`, ~~old~~ and a [link](https://example.com/{i}).\n"
              "- a list item\n- another with *emphasis*\n  - nested\n\n```python\ndef part_{i}(x):\n"
              "    return x * {i}  # times {i}\n```\n\n| column | value |\n|:--|--:|\n| row {i} | {i} |\n"
              "| total | 42 |\n\n> a quote\n\n")


def long_markdown(lines: int) -> list[str]:
    """`lines` lines of Markdown, as the chunks of one streamed answer (one line each)."""
    text = ""
    i = 0
    while text.count("\n") < lines:
        text += LONG_BLOCK.format(i=i)
        i += 1
    return [line + "\n" for line in text.split("\n")[:lines]]


PROMPTS = ["What does TL-FIF stand for?", "Explain the cold start in one sentence.", "Write a haiku about GPUs.",
           "How much does an idle GPU cost?", "Summarise the architecture."]


class Bench:
    def __init__(self, root, app, prompts: int, switch: bool = True, markdown: bool = False):
        self.root, self.app, self.prompts = root, app, prompts
        self.markdown = markdown
        self.window = app.window
        self.sent = 0
        self.done = 0
        self.failed: list[str] = []
        self.beats: list[float] = []
        self.latencies: list[int] = []
        self.switch_at = {prompts // 2: "OpenAI", prompts // 2 + max(prompts // 4, 1): "AWS TinyLlama"} \
            if switch else {}
        self.finished = False
        app.bus.subscribe(self.on_done, "job.done")
        app.bus.subscribe(self.on_failed, "job.failed")

    def heartbeat(self) -> None:
        self.beats.append(time.perf_counter())
        if not self.finished:
            self.root.after(HEARTBEAT_MS, self.heartbeat)

    def next_prompt(self) -> None:
        if self.sent >= self.prompts:
            self.finished = True
            self.root.after(300, self.root.quit)
            return
        label = self.switch_at.get(self.sent)
        if label:
            self.window.toolbar.backend_var.set(label)
            self.window.toolbar.backend_box.event_generate("<<ComboboxSelected>>")
        box = self.window.prompt.prompt_box
        box.focus_force()
        box.insert("1.0", f"{PROMPTS[self.sent % len(PROMPTS)]} (#{self.sent + 1})"
                   + (f"\n{MARKDOWN_REPLY}" if self.markdown else ""))
        box.event_generate("<Control-Return>")
        self.sent += 1

    def on_done(self, request_id, backend, text, model, stats) -> None:
        self.done += 1
        self.latencies.append(stats["latency_ms"])
        self.root.after(20, self.next_prompt)

    def on_failed(self, request_id, backend, message) -> None:
        self.failed.append(message)
        self.root.after(20, self.next_prompt)


def grab(display: str, window, path: Path) -> None:
    try:
        from PIL import ImageGrab
    except ImportError:
        print("screenshot skipped: Pillow is not installed (pip install pillow)", file=sys.stderr)
        return
    window.update()
    x, y = window.winfo_rootx(), window.winfo_rooty()
    w, h = window.winfo_width(), window.winfo_height()
    ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=display).save(path)
    print(f"screenshot: {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--prompts", type=int, default=20)
    parser.add_argument("--local-cloud", action="store_true", help="AWS prompts through the embedded local cloud")
    parser.add_argument("--screenshot", type=Path, help="save the window to this PNG at the end")
    parser.add_argument("--no-switch", action="store_true", help="stay on the AWS backend")
    parser.add_argument("--markdown", action="store_true", help="Markdown answers (rendered when complete)")
    parser.add_argument("--long-markdown", type=int, metavar="LINES", default=0,
                        help="OpenAI answers of this many Markdown lines (e.g. 2000)")
    parser.add_argument("--theme", choices=("light", "dark", "system"), default="light", help="the colour theme")
    args = parser.parse_args(argv)

    xvfb = None
    if not os.environ.get("DISPLAY"):
        from support.xvfb import XvfbServer

        xvfb = XvfbServer().start()
        os.environ["DISPLAY"] = xvfb.display
    import tkinter as tk

    from app.application import Application
    from app.timings import Timings
    from app.models.settings import Settings
    from support.fake_openai import FakeOpenAI

    home = Path(os.environ.get("TMPDIR", "/tmp")) / f"tlfif-gui-stall-{os.getpid()}"
    home.mkdir(exist_ok=True)
    cloud = api = None
    if not args.local_cloud:
        from support.app_cloud import APP_CLOUD_ARGS, CloudApi
        from support.local_cloud import CloudProcess

        cloud = CloudProcess.start(APP_CLOUD_ARGS, home / "cloud")
        api = CloudApi(cloud).start()
        api.set_month_cost(4.12, [1.5, 2.62])
    if args.long_markdown:
        openai_srv = FakeOpenAI(chunks=long_markdown(args.long_markdown), chunk_delay=0.002).start()
    else:
        openai_srv = FakeOpenAI(reply=MARKDOWN_REPLY if args.markdown else
                                "TL-FIF keeps a private TinyLlama on a GPU that runs only while you use it.",
                                chunk_delay=0.01).start()
    timings = Timings(cost_interval_s=0.2, ping_interval_s=1.0, result_poll_start_s=0.02, result_poll_cap_s=0.1)
    kwargs = {"endpoints": api.endpoints()} if api else {}
    handles = []
    if args.local_cloud:
        from tlfif_local.embedded import start_in_background

        def starter():
            handles.append(start_in_background(port=0, boot_seconds=1, extra_args=["--echo-delay-ms", "30"]))
            return handles[-1]
        kwargs = {"cloud_starter": starter}
        timings = replace(timings, cost_interval_s=1.0)  # the API allows 5 requests/s per user
    os.environ["TLFIF_CONFIG"] = str(home / "tl-fif.ini")
    os.environ["TLFIF_DATA_DIR"] = str(home / "data")  # the chat history, away from the user's
    settings = replace(Settings(), openai_base_url=openai_srv.base_url, openai_model="gpt-4o-mini",
                       backend="openai" if args.long_markdown else "aws", theme=args.theme)
    root = tk.Tk()
    app = Application(root, settings=settings, timings=timings, env={"OPENAI_API_KEY": "sk-bench"}, **kwargs)
    bench = Bench(root, app, args.prompts, switch=not (args.no_switch or args.long_markdown), markdown=args.markdown)
    try:
        app.start()
        root.update()
        if args.local_cloud:
            app.endpoints.get(timeout=60)
        app.settle()  # as main() does: start-up work (the OpenAI SDK's first client) is not what we measure
        started = time.perf_counter()
        root.after(HEARTBEAT_MS, bench.heartbeat)
        root.after(200, bench.next_prompt)
        root.after(600_000 if args.long_markdown else 180_000, root.quit)  # never hang
        root.mainloop()
        elapsed = time.perf_counter() - started
        if args.screenshot:
            grab(os.environ["DISPLAY"], root, args.screenshot)
    finally:
        app.close()
        root.destroy()
        if api:
            api.stop()
            cloud.stop()
        openai_srv.stop()
        if xvfb:
            xvfb.stop()
    gaps = [(b - a) * 1000 for a, b in zip(bench.beats, bench.beats[1:], strict=False)]
    gaps.sort()
    print(f"prompts {bench.done}/{args.prompts} answered, {len(bench.failed)} failed, "
          f"backend switched {len(bench.switch_at)} times, "
          f"{'embedded local cloud' if args.local_cloud else 'local cloud process'}, {elapsed:.1f} s")
    if bench.failed:
        print("failures:", *bench.failed[:3], sep="\n  ")
    print(f"answer latency p50 {statistics.median(bench.latencies):.0f} ms" if bench.latencies else "no answers")
    print(f"heartbeats {len(gaps) + 1} (every {HEARTBEAT_MS} ms): gap p50 {gaps[len(gaps) // 2]:.1f} ms, "
          f"p99 {gaps[int(len(gaps) * 0.99)]:.1f} ms")
    print(f"max stall {gaps[-1]:.1f} ms (target <= 50 ms)")
    return 0 if bench.done == args.prompts else 1


if __name__ == "__main__":
    sys.exit(main())
