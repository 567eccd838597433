"""``haicap load compare BASE NEW``: did a change make the province slower, flakier or lossier under the same load?

Two runs are compared only when they asked for the same load of the same system with the same tools: the same
shape (name, duration, parameters, selected scenarios), rate cap, province, haicap version and contracts
(digest). Sandbox faults may differ — comparing a correct province with a faulty one is the point. When they
are not comparable, the comparison refuses and says which field differs (exit 2).

Each metric has a direction (lower latency is better; higher throughput is better) and a noise floor: a change
is a regression only when it is worse by more than the relative tolerance (default 10 %) **and** by more than
the floor (10 ms for a latency, 0.5 percentage points for an error rate, 0.2/s for a rate). Data loss, late
statuses and breached gates have no tolerance: one more is a regression. Per-step p95s are compared where both
runs measured at least 20 samples. The verdict is exit 1 on any regression, 0 otherwise; ``compare.html``
overlays both runs' throughput and latency over time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Literal

from haicap.errors import HaicapError

__all__ = ["Metric", "comparable", "compare_runs", "load_run", "parse_tolerance", "render_compare_html"]

Direction = Literal["lower", "higher"]
#: Fewest samples of a step on both sides for its p95 to be compared.
MIN_STEP_SAMPLES = 20
#: A latency change smaller than this is noise on a shared machine (scheduler hiccups of a few ms), never a regression.
LATENCY_FLOOR_MS = 10.0


@dataclass(frozen=True)
class Metric:
    name: str
    base: float | None
    new: float | None
    direction: Direction
    floor: float
    tolerance: float
    unit: str = ""

    @property
    def verdict(self) -> str:
        if self.base is None or self.new is None:
            return "not compared"
        worse = self.new - self.base if self.direction == "lower" else self.base - self.new
        allowed = max(self.floor, abs(self.base) * self.tolerance)
        if worse > allowed:
            return "regression"
        if -worse > allowed:
            return "improvement"
        return "same"

    def as_dict(self) -> dict[str, Any]:
        delta = None if self.base is None or self.new is None else round(self.new - self.base, 4)
        return {"name": self.name, "base": self.base, "new": self.new, "delta": delta, "unit": self.unit,
                "better": self.direction, "verdict": self.verdict}


def parse_tolerance(text: str) -> float:
    """``10%`` or ``0.1`` → 0.1; refuses negatives, non-numbers and more than 1000 %."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise HaicapError(f"--tolerance {text!r}: expected a share such as 10% or 0.1") from None
    if not 0 <= value <= 10:
        raise HaicapError(f"--tolerance {text!r}: must be between 0 and 1000%")
    return value


def load_run(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None, Path]:
    """(summary, timeseries or None, folder) of a run folder or its summary.json."""
    folder = path if path.is_dir() else path.parent
    summary_path = path / "summary.json" if path.is_dir() else path
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HaicapError(f"{summary_path}: no summary.json (give a haicap load run folder)") from None
    except (OSError, ValueError) as exc:
        raise HaicapError(f"{summary_path}: not a haicap load summary: {exc}") from None
    if not isinstance(summary, dict) or "shape" not in summary or "latency_ms" not in summary:
        raise HaicapError(f"{summary_path}: not a haicap load summary (no shape or latency_ms)")
    timeseries = None
    series_path = folder / "timeseries.json"
    if series_path.is_file():
        try:
            timeseries = json.loads(series_path.read_text(encoding="utf-8"))
        except ValueError:
            timeseries = None
    return summary, timeseries, folder


