"""``haicap load``: check the request, open the target, run Locust in a child process, then judge the run.

This process never imports Locust (gevent's monkey-patching stays out of the process that runs the sandbox):
it validates the shape, scenarios and target, starts the embedded sandbox (or the counterpart for a profile),
writes the run plan to a private file and starts ``python -m haicap.loadtests.locust_app`` (master or local
runner, plus ``--processes`` local workers). When the child is done it reads the merged measurements, waits
for the drain window to check integrity against the national ledger, evaluates the SLO gates and writes
summary.json, timeseries.json, stages.json (step) and the capacity report (step, if the report module is there).

Before anything starts, every option is checked (the credentials file field by field, ``--projection`` keys
against a step shape, ``--out`` creatable); the previous run's outputs are removed from ``--out`` when the run
starts, and ``files`` in the summary lists only files this run wrote. Before any load, the credentials are
tried (:mod:`.preflight`): a refused control or officer token, or a national counterpart that does not answer,
is a one-line error naming the credential, exit 2.

Exit codes: 0 passed; 1 an SLO breached or data lost; 2 the run could not be completed (bad input or
credentials, unreachable target, workers failed, the national ledger not readable so integrity could not be
checked, the system under test pointed the generator at a host that is not allowed) or, with
``require_kept_up`` (the default), it is inconclusive: the gates passed but the generator did not offer the load
asked for, so a pass would rest on under-load. A run cut short — interrupted by SIGINT/SIGTERM (:mod:`.stopping`:
the load stops, the run drains, integrity is checked and the summary says "interrupted by SIGTERM") or stopped at
its time bound (duration + grace + drain + 1 min after the load started, whatever the province or the workers do)
— is judged on what it measured: 1 if a gate it judged breached or a dossier was lost, else 3 (incomplete), or 2
when nothing could be judged; it always writes summary.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from haicap import __version__
from haicap.contract_registry import contracts_digest
from haicap.counterpart_client import CounterpartClient
from haicap.errors import HaicapError
from haicap.loadtests import DEFAULT_MAX_IN_FLIGHT, WATCHDOG_SLACK_S
from haicap.loadtests.integrity import check_integrity, check_province_records, check_sync_deadlines
from haicap.loadtests.journeys import Mix, load_mix_scenarios
from haicap.loadtests.preflight import CredentialNames, Credentials, check_url, preflight, read_credentials
from haicap.loadtests.recorder import Recorder
from haicap.loadtests.shapes import ShapeSpec, arrival_times
from haicap.loadtests.slo import evaluate_slos, mix_slo
from haicap.loadtests.stopping import LoadStopped, StopControl, exit_code_for, signal_name
from haicap.loadtests.summary import CPU_LIMIT, build_stages, build_timeseries, validate_summary
from haicap.loadtests.until_breach import DEFAULT_MAX_DURATION_S, extend_staircase, limit_reason, ran_stages
from haicap.parent_death import end_child
from haicap.target import Target, open_target

__all__ = ["OUTPUT_FILES", "LoadOptions", "check_target_allowed", "decide", "run_load"]

DEFAULT_MAX_RATE = 200.0
#: an arrival started this much after its intended time (p99) means the scheduler fell behind
LATE_START_MS = 1000.0
#: what a run writes into --out (haicap's own files, then Locust's): a new run removes them first
OUTPUT_FILES = ("summary.json", "timeseries.json", "stages.json", "capacity.html", "raw.json")
LOCUST_OUTPUT_GLOBS = ("locust*.html", "locust*.csv")
#: the sync-deadline check after the drain gets the drain window again, at least this long
SYNC_CHECK_MIN_S = 10.0


@dataclass
class LoadOptions:
    shape: ShapeSpec
    out: Path
    max_rate: float = DEFAULT_MAX_RATE
    target_url: str | None = None
    credentials: Path | None = None
    profile: Path | None = None
    allow_target: str | None = None
    faults: list[str] = field(default_factory=list)
    processes: int = 0
    #: worker processes of the national counterpart haicap starts (``--national-workers``)
    national_workers: int = 1
    master: bool = False
    expect_workers: int = 1
    master_bind: str = "127.0.0.1"
    master_port: int = 0
    seed: int = 0
    drain_s: float = 30.0
    scenarios: list[str] = field(default_factory=list)
    scenario_paths: list[Path] = field(default_factory=list)
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    pool_size: int = 1000
    grace_s: float = 20.0
    progress_s: float = 3.0
    connect_timeout_s: float = 60.0
    projection: dict[str, Any] = field(default_factory=dict)
    require_kept_up: bool = True
    #: no --duration given: take the shortest duration that gives every SLO gate its samples
    auto_duration: bool = False
    #: a gate not judged (too few samples) makes an otherwise passing run exit 3, incomplete
    strict: bool = False
    #: serve OpenMetrics on this port while the run lasts (0: no endpoint)
    metrics_port: int = 0
    metrics_bind: str = "127.0.0.1"
    #: --until-breach: extend the step staircase until a stage breaks, within max_rate and max_duration
    until_breach: bool = False
    max_duration: float | None = None
    #: the extended staircase (set by run_load from until_breach)
    staircase: dict[str, Any] | None = None


def check_target_allowed(url: str, allow: str | None) -> None:
    """A target outside loopback is refused unless ``--allow-target`` names exactly its host."""
    from haicap.sandbox.server import is_loopback_host

    check_url(url, "target")
    host = urlsplit(url).hostname or ""
    if is_loopback_host(host):
        return
    if allow is not None and allow.strip().lower() == host.lower():
        return
    reason = f"--allow-target {allow!r} does not name it" if allow else "no --allow-target names it"
    raise HaicapError(f"refusing to load {host}: it is not a loopback address and {reason} "
                      f"(load only systems you are responsible for: --allow-target {host})")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check_target_options(opts: LoadOptions) -> Credentials | None:
    """The target flags fit together; for ``--target`` the credentials file is read (field by field)."""
    if opts.target_url and opts.profile:
        raise HaicapError("give --target (a running province, with --credentials) or --profile, not both")
    if opts.credentials is not None and not opts.target_url:
        raise HaicapError(f"--credentials {opts.credentials} applies to --target only (the credentials of the "
                          "target's national counterpart); without --target the "
                          + ("profile's counterpart" if opts.profile else "embedded sandbox") + " is used")
    if not opts.target_url:
        return None
    check_target_allowed(opts.target_url, opts.allow_target)
    if opts.faults:
        raise HaicapError("--fault applies to the embedded sandbox only, not to --target")
    if opts.credentials is None:
        raise HaicapError("--target needs --credentials FILE (the credentials.json `haicap sandbox` writes: "
                          "national_url, control_token, officer_token) to check integrity in the ledger")
    creds = read_credentials(opts.credentials)
    try:
        check_target_allowed(creds.national_url, opts.allow_target)
    except HaicapError as exc:
        raise HaicapError(f"{opts.credentials}: national_url: {exc}") from None
    return creds


def _credential_names(opts: LoadOptions) -> CredentialNames:
    if opts.credentials is not None:
        return CredentialNames.of_file(opts.credentials)
    if opts.profile is not None:
        return CredentialNames("the national counterpart haicap runs for the profile",
                               "the control token of the counterpart haicap runs for the profile",
                               f"{opts.profile}: the officer token (credentials.officer_token_env)")
    return CredentialNames("the embedded sandbox's national URL", "the embedded sandbox's control token",
                           "the embedded sandbox's officer token")


@contextlib.contextmanager
def _target(opts: LoadOptions, creds: Credentials | None) -> Iterator[Target]:
    if opts.target_url and creds is not None:
        from haicap.sandbox.config import DEFAULT_PROVINCE

        yield Target(name=f"province at {opts.target_url}", province_code=creds.province or DEFAULT_PROVINCE[0],
                     agency_code=creds.agency_code or DEFAULT_PROVINCE[1],
                     province_url=opts.target_url.rstrip("/"), national_url=creds.national_url,
                     control_token=creds.control_token, officer_token=creds.officer_token)
        return
    if opts.profile:
        _check_profile_hosts(opts.profile, opts.allow_target)
    with open_target(opts.profile, faults=opts.faults, seed=opts.seed,
                     national_workers=opts.national_workers) as target:
        yield target


#: profile fields whose URLs the system under test or the counterpart sends haicap's traffic to
PROFILE_URL_FIELDS = (("province_url",), ("national", "public_url"), ("credentials", "oidc_redirect_uri"),
                      ("credentials", "oidc_post_logout_redirect_uri"), ("credentials", "payment_callback_url"))


def _check_profile_hosts(path: Path, allow: str | None) -> None:
    """Every URL a profile names is loopback or the ``--allow-target`` host; the refusal names the field."""
    from haicap.target import load_profile

    data = load_profile(path).data
    for keys in PROFILE_URL_FIELDS:
        value: Any = data
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        try:
            check_target_allowed(str(value), allow)
        except HaicapError as exc:
            raise HaicapError(f"{path}: {'.'.join(keys)}: {exc}") from None


def allowed_hosts(target: Target, allow: str | None) -> list[str]:
    """Hosts the generator may follow the system under test to: the target's, the national side's, the profile's
    (each already checked to be loopback or allowed) and ``--allow-target``; loopback is always allowed."""
    hosts = {urlsplit(u).hostname or "" for u in (target.province_url, target.national_url)}
    hosts |= set(target.allowed_hosts)
    if allow and allow.strip():
        hosts.add(allow.strip())
    return sorted(h.lower() for h in hosts if h)


def _reachable(url: str) -> str | None:
    for _ in range(3):
        try:
            httpx.get(url.rstrip("/") + "/health", timeout=3.0)
            return None
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    return f"target unreachable: GET {url}/health failed ({error})"


def _scenario_files(paths: list[Path]) -> dict[str, str]:
    from haicap.loadtests.journeys import LOAD_JOURNEYS
    from haicap.scenarios.engine import LIBRARY

    files: dict[str, str] = {}
    for entry in [*(paths or [LIBRARY]), LOAD_JOURNEYS]:
        for file in sorted(entry.glob("*.yaml")) if entry.is_dir() else [entry]:
            file_key = f"{len(files)}-{file.name}" if file.name in files else file.name
            files[file_key] = file.read_text(encoding="utf-8")
    return files


#: haicap load's own watchdog over the generator, beyond the generator's (WATCHDOG_SLACK_S after the grace window)
CHILD_SLACK_S = 10.0
#: setting up the generator (workers connecting, building their data) may take this long beyond the connect timeout
SETUP_SLACK_S = 135.0
#: after the load, the integrity checks together take at most the drain window and this long
JUDGE_SLACK_S = 25.0


def _run_child(plan: dict[str, Any], setup_s: float, load_s: float, stops: StopControl) -> str | None:
    """Run the generator; a stop signal reaches it through ``stops`` (SIGTERM, then SIGKILL on a second). The
    generator is killed when its set-up takes longer than ``setup_s`` or the load more than ``load_s`` after its
    start: the reason is returned (None when it ended by itself) and the run is judged on what it wrote."""
    private = Path(tempfile.mkdtemp(prefix="haicap-load-"))
    plan_path, status = private / "plan.json", private / "started.json"
    plan = {**plan, "status_file": str(status)}
    fd = os.open(plan_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(plan, fh)
    stops.loading()
    proc = subprocess.Popen([sys.executable, "-P", "-m", "haicap.loadtests.locust_app",
                             "--parent-pid", str(os.getpid()), str(plan_path)])
    stops.started(proc)
    setup_end = time.monotonic() + setup_s
    try:
        while True:
            with contextlib.suppress(subprocess.TimeoutExpired):
                stops.wait(proc, 0.5)
                return None
            started = _started_epoch(status)
            if started is not None and time.time() > started + load_s + WATCHDOG_SLACK_S + CHILD_SLACK_S:
                end_child(proc, term_wait_s=3)
                return (f"stopped at the time bound: the load generator had not finished "
                        f"{load_s + WATCHDOG_SLACK_S + CHILD_SLACK_S:.0f} s after the load started; it was stopped")
            if started is None and time.monotonic() > setup_end:
                end_child(proc, term_wait_s=3)
                return f"stopped at the time bound: the load generator had not started the load within {setup_s:.0f} s"
    finally:
        if proc.poll() is None:  # never leave the generator running behind us
            proc.kill()
            proc.wait(timeout=10)
        for path in (plan_path, status):
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            private.rmdir()


def _started_epoch(status: Path) -> float | None:
    try:
        return float(json.loads(status.read_text(encoding="utf-8"))["start_epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _check_projection(opts: LoadOptions, shape: Any) -> None:
    """``--projection`` sizes capacity from a step run: other shapes refuse it, and its keys are checked now."""
    if not opts.projection:
        return
    if not shape.stages():
        raise HaicapError(f"--projection sizes capacity from a step run; this run's shape is {opts.shape.name}, "
                          "which writes no capacity report (use --shape step, or drop --projection)")
    try:
        from haicap.reports.capacity import Projection
    except ImportError:  # the report module is optional: the run says so when it would write the report
        return
    try:
        projection = Projection.from_dict(dict(opts.projection))
        if "province" in opts.projection:
            projection.resolve()
    except HaicapError as exc:
        raise HaicapError(f"--projection: {exc}") from None


def _prepare_out(out: Path) -> None:
    """Create ``out`` (a one-line error naming it if that cannot be done) and remove the previous run's outputs."""
    if out.exists() and not out.is_dir():
        raise HaicapError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HaicapError(f"--out {out}: cannot create the output folder ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise HaicapError(f"--out {out}: the output folder is not writable")
    stale = [out / name for name in OUTPUT_FILES]
    for pattern in LOCUST_OUTPUT_GLOBS:
        stale.extend(sorted(out.glob(pattern)))
    for path in stale:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise HaicapError(f"--out {out}: cannot remove the previous run's {path.name} "
                              f"({exc.strerror or exc})") from None


#: The counterpart's parts whose state still lives in one process (sandbox/national/app.py says how a part shares
#: its state across ``--national-workers``): the document axis, the civil-status side and the signatures' test CA.
PER_PROCESS_PARTS = frozenset({"document_axis", "civil_status", "signatures"})


def _check_shared_parts(opts: LoadOptions, mix: Mix) -> None:
    """With several counterpart workers, a journey needing a part kept in one process would see another worker's
    state half the time: refuse it before anything runs, naming the journeys."""
    if opts.national_workers <= 1:
        return
    needing = sorted(f"{s} ({', '.join(sorted(mix.scenarios[s].capabilities() & PER_PROCESS_PARTS))})"
                     for s in mix.weights if mix.scenarios[s].capabilities() & PER_PROCESS_PARTS)
    if needing:
        raise HaicapError(f"--national-workers {opts.national_workers}: journey(s) {'; '.join(needing)} need a "
                          "part of the national counterpart that keeps its state in one process; run them with "
                          "--national-workers 1")


def run_load(opts: LoadOptions) -> int:
    scenarios = load_mix_scenarios(opts.scenario_paths or None)
    mix = Mix.build(scenarios, opts.scenarios)  # unknown scenario ids: error before anything starts
    _check_shared_parts(opts, mix)
    if opts.target_url:
        check_target_allowed(opts.target_url, opts.allow_target)
    from haicap.loadtests.cli import MAX_DRAIN_S, MAX_RATE

    if not (math.isfinite(opts.max_rate) and 0 < opts.max_rate <= MAX_RATE):
        raise HaicapError(f"--max-rate must be a finite number > 0 and ≤ {MAX_RATE:g}, got {opts.max_rate:g}")
    if not (math.isfinite(opts.drain_s) and 0 <= opts.drain_s <= MAX_DRAIN_S):
        raise HaicapError(f"--drain must be a finite number of seconds, 0..{MAX_DRAIN_S:g}, got {opts.drain_s:g}")
    # the cutover's storm and burst journeys run only if selected: every process builds the shape with the selection
    opts = dataclasses.replace(opts, shape=opts.shape.with_selection(opts.scenarios))
    if opts.auto_duration:
        opts = _judged_duration(opts, scenarios)
    opts = _staircase(opts)
    shape = opts.shape.build()
    _check_projection(opts, shape)
    creds = _check_target_options(opts)
    _prepare_out(opts.out)
    stops = StopControl(after_stop=f"; running journeys get ≤ {opts.grace_s:g} s, then the integrity check "
                                   f"≤ {opts.drain_s:g} s and the summary")
    try:
        with stops.installed():
            return _run(opts, creds, scenarios, shape, stops)
    except LoadStopped as exc:
        raise HaicapError(f"stopped by {signal_name(exc.signum)} before the load started: nothing was run, no "
                          "summary written", exit_code=exit_code_for(exc.signum)) from None


def _staircase(opts: LoadOptions) -> LoadOptions:
    """--until-breach: the step staircase extended within --max-rate and --max-duration (checked before the run);
    --max-duration without it is refused."""
    if not opts.until_breach:
        if opts.max_duration is not None:
            raise HaicapError("--max-duration caps the staircase of --until-breach; give --until-breach too (or "
                              "--duration for a run of fixed length)")
        return opts
    cap = DEFAULT_MAX_DURATION_S if opts.max_duration is None else opts.max_duration
    spec, staircase = extend_staircase(opts.shape, opts.max_rate, cap)
    print(f"haicap load: --until-breach: up to {staircase.stages} stages of {staircase.stage_s:g} s, "
          f"{spec.params['start_rate']:g}/s + {spec.params['step_rate']:g}/s a stage up to {staircase.top_rate:g}/s "
          f"(bounded by the {staircase.bound}: --max-rate {opts.max_rate:g}, --max-duration {cap:g} s); the load "
          "stops at the first stage that breaches an SLO gate or the sync SLA", flush=True)
    return dataclasses.replace(opts, shape=spec, staircase=staircase.as_dict())


def _judged_duration(opts: LoadOptions, scenarios: dict[str, Any]) -> LoadOptions:
    """No --duration: the shortest duration (60 s … AUTO_MAX_S) that gives every SLO gate its samples."""
    from haicap.loadtests.judgeability import AUTO_MAX_S, duration_to_judge

    weights = Mix.build(scenarios, opts.scenarios).weights
    chosen = duration_to_judge(opts.shape, weights, scenarios, opts.max_rate, longest=AUTO_MAX_S)
    if chosen is None:
        print(f"haicap load: no duration up to {AUTO_MAX_S:g} s gives every SLO gate its samples at this rate; "
              f"running the default {opts.shape.duration:g} s (raise the rate with --set, or give --duration)",
              flush=True)
        return opts
    print(f"haicap load: duration {chosen:g} s — no --duration given: the shortest that gives every SLO gate its "
          "samples at this shape's rate (--duration to choose)", flush=True)
    return dataclasses.replace(opts, shape=dataclasses.replace(opts.shape, duration=chosen))


def _warn_unjudgeable(opts: LoadOptions, scenarios: dict[str, Any], shape: Any, mix: Mix) -> list[dict[str, Any]]:
    """Before the load: which percentile gates this run cannot judge, and the duration that would."""
    from haicap.loadtests.judgeability import (
        as_json,
        duration_to_judge,
        percentile_gate_count,
        summarize,
        unjudgeable,
    )

    short = unjudgeable(shape, mix.weights, scenarios, opts.max_rate)
    if not short:
        return []
    total = percentile_gate_count(mix.weights, scenarios, list(shape.mix(0) or ()))
    needed = duration_to_judge(opts.shape, mix.weights, scenarios, opts.max_rate)
    advice = (f"--duration {needed:g} would judge them all" if needed is not None else
              "no duration up to 3600 s would judge them all: raise the rate (--set)")
    print(f"haicap load: note: {summarize(short, total)}; they will be reported 'not judged' ({advice}; --strict "
          "makes a not-judged gate exit 3)", flush=True)
    return as_json(short)


def _run(opts: LoadOptions, creds: Credentials | None, scenarios: dict[str, Any], shape: Any,
         stops: StopControl) -> int:
    with _target(opts, creds) as target:
        # load drives officer steps through the officer API only (no operator or plugin at load rates)
        officer_steps = bool(target.officer_token) and target.back_office.kind == "officer_api"
        capabilities = target.capabilities if officer_steps else target.capabilities - {"officer_api", "back_office"}
        mix = Mix.build(scenarios, opts.scenarios, frozenset(capabilities))
        print(f"haicap load: {target.name} — province {target.province_url}, national {target.national_url}"
              + (f", faults: {', '.join(sorted(target.faults))}" if target.faults else ""), flush=True)
        print(f"haicap load: {shape.describe()}", flush=True)
        print(f"haicap load: mix {', '.join(f'{k} {v:g}' for k, v in mix.weights.items())}; rate cap "
              f"{opts.max_rate:g}/s; drain window {opts.drain_s:g} s", flush=True)
        expected_short = _warn_unjudgeable(opts, scenarios, shape, mix)
        unreachable = _reachable(target.province_url)
        raw: dict[str, Any] = {}
        if unreachable:
            print(f"haicap load: stopping early: {unreachable}", flush=True)
        else:
            officer = target.officer_token if "officer_api" in capabilities else None
            preflight(target.province_url, target.national_url, target.control_token, officer,
                      _credential_names(opts))
            workers = opts.expect_workers if opts.master else opts.processes
            plan = {
                "province_url": target.province_url, "national_url": target.national_url,
                "control_token": target.control_token, "officer_token": target.officer_token,
                "province_code": target.province_code, "capabilities": sorted(capabilities),
                "sync_sla_seconds": target.sync_sla_seconds, "communes": list(target.communes or ()),
                "scenario_files": _scenario_files(opts.scenario_paths), "only": list(mix.weights),
                "shape": opts.shape.as_dict(), "max_rate": opts.max_rate, "max_in_flight": opts.max_in_flight,
                "seed": opts.seed, "pool_size": opts.pool_size, "grace_s": opts.grace_s,
                "progress_s": opts.progress_s, "out": str(opts.out), "workers": workers,
                "spawn_workers": not opts.master, "master_bind": opts.master_bind,
                "master_port": opts.master_port or _free_port(), "connect_timeout_s": opts.connect_timeout_s,
                "allowed_hosts": allowed_hosts(target, opts.allow_target),
                "metrics_port": opts.metrics_port, "metrics_bind": opts.metrics_bind,
            }
            if opts.until_breach:
                plan["until_breach"] = True
                plan["stage_gates"] = mix_slo(scenarios, list(mix.weights))["gates"]
                plan["require_kept_up"] = opts.require_kept_up
            bound = _run_child(plan, opts.connect_timeout_s + SETUP_SLACK_S, shape.duration + opts.grace_s, stops)
            raw = _read_raw(opts.out, stops)
            if bound and not raw.get("time_bound"):
                raw["time_bound"] = bound
        stops.judging()
        raw["expected_not_judged"] = expected_short
        return _judge(opts, target, scenarios, mix, shape, raw, unreachable, stops)


def _read_raw(out: Path, stops: StopControl) -> dict[str, Any]:
    raw_path = out / "raw.json"
    try:
        raw: dict[str, Any] = json.loads(raw_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # not written (killed), or cut off mid-write
        killed = " (it was killed after a second stop signal)" if stops.hurry else ""
        return {"errors": [f"the load generator wrote no results{killed}"]}
    raw_path.unlink()
    return raw


def _veto_by_sync_sla(sizing: dict[str, Any], slo: dict[str, Any]) -> None:
    """A province that misses its sync SLA under this load holds no rate: the stages' latency gates cannot say
    otherwise (the sync SLA is judged over the run, not per stage), so there is no knee and no instance count."""
    breach = next((b for b in slo.get("breaches", []) if b.get("metric") == "sync_sla"), None)
    if breach is None or sizing.get("knee") is None:
        return
    sizing["notes"].append(f"the sync-SLA gate breached over the run ({breach['actual']}), already at the "
                           "lowest stage's load for all the stages could tell; make sync keep its SLA first")
    sizing.update(knee=None, knee_is_lower_bound=False, knee_lower_bound=None, knee_per_instance=None,
                  instances=None)
    sizing["arithmetic"].append("instances: not computable — the run breached the sync SLA")


def _print_capacity(sizing: dict[str, Any]) -> None:
    """The capacity answer, then the projection's arithmetic with where each figure came from."""
    print(sizing["answer"])
    projection = sizing["projection"]
    print(f"  projected peak of province {projection.get('province')} (--projection to change any figure):")
    for line in sizing["arithmetic"]:
        print(f"    {line}")
    for key, source in sizing["sources"].items():
        print(f"    {key}: {source}")
    assumed = [k for k in ("office_hours", "peak_hour_factor", "surge_factor", "headroom") if k in projection]
    print("    assumptions: " + "; ".join(f"{k} {projection[k]:g}" for k in assumed) + " (capacity.html says why)")


def _print_province_records(province: dict[str, Any]) -> None:
    if "skipped" in province:
        print(f"integrity at the province: not checked ({province['skipped']})")
        return
    print(f"integrity at the province: {province['read'] - province['lost_count']}/{province['accepted']} accepted "
          "dossiers readable by MaHoSo with their latest status" + ("" if province["checked"] else
                                                                    f" — NOT COMPLETE: {province.get('error')}"))
    for item in province["lost"][:20]:
        print(f"  LOST {item['MaHoSo']}: {item['problem']}")
    if province["lost_count"] > 20:
        print(f"  … and {province['lost_count'] - 20} more (summary.json)")


def _outages(raw: dict[str, Any]) -> list[tuple[float, float]]:
    """The national outages the run started, as (start, end) epochs."""
    start = float(raw.get("start_epoch") or 0.0)
    return [(start + float(e["t"]), start + float(e["t"]) + float(e["seconds"])) for e in raw.get("events") or []
            if e.get("action") == "sync-outage" and "error" not in e]


def _integrity(opts: LoadOptions, target: Target, recorder: Recorder, stops: StopControl,
               outages: list[tuple[float, float]]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """After the load: every accepted dossier in the national ledger with its latest status (within the drain),
    still readable at the province with that status, and each expect_synced status on time."""
    accepted = recorder.accepted
    sync: dict[str, Any] | None = None
    # the checks together end within the drain window and JUDGE_SLACK_S, whatever the province does
    end = time.monotonic() + opts.drain_s + JUDGE_SLACK_S
    with CounterpartClient(target.national_url, target.control_token) as national:
        if accepted:
            print(f"haicap load: integrity — {len(accepted)} accepted dossiers, draining ≤ {opts.drain_s:g} s",
                  flush=True)
        integrity = check_integrity(national, accepted, opts.drain_s, should_stop=lambda: stops.hurry)
        if recorder.expectations and integrity["checked"]:  # an unreadable ledger would time out once per dossier
            budget_end = min(end, time.monotonic() + max(SYNC_CHECK_MIN_S, opts.drain_s))
            sync = check_sync_deadlines(national, recorder.expectations, outages=outages,
                                        should_stop=lambda: stops.hurry or time.monotonic() > budget_end)
    integrity["sync_deadlines"] = sync or {"expectations": len(recorder.expectations), "checked": 0,
                                           "late_count": 0, "late": []}
    budget = max(1.0, min(max(SYNC_CHECK_MIN_S, opts.drain_s), end - time.monotonic()))
    integrity["province"] = _province_records(opts, target, accepted, stops, budget)
    return integrity, sync


def _province_records(opts: LoadOptions, target: Target, accepted: dict[str, Any],
                      stops: StopControl, budget_s: float) -> dict[str, Any]:
    if not target.officer_token:
        return {"checked": False, "accepted": len(accepted), "read": 0, "lost_count": 0, "lost": [],
                "skipped": "no officer token: the province's own records were not read back"}
    from haicap.province_client import ProvinceClient

    with ProvinceClient(target.province_url, officer_token=target.officer_token,
                        allowed_hosts=frozenset(target.allowed_hosts)) as province:
        def read(ma_ho_so: str) -> tuple[int, str | None]:
            answer = province.officer_dossier(ma_ho_so)
            try:
                body = answer.json() if answer.status_code == 200 else None
            except ValueError:
                body = None
            status = body.get("TrangThaiHoSo") if isinstance(body, dict) else None
            return answer.status_code, None if status is None else str(status)

        return check_province_records(read, accepted, budget_s=budget_s,
                                      should_stop=lambda: stops.hurry,
                                      say=lambda line: print(f"haicap load: {line}", flush=True))


def _gate_summary(opts: LoadOptions, scenarios: dict[str, Any], mix: Mix, shape: Any, recorder: Recorder,
                  slo: dict[str, Any], raw: dict[str, Any], sync_checked: bool) -> dict[str, Any]:
    """Gates judged / passed / breached / not judged, over every gate of the journeys the shape asked for."""
    from haicap.loadtests.judgeability import expected_journeys
    from haicap.loadtests.slo import gate_counts, gates

    asked = {k for k, v in expected_journeys(shape, mix.weights, opts.max_rate, scenarios).items() if v > 0}
    measured = [(s, None) for s in recorder.journeys] + [Recorder.split_step_key(k) for k in recorder.steps]
    ids = sorted(asked | {s for s, _ in measured})
    counts = gate_counts(slo, gates(scenarios, ids, [m for m in measured if m[1] is not None]), measured,
                         sync_checked=sync_checked)
    counts["expected_not_judged"] = raw.get("expected_not_judged") or []
    counts["strict"] = opts.strict
    return counts


def _user_stop(stops: StopControl, raw: dict[str, Any]) -> int | None:
    """The signal that stopped the run: the one ``haicap load`` got, else one its generator got directly."""
    if stops.signum is not None:
        return stops.signum
    signum = raw.get("stopped_by_signal")
    return int(signum) if isinstance(signum, int) and not isinstance(signum, bool) else None


def _stop_reason(reason: str | None, user_signum: int | None, unreachable: str | None, stops: StopControl,
                 errors: list[str]) -> str | None:
    """The generator's stop reason, or "interrupted by SIGTERM …" when a signal stopped the run elsewhere."""
    if user_signum is None:
        return reason
    by_user = f"interrupted by {signal_name(user_signum)}"
    if unreachable:
        errors.append(f"stopping early: {unreachable}")
    if (reason or "").startswith(by_user):
        return reason
    return by_user + (" (stopped by the user) after the load, during the integrity check"  # killed, or judging
                      if stops.first_phase == "judge" else " (stopped by the user)")


def _integrity_verdict(integrity: dict[str, Any], errors: list[str]) -> None:
    """``integrity["passed"]``, and the errors of a check that could not be made: an unreadable ledger or
    province says nothing about data loss, nor does a drain a second signal cut short."""
    province = integrity["province"]
    integrity["passed"] = bool(integrity["checked"] and integrity["missing_count"] == 0
                               and province.get("lost_count", 0) == 0
                               and (province["checked"] or "skipped" in province))
    if not integrity["checked"]:
        errors.append(f"integrity could not be checked: {integrity.get('error') or 'the ledger was not readable'}")
        integrity["missing"], integrity["missing_count"] = [], 0
        integrity["synced"] = 0
    if not province["checked"] and "skipped" not in province:
        errors.append(f"integrity could not be checked at the province: {province.get('error')}")
    if integrity.get("cut_short") and integrity["missing_count"]:
        errors.append(f"the integrity drain was cut short: {integrity['missing_count']} dossiers not yet in the "
                      "ledger may only have been late (not judged as lost)")
        integrity["passed"] = province.get("lost_count", 0) == 0


def _judge(opts: LoadOptions, target: Target, scenarios: dict[str, Any], mix: Mix, shape: Any,
           raw: dict[str, Any], unreachable: str | None, stops: StopControl | None = None) -> int:
    stops = stops or StopControl()
    recorder = Recorder(raw.get("start_epoch") or time.time())
    if raw.get("report"):
        recorder.add_report(raw["report"])
    stop_reason = unreachable or raw.get("stop_reason")
    errors = list(raw.get("errors") or [])
    integrity, sync = _integrity(opts, target, recorder, stops, _outages(raw))
    user_signum = _user_stop(stops, raw)
    stop_reason = _stop_reason(stop_reason, user_signum, unreachable, stops, errors)
    time_bound = raw.get("time_bound")
    if time_bound:
        stop_reason = f"{stop_reason}; {time_bound}" if stop_reason else str(time_bound)
    _integrity_verdict(integrity, errors)
    if recorder.refused:
        hosts = ", ".join(f"{h} ({n} requests)" for h, n in sorted(recorder.refused.items()))
        errors.append("the system under test tried to send the load generator to a host that is not allowed: "
                      f"{hosts}; those requests were refused, none was sent (if that host is yours and meant to be "
                      "loaded, name it with --allow-target)")
    load_s = _load_seconds(shape, raw, cut=user_signum is not None or bool(time_bound))
    staircase = opts.staircase
    if staircase is not None:  # --until-breach: only the stages that ran to their end are judged
        shape = ran_stages(opts.shape, load_s).build()
    slo = evaluate_slos(recorder, scenarios, sync)
    gate_summary = _gate_summary(opts, scenarios, mix, shape, recorder, slo, raw, bool(sync and sync.get("checked")))

    totals = recorder.totals()
    journeys_started = sum(s.started for s in recorder.seconds.values())
    journeys_completed = sum(s.completed for s in recorder.seconds.values())  # killed unfinished ones are not
    duration = shape.duration
    planned = sum(1 for _, t in arrival_times(opts.shape.build(), opts.max_rate) if t < load_s)
    per_s = max(load_s, 1e-9)
    clipped = any(shape.rate(t / 10) > opts.max_rate for t in range(int(duration * 10)))
    generator = _generator(raw, recorder, planned, opts.max_in_flight)
    until_breach = staircase is not None and (stop_reason or "").startswith("until-breach:")
    complete = (stop_reason is None or until_breach) and not errors
    judged_any = gate_summary["judged"] > 0 or bool(integrity["checked"] and integrity["accepted"])
    exit_code, inconclusive = decide(complete, slo["passed"] and bool(integrity["passed"]), generator,
                                     opts.require_kept_up, stopped_by=user_signum,
                                     breaches=slo["breaches"] if integrity["passed"] else None,
                                     cut_short=time_bound or None, judged_any=judged_any)
    if opts.strict and exit_code == 0 and gate_summary["not_judged"]:
        exit_code = 3  # incomplete: a gate was selected and not judged
    passed = exit_code == 0

    timeseries = build_timeseries(recorder, shape, opts.max_rate)
    (opts.out / "timeseries.json").write_text(json.dumps(timeseries, indent=1), encoding="utf-8")
    files = {"timeseries": "timeseries.json", "locust_html": "locust.html", "locust_csv": "locust_stats.csv",
             "locust_failures_csv": "locust_failures.csv"}
    capacity = None
    if shape.stages():
        capacity = _stages_and_capacity(opts, target, scenarios, mix, shape, recorder, sync, timeseries, slo,
                                        (stop_reason if until_breach else None, raw))
        files.update(stages="stages.json", capacity="capacity.html")
    files = {key: name for key, name in files.items() if (opts.out / name).is_file()}  # only what this run wrote
    summary: dict[str, Any] = {
        "haicap_version": __version__,
        "contracts_sha256": contracts_digest(),
        "passed": passed,
        "exit_code": exit_code,
        "stopped_early": stop_reason,
        "stopped_by_user": None if user_signum is None else signal_name(user_signum),
        "time_bound": time_bound or None,
        "load_s": round(load_s, 2),
        "errors": errors,
        "requests": totals.ok + totals.failed,
        "failures": totals.failed,
        "journeys": {"started": journeys_started, "completed": journeys_completed,
                     "unfinished": generator["unfinished"],
                     "failed": sum(j.failed for j in recorder.journeys.values())},
        "rate": {"target": round(planned / per_s, 3) if load_s else 0.0,
                 "achieved": round(journeys_started / per_s, 3) if load_s else 0.0,
                 "completed": round(journeys_completed / per_s, 3) if load_s else 0.0,
                 "requests_per_s": round((totals.ok + totals.failed) / per_s, 3) if load_s else 0.0,
                 "max_rate": opts.max_rate, "clipped": clipped},
        "latency_ms": totals.latency.summary(),
        "slo": slo,
        "gates": gate_summary,
        "integrity": integrity,
        "inconclusive": inconclusive,
        "generator": generator,
        "shape": {**opts.shape.as_dict(), "description": shape.describe(), "events": raw.get("events", [])},
        "target": target.describe(),
        "scenarios": _scenario_table(recorder),
        "refused_hosts": dict(sorted(recorder.refused.items())),
        "slowest_journeys": [{"ms": ms, "scenario": scenario, "trace_id": trace, "passed": ok}
                             for ms, scenario, trace, ok in recorder.slowest],
        "failure_samples": {" / ".join(Recorder.split_step_key(k)): v for k, v in recorder.failures_sample.items()},
        "capacity": capacity,
        "files": files,
        "seed": opts.seed,
    }
    validate_summary(summary)
    (opts.out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
    _print_verdict(summary, opts.out)
    return exit_code


def _stages_and_capacity(opts: LoadOptions, target: Target, scenarios: dict[str, Any], mix: Mix, shape: Any,
                         recorder: Recorder, sync: dict[str, Any] | None, timeseries: dict[str, Any],
                         slo: dict[str, Any], breach: tuple[str | None, dict[str, Any]]) -> Any:
    """A step run's stages.json and its capacity answer (with --until-breach: where and why the staircase stopped)."""
    stages = build_stages(recorder, shape, opts.max_rate, mix_slo(scenarios, list(mix.weights)), recorder.stages)
    stages["rate_unit"] = "iterations/s"
    if opts.staircase is not None:
        _stage_sync_breaches(stages, recorder, sync)
    (opts.out / "stages.json").write_text(json.dumps(stages, indent=1), encoding="utf-8")
    capacity = _capacity(opts, target, stages, timeseries, slo)
    if capacity is not None and opts.staircase is not None:
        _until_breach_answer(capacity, opts.staircase, *breach)
    return capacity


def _stage_sync_breaches(stages: dict[str, Any], recorder: Recorder, sync: dict[str, Any] | None) -> None:
    """--until-breach: a stage whose expected statuses reached the national side late breaches the sync SLA on its
    own (the staircase's breach is a stage, not the whole run)."""
    late = {str(item["MaHoSo"]) for item in (sync or {}).get("late") or []}
    if not late:
        return
    for stage in stages["stages"]:
        mine = {str(e[0]) for e in recorder.stages.get(stage["index"], Recorder()).expectations}
        count = len(mine & late)
        if count and stage["gates"].get("judged"):
            stage["gates"]["breaches"].append({"scenario": None, "step": "expect_synced", "metric": "sync_sla",
                                               "limit": "every expected status by its deadline",
                                               "actual": f"{count} dossiers late or never received",
                                               "samples": len(mine)})
            stage["gates"]["passed"] = False


def _load_seconds(shape: Any, raw: dict[str, Any], *, cut: bool) -> float:
    """Seconds of load the run offered: the shape's, less when it was stopped early (by the user, the time bound
    or a breach of --until-breach) at ``stopped_at_s``."""
    stopped_at = raw.get("stopped_at_s")
    if isinstance(stopped_at, int | float) and not isinstance(stopped_at, bool):
        return float(min(shape.duration, max(0.0, float(stopped_at))))
    if cut and raw.get("start_epoch"):  # stopped at the time bound: the load ran at most until the end of the shape
        return float(min(shape.duration, max(0.0, time.time() - float(raw["start_epoch"]))))
    return float(shape.duration)


def _until_breach_answer(sizing: dict[str, Any], staircase: dict[str, Any], breach: str | None,
                         raw: dict[str, Any]) -> None:
    """--until-breach: the capacity answer says why the staircase stopped: between the last stage that held and
    the first that broke, or, when no stage broke, the knee's lower bound and the bound reached first."""
    sizing["until_breach"] = {**staircase, "stopped": breach, "judged_in_run": raw.get("until_breach") or []}
    knee, unit = sizing.get("knee"), sizing["rate_unit"]
    broke = next((st for st in sizing["stages"] if st["verdict"] == "breaches SLO"
                  and (knee is None or st["index"] > knee["index"])), None)
    if knee is not None and broke is not None:
        sizing["knee_bracket"] = {
            "held": {"index": knee["index"], "achieved_rate": knee["achieved_rate"], "verdict": knee["verdict"]},
            "broke": {"index": broke["index"], "achieved_rate": broke["achieved_rate"], "reasons": broke["reasons"]}}
        rest = sizing["answer"].partition("; ")[2]
        sizing["answer"] = (f"capacity: knee between {knee['achieved_rate']:,.1f} and {broke['achieved_rate']:,.1f} "
                            f"{unit} (stage {knee['index']} held, stage {broke['index']} broke: "
                            f"{'; '.join(broke['reasons'][:2])})" + (f"; {rest}" if rest else ""))
    elif breach is None and knee is not None and sizing.get("knee_is_lower_bound"):
        reason = limit_reason(staircase)
        sizing["knee_lower_bound_reason"] = reason
        sizing["notes"].append(reason)
        sizing["answer"] = f"{sizing['answer']} — {reason}"


def _within_start_lag(breaches: list[dict[str, Any]], generator: dict[str, Any]) -> bool:
    """Every breach is a latency gate exceeded by no more than the generator's own start lag (p99): latency is
    timed from the intended start, so such a breach may be the generator's queueing, not the system's."""
    lag = (generator.get("start_lag_ms") or {}).get("p99") or 0.0
    return bool(breaches) and lag > 0 and all(
        b.get("metric") in ("p95_ms", "p99_ms") and isinstance(b.get("actual"), int | float)
        and b["actual"] - float(b["limit"]) <= lag for b in breaches)


def decide(complete: bool, gates_passed: bool, generator: dict[str, Any], require_kept_up: bool = True,
           stopped_by: int | None = None, breaches: list[dict[str, Any]] | None = None, *,
           cut_short: str | None = None, judged_any: bool = True) -> tuple[int, str | None]:
    """The exit code, and why the run is inconclusive if it is.

    A run that could not be completed exits 2; one whose SLO or integrity gate failed exits 1 (a system that
    breaks or loses data under less load than asked for fails all the more), except when the generator fell
    behind and every breach is a latency gate exceeded by no more than its own start lag (``breaches``; latency
    is timed from the intended start): inconclusive, exit 2. One whose gates passed while the generator did not
    keep up cannot pass when ``require_kept_up``: it exits 2, inconclusive.

    A run cut short — interrupted by a signal (``stopped_by``) or stopped at its time bound (``cut_short``, the
    reason) — is judged on what it measured: a gate it judged breached, or a dossier it lost, is still exit 1;
    otherwise it is incomplete, exit 3, or exit 2 when nothing at all could be judged (``judged_any``).
    """
    interrupted = stopped_by is not None or cut_short is not None
    if not complete and not interrupted:
        return 2, None
    if not gates_passed:
        if require_kept_up and not generator["kept_up"] and breaches is not None \
                and _within_start_lag(breaches, generator):
            lag = generator["start_lag_ms"]["p99"]
            return 2, (f"the latency gates breached by no more than the load generator's own start lag (p99 "
                       f"{lag:.0f} ms: " + "; ".join(generator["not_kept_up"]) + "): the breach may be the "
                       "generator's queueing, not the system's")
        return 1, None
    if interrupted:
        return (3 if judged_any else 2), None
    if require_kept_up and not generator["kept_up"]:
        return 2, ("the load generator did not keep up (" + "; ".join(generator["not_kept_up"]) + "): the system "
                   "got less load than asked for, so the gates passed on under-load")
    return 0, None


def _generator(raw: dict[str, Any], recorder: Recorder, planned: int, max_in_flight: int) -> dict[str, Any]:
    """Did the generator offer the load asked for? The figures, and each reason it did not, in plain words."""
    generators = sorted(raw.get("generators") or [], key=lambda g: int(g.get("index", 0)))
    cpu_max = max([g.get("cpu_max", 0.0) for g in generators] + [s.cpu for s in recorder.seconds.values()] + [0.0])
    backlog_max = max([s.backlog for s in recorder.seconds.values()] + [0])
    dropped = sum(int(g.get("dropped", 0)) for g in generators)
    held = sum(int(g.get("held_back", 0)) for g in generators)
    share = round(held / planned, 4) if planned else 0.0
    lag = recorder.lag.summary()
    reasons = []
    if held:
        reasons.append(f"{held} of {planned} arrivals ({share:.1%}) held back by --max-in-flight {max_in_flight}")
    if dropped:
        reasons.append(f"{dropped} arrivals never started (still held back when the shape ended)")
    if backlog_max and not held:
        reasons.append(f"backlog of {backlog_max} arrivals due but not started")
    if cpu_max > CPU_LIMIT:
        reasons.append(f"generator CPU {cpu_max:.0f}% > {CPU_LIMIT:.0f}%")
    if (lag["p99"] or 0) > LATE_START_MS:
        reasons.append(f"arrivals started late: p99 {lag['p99']:.0f} ms after their intended time")
    unfinished = sum(int(g.get("unfinished", 0)) for g in generators)
    return {"cpu_max": round(cpu_max, 1), "backlog_max": backlog_max, "kept_up": not reasons, "not_kept_up": reasons,
            "unfinished": unfinished,
            "held_back": {"count": held, "share": share, "max_in_flight": max_in_flight},
            "dropped": dropped, "start_lag_ms": lag, "workers": int(raw.get("workers") or 0),
            "per_worker": [{k: g.get(k, 0) for k in ("index", "started", "requests", "held_back", "cpu_max")}
                           for g in generators]}


def _scenario_table(recorder: Recorder) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for scenario_id, stats in sorted(recorder.journeys.items()):
        table[scenario_id] = {"journeys": stats.ok + stats.failed, "failed": stats.failed,
                              "journey_ms": stats.latency.summary(), "steps": {}}
    for key, stats in sorted(recorder.steps.items()):
        scenario_id, label = Recorder.split_step_key(key)
        entry = table.setdefault(scenario_id, {"journeys": 0, "failed": 0, "journey_ms": None, "steps": {}})
        entry["steps"][label] = {"count": stats.ok + stats.failed, "failed": stats.failed,
                                 "latency_ms": stats.latency.summary()}
    return table


def _capacity(opts: LoadOptions, target: Target, stages: dict[str, Any], timeseries: dict[str, Any],
              slo: dict[str, Any]) -> Any:
    try:
        from haicap.reports.capacity import capacity_answer, size_capacity
        from haicap.reports.capacity_html import render_capacity_html
    except ImportError as exc:
        print(f"haicap load: note: capacity report skipped (haicap.reports.capacity not available: {exc})")
        return None
    try:
        sizing = size_capacity(stages, {"province": target.province_code, **opts.projection})
        if opts.staircase is None:  # --until-breach judges the sync SLA per stage
            _veto_by_sync_sla(sizing, slo)
        sizing["answer"] = capacity_answer(sizing)
        (opts.out / "capacity.html").write_text(render_capacity_html(stages, timeseries, sizing), encoding="utf-8")
    except HaicapError as exc:
        print(f"haicap load: note: capacity report not written: {exc}")
        return None
    return sizing


def _print_verdict(summary: dict[str, Any], out: Path) -> None:
    lat, rate, gen, integ = summary["latency_ms"], summary["rate"], summary["generator"], summary["integrity"]

    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.0f}"

    print(f"\nrequests {summary['requests']}  failures {summary['failures']}  journeys/s target {rate['target']:g} "
          f"achieved {rate['achieved']:g}  latency p50/p95/p99 {ms(lat['p50'])}/{ms(lat['p95'])}/{ms(lat['p99'])} ms")
    held = gen["held_back"]
    print(f"generator: arrivals held back by --max-in-flight {held['max_in_flight']}: {held['count']} "
          f"({held['share']:.1%}); CPU max {gen['cpu_max']}%; start lag p99 {ms(gen['start_lag_ms']['p99'])} ms")
    if gen["unfinished"]:
        print(f"{gen['unfinished']} journeys were still running when the grace window after the load ended: "
              "counted as failed journeys")
    if not gen["kept_up"]:
        print("WARNING: the load generator did not keep up — " + "; ".join(gen["not_kept_up"])
              + ": the system got less load than asked for")
    for breach in summary["slo"]["breaches"]:
        where = " / ".join(x for x in (breach["scenario"], breach["step"]) if x)
        print(f"SLO BREACH {where}: {breach['metric']} {breach['actual']} > {breach['limit']}")
    g = summary["gates"]
    print(f"SLO gates: {g['total']} — judged {g['judged']} (passed {g['passed']}, breached {g['breached']}), not "
          f"judged {g['not_judged']}" + (" (too few samples or none: --strict makes that exit 3)"
                                         if g["not_judged"] else ""))
    insufficient = summary["slo"]["insufficient"]
    if insufficient:
        listed = ", ".join(f"{' / '.join(x for x in (i['scenario'], i['step']) if x)} {i['metric']} "
                           f"({i['samples']} < {i['needed']})" for i in insufficient[:6])
        more = f" and {len(insufficient) - 6} more" if len(insufficient) > 6 else ""
        print(f"SLO insufficient samples (not judged): {listed}{more}")
    if integ["checked"]:
        print(f"integrity: {integ['synced']}/{integ['accepted']} accepted dossiers in the national ledger with "
              "their latest status" + ("; the drain was cut short by a second stop signal: a dossier listed "
                                       "missing may only have been late" if integ.get("cut_short") else ""))
    else:
        print(f"integrity: NOT CHECKED for {integ['accepted']} accepted dossiers (the national ledger was not "
              "readable)")
    for item in integ["missing"][:20]:
        print(f"  MISSING {item['MaHoSo']}: {item['problem']} (expected {item['expected_status']}, "
              f"ledger {item['ledger_status']})")
    if integ["missing_count"] > 20:
        print(f"  … and {integ['missing_count'] - 20} more (summary.json)")
    _print_province_records(integ["province"])
    if summary.get("capacity"):
        _print_capacity(summary["capacity"])
    if summary["stopped_early"]:
        print(f"STOPPED EARLY: {summary['stopped_early']}")
    for error in summary["errors"]:
        print(f"ERROR: {error}")
    if summary["inconclusive"]:
        print(f"INCONCLUSIVE: {summary['inconclusive']} (--no-require-kept-up to accept such a run)")
    verdict = ("PASSED" if summary["passed"] else "INCONCLUSIVE" if summary["inconclusive"]
               else "INCOMPLETE" if summary["exit_code"] == 3 else "FAILED")
    if summary["stopped_by_user"] or summary["time_bound"]:
        if summary["exit_code"] == 2:
            verdict = "NOTHING JUDGED"
        cause = (f"INTERRUPTED BY {summary['stopped_by_user']}" if summary["stopped_by_user"]
                 else "STOPPED AT THE TIME BOUND")
        verdict = f"{cause} — {verdict}"
    print(f"{verdict} (exit {summary['exit_code']}) — {out / 'summary.json'}", flush=True)
