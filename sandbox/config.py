"""Configuration of the two sandbox apps, and the per-run generation of their shared secrets.

The national counterpart and a province share registrations the way real systems do: an OIDC client
(client id, secret, redirect URI), a payment-platform partner (MaDoiTac and checksum secret), a sync account
(agency code and credentials) and a forwarding credential. In the sandbox these are generated fresh for every
run (never written to a report or a log); in a certification run the national side gets them from the
province's profile.

The dataclasses are frozen and picklable: the runner hands them to the app processes it spawns.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_PROVINCE",
    "NationalConfig",
    "OidcClient",
    "PaymentPartner",
    "ProvinceConfig",
    "ProvinceEndpoint",
    "SandboxConfigs",
    "SyncAccount",
    "build_sandbox_configs",
    "co_tenant_registration",
]

#: The embedded reference province: Thành phố Hà Nội (code 01), province-level agency 000.00.00.H26.
DEFAULT_PROVINCE = ("01", "000.00.00.H26")


@dataclass(frozen=True, slots=True)
class OidcClient:
    """A relying party registered at the national identity provider."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    post_logout_redirect_uri: str


@dataclass(frozen=True, slots=True)
class PaymentPartner:
    """A province registered at the national payment platform (MaDoiTac + MaXacThuc secret)."""

    ma_doi_tac: str
    secret: str = field(repr=False)
    callback_url: str


@dataclass(frozen=True, slots=True)
class SyncAccount:
    """A province's account at the national sync API (session login, then calls with ``madonvi``)."""

    madonvi: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ProvinceEndpoint:
    """Where the national portal forwards dossiers for a province, and the credential it presents."""

    province_code: str
    agency_code: str
    base_url: str
    forward_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class NationalConfig:
    """Everything the national counterpart needs to play the national side for one or more provinces."""

    public_url: str
    state_dir: Path
    control_token: str = field(repr=False)
    clients: tuple[OidcClient, ...]
    payment_partners: tuple[PaymentPartner, ...]
    sync_accounts: tuple[SyncAccount, ...]
    provinces: tuple[ProvinceEndpoint, ...]
    seed: int = 0
    #: forward registrations of other provinces that are never forwarded to here: the credentials the national
    #: portal issued to them, so a check can present one to the province under test (it must refuse it)
    other_forward_registrations: tuple[ProvinceEndpoint, ...] = ()
    #: how many worker processes serve the counterpart on its one port (``--national-workers``)
    workers: int = 1
    #: the run this counterpart belongs to, the same in every worker (its shared state is scoped to it); empty:
    #: a fresh run per app instance (one process)
    instance: str = ""


@dataclass(frozen=True, slots=True)
class ProvinceConfig:
    """Everything the reference province needs: its identity, the national URLs, its credentials, faults."""

    public_url: str
    national_url: str
    province_code: str
    agency_code: str
    state_dir: Path
    oidc: OidcClient
    payment: PaymentPartner
    sync: SyncAccount
    forward_token: str = field(repr=False)
    officer_token: str = field(repr=False)
    faults: frozenset[str] = frozenset()
    #: seconds between outbox delivery attempts when the national side fails (doubles up to the max); the max is
    #: the province's retry interval the outage check (SYNC-10) reads: short, so that check stays fast
    outbox_retry_initial: float = 0.2
    outbox_retry_max: float = 0.4
    #: worker processes serving the province's socket (state shared through its SQLite store)
    workers: int = 1
    #: forward tokens of the other provinces the same vendor system serves (co-tenants): known to the system,
    #: never valid for this province (fault ``accepts-any-forward-token`` accepts them)
    co_tenant_forward_tokens: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class SandboxConfigs:
    national: NationalConfig
    province: ProvinceConfig


def _secret() -> str:
    return secrets.token_urlsafe(24)


def build_sandbox_configs(
    national_url: str,
    province_url: str,
    state_dir: Path,
    *,
    province_code: str = DEFAULT_PROVINCE[0],
    agency_code: str = DEFAULT_PROVINCE[1],
    faults: frozenset[str] | set[str] | tuple[str, ...] = frozenset(),
    seed: int = 0,
) -> SandboxConfigs:
    """Generate fresh registrations and secrets for one sandbox run."""
    national_url = national_url.rstrip("/")
    province_url = province_url.rstrip("/")
    client = OidcClient(
        client_id=f"province-{province_code}",
        client_secret=_secret(),
        redirect_uri=f"{province_url}/auth/callback",
        post_logout_redirect_uri=f"{province_url}/auth/logged-out",
    )
    partner = PaymentPartner(
        ma_doi_tac=f"DVC{province_code}",
        secret=_secret(),
        callback_url=f"{province_url}/DvcPayment/Confirm",
    )
    account = SyncAccount(madonvi=agency_code, username=f"sync-{province_code}", password=_secret())
    endpoint = ProvinceEndpoint(
        province_code=province_code, agency_code=agency_code, base_url=province_url, forward_token=_secret()
    )
    co_tenant = co_tenant_registration(province_code, province_url)
    national = NationalConfig(
        public_url=national_url,
        state_dir=Path(state_dir) / "national",
        control_token=_secret(),
        clients=(client,),
        payment_partners=(partner,),
        sync_accounts=(account,),
        provinces=(endpoint,),
        seed=seed,
        other_forward_registrations=(co_tenant,),
    )
    province = ProvinceConfig(
        public_url=province_url,
        national_url=national_url,
        province_code=province_code,
        agency_code=agency_code,
        state_dir=Path(state_dir) / "province",
        oidc=client,
        payment=partner,
        sync=account,
        forward_token=endpoint.forward_token,
        officer_token=_secret(),
        faults=frozenset(faults),
        co_tenant_forward_tokens=(co_tenant.forward_token,),
    )
    return SandboxConfigs(national=national, province=province)


def co_tenant_registration(province_code: str, base_url: str) -> ProvinceEndpoint:
    """A fresh forward registration of another province than ``province_code`` (the next code of the 34), as
    the national portal would issue it to a second province served by the same vendor system at ``base_url``."""
    from haicap.data_generators.agencies import province_agency_code
    from haicap.data_generators.units import admin_units

    codes = [p.code for p in admin_units().provinces()]
    other = codes[(codes.index(province_code) + 1) % len(codes)] if province_code in codes else codes[0]
    return ProvinceEndpoint(province_code=other, agency_code=province_agency_code(other), base_url=base_url,
                            forward_token=_secret())
