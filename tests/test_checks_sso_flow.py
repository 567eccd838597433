"""Pure helpers of the SSO flow checks (off-site resolution, Referrer-Policy, token-in-URL search) and the
reference province's return_to rule, both sides: what must be refused and what must be accepted."""

from __future__ import annotations

import httpx
import pytest

from haicap.conformance.checks.sso_flow import (
    OPEN_REDIRECT_PAYLOADS,
    SAFE_REFERRER_POLICIES,
    destinations,
    follows_payload,
    issues_session,
    referrer_policy_of,
    resolves_off_site,
    token_in_urls,
    without_query_param,
)
from haicap.conformance.registry import all_checks
from haicap.contract_registry import default_registry
from haicap.sandbox.province.faults import FAULTS
from haicap.sandbox.province.sso import is_local_path

PAGE = "http://127.0.0.1:8720/auth/callback?code=c&state=s"
HOST = "127.0.0.1:8720"
OFF_SITE = [p.replace("{host}", HOST) for p in OPEN_REDIRECT_PAYLOADS]


@pytest.mark.parametrize("url", [
    "https://evil.example/", "//evil.example", "///evil.example", "/\\evil.example", "\\\\evil.example",
    "/\t/evil.example", " //evil.example", "https:evil.example", "javascript:alert(1)",
    "http://127.0.0.1:8720@evil.example/", "http://127.0.0.1:8720.evil.example/", "http://127.0.0.1:8721/",
    "https://127.0.0.1:8720/",
])
def test_off_site_as_a_browser_reads_it(url: str) -> None:
    assert resolves_off_site(url, PAGE)


@pytest.mark.parametrize("url", [
    "/", "/api/v1/dossiers?page=1", "dossiers", "/%2F%2Fevil.example", "%2F%2Fevil.example",
    "http://127.0.0.1:8720/x", "http:evil.example", "?next=//evil.example", "#frag",
])
def test_on_site(url: str) -> None:
    assert not resolves_off_site(url, PAGE)


@pytest.mark.parametrize("value", [*(p for p in OFF_SITE if p != "/%2F%2Fevil.example"), "", "relative", "/a b",
                                   "/a\\b", "/\x00", "/" + "a" * 2001])
def test_reference_return_to_refuses(value: str) -> None:
    assert not is_local_path(value)


@pytest.mark.parametrize("value", ["/", "/api/v1/dossiers?page=1&x=%2F", "/a/b#top", "/%2F%2Fevil.example"])
def test_reference_return_to_accepts(value: str) -> None:
    assert is_local_path(value)
    assert not resolves_off_site(value, PAGE)


def test_every_payload_a_local_path_accepts_stays_on_site() -> None:
    """The reference rule and the checks' judge agree: what the province keeps never leaves the site."""
    assert all(not resolves_off_site(p, PAGE) for p in OFF_SITE if is_local_path(p))


def test_referrer_policy_header_list_and_meta() -> None:
    assert referrer_policy_of(httpx.Response(200, headers={"Referrer-Policy": "unsafe-url, no-referrer"})) == \
        "no-referrer"
    assert referrer_policy_of(httpx.Response(200, headers={"Referrer-Policy": "no-referrer, bogus"})) == "no-referrer"
    assert referrer_policy_of(httpx.Response(200)) is None
    page = httpx.Response(200, headers={"Content-Type": "text/html"},
                          text='<html><head><meta name="referrer" content="same-origin"></head></html>')
    assert referrer_policy_of(page) == "same-origin"
    assert "unsafe-url" not in SAFE_REFERRER_POLICIES and "no-referrer-when-downgrade" not in SAFE_REFERRER_POLICIES


