"""Pure helpers of the SSO checks: the authorization request inspection, URL handling and redaction."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

from haicap.conformance.checks.sso import (
    ID_TOKEN_DEFECTS,
    authorization_request_findings,
    describe_response,
    redact_url,
    split_url,
    with_query_param,
)
from haicap.conformance.registry import all_checks
from haicap.contract_registry import default_registry
from haicap.sandbox.province.faults import FAULTS

AUTHORIZE = "http://127.0.0.1:9000/authorize"
GOOD = {
    "response_type": "code",
    "client_id": "province-01",
    "redirect_uri": "http://127.0.0.1:9001/auth/callback",
    "scope": "openid",
    "acr_values": "LoA1",
    "state": "s" * 32,
    "nonce": "n" * 32,
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "code_challenge_method": "S256",
}


def request(**changes: str | None) -> str:
    params = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    return f"{AUTHORIZE}?{urlencode(params)}"


def test_a_well_formed_request_has_no_findings() -> None:
    assert authorization_request_findings(request(), AUTHORIZE) == []
    assert authorization_request_findings(request(scope="openid profile", acr_values="LoA1 LoA2"), AUTHORIZE) == []


@pytest.mark.parametrize(
    ("changes", "finding"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "code_challenge is missing (no PKCE)"),
        ({"code_challenge_method": "plain"}, "code_challenge_method is 'plain', expected 'S256'"),
        ({"code_challenge": "short"}, "is not a base64url SHA-256 digest"),
        ({"response_type": "token"}, "response_type is 'token', expected 'code'"),
        ({"scope": "profile"}, "does not contain openid"),
        ({"nonce": None}, "nonce is missing"),
        ({"state": ""}, "state is missing"),
        ({"redirect_uri": None}, "redirect_uri is missing"),
        ({"client_id": None}, "client_id is missing"),
        ({"acr_values": "LoA2"}, "does not request LoA1"),
    ],
)
def test_each_defect_of_the_request_is_named(changes: dict[str, str | None], finding: str) -> None:
    findings = authorization_request_findings(request(**changes), AUTHORIZE)
    assert len(findings) == len(changes), findings
    assert any(finding in f for f in findings), findings


def test_a_request_to_another_endpoint_is_named() -> None:
    findings = authorization_request_findings(request().replace("/authorize", "/login"), AUTHORIZE)
    assert findings == [f"redirects to http://127.0.0.1:9000/login, not the national authorization_endpoint "
                        f"{AUTHORIZE}"]


def test_split_and_rewrite_query_parameters() -> None:
    base, params = split_url("http://h/cb?code=abc&state=xyz&state=other")
    assert base == "http://h/cb" and params == {"code": "abc", "state": "xyz"}
    rewritten = with_query_param("http://h/cb?code=abc&state=xyz", "state", "forged-xyz")
    assert split_url(rewritten) == ("http://h/cb", {"code": "abc", "state": "forged-xyz"})
    assert split_url(with_query_param("http://h/cb", "state", "s"))[1] == {"state": "s"}


def test_codes_and_tokens_never_reach_a_message() -> None:
    url = "http://n/end-session?id_token_hint=eyJhbGciOi.secret.sig&post_logout_redirect_uri=http%3A%2F%2Fp&state=1"
    assert "eyJ" not in redact_url(url) and "id_token_hint=***" in redact_url(url)
    assert "code=***" in redact_url("http://p/auth/callback?code=abc123&state=s")
    session = httpx.Response(200, json={"access_token": "tok-123", "claims": {"SoDinhDanh": "001090123456"}})
    described = describe_response(session)
    assert "tok-123" not in described and described.startswith("HTTP 200 ") and "001090123456" in described
    redirect = httpx.Response(302, headers={"location": "http://p/auth/callback?code=abc123&state=s"})
    assert describe_response(redirect) == "HTTP 302 Location: http://p/auth/callback?code=***&state=s"
    assert describe_response(httpx.Response(500, text="x" * 1000)).endswith("x" * 300)
    assert describe_response(None) == "no response"


def test_one_check_per_id_token_defect_of_the_counterpart() -> None:
    defects = default_registry().enum("idp.schema.json#/$defs/IdTokenDefect")
    from haicap.conformance.checks.sso_tokens import TOKEN_DEFECTS  # SSO-13 … SSO-28 arm the rest

    assert {d for _, d, _, _, _ in ID_TOKEN_DEFECTS} | TOKEN_DEFECTS == set(defects)
    checks = {c.id: c for c in all_checks() if c.criterion == "sso"}
    for check_id, _defect, fault, _what, _rule in ID_TOKEN_DEFECTS:
        assert checks[check_id].detects == (fault,) and fault in FAULTS
    sso_faults = {f.id for f in FAULTS.values() if f.breaks == "sso"}
    assert sso_faults <= {fault for c in checks.values() for fault in c.detects}
