"""The backend contract (RQL 12): what every chat backend offers the job controller, and the types it uses.

A backend runs on a worker thread: `send_prompt` submits and returns a submission, `get_response` follows it to the
final `Reply` while reporting progress through `JobEvents`, `handle_errors` turns any exception into the message the
user sees (starting with the backend's tag), `cancel` stops a request in flight. Backends never touch Tk or the bus.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Protocol, runtime_checkable

from app.models.settings import Settings

COLD_START_MESSAGE = "Server likely cold-starting (~90s). Will retry."


@dataclass(frozen=True)
class Timings:
    """Every delay the controllers use, in seconds; tests shrink them."""
    retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0)   # after a 502/504 (RQL 1.3)
    cold_start_retry_s: float = 5.0       # then, while /ping says starting
    cold_start_budget_s: float = 180.0    # give up after this long
    result_poll_start_s: float = 0.1      # result_url polling backoff
    result_poll_cap_s: float = 1.0
    result_timeout_s: float = 300.0       # the job's TTL and the presigned URL's life
    result_error_tolerance: int = 5       # consecutive failed reads of result_url before giving up
    cancel_wait_s: float = 10.0           # after Stop: how long to wait for the result to say `cancelled`
    ping_interval_s: float = 15.0
    ping_starting_s: float = 2.0          # while the GPU boots
    ping_after_stop_s: float = 1.0        # after Stop GPU, until stopped
    ping_after_stop_window_s: float = 60.0
    cost_interval_s: float = 30.0         # CostLabel (RQL 1.1.5)
    progress_min_interval_s: float = 0.05  # at most ~20 answer updates a second reach the Tk thread
    endpoint_wait_s: float = 120.0        # how long a call waits for the embedded local cloud to come up
    http_timeout_s: float = 15.0


@dataclass(frozen=True)
class PromptRequest:
    request_id: str
    prompt: str
    idle: int
    messages: list | None = None   # multi-turn context (issue "Chat experience")
    params: dict | None = None


@dataclass(frozen=True)
class Reply:
    text: str
    tokens: int = 0
    model: str = ""
    ttft_ms: int | None = None        # from the start of generation to the first token
    generation_ms: int | None = None  # from the start of generation to the last token (AWS: the GPU time it used)
    prompt_tokens: int | None = None  # token usage the API reported (OpenAI); None when none was reported
    cached_tokens: int = 0
    stopped: bool = False             # the user stopped it (Stop / Esc); `text` is what came until then


class JobEvents(Protocol):
    """What a backend reports while a request runs (called on the worker thread)."""

    def queued(self, status: str, eta_s: float, job_id: str) -> None: ...

    def retrying(self, message: str, attempt: int, delay_s: float) -> None: ...

    def progress(self, text: str, tokens: int) -> None: ...


class BackendError(Exception):
    """A failure already phrased for the user, starting with the backend tag."""


class Cancelled(Exception):
    """The request was cancelled by the user."""


class NotSignedIn(Exception):
    """A background call found no token and may not open a login window."""


@dataclass
class BackendContext:
    """What backends may use; built once by the application."""
    settings: Callable[[], Settings]
    endpoints: Any           # app.services.endpoints.EndpointSource
    tokens: Any              # app.services.auth.TokenProvider
    timings: Timings = field(default_factory=Timings)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)


@runtime_checkable
class BackendClient(Protocol):
    key: ClassVar[str]     # saved in the ini: aws | openai
    label: ClassVar[str]   # shown in the dropdown
    tag: ClassVar[str]     # starts every error and log line: [aws], [openai]

    def send_prompt(self, request: PromptRequest, events: JobEvents) -> Any: ...

    def get_response(self, submission: Any, events: JobEvents) -> Reply: ...

    def handle_errors(self, error: BaseException) -> str: ...

    def cancel(self, request_id: str) -> None: ...


class CancelFlags:
    """Per-request cancel events shared by a backend's worker threads."""

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def flag(self, request_id: str) -> threading.Event:
        with self._lock:
            return self._flags.setdefault(request_id, threading.Event())

    def set(self, request_id: str) -> None:
        self.flag(request_id).set()

    def drop(self, request_id: str) -> None:
        with self._lock:
            self._flags.pop(request_id, None)


def wait_or_cancel(flag: threading.Event, seconds: float) -> None:
    """Sleep `seconds`, raising Cancelled as soon as the flag is set."""
    if flag.wait(max(seconds, 0.0)):
        raise Cancelled()
