"""The readiness report opens with "what to fix": failed checks grouped by the first clause of their message
(identifiers aside), in Vietnamese with English beside, every time in +07:00 with UTC shown."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from haicap.reports.readiness_html import render_readiness_html
from haicap.reports.what_to_fix import cause_key, first_clause, fix_groups
from haicap.vn_time import display_vn_utc


def _check(cid: str, status: str, message: str, criterion: str = "payment", severity: str = "major") -> dict[str, Any]:
    return {"id": cid, "criterion": criterion, "severity": severity, "title": f"title of {cid}", "rule": "RFC 9110",
            "status": status, "message": message}


def _results(*checks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    counts = {s: sum(c["status"] == s for c in checks) for s in ("passed", "failed", "skipped", "error")}
    return {"haicap_version": "0.1.0", "seed": 0, "target": {"name": "Hà Nội", "province": "01",
                                                            "province_url": "http://p", "embedded_sandbox": False},
            "started": "2026-12-02T01:00:00+00:00", "finished": "2026-12-02T17:30:05+00:00", "checks": list(checks),
            "summary": {"total": len(checks), **counts, "ok": False, "readiness": "not ready"},
            "verdicts": {"payment": "not ready"}, **extra}


CHECKS = (
    _check("PAY-03", "failed", "single sign-on failed, so no dossier could be paid: HTTP 502 from /auth/callback"),
    _check("PAY-01", "failed", "single sign-on failed, so no dossier could be paid: token endpoint refused",
           severity="critical"),
    _check("PAY-04", "failed", "officer accept on 000.00.01.H26-251202-0001 failed: HTTP 500"),
    _check("PAY-05", "failed", "officer accept on 000.00.01.H26-251202-0002 failed (HTTP 409)"),
    _check("PAY-06", "error", "single sign-on failed, so no dossier could be paid: timeout"),
    _check("SSO-09", "failed", "an ID token with nonce 'abc' was accepted", criterion="sso", severity="critical"),
    _check("PAY-07", "passed", "ok"),
)


def test_first_clause_and_cause_key() -> None:
    assert first_clause("MaXa refused without naming MaXa: HTTP 422") == "MaXa refused without naming MaXa"
    assert first_clause("a valid submission was not accepted (HTTP 500)") == "a valid submission was not accepted"
    assert cause_key("officer accept on 000.00.01.H26-251202-0001 failed") == cause_key(
        "Officer accept on 000.00.01.H26-251202-0009 failed; more")
    assert cause_key("nonce 'abc' accepted") == cause_key("nonce 'xyz' accepted") != cause_key("state 'a' accepted")


def test_one_cause_breaking_several_checks_is_one_entry_in_a_stable_order() -> None:
    groups = fix_groups(_results(*CHECKS))
    assert [(g.kind, [c["id"] for c in g.checks]) for g in groups] == [
        ("failed", ["PAY-01", "PAY-03"]),  # critical, 2 checks
        ("failed", ["SSO-09"]),  # critical, 1 check
        ("failed", ["PAY-04", "PAY-05"]),  # major
        ("error", ["PAY-06"]),  # an error is never merged with the failures of the same cause
    ]
    assert groups[0].cause == "single sign-on failed, so no dossier could be paid"
    assert fix_groups(_results(*reversed(CHECKS))) == groups  # deterministic whatever the order of the records


def test_waived_failures_and_a_failed_preflight() -> None:
    waived = _results(*CHECKS, waivers={"applied": ["SSO-09"]})
    assert "SSO-09" not in {c["id"] for g in fix_groups(waived) for c in g.checks}
    preflight = {"ok": False, "seconds": 0.1, "probes": [
        {"name": "sso", "status": "failed", "field": "national.public_url", "message": "redirects elsewhere"},
        {"name": "province", "status": "passed", "message": "answers"}]}
    groups = fix_groups(_results(preflight=preflight))
    assert [(g.kind, g.key) for g in groups] == [("preflight", "national.public_url")]
    outline = _Outline()
    outline.feed(render_readiness_html(_results(preflight=preflight)))
    assert "Kết nối chưa đúng cấu hình" in outline.entries[0]["text"]
    assert "national.public_url" in outline.entries[0]["text"] and "redirects elsewhere" in outline.entries[0]["text"]


class _Outline(HTMLParser):
    """The headings in order, and the text of each "fix" entry with the check links it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.entries: list[dict[str, Any]] = []
        self._in: str | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "h2":
            self._in = "h2"
            self.headings.append("")
        if tag == "li" and "fix" in (a.get("class") or "").split():
            self.entries.append({"text": "", "links": []})
            self._depth = 1
        elif tag == "li" and self._depth:
            self._depth += 1
        if tag == "a" and self._depth and (a.get("href") or "").startswith("#check-"):
            self.entries[-1]["links"].append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in = None
        if tag == "li" and self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._in == "h2":
            self.headings[-1] += data
        if self._depth:
            self.entries[-1]["text"] += data


def test_the_report_opens_with_what_to_fix_and_shows_vietnam_and_utc_times() -> None:
    page = render_readiness_html(_results(*CHECKS))
    outline = _Outline()
    outline.feed(page)
    assert outline.headings[0] == "Cần khắc phục / What to fix"
    assert "Kết luận theo tiêu chí / Verdict per criterion" in outline.headings
    assert "Các kiểm tra / Checks" in outline.headings
    assert "Báo cáo mức độ sẵn sàng" in page and "chưa sẵn sàng</span> <span class='en'>/ not ready" in page
    first = outline.entries[0]
    assert first["links"] == ["#check-PAY-01", "#check-PAY-03"]
    assert "Vi phạm quy tắc" in first["text"] and "A rule was broken" in first["text"]
    assert "2 kiểm tra cùng một nguyên nhân" in first["text"] and "one cause, 2 checks" in first["text"]
    assert "Thanh toán trực tuyến" in first["text"] and "Online payment" in first["text"]
    for link in (link for entry in outline.entries for link in entry["links"]):
        assert f"id='{link[1:]}'" in page  # every listed check links to its row
    assert "2026-12-02 08:00:00 +07:00 (01:00:00 UTC)" in page
    assert "2026-12-03 00:30:05 +07:00 (2026-12-02 17:30:05 UTC)" in page
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", page)  # no bare ISO time is left


def test_nothing_to_fix_still_opens_the_report() -> None:
    page = render_readiness_html(_results(_check("PAY-07", "passed", "ok")))
    outline = _Outline()
    outline.feed(page)
    assert outline.headings[0] == "Cần khắc phục / What to fix" and outline.entries == []
    assert "No check failed or reached no verdict" in page


def test_display_vn_utc() -> None:
    assert display_vn_utc("2026-12-02T01:54:42+00:00") == "2026-12-02 08:54:42 +07:00 (01:54:42 UTC)"
    assert display_vn_utc("2026-12-02T10:00:00") == "2026-12-02 17:00:00 +07:00 (10:00:00 UTC)"
    assert display_vn_utc("not a time") == "not a time"
