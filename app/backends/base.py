"""The chat backend contract: what the job controller calls on a worker thread, and the types it passes.

`run(request, events)` sends one prompt and follows it to its final `Reply`, reporting progress through `JobEvents`;
`error_message` turns any exception into what the user sees (starting with the backend's tag); `cancel` stops a
request in flight, from another worker thread. What only some backends need (an API key, a warm-up, closing) has a
do-nothing default here, so no caller has to ask whether a backend has it. Backends never touch Tk or the bus.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Callable, ClassVar, Mapping, Protocol

from app.models.settings import Settings
from app.services.tlfif_session import TlfifSession
from app.timings import Timings


@dataclass(frozen=True)
class PromptRequest:
    request_id: str
    prompt: str
    idle: int
    messages: list | None = None   # the chat's earlier turns
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
    local: bool = False               # answered by the local cloud on this machine: it costs nothing
    turns_dropped: int = 0            # earlier turns the server left out to fit the model's context window


class JobEvents(Protocol):
    """What a backend reports while a request runs (called on the worker thread)."""

    def queued(self, status: str, eta_s: float, job_id: str) -> None: ...

    def retrying(self, message: str, attempt: int, delay_s: float) -> None: ...

    def progress(self, text: str, tokens: int) -> None: ...


class BackendError(Exception):
    """A failure already phrased for the user, starting with the backend tag."""


class Cancelled(Exception):
    """The request was cancelled by the user."""


@dataclass
class BackendContext:
    """What backends may use; built once by the application."""
    settings: Callable[[], Settings]
    session: TlfifSession
    timings: Timings = field(default_factory=Timings)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)


class Backend:
    key: ClassVar[str]     # saved in the ini: aws | openai
    label: ClassVar[str]   # shown in the dropdown
    tag: ClassVar[str]     # starts every error and log line: [aws], [openai]

    def __init__(self, ctx: BackendContext):
        self._ctx = ctx

    def run(self, request: PromptRequest, events: JobEvents) -> Reply:
        """Send the prompt and follow it to the end; raise Cancelled when stopped before anything ran."""
        raise NotImplementedError

    def cancel(self, request_id: str) -> None:
        """Stop generating `request_id`; its `run` then returns a stopped Reply (or raises Cancelled)."""
        raise NotImplementedError

    def error_message(self, error: BaseException) -> str:
        if isinstance(error, Cancelled):
            return f"{self.tag} cancelled"
        if isinstance(error, BackendError):
            return str(error)
        return self._explain(error)

    def _explain(self, error: BaseException) -> str:
        """Phrase a failure of this backend's own calls (after Cancelled and BackendError are handled)."""
        return f"{self.tag} unexpected error: {error.__class__.__name__}: {error}"

    def needs_key(self) -> bool:
        """Must the user give an API key before a prompt is sent?"""
        return False

    def set_key(self, key: str) -> None:
        """Hold the API key the user typed (memory only)."""

    def warm_up(self) -> None:
        """Worker thread, at start-up: pay one-off set-up costs before the first prompt."""

    def close(self) -> None:
        """The app is closing: end what is still running and free what is held."""


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
