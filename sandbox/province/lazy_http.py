"""The outbound HTTP client a province part keeps: made on first use, closed once on shutdown.

A part (SSO, payments, the document axis) is built before the server's event loop runs, and an
``httpx.AsyncClient`` belongs to the loop it first runs on, so the client cannot be made in ``__init__``.
One :class:`LazyAsyncClient` per part makes it on the first request and closes it in the part's ``aclose``.
"""

from __future__ import annotations

import httpx

__all__ = ["LazyAsyncClient"]

TIMEOUT_SECONDS = 10.0


class LazyAsyncClient:
    """``lazy.client`` is one ``httpx.AsyncClient``, made on first use; ``await lazy.aclose()`` closes it.

    >>> lazy = LazyAsyncClient()
    >>> lazy.made
    False
    """

    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    @property
    def made(self) -> bool:
        return self._client is not None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def aclose(self) -> None:
        """Close the client if one was made; a later use makes a new one."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
