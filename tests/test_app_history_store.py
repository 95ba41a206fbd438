"""The chat history store and the exports, without widgets: a real SQLite file in a temporary directory."""
from __future__ import annotations

import dataclasses

import json
import sqlite3
from pathlib import Path

import pytest

from app.models.chat import Chat, ChatParams, ChatSummary, exchange_record
from app.models.exchange import DONE, FAILED, PENDING, STOPPED, Exchange
from app.services import chat_export, config_file
from app.services.history_store import NO_ANSWER_SAVED, HistoryStore, chat_row


def make_chat(chat_id: str = "c1", t0: float = 1_795_000_000.25, title: str = "First chat") -> Chat:
    chat = Chat(id=chat_id, created_at=t0, updated_at=t0, title=title,
                params=ChatParams(system="You are terse.\nAnswer in English.", temperature=0.3, max_tokens=200))
    rows = [(DONE, "Hello **there**", {"ttft_ms": 420, "tokens_per_s": 38.5, "cost_eur": 0.0004}),
            (FAILED, "", {}), (STOPPED, "Partial ans", {"stopped": True}), (DONE, "ünïcode ✓\n```py\nx=1\n```", {})]
    for n, (status, text, stats) in enumerate(rows, start=1):
        chat.attach(Exchange(
            request_id=f"{chat_id}-r{n}", backend="aws" if n % 2 else "openai",
            backend_label="AWS TinyLlama" if n % 2 else "OpenAI", prompt=f"Prompt {n}\nline two",
            started_at=t0 + 10 * n + 0.125, idle=5, text=text, tokens=len(text.split()),
            latency_ms=1000 + n if status != FAILED else None, model="echo" if text else "", status=status,
            error="[aws] HTTP 500: boom" if status == FAILED else "", stats=stats, chat_id=chat_id,
            finished_at=t0 + 10 * n + 3.5))
    chat.updated_at = chat.exchanges[-1].started_at
    return chat


def save(store: HistoryStore, chat: Chat) -> None:
    store.save_chat(chat_row(chat))
    for exchange in chat.exchanges:
        store.save_exchange(chat.id, exchange_record(exchange))


@pytest.fixture
def path(tmp_path) -> Path:
    return tmp_path / "data" / "history.sqlite3"


