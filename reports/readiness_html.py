"""The readiness report: one self-contained HTML page a province can hand in.

It opens with **what to fix** (reports/what_to_fix.py: the failed checks grouped by root cause, in Vietnamese with
English beside), then, for ``certify --since``, the delta (what changed since the bundle, why each check was re-run
or carried), then a verdict per readiness criterion, in the columns of the national checklist, then every check with its
rule, outcome, and for a failure what was expected, what came back and how to reproduce it. No external
assets (CSS inline, no scripts), every value HTML-escaped. Every time is shown in Asia/Ho_Chi_Minh with UTC beside.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from haicap.conformance.registry import CRITERIA
from haicap.criteria import ALL_CAPABILITIES
from haicap.reports.what_to_fix import CRITERIA_VI, KIND, SEVERITY_VI, VERDICT_VI, FixGroup, fix_groups
from haicap.vn_time import display_vn_utc

__all__ = ["render_readiness_html"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1d232a}
h1{margin-bottom:.2rem} .muted{color:#5c6670} table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border-bottom:1px solid #dde2e6;padding:.45rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f6f8} .v{font-weight:600;border-radius:4px;padding:.15rem .5rem;white-space:nowrap}
.ready,.passed{background:#dff3e4;color:#135e2a} .not-ready,.failed{background:#fbe0df;color:#8a1c17}
.not-tested,.skipped{background:#eef0f2;color:#4a525a} .could-not-run,.error{background:#fff1d6;color:#7a4d00}
.incomplete{background:#fff1d6;color:#7a4d00}
pre{background:#f6f8fa;padding:.5rem;overflow-x:auto;white-space:pre-wrap;margin:.3rem 0}
details summary{cursor:pointer} td code{white-space:nowrap}
.fix{border:1px solid #dde2e6;border-left:5px solid #8a1c17;border-radius:4px;padding:.6rem .9rem;margin:.7rem 0}
.fix.error{border-left-color:#b07800;background:none;color:inherit} .fix.preflight{border-left-color:#8a1c17}
.fix h3{margin:.1rem 0 .3rem;font-size:1.05rem} .fix ul{margin:.3rem 0 .2rem 1.2rem;padding:0}
.en{color:#5c6670} .cause{font-family:ui-monospace,monospace;background:#f6f8fa;padding:.1rem .3rem}
.carried{background:#e8eefc;color:#23408e;font-weight:400}
"""


def _cls(text: str) -> str:
    return text.replace(" ", "-")


def _pre(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2)
    return f"<pre>{escape(text)}</pre>"


def _verdict(value: str) -> str:
    """A verdict or outcome badge: Vietnamese, the English word beside it."""
    vi = VERDICT_VI.get(value)
    text = f"<span lang='vi'>{escape(vi)}</span> <span class='en'>/ {escape(value)}</span>" if vi else escape(value)
    return f"<span class='v {_cls(value)}'>{text}</span>"


def _bilingual(criterion: str, english: str) -> str:
    vi = CRITERIA_VI.get(criterion)
    return f"<span lang='vi'>{escape(vi)}</span> <span class='en'>/ {escape(english)}</span>" if vi else escape(english)


def _when(value: Any) -> str:
    return escape(display_vn_utc(value))


def _interrupted(results: dict[str, Any]) -> str:
    stop = results.get("interrupted")
    if not stop:
        return ""
    not_run = ", ".join(stop["not_run"]) or "none"
    return (f"<p class='fix error'><b>Interrupted / Bị dừng</b> at {_when(stop['at'])}: {stop['judged']} of "
            f"{stop['selected']} selected checks were judged; this report is incomplete. Not run: "
            f"{escape(not_run)}.</p>")


def _reruns(results: dict[str, Any]) -> str:
    items = [f"<li>{_when(r['started'])}: re-ran {escape(', '.join(r['checks']) or 'nothing')}"
             + (f" (sandbox faults: {escape(', '.join(r['faults']))})" if r["faults"] else "") + "</li>"
             for r in results.get("reruns", [])]
    return f"<p class='muted'>Re-runs merged into this report:</p><ul class='muted'>{''.join(items)}</ul>" \
        if items else ""


