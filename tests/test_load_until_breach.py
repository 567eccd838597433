"""``haicap load --until-breach`` against the embedded sandbox: the staircase climbs by itself and stops at the first
stage that breaks, or reaches --max-rate and reports the knee's lower bound with that reason.

No sandbox fault slows the reference province beyond a given rate, so the breach comes from a test scenario held to
a p95 no province meets (1 ms): a p95 gate is judged from 20 samples on, so the lower stages of a short staircase
hold (too few samples to judge the p95, no error) and the first stage with 20 sign-ons breaches — where exactly
follows from the arrival counts alone (2 s stages at 2, 7, 12 … /s: 4, 14, 24 sign-ons).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from haicap.cli import main

TIGHT_LOGIN = """\
id: tight-login
title: A sign-on held to a 1 ms p95, which no province meets
description: Test scenario for --until-breach; a stage breaches as soon as it has the samples to judge the p95.
rule: "contracts/openapi/national-idp.yaml"
weight: 1
slo: {p95_ms: 1, error_rate: 0.5}
steps:
  - sso_login: {}
"""


def _summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.mark.slow
def test_the_staircase_stops_by_itself_at_the_first_stage_that_breaks(tmp_path: Path, capsys: Any) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "tight-login.yaml").write_text(TIGHT_LOGIN, encoding="utf-8")
    out = tmp_path / "out"
    code = main(["load", "--shape", "step", "--duration", "6", "--set", "stages=3", "--set", "start_rate=2",
                 "--set", "step_rate=5", "--until-breach", "--max-rate", "40", "--scenario-path", str(scenarios),
                 "--drain", "5", "--grace", "3", "--out", str(out), "--no-require-kept-up"])
    printed = capsys.readouterr().out
    summary = _summary(out)
    capacity = summary["capacity"]
    assert code == summary["exit_code"] == 1  # the stage's gate breached
    assert capacity["until_breach"]["stages"] == 8 and capacity["until_breach"]["bound"] == "max rate"
    stopped = capacity["until_breach"]["stopped"]
    assert stopped.startswith("until-breach: stage 2 at 12/s broke (tight-login / sso_login p95_ms"), stopped
    assert summary["stopped_early"] == stopped and summary["load_s"] < 12  # far short of the 16 s staircase
    assert [j["breach"] is None for j in capacity["until_breach"]["judged_in_run"]] == [True, True, False]
    assert [s["index"] for s in capacity["stages"]] == list(range(len(capacity["stages"])))
    assert len(capacity["stages"]) < 8  # only the stages that ran to their end
    verdicts = [s["verdict"] for s in capacity["stages"]]
    if "inconclusive" not in verdicts[:3]:  # a generator starved by a busy machine makes a stage inconclusive
        assert verdicts[:3] == ["no breach (partly judged)", "no breach (partly judged)", "breaches SLO"]
        bracket = capacity["knee_bracket"]
        assert (bracket["held"]["index"], bracket["broke"]["index"]) == (1, 2)
        assert capacity["answer"].startswith("capacity: knee between 7.0 and 12.0 iterations/s (stage 1 held, "
                                             "stage 2 broke: tight-login / sso_login: p95")
    assert capacity["answer"] in printed


@pytest.mark.slow
def test_a_staircase_that_reaches_max_rate_reports_the_knee_lower_bound_and_why(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "out"
    code = main(["load", "--shape", "step", "--duration", "4", "--set", "stages=2", "--set", "start_rate=2",
                 "--set", "step_rate=2", "--until-breach", "--max-rate", "6", "--scenario", "first-login",
                 "--drain", "5", "--grace", "3", "--out", str(out), "--no-require-kept-up"])
    printed = capsys.readouterr().out
    summary = _summary(out)
    capacity = summary["capacity"]
    assert code == summary["exit_code"], printed[-3000:]
    assert [s["target_rate"] for s in capacity["stages"]] == [2, 4, 6]  # extended from 2 stages up to --max-rate
    assert capacity["until_breach"]["stopped"] is None and summary["stopped_early"] is None
    if capacity["stages"][-1]["verdict"] == "inconclusive":  # a generator starved by a busy machine
        return
    assert capacity["knee_lower_bound"] == pytest.approx(6.0, abs=0.6)
    assert capacity["knee_lower_bound_reason"] == "max rate 6/s reached without breach (last stage 6/s)"
    assert capacity["answer"].startswith("capacity: knee ≥ ") and capacity["answer"].endswith(
        "— max rate 6/s reached without breach (last stage 6/s)")
    assert capacity["answer"] in printed


def test_until_breach_is_refused_before_anything_runs_or_any_old_output_is_touched(tmp_path: Path,
                                                                                   capsys: Any) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}", encoding="utf-8")
    for args, words in ((["--shape", "soak"], "extends a step staircase; this run's shape is soak"),
                        (["--shape", "step", "--max-rate", "1"], "params.start_rate) is above --max-rate 1"),
                        (["--shape", "step", "--duration", "60", "--max-duration", "5"],
                         "longer than --max-duration 5"),
                        (["--shape", "step", "--set", "step_rate=0"], "step_rate=R with R > 0")):
        assert main(["load", *args, "--until-breach", "--out", str(out)]) == 2
        assert words in capsys.readouterr().err
    assert main(["load", "--shape", "step", "--max-duration", "60", "--out", str(out)]) == 2
    assert "--max-duration caps the staircase of --until-breach" in capsys.readouterr().err
    assert (out / "summary.json").read_text(encoding="utf-8") == "{}"
