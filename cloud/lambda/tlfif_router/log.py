"""One JSON object per log line, tagged with the component, for CloudWatch Logs Insights.

The Lambda runtime's own root handler prefixes lines with plain text; this logger has its own stdout handler and
does not propagate, so every line it writes is valid JSON.
"""
from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any


class _StdoutHandler(logging.Handler):
    """Writes to the *current* sys.stdout (test capture replaces it between tests)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging must never take the request down
            self.handleError(record)


class _JsonFormatter(logging.Formatter):
    def __init__(self, component: str):
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": self.component,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(line, default=str, separators=(",", ":"))


def get_logger(component: str) -> logging.Logger:
    logger = logging.getLogger(f"tlfif.{component}")
    if not logger.handlers:
        handler = _StdoutHandler()
        handler.setFormatter(_JsonFormatter(component))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger


def log(logger: logging.Logger, level: int, message: str, *, exc_info: bool = False, **fields: Any) -> None:
    """`log(logger, logging.ERROR, "ec2 call failed", request_id=..., call=...)` → one JSON line."""
    logger.log(level, message, exc_info=exc_info, extra={"fields": fields})
