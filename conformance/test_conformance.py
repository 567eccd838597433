"""Every registered conformance check as one pytest test: ``pytest conformance/`` or ``haicap certify``."""

from __future__ import annotations

import pytest

from haicap.conformance.registry import CheckSpec, all_checks


@pytest.mark.parametrize("spec", all_checks(), ids=lambda spec: spec.id)
def test_check(spec: CheckSpec, haicap_context) -> None:  # type: ignore[no-untyped-def]
    haicap_context.ensure_reachable()
    spec.func(haicap_context)
