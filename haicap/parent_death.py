"""A child process that must not outlive the haicap process that started it.

Sandbox servers and the load generator's processes run as children of ``haicap``; if ``haicap`` is killed
outright (SIGKILL, a CI job timeout, an OOM kill), an orphan would keep serving a port or keep loading a
target nobody is watching. On Linux the child asks the kernel for a signal when its parent dies
(``PR_SET_PDEATHSIG``) and handles that signal like any other request to stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from typing import Any

__all__ = ["die_with_parent", "end_child", "orphaned"]

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies, even by SIGKILL.

    Linux ties this to the *thread* that started the child, so start children from a thread that outlives them
    (the main thread, as every caller does). Call it first thing in the child with the parent's pid as the parent
    saw it: if the parent died before the request took effect, the signal is sent at once. Elsewhere than Linux
    it does nothing and the parent's own stop is the only guard.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    if orphaned(parent_pid):  # the parent died before the request took effect
        os.kill(os.getpid(), sig)


def orphaned(parent_pid: int | None) -> bool:
    """True when this process was started by ``parent_pid`` and that process is gone (we were re-parented)."""
    return parent_pid is not None and os.getppid() != parent_pid


def end_child(proc: subprocess.Popen[Any], *, wait_s: float = 0.0, term_wait_s: float = 10.0) -> None:
    """The parent's side: give ``proc`` ``wait_s`` to finish on its own, then SIGTERM and ``term_wait_s`` more,
    then SIGKILL; it is reaped in every case."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=wait_s)
        return
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=term_wait_s)
        return
    proc.kill()
    proc.wait()
