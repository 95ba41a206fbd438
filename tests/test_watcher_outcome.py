"""The one builder of a job's result object (`tlfif_watcher.outcome`), on an injected clock."""
from __future__ import annotations

from tlfif_common import api
from tlfif_watcher.outcome import Run, outcome


def a_run(*pieces_at: tuple[str, float], started: float = 10.0, model: str = "m") -> Run:
    run = Run(started, model)
    for piece, at in pieces_at:
        run.add(piece, at)
    return run


def test_a_running_snapshot_has_the_text_so_far_and_no_latency_yet():
    result = outcome("j", api.STATUS_RUNNING, a_run(("Hel", 10.25), ("lo", 10.5)))
    assert (result.text, result.tokens, result.ttft_ms, result.latency_ms) == ("Hello", 2, 250, None)
    assert not result.final and result.error is None


def test_done_reports_the_engines_token_count_when_it_gave_one():
    run = a_run(("a", 10.1), ("b", 10.2))
    assert outcome("j", api.STATUS_DONE, run, now=11.0).tokens == 2
    run.tokens = 7
    result = outcome("j", api.STATUS_DONE, run, now=11.0)
    assert (result.tokens, result.latency_ms, result.model, result.final) == (7, 1000, "m", True)


def test_an_engine_error_keeps_the_text_generated_before_it():
    result = outcome("j", api.STATUS_ERROR, a_run(("partial", 10.1)), now=10.4, error_code="engine_error",
                     error_message="the stream broke")
    assert result.text == "partial" and result.error == api.ResultError("engine_error", "the stream broke")


def test_a_job_cancelled_before_it_started_took_no_time_and_has_no_text():
    result = outcome("j", api.STATUS_CANCELLED, a_run(), now=10.0)
    assert (result.text, result.tokens, result.ttft_ms, result.latency_ms, result.model) == ("", 0, None, 0, "m")


def test_a_job_that_never_ran_has_only_its_status_and_error():
    result = outcome("j", api.STATUS_ERROR, error_code=api.ERR_EXPIRED)
    assert result.to_dict() == {"id": "j", "status": "error", "text": "", "tokens": 0, "ttft_ms": None,
                                "latency_ms": None, "model": None,
                                "error": {"code": api.ERR_EXPIRED, "message": api.ERR_EXPIRED}, "turns_dropped": 0}
    assert tuple(result.to_dict()) == api.RESULT_FIELDS


def test_every_snapshot_and_the_final_result_say_how_many_turns_the_engine_left_out():
    run = a_run(("a", 10.1))
    run.turns_dropped = 2
    assert outcome("j", api.STATUS_RUNNING, run).turns_dropped == 2
    final = outcome("j", api.STATUS_DONE, run, now=10.5)
    assert api.Result.from_dict(final.to_dict()) == final and final.to_dict()["turns_dropped"] == 2
