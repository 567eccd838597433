"""``haicap load`` end to end against the embedded sandbox: the correct province passes, the two load faults
fail a gate, two workers merge, and bad input is refused before anything starts.

Rates are small (2 shared cores): assertions are about gates and integrity, not timings.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from haicap.cli import main

pytestmark = pytest.mark.slow


def _load(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "out"
    code = main(["load", "--out", str(out), *args])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["exit_code"] == code
    return code, summary


def test_short_cutover_against_the_correct_province_passes(tmp_path: Path, capsys: Any) -> None:
    code, summary = _load(tmp_path, "--shape", "cutover", "--duration", "12", "--set", "peak_rate=2",
                          "--drain", "15")
    printed = capsys.readouterr().out
    assert "compressed 3,000×" in printed and "target" in printed  # compression and progress lines
    assert summary["slo"]["passed"] and summary["slo"]["breaches"] == [], summary["failure_samples"]
    for gate in summary["slo"]["insufficient"]:  # rare steps of a short run: not judged on their maximum
        assert gate["samples"] < gate["needed"] and gate["needed"] in (20, 100)
    integrity = summary["integrity"]
    assert integrity["accepted"] > 10 and integrity["synced"] == integrity["accepted"] and not integrity["missing"]
    province = integrity["province"]  # the province's own record counts too
    assert province["checked"] and province["read"] == integrity["accepted"] and province["lost_count"] == 0
    assert "accepted dossiers readable by MaHoSo with their latest status" in printed
    assert code == 0 and summary["passed"]
    gates = summary["gates"]  # a short run judges few percentile gates: it says so before and after
    assert gates["total"] == gates["judged"] + gates["not_judged"] and gates["breached"] == 0 and gates["judged"] > 0
    assert gates["not_judged"] > 0 and gates["expected_not_judged"]
    assert "percentile gates cannot get their samples" in printed and "would judge them all" in printed
    assert f"SLO gates: {gates['total']} — judged {gates['judged']}" in printed
    assert summary["requests"] > 50 and summary["failures"] == 0
    assert summary["journeys"]["started"] == pytest.approx(summary["rate"]["target"] * 12, abs=1)
    assert any(e["action"] == "sync-outage" for e in summary["shape"]["events"])
    scenarios = summary["scenarios"]
    assert "first-login" in scenarios and "batch-resync" in scenarios  # storm and burst were in the mix
    out = tmp_path / "out"
    series = json.loads((out / "timeseries.json").read_text(encoding="utf-8"))
    assert series["interval_s"] == 1 and len(series["samples"]) >= 12
    # generator CPU is a share of one process over a full interval: never the thousands of percent a
    # sample taken microseconds after psutil's priming call reads as
    cores = os.cpu_count() or 1
    assert all(0 <= s["generator_cpu"] <= 100 * cores for s in series["samples"])
    assert summary["generator"]["cpu_max"] <= 100 * cores and summary["generator"]["kept_up"]
    assert sum(s["achieved_rate"] for s in series["samples"]) == summary["journeys"]["started"]
    stats = (out / "locust_stats.csv").read_text(encoding="utf-8")
    assert "submit dossier" in stats and "officer receive" in stats  # requests named by the journey's steps
    assert (out / "locust.html").stat().st_size > 1000


def test_strict_makes_a_run_with_gates_not_judged_incomplete(tmp_path: Path) -> None:
    code, summary = _load(tmp_path, "--shape", "soak", "--duration", "4", "--set", "rate=2", "--set", "ramp_s=0",
                          "--scenario", "birth-registration", "--drain", "10", "--strict")
    assert summary["slo"]["passed"] and summary["integrity"]["passed"]
    assert summary["gates"]["not_judged"] > 0 and summary["gates"]["strict"]
    assert code == 3 and not summary["passed"]


def test_late_sync_fails_the_gate(tmp_path: Path) -> None:
    code, summary = _load(tmp_path, "--shape", "soak", "--duration", "6", "--set", "rate=2", "--set", "ramp_s=0",
                          "--fault", "late-sync", "--drain", "3")
    assert code == 1 and not summary["passed"]
    late = summary["integrity"]["sync_deadlines"]["late_count"]
    assert late > 0 or summary["integrity"]["missing_count"] > 0
    assert any(b["metric"] == "sync_sla" for b in summary["slo"]["breaches"])


def test_lost_dossiers_fail_the_run(tmp_path: Path) -> None:
    code, summary = _load(tmp_path, "--shape", "spike", "--duration", "8", "--set", "base_rate=2",
                          "--set", "spike_rate=15", "--set", "spike_s=3", "--scenario", "birth-registration",
                          "--fault", "loses-dossiers-under-concurrency", "--drain", "3")
    assert code == 1 and not summary["passed"]
    lost = summary["integrity"]["missing_count"]
    breached = {b["metric"] for b in summary["slo"]["breaches"]}
    assert lost > 0 or "error_rate" in breached
    province = summary["integrity"]["province"]  # what the province lost locally is named as such
    assert province["checked"] and province["read"] == summary["integrity"]["accepted"] > 0
    assert all(item["problem"].startswith("lost at the province") for item in province["lost"])


def test_two_workers_merge_into_one_step_run(tmp_path: Path) -> None:
    code, summary = _load(tmp_path, "--shape", "step", "--duration", "8", "--set", "stages=2",
                          "--set", "start_rate=2", "--set", "step_rate=2", "--processes", "2", "--drain", "10")
    assert summary["generator"]["workers"] == 2
    assert summary["integrity"]["accepted"] > 0 and summary["integrity"]["missing"] == []
    assert summary["journeys"]["started"] == 24  # 2/s × 4 s + 4/s × 4 s, split over two workers
    stages = json.loads((tmp_path / "out" / "stages.json").read_text(encoding="utf-8"))
    assert [s["target_rate"] for s in stages["stages"]] == [2, 4]
    assert stages["slo"]["p95_ms"] == 800
    if summary["capacity"] is not None:
        assert (tmp_path / "out" / "capacity.html").exists()
    assert code == (0 if summary["slo"]["passed"] else 1)


def test_explicit_master_and_two_workers_on_loopback(tmp_path: Path) -> None:
    """`haicap load --master` and two `haicap load --worker` processes, as on separate machines (CI, ≤ 30 s)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    haicap = str(Path(sys.executable).with_name("haicap"))
    out = tmp_path / "out"
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("master", "worker-a", "worker-b")}
    started = time.monotonic()
    master = subprocess.Popen([haicap, "load", "--master", "--expect-workers", "2", "--master-port", port,
                               "--shape", "soak", "--duration", "5", "--set", "rate=4", "--set", "ramp_s=0",
                               "--scenario", "birth-registration", "--drain", "10", "--out", str(out)],
                              stdout=logs["master"], stderr=subprocess.STDOUT)
    workers = [subprocess.Popen([haicap, "load", "--worker", "--master-host", "127.0.0.1", "--master-port", port],
                                stdout=logs[name], stderr=subprocess.STDOUT) for name in ("worker-a", "worker-b")]
    try:
        code = master.wait(timeout=30)
        worker_codes = [w.wait(timeout=max(1.0, 30 - (time.monotonic() - started))) for w in workers]
    finally:
        for proc in (master, *workers):
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        for log in logs.values():
            log.close()
    elapsed = time.monotonic() - started
    printed = (tmp_path / "master.log").read_text(encoding="utf-8", errors="replace")
    assert "waiting for 2 worker(s)" in printed
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert code == summary["exit_code"] == 0 and summary["passed"], printed[-2000:]
    assert worker_codes == [0, 0] and elapsed <= 30
    generator = summary["generator"]
    assert generator["workers"] == 2 and generator["kept_up"] and generator["held_back"]["count"] == 0
    per_worker = generator["per_worker"]
    assert [w["index"] for w in per_worker] == [0, 1]
    assert all(w["started"] == 10 and w["requests"] > 0 for w in per_worker)  # arrivals split n % 2
    assert sum(w["requests"] for w in per_worker) == summary["requests"]  # merged on the master
    assert summary["journeys"]["started"] == 20
    integrity = summary["integrity"]
    assert integrity["passed"] and integrity["accepted"] >= 15 and integrity["synced"] == integrity["accepted"]


