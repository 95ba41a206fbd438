"""Run the local cloud as a separate process for end-to-end tests, and talk to it over HTTP only.

    cloud = CloudProcess.start(["--boot-seconds", "1"], tmp_dir)   # `python -m tlfif_local up ...`
    cloud.info["api_url"]; cloud.token(user="alice"); cloud.api("GET", "/ping", token=...); cloud.login_secret
    cloud.watcher_pids(); cloud.descendants(); cloud.stop()

Fixtures (registered in tests/conftest.py):
  local_cloud          one instance for the whole session (boot 1 s, stage throttling raised so that tests do not
                       throttle each other; the router's per-user limit stays: use a user per test)
  local_cloud_factory  start(*args) → a fresh instance for one test (own GPU state), stopped after the test

Nothing here imports TL-FIF code: the cloud is reached through its first stdout line, its state file (for the
admin token endpoint that `tl-fif cloud token` uses) and /proc.
"""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

START_TIMEOUT = 60.0
# Stage throttling (5 rps, burst 10 by default) would make unrelated tests throttle each other; the throttle test
# starts its own instance with the defaults.
RELAXED_THROTTLE = ["--throttle-rate", "1000", "--throttle-burst", "1000"]
SESSION_ARGS = ["--boot-seconds", "1", *RELAXED_THROTTLE]


def _proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) from /proc/<pid>/stat, or None when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()
    return int(fields[1]), fields[0]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


FINAL_STATUSES = ("done", "error", "cancelled")


def result_docs(url: str, timeout: float, until: tuple[str, ...] = FINAL_STATUSES) -> list[dict]:
    """Read a job's result object through its presigned URL until its status is one of `until`: every distinct
    document seen, that one last. 403/404 mean "not written yet"; any other answer fails."""
    deadline = time.monotonic() + timeout
    seen: list[dict] = []
    interval = 0.02
    with requests.Session() as http:
        while True:
            answer = http.get(url, timeout=10)
            if answer.status_code == 200:
                doc = answer.json()
                if not seen or seen[-1] != doc:
                    seen.append(doc)
                if doc["status"] in until:
                    return seen
            else:
                assert answer.status_code in (403, 404), answer.text
            assert time.monotonic() < deadline, f"no {until} result in {timeout} s; seen {seen[-1:] or 'nothing'}"
            time.sleep(interval)
            interval = min(interval * 1.5, 0.1)


