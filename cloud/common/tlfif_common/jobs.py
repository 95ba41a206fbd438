"""The job message (RQL 4.2) and the `/infer` request schema: one definition for the router, the watcher and the app.

A job lives in Redis under `job:{uuid}` (`redis_keys.job`) as JSON, its fields JOB_FIELDS::

    {"prompt": str, "idle": int, "reply_s3": "s3://<bucket>/<uuid>.json", "timestamp": epoch_ms,
     "messages": [...], "params": {...}, "adapter_uri": "s3://...", "user": "<JWT sub>"}   # last four optional

`validate_infer_request` is the one check of a request (the router's, and the app's before it sends); the limits
it applies are the constants below, which the app's settings and widgets read too.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Mapping

JOB_TTL_SECONDS = 300
MAX_PROMPT_BYTES = 32 * 1024
IDLE_MIN, IDLE_MAX = 1, 30
MAX_MESSAGES = 200
MAX_MESSAGES_BYTES = 256 * 1024
MAX_TOKENS_LIMIT = 4096
TEMPERATURE_MIN, TEMPERATURE_MAX = 0.0, 2.0
ROLES = ("system", "user", "assistant")
PARAM_NAMES = ("temperature", "max_tokens", "system")

# Fields a client may send to POST /infer; everything else is refused by name.
REQUEST_FIELDS = ("prompt", "idle", "messages", "params", "adapter_uri")
# The job message: what the router adds to a request (where the result goes, when, for whom).
JOB_FIELDS = ("prompt", "idle", "reply_s3", "timestamp", "messages", "params", "adapter_uri", "user")


class RequestError(ValueError):
    """A request field is missing or wrong; `field` names it and str(err) says what is wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{8,128}")


def validate_idempotency_key(value: str | None) -> str | None:
    """The Idempotency-Key header of /infer (absent: None): 8 to 128 letters, digits, "-" or "_" (a UUID fits)."""
    if value is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise RequestError("Idempotency-Key", "the Idempotency-Key header must be 8 to 128 letters, digits, - or _")
    return value


def result_object_key(job_id: str) -> str:
    return f"{job_id}.json"


def s3_uri(bucket: str, key: str) -> str:
    return f"s3://{bucket}/{key}"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/key` → (bucket, key); ValueError when it is not one."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError("not an s3:// URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket or not key:
        raise ValueError("an s3:// URI needs a bucket and a key")
    return bucket, key


ADAPTER_PREFIX = "adapters"  # the one folder of the models bucket an adapter_uri may name
_ADAPTER_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def normalise_adapter_uri(uri: str, models_bucket: str | None) -> str:
    """`s3://<models bucket>/adapters/<name>[/...]` in one spelling (no empty, "." or ".." segment, no trailing
    "/"): the same adapter is one cache entry. ValueError saying what is wrong otherwise."""
    bucket, key = parse_s3_uri(uri)
    if not models_bucket or bucket != models_bucket:
        raise ValueError("adapter_uri must point inside the models bucket")
    segments = [segment for segment in key.split("/") if segment]
    if len(segments) < 2 or segments[0] != ADAPTER_PREFIX:
        raise ValueError(f"adapter_uri must name a folder under {ADAPTER_PREFIX}/ of the models bucket")
    if not all(_ADAPTER_SEGMENT.fullmatch(segment) for segment in segments):
        raise ValueError("adapter_uri folder names are letters, digits, '.', '_' or '-' (not '.' or '..')")
    return f"s3://{bucket}/{'/'.join(segments)}"


def is_job_id(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except (ValueError, TypeError, AttributeError):
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _utf8_size(text: str, field: str) -> int:
    """Bytes of `text` in UTF-8; RequestError for a str that has none (a lone surrogate, e.g. from "\\ud800")."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise RequestError(field, f"{field} is not valid Unicode (a lone UTF-16 surrogate)") from None


def _check_messages(messages: Any) -> list[dict]:
    if not isinstance(messages, list):
        raise RequestError("messages", "messages must be a list of {role, content} objects")
    if len(messages) > MAX_MESSAGES:
        raise RequestError("messages", f"messages may hold at most {MAX_MESSAGES} turns")
    size = 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise RequestError("messages", f"messages[{i}] must be an object with exactly role and content")
        if message["role"] not in ROLES:
            raise RequestError("messages", f"messages[{i}].role must be one of {', '.join(ROLES)}")
        if not isinstance(message["content"], str):
            raise RequestError("messages", f"messages[{i}].content must be a string")
        size += _utf8_size(message["content"], f"messages[{i}].content")
    if size > MAX_MESSAGES_BYTES:
        raise RequestError("messages", f"messages exceed {MAX_MESSAGES_BYTES // 1024} KiB")
    return [dict(m) for m in messages]


