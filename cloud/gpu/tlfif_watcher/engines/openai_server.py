"""One client for OpenAI-compatible inference servers (vLLM on the GPU image, llama-cpp-python's server on the local
cloud) through the official `openai` SDK: streaming chat completions with the job's messages and params, the history
trimmed to the context window with the server's own tokenizer (`context.fit`).

What differs between servers is named in a `Flavor`:
    tokenize       how to count tokens: vLLM's `POST /tokenize` takes the chat messages and applies the model's
                   template; llama-cpp-python's `POST /extras/tokenize/count` takes one text (each message is
                   counted, plus TEMPLATE_TOKENS per message for its role markers)
    lora           vLLM loads LoRA adapters at run time (`POST /v1/load_lora_adapter`, the server runs with
                   VLLM_ALLOW_RUNTIME_LORA_UPDATING=True); llama-cpp-python's server cannot
    streams_usage  vLLM sends `usage` in a last chunk (`stream_options.include_usage`); llama-cpp-python does not,
                   so the answer's tokens are counted with its tokenizer after the stream
    context        vLLM lists `max_model_len` in /v1/models; llama-cpp-python does not (the watcher is told)
"""
from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import openai

from tlfif_common.jobs import Job

from . import context
from .base import AdapterError, Engine, EngineError, Generation

log = logging.getLogger("tlfif_watcher")

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 120.0  # longest silence between two chunks before the job fails
READY_TIMEOUT_S = 5.0
TOKENIZE_TIMEOUT_S = 10.0
# After the server dropped a stream (it died: supervisord/systemd, or the local GPU node, restarts it), the next job
# waits this long for it to answer again (a model load) before failing.
RETURN_TIMEOUT_S = 120.0
TEMPLATE_TOKENS = 8  # role markers and separators around one message in common chat templates (zephyr: 6, gemma: 5)


@dataclass(frozen=True)
class Flavor:
    name: str
    tokenize: str          # "vllm-chat" | "llama-cpp-count"
    lora: bool
    streams_usage: bool


VLLM = Flavor("vllm", tokenize="vllm-chat", lora=True, streams_usage=True)
LLAMA_CPP = Flavor("llama.cpp", tokenize="llama-cpp-count", lora=False, streams_usage=False)


class OpenAIGeneration(Generation):
    def __init__(self, engine: OpenAIServerEngine, model: str, job: Job, messages: list[dict],
                 turns_dropped: int = 0):
        super().__init__()
        self.model = model
        self.turns_dropped = turns_dropped  # earlier turns left out to fit the context window
        self._engine = engine
        self._client = engine.client
        self._job = job
        self._messages = messages
        self._stream = None
        self._lock = threading.Lock()

    def _request(self) -> dict:
        params = self._job.params or {}
        kwargs = {"model": self.model, "messages": self._messages, "stream": True}
        if self._engine.flavor.streams_usage:
            kwargs["stream_options"] = {"include_usage": True}
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
            text: list[str] = []
            for chunk in stream:
                if self.cancelled:
                    return
                if chunk.usage is not None and chunk.usage.completion_tokens is not None:
                    self.tokens = chunk.usage.completion_tokens
                for choice in chunk.choices or ():
                    content = choice.delta.content if choice.delta is not None else None
                    if content:
                        text.append(content)
                        yield content
            if self.tokens is None and not self.cancelled:
                self.tokens = self._engine.count_text("".join(text))
        except openai.OpenAIError as err:
            if self.cancelled:
                return
            if isinstance(err, openai.APIConnectionError):
                self._engine.lost = True
            raise EngineError(f"{self._engine.name} engine failed: {_describe(err)}") from err
        except Exception as err:  # a socket closed under us by close() surfaces as whatever httpx raises
            if self.cancelled:
                return
            self._engine.lost = True
            raise EngineError(f"{self._engine.name} engine failed: {type(err).__name__}: {err}") from err
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


