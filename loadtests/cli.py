"""``haicap load``: the cutover-surge load test command (arguments only; the work is in :mod:`.run`).

Nothing here imports Locust: ``haicap --help`` stays fast and gevent's monkey-patching happens only in the
load generator's own processes (``--worker`` turns this process into one).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from haicap.errors import HaicapError
from haicap.loadtests import DEFAULT_MAX_IN_FLIGHT

__all__ = ["bounded_float", "port_number", "register"]

#: the longest load a shape may describe (the shape schema's own maximum duration)
MAX_DURATION_S = 86400.0
MAX_RATE = 100_000.0
MAX_DRAIN_S = 3600.0


def bounded_float(low: float, high: float, *, low_inclusive: bool = True) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[low, high]`` (``(low, high]`` unless ``low_inclusive``).

    ``float()`` alone accepts ``nan`` and ``inf``: a NaN drain busy-spins, an infinite one never ends, a NaN
    rate cap disables the cap.
    """
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        low_ok = value >= low if low_inclusive else value > low
        if not math.isfinite(value) or not low_ok or value > high:
            bound = "≥" if low_inclusive else ">"
            raise argparse.ArgumentTypeError(f"{text!r}: give a finite number {bound} {low:g} and ≤ {high:g}")
        return value

    return parse


