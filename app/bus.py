"""The message bus: pypubsub with the app's topic tree, plus the outbox that worker threads post to.

Only the thread that made the `Bus` (the Tk thread) may publish; a worker thread that has a result calls
`Outbox.post(topic, **data)`, and the pump (`app.controllers.pump`) publishes it later on the Tk thread.
The bus is passed explicitly to every controller and view; nothing reaches it through a global accessor.
"""
from __future__ import annotations

import logging
import queue
import threading
import traceback
from typing import Any, Callable

from pubsub import pub
from pubsub.core import IListenerExcHandler, TopicDefnProvider

from app import topics

log = logging.getLogger("tlfif.app.bus")

_installed_provider: TopicDefnProvider | None = None


def topic_provider() -> TopicDefnProvider:
    """A fresh provider of the app's topic tree (for validation: `pub.instantiateAllDefinedTopics(provider)`)."""
    return TopicDefnProvider(topics, pub.TOPIC_TREE_FROM_CLASS)


def install_topics() -> TopicDefnProvider:
    """Load the topic tree into pypubsub once per process and make unknown topics fatal."""
    global _installed_provider
    if _installed_provider is None:
        _installed_provider = pub.addTopicDefnProvider(topics, pub.TOPIC_TREE_FROM_CLASS)
        pub.setTopicUnspecifiedFatal()
    return _installed_provider


class LoggingListenerExcHandler(IListenerExcHandler):
    """Production: a listener that raises is logged with its topic; the UI stays alive. Tests leave this unset."""

    def __call__(self, listenerID: str, topicObj) -> None:
        log.error("[bus] listener %s failed on topic %s:\n%s", listenerID, topicObj.getName(),
                  traceback.format_exc())


class Bus:
    """The Tk thread's handle on pypubsub: subscribe bound methods, publish outcomes, unsubscribe all on close."""

    def __init__(self, *, production: bool = False):
        install_topics()
        if production:
            pub.setListenerExcHandler(LoggingListenerExcHandler())
        self._owner = threading.get_ident()
        self._subscriptions: list[tuple[Callable, str]] = []
        self.closed = False

    def subscribe(self, handler: Callable, topic: str) -> None:
        pub.subscribe(handler, topic)
        self._subscriptions.append((handler, topic))

    def subscribe_table(self, table: dict[str, Callable]) -> None:
        """A controller's topic → handler table."""
        for topic, handler in table.items():
            self.subscribe(handler, topic)

    def send(self, topic: str, **data: Any) -> None:
        if threading.get_ident() != self._owner:
            raise RuntimeError(f"[bus] {topic} published from a worker thread; use Outbox.post")
        if not self.closed:
            pub.sendMessage(topic, **data)

    def close(self) -> None:
        """Unsubscribe everything this bus subscribed (pypubsub is process-wide; a new app starts clean)."""
        self.closed = True
        for handler, topic in self._subscriptions:
            try:
                pub.unsubscribe(handler, topic)
            except Exception:  # already gone (weak reference collected)
                pass
        self._subscriptions.clear()


class Outbox:
    """Thread-safe hand-over from worker threads to the Tk thread: (topic, data) pairs, published by the pump."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, dict]] = queue.Queue()

    def post(self, topic: str, **data: Any) -> None:
        self._queue.put((topic, data))

    def drain(self, bus: Bus, limit: int) -> int:
        """Publish at most `limit` queued messages on `bus`; return how many. Call on the bus's thread."""
        count = 0
        while count < limit:
            try:
                topic, data = self._queue.get_nowait()
            except queue.Empty:
                break
            count += 1
            bus.send(topic, **data)
        return count

    def pending(self) -> int:
        return self._queue.qsize()
