"""A local HTTP server that speaks the OpenAI / vLLM wire protocol, for tests of real OpenAI client code paths.

Neither vLLM nor api.openai.com can run in a test, so this stands in for them on a free loopback port. It speaks
the same HTTP as they do (HTTP/1.1, chunked Server-Sent Events, OpenAI error bodies), so the code under test uses
the official `openai` SDK (or plain HTTP) unchanged.

Usage::

    from support.fake_openai import FakeOpenAI    # pytest puts tests/ on sys.path

    with FakeOpenAI(reply="Hello world") as srv:
        srv.base_url                      # "http://127.0.0.1:PORT/v1"
        client = openai.OpenAI(base_url=srv.base_url, api_key="anything")
        ...
        srv.chat_requests[-1].body        # the JSON the client POSTed to /v1/chat/completions
        srv.chat_requests[-1].headers     # its headers (keys lower-cased)
        srv.streams[-1].client_closed     # True when the client hung up before [DONE]

Endpoints:
    GET  /v1/models                  {"object": "list", "data": [{"id": model, "object": "model", ...}, + LoRAs]}
    POST /v1/chat/completions        `stream: true` → `text/event-stream` of `data: {chat.completion.chunk}\\n\\n`
                                     ending `data: [DONE]\\n\\n`; a first chunk with the assistant role, one chunk
                                     per piece of the reply, a chunk with `finish_reason` ("stop", or "length" when
                                     `max_tokens` cut the reply), and with `stream_options.include_usage` a last
                                     chunk with `choices: []` and `usage`. Without `stream`: one `chat.completion`.
    POST /v1/load_lora_adapter       vLLM's: `{"lora_name", "lora_path"}` → 200 text; already loaded → 400.
    POST /v1/unload_lora_adapter     vLLM's: `{"lora_name"}`.
    POST /tokenize                   vLLM's (at the root, beside /v1): `{"model", "messages",
                                     "add_generation_prompt"}` or `{"model", "prompt"}` → `{"count", "max_model_len",
                                     "tokens"}`. The fake tokenizer: one token per word, plus TEMPLATE_TOKENS per
                                     message (role markers) and one for the generation prompt.
    anything else                    404 with an OpenAI error body.

Constructor keywords (all are also plain attributes a test may change while the server runs):
    reply          the assistant text (str). It is streamed in `chunks` if given, else word by word (each piece
                   carries its leading whitespace, like LLM tokens, so the pieces join back to `reply`).
                   One piece = one "token".
    chunks         explicit list of pieces instead of splitting `reply`.
    model          the base model id that /v1/models lists and responses echo (default "fake-model").
    strict_model   when True, a chat request for a model that is neither `model` nor a loaded LoRA → 404 like
                   vLLM ("The model `x` does not exist."). Default False: any model is accepted and echoed.
    api_key        when set, every request must carry `Authorization: Bearer <api_key>`, else 401
                   (code "invalid_api_key").
    chunk_delay    seconds to wait before each content chunk (default 0).
    fail_after     after this many content chunks, fail the stream (None = never). `fail_mode` says how:
                   "drop"  — close the TCP connection without ending the chunked body (the client sees a broken
                             stream: the SDK raises APIConnectionError);
                   "error" — send vLLM's in-stream error event `data: {"error": {...}}` then `data: [DONE]`
                             (the SDK raises APIError).
    status         answer chat requests with this HTTP status and an OpenAI error body instead (e.g. 500, 429).
                   `status_times` limits it to the first N chat requests (None = always); `retry_after` adds a
                   `Retry-After` header (seconds). Note the SDK retries 429/5xx itself unless max_retries=0.
    pause_after    after this many content chunks, hold the stream until `resume()` (or the client hangs up).
    lora_status    HTTP status for /v1/load_lora_adapter (default 200; e.g. 404 to make loads fail).
    max_model_len  the context window /v1/models and /tokenize report, as vLLM does (default 2048).

Records (thread-safe lists, appended as requests arrive):
    requests       every `Recorded(method, path, headers, body)`; `body` is the decoded JSON (or None / raw str).
    chat_requests  the /v1/chat/completions ones.     lora_loads  the /v1/load_lora_adapter ones.
    streams        one `StreamRecord` per streamed reply: `.request`, `.chunks_sent` (content chunks written),
                   `.completed` ([DONE] written), `.client_closed` (client hung up first), `.finished` (Event).
    loaded_loras   dict lora_name → lora_path of adapters loaded so far.
Helpers: `wait_for_streams(n, timeout)`, `wait_closed(timeout)` (the last stream ended, either way), `resume()`,
`reset()` (forget records and loaded LoRAs).
"""
from __future__ import annotations

