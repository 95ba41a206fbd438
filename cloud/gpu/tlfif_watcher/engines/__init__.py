"""Inference engines behind one interface (see `base.py`): `vllm`, `llama.cpp` (one OpenAI-compatible client,
`openai_server.py`) and the built-in `echo`."""
from __future__ import annotations

from .base import AdapterError, Engine, EngineError, Generation

__all__ = ["AdapterError", "Engine", "EngineError", "Generation", "make_engine"]


def make_engine(config, *, models_s3=None) -> Engine:
    """The engine `config.engine` names; `models_s3` is the S3 client that fetches LoRA adapters."""
    if config.engine == "echo":
        from .echo import EchoEngine

        return EchoEngine(config.echo_delay_ms)
    if config.engine == "llama.cpp":
        from .llama_cpp import LlamaCppEngine

        return LlamaCppEngine(config.engine_url, model=config.engine_model, api_key=config.engine_api_key,
                              context_window=config.engine_context)
    if config.engine == "vllm":
        from .adapters import AdapterFetcher
        from .vllm import VllmEngine

        fetcher = None
        if models_s3 is not None:
            fetcher = AdapterFetcher(models_s3, config.adapter_dir, allowed_bucket=config.models_bucket)
        return VllmEngine(config.engine_url, model=config.engine_model, api_key=config.engine_api_key,
                          adapters=fetcher, context_window=config.engine_context)
    raise ValueError(f"unknown engine {config.engine!r}")
