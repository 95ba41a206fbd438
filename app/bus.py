"""The message bus: pypubsub with the app's topic tree, plus the outbox that worker threads post to.

Only the thread that made the `Bus` (the Tk thread) may publish; a worker thread that has a result calls
`Outbox.post(topic, **data)`, and the pump (`app.controllers.pump`) publishes it later on the Tk thread. A result
only the controller that started the work wants (a /ping answer, a chat read from disk) is not a topic: the worker
hands it back with `Outbox.call(controller.method, **data)`, and the pump calls that method on the Tk thread.
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
        self._production = production
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

    def call(self, handler: Callable[..., Any], **data: Any) -> None:
        """Run a controller's own handler for a result its worker handed back. Like a listener: in production a
        failure is logged with the handler's name and the UI stays alive; in tests it raises."""
        if threading.get_ident() != self._owner:
            raise RuntimeError(f"[bus] {handler.__qualname__} called from a worker thread; use Outbox.call")
        if self.closed:
            return
        if not self._production:
            handler(**data)
            return
        try:
            handler(**data)
        except Exception:
            log.exception("[bus] %s failed", handler.__qualname__)

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
    """Thread-safe hand-over from worker threads to the Tk thread, in order: outcomes for everyone (`post`, a topic)
    and results for the controller that asked (`call`, one of its bound methods). The pump drains it."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str | Callable[..., Any], dict]] = queue.Queue()

    def post(self, topic: str, **data: Any) -> None:
        self._queue.put((topic, data))

    def call(self, handler: Callable[..., Any], **data: Any) -> None:
        self._queue.put((handler, data))

    def drain(self, bus: Bus, limit: int) -> int:
        """Deliver at most `limit` queued messages through `bus`; return how many. Call on the bus's thread."""
        count = 0
        while count < limit:
            try:
                target, data = self._queue.get_nowait()
            except queue.Empty:
                break
            count += 1
            if isinstance(target, str):
                bus.send(target, **data)
            else:
                bus.call(target, **data)
        return count

    def pending(self) -> int:
        return self._queue.qsize()
