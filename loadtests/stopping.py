"""Stopping a running ``haicap load`` from outside: Ctrl-C (SIGINT) or SIGTERM (``timeout``, CI, Kubernetes).

The first signal ends the *load*, not the run: the generator starts no new arrivals (SIGTERM to it), running
journeys get the grace window, integrity is checked within the drain window and summary.json is written, marked
as stopped by the user (``stopped_by_user``, "interrupted by SIGTERM"). The run is judged on what it measured:
exit 1 if a gate it judged breached or a dossier was lost, else 3 (incomplete), or 2 when nothing could be judged
(:func:`haicap.loadtests.run.decide`). A second signal stops at once: the generator kills its running journeys
(SIGUSR1 to it; they are not judged) and still reports, or is killed if it has not finished within
:data:`HURRY_KILL_S` (a third signal kills it now; its workers die with it), and the integrity drain is cut short
to one last look at the ledger (a dossier still missing then is not called lost); the summary is still written.
A signal before the load started stops the command at once (:class:`LoadStopped`, exit 128 + the signal: 130
SIGINT, 143 SIGTERM), nothing written. The embedded servers are not in haicap's process group
(:mod:`haicap.sandbox.server`), so a signal to the group reaches only haicap and its generator.

The handler runs between two bytecodes of the main thread, possibly in the middle of a ``print``: it never
writes through ``sys.stdout``, only one line straight to the stderr file descriptor.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

__all__ = ["STOP_SIGNALS", "LoadStopped", "StopControl", "exit_code_for", "signal_name"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: what the generator gets on a second stop: kill the running journeys and report now
HURRY_SIGNAL = signal.SIGUSR1
#: after a second stop, the generator is killed if it has not finished within this many seconds
HURRY_KILL_S = 10.0


def exit_code_for(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 SIGINT, 143 SIGTERM)."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class LoadStopped(KeyboardInterrupt):
    """A stop signal arrived before the load started (a KeyboardInterrupt, so no ``except Exception`` eats it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum


def _stderr_line(text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(sys.stderr.fileno(), (text + "\n").encode("utf-8", "replace"))


class StopControl:
    """What SIGINT/SIGTERM do in each phase of a run: ``setup`` → ``load`` (the generator runs) → ``judge``."""

    def __init__(self, *, say: Callable[[str], None] = _stderr_line, after_stop: str = "") -> None:
        self.say = say
        #: printed with the first stop: what happens next (the grace and drain windows)
        self.after_stop = after_stop
        self.signum: int | None = None  # the first stop signal
        self.first_phase: str | None = None  # the phase it arrived in
        self.count = 0
        self.phase = "setup"
        self.child: subprocess.Popen[bytes] | None = None
        #: a second signal, or one while judging: stop the generator at once, cut the integrity drain short
        self.hurry = False
        #: monotonic time after which the generator is killed (set by a second stop during the load)
        self.kill_at: float | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str | None:
        return None if self.signum is None else signal_name(self.signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopControl]:
        """Handle SIGINT and SIGTERM while the block runs (main thread only; elsewhere Python cannot)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        for s in STOP_SIGNALS:
            signal.signal(s, self._handle)
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.signum is None:
            self.signum, self.first_phase = signum, self.phase
        name = signal_name(signum)
        if self.phase == "setup":
            self.phase = "stopping"  # a second signal must not break the clean-up the first one started
            raise LoadStopped(signum)
        if self.phase == "stopping":
            return
        if self.phase == "load" and self.count == 1:
            self.say(f"haicap load: {name}: stopping the load (no new arrivals){self.after_stop}; "
                     "SIGINT or SIGTERM again to stop at once")
            self._signal_child()
        elif self.phase == "load" and self.count == 2:
            self.hurry = True
            self.kill_at = time.monotonic() + HURRY_KILL_S
            self.say(f"haicap load: {name} again: stopping at once — running journeys are killed (counted as "
                     "unfinished); the summary is still written; a third signal kills the generator")
            self._signal_child()
        elif self.phase == "load":
            self.kill_at = time.monotonic()
            self.say(f"haicap load: {name} a third time: killing the load generator")
            self._signal_child()
        else:
            self.hurry = True
            self.say(f"haicap load: {name}: cutting the integrity check short; the summary is still written")

    def _signal_child(self) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.kill_due():
                child.kill()  # its workers get their parent-death signal
            else:
                child.send_signal(HURRY_SIGNAL if self.hurry else signal.SIGTERM)

    def kill_due(self) -> bool:
        """The generator had its chance to stop at once: kill it."""
        return self.kill_at is not None and time.monotonic() >= self.kill_at

    # phase changes, called by the run
    def loading(self) -> None:
        """From now on a signal stops the load instead of the command (call before starting the child)."""
        self.phase = "load"

    def started(self, child: subprocess.Popen[bytes]) -> None:
        """The generator runs: a signal that arrived while it started is passed on now."""
        self.child = child
        if self.requested:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
            if self.hurry:
                self._signal_child()

    def wait(self, child: subprocess.Popen[bytes], timeout: float) -> int:
        """Wait for the generator like ``child.wait(timeout)``, killing it once :meth:`kill_due`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return child.wait(timeout=max(0.01, min(0.25, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                if self.kill_due():
                    child.kill()
                    return child.wait(timeout=10)
                if time.monotonic() >= deadline:
                    raise

    def judging(self) -> None:
        self.phase = "judge"
        self.child = None
