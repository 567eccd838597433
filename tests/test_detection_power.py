"""The suite's own proof: every named fault is caught by the checks that claim it, and only a faulty province fails.

For each fault of the reference province, ``haicap certify --fault F --only <each check that claims F>`` must
fail those checks (at least one of them) with none reaching no verdict — a check that cannot fail is a defect. The
correct province passing every check is asserted in test_certify.py (through a profile, end to end).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from haicap.cli import main
from haicap.conformance.registry import all_checks
from haicap.target import embedded_provider

CHECKS = all_checks()
FAULTS = embedded_provider().faults()


def _claimants(fault: str) -> list[str]:
    return [c.id for c in CHECKS if fault in c.detects]


def test_every_fault_is_claimed_by_a_check() -> None:
    unclaimed = sorted(f for f in FAULTS if not _claimants(f))
    assert not unclaimed, f"faults no check claims to detect: {unclaimed}"


def test_checks_only_claim_faults_that_exist() -> None:
    unknown = {c.id: sorted(set(c.detects) - set(FAULTS)) for c in CHECKS if set(c.detects) - set(FAULTS)}
    assert not unknown, f"checks claim unknown faults: {unknown}"


def test_every_check_claims_a_fault() -> None:
    assert [c.id for c in CHECKS if not c.detects] == []


@pytest.mark.slow
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_is_detected(fault: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    claimants = _claimants(fault)
    args = ["certify", "--fault", fault, "--out", str(tmp_path)]
    for check_id in claimants:  # only the claimants, by id: the proof, without the rest of their criteria
        args += ["--only", check_id]
    code = main(args)
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    status = {c["id"]: c["status"] for c in results["checks"]}
    failed_claimants = [cid for cid in claimants if status.get(cid) == "failed"]
    errors = {c["id"]: c["message"] for c in results["checks"] if c["status"] == "error"}
    assert set(status) == set(claimants), f"fault {fault}: ran {sorted(status)}, not only {claimants}"
    assert code == 1, f"certify with fault {fault} exited {code}"
    assert failed_claimants, f"fault {fault}: none of {claimants} failed (statuses {status}; errors {errors})"
    assert not errors, f"fault {fault}: checks could not run: {errors}"
