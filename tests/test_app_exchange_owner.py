"""One owner of an exchange's state: the job controller writes the outcome into the exchange before it publishes
job.done / job.cancelled / job.failed, so every listener of those (the chat history among them) reads it complete."""
from __future__ import annotations

import pytest

from app.models.exchange import DONE, FAILED
from app.timings import Timings

pytestmark = pytest.mark.timeout(60)

TIMINGS = Timings(retry_delays=(0.05, 0.1, 0.2), cold_start_retry_s=0.1, result_poll_start_s=0.01,
                  result_poll_cap_s=0.05, ping_interval_s=0.2, progress_min_interval_s=0.0)


@pytest.fixture
def stack(api, make_stack):
    return make_stack(api.endpoints(), TIMINGS)


class ExchangeAtOutcome:
    """A listener that copies the exchange the moment its outcome is published."""

    def __init__(self, stack):
        self._exchanges = stack.exchanges
        self.seen: dict[str, tuple] = {}
        stack.bus.subscribe(self.on_done, "job.done")
        stack.bus.subscribe(self.on_failed, "job.failed")

    def _copy(self, request_id: str) -> None:
        e = self._exchanges.get(request_id)
        self.seen[request_id] = (e.status, e.text, e.tokens, e.latency_ms, dict(e.stats), e.error, e.finished_at)

    def on_done(self, request_id, backend, text, model, stats) -> None:
        self._copy(request_id)

    def on_failed(self, request_id, backend, message) -> None:
        self._copy(request_id)


def test_a_listener_of_job_done_reads_the_exchange_complete(stack, api):
    watch = ExchangeAtOutcome(stack)
    stack.bus.send("ui.send", prompt="who owns the exchange?")
    stack.until(lambda: stack.of("job.done") or stack.of("job.failed"))
    done = stack.of("job.done")[0]
    status, text, tokens, latency_ms, stats, _, finished_at = watch.seen[done["request_id"]]
    assert status == DONE and text == done["text"] == api.reply("who owns the exchange?")
    assert stats == done["stats"] and tokens == stats["tokens"] > 0 and latency_ms == stats["latency_ms"] > 0
    assert finished_at is not None
    assert "tokens" not in done and "latency_ms" not in done, "job.done carries the figures once, in stats"


def test_a_listener_of_job_failed_reads_the_failure_in_the_exchange(stack, api):
    watch = ExchangeAtOutcome(stack)
    api.fail("POST", "/infer", 400)
    stack.bus.send("ui.send", prompt="refused")
    stack.until(lambda: stack.of("job.failed"))
    failed = stack.of("job.failed")[0]
    status, _, _, _, _, error, finished_at = watch.seen[failed["request_id"]]
    assert status == FAILED and error == failed["message"] and error.startswith("[aws] ")
    assert finished_at is not None
