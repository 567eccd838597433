"""Cutover-surge load tests with Locust: scenario users, load shapes, SLO gates, integrity after the surge.

Only the defaults shared by the CLI, the run and the generator processes live here (importing this package
imports neither Locust nor gevent).
"""

#: journeys running at once, all workers together. A safety bound for the generator's memory and sockets, not a
#: throttle: an open model must not start fewer journeys because the system is slow, and an idle greenlet with
#: its connection costs a few kB, so the bound is generous. Arrivals that find it reached are counted as held back.
DEFAULT_MAX_IN_FLIGHT = 5000
#: the generator's watchdog: the load ends at most this long after the shape and the grace window, whatever its
#: workers do (hung, stopped, cut off); what they reported by then is judged, marked "stopped at the time bound"
WATCHDOG_SLACK_S = 10.0
