"""The numbers `haicap load` reports, without a run: the arrival plan follows the rate's integral, percentiles are
nearest-rank, a stage of a step run is judged by the run's own SLO gates on its own journeys (each journey in one
stage), the cutover's storm and burst follow the scenario selection, and impossible shape parameters are refused."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from haicap.errors import HaicapError
from haicap.loadtests.histograms import Latency, nearest_rank
from haicap.loadtests.journeys import Mix, load_mix_scenarios
from haicap.loadtests.recorder import Recorder
from haicap.loadtests.shapes import (
    LoadShape,
    ShapeSpec,
    StageIndex,
    arrival_times,
    build_shape,
    planned_arrivals,
    rate_integral,
)
from haicap.loadtests.slo import evaluate_slos, mix_slo
from haicap.loadtests.summary import NO_STAGE_MEASUREMENTS, build_stages, build_timeseries
from haicap.reports.capacity import capacity_answer, size_capacity, validate_stages
from haicap.reports.capacity_html import render_capacity_html


def _times(name: str, duration: float, params: Mapping[str, Any], max_rate: float = 200) -> list[float]:
    return [t for _, t in arrival_times(build_shape(name, duration, params).build(), max_rate)]


def _integral_between(shape: LoadShape, start: float, end: float, max_rate: float, step: float = 0.001) -> float:
    """∫ min(rate, max_rate) from start to end by a fine midpoint sum over rate(t) alone (not the scheduler's)."""
    cells = round((end - start) / step)
    return sum(min(shape.rate(start + (i + 0.5) * step), max_rate) for i in range(cells)) * step


# -- 1. the arrival plan follows the integral of the rate -----------------------------------------------
@pytest.mark.parametrize(("name", "duration", "params", "max_rate"), [
    ("soak", 10, {"rate": 3, "ramp_s": 2}, 200),
    ("soak", 60, {}, 200),
    ("spike", 60, {"base_rate": 0.05}, 200),
    ("step", 60, {"start_rate": 0.1}, 200),
    ("step", 9, {"stages": 2, "start_rate": 1, "step_rate": 3}, 200),
    ("cutover", 60, {}, 200),
    ("cutover", 30, {"peak_rate": 3}, 5),  # the storm clipped to the cap
])
def test_arrivals_follow_the_integral_of_the_rate_every_second(
    name: str, duration: float, params: dict[str, Any], max_rate: float,
) -> None:
    shape = build_shape(name, duration, params).build()
    times = [t for _, t in arrival_times(shape, max_rate)]
    assert times == sorted(times) and all(0 <= t < duration for t in times)
    so_far = 0.0
    for second in range(1, math.ceil(duration) + 1):  # arrivals so far = ∫ rate so far, rounded
        until = min(second, duration)
        so_far += _integral_between(shape, second - 1, until, max_rate)
        assert abs(sum(1 for t in times if t < until) - so_far) <= 1, second
    # the summary's target (planned / duration) agrees with the shape's integral / duration
    assert len(times) == planned_arrivals(shape, max_rate)
    assert abs(len(times) - rate_integral(shape, max_rate)) <= 0.5 + 1e-9
    assert rate_integral(shape, max_rate) == pytest.approx(so_far, abs=0.05)


def test_a_ramp_from_zero_is_followed_not_skipped() -> None:
    times = _times("soak", 10, {"rate": 3, "ramp_s": 2})
    assert len(times) == 27  # 3 during the ramp + 24 after (the old schedule started 1 journey in all)
    assert {int(t) for t in times} == set(range(10))  # every second has arrivals
    default = _times("soak", 60, {})
    assert len(default) == 220  # 20 during the 10 s ramp + 200 (the old one: 41, none from 0.05 s to 50 s)
    assert max(b - a for a, b in itertools.pairwise(default)) < 2.3


def test_low_rates_and_steps_get_their_own_arrivals() -> None:
    spike = _times("spike", 60, {"base_rate": 0.05})  # the old schedule never reached the spike at 24 s
    assert sum(1 for t in spike if 24 <= t < 34) == 200 and sum(1 for t in spike if t < 24) == 1
    step = build_shape("step", 60, {"start_rate": 0.1}).build()  # 5 stages of 12 s: 0.1, 2.1, 4.1, 6.1, 8.1/s
    times = [t for _, t in arrival_times(step, 200)]
    per_stage = [sum(1 for t in times if s.start <= t < s.end) for s in step.stages()]
    assert all(abs(count - s.target_rate * 12) < 1 for count, s in zip(per_stage, step.stages(), strict=True))
    assert sum(per_stage) == 246 and per_stage[0] == 1  # ∫ = 246; the old schedule: arrivals at 0, 10, 20 s …
    zero = _times("spike", 20, {"base_rate": 0, "spike_at": 0.5, "spike_s": 2, "spike_rate": 5})
    assert len(zero) == 10 and all(10 <= t < 12 for t in zero)  # no arrival while the rate is 0


def test_a_shape_that_is_not_piecewise_linear_is_integrated_by_sampling() -> None:
    class Wave(LoadShape):
        name = "wave"

        def rate(self, t: float) -> float:
            return 10 * math.sin(math.pi * t / 10) ** 2

    wave = Wave(10, {})
    times = [t for _, t in arrival_times(wave, 200)]
    assert len(times) == 50 and sum(1 for t in times if t < 5) == 25  # ∫ = 50, symmetric
    assert times == [t for _, t in arrival_times(wave, 200)]  # deterministic


def test_timeseries_target_is_the_arrivals_planned_in_each_second() -> None:
    shape = build_shape("soak", 10, {"rate": 3, "ramp_s": 2}).build()
    series = build_timeseries(Recorder(0.0), shape, 200)["samples"]
    planned = [sum(1 for t in _times("soak", 10, {"rate": 3, "ramp_s": 2}) if s <= t < s + 1) for s in range(10)]
    assert [s["target_rate"] for s in series] == planned
    assert planned[0] > 0 and planned[1] > 0 and all(p == 3 for p in planned[2:])  # the old one: 0 for t=1..9
    assert sum(planned) == planned_arrivals(shape, 200)


# -- 4. percentiles are nearest-rank ---------------------------------------------------------------------
def test_percentiles_are_nearest_rank() -> None:
    latency = Latency()
    for ms in [100.0] * 158 + [5000.0] * 2:
        latency.record_ms(ms)
    assert latency.percentile_ms(99) == pytest.approx(5000, rel=0.001)  # rank ceil(158.4) = 159: a 5 s sample
    assert latency.percentile_ms(98.75) == pytest.approx(100, rel=0.001)  # rank 158 exactly
    assert latency.percentile_ms(0) == pytest.approx(100, rel=0.001)
    assert latency.percentile_ms(100) == pytest.approx(5000, rel=0.001)
    assert [nearest_rank(95, 20), nearest_rank(99, 160), nearest_rank(50, 1), nearest_rank(0, 7),
            nearest_rank(100, 7), nearest_rank(99.9, 1000)] == [19, 159, 1, 1, 7, 999]


def test_percentiles_agree_with_exact_nearest_rank_computation() -> None:
    rng = random.Random(7)
    for n in (1, 2, 19, 20, 21, 99, 100, 101, 160, 1234):
        values = [round(rng.lognormvariate(4, 1.2), 3) for _ in range(n)]
        latency = Latency()
        for v in values:
            latency.record_ms(v)
        ordered = sorted(values)
        for p in (50, 90, 95, 99, 99.9):
            exact = ordered[nearest_rank(p, n) - 1]
            assert latency.percentile_ms(p) == pytest.approx(exact, rel=0.0011, abs=0.002), (n, p)


def test_a_p99_gate_over_160_samples_sees_the_two_slow_ones() -> None:
    rec = Recorder()
    for ms in [100.0] * 158 + [5000.0] * 2:  # birth-registration / submit_dossier: p99 ≤ 2000 ms
        rec.step("birth-registration", "submit_dossier", ms, True)
    breaches = evaluate_slos(rec, load_mix_scenarios())["breaches"]
    assert [(b["step"], b["metric"]) for b in breaches] == [("submit_dossier", "p99_ms")]


# -- 2. and 8. stages: judged by the gate's rule, each journey in one stage --------------------------------
LOGIN_SUBMIT = """id: login-submit
title: sign in, submit
rule: "tests"
weight: 1
slo: {p95_ms: 20, error_rate: 0.01}
steps:
  - sso_login: {}
  - submit_dossier: {procedure: "1.001193"}
"""


@pytest.fixture(scope="module")
def login_submit(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("scenarios")
    (folder / "login-submit.yaml").write_text(LOGIN_SUBMIT, encoding="utf-8")
    return load_mix_scenarios([folder])


def _journeys(rec: Recorder, count: int, login_ms: float, submit_ms: float = 10.0, start: float = 0.5) -> None:
    """``count`` login-submit journeys: sso_login is 3 HTTP requests of login_ms / 3 each, submit one request."""
    for _ in range(count):
        rec.arrival(0.0)
        for _ in range(3):
            rec.request("sso_login", login_ms / 3, False)
        rec.step("login-submit", "sso_login", login_ms, True)
        rec.request("submit_dossier", submit_ms, False)
        rec.step("login-submit", "submit_dossier", submit_ms, True)
        rec.journey("login-submit", login_ms + submit_ms, True)


def _step_run(scenarios: dict[str, Any], journeys: list[int], login_ms: float,
              ) -> tuple[dict[str, Any], dict[str, Any], dict[int, Recorder]]:
    """A 12 s step run of 2 stages (3/s, 5/s): the whole run's recorder and one per stage (by intended start)."""
    shape = build_shape("step", 12, {"stages": 2, "start_rate": 3, "step_rate": 2}).build()
    run, by_stage = Recorder(0.0), {}
    for index, count in enumerate(journeys):
        by_stage[index] = Recorder(0.0)
        for rec in (run, by_stage[index]):
            _journeys(rec, count, login_ms)
    stages = build_stages(run, shape, 200, mix_slo(scenarios, ["login-submit"]), by_stage)
    stages["rate_unit"] = "iterations/s"
    return stages, evaluate_slos(run, scenarios), by_stage


def test_a_stage_is_judged_by_the_gates_the_run_exits_on(login_submit: dict[str, Any]) -> None:
    # sso_login takes 35 ms (3 requests of ~12 ms): the step's p95 20 ms gate breaches, the requests look fine
    stages, gate, by_stage = _step_run(login_submit, [36, 60], login_ms=35.0)
    assert [(b["scenario"], b["step"], b["metric"]) for b in gate["breaches"]] == [
        ("login-submit", "sso_login", "p95_ms")]
    for entry in stages["stages"]:
        assert entry["p95_ms"] < 20  # on single HTTP requests the stage would have "met" the SLO
        assert entry["gates"]["judged"] and entry["gates"]["breaches"] == evaluate_slos(
            by_stage[entry["index"]], login_submit)["breaches"]  # the very same rule, on the stage's journeys
    validate_stages(stages)
    sizing = size_capacity(stages, {"communes": 10})
    assert [s["verdict"] for s in sizing["stages"]] == ["breaches SLO", "breaches SLO"]
    assert sizing["knee"] is None and sizing["instances"] is None
    assert sizing["stages"][0]["reasons"] == ["login-submit / sso_login: p95 35 ms > 20 ms (36 samples)"]
    assert "no stage met the SLO: the system breached it at 6.0 iterations/s (stage 0)" in " ".join(sizing["notes"])
    html = render_capacity_html(stages, {"interval_s": 1, "samples": []}, sizing)
    assert "login-submit / sso_login: p95 35 ms &gt; 20 ms" in html and "SLO gates" in html


def test_stages_within_every_gate_meet_the_slo_and_give_the_knee(login_submit: dict[str, Any]) -> None:
    stages, gate, _ = _step_run(login_submit, [36, 60], login_ms=15.0)
    assert gate["passed"]
    sizing = size_capacity(stages, {"communes": 10})
    assert [s["verdict"] for s in sizing["stages"]] == ["meets SLO", "meets SLO"]
    assert sizing["knee"]["index"] == 1 and sizing["knee"]["achieved_rate"] == 10.0  # 60 started in 6 s


def test_a_stage_with_too_few_samples_is_only_partly_judged(login_submit: dict[str, Any]) -> None:
    stages, _, _ = _step_run(login_submit, [12, 60], login_ms=15.0)  # 12 < 20 samples for a p95
    sizing = size_capacity(stages, {"communes": 10})
    assert [s["verdict"] for s in sizing["stages"]] == ["no breach (partly judged)", "meets SLO"]
    reason = sizing["stages"][0]["reasons"][0]
    assert reason.startswith("judged 3 of 5 gates, none breached; too few samples to judge login-submit / "
                             "sso_login p95 (12 < 20)"), reason
    assert sizing["knee"]["index"] == 1 and sizing["knee_lower_bound"] == 10.0  # fully judged, nothing above breached
    breached, _, _ = _step_run(login_submit, [12, 60], login_ms=35.0)
    found = size_capacity(breached, {"communes": 10})
    assert found["knee"]["index"] == 0 and found["knee_is_lower_bound"] and found["knee_lower_bound"] == 2.0
    assert "knee between 2.0 and 10.0 iterations/s: stage 1 breached" in " ".join(found["notes"])
    assert capacity_answer(found).startswith("capacity: knee ≥ 2.0 iterations/s (a lower bound)")


def test_partly_judged_stages_without_a_breach_give_a_lower_bound(login_submit: dict[str, Any]) -> None:
    stages, _, _ = _step_run(login_submit, [12, 15], login_ms=15.0)  # no stage has 20 samples per p95 gate
    sizing = size_capacity(stages, {"communes": 10})
    assert sizing["knee"]["index"] == 1 and sizing["knee_lower_bound"] == 2.5 and sizing["instances"] is not None
    assert "knee ≥ 2.5 iterations/s: no stage breached the gates it could judge" in " ".join(sizing["notes"])
    answer = capacity_answer(sizing)
    assert answer.startswith("capacity: knee ≥ 2.5 iterations/s (a lower bound); the projected peak") and (
        f"needs at most {sizing['instances']} instance" in answer)


def test_without_per_stage_measurements_no_stage_meets_the_slo(login_submit: dict[str, Any]) -> None:
    shape = build_shape("step", 12, {"stages": 2, "start_rate": 3, "step_rate": 2}).build()
    run = Recorder(0.0)
    for second in range(12):
        sample = run.second(second + 0.5)
        sample.started, sample.requests = 3, 12
        sample.latency.record_ms(5.0)
    stages = build_stages(run, shape, 200, mix_slo(login_submit, ["login-submit"]))
    assert all(not s["gates"]["judged"] and s["gates"]["note"] == NO_STAGE_MEASUREMENTS for s in stages["stages"])
    sizing = size_capacity(stages, {"communes": 10})
    assert [s["verdict"] for s in sizing["stages"]] == ["not judged", "not judged"] and sizing["knee"] is None


def test_each_journey_counts_in_one_stage_by_its_intended_start() -> None:
    # 9 s in 2 stages of 4.5 s at 1/s and 4/s: boundary seconds belonged to both stages before (199 vs 190)
    shape = build_shape("step", 9, {"stages": 2, "start_rate": 1, "step_rate": 3}).build()
    index = StageIndex(shape, 200)
    arrivals = list(arrival_times(shape, 200))
    assert [index.of_arrival(n) for n, _ in arrivals] == [index.of_time(t) for _, t in arrivals]
    assert [index.planned(i) for i in range(2)] == [4, 18] and sum(map(index.planned, range(2))) == len(arrivals)
    assert index.of_time(4.5) == 1 and index.of_time(4.4999) == 0  # an arrival due on the boundary: the later stage
    run, by_stage = Recorder(0.0), {0: Recorder(0.0), 1: Recorder(0.0)}
    for n, t in arrivals:  # each arrival's request completes 0.8 s after its intended start, often the next second
        stage = by_stage[index.of_arrival(n)]
        stage.second(t).started += 1
        stage.request("submit_dossier", 800.0, False)
        run.requests.setdefault("submit_dossier", type(run.totals())()).ok += 1
        run.second(t).started += 1
        sample = run.second(t + 0.8)
        sample.requests += 1
        sample.latency.record_ms(800.0)
    exact = build_stages(run, shape, 200, {"p95_ms": None, "p99_ms": None, "error_rate": None, "gates": []},
                         by_stage)["stages"]
    assert [s["target_rate"] for s in exact] == [1, 4]  # the shape's rates, not 1.111 and 3.556
    assert [s["planned"] for s in exact] == [s["started"] for s in exact] == [4, 18]
    assert [s["achieved_rate"] for s in exact] == [round(4 / 4.5, 3), 4.0]
    assert sum(s["requests"] for s in exact) == run.totals().ok == 22
    by_seconds = build_stages(run, shape, 200, mix_slo({}, []))["stages"]  # no per-stage data: seconds, once each
    assert sum(s["requests"] for s in by_seconds) == sum(s.requests for s in run.seconds.values()) == 22
    assert sum(s["started"] for s in by_seconds) == 22 and [s["target_rate"] for s in by_seconds] == [1, 4]


def test_stage_targets_are_clipped_to_the_rate_cap() -> None:
    shape = build_shape("step", 10, {"stages": 2, "start_rate": 3, "step_rate": 5}).build()
    stages = build_stages(Recorder(0.0), shape, 5, mix_slo({}, []))["stages"]
    assert [s["target_rate"] for s in stages] == [3, 5] and [s["planned"] for s in stages] == [15, 25]


def test_a_stages_document_without_gate_results_keeps_the_minimum_sample_rule() -> None:
    def stage(index: int, requests: int) -> dict[str, Any]:
        return {"index": index, "target_rate": 5, "achieved_rate": 5, "duration_s": 30, "requests": requests,
                "errors": 0, "error_rate": 0.0, "p50_ms": 50, "p95_ms": 100, "p99_ms": 150, "generator_kept_up": True}

    doc = {"slo": {"p95_ms": 800, "p99_ms": None, "error_rate": 0.01}, "stages": [stage(0, 12), stage(1, 300)]}
    sizing = size_capacity(doc, {"communes": 10})  # a hand-written or older stages.json: stage-level numbers
    assert [s["verdict"] for s in sizing["stages"]] == ["not judged", "meets SLO"]
    assert "requests p95 (12 < 20)" in sizing["stages"][0]["reasons"][0]
    html = render_capacity_html(doc, {"interval_s": 1, "samples": []}, sizing)
    assert "class='v not-judged'" in html


def test_a_malformed_gates_entry_in_a_stages_document_is_refused(login_submit: dict[str, Any]) -> None:
    stages, _, _ = _step_run(login_submit, [36, 60], login_ms=35.0)
    stages["stages"][1]["gates"] = {"judged": "yes"}
    with pytest.raises(HaicapError, match=r"stages\[index=1\]\.gates must be an object with judged"):
        validate_stages(stages)
    stages["stages"][1]["gates"] = {"judged": True, "breaches": [{"metric": "p95_ms"}], "insufficient": []}
    with pytest.raises(HaicapError, match=r"stages\[index=1\]\.gates\.breaches must be a list of objects"):
        size_capacity(stages)


# -- 7. the cutover's storm and burst follow the scenario selection --------------------------------------
def test_the_cutover_runs_storm_and_burst_journeys_only_when_selected() -> None:
    spec = build_shape("cutover", 60, {})
    default, only_births = spec.build(), spec.with_selection(["birth-registration"]).build()
    storm_t, burst_t = 0.5, (15 + 50 / 60 - 7) * 3600 / 600
    assert default.mix(storm_t)["first-login"] > 0 and default.mix(burst_t)["batch-resync"] > 0
    assert only_births.mix(storm_t) is None and only_births.mix(burst_t) is None
    assert only_births.rate(storm_t) == pytest.approx(default.mix(storm_t)["*"])  # the office day alone
    assert "no first-login storm (first-login is not among the selected scenarios)" in only_births.describe()
    assert "no batch re-sync burst (batch-resync is not among the selected scenarios)" in only_births.describe()
    assert only_births.events() == default.events()  # the national outage tests the province's queue either way
    # workers build the shape from the plan's JSON: the selection travels with it
    travelled = ShapeSpec(**json.loads(json.dumps(spec.with_selection(["birth-registration"]).as_dict())))
    assert travelled.build().mix(storm_t) is None
    scenarios = load_mix_scenarios()
    mix, rng = Mix.build(scenarios, ["birth-registration"]), random.Random(1)
    chosen = {mix.choose(rng, only_births.mix(t / 10)).id for t in range(600)}  # every 0.1 s of the day
    assert chosen == {"birth-registration"}
    with_storm = spec.with_selection(["birth-registration", "first-login"]).build()
    assert with_storm.mix(storm_t)["first-login"] > 0 and with_storm.mix(burst_t) is None


# -- 12. impossible shape parameters -------------------------------------------------------------------
@pytest.mark.parametrize(("name", "duration", "params", "message"), [
    ("spike", 20, {"spike_at": 1.0}, "shape spike: params.spike_at: 1 puts the 10 s spike at 20–30 s, past the end "
                                     "of the 20 s run; allowed: 0 to 0.5 with spike_s 10"),
    ("spike", 60, {"spike_at": 0.9}, "params.spike_at: 0.9 puts the 10 s spike at 54–64 s"),
    ("spike", 5, {}, "shape spike: params.spike_s: 10 s of spike is longer than the 5 s run; allowed: up to 5"),
    ("step", 3, {"stages": 5}, "shape step: params.stages: 5 stages of 0.6 s in a 3 s run are shorter than 1 s; "
                               "allowed: 1 to 3"),
    ("cutover", 60, {"resync_at": "18:00"}, "params.resync_at: '18:00' is outside the office day 07:00–17:00; "
                                            "allowed: 07:00 to 16:59"),
    ("cutover", 60, {"resync_minutes": 120}, "params.resync_minutes: 120 minutes from 15:40 run the re-sync burst "
                                             "past closing (17:00); allowed: 0 to 80"),
    ("cutover", 60, {"outage_minutes": 600}, "params.outage_minutes: 600 minutes before 15:40 start the sync outage "
                                             "before opening (07:00); allowed: 0 to 520"),
    ("cutover", 60, {"close": "08:00", "resync_at": "07:40", "storm_minutes": 90},
     "params.storm_minutes: 90 minutes of storm is longer than the office day 07:00–08:00; allowed: 0 to 60"),
    ("step", 10, {"start_rate": 0, "step_rate": 0}, "shape step: every rate is 0 over the 10 s: no journey would"),
])
def test_impossible_shape_parameters_are_refused(
    name: str, duration: float, params: dict[str, Any], message: str,
) -> None:
    with pytest.raises(HaicapError) as refused:
        build_shape(name, duration, params)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_possible_edge_parameters_are_accepted() -> None:
    spike = build_shape("spike", 20, {"spike_at": 0.5, "spike_s": 10}).build()  # ends exactly at the end
    assert "from 10 s to 20 s" in spike.describe()
    ramp = build_shape("soak", 5, {"rate": 4, "ramp_s": 10}).build()  # a ramp only: allowed, and said so
    assert "a ramp only, 0 → 2/s over the 5 s" in ramp.describe() and "never reaches 4/s" in ramp.describe()
    build_shape("cutover", 60, {"resync_at": "18:00", "outage_minutes": 0, "resync_minutes": 0})  # no burst, no outage


def test_the_cli_refuses_a_spike_outside_the_run_in_one_line(tmp_path: Path, capsys: Any) -> None:
    from haicap.cli import main

    assert main(["load", "--shape", "spike", "--duration", "20", "--set", "spike_at=1.0",
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "params.spike_at: 1 puts the 10 s spike at 20–30 s" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_stage_measurements_travel_from_workers_to_the_master_apart_per_stage() -> None:
    worker_a, worker_b, master = Recorder(0.0), Recorder(0.0), Recorder(0.0)
    for rec, stage in ((worker_a, 0), (worker_b, 1), (worker_b, 0)):
        rec.arrival(0.0, stage=stage)
        rec.request("sso_login", 5.0, False, stage=stage)
        rec.step("login-submit", "sso_login", 35.0, True, stage=stage)
        rec.journey("login-submit", 40.0, True, stage=stage)
    rec_report = worker_b.take_report()  # a report mid-run hands the stages over too, and starts afresh
    assert worker_b.stages == {}
    master.add_report(worker_a.take_report(final=True))
    master.add_report(rec_report)
    assert sorted(master.stages) == [0, 1]
    assert master.stages[0].journeys["login-submit"].ok == 2 and master.stages[1].journeys["login-submit"].ok == 1
    assert master.journeys["login-submit"].ok == 3  # the run's own totals as before
    assert sum(s.started for s in master.stages[0].seconds.values()) == 2


def test_the_console_prints_the_capacity_answer_with_the_projection(login_submit: dict[str, Any],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from haicap.loadtests.run import _print_capacity

    stages, _, _ = _step_run(login_submit, [36, 60], login_ms=15.0)
    sizing = size_capacity(stages, {"province": "79"})
    sizing["answer"] = capacity_answer(sizing)
    _print_capacity(sizing)
    printed = capsys.readouterr().out
    assert printed.startswith("capacity: knee ≥ 10.0 iterations/s (a lower bound); the projected peak")
    assert "projected peak of province 79" in printed and "communes ×" in printed
    assert "HCMC: > 645,000 dossiers" in printed and "assumptions: office_hours 8" in printed


def test_a_sync_sla_breach_vetoes_the_knee(login_submit: dict[str, Any]) -> None:
    from haicap.loadtests.run import _veto_by_sync_sla

    stages, _, _ = _step_run(login_submit, [36, 60], login_ms=15.0)
    sizing = size_capacity(stages, {"communes": 10})
    assert sizing["knee"] is not None
    _veto_by_sync_sla(sizing, {"breaches": [{"metric": "sync_sla", "actual": "419 of 419 late or never received"}]})
    assert sizing["knee"] is None and sizing["instances"] is None
    assert capacity_answer(sizing).startswith("capacity: no knee — the sync-SLA gate breached over the run")


def test_partly_judged_stages_are_drawn_and_styled_in_the_capacity_report(login_submit: dict[str, Any]) -> None:
    stages, _, _ = _step_run(login_submit, [12, 15], login_ms=15.0)
    sizing = size_capacity(stages, {"communes": 10})
    html = render_capacity_html(stages, {"interval_s": 1, "samples": []}, sizing)
    assert "class='v no-breach-partly-judged'" in html and ".no-breach-partly-judged{" in html
