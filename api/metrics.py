"""Prometheus metrics of one app (its own ``CollectorRegistry``, so several apps can live in one process).

* ``forecasting_http_requests_total{method, route, status}`` -- counter;
* ``forecasting_http_request_duration_seconds{method, route}`` -- histogram;
* ``forecasting_jobs{state}`` -- training jobs in each state (every tenant), read at scrape time;
* ``forecasting_model_cache_size`` / ``forecasting_model_cache_capacity`` -- fitted models kept loaded.

* the default process collectors (``process_*``: CPU seconds, resident memory, open files;
  ``python_gc_*``, ``python_info``);
* per model (``model`` the registry name, ``family`` its family): ``forecasting_forecasts_total``,
  ``forecasting_forecast_series_total``, ``forecasting_forecast_rows_total`` (input rows),
  ``forecasting_forecast_fallbacks_total`` (series answered by the fallback model) and
  ``forecasting_forecast_duration_seconds{family}`` (histogram);
* ``forecasting_job_duration_seconds{kind, state}`` -- training jobs from start to end (histogram),
  read from the job runner's ``job.finished`` log events.

``route`` is the route's path template (``/v1/models/{ref}/forecast``), never the raw
path, so label cardinality stays bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import logging

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
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


def _family(model: str) -> str:
    from forecasting.models import REGISTRY

    entry = REGISTRY.get(model)
    return entry.family if entry is not None else "unknown"


class _JobEvents(logging.Handler):
    """Observes ``job.finished`` events (``extra={"event", "kind", "state", "duration_s"}``) into a histogram."""

    def __init__(self, histogram: Histogram) -> None:
        super().__init__(level=logging.DEBUG)
        self.histogram = histogram

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "event", None) == "job.finished" and getattr(record, "duration_s", None) is not None:
            self.histogram.labels(str(getattr(record, "kind", "")), str(getattr(record, "state", ""))).observe(
                float(getattr(record, "duration_s", 0.0)))


class Metrics:
    """The app's metrics and the ASGI middleware that records each request."""

    def __init__(self, *, jobs_by_state: Callable[[], dict[str, int]], cache: Callable[[], tuple[int, int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("forecasting_http_requests", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("forecasting_http_request_duration_seconds", "HTTP request latency, seconds.",
                                 ["method", "route"], buckets=_BUCKETS, registry=self.registry)
        self.registry.register(_StateCollector(jobs_by_state, cache))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        labels = ["model", "family"]
        self.forecasts = Counter("forecasting_forecasts", "Forecast requests answered, per model.", labels,
                                 registry=self.registry)
        self.series = Counter("forecasting_forecast_series", "Series forecast, per model.", labels,
                              registry=self.registry)
        self.rows = Counter("forecasting_forecast_rows", "Input rows forecast from, per model.", labels,
                            registry=self.registry)
        self.fallbacks = Counter("forecasting_forecast_fallbacks", "Series answered by the fallback model.", labels,
                                 registry=self.registry)
        self.forecast_latency = Histogram("forecasting_forecast_duration_seconds",
                                          "Forecast computation (validation, fit, predict), seconds, per model family.",
                                          ["family"], buckets=_BUCKETS, registry=self.registry)
        self.job_duration = Histogram("forecasting_job_duration_seconds", "Training jobs, start to end, seconds.",
                                      ["kind", "state"], buckets=(*_BUCKETS, 300.0, 900.0, 3600.0),
                                      registry=self.registry)
        self._job_events = _JobEvents(self.job_duration)

    def observe_forecast(self, *, model: str, n_series: int, n_rows: int, n_fallbacks: int, seconds: float) -> None:
        """Count one answered forecast request of ``model`` (a registry name)."""
        family = _family(model)
        self.forecasts.labels(model, family).inc()
        self.series.labels(model, family).inc(n_series)
        self.rows.labels(model, family).inc(n_rows)
        if n_fallbacks:
            self.fallbacks.labels(model, family).inc(n_fallbacks)
        self.forecast_latency.labels(family).observe(seconds)

    def start(self) -> None:
        """Listen to the job runner's events (app startup)."""
        jobs_log = logging.getLogger("forecasting.jobs")
        if jobs_log.getEffectiveLevel() > logging.INFO:  # the events are INFO records
            jobs_log.setLevel(logging.INFO)
        jobs_log.addHandler(self._job_events)

    def stop(self) -> None:
        """Stop listening (app shutdown)."""
        logging.getLogger("forecasting.jobs").removeHandler(self._job_events)

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
