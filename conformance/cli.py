"""``haicap certify``: run the conformance suite against a province (or the embedded sandbox) and report.

Starts the target (the sandbox with ``--fault``s, or the national counterpart for a ``--profile``), runs the
checks with pytest in a child process (JUnit XML, Allure results, optional xdist workers), then writes
``results.json`` (schema-validated), ``report.html`` (one verdict per criterion), and redacts every file of the
run folder and every line of output against the run's secrets.

Exit codes (one scheme with ``haicap load``): 0 every selected check passed; 1 a rule was broken; 2 the run
could not start (bad arguments, unusable profile, a failed pre-flight of the wiring: unreachable or miswired
province); 3 incomplete (a selected check skipped for an undeclared capability, or reaching no verdict), unless
``--allow-incomplete``. Arguments and profile are validated before the run folder is touched; the pre-flight
(conformance/preflight.py) runs before any check and, when it fails, writes a results.json/report.html saying so.

A new run first removes every output of the previous run (results, report, junit, allure-results/, operator/),
so an interrupted run never leaves old evidence next to new. Ctrl-C stops the run with exit 3: results.json,
report.html and junit.xml hold the checks judged so far, marked ``interrupted`` (the checks not run listed),
and no bundle is written. The console shows haicap's own lines only; pytest's are kept in OUT/pytest.log.
``--rerun-failed`` re-runs what failed on the *same*
province, seed and sandbox faults (the province fixed in between) and merges results.json, report.html and
junit.xml, recording each re-run (when, which checks); Allure keeps both attempts. ``--since bundle.zip``
verifies an earlier bundle and re-runs only what changed since (conformance/since.py), carrying the rest.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from haicap.errors import HaicapError, did_you_mean

if TYPE_CHECKING:  # heavy or optional at import time: `haicap --help` stays fast
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from haicap.target import Profile
    from haicap.waivers import Waiver

__all__ = ["register", "run_certify"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "certify",
        help="certify a province's readiness (default: the embedded sandbox)",
        description="Run every conformance check, with haicap playing the national side, and write the evidence.",
        epilog="exit: 0 every selected check passed; 1 a rule was broken; 2 the run could not start (bad "
        "arguments or profile, a failed pre-flight); 3 incomplete (a check skipped or without a verdict) or "
        "interrupted (Ctrl-C). The run folder gets results.json, report.html, junit.xml, allure-results/ and "
        "a signed bundle.zip.",
    )
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="your province's profile YAML (write one with `haicap profile init`): haicap starts "
                        "the national counterpart it names and certifies the province at its province_url "
                        "(default: the embedded sandbox)")
    parser.add_argument("--out", type=Path, default=Path("haicap-certify"), metavar="DIR",
                        help="run folder (default ./haicap-certify); a new run first removes the previous run's "
                        "outputs there")
    parser.add_argument("--only", action="append", default=[], metavar="CRITERION|CHECK",
                        help="run only this criterion's checks, or this check (SSO-09); repeatable, mixable")
    parser.add_argument("--allow-incomplete", action="store_true",
                        help="exit 0, not 3, when some selected checks were skipped or reached no verdict")
    parser.add_argument("--rerun-failed", action="store_true",
                        help="re-run only the checks that failed or errored in OUT/results.json and merge")
    parser.add_argument("--since", type=Path, metavar="BUNDLE",
                        help="delta re-certification: verify this earlier bundle.zip, re-run only the checks whose"
                        " code, contracts, haicap version or profile fields changed or that did not pass")
    parser.add_argument("--fault", action="append", default=[], metavar="ID",
                        help="switch a named fault on in the embedded sandbox, to see its checks fail (repeatable; "
                        "`haicap sandbox --list-faults` lists them; not with --profile)")
    parser.add_argument("--province", metavar="CODE",
                        help="the province the embedded reference province plays (default 01 Hà Nội)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of generated data and fuzz cases (default 0; --rerun-failed and --since need the "
                        "seed of the run they build on)")
    parser.add_argument("-n", "--workers", type=int, default=0, metavar="N",
                        help="run the checks in N pytest-xdist processes (default 0: one process; operator "
                        "instructions then reach OUT/operator/pending/ only)")
    parser.add_argument("--waivers", type=Path, metavar="FILE",
                        help="YAML of accepted known failures (check, province, reason, approver, expires): a waived "
                        "failure is 'ready with waiver'; an expired one counts; a stale one fails the run")
    parser.add_argument("--load-summary", type=Path, metavar="SUMMARY_JSON",
                        help="the summary.json of a haicap load run against this province: carried in bundle.zip "
                        "(signed with the rest) so the scoreboard shows its knee, headroom and lost dossiers")
    parser.add_argument("--signing-key", type=Path, metavar="PEM",
                        help="Ed25519 private key that signs bundle.zip (default: the profile's signing_key_file, "
                        "else a key generated for the run, its public half written as OUT/bundle.pub)")
    parser.set_defaults(handler=run_certify)


#: Exit code of a run stopped by Ctrl-C (incomplete, like a run with checks that reached no verdict).
EXIT_INTERRUPTED = 3
#: What a run writes into its folder, its scratch files, and the folders a run fills.
OUTPUTS = ("results.json", "report.html", "junit.xml", "bundle.zip", "bundle.pub", "load-summary.json", "pytest.log")
#: What pytest and its plugins print besides haicap's own lines (warnings, a crash): kept here, not on the console.
PYTEST_LOG = "pytest.log"
RECORDS = "checks.raw.json"
RERUN_JUNIT = "junit.rerun.xml"
CARRIED_JUNIT = "junit.carried.xml"
OUTPUT_DIRS = ("allure-results", "operator")


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What the run's files hold, each read and validated once (by :func:`_validate_args`) and handed along."""

    profile: Profile | None = None  # None: the embedded sandbox
    waivers: list[Waiver] | None = None  # None: no --waivers
    signing_key: Ed25519PrivateKey | None = None  # from --signing-key or the profile's signing_key_file
    signing_key_file: Path | None = None


