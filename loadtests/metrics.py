"""Live OpenMetrics while a load runs (``haicap load --metrics-port P``), for the Prometheus a team already runs.

The master's merged measurements are exposed through prometheus-client, read at scrape time: per scenario and
step a **histogram** of latency built from the merged HdrHistograms (cumulative counts at fixed bucket bounds,
exact at those bounds up to HDR's 0.1 %), so percentiles aggregate in Prometheus (``histogram_quantile``) as
they should, rather than gauges of percentiles that cannot be averaged; counters of requests, steps and
journeys by outcome; gauges of the planned and achieved arrival rate, and of the journeys in flight and the
backlog (whole counts at the last complete second, all workers). The answer's format follows the scraper's
``Accept`` header (prometheus-client's ``choose_encoder``): OpenMetrics 1.0 (``application/openmetrics-text``)
to a scraper that asks for it, as Prometheus does by default, else the Prometheus text format 0.0.4.
The endpoint lives as long as the run and stops with it; it binds loopback unless ``--metrics-bind`` says
otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from haicap.loadtests.histograms import Latency
from haicap.loadtests.recorder import Recorder

__all__ = ["BUCKETS_S", "LoadCollector", "buckets", "serve_metrics"]

#: Latency bucket upper bounds in seconds (Prometheus' defaults, extended to 30 s for a saturated province).
BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def buckets(latency: Latency) -> tuple[list[tuple[str, float]], float]:
    """(cumulative ``(le, count)`` buckets ending with ``+Inf``, sum of seconds) of a latency histogram."""
    counts = [0] * len(BUCKETS_S)
    total_s = 0.0
    for item in latency.recorded():
        value_s, count = item
        total_s += value_s * count
        for i, bound in enumerate(BUCKETS_S):
            if value_s <= bound:
                counts[i] += count
                break
    out, running = [], 0
    for bound, count in zip(BUCKETS_S, counts, strict=True):
        running += count
        out.append((repr(bound), float(running)))
    out.append(("+Inf", float(latency.count)))
    return out, total_s


class LoadCollector(Collector):
    """Reads the run's merged :class:`Recorder` at every scrape (the master's, or the one process's)."""

    def __init__(self, recorder_of: Any) -> None:
        self._recorder_of = recorder_of  # a callable: the recorder may be replaced while the run starts

    def collect(self) -> Iterator[Metric]:
        recorder: Recorder = self._recorder_of()
        steps = HistogramMetricFamily("haicap_step_latency_seconds", "Scenario step latency, from the intended "
                                      "start for a journey's first step", labels=["scenario", "step"])
        step_count = CounterMetricFamily("haicap_steps", "Scenario steps by outcome",
                                         labels=["scenario", "step", "outcome"])
        for key, counted in sorted(recorder.steps.items()):
            scenario, label = Recorder.split_step_key(key)
            bucket_values, total = buckets(counted.latency)
            steps.add_metric([scenario, label], bucket_values, total)
            step_count.add_metric([scenario, label, "ok"], counted.ok)
            step_count.add_metric([scenario, label, "failed"], counted.failed)
        journeys = HistogramMetricFamily("haicap_journey_latency_seconds", "Whole-journey latency by scenario",
                                         labels=["scenario"])
        journey_count = CounterMetricFamily("haicap_journeys", "Journeys by outcome", labels=["scenario", "outcome"])
        for scenario, counted in sorted(recorder.journeys.items()):
            bucket_values, total = buckets(counted.latency)
            journeys.add_metric([scenario], bucket_values, total)
            journey_count.add_metric([scenario, "passed"], counted.ok)
            journey_count.add_metric([scenario, "failed"], counted.failed)
        totals = recorder.totals()
        requests = CounterMetricFamily("haicap_requests", "HTTP requests to the system under test by outcome",
                                       labels=["outcome"])
        requests.add_metric(["ok"], totals.ok)
        requests.add_metric(["failed"], totals.failed)
        yield from (steps, step_count, journeys, journey_count, requests)
        yield from self._gauges(recorder)

    @staticmethod
    def _gauges(recorder: Recorder) -> Iterator[Metric]:
        done = sorted(recorder.seconds)[-3:-1] or sorted(recorder.seconds)[-1:]  # the last complete seconds
        samples = [recorder.seconds[k] for k in done]
        last = samples[-1] if samples else None

        def mean(values: list[float]) -> float:
            return sum(values) / len(values) if values else 0.0

        yield GaugeMetricFamily("haicap_target_rate", "Planned journey arrivals per second",
                                value=mean([s.target_rate for s in samples]))
        yield GaugeMetricFamily("haicap_achieved_rate", "Journeys started per second",
                                value=mean([float(s.started) for s in samples]))
        # counts at one moment (the last complete second, summed over the workers that sampled it), never a mean:
        # "2.5 journeys running" is not a state the generator was ever in
        yield GaugeMetricFamily("haicap_in_flight", "Journeys running (all workers, last complete second)",
                                value=last.in_flight if last else 0)
        yield GaugeMetricFamily("haicap_backlog", "Arrivals due but not started (all workers, last complete second)",
                                value=last.backlog if last else 0)


def serve_metrics(recorder_of: Any, bind: str, port: int) -> Any:
    """Start the OpenMetrics endpoint on ``bind:port`` (its own registry: no process metrics of the
    generator); returns the server, whose ``shutdown()`` ends it."""
    from prometheus_client.exposition import start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(LoadCollector(recorder_of))
    server, _thread = start_http_server(port, addr=bind, registry=registry)
    return server
