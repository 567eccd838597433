"""The document axis of the counterpart and the edXML generator, measured (not asserted). Run by hand:

    .venv/bin/python benchmarks/bench_axis.py [--round-trips 2000] [--packages 20000]

Issue 10 targets: an edXML round trip costs ≤ 5 ms of counterpart CPU; ``data_generators`` writes ≥ 5,000 valid
edXML packages/s. Printed:

- counterpart CPU per round trip, both directions, the handlers called in-process (``time.process_time``; no
  HTTP client or server in the figure, the outgoing status pushes go through httpx with a mock transport):
  *province → axis*: the package read and judged, answered 01, the recipient's 03 and 06 built and pushed;
  *axis → province*: a package built and delivered, the 01 answer read, the province's 03, 04, 05, 06 read
  and recorded;
- generator throughput: packages/s of ``EdxmlGenerator.jsonl_batches`` (the ``haicap data generate --kind
  edxml`` path) by CPU time and by wall time, and the share of a sample that reads back valid.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request

from haicap.data_generators.edxml_packages import EdxmlGenerator
from haicap.edxml import build_status, read_package
from haicap.sandbox.config import build_sandbox_configs
from haicap.sandbox.national.axis import DocumentAxis


def _request(path: str, body: bytes, content_type: bytes = b"application/xml") -> Request:
    scope = {"type": "http", "method": "POST", "path": path, "query_string": b"",
             "headers": [(b"content-type", content_type)]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def _axis(tmp: Path) -> DocumentAxis:
    configs = build_sandbox_configs("http://127.0.0.1:1", "http://127.0.0.1:2", tmp)
    answer_01: dict[str, bytes] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/axis/edxml":  # the province answers a delivery with 01
            package = read_package(request.content) if not answer_01 else None
            key = package.document_id if package else "x"
            answer_01.setdefault("body", build_status(key, "000.00.00.G03", "000.00.00.H26", "01"))
            return httpx.Response(200, content=answer_01["body"], headers={"content-type": "application/xml"})
        return httpx.Response(204)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))

    async def http() -> httpx.AsyncClient:
        return client

    return DocumentAxis(configs.national, http)


async def _province_sends(axis: DocumentAxis, packages: list[bytes]) -> float:
    started = time.process_time()
    for package in packages:
        await axis.receive_package(_request("/axis/edxml", package))
        while axis._tasks:
            await asyncio.gather(*list(axis._tasks))
    return (time.process_time() - started) / len(packages)


async def _axis_delivers(axis: DocumentAxis, count: int) -> float:
    elapsed = 0.0
    for _ in range(count):
        started = time.process_time()
        answer = await axis.deliver(_request("/_control/axis/deliver", b'{"kind": "valid"}', b"application/json"))
        elapsed += time.process_time() - started
        document_id = next(reversed(axis.delivered))
        statuses = [build_status(document_id, "000.00.00.G03", "000.00.00.H26", code)
                    for code in ("03", "04", "05", "06")]  # the province's side: not counterpart CPU
        started = time.process_time()
        for status in statuses:
            await axis.receive_status(_request("/axis/status", status))
        elapsed += time.process_time() - started
        assert answer.status_code == 200
    return elapsed / count


def _generator(count: int) -> tuple[float, float, float]:
    gen = EdxmlGenerator(seed=7, province="01")
    cpu, wall = time.process_time(), time.perf_counter()
    written = sum(n for n, _ in gen.jsonl_batches(count))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    sample = list(gen.packages(500))
    valid = sum(1 for p in sample if read_package(p))
    return written / cpu, written / wall, valid / len(sample)


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        axis = _axis(Path(tmp))
        _ = axis.directory  # the unit tables load once, outside the figures
        gen = EdxmlGenerator(seed=1, province="01")
        packages = list(gen.packages(args.round_trips))
        await _axis_delivers(axis, 50)  # warm-up
        send = await _province_sends(axis, packages)
        deliver = await _axis_delivers(axis, args.round_trips)
    per_s_cpu, per_s_wall, valid = _generator(args.packages)
    load = os.getloadavg()[0]
    print(f"load average (1 min): {load:.2f}")
    print(f"counterpart CPU per round trip, province → axis (package + 01 + 03/06 pushed): {send * 1000:.3f} ms "
          "(target ≤ 5 ms)")
    print(f"counterpart CPU per round trip, axis → province (package delivered + 01 read + 03/04/05/06 recorded): "
          f"{deliver * 1000:.3f} ms (target ≤ 5 ms)")
    print(f"edXML generator: {per_s_cpu:,.0f} packages/s by CPU, {per_s_wall:,.0f}/s wall "
          f"(target ≥ 5,000/s); {valid:.0%} of a 500-package sample valid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--packages", type=int, default=20000)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
