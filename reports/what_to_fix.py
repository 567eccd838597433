""""What to fix": the failed checks of a run grouped by root cause, for the reader who has to act on the report.

A province director needs a short list of things to fix, not 20 red rows: one broken single sign-on makes every
payment check fail too. The sandbox fault a check claims is no use for a real province, so the cause is derived
from the evidence itself, by one deterministic rule:

- the **cause** of a failed or errored check is the first clause of its message: the text before the first
  ``": "``, ``"; "``, ``" — "``, ``" ("`` or ``". "``;
- two checks share a cause when their clauses are equal once normalised: lower-cased, quoted values ('…', "…")
  and every word containing a digit (a MaHoSo, an HTTP status, a count) replaced by ``…``, spaces collapsed —
  so "officer accept on 000.00.01.H26-251202-0001 failed" and "officer accept on …-0002 failed" are one cause,
  and a field, endpoint or capability the clause names stays part of it;
- failures and errors (no verdict) are never merged with each other;
- a failed pre-flight is one entry per failed probe, keyed by the profile field it names;
- a failure waived by ``--waivers`` is accepted for now: it stays in the check list, not here.

Entries are ordered: failures before errors, then by the most severe check, then the most checks, then the first
check id. Each entry has a fixed Vietnamese phrase for its kind, severity and criteria beside the English; the
evidence (the province's own messages) is quoted as it is, never translated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CRITERIA_VI", "KIND", "SEVERITY_VI", "VERDICT_VI", "FixGroup", "cause_key", "first_clause", "fix_groups"]

#: The readiness criteria in Vietnamese (fixed phrases beside the English labels of haicap.criteria).
CRITERIA_VI: dict[str, str] = {
    "sso": "Đăng nhập một lần qua Cổng Dịch vụ công quốc gia",
    "submission": "Nộp hồ sơ trực tuyến tại mọi xã, phường, đặc khu",
    "sync": "Đồng bộ kết quả giải quyết hồ sơ lên Cổng Dịch vụ công quốc gia",
    "payment": "Thanh toán trực tuyến",
    "forwarding": "Tiếp nhận, xử lý hồ sơ chuyển từ Cổng Dịch vụ công quốc gia",
    "units": "Đơn vị hành chính và mã định danh cơ quan",
    "portal": "Đóng giao diện Cổng dịch vụ công của tỉnh",
    "fuzzing": "Tuân thủ đặc tả với dữ liệu đầu vào sinh tự động",
}
#: kind → (Vietnamese, English)
KIND: dict[str, tuple[str, str]] = {
    "preflight": ("Kết nối chưa đúng cấu hình — chưa kiểm tra được gì", "Wiring does not match the profile — "
                  "nothing was checked"),
    "failed": ("Vi phạm quy tắc", "A rule was broken"),
    "error": ("Không chạy được, chưa có kết luận", "Could not run, no verdict"),
}
#: verdicts and check outcomes in Vietnamese (shown before the English word)
VERDICT_VI: dict[str, str] = {
    "ready": "sẵn sàng", "ready with waiver": "sẵn sàng có miễn trừ", "not ready": "chưa sẵn sàng",
    "could not run": "không chạy được", "incomplete": "chưa đầy đủ", "not tested": "chưa kiểm tra",
    "passed": "đạt", "failed": "không đạt", "error": "không có kết luận", "skipped": "bỏ qua",
}
SEVERITY_VI: dict[str, str] = {"critical": "nghiêm trọng", "major": "quan trọng", "minor": "nhỏ"}
_SEVERITY_ORDER = {"critical": 0, "major": 1, "minor": 2}
_KIND_ORDER = {"preflight": 0, "failed": 1, "error": 2}
_BOUNDARY = re.compile(r": |; | — | \(|\. ")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|‘[^’]*’|“[^”]*”")
_DIGITS = re.compile(r"\S*\d\S*")


@dataclass
class FixGroup:
    """One thing to fix: its kind, the cause as the first check wrote it, and the checks it breaks."""

    kind: str
    key: str
    cause: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    field_name: str | None = None

    @property
    def severity(self) -> str:
        severities = [c.get("severity", "minor") for c in self.checks] or ["critical"]
        return min(severities, key=lambda s: _SEVERITY_ORDER.get(s, 3))

    def order(self) -> tuple[int, int, int, str]:
        first = self.checks[0]["id"] if self.checks else self.key
        return (_KIND_ORDER[self.kind], _SEVERITY_ORDER.get(self.severity, 3), -len(self.checks), first)


def first_clause(message: str) -> str:
    """The message up to its first clause boundary (see the module docstring), stripped."""
    text = " ".join(str(message).split())
    match = _BOUNDARY.search(text)
    return (text[:match.start()] if match else text).strip().rstrip(".") or "(no message)"


def cause_key(message: str) -> str:
    """The normalised first clause: checks with equal keys share a cause."""
    clause = _QUOTED.sub("…", first_clause(message).lower())
    return " ".join(_DIGITS.sub("…", clause).split())


def fix_groups(results: dict[str, Any]) -> list[FixGroup]:
    """The run's things to fix, in reading order (see the module docstring)."""
    groups: dict[tuple[str, str], FixGroup] = {}
    preflight = results.get("preflight") or {}
    if preflight.get("ok") is False:
        for probe in preflight.get("probes", []):
            if probe.get("status") == "failed":
                key = probe.get("field") or probe.get("name", "")
                groups.setdefault(("preflight", key), FixGroup("preflight", key, str(probe.get("message", "")),
                                                               field_name=probe.get("field")))
    for check in sorted(results.get("checks", []), key=lambda c: c["id"]):
        if check["status"] not in ("failed", "error") or (check["id"] in
                                                           ((results.get("waivers") or {}).get("applied") or [])):
            continue
        key = cause_key(check.get("message", ""))
        group = groups.setdefault((check["status"], key),
                                  FixGroup(check["status"], key, first_clause(check.get("message", ""))))
        group.checks.append(check)
    return sorted(groups.values(), key=FixGroup.order)
