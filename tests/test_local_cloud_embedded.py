"""The embedding API the desktop app uses: `tlfif_local.embedded.start_in_background` (a child process)."""
from __future__ import annotations

import time

import pytest
import requests
from support.local_cloud import descendants, pid_running

from tlfif_local.embedded import LocalCloudError, start_in_background

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def test_embedded_cloud_starts_and_stops_with_its_parent_gone(tmp_path, monkeypatch):
    monkeypatch.setenv("TLFIF_LOCAL_STATE", str(tmp_path / "state.json"))
    handle = start_in_background(port=0, boot_seconds=1)
    try:
        assert handle.alive()
        assert set(handle.info) == {"api_url", "issuer", "authorize_url", "token_url", "jwks_url", "client_id",
                                    "redirect_uri", "region"}
        answer = requests.get(handle.info["api_url"] + "/ping", timeout=10)
        assert answer.status_code == 401  # up, and guarded
        deadline = time.monotonic() + 5
        while not handle.access_log:
            assert time.monotonic() < deadline, "no access-log line reached the handle"
            time.sleep(0.05)
        assert handle.access_log[-1]["routeKey"] == "GET /ping" and handle.access_log[-1]["status"] == "401"
        children = descendants(handle.pid)
        assert any("redis-server" in cmd for cmd in children.values())

        handle.proc.stdin.close()  # what happens when the embedding app dies: the cloud stops by itself
        handle.proc.wait(20)
        assert handle.proc.returncode == 0
        deadline = time.monotonic() + 5
        while any(pid_running(pid) for pid in children):
            assert time.monotonic() < deadline, f"left behind: {children}"
            time.sleep(0.05)
        assert not (tmp_path / "state.json").exists()
    finally:
        handle.stop()


def test_embedded_start_failure_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("TLFIF_REDIS_SERVER", str(tmp_path / "no-redis-server"))
    monkeypatch.setenv("TLFIF_LOCAL_STATE", str(tmp_path / "state.json"))
    with pytest.raises(LocalCloudError, match="redis-server"):
        start_in_background(port=0)
