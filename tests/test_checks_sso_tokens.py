"""The OpenID RP token checks (SSO-13 … SSO-28): their tables, the clock-skew pair and their evidence."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from haicap.conformance.checks import sso_tokens
from haicap.conformance.checks.sso import ID_TOKEN_DEFECTS
from haicap.conformance.checks.sso_tokens import ACCEPT_RULES, REJECT_RULES, TOKEN_DEFECTS, skew_pair
from haicap.conformance.registry import CheckError, CheckFailure, all_checks
from haicap.contract_registry import default_registry
from haicap.sandbox.province.faults import FAULTS
from haicap.sandbox.province.id_token import CLOCK_LEEWAY
from haicap.target import Target

CHECKS = {c.id: c for c in all_checks()}


def test_every_counterpart_defect_is_armed_by_exactly_one_sso_check_table() -> None:
    enum = set(default_registry().enum("idp.schema.json#/$defs/IdTokenDefect"))
    old = {d for _, d, _, _, _ in ID_TOKEN_DEFECTS}
    assert old | TOKEN_DEFECTS == enum
    assert not old & TOKEN_DEFECTS


def test_the_checks_use_only_their_id_range_and_claim_existing_sso_faults() -> None:
    ids = [r.check_id for r in (*REJECT_RULES, *ACCEPT_RULES)] + ["SSO-27", "SSO-28"]
    assert sorted(ids) == [f"SSO-{n}" for n in range(13, 29)]
    for check_id in ids:
        spec = CHECKS[check_id]
        assert spec.criterion == "sso" and spec.detects and spec.requires == ("sso",)
        assert all(FAULTS[f].breaks == "sso" for f in spec.detects)
        assert "DOMAIN.md" not in spec.rule and ("RFC" in spec.rule or "OpenID" in spec.rule)


def test_every_new_sso_fault_is_claimed_by_one_of_these_checks() -> None:
    ids = list(FAULTS)
    mine = [f for f in ids[ids.index("accepts-missing-sub"):] if FAULTS[f].breaks == "sso"]
    claimed = {f for r in (*REJECT_RULES, *ACCEPT_RULES) for f in r.detects}
    claimed |= set(CHECKS["SSO-27"].detects) | set(CHECKS["SSO-28"].detects)
    assert set(mine) <= claimed and len(mine) == 22


@pytest.mark.parametrize(("skew", "pair"), [(60, (50, 65)), (120, (110, 125)), (10, (5, 15)), (2, (1, 7))])
def test_the_clock_skew_pair_brackets_the_declared_skew(skew: int, pair: tuple[int, int]) -> None:
    inside, beyond = skew_pair(skew)
    assert (inside, beyond) == pair
    assert 0 < inside < skew < beyond


def test_the_reference_leeway_is_the_default_declared_skew() -> None:
    assert Target.__dataclass_fields__["sso_clock_skew_seconds"].default == CLOCK_LEEWAY


class _Ctx:
    """Just enough of a CheckContext for the pure parts."""

    def __init__(self, skew: int = 60) -> None:
        self.target = Target(name="t", province_code="01", agency_code="000.00.00.H26", province_url="http://p",
                             national_url="http://n", control_token="x", sso_clock_skew_seconds=skew)


def test_clock_cases_take_their_seconds_from_the_profile() -> None:
    skew_rule = next(r for r in REJECT_RULES if r.check_id == "SSO-20")
    inside_rule = next(r for r in ACCEPT_RULES if r.check_id == "SSO-24")
    ctx: Any = _Ctx(skew=90)
    assert skew_rule.cases[0].armed_seconds(ctx) == 95
    assert [c.armed_seconds(ctx) for c in inside_rule.cases] == [80, 80]
    assert skew_rule.cases[0].describe(ctx) == "an ID token expired 95 s ago (declared skew 90 s)"
    assert all(c.armed_seconds(ctx) is None for r in REJECT_RULES if r.check_id != "SSO-20" for c in r.cases)


class _Response:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self._r = httpx.Response(status, json=body)
        self.status_code = status
        self.headers = self._r.headers
        self.text = self._r.text

    def json(self) -> Any:
        return self._r.json()


def _seen(defect: str, status: int, body: dict[str, Any]) -> Any:
    case = sso_tokens.TokenCase(defect, f"the {defect} case")
    return sso_tokens._Seen(case, "001090123456", _Response(status, body), case.what, None)  # type: ignore[arg-type]


def test_a_refused_valid_sign_in_is_named_with_the_province_reason() -> None:
    refused = _seen("aud-array", 401, {"title": "Sign-in refused", "detail": "id_token aud is not a string"})
    assert sso_tokens._session_works(refused) == (
        "refused the aud-array case: HTTP 401 {\"title\": \"Sign-in refused\", \"detail\": \"id_token aud is not a "
        "string\"}")
    empty = _seen("no-kid", 200, {"claims": {}})
    assert "no usable session" in (sso_tokens._session_works(empty) or "")
    good = _seen("no-kid", 200, {"access_token": "s" * 20, "token_type": "Bearer",
                                 "claims": {"SoDinhDanh": "001090123456", "HoVaTen": "A"}})
    assert sso_tokens._session_works(good) is None
    other = _seen("no-kid", 200, {"access_token": "s" * 20, "claims": {"SoDinhDanh": "079201000123", "HoVaTen": "A"}})
    assert "instead of 001090123456" in (sso_tokens._session_works(other) or "")


def test_evidence_lines_never_carry_the_session_token() -> None:
    good = _seen("no-kid", 200, {"access_token": "secret-session", "claims": {"SoDinhDanh": "001090123456"}})
    assert "secret-session" not in good.line() and "'no-kid' (citizen 001090123456): HTTP 200" in good.line()


def test_no_kid_refusal_with_several_national_keys_is_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    rule = next(r for r in ACCEPT_RULES if r.check_id == "SSO-23")

    def refused() -> str:
        raise CheckFailure("refused", actual="HTTP 401 several keys")

    monkeypatch.setattr(sso_tokens, "_national_jwks", lambda ctx: [{"kid": "a"}, {"kid": "b"}])
    with pytest.raises(CheckError, match="holds 2 keys"):
        sso_tokens._no_kid_premise(_Ctx(), rule, refused)  # type: ignore[arg-type]
    monkeypatch.setattr(sso_tokens, "_national_jwks", lambda ctx: [{"kid": "a"}])
    with pytest.raises(CheckFailure):
        sso_tokens._no_kid_premise(_Ctx(), rule, refused)  # type: ignore[arg-type]


@pytest.mark.parametrize(("line", "skew"), [("", 60), ("sso_clock_skew_seconds: 120\n", 120)])
def test_the_profile_declares_the_clock_skew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str,
                                             skew: int, profile_file: Callable[..., Path]) -> None:
    from haicap.target import _profile_national_config, load_profile

    monkeypatch.setenv("HAICAP_T_SECRET", "s3cret")
    path = profile_file(line, public_url="http://127.0.0.1:9")
    _config, _listen, target = _profile_national_config(load_profile(path), tmp_path)
    assert target.sso_clock_skew_seconds == skew and target.describe()["sso_clock_skew_seconds"] == skew


@pytest.mark.parametrize("value", ["1", "601", "30.5", "'60'"])
def test_the_declared_clock_skew_is_bounded(profile_file: Callable[..., Path], value: str) -> None:
    from haicap.errors import HaicapError
    from haicap.target import load_profile

    path = profile_file(f"sso_clock_skew_seconds: {value}\n")
    with pytest.raises(HaicapError, match="sso_clock_skew_seconds"):
        load_profile(path)


# -- the reference province's claim rules (sandbox/province/id_token.py): one decision per fault ----------
_NOW = 1_800_000_000.0
_GOOD = {"iss": "https://idp", "sub": "s-1", "aud": "province-01", "exp": _NOW + 600, "iat": _NOW, "nonce": "n-1"}


def _claims(**changes: Any) -> dict[str, Any]:
    return {k: v for k, v in {**_GOOD, **changes}.items() if v is not None}


def _refusal(claims: dict[str, Any], *faults: str) -> str | None:
    from haicap.sandbox.province.id_token import Refused, check_claims

    try:
        check_claims(claims, issuer="https://idp", client_id="province-01", nonce="n-1", faults=frozenset(faults),
                     now=_NOW)
    except Refused as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(("changes", "fault", "reason"), [
    ({"sub": None}, "accepts-missing-sub", "no sub"),
    ({"aud": None}, "accepts-missing-aud", "no aud"),
    ({"iat": None}, "accepts-missing-iat", "no numeric iat"),
    ({"exp": None}, "accepts-missing-exp", "no numeric exp"),
    ({"iss": None}, "accepts-missing-iss", "no iss"),
    ({"nonce": None}, "accepts-missing-nonce", "no nonce"),
    ({"aud": ["other"]}, "accepts-aud-list-without-client", "does not contain"),
    ({"aud": ["province-01", "x"]}, "skips-azp-check", "no azp"),
    ({"aud": ["province-01", "x"], "azp": "x"}, "skips-azp-check", "azp is not"),
    ({"iat": _NOW - 7 * 86400}, "accepts-stale-iat", "stale"),
    ({"exp": _NOW - 65, "iat": _NOW - 665}, "clock-skew-five-minutes", "expired 65 s ago"),
    ({"exp": _NOW - 65, "iat": _NOW - 665}, "accepts-expired-id-token", "expired"),
    ({"exp": True}, "accepts-missing-exp", "no numeric exp"),  # a boolean is no number (and not missing)
])
def test_each_must_reject_rule_is_one_fault_decision(changes: dict[str, Any], fault: str, reason: str) -> None:
    assert _refusal(_claims()) is None
    refused = _refusal(_claims(**changes))
    assert refused is not None and reason in refused
    if changes != {"exp": True}:
        assert _refusal(_claims(**changes), fault) is None


@pytest.mark.parametrize(("changes", "fault"), [
    ({"aud": ["province-01"]}, "rejects-aud-array"),
    ({"exp": _NOW - 50, "iat": _NOW - 650}, "no-clock-leeway"),
    ({"iat": _NOW + 50, "exp": _NOW + 650}, "no-clock-leeway"),
])
def test_each_must_accept_variation_is_refused_only_by_its_fault(changes: dict[str, Any], fault: str) -> None:
    assert _refusal(_claims(**changes)) is None
    assert _refusal(_claims(**changes), fault) is not None
