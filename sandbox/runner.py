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
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx

from haicap.criteria import CAPABILITIES
from haicap.errors import HaicapError, did_you_mean
from haicap.sandbox.config import (
    DEFAULT_PROVINCE,
    NationalConfig,
    ProvinceConfig,
    SandboxConfigs,
    build_sandbox_configs,
)
from haicap.sandbox.server import ProcessServer, ThreadServer, bind_socket, url_of

__all__ = ["NATIONAL_FACTORY", "PROVINCE_FACTORY", "REHEARSAL_ENV", "Rehearsal", "Sandbox", "national_run",
           "write_rehearsal_profile"]

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


def national_run(config: NationalConfig, workers: int = 1) -> NationalConfig:
    """``config`` for one run of the counterpart in ``workers`` processes: they share its state (a fresh run id)."""
    if workers < 1:
        raise HaicapError(f"the national counterpart needs at least 1 worker process (got {workers})")
    return dataclasses.replace(config, workers=workers, instance=secrets.token_hex(8))


def _check_faults(faults: Iterable[str]) -> frozenset[str]:
    from haicap.sandbox.province.faults import FAULTS

    chosen = frozenset(faults)
    unknown = sorted(chosen - set(FAULTS))
    if unknown:
        named = [word + did_you_mean(word, FAULTS) for word in unknown]
        valid = ("listed by `haicap sandbox --list-faults`" if named != unknown
                 else f"{', '.join(sorted(FAULTS))} (see `haicap sandbox --list-faults`)")
        raise HaicapError(f"unknown fault {', '.join(named)}; valid faults: {valid}")
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
        national_workers: int = 1,
    ) -> Sandbox:
        chosen = _check_faults(faults)
        for name, workers in (("province", province_workers), ("national", national_workers)):
            if workers < 1 or (workers > 1 and mode != "process"):
                raise HaicapError(f"{name} workers must be ≥ 1, and > 1 only in process mode (got {workers} "
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
        configs = dataclasses.replace(configs, province=dataclasses.replace(configs.province, workers=province_workers),
                                      national=national_run(configs.national, national_workers))
        for cfg_dir in (configs.national.state_dir, configs.province.state_dir):
            cfg_dir.mkdir(parents=True, exist_ok=True)
        servers: list[ProcessServer | ThreadServer] = []
        sandbox = cls(configs=configs, servers=servers, state_dir=root, _owns_state_dir=owns)
        try:
            if mode == "process":
                servers.append(ProcessServer(NATIONAL_FACTORY, configs.national, national_sock, "national",
                                             workers=national_workers))
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


#: Environment variables the rehearsal profile names for its secrets (written to the .env file, never the YAML).
REHEARSAL_ENV = {
    "oidc_client_secret_env": "HAICAP_REHEARSAL_OIDC_SECRET",
    "payment_secret_env": "HAICAP_REHEARSAL_PAYMENT_SECRET",
    "sync_password_env": "HAICAP_REHEARSAL_SYNC_PASSWORD",
    "forward_token_env": "HAICAP_REHEARSAL_FORWARD_TOKEN",
    "officer_token_env": "HAICAP_REHEARSAL_OFFICER_TOKEN",
}


@dataclass
class Rehearsal:
    """The reference province alone, wired to an external national counterpart at ``national_url`` — what a
    province's staging system looks like to ``haicap certify --profile`` — with the profile that certifies it.

    Example::

        with Rehearsal.start("http://127.0.0.1:8711", state_dir=Path("rehearsal")) as r:
            r.profile_path, r.env_path   # rehearsal.yaml, rehearsal.env (mode 0600)
    """

    config: ProvinceConfig
    server: ProcessServer
    state_dir: Path
    profile_path: Path
    env_path: Path
    _owns_state_dir: bool = field(default=False, repr=False)
    #: a second instance configured against ``{national_url}/mixup`` (SSO-30 checks it refuses that discovery)
    mixup_server: ProcessServer | None = None

    @property
    def province_url(self) -> str:
        return self.config.public_url

    @classmethod
    def start(cls, national_url: str, *, province_port: int = 0, state_dir: Path | None = None,
              faults: Iterable[str] = (), host: str = "127.0.0.1", province_code: str = DEFAULT_PROVINCE[0],
              agency_code: str = DEFAULT_PROVINCE[1]) -> Rehearsal:
        listen = _listen_of(national_url)
        chosen = _check_faults(faults)
        if state_dir is not None:
            _check_state_dir(Path(state_dir))
        sock = bind_socket(host, province_port)
        owns = state_dir is None
        root = Path(tempfile.mkdtemp(prefix="haicap-rehearsal-")) if state_dir is None else Path(state_dir)
        configs = build_sandbox_configs(national_url, url_of(sock), root, province_code=province_code,
                                        agency_code=agency_code, faults=chosen)
        province = configs.province
        province.state_dir.mkdir(parents=True, exist_ok=True)
        server = ProcessServer(PROVINCE_FACTORY, province, sock, "province")
        mixup_sock = bind_socket(host, 0)
        mixup = dataclasses.replace(province, public_url=url_of(mixup_sock),
                                    national_url=f"{national_url.rstrip('/')}/mixup", state_dir=root / "province-mixup")
        mixup.state_dir.mkdir(parents=True, exist_ok=True)
        mixup_server = ProcessServer(PROVINCE_FACTORY, mixup, mixup_sock, "province-mixup")
        profile_path, env_path = write_rehearsal_profile(province, listen, root, mixup_url=mixup.public_url)
        try:
            server.start()
            mixup_server.start()
        except BaseException:
            server.stop()
            if owns:
                shutil.rmtree(root, ignore_errors=True)
            raise
        return cls(province, server, root, profile_path, env_path, owns, mixup_server)

    def stop(self) -> None:
        if self.mixup_server is not None:
            self.mixup_server.stop()
        self.server.stop()
        if self._owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Rehearsal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _listen_of(national_url: str) -> str:
    """``national.listen`` for a counterpart reached at ``national_url``: its loopback host and fixed port."""
    from urllib.parse import urlsplit

    from haicap.hosts import is_loopback_host

    parts = urlsplit(national_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or not port:
        raise HaicapError(f"--national-url {national_url}: give http://HOST:PORT of the counterpart haicap certify "
                          "will run (e.g. http://127.0.0.1:8711)")
    if not is_loopback_host(parts.hostname):
        raise HaicapError(f"--national-url {national_url}: haicap's counterpart listens on loopback only")
    return f"{parts.hostname}:{port}"


def write_rehearsal_profile(province: ProvinceConfig, listen: str, folder: Path,
                            mixup_url: str | None = None) -> tuple[Path, Path]:
    """Write ``rehearsal.yaml`` (a ready profile for ``province``) and ``rehearsal.env`` (its secrets as
    ``NAME=value`` lines, mode 0600) into ``folder``."""
    secrets_by_key = {
        "oidc_client_secret_env": province.oidc.client_secret,
        "payment_secret_env": province.payment.secret,
        "sync_password_env": province.sync.password,
        "forward_token_env": province.forward_token,
        "officer_token_env": province.officer_token,
    }
    env_path = Path(folder) / "rehearsal.env"
    fd = os.open(env_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# secrets of the rehearsal province: load with  set -a; . rehearsal.env; set +a\n")
        for key, value in secrets_by_key.items():
            fh.write(f"{REHEARSAL_ENV[key]}={value}\n")
    os.chmod(env_path, 0o600)
    import json

    from haicap.sandbox.province.old_portal import reference_portal

    portal = json.dumps(reference_portal(province.public_url, province.national_url).to_profile(), ensure_ascii=False)
    profile_path = Path(folder) / "rehearsal.yaml"
    profile_path.write_text(f"""\
# A ready profile for the rehearsal province (haicap sandbox --national-url): certify it with
#   set -a; . {env_path.name}; set +a; haicap certify --profile {profile_path.name}
name: rehearsal of the reference province {province.province_code}
province: "{province.province_code}"
agency_code: "{province.agency_code}"
province_url: {province.public_url}
national:
  listen: {listen}
  public_url: {province.national_url}
credentials:
  oidc_client_id: {province.oidc.client_id}
  oidc_client_secret_env: {REHEARSAL_ENV["oidc_client_secret_env"]}
  oidc_redirect_uri: {province.oidc.redirect_uri}
  oidc_post_logout_redirect_uri: {province.oidc.post_logout_redirect_uri}
  payment_partner: {province.payment.ma_doi_tac}
  payment_secret_env: {REHEARSAL_ENV["payment_secret_env"]}
  payment_callback_url: {province.payment.callback_url}
  sync_username: {province.sync.username}
  sync_password_env: {REHEARSAL_ENV["sync_password_env"]}
  forward_token_env: {REHEARSAL_ENV["forward_token_env"]}
  officer_token_env: {REHEARSAL_ENV["officer_token_env"]}
capabilities: [{", ".join(CAPABILITIES)}]
sync_sla_seconds: 10
portal: {portal}
# the counterpart's test CA (made when haicap certify starts it): its root and CRLs
signature_trust_anchors: ["{province.national_url}/ca/root.pem"]
signature_crls: ["{province.national_url}/ca/crl/sub.der", "{province.national_url}/ca/crl/root.der"]
""" + (f"sso_mixup_province_url: {mixup_url}   # the same province configured against the /mixup issuer (SSO-30)\n"
       if mixup_url else ""), encoding="utf-8")
    return profile_path, env_path
