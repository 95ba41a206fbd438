"""Child processes that die with their parent, however the parent dies (even SIGKILL, which runs no cleanup).

On Linux the kernel sends the child a signal when its parent goes (`prctl(PR_SET_PDEATHSIG)`), set between fork
and exec. The signal follows the *thread* that forked the child, so only long-lived threads (the main thread, the
GPU node's thread, the Redis supervisor) start children. Elsewhere `die_with_parent()` is None and children rely
on their parent's orderly stop; the embedded cloud also watches its stdin pipe (`cli --exit-with-stdin`).
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Callable

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` for `subprocess.Popen`: the child gets `sig` when this process (thread) ends."""
    if _libc is None:
        return None
    parent = os.getpid()
    prctl = _libc.prctl

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return preexec
