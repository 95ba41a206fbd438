"""The "OpenAI" backend: streaming chat completions through the official `openai` SDK.

The key comes from OPENAI_API_KEY or from the key dialog, and is held in memory only. Model and base URL come from
the settings (any OpenAI-compatible server works: vLLM, llama.cpp, Ollama). The stream asks for usage
(`stream_options.include_usage`): the last chunk's token counts price the answer. Time to first token and the
generation time are measured here, from the request to the first / last content chunk. Stop generating hangs up the
HTTP response (the server sees the connection close) and the Reply comes back `stopped` with the text so far.
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import openai
from tlfif_common.jobs import chat_messages

from app.backends.base import (Backend, BackendContext, BackendError, CancelFlags, Cancelled, JobEvents,
                               PromptRequest, Reply)

log = logging.getLogger("tlfif.app.openai")

ENV_API_KEY = "OPENAI_API_KEY"


class KeyNeeded(BackendError):
    """No API key: the app asks the user for one."""


@dataclass
class OpenAiSubmission:
    request_id: str
    stream: Any
    client: Any
    started: float


class OpenAiApiClient(Backend):
    key = "openai"
    label = "OpenAI"
    tag = "[openai]"

    def __init__(self, ctx: BackendContext):
        super().__init__(ctx)
        self._key: str | None = None
        self._env_key_refused = False
        self._cancels = CancelFlags()
        self._streams: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}

    def _client(self, key: str, base_url: str) -> Any:
        """One SDK client per (key, base URL), reused: building one loads TLS certificates, which holds the GIL
        (and so the Tk thread) for tens of milliseconds."""
        with self._lock:
            client = self._clients.get((key, base_url))
            if client is None:
                client = self._clients[(key, base_url)] = openai.OpenAI(
                    api_key=key, base_url=base_url or None, max_retries=1,
                    timeout=self._ctx.timings.http_timeout_s * 4)
            return client

    def warm_up(self) -> None:
        """Worker thread, at start-up: the SDK's first client costs ~0.25 s of imports and TLS set-up; pay it now
        rather than on the first OpenAI prompt."""
        settings = self._ctx.settings()
        self._client(self._api_key() or "warm-up", settings.openai_base_url)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # --- the key, memory only ---------------------------------------------------------------------------------------
    def _api_key(self) -> str | None:
        if self._key:
            return self._key
        env = self._ctx.env.get(ENV_API_KEY)
        return env if env and not self._env_key_refused else None

    def needs_key(self) -> bool:
        return self._api_key() is None

    def set_key(self, key: str) -> None:
        self._key = key.strip() or None

    def list_models(self, base_url: str) -> list[str]:
        """Worker thread: the model ids the key in memory can use at `base_url` ('' : api.openai.com), sorted.
        Raises KeyNeeded without a key, BackendError (the message says why) when the server refuses."""
        key = self._api_key()
        if not key:
            raise KeyNeeded(f"{self.tag} no API key (set {ENV_API_KEY} or enter one when asked)")
        try:
            return sorted(model.id for model in self._client(key, base_url).models.list())
        except openai.APIError as err:
            raise BackendError(f"{self.tag} cannot list the models: {_message(err)}") from None

    # --- Backend ----------------------------------------------------------------------------------------------------
    def run(self, request: PromptRequest, events: JobEvents) -> Reply:
        return self._follow(self._open_stream(request, events), events)

    def _open_stream(self, request: PromptRequest, events: JobEvents) -> OpenAiSubmission:
        key = self._api_key()
        if not key:
            raise KeyNeeded(f"{self.tag} no API key (set {ENV_API_KEY} or enter one when asked)")
        settings = self._ctx.settings()
        flag = self._cancels.flag(request.request_id)
        client = self._client(key, settings.openai_base_url)
        params = request.params or {}
        messages = chat_messages(request.prompt, request.messages, params)
        extra: dict[str, Any] = {}
        if "temperature" in params:
            extra["temperature"] = params["temperature"]
        if "max_tokens" in params:
            extra["max_tokens"] = params["max_tokens"]
        started = time.monotonic()
        try:
            stream = client.chat.completions.create(model=settings.openai_model, messages=messages, stream=True,
                                                    stream_options={"include_usage": True}, **extra)
        except BaseException:
            self._cancels.drop(request.request_id)
            raise
        with self._lock:
            self._streams[request.request_id] = stream
        if flag.is_set():
            stream.close()
        log.info("[openai] streaming from %s (%s)", settings.openai_base_url or "api.openai.com",
                 settings.openai_model)
        events.queued("streaming", 0.0, "")
        return OpenAiSubmission(request.request_id, stream, client, started)

    def _follow(self, submission: OpenAiSubmission, events: JobEvents) -> Reply:
        flag = self._cancels.flag(submission.request_id)
        parts: list[str] = []
        pieces = 0
        usage_tokens = 0
        prompt_tokens: int | None = None
        cached_tokens = 0
        model = ""
        ttft_ms: int | None = None
        try:
            for chunk in submission.stream:
                if flag.is_set():
                    raise Cancelled()
                # The SDK builds chunks without validating them: a field an OpenAI-compatible server left out
                # reads as None.
                model = chunk.model or model
                usage = chunk.usage
                if usage is not None:
                    if usage.completion_tokens:
                        usage_tokens = int(usage.completion_tokens)
                    if isinstance(usage.prompt_tokens, int):
                        prompt_tokens = int(usage.prompt_tokens)
                    details = usage.prompt_tokens_details
                    if details is not None and isinstance(details.cached_tokens, int):
                        cached_tokens = int(details.cached_tokens)
                for choice in chunk.choices or ():
                    delta = choice.delta.content if choice.delta else None
                    if delta:
                        if ttft_ms is None:
                            ttft_ms = int((time.monotonic() - submission.started) * 1000)
                        parts.append(delta)
                        pieces += 1
                        events.progress("".join(parts), pieces)
        except Exception:
            if not flag.is_set():
                raise
        finally:
            with self._lock:
                self._streams.pop(submission.request_id, None)
            self._cancels.drop(submission.request_id)
            submission.stream.close()
        generation_ms = int((time.monotonic() - submission.started) * 1000)
        model = model or self._ctx.settings().openai_model
        if flag.is_set():  # stopped: no usage came (it is the stream's last chunk); the pieces count the tokens
            log.info("[openai] stream closed by the user after %d pieces", pieces)
            return Reply(text="".join(parts), tokens=pieces, model=model, ttft_ms=ttft_ms,
                         generation_ms=generation_ms, stopped=True)
        return Reply(text="".join(parts), tokens=usage_tokens or pieces, model=model, ttft_ms=ttft_ms,
                     generation_ms=generation_ms, prompt_tokens=prompt_tokens, cached_tokens=cached_tokens)

    def _explain(self, error: BaseException) -> str:
        base = self._ctx.settings().openai_base_url or "api.openai.com"
        if isinstance(error, openai.AuthenticationError):
            with self._lock:
                self._clients = {k: c for k, c in self._clients.items() if k[0] != self._api_key()}
            if self._key:
                self._key = None
            else:
                self._env_key_refused = True
            return f"{self.tag} the API key was refused (HTTP 401); you will be asked for another"
        if isinstance(error, openai.RateLimitError):
            return f"{self.tag} rate limited (HTTP 429): {_message(error)}"
        if isinstance(error, openai.APIStatusError):
            return f"{self.tag} HTTP {error.status_code}: {_message(error)}"
        if isinstance(error, openai.APITimeoutError):
            return f"{self.tag} {base} did not answer in time"
        if isinstance(error, openai.APIConnectionError):
            return f"{self.tag} cannot reach {base}: {error.__class__.__name__}"
        if isinstance(error, openai.APIError):
            return f"{self.tag} the stream failed: {_message(error)}"
        return super()._explain(error)

    def cancel(self, request_id: str) -> None:
        self._cancels.set(request_id)
        with self._lock:
            stream = self._streams.get(request_id)
        if stream is not None:
            _hang_up(stream)


def _hang_up(stream: Any) -> None:
    """End the HTTP response from another thread: shut the socket down (a blocked read returns at once, the
    server sees the client hang up), then close the stream."""
    try:
        network = stream.response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception:
        log.debug("[openai] socket shutdown failed", exc_info=True)
    try:
        stream.close()
    except Exception:
        log.debug("[openai] closing the stream failed", exc_info=True)


def _message(error: openai.APIError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(error.message or error)
