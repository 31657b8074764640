"""Prometheus metrics of one app (its own ``CollectorRegistry``, so several apps can live in one process).

* ``forecasting_http_requests_total{method, route, status}`` -- counter;
* ``forecasting_http_request_duration_seconds{method, route}`` -- histogram;
* ``forecasting_jobs{state}`` -- training jobs in each state (every tenant), read at scrape time;
* ``forecasting_model_cache_size`` / ``forecasting_model_cache_capacity`` -- fitted models kept loaded.

``route`` is the route's path template (``/v1/models/{ref}/forecast``), never the raw
path, so label cardinality stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _StateCollector(Collector):
    def __init__(self, jobs_by_state: Callable[[], dict[str, int]], cache: Callable[[], tuple[int, int]]) -> None:
        self.jobs_by_state = jobs_by_state
        self.cache = cache

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("forecasting_jobs", "Training jobs by state (every tenant).", labels=["state"])
        try:
            counts = self.jobs_by_state()
        except Exception:  # noqa: BLE001 - a scrape must not fail because the database is down (see /readyz)
            counts = {}
        for state, n in sorted(counts.items()):
            jobs.add_metric([state], n)
        yield jobs
        size, capacity = self.cache()
        yield GaugeMetricFamily("forecasting_model_cache_size", "Fitted models kept loaded.", value=size)
        yield GaugeMetricFamily("forecasting_model_cache_capacity", "Most fitted models kept loaded.",
                                value=capacity)


class Metrics:
    """The app's metrics and the ASGI middleware that records each request."""

    def __init__(self, *, jobs_by_state: Callable[[], dict[str, int]], cache: Callable[[], tuple[int, int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("forecasting_http_requests", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("forecasting_http_request_duration_seconds", "HTTP request latency, seconds.",
                                 ["method", "route"], buckets=_BUCKETS, registry=self.registry)
        self.registry.register(_StateCollector(jobs_by_state, cache))

    def exposition(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry)

    def middleware(self, app: Any) -> Any:
        """ASGI middleware factory (Litestar ``middleware=[metrics.middleware]``)."""

        async def record(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            status = {"code": 500}

            async def send_wrapper(message: Any) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            start = time.perf_counter()
            try:
                await app(scope, receive, send_wrapper)
            finally:
                route = scope.get("path_template") or "unmatched"
                method = scope.get("method", "")
                self.requests.labels(method, route, str(status["code"])).inc()
                self.latency.labels(method, route).observe(time.perf_counter() - start)

        return record
