"""The procedure catalogue (``contracts/procedures.yaml``) as the generators read it.

The catalogue is written with the provincial dossier contract (codes, names, fees, document components);
this module only loads and validates it against ``dossier.schema.json#/$defs/Procedure`` so that a
catalogue that drifts from the contract is a one-line error, not bad data.
"""

from __future__ import annotations

from typing import Any

import yaml

from haicap.contract_registry import ContractRegistry, default_registry
from haicap.errors import HaicapError

__all__ = ["PROCEDURE_REF", "load_procedures"]

PROCEDURE_REF = "dossier.schema.json#/$defs/Procedure"


def load_procedures(registry: ContractRegistry | None = None) -> list[dict[str, Any]]:
    registry = registry or default_registry()
    path = registry.root / "procedures.yaml"
    if not path.is_file():
        raise HaicapError(f"no procedure catalogue at {path} (contracts/procedures.yaml)")
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise HaicapError(f"{path}: invalid YAML: {exc}") from exc
    procedures = data.get("procedures") if isinstance(data, dict) else None
    if not isinstance(procedures, list) or not procedures:
        raise HaicapError(f"{path}: expected a non-empty 'procedures' list")
    validator = registry.validator(PROCEDURE_REF)
    for index, procedure in enumerate(procedures):
        violations = validator.violations(procedure)
        if violations:
            v = violations[0]
            raise HaicapError(f"{path}: procedures[{index}].{v.field}: {v.message}")
    return procedures
