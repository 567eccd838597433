"""The procedures the province receives online, read from the contracts folder (``procedures.yaml``).

One catalogue for the whole suite: the province takes a dossier's procedure name, sector and fees from it, so
a citizen cannot choose what they pay.

Example::

    catalogue = Catalogue.load()
    catalogue.get("1.001193")["TenTTHC"]   # 'Đăng ký khai sinh'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from haicap.contract_registry import ContractRegistry, default_registry
from haicap.errors import HaicapError

__all__ = ["Catalogue"]

PROCEDURE_REF = "dossier.schema.json#/$defs/Procedure"


class Catalogue:
    """Procedures by MaTTHC (a local variant ``1.001193.000.00.00.H26`` resolves to its national code)."""

    def __init__(self, procedures: list[dict[str, Any]]) -> None:
        self._by_code = {p["MaTTHC"]: p for p in procedures}

    @classmethod
    def load(cls, registry: ContractRegistry | None = None) -> Catalogue:
        registry = registry or default_registry()
        path = Path(registry.root) / "procedures.yaml"
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise HaicapError(f"{path}: cannot read the procedure catalogue: {exc}") from exc
        procedures = data.get("procedures") if isinstance(data, dict) else None
        if not isinstance(procedures, list):
            raise HaicapError(f"{path}: expected a top-level 'procedures' list")
        validator = registry.validator(PROCEDURE_REF)
        for index, procedure in enumerate(procedures):
            violations = validator.violations(procedure)
            if violations:
                v = violations[0]
                raise HaicapError(f"{path}: procedures[{index}].{v.field}: {v.message}")
        return cls(procedures)

    def get(self, code: str) -> dict[str, Any] | None:
        return self._by_code.get(code) or self._by_code.get(code[:8])

    def all(self) -> list[dict[str, Any]]:
        return list(self._by_code.values())