def _scope(target: dict[str, Any]) -> list[str]:
    """What the profile left out of the run, so a reader sees what was not tested: the communes it restricts
    submission to (``covered/official``) and the capabilities it does not declare (checks needing them skip)."""
    parts: list[str] = []
    communes = target.get("communes")
    if isinstance(communes, dict) and communes.get("restricted"):
        parts.append(f"communes: {escape(str(communes.get('covered')))}/{escape(str(communes.get('official')))} "
                     "(restricted by the profile)")
    declared = target.get("capabilities")
    if isinstance(declared, list):
        missing = sorted(ALL_CAPABILITIES - set(declared))
        if missing:
            parts.append("not declared: " + escape(", ".join(missing)))
    return parts


def _rule_html(check: dict[str, Any]) -> str:
    """The rule, each part linked to the document it resolves to: a public URL (RFC, OpenID), or the file of the
    installed haicap (contracts/…, the criterion's rules page contracts/rules/<criterion>.md)."""
    from haicap.conformance.registry import contracts_root, resolve_rule

    out = []
    for part in resolve_rule(check.get("rule", ""), check.get("criterion", "")):
        text = escape(part.text)
        if part.kind == "url":
            out.append(f"<a href='{escape(part.target)}'>{text}</a>")
        elif part.kind in ("contract", "rules"):
            path, _, anchor = part.target.partition("#")
            local = (contracts_root() / path.removeprefix("contracts/")).as_uri() + (f"#{anchor}" if anchor else "")
            out.append(f"<a href='{escape(local)}' title='{escape(part.target)}'>{text}</a>")
        else:
            out.append(text)
    return "; ".join(out)


def _preflight(results: dict[str, Any]) -> str:
    """The wiring probes: a failed pre-flight is the report's headline (no check ran), a passed one a line."""
    preflight = results.get("preflight")
    if not preflight:
        return ""
    rows = "".join(
        f"<tr><td>{escape(p['name'])}</td><td><span class='v {_cls(p['status'])}'>{escape(p['status'])}</span></td>"
        f"<td>{'<code>' + escape(p['field']) + '</code>: ' if p.get('field') else ''}{escape(p['message'])}</td></tr>"
        for p in preflight["probes"])
    if preflight["ok"]:
        late = any(p["status"] == "failed" for p in preflight["probes"])
        summary = f"Pre-flight of the wiring: passed in {preflight['seconds']:.1f}s" + \
            ("; after the run, the wiring explains some outcomes" if late else "")
        return (f"<details{' open' if late else ''}><summary>{summary}</summary>"
                f"<table><tr><th>Probe</th><th>Outcome</th><th>What it saw</th></tr>{rows}</table></details>")
    return (f"<h2>Pre-flight failed: no check was run</h2><p>The province is not wired to this counterpart as the "
            f"profile says; fix the field named below (or the province's configuration) and run again.</p>"
            f"<table><tr><th>Probe</th><th>Outcome</th><th>What it saw</th></tr>{rows}</table>")


def _fix_entry(number: int, group: FixGroup) -> str:
    vi, en = KIND[group.kind]
    if group.kind == "preflight":
        title = (f"<span lang='vi'>{escape(vi)}: trường <code>{escape(group.field_name or group.key)}</code></span>"
                 f" <span class='en'>/ {escape(en)}: field <code>{escape(group.field_name or group.key)}</code></span>")
        return (f"<li class='fix preflight'><h3>{number}. {title}</h3><p>Nguyên nhân / Cause: "
                f"<span class='cause'>{escape(group.cause)}</span></p></li>")
    n = len(group.checks)
    sev = group.severity
    count_vi = f"{n} kiểm tra cùng một nguyên nhân" if n > 1 else "1 kiểm tra"
    count_en = f"one cause, {n} checks" if n > 1 else "1 check"
    said = f" <span class='muted'>(as {escape(group.checks[0]['id'])} put it)</span>" if n > 1 else ""
    title = (f"<span lang='vi'>{escape(vi)} · mức {escape(SEVERITY_VI.get(sev, sev))} — {count_vi}</span> "
             f"<span class='en'>/ {escape(en)} · {escape(sev)} — {count_en}</span>")
    items = "".join(
        f"<li><a href='#check-{escape(c['id'])}'><code>{escape(c['id'])}</code></a> {escape(c['title'])} "
        f"<span class='muted'>· {escape(c['severity'])} · "
        f"{_bilingual(c['criterion'], CRITERIA.get(c['criterion'], c['criterion']))}</span></li>" for c in group.checks)
    return (f"<li class='fix {escape(group.kind)}'><h3>{number}. {title}</h3>"
            f"<p>{'Nguyên nhân chung / Common cause' if n > 1 else 'Nguyên nhân / Cause'}: "
            f"<span class='cause'>{escape(group.cause)}</span>{said}</p>"
            f"<ul>{items}</ul></li>")