SLOW_WORKER = """
import sys
import gevent
from locust.env import Environment
from haicap.loadtests import locust_app

connect = Environment.create_worker_runner

def connect_then_stall(self, *args, **kwargs):
    runner = connect(self, *args, **kwargs)
    gevent.sleep(1.5)  # connected, handlers not yet registered: whatever the master sends now is dropped
    return runner

Environment.create_worker_runner = connect_then_stall
sys.exit(locust_app.run_worker("127.0.0.1", int(sys.argv[1])))
"""


def test_master_waits_for_a_worker_that_registers_its_handlers_late(tmp_path: Path) -> None:
    """A setup sent on Locust's client_ready can beat the worker's handlers (the CI failure of a 2-worker run)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    haicap = str(Path(sys.executable).with_name("haicap"))
    out = tmp_path / "out"
    with (tmp_path / "master.log").open("wb") as log, (tmp_path / "worker.log").open("wb") as wlog:
        master = subprocess.Popen([haicap, "load", "--master", "--expect-workers", "1", "--master-port", port,
                                   "--shape", "soak", "--duration", "2", "--set", "rate=2", "--set", "ramp_s=0",
                                   "--scenario", "birth-registration", "--drain", "10", "--out", str(out)],
                                  stdout=log, stderr=subprocess.STDOUT)
        worker = subprocess.Popen([sys.executable, "-c", SLOW_WORKER, port], stdout=wlog, stderr=subprocess.STDOUT)
        try:
            code = master.wait(timeout=40)
            worker.wait(timeout=10)
        finally:
            for proc in (master, worker):
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=5)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert code == 0 and summary["journeys"]["started"] == 4, (tmp_path / "master.log").read_text()[-2000:]
    assert "Unknown message type" not in (tmp_path / "worker.log").read_text(errors="replace")


PATIENT = """id: patient-citizen
title: a light journey whose SLO nobody could breach
rule: "tests/test_load_runs.py"
weight: 1
slo: {p95_ms: 120000, p99_ms: 120000, error_rate: 0.5}
steps:
  - sso_login: {}
  - submit_dossier: {procedure: "1.001193"}
