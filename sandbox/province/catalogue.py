"""The procedures the province receives online, read from the contracts folder (``procedures.yaml``).

One catalogue for the whole suite: the province takes a dossier's procedure name, sector and fees from it, so
a citizen cannot choose what they pay.

Example::

    catalogue = Catalogue.load()
    catalogue.get("1.001193")["TenTTHC"]   # 'Đăng ký khai sinh'
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from haicap.contract_registry import ContractRegistry
from haicap.data_generators.procedures import load_procedures

__all__ = ["Catalogue"]


class Catalogue:
    """Procedures by MaTTHC (a local variant ``1.001193.000.00.00.H26`` resolves to its national code)."""

    def __init__(self, procedures: list[dict[str, Any]]) -> None:
        self._by_code = {p["MaTTHC"]: p for p in procedures}

    @classmethod
    def load(cls, registry: ContractRegistry | None = None, faults: Collection[str] = ()) -> Catalogue:
        """The catalogue of the contracts folder in use (loaded and validated by the one loader)."""
        procedures = load_procedures(registry)
        if "wrong-fee-for-free-procedure" in faults:  # the defect: an empty fee becomes the default charge
            from haicap.sandbox.province.consistency_faults import charge_free_procedures

            procedures = charge_free_procedures(procedures)
        return cls(procedures)

    def get(self, code: str) -> dict[str, Any] | None:
        return self._by_code.get(code) or self._by_code.get(code[:8])

    def all(self) -> list[dict[str, Any]]:
        return list(self._by_code.values())
