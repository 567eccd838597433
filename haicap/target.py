"""What a certification or load run points at: a province system and the national counterpart serving it.

Either the embedded sandbox (the reference province, optionally with faults) or a province's staging system
described by a profile YAML; in the latter case haicap starts the national counterpart itself, with the
registrations the profile names (secrets read from environment variables, never from the file).

Example::

    with open_target(profile=None, faults={"late-sync"}) as target:
        target.province_url, target.national_url
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from haicap.back_office import BackOfficeSettings
from haicap.criteria import ALL_CAPABILITIES, CAPABILITIES, DERIVED_CAPABILITIES
from haicap.errors import HaicapError
from haicap.portal import PortalSettings
from haicap.yaml_source import YamlDocument, load_yaml_document

__all__ = ["ALL_CAPABILITIES", "DERIVED_CAPABILITIES", "Target", "TargetProvider", "embedded_provider",
           "load_profile", "open_target", "register_provider"]

PROFILE_SCHEMA = Path(__file__).resolve().parent / "schemas" / "profile.schema.json"
DEFAULT_LISTEN = "127.0.0.1:8710"


@dataclass(frozen=True)
class Target:
    """A province under test and the counterpart haicap runs for it."""

    name: str
    province_code: str
    agency_code: str
    province_url: str
    national_url: str
    control_token: str = field(repr=False)
    officer_token: str | None = field(default=None, repr=False)
    #: the credential the national portal presents when forwarding dossiers (fuzzing the receiver needs it)
    forward_token: str | None = field(default=None, repr=False)
    capabilities: frozenset[str] = ALL_CAPABILITIES
    sync_sla_seconds: float = 10.0
    #: the longest pause of the province's sync client between two attempts while the national side is down
    sync_retry_seconds: float = 1.0
    #: the clock skew the province's relying party allows on ID-token exp/iat (profile sso_clock_skew_seconds)
    sso_clock_skew_seconds: int = 60
    communes: tuple[str, ...] | None = None
    embedded: bool = False
    faults: frozenset[str] = frozenset()
    secret_values: tuple[str, ...] = field(default=(), repr=False)
    #: non-loopback hosts haicap may contact for this target: only those the profile names
    allowed_hosts: tuple[str, ...] = ()
    #: how officer actions are carried out (profile ``back_office``)
    back_office: BackOfficeSettings = field(default_factory=BackOfficeSettings)
    #: the run folder (``haicap certify --out``): the operator's instructions go to ``<run_dir>/operator``
    run_dir: str | None = None
    #: a second instance of the province configured against the issuer {public_url}/mixup (SSO-30), if any
    sso_mixup_url: str | None = None
    #: the credential the national portal presents when forwarding (the pre-flight probes it)
    forward_token: str | None = field(default=None, repr=False)
    #: the registrations the province must be configured with, by profile field (pre-flight; no secrets)
    wiring: dict[str, str] = field(default_factory=dict)
    #: the closed provincial portal: old URLs and the national portal they lead to (profile ``portal``), if any
    portal: PortalSettings | None = None
    #: the converted legacy data as two files (profile ``conversion.before``/``after``, absolute); None: the
    #: province's export endpoint
    conversion_files: tuple[str, str] | None = None
    #: the specialised CA's trust anchors (PEM paths or URLs) and revocation sources (CRL paths or URLs) the
    #: signature checks (SIG-…) verify against (profile signature_trust_anchors, signature_crls)
    signature_trust_anchors: tuple[str, ...] = ()
    signature_crls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.back_office, dict):  # read back from the target file the certify child gets
            object.__setattr__(self, "back_office", BackOfficeSettings(**self.back_office))
        if isinstance(self.portal, dict):
            object.__setattr__(self, "portal", PortalSettings.from_profile(self.portal))
        if isinstance(self.conversion_files, list):
            object.__setattr__(self, "conversion_files", tuple(self.conversion_files))
        for name in ("signature_trust_anchors", "signature_crls"):  # lists when read back from JSON
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def control_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.control_token}"}

    def officer_headers(self) -> dict[str, str]:
        if not self.officer_token:
            raise HaicapError("the profile declares no officer API token (credentials.officer_token_env)")
        return {"Authorization": f"Bearer {self.officer_token}"}

    def describe(self) -> dict[str, Any]:
        """A report-safe description (no secrets), with what the profile restricts (capabilities, communes)."""
        return {
            "name": self.name,
            "province": self.province_code,
            "agency_code": self.agency_code,
            "province_url": self.province_url,
            "national_url": self.national_url,
            "embedded_sandbox": self.embedded,
            "faults": sorted(self.faults),
            "capabilities": sorted(self.capabilities),
            "back_office": self.back_office.describe(),
            "sync_sla_seconds": self.sync_sla_seconds,
            "sync_retry_seconds": self.sync_retry_seconds,
            "sso_clock_skew_seconds": self.sso_clock_skew_seconds,
            "communes": self.commune_coverage(),
            "portal": None if self.portal is None else {"national_portal": self.portal.national_portal,
                                                        "old_urls": len(self.portal.old_urls)},
        }

    def commune_coverage(self) -> dict[str, Any]:
        """Which communes the run submits in: every official commune of the province (Decision 19/2025/QĐ-TTg),
        or only the profile's ``communes`` — then ``restricted`` is true and ``not_covered`` counts the rest."""
        from haicap.data_generators.units import admin_units

        official = [c.code for c in admin_units().communes(self.province_code)]
        if self.communes is None:
            return {"restricted": False, "official": len(official), "covered": len(official)}
        chosen = set(self.communes)
        return {"restricted": True, "official": len(official), "covered": len(chosen),
                "codes": list(self.communes), "not_covered": sum(code not in chosen for code in official)}


