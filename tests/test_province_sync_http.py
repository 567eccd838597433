"""The outbox's lean HTTP client against a scripted loopback server: keep-alive reuse, a connection the server
closed while idle, chunked and close-delimited answers, refused connections and timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from haicap.sandbox.province.sync_http import JsonPoster, SyncHttpError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, list[bytes]], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lengths = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")]
    length = lengths[0]
    return head + await reader.readexactly(length)


def _run(handler: Handler, client_calls: Callable[[JsonPoster], Awaitable[object]], timeout: float = 2.0) -> object:
    async def main() -> object:
        seen: list[bytes] = []
        connections: list[int] = []

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connections.append(1)
            await handler(reader, writer, seen)

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = JsonPoster(f"http://127.0.0.1:{port}", timeout=timeout)
        try:
            result = await client_calls(client)
        finally:
            await client.aclose()
            server.close()
        return result, seen, len(connections)

    return asyncio.run(main())


async def _keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[bytes]) -> None:
    while (request := await _read_request(reader)) is not None:
        seen.append(request)
        body = b'{"error_code":"0","n":%d}' % len(seen)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\ncontent-type: application/json\r\n\r\n%s"
                     % (len(body), body))
        await writer.drain()
    writer.close()


def test_posts_reuse_one_connection_and_send_the_body_exactly() -> None:
    async def calls(client: JsonPoster) -> list[tuple[int, bytes]]:
        return [await client.post("/sync/service", b'{"x":%d}' % i) for i in range(3)]

    results, seen, connections = _run(_keep_alive, calls)  # type: ignore[misc]
    assert results == [(200, b'{"error_code":"0","n":1}'), (200, b'{"error_code":"0","n":2}'),
                       (200, b'{"error_code":"0","n":3}')]
    assert connections == 1
    assert seen[1].startswith(b"POST /sync/service HTTP/1.1\r\n") and seen[1].endswith(b'\r\n\r\n{"x":1}')
    assert b"Content-Type: application/json" in seen[0]


def test_a_connection_closed_while_idle_is_replaced_and_the_request_sent_once() -> None:
    async def one_answer_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                     seen: list[bytes]) -> None:
        request = await _read_request(reader)
        assert request is not None
        seen.append(request)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()  # as uvicorn does after its keep-alive timeout

    async def calls(client: JsonPoster) -> list[tuple[int, bytes]]:
        first = await client.post("/a", b"{}")
        await asyncio.sleep(0.05)
        return [first, await client.post("/b", b"{}")]

    results, seen, connections = _run(one_answer_then_close, calls)  # type: ignore[misc]
    assert results == [(200, b"{}"), (200, b"{}")]
    assert connections == 2 and len(seen) == 2  # the second request reached the server once


def test_chunked_and_close_delimited_answers() -> None:
    async def varied(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[bytes]) -> None:
        request = await _read_request(reader)
        assert request is not None
        seen.append(request)
        if len(seen) == 1:  # chunked, connection kept
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b'4\r\n{"a"\r\n3\r\n:1}\r\n0\r\n\r\n')
            await writer.drain()
            request = await _read_request(reader)
            assert request is not None
            seen.append(request)
        writer.write(b'HTTP/1.0 200 OK\r\n\r\n{"b":2}')  # no length: the body ends with the connection
        await writer.drain()
        writer.close()

    async def calls(client: JsonPoster) -> list[tuple[int, bytes]]:
        return [await client.post("/x", b"{}") for _ in range(3)]

    results, seen, connections = _run(varied, calls)  # type: ignore[misc]
    assert results == [(503, b'{"a":1}'), (200, b'{"b":2}'), (200, b'{"b":2}')]
    assert len(seen) == 3 and connections == 2  # the chunked answer kept the connection, the 1.0 one closed it


def test_refused_and_silent_servers_are_transport_errors() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[bytes]) -> None:
        await asyncio.sleep(5)

    async def calls(client: JsonPoster) -> None:
        await client.post("/slow", b"{}")

    with pytest.raises(SyncHttpError, match="TimeoutError"):
        _run(silent, calls, timeout=0.2)

    async def refused() -> None:
        client = JsonPoster("http://127.0.0.1:9", timeout=1.0)  # discard port: nothing listens
        await client.post("/x", b"{}")

    with pytest.raises(SyncHttpError):
        asyncio.run(refused())


def test_only_plain_http_origins() -> None:
    with pytest.raises(ValueError, match="plain http"):
        JsonPoster("https://127.0.0.1:8710")
