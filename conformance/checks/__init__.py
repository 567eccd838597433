"""The built-in checks, one module per readiness criterion; importing this package registers them all."""

from haicap.conformance.checks import (  # noqa: F401
    civil_status,
    consistency,
    conversion,
    document_axis,
    forwarding,
    fuzzing,
    payment,
    portal,
    signatures,
    sso,
    sso_flow,
    sso_tokens,
    state_machine,
    submission,
    sync,
    sync_faults,
    units,
)
