"""FUZZ findings replay exactly: the curl line of a finding, run by bash, sends the bytes that triggered it
(invalid UTF-8, NULs, quotes, odd header values), and the headline finding is one that replays exactly."""

from __future__ import annotations

import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest

from haicap.conformance.checks.fuzzing import Finding, curl_replay, headline, shell_quote

needs_curl = pytest.mark.skipif(not (shutil.which("curl") and shutil.which("bash")), reason="needs curl and bash")


#: a request as the server saw it: method, path, raw headers, body
Seen = tuple[str, str, list[tuple[bytes, bytes]], bytes]


class _Recorder(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[Seen]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.raw_items()]
        self.received.append((self.command, self.path, headers, body))
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[Seen]]]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.received
    finally:
        server.shutdown()
        server.server_close()


BODIES = [
    b"\xffk\xfem",  # the 500-on-malformed-input headline: not UTF-8
    b"\x00",  # a NUL: no shell argument can hold it
    b"-n \x00%s\\x41",  # a NUL after what printf could take for an option, a conversion, an escape
    b'{"TrichYeuHoSo": "\\ud83d x", "MaXa": "it\'s 100% \\\\ $HOME `id`"}',
    "{\"ChuHoSo\": \"Nguyễn Văn A\"}\n\t\r".encode(),
    b"<\x1fb\x7f\xc3",
    b"",
]


@needs_curl
@pytest.mark.parametrize("body", BODIES, ids=range(len(BODIES)))
def test_the_curl_line_sends_exactly_the_body_and_headers(
        recorder: tuple[str, list[Seen]], body: bytes) -> None:
    url, received = recorder
    headers: list[tuple[str, str | bytes]] = [
        ("Authorization", "Bearer <citizen token>"), ("Content-Type", "application/json"),
        ("X-Odd", "caf\xe9 'q' \\ %d"), ("X-Empty", ""), ("X-Raw", b"\xfe\x01ok"),
    ]
    line = curl_replay("POST", f"{url}/api/v1/dossiers/a[1]/../x?q=%ZZ{{", headers, body)
    done = subprocess.run(["bash", "-c", line + " -s -o /dev/null"], capture_output=True, timeout=20, check=False)
    assert done.returncode == 0, (line, done.stderr)
    method, path, got_headers, got_body = received[-1]
    assert (method, path, got_body) == ("POST", "/api/v1/dossiers/a[1]/../x?q=%ZZ{", body), line
    sent = {k.lower(): v for k, v in got_headers}
    assert sent[b"authorization"] == b"Bearer <citizen token>" and sent[b"content-type"] == b"application/json"
    assert sent[b"x-odd"] == "caf\xe9 'q' \\ %d".encode("latin-1") and sent[b"x-empty"] == b""
    assert sent[b"x-raw"] == b"\xfe\x01ok"


def test_shell_quote_keeps_text_readable_and_escapes_only_what_must_be() -> None:
    assert shell_quote(b'{"a": 1}') == "'{\"a\": 1}'"
    assert shell_quote("Nguyễn".encode()) == "'Nguyễn'"
    assert shell_quote(b"\xffk\xfem") == "$'\\xffk\\xfem'"
    assert shell_quote(b"it's") == "$'it\\'s'"
    assert "\ufffd" not in curl_replay("POST", "http://h/x", [], b"\xffk\xfem")


def _finding(status: int | None, curl: str, exact: bool = True) -> Finding:
    return Finding("POST /api/v1/dossiers", "negative", ("p",), status, curl, exact)


def test_the_headline_replays_exactly_and_prefers_a_server_error() -> None:
    approximate = _finding(500, "curl -d short", exact=False)
    schema = _finding(400, "curl -d x")
    server_error = _finding(500, "curl --data-binary $'\\xff' longer")
    assert headline([approximate, schema, server_error]) is server_error
    assert headline([approximate, schema]) is schema
    assert headline([approximate]) is approximate


class _Op:
    def __init__(self, label: str, tags: list[str], security: list[dict] | None = None) -> None:
        self.label = label
        self.definition = type("D", (), {"raw": {"tags": tags, **({"security": security} if security else {})}})()


def test_sign_in_operations_are_fuzzed_last_and_logout_very_last() -> None:
    from haicap.conformance.checks.fuzzing import fuzz_order

    ops = [_Op("GET /health", []), _Op("GET /auth/login", ["sso"]), _Op("GET /auth/logout", ["sso"], [{"citizen": []}]),
           _Op("GET /auth/logged-out", ["sso"]), _Op("POST /api/v1/dossiers", ["dossiers"], [{"citizen": []}]),
           _Op("POST /national/forwarded-dossiers", ["national"], [{"forward": []}])]
    assert [op.label for op in fuzz_order(ops)] == [
        "GET /health", "POST /api/v1/dossiers", "POST /national/forwarded-dossiers", "GET /auth/login",
        "GET /auth/logged-out", "GET /auth/logout"]


def test_every_operation_of_the_contract_is_fuzzed_or_named() -> None:
    import schemathesis

    from haicap.conformance.checks.fuzzing import CONTRACT, FuzzRun, fuzz_order
    from haicap.contract_registry import default_registry

    schema = schemathesis.openapi.from_path(default_registry().openapi_path(CONTRACT))
    ops = fuzz_order([r.ok() for r in schema.get_all_operations()])
    labels = {op.label for op in ops}
    assert {"GET /auth/login", "GET /auth/callback", "GET /auth/logout", "POST /national/forwarded-dossiers"} <= labels
    run = FuzzRun("http://127.0.0.1:9", 0, {"citizen": "t"})
    assert [op.label for op in ops if run._auth(op) is None] == [
        op.label for op in ops if {s for r in op.definition.raw.get("security") or [] for s in r} - {"citizen"}]
