"""``haicap certify``: run the conformance suite against a province (or the embedded sandbox) and report.

Starts the target (the sandbox with ``--fault``s, or the national counterpart for a ``--profile``), runs the
checks with pytest in a child process (JUnit XML, Allure results, optional xdist workers), then writes
``results.json`` (schema-validated), ``report.html`` (one verdict per criterion), and redacts every file of the
run folder and every line of output against the run's secrets. Exit 0 only if no check failed or errored and at
least one passed.

A new run first removes the previous run's results from the folder, so an interrupted run never leaves an old
report next to new partial evidence. ``--rerun-failed`` re-runs what failed on the *same* province and seed (the
province fixed in between; for the sandbox, other ``--fault`` values) and merges results.json, report.html and
junit.xml, recording each re-run (when, which checks, which sandbox faults); Allure keeps both attempts.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from haicap.errors import HaicapError

__all__ = ["register", "run_certify"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "certify",
        help="certify a province's readiness (default: the embedded sandbox)",
        description="Run every conformance check, with haicap playing the national side, and write the evidence.",
    )
    parser.add_argument("--profile", type=Path, help="province profile YAML (default: the embedded sandbox)")
    parser.add_argument("--out", type=Path, default=Path("haicap-certify"),
                        help="run folder (default ./haicap-certify)")
    parser.add_argument("--only", action="append", default=[], metavar="CRITERION",
                        help="run only this criterion's checks (repeatable)")
    parser.add_argument("--rerun-failed", action="store_true",
                        help="re-run only the checks that failed or errored in OUT/results.json and merge")
    parser.add_argument("--fault", action="append", default=[], metavar="ID",
                        help="switch a named fault on in the embedded sandbox (repeatable)")
    parser.add_argument("--province", metavar="CODE",
                        help="the province the embedded reference province plays (default 01 Hà Nội)")
    parser.add_argument("--seed", type=int, default=0, help="seed of generated data and fuzz cases (default 0)")
    parser.add_argument("-n", "--workers", type=int, default=0, help="pytest-xdist workers (default: none)")
    parser.set_defaults(handler=run_certify)


#: What a run writes into its folder (besides allure-results/), and its scratch file.
OUTPUTS = ("results.json", "report.html", "junit.xml")
RECORDS = "checks.raw.json"
RERUN_JUNIT = "junit.rerun.xml"


def _validate_args(args: argparse.Namespace) -> None:
    from haicap.conformance.registry import CRITERIA

    unknown = [c for c in args.only if c not in CRITERIA]
    if unknown:
        raise HaicapError(f"unknown criterion {', '.join(unknown)}; valid: {', '.join(CRITERIA)}")
    if args.workers < 0:
        raise HaicapError("--workers must be 0 or more")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        probe = args.out / ".haicap-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HaicapError(f"cannot write the run folder {args.out}: {exc.strerror}") from None
    for name in (*OUTPUTS, RECORDS, RERUN_JUNIT):
        path = args.out / name
        if path.exists() and not path.is_file():
            raise HaicapError(f"cannot write {path}: it exists and is not a regular file")


def _check_rerun_matches(previous: dict[str, Any], args: argparse.Namespace) -> None:
    """A re-run merges into the previous results: it must test the same thing, or the merge would lie."""
    from haicap.sandbox.config import DEFAULT_PROVINCE

    before = previous["target"]
    how = "run again without --rerun-failed, or use another --out"
    if previous["seed"] != args.seed:
        raise HaicapError(f"--rerun-failed: {args.out / 'results.json'} was run with --seed {previous['seed']}, "
                          f"not {args.seed}; {how}")
    if bool(before.get("embedded_sandbox")) != (args.profile is None):
        was = "the embedded sandbox" if before.get("embedded_sandbox") else "a profile's province"
        raise HaicapError(f"--rerun-failed: {args.out / 'results.json'} tested {was}; {how}")
    if args.profile is None:  # other --fault values are allowed: switching a fault off is the sandbox's "fix"
        province = args.province or DEFAULT_PROVINCE[0]
        if province != before.get("province"):
            raise HaicapError(f"--rerun-failed: {args.out / 'results.json'} tested province "
                              f"{before.get('province')}, not {province}; {how}")


def _check_same_target(previous: dict[str, Any], now: dict[str, Any], out: Path) -> None:
    for key in ("province", "province_url"):
        if not now.get("embedded_sandbox") and previous.get(key) != now.get(key):
            raise HaicapError(f"--rerun-failed: {out / 'results.json'} tested {key} {previous.get(key)}, this "
                              f"profile {now.get(key)}; run again without --rerun-failed, or use another --out")


def run_certify(args: argparse.Namespace) -> int:
    from haicap.conformance.plugin import target_to_json
    from haicap.conformance.registry import checks_for
    from haicap.redaction import Redactor
    from haicap.reports.readiness_html import render_readiness_html
    from haicap.reports.results import build_results, load_results, write_results
    from haicap.target import open_target

    _validate_args(args)
    out: Path = args.out
    previous = load_results(out / "results.json") if args.rerun_failed else None
    criteria = set(args.only) or None
    expected = checks_for(criteria)
    rerun_ids: list[str] = []
    if previous is not None:
        _check_rerun_matches(previous, args)
        failed_before = {c["id"] for c in previous["checks"] if c["status"] in {"failed", "error"}}
        expected = [spec for spec in expected if spec.id in failed_before]
        rerun_ids = [spec.id for spec in expected]
        if not rerun_ids:
            scope = f" among {', '.join(sorted(criteria))}" if criteria else ""
            print(f"nothing to re-run: no check failed or errored{scope} in", out / "results.json")
            return 0 if previous["summary"]["ok"] else 1
    else:
        for name in (*OUTPUTS, RECORDS):  # the previous run's evidence must not survive next to this one's
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "operator", ignore_errors=True)  # nor its operator instructions
    junit = out / (RERUN_JUNIT if previous is not None else "junit.xml")
    started = _now()
    t0 = time.monotonic()
    what = f"profile {args.profile}" if args.profile else "embedded sandbox"
    print(f"haicap certify: starting the target ({what})", flush=True)
    with open_target(args.profile, faults=args.fault, seed=args.seed, province=args.province) as target:
        if previous is not None:
            _check_same_target(previous["target"], target.describe(), out)
        redact = Redactor(target.secret_values)
        print(f"  province {target.province_url}  ·  national counterpart {target.national_url}", flush=True)
        records_path = out / RECORDS
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            os.chmod(fh.name, 0o600)
            fh.write(target_to_json(dataclasses.replace(target, run_dir=str(out.resolve()))))
            target_file = fh.name
        try:
            cmd = [
                # -P: the working directory is not put on sys.path, so a source checkout's haicap/ folder can
                # never shadow the installed package (its top-level folders install as haicap.* subpackages)
                sys.executable, "-P", "-m", "pytest", "--pyargs", "haicap.conformance",
                "-p", "no:cacheprovider", "-q", "--no-header", "--tb=line", "-rN",
                f"--rootdir={out.resolve()}", f"--junitxml={junit.resolve()}",
                f"--alluredir={(out / 'allure-results').resolve()}",
                f"--haicap-target-file={target_file}", f"--haicap-results={records_path.resolve()}",
                f"--haicap-seed={args.seed}",
            ]
            for criterion in sorted(criteria or ()):
                cmd.append(f"--haicap-only={criterion}")
            if rerun_ids:
                cmd += ["-k", " or ".join(rerun_ids)]
            if previous is None:
                cmd.append("--clean-alluredir")  # a re-run adds its attempts; Allure shows them as retries
            if args.workers:
                cmd += ["-n", str(args.workers)]
            _stream(cmd, redact, cwd=out)
        except KeyboardInterrupt:
            _interrupted(out, redact, previous is not None)
            raise
        finally:
            os.unlink(target_file)
        records = json.loads(records_path.read_text(encoding="utf-8")) if records_path.exists() else []
        results = build_results(
            records, expected, target=target.describe(), seed=args.seed, started=started, finished=_now(),
            previous=previous,
        )
        records_path.unlink(missing_ok=True)
        if previous is not None:
            rerun_junit = out / RERUN_JUNIT
            if rerun_junit.exists():
                from haicap.reports.junit_merge import merge_junit

                merge_junit(out / "junit.xml", rerun_junit, out / "junit.xml")
                rerun_junit.unlink()
        results = redact.value(results)
        write_results(out / "results.json", results)
        (out / "report.html").write_text(render_readiness_html(results), encoding="utf-8")
        redact.files(out)
    _print_summary(results, out, time.monotonic() - t0)
    return 0 if results["summary"]["ok"] else 1


def _interrupted(out: Path, redact: Any, rerun: bool) -> None:
    """Ctrl-C: drop the partial junit and records (they would read as a whole run), redact what stays."""
    (out / RECORDS).unlink(missing_ok=True)
    (out / (RERUN_JUNIT if rerun else "junit.xml")).unlink(missing_ok=True)
    redact.files(out)
    kept = "the previous results are unchanged" if rerun else "no results were written"
    print(f"haicap certify: interrupted; {kept} in {out}", file=sys.stderr, flush=True)


def _stream(cmd: list[str], redact: Any, cwd: Path) -> int:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          cwd=cwd) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                sys.stdout.write(redact.text(line))
                sys.stdout.flush()
        except KeyboardInterrupt:  # let pytest finish writing before the caller cleans up after it
            proc.send_signal(signal.SIGINT)  # Ctrl-C reached it too; a SIGINT sent to haicap alone did not
            try:
                proc.communicate(timeout=30)  # drained, so a full pipe cannot block it
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
            raise
        return proc.wait()


def _print_summary(results: dict[str, Any], out: Path, seconds: float) -> None:
    s = results["summary"]
    print()
    for criterion, verdict in results["verdicts"].items():
        print(f"  {criterion:<11} {verdict}")
    print(f"\n{s['total']} checks: {s['passed']} passed, {s['failed']} failed, {s['error']} error, "
          f"{s['skipped']} skipped in {seconds:.1f}s — readiness: {s['readiness']}")
    if s["passed"] == 0 and s["failed"] == 0 and s["error"] == 0:
        print("nothing was verified: every check was skipped (see each check's reason in the report)")
    print(f"report: {out / 'report.html'}  results: {out / 'results.json'}  junit: {out / 'junit.xml'}")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