class OpenAIServerEngine(Engine):
    flavor: Flavor = VLLM

    def __init__(self, base_url: str, *, model: str | None = None, api_key: str = "EMPTY", adapters=None,
                 max_retries: int = 1, context_window: int | None = None):
        self.name = self.flavor.name
        self.base_url = base_url
        self.model = model
        self.context_window = context_window  # tokens; None: as the server lists it (vLLM), else no trimming
        self.adapters = adapters  # AdapterFetcher or None (then adapter jobs fail with adapter_error)
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "EMPTY", max_retries=max_retries,
                                    timeout=openai.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S))
        self._loaded: dict[str, str] = {}  # adapter_uri -> lora_name
        self._bos: int | None = None  # tokens the llama.cpp tokenizer adds to any text
        self.lost = False  # the server dropped a stream: wait for it to answer again before the next job
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
        if self.context_window is None:
            served = next((m for m in models.data if m.id == (self.model or ids[0])), None)
            window = getattr(served, "max_model_len", None)  # vLLM's extra field on the model card
            self.context_window = window if isinstance(window, int) and window > 0 else None
        if self.model is None:
            self.model = ids[0]
        elif self.model not in ids:
            log.warning("configured model is not among the served ones",
                        extra={"engine": self.name, "model": self.model, "served": ids})
        return True

    def load_adapter(self, uri: str) -> str:
        """Make the LoRA at `uri` available to vLLM (once per URI); return the model name to request."""
        from .adapters import lora_name

        if not self.flavor.lora:
            raise AdapterError(f"the {self.flavor.name} server cannot load LoRA adapters at run time ({uri})")
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

    def _await_return(self) -> None:
        deadline = time.monotonic() + RETURN_TIMEOUT_S
        log.warning("engine dropped the last stream: waiting for it to answer again", extra={"engine": self.name})
        while not self.ready():
            if time.monotonic() > deadline:
                raise EngineError(f"{self.name} engine is not answering (for {RETURN_TIMEOUT_S:.0f} s)")
            time.sleep(0.5)
        self.lost = False

    def generate(self, job: Job) -> OpenAIGeneration:
        if self.lost:
            self._await_return()
        if self.model is None and not self.ready():
            raise EngineError(f"{self.name} engine is not answering")
        model = self.load_adapter(job.adapter_uri) if job.adapter_uri else self.model
        messages, dropped = job.chat_messages(), 0
        if self.context_window:
            try:
                fitted = context.fit(messages, budget=context.budget(self.context_window, job.params),
                                     count=self._counter(model))
                messages, dropped = fitted.messages, fitted.dropped
            except EngineError as err:  # a server without a tokenizer endpoint: send it all, it may still fit
                log.warning("context not trimmed", extra={"engine": self.name, "error": str(err)})
        return OpenAIGeneration(self, model, job, messages, dropped)

    # --- the server's own tokenizer -------------------------------------------------------------------------
    def _root_post(self, path: str, body: dict) -> dict:
        """POST to a path beside /v1 (both servers serve their tokenizer at the root)."""
        url = self.base_url.rsplit("/v1", 1)[0] + path
        try:
            return self.client.with_options(max_retries=0, timeout=TOKENIZE_TIMEOUT_S).post(
                url, cast_to=dict, body=body)
        except openai.OpenAIError as err:
            raise EngineError(f"{self.flavor.name} tokenizer failed: {_describe(err)}") from err

    def _counter(self, model: str) -> Callable[[list[dict]], int]:
        if self.flavor.tokenize == "vllm-chat":
            def count(messages: list[dict]) -> int:
                return int(self._root_post("/tokenize", {"model": model, "messages": messages,
                                                         "add_generation_prompt": True})["count"])
            return count
        seen: dict[str, int] = {}

        def count_each(messages: list[dict]) -> int:
            for m in messages:
                if m["content"] not in seen:
                    seen[m["content"]] = self.count_text(m["content"])
            return sum(seen[m["content"]] + TEMPLATE_TOKENS for m in messages)
        return count_each

    def count_text(self, text: str) -> int | None:
        """Tokens in `text` by the server's tokenizer (without the BOS it adds); None when it cannot say."""
        try:
            if self.flavor.tokenize == "vllm-chat":
                return int(self._root_post("/tokenize", {"model": self.model, "prompt": text,
                                                         "add_special_tokens": False})["count"])
            if self._bos is None:
                self._bos = int(self._root_post("/extras/tokenize/count", {"input": ""})["count"])
            return int(self._root_post("/extras/tokenize/count", {"input": text})["count"]) - self._bos
        except (EngineError, KeyError, TypeError, ValueError) as err:
            log.warning("could not count tokens", extra={"engine": self.name, "error": str(err)})
            return None

    def close(self) -> None:
        self.client.close()