@dataclass(frozen=True)
class Profile:
    document: YamlDocument

    @property
    def data(self) -> dict[str, Any]:
        return self.document.data  # type: ignore[no-any-return]

    def secret(self, key: str) -> str | None:
        """The value of the environment variable named by ``credentials.<key>``, or None if not configured."""
        env_name = self.data["credentials"].get(key)
        if env_name is None:
            return None
        value = os.environ.get(env_name)
        if not value:
            raise self.document.error(("credentials", key), f"environment variable {env_name} is not set")
        return value


def profile_schema() -> dict[str, Any]:
    """The profile schema, its capability enum taken from the one table (haicap/criteria.py)."""
    schema: dict[str, Any] = json.loads(PROFILE_SCHEMA.read_text(encoding="utf-8"))
    schema["properties"]["capabilities"]["items"]["enum"] = list(CAPABILITIES)
    return schema


def load_profile(path: Path | str) -> Profile:
    """Load and validate a profile; any problem is one line naming file, line and field."""
    document = load_yaml_document(path)
    if not isinstance(document.data, dict):
        raise HaicapError(f"{document.path}: a profile is a mapping (see README: Certifying a province)")
    document.validate(profile_schema())
    from haicap.data_generators.units import admin_units

    province = document.data["province"]
    if province not in {p.code for p in admin_units().provinces()}:
        raise document.error(("province",), f"{province!r} is not a province code of the 34-province list")
    _check_listen(document)
    _check_back_office(document)
    _check_portal(document)
    _check_conversion(document)
    _check_signatures(document)
    current = {c.code for c in admin_units().communes(province)}
    for index, code in enumerate(document.data.get("communes") or []):
        if code not in current:
            raise document.error(("communes", index), f"{code} is not a current commune, ward or special zone of "
                                                      f"province {province} (Decision 19/2025/QĐ-TTg)")
    return Profile(document)


def _check_listen(document: YamlDocument) -> None:
    """``national.listen`` is a loopback host and a fixed port 1..65535: the province reaches the counterpart
    at ``public_url``, so a random port (0) would leave both it and haicap pointing nowhere."""
    from haicap.hosts import is_loopback_host

    listen = document.data["national"].get("listen")
    if listen is None:
        return
    host, _, port = listen.rpartition(":")
    key = ("national", "listen")
    if not is_loopback_host(host):
        raise document.error(key, "the counterpart listens on loopback only")
    if not 1 <= int(port) <= 65535:
        raise document.error(key, f"port {int(port)} is not a fixed TCP port 1..65535"
                                  + (" (0, a random port, cannot be: the province and haicap must know it)"
                                     if int(port) == 0 else ""))


def _check_signatures(document: YamlDocument) -> None:
    """The signatures capability needs trust anchors; each anchor file is a PEM/DER certificate, each CRL path a
    CRL (a URL is fetched at run time)."""
    from haicap.signatures import Trust

    data = document.data
    anchors = data.get("signature_trust_anchors") or []
    if not anchors and "signatures" in data.get("capabilities", ()):
        raise document.error(("capabilities", data["capabilities"].index("signatures")),
                             "signatures needs signature_trust_anchors (the specialised CA's root certificates, PEM)")
    base = Path(document.path).parent
    for key, loader in (("signature_trust_anchors", lambda b: Trust.load([b])),
                        ("signature_crls", lambda b: Trust.load([], [b]))):
        for index, source in enumerate(data.get(key) or []):
            if "://" in source:
                continue
            path = base / source
            try:
                loader(path.read_bytes())
            except OSError as exc:
                raise document.error((key, index), f"cannot read {path}: {exc.strerror}") from None
            except ValueError as exc:
                raise document.error((key, index), f"{path}: {exc}") from None