def _what_to_fix(results: dict[str, Any]) -> str:
    """The report's first section: one entry per root cause (reports/what_to_fix.py), Vietnamese and English."""
    groups = fix_groups(results)
    head = "<h2 id='what-to-fix'><span lang='vi'>Cần khắc phục</span> <span class='en'>/ What to fix</span></h2>"
    if not groups:
        return (f"<section>{head}<p><span lang='vi'>Không có kiểm tra nào vi phạm quy tắc hoặc không chạy được."
                "</span> <span class='en'>/ No check failed or reached no verdict.</span></p></section>")
    checks = sum(len(g.checks) for g in groups)
    intro = (f"<p><span lang='vi'>{len(groups)} nguyên nhân, {checks} kiểm tra, xếp theo mức độ: sửa từ trên xuống."
             f"</span> <span class='en'>/ {len(groups)} cause(s) behind {checks} check(s), most severe first: fix "
             "from the top. Checks are grouped when their failure messages open with the same clause (identifiers "
             "and numbers aside).</span></p><p class='muted'><span lang='vi'>Bằng chứng của từng kiểm tra (kỳ vọng, "
             "nhận được, cách tái hiện): bấm vào mã kiểm tra.</span> <span class='en'>/ Each check's evidence "
             "(expected, received, how to reproduce): follow its id.</span></p>")
    entries = "".join(_fix_entry(i, g) for i, g in enumerate(groups, 1))
    return f"<section>{head}{intro}<ol style='list-style:none;padding:0'>{entries}</ol></section>"


def _delta(results: dict[str, Any]) -> str:
    """certify --since: which bundle, what changed, and per check why it was re-run or carried."""
    delta = results.get("delta")
    if not delta:
        return ""
    since = delta["since"]
    changes = "".join(f"<li>{escape(c)}</li>" for c in delta["changes"]) or \
        "<li>nothing: haicap, the contracts, the checks' code and the profile are as in the bundle</li>"
    rows = "".join(
        f"<tr><td><code>{escape(cid)}</code></td><td>{'re-run' if item['rerun'] else 'carried'}</td>"
        f"<td>{escape('; '.join(item['reasons']))}</td></tr>" for cid, item in sorted(delta["checks"].items()))
    removed = f"<p class='muted'>No longer in haicap: {escape(', '.join(delta['removed']))}</p>" \
        if delta.get("removed") else ""
    return (f"<h2>Delta since bundle <span class='muted'>{escape(str(since.get('bundle')))}</span></h2>"
            f"<p>The bundle was created {_when(since.get('created'))}, signed by key {escape(str(since.get('signer')))}"
            f" (readiness then: {escape(str(since.get('readiness')))}). {len(delta['rerun'])} check(s) re-run, "
            f"{len(delta['carried'])} carried with their evidence from the bundle.</p><p>Changed since:</p>"
            f"<ul>{changes}</ul>{removed}<details><summary>Why each check was re-run or carried</summary><table>"
            f"<tr><th>Id</th><th>This run</th><th>Why</th></tr>{rows}</table></details>")


def _carried_note(results: dict[str, Any]) -> str:
    carried = sum(1 for c in results["checks"] if c.get("carried_from"))
    return f" ({carried} carried from the earlier bundle, not re-run: see the delta above)" if carried else ""


