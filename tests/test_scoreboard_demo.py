"""``haicap scoreboard --demo``: the plan derived from the 28-June table, its faults confined to their columns, and
the quick demo's totals row equal to the 28-June counts (34 real certifications of sandbox provinces)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from haicap.checklist import CHECKLIST_28_JUNE, PROVINCES, ChecklistColumn, demo_plan, quick_checks
from haicap.cli import main
from haicap.conformance.registry import CRITERIA, all_checks
from haicap.sandbox.province.faults import FAULTS


def test_the_table_has_the_28_june_counts_and_one_column_per_item() -> None:
    assert [c.count for c in CHECKLIST_28_JUNE] == [34, 32, 33, 8, 32, 21, 21, 33]
    assert [c.criterion for c in CHECKLIST_28_JUNE] == ["units", "portal", "sso", "submission", "sync", "payment",
                                                         "forwarding", "document_axis"]
    for column in CHECKLIST_28_JUNE:
        if column.pending is None:
            assert column.criterion in CRITERIA  # a judged column is a criterion of this haicap
        else:
            assert column.fault is None  # the integrator names it when the criterion arrives


def test_each_fault_is_confined_to_its_column_by_the_checks_claiming_it() -> None:
    for column in CHECKLIST_28_JUNE:
        if column.fault is None:
            continue
        assert FAULTS[column.fault].breaks == column.criterion
        claimants = {s.criterion for s in all_checks() if column.fault in s.detects}
        assert claimants == {column.criterion}, column  # no check of another column claims it
        assert quick_checks()[column.criterion], column  # the quick set judges the column


def test_the_plan_is_derived_from_the_table() -> None:
    plan = demo_plan()
    assert len(plan) == PROVINCES
    not_ready = Counter(criterion for faults in plan.values() for criterion in faults)
    for column in CHECKLIST_28_JUNE:
        assert not_ready[column.criterion] == PROVINCES - column.count
        assert {f[column.criterion] for f in plan.values() if column.criterion in f} <= {column.fault}
    small = (ChecklistColumn("a", "", "", 2, "f-a"), ChecklistColumn("b", "", "", 1, "f-b"))
    assert demo_plan(small, ["x", "y", "z"]) == {"x": {"a": "f-a"}, "y": {"b": "f-b"}, "z": {"b": "f-b"}}
    with pytest.raises(ValueError, match="no fault"):
        demo_plan((ChecklistColumn("a", "", "", 1, None),), ["x", "y"])


def test_demo_arguments_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scoreboard", str(tmp_path), "--demo"]) == 2
    assert main(["scoreboard", "--out", str(tmp_path)]) == 2
    assert main(["scoreboard", str(tmp_path), "--quick"]) == 2
    err = capsys.readouterr().err
    assert "give no DIR" in err and "or --demo" in err and "--demo only" in err


@pytest.mark.slow
def test_the_quick_demo_scoreboards_totals_row_equals_the_28_june_counts(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """34 certifications of the quick set, as many in parallel as there are cores (~2 min on 2 cores)."""
    assert main(["scoreboard", "--demo", "--quick", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "[34/34]" in printed and "every judged column equals the 28-June checklist" in printed
    doc = json.loads((tmp_path / "board.json").read_text(encoding="utf-8"))
    assert len(doc["rows"]) == PROVINCES and doc["rejected"] == []
    for column in CHECKLIST_28_JUNE:
        if column.pending:
            assert doc["totals"][column.criterion] == 0
            assert {r["cells"][column.criterion] for r in doc["rows"]} == {"not tested"}
        else:
            assert doc["totals"][column.criterion] == column.count, column.criterion
    html = (tmp_path / "board.html").read_text(encoding="utf-8")
    assert "quick check set" in html and "ready (quick set)" in html
    assert "28-June checklist" in html and (tmp_path / "reports" / "79.html").is_file()


def test_a_quick_cell_is_ready_only_when_every_selected_check_passed() -> None:
    from haicap.reports.scoreboard import QUICK_READY, _quick_cell

    results = {"checks": [{"criterion": "sync", "status": "passed"}, {"criterion": "payment", "status": "passed"},
                          {"criterion": "payment", "status": "skipped"}]}
    assert _quick_cell(results, "sync", "incomplete") == QUICK_READY
    assert _quick_cell(results, "payment", "incomplete") == "incomplete"  # a skipped check is not a pass
    assert _quick_cell(results, "sync", "not ready") == "not ready"
    assert _quick_cell(results, "units", "not tested") == "not tested"
    assert quick_checks()["document_axis"] == ["AXIS-08"]  # the check that claims the column's fault