""" + '  - expect_status: {status: "1"}\n' * 10


def test_a_run_the_generator_did_not_keep_up_with_is_inconclusive(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "patient-citizen.yaml").write_text(PATIENT, encoding="utf-8")
    # 100 arrivals/s of a 13-request journey, one journey at a time: nearly every arrival is held back
    code, summary = _load(tmp_path, "--shape", "soak", "--duration", "1", "--set", "rate=100", "--set", "ramp_s=0",
                          "--scenario-path", str(tmp_path / "patient-citizen.yaml"), "--max-in-flight", "1",
                          "--drain", "10")
    printed = capsys.readouterr().out
    generator = summary["generator"]
    assert summary["slo"]["passed"] and summary["integrity"]["passed"]  # the gates alone would pass...
    held = generator["held_back"]
    assert held["count"] >= 90 and held["share"] >= 0.9 and held["max_in_flight"] == 1
    assert not generator["kept_up"] and "held back by --max-in-flight 1" in generator["not_kept_up"][0]
    assert code == 2 and not summary["passed"]  # ...but a run on under-load cannot pass
    assert summary["inconclusive"].startswith("the load generator did not keep up")
    assert "INCONCLUSIVE: the load generator did not keep up" in printed
    assert f"held back by --max-in-flight 1: {held['count']} ({held['share']:.1%})" in printed


def test_unreachable_target_stops_early_and_still_writes_a_summary(tmp_path: Path, capsys: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps({"national_url": f"http://127.0.0.1:{port}", "control_token": "x",
                                 "officer_token": "y"}), "utf-8")
    code, summary = _load(tmp_path, "--shape", "soak", "--duration", "5", "--target", f"http://127.0.0.1:{port}",
                          "--credentials", str(creds), "--drain", "0")
    assert code == 2 and summary["stopped_early"].startswith("target unreachable")
    assert summary["requests"] == 0
    assert "stopping early: target unreachable" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "message"), [
    (["--shape", "ramp"], "valid shapes: cutover, soak, spike, step"),
    (["--shape", "soak", "--scenario", "nope"], "valid scenarios: "),
    (["--shape", "soak", "--target", "http://example.org"], "refusing to load example.org: it is not a loopback"),
    (["--shape", "soak", "--target", "http://example.org", "--allow-target", "example.com"], "does not name it"),
    (["--shape", "soak", "--set", "rate"], "--set 'rate': expected KEY=VALUE"),
    (["--shape", "soak", "--set", "rat=3"], "params: Additional properties"),
    (["--shape", "soak", "--fault", "nope"], "valid faults: "),
    ([], "give --shape"),
    (["--shape", "soak", "--processes", "4096"], "usable CPU core"),
    (["--shape", "soak", "--national-workers", "0"], "--national-workers 0: the national counterpart needs at least"),
    (["--shape", "soak", "--national-workers", "4096"], "--national-workers 4096: this machine has"),
    (["--shape", "soak", "--national-workers", "2", "--oversubscribe", "--scenario", "document-exchange"],
     "journey(s) document-exchange (document_axis) need a part of the national counterpart"),
    (["--shape", "soak", "--national-workers", "2", "--oversubscribe", "--target", "http://127.0.0.1:9"],
     "--national-workers applies to the counterpart haicap starts"),
])
def test_bad_input_is_refused_with_the_reason(tmp_path: Path, capsys: Any, args: list[str], message: str) -> None:
    code = main(["load", "--out", str(tmp_path / "out"), *args])
    assert code != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "summary.json").exists()


def _redirecting_province(seen: list[str]) -> Any:
    """A province whose sign-in hands the generator to a TEST-NET host; it also serves an empty ledger."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, RedirectResponse, Response
    from starlette.routing import Route

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def login(request: Request) -> Response:
        seen.append(request.url.path)
        return RedirectResponse("http://192.0.2.10:9/authorize?client_id=x&state=s", status_code=302)

    async def ledger(request: Request) -> Response:
        return JSONResponse({"items": []})

    async def other(request: Request) -> Response:
        seen.append(request.url.path)
        return JSONResponse({"title": "not found"}, status_code=404)

    return Starlette(routes=[Route("/health", health), Route("/auth/login", login),
                             Route("/_ledger/sync/dossiers", ledger),
                             Route("/{path:path}", other, methods=["GET", "POST", "PUT", "DELETE"])])


