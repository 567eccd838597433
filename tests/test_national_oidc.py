"""The national identity provider: the code flow with PKCE, its error cases, and each ID-token defect."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from haicap.contract_registry import default_registry
from haicap.sandbox.config import OidcClient
from haicap.sandbox.national.testing import RunningNational

CCCD = "001090123456"


def _rp(national: RunningNational) -> OidcClient:
    return national.configs.national.clients[0]


def _authorize(client: httpx.Client, rp: OidcClient, **extra: str) -> tuple[str, dict[str, str]]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": "openid",
              "acr_values": "LoA1", "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
              "code_challenge": challenge, "code_challenge_method": "S256", "login_hint": CCCD, **extra}
    response = client.get("/authorize", params=params)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(rp.redirect_uri + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert query["state"] == params["state"]
    return query["code"], {**params, "code_verifier": verifier}


def _token(client: httpx.Client, rp: OidcClient, code: str, verifier: str, **extra: str) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": rp.redirect_uri,
            "client_id": rp.client_id, "client_secret": rp.client_secret, "code_verifier": verifier, **extra}
    return client.post("/token", data=form)


def _public_key(client: httpx.Client) -> Any:
    return jwt.PyJWK(client.get("/jwks").json()["keys"][0]).key


def _verify(client: httpx.Client, national: RunningNational, id_token: str) -> dict[str, Any]:
    return jwt.decode(id_token, _public_key(client), algorithms=["RS256"], audience=_rp(national).client_id,
                      issuer=national.url)  # type: ignore[no-any-return]


def test_discovery_and_jwks_follow_the_contract(client: httpx.Client, national: RunningNational) -> None:
    registry = default_registry()
    discovery = client.get("/.well-known/openid-configuration").json()
    assert registry.validator("idp.schema.json#/$defs/Discovery").violations(discovery) == []
    assert discovery["issuer"] == national.url
    assert "S256" in discovery["code_challenge_methods_supported"]
    assert registry.validator("idp.schema.json#/$defs/Jwks").violations(client.get("/jwks").json()) == []


def test_full_code_flow_with_pkce(client: httpx.Client, national: RunningNational) -> None:
    rp = _rp(national)
    code, params = _authorize(client, rp)
    response = _token(client, rp, code, params["code_verifier"])
    assert response.status_code == 200, response.text
    tokens = response.json()
    registry = default_registry()
    assert registry.validator("idp.schema.json#/$defs/TokenResponse").violations(tokens) == []
    claims = _verify(client, national, tokens["id_token"])
    assert claims["nonce"] == params["nonce"]
    assert claims["SoDinhDanh"] == CCCD and claims["acr"] == "LoA1"
    assert registry.validator("idp.schema.json#/$defs/IdTokenClaims").violations(claims) == []
    info = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200
    userinfo = info.json()
    assert registry.validator("idp.schema.json#/$defs/UserInfo").violations(userinfo) == []
    assert userinfo["sub"] == claims["sub"] and userinfo["NgayThangNamSinh"].startswith("1990")
    assert userinfo["GioiTinh"] == "1"  # 4th CCCD digit 0: male, born 1900s
    # the ledger gives checks the same identity without their knowing the counterpart's seed
    ledger = client.get(f"/_ledger/idp/citizens/{CCCD}", headers=national.control_headers())
    assert ledger.status_code == 200 and ledger.json() == userinfo


@pytest.mark.parametrize("cccd", ["001090", "999090012345", "0010900123456"])  # short; no province 999; long
def test_ledger_citizen_lookup_refuses_what_is_not_a_cccd(client: httpx.Client, national: RunningNational,
                                                           cccd: str) -> None:
    answer = client.get(f"/_ledger/idp/citizens/{cccd}", headers=national.control_headers())
    assert answer.status_code == 404 and answer.json()["errors"][0]["field"] == "SoDinhDanh"
    assert client.get(f"/_ledger/idp/citizens/{CCCD}").status_code == 401  # behind the control token


def test_wrong_code_verifier_fails_and_burns_the_code(client: httpx.Client, national: RunningNational) -> None:
    rp = _rp(national)
    code, params = _authorize(client, rp)
    wrong = _token(client, rp, code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_grant"
    assert "code_verifier" in wrong.json()["error_description"]
    again = _token(client, rp, code, params["code_verifier"])
    assert again.json()["error"] == "invalid_grant"


def test_reused_code_fails(client: httpx.Client, national: RunningNational) -> None:
    rp = _rp(national)
    code, params = _authorize(client, rp)
    assert _token(client, rp, code, params["code_verifier"]).status_code == 200
    reused = _token(client, rp, code, params["code_verifier"])
    assert reused.status_code == 400
    assert reused.json() == {"error": "invalid_grant", "error_description": "the authorization code was already used"}


def test_wrong_redirect_uri_fails(client: httpx.Client, national: RunningNational) -> None:
    rp = _rp(national)
    code, params = _authorize(client, rp)
    response = _token(client, rp, code, params["code_verifier"], redirect_uri=rp.redirect_uri + "/evil")
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    bad = client.get("/authorize", params={"response_type": "code", "client_id": rp.client_id, "scope": "openid",
                                           "redirect_uri": "http://127.0.0.1:9/evil", "login_hint": CCCD})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert bad.json()["errors"][0]["field"] == "redirect_uri"


def test_client_authentication_and_request_errors(client: httpx.Client, national: RunningNational) -> None:
    rp = _rp(national)
    code, params = _authorize(client, rp)
    bad_secret = _token(client, rp, code, params["code_verifier"], client_secret="nope")
    assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"
    assert client.post("/token", json={"grant_type": "authorization_code"}).json()["error"] == "invalid_request"
    basic = httpx.BasicAuth(rp.client_id, rp.client_secret)
    grant = client.post("/token", auth=basic, data={"grant_type": "password", "code": code})
    assert grant.json()["error"] == "unsupported_grant_type"
    scope = client.get("/authorize", params={"response_type": "code", "client_id": rp.client_id, "scope": "profile",
                                             "redirect_uri": rp.redirect_uri, "state": "s1", "login_hint": CCCD})
    assert scope.status_code == 302 and "error=invalid_scope" in scope.headers["location"]
    assert "state=s1" in scope.headers["location"]
    form = client.get("/authorize", params={"response_type": "code", "client_id": rp.client_id, "scope": "openid",
                                            "redirect_uri": rp.redirect_uri})
    assert form.status_code == 200 and "login_hint" in form.text
    hint = client.get("/authorize", params={"response_type": "code", "client_id": rp.client_id, "scope": "openid",
                                            "redirect_uri": rp.redirect_uri, "login_hint": "123"})
    assert hint.status_code == 400 and hint.json()["errors"][0]["field"] == "login_hint"
    assert client.get("/userinfo", headers={"Authorization": "Bearer nope"}).status_code == 401


EXPECTED_FAILURE: dict[str, type[Exception] | None] = {
    "bad-signature": jwt.InvalidSignatureError,
    "alg-none": jwt.InvalidAlgorithmError,
    "wrong-iss": jwt.InvalidIssuerError,
    "wrong-aud": jwt.InvalidAudienceError,
    "expired": jwt.ExpiredSignatureError,
    "iat-future": jwt.ImmatureSignatureError,
    "nonce-mismatch": None,  # signature and claims verify; only the nonce differs
}


@pytest.mark.parametrize("defect", sorted(EXPECTED_FAILURE))
def test_each_defect_is_rejected_for_its_reason(client: httpx.Client, national: RunningNational, defect: str) -> None:
    assert set(EXPECTED_FAILURE) | set(TOKEN_VARIATIONS) == set(
        default_registry().enum("idp.schema.json#/$defs/IdTokenDefect"))
    armed = client.post("/_control/idp/next-token", json={"defect": defect, "count": 1},
                        headers=national.control_headers())
    assert armed.status_code == 200 and armed.json()["pending"] == 1
    rp = _rp(national)
    code, params = _authorize(client, rp)
    bad_token = _token(client, rp, code, params["code_verifier"]).json()["id_token"]
    assert jwt.get_unverified_header(bad_token)["kid"] == client.get("/jwks").json()["keys"][0]["kid"]
    failure = EXPECTED_FAILURE[defect]
    if failure is None:
        assert _verify(client, national, bad_token)["nonce"] != params["nonce"]
    else:
        with pytest.raises(failure):
            _verify(client, national, bad_token)
    code, params = _authorize(client, rp)  # count=1: the next token is good again
    good = _verify(client, national, _token(client, rp, code, params["code_verifier"]).json()["id_token"])
    assert good["nonce"] == params["nonce"]
    events = client.get("/_ledger/idp/events", params={"kind": "token"}, headers=national.control_headers()).json()
    assert defect in [e["defect"] for e in events["items"]]


OTHER = "079201000123"


def _id_token_for(client: httpx.Client, rp: OidcClient, cccd: str) -> tuple[str, dict[str, str]]:
    code, params = _authorize(client, rp, login_hint=cccd)
    return _token(client, rp, code, params["code_verifier"]).json()["id_token"], params


def _last_token_event(client: httpx.Client, national: RunningNational, cccd: str) -> dict[str, Any]:
    events = client.get("/_ledger/idp/events", params={"kind": "token", "limit": 1000},
                        headers=national.control_headers()).json()["items"]
    return [e for e in events if e["SoDinhDanh"] == cccd][-1]  # type: ignore[no-any-return]


def test_targeted_defect_is_not_consumed_by_another_citizen(client: httpx.Client, national: RunningNational) -> None:
    rp = _rp(national)
    armed = client.post("/_control/idp/next-token", json={"defect": "wrong-iss", "login_hint": OTHER},
                        headers=national.control_headers())
    assert armed.status_code == 200, armed.text
    assert armed.json() == {"defect": "wrong-iss", "pending": 1, "login_hint": OTHER}
    for _ in range(2):  # another citizen signs in, twice: good tokens, the defect stays armed for OTHER
        token, params = _id_token_for(client, rp, CCCD)
        assert _verify(client, national, token)["nonce"] == params["nonce"]
        assert _last_token_event(client, national, CCCD)["defect"] is None
    token, _ = _id_token_for(client, rp, OTHER)
    with pytest.raises(jwt.InvalidIssuerError):
        _verify(client, national, token)
    event = _last_token_event(client, national, OTHER)
    assert event["defect"] == "wrong-iss" and "target=login_hint" in event["detail"]
    token, params = _id_token_for(client, rp, OTHER)  # count 1: consumed
    assert _verify(client, national, token)["SoDinhDanh"] == OTHER


def test_targeted_defect_goes_before_the_untargeted_queue(client: httpx.Client, national: RunningNational) -> None:
    rp = _rp(national)
    headers = national.control_headers()
    assert client.post("/_control/idp/next-token", json={"defect": "expired"}, headers=headers).json()["pending"] == 1
    targeted = client.post("/_control/idp/next-token", json={"defect": "wrong-aud", "count": 2, "login_hint": OTHER},
                           headers=headers)
    assert targeted.json()["pending"] == 2
    for _ in range(2):
        with pytest.raises(jwt.InvalidAudienceError):
            _verify(client, national, _id_token_for(client, rp, OTHER)[0])
    with pytest.raises(jwt.ExpiredSignatureError):  # OTHER's targeted defects are used up: the shared queue next
        _verify(client, national, _id_token_for(client, rp, OTHER)[0])
    assert _verify(client, national, _id_token_for(client, rp, CCCD)[0])["SoDinhDanh"] == CCCD


@pytest.mark.parametrize("hint", ["123", "003090123456", 79201000123])
def test_targeted_defect_needs_a_valid_cccd(client: httpx.Client, national: RunningNational, hint: object) -> None:
    response = client.post("/_control/idp/next-token", json={"defect": "alg-none", "login_hint": hint},
                           headers=national.control_headers())
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"][0]["field"] == "login_hint"


def test_unknown_defect_is_a_problem(client: httpx.Client, national: RunningNational) -> None:
    response = client.post("/_control/idp/next-token", json={"defect": "rot13"}, headers=national.control_headers())
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "defect"


def test_end_session(client: httpx.Client, national: RunningNational) -> None:
    rp = _rp(national)
    code, params = _authorize(client, rp)
    tokens = _token(client, rp, code, params["code_verifier"]).json()
    response = client.get("/end-session", params={"id_token_hint": tokens["id_token"], "state": "bye",
                                                  "post_logout_redirect_uri": rp.post_logout_redirect_uri})
    assert response.status_code == 302
    assert response.headers["location"] == rp.post_logout_redirect_uri + "?state=bye"
    assert client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code == 401
    evil = client.get("/end-session", params={"post_logout_redirect_uri": "http://127.0.0.1:9/evil"})
    assert evil.status_code == 400 and evil.json()["errors"][0]["field"] == "post_logout_redirect_uri"


# -- the defects and valid variations added for the OpenID RP token rules (SSO-13 … SSO-28) --------
def _arm(client: httpx.Client, national: RunningNational, defect: str, **extra: Any) -> httpx.Response:
    return client.post("/_control/idp/next-token", json={"defect": defect, "login_hint": OTHER, **extra},
                       headers=national.control_headers())


def _tokens_with(client: httpx.Client, national: RunningNational, defect: str,
                 **extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    armed = _arm(client, national, defect, **extra)
    assert armed.status_code == 200, armed.text
    code, params = _authorize(client, _rp(national), login_hint=OTHER)
    response = _token(client, _rp(national), code, params["code_verifier"])
    assert response.status_code == 200, response.text
    assert _last_token_event(client, national, OTHER)["defect"] == defect
    return response.json(), params


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return jwt.get_unverified_header(token), jwt.decode(token, options={"verify_signature": False})


#: defect → what is true of the token response (header, claims, body, national client id, sent nonce).
TOKEN_VARIATIONS: dict[str, Any] = {
    **{f"no-{c}": (lambda h, c_, b, rp, n, c=c: c not in c_) for c in ("sub", "aud", "iat", "exp", "iss", "nonce")},
    "aud-without-client": lambda h, c, b, rp, n: len(c["aud"]) == 1 and rp not in c["aud"] and "azp" not in c,
    "aud-secondary-no-azp": lambda h, c, b, rp, n: c["aud"][0] == rp and len(c["aud"]) == 2 and "azp" not in c,
    "aud-secondary-foreign-azp": lambda h, c, b, rp, n: c["aud"][0] == rp and c["azp"] == c["aud"][1] != rp,
    "aud-array": lambda h, c, b, rp, n: c["aud"] == [rp],
    "alg-hs256-client-secret": lambda h, c, b, rp, n: h["alg"] == "HS256",
    "alg-hs256-public-key": lambda h, c, b, rp, n: h["alg"] == "HS256",
    "alg-rs384": lambda h, c, b, rp, n: h["alg"] == "RS384",
    "alg-ps256": lambda h, c, b, rp, n: h["alg"] == "PS256",
    "alg-es256-foreign-key": lambda h, c, b, rp, n: h["alg"] == "ES256",
    "iat-week-old": lambda h, c, b, rp, n: c["exp"] > time.time() and c["iat"] < time.time() - 6 * 86400,
    "exp-passed-by": lambda h, c, b, rp, n: abs(c["exp"] - (time.time() - 65)) < 5,
    "iat-ahead-by": lambda h, c, b, rp, n: abs(c["iat"] - (time.time() + 65)) < 5 and c["exp"] > c["iat"],
    "userinfo-sub-mismatch": lambda h, c, b, rp, n: c["nonce"] == n,
    "no-kid": lambda h, c, b, rp, n: "kid" not in h,
    "token-type-lowercase": lambda h, c, b, rp, n: b["token_type"] == "bearer",
    "no-expires-in": lambda h, c, b, rp, n: "expires_in" not in b and b["token_type"] == "Bearer",
    "rotated-key": lambda h, c, b, rp, n: h["kid"] not in {k["kid"] for k in b["_jwks_before"]["keys"]},
}


@pytest.mark.parametrize("defect", sorted(TOKEN_VARIATIONS))
def test_each_token_variation_is_what_it_says(client: httpx.Client, national: RunningNational, defect: str) -> None:
    extra = {"seconds": 65} if defect in ("exp-passed-by", "iat-ahead-by") else {}
    before = client.get("/jwks").json()
    body, params = _tokens_with(client, national, defect, **extra)
    header, claims = _unverified(body["id_token"])
    body["_jwks_before"] = before
    assert TOKEN_VARIATIONS[defect](header, claims, body, _rp(national).client_id, params["nonce"]), (header, claims)
    assert default_registry().validator("idp.schema.json#/$defs/TokenResponse").violations(
        {k: v for k, v in body.items() if not k.startswith("_")}) == []


def test_algorithm_confusion_tokens_verify_with_their_confused_keys(client: httpx.Client,
                                                                    national: RunningNational) -> None:
    rp = _rp(national)
    token = _tokens_with(client, national, "alg-hs256-client-secret")[0]["id_token"]
    assert jwt.decode(token, rp.client_secret, algorithms=["HS256"], audience=rp.client_id)["iss"] == national.url
    token = _tokens_with(client, national, "alg-rs384")[0]["id_token"]
    assert jwt.decode(token, _public_key(client), algorithms=["RS384"], audience=rp.client_id)["iss"] == national.url
    token = _tokens_with(client, national, "alg-hs256-public-key")[0]["id_token"]
    head, body, signature = token.split(".")
    pem = national.national.oidc.keys.public_pem
    expected = base64.urlsafe_b64encode(hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest())
    assert expected.rstrip(b"=").decode() == signature


def test_rotated_key_is_published_next_to_the_current_one(client: httpx.Client, national: RunningNational) -> None:
    before = client.get("/jwks").json()["keys"]
    token = _tokens_with(client, national, "rotated-key")[0]["id_token"]
    after = client.get("/jwks").json()
    kid = jwt.get_unverified_header(token)["kid"]
    kids = [k["kid"] for k in after["keys"]]
    assert before[0]["kid"] == kids[0] and kid in kids  # the current key stays first, the rotated one is added
    parsed = {}
    for jwk in after["keys"]:
        try:
            parsed[jwk["kid"]] = jwt.PyJWK(jwk).key
        except jwt.PyJWTError:
            continue
    assert len(parsed) == len(kids) - 1  # exactly one key cannot be parsed
    assert jwt.decode(token, parsed[kid], algorithms=["RS256"], audience=_rp(national).client_id)["sub"]
    assert default_registry().validator("idp.schema.json#/$defs/Jwks").violations(after) == []
    good, _ = _id_token_for(client, _rp(national), CCCD)  # other citizens: still the current key
    assert jwt.get_unverified_header(good)["kid"] == kids[0]
    assert _verify(client, national, good)["SoDinhDanh"] == CCCD


def test_userinfo_sub_mismatch_answers_another_sub(client: httpx.Client, national: RunningNational) -> None:
    body, _ = _tokens_with(client, national, "userinfo-sub-mismatch")
    sub = _verify(client, national, body["id_token"])["sub"]
    info = client.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert info["sub"] != sub and info["SoDinhDanh"] == OTHER
    events = client.get("/_ledger/idp/events", params={"kind": "userinfo", "limit": 1000},
                        headers=national.control_headers()).json()["items"]
    assert [e for e in events if e["SoDinhDanh"] == OTHER][-1]["defect"] == "userinfo-sub-mismatch"


def test_jwks_fetches_are_in_the_ledger(client: httpx.Client, national: RunningNational) -> None:
    def total() -> int:
        return int(client.get("/_ledger/idp/events", params={"kind": "jwks", "limit": 1},
                              headers=national.control_headers()).json()["total"])

    first = total()
    client.get("/jwks")
    client.get("/jwks")
    assert total() == first + 2


@pytest.mark.parametrize(("body", "field"), [
    ({"defect": "exp-passed-by"}, "seconds"),
    ({"defect": "iat-ahead-by", "seconds": 0}, "seconds"),
    ({"defect": "no-sub", "seconds": 5}, "(body)"),
])
def test_seconds_goes_with_the_clock_defects_only(client: httpx.Client, national: RunningNational,
                                                  body: dict[str, Any], field: str) -> None:
    response = client.post("/_control/idp/next-token", json=body, headers=national.control_headers())
    assert response.status_code == 400, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