def _validate_args(args: argparse.Namespace) -> Inputs:
    """Everything that can be wrong with the command line or the profile, before the run folder is touched."""
    from haicap.conformance.registry import resolve_selectors
    from haicap.target import embedded_provider, load_profile

    args.only = resolve_selectors(args.only)
    if args.workers < 0:
        raise HaicapError("--workers must be 0 or more")
    if args.since is not None and args.rerun_failed:
        raise HaicapError("--since and --rerun-failed do not mix: --since carries from a bundle, --rerun-failed "
                          "merges into OUT/results.json; pick one")
    profile = None
    if args.profile is not None:
        if args.fault:
            raise HaicapError("--fault applies to the embedded sandbox only, not to a profile's province")
        profile = load_profile(args.profile)
        for key in profile.data["credentials"]:
            if key.endswith("_env"):
                profile.secret(key)  # a variable that is not set is one line naming file, line and field
        if args.province is not None and args.province != profile.data["province"]:
            raise HaicapError(f"--province {args.province} does not match the profile's province "
                              f"{profile.data['province']}")
    else:
        embedded_provider().check_faults(args.fault)
        if args.province is not None:
            from haicap.data_generators.units import admin_units

            admin_units().province(args.province)
    waivers = None
    if args.waivers is not None:
        from haicap.waivers import load_waivers

        if not args.waivers.is_file():
            raise HaicapError(f"--waivers {args.waivers}: no such file")
        waivers = load_waivers(args.waivers)  # a mistake is one line naming file, line and field
    key_file = args.signing_key or _profile_signing_key(args.profile, profile)
    key = None
    if key_file is not None:
        from haicap.reports.bundle import load_private_key

        try:
            key = load_private_key(key_file)
        except HaicapError as exc:
            if args.signing_key is not None:
                raise
            raise profile.document.error(("signing_key_file",), str(exc)) from None  # the profile named it
    if args.load_summary is not None:
        province = args.province or (profile.data["province"] if profile is not None else "01")
        _check_load_summary(args.load_summary, province)
    return Inputs(profile=profile, waivers=waivers, signing_key=key, signing_key_file=key_file)


