"""Chats: new / open / rename / delete / settings / export, the history a prompt is sent with, and saving.

The chats live on the Tk thread (`current`, the sidebar's `summaries`). Every store call — opening the SQLite file,
reading a chat, each write, an export — runs on ONE store worker thread (the `HistoryStore` is made and used there
only), in submission order; what it reads comes back through the outbox (`Outbox.call` for the saved chats and a
chat read; chat.exported and chat.warning for everyone). The Tk thread never waits for the disk, except `close()`,
which waits (bounded) for the queued writes so that a restart finds them.

A prompt's context (`context_for`, called by the job controller as it submits): the current chat's done turns,
trimmed (app.models.context: to the API's byte bound on AWS, whose watcher trims with the model's tokenizer; to an
estimate of the model's context on OpenAI), and the chat's own params. An exchange is saved when
submitted (prompt, status pending) and again once it ended (job.done / job.cancelled / job.failed: the job
controller has written the outcome into the exchange before it publishes them). While an answer is coming the window
stays on its chat: New chat, opening another chat and deleting this one are refused with a hint.

Branches (app.models.chat): a prompt sent as an alternative of an exchange (`branch_of`: regenerate, an edited
prompt) is sent with the turns before that exchange and becomes its sibling; the window then shows the branch
through it (chat.opened again). `‹ ›` (ui.show_alternative) shows another alternative and the branch under it.
"""
from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

from app.bus import Bus, Outbox
from app.models.chat import (ROOT, Chat, ChatContext, ChatSummary, ParamError, check_chat_params, check_title,
                             exchange_record, listing)
from app.models.context import context_budget, history_turns, trim_history
from app.models import spend
from app.models.exchange import ExchangeLedger
from app.models.search import RESULT_LIMIT, fts_query
from app.models.settings import BACKEND_AWS, Settings
from app.services import chat_export
from app.services.history_store import HistoryStore, chat_row

log = logging.getLogger("tlfif.app.chats")

BUSY_HINT = "An answer is still coming: wait for it (or stop it) before leaving this chat."
BUSY_SWITCH_HINT = "An answer is still coming: wait for it (or stop it) before showing another alternative."
NOTHING_TO_REGENERATE = "There is no answer to regenerate in this chat yet."
GONE_HINT = "That prompt is no longer in the open chat; nothing was sent."
MISSING = "it is no longer in the history"
RENDER_LIMIT = 50         # exchanges rendered when a chat opens (all of them: in the export)
CLOSE_WAIT_S = 5.0        # how long closing waits for queued writes
STORE_ERRORS = (sqlite3.Error, OSError)


