"""Serve a WSGI app on loopback with waitress: every connection of a burst is accepted and answered.

waitress accepts on one asyncore loop (listen backlog 1024, no thread per connection) and hands complete requests
to a small thread pool, so 128 simultaneous clients queue instead of being reset, as `http.server`'s backlog of 5
did. It also validates HTTP framing itself (chunk sizes, header sizes, body limit) and answers 400/413.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from waitress import wasyncore
from waitress.server import create_server

LOOPBACK = "127.0.0.1"
BACKLOG = 1024
CONNECTION_LIMIT = 1000  # waitress stops accepting at 100 open connections by default
THREADS = 8


class LoopbackServer:
    """`app` on http://127.0.0.1:<port> (port 0: a free one), served from a daemon thread until `stop()`."""

    def __init__(self, app: Callable, *, port: int = 0, name: str = "wsgi", threads: int = THREADS,
                 max_body: int | None = None):
        logging.getLogger("waitress").setLevel(logging.ERROR)  # "queue depth" warnings are expected in a burst
        options = {"max_request_body_size": max_body} if max_body is not None else {}
        self._server = create_server(app, host=LOOPBACK, port=port, threads=threads, backlog=BACKLOG,
                                     connection_limit=CONNECTION_LIMIT, ident=None, clear_untrusted_proxy_headers=True,
                                     channel_timeout=60, **options)
        self.port = self._server.effective_port
        self.host_port = f"{LOOPBACK}:{self.port}"
        self.url = f"http://{self.host_port}"
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)

    def start(self) -> LoopbackServer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        server = self._server
        server.task_dispatcher.shutdown(timeout=timeout)
        if self._thread.is_alive():
            # Close every socket on the loop's own thread: the loop ends when its map is empty.
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
            self._thread.join(timeout)
        else:
            wasyncore.close_all(server._map)


def allowed_hosts(port: int) -> frozenset[str]:
    """The `Host` values a loopback server answers: its own address and port (no DNS rebinding)."""
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})
