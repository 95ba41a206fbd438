"""The exchanges of this session: what was asked, of which backend, and what came back."""
from __future__ import annotations

from dataclasses import dataclass, field

PENDING, DONE, FAILED = "pending", "done", "failed"


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


@dataclass
class Conversation:
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