def _check_load_summary(path: Path, province: str) -> None:
    """A load summary the bundle is to carry: a haicap load summary.json (its schema), of this province."""
    import jsonschema

    from haicap.loadtests.summary import validate_summary

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise HaicapError(f"--load-summary {path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise HaicapError(f"--load-summary {path}: not JSON ({exc})") from None
    try:
        validate_summary(doc)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise HaicapError(f"--load-summary {path}: not a haicap load summary: {where}: {exc.message}") from None
    made_for = str((doc.get("target") or {}).get("province") or "")
    if made_for and made_for != province:
        raise HaicapError(f"--load-summary {path}: a load run against province {made_for}, not {province}")


def _check_out(args: argparse.Namespace) -> None:
    if args.out.exists() and not args.out.is_dir():
        raise HaicapError(f"cannot use {args.out} as the run folder: it exists and is not a folder")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        probe = args.out / ".haicap-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise HaicapError(f"cannot write the run folder {args.out}: {exc.strerror}") from None
    for name in (*OUTPUTS, RECORDS, RERUN_JUNIT, CARRIED_JUNIT):
        path = args.out / name
        if path.exists() and not path.is_file():
            raise HaicapError(f"cannot write {path}: it exists and is not a regular file")


def _remove_previous_outputs(out: Path) -> None:
    """The previous run's evidence must not survive next to this one's."""
    import shutil

    for name in (*OUTPUTS, RECORDS, RERUN_JUNIT, CARRIED_JUNIT):
        (out / name).unlink(missing_ok=True)
    for name in OUTPUT_DIRS:
        if (out / name).is_dir():
            shutil.rmtree(out / name)


def _check_rerun_matches(previous: dict[str, Any], args: argparse.Namespace) -> None:
    """A re-run merges into the previous results: it must test the same thing, or the merge would lie."""
    from haicap.target import embedded_provider

    before = previous["target"]
    how = "run again without --rerun-failed, or use another --out"
    if previous.get("preflight", {}).get("ok") is False:
        raise HaicapError(f"--rerun-failed: {args.out / 'results.json'} stopped in its pre-flight, no check ran; "
                          "run again without --rerun-failed")
    if previous["seed"] != args.seed:
        raise HaicapError(f"--rerun-failed: {args.out / 'results.json'} was run with --seed {previous['seed']}, "
                          f"not {args.seed}; {how}")
    if bool(before.get("embedded_sandbox")) != (args.profile is None):
        was = "the embedded sandbox" if before.get("embedded_sandbox") else "a profile's province"
        raise HaicapError(f"--rerun-failed: {args.out / 'results.json'} tested {was}; {how}")
    if args.profile is None:
        province = args.province or embedded_provider().default_province
        if province != before.get("province"):
            raise HaicapError(f"--rerun-failed: {args.out / 'results.json'} tested province "
                              f"{before.get('province')}, not {province}; {how}")
        faults = sorted(set(args.fault))
        if faults != sorted(before.get("faults") or []):
            was = ", ".join(before.get("faults") or []) or "none"
            raise HaicapError(f"--rerun-failed: {args.out / 'results.json'} tested the sandbox with faults {was}, "
                              f"not {', '.join(faults) or 'none'}; pass the same --fault values, or {how}")


def _check_same_target(previous: dict[str, Any], now: dict[str, Any], out: Path) -> None:
    for key in ("province", "province_url"):
        if not now.get("embedded_sandbox") and previous.get(key) != now.get(key):
            raise HaicapError(f"--rerun-failed: {out / 'results.json'} tested {key} {previous.get(key)}, this "
                              f"profile {now.get(key)}; run again without --rerun-failed, or use another --out")


def run_certify(args: argparse.Namespace) -> int:
    """``haicap certify`` (see the module docstring); Ctrl-C stops it cleanly with exit 3, never a traceback."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        return _certify(args)
    except KeyboardInterrupt:  # before any check was judged: starting the target, the pre-flight
        print("\nhaicap certify: interrupted before any check was judged; no results were written",
              file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, handler)


def _certify(args: argparse.Namespace) -> int:
    from haicap.reports.results import exit_code, load_results
    from haicap.target import open_target

    inputs = _validate_args(args)
    # a bundle that does not verify touches nothing
    since = _load_since(args, inputs) if args.since is not None else None
    out: Path = args.out
    # before the run folder is made: a re-run with nothing to merge into touches nothing
    previous = load_results(out / "results.json") if args.rerun_failed else None
    _check_out(args)
    expected = _selected(args.only)
    rerun_ids: list[str] = []
    if previous is not None:
        _check_rerun_matches(previous, args)
        failed_before = {c["id"] for c in previous["checks"] if c["status"] in {"failed", "error"}}
        expected = [spec for spec in expected if spec.id in failed_before]
        rerun_ids = [spec.id for spec in expected]
        if not rerun_ids:
            scope = f" among {', '.join(args.only)}" if args.only else ""
            print(f"nothing to re-run: no check failed or errored{scope} in", out / "results.json")
            return exit_code(previous["summary"], allow_incomplete=args.allow_incomplete)
    else:
        _remove_previous_outputs(out)
    started = _now()
    delta_run = None
    if since is not None:
        delta = _plan_since(since, inputs, expected)
        rerun_ids = list(delta["rerun"])
        delta_run = (since, delta)
        print(f"haicap certify --since {args.since} ({since.created}): re-running {len(rerun_ids)}, carrying "
              f"{len(delta['carried'])}", flush=True)
        for change in delta["changes"]:
            print(f"  changed: {change}", flush=True)
        if not rerun_ids:
            return _carry_only(args, inputs, since, delta, expected, started, time.monotonic())
    t0 = time.monotonic()
    what = f"profile {args.profile}" if args.profile else "embedded sandbox"
    print(f"haicap certify: starting the target ({what})", flush=True)
    with open_target(inputs.profile, faults=args.fault, seed=args.seed, province=args.province) as target:
        if previous is not None:
            _check_same_target(previous["target"], target.describe(), out)
        print(f"  province {target.province_url}  ·  national counterpart {target.national_url}", flush=True)
        preflight = _preflight(target, args, out, started)
        if not preflight["ok"]:
            return 2
        results = _run_checks(target, args, inputs, expected, rerun_ids, previous, started, preflight, delta_run)
    _print_summary(results, out, time.monotonic() - t0)
    return int(results["summary"]["exit_code"])


def _selected(only: list[str]) -> list[Any]:
    """The checks ``--only`` selects: whole criteria and single check ids, mixed (all checks without it)."""
    from haicap.conformance.registry import all_checks

    return [spec for spec in all_checks() if not only or spec.criterion in only or spec.id in only]


def _preflight(target: Any, args: argparse.Namespace, out: Path, started: str) -> dict[str, Any]:
    """Probe the wiring; when it fails, write the results and report that say so (the run stops, exit 2)."""
    from haicap.conformance.preflight import preflight_message, run_preflight
    from haicap.redaction import Redactor
    from haicap.reports.readiness_html import render_readiness_html
    from haicap.reports.results import preflight_results, write_results

    preflight = run_preflight(target)
    if preflight["ok"]:
        print(f"  pre-flight: the wiring answers ({preflight['seconds']:.1f}s)", flush=True)
        return preflight
    message = preflight_message(preflight)
    criteria = {spec.criterion for spec in _selected(args.only)} if args.only else None
    results = Redactor(target.secret_values).value(preflight_results(
        preflight, target=target.describe(), seed=args.seed, started=started, finished=_now(), criteria=criteria))
    if not args.rerun_failed:  # a re-run that cannot start leaves the results it would merge into untouched
        write_results(out / "results.json", results)
        (out / "report.html").write_text(render_readiness_html(results), encoding="utf-8")
    print(f"haicap: error: pre-flight failed after {preflight['seconds']:.1f}s: {message}", file=sys.stderr,
          flush=True)
    print(f"no check was run; fix the profile or the province's configuration. report: {out / 'report.html'}",
          file=sys.stderr, flush=True)
    return preflight


def _run_checks(target: Any, args: argparse.Namespace, inputs: Inputs, expected: list[Any], rerun_ids: list[str],
                previous: dict[str, Any] | None, started: str, preflight: dict[str, Any],
                delta_run: tuple[Any, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run the checks in a pytest child process, then write results.json, report.html and the merged junit."""
    from haicap.redaction import Redactor
    from haicap.reports.results import build_results

    out: Path = args.out
    redact = Redactor(target.secret_values)
    records_path = out / RECORDS
    # the run folder travels with the target: the operator back office writes its instructions there
    target_file = _write_target_file(dataclasses.replace(target, run_dir=str(out.resolve())))
    interrupted: str | None = None  # what stopped the run: "Ctrl-C" or "SIGTERM"
    try:
        code = _stream(_pytest_command(args, records_path, target_file, rerun_ids, previous is not None), redact,
                       cwd=out)
        if code not in (0, 1):  # 0/1: the checks ran (failures are haicap's to report); else pytest itself stopped
            _pytest_stopped(code, out / PYTEST_LOG)
    except KeyboardInterrupt as exc:
        interrupted = "SIGTERM" if type(exc).__name__ == "Terminated" else "Ctrl-C"  # haicap.cli raises Terminated
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut what was judged in half
        if previous is not None:
            _rerun_interrupted(out, redact)
    finally:
        os.unlink(target_file)
    records = json.loads(records_path.read_text(encoding="utf-8")) if records_path.exists() else []
    if delta_run is not None:
        from haicap.conformance.since import carried_records

        records = [r for r in records if r["id"] in set(rerun_ids)] + carried_records(*delta_run)
    if interrupted:  # SIGINT stays ignored until run_certify returns: the target's teardown is not cut short
        return _interrupted_results(target, args, inputs, records, expected, started, preflight, delta_run,
                                    interrupted)
    from haicap.conformance.preflight import after_run_probe

    late = after_run_probe(target)
    if late is not None:  # the wiring explains the sync checks' outcomes: say so once, naming the field
        preflight = {**preflight, "probes": [*preflight["probes"], late]}
        print(f"  wiring: {late['field']}: {late['message']}", flush=True)
        records = _miswired_sync(records, f"{late['field']}: {late['message']}")
    results = build_results(
        records, expected, target=target.describe(), seed=args.seed, started=started, finished=_now(),
        previous=previous, allow_incomplete=args.allow_incomplete, preflight=preflight,
    )
    records_path.unlink(missing_ok=True)
    if previous is not None:
        rerun_junit = out / RERUN_JUNIT
        if rerun_junit.exists():
            from haicap.reports.junit_merge import merge_junit

            merge_junit(out / "junit.xml", rerun_junit, out / "junit.xml")
            rerun_junit.unlink()
    return _finish(args, inputs, redact.value(results), redact, started, delta_run)


def _interrupted_results(target: Any, args: argparse.Namespace, inputs: Inputs, records: list[dict[str, Any]],
                         expected: list[Any], started: str, preflight: dict[str, Any],
                         delta_run: tuple[Any, dict[str, Any]] | None, by: str = "Ctrl-C") -> dict[str, Any]:
    """Ctrl-C or SIGTERM: the results of the checks judged before it, marked ``interrupted`` (exit 3; a criterion with a
    check not run is never ready); the checks not reached are listed, not reported as run."""
    from haicap.redaction import Redactor
    from haicap.reports.junit_merge import mark_interrupted
    from haicap.reports.results import build_results

    out: Path = args.out
    judged = {r["id"] for r in records}
    not_run = [spec.id for spec in expected if spec.id not in judged]
    redact = Redactor(target.secret_values)
    results = build_results(records, [spec for spec in expected if spec.id in judged], target=target.describe(),
                            seed=args.seed, started=started, finished=_now(), preflight=preflight)
    results["interrupted"] = {"at": results["finished"], "by": by, "judged": len(judged), "selected": len(expected),
                              "not_run": not_run}
    (out / RECORDS).unlink(missing_ok=True)
    mark_interrupted(out / "junit.xml", f"interrupted ({by}): {len(judged)} of {len(expected)} selected checks "
                                        f"judged; not run: {', '.join(not_run) or 'none'}")
    print(f"\nhaicap certify: interrupted ({by}); {len(judged)} of {len(expected)} selected checks were judged, "
          f"{len(not_run)} not run — {out / 'results.json'} and report.html say so", file=sys.stderr, flush=True)
    return _finish(args, inputs, redact.value(results), redact, started, delta_run, interrupted=True)


def _finish(args: argparse.Namespace, inputs: Inputs, results: dict[str, Any], redact: Any, started: str,
            delta_run: tuple[Any, dict[str, Any]] | None, *, interrupted: bool = False) -> dict[str, Any]:
    """Waivers, results.json, report.html, redaction of the folder, bundle.zip (with --since: the delta and the
    carried checks' JUnit cases). An interrupted run is not bundled: it is no evidence to hand in."""
    from haicap.reports.readiness_html import render_readiness_html
    from haicap.reports.results import write_results

    out: Path = args.out
    if delta_run is not None:
        results["delta"] = delta_run[1]
        _carry_junit(out, *delta_run)
    results = _with_waivers(results, args, inputs.waivers)
    if interrupted:  # after the waivers, which recompute the exit code
        results["summary"].update(ok=False, exit_code=EXIT_INTERRUPTED)
    write_results(out / "results.json", results)
    (out / "report.html").write_text(render_readiness_html(results), encoding="utf-8")
    if args.load_summary is not None:
        (out / "load-summary.json").write_bytes(args.load_summary.read_bytes())
    redact.files(out)
    if not interrupted:
        _write_bundle(args, inputs, results, redact, started)
    return results


def _carry_junit(out: Path, since: Any, delta: dict[str, Any]) -> None:
    """junit.xml keeps describing every selected check: the carried ones' cases come from the bundle."""
    from haicap.conformance.since import carried_junit
    from haicap.reports.junit_merge import merge_junit

    fresh = out / "junit.xml"
    if not fresh.exists():
        carried_junit(since, delta, fresh)
        return
    base = out / CARRIED_JUNIT
    if carried_junit(since, delta, base):
        merge_junit(base, fresh, fresh)
        base.unlink()


def _load_since(args: argparse.Namespace, inputs: Inputs) -> Any:
    """The --since bundle, verified (against this run's signing key when it has one) and of the same target."""
    from haicap.conformance.since import check_since_matches, load_since
    from haicap.target import embedded_provider

    # the new bundle re-signs the carried evidence: its key must have signed it before
    trusted = inputs.signing_key.public_key() if inputs.signing_key is not None else None
    since = load_since(args.since, trusted)
    province = inputs.profile.data["province"] if inputs.profile is not None else (
        args.province or embedded_provider().default_province)
    check_since_matches(since, embedded=args.profile is None, province=province, faults=args.fault, seed=args.seed)
    return since


def _current_profile(inputs: Inputs) -> dict[str, Any] | None:
    """The profile as a bundle would hold it (redacted with the run's secrets), to compare with the bundle's."""
    if inputs.profile is None:
        return None
    from haicap.redaction import Redactor

    profile = inputs.profile
    secrets = [profile.secret(k) for k in profile.data["credentials"] if k.endswith("_env")]
    return Redactor(secrets).value(copy.deepcopy(profile.data))  # type: ignore[no-any-return]


def _plan_since(since: Any, inputs: Inputs, expected: list[Any]) -> dict[str, Any]:
    from haicap.conformance.since import plan_delta
    from haicap.reports.bundle import versions

    return plan_delta(since, expected, versions(), _current_profile(inputs))


def _carry_only(args: argparse.Namespace, inputs: Inputs, since: Any, delta: dict[str, Any], expected: list[Any],
                started: str, t0: float) -> int:
    """Nothing changed that a check depends on: no target is started; every check is carried from the bundle."""
    from haicap.conformance.since import carried_records
    from haicap.redaction import Redactor
    from haicap.reports.results import build_results

    print("  nothing to re-run: every selected check passed in the bundle and nothing it depends on changed",
          flush=True)
    results = build_results(carried_records(since, delta), expected, target=since.results["target"],
                            seed=args.seed, started=started, finished=_now(), allow_incomplete=args.allow_incomplete)
    results = _finish(args, inputs, results, Redactor(()), started, (since, delta))
    _print_summary(results, args.out, time.monotonic() - t0)
    return int(results["summary"]["exit_code"])


def _with_waivers(results: dict[str, Any], args: argparse.Namespace, waivers: list[Waiver] | None) -> dict[str, Any]:
    """Apply ``--waivers``: waived criteria read 'ready with waiver'; a stale waiver fails the run (exit 1)."""
    if waivers is None:
        return results
    from haicap.reports.results import exit_code, readiness, verdicts
    from haicap.waivers import apply_waivers, today_in_vietnam

    waived = apply_waivers(results, waivers, today_in_vietnam(), verdicts, readiness)
    summary, info = waived["summary"], waived["waivers"]
    unwaived = sum(1 for c in waived["checks"] if c["status"] == "failed" and c["id"] not in info["applied"])
    summary["exit_code"] = 1 if unwaived or info["stale"] else exit_code(
        {**summary, "failed": 0}, allow_incomplete=args.allow_incomplete)
    for stale in info["stale"]:
        print(f"  STALE WAIVER {stale['check']} (province {stale['province']}): the check now passes — remove the "
              f"waiver from {args.waivers}", flush=True)
    for check_id in info["applied"]:
        print(f"  waived: {check_id} (see {args.waivers})", flush=True)
    _print_unheeded_waivers(info, waivers, args.waivers, province=(results.get("target") or {}).get("province"))
    return waived


def _print_unheeded_waivers(info: dict[str, Any], waivers: list[Waiver], path: Path, province: str | None) -> None:
    """A waiver that changed nothing says why, so a mistyped check id or province is not silently ignored."""
    from haicap.conformance.registry import all_checks

    expires = {(w.check, w.province): w.expires.isoformat() for w in waivers}
    for check_id in info["expired"]:
        print(f"  expired waiver: {check_id} (expired {expires.get((check_id, province), '?')}): it waives "
              f"nothing — renew or remove it in {path}", flush=True)
    ids = sorted(spec.id for spec in all_checks())
    for unused in info["unused"]:
        if unused["check"] not in ids:
            why = f"haicap has no check {unused['check']}{did_you_mean(unused['check'], ids)}"
        elif unused["province"] != province:
            why = f"it is for province {unused['province']}, this run tested {province}"
        else:
            why = "the check was not selected in this run"
        print(f"  unused waiver: {unused['check']} (province {unused['province']}): {why} ({path})", flush=True)


def _write_bundle(args: argparse.Namespace, inputs: Inputs, results: dict[str, Any], redact: Any,
                  started: str) -> None:
    """bundle.zip over the redacted evidence, signed with the province's key or one made for this run."""
    from haicap.reports.bundle import key_id, write_bundle

    if inputs.signing_key is not None:
        key = inputs.signing_key
        origin = f"signed with {inputs.signing_key_file} (key {key_id(key.public_key())})"
    else:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate()
        (args.out / "bundle.pub").write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        origin = f"signed with a key made for this run (key {key_id(key.public_key())}; public half: bundle.pub)"
    profile = redact.value(copy.deepcopy(inputs.profile.data)) if inputs.profile is not None else None
    write_bundle(args.out, key, profile=profile, created=started)
    print(f"  bundle: {args.out / 'bundle.zip'} — {origin}; haicap verify checks it", flush=True)


def _profile_signing_key(path: Path | None, profile: Profile | None) -> Path | None:
    """The profile's ``signing_key_file``, relative to the profile's folder."""
    if path is None or profile is None:
        return None
    name = profile.data.get("signing_key_file")
    return None if not name else (path.parent / name)


def _miswired_sync(records: list[dict[str, Any]], why: str) -> list[dict[str, Any]]:
    """Every sync login was refused: what the sync checks saw says nothing about the province's sync, only that
    the profile and the province disagree on the account. Their failures become 'could not run', naming it."""
    out = []
    for record in records:
        if record.get("criterion") == "sync" and record.get("status") in ("failed", "skipped"):
            record = {**record, "status": "error", "message": f"could not run: the sync account is miswired — "
                                                               f"{why} (the check saw: {record.get('message')})"}
        out.append(record)
    return out


def _write_target_file(target: Any) -> str:
    from haicap.conformance.plugin import target_to_json

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        os.chmod(fh.name, 0o600)
        fh.write(target_to_json(target))
        return fh.name


def _pytest_command(args: argparse.Namespace, records: Path, target_file: str, rerun_ids: list[str],
                    rerun: bool) -> list[str]:
    out: Path = args.out
    junit = out / (RERUN_JUNIT if rerun else "junit.xml")
    cmd = [
        # -P: the working directory is not put on sys.path, so a source checkout's haicap/ folder can
        # never shadow the installed package (its top-level folders install as haicap.* subpackages)
        sys.executable, "-P", "-m", "pytest", "--pyargs", "haicap.conformance",
        "-p", "no:cacheprovider", "-qq", "--no-header", "--no-summary", "--tb=line", "-rN",
        "-o", "console_output_style=classic", "--haicap-console",
        f"--rootdir={out.resolve()}", f"--junitxml={junit.resolve()}",
        f"--alluredir={(out / 'allure-results').resolve()}",
        f"--haicap-target-file={target_file}", f"--haicap-results={records.resolve()}",
        f"--haicap-seed={args.seed}",
    ]
    cmd += [f"--haicap-only={selector}" for selector in sorted(set(args.only))]
    if rerun_ids:
        cmd += ["-k", " or ".join(rerun_ids)]
    if not rerun:
        cmd.append("--clean-alluredir")  # a re-run adds its attempts; Allure shows them as retries
    if args.workers:
        cmd += ["-n", str(args.workers)]
    return cmd


def _rerun_interrupted(out: Path, redact: Any) -> None:
    """Ctrl-C during --rerun-failed: the results it would merge into stay as they were (exit 3)."""
    (out / RECORDS).unlink(missing_ok=True)
    (out / RERUN_JUNIT).unlink(missing_ok=True)
    redact.files(out)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    raise HaicapError(f"interrupted; the re-run was not merged: the previous results in {out} are unchanged",
                      exit_code=EXIT_INTERRUPTED)


def _pytest_stopped(code: int, log: Path) -> None:
    """pytest ended without running the checks through (a collection error, an internal error): say so, with the
    end of what it printed, instead of only 'no verdict' for every check."""
    tail = log.read_text(encoding="utf-8").splitlines()[-20:] if log.is_file() else []
    print(f"haicap certify: pytest stopped with exit code {code}; the checks it did not reach have no verdict. "
          f"Its output: {log}" + (":" if tail else " (empty)"), file=sys.stderr, flush=True)
    for line in tail:
        print(f"  | {line}", file=sys.stderr, flush=True)


def _stream(cmd: list[str], redact: Any, cwd: Path) -> int:
    """Run pytest: haicap's own lines (CONSOLE_MARK) go to the console, everything else to OUT/pytest.log."""
    from haicap.conformance.plugin import CONSOLE_MARK

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # its own session: a signal to haicap's process group (Ctrl-C, a CI's SIGTERM) reaches haicap only, which
    # then interrupts pytest with SIGINT so that it writes what it judged (a SIGTERM would kill it mid-record)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                          cwd=cwd, start_new_session=True) as proc, \
            open(cwd / PYTEST_LOG, "w", encoding="utf-8") as log:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                if line.startswith(CONSOLE_MARK):
                    sys.stdout.write(redact.text(line[len(CONSOLE_MARK):]))
                    sys.stdout.flush()
                elif line.strip():
                    log.write(redact.text(line))
                    log.flush()
        except KeyboardInterrupt:  # let pytest finish writing before the caller cleans up after it
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=30)  # drained, so a full pipe cannot block it
            except (subprocess.TimeoutExpired, KeyboardInterrupt):  # a second Ctrl-C: do not wait any longer
                proc.kill()
                proc.communicate()
            raise
        finally:
            log.close()
            if not (cwd / PYTEST_LOG).stat().st_size:
                (cwd / PYTEST_LOG).unlink()
        return proc.wait()


