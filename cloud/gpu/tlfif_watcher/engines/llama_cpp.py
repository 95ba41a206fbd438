"""The llama.cpp engine: llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`), which the local
cloud's GPU node runs on the CPU where vLLM runs on the GPU image."""
from __future__ import annotations

from .openai_server import LLAMA_CPP, OpenAIServerEngine


class LlamaCppEngine(OpenAIServerEngine):
    flavor = LLAMA_CPP
