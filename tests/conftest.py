"""Shared fixtures: the embedded sandbox, started on free loopback ports; the national counterpart alone.

``sandbox`` is one correct sandbox for the whole session (reset nothing; tests use fresh data).
``start_sandbox(faults=...)`` starts a dedicated one, stopped at the end of the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from haicap.sandbox.national.testing import RecordingProvince, RunningNational, serve_national
from haicap.sandbox.runner import Sandbox


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox.start() as running:
        yield running


@pytest.fixture
def start_sandbox() -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def start(**kwargs: object) -> Sandbox:
        running = Sandbox.start(**kwargs)  # type: ignore[arg-type]
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


# -- the national counterpart alone (tests of the national side), with a recording fake province -------

@pytest.fixture(scope="module")
def province() -> Iterator[RecordingProvince]:
    with RecordingProvince.serve() as running:
        yield running


@pytest.fixture(scope="module")
def national(tmp_path_factory: pytest.TempPathFactory, province: RecordingProvince) -> Iterator[RunningNational]:
    with serve_national(Path(tmp_path_factory.mktemp("national")), province.url) as running:
        province.secret = running.configs.national.payment_partners[0].secret
        yield running


@pytest.fixture(scope="module")
def client(national: RunningNational) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=national.url, timeout=10) as http:
        yield http