def _check_portal(document: YamlDocument) -> None:
    """The portal capability needs the ``portal`` section; no old URL may be on the national portal itself."""
    data = document.data
    raw = data.get("portal")
    if raw is None:
        if "portal" in data.get("capabilities", ()):
            index = data["capabilities"].index("portal")
            raise document.error(("capabilities", index), "portal needs the portal section (national_portal, "
                                                          "old_urls: the old provincial portal's URLs)")
        return
    settings = PortalSettings.from_profile(raw)
    host, port = _netloc(settings.national_portal)
    explicit = ":" in settings.national_portal.split("//", 1)[-1]  # a port named: only that port is the portal
    for key in ("old_urls", "submission_urls", "login_urls", "lookup_urls"):
        for index, item in enumerate(raw.get(key) or ()):
            url = item if isinstance(item, str) else item["url"]
            url_host, url_port = _netloc(url)
            if url_host == host and (not explicit or url_port == port):
                raise document.error(("portal", key, index), f"{url} is on the national portal "
                                                             f"{settings.national_portal} itself, not the old portal")


def conversion_files(document: YamlDocument) -> tuple[str, str] | None:
    """The profile's ``conversion.before``/``after`` as absolute paths (relative to the profile's folder)."""
    raw = document.data.get("conversion") or {}
    if "before" not in raw:
        return None
    folder = Path(document.path).resolve().parent
    return str(folder / raw["before"]), str(folder / raw["after"])


def _check_conversion(document: YamlDocument) -> None:
    """The conversion files exist; the export endpoint (no files) needs the officer credential."""
    files = conversion_files(document)
    if files is not None:
        for key, path in zip(("before", "after"), files, strict=True):
            if not Path(path).is_file():
                raise document.error(("conversion", key), f"{path}: no such file")
    elif "conversion" in document.data and not document.data["credentials"].get("officer_token_env"):
        raise document.error(("conversion",), "without before/after files the export endpoint is read with "
                                              "credentials.officer_token_env, which is not set")


def _netloc(url: str) -> tuple[str, int | None]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        port = parts.port or default
    except ValueError:
        port = None
    return (parts.hostname or "").lower(), port


def back_office_settings(data: dict[str, Any]) -> BackOfficeSettings:
    """The profile's ``back_office``; without one, the officer API when the profile declares it, else none."""
    raw = data.get("back_office")
    if raw is None:
        return BackOfficeSettings("officer_api" if "officer_api" in data.get("capabilities", ALL_CAPABILITIES)
                                  else None)
    return BackOfficeSettings(raw["kind"], raw.get("plugin"), float(raw.get("deadline_seconds", 300)),
                              float(raw.get("poll_seconds", 1)), dict(raw.get("options") or {}))


def _check_back_office(document: YamlDocument) -> None:
    """What the schema cannot say: the officer API back office needs the declared officer API and its token; a
    plugin names an importable class."""
    from haicap.back_office import load_plugin

    data = document.data
    raw = data.get("back_office")
    if raw is None:
        return
    if raw["kind"] == "officer_api":
        if "officer_api" not in data.get("capabilities", ALL_CAPABILITIES):
            raise document.error(("back_office", "kind"), "officer_api needs capability officer_api declared")
        if not data["credentials"].get("officer_token_env"):
            raise document.error(("back_office", "kind"), "officer_api needs credentials.officer_token_env")
    if raw["kind"] == "plugin":
        try:
            load_plugin(raw["plugin"])
        except HaicapError as exc:
            raise document.error(("back_office", "plugin"), str(exc)) from None


def _capabilities(data: dict[str, Any], back_office: BackOfficeSettings) -> frozenset[str]:
    """The declared capabilities plus the derived ones (DERIVED_CAPABILITIES)."""
    undeclared = (ALL_CAPABILITIES - DERIVED_CAPABILITIES - (set() if data.get("portal") else {"portal"})
                  - (set() if "conversion" in data else {"conversion"})
                  - (set() if data.get("signature_trust_anchors") else {"signatures"}))
    declared = frozenset(data.get("capabilities", sorted(undeclared)))  # no portal section: nothing to check
    derived = set()
    if back_office.kind is not None:
        derived.add("back_office")
    if declared & {"submission", "forwarding"}:
        derived.add("submission_channel")
    return declared | derived


