"""The deployable zip: layout, no bytecode, reproducible, and both handlers import from it alone."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# cloud/lambda is the zip root, not a package: load the script by path.
_spec = importlib.util.spec_from_file_location("build_zip", ROOT / "cloud" / "lambda" / "build_zip.py")
build_zip = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_zip)

pytestmark = pytest.mark.timeout(120)


def test_zip_layout_and_handlers_import_from_it(tmp_path):
    first = build_zip.build(tmp_path / "a.zip", vendor_deps=False)  # no network: redis is not vendored here
    second = build_zip.build(tmp_path / "b.zip", vendor_deps=False)
    assert first["sha256"] == second["sha256"] == hashlib.sha256((tmp_path / "a.zip").read_bytes()).hexdigest()
    assert first["handlers"] == {"router": "tlfif_router.handler.handler",
                                 "queue": "tlfif_router.queue_handler.handler"}
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "root")
    assert "tlfif_router/handler.py" in names and "tlfif_router/queue_handler.py" in names
    assert "tlfif_common/names.py" in names and "tlfif_common/workqueue.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith(("boto", "tests/"))]
    assert {n.split("/")[0] for n in names} == {"tlfif_router", "tlfif_common"}

    probe = ("import tlfif_router.handler as h, tlfif_router.queue_handler as q, tlfif_common as c; "
             "print(h.__file__); print(q.__file__); print(c.__file__)")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "root"), "PYTHONDONTWRITEBYTECODE": "1"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60,
                         check=True, cwd=tmp_path).stdout.split()
    assert all(path.startswith(str(tmp_path / "root")) for path in out), out
