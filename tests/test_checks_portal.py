"""Pure helpers of the portal checks (PORT-01..03), both sides: what counts as a landing on the national portal,
a procedure named, a submission or sign-in form, a refusal; the redirect walk (hops judged before they are
requested); the profile's portal section; too little evidence is an error, not a pass."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from haicap.conformance.checks.portal import (
    Page,
    Survey,
    Walk,
    Walker,
    _is_marker,
    _login_problems,
    judge_old_walk,
    judge_refusal,
    judge_variant,
    meta_refresh,
    names_procedure,
    national_problem,
    no_local_sign_in,
    no_local_submission,
    old_pages_redirect,
    on_host,
    password_fields,
    plain_http_variant,
    submission_forms,
    walk_variants,
)
from haicap.conformance.context import CheckContext
from haicap.conformance.registry import CheckError
from haicap.errors import HaicapError
from haicap.portal import OldPage, PortalSettings
from haicap.target import Target, _capabilities, back_office_settings, load_profile

NPSP = "https://dichvucong.gov.vn"
OLD = "https://dichvucong.hanoi.gov.vn"


# -- landing on the national portal ---------------------------------------------------------------
@pytest.mark.parametrize("url", [
    f"{NPSP}/p/home/dvc-tthc-thu-tuc-hanh-chinh-chi-tiet.html?ma_thu_tuc=1.001193",
    "https://DichVuCong.gov.vn/",  # host case
    "https://dichvucong.gov.vn:443/x",  # the default port spelled out
    "https://dichvucong.gov.vn./x",  # a fully qualified name
])
def test_landings_on_the_national_portal_are_accepted(url: str) -> None:
    assert national_problem(url, NPSP) is None


def test_an_upgrade_to_https_is_accepted_a_downgrade_is_not() -> None:
    assert national_problem("https://dichvucong.gov.vn/x", "http://dichvucong.gov.vn") is None
    assert "plain http" in str(national_problem("http://dichvucong.gov.vn/x", NPSP))
    assert national_problem("http://127.0.0.1:8710/x", "http://127.0.0.1:8710") is None  # the profile's scheme


@pytest.mark.parametrize("url", [
    "https://dichvucong.gov.vn.evil.example/x",  # a suffix
    "https://dvc.dichvucong.gov.vn/x",  # a subdomain is another host
    "https://dichvucong.gov.vn:8443/x",  # another port
    "https://dichvucong-moi.hanoi.gov.vn/x",
])
def test_any_other_host_is_not_the_national_portal(url: str) -> None:
    assert "is not the national portal" in str(national_problem(url, NPSP))


def test_a_profile_port_must_match() -> None:
    assert national_problem("http://127.0.0.1:8710/x", "http://127.0.0.1:8710") is None
    assert national_problem("http://127.0.0.1:8711/x", "http://127.0.0.1:8710") is not None


@pytest.mark.parametrize(("url", "named"), [
    (f"{NPSP}/p/home/chi-tiet.html?ma_thu_tuc=1.001193", True),
    (f"{NPSP}/thu-tuc/1.001193.000.00.00.H26", True),  # a local variant names the national code
    (f"{NPSP}/p/home/chi-tiet.html?ma_thu_tuc=1%2E001193", True),  # percent-encoded
    (f"{NPSP}/", False),  # the home page
    (f"{NPSP}/p/home/chi-tiet.html?ma_thu_tuc=1.0011934", False),  # another, longer code
    (f"{NPSP}/p/home/chi-tiet.html?ma_thu_tuc=21.001193", False),
])
def test_a_landing_names_the_procedure_as_a_whole_code(url: str, named: bool) -> None:
    assert names_procedure(url, "1.001193") is named


# -- forms -------------------------------------------------------------------------------------------
UPLOAD = '<form method="POST" action="/nop" enctype="multipart/form-data"><input name=a><input type=file name=f>'
SEARCH = '<form action="/tra-cuu"><input name="MaHoSo"><button>Tra cứu</button></form>'


def test_a_post_form_or_an_upload_is_a_submission_form() -> None:
    assert len(submission_forms(UPLOAD, f"{OLD}/thu-tuc/1", NPSP)) == 1  # never closed: still a form
    upload_by_get = '<form method=get action="/x"><input type="FILE" name=f></form>'
    assert len(submission_forms(upload_by_get, f"{OLD}/a", NPSP)) == 1
    assert "action=https://dichvucong.hanoi.gov.vn/nop" in submission_forms(UPLOAD, f"{OLD}/thu-tuc/1", NPSP)[0]


def test_a_search_form_a_form_to_the_national_portal_and_a_sign_in_form_are_not_submission_forms() -> None:
    to_national = f'<form method="post" action="{NPSP}/nop-ho-so"><input type=file name=f></form>'
    sign_in = '<form method="post"><input name=u><input type="password" name=p></form>'
    for html in (SEARCH, to_national, sign_in, "<p>Cổng đã đóng</p>", "<form<<>>"):
        assert submission_forms(html, f"{OLD}/tra-cuu", NPSP) == []


def test_password_fields_are_found_in_and_out_of_forms() -> None:
    assert password_fields('<form method=post><input type="PASSWORD" name=p></form><input type=password>') == 2
    assert password_fields('<input type="hidden" name="password"><input name="password">' + SEARCH) == 0
    assert password_fields("<input type=password" * 3) >= 0  # broken markup: no crash


@pytest.mark.parametrize(("content", "expected"), [
    ('0; url=https://dichvucong.gov.vn/x', (0.0, "https://dichvucong.gov.vn/x")),
    ("3;URL='https://dichvucong.gov.vn/y'", (3.0, "https://dichvucong.gov.vn/y")),
    ("5", None),  # a reload, not a redirect
    ("soon; url=/x", None),
])
def test_meta_refresh(content: str, expected: tuple[float, str] | None) -> None:
    assert meta_refresh(f'<meta http-equiv="Refresh" content="{content}">') == expected


# -- refusals of a closed endpoint ---------------------------------------------------------------------
def _national(url: str) -> bool:
    return url.startswith(NPSP + "/")


@pytest.mark.parametrize(("status", "location"), [
    (403, None), (404, None), (405, None), (410, None),
    (303, f"{NPSP}/p/home/nop.html?ma_thu_tuc=1.001193"), (308, f"{NPSP}/x"),
])
def test_refusals_that_are_accepted(status: int, location: str | None) -> None:
    assert judge_refusal(status, location, f"{OLD}/nop-ho-so", _national) is None


@pytest.mark.parametrize(("status", "location", "says"), [
    (200, None, "answered HTTP 200: the submission was taken"),
    (201, None, "answered HTTP 201"),
    (303, "/tra-cuu?MaHoSo=1", "redirecting back onto the old portal"),
    (302, "https://dichvucong-moi.hanoi.gov.vn/x", "redirecting to dichvucong-moi.hanoi.gov.vn"),
    (302, None, "without a Location"),
    (401, None, "asks for its own sign-in"),
    (422, None, "validates the form"),
    (400, None, "validates the form"),
    (500, None, "an error, not a refusal"),
    (503, None, "an error, not a refusal"),
    (409, None, "answered HTTP 409: not a refusal"),
])
def test_answers_that_are_not_refusals_say_what_came_back(status: int, location: str | None, says: str) -> None:
    assert says in str(judge_refusal(status, location, f"{OLD}/nop-ho-so", _national))


# -- the walk ----------------------------------------------------------------------------------------
class ScriptedPort:
    """Answers GETs from a table {url: (status, headers, body)}; records every URL requested."""

    def __init__(self, table: Mapping[str, tuple[int, dict[str, str], str]]) -> None:
        self.table = table
        self.requested: list[str] = []

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        self.requested.append(url)
        status, headers, body = self.table.get(url, (404, {}, "not found"))
        return httpx.Response(status, headers=headers, text=body)

    def close(self) -> None:
        pass


def _walk(table: Mapping[str, tuple[int, dict[str, str], str]], start: str, procedure: str | None = None,
          max_redirects: int = 5) -> tuple[str | None, ScriptedPort]:
    settings = PortalSettings(NPSP, (OldPage(start, procedure),), max_redirects=max_redirects)
    port = ScriptedPort(table)
    walker = Walker(settings, (), port=port)
    walk = walker.walk(start, lambda url: on_host(url, NPSP))
    return judge_old_walk(settings.old_urls[0], walk, NPSP), port


def test_an_upgrade_a_trailing_slash_and_a_relative_location_on_the_way_are_accepted() -> None:
    table = {
        "http://dichvucong.hanoi.gov.vn/thu-tuc/1.001193": (301, {"Location": f"{OLD}/thu-tuc/1.001193"}, ""),
        f"{OLD}/thu-tuc/1.001193": (301, {"Location": "1.001193/"}, ""),
        f"{OLD}/thu-tuc/1.001193/": (308, {"Location": f"{NPSP}/p/home/chi-tiet.html?ma_thu_tuc=1.001193"}, ""),
    }
    problem, port = _walk(table, "http://dichvucong.hanoi.gov.vn/thu-tuc/1.001193", "1.001193")
    assert problem is None
    assert not any(url.startswith(NPSP) for url in port.requested)  # the national portal is never requested


def test_a_meta_refresh_to_the_national_portal_is_a_redirect() -> None:
    page = f'<meta http-equiv="refresh" content="0; url={NPSP}/chi-tiet?ma_thu_tuc=1.001193">'
    assert _walk({f"{OLD}/a": (200, {}, page)}, f"{OLD}/a", "1.001193")[0] is None
    slow = page.replace('"0;', '"30;')
    assert "30 s meta refresh" in str(_walk({f"{OLD}/a": (200, {}, slow)}, f"{OLD}/a")[0])


def test_a_refresh_header_to_the_national_portal_is_a_redirect() -> None:
    table = {f"{OLD}/a": (200, {"Refresh": f"0; url={NPSP}/chi-tiet?ma_thu_tuc=1.001193"}, "<p>moved</p>")}
    assert _walk(table, f"{OLD}/a", "1.001193")[0] is None


def test_a_redirect_to_another_host_is_reported_and_not_followed() -> None:
    problem, port = _walk({f"{OLD}/a": (302, {"Location": "https://evil.example/a"}, "")}, f"{OLD}/a")
    assert "evil.example is not the national portal dichvucong.gov.vn (not followed)" in str(problem)
    assert port.requested == [f"{OLD}/a"]


@pytest.mark.parametrize(("table", "says"), [
    ({f"{OLD}/a": (200, {}, UPLOAD)}, "still serves a page (HTTP 200, 1 form(s))"),
    ({f"{OLD}/a": (404, {}, "")}, "answered HTTP 404 instead of redirecting"),
    ({f"{OLD}/a": (302, {}, "")}, "without a Location"),
    ({f"{OLD}/a": (302, {"Location": f"{OLD}/b"}, ""), f"{OLD}/b": (302, {"Location": f"{OLD}/a"}, "")},
     "a redirect loop"),
    ({f"{OLD}/a": (302, {"Location": f"{NPSP}/"}, "")}, "does not name procedure 1.001193"),
    ({f"{OLD}/a": (302, {"Location": "http://dichvucong.gov.vn/x?ma_thu_tuc=1.001193"}, "")}, "plain http"),
])
def test_walks_that_do_not_reach_the_procedure_on_the_national_portal(table: Any, says: str) -> None:
    assert says in str(_walk(table, f"{OLD}/a", "1.001193")[0])


def test_hops_are_bounded() -> None:
    table = {f"{OLD}/{i}": (302, {"Location": f"{OLD}/{i + 1}"}, "") for i in range(10)}
    problem, port = _walk(table, f"{OLD}/0", max_redirects=3)
    assert "more than 3 redirects" in str(problem) and len(port.requested) == 4


class UnreachableOnHttp(ScriptedPort):
    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if url.startswith("http://"):
            self.requested.append(url)
            from haicap.http_port import TargetUnreachable

            raise TargetUnreachable(f"GET {url}: ConnectError")
        return super().request(method, url, **kwargs)


def test_plain_http_variants_of_old_urls_are_judged_too() -> None:
    assert plain_http_variant(f"{OLD}/a?x=1") == "http://dichvucong.hanoi.gov.vn/a?x=1"
    assert plain_http_variant("https://x.example:8443/a") is None and plain_http_variant("http://x/a") is None
    pages = [OldPage(f"{OLD}/a", "1.001193"), OldPage(f"{OLD}/b", "1.001193")]
    settings = PortalSettings(NPSP, tuple(pages))
    good = f"{NPSP}/chi-tiet?ma_thu_tuc=1.001193"

    def judged(table: Any, port_type: type[ScriptedPort] = ScriptedPort) -> tuple[list[str | None], list[str]]:
        port = port_type(table)
        walks = walk_variants(Walker(settings, (), port=port), pages, lambda url: on_host(url, NPSP))
        return [judge_variant(p, w, NPSP) for p, w in walks], port.requested

    upgraded = {"http://dichvucong.hanoi.gov.vn/a": (301, {"Location": f"{OLD}/a"}, ""),
                f"{OLD}/a": (301, {"Location": good}, ""), "http://dichvucong.hanoi.gov.vn/b": (410, {}, "")}
    assert judged(upgraded)[0] == [None, None]  # an upgrade, then NPSP; gone
    verdicts, requested = judged({}, UnreachableOnHttp)
    assert verdicts == [] and requested == ["http://dichvucong.hanoi.gov.vn/a"]  # nothing listens: asked once
    old_app = {"http://dichvucong.hanoi.gov.vn/a": (200, {}, UPLOAD), "http://dichvucong.hanoi.gov.vn/b": (410, {}, "")}
    assert "still serves a page" in str(judged(old_app)[0][0])


def test_old_sign_in_urls_gone_or_a_notice_page_or_national_sign_on_are_accepted() -> None:
    ok = [Walk("a", landing=f"{NPSP}/login"), Walk("b", page=Page("b", 410, "gone"), problem="HTTP 410"),
          Walk("c", page=Page("c", 200, "<a href=x>Đăng nhập qua VNeID</a>"), problem="still serves a page"),
          Walk("d", unreachable="refused")]
    assert _login_problems(Survey([], [], ok)) == []
    wrong = [Walk("e", problem="redirects to https://evil.example/: not followed"),
             Walk("f", page=Page("f", 500, "oops"), problem="answered HTTP 500 instead of redirecting")]
    assert [p.split(":")[0] for p in _login_problems(Survey([], [], wrong))] == ["e", "f"]


# -- evidence ----------------------------------------------------------------------------------------
def test_old_urls_that_do_not_answer_are_an_error_naming_how_many() -> None:
    dead = "http://127.0.0.1:9"
    settings = PortalSettings(NPSP, (OldPage(f"{dead}/thu-tuc/1"), OldPage(f"{dead}/thu-tuc/2")))
    target = Target(name="t", province_code="01", agency_code="000.00.00.H26", province_url=dead,
                    national_url=dead, control_token="c", portal=settings)
    ctx = CheckContext(target)
    try:
        with pytest.raises(CheckError, match=r"observed 0 of 2 old portal URLs answered \(unreachable: "):
            old_pages_redirect(ctx)
    finally:
        ctx.close()


@pytest.mark.parametrize(("check", "says"), [
    (no_local_submission, "observed 0 of 1 old submission endpoints declared (profile portal.submission_urls)"),
    (no_local_sign_in, "observed 0 of 1 old sign-in URLs declared (profile portal.login_urls)"),
])
def test_without_the_endpoints_to_probe_the_check_cannot_run(check: Any, says: str) -> None:
    dead = "http://127.0.0.1:9"
    target = Target(name="t", province_code="01", agency_code="000.00.00.H26", province_url=dead,
                    national_url=dead, control_token="c", portal=PortalSettings(NPSP, (OldPage(f"{dead}/a"),)))
    ctx = CheckContext(target)
    try:
        with pytest.raises(CheckError, match=re.escape(says)):
            check(ctx)
    finally:
        ctx.close()


def test_the_probe_citizen_is_recognised_by_identity_or_marker_text_only() -> None:
    marker = {"SoDinhDanh": "001090000001", "TrichYeuHoSo": "haicap PORT-02 probe 000000001"}
    assert _is_marker({"DinhDanhCHS": [{"LoaiDinhDanh": "1", "SoDinhDanh": "001090000001"}]}, marker)
    assert _is_marker({"TrichYeuHoSo": "haicap PORT-02 probe 000000001"}, marker)
    for other in ({"DinhDanhCHS": [{"SoDinhDanh": "001090000002"}]}, {"DinhDanhCHS": "001090000001"}, [], None,
                  {"TrichYeuHoSo": "haicap PORT-02 probe"}):
        assert not _is_marker(other, marker)


# -- the profile's portal section ------------------------------------------------------------------------
def test_the_portal_capability_needs_its_section(profile_file: Callable[..., Path]) -> None:
    path = profile_file("capabilities: [sso, portal]\n")
    with pytest.raises(HaicapError) as raised:
        load_profile(path)
    assert str(raised.value).startswith(f"{path}:9: capabilities[1]: portal needs the portal section")


def test_without_a_portal_section_the_default_capabilities_leave_portal_out(profile_file: Callable[..., Path]) -> None:
    data = load_profile(profile_file("")).data
    assert "portal" not in _capabilities(data, back_office_settings(data))
    with_section = load_profile(profile_file(f"portal: {{national_portal: {NPSP}, old_urls: [{OLD}/a]}}\n"))
    assert "portal" in _capabilities(with_section.data, back_office_settings(with_section.data))


def test_portal_mistakes_are_one_line_with_file_line_and_field(profile_file: Callable[..., Path]) -> None:
    on_national = profile_file(f"portal:\n  national_portal: {NPSP}\n  old_urls:\n    - {OLD}/a\n"
                                     f"    - {{url: {NPSP}/b, procedure: '1.001193'}}\n")
    with pytest.raises(HaicapError) as raised:
        load_profile(on_national)
    assert str(raised.value).startswith(f"{on_national}:13: portal.old_urls[1]: {NPSP}/b is on the national portal")
    plain = profile_file(f"portal:\n  national_portal: {NPSP}\n  old_urls: [http://dichvucong.gov.vn/a]\n")
    with pytest.raises(HaicapError, match="is on the national portal"):
        load_profile(plain)  # the same host over http: still the national portal, never requested
    ported = profile_file("portal:\n  national_portal: http://127.0.0.1:8710\n"
                                "  old_urls: [http://127.0.0.1:9/portal/a]\n")
    assert load_profile(ported).data["portal"]["old_urls"] == ["http://127.0.0.1:9/portal/a"]  # another port
    with_path = profile_file(f"portal:\n  national_portal: {NPSP}/home\n  old_urls: [{OLD}/a]\n")
    with pytest.raises(HaicapError) as raised:
        load_profile(with_path)
    assert str(raised.value).startswith(f"{with_path}:10: portal.national_portal:")


def test_settings_round_trip_through_the_profile_form_and_the_target_file() -> None:
    settings = PortalSettings(NPSP, (OldPage(f"{OLD}/a", "1.001193"), OldPage(f"{OLD}/b")),
                              submission_urls=(f"{OLD}/nop",), login_urls=(f"{OLD}/dang-nhap",))
    assert PortalSettings.from_profile(settings.to_profile()) == settings
    import dataclasses

    assert PortalSettings.from_profile(dataclasses.asdict(settings)) == settings
    assert settings.old_hosts() == {"dichvucong.hanoi.gov.vn"}