def comparable(base: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why two summaries are not comparable (empty when they are)."""
    reasons: list[str] = []

    def differs(label: str, a: Any, b: Any) -> None:
        if a != b:
            shown = [json.dumps(v, ensure_ascii=False) for v in (a, b)]
            reasons.append(f"{label}: BASE {shown[0]}, NEW {shown[1]}")

    bs, ns = base.get("shape", {}), new.get("shape", {})
    for key in ("name", "duration", "params", "selected"):
        differs(f"shape {key}", bs.get(key), ns.get(key))
    differs("rate cap (--max-rate)", base.get("rate", {}).get("max_rate"), new.get("rate", {}).get("max_rate"))
    bt, nt = base.get("target", {}), new.get("target", {})
    differs("province", bt.get("province"), nt.get("province"))
    differs("target kind (embedded sandbox or profile)", bt.get("embedded_sandbox"), nt.get("embedded_sandbox"))
    if not bt.get("embedded_sandbox"):
        differs("profile (target name)", bt.get("name"), nt.get("name"))
    for key, what in (("haicap_version", "haicap version"), ("contracts_sha256", "contracts digest")):
        if key not in base or key not in new:
            side = "BASE" if key not in base else "NEW"
            reasons.append(f"{what}: {side} does not record it (made by an older haicap): run it again")
        else:
            differs(what, base[key], new[key])
    return reasons


def _share(part: Any, whole: Any) -> float | None:
    numbers = isinstance(part, int | float) and isinstance(whole, int | float)
    return round(part / whole, 5) if numbers and whole else None


def _metrics(base: dict[str, Any], new: dict[str, Any], tol: float) -> list[Metric]:
    out = [Metric(f"latency {p}", base["latency_ms"].get(p), new["latency_ms"].get(p), "lower", LATENCY_FLOOR_MS, tol,
                  "ms") for p in ("p50", "p95", "p99")]
    out.append(Metric("journeys/s achieved", base["rate"].get("achieved"), new["rate"].get("achieved"), "higher",
                      0.2, tol, "/s"))
    out.append(Metric("request error rate", _share(base.get("failures"), base.get("requests")),
                      _share(new.get("failures"), new.get("requests")), "lower", 0.005, tol))
    out.append(Metric("journey failure rate", _share(base["journeys"].get("failed"), base["journeys"].get("started")),
                      _share(new["journeys"].get("failed"), new["journeys"].get("started")), "lower", 0.005, tol))
    bi, ni = base.get("integrity", {}), new.get("integrity", {})
    out.append(Metric("dossiers missing from the national ledger", bi.get("missing_count"), ni.get("missing_count"),
                      "lower", 0, 0))
    out.append(Metric("dossiers lost at the province", (bi.get("province") or {}).get("lost_count"),
                      (ni.get("province") or {}).get("lost_count"), "lower", 0, 0))
    out.append(Metric("statuses late at the national side", (bi.get("sync_deadlines") or {}).get("late_count"),
                      (ni.get("sync_deadlines") or {}).get("late_count"), "lower", 0, 0))
    out.append(Metric("SLO gates breached", len(base["slo"].get("breaches", [])), len(new["slo"].get("breaches", [])),
                      "lower", 0, 0))
    bc, nc = base.get("capacity") or {}, new.get("capacity") or {}
    if bc.get("knee") and nc.get("knee"):
        out.append(Metric("knee (achieved rate)", bc["knee"].get("achieved_rate"), nc["knee"].get("achieved_rate"),
                          "higher", 0.2, tol, "/s"))
    out.extend(_step_metrics(base.get("scenarios") or {}, new.get("scenarios") or {}, tol))
    return out


def _step_metrics(base: dict[str, Any], new: dict[str, Any], tol: float) -> list[Metric]:
    out = []
    for scenario_id in sorted(set(base) & set(new)):
        b_steps, n_steps = base[scenario_id].get("steps") or {}, new[scenario_id].get("steps") or {}
        for label in sorted(set(b_steps) & set(n_steps)):
            b, n = b_steps[label], n_steps[label]
            if min(b.get("count", 0), n.get("count", 0)) < MIN_STEP_SAMPLES:
                continue
            out.append(Metric(f"{scenario_id} / {label} p95", (b.get("latency_ms") or {}).get("p95"),
                              (n.get("latency_ms") or {}).get("p95"), "lower", LATENCY_FLOOR_MS, tol, "ms"))
    return out


def compare_runs(base: dict[str, Any], new: dict[str, Any], tolerance: float = 0.10) -> dict[str, Any]:
    """The comparison document (``compare.json``); raises HaicapError (exit 2) when the runs are not comparable."""
    reasons = comparable(base, new)
    if reasons:
        raise HaicapError("the runs are not comparable — " + "; ".join(reasons))
    metrics = _metrics(base, new, tolerance)
    regressions = [m.name for m in metrics if m.verdict == "regression"]
    return {"tolerance": tolerance, "regressions": regressions, "regressed": bool(regressions),
            "metrics": [m.as_dict() for m in metrics],
            "base": {"faults": base["target"].get("faults", []), "passed": base.get("passed")},
            "new": {"faults": new["target"].get("faults", []), "passed": new.get("passed")}}


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1d232a}
table{border-collapse:collapse;width:100%;margin:1rem 0} th,td{border-bottom:1px solid #dde2e6;padding:.35rem .6rem}
td.n{text-align:right;font-variant-numeric:tabular-nums} th{background:#f4f6f8;text-align:left}
.regression{background:#fbe0df;color:#8a1c17} .improvement{background:#dff3e4;color:#135e2a}
img{max-width:100%}
"""


def _overlay_png(base_series: dict[str, Any] | None, new_series: dict[str, Any] | None) -> str | None:
    if not base_series or not new_series:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from haicap.reports.capacity_html import _png

    fig = Figure(figsize=(10, 6))
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for series, colour, label in ((base_series, "#7f8c8d", "BASE"), (new_series, "#1f5fa8", "NEW")):
        samples = sorted(series.get("samples", []), key=lambda s: s["t"])
        t = [s["t"] for s in samples]
        top.plot(t, [s.get("achieved_rate") for s in samples], color=colour, lw=1.5, label=f"{label} achieved")
        bottom.plot(t, [s.get("p95_ms") for s in samples], color=colour, lw=1.5, label=f"{label} p95")
    top.set_ylabel("journeys/s")
    bottom.set_ylabel("p95 (ms)")
    bottom.set_xlabel("time since start (s)")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
        ax.set_ylim(bottom=0)
    return _png(fig)


def render_compare_html(result: dict[str, Any], base_series: dict[str, Any] | None,
                        new_series: dict[str, Any] | None, names: tuple[str, str]) -> str:
    rows = []
    for m in result["metrics"]:
        css = m["verdict"] if m["verdict"] in {"regression", "improvement"} else ""
        rows.append(f"<tr class='{css}'><td>{escape(m['name'])}</td><td class=n>{escape(str(m['base']))}</td>"
                    f"<td class=n>{escape(str(m['new']))}</td><td class=n>{escape(str(m['delta']))}</td>"
                    f"<td>{escape(m['better'])} is better</td><td>{escape(m['verdict'])}</td></tr>")
    verdict = (f"REGRESSION: {', '.join(result['regressions'])}" if result["regressed"]
               else "no regression beyond the tolerance and noise floors")
    png = _overlay_png(base_series, new_series)
    figure = f"<img alt='throughput and p95 of both runs' src='{png}'>" if png else "<p>No time series.</p>"
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>haicap load compare</title>"
            f"<style>{_CSS}</style></head><body><h1>Load comparison</h1>"
            f"<p>BASE <code>{escape(names[0])}</code> (faults {escape(', '.join(result['base']['faults']) or 'none')})"
            f" · NEW <code>{escape(names[1])}</code> (faults {escape(', '.join(result['new']['faults']) or 'none')})"
            f" · tolerance {result['tolerance']:.0%}</p><p><strong>{escape(verdict)}</strong></p>{figure}"
            "<table><tr><th>metric</th><th>BASE</th><th>NEW</th><th>Δ</th><th>direction</th><th>verdict</th></tr>"
            + "".join(rows) + "</table></body></html>")
