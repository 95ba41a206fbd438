"""The built-in echo engine (demos, pipeline tests, the local cloud): no model, a clearly labelled reply."""
from __future__ import annotations

from typing import Iterator

from tlfif_common.jobs import Job
from tlfif_common.names import ECHO_MODEL

from .base import Engine, Generation, split_words

ECHO_LABEL = "[echo engine: no model loaded]"
__all__ = ["ECHO_LABEL", "ECHO_MODEL", "EchoEngine", "echo_text"]


def echo_text(prompt: str) -> str:
    return f"{ECHO_LABEL} You said: {prompt}"


class EchoGeneration(Generation):
    def __init__(self, text: str, delay_s: float):
        super().__init__()
        self.model = ECHO_MODEL
        self._pieces = split_words(text)
        self._delay = delay_s
        self.tokens = len(self._pieces)

    def __iter__(self) -> Iterator[str]:
        for piece in self._pieces:
            # Event.wait doubles as the delay and the cancellation check.
            if (self._delay > 0 and self._cancel.wait(self._delay)) or self._cancel.is_set():
                return
            yield piece


class EchoEngine(Engine):
    name = "echo"
    model = ECHO_MODEL

    def __init__(self, delay_ms: int = 30):
        self.delay_s = max(0, delay_ms) / 1000.0

    def ready(self) -> bool:
        return True

    def generate(self, job: Job) -> EchoGeneration:
        return EchoGeneration(echo_text(job.prompt), self.delay_s)