def pid_running(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[1] != "Z"


def descendants(root: int) -> dict[int, str]:
    """Every live process below `root` (children, grandchildren, …) → its command line."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat and stat[1] != "Z":
                parents[int(entry)] = stat[0]
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = _cmdline(pid)
                frontier.append(pid)
    return found


class CloudProcess:
    def __init__(self, proc: subprocess.Popen, info: dict, state_file: Path, log_file: Path):
        self.proc = proc
        self.info = info
        self.state_file = state_file
        self.log_file = log_file
        self.access_log: list[dict] = []
        self.http = requests.Session()
        self._tokens: dict[str, str] = {}

    # --- lifecycle ------------------------------------------------------------------------------------------
    @classmethod
    def start(cls, args: list[str], workdir: Path, timeout: float = START_TIMEOUT) -> CloudProcess:
        workdir.mkdir(parents=True, exist_ok=True)
        state_file = workdir / "local-cloud.json"
        log_file = workdir / "local-cloud.log"
        env = dict(os.environ, TLFIF_LOCAL_STATE=str(state_file), PYTHONUNBUFFERED="1")
        # --exit-with-stdin: the cloud stops when this process goes away, even killed (its end of the pipe closes).
        with open(log_file, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "tlfif_local", "up", "--exit-with-stdin", *args],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env)
        lines: queue.Queue = queue.Queue()
        access_log: list[dict] = []

        def pump() -> None:
            first = True
            for raw in proc.stdout:
                if first:
                    lines.put(raw)
                    first = False
                    continue
                try:
                    access_log.append(json.loads(raw))
                except ValueError:
                    access_log.append({"unparsed": raw.decode(errors="replace")})
            lines.put(None)

        threading.Thread(target=pump, name="cloud-stdout", daemon=True).start()
        try:
            first = lines.get(timeout=timeout)
        except queue.Empty:
            first = None
        if not first:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"local cloud did not start (exit {proc.returncode}):\n{log_file.read_text()[-3000:]}")
        cloud = cls(proc, json.loads(first), state_file, log_file)
        cloud.access_log = access_log
        return cloud

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"local cloud ignored signal {sig} for {timeout} s") from None
        if self.proc.stdin:
            self.proc.stdin.close()
        self.http.close()
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace")

    # --- tokens and requests --------------------------------------------------------------------------------
    def state(self) -> dict:
        return json.loads(self.state_file.read_text())

    @property
    def login_secret(self) -> str:
        """This run's login secret (from the 0600 state file), as the app passes it to the login page."""
        return self.state()["login_secret"]

    def endpoint(self, info: dict | None = None):
        """What the app is given for this cloud (or for `info`, its endpoints seen through proxies): the run's login
        secret included, as the embedded cloud hands it over."""
        from app.services.endpoints import AwsEndpoint

        return AwsEndpoint.from_local_info(info or self.info, self.login_secret)

    def token(self, user: str = "local-user", expires_in: int = 3600, claims: dict | None = None) -> str:
        """An ID token minted by the running issuer (the endpoint behind `tl-fif cloud token`)."""
        key = json.dumps([user, expires_in, claims], sort_keys=True)
        if key not in self._tokens or claims is not None or expires_in != 3600:
            state = self.state()
            answer = self.http.post(state["admin_token_url"], timeout=10,
                                    headers={"Authorization": f"Bearer {state['admin_secret']}"},
                                    json={"user": user, "expires_in": expires_in, "claims": claims or {}})
            answer.raise_for_status()
            self._tokens[key] = answer.json()["id_token"]
        return self._tokens[key]

    def api(self, method: str, path: str, *, token: str | None = None, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.info["api_url"] + path, headers=headers, timeout=30, **kwargs)

    def gpu_state(self, token: str) -> str:
        answer = self.api("GET", "/ping", token=token)
        assert answer.status_code == 200, answer.text
        return answer.json()["gpu"]

    def wait_for_gpu(self, token: str, states: set[str], timeout: float, interval: float = 0.25) -> list[str]:
        """Poll /ping until the GPU is in one of `states`; returns every state seen (AssertionError on timeout)."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            state = self.gpu_state(token)
            if not seen or seen[-1] != state:
                seen.append(state)
            if state in states:
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"GPU never reached {states} in {timeout} s; seen {seen}")
            time.sleep(interval)

    # --- processes ------------------------------------------------------------------------------------------
    def descendants(self) -> dict[int, str]:
        return descendants(self.proc.pid)

    def watcher_pids(self) -> list[int]:
        return [pid for pid, cmd in self.descendants().items() if "tlfif_watcher" in cmd]


def _start(args: list[str], workdir: Path) -> CloudProcess:
    return CloudProcess.start(args, workdir)


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory):
    """One local cloud for the whole session; see the module docstring."""
    cloud = _start(SESSION_ARGS, tmp_path_factory.mktemp("local-cloud"))
    yield cloud
    cloud.stop()


@pytest.fixture
def local_cloud_factory(tmp_path):
    """`start(*args)`: a fresh local cloud for this test (stopped afterwards)."""
    started: list[CloudProcess] = []

    def start(*args: str) -> CloudProcess:
        cloud = _start(list(args), Path(tempfile.mkdtemp(prefix="cloud-", dir=tmp_path)))
        started.append(cloud)
        return cloud

    yield start
    for cloud in started:
        if cloud.proc.poll() is None:
            cloud.stop()
