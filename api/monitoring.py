"""The monitoring routes: observations, accuracy, retraining and decisions of registered models, and anomalies.

Each handler is one call to :class:`forecasting.service.monitoring.Monitoring` (or
:func:`forecasting.service.monitoring.detect_anomalies`) in a worker thread, and a mapping to the schemas
below. :func:`monitoring_router` builds them for one app (registered in :func:`forecasting.api.app.create_app`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import polars as pl
from litestar import Request, Response, Router, get, post, put
from litestar.concurrency import sync_to_thread
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Operation
from litestar.di import NamedDependency
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from litestar.params import FromQuery, JSONBody, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED

from forecasting.api.docs import json_or_multipart_body
from forecasting.api.mapping import job_out
from forecasting.api.schemas import DATA_BOUNDS, H_BOUNDS, Columns, JobOut, NamePath, Rows
from forecasting.api.settings import Settings
from forecasting.data import at_caller_offset
from forecasting.errors import InvalidParameterError
from forecasting.jobs import JobRunner
from forecasting.service.monitoring import (
    DEFAULT_ANOMALY_LEVEL,
    AnomalyResult,
    Monitoring,
    RetrainPolicy,
    RetrainScheduler,
    detect_anomalies,
)
from forecasting.service.tables import read_upload
from forecasting.store.monitoring import DecisionInfo

__all__ = ["AccuracyCollector", "monitoring_router"]


class AccuracyCollector(Collector):
    """Prometheus gauges of the realised accuracy of served forecasts, read at scrape time from each model's
    summary (:meth:`Monitoring.gauges`): ``forecasting_model_accuracy{tenant, model, version, metric}`` with
    ``metric`` one of ``smape``, ``mase``, ``coverage_<L>``, ``points``, ``series``."""

    def __init__(self, gauges: Callable[[], list[tuple[str, str, str, str, float]]]) -> None:
        self.gauges = gauges

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("forecasting_model_accuracy", "Realised accuracy of served forecasts (sMAPE "
                                   "0-200, MASE, coverage per level, points and series scored).",
                                   labels=["tenant", "model", "version", "metric"])
        try:
            rows = self.gauges()
        except Exception:  # noqa: BLE001 - a scrape must not fail because a summary is unreadable
            rows = []
        for tenant, model, version, metric, value in rows:
            family.add_metric([tenant, model, version, metric], value)
        yield family


class ObservationsRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Actuals of a registered model's series."""

    data: Annotated[Rows | Columns, msgspec.Meta(
        description="unique_id, ds, y (rows or columns), at the model's frequency, after the stored points.",
        extra_json_schema={"minItems": 1, "maxItems": Settings.max_rows})]  # msgspec's schema: json_or_multipart
    replace: Annotated[bool, msgspec.Meta(description="Overwrite points already stored instead of refusing "
                                                      "the batch.")] = False


class GapOut(msgspec.Struct):
    """Missing timestamps of one series (the points sent are stored all the same)."""

    unique_id: str
    missing: int
    examples: list[str]


class ObservationsOut(msgspec.Struct):
    """What was stored."""

    model: str
    rows: int
    replaced: int
    series: list[str]
    gaps: list[GapOut]
    retrain: Annotated[str | None, msgspec.Meta(description="The retrain trigger fired (observations, drift).")]
    notes: list[str]


class ObservationsTable(msgspec.Struct):
    """Stored observations (columns)."""

    model: str
    rows: int
    data: dict[str, list[Any]]


class AccuracyOut(msgspec.Struct):
    """Realised accuracy of served forecasts (M4 sMAPE 0-200, MASE, coverage per level in [0, 1])."""

    model: str
    by: str
    levels: list[float]
    rows: list[dict[str, Any]]


class RetrainPolicyBody(RetrainPolicy, forbid_unknown_fields=True, omit_defaults=True):
    """The body of ``PUT /v1/models/{name}/retraining``: a :class:`RetrainPolicy` whose ``h`` documents its bounds
    (at most the server's ``FORECASTING_MAX_H``: :func:`forecasting.api.docs.document_settings` writes the live
    value; :meth:`RetrainPolicy.check` enforces it with a 422 naming ``h``)."""

    h: Annotated[int | None, msgspec.Meta(description="The hold-out window (default: the champion's validated "
                                                      "horizon).", extra_json_schema=H_BOUNDS)] = None


class PolicyOut(msgspec.Struct):
    """A model's retraining policy."""

    model: str
    policy: RetrainPolicy | None
    next_run: datetime | None
    new_observations: int


class AnomalyRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Series to scan for anomalies."""

    data: Annotated[Rows | Columns, msgspec.Meta(description="unique_id, ds, y (rows or columns).",
                                                  extra_json_schema=DATA_BOUNDS)]
    model: Annotated[str | dict[str, Any], msgspec.Meta(
        description="A model with in-sample fitted values (statistical models).")] = "mstl"
    level: Annotated[float, msgspec.Meta(description="Interval level in percent, in (0, 100).")] = \
        DEFAULT_ANOMALY_LEVEL
    method: Literal["conformal", "normal"] = "normal"
    freq: str | int | None = None


class AnomaliesOut(msgspec.Struct):
    """Points outside their interval (``score`` > 1), highest score first; ``points`` scored in all."""

    model: str
    level: float
    method: str
    points: int
    anomalies: list[dict[str, Any]]
    notes: list[str]


_MULTIPART_OBSERVATIONS = {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": "unique_id, ds, y: .csv or .parquet"},
                   "replace": {"type": "boolean"}}}


@dataclass
class _ObservationsOperation(Operation):
    """The observations route reads its body itself (JSON or multipart): document both forms."""

    def __post_init__(self) -> None:
        self.request_body = json_or_multipart_body(ObservationsRequest, _MULTIPART_OBSERVATIONS)


def _plain(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row.items()} for row in frame.to_dicts()]


def _anomalies_out(result: AnomalyResult) -> AnomaliesOut:
    rows = _rows(result.anomalies)
    if result.panel is not None:  # inline data at a fixed UTC offset: ds at that offset, as /v1/forecast answers
        rows = at_caller_offset(rows, result.panel)
    return AnomaliesOut(model=result.model, level=result.level, method=result.method, points=result.points.height,
                        anomalies=rows, notes=list(result.notes))


def monitoring_router(monitoring: Monitoring, scheduler: RetrainScheduler | None,
                      responses: dict[int, ResponseSpec], strict_json: Callable[..., Any] | None = None, *,
                      runner: JobRunner) -> Router:
    """The /v1/models/{name}/observations, accuracy, retraining, retrain, decisions, anomalies and /v1/anomalies
    routes of one app (``responses``: the app's documented problems; 404 and 409 are added; ``strict_json``: the
    app's ``before_request`` decoding a JSON body strictly, run before the retraining policy and the anomalies'
    body are read; ``runner``: where ``POST .../retrain`` queues its job)."""
    problem_json = "application/problem+json"
    from forecasting.api.schemas import Problem

    responses = {**responses,
                 404: ResponseSpec(Problem, description="No such model for this tenant.", media_type=problem_json),
                 409: ResponseSpec(Problem, description="A retrain of the model is already queued or running.",
                                   media_type=problem_json)}
    too_many = ResponseSpec(Problem, description="The tenant's cap of unfinished jobs (Retry-After).",
                            media_type=problem_json)

    @post("/models/{name:str}/observations", tags=["monitoring"], summary="Append observations (actuals)",
          status_code=200, responses=responses, operation_class=_ObservationsOperation)
    async def observe(request: Request, name: NamePath, tenant: NamedDependency[str]) -> ObservationsOut:
        """JSON (`data`, `replace`) or multipart/form-data (a CSV or Parquet `file`, `replace`). The batch is
        validated whole (unknown series, points already stored, timestamps before the stored ones, NaN, another
        frequency: 422 naming the rows, nothing stored); gaps are reported. Served forecasts are scored against
        the new actuals; a retraining trigger may fire."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media == "multipart/form-data":
            form = await request.form()
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                msg = "multipart observations need the data as a file in form field 'file' (.csv or .parquet)"
                raise InvalidParameterError(msg, field="file")
            content = await upload.read()
            replace_text = str(form.get("replace") or "false").strip().lower()
            if replace_text not in ("true", "false", "1", "0"):  # as fill_gaps of a training upload
                msg = f"form field 'replace' must be true or false, got {replace_text!r}"
                raise InvalidParameterError(msg, field="replace")
            replace = replace_text in ("true", "1")
            data: Any = await sync_to_thread(read_upload, upload.filename or "", content)
        else:
            from forecasting.api.app import _decode  # the app's JSON decoding: errors are the usual 400

            body = _decode(await request.body(), ObservationsRequest)
            data, replace = body.data, body.replace
        result = await sync_to_thread(monitoring.observe, tenant, name, data, replace=replace)
        return ObservationsOut(model=result.model, rows=result.rows, replaced=result.replaced, series=result.series,
                               gaps=[GapOut(**g) for g in result.gaps], retrain=result.retrain, notes=result.notes)

    @get("/models/{name:str}/observations", tags=["monitoring"], summary="Stored observations",
         sync_to_thread=True, responses=responses)
    def observations(name: NamePath, tenant: NamedDependency[str],
                     series: Annotated[list[str] | None, QueryParameter()] = None,
                     start: FromQuery[str | None] = None, end: FromQuery[str | None] = None) -> ObservationsTable:
        """The model's observations (its training data included), optionally for some `series` (repeat the
        parameter) between `start` and `end` (inclusive; ISO 8601 or integer steps)."""
        frame = monitoring.observations(tenant, name, series=series, start=start, end=end)
        return ObservationsTable(model=name, rows=frame.height, data={c: frame[c].to_list() for c in frame.columns})

    @get("/models/{name:str}/accuracy", tags=["monitoring"], summary="Realised accuracy of served forecasts",
         sync_to_thread=True, responses=responses)
    def accuracy(name: NamePath, tenant: NamedDependency[str], by: FromQuery[str] = "version", version: FromQuery[int | None] = None,
                 start: FromQuery[str | None] = None, end: FromQuery[str | None] = None) -> AccuracyOut:
        """sMAPE, MASE and coverage per level of the forecasts served whose actuals arrived, by `version`, `step`
        (horizon step) or `series`, optionally for one `version` and points between `start` and `end`."""
        result = monitoring.accuracy(tenant, name, by=by, version=version, start=start, end=end)  # type: ignore[arg-type]
        return AccuracyOut(model=name, by=result.by, levels=result.levels, rows=_rows(result.rows))

    def policy_out(tenant: str, name: str) -> PolicyOut:
        raw, count = monitoring.parts.get_policy(name, tenant)
        policy = monitoring.policy(tenant, name) if raw else None
        return PolicyOut(model=name, policy=policy, new_observations=count,
                         next_run=None if scheduler is None else scheduler.next_run(tenant, name))

    @put("/models/{name:str}/retraining", tags=["monitoring"], summary="Set the retraining policy",
         sync_to_thread=True, before_request=strict_json, responses=responses)
    def set_policy(name: NamePath, data: JSONBody[RetrainPolicyBody], tenant: NamedDependency[str]) -> PolicyOut:
        """Schedule (`cron` or `interval_s`), `every_n_observations`, `drift_factor` over `drift_window`, the
        challenger's `model`, `h`, `metric` and `margin`. Replaces the previous policy."""
        policy = monitoring.set_policy(tenant, name, data)
        if scheduler is not None:
            scheduler.apply(tenant, name, policy)
        return policy_out(tenant, name)

    @get("/models/{name:str}/retraining", tags=["monitoring"], summary="The retraining policy",
         sync_to_thread=True, responses=responses)
    def get_policy(name: NamePath, tenant: NamedDependency[str]) -> PolicyOut:
        """The policy, the next scheduled run and the observations since the last retrain."""
        return policy_out(tenant, name)

    @post("/models/{name:str}/retrain", tags=["monitoring"], summary="Retrain now (a job: champion vs challenger)",
          status_code=202, sync_to_thread=True, responses={**responses, 429: too_many})
    def retrain(name: NamePath, tenant: NamedDependency[str]) -> Response[JobOut]:
        """Queue a retrain job (kind `retrain`, as a scheduled tick's); 202 with the job and its Location
        (/v1/jobs/{id}). The job trains a challenger on all the data, scores it and the champion on the latest
        hold-out window, and moves `production` only when the challenger wins by the margin; its message is the
        decision (`GET .../decisions`, trigger `manual`), its result the challenger's version. 404 no such model,
        422 nothing to retrain on or a hierarchy, 409 while a retrain job of the model is queued or running,
        429 at the tenant's job cap."""
        job = runner.get_job(monitoring.queue_retrain(tenant, name, runner), tenant)
        return Response(job_out(job), status_code=HTTP_202_ACCEPTED, headers={"Location": f"/v1/jobs/{job.id}"})

    @get("/models/{name:str}/decisions", tags=["monitoring"], summary="Retraining decisions",
         sync_to_thread=True, responses=responses)
    def decisions(name: NamePath, tenant: NamedDependency[str], limit: FromQuery[int] = 100) -> list[DecisionInfo]:
        """Newest first, each with both models' scores and whether `production` moved."""
        return monitoring.decisions(tenant, name, limit=limit)

    @get("/models/{name:str}/anomalies", tags=["monitoring"], summary="Observations outside served intervals",
         sync_to_thread=True, responses=responses)
    def observation_anomalies(name: NamePath, tenant: NamedDependency[str], level: FromQuery[float] = 95.0,
                              start: FromQuery[str | None] = None, end: FromQuery[str | None] = None) -> AnomaliesOut:
        """Observations outside the `level` interval of the forecast served for them (served with that level)."""
        return _anomalies_out(monitoring.observation_anomalies(tenant, name, level=level, start=start, end=end))

    @post("/anomalies", tags=["monitoring"], summary="Anomalies in inline series", status_code=200,
          sync_to_thread=True, before_request=strict_json, responses=responses)
    def anomalies(data: JSONBody[AnomalyRequest]) -> AnomaliesOut:
        """Points outside the model's in-sample interval at `level` (conformal or normal), with a score: the
        distance from the fitted value in half-widths (above 1: outside)."""
        return _anomalies_out(detect_anomalies(data.data, model=data.model, level=data.level, method=data.method,
                                               freq=data.freq, limits=monitoring.limits))

    return Router(path="/v1", route_handlers=[observe, observations, accuracy, set_policy, get_policy, retrain,
                                               decisions, observation_anomalies, anomalies])
