"""Load-test parts without a run: shapes, arrival schedule, mergeable histograms, reports, SLO gates, integrity."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from haicap.counterpart_client import CounterpartError
from haicap.errors import HaicapError
from haicap.loadtests.histograms import Latency, nearest_rank
from haicap.loadtests.integrity import check_integrity
from haicap.loadtests.journeys import Mix, load_mix_scenarios
from haicap.loadtests.recorder import Recorder
from haicap.loadtests.shapes import DEFAULT_MIX, arrival_times, build_shape, load_shape_file
from haicap.loadtests.slo import evaluate_slos, min_samples
from haicap.loadtests.summary import build_stages, build_timeseries


# -- shapes ----------------------------------------------------------------------------------------
def test_cutover_compresses_an_office_day_with_storm_and_burst() -> None:
    shape = build_shape("cutover", 30, {"peak_rate": 4, "surge_factor": 2}).build()
    assert "1,200×" in shape.describe()  # 10 h into 30 s
    peak = 8.0
    assert shape.rate(0.1) > peak  # the first-login storm on top of opening traffic
    assert shape.mix(0.1)["first-login"] > 0
    assert shape.rate(5) == pytest.approx(peak)  # 08:40, a morning peak, no storm any more
    assert shape.mix(5) is None
    assert shape.rate(15) < 0.5 * peak  # 12:00 lunch trough
    burst_t = (15 + 50 / 60 - 7) * 3600 / 1200  # 15:50, inside the re-sync burst
    assert shape.mix(burst_t)["batch-resync"] > 0 and shape.mix(burst_t)[DEFAULT_MIX] > 0
    [outage] = shape.events()
    assert outage.action == "sync-outage" and outage.at + outage.seconds == pytest.approx(
        (15 + 40 / 60 - 7) * 3600 / 1200)


def test_step_stages_have_equal_length_and_rising_rates() -> None:
    shape = build_shape("step", 20, {"stages": 4, "start_rate": 1, "step_rate": 2}).build()
    stages = shape.stages()
    assert [s.target_rate for s in stages] == [1, 3, 5, 7]
    assert {round(s.end - s.start, 9) for s in stages} == {5.0}
    assert shape.rate(4.99) == 1 and shape.rate(5.0) == 3 and shape.rate(19.9) == 7


def test_arrivals_follow_the_rate_and_are_clipped_to_the_cap() -> None:
    shape = build_shape("soak", 10, {"rate": 50, "ramp_s": 0}).build()
    assert sum(1 for _ in arrival_times(shape, 200)) == 500
    assert sum(1 for _ in arrival_times(shape, 20)) == 200
    spike = build_shape("spike", 10, {"base_rate": 2, "spike_rate": 10, "spike_at": 0.5, "spike_s": 2}).build()
    times = [t for _, t in arrival_times(spike, 200)]
    assert sum(1 for t in times if 5 <= t < 7) == 20 and sum(1 for t in times if t < 5) == 10


def test_unknown_shape_and_bad_parameters_name_the_valid_ones() -> None:
    with pytest.raises(HaicapError, match="valid shapes: cutover, soak, spike, step"):
        build_shape("ramp", 10)
    with pytest.raises(HaicapError, match=r"params\.surge_factor"):
        build_shape("cutover", 10, {"surge_factor": 0})
    with pytest.raises(HaicapError, match="close"):
        build_shape("cutover", 10, {"open": "17:00", "close": "07:00"})


def test_shape_file_errors_name_file_line_and_field(tmp_path: Any) -> None:
    path = tmp_path / "shape.yaml"
    path.write_text("shape: step\nduration: 20\nparams:\n  stages: 3\n  stage_rate: 4\n", encoding="utf-8")
    with pytest.raises(HaicapError, match=r"shape\.yaml:5: params\.stage_rate: unknown field"):
        load_shape_file(path)
    path.write_text("shape: step\nduration: -1\n", encoding="utf-8")
    with pytest.raises(HaicapError, match=r"shape\.yaml:2: duration"):
        load_shape_file(path)
    path.write_text("shape: step\nduration: 20\nparams: {stages: 2, start_rate: 3}\n", encoding="utf-8")
    spec = load_shape_file(path, overrides={"step_rate": 1})
    assert [s.target_rate for s in spec.build().stages()] == [3, 4]


# -- histograms and reports ------------------------------------------------------------------------
def _exact(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[nearest_rank(p, len(ordered)) - 1]


def test_histograms_merged_from_workers_keep_percentiles_within_a_percent() -> None:
    rng = random.Random(3)
    values = [rng.lognormvariate(3.5, 0.8) for _ in range(30_000)]
    parts = [Latency() for _ in range(3)]
    for i, v in enumerate(values):
        parts[i % 3].record_ms(v)
    merged = Latency()
    for part in parts:
        merged.merge(Latency.decode(part.encode()))  # as they travel from workers to the master
    assert merged.count == len(values)
    for p in (50, 95, 99):
        assert merged.percentile_ms(p) == pytest.approx(_exact(values, p), rel=0.01)


def test_reports_add_up_on_the_master() -> None:
    a, b, master = Recorder(1000.0), Recorder(1000.0), Recorder(1000.0)
    for rec, failed in ((a, False), (b, True)):
        rec.request("submit dossier", 10.0, failed)
        rec.step("birth-registration", "submit_dossier", 12.0, not failed, "failed: boom" if failed else "")
        rec.journey("birth-registration", 40.0, not failed)
        rec.dossier(f"M-{id(rec)}", "1", certain=True)
        rec.expectations.append([f"M-{id(rec)}", "1", 1010.0])
    master.add_report(a.take_report(final=True))
    master.add_report(b.take_report(final=True))
    assert master.totals().ok == 1 and master.totals().failed == 1
    assert master.journeys["birth-registration"].failed == 1
    assert len(master.accepted) == 2 and len(master.expectations) == 2
    assert a.take_report(final=True)["requests"] == {}  # a report hands over and starts afresh


def test_an_unfinished_journey_is_a_failed_journey_but_not_a_completion() -> None:
    rec, master = Recorder(), Recorder()
    rec.journey("birth-registration", 40.0, True)
    rec.unfinished_journey("birth-registration", 25_000.0)
    master.add_report(rec.take_report(final=True))
    entry = master.journeys["birth-registration"]
    assert (entry.ok, entry.failed) == (1, 1) and entry.latency.max_ms() == pytest.approx(25_000, rel=0.001)
    assert sum(s.completed for s in master.seconds.values()) == 1
    result = evaluate_slos(master, load_mix_scenarios())
    assert ("birth-registration", None, "error_rate") in {(b["scenario"], b["step"], b["metric"])
                                                         for b in result["breaches"]}


# -- SLO gates -------------------------------------------------------------------------------------
def test_slo_gate_lists_each_breach_and_passes_when_within() -> None:
    scenarios = load_mix_scenarios()
    rec = Recorder()
    for _ in range(200):
        rec.step("birth-registration", "submit_dossier", 50.0, True)
        rec.step("birth-registration", "sso_login", 900.0, True)  # step SLO 1200 ms: within
        rec.journey("birth-registration", 300.0, True)
    assert evaluate_slos(rec, scenarios) == {"passed": True, "breaches": [], "insufficient": []}
    for _ in range(20):
        rec.step("birth-registration", "submit_dossier", 5000.0, False, "failed: 503")
        rec.journey("birth-registration", 5000.0, False)
    result = evaluate_slos(rec, scenarios, {"late_count": 3, "checked": 10})
    found = {(b["scenario"], b["step"], b["metric"]) for b in result["breaches"]}
    assert not result["passed"]
    assert ("birth-registration", None, "error_rate") in found
    assert ("birth-registration", "submit_dossier", "p95_ms") in found
    assert ("birth-registration", "submit_dossier", "error_rate") in found
    assert (None, "expect_synced", "sync_sla") in found
    assert ("birth-registration", "sso_login", "p95_ms") not in found


def test_percentile_gates_with_too_few_samples_are_not_judged() -> None:
    assert (min_samples(95), min_samples(99)) == (20, 100)
    scenarios = load_mix_scenarios()  # birth-registration: p95 800 ms, p99 2000 ms; submit_dossier inherits them
    rec = Recorder()
    for i in range(19):  # 19 samples: too few for p95; one slow sample would be the "p99"
        rec.step("birth-registration", "submit_dossier", 5000.0 if i == 0 else 50.0, True)
    result = evaluate_slos(rec, scenarios)
    assert result["passed"] and result["breaches"] == []
    by_metric = {i["metric"]: i for i in result["insufficient"] if i["step"] == "submit_dossier"}
    assert by_metric["p95_ms"]["samples"] == 19 and by_metric["p95_ms"]["needed"] == 20
    assert by_metric["p99_ms"]["needed"] == 100 and by_metric["p99_ms"]["actual"] == pytest.approx(5000, rel=0.01)
    for _ in range(81):  # 100 samples: both percentiles mean something now; the p99 is judged (and breached)
        rec.step("birth-registration", "submit_dossier", 50.0, True)
    rec.step("birth-registration", "submit_dossier", 5000.0, True)
    result = evaluate_slos(rec, scenarios)
    assert [(b["step"], b["metric"]) for b in result["breaches"]] == [("submit_dossier", "p99_ms")]
    assert not [i for i in result["insufficient"] if i["step"] == "submit_dossier"]
    assert not result["passed"]


def test_unknown_scenario_names_the_valid_ones() -> None:
    with pytest.raises(HaicapError, match=r"valid scenarios: .*birth-registration.*first-login"):
        Mix.build(load_mix_scenarios(), ["birth-registraton"])


def test_stages_and_timeseries_from_measurements() -> None:
    shape = build_shape("step", 4, {"stages": 2, "start_rate": 2, "step_rate": 2}).build()
    rec = Recorder(0.0)
    for second, n in ((0, 2), (1, 2), (2, 4), (3, 4)):
        for _ in range(n):
            rec.second(second + 0.5).started += 1
            rec.second(second + 0.5).requests += 1
            rec.second(second + 0.5).latency.record_ms(20.0 * (second + 1))
    doc = build_stages(rec, shape, 200, {"p95_ms": 800, "p99_ms": 2000, "error_rate": 0.01})
    assert [(s["target_rate"], s["achieved_rate"], s["requests"]) for s in doc["stages"]] == [(2, 2, 4), (4, 4, 8)]
    series = build_timeseries(rec, shape, 200)["samples"]
    assert [s["target_rate"] for s in series] == [2, 2, 4, 4]
    assert series[3]["p95_ms"] == pytest.approx(80, rel=0.01)


# -- the open model's in-flight bound and the kept-up gate -----------------------------------------
def _schedule(max_in_flight: int, journey_s: float, grace_s: float = 5.0) -> Any:
    import gevent

    from haicap.loadtests.openmodel import ArrivalScheduler

    shape = build_shape("soak", 0.5, {"rate": 40, "ramp_s": 0}).build()  # 20 arrivals, one every 25 ms
    scheduler = ArrivalScheduler(shape, lambda n, intended, lag: gevent.sleep(journey_s), Recorder(),
                                 start_epoch=time.time(), max_rate=200, max_in_flight=max_in_flight)
    gevent.spawn(scheduler.run, grace_s).join(timeout=10)
    return scheduler


def test_a_slow_system_does_not_throttle_arrivals_under_a_generous_bound() -> None:
    scheduler = _schedule(max_in_flight=1000, journey_s=0.3)  # each journey outlives a dozen arrivals
    assert scheduler.started == 20 and scheduler.held_back == 0 and scheduler.dropped == 0
    assert scheduler.recorder.lag.percentile_ms(99) < 200  # started on time, not after the slow ones


def test_arrivals_held_back_by_the_bound_are_counted() -> None:
    scheduler = _schedule(max_in_flight=2, journey_s=0.3)
    assert scheduler.held_back == 18  # every arrival after the first two found the bound reached
    assert scheduler.started + scheduler.dropped == 20 and scheduler.dropped > 0


def test_journeys_still_running_after_the_grace_window_are_killed_and_counted() -> None:
    scheduler = _schedule(max_in_flight=1000, journey_s=3.0, grace_s=0.2)
    assert scheduler.started == 20 and scheduler.unfinished == 20 and scheduler.in_flight == 0


def _generator_of(held: int, cpu: float = 10.0) -> dict[str, Any]:
    from haicap.loadtests.run import _generator

    raw = {"workers": 2, "generators": [
        {"index": 1, "cpu_max": cpu, "started": 50, "requests": 200, "held_back": held, "dropped": 0},
        {"index": 0, "cpu_max": 5.0, "started": 50, "requests": 210, "held_back": 0, "dropped": 0}]}
    return _generator(raw, Recorder(0.0), 100, 40)


def test_summary_says_plainly_how_many_arrivals_were_held_back() -> None:
    fine = _generator_of(held=0)
    assert fine["kept_up"] and fine["not_kept_up"] == [] and fine["held_back"] == {
        "count": 0, "share": 0.0, "max_in_flight": 40}
    assert [w["index"] for w in fine["per_worker"]] == [0, 1] and fine["per_worker"][0]["requests"] == 210
    held = _generator_of(held=12)
    assert not held["kept_up"] and held["held_back"]["share"] == 0.12
    assert held["not_kept_up"] == ["12 of 100 arrivals (12.0%) held back by --max-in-flight 40"]
    assert "generator CPU 93% > 80%" in _generator_of(held=0, cpu=93.0)["not_kept_up"]


def test_a_run_that_did_not_keep_up_cannot_pass() -> None:
    from haicap.loadtests.run import decide

    fine, held = _generator_of(held=0), _generator_of(held=12)
    assert decide(True, True, fine) == (0, None)
    code, why = decide(True, True, held)
    assert code == 2 and why is not None and "did not keep up (12 of 100 arrivals (12.0%) held back" in why
    assert decide(True, True, held, require_kept_up=False) == (0, None)
    assert decide(True, False, held) == (1, None)  # a breach under less load than asked for is still a failure
    lagging = {**held, "start_lag_ms": {"p50": 10.0, "p95": 900.0, "p99": 3300.0}}
    small = [{"metric": "p95_ms", "limit": 1200, "actual": 4000.0}]
    code, why = decide(True, False, lagging, breaches=small)  # 2.8 s over, the generator 3.3 s late: inconclusive
    assert code == 2 and "start lag" in str(why)
    assert decide(True, False, lagging, breaches=[{"metric": "p95_ms", "limit": 1200, "actual": 9000.0}])[0] == 1
    assert decide(True, False, lagging, breaches=[{"metric": "error_rate", "limit": 0.01, "actual": 0.2}])[0] == 1
    assert decide(False, True, fine) == (2, None)


def test_a_run_cut_short_is_judged_on_what_it_measured() -> None:
    import signal

    from haicap.loadtests.run import decide

    fine, held = _generator_of(held=0), _generator_of(held=12)
    for cut in ({"stopped_by": signal.SIGTERM}, {"cut_short": "stopped at the time bound: …"}):
        assert decide(True, True, fine, **cut) == (3, None)  # incomplete, never "passed"
        assert decide(False, True, held, **cut) == (3, None)  # the workers' missing ends do not make it exit 2
        assert decide(False, True, fine, **cut, judged_any=False) == (2, None)  # nothing could be judged
        assert decide(True, False, fine, **cut) == (1, None)  # a gate it judged breached: still a failure


# -- integrity -------------------------------------------------------------------------------------
class _Ledger:
    def __init__(self, batches: list[list[dict[str, Any]]]) -> None:
        self.batches = batches
        self.calls = 0

    def synced_dossiers(self) -> list[dict[str, Any]]:
        self.calls += 1
        batch = self.batches[min(self.calls - 1, len(self.batches) - 1)]
        if batch is None:
            raise CounterpartError("ledger down")
        return batch


def test_integrity_waits_for_the_drain_then_lists_what_is_missing_or_stale() -> None:
    accepted = {"A": ["10", True], "B": ["4", True], "C": ["1", False], "D": ["2", True]}
    late = [{"MaHoSo": "A", "TrangThaiHoSo": "10"}, {"MaHoSo": "B", "TrangThaiHoSo": "2"},
            {"MaHoSo": "C", "TrangThaiHoSo": "4"}]
    ledger = _Ledger([[], late])
    result = check_integrity(ledger, accepted, drain_s=0.3, poll_s=0.05, say=lambda _: None)
    assert ledger.calls >= 2  # it polled again within the drain window
    assert result["accepted"] == 4 and result["synced"] == 2  # A exact, C present (status unknown)
    problems = {m["MaHoSo"]: m["problem"] for m in result["missing"]}
    assert problems == {"B": "stale status in the national ledger", "D": "not in the national ledger"}


def test_integrity_passes_as_soon_as_everything_arrived() -> None:
    ledger = _Ledger([[{"MaHoSo": "A", "TrangThaiHoSo": "1"}]])
    result = check_integrity(ledger, {"A": ["1", True]}, drain_s=30, say=lambda _: None)
    assert result["missing"] == [] and result["checked"] and result["drained_in_s"] < 5


# -- refused input: non-finite and out-of-range numbers, ports, profile hosts --------------------------
@pytest.mark.parametrize(("args", "message"), [
    (["--drain", "nan"], "argument --drain: 'nan': give a finite number ≥ 0 and ≤ 3600"),
    (["--drain", "inf"], "argument --drain: 'inf': give a finite number"),
    (["--drain", "-1"], "argument --drain: '-1': give a finite number"),
    (["--drain", "3601"], "argument --drain: '3601'"),
    (["--duration", "nan"], "argument --duration: 'nan': give a finite number > 0"),
    (["--duration", "inf"], "argument --duration: 'inf'"),
    (["--duration", "0"], "argument --duration: '0'"),
    (["--max-rate", "nan"], "argument --max-rate: 'nan': give a finite number > 0 and ≤ 100000"),
    (["--max-rate", "inf"], "argument --max-rate: 'inf'"),
    (["--max-rate", "0"], "argument --max-rate: '0'"),
    (["--max-rate", "1e9"], "argument --max-rate: '1e9'"),
    (["--master", "--master-port", "70000"], "argument --master-port: '70000': a port is 1..65535"),
    (["--worker", "--master-port", "-1"], "argument --master-port: '-1': a port is 1..65535"),
])
def test_non_finite_or_out_of_range_numbers_are_refused_by_the_parser(
    tmp_path: Any, capsys: Any, args: list[str], message: str,
) -> None:
    from haicap.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["load", "--shape", "soak", "--out", str(tmp_path / "out"), *args])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("error:") == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "rate=.nan"], "--set 'rate=.nan': give a finite number, not .nan"),
    (["--set", "rate=.inf"], "--set 'rate=.inf': give a finite number"),
    (["--set", "rate=-.inf"], "--set 'rate=-.inf': give a finite number"),
    (["--projection", "surge_factor=.nan"], "--projection 'surge_factor=.nan': give a finite number"),
    (["--master"], "--master needs --master-port 1..65535"),
    (["--worker"], "--worker needs --master-port 1..65535"),
])
def test_non_finite_shape_values_and_missing_ports_are_one_line_errors(
    tmp_path: Any, capsys: Any, args: list[str], message: str,
) -> None:
    from haicap.cli import main

    assert main(["load", "--shape", "soak", "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_shape_params_must_be_finite_numbers() -> None:
    for params in ({"rate": float("nan")}, {"rate": float("inf")}, {"ramp_s": float("nan")}):
        with pytest.raises(HaicapError, match=r"params\.\w+: must be a finite number"):
            build_shape("soak", 10, params)
    with pytest.raises(HaicapError, match="duration: must be a finite number"):
        build_shape("soak", float("nan"))


def test_a_shape_file_with_a_non_finite_number_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "shape.yaml"
    path.write_text("shape: soak\nduration: 10\nparams:\n  rate: .nan\n", encoding="utf-8")
    with pytest.raises(HaicapError, match=r"shape\.yaml:4: params\.rate: must be a finite number"):
        load_shape_file(path)


def test_run_options_from_the_api_are_checked_as_the_cli_checks_them(tmp_path: Any) -> None:
    from haicap.loadtests.run import LoadOptions, run_load

    spec = build_shape("soak", 1, {"rate": 1})
    for field, value, message in (("max_rate", float("nan"), "--max-rate must be a finite number"),
                                  ("max_rate", float("inf"), "--max-rate must be a finite number"),
                                  ("drain_s", float("nan"), "--drain must be a finite number"),
                                  ("drain_s", float("inf"), "--drain must be a finite number")):
        with pytest.raises(HaicapError, match=message):
            run_load(LoadOptions(shape=spec, out=tmp_path / "out", **{field: value}))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("field", "urls"), [
    ("national.public_url", {"public": "http://192.0.2.10"}),
    ("credentials.oidc_redirect_uri", {"redirect": "http://192.0.2.10/auth/callback"}),
    ("credentials.payment_callback_url", {"callback": "https://pay.example.org/DvcPayment/Confirm"}),
])
def test_every_url_a_profile_names_must_be_loopback_or_allowed(
    tmp_path: Any, capsys: Any, field: str, urls: dict[str, str], profile_file: Any,
) -> None:
    from haicap.cli import main

    loopback = {"public": "http://127.0.0.1:8710", "redirect": "http://127.0.0.1:9/auth/callback",
                "callback": "http://127.0.0.1:9/DvcPayment/Confirm"}
    given = {**loopback, **urls}
    profile = profile_file(f"  payment_callback_url: '{given['callback']}'\n", public_url=given["public"],
                           secret_env="SECRET", redirect_uri=given["redirect"])
    assert main(["load", "--shape", "soak", "--profile", str(profile), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"profile.yaml: {field}: refusing to load" in err and "not a loopback address" in err
    assert err.count("\n") == 1
    host = urls[next(iter(urls))].split("/")[2]
    profile_allowed = ["--allow-target", host]
    # the same profile with that host allowed gets past the check (and fails later, on the missing secret)
    assert main(["load", "--shape", "soak", "--profile", str(profile), "--out", str(tmp_path / "out"),
                 *profile_allowed]) == 2
    assert "refusing to load" not in capsys.readouterr().err


def test_stop_ends_the_wait_for_a_far_arrival_at_once() -> None:
    import gevent

    from haicap.loadtests.openmodel import ArrivalScheduler

    shape = build_shape("soak", 60, {"rate": 0.05, "ramp_s": 0}).build()  # the second arrival is 20 s away
    scheduler = ArrivalScheduler(shape, lambda n, intended, lag: None, Recorder(), start_epoch=time.time(),
                                 max_rate=200, max_in_flight=10)
    runner = gevent.spawn(scheduler.run, 1.0)
    gevent.sleep(0.3)
    began = time.monotonic()
    scheduler.stop()
    runner.join(timeout=10)
    assert runner.dead and time.monotonic() - began < 2.0 and scheduler.started <= 1


def test_an_expectation_step_is_judged_on_errors_not_latency() -> None:
    """In load mode expect_synced only records an expectation (the sync-SLA gate judges the timing): a latency
    gate over its microseconds would be meaningless, its failures still count."""
    from haicap.loadtests.slo import gates

    scenarios = load_mix_scenarios()
    [gate] = [g for g in gates(scenarios, ["birth-registration"]) if g["step"] == "expect_synced"]
    assert gate["p95_ms"] is None and gate["p99_ms"] is None and gate["error_rate"] is not None
    submit = next(g for g in gates(scenarios, ["birth-registration"]) if g["step"] == "submit_dossier")
    assert submit["p95_ms"] is not None


def test_province_records_name_what_the_province_lost_or_left_stale() -> None:
    from haicap.loadtests.integrity import check_province_records

    answers = {"A": (200, "2"), "B": (404, None), "C": (200, "1"), "D": (503, None), "E": (200, "4")}

    def read(ma_ho_so: str) -> tuple[int, str | None]:
        if ma_ho_so == "F":
            raise OSError("connection reset")
        return answers[ma_ho_so]

    accepted = {"A": ("2", True), "B": ("1", True), "C": ("2", True), "D": ("1", True), "E": ("2", False),
                "F": ("1", True)}
    result = check_province_records(read, accepted, budget_s=30, say=lambda line: None)
    assert result["checked"] and result["read"] == 6 and result["lost_count"] == 4
    problems = {item["MaHoSo"]: item["problem"] for item in result["lost"]}
    assert problems == {
        "B": "lost at the province (HTTP 404 by MaHoSo after a 201)",
        "C": "stale status at the province (1, the journey last saw 2)",
        "D": "not readable at the province (HTTP 503)",
        "F": "not readable at the province (OSError)",
    }  # E: the journey broke off, its last status is not known, so only presence counts


def test_province_records_not_all_read_in_time_are_not_claimed() -> None:
    from haicap.loadtests.integrity import check_province_records

    result = check_province_records(lambda m: (200, "1"), {"A": ("1", True)}, budget_s=-1, say=lambda line: None)
    assert not result["checked"] and result["read"] == 0 and result["lost_count"] == 0
    assert result["error"] == "1 of 1 accepted dossiers were not read back at the province within -1 s"


def test_sync_deadlines_overlapping_an_outage_are_counted_from_its_end() -> None:
    from haicap.loadtests.integrity import deadline_after_outages

    outage = [(100.0, 115.0)]
    assert deadline_after_outages(105.0, 10.0, outage) == 125.0  # changed during the outage: due 10 s after it
    assert deadline_after_outages(103.0, 10.0, outage) == 125.0  # its SLA window ran into the outage
    assert deadline_after_outages(99.0, None, outage) == 99.0    # an old 3-field expectation: as recorded
    assert deadline_after_outages(130.0, 10.0, outage) == 130.0  # made after recovery: its own SLA
    assert deadline_after_outages(95.0, 5.0, outage) == 95.0     # due before the outage began


def test_the_default_cutover_outage_spans_several_retry_intervals_in_real_time() -> None:
    from haicap.loadtests.shapes import build_shape

    for duration in (30, 60, 120):
        shape = build_shape("cutover", duration).build()
        (event,) = shape.events()
        assert event.seconds >= 15 and event.at >= 0, (duration, event)
        assert "15.0 s real, at least outage_min_s 15 s" in shape.describe() or duration > 600
    short = build_shape("cutover", 12).build()
    (event,) = short.events()
    assert event.at == 0 and "clipped to the start of the run" in short.describe()
    none = build_shape("cutover", 60, {"outage_minutes": 0}).build()
    assert none.events() == []


def test_gates_a_shape_cannot_judge_are_named_with_the_duration_that_would() -> None:
    from haicap.loadtests.journeys import Mix, load_mix_scenarios
    from haicap.loadtests.judgeability import duration_to_judge, expected_journeys, unjudgeable
    from haicap.loadtests.shapes import build_shape

    scenarios = load_mix_scenarios()
    mix = Mix.build(scenarios, ["birth-registration"])
    spec = build_shape("soak", 60, {"rate": 2, "ramp_s": 0})
    journeys = expected_journeys(spec.build(), mix.weights, 200, scenarios)
    assert journeys == {"birth-registration": pytest.approx(120, abs=1)}
    short = unjudgeable(spec.build(), mix.weights, scenarios, 200)
    assert {g.metric for g in short} == {"p99_ms"} and all(g.needed == 100 for g in short)  # 120 < 1.25 × 100
    assert duration_to_judge(spec, mix.weights, scenarios, 200) == 90.0
    assert unjudgeable(build_shape("soak", 90, {"rate": 2, "ramp_s": 0}).build(), mix.weights, scenarios, 200) == []


def test_the_cutover_storm_and_burst_count_for_their_own_journeys() -> None:
    from haicap.loadtests.journeys import Mix, load_mix_scenarios
    from haicap.loadtests.judgeability import expected_journeys
    from haicap.loadtests.shapes import build_shape

    scenarios = load_mix_scenarios()
    mix = Mix.build(scenarios)
    journeys = expected_journeys(build_shape("cutover", 60).build(), mix.weights, 200, scenarios)
    assert journeys["first-login"] > 0 and journeys["batch-resync"] > 0
    assert journeys["birth-registration"] > journeys["marriage-withdrawal"]  # weights 40 and 5


# -- --until-breach --------------------------------------------------------------------------------
def test_until_breach_extends_the_staircase_within_the_rate_and_the_duration_cap() -> None:
    from haicap.errors import HaicapError
    from haicap.loadtests.shapes import build_shape
    from haicap.loadtests.until_breach import extend_staircase, limit_reason, ran_stages

    spec = build_shape("step", 20, {"start_rate": 2, "step_rate": 2, "stages": 5})  # stages of 4 s
    by_rate, stairs = extend_staircase(spec, max_rate=13, max_duration=1200)
    assert (stairs.stages, stairs.stage_s, stairs.bound, stairs.top_rate) == (6, 4.0, "max rate", 12.0)
    assert by_rate.duration == 24 and [s.target_rate for s in by_rate.build().stages()] == [2, 4, 6, 8, 10, 12]
    assert limit_reason(stairs.as_dict()).startswith("max rate 13/s reached without breach (last stage 12/s)")
    by_time, stairs = extend_staircase(spec, max_rate=200, max_duration=30)
    assert (stairs.stages, stairs.bound) == (7, "duration cap") and by_time.duration == 28
    assert "duration cap 30 s reached without breach" in limit_reason(stairs.as_dict())
    assert ran_stages(by_time, 13.5).params["stages"] == 3 and ran_stages(by_time, 13.5).duration == 12
    assert ran_stages(by_time, None) == by_time and ran_stages(by_time, 1.0).params["stages"] == 1
    for bad, options, words in ((spec, {"max_rate": 1}, "above --max-rate 1"),
                                (spec, {"max_duration": 3}, "longer than --max-duration 3"),
                                (build_shape("step", 20, {"step_rate": 0}), {}, "step_rate=R with R > 0"),
                                (build_shape("soak", 20), {}, "this run's shape is soak")):
        with pytest.raises(HaicapError, match=words):
            extend_staircase(bad, **{"max_rate": 200, "max_duration": 1200, **options})


def test_the_stage_watch_stops_at_the_first_stage_that_breaks_once_its_journeys_are_done() -> None:
    from haicap.loadtests.recorder import Recorder
    from haicap.loadtests.shapes import Stage
    from haicap.loadtests.until_breach import StageWatch

    gates = [{"scenario": "s", "step": "submit", "p95_ms": 500.0, "p99_ms": None, "error_rate": 0.05}]
    stages = [Stage(0, 0.0, 2.0, 5.0), Stage(1, 2.0, 4.0, 10.0)]
    recorder = Recorder(start_epoch=0.0)
    for index, ms in ((0, 100.0), (1, 2000.0)):
        stage = recorder.stage(index)
        for _ in range(30):
            stage.arrival(0.0)
            stage.step("s", "submit", ms, True)
            stage.journey("s", ms, True)
    late = [["HS-1", "2", 3.0, 1.0]]
    recorder.stage(0).expectations.extend(late)
    watch = StageWatch(stages, gates, lambda expectations: {"late_count": 0, "checked": len(expectations)})
    assert watch.poll(3.0, recorder) is None and watch.next == 0  # stage 0's reports may still be on their way
    assert watch.poll(4.5, recorder) is None and watch.next == 0  # its expectation is due at 3 s: + 2 s
    assert watch.poll(5.0, recorder) is None and watch.next == 1  # stage 0 held; stage 1 ended 1 s ago
    reason = watch.poll(6.0, recorder)
    assert reason is not None and reason.startswith("until-breach: stage 1 at 10/s broke (s / submit p95_ms")
    assert [j["breach"] is None for j in watch.judged] == [True, False]
