"""Search across chats without widgets: the FTS5 index in a real SQLite history file, and the pure query rules."""
from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from app.models.chat import exchange_record
from app.models.search import HIT_END, HIT_START, fts_query, snippet_runs
from app.services.history_store import _SCHEMA, SCHEMA_VERSION, HistoryStore
from test_app_history_store import make_chat, save


@pytest.fixture
def path(tmp_path):
    return tmp_path / "data" / "history.sqlite3"


def test_typed_text_becomes_quoted_words_with_a_prefix_on_the_last():
    assert fts_query('cold "GPU start') == '"cold" "GPU" "start"*'
    assert fts_query("NEAR(a b) OR x:") == '"NEAR" "a" "b" "OR" "x"*'
    assert fts_query("  ,;  ") is None and fts_query("") is None


def test_snippet_runs_mark_the_hits_and_flatten_newlines():
    assert snippet_runs(f"a\n{HIT_START}cold{HIT_END}  start") == [("a ", False), ("cold", True), (" start", False)]


def test_a_saved_exchange_is_found_at_once_newest_first_with_a_highlighted_snippet(path):
    store, _ = HistoryStore.open(path)
    save(store, make_chat("c0", t0=1_794_000_000.0, title="Older"))
    save(store, make_chat("c1", title="Newer"))
    hits = store.search(fts_query("prompt"), 50)
    assert [h.request_id for h in hits][:2] == ["c1-r4", "c1-r3"] and len(hits) == 8
    assert hits[0].chat_title == "Newer" and f"{HIT_START}Prompt{HIT_END}" in hits[0].snippet
    hits = store.search(fts_query("unicode"), 50)  # diacritics folded: ünïcode
    assert [(h.chat_id, h.request_id) for h in hits] == [("c1", "c1-r4"), ("c0", "c0-r4")]


def test_the_index_follows_updates_and_deletes(path):
    store, _ = HistoryStore.open(path)
    chat = make_chat()
    save(store, chat)
    assert store.search(fts_query("partial"), 50)
    changed = dataclasses.replace(chat.exchanges[2], text="a walrus instead")
    store.save_exchange(chat.id, exchange_record(changed))
    assert not store.search(fts_query("partial"), 50)
    assert [h.request_id for h in store.search(fts_query("walrus"), 50)] == ["c1-r3"]
    store.delete_chat(chat.id)
    assert not store.search(fts_query("walrus"), 50) and not store.search(fts_query("prompt"), 50)


def test_a_history_from_before_search_gets_its_index_built_and_still_opens(path):
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.executescript(_SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
    conn.close()
    store, warning = HistoryStore.open(path)
    save(store, make_chat())
    store._conn.executescript("DROP TRIGGER exchanges_fts_insert; DROP TRIGGER exchanges_fts_delete; "
                              "DROP TRIGGER exchanges_fts_update; DROP TABLE exchanges_fts;")  # as an old file is
    store.close()
    store, warning = HistoryStore.open(path)
    assert warning is None and store.searchable
    assert [h.request_id for h in store.search(fts_query("partial"), 50)] == ["c1-r3"]
    assert store.load_chat("c1").exchanges[0].text == "Hello **there**", "the chats themselves are untouched"


def test_the_search_answers_a_query_the_user_could_type_without_failing(path):
    store, _ = HistoryStore.open(path)
    save(store, make_chat())
    for typed in ['"', "AND", "*", "prompt OR", "col:x", "NEAR(", "-x", "^a"]:
        query = fts_query(typed)
        if query:
            store.search(query, 50)
