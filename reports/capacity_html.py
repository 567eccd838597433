"""The capacity report: one self-contained HTML page an infrastructure team can read without the run folder.

Figures are drawn on matplotlib ``Figure`` objects with the Agg canvas (no pyplot, no global backend switch, no
display needed) and embedded as base64 PNG ``data:`` URIs;
CSS is inline and there are no scripts, fonts or links to fetch. Sections: the verdict (knee and instances),
throughput and latency over time, latency against throughput per stage with the knee and the SLO, the table of
stages, then the sizing arithmetic and the assumptions behind every factor. Every value is HTML-escaped.

Example::

    sizing = size_capacity(stages, Projection(province="79"))
    Path("capacity.html").write_text(render_capacity_html(stages, timeseries, sizing), encoding="utf-8")
"""

from __future__ import annotations

import base64
import io
import math
import re
from html import escape
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from haicap.reports.capacity import NO_BREACH, validate_stages, validate_timeseries

__all__ = ["figure_latency_vs_throughput", "figure_over_time", "render_capacity_html"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1d232a}
h1{margin-bottom:.2rem} .muted{color:#5c6670} table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border-bottom:1px solid #dde2e6;padding:.4rem .6rem;text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums} th{background:#f4f6f8}
.v{font-weight:600;border-radius:4px;padding:.15rem .5rem;white-space:nowrap}
.meets-SLO{background:#dff3e4;color:#135e2a} .breaches-SLO{background:#fbe0df;color:#8a1c17}
.inconclusive{background:#fff1d6;color:#7a4d00} .not-judged{background:#eceff1;color:#455a64}
.no-breach-partly-judged{background:#eef7d9;color:#3d5a12}
tr.knee td{background:#eef6ff}
.big{font-size:1.25rem} figure{margin:1.2rem 0} img{max-width:100%}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;white-space:pre-wrap}
"""

_COLOURS = {"meets SLO": "#1b7f3b", NO_BREACH: "#7cb342", "breaches SLO": "#c0392b", "inconclusive": "#b7791f",
            "not judged": "#78909c"}
#: verdicts drawn hollow and left out of the latency line: they say nothing about the SLO
_UNJUDGED = ("inconclusive", "not judged")


def _css_class(verdict: str) -> str:
    """A verdict as a CSS class name: 'meets SLO' → meets-SLO, 'no breach (partly judged)' → no-breach-partly-judged."""
    return re.sub(r"[^A-Za-z0-9]+", "-", verdict).strip("-")


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # attaches the Agg canvas: rendering needs no pyplot state and no display
    return fig


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _generator_behind(sample: dict[str, Any], cpu_scale: float) -> bool:
    backlog = _num(sample.get("backlog"))
    cpu = _num(sample.get("generator_cpu")) / cpu_scale
    return (backlog > 0) or (cpu > 0.8)


def figure_over_time(timeseries_doc: dict[str, Any], slo: dict[str, Any], unit: str) -> Figure:
    """Throughput (target vs achieved) above latency percentiles, on a shared time axis; the seconds where the
    generator was behind (backlog, or CPU > 80%) are shaded."""
    samples = sorted(timeseries_doc["samples"], key=lambda s: s["t"])
    t = [_num(s["t"]) for s in samples]
    fig = _figure(10, 6.2)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[1, 1.1])
    top.plot(t, [_num(s["target_rate"]) for s in samples], color="#7f8c8d", lw=1.4, ls="--", label="target")
    top.plot(t, [_num(s["achieved_rate"]) for s in samples], color="#1f5fa8", lw=1.6, label="achieved")
    top.set_ylabel(f"throughput ({unit})")
    top.set_ylim(bottom=0)
    top.set_title("Throughput and latency over time")
    percentiles = (("p50_ms", "#7fb3d5", "p50"), ("p95_ms", "#e67e22", "p95"), ("p99_ms", "#c0392b", "p99"))
    for key, colour, label in percentiles:
        bottom.plot(t, [_num(s[key]) for s in samples], color=colour, lw=1.4, label=label)
    for key, colour in (("p95_ms", "#e67e22"), ("p99_ms", "#c0392b")):
        if slo.get(key) is not None:
            bottom.axhline(slo[key], color=colour, ls=":", lw=1.2, label=f"SLO {key[:3]} {slo[key]:g} ms")
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("time since start (s)")
    bottom.set_ylim(bottom=0)
    cpus = [_num(s.get("generator_cpu")) for s in samples]
    cpu_scale = 100.0 if any(c > 1.5 for c in cpus if not math.isnan(c)) else 1.0
    behind = [_generator_behind(s, cpu_scale) for s in samples]
    interval = _num(timeseries_doc.get("interval_s")) or 1.0
    shaded = False
    for x, flag in zip(t, behind, strict=True):
        if flag:
            for ax in (top, bottom):
                ax.axvspan(x - interval / 2, x + interval / 2, color="#f5b041", alpha=0.25, lw=0,
                           label=None if shaded or ax is bottom else "generator behind")
            shaded = True
    top.legend(loc="upper left", fontsize=8, frameon=False)
    bottom.legend(loc="upper left", fontsize=8, frameon=False, ncol=3)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return fig


def figure_latency_vs_throughput(sizing: dict[str, Any]) -> Figure:
    """p95 and p99 of each stage against its achieved throughput, coloured by verdict, with the SLO lines and
    the knee marked."""
    stages = sorted(sizing["stages"], key=lambda s: s["achieved_rate"])
    slo = sizing["slo"]
    unit = sizing["rate_unit"]
    fig = _figure(11, 5)
    ax = fig.subplots()
    conclusive = [s for s in stages if s["verdict"] not in _UNJUDGED]
    x = [s["achieved_rate"] for s in conclusive]
    ax.plot(x, [_num(s["p95_ms"]) for s in conclusive], color="#e67e22", lw=1, alpha=0.6)
    ax.plot(x, [_num(s["p99_ms"]) for s in conclusive], color="#c0392b", lw=1, alpha=0.6)
    for verdict, colour in _COLOURS.items():
        chosen = [s for s in stages if s["verdict"] == verdict]
        if not chosen:
            continue
        xs = [s["achieved_rate"] for s in chosen]
        hollow = verdict in _UNJUDGED
        ax.scatter(xs, [_num(s["p95_ms"]) for s in chosen], marker="o", s=46, zorder=3,
                   facecolors="none" if hollow else colour, edgecolors=colour, label=f"p95 — {verdict}")
        ax.scatter(xs, [_num(s["p99_ms"]) for s in chosen], marker="^", s=46, zorder=3,
                   facecolors="none" if hollow else colour, edgecolors=colour, label=f"p99 — {verdict}")
    per_step = " (strictest scenario; gates are per step)" if slo.get("gates") else ""
    for key, colour in (("p95_ms", "#e67e22"), ("p99_ms", "#c0392b")):
        if slo.get(key) is not None:
            ax.axhline(slo[key], color=colour, ls=":", lw=1.3, label=f"SLO {key[:3]} {slo[key]:g} ms{per_step}")
    knee = sizing.get("knee")
    if knee is not None:
        ax.axvline(knee["achieved_rate"], color="#1f5fa8", ls="--", lw=1.4)
        label = f"knee {knee['achieved_rate']:,.1f} {unit}" + (" (lower bound)" if sizing["knee_is_lower_bound"]
                                                               else "")
        ax.annotate(label, xy=(knee["achieved_rate"], 0.03), xycoords=("data", "axes fraction"),
                    xytext=(-6, 0), textcoords="offset points", ha="right", va="bottom", color="#1f5fa8",
                    fontsize=9, fontweight="bold")
    values = [v for s in stages for v in (_num(s["p95_ms"]), _num(s["p99_ms"])) if v > 0]
    values += [slo[k] for k in ("p95_ms", "p99_ms") if slo.get(k)]
    if values and max(values) / min(values) > 50:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.set_xlim(0, max([s["achieved_rate"] for s in stages] + [1.0]) * 1.08)
    ax.set_xlabel(f"achieved throughput ({unit})")
    ax.set_ylabel("latency (ms)")
    ax.set_title("Latency against throughput, per stage")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def _fmt(value: Any, spec: str = ",.1f") -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec) if isinstance(value, int | float) else escape(str(value))


def _stage_rows(sizing: dict[str, Any]) -> str:
    knee = sizing.get("knee")
    rows = []
    for s in sorted(sizing["stages"], key=lambda s: s["index"]):
        css = " class='knee'" if knee is not None and s["index"] == knee["index"] else ""
        verdict = escape(s["verdict"]) + (" · knee" if css else "")
        rows.append(
            f"<tr{css}><td class='n'>{s['index']}</td><td class='n'>{_fmt(s['target_rate'])}</td>"
            f"<td class='n'>{_fmt(s['achieved_rate'])}</td><td class='n'>{_fmt(s['duration_s'], ',.0f')}</td>"
            f"<td class='n'>{_fmt(s['requests'], ',d')}</td><td class='n'>{_fmt(s['errors'], ',d')}</td>"
            f"<td class='n'>{_fmt(s['error_rate'], '.2%')}</td><td class='n'>{_fmt(s['p50_ms'], ',.0f')}</td>"
            f"<td class='n'>{_fmt(s['p95_ms'], ',.0f')}</td><td class='n'>{_fmt(s['p99_ms'], ',.0f')}</td>"
            f"<td>{_fmt(s['generator_kept_up'])}</td>"
            f"<td><span class='v {_css_class(s['verdict'])}'>{verdict}</span>"
            f"<div class='muted'>{escape('; '.join(s['reasons']))}</div></td></tr>"
        )
    return "".join(rows)


def _gates_section(slo: dict[str, Any]) -> str:
    """The run's SLO gates, each of which a stage must pass on its own journeys to meet the SLO."""
    gates = slo.get("gates")
    if not gates:
        return ""
    rows = "".join(
        f"<tr><td>{escape(str(g.get('scenario')))}</td><td>{escape(str(g.get('step') or '(journeys)'))}</td>"
        f"<td class='n'>{_fmt(g.get('p95_ms'), ',.0f')}</td><td class='n'>{_fmt(g.get('p99_ms'), ',.0f')}</td>"
        f"<td class='n'>{_fmt(g.get('error_rate'), '.2%')}</td></tr>"
        for g in gates
    )
    return ("<h2>SLO gates</h2><p class='muted'>The gates <code>haicap load</code> exits on, applied to each stage: "
            "a stage meets the SLO only if every gate passes on the journeys whose intended start fell in it, each "
            "percentile with enough samples (20 for p95, 100 for p99; fewer: not judged). Percentiles are "
            "nearest-rank.</p><table><thead><tr><th>scenario</th><th>step</th><th>p95 ms</th><th>p99 ms</th>"
            f"<th>error rate</th></tr></thead><tbody>{rows}</tbody></table>")


def render_capacity_html(
    stages_doc: dict[str, Any], timeseries_doc: dict[str, Any], sizing: dict[str, Any], *, title: str | None = None
) -> str:
    """The whole report as one HTML string (``sizing`` from :func:`haicap.reports.capacity.size_capacity`)."""
    validate_stages(stages_doc)
    validate_timeseries(timeseries_doc)
    unit = sizing["rate_unit"]
    slo = sizing["slo"]
    knee = sizing.get("knee")
    figures = [
        ("Throughput (target vs achieved) and latency percentiles over time; shaded: the generator was behind.",
         _png(figure_over_time(timeseries_doc, slo, unit)) if timeseries_doc["samples"] else None),
        ("p95 (●) and p99 (▲) of all requests of each stage against the throughput it achieved, coloured by the "
         "stage's verdict on the SLO gates; hollow: inconclusive (generator did not keep up) or not judged; dotted: "
         "the SLO; dashed: the knee.",
         _png(figure_latency_vs_throughput(sizing))),
    ]
    if knee is not None:
        bound = " (a lower bound: no stage breached the SLO)" if sizing["knee_is_lower_bound"] else ""
        headline = (f"<p class='big'>Knee: <b>{knee['achieved_rate']:,.1f} {escape(unit)}</b>{escape(bound)} "
                    f"at stage {knee['index']} · instances needed for the projected peak: "
                    f"<b>{sizing['instances']}</b></p>")
    else:
        headline = ("<p class='big'><span class='v breaches-SLO'>No knee</span> no stage met the SLO with the "
                    "generator keeping up — instances cannot be computed.</p>")
    slo_text = ", ".join(
        f"{label} ≤ {value}" for label, value in (
            ("p95", f"{slo['p95_ms']:g} ms" if slo.get("p95_ms") is not None else None),
            ("p99", f"{slo['p99_ms']:g} ms" if slo.get("p99_ms") is not None else None),
            ("error rate", f"{slo['error_rate']:.2%}" if slo.get("error_rate") is not None else None),
        ) if value is not None
    ) or "none"
    if slo.get("gates"):
        slo_text = f"{len(slo['gates'])} gates per scenario and step (below); strictest scenario SLO {slo_text}"
    figure_html = "".join(
        f"<figure><img alt='{escape(caption)}' src='{src}'><figcaption class='muted'>{escape(caption)}"
        "</figcaption></figure>" if src else f"<p class='muted'>No time series samples: {escape(caption)}</p>"
        for caption, src in figures
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in sizing["notes"])
    projection = sizing["projection"]
    sources = sizing.get("sources", {})
    assumptions = sizing.get("assumptions", {})
    inputs = "".join(
        f"<tr><td>{escape(key)}</td><td class='n'>{_fmt(value, ',.2f') if isinstance(value, float) else _fmt(value)}"
        f"</td><td class='muted'>{escape(sources.get(key, '') or assumptions.get(key, ''))}</td></tr>"
        for key, value in projection.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title or "haicap capacity report")}</title>
<style>{_CSS}</style></head><body>
<h1>{escape(title or "Capacity report")}</h1>
<p class="muted">Step run · SLO: {escape(slo_text)} · rates in {escape(unit)}</p>
{headline}
<ul>{notes}</ul>
<h2>Figures</h2>
{figure_html}
<h2>Stages</h2>
<table><thead><tr><th>#</th><th>target ({escape(unit)})</th><th>achieved</th><th>s</th><th>requests</th>
<th>errors</th><th>error rate</th><th>request p50 ms</th><th>request p95 ms</th><th>request p99 ms</th>
<th>generator kept up</th><th>verdict (which gate)</th></tr></thead><tbody>{_stage_rows(sizing)}</tbody></table>
{_gates_section(slo)}
<h2>Sizing</h2>
<pre>{escape(chr(10).join(sizing["arithmetic"]))}</pre>
<h3>Inputs and where they come from</h3>
<table><thead><tr><th>input</th><th>value</th><th>source / assumption</th></tr></thead><tbody>{inputs}</tbody>
</table>
<p class="muted">Change any input with a projection mapping (YAML or CLI), e.g. <code>{{"province": "79",
"surge_factor": 3, "headroom": 0.5}}</code>; [assumption] marks a factor not stated by a source.</p>
</body></html>
"""
