"""Schemathesis against the reference province, seeded and bounded: malformed input gets a 4xx RFC 9457
problem naming the field, never a 5xx; and the same run does find the defect when the province has it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from haicap.conformance.checks.fuzzing import FuzzRun
from haicap.province_client import ProvinceClient
from haicap.sandbox.runner import Sandbox


def _fuzz(sandbox: Sandbox, seed: int) -> FuzzRun:
    with ProvinceClient(sandbox.province_url) as province:
        session = province.login("001199012345")
    run = FuzzRun(sandbox.province_url, seed=seed, max_examples=8, budget_s=40,
                  credentials={"citizen": session.access_token, "officer": sandbox.configs.province.officer_token})
    run.run()
    return run


def test_generated_input_never_gets_a_5xx_and_problems_name_the_field(sandbox: Sandbox) -> None:
    run = _fuzz(sandbox, seed=20250701)
    assert not run.timed_out, "the bounded run did not finish within its budget"
    assert run.cases >= 100, f"only {run.cases} cases were sent"
    assert run.findings == [], "\n".join(f"{f.operation} [{f.mode}] {f.problems}\n  {f.curl}" for f in run.findings)


def test_the_same_run_finds_a_province_that_crashes_on_bad_input(start_sandbox: Callable[..., Sandbox]) -> None:
    run = _fuzz(start_sandbox(faults={"500-on-malformed-input"}), seed=20250701)
    server_errors = [f for f in run.findings if f.status is not None and f.status >= 500]
    assert server_errors, f"no 5xx found in {run.cases} cases"
    assert all(f.curl.startswith("curl ") for f in server_errors), "every finding carries a curl reproduction"
    leaked = [f.curl for f in run.findings for token in run.credentials.values() if token in f.curl]
    assert leaked == [], "a credential appears in a reproduction"


@pytest.mark.parametrize("seed", [1, 2])
def test_runs_are_reproducible_from_the_seed(sandbox: Sandbox, seed: int) -> None:
    first, second = _fuzz(sandbox, seed), _fuzz(sandbox, seed)
    assert first.cases == second.cases