def _print_evidence(results: dict[str, Any]) -> None:
    """What each check that failed or could not run in this run saw (the report has the same, with links)."""
    from haicap.conformance.plugin import _field

    problems = [c for c in results["checks"] if c["status"] in ("failed", "error") and not c.get("carried_from")]
    if problems:
        print("\nevidence of what failed or could not run (also in report.html):")
    for check in problems:
        waived = " (waived)" if (check.get("waiver") or {}).get("state") == "active" else ""
        verb = "failed" if check["status"] == "failed" else "could not run"
        print(f"\n{check['id']} {verb}{waived}: {check.get('message') or '(no message)'}")
        for label in ("expected", "actual", "reproduce", "rule"):
            if check.get(label) not in (None, ""):
                print(_field(label, check[label]))
    if problems:
        print(_field("seed", results["seed"]))


def _print_summary(results: dict[str, Any], out: Path, seconds: float) -> None:
    s = results["summary"]
    _print_evidence(results)
    print()
    width = max((len(c) for c in results["verdicts"]), default=0)
    for criterion, verdict in results["verdicts"].items():
        print(f"  {criterion:<{width}}  {verdict}")
    print(f"\n{s['total']} checks: {s['passed']} passed, {s['failed']} failed, {s['error']} error, "
          f"{s['skipped']} skipped in {seconds:.1f}s — readiness: {s['readiness']}")
    if results.get("delta"):
        d = results["delta"]
        print(f"delta since {d['since']['created']}: {len(d['rerun'])} re-run, {len(d['carried'])} carried "
              "(results.json delta.checks says why, per check)")
    if s["passed"] == 0 and s["failed"] == 0 and s["error"] == 0:
        print("nothing was verified: every check was skipped (see each check's reason in the report)")
    meaning = {0: "every selected check passed", 1: "a rule was broken",
               3: f"incomplete: {s['skipped']} selected check(s) skipped, {s['error']} reached no verdict "
                  "(--allow-incomplete accepts that)"}
    if results.get("interrupted"):
        stop = results["interrupted"]
        meaning[3] = (f"interrupted ({stop.get('by', 'Ctrl-C')}): {stop['judged']} of {stop['selected']} "
                      "selected checks judged, "
                      f"{len(stop['not_run'])} not run; no bundle was written")
    print(f"exit {s['exit_code']}: {meaning.get(s['exit_code'], '')}")
    print(f"report: {out / 'report.html'}  results: {out / 'results.json'}  junit: {out / 'junit.xml'}")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
