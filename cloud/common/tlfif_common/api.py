"""The TL-FIF HTTP API as code: route keys, the statuses each answer carries, the error shape and the result object.

The router's route table, the local cloud's gateway emulation, the app and a template test (the API template's
routes must equal ROUTE_KEYS) all import these; nothing else spells them out. The request body of POST /infer and
the job message are in `jobs`, POST /keepwarm's body in `keepwarm`.

    POST /infer          202 {"status": "queued"|"starting", "id", "result_url", "eta" (starting only)}
    POST /stop           200 {"status": "stopping"}
    GET  /ping           200 {"status": "ok", "gpu": one of GPU_STATES, "queue_depth": int | null}
    GET  /cost           200 (see the router's cost_route)
    POST /cancel/{id}    202 {"status": "cancelling", "id"}
    POST /keepwarm       200 {"status": "on", "until": epoch_ms} | {"status": "off"}
    any refusal          4xx/5xx {"error": "what is wrong", ...e.g. "field": the field at fault}

The result object `s3://<bucket>/{id}.json`, written by the watcher and polled by the client through result_url:

    {"id", "status": "running"|"done"|"error"|"cancelled", "text", "tokens", "ttft_ms", "latency_ms", "model",
     "error": {"code", "message"} | null, "turns_dropped"}

`turns_dropped`: earlier conversation turns the watcher left out to fit the model's context window (0: none).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

# --- routes (API Gateway route keys) ---------------------------------------------------------------------------
INFER = "POST /infer"
STOP = "POST /stop"
PING = "GET /ping"
COST = "GET /cost"
CANCEL = "POST /cancel/{id}"
KEEP_WARM = "POST /keepwarm"
ROUTE_KEYS = (INFER, STOP, PING, COST, CANCEL, KEEP_WARM)
# POST /infer's optional request header: a client's retry of one prompt carries the same key and is answered with
# the job the first try queued (for the job's lifetime), so a retry never queues the prompt twice.
IDEMPOTENCY_HEADER = "Idempotency-Key"

# --- answer statuses -------------------------------------------------------------------------------------------
INFER_QUEUED = "queued"        # the GPU is pending or running: the job waits for the watcher
INFER_STARTING = "starting"    # the router started the GPU (or will once it has stopped): expect `eta` seconds
PING_OK = "ok"
STOP_STOPPING = "stopping"
CANCEL_CANCELLING = "cancelling"
KEEP_WARM_ON, KEEP_WARM_OFF = "on", "off"

# /ping's "gpu": EC2's own state, except `ready` (running and the watcher's engine answers). EC2's
# `shutting-down` and `terminated` are reported as `stopped`: nothing runs and nothing is billed.
GPU_STOPPED, GPU_PENDING, GPU_RUNNING, GPU_READY, GPU_STOPPING = "stopped", "pending", "running", "ready", "stopping"
GPU_STATES = (GPU_STOPPED, GPU_PENDING, GPU_RUNNING, GPU_READY, GPU_STOPPING)
GPU_STATE_OF_EC2 = {"pending": GPU_PENDING, "running": GPU_RUNNING, "stopping": GPU_STOPPING,
                    "stopped": GPU_STOPPED, "shutting-down": GPU_STOPPED, "terminated": GPU_STOPPED}


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    """The body of every refusal: `{"error": message}` plus what helps the caller (e.g. `field`)."""
    return {"error": message, **extra}


# --- the result object -----------------------------------------------------------------------------------------
STATUS_RUNNING = "running"
STATUS_DONE = "done"
STATUS_ERROR = "error"
STATUS_CANCELLED = "cancelled"  # stopped by its owner (POST /cancel/{id}, or POST /stop: error ERR_GPU_STOPPED);
#                                  text holds what was generated until then
RESULT_STATUSES = (STATUS_RUNNING, STATUS_DONE, STATUS_ERROR, STATUS_CANCELLED)
FINAL_STATUSES = frozenset({STATUS_DONE, STATUS_ERROR, STATUS_CANCELLED})

# Error codes a client may see in result["error"]["code"].
ERR_ENGINE = "engine_error"
ERR_EXPIRED = "job_expired"
ERR_DEAD_LETTER = "dead_letter"
ERR_BAD_JOB = "bad_job"
ERR_ADAPTER = "adapter_error"
ERR_GPU_STOPPED = "gpu_stopped"  # with STATUS_CANCELLED: the user stopped the GPU (POST /stop) before the answer ended
GPU_STOPPED_MESSAGE = "GPU stopped"

RESULT_FIELDS = ("id", "status", "text", "tokens", "ttft_ms", "latency_ms", "model", "error", "turns_dropped")


@dataclass(frozen=True)
class ResultError:
    code: str
    message: str


@dataclass(frozen=True)
class Result:
    """One snapshot of a job's result object; `final` once the status is done, error or cancelled."""

    id: str
    status: str
    text: str = ""
    tokens: int = 0
    ttft_ms: int | None = None
    latency_ms: int | None = None
    model: str | None = None
    error: ResultError | None = None
    turns_dropped: int = 0

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        error = {"code": self.error.code, "message": self.error.message} if self.error else None
        return {"id": self.id, "status": self.status, "text": self.text, "tokens": self.tokens,
                "ttft_ms": self.ttft_ms, "latency_ms": self.latency_ms, "model": self.model, "error": error,
                "turns_dropped": self.turns_dropped}

    def encode(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_dict(cls, data: Any) -> Result:
        """Read a decoded result object; ValueError naming the field when it is not one."""
        if not isinstance(data, Mapping):
            raise ValueError("a result object must be a JSON object")
        status = data.get("status")
        if status not in RESULT_STATUSES:
            raise ValueError(f"result status must be one of {', '.join(RESULT_STATUSES)}, not {status!r}")
        text = data.get("text") or ""
        tokens = data.get("tokens") or 0
        if not isinstance(text, str):
            raise ValueError("result text must be a string")
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise ValueError("result tokens must be an integer")
        turns_dropped = data.get("turns_dropped") or 0  # absent in objects written before the watcher trimmed
        if isinstance(turns_dropped, bool) or not isinstance(turns_dropped, int) or turns_dropped < 0:
            raise ValueError("result turns_dropped must be a non-negative integer")
        return cls(id=str(data.get("id") or ""), status=status, text=text, tokens=tokens,
                   ttft_ms=_optional_int(data, "ttft_ms"), latency_ms=_optional_int(data, "latency_ms"),
                   model=_optional_str(data, "model"), error=_error_of(data.get("error")),
                   turns_dropped=turns_dropped)


def result_error(code: str | None, message: str | None = None) -> ResultError | None:
    return ResultError(code, message or code) if code else None


def is_final(doc: Mapping[str, Any] | None) -> bool:
    return bool(doc) and doc.get("status") in FINAL_STATUSES


def _optional_int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"result {name} must be a number")
    return int(value)


def _optional_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    return None if value is None else str(value)


def _error_of(value: Any) -> ResultError | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError("result error must be an object with code and message")
    code = str(value.get("code") or "unknown")
    return ResultError(code, str(value.get("message") or code))