def test_data_dir_env_var_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("TLFIF_DATA_DIR", str(tmp_path / "override"))
    assert config_file.history_path() == tmp_path / "override" / "history.sqlite3"
    monkeypatch.delenv("TLFIF_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert config_file.data_dir() == tmp_path / "xdg" / "tl-fif"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert config_file.data_dir() == tmp_path / "home" / ".local" / "share" / "tl-fif"


def test_round_trip_through_a_reopened_file(path):
    store, warning = HistoryStore.open(path)
    assert warning is None and path.exists()
    chat = make_chat()
    save(store, chat)
    older = make_chat("c0", t0=1_794_000_000.0, title="Older")
    save(store, older)
    store.close()

    again, warning = HistoryStore.open(path)
    assert warning is None
    assert again.list_chats() == [ChatSummary("c1", "First chat", chat.updated_at),
                                  ChatSummary("c0", "Older", older.updated_at)]
    loaded = again.load_chat("c1")
    assert loaded == chat and loaded.saved
    assert [e.status for e in loaded.exchanges] == [DONE, FAILED, STOPPED, DONE]
    assert loaded.exchanges[0].stats == {"ttft_ms": 420, "tokens_per_s": 38.5, "cost_eur": 0.0004}
    assert again.load_chat("nope") is None
    raw = sqlite3.connect(path).execute("SELECT status FROM exchanges ORDER BY seq").fetchall()
    assert [r[0] for r in raw[:4]] == ["done", "failed", "cancelled", "done"], "stopped is stored as cancelled"
    again.close()


def test_an_exchange_is_saved_when_sent_and_again_when_it_ends(path):
    store, _ = HistoryStore.open(path)
    chat = Chat(id="c", created_at=1.0, updated_at=1.0, title="T")
    store.save_chat(chat_row(chat))
    e = Exchange(request_id="r", backend="aws", backend_label="AWS TinyLlama", prompt="hi", started_at=2.0,
                 chat_id="c", parent_id="")
    store.save_exchange("c", exchange_record(e))
    e.text, e.status, e.latency_ms, e.stats, e.finished_at = "hello", DONE, 800, {"ttft_ms": 1}, 3.0
    store.save_exchange("c", exchange_record(e))
    loaded = store.load_chat("c")
    assert loaded.exchanges == [e]


def test_an_exchange_left_pending_reads_back_as_failed_with_a_reason(path):
    store, _ = HistoryStore.open(path)
    chat = make_chat()
    chat.exchanges[-1].status, chat.exchanges[-1].text = PENDING, ""
    save(store, chat)
    last = store.load_chat("c1").exchanges[-1]
    assert last.status == FAILED and last.error == NO_ANSWER_SAVED


def test_rename_and_delete(path):
    store, _ = HistoryStore.open(path)
    save(store, make_chat())
    save(store, make_chat("c2", t0=1_796_000_000.0, title="Second"))
    store.rename_chat("c1", "Renamed")
    loaded = store.load_chat("c1")
    assert loaded.title == "Renamed" and loaded.renamed
    store.delete_chat("c1")
    assert [s.id for s in store.list_chats()] == ["c2"]
    assert store.load_chat("c1") is None
    leftovers = store._conn.execute("SELECT COUNT(*) FROM exchanges WHERE conversation_id = 'c1'").fetchone()[0]
    assert leftovers == 0, "a chat's exchanges go with it"


def test_settings_of_a_chat_are_updated_in_place(path):
    store, _ = HistoryStore.open(path)
    chat = make_chat()
    save(store, chat)
    chat.params = ChatParams(system="", temperature=1.5, max_tokens=64)
    store.save_chat(chat_row(chat))
    assert store.load_chat("c1").params == chat.params
    assert len(store.list_chats()) == 1


@pytest.mark.parametrize("content", [
    b"this is not a database at all, just some garbage bytes\x00\x01\x02" * 50,
    b"SQLite format 3\x00" + b"\xff" * 4000,   # a header, then rubbish pages
])
def test_a_corrupt_file_is_moved_aside_and_a_fresh_store_started(path, content):
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    store, warning = HistoryStore.open(path)
    aside = [p for p in path.parent.iterdir() if p.name.startswith("history.sqlite3.corrupt-")]
    assert len(aside) == 1 and aside[0].read_bytes() == content, "the old file is kept, byte for byte"
    assert warning and "unreadable" in warning and str(aside[0]) in warning
    assert store.path == path and store.list_chats() == []
    save(store, make_chat())
    assert store.load_chat("c1") == make_chat()


def test_a_database_that_is_not_a_tlfif_history_is_moved_aside(path):
    path.parent.mkdir(parents=True)
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE notes (body TEXT)")
    other.execute("INSERT INTO notes VALUES ('keep me')")
    other.commit()
    other.close()
    store, warning = HistoryStore.open(path)
    assert warning and "not a TL-FIF history" in warning
    aside = next(path.parent.glob("history.sqlite3.corrupt-*"))
    assert sqlite3.connect(aside).execute("SELECT body FROM notes").fetchone() == ("keep me",)
    assert store.list_chats() == []


def test_a_history_from_a_newer_tlfif_is_kept_aside_not_overwritten(path):
    store, _ = HistoryStore.open(path)
    save(store, make_chat())
    store._conn.execute("PRAGMA user_version = 99")
    store.close()
    _, warning = HistoryStore.open(path)
    assert warning and "schema version 99" in warning
    assert len(list(path.parent.glob("history.sqlite3.corrupt-*"))) == 1


def test_a_history_from_before_branches_gains_the_columns_and_reads_as_one_line(path):
    store, _ = HistoryStore.open(path)
    chat = make_chat()
    save(store, chat)
    store._conn.execute("ALTER TABLE exchanges DROP COLUMN parent_id")  # as the previous release wrote it
    store._conn.execute("ALTER TABLE conversations DROP COLUMN shown")
    store.close()
    again, warning = HistoryStore.open(path)
    assert warning is None, "an older history is upgraded in place, not moved aside"
    loaded = again.load_chat("c1")
    assert [e.parent_id for e in loaded.exchanges] == ["", "c1-r1", "c1-r2", "c1-r3"]
    assert loaded.branch() == loaded.exchanges
    alt = dataclasses.replace(loaded.exchanges[1], request_id="c1-r2b", parent_id="c1-r1", prompt="edited")
    loaded.add(alt)
    again.save_chat(chat_row(loaded))
    again.save_exchange("c1", exchange_record(alt))
    again.close()
    third, _ = HistoryStore.open(path)
    back = third.load_chat("c1")
    assert [e.request_id for e in back.branch()] == ["c1-r1", "c1-r2b"], "the branch shown is saved"
    assert back.place("c1-r2b") == (2, 2) and len(back.exchanges) == 5
    third.close()


def test_two_corrupt_files_in_the_same_second_both_survive(path):
    path.parent.mkdir(parents=True)
    for n in range(2):
        path.write_bytes(b"garbage %d" % n * 100)
        HistoryStore.open(path)[0].close()
    kept = sorted(p.read_bytes()[:9] for p in path.parent.glob("history.sqlite3.corrupt-*"))
    assert kept == [b"garbage 0", b"garbage 1"]


def test_a_history_locked_by_another_window_is_left_alone(path):
    store, _ = HistoryStore.open(path)
    save(store, make_chat())
    store.close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        mem, warning = HistoryStore.open(path, busy_timeout_s=0.05)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert warning and "in use by another TL-FIF window" in warning
    assert mem.path is None and not list(path.parent.glob("*.corrupt-*"))
    assert HistoryStore.open(path)[0].load_chat("c1") == make_chat(), "the history is intact"


def test_an_unusable_directory_means_memory_only_with_a_warning(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data directory should be")
    store, warning = HistoryStore.open(blocker / "history.sqlite3")
    assert store.path is None and warning and "kept in memory only" in warning
    save(store, make_chat())
    assert store.load_chat("c1") == make_chat(), "the session still works"


# --- export ---------------------------------------------------------------------------------------------------------
def test_json_export_round_trips(tmp_path):
    chat = make_chat()
    path = chat_export.write_export(chat, tmp_path / "chat.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["format"] == "tl-fif.conversation" and doc["version"] == 1
    assert [x["status"] for x in doc["exchanges"]] == ["done", "failed", "cancelled", "done"]
    back = chat_export.import_json(path.read_text(encoding="utf-8"))
    assert back == chat
    assert back.exchanges[0].stats == chat.exchanges[0].stats


@pytest.mark.parametrize("text, problem", [
    ("not json", "not JSON"), ("[]", "not a TL-FIF conversation"),
    ('{"format": "tl-fif.conversation", "version": 2}', "version 2"),
    ('{"format": "tl-fif.conversation", "version": 1, "id": "x"}', "missing or wrong"),
])
def test_import_says_what_is_wrong(text, problem):
    with pytest.raises(chat_export.NotAnExport, match=problem):
        chat_export.import_json(text)


def test_markdown_export_lists_each_turn_with_time_and_backend(tmp_path):
    chat = make_chat()
    text = chat_export.write_export(chat, tmp_path / "chat.md").read_text(encoding="utf-8")
    assert text.startswith("# First chat\n")
    assert "Temperature: 0.3 · Max tokens: 200" in text and "  > You are terse.\n  > Answer in English." in text
    headers = [line for line in text.splitlines() if line.startswith("## ")]
    assert len(headers) == 2 * len(chat.exchanges)
    for n, e in enumerate(chat.exchanges, start=1):
        user, answer = headers[2 * (n - 1)], headers[2 * (n - 1) + 1]
        assert user == f"## {n}. You · {chat_export._when(e.started_at)} · to {e.backend_label}"
        assert answer.startswith(f"## {n}. {e.backend_label}") and chat_export._when(e.finished_at) in answer
        assert e.prompt in text
    assert "Hello **there**" in text and "ünïcode ✓\n```py\nx=1\n```" in text
    assert headers[3].endswith("· failed") and "*[aws] HTTP 500: boom*" in text
    assert headers[5].endswith("· stopped") and "Partial ans" in text
    assert "TTFT 0.42 s" in text, "the stats line goes under the answer"


def test_export_format_follows_the_suffix(tmp_path):
    chat = make_chat()
    assert chat_export.format_for(Path("x.JSON")) == chat_export.JSON
    assert chat_export.format_for(Path("x.md")) == chat_export.MARKDOWN
    assert chat_export.format_for(Path("x")) == chat_export.MARKDOWN
    out = chat_export.write_export(chat, tmp_path / "notes.txt")
    assert out.read_text(encoding="utf-8").startswith("# First chat")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"], "no temporary file left behind"
