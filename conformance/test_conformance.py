"""Every registered conformance check as one pytest test: ``pytest conformance/`` or ``haicap certify``.

The outcomes map onto pytest's own: a check that passes passes; ``CheckSkipped`` (the check does not apply)
is ``pytest.skip``; a check that could not run (the province did not answer its health probe, ``CheckError``)
is an error; ``CheckFailure`` is a failure. The plugin (plugin.py) shapes the reports: the evidence instead of a
traceback, and errors raised while the check ran reported as errors, not failures.
"""

from __future__ import annotations

from typing import Any

import pytest

from haicap.conformance.plugin import PASSED_SUMMARY
from haicap.conformance.registry import CheckSkipped, CheckSpec, all_checks

#: how a derived capability (haicap/criteria.py DERIVED_CAPABILITIES) comes about: it cannot be declared itself
_DERIVED_HOW = {
    "back_office": "no back office to carry out officer actions (declare officer_api with "
                   "credentials.officer_token_env, or add a back_office section: operator or plugin)",
    "submission_channel": "no way to bring dossiers in (declare submission or forwarding)",
}


def skip_reason(missing: list[str]) -> str:
    """Why a check is skipped: the capabilities the profile does not declare, and the derived ones it lacks."""
    declared = [c for c in missing if c not in _DERIVED_HOW]
    parts = ([f"capability not declared in the profile: {', '.join(declared)}"] if declared else []) + [
        _DERIVED_HOW[c] for c in missing if c in _DERIVED_HOW]
    return "; ".join(parts)


@pytest.fixture
def haicap_check_context(haicap_context: Any) -> Any:
    """The run's context, once the province answered its health probe: otherwise the check cannot run (an error)."""
    haicap_context.ensure_reachable()
    return haicap_context


@pytest.mark.parametrize("spec", all_checks(), ids=lambda spec: spec.id)
def test_check(spec: CheckSpec, haicap_check_context: Any, request: pytest.FixtureRequest) -> None:
    missing = [c for c in spec.requires if c not in haicap_check_context.target.capabilities]
    if missing:  # the registry does the bookkeeping: a check declares what it requires, once
        pytest.skip(skip_reason(missing))
    try:
        summary = spec.func(haicap_check_context)
    except CheckSkipped as exc:
        pytest.skip(str(exc))
    if isinstance(summary, str):
        request.node.stash[PASSED_SUMMARY] = summary
