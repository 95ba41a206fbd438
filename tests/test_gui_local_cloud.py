"""End to end: the real window on the embedded local cloud (`tl-fif cloud up` as a child process, started the way
the app starts it when no AWS stack is configured): silent PKCE sign-in, cold start, a growing answer, Stop GPU,
no token on disk, and no cloud process left after the app closes."""
from __future__ import annotations

import os

import pytest

from app.timings import Timings
from app.models.settings import Settings
from support.xvfb import xvfb_display  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.gui, pytest.mark.e2e, pytest.mark.timeout(120)]

# Polls kept well under the API's 5 requests/s per user.
TIMINGS = Timings(ping_interval_s=2.0, ping_starting_s=0.5, ping_after_stop_s=0.5, cost_interval_s=3.0,
                  result_poll_start_s=0.05, result_poll_cap_s=0.3)


def test_prompt_on_the_embedded_local_cloud(gui, home, root):
    from tlfif_local.embedded import start_in_background

    handles = []

    def starter():
        handles.append(start_in_background(port=0, boot_seconds=1, extra_args=["--echo-delay-ms", "80"]))
        return handles[-1]

    assert not Settings().aws.configured
    d = gui(settings=Settings(), cloud_starter=starter, timings=TIMINGS)
    w = d.window
    d.until(lambda: w.status.gpu_label["text"] == "GPU stopped", 60,
            "the local cloud up and GPU stopped after the silent sign-in")
    assert d.app.endpoints.get(0).api_url.startswith("http://127.0.0.1:")
    assert d.app.tokens.user and w.status.notice["text"] == f"Signed in as {d.app.tokens.user}"

    d.type(w.prompt.prompt_box, "hello from the window")
    d.send_with_ctrl_enter()
    d.update()
    rid = d.last_request_id()
    assert w.prompt.send_btn["text"].startswith("Sending") and w.prompt.stop_btn.instate(["!disabled"])
    d.until(lambda: w.status.gpu_label["text"].startswith("GPU starting"), 10, "GPU starting")
    seen: list[str] = []

    def done():
        text = w.output.answer_text(rid)
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        return bool(d.recorder.of("job.done") or d.recorder.of("job.failed"))

    d.until(done, 40, "the answer")
    assert not d.recorder.of("job.failed"), d.recorder.of("job.failed")
    assert seen[-1].endswith("You said: hello from the window")
    assert len(seen) >= 2, f"the answer should grow: {seen}"
    assert " · total " in w.output.meta_text(rid) and "echo engine · €0.00" in w.output.meta_text(rid)
    assert w.prompt.send_btn["text"] == "Send" and w.prompt.stop_btn.instate(["disabled"])
    d.until(lambda: "auto-stop in" in w.status.gpu_label["text"], 10, "ready with the idle countdown")

    w.toolbar.stop_btn.invoke()
    d.update()
    assert w.status.gpu_label["text"] == "GPU stopping…"
    d.until(lambda: w.status.gpu_label["text"] == "GPU stopped", 10, "GPU stopped within 10 s")

    secrets = [v for v in (d.app.tokens._token or {}).values() if v]
    assert secrets
    for path in (p for p in home.rglob("*") if p.is_file()):
        content = path.read_bytes()
        assert not any(s.encode() in content for s in secrets), f"a token was written to {path}"
    d.close()
    assert handles and not handles[0].alive(), "closing the app stops the local cloud"
    assert root.errors == []
    assert os.environ["HOME"] == str(home)
