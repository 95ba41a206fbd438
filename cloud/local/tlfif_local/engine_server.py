"""llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) as the local GPU node's engine: what
`run_vllm.service` is on the image.

    server = EngineServer(model_info, context=2048)   # model_info from model_file.check_model (checked already)
    server.start()       # spawns the process; the watcher polls /v1/models until the model is loaded
    server.alive()       # still running?
    server.stop()        # SIGTERM, then SIGKILL after a grace time
    server.base_url, server.api_key, server.log_path

It listens on loopback only, with an API key made for this run, handed over in its environment (`API_KEY`, which
llama-cpp-python's settings read): not on the command line, where any local user could read it and where a key
that starts with "-" (one in 64 of them) would be taken for an option. Its output goes to `log_path` (the server logs a
client that hung up: "Disconnected from client"). The process gets SIGKILL when the thread that started it (the GPU
node's) dies, so it never outlives the local cloud (`children.die_with_parent`).
"""
from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile

from .children import die_with_parent
from .model_file import ModelInfo
from .ports import free_port

log = logging.getLogger("tlfif_local.engine")

DEFAULT_CONTEXT = 2048
STOP_TIMEOUT = 5.0
MODULE = "tlfif_local.llama_server"  # llama_cpp.server with our family templates
INSTALL_HINT = "pip install 'tl-fif[local-model]' (or: make run MODEL=...)"


class EngineServerError(RuntimeError):
    """The engine server cannot start; the message says why."""


def check_installed() -> None:
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as err:
        raise EngineServerError(f"llama-cpp-python's server is not installed ({err}): {INSTALL_HINT}") from None


def check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: only a listener is "in use"
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise EngineServerError(f"engine port {port} on 127.0.0.1 is in use") from None


class EngineServer:
    def __init__(self, model: ModelInfo, *, context: int = DEFAULT_CONTEXT, port: int | None = None,
                 threads: int | None = None, log_dir: str | None = None, api_key: str | None = None):
        self.model = model
        self.context = context
        self.port = port or free_port()
        self.threads = threads or os.cpu_count() or 1
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.model_alias = os.path.basename(model.path)
        self.log_path = os.path.join(log_dir or tempfile.gettempdir(), f"tlfif-engine-{self.port}.log")
        self._proc: subprocess.Popen | None = None
        self.starts = 0

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", MODULE, "--model", self.model.path, "--model_alias", self.model_alias,
               "--host", "127.0.0.1", "--port", str(self.port),
               "--n_ctx", str(self.context), "--n_threads", str(self.threads),
               # One job at a time comes from the watcher; another request (a probe) must not cut an answer short.
               "--interrupt_requests", "false"]
        if self.model.chat_format:
            cmd += ["--chat_format", self.model.chat_format]
        return cmd

    def start(self) -> EngineServer:
        check_port_free(self.port)
        logfile = open(self.log_path, "ab")  # noqa: SIM115 (the child holds it; we close our copy below)
        try:
            env = dict(os.environ, PYTHONUNBUFFERED="1", API_KEY=self.api_key)
            self._proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=logfile,
                                          stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                          preexec_fn=die_with_parent(signal.SIGKILL))
        finally:
            logfile.close()
        self.starts += 1
        log.info("[engine] llama.cpp server pid %d on %s: %s (%s chat format, %d-token context); log %s",
                 self._proc.pid, self.base_url, self.model.name, self.model.chat_format or "the GGUF's",
                 self.context, self.log_path)
        return self

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc and proc.poll() is None else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.info("[engine] llama.cpp server pid %d ended (code %s)", proc.pid, proc.returncode)
