"""The sandbox as haicap's embedded target: registered under the ``haicap.targets`` entry point.

The core (``haicap/``, ``conformance/``) never imports the sandbox: :func:`haicap.target.embedded_provider`
finds this provider through the entry point, so another package can ship its own embedded target (or none).
It starts the reference province with its national counterpart, and serves the national counterpart alone for
a province's profile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from haicap.sandbox.province.id_token import CLOCK_LEEWAY
from haicap.target import Target

__all__ = ["SandboxProvider"]


class SandboxProvider:
    """What :class:`haicap.target.TargetProvider` asks of the embedded sandbox."""

    @property
    def default_province(self) -> str:
        from haicap.sandbox.config import DEFAULT_PROVINCE

        return DEFAULT_PROVINCE[0]

    def faults(self) -> dict[str, str]:
        """Named faults → the criterion each breaks."""
        from haicap.sandbox.province.faults import FAULTS

        return {fault_id: fault.breaks for fault_id, fault in FAULTS.items()}

    def check_faults(self, faults: Iterable[str]) -> None:
        from haicap.sandbox.runner import _check_faults

        _check_faults(faults)

    @contextlib.contextmanager
    def embedded(self, *, faults: Iterable[str], seed: int, province: str, agency_code: str,
                 national_workers: int = 1) -> Iterator[Target]:
        from haicap.sandbox.runner import Sandbox

        with Sandbox.start(faults=faults, seed=seed, province_code=province, agency_code=agency_code,
                           national_workers=national_workers) as sandbox:
            yield sandbox_target(sandbox)

    @contextlib.contextmanager
    def province_against(self, target: Target, issuer: str) -> Iterator[str]:
        """Another reference-province instance (the run's faults) configured against the national ``issuer``
        (SSO-30's mix-up probe on the embedded sandbox): its base URL while the context lasts."""
        import shutil
        import tempfile
        from pathlib import Path

        from haicap.sandbox.config import build_sandbox_configs
        from haicap.sandbox.province.app import create_app
        from haicap.sandbox.server import ThreadServer, bind_socket, url_of

        root = Path(tempfile.mkdtemp(prefix="haicap-mixup-"))
        sock = bind_socket("127.0.0.1", 0)
        configs = build_sandbox_configs(issuer, url_of(sock), root, province_code=target.province_code,
                                        agency_code=target.agency_code, faults=target.faults)
        configs.province.state_dir.mkdir(parents=True, exist_ok=True)
        server = ThreadServer(create_app(configs.province), sock)
        try:
            server.start()
            yield server.url
        finally:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)

    def registration_types(self) -> Any:
        """The counterpart's registration records, for the core to fill in from a profile."""
        from haicap.sandbox import config

        return config

    @contextlib.contextmanager
    def counterpart(self, config: Any, listen: str, national_workers: int = 1) -> Iterator[None]:
        """Serve the national counterpart with ``config`` (a NationalConfig) on ``listen`` (host:port), in
        ``national_workers`` processes sharing its state (a rehearsal's or a real province's load run)."""
        from haicap.sandbox.runner import NATIONAL_FACTORY, national_run
        from haicap.sandbox.server import ProcessServer, bind_socket

        host, _, port = listen.rpartition(":")
        server = ProcessServer(NATIONAL_FACTORY, national_run(config, national_workers),
                               bind_socket(host, int(port)), "national", workers=national_workers)
        server.start()
        try:
            yield
        finally:
            server.stop()


def sandbox_target(sandbox: Any) -> Target:
    """The Target of a running :class:`~haicap.sandbox.runner.Sandbox`."""
    from haicap.sandbox.province.old_portal import reference_portal

    cfg = sandbox.configs
    province = cfg.province
    return Target(
        name=f"embedded reference province {province.province_code}",
        province_code=province.province_code,
        agency_code=province.agency_code,
        province_url=sandbox.province_url,
        national_url=sandbox.national_url,
        control_token=cfg.national.control_token,
        officer_token=province.officer_token,
        sync_retry_seconds=province.outbox_retry_max,
        sso_clock_skew_seconds=CLOCK_LEEWAY,  # the reference province's leeway is the declared skew
        embedded=True,
        faults=sandbox.faults,
        secret_values=(cfg.national.control_token, province.officer_token, province.oidc.client_secret,
                       province.payment.secret, province.sync.password, province.forward_token),
        forward_token=province.forward_token,
        wiring={
            "national.public_url": sandbox.national_url,
            "credentials.oidc_client_id": province.oidc.client_id,
            "credentials.oidc_redirect_uri": province.oidc.redirect_uri,
            "credentials.payment_partner": province.payment.ma_doi_tac,
            "credentials.payment_callback_url": province.payment.callback_url,
            "credentials.sync_username": province.sync.username,
        },
        portal=reference_portal(sandbox.province_url, sandbox.national_url),
        # the counterpart's test CA (sandbox/national/test_ca.py): its root and both CRLs
        signature_trust_anchors=(f"{sandbox.national_url}/ca/root.pem",),
        signature_crls=(f"{sandbox.national_url}/ca/crl/sub.der", f"{sandbox.national_url}/ca/crl/root.der"),
    )
