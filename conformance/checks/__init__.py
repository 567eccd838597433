"""The built-in checks, one module per readiness criterion; importing this package registers them all."""

from haicap.conformance.checks import (  # noqa: F401
    forwarding,
    fuzzing,
    payment,
    sso,
    sso_tokens,
    submission,
    sync,
    units,
)
