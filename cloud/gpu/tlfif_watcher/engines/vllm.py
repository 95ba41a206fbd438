"""The vLLM engine: vLLM's OpenAI-compatible server (RQL 5.4, default http://127.0.0.1:8000/v1) through the
official `openai` SDK — streaming chat completions with the job's messages and params, LoRA adapters loaded at run
time through vLLM's `POST /v1/load_lora_adapter` (the server runs with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True).
"""
from __future__ import annotations

import logging
import socket
import threading
from typing import Iterator

import openai

from tlfif_common.jobs import Job

from .base import AdapterError, Engine, EngineError, Generation

log = logging.getLogger("tlfif_watcher")

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 120.0  # longest silence between two chunks before the job fails
READY_TIMEOUT_S = 5.0


class OpenAIGeneration(Generation):
    def __init__(self, client: openai.OpenAI, model: str, job: Job):
        super().__init__()
        self.model = model
        self._client = client
        self._job = job
        self._stream = None
        self._lock = threading.Lock()

    def _request(self) -> dict:
        params = self._job.params or {}
        kwargs = {"model": self.model, "messages": self._job.chat_messages(), "stream": True,
                  "stream_options": {"include_usage": True}}
        for name in ("temperature", "max_tokens"):
            if params.get(name) is not None:
                kwargs[name] = params[name]
        return kwargs

    def __iter__(self) -> Iterator[str]:
        try:
            stream = self._client.chat.completions.create(**self._request())
            with self._lock:
                self._stream = stream
            if self.cancelled:
                return
            for chunk in stream:
                if self.cancelled:
                    return
                if chunk.usage is not None and chunk.usage.completion_tokens is not None:
                    self.tokens = chunk.usage.completion_tokens
                for choice in chunk.choices or ():
                    content = choice.delta.content if choice.delta is not None else None
                    if content:
                        yield content
        except openai.OpenAIError as err:
            if self.cancelled:
                return
            raise EngineError(f"engine failed: {_describe(err)}") from err
        except Exception as err:  # a socket closed under us by close() surfaces as whatever httpx raises
            if self.cancelled:
                return
            raise EngineError(f"engine failed: {type(err).__name__}: {err}") from err
        finally:
            self._close_stream()

    def close(self) -> None:
        super().close()
        with self._lock:
            stream = self._stream
        if stream is not None:
            _hang_up(stream)
        self._close_stream()

    def _close_stream(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except Exception:  # closing twice or from another thread must never raise into the caller
                log.debug("closing the engine stream failed", exc_info=True)


def _hang_up(stream) -> None:
    """Shut the stream's socket down so a read blocked in another thread returns at once (closing the response
    alone does not wake a blocked recv). Uses httpcore's `network_stream` response extension; best effort."""
    try:
        sock = stream.response.extensions["network_stream"].get_extra_info("socket")
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception:
        log.debug("could not shut the engine socket down", exc_info=True)


def _describe(err: openai.OpenAIError) -> str:
    status = getattr(err, "status_code", None)
    name = type(err).__name__
    return f"{name} (HTTP {status}): {err}" if status else f"{name}: {err}"


class VllmEngine(Engine):
    name = "vllm"

    def __init__(self, base_url: str, *, model: str | None = None, api_key: str = "EMPTY", adapters=None,
                 max_retries: int = 1):
        self.base_url = base_url
        self.model = model
        self.adapters = adapters  # AdapterFetcher or None (then adapter jobs fail with adapter_error)
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "EMPTY", max_retries=max_retries,
                                    timeout=openai.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S))
        self._loaded: dict[str, str] = {}  # adapter_uri -> lora_name
        self._load_lock = threading.Lock()

    def ready(self) -> bool:
        try:
            models = self.client.with_options(max_retries=0, timeout=READY_TIMEOUT_S).models.list()
            ids = [m.id for m in models.data if getattr(m, "parent", None) in (None, "")] or \
                  [m.id for m in models.data]
        except openai.OpenAIError as err:
            log.info("engine not answering yet", extra={"engine": self.name, "error": _describe(err)})
            return False
        if not ids:
            log.info("engine lists no model yet", extra={"engine": self.name})
            return False
        if self.model is None:
            self.model = ids[0]
        elif self.model not in ids:
            log.warning("configured model is not among the served ones",
                        extra={"engine": self.name, "model": self.model, "served": ids})
        return True

    def load_adapter(self, uri: str) -> str:
        """Make the LoRA at `uri` available to vLLM (once per URI); return the model name to request."""
        from .adapters import lora_name

        with self._load_lock:
            if uri in self._loaded:
                return self._loaded[uri]
            if self.adapters is None:
                raise AdapterError("this watcher cannot fetch adapters (no models bucket access)")
            path = self.adapters.fetch(uri)
            name = lora_name(uri)
            try:
                self.client.post("/load_lora_adapter", cast_to=str, body={"lora_name": name, "lora_path": path})
            except openai.BadRequestError as err:
                if "already been loaded" not in str(err):  # vLLM kept it from an earlier watcher run
                    raise AdapterError(f"vLLM refused adapter {uri}: {_describe(err)}") from err
            except openai.OpenAIError as err:
                raise AdapterError(f"vLLM could not load adapter {uri}: {_describe(err)}") from err
            self._loaded[uri] = name
            log.info("adapter loaded", extra={"engine": self.name, "adapter_uri": uri, "lora_name": name})
            return name

    def generate(self, job: Job) -> OpenAIGeneration:
        if self.model is None and not self.ready():
            raise EngineError("engine is not answering")
        model = self.load_adapter(job.adapter_uri) if job.adapter_uri else self.model
        return OpenAIGeneration(self.client, model, job)

    def close(self) -> None:
        self.client.close()