def render_readiness_html(results: dict[str, Any]) -> str:
    target = results["target"]
    summary = results["summary"]
    overall = summary["readiness"]
    rows = []
    for criterion, label in CRITERIA.items():
        verdict = results["verdicts"].get(criterion, "not tested")
        checks = [c for c in results["checks"] if c["criterion"] == criterion]
        passed = sum(c["status"] == "passed" for c in checks)
        count = f"{passed} / {len(checks)} passed" if checks else "not run in this run (--only)"
        rows.append(f"<tr><td>{_bilingual(criterion, label)}</td><td>{_verdict(verdict)}</td><td>{count}</td></tr>")
    details = []
    for c in results["checks"]:
        evidence = ""
        if c["status"] in {"failed", "error"}:
            parts = [f"<p>{escape(c.get('message', ''))}</p>"]
            if c.get("expected") is not None:
                parts.append("<b>Expected</b>" + _pre(c["expected"]))
            if c.get("actual") is not None:
                parts.append("<b>Received</b>" + _pre(c["actual"]))
            if c.get("reproduce"):
                parts.append("<b>Reproduce with</b>" + _pre(c["reproduce"]))
            evidence = f"<details open><summary>evidence</summary>{''.join(parts)}</details>"
        elif c["status"] == "skipped":
            evidence = f"<br><span class='muted'>{escape(c.get('message', ''))}</span>"
            if c.get("reproduce"):
                evidence += f"<details><summary>how to look</summary>{_pre(c['reproduce'])}</details>"
        elif c.get("message"):  # a passed check's summary of what it covered
            evidence = f"<br>{escape(c['message'])}"
        if c.get("carried_from"):
            evidence += (f"<br><span class='v carried'>carried from the bundle of {_when(c['carried_from'])}"
                         "</span>")
        details.append(
            f"<tr id='check-{escape(c['id'])}'><td><code>{escape(c['id'])}</code></td><td>{escape(c['title'])}<br>"
            f"<span class='muted'>{_rule_html(c)} · {escape(c['severity'])}</span>{evidence}</td>"
            f"<td>{_verdict(c['status'])}</td></tr>"
        )
    where = [escape(str(target.get("name", "")))]
    province = f"province {target.get('province', '')}"
    if province not in str(target.get("name", "")):
        where.append(f"tỉnh / {escape(province)}")
    where.append(escape(str(target.get("province_url", ""))))
    if target.get("embedded_sandbox"):
        where.append("sandbox faults: " + escape(", ".join(target.get("faults") or []) or "none"))
    where.extend(_scope(target))
    return f"""<!doctype html>
<html lang="vi"><head><meta charset="utf-8"><title>haicap readiness report — {escape(target.get('name', ''))}</title>
<style>{_CSS}</style></head><body>
<h1><span lang='vi'>Báo cáo mức độ sẵn sàng</span> <span class='en'>/ Readiness report</span> {_verdict(overall)}</h1>
<p class="muted">{' · '.join(where)}<br>
haicap {escape(results['haicap_version'])} · seed {results['seed']} · {_when(results['started'])} →
 {_when(results['finished'])}</p>
{_interrupted(results)}
{_what_to_fix(results)}
{_delta(results)}
{_reruns(results)}
{_preflight(results)}
<p>{summary['total']} checks: {summary['passed']} passed, {summary['failed']} failed, {summary['error']} could not run,
{summary['skipped']} skipped{_carried_note(results)}.</p>
<h2><span lang='vi'>Kết luận theo tiêu chí</span> <span class='en'>/ Verdict per criterion</span></h2>
<table><tr><th>Tiêu chí (bảng kiểm quốc gia) / Criterion (national checklist)</th><th>Kết luận / Verdict</th>
<th>Kiểm tra / Checks</th></tr>{''.join(rows)}</table>
<h2><span lang='vi'>Các kiểm tra</span> <span class='en'>/ Checks</span></h2>
<table><tr><th>Mã / Id</th><th>Kiểm tra / Check</th><th>Kết quả / Outcome</th></tr>{''.join(details)}</table>
</body></html>
"""
