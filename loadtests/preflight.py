"""Before any load: read the credentials of a ``--target`` run, and prove the credentials work.

A wrong control token or a dead national URL used to surface only after the whole load ("integrity could not
be checked"), and a wrong officer token as an SLO breach of the system under test. Two cheap authenticated reads
settle both first: the national ledger with the control token (``GET N/_ledger/sync/dossiers?limit=1``, the read
the integrity check depends on) and the province's officer API with the officer token
(``GET P/officer/dossiers?limit=1``). A refusal is a one-line :class:`~haicap.errors.HaicapError` (exit 2) that
names the credential and where it came from, never its value. Other answers of the officer API are left to the
load to measure: they are the system under test's behaviour, not a configuration error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from haicap.errors import HaicapError

__all__ = ["CredentialNames", "Credentials", "check_url", "preflight", "read_credentials"]

#: field → (required, what a valid value is); extra fields (province_url, oidc_client_id ...) are allowed
CREDENTIAL_FIELDS: dict[str, tuple[bool, str]] = {
    "national_url": (True, "the national counterpart's base URL, e.g. http://127.0.0.1:8710"),
    "control_token": (True, "a non-empty string (the counterpart's control token)"),
    "officer_token": (False, "a non-empty string or null (the province's officer API token)"),
    "province": (False, "a province code such as \"01\""),
    "agency_code": (False, "the province's agency code"),
}


@dataclass(frozen=True)
class Credentials:
    """What a credentials.json (``haicap sandbox`` writes one) gives a ``--target`` run."""

    national_url: str
    control_token: str = field(repr=False)
    officer_token: str | None = field(default=None, repr=False)
    province: str | None = None
    agency_code: str | None = None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def read_credentials(path: Path) -> Credentials:
    """The credentials in ``path``; an error names the file, the field and what was expected."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HaicapError(f"--credentials {path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise HaicapError(f"--credentials {path}: not a credentials file (not UTF-8 text)") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        where = f"line {exc.lineno} column {exc.colno}: " if isinstance(exc, json.JSONDecodeError) else ""
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise HaicapError(f"{path}: not a credentials file: not JSON ({where}{msg})") from None
    if not isinstance(data, dict):
        raise HaicapError(f"{path}: not a credentials file: expected a JSON object with national_url, control_token "
                          f"and officer_token, got {_kind(data)}")
    for name, (required, expected) in CREDENTIAL_FIELDS.items():
        value = data.get(name)
        if value is None:
            if required:
                raise HaicapError(f"{path}: {name}: missing; expected {expected}")
            continue
        if not isinstance(value, str) or not value.strip():
            got = "an empty string" if isinstance(value, str) else _kind(value)
            raise HaicapError(f"{path}: {name}: expected {expected}, got {got}")
    check_url(data["national_url"], f"{path}: national_url")
    return Credentials(national_url=data["national_url"].rstrip("/"), control_token=data["control_token"],
                       officer_token=data.get("officer_token"), province=data.get("province"),
                       agency_code=data.get("agency_code"))


def check_url(url: str, what: str) -> None:
    """An http(s) URL with a host and, if it names one, a port 1..65535; else a one-line error about ``what``."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise HaicapError(f"{what}: {url!r} is not an http(s) URL")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise HaicapError(f"{what}: {url!r}: the port must be 1..65535")


@dataclass(frozen=True)
class CredentialNames:
    """How an error names each credential: where it came from (a file and field, the profile, the sandbox)."""

    national_url: str
    control_token: str
    officer_token: str

    @classmethod
    def of_file(cls, path: Path) -> CredentialNames:
        return cls(f"{path}: national_url", f"{path}: control_token", f"{path}: officer_token")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


def _get(url: str, token: str, timeout: float) -> httpx.Response:
    return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout, follow_redirects=False)


def check_ledger(national_url: str, control_token: str, names: CredentialNames, *, timeout: float = 5.0) -> None:
    """The national ledger answers a read with the control token (what the integrity check needs)."""
    url = f"{national_url.rstrip('/')}/_ledger/sync/dossiers?limit=1"
    try:
        response = _get(url, control_token, timeout)
    except httpx.HTTPError as exc:
        raise HaicapError(f"{names.national_url} {national_url}: the national counterpart is not reachable "
                          f"(GET {url}: {type(exc).__name__}: {_one_line(str(exc))})") from None
    if response.status_code in (401, 403):
        raise HaicapError(f"{names.control_token} was refused by the national ledger (GET {url}: HTTP "
                          f"{response.status_code}): it is not the control token of the counterpart at "
                          f"{national_url}")
    if not response.is_success:
        raise HaicapError(f"the national ledger at {national_url} ({names.national_url}) did not answer GET {url} "
                          f"(HTTP {response.status_code}): integrity could not be checked after the load")
    try:
        response.json()
    except ValueError:
        raise HaicapError(f"{names.national_url} {national_url}: GET {url} did not answer JSON: is it a haicap "
                          "national counterpart?") from None


def check_officer(province_url: str, officer_token: str, names: CredentialNames, *, timeout: float = 5.0) -> None:
    """The province's officer API accepts the officer token (only a 401/403 is a configuration error)."""
    url = f"{province_url.rstrip('/')}/officer/dossiers?limit=1"
    try:
        response = _get(url, officer_token, timeout)
    except httpx.HTTPError:
        return  # reachability of the province is checked (and reported) on its own
    if response.status_code in (401, 403):
        raise HaicapError(f"{names.officer_token} was refused by the province's officer API (GET {url}: HTTP "
                          f"{response.status_code}): fix the credential; the load would report it as failed "
                          "officer steps of the province")


def preflight(province_url: str, national_url: str, control_token: str, officer_token: str | None,
              names: CredentialNames, *, timeout: float = 5.0) -> None:
    """Both checks, ledger first; the officer check only when the run has an officer token."""
    check_ledger(national_url, control_token, names, timeout=timeout)
    if officer_token:
        check_officer(province_url, officer_token, names, timeout=timeout)
