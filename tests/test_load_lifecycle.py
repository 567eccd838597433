"""How ``haicap load`` starts and stops: input refused before any load, credentials tried first, the previous
run's outputs removed, and a run stopped from outside (SIGTERM, Ctrl-C, a killed parent) that stops its load,
still drains and writes its summary, or, orphaned, dies.

The lifecycle tests run ``haicap load`` as a process against a tiny fake province and ledger served by this
test process (one journey = one 404), so they take seconds, not a sandbox start.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from haicap.cli import main
from haicap.sandbox.server import ThreadServer, bind_socket

CONTROL, OFFICER = "the-control-token-value", "the-officer-token-value"
HAICAP = str(Path(sys.executable).with_name("haicap"))


class FakeTarget:
    """A province and its national ledger in one app: /health, the ledger (control token), the officer list
    (officer token); every other request is journey traffic, timed and answered 404."""

    def __init__(self, hang: bool = False) -> None:
        self.journey_requests: list[float] = []
        self.ledger_reads = 0
        self.hang = hang  # journey traffic is never answered (the connection stays open)
        self._lock = threading.Lock()

    def app(self) -> Starlette:
        async def health(request: Request) -> Response:
            return JSONResponse({"status": "ok"})

        async def ledger(request: Request) -> Response:
            with self._lock:
                self.ledger_reads += 1
            if request.headers.get("authorization") != f"Bearer {CONTROL}":
                return JSONResponse({"title": "unauthorized"}, status_code=401)
            return JSONResponse({"items": []})

        async def officer(request: Request) -> Response:
            if request.headers.get("authorization") != f"Bearer {OFFICER}":
                return JSONResponse({"title": "unauthorized"}, status_code=401)
            return JSONResponse({"items": [], "total": 0})

        async def other(request: Request) -> Response:
            with self._lock:
                self.journey_requests.append(time.monotonic())
            while self.hang:
                await asyncio.sleep(0.2)
            return JSONResponse({"title": "not found"}, status_code=404)

        return Starlette(routes=[Route("/health", health), Route("/_ledger/sync/dossiers", ledger),
                                 Route("/officer/dossiers", officer),
                                 Route("/{path:path}", other, methods=["GET", "POST", "PUT", "DELETE"])])

    def requests_after(self, t: float) -> int:
        with self._lock:
            return sum(1 for x in self.journey_requests if x > t)


@pytest.fixture
def fake() -> Iterator[tuple[FakeTarget, str]]:
    target = FakeTarget()
    with ThreadServer(target.app(), bind_socket("127.0.0.1", 0)) as server:
        yield target, server.url


@pytest.fixture
def hanging() -> Iterator[tuple[FakeTarget, str]]:
    target = FakeTarget(hang=True)
    with ThreadServer(target.app(), bind_socket("127.0.0.1", 0)) as server:
        yield target, server.url
        target.hang = False  # let the server's graceful shutdown end the held requests


def _credentials(tmp_path: Path, **fields: Any) -> Path:
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps(fields), encoding="utf-8")
    return path


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_line_error(capsys: Any) -> str:
    err = capsys.readouterr().err
    assert err.startswith("haicap: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "KeyError" not in err and "TypeError" not in err
    return err


# -- refused before anything starts ----------------------------------------------------------------
@pytest.mark.parametrize(("content", "message"), [
    ({"control_token": "t"}, "credentials.json: national_url: missing; expected the national counterpart's base URL"),
    ({"national_url": "http://127.0.0.1:9"}, "credentials.json: control_token: missing; expected a non-empty string"),
    ({"national_url": "http://127.0.0.1:9", "control_token": 7},
     "credentials.json: control_token: expected a non-empty string (the counterpart's control token), got a number"),
    ({"national_url": "http://127.0.0.1:9", "control_token": "t", "officer_token": ["x"]},
     "credentials.json: officer_token: expected a non-empty string or null"),
    (["national_url", "control_token"], "credentials.json: not a credentials file: expected a JSON object with "
     "national_url, control_token and officer_token, got a list"),
    ({"national_url": "ftp://x", "control_token": "t"}, "credentials.json: national_url: 'ftp://x' is not an http"),
    ({"national_url": "http://127.0.0.1:99999", "control_token": "t"},
     "credentials.json: national_url: 'http://127.0.0.1:99999': the port must be 1..65535"),
])
def test_a_bad_credentials_file_names_the_file_the_field_and_what_was_expected(
    tmp_path: Path, capsys: Any, content: Any, message: str,
) -> None:
    creds = tmp_path / "credentials.json"
    creds.write_text(json.dumps(content), encoding="utf-8")
    out = tmp_path / "out"
    assert main(["load", "--shape", "soak", "--target", "http://127.0.0.1:9", "--credentials", str(creds),
                 "--out", str(out)]) == 2
    assert message in _one_line_error(capsys)
    assert not out.exists()


def test_a_credentials_file_that_is_not_json_or_not_there_is_one_line(tmp_path: Path, capsys: Any) -> None:
    creds = tmp_path / "credentials.json"
    creds.write_text('{"national_url": "http://127.0.0.1:9",\n  "control_token": }', encoding="utf-8")
    args = ["load", "--shape", "soak", "--target", "http://127.0.0.1:9", "--out", str(tmp_path / "out")]
    assert main([*args, "--credentials", str(creds)]) == 2
    assert "credentials.json: not a credentials file: not JSON (line 2 column" in _one_line_error(capsys)
    assert main([*args, "--credentials", str(tmp_path / "nope.json")]) == 2
    assert f"--credentials {tmp_path / 'nope.json'}: cannot read it (No such file" in _one_line_error(capsys)


@pytest.mark.parametrize(("args", "message"), [
    (["--credentials", "c.json"], "--credentials c.json applies to --target only"),
    (["--target", "http://127.0.0.1:99999", "--credentials", "c.json"],
     "target: 'http://127.0.0.1:99999': the port must be 1..65535"),
    (["--target", "http://127.0.0.1:0", "--credentials", "c.json"], "the port must be 1..65535"),
    (["--shape-file", "shape.yaml"], "give --shape or --shape-file, not both"),
    (["--projection", "surge_factor=3"], "--projection sizes capacity from a step run; this run's shape is soak"),
])
def test_contradicting_or_invalid_options_are_refused_before_anything_starts(
    tmp_path: Path, capsys: Any, monkeypatch: Any, args: list[str], message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shape.yaml").write_text("shape: soak\nduration: 5\n", encoding="utf-8")
    _credentials(tmp_path, national_url="http://127.0.0.1:9", control_token="t").rename(tmp_path / "c.json")
    assert main(["load", "--shape", "soak", "--out", "out", *args]) == 2
    assert message in _one_line_error(capsys)
    assert not (tmp_path / "out").exists()


def test_an_unknown_projection_key_is_refused_before_the_run_naming_the_valid_ones(
    tmp_path: Path, capsys: Any,
) -> None:
    out = tmp_path / "out"
    assert main(["load", "--shape", "step", "--projection", "foo=1", "--out", str(out)]) == 2
    err = _one_line_error(capsys)
    assert "--projection: unknown projection key foo; valid keys: province, communes" in err
    assert "surge_factor" in err and "headroom" in err
    assert main(["load", "--shape", "step", "--projection", "surge_factor=-2", "--out", str(out)]) == 2
    assert "--projection: projection surge_factor must be a positive number" in _one_line_error(capsys)
    assert not out.exists()


def test_an_output_folder_that_cannot_be_made_is_one_line(tmp_path: Path, capsys: Any) -> None:
    afile = tmp_path / "afile"
    afile.write_text("", encoding="utf-8")
    assert main(["load", "--shape", "soak", "--out", str(afile)]) == 2
    assert f"--out {afile}: exists and is not a folder" in _one_line_error(capsys)
    assert main(["load", "--shape", "soak", "--out", "/proc/haicap-nope/out"]) == 2
    assert "--out /proc/haicap-nope/out: cannot create the output folder (" in _one_line_error(capsys)
    assert main(["load", "--shape", "soak", "--out", str(afile / "sub")]) == 2
    assert f"--out {afile / 'sub'}: cannot create the output folder (" in _one_line_error(capsys)


# -- credentials tried before any load -------------------------------------------------------------
@pytest.mark.parametrize(("fields", "message"), [
    ({"control_token": "wrong-control"}, "credentials.json: control_token was refused by the national ledger"),
    ({"officer_token": "wrong-officer"}, "credentials.json: officer_token was refused by the province's officer API"),
])
def test_a_refused_credential_fails_fast_naming_it_never_its_value(
    tmp_path: Path, capsys: Any, fake: tuple[FakeTarget, str], fields: dict[str, str], message: str,
) -> None:
    target, url = fake
    creds = _credentials(tmp_path, **{"national_url": url, "control_token": CONTROL, "officer_token": OFFICER,
                                      **fields})
    started = time.monotonic()
    assert main(["load", "--shape", "soak", "--duration", "30", "--target", url, "--credentials", str(creds),
                 "--out", str(tmp_path / "out")]) == 2
    assert time.monotonic() - started < 10  # not after a 30 s load
    captured = capsys.readouterr()
    err = captured.err
    assert message in err and "HTTP 401" in err and err.count("\n") == 1
    for secret in (CONTROL, OFFICER, *fields.values()):
        assert secret not in captured.err + captured.out
    assert target.journey_requests == []  # no load at all
    assert not (tmp_path / "out" / "summary.json").exists()


def test_a_national_counterpart_that_does_not_answer_fails_fast_naming_national_url(
    tmp_path: Path, capsys: Any, fake: tuple[FakeTarget, str],
) -> None:
    target, url = fake
    dead = f"http://127.0.0.1:{_dead_port()}"
    creds = _credentials(tmp_path, national_url=dead, control_token=CONTROL, officer_token=OFFICER)
    assert main(["load", "--shape", "soak", "--duration", "30", "--target", url, "--credentials", str(creds),
                 "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"credentials.json: national_url {dead}: the national counterpart is not reachable" in err
    assert err.count("\n") == 1 and target.journey_requests == []


# -- outputs of an earlier run ---------------------------------------------------------------------
def test_a_new_run_removes_the_previous_outputs_and_lists_only_files_it_wrote(tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale = ("summary.json", "timeseries.json", "stages.json", "capacity.html", "raw.json", "locust.html",
             "locust_stats.csv", "locust_failures.csv", "locust_stats_history.csv")
    for name in stale:
        (out / name).write_text("from an earlier run", encoding="utf-8")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    dead = f"http://127.0.0.1:{_dead_port()}"  # the target does not answer: the run stops before any load
    creds = _credentials(tmp_path, national_url=dead, control_token=CONTROL, officer_token=OFFICER)
    assert main(["load", "--shape", "soak", "--target", dead, "--credentials", str(creds), "--drain", "0",
                 "--out", str(out)]) == 2
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["stopped_early"].startswith("target unreachable")
    assert summary["files"] == {"timeseries": "timeseries.json"}
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "summary.json", "timeseries.json"]


# -- the parent's stop control ---------------------------------------------------------------------
def test_a_signal_before_the_load_stops_the_command_and_one_during_it_only_the_load() -> None:
    from haicap.loadtests.stopping import LoadStopped, StopControl

    said: list[str] = []
    stops = StopControl(say=said.append)
    with stops.installed(), pytest.raises(LoadStopped) as stopped:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)  # the handler runs here
    assert stopped.value.signum == signal.SIGTERM and stops.name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the previous handler is back

    stops = StopControl(say=said.append)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with stops.installed():
            stops.loading()
            stops.started(child)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: never a KeyboardInterrupt here
            assert child.wait(timeout=10) == -signal.SIGTERM  # passed on as SIGTERM: stop the load
            assert stops.requested and not stops.hurry
            stops.judging()
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
            assert stops.hurry  # a second one cuts the integrity drain short
    finally:
        child.kill()
        child.wait()
    assert "SIGINT: stopping the load" in said[0] and "cutting the integrity check short" in said[1]


def test_the_integrity_drain_is_cut_short_when_asked() -> None:
    from haicap.loadtests.integrity import check_integrity

    class Ledger:
        def synced_dossiers(self) -> list[dict[str, Any]]:
            return []

    stop = threading.Timer(0.3, lambda: flag.append(True))
    flag: list[bool] = []
    stop.start()
    started = time.monotonic()
    result = check_integrity(Ledger(), {"A": ["1", True]}, drain_s=30, poll_s=0.05, say=lambda _: None,  # type: ignore[arg-type]
                             should_stop=lambda: bool(flag))
    assert time.monotonic() - started < 5
    assert result["cut_short"] and result["checked"] and result["missing_count"] == 1


def test_a_ledger_unreadable_after_the_load_is_not_data_loss(
    tmp_path: Path, capsys: Any, fake: tuple[FakeTarget, str],
) -> None:
    from haicap.loadtests.journeys import Mix, load_mix_scenarios
    from haicap.loadtests.recorder import Recorder
    from haicap.loadtests.run import LoadOptions, _judge
    from haicap.loadtests.shapes import build_shape
    from haicap.target import Target

    _, url = fake
    recorder = Recorder(time.time())
    recorder.dossier("000.00.01.H01-250101-0001", "1", True)
    raw = {"start_epoch": recorder.start_epoch, "report": recorder.take_report(final=True), "generators": [],
           "workers": 0}
    spec = build_shape("soak", 2, {"rate": 1, "ramp_s": 0})
    opts = LoadOptions(shape=spec, out=tmp_path, drain_s=0)
    scenarios = load_mix_scenarios()
    target = Target(name="fake", province_code="01", agency_code="000.00.01.H01", province_url=url,
                    national_url=url, control_token="not-the-control-token")
    code = _judge(opts, target, scenarios, Mix.build(scenarios, ["first-login"]), spec.build(), raw, None)
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    integrity = summary["integrity"]
    assert integrity["accepted"] == 1 and not integrity["checked"] and "HTTP 401" in integrity["error"]
    assert integrity["missing"] == [] and integrity["missing_count"] == 0 and not integrity["passed"]
    assert code == summary["exit_code"] == 2 and summary["stopped_by_user"] is None
    printed = capsys.readouterr().out
    assert "MISSING" not in printed and "ERROR: integrity could not be checked: " in printed
    assert "not-the-control-token" not in printed


# -- stopping a running load from outside ----------------------------------------------------------
def _start_load(tmp_path: Path, url: str, *extra: str) -> subprocess.Popen[bytes]:
    creds = _credentials(tmp_path, national_url=url, control_token=CONTROL)
    log = (tmp_path / "load.log").open("wb")
    proc = subprocess.Popen([HAICAP, "load", "--shape", "soak", "--duration", "60", "--set", "rate=5",
                             "--set", "ramp_s=0", "--scenario", "first-login", "--target", url,
                             "--credentials", str(creds), "--drain", "5", "--out", str(tmp_path / "out"), *extra],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return proc


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _generators(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    return [p for p in psutil.Process(proc.pid).children(recursive=True)
            if "haicap.loadtests.locust_app" in " ".join(p.cmdline())]


def _stop_all(proc: subprocess.Popen[bytes], others: list[psutil.Process]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)
    for p in others:
        if p.is_running():
            p.kill()


@pytest.mark.parametrize(("how", "processes", "name"), [("SIGTERM to haicap", "0", "SIGTERM"),
                                                         ("Ctrl-C to the process group", "2", "SIGINT")])
def test_a_stopped_run_stops_its_load_drains_and_writes_its_summary(
    tmp_path: Path, fake: tuple[FakeTarget, str], how: str, processes: str, name: str,
) -> None:
    code = 1  # interrupted, judged on what it measured: every journey of the fake province fails (404)
    target, url = fake
    proc = _start_load(tmp_path, url, "--processes", processes)
    generators: list[psutil.Process] = []
    try:
        _wait_for(lambda: len(target.journey_requests) >= 5, 40, "the load to start")
        generators = _generators(proc)
        assert len(generators) == 1 + int(processes)
        if how.startswith("SIGTERM"):
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        stopped = time.monotonic()
        assert proc.wait(timeout=30) == code
    finally:
        _stop_all(proc, generators)
    assert target.requests_after(stopped + 1.5) == 0  # the arrivals stopped at once
    _, alive = psutil.wait_procs(generators, timeout=5)
    assert alive == []  # the generator and its workers are gone
    printed = (tmp_path / "load.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in printed and "KeyboardInterrupt" not in printed, printed[-3000:]
    assert f"INTERRUPTED BY {name} — FAILED (exit {code})" in printed
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["exit_code"] == code and not summary["passed"] and summary["stopped_by_user"] == name
    assert summary["stopped_early"].startswith(f"interrupted by {name} (stopped by the user) at t=")
    assert 0 < summary["load_s"] < 30 and summary["journeys"]["started"] >= 5
    assert summary["integrity"]["checked"] and target.ledger_reads >= 2  # preflight, then integrity
    assert summary["files"]["locust_csv"] == "locust_stats.csv" and (tmp_path / "out" / "locust_stats.csv").exists()


def test_the_generator_dies_with_a_killed_haicap(tmp_path: Path, fake: tuple[FakeTarget, str]) -> None:
    target, url = fake
    proc = _start_load(tmp_path, url, "--processes", "1")
    generators: list[psutil.Process] = []
    try:
        _wait_for(lambda: len(target.journey_requests) >= 3, 40, "the load to start")
        generators = _generators(proc)
        assert len(generators) == 2  # the master and its worker
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed = time.monotonic()
        _, alive = psutil.wait_procs(generators, timeout=5)
        assert alive == []
    finally:
        _stop_all(proc, generators)
    assert target.requests_after(killed + 2) == 0  # nobody keeps loading the target


def test_a_worker_says_where_it_waits_for_its_master_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = _dead_port()
    proc = subprocess.Popen([HAICAP, "load", "--worker", "--master-port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        assert f"worker waiting for the master at 127.0.0.1:{port} (up to 305 s" in first
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        rest = proc.stdout.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert f"worker stopped (SIGINT) before it reached the master at 127.0.0.1:{port}" in rest
    assert "Traceback" not in rest



def test_end_child_escalates_from_waiting_to_sigterm_to_sigkill() -> None:
    import subprocess
    import sys

    from haicap.parent_death import end_child

    quick = subprocess.Popen([sys.executable, "-c", "pass"])
    end_child(quick, wait_s=10)  # finishes on its own: no signal needed
    assert quick.returncode == 0
    polite = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    end_child(polite, term_wait_s=10)
    assert polite.returncode == -15  # SIGTERM was enough
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                                 "signal.SIG_IGN); print('ready', flush=True); time.sleep(30)"],
                                stdout=subprocess.PIPE, text=True)
    assert stubborn.stdout is not None and stubborn.stdout.readline() == "ready\n"
    end_child(stubborn, term_wait_s=0.3)
    assert stubborn.returncode == -9
    stubborn.stdout.close()


def test_no_run_outlives_its_bound_when_the_province_and_a_worker_hang(
    tmp_path: Path, hanging: tuple[FakeTarget, str],
) -> None:
    """The province never answers and the one worker is frozen (SIGSTOP) mid-load: Locust's own stop cannot end
    it; the generator's watchdog does, the summary says so, and the run ends within its bound."""
    target, url = hanging
    duration, grace, drain = 3, 2, 2
    started = time.monotonic()
    proc = _start_load(tmp_path, url, "--duration", str(duration), "--grace", str(grace), "--drain", str(drain),
                       "--processes", "1", "--no-require-kept-up")
    generators: list[psutil.Process] = []
    try:
        _wait_for(lambda: len(target.journey_requests) >= 3, 40, "the load to start")
        loading = time.monotonic()
        generators = _generators(proc)
        worker = next(p for p in generators if "--worker" in p.cmdline())
        worker.suspend()
        code = proc.wait(timeout=duration + grace + drain + 60)
        ended = time.monotonic()
    finally:
        _stop_all(proc, generators)
    assert ended - loading < duration + grace + drain + 60, ended - started
    printed = (tmp_path / "load.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in printed, printed[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["time_bound"].startswith("stopped at the time bound: 1 of 1 generator process had not "
                                            "reported its end")
    assert summary["stopped_early"] == summary["time_bound"] and not summary["passed"]
    assert code == summary["exit_code"] == 2  # nothing could be judged: no journey ever finished
    assert "STOPPED AT THE TIME BOUND — NOTHING JUDGED (exit 2)" in printed
    _, alive = psutil.wait_procs(generators, timeout=5)
    assert alive == []  # the frozen worker too


