"""One way the national side calls a province (forwarded dossiers, payment callbacks) and records the outcome.

A province's answer is evidence, never an exception: the HTTP status, the JSON answer (or the first 1,000
characters of a non-JSON one), or the transport error are returned for the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["post_json"]


async def post_json(
    client: httpx.AsyncClient, url: str, body: Any, headers: Mapping[str, str] | None = None
) -> tuple[int | None, Any, str | None]:
    """POST ``body`` as JSON; returns (status code, answer, error) with exactly one of status/error set."""
    try:
        response = await client.post(url, json=body, headers=headers)
    except httpx.HTTPError as exc:
        return None, None, f"{type(exc).__name__}: {exc}"[:500]
    try:
        answer = response.json()
    except ValueError:
        answer = response.text[:1000]
    return response.status_code, answer, None