def test_the_generator_never_follows_the_system_under_test_to_a_host_nobody_allowed(
    tmp_path: Path, capsys: Any,
) -> None:
    from haicap.sandbox.server import ThreadServer, bind_socket

    seen: list[str] = []
    with ThreadServer(_redirecting_province(seen), bind_socket("127.0.0.1", 0)) as fake:
        creds = tmp_path / "credentials.json"
        creds.write_text(json.dumps({"national_url": fake.url, "control_token": "x"}), "utf-8")
        code, summary = _load(tmp_path, "--shape", "soak", "--duration", "2", "--set", "rate=2", "--set", "ramp_s=0",
                              "--scenario", "first-login", "--target", fake.url, "--credentials", str(creds),
                              "--drain", "0")
    printed = capsys.readouterr().out
    refused = summary["refused_hosts"]
    assert set(refused) == {"192.0.2.10"} and refused["192.0.2.10"] == seen.count("/auth/login") >= 2
    assert code == 2 and not summary["passed"]
    assert any("tried to send the load generator to a host that is not allowed: 192.0.2.10" in e
               for e in summary["errors"])
    assert "none was sent" in printed
    # each refusal is a failed request whose message names the host (never a connection error: nothing was sent)
    assert summary["failures"] >= refused["192.0.2.10"]
    samples = " ".join(summary["failure_samples"].values())
    assert "refusing to send a request to 192.0.2.10" in samples and "Unreachable" not in samples
    failures = (tmp_path / "out" / "locust_failures.csv").read_text(encoding="utf-8")
    assert "refusing to send a request to 192.0.2.10" in failures
    assert set(seen) == {"/auth/login"}  # the journey stopped at the refusal


