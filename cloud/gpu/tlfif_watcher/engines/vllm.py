"""The vLLM engine: vLLM's OpenAI-compatible server (default http://127.0.0.1:8000/v1) on the GPU image."""
from __future__ import annotations

from .openai_server import VLLM, OpenAIServerEngine


class VllmEngine(OpenAIServerEngine):
    flavor = VLLM