def test_token_in_urls_finds_headers_body_and_links_but_not_the_body_field() -> None:
    token = "tok123456789"
    clean = httpx.Response(200, json={"access_token": token, "return_to": "/x", "type": f"https://p/{token}"})
    assert token_in_urls(token, clean) == []
    leaky = httpx.Response(200, json={"access_token": token, "return_to": f"/x#access_token={token}"})
    assert token_in_urls(token, leaky) == ["body return_to"]
    redirect = httpx.Response(302, headers={"Location": f"/app?access_token={token}"})
    assert token_in_urls(token, redirect) == ["Location"]
    page = httpx.Response(200, headers={"Content-Type": "text/html"}, text=f'<a href="/next?t={token}">go</a>')
    assert token_in_urls(token, page) == ["body link"]
    assert ("Refresh", "/x") in destinations(httpx.Response(200, headers={"Refresh": "0; url=/x"}))


def test_issues_session_and_without_query_param() -> None:
    assert issues_session(httpx.Response(200, json={"access_token": "t"}))
    assert not issues_session(httpx.Response(401, json={"access_token": "t"}))
    assert not issues_session(httpx.Response(200, text="<p>sign-in failed</p>"))
    assert not issues_session(None)
    assert without_query_param("http://p/cb?code=1&state=2&iss=3", "state") == "http://p/cb?code=1&iss=3"


def test_flow_checks_cite_rules_and_claim_their_faults() -> None:
    flow = {c.id: c for c in all_checks() if c.id.startswith("SSO-") and 30 <= int(c.id[4:]) <= 45}
    assert len(flow) == 10
    claimed = {f for c in flow.values() for f in c.detects}
    assert claimed <= set(FAULTS)
    assert {"state-not-bound-to-browser", "open-redirect-after-login", "ignores-iss-parameter"} <= claimed
    assert all(c.rule and "DOMAIN.md" not in c.rule for c in flow.values())


def test_error_codes_come_from_the_contract() -> None:
    codes = default_registry().enum("idp.schema.json#/$defs/AuthorizationErrorCode")
    assert {"access_denied", "login_required", "temporarily_unavailable", "server_error"} <= set(codes)


def test_follows_payload_only_for_the_payload_host_or_script_urls() -> None:
    assert follows_payload("https://evil.example/", PAGE)
    assert follows_payload("/\\evil.example", PAGE)
    assert follows_payload("javascript:alert(1)", PAGE)
    assert not follows_payload("https://dichvucong.gov.vn/", PAGE)  # an unrelated link of the page
    assert not follows_payload("/%2F%2Fevil.example", PAGE)  # a path on the province's site


def test_counterpart_sends_iss_in_every_authorization_response_and_serves_an_inert_mixup_document() -> None:
    from urllib.parse import parse_qs, urlsplit

    from haicap.sandbox.runner import Sandbox

    with Sandbox.start(mode="thread") as sb, httpx.Client(timeout=15.0) as browser:
        issuer = sb.national_url
        assert httpx.get(issuer + "/.well-known/openid-configuration").json()[
            "authorization_response_iss_parameter_supported"] is True
        mixup = httpx.get(issuer + "/mixup/.well-known/openid-configuration").json()
        assert mixup["issuer"] == issuer != issuer + "/mixup"  # served under /mixup, naming another issuer
        login = browser.get(sb.province_url + "/auth/login", params={"login_hint": "001090000017"})
        authorize = browser.get(login.headers["location"])
        assert parse_qs(urlsplit(authorize.headers["location"]).query)["iss"] == [issuer]
        bad_scope = login.headers["location"].replace("scope=openid", "scope=profile")
        error = parse_qs(urlsplit(browser.get(bad_scope).headers["location"]).query)
        assert error["error"] == ["invalid_scope"] and error["iss"] == [issuer]
        # the reference province: the right iss signs in, with the relative return_to kept
        login = browser.get(sb.province_url + "/auth/login",
                            params={"login_hint": "001090000017", "return_to": "/a?b=1"})
        callback = browser.get(browser.get(login.headers["location"]).headers["location"])
        assert callback.status_code == 200 and callback.json()["return_to"] == "/a?b=1"
        assert callback.headers["referrer-policy"] == "no-referrer"