def port_number(text: str) -> int:
    """An argparse type: a TCP port, 1..65535 (0, the default, means "any free port" where that makes sense)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is 1..65535")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "load",
        help="cutover-surge load test: open-model shapes, SLO gates, integrity after the surge",
        description="Run the YAML journeys as an open-model load (arrivals at the shape's rate, latency from the "
        "intended start), gate on the scenarios' SLOs, and check that every accepted dossier reached the "
        "national ledger. Writes OUT/summary.json, timeseries.json, stages.json (step), Locust's HTML/CSV.",
        epilog="exit codes (the scheme of haicap certify): 0 passed; 1 an SLO breached or a dossier lost; 2 bad input "
        "or credentials, a run that could not be completed, or an inconclusive one (the generator did not keep up); "
        "3 incomplete: a run cut short — SIGINT (Ctrl-C) or SIGTERM (the load stops, the run drains, integrity is "
        "checked and summary.json says 'interrupted by SIGTERM'; a second signal stops at once), or the time bound "
        "(duration + grace + drain + 1 min after the load started) — that found no breach, or with --strict a gate "
        "not judged; a run cut short that could judge nothing exits 2, one that found a breach 1.",
    )
    parser.add_argument("--shape", help="cutover, step, spike or soak (or --shape-file, not both)")
    parser.add_argument("--shape-file", type=Path,
                        help="YAML with shape, duration, params (README: load tests); instead of --shape")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a shape parameter, e.g. --set surge_factor=3 --set peak_rate=10")
    parser.add_argument("--duration", type=bounded_float(0, MAX_DURATION_S, low_inclusive=False),
                        help="seconds of load (default: the shape file's; without one, the shortest duration, 60 s to "
                        "20 min, that gives every SLO gate its samples, printed before the run)")
    parser.add_argument("--max-rate", type=bounded_float(0, MAX_RATE, low_inclusive=False), default=200.0,
                        metavar="R",
                        help="cap on journeys started per second; the shape is clipped to it (default 200); with "
                        "--until-breach the staircase's highest stage")
    parser.add_argument("--until-breach", action="store_true",
                        help="step shape: extend the staircase by itself, stage after stage at step_rate, until a "
                        "stage breaches an SLO gate or the sync SLA, within --max-rate and --max-duration; the "
                        "capacity answer has the knee, or its lower bound and why (max rate or duration reached)")
    parser.add_argument("--max-duration", type=bounded_float(0, MAX_DURATION_S, low_inclusive=False), default=None,
                        metavar="S", help="with --until-breach: the most seconds the staircase may last (default "
                        "1200); stages last duration / stages, as planned")
    parser.add_argument("--grace", type=bounded_float(0, 600), default=20.0, metavar="S",
                        help="seconds the journeys still running when the load ends get to finish (default 20); "
                        "those still running then count as failed. No run lasts longer than duration + grace + "
                        "drain + 1 min after its load started; it always writes summary.json")
    target = parser.add_argument_group("target (default: the embedded sandbox)")
    target.add_argument("--target", metavar="URL", help="base URL of a running province system")
    target.add_argument("--credentials", type=Path, metavar="FILE",
                        help="with --target: credentials.json of its national counterpart (haicap sandbox writes it)")
    target.add_argument("--profile", type=Path, metavar="FILE", help="province profile YAML (as for certify)")
    target.add_argument("--allow-target", metavar="HOST", help="allow this exact non-loopback host")
    target.add_argument("--fault", action="append", default=[], metavar="ID",
                        help="switch a named fault on in the embedded reference province (repeatable)")
    parser.add_argument("--scenario", action="append", default=[], metavar="ID",
                        help="only these journeys in the mix (repeatable; default: every scenario with weight > 0)")
    parser.add_argument("--scenario-path", action="append", default=[], type=Path, metavar="PATH",
                        help="scenario files or folders instead of the shipped library")
    parser.add_argument("--out", type=Path, default=Path("haicap-load"), help="output folder (default haicap-load)")
    parser.add_argument("--drain", type=bounded_float(0, MAX_DRAIN_S), default=30.0, metavar="S",
                        help="seconds to wait for accepted dossiers to reach the national ledger (default 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-in-flight", type=int, default=DEFAULT_MAX_IN_FLIGHT, metavar="N",
                        help="safety bound on journeys running at once, all workers (default "
                        f"{DEFAULT_MAX_IN_FLIGHT}); arrivals beyond it wait and are reported as held back")
    parser.add_argument("--require-kept-up", action=argparse.BooleanOptionalAction, default=True,
                        help="a run where the generator did not keep up (arrivals held back or late, CPU > 80%%) "
                        "cannot pass: it exits 2, inconclusive (default on)")
    parser.add_argument("--strict", action="store_true",
                        help="a SLO gate not judged (too few samples) makes an otherwise passing run exit 3, "
                        "incomplete")
    parser.add_argument("--metrics-port", type=port_number, default=0, metavar="PORT",
                        help="serve OpenMetrics (Prometheus) at http://BIND:PORT/metrics while the run lasts: latency "
                        "histograms per scenario and step, counters, rates (default: off)")
    parser.add_argument("--metrics-bind", default="127.0.0.1", metavar="HOST",
                        help="interface of the metrics endpoint (default 127.0.0.1)")
    parser.add_argument("--pool-size", type=int, default=1000, metavar="N", help="pre-generated citizens per worker")
    parser.add_argument("--projection", action="append", default=[], metavar="KEY=VALUE",
                        help="capacity projection of a step run (other shapes refuse it), e.g. "
                        "--projection surge_factor=3; keys checked before the run")
    dist = parser.add_argument_group("distributed")
    dist.add_argument("--processes", type=int, default=0, metavar="N",
                      help="run N local worker processes under a master (default 0: one process)")
    dist.add_argument("--oversubscribe", action="store_true",
                      help="allow --processes or --national-workers above this machine's usable CPU cores (refused by "
                      "default)")
    dist.add_argument("--national-workers", type=int, default=1, metavar="N",
                      help="serve the national counterpart haicap starts (embedded sandbox, or a profile's "
                      "counterpart) with N processes on its one port, sharing its state (default 1)")
    dist.add_argument("--master", action="store_true", help="be the master and wait for --expect-workers workers")
    dist.add_argument("--expect-workers", type=int, default=1, metavar="N")
    dist.add_argument("--master-bind", default="127.0.0.1", metavar="HOST",
                      help="interface the master listens on (default 127.0.0.1)")
    dist.add_argument("--master-port", type=port_number, default=0, metavar="PORT",
                      help="master port (default: a free port; give one with --master)")
    dist.add_argument("--worker", action="store_true", help="be a worker of a master at --master-host:--master-port")
    dist.add_argument("--master-host", default="127.0.0.1", metavar="HOST")
    parser.set_defaults(handler=run)
    register_compare(subparsers)


def register_compare(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "load-compare", help="compare two load runs (also spelled: haicap load compare BASE NEW)",
        description="Compare two haicap load runs of the same shape, province, haicap version and contracts: "
        "exit 1 on a regression beyond the tolerance and noise floors, 2 when the runs are not comparable.",
    )
    parser.add_argument("base", type=Path, metavar="BASE", help="the reference run folder (or its summary.json)")
    parser.add_argument("new", type=Path, metavar="NEW", help="the run to judge against it")
    parser.add_argument("--tolerance", default="10%", help="relative change allowed before a metric regresses "
                        "(default 10%%; noise floors apply too: 5 ms, 0.5 points of error rate, 0.2/s)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for compare.json and compare.html (default: NEW's folder)")
    parser.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    import json

    from haicap.reports.load_compare import compare_runs, load_run, parse_tolerance, render_compare_html

    tolerance = parse_tolerance(args.tolerance)
    base, base_series, _ = load_run(args.base)
    new, new_series, new_folder = load_run(args.new)
    result = compare_runs(base, new, tolerance)
    for label, summary in (("BASE", base), ("NEW", new)):
        if not (summary.get("generator") or {}).get("kept_up", True):
            print(f"note: {label}'s load generator did not keep up: its figures are of less load than asked for")
    out = args.out or new_folder
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
        (out / "compare.html").write_text(render_compare_html(result, base_series, new_series,
                                                              (str(args.base), str(args.new))), encoding="utf-8")
    except OSError as exc:
        raise HaicapError(f"cannot write the comparison to {out}: {exc.strerror or exc}") from None
    for metric in result["metrics"]:
        if metric["verdict"] in {"regression", "improvement"}:
            unit = f" {metric['unit']}" if metric["unit"] else ""
            print(f"{metric['verdict'].upper():12} {metric['name']}: {metric['base']}{unit} → {metric['new']}{unit} "
                  f"({metric['better']} is better)")
    compared = sum(1 for m in result["metrics"] if m["verdict"] != "not compared")
    verdict = (f"REGRESSION in {len(result['regressions'])} of {compared} metrics" if result["regressed"]
               else f"no regression in {compared} metrics (tolerance {tolerance:.0%})")
    print(f"{verdict} — {out / 'compare.html'}")
    return 1 if result["regressed"] else 0


def check_national_workers(workers: int, oversubscribe: bool) -> None:
    """Refuse ``--national-workers`` below 1, or above this machine's usable cores without ``--oversubscribe``."""
    if workers < 1:
        raise HaicapError(f"--national-workers {workers}: the national counterpart needs at least 1 worker process")
    cores = usable_cores()
    if workers > cores and not oversubscribe:
        raise HaicapError(f"--national-workers {workers}: this machine has {cores} usable CPU core"
                          f"{'s' if cores != 1 else ''}; more counterpart processes than cores only compete with each "
                          f"other and with the load generator. Use at most --national-workers {cores}, or "
                          "--oversubscribe")


