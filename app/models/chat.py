"""Chats: a conversation's title, its own settings (system prompt, temperature, max tokens) and its exchanges.

Pure data and rules, tested without widgets or files. The chat controller holds the chats on the Tk thread;
`app.services.history_store` saves them; `app.models.context` picks the history a prompt is sent with.

A new chat lives in memory until its first prompt (then it is saved, titled from that prompt until renamed), so
pressing Ctrl+N twice does not litter the sidebar with empty chats.

A chat is a tree of exchanges: each follows a parent (ROOT for the first prompt). Regenerating an answer or
editing a prompt adds a sibling — an alternative — of that exchange; `chosen` says which child of each exchange is
shown, and the branch shown (`branch()`) is what the window renders, what the next prompt is sent with and what the
Markdown export writes. Every exchange stays in `exchanges` (creation order), reachable with `‹ n/m ›`.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from tlfif_common.jobs import MAX_PROMPT_BYTES, MAX_TOKENS_LIMIT, TEMPERATURE_MAX, TEMPERATURE_MIN

from app.models.exchange import DONE, FAILED, PENDING, STOPPED, Exchange

NEW_CHAT_TITLE = "New chat"
TITLE_FROM_PROMPT_MAX = 48  # characters of the first prompt that title a chat
TITLE_MAX = 120             # a title the user types
DEFAULT_TEMPERATURE = 0.7
DEFAULT_MAX_TOKENS = 512
MIN_PROMPT_ROOM = 256       # tokens of the context that max tokens may never take: the prompt needs some


@dataclass(frozen=True)
class ChatParams:
    """A chat's own settings, sent as /infer `params` (and as OpenAI chat parameters)."""
    system: str = ""
    temperature: float = DEFAULT_TEMPERATURE
    max_tokens: int = DEFAULT_MAX_TOKENS

    def request_params(self) -> dict:
        """The `params` object of a request (tlfif_common.jobs.PARAM_NAMES); an empty system prompt is left out."""
        params: dict = {"temperature": self.temperature, "max_tokens": min(self.max_tokens, MAX_TOKENS_LIMIT)}
        if self.system.strip():
            params["system"] = self.system
        return params


ROOT = ""  # the parent of a chat's first prompt and of that prompt's alternatives


@dataclass(frozen=True)
class ChatContext:
    """What a prompt is sent with: the chat it belongs to, the earlier turns and the chat's params."""
    chat_id: str = ""
    messages: list[dict] | None = None  # earlier turns, oldest first, without the system prompt and the prompt
    params: dict | None = None
    dropped: int = 0                    # earlier exchanges left out to fit the context budget
    parent_id: str | None = None        # the exchange the prompt follows (None: the end of the branch shown)


@dataclass(frozen=True)
class ChatSummary:
    """A sidebar row."""
    id: str
    title: str
    updated_at: float


@dataclass
class Chat:
    id: str
    created_at: float          # epoch seconds
    updated_at: float          # epoch seconds of the latest prompt (the sidebar's order)
    title: str = NEW_CHAT_TITLE
    renamed: bool = False      # True once the user named it: later prompts never retitle it
    params: ChatParams = field(default_factory=ChatParams)
    exchanges: list[Exchange] = field(default_factory=list)  # every exchange of every branch, in creation order
    # parent id → the child shown (default: the newest); only the branch it selects is saved (history, export)
    chosen: dict[str, str] = field(default_factory=dict, compare=False)
    saved: bool = field(default=False, compare=False)  # the store has it (a new chat: once its first prompt is sent)

    @classmethod
    def new(cls, now: float | None = None, params: ChatParams | None = None) -> Chat:
        now = time.time() if now is None else now
        return cls(id=uuid.uuid4().hex, created_at=now, updated_at=now, params=params or ChatParams())

    @property
    def empty(self) -> bool:
        return not self.exchanges

    def summary(self) -> ChatSummary:
        return ChatSummary(self.id, self.title, self.updated_at)

    def add(self, exchange: Exchange) -> Exchange:
        """A prompt was sent in this chat: the first one titles it (unless renamed); every one moves it to the top
        and is shown (the branch now runs through it)."""
        if not self.exchanges and not self.renamed:
            self.title = title_from_prompt(exchange.prompt)
        self.attach(exchange)
        self.updated_at = max(self.updated_at, exchange.started_at)
        return exchange

    def attach(self, exchange: Exchange) -> Exchange:
        """Put an exchange into the tree (a prompt sent, or one read back from the history), shown. Without a
        parent it follows the end of the branch shown; a parent this chat does not have makes it a first prompt."""
        if exchange.parent_id is None:
            exchange.parent_id = self.leaf_id()
        elif exchange.parent_id != ROOT and self.find(exchange.parent_id) is None:
            exchange.parent_id = ROOT
        self.exchanges.append(exchange)
        self.chosen[exchange.parent_id] = exchange.request_id
        exchange.chat_id = self.id
        return exchange

    # --- the tree --------------------------------------------------------------------------------------------------
    def find(self, request_id: str) -> Exchange | None:
        return next((e for e in self.exchanges if e.request_id == request_id), None)

    def _children(self) -> dict[str, list[Exchange]]:
        kids: dict[str, list[Exchange]] = {}
        for e in self.exchanges:
            kids.setdefault(e.parent_id or ROOT, []).append(e)
        return kids

    def branch(self) -> list[Exchange]:
        """The exchanges shown, first prompt to last: from ROOT, each step the chosen child (else the newest)."""
        kids = self._children()
        path: list[Exchange] = []
        parent = ROOT
        while siblings := kids.get(parent):
            chosen = self.chosen.get(parent)
            step = next((e for e in siblings if e.request_id == chosen), siblings[-1])
            path.append(step)
            parent = step.request_id
        return path

    def leaf_id(self) -> str:
        """The last exchange of the branch shown (ROOT when the chat is empty): what a new prompt follows."""
        branch = self.branch()
        return branch[-1].request_id if branch else ROOT

    def path_to(self, request_id: str) -> list[Exchange]:
        """The exchanges from the first prompt down to this one (included). LookupError: not in this chat."""
        by_id = {e.request_id: e for e in self.exchanges}
        path: list[Exchange] = []
        at = by_id.get(request_id)
        if at is None:
            raise LookupError(f"exchange {request_id} is not in chat {self.id}")
        while at is not None and len(path) <= len(by_id):  # a cycle cannot loop forever
            path.append(at)
            at = by_id.get(at.parent_id or ROOT)
        path.reverse()
        return path

    def show(self, request_id: str) -> None:
        """Show the branch through this exchange (its own later choices stay as they were). LookupError."""
        for e in self.path_to(request_id):
            self.chosen[e.parent_id or ROOT] = e.request_id

    def alternatives(self, request_id: str) -> list[Exchange]:
        """This exchange and its siblings (same parent), oldest first."""
        e = self.find(request_id)
        if e is None:
            return []
        return [x for x in self.exchanges if (x.parent_id or ROOT) == (e.parent_id or ROOT)]

    def place(self, request_id: str) -> tuple[int, int]:
        """(n, m): this exchange is alternative n of m (1-based), for `‹ n/m ›`."""
        siblings = self.alternatives(request_id)
        ids = [e.request_id for e in siblings]
        return (ids.index(request_id) + 1 if request_id in ids else 0), len(ids)

    def rename(self, title: str) -> None:
        self.title = check_title(title)
        self.renamed = True


def title_from_prompt(prompt: str) -> str:
    """The first line of the prompt with text, whitespace collapsed, cut to TITLE_FROM_PROMPT_MAX characters."""
    line = next((ln for ln in prompt.splitlines() if ln.strip()), "")
    title = " ".join(line.split())
    if len(title) > TITLE_FROM_PROMPT_MAX:
        title = title[:TITLE_FROM_PROMPT_MAX - 1].rstrip() + "…"
    return title or NEW_CHAT_TITLE


def check_title(text: str) -> str:
    """A title the user typed: one line, not empty, at most TITLE_MAX characters. ValueError with the hint."""
    title = " ".join(str(text or "").split())
    if not title:
        raise ValueError("A chat needs a title; type one.")
    if len(title) > TITLE_MAX:
        raise ValueError(f"A title may be at most {TITLE_MAX} characters.")
    return title


def listing(summaries: list[ChatSummary], current: Chat) -> list[ChatSummary]:
    """The sidebar: the saved chats and the current one (even while new), newest first."""
    rows = {s.id: s for s in summaries}
    rows[current.id] = current.summary()
    return sorted(rows.values(), key=lambda s: (s.updated_at, s.id), reverse=True)


# --- one exchange as plain data: the history store's row, the JSON export's entry, chat.opened's items -----------
RECORD_FIELDS = ("request_id", "prompt", "answer", "backend", "backend_label", "model", "started_at", "finished_at",
                 "latency_ms", "tokens", "status", "error", "idle", "stats", "parent_id")