def _profile_national_config(profile: Profile, state_dir: Path, seed: int = 0) -> tuple[Any, str, Target]:
    from haicap.hosts import is_loopback_host

    types = embedded_provider().registration_types()  # the counterpart's records: the core imports no sandbox
    NationalConfig, OidcClient, PaymentPartner = types.NationalConfig, types.OidcClient, types.PaymentPartner
    ProvinceEndpoint, SyncAccount = types.ProvinceEndpoint, types.SyncAccount

    data = profile.data
    creds = data["credentials"]
    listen = data["national"].get("listen", DEFAULT_LISTEN)
    host, _, port = listen.rpartition(":")
    if not is_loopback_host(host) or not 1 <= int(port) <= 65535:  # load_profile said which, with the line
        raise profile.document.error(("national", "listen"), "must be a loopback host and a port 1..65535")
    agency = data.get("agency_code") or _default_agency_code(data["province"])
    public_url = data["national"]["public_url"].rstrip("/")
    province_url = data["province_url"].rstrip("/")
    control_token = secrets.token_urlsafe(24)
    client_secret = profile.secret("oidc_client_secret_env") or ""
    payment_secret = profile.secret("payment_secret_env")
    sync_password = profile.secret("sync_password_env")
    forward_token = profile.secret("forward_token_env")
    officer_token = profile.secret("officer_token_env")
    client = OidcClient(
        client_id=creds["oidc_client_id"],
        client_secret=client_secret,
        redirect_uri=creds["oidc_redirect_uri"],
        post_logout_redirect_uri=creds.get("oidc_post_logout_redirect_uri", creds["oidc_redirect_uri"]),
    )
    partners = ()
    if payment_secret and creds.get("payment_partner"):
        partners = (PaymentPartner(
            ma_doi_tac=creds["payment_partner"],
            secret=payment_secret,
            callback_url=creds.get("payment_callback_url", f"{province_url}/DvcPayment/Confirm"),
        ),)
    accounts = ()
    if sync_password and creds.get("sync_username"):
        accounts = (SyncAccount(madonvi=agency, username=creds["sync_username"], password=sync_password),)
    endpoints = (ProvinceEndpoint(data["province"], agency, province_url, forward_token or ""),)
    portal = PortalSettings.from_profile(data["portal"], national_idp=public_url) if data.get("portal") else None
    config = NationalConfig(
        public_url=public_url,
        state_dir=state_dir,
        control_token=control_token,
        clients=(client,),
        payment_partners=partners,
        sync_accounts=accounts,
        provinces=endpoints,
        seed=seed,  # the run's seed picks the test citizens, as in the embedded sandbox
    )
    target = Target(
        name=data.get("name", f"province {data['province']}"),
        province_code=data["province"],
        agency_code=agency,
        province_url=province_url,
        national_url=f"http://{host}:{port}",
        control_token=control_token,
        officer_token=officer_token,
        capabilities=_capabilities(data, back_office_settings(data)),
        back_office=back_office_settings(data),
        sync_sla_seconds=float(data.get("sync_sla_seconds", 10)),
        sync_retry_seconds=float(data.get("sync_retry_seconds", 1)),
        sso_clock_skew_seconds=int(data.get("sso_clock_skew_seconds", 60)),
        communes=tuple(data["communes"]) if data.get("communes") else None,
        secret_values=tuple(s for s in (control_token, client_secret, payment_secret, sync_password,
                                        forward_token, officer_token) if s),
        forward_token=forward_token,
        wiring=_wiring(data, client, partners, accounts, profile.document.path),
        allowed_hosts=tuple(sorted({_host(u) for u in (province_url, public_url, creds["oidc_redirect_uri"],
                                                         creds.get("oidc_post_logout_redirect_uri", province_url),
                                                         data.get("sso_mixup_province_url", province_url))}
                                   | (portal.old_hosts() if portal else frozenset()))),
        sso_mixup_url=data["sso_mixup_province_url"].rstrip("/") if data.get("sso_mixup_province_url") else None,
        portal=portal,
        conversion_files=conversion_files(profile.document),
        signature_trust_anchors=tuple(_resolve(profile, s) for s in data.get("signature_trust_anchors") or ()),
        signature_crls=tuple(_resolve(profile, s) for s in data.get("signature_crls") or ()),
    )
    return config, listen, target


def _resolve(profile: Profile, source: str) -> str:
    """A URL as it is; a path relative to the profile's folder."""
    return source if "://" in source else str(Path(profile.document.path).parent / source)


