"""A real `redis-server` on a free loopback port, in a temporary directory, with a password of its own.

`persist=True` turns on the append-only file (fsync on every write) in that directory, so that `restart()` after a
crash finds every job that was queued: the local cloud restarts it as a managed Redis would come back.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time

import redis

from .children import die_with_parent
from .ports import free_port

ENV_BINARY = "TLFIF_REDIS_SERVER"  # path of the redis-server binary, when not on PATH (tests set a missing one)
MISSING_MESSAGE = ("redis-server not found: install the 'redis-server' package "
                   "(Debian/Ubuntu: apt-get install redis-server)")


class RedisServerMissing(RuntimeError):
    pass


class RedisServer:
    def __init__(self, port: int | None = None, own_session: bool = False, persist: bool = False):
        # own_session: not in the caller's process group, so a terminal's Ctrl+C reaches only the caller,
        # which then stops this server in its own order (the local cloud does that).
        self.own_session = own_session
        self.persist = persist
        self.port = port or free_port()
        self.password = secrets.token_urlsafe(24)
        self.url = f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        self._dir: tempfile.TemporaryDirectory | None = None
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        self._dir = tempfile.TemporaryDirectory(prefix="tlfif-redis-")
        self._launch(timeout)
        return self

    def restart(self, timeout: float = 10.0) -> RedisServer:
        """Start it again after it died: same port, password and directory (so the same data when persistent)."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        self._launch(timeout)
        return self

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _launch(self, timeout: float) -> None:
        assert self._dir is not None
        override = os.environ.get(ENV_BINARY, "").strip()
        binary = (override if os.access(override, os.X_OK) else None) if override else (
            shutil.which("redis-server") or next(
                (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.exists(p)), None))
        if not binary:
            raise RedisServerMissing(MISSING_MESSAGE)
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else ["--appendonly", "no"]
        # The password goes in through stdin (a config file read from "-"), not the command line others can read.
        self._proc = subprocess.Popen(
            [binary, "-", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence,
             "--dir", self._dir.name, "--protected-mode", "yes", "--loglevel", "warning"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=self.own_session, preexec_fn=die_with_parent())
        self._proc.stdin.write(f"requirepass {self.password}\n".encode())
        self._proc.stdin.close()
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.02)
        client.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self._dir:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
