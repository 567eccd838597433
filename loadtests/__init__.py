"""Cutover-surge load tests with Locust: scenario users, load shapes, SLO gates, integrity after the surge."""
