"""The open-model arrival scheduler: journeys start at the shape's rate whatever the system's response times.

Arrival ``n`` is due at ``t_n`` (``t_{n+1} = t_n + 1 / rate(t_n)``, uniform spacing, the rate clipped to the cap);
with ``N`` workers, worker ``i`` takes the arrivals with ``n % N == i``, so together they follow the shape
exactly. Each arrival runs in its own greenlet, whatever the system's response times: a slow system means more
journeys in flight, never fewer arrivals. ``max_in_flight`` is only a safety bound for the generator's memory and
sockets (default :data:`DEFAULT_MAX_IN_FLIGHT`, generous: an idle greenlet costs a few kB); an arrival that finds it
reached waits in a backlog (its latency, timed from the intended start, includes that wait) and is counted as
*held back*. Every second the scheduler samples target rate, in-flight, backlog (arrivals due but not started)
and this process's CPU; held-back arrivals, a backlog or CPU above 80 % mean the generator did not keep up, and
the summary says so (with the count and share held back) instead of silently under-loading.

Imported only in Locust (gevent) processes.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable

import gevent
import gevent.event
import psutil

from haicap.loadtests import DEFAULT_MAX_IN_FLIGHT
from haicap.loadtests.recorder import Recorder
from haicap.loadtests.shapes import LoadShape, StageIndex, arrival_times

__all__ = ["ArrivalScheduler"]

CPU_LIMIT = 80.0


class ArrivalScheduler:
    def __init__(
        self,
        shape: LoadShape,
        run_one: Callable[[int, float, float], None],
        recorder: Recorder,
        *,
        start_epoch: float,
        max_rate: float,
        worker_index: int = 0,
        worker_count: int = 1,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self.shape = shape
        self.run_one = run_one  # (arrival number, intended start epoch, lag seconds)
        self.recorder = recorder
        self.start_epoch = start_epoch
        self.max_rate = max_rate
        self.stage_index = StageIndex(shape, max_rate)
        self.index, self.count = worker_index, max(worker_count, 1)
        self.cap = max(1, max_in_flight)
        self.in_flight = 0
        self.pending: collections.deque[tuple[int, float]] = collections.deque()
        self.cursor = 0.0  # intended time (s) of the arrival the loop is about to start
        self.backlog_max = 0
        self.cpu_max = 0.0
        self.dropped = 0
        self.started = 0  # arrivals this worker started
        self.held_back = 0  # arrivals that found max_in_flight reached and waited for a free slot
        self.unfinished = 0  # journeys still running when the grace window after the shape ended
        self.stopped = False
        self._wake = gevent.event.Event()  # set by stop(): the wait for the next arrival ends at once
        self._process = psutil.Process()
        self._greenlets: set[gevent.Greenlet] = set()

    def target_rate(self, t: float) -> float:
        return min(self.shape.rate(t), self.max_rate) if 0 <= t < self.shape.duration else 0.0

    def backlog(self) -> int:
        behind = time.time() - self.start_epoch - self.cursor
        late = int(behind * self.target_rate(self.cursor) / self.count) if behind > 0.05 and not self.stopped else 0
        return len(self.pending) + max(late, 0)

    def stop(self) -> None:
        self.stopped = True
        self._wake.set()

    def run(self, grace_s: float = 30.0) -> None:
        """Start arrivals until the shape ends (or :meth:`stop`), then wait ≤ ``grace_s`` for running journeys
        and kill the rest (counted in :attr:`unfinished`)."""
        self._process.cpu_percent(None)
        sampler = gevent.spawn(self._sample)
        try:
            for n, t in arrival_times(self.shape, self.max_rate):
                if self.stopped:
                    break
                if n % self.count != self.index:
                    continue
                self.cursor = t
                delay = self.start_epoch + t - time.time()
                if delay > 0:
                    self._wake.wait(delay)  # a sleep that stop() interrupts (the next arrival may be far off)
                if self.stopped:
                    break
                if self.in_flight < self.cap:
                    self._spawn(n, t)
                else:
                    self.held_back += 1
                    self.pending.append((n, t))
            self.cursor = self.shape.duration
            self.dropped += len(self.pending)
            self.pending.clear()
            if self._greenlets:
                gevent.joinall(list(self._greenlets), timeout=grace_s)
            # journeys still running now are the slowest of the run: they are killed (GreenletExit lets the
            # journey record itself as failed) and counted, never silently left out of the statistics
            self.unfinished = len(self._greenlets)
            gevent.killall(list(self._greenlets), block=True, timeout=5.0)
        finally:
            self.stopped = True
            gevent.sleep(0)
            sampler.kill(block=False)

    def _spawn(self, n: int, t: float) -> None:
        self.in_flight += 1
        greenlet = gevent.spawn(self._work, n, t)
        self._greenlets.add(greenlet)
        greenlet.link(self._greenlets.discard)

    def _work(self, n: int, t: float) -> None:
        try:
            while True:
                intended = self.start_epoch + t
                lag = max(0.0, time.time() - intended)
                self.started += 1
                self.recorder.arrival(lag * 1000, stage=self.stage_index.of_time(t))
                self.run_one(n, intended, lag)
                if not self.pending or self.stopped:
                    return
                n, t = self.pending.popleft()
        finally:
            self.in_flight -= 1

    def _sample(self) -> None:
        # psutil's cpu_percent(None) is the CPU share since its previous call: the first sample is taken one full
        # interval after the priming call in run(), never microseconds later (which reads as thousands of percent)
        next_at = time.time() + 1.0
        while not self.stopped:
            gevent.sleep(max(0.0, next_at - time.time()))
            if self.stopped:
                break
            now = time.time()
            cpu = self._process.cpu_percent(None)
            backlog = self.backlog()
            self.backlog_max = max(self.backlog_max, backlog)
            self.cpu_max = max(self.cpu_max, cpu)
            self.recorder.gauge(self.target_rate(now - self.start_epoch), self.in_flight, backlog, cpu)
            next_at += 1.0
