"""How long the chat history's work takes: store writes (on the store worker), reading a long chat back, picking
a prompt's context (on the Tk thread, as it submits), and rendering an opened chat in the real OutputPane (Tk
thread). Prints figures; asserts nothing.

    .venv/bin/python bench/chat_history.py [--exchanges 1000] [--answer-words 150]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def answer(n: int, words: int) -> str:
    body = " ".join(f"word{i % 97}" for i in range(words))
    return f"## Answer {n}\n\nSome **bold** and *italic* text. {body}\n\n```python\nprint({n})\n```\n- a\n- b\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=1000)
    parser.add_argument("--answer-words", type=int, default=150)
    args = parser.parse_args(argv)

    from app.controllers.chat_controller import RENDER_LIMIT
    from app.models.chat import Chat, exchange_record
    from app.models.context import context_budget, history_turns, trim_history
    from app.models.exchange import DONE, Exchange
    from app.services.history_store import HistoryStore, chat_row

    tmp = Path(tempfile.mkdtemp(prefix="tlfif-chat-bench-"))
    chat = Chat.new()
    for n in range(args.exchanges):
        chat.add(Exchange(request_id=f"r{n}", backend="aws", backend_label="AWS TinyLlama",
                          prompt=f"question {n} about llamas", started_at=time.time(),
                          text=answer(n, args.answer_words),
                          tokens=args.answer_words, latency_ms=1234, status=DONE,
                          stats={"ttft_ms": 300, "tokens_per_s": 40.0, "latency_ms": 1234}))

    store, _ = HistoryStore.open(tmp / "history.sqlite3")
    store.save_chat(chat_row(chat))
    writes = []
    for e in chat.exchanges:
        started = time.perf_counter()
        store.save_exchange(chat.id, exchange_record(e))
        writes.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    loaded = store.load_chat(chat.id)
    load_ms = (time.perf_counter() - started) * 1000
    size_kib = (tmp / "history.sqlite3").stat().st_size / 1024
    store.close()
    assert loaded == chat

    contexts = []
    for _ in range(20):
        started = time.perf_counter()
        trim_history(history_turns(chat.exchanges), prompt="next", budget_tokens=context_budget(2048, 512))
        contexts.append((time.perf_counter() - started) * 1000)

    print(f"chat: {args.exchanges} exchanges, answers ~{len(chat.exchanges[0].text)} chars; file {size_kib:.0f} KiB")
    print(f"store worker: save_exchange median {statistics.median(writes):.2f} ms, max {max(writes):.2f} ms "
          "(one transaction each, synchronous=FULL)")
    print(f"store worker: load_chat of {args.exchanges} exchanges {load_ms:.1f} ms")
    print(f"Tk thread: context_for's trimming median {statistics.median(contexts):.2f} ms, "
          f"max {max(contexts):.2f} ms")

    from support.xvfb import XvfbServer

    xvfb = None
    if not os.environ.get("DISPLAY"):
        xvfb = XvfbServer().start()
        os.environ["DISPLAY"] = xvfb.display
    import tkinter as tk

    from app.bus import Bus
    from app.views.output_pane import OutputPane

    root = tk.Tk()
    try:
        pane = OutputPane(root, Bus())
        pane.pack(fill="both", expand=True)
        root.update()
        shown = chat.exchanges[-RENDER_LIMIT:]
        records = [exchange_record(e) for e in shown]
        renders = []
        for _ in range(3):
            started = time.perf_counter()
            pane.on_chat_opened(chat.id, chat.title, records, len(chat.exchanges) - len(shown), "", 0.7, 512)
            root.update()
            renders.append((time.perf_counter() - started) * 1000)
        print(f"Tk thread: rendering an opened chat ({len(shown)} exchanges, RENDER_LIMIT) "
              f"median {statistics.median(renders):.0f} ms, max {max(renders):.0f} ms")
    finally:
        root.destroy()
        if xvfb is not None:
            xvfb.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
