"""Serving an ASGI app on a pre-bound loopback socket, in a thread or in a child process.

Sockets are bound by the caller first, so a port that cannot be bound is reported once, plainly, before
anything starts, and port 0 (a free port) works for tests. The server is uvicorn with uvloop and httptools
(``uvicorn[standard]``); access logs are off because they would dominate the cost of a request under load.
A :class:`ProcessServer` may run several worker processes that all accept on the one socket the parent bound
(the kernel spreads connections over them), so an app that keeps its state in shared storage uses several cores.
Its children leave the parent's process group as they start: Ctrl-C or a SIGTERM to haicap's group reaches haicap,
which finishes what it is doing (a load run drains and is judged) and then stops them; they die with a killed
parent (:func:`~haicap.parent_death.die_with_parent`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn

from haicap.errors import HaicapError
from haicap.hosts import is_loopback_host
from haicap.parent_death import die_with_parent

__all__ = ["ProcessServer", "ThreadServer", "bind_socket", "is_loopback_host", "url_of"]


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` or raise a one-line :class:`HaicapError` naming port and reason."""
    if not 0 <= port <= 65535:
        raise HaicapError(f"cannot bind {host}:{port}: a port is a number from 0 to 65535")
    if not is_loopback_host(host):
        raise HaicapError(f"refusing to serve on {host}: the sandbox listens on loopback only (127.0.0.0/8, ::1)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio enables TCP_NODELAY on accepted connections only when the listening
    # socket's proto says TCP; with proto 0 Nagle + delayed ACK add ~40 ms to every keep-alive response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        raise HaicapError(f"cannot bind {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop (what ``uvicorn.run`` would pick); plain ``asyncio.run`` would use the slower
    selector loop, since ``Server.serve()`` does not choose the loop itself."""
    with asyncio.Runner(loop_factory=_uvicorn_config(None).get_loop_factory()) as runner:
        runner.run(main)


def _uvicorn_config(app: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        access_log=False,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=3,
        backlog=2048,
    )


class ThreadServer:
    """Run an ASGI app in a background thread of this process (tests, small embedded runs).

    Example::

        sock = bind_socket("127.0.0.1", 0)
        with ThreadServer(app, sock) as server:
            httpx.get(server.url + "/health")
    """

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.url = url_of(sock)
        self._sock = sock
        self._server = uvicorn.Server(_uvicorn_config(app))
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._run, name=f"asgi-{self.url}", daemon=True)

    def _run(self) -> None:
        _run(self._server.serve(sockets=[self._sock]))

    def start(self, timeout: float = 10.0) -> ThreadServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise HaicapError(f"the server at {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()

    def __enter__(self) -> ThreadServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: Signals a terminal or ``kill -TERM -PGID`` sends to a whole process group: a server started by haicap is
#: stopped by its parent, never by them (it would die before a load run has drained and been judged).
GROUP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def _serve_in_child(factory_path: str, config: Any, sock: socket.socket, ready: Any, parent_pid: int) -> None:
    # The child was started with SIGINT and SIGTERM blocked (ProcessServer.start): it leaves the parent's process
    # group first, so that Ctrl-C or a SIGTERM to the group reaches haicap, which drains, judges and then stops
    # the servers itself (SIGTERM to the pid); die_with_parent keeps an orphan from outliving a killed haicap.
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    die_with_parent(parent_pid)
    module_name, _, attr = factory_path.partition(":")
    factory: Callable[[Any], Any] = getattr(importlib.import_module(module_name), attr)
    app = factory(config)
    server = uvicorn.Server(_uvicorn_config(app))

    async def main() -> None:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not serving.done():
            await asyncio.sleep(0.01)
        ready.set()
        await serving

    # SIGTERM (the parent's stop, or the parent's death) is let through; SIGINT stays blocked, not ignored:
    # uvicorn installs its own SIGINT handler over SIG_IGN.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    _run(main())


class ProcessServer:
    """Run ``factory(config)`` in ``workers`` spawned child processes on a socket bound by the parent.

    The factory is named ``"package.module:function"`` so that each child imports it fresh. With several
    workers every child serves the same listening socket; the app must then keep no state that another
    worker needs in its own memory.
    """

    def __init__(self, factory_path: str, config: Any, sock: socket.socket, name: str, workers: int = 1) -> None:
        if workers < 1:
            raise HaicapError(f"the {name} server needs at least one worker (got {workers})")
        self.url = url_of(sock)
        self.name = name
        ctx = multiprocessing.get_context("spawn")
        self._sock = sock
        self._ready = [ctx.Event() for _ in range(workers)]
        self._processes = [
            ctx.Process(
                target=_serve_in_child, args=(factory_path, config, sock, ready, os.getpid()),
                name=name if workers == 1 else f"{name}-{i + 1}", daemon=True,
            )
            for i, ready in enumerate(self._ready)
        ]

    @property
    def pid(self) -> int | None:
        """The first worker's process id (the only one unless ``workers`` > 1)."""
        return self._processes[0].pid

    @property
    def pids(self) -> list[int]:
        """Every started worker's process id."""
        return [p.pid for p in self._processes if p.pid is not None]

    def is_alive(self) -> bool:
        """True while every worker runs."""
        return all(p.is_alive() for p in self._processes)

    def start(self, timeout: float = 30.0) -> ProcessServer:
        # the children inherit the blocked mask: a group signal before they left the group cannot kill them; one
        # that arrives here meanwhile stays pending for this process and is handled as soon as the mask is back
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, GROUP_SIGNALS)
        try:
            for process in self._processes:
                process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        deadline = time.monotonic() + timeout
        for process, ready in zip(self._processes, self._ready, strict=True):
            while not ready.wait(0.05):
                if not process.is_alive():
                    self.stop()
                    raise HaicapError(f"the {self.name} server at {self.url} exited while starting "
                                      f"(exit code {process.exitcode})")
                if time.monotonic() > deadline:
                    self.stop()
                    raise HaicapError(f"the {self.name} server at {self.url} did not start within {timeout:.0f}s")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        running = [p for p in self._processes if p.is_alive()]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid or 0, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(5)
        self._sock.close()
