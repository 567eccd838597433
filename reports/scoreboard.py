"""The national scoreboard: every province's signed bundle on one table, as the Government Office tracks them.

``haicap scoreboard DIR --out board/`` verifies every ``*.zip`` bundle in DIR (:func:`~haicap.reports.bundle.
verify_bundle`; with ``--keys KEYDIR`` each against ``KEYDIR/<province>.pub``), keeps each province's newest
verified bundle, and writes a self-contained ``board.html``, ``board.json`` and ``board.csv``: one row per
province (code, name, date, signer), one column per national criterion, each cell one of *ready*, *ready with
waiver*, *not ready*, *not tested*, *could not run*, *incomplete* or *stale* (the bundle is older than
``--max-age`` days, or was made against other contracts than these), and a totals row "x / 34" per column like
the 28-June checklist table. Each cell links to that province's report (``reports/<code>.html``, extracted from
its bundle). A bundle that does not verify is listed with its problems and counts for nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from haicap.errors import HaicapError

__all__ = ["Row", "build_board", "write_board"]

READY = ("ready", "ready with waiver")


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


def _row(path: Path, members: dict[str, bytes], info: Any, criteria: list[str], now: dt.datetime,
         max_age_days: float, contracts: str) -> Row:
    results = json.loads(members["results.json"])
    versions = json.loads(members.get("versions.json", b"{}"))
    cells = {c: str(results.get("verdicts", {}).get(c, "not tested")) for c in criteria}
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
    code = str(info.province or (results.get("target") or {}).get("province") or "??")
    return Row(code, _province_name(code), info.created, info.key_id, cells, None, path.name, notes)


def build_board(folder: Path, *, keys: Path | None = None, max_age_days: float = 30.0,
                now: dt.datetime | None = None, include_sandbox: bool = False,
                ) -> tuple[list[Row], list[dict[str, Any]], dict[Path, bytes]]:
    """(rows, rejected bundles with their problems, report.html of each row's bundle by row province)."""
    from haicap.conformance.registry import CRITERIA
    from haicap.contract_registry import contracts_digest
    from haicap.reports.bundle import load_public_key, verify_bundle

    if not folder.is_dir():
        raise HaicapError(f"{folder}: not a folder of bundles")
    now = now or dt.datetime.now(dt.UTC)
    contracts = contracts_digest()
    criteria = list(CRITERIA)
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
        row = _row(path, members, info, criteria, now, max_age_days, contracts)
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


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1d232a}
table{border-collapse:collapse} th,td{border:1px solid #dde2e6;padding:.3rem .5rem;font-size:.9rem}
th{background:#f4f6f8} td a{color:inherit;text-decoration:none;display:block}
.ready{background:#dff3e4} .ready-with-waiver{background:#eef7d9} .not-ready{background:#fbe0df}
.not-tested{background:#eceff1} .could-not-run,.incomplete{background:#fff1d6} .stale{background:#e8e0f5}
tr.totals td{font-weight:600;background:#f4f6f8}
"""


def render_html(rows: list[Row], rejected: list[dict[str, Any]], criteria: dict[str, str], of: int = 34) -> str:
    names = list(criteria)
    head = "".join(f"<th title='{escape(criteria[c])}'>{escape(c)}</th>" for c in names)
    body = []
    for row in rows:
        cells = []
        for c in names:
            value = row.cells.get(c, "not tested")
            inner = f"<a href='{escape(row.report)}'>{escape(value)}</a>" if row.report else escape(value)
            cells.append(f"<td class='{escape(value.replace(' ', '-'))}'>{inner}</td>")
        notes = f" <small>({escape('; '.join(row.notes))})</small>" if row.notes else ""
        body.append(f"<tr><td>{escape(row.province)}</td><td>{escape(row.name)}{notes}</td>"
                    f"<td>{escape(row.created)}</td><td><code>{escape(row.signer)}</code></td>{''.join(cells)}</tr>")
    totals = _totals(rows, names)
    body.append("<tr class='totals'><td colspan=4>ready / " + str(of) + "</td>"
                + "".join(f"<td>{totals[c]} / {of}</td>" for c in names) + "</tr>")
    refused = "".join(f"<li><code>{escape(r['bundle'])}</code>: {escape('; '.join(r['problems']))}</li>"
                      for r in rejected)
    refused_html = f"<h2>Bundles that did not verify (not counted)</h2><ul>{refused}</ul>" if rejected else ""
    return ("<!doctype html><html lang='vi'><head><meta charset='utf-8'><title>haicap — bảng tổng hợp 34 tỉnh "
            f"(national scoreboard)</title><style>{_CSS}</style></head><body>"
            "<h1>Bảng tổng hợp sẵn sàng — national readiness scoreboard</h1>"
            f"<p>{len(rows)} province(s) with a verified bundle.</p><table><tr><th>code</th><th>province</th>"
            f"<th>date</th><th>signer</th>{head}</tr>{''.join(body)}</table>{refused_html}</body></html>")


def write_board(folder: Path, out: Path, *, keys: Path | None = None, max_age_days: float = 30.0,
                now: dt.datetime | None = None, include_sandbox: bool = False) -> dict[str, Any]:
    from haicap.conformance.registry import CRITERIA

    rows, rejected, reports = build_board(folder, keys=keys, max_age_days=max_age_days, now=now,
                                          include_sandbox=include_sandbox)
    criteria = list(CRITERIA)
    try:
        (out / "reports").mkdir(parents=True, exist_ok=True)
        for rel, html in reports.items():
            (out / rel).write_bytes(html)
        doc = {"criteria": criteria, "rows": [row.__dict__ for row in rows], "totals": _totals(rows, criteria),
               "of": 34, "rejected": rejected}
        (out / "board.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["province", "name", "date", "signer", *criteria])
        for row in rows:
            writer.writerow([row.province, row.name, row.created, row.signer, *(row.cells[c] for c in criteria)])
        writer.writerow(["totals", "", "", "", *(f"{doc['totals'][c]} / 34" for c in criteria)])
        (out / "board.csv").write_text(buf.getvalue(), encoding="utf-8")
        (out / "board.html").write_text(render_html(rows, rejected, dict(CRITERIA)), encoding="utf-8")
    except OSError as exc:
        raise HaicapError(f"cannot write the scoreboard to {out}: {exc.strerror or exc}") from None
    return doc
