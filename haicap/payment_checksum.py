"""MaXacThuc, the checksum of the national payment platform's messages: the one implementation.

The rule (contracts/schemas/payment.schema.json): lowercase hex SHA-256 of the values of the fields named
by the message's ``x-checksum-fields`` in the contract, joined with ``|``, with the partner's shared secret
appended last. The field order is read from the contract, never typed here, so a province with another
version of the protocol swaps the contract, not the code. The counterpart, the reference province and the
conformance checks all use this module.

Example::

    message["MaXacThuc"] = checksum(message, partner.secret, "INIT")
    assert verify(message, partner.secret, "INIT")
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from haicap.contract_registry import ContractRegistry, default_registry
from haicap.errors import HaicapError

__all__ = ["checksum", "checksum_fields", "message_types", "render_value", "verify"]

_SCHEMA_FILE = "payment.schema.json"


@functools.lru_cache(maxsize=8)
def _field_orders(registry: ContractRegistry) -> dict[str, tuple[str, ...]]:
    """LoaiBanTin value → checksum field order, for every message of the contract that declares one."""
    orders: dict[str, tuple[str, ...]] = {}
    for name, schema in registry.schema(f"{_SCHEMA_FILE}#/$defs").items():
        fields = schema.get("x-checksum-fields") if isinstance(schema, dict) else None
        if not fields:
            continue
        kind = schema.get("properties", {}).get("LoaiBanTin", {}).get("const")
        if not isinstance(kind, str):
            raise HaicapError(f"{_SCHEMA_FILE}#/$defs/{name} has x-checksum-fields but no LoaiBanTin const")
        orders[kind] = tuple(fields)
    return orders


def message_types(registry: ContractRegistry | None = None) -> list[str]:
    """The LoaiBanTin values that carry a MaXacThuc (e.g. INIT, QUERY, GET_BILL, CALLBACK)."""
    return sorted(_field_orders(registry or default_registry()))


def checksum_fields(message_type: str, registry: ContractRegistry | None = None) -> tuple[str, ...]:
    """The contract's field order for ``message_type`` (a LoaiBanTin value)."""
    orders = _field_orders(registry or default_registry())
    try:
        return orders[message_type]
    except KeyError:
        raise HaicapError(
            f"no checksum rule for message type {message_type!r}; known: {', '.join(sorted(orders))}"
        ) from None


def render_value(value: Any) -> str:
    """A field value as it enters the checksum: strings as-is, integers in decimal, missing as ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def checksum(
    message: Mapping[str, Any], secret: str, message_type: str, registry: ContractRegistry | None = None
) -> str:
    """The MaXacThuc of ``message`` for ``message_type`` (a LoaiBanTin value) with the partner ``secret``."""
    parts = [render_value(message.get(name)) for name in checksum_fields(message_type, registry)]
    parts.append(secret)
    return hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()


def verify(
    message: Mapping[str, Any], secret: str, message_type: str, registry: ContractRegistry | None = None
) -> bool:
    """True when ``message["MaXacThuc"]`` is the right checksum (constant-time comparison)."""
    given = message.get("MaXacThuc")
    if not isinstance(given, str):
        return False
    expected = checksum(message, secret, message_type, registry)
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("ascii"))
