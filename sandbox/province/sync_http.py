"""A lean keep-alive HTTP/1.1 client for the outbox's JSON POSTs to the national sync API.

The outbox makes one call after another to one loopback origin; a general client (httpx + httpcore + anyio)
spent as much CPU per call as the province spent serving several submissions. This client keeps one
connection, writes a request with a Content-Length body, reads the status line, the headers and a
Content-Length (or chunked, or close-delimited) body, and nothing else: no redirects, cookies, proxies or TLS.
A connection the server closed while idle is replaced and the request sent again once, only if nothing of an
answer had arrived; any other failure is a :class:`SyncHttpError` (the outbox retries the batch later).

Example::

    client = JsonPoster("http://127.0.0.1:8710", timeout=10.0)
    status, body = await client.post("/sync/login", b'{"username": ...}')
    await client.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit

__all__ = ["JsonPoster", "SyncHttpError"]

#: a connection idle longer than this is not reused (uvicorn closes idle keep-alive connections after 5 s)
_IDLE_REUSE = 4.0
_MAX_HEADER = 64 * 1024


class SyncHttpError(Exception):
    """The call failed at the transport level (refused, reset, timed out, malformed answer)."""


class _StaleConnection(Exception):
    """The reused connection was closed before any byte of the answer: safe to send again."""


class JsonPoster:
    """POST JSON bodies to one ``http://`` origin over a kept-alive connection."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"JsonPoster speaks plain http to one host, not {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        netloc = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = f"{netloc}:{self.port}".encode("ascii")
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._last_used = 0.0

    async def aclose(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """(status, body) of ``POST path`` with a JSON ``body``; :class:`SyncHttpError` on transport failure."""
        head = b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
            (self.prefix + path).encode("ascii"), self._host_header, len(body))
        try:
            async with asyncio.timeout(self.timeout):
                reused = self._writer is not None and time.monotonic() - self._last_used < _IDLE_REUSE
                if not reused:
                    await self._connect()
                try:
                    return await self._exchange(head, body, reused)
                except _StaleConnection:
                    await self._connect()
                    return await self._exchange(head, body, False)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
                _StaleConnection) as exc:
            await self.aclose()
            raise SyncHttpError(f"{type(exc).__name__} calling {path}") from None

    async def _connect(self) -> None:
        await self.aclose()
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=_MAX_HEADER)

    async def _exchange(self, head: bytes, body: bytes, reused: bool) -> tuple[int, bytes]:
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        writer.write(head + body)
        try:
            await writer.drain()
            raw = await reader.readuntil(b"\r\n\r\n")
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            partial = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
            if reused and not partial:
                raise _StaleConnection from None
            raise
        lines = raw.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError("not an HTTP/1.x answer")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        keep_alive = "close" not in headers.get("connection", "").lower() and version != "HTTP/1.0"
        if "chunked" in headers.get("transfer-encoding", "").lower():
            content = await self._chunked(reader)
        elif "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
        else:
            content, keep_alive = await reader.read(), False
        if keep_alive:
            self._last_used = time.monotonic()
        else:
            await self.aclose()
        return status, content

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