def test_refusal_evidence_names_what_happened() -> None:
    from haicap.conformance.checks.sso_flow import _referer_problem, _refusal_problem

    assert _refusal_problem(httpx.Response(200, json={"access_token": "t"})) == \
        "issued a session (HTTP 200 with access_token)"
    assert _refusal_problem(httpx.Response(500, text="boom")) == "crashed: HTTP 500"
    assert _refusal_problem(httpx.Response(302, headers={"Location": "/app?access_token=abc"})) == \
        "redirected with a token in the URL (/app?access_token=***)"
    assert _refusal_problem(httpx.Response(204)) == "answered HTTP 204 (expected a 4xx or an error page)"
    assert _refusal_problem(httpx.Response(401, json={"title": "Sign-in refused"})) is None
    assert _refusal_problem(httpx.Response(200, text="<p>Đăng nhập thất bại</p>")) is None  # an error page
    assert _refusal_problem(httpx.Response(303, headers={"Location": "/auth/error"})) is None

    assert _referer_problem(httpx.Response(200)) == "no Referrer-Policy on a page whose URL holds the code"
    assert _referer_problem(httpx.Response(200, headers={"Referrer-Policy": "unsafe-url"})) == \
        "Referrer-Policy 'unsafe-url' on a page whose URL holds the code"
    assert _referer_problem(httpx.Response(303, headers={"Location": "/home"})) is None  # the query is dropped
    assert _referer_problem(httpx.Response(302, headers={"Location": "/home?code=x"})) is not None


def test_sso30_without_a_mixup_instance_skips_and_says_how_to_get_a_verdict() -> None:
    import dataclasses

    from haicap.conformance.checks.sso_flow import refuses_discovery_issuer_mismatch
    from haicap.conformance.context import CheckContext
    from haicap.conformance.registry import CheckSkipped
    from haicap.target import open_target

    with open_target(None) as target:
        ctx = CheckContext(dataclasses.replace(target, embedded=False))  # as a profile's province without the key
        try:
            with pytest.raises(CheckSkipped) as raised:
                refuses_discovery_issuer_mismatch(ctx)
        finally:
            ctx.close()
    assert "configured against the issuer" in str(raised.value) and "profile" not in str(raised.value)
    assert "sso_mixup_province_url" in (raised.value.reproduce or "")


def test_sso30_on_a_dead_or_silent_mixup_instance_is_a_bounded_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unreachable is "could not run" (error), never failed; it is said within the context's one bounded probe,
    with the instance's URL, the profile field and what the instance should have been."""
    import dataclasses
    import socket
    import time

    import haicap.conformance.context as context_module
    from haicap.conformance.checks.sso_flow import refuses_discovery_issuer_mismatch
    from haicap.conformance.context import CheckContext
    from haicap.conformance.registry import CheckError
    from haicap.target import open_target

    monkeypatch.setattr(context_module, "PROBE_TIMEOUT_S", 1.0)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    silent = socket.socket()  # accepts connections into its backlog, never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    with open_target(None) as target:
        for url in (dead, f"http://127.0.0.1:{silent.getsockname()[1]}"):
            ctx = CheckContext(dataclasses.replace(target, embedded=False, sso_mixup_url=url))
            started = time.monotonic()
            try:
                with pytest.raises(CheckError) as raised:
                    refuses_discovery_issuer_mismatch(ctx)
            finally:
                ctx.close()
            assert time.monotonic() - started < 5.0, url
            message = str(raised.value)
            assert f"sso_mixup_province_url {url} is unreachable: GET {url}/health" in message, message
            assert f"configured against the issuer {target.national_url.rstrip('/')}/mixup" in message, message
            assert f"{url}/auth/login" in (raised.value.reproduce or "")
    silent.close()
    assert "no answer within 1 s" in message