def test_credentials_the_sandbox_refuses_fail_before_any_load(
    tmp_path: Path, capsys: Any, sandbox: Any,
) -> None:
    """A wrong control or officer token is a configuration error found before the load (an unreadable ledger
    after the load is still not data loss: tests/test_load_lifecycle.py)."""
    creds = tmp_path / "credentials.json"
    officer = sandbox.officer_headers()["Authorization"].split(" ", 1)[1]
    control = sandbox.control_headers()["Authorization"].split(" ", 1)[1]
    for fields, named in (({"control_token": "not-the-control-token", "officer_token": officer}, "control_token"),
                          ({"control_token": control, "officer_token": "not-the-officer-token"}, "officer_token")):
        creds.write_text(json.dumps({"national_url": sandbox.national_url, **fields}), "utf-8")
        started = time.monotonic()
        code = main(["load", "--out", str(tmp_path / "out"), "--shape", "soak", "--duration", "30",
                     "--set", "rate=2", "--target", sandbox.province_url, "--credentials", str(creds)])
        captured = capsys.readouterr()
        assert code == 2 and time.monotonic() - started < 10
        assert f"credentials.json: {named} was refused by the " in captured.err and "HTTP 401" in captured.err
        assert captured.err.count("\n") == 1 and "t=" not in captured.out  # no progress line: no load
        assert "not-the-" not in captured.err + captured.out
        assert not (tmp_path / "out" / "summary.json").exists()


def test_sigterm_stops_the_load_then_checks_integrity_and_writes_the_summary(tmp_path: Path) -> None:
    """`timeout`, CI and Kubernetes stop a run with SIGTERM, often to its whole process group: the load stops, and
    accepted dossiers are still checked against a counterpart and a province that are still running — the
    sandbox's servers are outside haicap's process group — so nothing is falsely "lost"; haicap stops them after."""
    import psutil

    haicap = str(Path(sys.executable).with_name("haicap"))
    out = tmp_path / "out"
    with (tmp_path / "load.log").open("wb") as log:
        proc = subprocess.Popen([haicap, "load", "--shape", "soak", "--duration", "60", "--set", "rate=3",
                                 "--set", "ramp_s=0", "--scenario", "birth-registration", "--drain", "20",
                                 "--out", str(out)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    generators: list[Any] = []
    servers: list[Any] = []
    try:
        deadline = time.monotonic() + 60
        while "t=    3s" not in (tmp_path / "load.log").read_text(errors="replace"):  # the load runs
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        children = psutil.Process(proc.pid).children(recursive=True)
        generators = [p for p in children if "haicap.loadtests.locust_app" in " ".join(p.cmdline())]
        servers = [p for p in children if "spawn_main" in " ".join(p.cmdline())]  # not the resource tracker
        assert len(servers) == 2 and all(os.getpgid(p.pid) != proc.pid for p in servers)
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    _, alive = psutil.wait_procs(generators + servers, timeout=10)
    assert generators and alive == []  # the generator, and the servers once the run was judged
    printed = (tmp_path / "load.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in printed
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["stopped_by_user"] == "SIGTERM" and summary["stopped_early"].startswith("interrupted by SIGTERM")
    assert code == summary["exit_code"] and code in (1, 3), printed[-2000:]  # 1 only if a judged gate breached
    assert summary["load_s"] < 10 and summary["journeys"]["started"] == pytest.approx(3 * summary["load_s"], abs=2)
    integrity = summary["integrity"]
    assert integrity["checked"] and integrity["accepted"] >= 5 and integrity["synced"] == integrity["accepted"]
    assert integrity["missing_count"] == 0 and integrity["province"]["checked"]
    assert integrity["province"]["lost_count"] == 0
    assert code != 3 or "INTERRUPTED BY SIGTERM — INCOMPLETE (exit 3)" in printed
