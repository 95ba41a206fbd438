"""The one small interface every engine implements.

    engine.ready() -> bool                 one probe: does the engine answer? (the watcher retries with backoff)
    engine.generate(job) -> Generation     may raise EngineError / AdapterError before any text
    engine.model                           the model name results report (None until known)
    engine.close()

    for piece in generation: ...           text pieces as the engine produces them
    generation.close()                     cancel from ANY thread (SIGTERM now, POST /cancel later): iteration
                                           ends promptly and quietly, `generation.cancelled` is then True
    generation.tokens                      completion tokens the engine reported (None: count the pieces)
    generation.model                       the model (or LoRA name) that answered
    generation.turns_dropped               earlier conversation turns left out to fit the context window
"""
from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from typing import Iterator

from tlfif_common.jobs import Job
from tlfif_common.api import ERR_ADAPTER, ERR_ENGINE

_PIECE = re.compile(r"\s*\S+|\s+")


def split_words(text: str) -> list[str]:
    """'You said: hi' → ['You', ' said:', ' hi']: word-sized pieces, leading space kept, that join back."""
    return _PIECE.findall(text)


class EngineError(RuntimeError):
    """The engine failed; the job ends with an `error` result carrying `code`."""

    code = ERR_ENGINE


class AdapterError(EngineError):
    """A job's LoRA adapter could not be fetched or loaded."""

    code = ERR_ADAPTER


class Generation(ABC):
    model: str
    tokens: int | None = None
    turns_dropped: int = 0

    def __init__(self) -> None:
        self._cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def close(self) -> None:
        self._cancel.set()

    @abstractmethod
    def __iter__(self) -> Iterator[str]:
        ...


class Engine(ABC):
    name: str
    model: str | None = None

    @abstractmethod
    def ready(self) -> bool:
        ...

    @abstractmethod
    def generate(self, job: Job) -> Generation:
        ...

    def close(self) -> None:  # noqa: B027 (optional hook: most engines hold nothing to close)
        return None
