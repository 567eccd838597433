"""Scenario files: the shipped library loads, and every kind of mistake is reported by file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from haicap.errors import HaicapError
from haicap.scenarios.engine import load_scenario, load_scenarios, steps

REQUIRED_JOURNEYS = {
    "birth-registration", "permanent-residence-paid", "household-business", "death-registration-supplement",
    "marriage-withdrawal", "forwarded-from-national", "commune-coverage",
}


def test_library_has_every_required_journey() -> None:
    scenarios = load_scenarios()
    assert set(scenarios) >= REQUIRED_JOURNEYS
    assert scenarios["permanent-residence-paid"].capabilities() >= {"payment", "sso", "sync"}
    assert scenarios["birth-registration"].weight > 0 and scenarios["commune-coverage"].weight == 0


def test_step_slo_overrides_scenario_slo() -> None:
    birth = load_scenarios()["birth-registration"]
    login, submit = birth.steps[0], birth.steps[1]
    assert birth.step_slo(login).p95_ms == 1200 and birth.step_slo(login).p99_ms == 2000
    assert birth.step_slo(submit).p95_ms == 800


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "expected"), [
    ("id: x\ntitle: t\nsteps:\n  - sso_login: {}\n  - submit_dossier: {procedure: '1.1'}\n",
     r"s\.yaml:5: steps\[1\]\.submit_dossier\.procedure: '1\.1' does not match"),
    ("id: x\ntitle: t\nsteps:\n  - sso_login: {}\n  - fly_away: {}\n",
     r"s\.yaml:5: steps\[1\]\.fly_away: unknown step; valid steps: .*sso_login"),
    ("id: x\nsteps:\n  - sso_login: {}\n", r"s\.yaml:1: title: is required but missing"),
    ("id: x\ntitle: t\nslo: {p95: 3}\nsteps:\n  - sso_login: {}\n", r"s\.yaml:3: slo\.p95: unknown field"),
    ("id: x\ntitle: t\nsteps:\n  - officer_action: {action: dance}\n",
     r"s\.yaml:4: steps\[0\]\.officer_action\.action: 'dance' is not one of"),
    ("id: x\ntitle: t\nsteps: [\n", r"s\.yaml:\d+: invalid YAML"),
    ("id: x\ntitle: t\nid: y\nsteps: []\n", r"s\.yaml:3: duplicate key 'id'"),
])
def test_mistakes_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(HaicapError, match=expected):
        load_scenario(_write(tmp_path, text))


def test_officer_actions_come_from_the_contract() -> None:
    from haicap.contract_registry import default_registry

    enum = default_registry().schema("dossier.schema.json#/$defs/OfficerAction/properties/action")["enum"]
    assert steps()["officer_action"].params_schema["properties"]["action"]["enum"] == enum
