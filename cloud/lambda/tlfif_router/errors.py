"""The errors a route can end in; the handler turns each into one JSON answer and one log line."""
from __future__ import annotations


class HttpError(Exception):
    """An answer to the client other than success: status, `{"error": message, **extra}`, extra headers."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None, **extra):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


class AwsCallFailed(HttpError):
    """An AWS API call failed (botocore ClientError or a connection problem) → 502 naming the call and the code."""

    def __init__(self, call: str, code: str, detail: str = ""):
        super().__init__(502, f"{call}: {code}")
        self.call = call
        self.code = code
        self.detail = detail


class QueueUnavailable(Exception):
    """Redis (or, in the lean profile, the in-VPC queue function) cannot be reached."""


class ConfigError(Exception):
    """A required environment variable is missing or malformed."""
