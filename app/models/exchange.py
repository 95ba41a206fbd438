"""The exchanges of this session: what was asked, of which backend, and what came back.

The job controller owns them: it adds an exchange when it submits a prompt and writes its outcome, before it
publishes job.done / job.cancelled / job.failed. Everyone else reads them by request id."""
from __future__ import annotations

from dataclasses import dataclass, field

PENDING, DONE, FAILED = "pending", "done", "failed"
STOPPED = "stopped"  # the user stopped the answer (Stop / Esc); `text` holds what came until then


@dataclass
class Exchange:
    request_id: str
    backend: str
    backend_label: str
    prompt: str
    started_at: float          # epoch seconds, for the time stamp
    idle: int = 0              # the idle value sent with it (AWS)
    text: str = ""
    tokens: int = 0
    latency_ms: int | None = None
    model: str = ""
    status: str = PENDING
    error: str = ""
    stats: dict = field(default_factory=dict)  # app.models.answer_stats: plain JSON-able figures of the answer
    chat_id: str = ""          # the chat it belongs to (app.models.chat; '' outside any chat)
    finished_at: float | None = None  # epoch seconds when the answer ended (done, stopped or failed)
    # The exchange it follows in its chat's tree (app.models.chat: ROOT for a first prompt). None: not placed yet —
    # the chat puts it after the end of the branch shown (a saved history from before branches reads as a line).
    parent_id: str | None = None


@dataclass
class ExchangeLedger:
    """Every exchange of this session, whichever chat it belongs to, looked up by request id. The chats
    themselves — titles, per-chat settings, history — are `app.models.chat.Chat`."""
    exchanges: list[Exchange] = field(default_factory=list)

    def add(self, exchange: Exchange) -> Exchange:
        self.exchanges.append(exchange)
        return exchange

    def get(self, request_id: str) -> Exchange | None:
        for exchange in reversed(self.exchanges):
            if exchange.request_id == request_id:
                return exchange
        return None

    def in_flight(self) -> Exchange | None:
        for exchange in reversed(self.exchanges):
            if exchange.status == PENDING:
                return exchange
        return None
