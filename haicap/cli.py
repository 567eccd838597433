"""The ``haicap`` command line: one sub-command per area, each registered by its own module.

Each area (sandbox, data, certify, load) has a light ``cli.py`` with ``register(subparsers)`` that adds its
sub-command and sets ``handler``; heavy imports (Locust, pytest, Faker) happen inside the handlers so that
``haicap --help`` stays fast and Locust's gevent patching never leaks into other commands. A
:class:`~haicap.errors.HaicapError` is printed as one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence
from typing import Any

from haicap import __version__
from haicap.errors import HaicapError

__all__ = ["build_parser", "main"]

#: Modules that contribute sub-commands, in the order they appear in ``haicap --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "haicap.conformance.cli",
    "haicap.profile_cli",
    "haicap.loadtests.cli",
    "haicap.sandbox.cli",
    "haicap.data_generators.cli",
    "haicap.reports.cli",
    "haicap.conversion.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="haicap",
        description="Conformance and cutover-surge load testing for provincial administrative procedure systems.",
    )
    parser.add_argument("--version", action="version", version=f"haicap {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # area not built yet
                continue
            raise
        module.register(subparsers)
    return parser


#: Two-word commands spelled as one sub-command: ``haicap load compare`` is ``haicap load-compare``.
ALIASES: dict[tuple[str, str], str] = {("load", "compare"): "load-compare"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    if tuple(words[:2]) in ALIASES:
        words = [ALIASES[(words[0], words[1])], *words[2:]]
    args = parser.parse_args(words)
    previous = _terminate_as_interrupt()
    try:
        return int(args.handler(args) or 0)
    except HaicapError as exc:
        print(f"haicap: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print("haicap: interrupted" + (" (SIGTERM)" if isinstance(exc, Terminated) else ""), file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except BrokenPipeError:  # output piped into `head` and closed early: not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, CI, Kubernetes), handled like Ctrl-C: the command's clean-up runs (a run in progress
    stops its child processes and the embedded servers it started) instead of the process dying where it stands.
    ``haicap load`` and ``haicap sandbox`` install their own handlers while they run."""


def _terminate_as_interrupt() -> Any:
    def handle(signum: int, frame: object) -> None:
        raise Terminated("SIGTERM")

    try:
        return signal.signal(signal.SIGTERM, handle)
    except ValueError:  # not the main thread (a test calling main): leave the process's handlers alone
        return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
