"""The national scoreboard: every province's signed bundle on one table, as the Government Office tracks them.

``haicap scoreboard DIR --out board/`` verifies every ``*.zip`` bundle in DIR (:func:`~haicap.reports.bundle.
verify_bundle`; with ``--keys KEYDIR`` each against ``KEYDIR/<province>.pub``), keeps each province's newest
verified bundle, and writes a self-contained ``board.html``, ``board.json`` and ``board.csv``: one row per
province (code, name, date, signer), one column per national criterion, each cell one of *ready*, *ready with
waiver*, *not ready*, *not tested*, *could not run*, *incomplete* or *stale* (the bundle is older than
``--max-age`` days, or was made against other contracts than these), and a totals row "x / 34" per column like
the 28-June checklist table. Each cell links to that province's report (``reports/<code>.html``, extracted from
its bundle). A bundle that does not verify is listed with its problems and counts for nothing.

A bundle carrying a load run's summary (``certify --load-summary``, member ``load-summary.json``, signed with the
rest) adds a load column (:func:`load_cell`): knee against the province's projected peak, headroom, lost dossiers;
"not tested" for a province without one. ``haicap scoreboard --demo`` (reports/scoreboard_demo.py) renders its
34 sandbox provinces through the same code with a :class:`View` of the 28-June columns.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from haicap.errors import HaicapError

__all__ = ["Row", "build_board", "write_board"]

READY = ("ready", "ready with waiver", "ready (quick set)")
#: A ``--demo --quick`` cell whose selected checks all passed (the criterion's other checks were not run).
QUICK_READY = "ready (quick set)"
#: The load column (present when any bundle carries a load run's summary).
LOAD, LOAD_LABEL = "load", "Load: knee against the projected peak, headroom, lost dossiers"


@dataclass
class Row:
    province: str
    name: str
    created: str
    signer: str
    cells: dict[str, str]
    report: str | None
    bundle: str
    notes: list[str] = field(default_factory=list)
    #: the load column's figures when the bundle carries a load summary (:func:`load_cell`)
    load: dict[str, Any] | None = None


def _province_name(code: str) -> str:
    from haicap.data_generators.units import admin_units

    try:
        return str(admin_units().province(code).name)
    except HaicapError:
        return "(unknown province)"


def _created(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _quick_cell(results: dict[str, Any], criterion: str, verdict: str) -> str:
    """``--demo --quick``: a criterion *incomplete* only because checks were not selected, every selected one
    passed, reads :data:`QUICK_READY`."""
    statuses = {c.get("status") for c in results.get("checks", []) if c.get("criterion") == criterion}
    return QUICK_READY if verdict == "incomplete" and statuses == {"passed"} else verdict


LOAD_MEMBER = "load-summary.json"


def _rate(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def load_cell(summary: Any, contracts: str) -> dict[str, Any]:
    """The load column of one province from its load run's ``summary.json``: ``{"status", "text", "knee",
    "knee_is_lower_bound", "peak", "needed", "headroom", "lost"}``.

    The projected peak is the province's (``--projection province=NN`` figures, ``capacity.peak.rate``); headroom
    is how far the knee lies above it. *ready*: the run passed, no dossier was lost, and the knee (or its lower
    bound) reaches the peak with the projection's margin (``capacity.peak.rate_with_headroom``); *not ready*: a
    dossier lost, the run failed, or the knee below that; *incomplete*: it passed but measured no knee (not a
    step run); *stale*: made against other contracts. The text names the figures whatever the status.
    """
    if not isinstance(summary, dict):
        return {"status": "could not run", "text": "the load summary is not a JSON object"}
    integrity = summary.get("integrity") if isinstance(summary.get("integrity"), dict) else {}
    province = integrity.get("province") if isinstance(integrity.get("province"), dict) else {}
    lost = int(_rate(integrity.get("missing_count")) or len(integrity.get("missing") or []))
    lost += int(_rate(province.get("lost_count")) or 0)
    capacity = summary.get("capacity") if isinstance(summary.get("capacity"), dict) else {}
    knee_doc = capacity.get("knee") if isinstance(capacity.get("knee"), dict) else {}
    knee = _rate(knee_doc.get("achieved_rate"))
    lower = bool(capacity.get("knee_is_lower_bound"))
    peak_doc = capacity.get("peak") if isinstance(capacity.get("peak"), dict) else {}
    peak, needed = _rate(peak_doc.get("rate")), _rate(peak_doc.get("rate_with_headroom"))
    unit = str(capacity.get("rate_unit") or "requests/s")
    headroom = (knee / peak - 1) if knee is not None and peak else None
    parts = []
    if knee is None:
        parts.append("no knee measured" + ("" if capacity else " (not a step run)"))
    else:
        parts.append(f"knee {'≥ ' if lower else ''}{knee:,.2f} {unit}")
    if peak is not None:
        parts.append(f"projected peak {peak:,.2f}" + (f" ({needed:,.2f} with the margin)" if needed else ""))
    if headroom is not None:
        parts.append(f"headroom {'≥ ' if lower else ''}{headroom:+.0%}")
    parts.append(f"{lost} dossier(s) lost")
    if summary.get("contracts_sha256") != contracts:
        status = "stale"
        parts.append("made against other contracts")
    elif lost or not summary.get("passed"):
        status = "not ready"
    elif knee is None or needed is None:
        status = "incomplete"
    else:
        status = "ready" if knee >= needed else "not ready"
    return {"status": status, "text": "; ".join(parts), "knee": knee, "knee_is_lower_bound": lower, "peak": peak,
            "needed": needed, "headroom": headroom, "lost": lost}


def _row(path: Path, members: dict[str, bytes], info: Any, criteria: list[str], now: dt.datetime,
         max_age_days: float, contracts: str, quick: bool = False) -> Row:
    results = json.loads(members["results.json"])
    versions = json.loads(members.get("versions.json", b"{}"))
    cells = {c: str(results.get("verdicts", {}).get(c, "not tested")) for c in criteria}
    if quick:
        cells = {c: _quick_cell(results, c, v) for c, v in cells.items()}
    notes: list[str] = []
    created = _created(info.created)
    stale_why = None
    if created is None or (now - created).total_seconds() > max_age_days * 86400:
        stale_why = f"older than {max_age_days:g} days" if created else "no creation time"
    elif versions.get("contracts_sha256") != contracts:
        stale_why = "made against other contracts"
    if stale_why:
        notes.append(f"stale: {stale_why}")
        cells = {c: ("stale" if v in READY else v) for c, v in cells.items()}
    load = None
    if LOAD_MEMBER in members:
        try:
            load = load_cell(json.loads(members[LOAD_MEMBER]), contracts)
        except ValueError:
            load = {"status": "could not run", "text": f"{LOAD_MEMBER} is not JSON"}
        if stale_why and load["status"] == "ready":
            load["status"] = "stale"
    cells[LOAD] = load["status"] if load else "not tested"
    code = str(info.province or (results.get("target") or {}).get("province") or "??")
    return Row(code, _province_name(code), info.created, info.key_id, cells, None, path.name, notes, load)


def build_board(folder: Path, *, keys: Path | None = None, max_age_days: float = 30.0,
                now: dt.datetime | None = None, include_sandbox: bool = False, columns: list[str] | None = None,
                quick: bool = False) -> tuple[list[Row], list[dict[str, Any]], dict[Path, bytes]]:
    """(rows, rejected bundles with their problems, report.html of each row's bundle by row province).

    ``columns``: the criteria shown (default every criterion of this haicap; one it does not know reads *not
    tested*); ``quick``: the bundles come from ``--demo --quick`` runs (see :func:`_quick_cell`)."""
    from haicap.conformance.registry import CRITERIA
    from haicap.contract_registry import contracts_digest
    from haicap.reports.bundle import load_public_key, verify_bundle

    if not folder.is_dir():
        raise HaicapError(f"{folder}: not a folder of bundles")
    now = now or dt.datetime.now(dt.UTC)
    contracts = contracts_digest()
    criteria = list(columns or CRITERIA)
    newest: dict[str, tuple[Row, bytes | None]] = {}
    rejected: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.zip")):
        try:
            problems, info = verify_bundle(path)
        except HaicapError as exc:
            rejected.append({"bundle": path.name, "problems": [str(exc)]})
            continue
        if info is not None and keys is not None:
            key_file = keys / f"{info.province}.pub"
            if not key_file.is_file():
                problems.append(f"no trusted key {key_file.name} in {keys}")
            else:
                problems = verify_bundle(path, load_public_key(key_file))[0]
        if problems or info is None:
            rejected.append({"bundle": path.name, "problems": problems})
            continue
        with zipfile.ZipFile(path) as zf:
            members = {n: zf.read(n) for n in zf.namelist() if not n.endswith("/")}
        target = json.loads(members["results.json"]).get("target") or {}
        if target.get("embedded_sandbox") and not include_sandbox:
            faults = ", ".join(target.get("faults") or []) or "none"
            rejected.append({"bundle": path.name, "problems": [
                f"an embedded-sandbox run (haicap's reference province, faults: {faults}), not province "
                f"{info.province}'s own system: not counted (--include-sandbox shows such rows, marked)"]})
            continue
        row = _row(path, members, info, criteria, now, max_age_days, contracts, quick)
        if target.get("embedded_sandbox"):
            row.notes.append(f"embedded sandbox, faults: {', '.join(target.get('faults') or []) or 'none'}")
        previous = newest.get(row.province)
        if previous is None or (_created(row.created) or now) > (_created(previous[0].created) or now):
            newest[row.province] = (row, members.get("report.html"))
    rows = [newest[k][0] for k in sorted(newest)]
    reports = {Path("reports") / f"{k}.html": html for k, (_, html) in newest.items() if html is not None}
    for row in rows:
        if Path("reports") / f"{row.province}.html" in reports:
            row.report = f"reports/{row.province}.html"
    return rows, rejected, reports


def _totals(rows: list[Row], criteria: list[str]) -> dict[str, int]:
    return {c: sum(1 for r in rows if r.cells.get(c) in READY) for c in criteria}


@dataclass(frozen=True)
class View:
    """How the board is titled and which columns it shows (the demo says it is one)."""

    columns: dict[str, str]
    title: str = "Bảng tổng hợp sẵn sàng — national readiness scoreboard"
    intro: tuple[str, ...] = ()
    #: criterion → the 28-June count, shown under the totals (the demo)
    expected: dict[str, int] | None = None
    #: criterion → why the column is not judged by this haicap (shown in the column head)
    pending: dict[str, str] = field(default_factory=dict)
    of: int = 34


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d232a}
table{border-collapse:collapse} th,td{border:1px solid #dde2e6;padding:.3rem .5rem;font-size:.8rem}
th{background:#f4f6f8;vertical-align:bottom;text-align:left;min-width:5.5rem}
th small{font-weight:400;color:#56606b;display:block} td.name{min-width:11rem} code{font-size:.75rem}
td.when{white-space:nowrap} td.name small{display:block}
td a{color:inherit;text-decoration:none;display:block} td small{color:#56606b}
.ready,.ready-with-waiver,.ready-quick-set{background:#dff3e4} .ready-with-waiver{background:#eef7d9}
.not-ready{background:#fbe0df} .not-tested{background:#eceff1;color:#56606b}
.could-not-run,.incomplete{background:#fff1d6} .stale{background:#e8e0f5}
tr.totals td{font-weight:600;background:#f4f6f8} tr.expected td{background:#fafbfc;color:#56606b}
.pending{color:#8a5a00} .intro{max-width:75rem}
"""


def _when(created: str) -> str:
    """``2026-12-02 10:56 +07:00`` and the UTC time below it."""
    from haicap.vn_time import display_vn_utc

    text = display_vn_utc(created)
    vn, _, utc = text.partition(" (")
    vn = re.sub(r"(\d\d:\d\d):\d\d", r"\1", vn)  # minutes are enough on the board; the report has seconds
    utc = re.sub(r"(\d\d:\d\d):\d\d", r"\1", utc.rstrip(")"))
    return escape(vn) + (f"<br><small>{escape(utc)}</small>" if utc else "")


def _cell_class(value: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in value).strip("-").replace("--", "-")


def _cell(row: Row, criterion: str) -> str:
    value = row.cells.get(criterion, "not tested")
    text = escape(value)
    if criterion == LOAD and row.load is not None:
        text += f"<br><small>{escape(row.load['text'])}</small>"
    inner = f"<a href='{escape(row.report)}'>{text}</a>" if row.report else text
    return f"<td class='cell {_cell_class(value)}'>{inner}</td>"


def render_html(rows: list[Row], rejected: list[dict[str, Any]], view: View | dict[str, str]) -> str:
    if not isinstance(view, View):
        view = View(dict(view))
    names, of = list(view.columns), view.of
    head = []
    for c in names:
        why = view.pending.get(c)
        note = f"<small class='pending'>pending: {escape(why)}</small>" if why else ""
        head.append(f"<th title='{escape(view.columns[c])}'>{escape(c)}<small>{escape(view.columns[c])}</small>"
                    f"{note}</th>")
    totals = _totals(rows, names)
    summary = [f"<tr class='totals'><td colspan=2>sẵn sàng / ready, of {of}</td>"
               + "".join(f"<td>{totals[c]} / {of}</td>" for c in names) + "</tr>"]
    if view.expected is not None:
        summary.append("<tr class='expected'><td colspan=2>bảng kiểm 28/6 / the 28-June checklist</td>" + "".join(
            f"<td>{view.expected[c]} / {of}</td>" if c in view.expected else "<td>—</td>" for c in names) + "</tr>")
    body = list(summary)  # the totals first, as the Government Office reads the table; again at the foot
    for row in rows:
        notes = f"<small>{escape('; '.join(row.notes))}</small>" if row.notes else ""
        body.append(f"<tr><td class='name'><b>{escape(row.province)}</b> {escape(row.name)}{notes}</td>"
                    f"<td class='when'>{_when(row.created)}<br><small>key <code>{escape(row.signer)}</code></small>"
                    f"</td>{''.join(_cell(row, c) for c in names)}</tr>")
    body += summary
    refused = "".join(f"<li><code>{escape(r['bundle'])}</code>: {escape('; '.join(r['problems']))}</li>"
                      for r in rejected)
    refused_html = f"<h2>Bundles that did not verify (not counted)</h2><ul>{refused}</ul>" if rejected else ""
    intro = "".join(f"<p class='intro'>{escape(line)}</p>" for line in view.intro)
    return ("<!doctype html><html lang='vi'><head><meta charset='utf-8'>"
            f"<title>haicap — {escape(view.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{escape(view.title)}</h1>{intro}"
            f"<p>{len(rows)} tỉnh có gói chứng nhận hợp lệ / province(s) with a verified bundle. Giờ Việt Nam "
            "(Asia/Ho_Chi_Minh), UTC bên cạnh / times in Asia/Ho_Chi_Minh, UTC beside.</p><table><tr>"
            f"<th>tỉnh / province</th><th>ngày, khóa ký / date, signer</th>{''.join(head)}</tr>"
            f"{''.join(body)}</table>{refused_html}</body></html>")


def write_board(folder: Path, out: Path, *, keys: Path | None = None, max_age_days: float = 30.0,
                now: dt.datetime | None = None, include_sandbox: bool = False, view: View | None = None,
                quick: bool = False) -> dict[str, Any]:
    """board.html, board.json, board.csv and reports/ in ``out``; returns board.json's document."""
    from haicap.conformance.registry import CRITERIA

    view = view or View(dict(CRITERIA))
    columns = [c for c in view.columns if c != LOAD]
    rows, rejected, reports = build_board(folder, keys=keys, max_age_days=max_age_days, now=now,
                                          include_sandbox=include_sandbox, columns=columns, quick=quick)
    if any(row.load is not None for row in rows) and LOAD not in view.columns:
        view = dataclasses.replace(view, columns={**view.columns, LOAD: LOAD_LABEL})
    criteria = list(view.columns)
    try:
        (out / "reports").mkdir(parents=True, exist_ok=True)
        for rel, html in reports.items():
            (out / rel).write_bytes(html)
        doc = {"title": view.title, "criteria": criteria, "rows": [row.__dict__ for row in rows],
               "totals": _totals(rows, criteria), "of": view.of, "rejected": rejected,
               **({"expected": view.expected} if view.expected is not None else {}),
               **({"pending": view.pending} if view.pending else {})}
        (out / "board.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["province", "name", "date", "signer", *criteria])
        for row in rows:
            writer.writerow([row.province, row.name, row.created, row.signer,
                             *(row.cells.get(c, "not tested") for c in criteria)])
        writer.writerow(["totals", "", "", "", *(f"{doc['totals'][c]} / {view.of}" for c in criteria)])
        (out / "board.csv").write_text(buf.getvalue(), encoding="utf-8")
        (out / "board.html").write_text(render_html(rows, rejected, view), encoding="utf-8")
    except OSError as exc:
        raise HaicapError(f"cannot write the scoreboard to {out}: {exc.strerror or exc}") from None
    return doc
