"""Start the local cloud from another program (the desktop app's embedded default) — as a child process.

    from tlfif_local.embedded import start_in_background, LocalCloudError

    handle = start_in_background(port=0)        # blocks until the cloud is up (≈ 3 s), raises LocalCloudError
    handle.info    # {"api_url", "issuer", "authorize_url", "token_url", "jwks_url", "client_id", "redirect_uri",
                   #  "region"}: the first line `tl-fif cloud up` prints
    handle.login_secret  # this run's login secret (made here, passed in the child's environment): the login asks
                         # for it
    handle.pid     # the `python -m tlfif_local up` process
    handle.alive() # still running?
    handle.stop()  # SIGTERM, wait (kill after `timeout`); the cloud stops redis, moto, the watcher with it

It runs `python -m tlfif_local up --exit-with-stdin ...` as a subprocess, so the GUI process keeps no moto, Flask
or redis threads and stays responsive; the child stops by itself when the parent dies (its stdin closes). The
child's access-log lines are kept in `handle.access_log` (the last 1000) and its stderr goes to the logger
`tlfif_local.embedded` at DEBUG level (WARNING/ERROR lines at WARNING). `extra_args` passes any other
`tl-fif cloud up` option, e.g. ["--minute-seconds", "1"].
"""
from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
from collections import deque
from typing import Sequence

from .state import ENV_LOGIN_SECRET

log = logging.getLogger("tlfif_local.embedded")

START_TIMEOUT = 60.0


class LocalCloudError(RuntimeError):
    """The local cloud did not start; the message carries its own explanation (e.g. redis-server missing)."""


class LocalCloudHandle:
    def __init__(self, proc: subprocess.Popen, info: dict, access_log: deque, login_secret: str | None = None):
        self.proc = proc
        self.info = info
        self.access_log = access_log
        self.login_secret = login_secret

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """Stop the cloud and everything it started; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("local cloud pid %d did not stop in %.0f s; killing it", self.proc.pid, timeout)
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        return self.proc.returncode

    def __enter__(self) -> LocalCloudHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def command(port: int = 0, boot_seconds: float | None = None, engine: str | None = None,
            extra_args: Sequence[str] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "tlfif_local", "up", "--exit-with-stdin", "--port", str(port)]
    if boot_seconds is not None:
        cmd += ["--boot-seconds", str(boot_seconds)]
    if engine is not None:
        cmd += ["--engine", engine]
    return cmd + list(extra_args)


def start_in_background(port: int = 0, *, boot_seconds: float | None = None, engine: str | None = None,
                        extra_args: Sequence[str] = (), env: dict | None = None,
                        timeout: float = START_TIMEOUT) -> LocalCloudHandle:
    login_secret = secrets.token_urlsafe(24)
    child_env = dict(os.environ if env is None else env, **{ENV_LOGIN_SECRET: login_secret})
    proc = subprocess.Popen(command(port, boot_seconds, engine, extra_args), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env)
    lines: queue.Queue = queue.Queue()
    access_log: deque = deque(maxlen=1000)
    stderr_tail: deque = deque(maxlen=20)

    def read_stdout() -> None:
        first = True
        for raw in proc.stdout:
            if first:
                lines.put(raw)
                first = False
            else:
                try:
                    access_log.append(json.loads(raw))
                except ValueError:
                    log.debug("local cloud stdout: %s", raw.rstrip())
        lines.put(None)

    def read_stderr() -> None:
        for raw in proc.stderr:
            text = raw.decode("utf-8", "replace").rstrip()
            stderr_tail.append(text)
            level = logging.WARNING if (" WARNING " in text or " ERROR " in text) else logging.DEBUG
            log.log(level, "%s", text)

    threading.Thread(target=read_stdout, name="local-cloud-stdout", daemon=True).start()
    threading.Thread(target=read_stderr, name="local-cloud-stderr", daemon=True).start()
    try:
        first = lines.get(timeout=timeout)
    except queue.Empty:
        first = None
    if first is None:
        handle = LocalCloudHandle(proc, {}, access_log)
        handle.stop(5)
        time.sleep(0.1)  # let the stderr reader take the last lines
        detail = "; ".join(line for line in stderr_tail if line) or f"exit code {proc.returncode}"
        raise LocalCloudError(f"the local cloud did not start: {detail}")
    try:
        info = json.loads(first)
    except ValueError:
        LocalCloudHandle(proc, {}, access_log).stop(5)
        raise LocalCloudError(f"the local cloud's first line is not JSON: {first[:200]!r}") from None
    log.info("local cloud up (pid %d): API %s", proc.pid, info.get("api_url"))
    return LocalCloudHandle(proc, info, access_log, login_secret=login_secret)
