"""What a profile may restrict and what it may not say: a counterpart port haicap could not reach (0, out of
range) and communes that are not the province's are one line naming file, line and field; a commune
restriction shows in the run's target description and keeps SUB-05 from passing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from haicap.conformance.checks.submission import commune_coverage
from haicap.conformance.context import CheckContext
from haicap.conformance.registry import CheckError
from haicap.data_generators.units import admin_units
from haicap.errors import HaicapError
from haicap.sandbox.runner import Sandbox
from haicap.target import Target, load_profile


@pytest.fixture
def profile(profile_file: Callable[..., Path]) -> Callable[..., Path]:
    """The minimal profile with a ``national.listen`` line (5), so ``extra`` starts on line 10."""

    def write(listen: str = "127.0.0.1:8710", extra: str = "") -> Path:
        return profile_file(extra, listen=listen)

    return write


@pytest.mark.parametrize(("listen", "why"), [
    ("127.0.0.1:0", "port 0 is not a fixed TCP port 1..65535 (0, a random port, cannot be"),
    ("127.0.0.1:99999", "port 99999 is not a fixed TCP port 1..65535"),
    ("127.0.0.1:65536", "port 65536 is not a fixed TCP port 1..65535"),
    ("10.0.0.5:8710", "the counterpart listens on loopback only"),
])
def test_a_listen_address_haicap_cannot_use_is_one_line_with_file_line_and_field(
        profile: Callable[..., Path], listen: str, why: str) -> None:
    path = profile(listen)
    with pytest.raises(HaicapError) as raised:
        load_profile(path)
    assert str(raised.value).startswith(f"{path}:5: national.listen: {why}")


def test_the_highest_port_and_the_default_are_fine(profile: Callable[..., Path]) -> None:
    assert load_profile(profile("127.0.0.1:65535")).data["national"]["listen"] == "127.0.0.1:65535"
    assert load_profile(profile("localhost:1")).data["province"] == "01"


def test_a_commune_the_province_does_not_have_is_named_with_its_line(profile: Callable[..., Path]) -> None:
    other = admin_units().communes("79")[0].code  # Hồ Chí Minh City's, not Hà Nội's
    path = profile(extra=f'communes: ["00004", "{other}"]\n')
    with pytest.raises(HaicapError) as raised:
        load_profile(path)
    assert str(raised.value).startswith(f"{path}:10: communes[1]: {other} is not a current commune")


def test_an_empty_or_repeated_commune_list_is_refused(profile: Callable[..., Path]) -> None:
    for extra in ("communes: []\n", 'communes: ["00004", "00004"]\n'):
        with pytest.raises(HaicapError, match=r":10: communes: "):
            load_profile(profile(extra=extra))


def _target(**changes: object) -> Target:
    base = Target(name="t", province_code="01", agency_code="000.00.00.H26", province_url="http://127.0.0.1:9",
                  national_url="http://127.0.0.1:9", control_token="x")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_describe_says_which_communes_the_run_covers() -> None:
    official = len(admin_units().communes("01"))
    assert _target().describe()["communes"] == {"restricted": False, "official": official, "covered": official}
    restricted = _target(communes=("00004",)).describe()["communes"]
    assert restricted == {"restricted": True, "official": official, "covered": 1, "codes": ["00004"],
                          "not_covered": official - 1}


def test_sub05_restricted_by_the_profile_is_not_a_pass(sandbox: Sandbox) -> None:
    cfg = sandbox.configs
    target = _target(province_url=sandbox.province_url, national_url=sandbox.national_url,
                     control_token=cfg.national.control_token, officer_token=cfg.province.officer_token,
                     communes=("00004",), embedded=True)
    ctx = CheckContext(target)
    try:
        with pytest.raises(CheckError) as raised:
            commune_coverage(ctx)
    finally:
        ctx.close()
    message = str(raised.value)
    official = len(admin_units().communes("01"))
    assert message.startswith("not a full pass: the profile's `communes` restricts coverage to 1 of the "
                              f"{official} official communes; {official - 1} not tested; all 1 accepted (00004 ")
    assert "remove `communes` from the profile" in message