class ChatController:
    def __init__(self, bus: Bus, outbox: Outbox, exchanges: ExchangeLedger, *, history_path: Path,
                 settings: Callable[[], Settings], busy: Callable[[], bool], render_limit: int = RENDER_LIMIT):
        self._bus = bus
        self._outbox = outbox
        self._exchanges = exchanges
        self._path = history_path
        self._settings = settings
        self._busy = busy
        self._render_limit = render_limit
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tlfif-history")
        self._store: HistoryStore | None = None   # store worker thread only
        self.summaries: list[ChatSummary] = []    # saved chats, as last read or changed (newest first)
        self.current = Chat.new()
        self.ready = False                        # the store has been opened and listed
        self._loading: str | None = None          # the chat being read for opening
        self._auto_open = False                   # that read was not the user's click: switch only to an empty chat
        self._reveal: str | None = None           # the exchange to scroll to once its chat is shown (a search hit)
        self._closed = False
        bus.subscribe_table({
            "ui.new_chat": self.on_new_chat,
            "ui.open_chat": self.on_open_chat,
            "ui.rename_chat": self.on_rename_chat,
            "ui.delete_chat": self.on_delete_chat,
            "ui.chat_settings": self.on_chat_settings,
            "ui.export_chat": self.on_export_chat,
            "ui.search": self.on_search,
            "ui.open_search_hit": self.on_open_search_hit,
            "ui.show_alternative": self.on_show_alternative,
            "job.submitted": self.on_submitted,
            "job.done": self.on_ended,
            "job.cancelled": self.on_ended,
            "job.failed": self.on_ended,
        })

    # --- the store worker ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._publish_opened()
        self._publish_listed()
        self._submit(self._open_store)

    def _submit(self, fn: Callable[..., Any], *args: Any) -> Future | None:
        if self._closed:
            return None
        return self._io.submit(self._guarded, fn, *args)

    def _guarded(self, fn: Callable[..., Any], *args: Any) -> None:
        """Store worker: run one store task; a failure becomes a visible warning, never a crash."""
        try:
            fn(*args)
        except STORE_ERRORS as err:
            log.error("[history] %s failed: %s", fn.__name__.strip("_"), err)
            self._outbox.post("chat.warning", message=f"Chat history: {fn.__name__.strip('_').replace('_', ' ')} "
                                                      f"failed ({err}); the chat stays on screen.")
        except Exception:
            log.exception("[history] %s failed", fn.__name__)
            self._outbox.post("chat.warning", message=f"Chat history: {fn.__name__.strip('_')} failed unexpectedly; "
                                                      "see the log.")

    def _open_store(self) -> None:
        self._store, warning = HistoryStore.open(self._path)
        if warning:
            self._outbox.post("chat.warning", message=warning)
        self._outbox.call(self._store_opened, summaries=self._store.list_chats())
        self._read_spend()

    def _read_chat(self, chat_id: str) -> None:
        try:
            chat = self._store.load_chat(chat_id) if self._store else None
        except (*STORE_ERRORS, ValueError, TypeError, KeyError) as err:
            self._outbox.call(self._chat_read, chat_id=chat_id, chat=None, error=str(err))
            return
        self._outbox.call(self._chat_read, chat_id=chat_id, chat=chat, error="" if chat is not None else MISSING)

    def _save_chat(self, row: dict) -> None:
        if self._store:
            self._store.save_chat(row)

    def _save_exchange(self, chat_id: str, record: dict) -> None:
        if self._store:
            self._store.save_exchange(chat_id, record)
            if record.get("status") != "pending":
                self._read_spend()

    def _read_spend(self) -> None:
        """What the stored answers cost, per chat and this month (on the store thread; the sum is pure)."""
        if self._store:
            summary = spend.summarise(self._store.cost_rows(), time.time())
            self._outbox.post("chat.spend", chats=summary.chats, month=summary.month)

    def _rename_chat(self, chat_id: str, title: str) -> None:
        if self._store:
            self._store.rename_chat(chat_id, title)

    def _delete_chat(self, chat_id: str) -> None:
        if self._store:
            self._store.delete_chat(chat_id)
            self._read_spend()

    def _export_chat(self, chat_id: str, snapshot: Chat | None, path: str) -> None:
        try:
            chat = snapshot or (self._store.load_chat(chat_id) if self._store else None)
            if chat is None:
                raise LookupError(MISSING)
            chat_export.write_export(chat, Path(path))
        except (*STORE_ERRORS, LookupError, ValueError) as err:
            log.warning("[history] export to %s failed: %s", path, err)
            self._outbox.post("chat.exported", path=path, error=str(err))
            return
        log.info("[history] exported chat %s to %s", chat_id, path)
        self._outbox.post("chat.exported", path=path, error="")

    def _search(self, query: str, match: str) -> None:
        try:
            hits = self._store.search(match, RESULT_LIMIT) if self._store else []
        except sqlite3.Error as err:
            log.warning("[history] search for %r failed: %s", query, err)
            self._outbox.post("search.results", query=query, hits=[], error=f"The search failed: {err}")
            return
        error = "" if self._store and self._store.searchable else "Search is not available in this history."
        self._outbox.post("search.results", query=query, hits=hits, error=error)

    def _close_store(self) -> None:
        if self._store:
            self._store.close()
            self._store = None

    def close(self) -> None:
        """Wait (at most CLOSE_WAIT_S) for the store worker to finish the queued writes."""
        if self._closed:
            return
        future = self._submit(self._close_store)
        self._closed = True
        if future is not None:
            try:
                future.result(timeout=CLOSE_WAIT_S)
            except Exception:
                log.warning("[history] the store worker did not finish within %s s; later writes are lost",
                            CLOSE_WAIT_S)
        self._io.shutdown(wait=False, cancel_futures=True)

    # --- publishing ---------------------------------------------------------------------------------------------------
    def _publish_listed(self) -> None:
        self._bus.send("chat.listed", chats=listing(self.summaries, self.current), current_id=self.current.id)

    def _publish_opened(self) -> None:
        chat = self.current
        if self._reveal and chat.find(self._reveal) is not None:
            chat.show(self._reveal)  # a search hit in another branch: show the branch it is in
        branch = chat.branch()
        first = max(len(branch) - self._render_limit, 0) if self._render_limit else len(branch)
        ids = [e.request_id for e in branch]
        if self._reveal in ids:  # a search hit older than the exchanges shown: show from it on
            first = min(first, ids.index(self._reveal))
        shown = branch[first:]
        items = []
        for e in shown:
            item = exchange_record(e)
            item["alternative"], item["alternatives"] = chat.place(e.request_id)
            items.append(item)
        self._bus.send("chat.opened", chat_id=chat.id, title=chat.title, exchanges=items,
                       hidden=len(branch) - len(shown), system=chat.params.system,
                       temperature=chat.params.temperature, max_tokens=chat.params.max_tokens)

    def _remember(self, chat: Chat) -> None:
        """Keep a saved chat's row in the sidebar's list (it may have been new when the list was read)."""
        if chat.saved:
            self.summaries = [s for s in self.summaries if s.id != chat.id] + [chat.summary()]
            self.summaries.sort(key=lambda s: (s.updated_at, s.id), reverse=True)

    def _show(self, chat: Chat) -> None:
        self._remember(self.current)
        self.current = chat
        self._publish_opened()
        self._publish_listed()
        self._send_reveal()

    def _send_reveal(self) -> None:
        reveal, self._reveal = self._reveal, None
        if reveal and any(e.request_id == reveal for e in self.current.exchanges):
            self._bus.send("chat.reveal", request_id=reveal)

    def _refuse_if_busy(self) -> bool:
        if self._busy():
            self._bus.send("chat.notice", message=BUSY_HINT)
            self._publish_listed()  # puts the sidebar's selection back on the current chat
            return True
        return False

    # --- the store's answers ------------------------------------------------------------------------------------------
    def _store_opened(self, summaries: list[ChatSummary]) -> None:
        """The store worker opened the history and listed the saved chats."""
        self.ready = True
        self.summaries = list(summaries)
        latest = next((s for s in self.summaries if s.id != self.current.id), None)
        if self.current.empty and not self.current.saved and latest is not None and self._loading is None:
            self._request(latest.id, auto=True)  # start where the user left off
        self._publish_listed()

    def _request(self, chat_id: str, *, auto: bool) -> None:
        self._loading, self._auto_open = chat_id, auto
        self._submit(self._read_chat, chat_id)

    def _chat_read(self, chat_id: str, chat: Chat | None, error: str) -> None:
        """The store worker read the chat asked for (or could not: `error`)."""
        if chat_id != self._loading:
            return  # superseded by a later click
        self._loading = None
        if chat is None:
            self._bus.send("chat.notice", message=f"That chat could not be opened: {error}")
            if error == MISSING:
                self.summaries = [s for s in self.summaries if s.id != chat_id]
            self._publish_listed()
            return
        if self._auto_open and not (self.current.empty and not self.current.saved):
            return  # the user started a chat meanwhile: stay in it
        if self._busy():
            self._bus.send("chat.notice", message=BUSY_HINT)
            self._publish_listed()
            return
        self._show(chat)

    # --- intents ------------------------------------------------------------------------------------------------------
    def on_new_chat(self) -> None:
        if self._refuse_if_busy():
            return
        self._loading = None
        if self.current.empty and not self.current.saved:
            return  # already a new chat
        self._show(Chat.new())

    def on_open_chat(self, chat_id: str) -> None:
        if chat_id == self.current.id or chat_id == self._loading:
            return
        if self._refuse_if_busy():
            return
        self._request(chat_id, auto=False)

    def on_rename_chat(self, chat_id: str, title: str) -> None:
        try:
            title = check_title(title)
        except ValueError as err:
            self._bus.send("chat.notice", message=str(err))
            return
        if chat_id == self.current.id:
            self.current.rename(title)
            saved = self.current.saved
        else:
            saved = any(s.id == chat_id for s in self.summaries)
        self.summaries = [dataclasses.replace(s, title=title) if s.id == chat_id else s
                          for s in self.summaries]
        if saved:
            self._submit(self._rename_chat, chat_id, title)
        self._publish_listed()

    def on_delete_chat(self, chat_id: str) -> None:
        deleting_current = chat_id == self.current.id
        if deleting_current and self._refuse_if_busy():
            return
        if (deleting_current and self.current.saved) or any(s.id == chat_id for s in self.summaries):
            self._submit(self._delete_chat, chat_id)
        self.summaries = [s for s in self.summaries if s.id != chat_id]
        if self._loading == chat_id:
            self._loading = None
        if not deleting_current:
            self._publish_listed()
            return
        log.info("[history] chat %s deleted", chat_id)
        self.current.saved = False  # gone: not to be remembered in the list
        self._show(Chat.new())
        if self.summaries:
            self._request(self.summaries[0].id, auto=True)  # the next newest, unless the user starts typing first

    def on_chat_settings(self, chat_id: str, system: str, temperature: str, max_tokens: str) -> None:
        try:
            params = check_chat_params(system, temperature, max_tokens,
                                       context_tokens=self._settings().context_tokens)
        except ParamError as err:
            self._bus.send("chat.settings_invalid", field=err.field, message=str(err))
            return
        if chat_id != self.current.id:
            self._bus.send("chat.settings_invalid", field="system", message="That chat is no longer open.")
            return
        self.current.params = params
        if self.current.saved:
            self._submit(self._save_chat, chat_row(self.current))
        self._bus.send("chat.settings_saved", chat_id=chat_id, system=params.system,
                       temperature=params.temperature, max_tokens=params.max_tokens)

    def on_export_chat(self, chat_id: str, path: str) -> None:
        snapshot = None
        if chat_id == self.current.id:
            snapshot = dataclasses.replace(self.current, chosen=dict(self.current.chosen), exchanges=[
                dataclasses.replace(e, stats=dict(e.stats or {})) for e in self.current.exchanges])
        elif not any(s.id == chat_id for s in self.summaries):
            self._bus.send("chat.exported", path=path, error=MISSING)
            return
        self._submit(self._export_chat, chat_id, snapshot, path)

    def on_search(self, query: str) -> None:
        match = fts_query(query)
        if match is None:
            self._bus.send("search.results", query=query, hits=[], error="")
            return
        self._submit(self._search, query, match)

    def on_open_search_hit(self, chat_id: str, request_id: str) -> None:
        if chat_id == self.current.id:
            self._reveal = request_id
            if not self._busy():
                self._publish_opened()  # the hit may be older than the exchanges shown
            self._send_reveal()
            return
        if self._refuse_if_busy():
            return
        self._reveal = request_id
        self._request(chat_id, auto=False)

    def on_show_alternative(self, request_id: str, step: int) -> None:
        """`‹` / `›` beside an exchange: show its previous / next alternative and the branch under that one."""
        chat = self.current
        siblings = chat.alternatives(request_id)
        ids = [e.request_id for e in siblings]
        if request_id not in ids:
            return
        target = ids[max(0, min(len(ids) - 1, ids.index(request_id) + step))]
        if target == request_id:
            return
        if self._busy():
            self._bus.send("chat.notice", message=BUSY_SWITCH_HINT)
            return
        chat.show(target)
        if chat.saved:
            self._submit(self._save_chat, chat_row(chat))
        self._publish_opened()

    # --- prompts ------------------------------------------------------------------------------------------------------
    def regenerate_target(self) -> tuple[str, str]:
        """(prompt, request id) of the last exchange of the branch shown: what Regenerate sends again, as its
        alternative. LookupError with the hint when there is none."""
        branch = self.current.branch()
        if not branch:
            raise LookupError(NOTHING_TO_REGENERATE)
        return branch[-1].prompt, branch[-1].request_id

    def context_for(self, prompt: str, *, branch_of: str = "", notify: bool = True) -> ChatContext:
        """The job controller's question as it submits `prompt` (Tk thread): the current chat's id, its earlier
        turns that fit the context budget, and its params. `branch_of`: the prompt is an alternative of that
        exchange (regenerate, an edited prompt): it goes with the turns before it (LookupError when the exchange
        is not in the open chat). `notify=False`: asked again (the cold-start bridge), so the notice about
        left-out turns is not repeated."""
        chat = self.current
        if branch_of:
            if chat.find(branch_of) is None:  # another chat is open now
                raise LookupError(GONE_HINT)
            before = chat.path_to(branch_of)[:-1]
        else:
            before = chat.branch()
        parent = before[-1].request_id if before else ROOT
        settings = self._settings()
        # The TL-FIF API trims with the model's own tokenizer (the answer says how much): only the byte bound here.
        server_trims = settings.backend == BACKEND_AWS
        budget = None if server_trims else context_budget(settings.context_tokens, chat.params.max_tokens)
        trimmed = trim_history(history_turns(before), prompt=prompt, system=chat.params.system,
                               budget_tokens=budget)
        if trimmed.dropped and notify:
            why = ("the API takes a bounded history" if server_trims
                   else f"the model sees {settings.context_tokens} tokens")
            self._bus.send("chat.notice", message=f"{trimmed.dropped} earlier exchange(s) left out of the context: "
                                                  f"{why}.")
        return ChatContext(chat_id=chat.id, messages=trimmed.messages or None,
                           params=chat.params.request_params(), dropped=trimmed.dropped, parent_id=parent)

    def on_submitted(self, request_id: str, backend: str, backend_label: str, prompt: str, started_at: float):
        exchange = self._exchanges.get(request_id)
        if exchange is None:
            return
        if exchange.chat_id and exchange.chat_id != self.current.id:
            log.warning("[history] exchange %s is for chat %s, not the open one", request_id,
                        exchange.chat_id)
            self._submit(self._save_exchange, exchange.chat_id, exchange_record(exchange))
            return
        chat = self.current
        follows_shown = exchange.parent_id is None or exchange.parent_id == chat.leaf_id()
        chat.add(exchange)
        chat.saved = True
        self._remember(chat)
        self._submit(self._save_chat, chat_row(chat))  # new: created; else: title, place in the list, branch shown
        self._submit(self._save_exchange, chat.id, exchange_record(exchange))
        self._publish_listed()
        if not follows_shown:  # a new alternative: the window shows the branch through it, with its ‹ n/m ›
            self._publish_opened()

    def on_ended(self, request_id: str, **_outcome: Any) -> None:
        """Save the exchange's final state (the job controller wrote it before publishing the outcome)."""
        exchange = self._exchanges.get(request_id)
        if exchange is None or not exchange.chat_id:
            return
        self._submit(self._save_exchange, exchange.chat_id, exchange_record(exchange))
