"""The national counterpart alone under a login storm, measured (not asserted). Run by hand:

    .venv/bin/python benchmarks/bench_counterpart.py [--users 32] [--warmup 45] [--measure 15] [--workers 2]

Issue 13 part 7: the counterpart must never be the bottleneck of a load run. It is served the way the sandbox
serves it (:class:`haicap.sandbox.server.ProcessServer`, uvicorn in spawned processes on one pre-bound socket) and
one Locust FastHttpUser process (``locust_driver.py``, closed model, no wait) drives complete sign-ons of distinct
citizens, as a relying party would: GET /authorize with ``login_hint`` and PKCE S256 → POST /token
(``client_secret_post`` + ``code_verifier``) → GET /userinfo with the access token.

Printed, for the measurement window only (psutil CPU times of the server processes and of the generator, read at
both ends of the window):
- counterpart CPU per sign-on (all worker processes), target ≤ 2 ms;
- sign-ons/s achieved (on two shared cores this is bounded by the generator and the machine's load);
- the generator's own CPU per sign-on, and the ratio of the two: how many generator processes one counterpart core
  keeps up with (target ≥ 3);
- the machine's load average before the run, so the noise is visible.

The warm-up is long on purpose: a storm's cost per sign-on depended on how many sign-ons came before it (the
identity provider scanned every code redeemed in the last minute and, past 100 000, every access token of the
last hour, on each authorize), so the window opens only after about 10 000 sign-ons.

One run measures the counterpart twice: as one process, then as ``--workers`` processes on the one socket
(``--national-workers``: every part's state in the store or the shared cells, see ``sandbox/national/app.py``),
so the cost of sharing the state across workers is visible next to the single-process figure. Every sign-on
also fetches the JWKS, as a relying party validating its ID token without a cache does (the worst case; one that
caches the JWKS fetches it far less often).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

HERE = Path(__file__).resolve().parent
NATIONAL_FACTORY = "haicap.sandbox.national.app:create_app"


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def _sign_on_user() -> type:
    """The Locust user class (built lazily: importing locust monkey-patches, which only the driver may do)."""
    from locust import FastHttpUser, task

    from haicap.data_generators.identity import make_cccd

    class SignOnUser(FastHttpUser):
        """One complete OIDC sign-on of a fresh citizen per task (authorize → token → userinfo → JWKS)."""

        rng: ClassVar[random.Random] = random.Random(13)

        @task
        def sign_on(self) -> None:
            env = os.environ
            client_id, secret, redirect = env["HAICAP_BENCH_CLIENT"], env["HAICAP_BENCH_SECRET"], env[
                "HAICAP_BENCH_REDIRECT"]
            rng = SignOnUser.rng
            cccd = make_cccd(rng, date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)),
                             rng.random() < 0.5, "001")
            verifier = secrets.token_urlsafe(48)
            state = secrets.token_urlsafe(12)
            query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect, "scope": "openid",
                     "state": state, "nonce": secrets.token_urlsafe(12), "code_challenge": _challenge(verifier),
                     "code_challenge_method": "S256", "login_hint": cccd}
            from urllib.parse import parse_qs, urlencode, urlsplit

            with self.client.get("/authorize?" + urlencode(query), name="authorize", allow_redirects=False,
                                 catch_response=True) as response:
                location = response.headers.get("location", "") if response.status_code == 302 else ""
                code = parse_qs(urlsplit(location).query).get("code", [""])[0]
                if not code:
                    response.failure(f"{response.status_code}: no code")
                    return
            form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                    "client_id": client_id, "client_secret": secret, "code_verifier": verifier}
            with self.client.post("/token", data=urlencode(form), name="token", catch_response=True,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"}) as response:
                if response.status_code != 200:
                    response.failure(f"{response.status_code}")
                    return
                access = response.json()["access_token"]
            with self.client.get("/userinfo", name="userinfo", headers={"Authorization": f"Bearer {access}"},
                                 catch_response=True) as response:
                if response.status_code != 200 or response.json().get("SoDinhDanh") != cccd:
                    response.failure(f"{response.status_code}")
            with self.client.get("/jwks", name="jwks", catch_response=True) as response:
                if response.status_code != 200:
                    response.failure(f"{response.status_code}")

    return SignOnUser


def __getattr__(name: str) -> Any:  # ``bench_counterpart:SignOnUser`` for locust_driver.py
    if name == "SignOnUser":
        return _sign_on_user()
    raise AttributeError(name)


REQUESTS_PER_SIGN_ON = 4  # authorize, token, userinfo, JWKS


def run(users: int, warmup: float, measure: float, workers: int = 1) -> dict[str, Any]:
    from haicap.sandbox.config import build_sandbox_configs
    from haicap.sandbox.runner import national_run
    from haicap.sandbox.server import ProcessServer, bind_socket, url_of

    with tempfile.TemporaryDirectory(prefix="haicap-bench-counterpart-") as tmp:
        sock = bind_socket("127.0.0.1", 0)
        url = url_of(sock)
        configs = build_sandbox_configs(url, "http://127.0.0.1:9", Path(tmp))
        configs.national.state_dir.mkdir(parents=True, exist_ok=True)
        server = ProcessServer(NATIONAL_FACTORY, national_run(configs.national, workers), sock, "national",
                               workers=workers)
        server.start()
        try:
            client = configs.province.oidc
            spec = {"host": url, "user": "bench_counterpart:SignOnUser", "users": users, "warmup_s": warmup,
                    "measure_s": measure, "pids": server.pids,
                    "env": {"HAICAP_BENCH_CLIENT": client.client_id, "HAICAP_BENCH_SECRET": client.client_secret,
                            "HAICAP_BENCH_REDIRECT": client.redirect_uri}}
            proc = subprocess.run([sys.executable, str(HERE / "locust_driver.py"), json.dumps(spec)],
                                  capture_output=True, text=True, timeout=warmup + measure + 60)
            if proc.returncode != 0:
                raise SystemExit(f"driver failed:\n{proc.stderr[-3000:]}")
            result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
            result["ledger_events"] = _ledger_count(url, configs.national.control_token)
            result["workers"] = workers
            return result
        finally:
            server.stop()


def _ledger_count(url: str, token: str) -> int:
    import httpx

    answer = httpx.get(url + "/_ledger/idp/events?limit=1", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return int(answer.json()["total"])


def report(result: dict[str, Any], load: tuple[float, float, float]) -> str:
    sign_ons = (result["requests"] - result["failures"]) / REQUESTS_PER_SIGN_ON
    elapsed = result["elapsed_s"]
    server_cpu = sum(result["server_cpu_s"])
    server_ms = 1000 * server_cpu / sign_ons if sign_ons else float("nan")
    generator_ms = 1000 * result["generator_cpu_s"] / sign_ons if sign_ons else float("nan")
    ratio = generator_ms / server_ms if server_ms else float("nan")
    workers = result.get("workers", 1)
    lines = [
        f"load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores shared)",
        f"{workers} counterpart process{'es' if workers > 1 else ''}; generator: one Locust FastHttpUser process, "
        f"{result['users']} users",
        f"window: {elapsed:.1f} s, {sign_ons:.0f} sign-ons ({result['requests']} requests, {result['failures']} "
        f"failures), {sign_ons / elapsed:.0f} sign-ons/s, p50 {result['p50_ms']:.0f} ms p95 {result['p95_ms']:.0f} ms",
        f"counterpart CPU per sign-on: {server_ms:.2f} ms (target <= 2 ms) = {1000 / server_ms:.0f} sign-ons per "
        "counterpart core-second",
        f"  of which the event loop(s): {1000 * sum(result['server_loop_cpu_s']) / sign_ons:.2f} ms, other threads "
        f"(store writer, thread pool): {1000 * (server_cpu - sum(result['server_loop_cpu_s'])) / sign_ons:.2f} ms",
        f"generator CPU per sign-on:   {generator_ms:.2f} ms = {1000 / generator_ms:.0f} sign-ons per generator "
        "core-second",
        f"ratio (counterpart core capacity / one generator process): {ratio:.2f}x (target >= 3x)",
        f"IdP ledger events recorded (whole run, warm-up included): {result['ledger_events']}",
    ]
    if result["errors"]:
        lines.append(f"errors: {result['errors']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=45.0)
    parser.add_argument("--measure", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=2, help="the second measurement's counterpart processes")
    args = parser.parse_args()
    for workers in dict.fromkeys((1, args.workers)):
        load = os.getloadavg()
        result = run(args.users, args.warmup, args.measure, workers)
        print(report(result, load), flush=True)
        print(flush=True)


if __name__ == "__main__":
    main()
