"""A throwaway real `redis-server` on a free loopback port: temporary directory, no persistence."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import redis

from .ports import free_port

ENV_BINARY = "TLFIF_REDIS_SERVER"  # path of the redis-server binary, when not on PATH (tests set a missing one)
MISSING_MESSAGE = ("redis-server not found: install the 'redis-server' package "
                   "(Debian/Ubuntu: apt-get install redis-server)")


class RedisServerMissing(RuntimeError):
    pass


class RedisServer:
    def __init__(self, port: int | None = None, own_session: bool = False):
        # own_session: not in the caller's process group, so a terminal's Ctrl+C reaches only the caller,
        # which then stops this server in its own order (the local cloud does that).
        self.own_session = own_session
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir: tempfile.TemporaryDirectory | None = None
        self._proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        override = os.environ.get(ENV_BINARY, "").strip()
        binary = (override if os.access(override, os.X_OK) else None) if override else (
            shutil.which("redis-server") or next(
                (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if os.path.exists(p)), None))
        if not binary:
            raise RedisServerMissing(MISSING_MESSAGE)
        self._dir = tempfile.TemporaryDirectory(prefix="tlfif-redis-")
        self._proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self._dir.name, "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=self.own_session)
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
        return self

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