def test_sigterm_to_the_group_of_a_certify_run_is_a_clean_interrupt_that_stops_its_servers(tmp_path: Path) -> None:
    """haicap certify handles SIGTERM like Ctrl-C: its pytest child is stopped, the embedded servers (outside the
    group) are stopped by haicap, what was judged is kept, nothing is left running, and it says so (exit 3)."""
    log = (tmp_path / "certify.log").open("wb")
    proc = subprocess.Popen([HAICAP, "certify", "--only", "sso", "--out", str(tmp_path / "run")],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    printed = lambda: (tmp_path / "certify.log").read_text(encoding="utf-8", errors="replace")  # noqa: E731
    others: list[psutil.Process] = []
    try:
        _wait_for(lambda: "passed" in printed() or proc.poll() is not None, 90, "the first check")
        others = psutil.Process(proc.pid).children(recursive=True)
        servers = [p for p in others if "spawn_main" in " ".join(p.cmdline())]
        assert len(servers) == 2 and all(os.getpgid(p.pid) != proc.pid for p in servers)
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        _stop_all(proc, others)
    assert code == 3 and "interrupted (SIGTERM)" in printed(), printed()[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    assert results["interrupted"]["by"] == "SIGTERM" and results["interrupted"]["judged"] >= 1
    assert "Traceback" not in printed()
    _, alive = psutil.wait_procs(others, timeout=10)
    assert alive == []
