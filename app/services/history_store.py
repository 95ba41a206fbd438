"""The chat history on disk: one SQLite file in the user data directory (`config_file.history_path()`).

    conversations  id, title, renamed, created_at, updated_at, system, temperature, max_tokens, shown (the last
                   exchange of the branch shown)
    exchanges      seq, request_id, conversation_id → conversations (deleted with it), prompt, answer, backend,
                   backend_label, model, started_at, finished_at, latency_ms, tokens, status (done | failed |
                   cancelled | pending), error, idle, stats (JSON: TTFT, tokens/s, cost… — app.models.answer_stats),
                   parent_id (the exchange it follows: '' for a first prompt; NULL in rows saved before branches,
                   which follow the row before them)

Columns added since schema version 1 (`shown`, `parent_id`) are added to an older file when it is opened; the
version stays 1, so an older TL-FIF still reads the file (it shows the exchanges as one line).

    exchanges_fts  FTS5 index of exchanges' prompt and answer (external content: rowid = exchanges.seq), kept in step
                   by triggers; an index that is missing (a history from before search) is built from the exchanges
                   when the file is opened. It is an index, not data: the schema version stays 1.

A `HistoryStore` is used from ONE thread (the chat controller's store worker): sqlite3 enforces it. Times are
epoch seconds. `HistoryStore.open(path)` never raises for a bad file: a file that is not a readable TL-FIF history
(garbage, corrupt pages, another program's database, a newer schema) is renamed aside to
`history.sqlite3.corrupt-YYYYmmdd-HHMMSS` and a fresh store started; if even that fails (an unwritable directory),
the store lives in memory for the session. Either way `open` returns a warning for the UI. A history that another
running TL-FIF holds locked is not "corrupt": it is left alone and this session keeps its chats in memory.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import time
from pathlib import Path

from app.models.chat import (RECORD_FIELDS, Chat, ChatParams, ChatSummary, exchange_from_record)
from app.models.exchange import FAILED, PENDING
from app.models.search import HIT_END, HIT_START, SNIPPET_ELLIPSIS, SNIPPET_TOKENS, SearchHit

log = logging.getLogger("tlfif.app.history")

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 5.0
NO_ANSWER_SAVED = "no answer was saved (TL-FIF closed while it was coming)"

_SCHEMA = """
CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    renamed     INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    system      TEXT NOT NULL DEFAULT '',
    temperature REAL NOT NULL,
    max_tokens  INTEGER NOT NULL,
    shown       TEXT NOT NULL DEFAULT ''
);
CREATE TABLE exchanges (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id      TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    prompt          TEXT NOT NULL,
    answer          TEXT NOT NULL DEFAULT '',
    backend         TEXT NOT NULL,
    backend_label   TEXT NOT NULL DEFAULT '',
    model           TEXT NOT NULL DEFAULT '',
    started_at      REAL NOT NULL,
    finished_at     REAL,
    latency_ms      INTEGER,
    tokens          INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL CHECK (status IN ('done', 'failed', 'cancelled', 'pending')),
    error           TEXT NOT NULL DEFAULT '',
    idle            INTEGER NOT NULL DEFAULT 0,
    stats           TEXT NOT NULL DEFAULT '{}',
    parent_id       TEXT
);
CREATE INDEX exchanges_by_conversation ON exchanges (conversation_id, seq);
CREATE INDEX conversations_by_update ON conversations (updated_at);
"""
# The search index and the triggers that keep it in step with `exchanges` (SQLite's external-content recipe).
_SEARCH_SCHEMA = """
CREATE VIRTUAL TABLE exchanges_fts USING fts5(prompt, answer, content='exchanges', content_rowid='seq',
                                              tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER exchanges_fts_insert AFTER INSERT ON exchanges BEGIN
    INSERT INTO exchanges_fts (rowid, prompt, answer) VALUES (new.seq, new.prompt, new.answer);
END;
CREATE TRIGGER exchanges_fts_delete AFTER DELETE ON exchanges BEGIN
    INSERT INTO exchanges_fts (exchanges_fts, rowid, prompt, answer) VALUES ('delete', old.seq, old.prompt, old.answer);
END;
CREATE TRIGGER exchanges_fts_update AFTER UPDATE OF prompt, answer ON exchanges BEGIN
    INSERT INTO exchanges_fts (exchanges_fts, rowid, prompt, answer) VALUES ('delete', old.seq, old.prompt, old.answer);
    INSERT INTO exchanges_fts (rowid, prompt, answer) VALUES (new.seq, new.prompt, new.answer);
END;
INSERT INTO exchanges_fts (exchanges_fts) VALUES ('rebuild');
"""
_SEARCH_OBJECTS = {"exchanges_fts", "exchanges_fts_insert", "exchanges_fts_delete", "exchanges_fts_update"}
_TABLES = {
    "conversations": ("id", "title", "renamed", "created_at", "updated_at", "system", "temperature", "max_tokens",
                      "shown"),
    "exchanges": ("seq", "conversation_id", *RECORD_FIELDS),
}
_ADDED_COLUMNS = {  # table → column → its definition, for a file written before the column existed
    "conversations": {"shown": "TEXT NOT NULL DEFAULT ''"},
    "exchanges": {"parent_id": "TEXT"},
}
_CHAT_COLUMNS = _TABLES["conversations"]


class UnreadableStore(Exception):
    """The file is not a TL-FIF history this version can read."""


def _is_lock_error(err: sqlite3.Error) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


def move_aside(path: Path, stamp: str | None = None) -> Path:
    """Rename `path` (and its -journal/-wal/-shm companions) to `<name>.corrupt-<stamp>[-n]`; return the new path."""
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        n += 1
    path.rename(aside)
    for suffix in ("-journal", "-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(aside.with_name(aside.name + suffix))
    return aside


class HistoryStore:
    def __init__(self, conn: sqlite3.Connection, path: Path | None):
        self._conn = conn
        self.path = path  # None: in memory (nothing survives the session)
        self.searchable = False  # the search index is there (SQLite has FTS5)

    # --- opening --------------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, *, busy_timeout_s: float = BUSY_TIMEOUT_S) -> tuple[HistoryStore, str | None]:
        """The store at `path` and a warning for the UI (None when all is well). Never raises for a bad file."""
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # chats are private
            return cls._open_file(path, busy_timeout_s), None
        except sqlite3.OperationalError as err:
            if _is_lock_error(err):
                log.warning("[history] %s is locked (%s); keeping chats in memory", path, err)
                return cls.in_memory(), (f"Chat history {path} is in use by another TL-FIF window; this window's "
                                         "chats are kept in memory only.")
            problem = err
        except (sqlite3.DatabaseError, UnreadableStore) as err:
            problem = err
        except OSError as err:
            log.warning("[history] cannot use %s: %s", path.parent, err)
            return cls.in_memory(), (f"Chat history cannot be saved in {path.parent} ({err}); this session's chats "
                                     "are kept in memory only.")
        try:
            aside = move_aside(path)
        except OSError as err:
            log.error("[history] %s is unreadable (%s) and cannot be moved aside: %s", path, problem, err)
            return cls.in_memory(), (f"Chat history {path} is unreadable ({problem}) and could not be moved aside "
                                     f"({err}); it is left as it is and this session's chats are kept in memory "
                                     "only.")
        log.warning("[history] %s was unreadable (%s); moved to %s, starting a new history", path, problem, aside)
        message = (f"Chat history {path.name} was unreadable ({problem}); it was kept as {aside} and a new, empty "
                   "history was started.")
        try:
            return cls._open_file(path, busy_timeout_s), message
        except (sqlite3.Error, UnreadableStore, OSError) as err:
            return cls.in_memory(), f"{message} The new history cannot be written either ({err}); chats are kept " \
                                    "in memory only."

    @classmethod
    def _open_file(cls, path: Path, busy_timeout_s: float) -> HistoryStore:
        conn = sqlite3.connect(str(path), timeout=busy_timeout_s)
        try:
            store = cls(conn, path)
            store._prepare()
            return store
        except BaseException:
            conn.close()
            raise

    @classmethod
    def in_memory(cls) -> HistoryStore:
        store = cls(sqlite3.connect(":memory:"), None)
        store._prepare()
        return store

    def _prepare(self) -> None:
        """Check the file (integrity, schema) or create the schema in an empty one."""
        conn = self._conn
        check = conn.execute("PRAGMA quick_check").fetchall()
        if [tuple(row) for row in check] != [("ok",)]:
            raise UnreadableStore("integrity check failed: " + "; ".join(str(r[0]) for r in check[:3]))
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version == 0 and not tables - {"sqlite_sequence"}:
            with conn:
                conn.executescript(_SCHEMA + f"PRAGMA user_version = {SCHEMA_VERSION};")
        elif version != SCHEMA_VERSION:
            raise UnreadableStore(f"schema version {version}, this TL-FIF reads version {SCHEMA_VERSION}"
                                  if version else "not a TL-FIF history")
        for table, columns in _TABLES.items():
            have = {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}
            missing = set(columns) - have - set(_ADDED_COLUMNS[table])
            if not missing:  # a TL-FIF history from before a column: add it (only to a file that is ours)
                with conn:
                    for column, definition in _ADDED_COLUMNS[table].items():
                        if column not in have:
                            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
                            have.add(column)
            if not set(columns) <= have:
                raise UnreadableStore(f"table {table} lacks columns {sorted(set(columns) - have)}")
        conn.execute("PRAGMA foreign_keys = ON")
        self._prepare_search()

    def _prepare_search(self) -> None:
        """Create the search index (from the exchanges already saved) if it, or one of its triggers, is missing."""
        conn = self._conn
        have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 'exchanges_fts%'")}
        if _SEARCH_OBJECTS <= have:
            self.searchable = True
            return
        try:
            with conn:
                for name in ("exchanges_fts_insert", "exchanges_fts_delete", "exchanges_fts_update"):
                    conn.execute(f"DROP TRIGGER IF EXISTS {name}")
                conn.execute("DROP TABLE IF EXISTS exchanges_fts")
                conn.executescript("BEGIN;" + _SEARCH_SCHEMA + "COMMIT;")
        except sqlite3.OperationalError as err:  # an SQLite built without FTS5: chats work, search does not
            log.warning("[history] no search index: %s", err)
            self.searchable = False
            return
        self.searchable = True
        log.info("[history] search index built from %s exchanges",
                 conn.execute("SELECT count(*) FROM exchanges").fetchone()[0])

    def close(self) -> None:
        self._conn.close()

    # --- reading --------------------------------------------------------------------------------------------------
    def list_chats(self) -> list[ChatSummary]:
        """Every saved chat, newest (latest prompt) first."""
        rows = self._conn.execute("SELECT id, title, updated_at FROM conversations "
                                  "ORDER BY updated_at DESC, id DESC")
        return [ChatSummary(id=r[0], title=r[1], updated_at=r[2]) for r in rows]

    def load_chat(self, chat_id: str) -> Chat | None:
        row = self._conn.execute(f"SELECT {', '.join(_CHAT_COLUMNS)} FROM conversations WHERE id = ?",
                                 (chat_id,)).fetchone()
        if row is None:
            return None
        data = dict(zip(_CHAT_COLUMNS, row, strict=True))
        chat = Chat(id=data["id"], created_at=data["created_at"], updated_at=data["updated_at"], title=data["title"],
                    renamed=bool(data["renamed"]), saved=True,
                    params=ChatParams(system=data["system"], temperature=data["temperature"],
                                      max_tokens=data["max_tokens"]))
        shown = data["shown"] or ""
        rows = self._conn.execute(f"SELECT {', '.join(RECORD_FIELDS)} FROM exchanges WHERE conversation_id = ? "
                                  "ORDER BY seq", (chat_id,))
        for values in rows:
            record = dict(zip(RECORD_FIELDS, values, strict=True))
            try:
                record["stats"] = json.loads(record["stats"] or "{}")
            except ValueError:
                record["stats"] = {}
            exchange = exchange_from_record(record, chat.id)
            if exchange.status == PENDING:
                exchange.status, exchange.error = FAILED, exchange.error or NO_ANSWER_SAVED
            chat.attach(exchange)
        if shown and chat.find(shown) is not None:
            chat.show(shown)
        return chat

    def search(self, match: str, limit: int) -> list[SearchHit]:
        """Exchanges whose prompt or answer match the FTS5 query `match` (`app.models.search.fts_query`), newest
        first (by save order), each with a snippet whose hits are wrapped in HIT_START / HIT_END."""
        if not self.searchable:
            return []
        rows = self._conn.execute(
            "SELECT e.conversation_id, c.title, e.request_id, e.started_at, f.snippet FROM "
            f" (SELECT rowid, snippet(exchanges_fts, -1, ?, ?, ?, {SNIPPET_TOKENS}) AS snippet FROM exchanges_fts "
            "   WHERE exchanges_fts MATCH ? ORDER BY rowid DESC LIMIT ?) AS f "
            "JOIN exchanges AS e ON e.seq = f.rowid JOIN conversations AS c ON c.id = e.conversation_id "
            "ORDER BY f.rowid DESC", (HIT_START, HIT_END, SNIPPET_ELLIPSIS, match, limit))
        return [SearchHit(chat_id=r[0], chat_title=r[1], request_id=r[2], started_at=r[3], snippet=r[4])
                for r in rows]

    def cost_rows(self) -> list[tuple[str, float, dict]]:
        """(chat id, the answer's start, its stats) of every answer that has a cost basis (app.models.spend)."""
        rows = self._conn.execute("SELECT conversation_id, started_at, stats FROM exchanges "
                                  """WHERE stats LIKE '%"cost_basis":"%'""")
        out = []
        for chat_id, started_at, raw in rows:
            try:
                stats = json.loads(raw)
            except ValueError:
                continue
            if isinstance(stats, dict):
                out.append((chat_id, started_at, stats))
        return out

    # --- writing (each call one small transaction) -----------------------------------------------------------------
    def save_chat(self, row: dict) -> None:
        """Insert or update a chat's own fields (`chat_row`); its exchanges are saved one by one."""
        values = [row[c] for c in _CHAT_COLUMNS]
        updates = ", ".join(f"{c} = excluded.{c}" for c in _CHAT_COLUMNS[1:])
        with self._conn:
            self._conn.execute(f"INSERT INTO conversations ({', '.join(_CHAT_COLUMNS)}) "
                               f"VALUES ({', '.join('?' * len(_CHAT_COLUMNS))}) "
                               f"ON CONFLICT (id) DO UPDATE SET {updates}", values)

    def save_exchange(self, chat_id: str, record: dict) -> None:
        """Insert or update one exchange (`app.models.chat.exchange_record`), keyed by its request id."""
        values = [json.dumps(record["stats"] or {}, separators=(",", ":")) if c == "stats" else record[c]
                  for c in RECORD_FIELDS]
        columns = ("conversation_id", *RECORD_FIELDS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in RECORD_FIELDS[1:])
        with self._conn:
            self._conn.execute(f"INSERT INTO exchanges ({', '.join(columns)}) "
                               f"VALUES ({', '.join('?' * len(columns))}) "
                               f"ON CONFLICT (request_id) DO UPDATE SET {updates}", [chat_id, *values])

    def rename_chat(self, chat_id: str, title: str) -> None:
        with self._conn:
            self._conn.execute("UPDATE conversations SET title = ?, renamed = 1 WHERE id = ?", (title, chat_id))

    def delete_chat(self, chat_id: str) -> None:
        with self._conn:
            self._conn.execute("DELETE FROM conversations WHERE id = ?", (chat_id,))


def chat_row(chat: Chat) -> dict:
    """A snapshot of a chat's own fields (no exchanges) for `save_chat` (safe to hand to another thread)."""
    return {"id": chat.id, "title": chat.title, "renamed": int(chat.renamed), "created_at": chat.created_at,
            "updated_at": chat.updated_at, "system": chat.params.system, "temperature": chat.params.temperature,
            "max_tokens": chat.params.max_tokens, "shown": chat.leaf_id()}
