"""The README's "Certify your own system" walk-through works as written: the commands between its
``walkthrough`` markers are run in order (a fresh folder, a free port instead of the README's 8711), and the
rehearsal province they start certifies ready through its own profile. Also: ``haicap profile init``, and the
rehearsal's profile and secrets file."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from haicap.cli import main
from haicap.target import load_profile

ROOT = Path(__file__).resolve().parent.parent
HAICAP = [sys.executable, "-m", "haicap.cli"]


def walkthrough_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- walkthrough:begin -->", 1)[1].split("<!-- walkthrough:end -->", 1)[0]
    commands: list[str] = []
    for fenced in re.findall(r"```bash\n(.*?)```", block, flags=re.S):
        commands += [line.strip() for line in fenced.splitlines() if line.strip() and not line.startswith("#")]
    return commands


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _load_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, f"the rehearsal stopped: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{path} was not written within {seconds:.0f}s"
        time.sleep(0.1)


def test_the_walkthrough_has_the_documented_commands() -> None:
    commands = walkthrough_commands()
    assert commands == [
        ".venv/bin/haicap profile init --province 01 --out my-province.yaml",
        ".venv/bin/haicap sandbox --national-url http://127.0.0.1:8711 --state-dir rehearsal &",
        "set -a; . rehearsal/rehearsal.env; set +a",
        ".venv/bin/haicap certify --profile rehearsal/rehearsal.yaml --out rehearsal-run",
    ]


@pytest.mark.slow
def test_the_readme_walkthrough_certifies_the_rehearsal_province_ready(tmp_path: Path) -> None:
    port = str(_free_port())
    env = dict(os.environ)
    background: list[subprocess.Popen[str]] = []
    codes: list[int] = []
    try:
        for command in walkthrough_commands():
            command = command.replace("8711", port)
            if command.startswith("set -a;"):
                env.update(_load_env(tmp_path / command.split(". ", 1)[1].split(";", 1)[0]))
                continue
            argv = shlex.split(command.rstrip("&").strip())
            assert argv[0] == ".venv/bin/haicap", command
            argv = HAICAP + argv[1:]
            if command.endswith("&"):
                proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
                background.append(proc)
                _wait_for(tmp_path / "rehearsal" / "rehearsal.env", proc)
                continue
            done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr}"
            codes.append(done.returncode)
    finally:
        for proc in background:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
    results = json.loads((tmp_path / "rehearsal-run" / "results.json").read_text(encoding="utf-8"))
    assert results["summary"]["readiness"] == "ready" and results["summary"]["exit_code"] == 0
    assert results["preflight"]["ok"] and not results["target"]["embedded_sandbox"]
    assert (tmp_path / "my-province.yaml").is_file()


def test_profile_init_writes_a_valid_commented_template(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "p.yaml"
    assert main(["profile", "init", "--province", "12", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.count("#") > 10 and "oidc_post_logout_redirect_uri" in text
    profile = load_profile(out)
    assert profile.data["province"] == "12" and profile.data["agency_code"] == "000.00.00.H04"
    assert main(["profile", "init", "--province", "12", "--out", str(out)]) == 2  # never overwritten
    assert "exists" in capsys.readouterr().err


def test_the_rehearsal_writes_a_ready_profile_and_a_private_secrets_file(tmp_path: Path) -> None:
    from haicap.sandbox.runner import Rehearsal

    port = _free_port()
    with Rehearsal.start(f"http://127.0.0.1:{port}", state_dir=tmp_path) as rehearsal:
        assert stat.S_IMODE(rehearsal.env_path.stat().st_mode) == 0o600
        values = _load_env(rehearsal.env_path)
        assert len(values) == 5 and all(values.values())
        profile_text = rehearsal.profile_path.read_text(encoding="utf-8")
        assert not any(value in profile_text for value in values.values())  # secrets by name only
        for name, value in values.items():
            os.environ[name] = value
        try:
            profile = load_profile(rehearsal.profile_path)
            for key in profile.data["credentials"]:
                if key.endswith("_env"):
                    assert profile.secret(key)
        finally:
            for name in values:
                del os.environ[name]
        assert profile.data["national"] == {"listen": f"127.0.0.1:{port}", "public_url": f"http://127.0.0.1:{port}"}
        assert profile.data["province_url"] == rehearsal.province_url


@pytest.mark.parametrize("url", ["127.0.0.1:8711", "http://10.0.0.5:8711", "http://127.0.0.1"])
def test_the_rehearsal_needs_a_loopback_http_url_with_a_port(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--national-url", url]) == 2
    assert "--national-url" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--national-url", "http://127.0.0.1:8711", "--national-workers", "2"], "haicap load --profile rehearsal.yaml"),
    (["--national-workers", "0"], "--national-workers 0: the national counterpart needs at least 1"),
    (["--national-workers", "4096"], "--national-workers 4096: this machine has"),
])
def test_national_workers_are_refused_with_the_reason(args: list[str], message: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", *args]) == 2
    assert message in capsys.readouterr().err
