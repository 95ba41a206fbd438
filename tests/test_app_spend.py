"""What the chats cost, without widgets: per chat and this month, AWS and OpenAI apart, from stored stats; and the
history's query that feeds it (a real SQLite file)."""
from __future__ import annotations

import time

from app.models import spend
from app.models.answer_stats import COST_GPU, COST_TOKENS
from app.models.chat import Chat, exchange_record
from app.models.exchange import DONE, Exchange
from app.services.history_store import HistoryStore, chat_row

NOW = time.mktime((2026, 11, 20, 12, 0, 0, 0, 0, -1))
LAST_MONTH = time.mktime((2026, 10, 31, 23, 0, 0, 0, 0, -1))
AWS = {"cost_basis": COST_GPU, "cost_eur": 0.002}
OPENAI = {"cost_basis": COST_TOKENS, "cost_usd": 0.001, "cost_eur": 0.0009}
UNKNOWN = {"cost_basis": COST_TOKENS, "cost_note": "cost unknown: no price for model x"}


def test_each_chat_sums_its_answers_and_the_month_only_this_months():
    rows = [("a", NOW, AWS), ("a", NOW - 60, OPENAI), ("a", LAST_MONTH, AWS), ("b", NOW, OPENAI),
            ("b", NOW, UNKNOWN), ("b", NOW, {"ttft_ms": 5})]
    s = spend.summarise(rows, NOW)
    assert s.chats["a"].aws_eur == 0.004 and s.chats["a"].openai_usd == 0.001
    assert s.chats["b"] == spend.Spend(openai_eur=0.0009, openai_usd=0.001, unknown=1)
    assert abs(s.month.aws_eur - 0.002) < 1e-12
    assert abs(s.month.openai_usd - 0.002) < 1e-12 and abs(s.month.openai_eur - 0.0018) < 1e-12
    assert s.month.unknown == 1


def test_the_month_starts_at_local_midnight_on_the_first():
    start = spend.month_start(NOW)
    assert time.localtime(start)[:6] == (2026, 11, 1, 0, 0, 0)
    assert spend.summarise([("a", start, AWS)], NOW).month.aws_eur == 0.002
    assert spend.summarise([("a", start - 1, AWS)], NOW).month.aws_eur == 0


def test_texts_give_euros_and_the_tooltip_the_openai_dollars():
    s = spend.Spend(aws_eur=0.002, openai_eur=0.0009, openai_usd=0.001)
    assert spend.spend_text("This chat", s) == "This chat €0.0029 · AWS €0.0020 · OpenAI €0.0009"
    assert "OpenAI $0.0010 (€0.0009)" in spend.spend_tooltip(s)
    assert spend.short_text(spend.Spend()) == "" and spend.short_text(s) == "€0.0029"


def test_odd_stats_are_skipped_not_raised():
    s = spend.summarise([("a", NOW, {"cost_basis": COST_GPU, "cost_eur": "lots"}), ("a", NOW, {"cost_eur": True})],
                        NOW)
    assert s.chats["a"] == spend.Spend(unknown=1)


def test_the_history_hands_back_every_costed_answer(tmp_path):
    store, warning = HistoryStore.open(tmp_path / "history.sqlite3")
    assert warning is None
    for chat_id, stats in (("c1", AWS), ("c2", OPENAI), ("c2", {"ttft_ms": 4, "cost_basis": None})):
        chat = Chat(id=chat_id, created_at=NOW, updated_at=NOW)
        store.save_chat(chat_row(chat))
        ex = Exchange(request_id=f"r-{chat_id}-{id(stats)}", backend="aws", backend_label="AWS", prompt="p",
                      started_at=NOW, chat_id=chat_id)
        ex.status, ex.stats = DONE, stats
        store.save_exchange(chat_id, exchange_record(ex))
    rows = sorted(store.cost_rows())
    assert [(r[0], r[2]["cost_basis"]) for r in rows] == [("c1", COST_GPU), ("c2", COST_TOKENS)]
    store.delete_chat("c1")
    assert [r[0] for r in store.cost_rows()] == ["c2"]
    store.close()
