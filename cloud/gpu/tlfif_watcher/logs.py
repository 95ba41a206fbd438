"""JSON log lines for the watcher: one object per line, `"component": "watcher"`, plus the fields a call passes."""
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

COMPONENT = "watcher"
LOGGER_NAME = "tlfif_watcher"

# Attributes every LogRecord has; anything else on a record came from `extra=` and goes into the line.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": COMPONENT,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def setup(level: int = logging.INFO, stream=None) -> logging.Logger:
    """Send the watcher's log lines (and only those) as JSON to stderr; idempotent."""
    logger = get_logger()
    if not any(getattr(h, "_tlfif_json", False) for h in logger.handlers):
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JsonFormatter())
        handler._tlfif_json = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger
