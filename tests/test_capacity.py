"""Capacity sizing and the capacity report, on synthetic step-run documents (no load is generated here)."""

from __future__ import annotations

import base64
import copy
import math
import re
from typing import Any

import pytest

from haicap.errors import HaicapError
from haicap.reports.capacity import Projection, size_capacity, validate_stages
from haicap.reports.capacity_html import render_capacity_html

SLO = {"p95_ms": 800, "p99_ms": 2000, "error_rate": 0.01}


def stage(index: int, rate: float, p95: float, *, p99: float | None = None, error_rate: float = 0.0,
          kept_up: bool = True, achieved: float | None = None) -> dict[str, Any]:
    achieved = rate if achieved is None else achieved
    requests = int(achieved * 30)
    return {"index": index, "target_rate": rate, "achieved_rate": achieved, "duration_s": 30,
            "requests": requests, "errors": round(requests * error_rate), "error_rate": error_rate,
            "p50_ms": p95 / 3, "p95_ms": p95, "p99_ms": p95 * 2 if p99 is None else p99,
            "generator_kept_up": kept_up}


def doc(*stages: dict[str, Any]) -> dict[str, Any]:
    return {"slo": dict(SLO), "stages": list(stages)}


def timeseries(stages_doc: dict[str, Any]) -> dict[str, Any]:
    samples = []
    t = 0
    for s in stages_doc["stages"]:
        for _ in range(5):
            t += 1
            samples.append({"t": t, "target_rate": s["target_rate"], "achieved_rate": s["achieved_rate"],
                            "p50_ms": s["p50_ms"], "p95_ms": s["p95_ms"], "p99_ms": s["p99_ms"], "errors": 0,
                            "requests": int(s["achieved_rate"]), "in_flight": 2,
                            "backlog": 0 if s["generator_kept_up"] else 50,
                            "generator_cpu": 0.4 if s["generator_kept_up"] else 0.95})
    return {"interval_s": 1, "samples": samples}


STAIRCASE = doc(stage(0, 50, 40), stage(1, 100, 90), stage(2, 200, 400), stage(3, 300, 1500))


# -- the knee ------------------------------------------------------------------------------------------
def test_knee_is_the_highest_stage_meeting_the_slo() -> None:
    sizing = size_capacity(STAIRCASE)
    assert sizing["knee"]["index"] == 2
    assert sizing["knee"]["achieved_rate"] == 200
    assert [s["verdict"] for s in sizing["stages"]] == ["meets SLO"] * 3 + ["breaches SLO"]
    assert sizing["knee_is_lower_bound"] is False
    assert "p95 1,500 ms > 800 ms" in sizing["stages"][3]["reasons"]


def test_knee_uses_achieved_not_target_throughput() -> None:
    sizing = size_capacity(doc(stage(0, 100, 50, achieved=97.5), stage(1, 200, 900, achieved=150)))
    assert sizing["knee"]["achieved_rate"] == 97.5


@pytest.mark.parametrize(
    ("breach", "reason"),
    [
        ({"p99": 2500}, "p99 2,500 ms > 2,000 ms"),
        ({"error_rate": 0.05}, "error rate 5.00% > 1.00%"),
        ({}, "p95 900 ms > 800 ms"),
    ],
)
def test_each_slo_dimension_excludes_a_stage(breach: dict[str, Any], reason: str) -> None:
    p95 = 900 if not breach else 100
    sizing = size_capacity(doc(stage(0, 50, 50), stage(1, 400, p95, **breach)))
    assert sizing["knee"]["index"] == 0
    assert sizing["stages"][1]["verdict"] == "breaches SLO"
    assert reason in sizing["stages"][1]["reasons"]


def test_generator_limited_stage_is_inconclusive_not_the_knee() -> None:
    # stage 2 looks great but the generator fell behind: it must not become the knee
    sizing = size_capacity(doc(stage(0, 50, 40), stage(1, 100, 60), stage(2, 400, 70, kept_up=False)))
    assert sizing["knee"]["index"] == 1
    assert sizing["stages"][2]["verdict"] == "inconclusive"
    assert any("inconclusive" in note and "2" in note for note in sizing["notes"])
    assert sizing["knee_is_lower_bound"] is True  # nothing conclusive breached


def test_stage_with_no_requests_is_inconclusive() -> None:
    empty = stage(1, 100, 0)
    empty.update(requests=0, errors=0, error_rate=None, p50_ms=None, p95_ms=None, p99_ms=None)
    sizing = size_capacity(doc(stage(0, 50, 40), empty))
    assert sizing["stages"][1]["verdict"] == "inconclusive"
    assert sizing["knee"]["index"] == 0


def test_no_stage_meets_the_slo_gives_no_instances() -> None:
    sizing = size_capacity(doc(stage(0, 50, 900), stage(1, 100, 1200)))
    assert sizing["knee"] is None and sizing["instances"] is None
    assert any("no stage met the SLO" in n for n in sizing["notes"])
    assert "not computable" in sizing["arithmetic"][-1]


def test_stage_order_follows_index_not_list_order() -> None:
    shuffled = doc(stage(3, 300, 1500), stage(0, 50, 40), stage(2, 200, 400), stage(1, 100, 90))
    assert size_capacity(shuffled)["knee"]["index"] == 2


def test_null_slo_dimension_is_not_checked() -> None:
    d = doc(stage(0, 50, 40), stage(1, 100, 90, p99=9000))
    d["slo"]["p99_ms"] = None
    assert size_capacity(d)["knee"]["index"] == 1


# -- projection and instances --------------------------------------------------------------------------
def test_instances_arithmetic_with_explicit_projection() -> None:
    projection = Projection(communes=100, dossiers_per_commune_day=80, office_hours=8, peak_hour_factor=1.5,
                            surge_factor=3, requests_per_dossier=12, headroom=0.5)
    sizing = size_capacity(doc(stage(0, 20, 50), stage(1, 40, 900)), projection)
    # 80/8*1.5 = 15 dossiers per commune-hour; ×100 communes ×3 surge = 4,500/h; ×12 / 3600 = 15 req/s
    assert sizing["peak"]["dossiers_per_commune_hour"] == pytest.approx(15)
    assert sizing["peak"]["dossiers_per_hour"] == pytest.approx(4500)
    assert sizing["peak"]["rate"] == pytest.approx(15)
    assert sizing["peak"]["rate_with_headroom"] == pytest.approx(22.5)
    assert sizing["instances"] == math.ceil(22.5 / 20) == 2
    assert "instances = ceil(22.50 / 20.0 requests/s per instance) = ceil(1.125) = 2" in sizing["arithmetic"]


def test_exact_multiple_does_not_round_up_an_extra_instance() -> None:
    projection = {"communes": 100, "dossiers_per_commune_day": 80, "surge_factor": 3, "requests_per_dossier": 12,
                  "headroom": 0.0}  # exactly 15 req/s
    sizing = size_capacity(doc(stage(0, 5, 50)), projection)
    assert sizing["instances"] == 3


def test_knee_per_instance_divides_by_instances_tested() -> None:
    projection = Projection(communes=100, dossiers_per_commune_day=80, surge_factor=3, requests_per_dossier=12,
                            headroom=0, instances_tested=2)
    sizing = size_capacity(doc(stage(0, 10, 50)), projection)  # 10 req/s over 2 instances → 5 each
    assert sizing["knee_per_instance"] == 5
    assert sizing["instances"] == 3


def test_defaults_come_from_the_province() -> None:
    hanoi = size_capacity(STAIRCASE)  # default province 01: 126 communes, > 8,000 dossiers a day
    assert hanoi["projection"]["communes"] == 126
    assert hanoi["projection"]["dossiers_per_commune_day"] == pytest.approx(8000 / 126)
    assert hanoi["peak"]["rate"] == pytest.approx(8000 / 8 * 1.5 * 2 * 10 / 3600)
    other = size_capacity(STAIRCASE, {"province": "04"})  # Cao Bằng: no own figure → national 37
    assert other["projection"]["communes"] == 56
    assert other["projection"]["dossiers_per_commune_day"] == 37
    assert "national average" in other["sources"]["dossiers_per_commune_day"]


def test_iterations_unit_drops_requests_per_dossier() -> None:
    d = copy.deepcopy(STAIRCASE)
    d["rate_unit"] = "iterations/s"
    sizing = size_capacity(d, {"communes": 360, "dossiers_per_commune_day": 80, "surge_factor": 1})
    assert sizing["peak"]["rate"] == pytest.approx(360 * 15 / 3600)
    assert sizing["rate_unit"] == "iterations/s"


def test_cli_style_projection_values_are_coerced() -> None:
    # `--projection province=01 --projection surge_factor=3` arrives as YAML scalars (01 → 1) or strings
    sizing = size_capacity(STAIRCASE, {"province": 1, "surge_factor": "3", "communes": "100"})
    assert sizing["projection"]["province"] == "01"
    assert sizing["projection"]["surge_factor"] == 3.0
    assert sizing["projection"]["communes"] == 100


@pytest.mark.parametrize(
    ("projection", "message"),
    [
        ({"surge": 2}, "unknown projection key surge; valid keys: province"),
        ({"surge_factor": 0}, "surge_factor must be a positive number"),
        ({"headroom": -0.1}, "headroom must be a fraction"),
        ({"communes": 2.5}, "communes must be a whole number"),
        ({"province": "99"}, "unknown province code '99'"),
        ({"requests_per_dossier": "ten"}, "requests_per_dossier must be a positive number"),
    ],
)
def test_bad_projection_is_a_clear_error(projection: dict[str, Any], message: str) -> None:
    with pytest.raises(HaicapError, match=re.escape(message)):
        size_capacity(STAIRCASE, projection)


# -- bad stages documents ------------------------------------------------------------------------------
def _broken(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    d = copy.deepcopy(STAIRCASE)
    target = d
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([], "stages document must be a JSON object"),
        ({"slo": SLO, "stages": []}, "has no stages"),
        ({"slo": SLO}, "(document): 'stages' is a required property"),
        (_broken(("stages", 2, "p95_ms"), "fast"), "stages[2].p95_ms: 'fast' is not of type 'number', 'null'"),
        (_broken(("stages", 1, "generator_kept_up"), KeyError), "stages[1]: 'generator_kept_up' is a required"),
        (_broken(("stages", 0, "achieved_rate"), -1), "stages[0].achieved_rate: -1 is less than the minimum"),
        (_broken(("slo", "error_rate"), 5), "slo.error_rate: 5 is greater than the maximum of 1"),
        (_broken(("stages", 3, "index"), 0), "stage indexes repeat"),
        (_broken(("stages", 0, "errors"), 10_000), "more errors (10000) than requests"),
    ],
)
def test_invalid_stages_document_names_the_field(bad: Any, message: str) -> None:
    with pytest.raises(HaicapError, match=re.escape(message)):
        validate_stages(bad)
    with pytest.raises(HaicapError):
        size_capacity(bad)


# -- the HTML report -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report() -> str:
    d = doc(stage(0, 50, 40), stage(1, 100, 90), stage(2, 200, 400), stage(3, 300, 1500),
            stage(4, 400, 300, kept_up=False))
    return render_capacity_html(d, timeseries(d), size_capacity(d), title="Test <province>")


def test_html_is_self_contained(report: str) -> None:
    assert report.startswith("<!DOCTYPE html>")
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", report, flags=re.I)
    assert refs, "the report should reference its figures"
    assert all(ref.startswith("data:") for ref in refs), refs
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", report, flags=re.I)
    assert "<script" not in report.lower() and "<link" not in report.lower() and "@import" not in report


def test_html_embeds_both_figures_as_png(report: str) -> None:
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", report)
    assert len(images) == 2
    for data in images:
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_html_shows_knee_table_and_arithmetic(report: str) -> None:
    assert "Knee: <b>200.0 requests/s</b>" in report
    assert report.count("<tr class='knee'>") == 1
    assert "inconclusive" in report and "breaches SLO" in report
    assert "instances = ceil(" in report
    assert "Test &lt;province&gt;" in report  # escaped
    assert "surge_factor" in report and "[assumption]" in report


def test_html_without_a_knee_says_so() -> None:
    d = doc(stage(0, 50, 900))
    html = render_capacity_html(d, {"interval_s": 1, "samples": []}, size_capacity(d))
    assert "No knee" in html and "No time series samples" in html


def test_html_rejects_a_bad_timeseries() -> None:
    with pytest.raises(HaicapError, match=re.escape("invalid timeseries document: samples[0]: 't' is a required")):
        sample = {"target_rate": 1, "achieved_rate": 1, "p50_ms": 1, "p95_ms": 1, "p99_ms": 1}  # no "t"
        render_capacity_html(STAIRCASE, {"interval_s": 1, "samples": [sample]}, size_capacity(STAIRCASE))
