"""What every route of the reference province shares: config, contracts, store, units, sessions, faults."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request

from haicap.contract_registry import ContractRegistry
from haicap.sandbox.config import ProvinceConfig
from haicap.sandbox.province.catalogue import Catalogue
from haicap.sandbox.province.outbox import OutboxPolicy
from haicap.sandbox.province.problems import Problem
from haicap.sandbox.province.sessions import SessionStore
from haicap.sandbox.province.signing import ResultSigner
from haicap.sandbox.province.store import Store
from haicap.sandbox.province.units import ProvinceUnits

__all__ = ["ProvinceContext", "require_bearer"]


@dataclass(slots=True)
class ProvinceContext:
    config: ProvinceConfig
    registry: ContractRegistry
    store: Store
    units: ProvinceUnits
    catalogue: Catalogue
    sessions: SessionStore
    policy: OutboxPolicy
    #: signs the results of completed dossiers (sandbox/province/signing.py)
    signer: ResultSigner | None = None

    def has(self, fault: str) -> bool:
        return fault in self.config.faults


def require_bearer(request: Request, expected: str, who: str) -> None:
    """401 unless the request carries ``Authorization: Bearer <expected>`` (constant-time comparison)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise Problem(
            401, "Unauthorized", f"the {who} credential is missing or wrong",
            headers={"WWW-Authenticate": f'Bearer realm="{who}"'},
        )