import json
import re
import select
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_WORD = re.compile(r"\s*\S+|\s+")
TEMPLATE_TOKENS = 3  # the fake chat template's tokens around one message


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StreamRecord:
    request: Recorded
    chunks_sent: int = 0
    completed: bool = False
    client_closed: bool = False
    finished: threading.Event = field(default_factory=threading.Event)


class _ClientGone(Exception):
    pass


def split_words(text: str) -> list[str]:
    """'Hello big world' → ['Hello', ' big', ' world'] (like LLM tokens): pieces that join back to the text."""
    return _WORD.findall(text)


def _error_body(message: str, type_: str, code: Any, param: Any = None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


_STATUS_TYPES = {400: "BadRequestError", 401: "invalid_request_error", 404: "NotFoundError",
                 429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}


class FakeOpenAI:
    def __init__(self, reply: str = "Hello world", *, chunks: list[str] | None = None, model: str = "fake-model",
                 strict_model: bool = False, api_key: str | None = None, chunk_delay: float = 0.0,
                 fail_after: int | None = None, fail_mode: str = "drop", status: int | None = None,
                 status_times: int | None = None, retry_after: int | None = None, pause_after: int | None = None,
                 lora_status: int = 200, max_model_len: int = 2048, host: str = "127.0.0.1", port: int = 0):
        if fail_mode not in ("drop", "error"):
            raise ValueError("fail_mode must be 'drop' or 'error'")
        self.reply = reply
        self.chunks = chunks
        self.model = model
        self.strict_model = strict_model
        self.api_key = api_key
        self.chunk_delay = chunk_delay
        self.fail_after = fail_after
        self.fail_mode = fail_mode
        self.status = status
        self.status_times = status_times
        self.retry_after = retry_after
        self.pause_after = pause_after
        self.lora_status = lora_status
        self.max_model_len = max_model_len
        self.requests: list[Recorded] = []
        self.streams: list[StreamRecord] = []
        self.loaded_loras: dict[str, str] = {}
        self._lock = threading.Lock()
        self._resume = threading.Event()
        self._status_served = 0
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.base_url = f"{self.url}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)

    # --- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._resume.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- test helpers --------------------------------------------------------------------------------------------
    @property
    def chat_requests(self) -> list[Recorded]:
        return [r for r in list(self.requests) if r.path.rstrip("/") == "/v1/chat/completions"]

    @property
    def lora_loads(self) -> list[Recorded]:
        return [r for r in list(self.requests) if r.path.rstrip("/") == "/v1/load_lora_adapter"]

    def resume(self) -> None:
        """Let streams held by `pause_after` go on."""
        self._resume.set()

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.streams.clear()
            self.loaded_loras.clear()
            self._status_served = 0
            self._resume.clear()

    def wait_for_streams(self, n: int = 1, timeout: float = 5.0) -> list[StreamRecord]:
        deadline = time.monotonic() + timeout
        while len(self.streams) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fake OpenAI server saw {len(self.streams)} streams, expected {n}")
            time.sleep(0.01)
        return list(self.streams)

    def wait_closed(self, timeout: float = 5.0) -> StreamRecord:
        """Wait until the latest stream has ended (completed, failed or closed by the client)."""
        record = self.wait_for_streams(1, timeout)[-1]
        if not record.finished.wait(timeout):
            raise TimeoutError("the fake OpenAI stream did not end")
        return record

    def pieces(self) -> list[str]:
        return list(self.chunks) if self.chunks is not None else split_words(self.reply)

    # --- the HTTP side -------------------------------------------------------------------------------------------
    def _take_status(self) -> int | None:
        with self._lock:
            if self.status is None:
                return None
            if self.status_times is not None and self._status_served >= self.status_times:
                return None
            self._status_served += 1
            return self.status

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "fake-openai/1.0"

            def log_message(self, *args):  # quiet
                pass

            # -- plumbing --
            def _read_body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if not raw:
                    return None
                try:
                    return json.loads(raw)
                except ValueError:
                    return raw.decode("utf-8", "replace")

            def _record(self, body: Any) -> Recorded:
                rec = Recorded(self.command, self.path.split("?")[0], {k.lower(): v for k, v in self.headers.items()},
                               body)
                with fake._lock:
                    fake.requests.append(rec)
                return rec

            def _send(self, code: int, payload: Any, content_type: str = "application/json",
                      headers: dict | None = None) -> None:
                data = payload if isinstance(payload, bytes) else (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:24]}")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _error(self, code: int, message: str, type_: str | None = None, err_code: Any = None,
                       headers: dict | None = None) -> None:
                self._send(code, _error_body(message, type_ or _STATUS_TYPES.get(code, "error"),
                                             err_code if err_code is not None else code), headers=headers)

            def _authorised(self) -> bool:
                if fake.api_key is None:
                    return True
                if self.headers.get("Authorization") == f"Bearer {fake.api_key}":
                    return True
                self._error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
                return False

            # -- verbs --
            def do_GET(self):
                self._record(None)
                if not self._authorised():
                    return
                if self.path.split("?")[0].rstrip("/") != "/v1/models":
                    return self._error(404, f"Not found: {self.path}")
                now = int(time.time())
                data = [{"id": fake.model, "object": "model", "created": now, "owned_by": "vllm",
                         "root": fake.model, "parent": None, "max_model_len": fake.max_model_len}]
                data += [{"id": name, "object": "model", "created": now, "owned_by": "vllm", "root": path,
                          "parent": fake.model} for name, path in list(fake.loaded_loras.items())]
                self._send(200, {"object": "list", "data": data})

            def do_POST(self):
                body = self._read_body()
                rec = self._record(body)
                if not self._authorised():
                    return
                route = rec.path.rstrip("/")
                if route == "/v1/chat/completions":
                    return self._chat(rec)
                if route == "/v1/load_lora_adapter":
                    return self._load_lora(body)
                if route == "/tokenize":
                    return self._tokenize(body)
                if route == "/v1/unload_lora_adapter":
                    name = body.get("lora_name") if isinstance(body, dict) else None
                    if name not in fake.loaded_loras:
                        return self._error(404, f"The lora adapter '{name}' cannot be found.")
                    fake.loaded_loras.pop(name, None)
                    return self._send(200, f"Success: LoRA adapter '{name}' removed successfully.", "text/plain")
                self._error(404, f"Not found: {self.path}")

            def _tokenize(self, body: Any) -> None:
                if isinstance(body, dict) and isinstance(body.get("messages"), list):
                    count = sum(len(str(m.get("content", "")).split()) + TEMPLATE_TOKENS for m in body["messages"])
                    count += 1 if body.get("add_generation_prompt", True) else 0
                elif isinstance(body, dict) and isinstance(body.get("prompt"), str):
                    count = len(body["prompt"].split())
                else:
                    return self._error(400, "Either 'prompt' or 'messages' must be provided.")
                self._send(200, {"count": count, "max_model_len": fake.max_model_len, "tokens": list(range(count))})

            def _load_lora(self, body: Any) -> None:
                if not isinstance(body, dict) or not body.get("lora_name") or not body.get("lora_path"):
                    return self._error(400, "Both 'lora_name' and 'lora_path' must be provided.")
                name = body["lora_name"]
                if fake.lora_status != 200:
                    return self._error(fake.lora_status, f"Loading lora {name} failed")
                if name in fake.loaded_loras:
                    return self._error(400, f"The lora adapter '{name}' has already been loaded.")
                fake.loaded_loras[name] = body["lora_path"]
                self._send(200, f"Success: LoRA adapter '{name}' added successfully.", "text/plain")

            def _chat(self, rec: Recorded) -> None:
                body = rec.body
                if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
                    return self._error(400, "model and messages are required")
                status = fake._take_status()
                if status is not None:
                    headers = {"Retry-After": str(fake.retry_after)} if fake.retry_after is not None else None
                    return self._error(status, f"fake server answers {status}", headers=headers)
                model = body["model"]
                if fake.strict_model and model != fake.model and model not in fake.loaded_loras:
                    return self._error(404, f"The model `{model}` does not exist.", "NotFoundError", 404)
                pieces = fake.pieces()
                finish = "stop"
                max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
                if isinstance(max_tokens, int) and max_tokens < len(pieces):
                    pieces, finish = pieces[:max_tokens], "length"
                prompt_tokens = sum(len(split_words(str(m.get("content", "")))) for m in body["messages"]
                                    if isinstance(m, dict))
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
                         "total_tokens": prompt_tokens + len(pieces)}
                cid = f"chatcmpl-{uuid.uuid4().hex}"
                if not body.get("stream"):
                    return self._send(200, {
                        "id": cid, "object": "chat.completion", "created": int(time.time()), "model": model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(pieces)},
                                     "logprobs": None, "finish_reason": finish}],
                        "usage": usage})
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                self._stream(rec, cid, model, pieces, finish, usage if include_usage else None)

            # -- streaming --
            def _chunk(self, data: bytes) -> None:
                try:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, OSError) as err:
                    raise _ClientGone() from err

            def _event(self, payload: Any) -> None:
                text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
                self._chunk(f"data: {text}\n\n".encode())

            def _client_gone(self) -> bool:
                try:
                    readable, _, _ = select.select([self.connection], [], [], 0)
                    return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True

            def _wait(self, seconds: float) -> None:
                """Sleep, but notice at once when the client hangs up."""
                deadline = time.monotonic() + seconds
                while True:
                    if self._client_gone():
                        raise _ClientGone()
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    select.select([self.connection], [], [], min(left, 0.05))

            def _hold(self) -> None:
                while not fake._resume.is_set():
                    if self._client_gone():
                        raise _ClientGone()
                    fake._resume.wait(0.02)

            def _stream(self, rec: Recorded, cid: str, model: str, pieces: list[str], finish: str,
                        usage: dict | None) -> None:
                record = StreamRecord(rec)
                with fake._lock:
                    fake.streams.append(record)
                created = int(time.time())

                def chunk(delta: dict, finish_reason: str | None = None) -> dict:
                    out = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                           "system_fingerprint": None,
                           "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                        "finish_reason": finish_reason}]}
                    if usage is not None:
                        out["usage"] = None
                    return out

                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("x-request-id", f"req_{uuid.uuid4().hex[:24]}")
                self.end_headers()
                try:
                    self._event(chunk({"role": "assistant", "content": ""}))
                    for i, piece in enumerate(pieces):
                        if fake.fail_after is not None and i >= fake.fail_after:
                            return self._fail()
                        if fake.pause_after is not None and i >= fake.pause_after:
                            self._hold()
                        if fake.chunk_delay:
                            self._wait(fake.chunk_delay)
                        elif self._client_gone():
                            raise _ClientGone()
                        self._event(chunk({"content": piece}))
                        record.chunks_sent += 1
                    if fake.fail_after is not None and fake.fail_after == len(pieces):
                        return self._fail()
                    self._event(chunk({}, finish))
                    if usage is not None:
                        self._event({"id": cid, "object": "chat.completion.chunk", "created": created,
                                     "model": model, "system_fingerprint": None, "choices": [], "usage": usage})
                    self._event("[DONE]")
                    self._chunk(b"")  # the zero-length chunk ends the body
                    record.completed = True
                except _ClientGone:
                    record.client_closed = True
                    self.close_connection = True
                finally:
                    record.finished.set()

            def _fail(self) -> None:
                self.close_connection = True
                if fake.fail_mode == "error":
                    self._event({"error": {"object": "error", "message": "fake engine failure mid-stream",
                                           "type": "InternalServerError", "param": None, "code": 500}})
                    self._event("[DONE]")
                    self._chunk(b"")
                    return
                try:  # drop: no terminating chunk, just a dead socket
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        return Handler
