"""Parses finished answers' Markdown away from the Tk thread, so the Tk thread only inserts the result.

Parsing a long answer (markdown-it-py plus Pygments: ~150 ms for 2,000 lines) is pure Python: in a thread it would
hold the GIL, and every Tk call of the window (each releases and retakes it) would queue behind it — a stall of
its own. So the parse runs in one child process (spawned, not forked from a process with Tk and threads), fed by a
worker thread here, one answer after another in the order they ended; the segments come back as `answer.rendered`
through the pump. If the child cannot run, the worker parses itself. Clicked links are opened
here too (`ui.open_link`): the browser is started off the Tk thread, and only web and mail links are opened.
"""
from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import threading
import webbrowser
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from urllib.parse import urlsplit

from app.bus import Bus, Outbox
from app.models import markdown

log = logging.getLogger("tlfif.app.render")

OPENABLE_SCHEMES = ("http", "https", "mailto")


class RenderController:
    def __init__(self, bus: Bus, outbox: Outbox):
        self._outbox = outbox
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tlfif-render")
        self._parser: ProcessPoolExecutor | None = None  # made by the worker thread on first use
        self._closed = False
        bus.subscribe_table({
            "job.done": self.on_ended,
            "job.cancelled": self.on_ended,
            "chat.opened": self.on_chat_opened,
            "ui.open_link": self.on_open_link,
        })

    def on_ended(self, request_id, backend, text, model, stats) -> None:
        if text:
            self._worker.submit(self._render, request_id, text)

    def on_chat_opened(self, chat_id, title, exchanges, hidden, system, temperature, max_tokens) -> None:
        for x in reversed(exchanges):  # newest first: the end of the chat is what the window shows
            if x["status"] in ("done", "cancelled") and x["answer"]:
                self._worker.submit(self._render, x["request_id"], x["answer"])

    def _render(self, request_id: str, text: str) -> None:
        try:
            segments = self._parse(text)
        except Exception:  # a parser bug must not lose the answer: it stays shown as plain text
            log.exception("[render] %s could not be parsed", request_id)
            return
        self._outbox.post("answer.rendered", request_id=request_id, text=text, segments=segments)

    def _parse(self, text: str) -> list[markdown.Segment]:
        """Worker thread: the child process parses; if it cannot be started or died, this thread does."""
        try:
            if self._closed:
                raise RuntimeError("closed")
            if self._parser is None:
                self._parser = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                   initializer=exit_with_parent)
            return self._parser.submit(markdown.parse, text).result()
        except (BrokenProcessPool, OSError, RuntimeError) as err:
            log.warning("[render] the parser process is not available (%s); parsing in a thread", err)
            return markdown.parse(text)

    def on_open_link(self, url) -> None:
        if urlsplit(url).scheme.lower() not in OPENABLE_SCHEMES:
            log.warning("[render] link %r not opened: only %s links are", url, ", ".join(OPENABLE_SCHEMES))
            return
        self._worker.submit(webbrowser.open, url, new=2)

    def close(self) -> None:
        self._closed = True
        self._worker.shutdown(wait=False, cancel_futures=True)
        if self._parser is not None:
            self._parser.shutdown(wait=False, cancel_futures=True)


def exit_with_parent() -> None:
    """In the parser process: exit as soon as the app's process is gone, even if it was killed (its sentinel, a
    pipe, becomes readable when it dies)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
