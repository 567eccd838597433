"""Client of the provincial dossier API (contracts/province-dossier.openapi.yaml), as a citizen, an officer
and a browser following the single sign-on redirects.

Every call goes through an :class:`~haicap.http_port.HttpPort`, so the same client serves conformance
(httpx) and load (Locust). Officer actions go through the run's back office (:mod:`haicap.back_office`) when one
is set — the officer API, a guided operator or a vendor's plugin — so callers of :meth:`officer_action` need
not know which; :meth:`officer_api_action` is always the officer API itself (for probing refusals).

Calls return the raw response: judging it is the caller's job (a check expects a 401, a scenario step expects a
201). Only :meth:`ProvinceClient.login` interprets, because a session is
needed before anything else can be tested.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from haicap.errors import HaicapError
from haicap.http_port import HttpPort, HttpxPort, ResponseLike

__all__ = ["CitizenSession", "LoginFailed", "LoginHops", "ProvinceClient"]

API = "/api/v1"


class LoginFailed(HaicapError):
    """Single sign-on did not produce a province session; carries the hop that went wrong."""

    def __init__(self, message: str, response: ResponseLike | None = None) -> None:
        super().__init__(message)
        self.response = response


@dataclass(frozen=True)
class CitizenSession:
    cccd: str
    access_token: str = field(repr=False)
    claims: dict[str, Any]

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class LoginHops:
    """The three hops of a sign-on, kept for evidence: province login → national authorize → callback."""

    login: ResponseLike
    authorize_url: str | None = None
    authorize: ResponseLike | None = None
    callback_url: str | None = None
    callback: ResponseLike | None = None


def _location(response: ResponseLike) -> str | None:
    if response.status_code in {301, 302, 303, 307, 308}:
        return response.headers.get("location") or response.headers.get("Location")
    return None


class ProvinceClient:
    def __init__(
        self,
        base_url: str | None = None,
        *,
        port: HttpPort | None = None,
        officer_token: str | None = None,
        seed: int = 0,
        port_factory: Callable[[], HttpPort] | None = None,
        allowed_hosts: frozenset[str] = frozenset(),
    ) -> None:
        if port is None:
            if base_url is None:
                raise ValueError("give a base_url or a port")
            port = HttpxPort(base_url, allowed_hosts=allowed_hosts)
        self.port = port
        self.base_url = port.base_url
        self._officer_token = officer_token
        self.seed = seed
        self._port_factory = port_factory or (lambda: HttpxPort(self.base_url, allowed_hosts=allowed_hosts))
        self._owned: list[Any] = [port]
        #: where officer actions go (haicap.back_office.BackOffice); None: the officer API directly
        self.back_office: Any = None
        #: called with (MaHoSo, session) for every accepted submission (the back office follows its dossiers)
        self.on_submitted: Callable[[str, CitizenSession], None] | None = None

    def close(self) -> None:
        for port in self._owned:
            close = getattr(port, "close", None)
            if close:
                close()

    def __enter__(self) -> ProvinceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- single sign-on --------------------------------------------------------------------------
    def login_hops(
        self,
        cccd: str,
        *,
        port: HttpPort | None = None,
        tamper_callback: Callable[[str], str] | None = None,
        return_to: str | None = None,
    ) -> LoginHops:
        """Walk the code flow hop by hop like a browser; ``tamper_callback`` may rewrite the callback URL,
        ``return_to`` is sent to ``/auth/login`` (where to go after signing in)."""
        if port is None:
            port = self._port_factory()
            self._owned.append(port)
        query = {"login_hint": cccd} if return_to is None else {"login_hint": cccd, "return_to": return_to}
        login = port.request("GET", "/auth/login?" + urlencode(query), name="/auth/login")
        hops = LoginHops(login=login, authorize_url=_location(login))
        if hops.authorize_url is None:
            return hops
        hops.authorize = port.request("GET", hops.authorize_url, name="national /authorize")
        callback_url = _location(hops.authorize)
        if callback_url is None:
            return hops
        if tamper_callback is not None:
            callback_url = tamper_callback(callback_url)
        hops.callback_url = callback_url
        hops.callback = port.request("GET", callback_url, name="/auth/callback")
        return hops

    def login(self, cccd: str, *, port: HttpPort | None = None) -> CitizenSession:
        hops = self.login_hops(cccd, port=port)
        if hops.authorize_url is None:
            raise LoginFailed(f"GET /auth/login answered {hops.login.status_code}, expected a 302 to the national "
                              "authorize endpoint", hops.login)
        if hops.callback is None:
            status = hops.authorize.status_code if hops.authorize is not None else "nothing"
            raise LoginFailed(f"the national authorize endpoint answered {status}, expected a 302 to the callback",
                              hops.authorize)
        return self.session_from_callback(cccd, hops.callback)

    def logout(self, session: CitizenSession, *, name: str = "/auth/logout") -> ResponseLike:
        """Ask the province to end the session (a correct province redirects to the national end-session)."""
        return self.port.request("GET", "/auth/logout", headers=session.headers(), name=name)

    @staticmethod
    def session_from_callback(cccd: str, response: ResponseLike) -> CitizenSession:
        if response.status_code != 200:
            raise LoginFailed(f"GET /auth/callback answered {response.status_code}: {response.text[:200]}", response)
        try:
            body = response.json()
            return CitizenSession(cccd=cccd, access_token=body["access_token"], claims=body.get("claims") or {})
        except (ValueError, KeyError, TypeError):
            raise LoginFailed("GET /auth/callback did not return a session token", response) from None

    # -- citizen ---------------------------------------------------------------------------------
    def submit(self, session: CitizenSession, payload: Any, *, name: str = "submit dossier") -> ResponseLike:
        response = self.port.request("POST", f"{API}/dossiers", json=payload, headers=session.headers(), name=name)
        if self.on_submitted is not None and response.status_code == 201:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("MaHoSo"), str):
                self.on_submitted(body["MaHoSo"], session)
        return response

    def dossier(self, session: CitizenSession, ma_ho_so: str, *, name: str = "get dossier") -> ResponseLike:
        return self.port.request("GET", f"{API}/dossiers/{ma_ho_so}", headers=session.headers(), name=name)

    def dossiers(self, session: CitizenSession, *, name: str = "list dossiers") -> ResponseLike:
        return self.port.request("GET", f"{API}/dossiers", headers=session.headers(), name=name)

    def supplement(
        self, session: CitizenSession, ma_ho_so: str, body: Any, *, name: str = "supplement"
    ) -> ResponseLike:
        return self.port.request("POST", f"{API}/dossiers/{ma_ho_so}/supplement", json=body,
                                 headers=session.headers(), name=name)

    def withdraw(self, session: CitizenSession, ma_ho_so: str, body: Any, *, name: str = "withdraw") -> ResponseLike:
        return self.port.request("POST", f"{API}/dossiers/{ma_ho_so}/withdraw", json=body,
                                 headers=session.headers(), name=name)

    def start_payment(self, session: CitizenSession, ma_ho_so: str, body: Any | None = None, *,
                      name: str = "start payment") -> ResponseLike:
        return self.port.request("POST", f"{API}/dossiers/{ma_ho_so}/payments", json=body or {},
                                 headers=session.headers(), name=name)

    def payments(self, session: CitizenSession, ma_ho_so: str, *, name: str = "list payments") -> ResponseLike:
        return self.port.request("GET", f"{API}/dossiers/{ma_ho_so}/payments", headers=session.headers(), name=name)

    def pay(self, url_thanh_toan: str, result: str = "success", *, name: str = "national pay") -> ResponseLike:
        """Open the national payment URL as the citizen's browser and choose the outcome."""
        sep = "&" if "?" in url_thanh_toan else "?"
        return self.port.request("GET", f"{url_thanh_toan}{sep}result={result}", name=name)

    # -- public catalogue ------------------------------------------------------------------------
    def units(self) -> ResponseLike:
        return self.port.request("GET", f"{API}/units", name="units")

    def conversion_export(self, side: str) -> ResponseLike:
        """``before`` or ``after`` of the converted legacy data (JSONL), with the officer credential."""
        return self.port.request("GET", f"{API}/conversion-export/{side}", headers=self._officer_headers(),
                                 name=f"conversion export {side}")

    def procedures(self) -> ResponseLike:
        return self.port.request("GET", f"{API}/procedures", name="procedures")

    def health(self) -> ResponseLike:
        return self.port.request("GET", "/health", name="health")

    # -- officer ---------------------------------------------------------------------------------
    def _officer_headers(self) -> dict[str, str]:
        if not self._officer_token:
            raise HaicapError("no officer token: the profile does not declare the officer API")
        return {"Authorization": f"Bearer {self._officer_token}"}

    def officer_action(self, ma_ho_so: str, action: str, *, name: str | None = None, **extra: Any) -> ResponseLike:
        """An officer moves the dossier, through the back office when one is set (its answer as a response)."""
        if self.back_office is None:
            return self.officer_api_action(ma_ho_so, action, name=name, **extra)
        from haicap.back_office import officer_transitions

        move = officer_transitions().get(action)
        if move is None:
            raise HaicapError(f"{action!r} is not an officer action of the dossier contract")
        outcome = self.back_office.act(ma_ho_so, action, expect_from=move.sources, expect_to=move.target,
                                       fields=extra)
        return outcome.as_response()  # type: ignore[no-any-return]

    def officer_dossier(self, ma_ho_so: str) -> ResponseLike:
        """The dossier as the back office sees it (the officer API, or its citizen's view for an operator)."""
        if self.back_office is None:
            return self.officer_api_dossier(ma_ho_so)
        return self.back_office.dossier(ma_ho_so).as_response()  # type: ignore[no-any-return]

    def officer_api_action(self, ma_ho_so: str, action: str, *, name: str | None = None, **extra: Any
                           ) -> ResponseLike:
        """``POST /officer/dossiers/{MaHoSo}/actions`` of haicap's officer API contract, whatever the back office."""
        return self.port.request("POST", f"/officer/dossiers/{ma_ho_so}/actions", json={"action": action, **extra},
                                 headers=self._officer_headers(), name=name or f"officer {action}")

    def officer_api_dossier(self, ma_ho_so: str) -> ResponseLike:
        return self.port.request("GET", f"/officer/dossiers/{ma_ho_so}", headers=self._officer_headers(),
                                 name="officer get dossier")
