"""The embedded local cloud: with no AWS stack configured, the app runs `tl-fif cloud up` in the background and
points its AWS backend at it (`tlfif_local.embedded.start_in_background`). Stopped when the app exits."""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from app.services.endpoints import AwsEndpoint, PendingEndpoint

log = logging.getLogger("tlfif.app.local_cloud")


def _default_starter() -> Any:
    from tlfif_local.embedded import start_in_background  # imported only when the local cloud is wanted

    return start_in_background(port=0)


class EmbeddedCloud:
    """An EndpointSource: `get()` waits until the local cloud has printed its endpoints."""

    def __init__(self, *, starter: Callable[[], Any] = _default_starter,
                 notify: Callable[..., None] | None = None):
        self._starter = starter
        self._notify = notify or (lambda topic, **data: None)
        self._endpoint = PendingEndpoint()
        self._handle: Any = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._start, name="local-cloud-start", daemon=True)

    def start(self) -> EmbeddedCloud:
        self._thread.start()
        return self

    def get(self, timeout: float | None = None) -> AwsEndpoint:
        return self._endpoint.get(timeout)

    @property
    def info(self) -> dict | None:
        return self._handle.info if self._handle is not None else None

    def _start(self) -> None:
        try:
            handle = self._starter()
        except Exception as err:
            message = f"[local-cloud] could not start: {err.__class__.__name__}: {err}"
            log.error(message)
            self._endpoint.fail(message)
            self._notify("cloud.failed", message=message)
            return
        with self._lock:
            self._handle = handle
            if self._stopping.is_set():  # the app closed while we were starting
                self._stop_handle()
                return
        endpoint = AwsEndpoint.from_local_info(handle.info, handle.login_secret)
        log.info("[local-cloud] up at %s", endpoint.api_url)
        self._endpoint.set(endpoint)
        self._notify("cloud.ready", api_url=endpoint.api_url)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the local cloud (waiting for a start still in progress, so no process is left behind)."""
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._lock:
            self._stop_handle()

    def _stop_handle(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.stop()
            except Exception:
                log.exception("[local-cloud] stop failed")
