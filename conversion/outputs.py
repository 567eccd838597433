"""What ``haicap convert check`` writes: results.json, report.html and junit.xml, with certify's exit codes.

``ready`` (exit 0) when no rule is broken and every settled dossier of a dissolved district-level authority is
digitised (100 %); ``not ready`` (exit 1) otherwise. Each finding names its MaHoSo and kind (the same kinds
the conversion generator plants, so a run can be scored against its manifest).
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path
from typing import Any

from haicap import __version__
from haicap.conversion.check import ConversionReport
from haicap.conversion.rules import FINDINGS

__all__ = ["build_results", "write_outputs"]

FAMILIES = ("completeness", "accuracy", "continuity", "consistency", "digitisation")


def _share(report: ConversionReport) -> float | None:
    return round(report.digitised / report.digitisation_due, 6) if report.digitisation_due else None


def build_results(report: ConversionReport, *, before: Path, after: Path, province: str | None) -> dict[str, Any]:
    share = _share(report)
    families = {f: sum(n for k, n in report.by_kind.items() if FINDINGS[k][0] == f) for f in FAMILIES}
    ready = report.findings == 0 and (share is None or share == 1.0)
    old_units = sorted(set(report.by_old_unit) | set(report.converted_by_old_unit))
    return {
        "haicap_version": __version__,
        "checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "before": str(before), "after": str(after), "province": province,
        "records": {"before": report.before_records, "after": report.after_records,
                    "outside_province": report.outside_province},
        "verdict": "ready" if ready else "not ready",
        "families": {f: ("passed" if n == 0 else "failed") for f, n in families.items()},
        "finding_counts": dict(sorted(report.by_kind.items())),
        "findings_total": report.findings,
        "findings": report.listed_findings(),
        "findings_file": "findings.jsonl",
        "digitisation": {"due": report.digitisation_due, "digitised": report.digitised, "share": share,
                         "required": 1.0},
        "reconciliation": {
            "by_old_unit": [{"MaTinh": p, "MaHuyen": d, "before": report.by_old_unit[(p, d)],
                             "converted": report.converted_by_old_unit[(p, d)]} for p, d in old_units],
            "by_new_unit": [{"MaTinh": p, "MaXa": c, "after": n} for (p, c), n in sorted(report.by_new_unit.items())],
            "by_status": [{"TrangThaiHoSo": s, "before": report.status_before[s], "after": report.status_after[s]}
                          for s in sorted(set(report.status_before) | set(report.status_after))],
        },
        "seconds": round(report.seconds, 3),
        "kinds": {k: {"family": f, "meaning": m, "rule": r} for k, (f, m, r) in FINDINGS.items()},
    }


def _junit(results: dict[str, Any]) -> ET.ElementTree:
    suite = ET.Element("testsuite", name="conversion", tests=str(len(FAMILIES)),
                       failures=str(sum(1 for v in results["families"].values() if v == "failed")))
    for family in FAMILIES:
        case = ET.SubElement(suite, "testcase", classname="conversion", name=f"conversion {family}")
        kinds = {k: n for k, n in results["finding_counts"].items() if results["kinds"][k]["family"] == family}
        if kinds:
            failure = ET.SubElement(case, "failure", message=", ".join(f"{k}: {n}" for k, n in kinds.items()))
            lines = [f"{f['MaHoSo']} {f['kind']}: {f['message']}" for f in results["findings"]
                     if f["family"] == family]
            failure.text = "\n".join(lines[:200])
    root = ET.Element("testsuites")
    root.append(suite)
    return ET.ElementTree(root)


def _html(results: dict[str, Any]) -> str:
    rec = results["records"]
    digit = results["digitisation"]
    share = "not judged (no settled dossier of a district-level authority)" if digit["share"] is None else (
        f"{digit['share']:.2%} ({digit['digitised']:,} of {digit['due']:,})")
    kinds = "".join(f"<tr><td>{escape(k)}</td><td>{escape(results['kinds'][k]['family'])}</td><td class=n>{n:,}"
                    f"</td><td>{escape(results['kinds'][k]['meaning'])}</td><td>{escape(results['kinds'][k]['rule'])}"
                    "</td></tr>" for k, n in results["finding_counts"].items())
    rows = "".join(f"<tr><td><code>{escape(f['MaHoSo'])}</code></td><td>{escape(f['kind'])}</td>"
                   f"<td>{escape(f['message'])}</td></tr>" for f in results["findings"][:500])
    status = "".join(f"<tr><td>{escape(s['TrangThaiHoSo'])}</td><td class=n>{s['before']:,}</td>"
                     f"<td class=n>{s['after']:,}</td></tr>" for s in results["reconciliation"]["by_status"])
    css = ("body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d232a}"
           "table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{border-bottom:1px solid #dde2e6;"
           "padding:.3rem .5rem;text-align:left}td.n{text-align:right}th{background:#f4f6f8}")
    return (f"<!doctype html><html lang='vi'><head><meta charset='utf-8'><title>haicap convert check</title>"
            f"<style>{css}</style></head><body><h1>Kiểm tra chuyển đổi dữ liệu — conversion check: "
            f"{escape(results['verdict'])}</h1><p>{rec['before']:,} old records, {rec['after']:,} converted"
            f"{', province ' + escape(results['province']) if results['province'] else ''}; "
            f"{results['findings_total']:,} findings; digitisation of district-level results: {escape(share)}</p>"
            "<h2>Findings by kind</h2><table><tr><th>kind</th><th>family</th><th>count</th><th>meaning</th>"
            f"<th>rule</th></tr>{kinds}</table><h2>Reconciliation by status</h2><table><tr><th>TrangThaiHoSo</th>"
            f"<th>before</th><th>after</th></tr>{status}</table><h2>Findings (first 500; all in findings.jsonl)</h2>"
            f"<table><tr><th>MaHoSo</th><th>kind</th><th>what</th></tr>{rows}</table></body></html>")


def write_outputs(results: dict[str, Any], out: Path) -> None:
    (out / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    (out / "report.html").write_text(_html(results), encoding="utf-8")
    _junit(results).write(out / "junit.xml", encoding="utf-8", xml_declaration=True)
