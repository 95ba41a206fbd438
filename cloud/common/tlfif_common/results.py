"""The result object `s3://<bucket>/{uuid}.json` that the watcher writes and the client polls.

    {"id", "status": "running"|"done"|"error"|"cancelled", "text", "tokens", "ttft_ms", "latency_ms", "model",
     "error": {"code", "message"} | null, "turns_dropped"}

`turns_dropped`: earlier conversation turns the watcher left out to fit the model's context window (0: none).
"""
from __future__ import annotations

import json
from typing import Any

STATUS_RUNNING = "running"
STATUS_DONE = "done"
STATUS_ERROR = "error"
STATUS_CANCELLED = "cancelled"  # stopped by its owner (POST /cancel/{id}); text holds what was generated until then
FINAL_STATUSES = frozenset({STATUS_DONE, STATUS_ERROR, STATUS_CANCELLED})

# Error codes a client may see in result["error"]["code"].
ERR_ENGINE = "engine_error"
ERR_EXPIRED = "job_expired"
ERR_DEAD_LETTER = "dead_letter"
ERR_BAD_JOB = "bad_job"
ERR_ADAPTER = "adapter_error"

RESULT_FIELDS = ("id", "status", "text", "tokens", "ttft_ms", "latency_ms", "model", "error", "turns_dropped")


def result_doc(job_id: str, status: str, *, text: str = "", tokens: int = 0, ttft_ms: int | None = None,
               latency_ms: int | None = None, model: str | None = None,
               error_code: str | None = None, error_message: str | None = None,
               turns_dropped: int = 0) -> dict[str, Any]:
    error = {"code": error_code, "message": error_message or error_code} if error_code else None
    return {"id": job_id, "status": status, "text": text, "tokens": tokens, "ttft_ms": ttft_ms,
            "latency_ms": latency_ms, "model": model, "error": error, "turns_dropped": turns_dropped}


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def is_final(doc: dict[str, Any] | None) -> bool:
    return bool(doc) and doc.get("status") in FINAL_STATUSES
