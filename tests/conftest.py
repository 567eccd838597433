"""Shared fixtures: the embedded sandbox, started on free loopback ports.

``sandbox`` is one correct sandbox for the whole session (reset nothing; tests use fresh data).
``start_sandbox(faults=...)`` starts a dedicated one, stopped at the end of the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

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