def usable_cores() -> int:
    """CPU cores this process may run on (the affinity mask, e.g. a container's cpuset), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _pairs(values: list[str], flag: str) -> dict[str, object]:
    from haicap.loadtests.shapes import parse_set_options

    try:
        return parse_set_options(values)
    except HaicapError as exc:
        raise HaicapError(str(exc).replace("--set", flag)) from None


def run(args: argparse.Namespace) -> int:
    if args.worker:
        if not args.master_port:
            raise HaicapError("--worker needs --master-port 1..65535 (and --master-host unless the master is on "
                              "127.0.0.1)")
        from haicap.loadtests import locust_app  # gevent-patches this process: it is a worker from now on

        return locust_app.run_worker(args.master_host, args.master_port)
    from haicap.loadtests.run import LoadOptions, run_load
    from haicap.loadtests.shapes import build_shape, load_shape_file

    overrides = _pairs(args.set, "--set")
    if args.shape_file and args.shape:
        raise HaicapError(f"give --shape or --shape-file, not both: {args.shape_file} names its own shape "
                          "(--set and --duration still override the file)")
    if args.shape_file:
        spec = load_shape_file(args.shape_file, duration=args.duration, overrides=overrides)
    elif args.shape:
        spec = build_shape(args.shape, args.duration, overrides)
    else:
        from haicap.loadtests.shapes import SHAPES

        raise HaicapError(f"give --shape ({', '.join(sorted(SHAPES))}) or --shape-file")
    if args.processes < 0 or args.expect_workers < 1:
        raise HaicapError("--processes must be ≥ 0 and --expect-workers ≥ 1")
    cores = usable_cores()
    if args.processes > cores and not args.oversubscribe:
        raise HaicapError(f"--processes {args.processes}: this machine has {cores} usable CPU core"
                          f"{'s' if cores != 1 else ''}; more generator processes than cores compete with each other "
                          "and with the system under test, so the load offered falls behind the load asked for. Use "
                          f"at most --processes {cores}, run workers on other machines (--master / --worker), or "
                          "--oversubscribe")
    check_national_workers(args.national_workers, args.oversubscribe)
    if args.national_workers != 1 and args.target:
        raise HaicapError("--national-workers applies to the counterpart haicap starts (the embedded sandbox or a "
                          "profile's counterpart), not to --target, whose national side its credentials name")
    if args.master and not args.master_port:
        raise HaicapError("--master needs --master-port 1..65535 so that workers can find it")
    for name in ("max_in_flight", "pool_size"):
        if getattr(args, name) < 1:
            raise HaicapError(f"--{name.replace('_', '-')} must be ≥ 1")
    options = LoadOptions(
        shape=spec, out=args.out, max_rate=args.max_rate, target_url=args.target, credentials=args.credentials,
        profile=args.profile, allow_target=args.allow_target, faults=args.fault, processes=args.processes,
        master=args.master, expect_workers=args.expect_workers, master_bind=args.master_bind,
        master_port=args.master_port, seed=args.seed, drain_s=args.drain, scenarios=args.scenario,
        scenario_paths=args.scenario_path, max_in_flight=args.max_in_flight, pool_size=args.pool_size,
        projection=_pairs(args.projection, "--projection"), require_kept_up=args.require_kept_up,
        auto_duration=args.duration is None and not args.shape_file, strict=args.strict,
        metrics_port=args.metrics_port, metrics_bind=args.metrics_bind, until_breach=args.until_breach,
        max_duration=args.max_duration, grace_s=args.grace, national_workers=args.national_workers,
    )
    return run_load(options)
