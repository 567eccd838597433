"""Live OpenMetrics during a load run, W3C traceparent on every request, and the slowest journeys' trace ids."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from haicap.cli import main
from haicap.loadtests.histograms import Latency
from haicap.loadtests.metrics import BUCKETS_S, buckets


def test_buckets_are_cumulative_counts_of_the_merged_histogram() -> None:
    latency = Latency()
    for ms in (3, 7, 7, 40, 900, 45_000):
        latency.record_ms(ms)
    values, total = buckets(latency)
    as_dict = dict(values)
    assert as_dict["0.005"] == 1 and as_dict["0.01"] == 3 and as_dict["0.05"] == 4 and as_dict["1.0"] == 5
    assert as_dict["30.0"] == 5 and as_dict["+Inf"] == 6 and len(values) == len(BUCKETS_S) + 1
    assert total == pytest.approx(45.957, rel=0.01)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_metrics_answer_during_a_run_with_histogram_series(tmp_path: Path) -> None:
    port = _free_port()
    scraped: list[str] = []

    def scrape() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(scraped) < 3:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
                if "haicap_step_latency_seconds_bucket" in answer.text:
                    scraped.append(answer.text)
            except httpx.HTTPError:
                pass
            time.sleep(0.5)

    thread = threading.Thread(target=scrape, daemon=True)
    thread.start()
    out = tmp_path / "out"
    code = main(["load", "--shape", "soak", "--duration", "8", "--set", "rate=2", "--set", "ramp_s=0",
                 "--scenario", "birth-registration", "--drain", "10", "--metrics-port", str(port), "--out", str(out),
                 "--no-require-kept-up"])  # about the endpoint, not about keeping up on a shared machine
    thread.join(timeout=5)
    assert code == 0 and scraped, "the endpoint answered with histograms while the run lasted"
    families = {f.name: f for f in text_string_to_metric_families(scraped[-1])}
    steps = families["haicap_step_latency_seconds"]
    assert steps.type == "histogram"
    labels = {(s.labels.get("scenario"), s.labels.get("step")) for s in steps.samples}
    assert ("birth-registration", "submit_dossier") in labels
    assert {"haicap_journeys", "haicap_requests", "haicap_achieved_rate"} <= set(families)
    with pytest.raises(httpx.HTTPError):  # the endpoint ends with the run
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    slowest = summary["slowest_journeys"]
    assert slowest and len(slowest) <= 10 and len({s["trace_id"] for s in slowest}) == len(slowest)
    assert slowest == sorted(slowest, key=lambda s: -s["ms"])


SEND_TWO = """
import sys
from haicap.loadtests.port import LocustPort, TimedEvent
from haicap.loadtests.recorder import Recorder

class Forward:
    def fire(self, **meta):
        pass

port = LocustPort(sys.argv[1], TimedEvent(Forward(), Recorder()))
port.request("GET", "/x")
port.fresh().request("GET", "/x")
print(port.trace_id)
"""


def test_every_request_of_a_journey_carries_its_traceparent() -> None:
    import subprocess
    import sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("traceparent", ""))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:  # Locust patches the process with gevent: its port runs in a child, as in a real load
        done = subprocess.run([sys.executable, "-P", "-c", SEND_TWO, f"http://127.0.0.1:{server.server_address[1]}"],
                              capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    trace_id = done.stdout.strip().splitlines()[-1]
    assert len(seen) == 2, done.stderr[-2000:]
    parts = [s.split("-") for s in seen]
    assert all(p[0] == "00" and p[1] == trace_id and len(p[2]) == 16 and p[3] == "01" for p in parts)
    assert parts[0][2] != parts[1][2]  # a new span id per request, one trace per journey


def test_the_endpoint_negotiates_openmetrics_or_prometheus_text_and_counts_in_flight_as_a_whole_number() -> None:
    from haicap.loadtests.metrics import serve_metrics
    from haicap.loadtests.recorder import Recorder, SecondSample

    recorder = Recorder(start_epoch=time.time() - 10)
    # seconds 6..8: the scrape reads the last complete ones (7 of 6-7, the running 8 left out); two workers
    # sampled second 7 (4 + 1 running): a count of journeys, never a mean such as 4.5
    for second, in_flight, workers in ((6, 4, 1), (7, 5, 2), (8, 3, 1)):
        recorder.seconds[second] = SecondSample(in_flight=in_flight, sampled=workers)
    server = serve_metrics(lambda: recorder, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    try:
        plain = httpx.get(url, timeout=5)
        openmetrics = httpx.get(url, timeout=5, headers={
            "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"})
    finally:
        server.shutdown()
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert openmetrics.text.rstrip().endswith("# EOF") and "# EOF" not in plain.text
    in_flight = next(s.value for f in text_string_to_metric_families(plain.text) for s in f.samples
                     if s.name == "haicap_in_flight")
    assert in_flight == 5  # second 7, all workers: not the mean 4.5 of seconds 6 and 7
