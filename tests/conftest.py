"""Shared fixtures: a real redis-server, moto (server and decorator), AWS settings that can never reach AWS."""
from __future__ import annotations

import os
import tempfile

import boto3
import pytest
import redis
import requests

from tlfif_common import names
from tlfif_local.ports import free_port
from tlfif_local.redis_server import RedisServer

REGION = names.DEFAULT_REGION

# Set before any boto3 client exists, for this process and every child it starts.
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
})
for _var in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)
# A developer's own local model ($TLFIF_LOCAL_MODEL, [local] model in ~/.tl-fif.ini) must not reach the local clouds
# the tests start: they pass --model when they want one. Tests that use a settings file set TLFIF_CONFIG themselves.
os.environ.pop(names.ENV_LOCAL_MODEL, None)
os.environ.setdefault("TLFIF_CONFIG", os.path.join(tempfile.gettempdir(), f"tlfif-tests-{os.getpid()}", "none.ini"))


@pytest.fixture(scope="session")
def redis_server():
    """One real redis-server for the whole run (temporary dir, no persistence)."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def redis_url(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def moto_server():
    """moto's server on a free loopback port, for code running in other processes."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def moto_endpoint(moto_server):
    """The moto server, emptied before the test."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=5)
    return moto_server


@pytest.fixture
def moto_clients(moto_endpoint):
    """boto3 clients bound to the moto server."""
    def client(service: str):
        return boto3.client(service, region_name=REGION, endpoint_url=moto_endpoint)
    return client


@pytest.fixture(autouse=True)
def _tlfif_data_dir(tmp_path, monkeypatch):
    """The app's data (the chat history) goes to the test's temporary directory, never the user's."""
    monkeypatch.setenv("TLFIF_DATA_DIR", str(tmp_path / "tlfif-data"))


# The local cloud as a separate process (tests/support/local_cloud.py): `local_cloud` (session), `local_cloud_factory`.
from support.local_cloud import local_cloud, local_cloud_factory  # noqa: E402,F401
# The real small model (tests/support/local_model.py): `gemma_gguf` (session), `llama_server` (module, 256-token ctx).
from support.local_model import gemma_gguf, llama_server  # noqa: E402,F401
from support.tk_fixtures import home, root  # noqa: E402,F401  (GUI tests: one Tk root per module, a fresh HOME)
from support.watcher_harness import queue, s3  # noqa: E402,F401  (watcher tests: responses bucket, WorkQueue)
from support.app_cloud import api, app_cloud  # noqa: E402,F401  (app tests: the session's local cloud behind a proxy)
from support.app_harness import gui, make_stack  # noqa: E402,F401  (app tests: the controllers, the real window)
from support.gui_report import pytest_runtest_makereport, pytest_sessionfinish  # noqa: E402,F401  (make test-gui)
