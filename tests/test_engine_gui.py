"""The window on a local cloud that serves a real model: a prompt typed in the window gets the model's answer (not
the echo), with its stats line."""
from __future__ import annotations

import os

import pytest
from support.local_cloud import RELAXED_THROTTLE
from support.local_model import SMALL_CONTEXT
from support.xvfb import xvfb_display  # noqa: F401  (session fixture)
from test_gui_chats import CHAT_TOPICS, TIMINGS, ask, replace_entry

from app.models.settings import Settings
from app.services.endpoints import FixedEndpoint
from support.app_harness import GuiDriver, Recorder
from tlfif_watcher.engines.echo import ECHO_LABEL

pytestmark = [pytest.mark.gui, pytest.mark.e2e, pytest.mark.timeout(240)]


def test_a_prompt_in_the_window_gets_the_real_models_answer_with_its_stats(root, home, local_cloud_factory,
                                                                             gemma_gguf):
    cloud = local_cloud_factory("--model", gemma_gguf, "--ctx", str(SMALL_CONTEXT), "--boot-seconds", "0",
                                *RELAXED_THROTTLE)
    d = GuiDriver(root, timings=TIMINGS, env={}, settings=Settings(),
                  endpoints=FixedEndpoint(cloud.endpoint()))
    try:
        d.chats = Recorder(d.app.bus, CHAT_TOPICS)
        side = d.window.sidebar
        side.settings_btn.invoke()  # this chat's settings: short, deterministic answers
        dialog = side.settings_dialog
        replace_entry(d, dialog.temperature_entry, "0")
        replace_entry(d, dialog.max_tokens_entry, "24")
        dialog.ok_btn.invoke()
        d.update()

        rid = ask(d, "The capital of France is", timeout=150)
        exchange = d.app.exchanges.get(rid)
        assert exchange.status == "done", exchange.error
        assert exchange.text.strip() and ECHO_LABEL not in exchange.text and "You said" not in exchange.text
        assert d.window.output.answer_text(rid) == exchange.text
        meta = d.window.output.meta_text(rid)
        assert "TTFT " in meta and "tok/s" in meta and " tokens" in meta, meta
        assert meta.endswith(f"· local CPU · €0.00 · {os.path.basename(gemma_gguf)}"), meta
        assert root.errors == [], f"Tk callbacks raised: {root.errors}"
    finally:
        d.close()
