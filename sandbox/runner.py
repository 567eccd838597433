"""Start and stop the embedded sandbox: the national counterpart and the reference province, together.

Both ports are bound first (a clear error if one cannot be), the per-run registrations and secrets are
generated, then each app is served on its socket, in its own process by default (so the province's and the
national side's CPU use do not share one interpreter) or in threads of this process (``mode="thread"``).

Example::

    with Sandbox.start(faults={"late-sync"}) as sandbox:
        httpx.get(sandbox.province_url + "/health")
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from haicap.errors import HaicapError
from haicap.sandbox.config import DEFAULT_PROVINCE, SandboxConfigs, build_sandbox_configs
from haicap.sandbox.server import ProcessServer, ThreadServer, bind_socket, url_of

__all__ = ["NATIONAL_FACTORY", "PROVINCE_FACTORY", "Sandbox"]

NATIONAL_FACTORY = "haicap.sandbox.national.app:create_app"
PROVINCE_FACTORY = "haicap.sandbox.province.app:create_app"

Mode = Literal["process", "thread"]


def _check_state_dir(path: Path) -> None:
    """A state folder that cannot hold the sandbox's databases is one line, before any port is bound."""
    if path.exists() and not path.is_dir():
        raise HaicapError(f"cannot use {path} as the sandbox state folder: it exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".haicap-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HaicapError(f"cannot use {path} as the sandbox state folder: {exc.strerror or exc}") from None


def _check_faults(faults: Iterable[str]) -> frozenset[str]:
    from haicap.sandbox.province.faults import FAULTS

    chosen = frozenset(faults)
    unknown = sorted(chosen - set(FAULTS))
    if unknown:
        raise HaicapError(
            f"unknown fault {', '.join(unknown)}; valid faults: {', '.join(sorted(FAULTS))} "
            "(see `haicap sandbox --list-faults`)"
        )
    return chosen


@dataclass
class Sandbox:
    """A running sandbox. Use :meth:`start` (a context manager) to get one."""

    configs: SandboxConfigs
    servers: list[ProcessServer | ThreadServer]
    state_dir: Path
    _owns_state_dir: bool = field(default=False, repr=False)

    @property
    def national_url(self) -> str:
        return self.configs.national.public_url

    @property
    def province_url(self) -> str:
        return self.configs.province.public_url

    @property
    def faults(self) -> frozenset[str]:
        return self.configs.province.faults

    @classmethod
    def start(
        cls,
        *,
        host: str = "127.0.0.1",
        national_port: int = 0,
        province_port: int = 0,
        faults: Iterable[str] = (),
        state_dir: Path | None = None,
        mode: Mode = "process",
        province_code: str = DEFAULT_PROVINCE[0],
        agency_code: str = DEFAULT_PROVINCE[1],
        seed: int = 0,
        province_workers: int = 1,
    ) -> Sandbox:
        chosen = _check_faults(faults)
        if province_workers < 1 or (province_workers > 1 and mode != "process"):
            raise HaicapError(f"province workers must be ≥ 1, and > 1 only in process mode (got {province_workers} "
                              f"in {mode} mode)")
        if state_dir is not None:
            _check_state_dir(Path(state_dir))
        national_sock = bind_socket(host, national_port)
        try:
            province_sock = bind_socket(host, province_port)
        except HaicapError:
            national_sock.close()
            raise
        owns = state_dir is None
        root = Path(tempfile.mkdtemp(prefix="haicap-sandbox-")) if state_dir is None else Path(state_dir)
        configs = build_sandbox_configs(
            url_of(national_sock),
            url_of(province_sock),
            root,
            province_code=province_code,
            agency_code=agency_code,
            faults=chosen,
            seed=seed,
        )
        configs = dataclasses.replace(configs, province=dataclasses.replace(configs.province, workers=province_workers))
        for cfg_dir in (configs.national.state_dir, configs.province.state_dir):
            cfg_dir.mkdir(parents=True, exist_ok=True)
        servers: list[ProcessServer | ThreadServer] = []
        sandbox = cls(configs=configs, servers=servers, state_dir=root, _owns_state_dir=owns)
        try:
            if mode == "process":
                servers.append(ProcessServer(NATIONAL_FACTORY, configs.national, national_sock, "national"))
                servers.append(ProcessServer(PROVINCE_FACTORY, configs.province, province_sock, "province",
                                             workers=province_workers))
            else:
                from haicap.sandbox.national.app import create_app as national_app
                from haicap.sandbox.province.app import create_app as province_app

                servers.append(ThreadServer(national_app(configs.national), national_sock))
                servers.append(ThreadServer(province_app(configs.province), province_sock))
            for server in servers:
                server.start()
            sandbox.wait_healthy()
        except BaseException:
            sandbox.stop()
            raise
        return sandbox

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        pending = {self.national_url, self.province_url}
        with httpx.Client(timeout=2.0) as client:
            while pending:
                for url in sorted(pending):
                    try:
                        if client.get(url + "/health").status_code == 200:
                            pending.discard(url)
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    raise HaicapError(f"sandbox not healthy after {timeout:.0f}s: {', '.join(sorted(pending))}")
                if pending:
                    time.sleep(0.05)

    def control_headers(self) -> dict[str, str]:
        """Headers that authorise calls to the counterpart's control and ledger APIs."""
        return {"Authorization": f"Bearer {self.configs.national.control_token}"}

    def officer_headers(self) -> dict[str, str]:
        """Headers that authorise calls to the reference province's officer API."""
        return {"Authorization": f"Bearer {self.configs.province.officer_token}"}

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
