"""The state file through which `tl-fif cloud token` finds the running `tl-fif cloud up`.

Location: `$TLFIF_LOCAL_STATE` when set (tests), else `$XDG_RUNTIME_DIR/tl-fif/local-cloud.json`, else
`~/.cache/tl-fif/local-cloud.json`. It holds the first-line info, the pid, the loopback admin endpoint with its
secret and the login secret, so it is written with mode 0600 (only the user who started the cloud can read it).
The latest `cloud up` owns it; each removes it on exit only if it is still its own.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

ENV_STATE_PATH = "TLFIF_LOCAL_STATE"
# The login secret an embedding parent chose for its child `cloud up` (read and removed from the environment at
# start, so no grandchild inherits it); without it `cloud up` makes one. Either way it is in the state file.
ENV_LOGIN_SECRET = "TLFIF_LOCAL_LOGIN_SECRET"


def state_path(environ: dict | None = None) -> Path:
    """Where `cloud up` writes its state, for a process with environment `environ` (default: this one's)."""
    environ = os.environ if environ is None else environ
    override = environ.get(ENV_STATE_PATH, "").strip()
    if override:
        return Path(override)
    runtime = environ.get("XDG_RUNTIME_DIR", "").strip()
    base = Path(runtime) if runtime and Path(runtime).is_dir() else Path.home() / ".cache"
    return base / "tl-fif" / "local-cloud.json"


def write_state(data: dict, path: Path | None = None) -> Path:
    path = path or state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)
    return path


def read_state(path: Path | None = None) -> dict | None:
    """The state of a live `cloud up`, or None when there is none (no file, unreadable, or its process is gone)."""
    path = path or state_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not pid_alive(data.get("pid")):
        return None
    return data


def remove_state(pid: int, path: Path | None = None) -> None:
    path = path or state_path()
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if isinstance(data, dict) and data.get("pid") == pid:
        try:
            path.unlink()
        except OSError:
            pass


def pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
