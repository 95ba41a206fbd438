"""The real window under Xvfb: the sidebar shows each chat's cost and this month's across the chats, AWS (the local
cloud's GPU time) and OpenAI (the fake OpenAI server's usage) apart, with the dollars in the tooltip; deleting a chat
takes its answers out of the sidebar's sum but leaves the CostLabel's month (AWS's bill) as it was. The cloud is
priced as a deployed stack (local=False): a local answer itself costs nothing."""
from __future__ import annotations

from dataclasses import replace

import pytest

from app.models.answer_stats import money
from app.models.settings import Settings
from app.timings import Timings
from support.fake_openai import FakeOpenAI
from support.xvfb import xvfb_display  # noqa: F401  (session fixture)

pytestmark = [pytest.mark.gui, pytest.mark.timeout(90)]

TIMINGS = Timings(retry_delays=(0.05, 0.1, 0.2), cold_start_retry_s=0.2, result_poll_start_s=0.02,
                  result_poll_cap_s=0.1, ping_interval_s=0.5, ping_starting_s=0.2, ping_after_stop_s=0.1,
                  cost_interval_s=0.3)
KEY = "sk-spend-test"


def euros(amount: float) -> str:
    return f"€{money(amount)}" if amount else "€0"


def test_chat_and_month_costs_in_the_sidebar_and_a_delete_leaves_the_bill_alone(gui, api):
    api.ready_gpu()
    api.set_month_cost(2.5, [1.0, 1.5])
    with FakeOpenAI(reply="Priced by the token", api_key=KEY) as srv:
        d = gui(settings=replace(Settings(), openai_base_url=srv.base_url, openai_model="gpt-4o-mini"),
                endpoints=api.endpoints(local=False), timings=TIMINGS, env={"OPENAI_API_KEY": KEY})
        side = d.window.sidebar
        d.ask("first, on the GPU")
        d.app.bus.send("ui.backend_selected", backend="openai")
        d.ask("then OpenAI")
        first = side.current_id
        stats = [m["stats"] for m in d.recorder.of("job.done")]
        aws_eur, usd, openai_eur = stats[0]["cost_eur"], stats[1]["cost_usd"], stats[1]["cost_eur"]
        assert aws_eur > 0 and usd > 0
        total = euros(aws_eur + openai_eur)
        d.until(lambda: side.chat_cost["text"] == f"This chat {total} · AWS {euros(aws_eur)} · OpenAI "
                f"{euros(openai_eur)}", what="the chat's cost")
        assert side.tree.set(first, "cost") == total
        assert f"OpenAI ${money(usd)}" in side.chat_cost_tip.text

        d.app.bus.send("ui.backend_selected", backend="aws")
        d.window.prompt.prompt_box.event_generate("<Control-n>")
        d.update()
        d.ask("a second chat")
        second = side.current_id
        aws2 = d.recorder.of("job.done")[-1]["stats"]["cost_eur"]
        month = euros(aws_eur + aws2 + openai_eur)
        d.until(lambda: side.month_cost["text"].startswith(f"Chats this month {month} · AWS "
                                                           f"{euros(aws_eur + aws2)}"), what="the month's sum")
        side.month_cost.focus_force()  # the dollars are in its tooltip, for the keyboard too
        d.until(lambda: side.month_cost_tip.shown, what="the tooltip")
        assert f"OpenAI ${money(usd)}" in side.month_cost_tip.label["text"]

        label = d.window.toolbar.cost_label
        d.until(lambda: label["text"].startswith("Cost: Month €2.50"), timeout=15, what="the bill")
        side.tree.selection_set(first)
        d.until(lambda: side.current_id == first, what="the first chat open")
        side.delete_btn.invoke()
        side.confirm_dialog.ok_btn.invoke()
        d.until(lambda: first not in side.tree.get_children(), what="deleted")
        d.until(lambda: side.month_cost["text"].startswith(f"Chats this month {euros(aws2)} · AWS {euros(aws2)} · "
                                                           "OpenAI €0"), what="its answers out of the sum")
        assert side.tree.set(second, "cost") == euros(aws2)
        d.update(1.0)  # a few cost polls later
        assert label["text"].startswith("Cost: Month €2.50"), "the bill is AWS's, not the history's"