def _check_params(params: Any) -> dict:
    if not isinstance(params, dict):
        raise RequestError("params", "params must be an object")
    unknown = sorted(set(params) - set(PARAM_NAMES))
    if unknown:
        raise RequestError(f"params.{unknown[0]}", f"unknown field params.{unknown[0]}")
    if "temperature" in params:
        t = params["temperature"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not TEMPERATURE_MIN <= t <= TEMPERATURE_MAX:
            raise RequestError("params.temperature",
                               f"params.temperature must be a number from {TEMPERATURE_MIN:g} to {TEMPERATURE_MAX:g}")
    if "max_tokens" in params:
        m = params["max_tokens"]
        if not _is_int(m) or not 1 <= m <= MAX_TOKENS_LIMIT:
            raise RequestError("params.max_tokens",
                               f"params.max_tokens must be an integer from 1 to {MAX_TOKENS_LIMIT}")
    if "system" in params:
        s = params["system"]
        if not isinstance(s, str) or _utf8_size(s, "params.system") > MAX_PROMPT_BYTES:
            raise RequestError("params.system", "params.system must be a string of at most 32 KiB")
    return dict(params)


def _check_adapter(uri: Any, models_bucket: str | None) -> str:
    if not isinstance(uri, str):
        raise RequestError("adapter_uri", "adapter_uri must be an s3:// URI string")
    try:
        parse_s3_uri(uri)
    except ValueError:
        raise RequestError("adapter_uri", "adapter_uri must be an s3://<models bucket>/<key> URI") from None
    try:
        return normalise_adapter_uri(uri, models_bucket)
    except ValueError as err:
        raise RequestError("adapter_uri", str(err)) from None


def validate_infer_request(body: Any, *, models_bucket: str | None) -> dict:
    """Check a decoded `/infer` body; return the clean fields or raise RequestError naming the bad field."""
    if not isinstance(body, dict):
        raise RequestError("body", "the body must be a JSON object")
    unknown = sorted(set(body) - set(REQUEST_FIELDS))
    if unknown:
        raise RequestError(unknown[0], f"unknown field {unknown[0]}")
    if "prompt" not in body:
        raise RequestError("prompt", "prompt is required")
    prompt = body["prompt"]
    if not isinstance(prompt, str) or not prompt.strip():
        raise RequestError("prompt", "prompt must be a non-empty string")
    if _utf8_size(prompt, "prompt") > MAX_PROMPT_BYTES:
        raise RequestError("prompt", "prompt must be at most 32 KiB")
    if "idle" not in body:
        raise RequestError("idle", "idle is required")
    idle = body["idle"]
    if not _is_int(idle) or not IDLE_MIN <= idle <= IDLE_MAX:
        raise RequestError("idle", f"idle must be an integer from {IDLE_MIN} to {IDLE_MAX} (minutes)")
    clean: dict = {"prompt": prompt, "idle": idle}
    if "messages" in body:
        clean["messages"] = _check_messages(body["messages"])
    if "params" in body:
        clean["params"] = _check_params(body["params"])
    if "adapter_uri" in body:
        clean["adapter_uri"] = _check_adapter(body["adapter_uri"], models_bucket)
    return clean


@dataclass(frozen=True)
class Job:
    id: str
    prompt: str
    idle: int
    reply_s3: str
    timestamp: int
    messages: list | None = None
    params: dict | None = None
    adapter_uri: str | None = None
    user: str | None = None

    @classmethod
    def create(cls, fields: Mapping[str, Any], *, bucket: str, user: str | None, now_ms: int,
               job_id: str | None = None) -> Job:
        job_id = job_id or str(uuid.uuid4())
        return cls(id=job_id, reply_s3=s3_uri(bucket, result_object_key(job_id)), timestamp=now_ms, user=user,
                   **{k: fields[k] for k in REQUEST_FIELDS if k in fields})

    def to_dict(self) -> dict[str, Any]:
        """The job with its id and every field that is set (the lean queue function's payload)."""
        return {"id": self.id, **{k: getattr(self, k) for k in JOB_FIELDS if getattr(self, k) is not None}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        """The inverse of to_dict; ValueError when the id is not a job id, a field is unknown or one is missing."""
        if not isinstance(data, Mapping):
            raise ValueError("a job must be an object")
        if not is_job_id(data.get("id")):
            raise ValueError("a job's id must be a UUID")
        unknown = sorted(set(data) - {"id"} - set(JOB_FIELDS))
        if unknown:
            raise ValueError(f"unknown job field {unknown[0]}")
        try:
            return cls(**{k: data[k] for k in ("id", *JOB_FIELDS) if k in data})
        except TypeError:
            raise ValueError("a job needs prompt, idle, reply_s3 and timestamp") from None

    def to_json(self) -> str:
        """The message stored under the job's key: to_dict without the id (the key holds it)."""
        data = self.to_dict()
        del data["id"]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, job_id: str, raw: str | bytes) -> Job:
        """Read a stored message; fields this version does not know are ignored (a newer router may add some)."""
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("a job message must be a JSON object")
        return cls(id=job_id, **{k: data[k] for k in JOB_FIELDS if k in data})

    def chat_messages(self) -> list[dict]:
        return chat_messages(self.prompt, self.messages, self.params)


def chat_messages(prompt: str, messages: list[dict] | None = None,
                  params: Mapping[str, Any] | None = None) -> list[dict]:
    """The conversation to send to a chat-completions engine: system prompt, history, then the prompt."""
    out: list[dict] = []
    system = (params or {}).get("system")
    if system:
        out.append({"role": "system", "content": system})
    out.extend(messages or [])
    out.append({"role": "user", "content": prompt})
    return out
