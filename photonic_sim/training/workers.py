"""Set-up of pool worker processes: one torch thread, and no life after the parent.

A worker must not outlive the process that started it (a ``kill -9`` of a ``compare``
would otherwise leave its workers training to the end, unseen). On Linux the kernel sends
the worker SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon
thread polls ``os.getppid()`` once a second. Either way a parent that died before the
worker set this up is caught at once.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1


def init_worker(threads: int = 1, parent: int | None = None) -> None:
    """Pool initializer: ``torch.set_num_threads(threads)``; end with the parent process
    ``parent`` (default: this process's parent now)."""
    parent = os.getppid() if parent is None else parent
    if not _death_signal():
        threading.Thread(target=_watch, args=(parent,), daemon=True, name="parent-watch").start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    import torch  # after arming: importing torch takes seconds on a busy machine

    torch.set_num_threads(threads)


def _death_signal() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)