def _wiring(data: dict[str, Any], client: Any, partners: tuple[Any, ...], accounts: tuple[Any, ...],
            path: Any) -> dict[str, str]:
    """What the pre-flight compares the province's behaviour with, keyed by the profile field that sets it."""
    wiring = {
        "profile": str(path),
        "national.public_url": data["national"]["public_url"].rstrip("/"),
        "credentials.oidc_client_id": client.client_id,
        "credentials.oidc_redirect_uri": client.redirect_uri,
    }
    if partners:
        wiring["credentials.payment_partner"] = partners[0].ma_doi_tac
        wiring["credentials.payment_callback_url"] = partners[0].callback_url
    if accounts:
        wiring["credentials.sync_username"] = accounts[0].username
    return wiring


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "").lower()


def _default_agency_code(province_code: str) -> str:
    from haicap.data_generators.agencies import province_agency_code

    return province_agency_code(province_code)


class TargetProvider(Protocol):
    """What the core asks of the package that plays the national side and ships the embedded province (the
    sandbox registers one under the ``haicap.targets`` entry point, name ``embedded``)."""

    @property
    def default_province(self) -> str: ...

    def faults(self) -> dict[str, str]: ...

    def check_faults(self, faults: Iterable[str]) -> None: ...

    def embedded(self, *, faults: Iterable[str], seed: int, province: str, agency_code: str,
                 national_workers: int = 1) -> contextlib.AbstractContextManager[Target]: ...

    def counterpart(self, config: Any, listen: str,
                    national_workers: int = 1) -> contextlib.AbstractContextManager[None]: ...

    def province_against(self, target: Target, issuer: str) -> contextlib.AbstractContextManager[str]:
        """A second embedded province configured against another national ``issuer`` (its base URL)."""
        ...

    def registration_types(self) -> Any:
        """The counterpart's registration records (NationalConfig, OidcClient, PaymentPartner, ProvinceEndpoint,
        SyncAccount) as attributes."""
        ...


_PROVIDER: list[TargetProvider] = []
#: what pyproject.toml registers as ``haicap.targets: embedded`` (used when the install's metadata lacks it)
_SHIPPED_PROVIDER = "haicap.sandbox.target_provider:SandboxProvider"


def register_provider(provider: TargetProvider) -> None:
    """Use ``provider`` instead of the ``haicap.targets`` entry point (tests, other packagings)."""
    _PROVIDER[:] = [provider]


def embedded_provider() -> TargetProvider:
    """The registered target provider (entry point ``haicap.targets: embedded``)."""
    if not _PROVIDER:
        from importlib.metadata import entry_points

        found = [ep for ep in entry_points(group="haicap.targets") if ep.name == "embedded"]
        if found:
            _PROVIDER.append(found[0].load()())
        else:  # an install whose metadata predates the entry point: the module the package ships, by name
            import importlib

            module, _, name = _SHIPPED_PROVIDER.partition(":")
            try:
                _PROVIDER.append(getattr(importlib.import_module(module), name)())
            except ModuleNotFoundError:
                raise HaicapError("no embedded target is installed (entry point haicap.targets: embedded); "
                                  "reinstall haicap") from None
    return _PROVIDER[0]


@contextlib.contextmanager
def open_target(
    profile: Path | str | Profile | None = None,
    *,
    faults: Iterable[str] = (),
    seed: int = 0,
    province: str | None = None,
    national_workers: int = 1,
) -> Iterator[Target]:
    """Start what the run needs (sandbox, or the counterpart for a profile) and yield the Target.

    ``national_workers`` is how many processes serve the national counterpart on its one port.

    ``province`` picks which of the 34 provinces the embedded reference province plays (default Hà Nội, 01);
    with a profile it must be the profile's province. ``profile`` is a path, or a :class:`Profile` already loaded.
    """
    if profile is None:
        from haicap.data_generators.units import admin_units

        provider = embedded_provider()
        code = province or provider.default_province
        admin_units().province(code)  # a one-line error naming the valid codes
        with provider.embedded(faults=faults, seed=seed, province=code, agency_code=_default_agency_code(code),
                               **({"national_workers": national_workers} if national_workers != 1 else {})) as target:
            yield target
        return
    if list(faults):
        raise HaicapError("--fault applies to the embedded sandbox only, not to a profile's province")
    loaded = profile if isinstance(profile, Profile) else load_profile(profile)
    if province is not None and province != loaded.data["province"]:
        raise HaicapError(f"--province {province} does not match the profile's province {loaded.data['province']}")
    state_dir = Path(tempfile.mkdtemp(prefix="haicap-counterpart-"))
    try:
        config, listen, target = _profile_national_config(loaded, state_dir, seed)
        with embedded_provider().counterpart(config, listen,
                                             **({"national_workers": national_workers} if national_workers != 1
                                                else {})):
            yield target
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
