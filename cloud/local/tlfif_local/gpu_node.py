"""The GPU node emulator: what happens on the GPU instance when it is started and stopped.

It hooks moto's object for the GPU instance (same process), so EC2 state changes are seen the moment they happen
and show the transitions a real instance goes through:

    StartInstances → pending → (after a quarter of --boot-seconds) running → (after --boot-seconds) the real watcher
    process starts, with an IMDSv2 emulator answering for this instance id; it writes SSM /tl-fif/ready/<id> as on
    AWS (the router then reports `ready`).
    StopInstances (from /stop, or the watcher's own idle stop) → stopping → the watcher is terminated (SIGTERM: it
    returns its job to the queue) → stopped. StartInstances while stopping fails with IncorrectInstanceState, as on
    EC2.

A watcher that dies while the instance runs is restarted after a second, as supervisord does on the image.
With an engine server (`engine_server.EngineServer`, a local model) it starts at boot just before the watcher, as
run_vllm.service does, is restarted the same way when it dies, and is ended after the watcher when the instance stops.
Both are started from the node's own thread, which lives as long as the node: they die with this process.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time

from moto.core.utils import utcnow

from .children import die_with_parent

log = logging.getLogger("tlfif_local.gpu")

STATE_CODES = {"pending": 0, "running": 16, "stopping": 64, "stopped": 80}
PENDING_FRACTION = 0.25
WATCHER_STOP_TIMEOUT = 8.0
RESTART_DELAY = 1.0


class GpuNode:
    def __init__(self, instance, *, boot_seconds: float, watcher_env: dict[str, str],
                 watcher_cmd: list[str] | None = None, engine=None, stop_delay: float = 0.0):
        self.stop_delay = stop_delay  # the slow-stop fault (faults.py)
        self._instance = instance
        self.boot_seconds = max(0.0, boot_seconds)
        self._watcher_env = watcher_env
        self._watcher_cmd = watcher_cmd or [sys.executable, "-m", "tlfif_watcher"]
        self._cond = threading.Condition()
        self._phase = "stopped"  # stopped | booting | up | stopping
        self._started_at = 0.0
        self._restart_at = 0.0
        self._closing = False
        self._watcher: subprocess.Popen | None = None
        self._engine = engine  # EngineServer or None (echo engine, or an external server)
        self._engine_restart_at = 0.0
        self._thread = threading.Thread(target=self._run, name="gpu-node", daemon=True)
        self._orig_start = instance.start
        self._orig_stop = instance.stop

    # --- moto hooks (run in moto's request threads) -------------------------------------------------------------
    def _hook_start(self):
        with self._cond:
            if self._phase == "stopping":
                # As EC2: a stopping instance cannot be started until it is stopped.
                from moto.ec2.exceptions import EC2ClientError

                raise EC2ClientError("IncorrectInstanceState",
                                     f"The instance '{self._instance.id}' is not in a state from which it can be "
                                     "started.")
            previous = self._orig_start()  # moto: → running; we show what EC2 shows
            if self._phase == "stopped":
                self._phase = "booting"
                self._started_at = time.monotonic()
                self._set_state("pending")
                self._instance.launch_time = utcnow()  # EC2 reports the latest start as LaunchTime
                log.info("[gpu] %s: StartInstances → pending", self._instance.id)
            else:  # already pending/running: a no-op, as on EC2
                self._set_state(self._shown_state())
            self._cond.notify_all()
            return previous

    def _hook_stop(self):
        if self.stop_delay:  # answer at once, as EC2 does, but show `stopping` only after the delay
            with self._cond:
                previous = self._orig_stop()
                self._set_state(self._shown_state())
            timer = threading.Timer(self.stop_delay, self._stop_now)
            timer.daemon = True
            timer.start()
            return previous
        return self._stop_now()

    def _stop_now(self):
        with self._cond:
            previous = self._orig_stop()  # moto: → stopped
            if self._phase in ("booting", "up"):
                self._phase = "stopping"
                self._set_state("stopping")
                log.info("[gpu] %s: StopInstances → stopping", self._instance.id)
            else:
                self._set_state(self._shown_state())
            self._cond.notify_all()
            return previous

    # --- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> GpuNode:
        self._instance.start = self._hook_start
        self._instance.stop = self._hook_stop
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=WATCHER_STOP_TIMEOUT + 2)
        self._terminate_watcher()
        if self._engine is not None:
            self._engine.stop()
        self._instance.start = self._orig_start
        self._instance.stop = self._orig_stop

    @property
    def engine(self):
        return self._engine

    @property
    def watcher_pid(self) -> int | None:
        proc = self._watcher
        return proc.pid if proc and proc.poll() is None else None

    # --- the node's own thread ---------------------------------------------------------------------------------
    def _shown_state(self) -> str:
        """What EC2 would show for the current phase (moto has just overwritten it)."""
        if self._phase == "booting":
            elapsed = time.monotonic() - self._started_at
            return "pending" if elapsed < self.boot_seconds * PENDING_FRACTION else "running"
        return {"up": "running"}.get(self._phase, self._phase)

    def _set_state(self, name: str) -> None:
        self._instance._state.name = name
        self._instance._state.code = STATE_CODES[name]

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closing:
                    return
                action, timeout = self._next_action()
                if action is None:
                    self._cond.wait(timeout)
                    continue
            try:
                action()
            except Exception:  # the node must survive anything one step does
                log.exception("[gpu] node step failed")
                time.sleep(0.5)

    def _next_action(self):
        """(callable, None) when there is work now, else (None, seconds to wait). Called with the lock held."""
        now = time.monotonic()
        if self._phase == "stopping":
            return self._finish_stop, None
        if self._phase == "booting":
            pending_end = self._started_at + self.boot_seconds * PENDING_FRACTION
            boot_end = self._started_at + self.boot_seconds
            if self._instance._state.name == "pending":
                if now < pending_end:
                    return None, pending_end - now
                self._set_state("running")
                log.info("[gpu] %s: running (booting)", self._instance.id)
            if now < boot_end:
                return None, boot_end - now
            return self._boot_done, None
        if self._phase == "up":
            engine = self._engine
            if engine is not None and not engine.alive():
                if not self._engine_restart_at:
                    log.warning("[gpu] engine server exited (code %s) while the instance runs; restarting in %.0f s",
                                engine.returncode, RESTART_DELAY)
                    self._engine_restart_at = now + RESTART_DELAY
                if now >= self._engine_restart_at:
                    self._engine_restart_at = 0.0
                    return self._start_engine, None
                return None, self._engine_restart_at - now
            proc = self._watcher
            if proc is None or proc.poll() is not None:
                if not self._restart_at:
                    code = None if proc is None else proc.returncode
                    log.warning("[gpu] watcher exited (code %s) while the instance runs; restarting in %.0f s",
                                code, RESTART_DELAY)
                    self._restart_at = now + RESTART_DELAY
                if now >= self._restart_at:
                    self._restart_at = 0.0
                    return self._spawn_watcher, None
                return None, self._restart_at - now
            return None, 0.2
        return None, 1.0

    def _boot_done(self) -> None:
        with self._cond:
            if self._phase != "booting":
                return
            self._phase = "up"
        self._start_engine()
        self._spawn_watcher()

    def _start_engine(self) -> None:
        with self._cond:
            if self._engine is None or self._phase != "up" or self._closing:
                return
            self._engine.stop()  # reap a dead one
            self._engine.start()

    def _spawn_watcher(self) -> None:
        with self._cond:
            if self._phase != "up" or self._closing:
                return
            self._watcher = subprocess.Popen(
                self._watcher_cmd, env=self._watcher_env, stdin=subprocess.DEVNULL,
                stdout=sys.stderr.fileno(), stderr=sys.stderr.fileno(), start_new_session=True,
                preexec_fn=die_with_parent())
        log.info("[gpu] %s: booted; watcher started (pid %d)", self._instance.id, self._watcher.pid)

    def _finish_stop(self) -> None:
        self._terminate_watcher()
        if self._engine is not None:
            self._engine.stop()
        with self._cond:
            if self._phase != "stopping":
                return
            self._phase = "stopped"
            self._set_state("stopped")
            log.info("[gpu] %s: stopped", self._instance.id)
            self._cond.notify_all()

    def _terminate_watcher(self) -> None:
        proc, self._watcher = self._watcher, None
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(WATCHER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning("[gpu] watcher pid %d ignored SIGTERM for %.0f s; killing it", proc.pid, WATCHER_STOP_TIMEOUT)
            proc.kill()
            proc.wait()
        log.info("[gpu] watcher pid %d ended (code %s)", proc.pid, proc.returncode)