RECORD_STATUSES = ("done", "failed", "cancelled", "pending")  # pending: no answer was saved (the app closed first)
_TO_RECORD_STATUS = {DONE: "done", FAILED: "failed", STOPPED: "cancelled", PENDING: "pending"}
_FROM_RECORD_STATUS = {v: k for k, v in _TO_RECORD_STATUS.items()}


def exchange_record(exchange: Exchange) -> dict:
    """A snapshot of an exchange as plain, JSON-able data (safe to hand to another thread)."""
    return {
        "request_id": exchange.request_id, "prompt": exchange.prompt, "answer": exchange.text,
        "backend": exchange.backend, "backend_label": exchange.backend_label, "model": exchange.model,
        "started_at": exchange.started_at, "finished_at": exchange.finished_at, "latency_ms": exchange.latency_ms,
        "tokens": exchange.tokens, "status": _TO_RECORD_STATUS.get(exchange.status, "failed"),
        "error": exchange.error, "idle": exchange.idle, "stats": dict(exchange.stats or {}),
        "parent_id": exchange.parent_id,
    }


def exchange_from_record(record: dict, chat_id: str = "") -> Exchange:
    """The inverse of `exchange_record`; ValueError/KeyError/TypeError when a field is missing or of the wrong type."""
    status = record["status"]
    if status not in _FROM_RECORD_STATUS:
        raise ValueError(f"unknown exchange status {status!r}")
    stats = record.get("stats") or {}
    if not isinstance(stats, dict):
        raise TypeError("stats must be an object")
    latency = record.get("latency_ms")
    finished = record.get("finished_at")
    parent = record.get("parent_id")  # absent or None: saved before branches (it follows the one before it)
    return Exchange(request_id=str(record["request_id"]), backend=str(record["backend"]),
                    backend_label=str(record.get("backend_label") or ""), prompt=str(record["prompt"]),
                    started_at=float(record["started_at"]), idle=int(record.get("idle") or 0),
                    text=str(record.get("answer") or ""), tokens=int(record.get("tokens") or 0),
                    latency_ms=None if latency is None else int(latency), model=str(record.get("model") or ""),
                    status=_FROM_RECORD_STATUS[status], error=str(record.get("error") or ""), stats=stats,
                    chat_id=chat_id, finished_at=None if finished is None else float(finished),
                    parent_id=None if parent is None else str(parent))


# --- the chat settings dialog's rules -----------------------------------------------------------------------------
class ParamError(ValueError):
    """A chat setting was refused; `field` names it (system, temperature, max_tokens), str() is the hint."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def max_tokens_limit(context_tokens: int) -> int:
    """The largest max tokens a chat may ask for: the API's limit, and room left for the prompt in the context."""
    return max(1, min(MAX_TOKENS_LIMIT, context_tokens - MIN_PROMPT_ROOM))


def check_chat_params(system: str, temperature, max_tokens, *, context_tokens: int) -> ChatParams:
    """The chat settings dialog's values (raw text) → ChatParams, by the limits /infer applies
    (tlfif_common.jobs): system prompt at most 32 KiB, temperature 0–2, max tokens 1–4096 and leaving room for
    the prompt in the context. ParamError names the field and says what is allowed."""
    system = str(system or "").strip()
    if len(system.encode("utf-8")) > MAX_PROMPT_BYTES:
        raise ParamError("system", f"The system prompt may be at most {MAX_PROMPT_BYTES // 1024} KiB; shorten it.")
    text = str(temperature).strip().replace(",", ".")
    try:
        temp = float(text)
    except ValueError:
        temp = None
    if temp is None or temp != temp or not TEMPERATURE_MIN <= temp <= TEMPERATURE_MAX:
        raise ParamError("temperature", f"Temperature must be a number from {TEMPERATURE_MIN:g} to "
                                        f"{TEMPERATURE_MAX:g} (0 = always the likeliest word).")
    limit = max_tokens_limit(context_tokens)
    try:
        tokens = int(str(max_tokens).strip())
    except ValueError:
        tokens = None
    if tokens is None or not 1 <= tokens <= limit:
        raise ParamError("max_tokens", f"Max tokens must be a whole number from 1 to {limit} (the model's context "
                                       f"is {context_tokens} tokens; the rest holds the prompt and history).")
    return ChatParams(system=system, temperature=round(temp, 3), max_tokens=tokens)
