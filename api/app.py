"""The Litestar application factory.

Routes are built inside :func:`create_app` (a handler object keeps the settings of the
first app that served it). Handlers are thin: one call to :mod:`forecasting.service` (inline
data) or :class:`forecasting.service.registered.RegisteredModels` (registry, jobs) in a worker
thread (never blocking the event loop), and a schema mapping (:mod:`forecasting.api.mapping`).
Every route has a typed response schema.

The factory opens the model :class:`~forecasting.store.Store` (database and artifact
store from the settings) and a :class:`~forecasting.jobs.JobRunner`; on startup the runner
fails jobs a previous process left unfinished (``recover``), on shutdown it stops. Several
server processes may share the store (``forecasting serve --workers N``): the runner is
``shared``, so only the process holding its lock runs jobs and the others queue them in the
database (:mod:`forecasting.jobs`).

Access: with API keys configured (``FORECASTING_API_KEYS`` / ``FORECASTING_API_KEYS_FILE``)
every route but ``/healthz``, ``/readyz`` and ``/schema*`` needs ``Authorization: Bearer
<key>`` or ``X-API-Key: <key>`` and sees only its tenant's models and jobs; with none
configured every request is tenant ``default``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Annotated, Any, cast

import msgspec
from litestar import Litestar, MediaType, Request, Response, delete, get, post, put
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ValidationException
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Operation
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_202_ACCEPTED
from litestar.concurrency import sync_to_thread

from forecasting.api.auth import KeyGuard, tenant_of
from forecasting.api.docs import (OPEN, StrictStructSchemaPlugin, docs_assets, docs_plugins, document_settings, json_or_multipart_body,
                                  limits_description, security_schemes)
from forecasting.api.errors import exception_handlers, problem
from forecasting.api.logs import RequestLog
from forecasting.api.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from forecasting.api.metrics import Metrics
from forecasting.api.monitoring import AccuracyCollector, monitoring_router
from forecasting.service.monitoring import Monitoring, RetrainScheduler
from forecasting.service.core import preload
from forecasting.api.explain_routes import explain_routes
from forecasting.api.mapping import hierarchy_out
from forecasting.service.hierarchy import forecast_hierarchy
from forecasting.api.mapping import explain_out, forecast_out, job_out, model_detail_out, model_out, version_out
from forecasting.api.schemas import (
    H_BOUNDS,
    MAX_VERSION,
    AliasPath,
    NamePath,
    RefPath,
    AliasRequest,
    CrossValidationRequest,
    CrossValidationResponse,
    ExplainRequest,
    ExplainResponse,
    ForecastRequest,
    ForecastResponse,
    HealthOut,
    JobOut,
    ModelDetailOut,
    ModelInfo,
    ModelSummaryOut,
    PredictRequest,
    PredictResponse,
    Problem,
    ReadyOut,
    RegisteredForecastRequest,
    TrainRequest,
    VersionOut,
)
from forecasting.api.settings import Settings
from forecasting import __version__
from forecasting import service
from forecasting.data import at_caller_offset
from forecasting.errors import InvalidParameterError
from forecasting.jobs import JobRunner
from forecasting.store import Store, validate_name
from forecasting.store import JOB_STATES
from forecasting.service.registered import RegisteredModels
from forecasting.service.results import ForecastResult

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the API.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :meth:`Settings.from_env`.
    """
    settings = settings or Settings.from_env()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    limits = service.Limits(max_h=settings.max_h, max_series=settings.max_series, max_rows=settings.max_rows,
                    max_seconds=settings.max_seconds,
                    seconds_setting="FORECASTING_MAX_SECONDS")
    database_url, artifacts_dir = settings.registry_locations
    store = Store(database_url, artifacts_dir, cache_size=settings.model_cache_size,
                  busy_timeout_s=settings.db_busy_timeout_s)
    try:
        store.check_consistency()  # an emptied database beside a used artifact store: refuse to start
    except Exception:
        store.close()
        raise
    runner = JobRunner(store, max_workers=settings.job_workers, time_limit_s=settings.max_train_seconds,
                       max_unfinished_per_tenant=settings.max_jobs_per_tenant, grace_s=settings.shutdown_grace_s,
                       idle_s=settings.job_worker_idle_s, shared=True)  # one runner per store (issue 14: --workers)
    monitoring = Monitoring(store, limits, background=True)  # observations, accuracy, retraining, anomalies
    scheduler = RetrainScheduler(monitoring, leads=lambda: runner.is_leader,  # schedules run in the jobs leader
                                 runner=runner)  # each tick: a retrain job (time limit, cancel, progress)
    services = RegisteredModels(store=store, runner=runner, limits=limits, on_served=monitoring.record_served,
                                on_training=monitoring.stage_training, report_sections=monitoring.report_sections)
    metrics = Metrics(jobs_by_state=services.jobs_by_state, cache=services.cache_size)
    guard = KeyGuard(settings.api_keys, admin_tenants=settings.admin_tenants)
    metrics.registry.register(AccuracyCollector(monitoring.gauges))

    @get("/healthz", tags=["health"], summary="Liveness", opt={"public": True}, security=OPEN)
    async def healthz() -> HealthOut:
        """The process is up."""
        return HealthOut(status="ok", version=__version__)

    @get("/readyz", tags=["health"], summary="Readiness", opt={"public": True}, security=OPEN, sync_to_thread=True,
         responses={503: ResponseSpec(Problem, description="Database or artifact store unreachable.",
                                      media_type="application/problem+json")})
    def readyz(request: Request) -> Response[ReadyOut]:
        """The registry database answers, the artifact store is a writable folder and no loaded artifact failed
        its integrity check (files changed since loading are re-verified here). The failing artifacts' tenants,
        models and files, and the server's paths, are named only to an admin key (or with no keys configured)."""
        problems = services.readiness(detail=guard.is_operator(request))
        if problems:
            return cast("Response[ReadyOut]", problem(503, "; ".join(problems), type_="not-ready"))  # documented 503
        return Response(ReadyOut(status="ready"), status_code=200)

    @get("/metrics", tags=["health"], summary="Prometheus metrics", media_type=METRICS_CONTENT_TYPE,
         sync_to_thread=True, opt={"admin": True})
    def metrics_route() -> bytes:
        """Request counts and latencies per route and status, jobs by state, model cache size (text format).

        Every tenant's figures: with API keys configured, only keys of an admin tenant
        (`FORECASTING_ADMIN_TENANTS`, default `admin`) may read it; other keys get 403."""
        return metrics.exposition()

    @get("/v1/model-types", tags=["models"], summary="Model types of the zoo", sync_to_thread=False)
    def list_model_types() -> list[ModelInfo]:
        """Every model name accepted in `model`, with its hyperparameters."""
        from forecasting.models import REGISTRY

        return [ModelInfo(name=e.name, family=e.family, summary=e.summary, parameters=list(e.params.__struct_fields__))
                for e in REGISTRY.values()]

    problem_json = "application/problem+json"
    problems = {
        400: ResponseSpec(Problem, description="Malformed body: not JSON, wrong types, unknown fields (field named).",
                          media_type=problem_json),
        413: ResponseSpec(Problem, description="Body larger than the service limit.", media_type=problem_json),
        415: ResponseSpec(Problem, description="Body is not application/json.", media_type=problem_json),
        422: ResponseSpec(Problem, description="Data or parameters the model cannot use: bad h or level, unknown "
                                               "model, duplicates, gaps, nulls, series too short, time limit "
                                               "(detail names the series and rows).", media_type=problem_json),
    }

    @post("/v1/forecast", tags=["forecast"], summary="Forecast inline series", status_code=200, sync_to_thread=True,
          before_request=_require_json, responses=problems)
    def forecast_route(data: JSONBody[ForecastRequest]) -> ForecastResponse:
        """Fit the model on each series and forecast `h` steps, with intervals at each `level`.

        Errors are RFC 9457 problem details: 400 for malformed bodies, 422 for data or parameters the
        model cannot use (the `field` member names the request field, `detail` the series and rows).
        """
        if data.hierarchy is not None:  # every aggregate forecast too, then reconciled (issue 17)
            return hierarchy_out(forecast_hierarchy(
                data.data, hierarchy=data.hierarchy.nested, group=data.hierarchy.group, S=data.hierarchy.S,
                tags=data.hierarchy.tags, methods=data.hierarchy.methods, middle_level=data.hierarchy.middle_level,
                model=data.model, h=data.h, freq=data.freq, level=data.level, fill_missing=data.fill_missing,
                fill_gaps=data.fill_gaps, limits=limits))
        start = time.perf_counter()
        result = service.forecast(data.data, model=data.model, h=data.h, freq=data.freq, level=data.level,
                                  fill_missing=data.fill_missing, fill_gaps=data.fill_gaps,
                                  X_future=data.X_future, limits=limits, non_negative=data.non_negative)
        metrics.observe_forecast(model=result.spec.name, n_series=result.panel.n_series,
                                 n_rows=result.panel.frame.height, n_fallbacks=len(result.fallbacks),
                                 seconds=time.perf_counter() - start)
        return forecast_out(result)

    @post("/v1/cross_validation", tags=["forecast"], summary="Backtest models on rolling origins", status_code=200,
          sync_to_thread=True, before_request=_require_json, responses=problems)
    def cross_validation_route(data: JSONBody[CrossValidationRequest]) -> CrossValidationResponse:
        """Fit each model on the data before each of `n_windows` origins, forecast `h` steps, score every window."""
        result = service.cross_validate(data.data, models=data.models, h=data.h, n_windows=data.n_windows,
                                        step_size=data.step_size, level=data.level, freq=data.freq,
                                        season_length=data.season_length, limits=limits)
        return CrossValidationResponse(metrics=at_caller_offset(result.metrics.to_dicts(), result.panel, key="cutoff"))

    registered = _registry_routes(services, problems, metrics)

    def recover() -> None:
        if settings.preload:  # before this process accepts connections: no request waits for the imports
            took = preload()
            logging.getLogger("forecasting.api").info("preloaded in %.1f s", took,
                                                      extra={"event": "server.preloaded", "duration_s": took})
        metrics.start()
        runner.recover()
        scheduler.start()

    def close() -> None:
        metrics.stop()
        scheduler.shutdown()
        monitoring.close()
        runner.shutdown()
        store.close()

    app = RequestLog().install(Litestar(  # outermost: sees the router's 404/405 too
        route_handlers=[healthz, readyz, metrics_route, list_model_types, forecast_route, cross_validation_route,
                        docs_assets(),
                        *explain_routes(limits, problems, _require_json),
                        *registered, monitoring_router(monitoring, scheduler, problems, _require_json, runner=runner)],
        guards=[guard],
        dependencies={"tenant": Provide(_tenant, sync_to_thread=False)},
        middleware=[metrics.middleware],
        on_startup=[recover],
        on_shutdown=[close],
        exception_handlers=exception_handlers(settings.max_body_bytes),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="forecasting", version=__version__,
            description="Time-series forecasting with a zoo of models. Long-format data: unique_id, ds, y. "
                        + limits_description(settings),
            path="/schema", render_plugins=docs_plugins(), **security_schemes(bool(settings.api_keys))),
        logging_config=LoggingConfig(log_exceptions="debug", root={"level": "WARNING", "handlers": ["queue_listener"]},
                                     configure_root_logger=False),
        debug=False,
        plugins=[StrictStructSchemaPlugin()],
    ))
    document_settings(app, settings)  # the document's bounds are the operator's limits (FORECASTING_MAX_H...)
    return app


def _tenant(request: Request) -> str:
    return tenant_of(request)


def _registry_routes(services: RegisteredModels, problems: dict[int, ResponseSpec], metrics: Metrics) -> list[Any]:
    """The /v1/models (registered models), /v1/jobs routes."""
    problem_json = "application/problem+json"
    more = {**problems,
            404: ResponseSpec(Problem, description="No such model, version, alias or job for this tenant.",
                              media_type=problem_json),
            409: ResponseSpec(Problem, description="Conflict: an alias points at the version, the job has finished.",
                              media_type=problem_json)}
    return [_train_route(services, more), *_store_routes(services, more), *_use_routes(services, more, metrics),
            *_job_routes(services, more)]


def _train_route(services: RegisteredModels, more: dict[int, ResponseSpec]) -> Any:
    """POST /v1/models: a training job, from JSON or multipart."""

    @post("/v1/models", tags=["registry"], summary="Train and register a model (a job)", status_code=202,
          responses=more, operation_class=_TrainOperation)
    async def train(request: Request, tenant: NamedDependency[str]) -> Response[JobOut]:
        """Queue training of a new version of `name`; 202 with the job and its Location (/v1/jobs/{id}).

        JSON body (TrainRequest: name, model, data, kind, target, h, freq), or multipart/form-data with the
        same fields as form fields and the data as a CSV or Parquet file in `file` (read as data only).
        """
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media == "multipart/form-data":
            form = await request.form()
            fields = _form_fields(form)
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                msg = (
                    "multipart training needs the data as a file in form field 'file' "
                                            "(.csv or .parquet)"
                )
                raise InvalidParameterError(msg, field="file")
            content = await upload.read()
            job = await sync_to_thread(services.submit_upload, tenant, filename=upload.filename or "", content=content,
                                       **fields)
        else:
            if media and media != "application/json" and not media.endswith("+json"):
                return cast("Response[JobOut]", problem(  # documented 415
                    415, f"the body must be JSON (application/json) or multipart/form-data, got '{media}'",
                    field="content-type"))
            raw = await request.body()

            def submit() -> Any:  # decoding a large body is CPU work too: off the event loop
                body = _decode(raw, TrainRequest)
                return services.submit_training(tenant, name=body.name, model=body.model, data=body.data,
                                                kind=body.kind, target=body.target, h=body.h, freq=body.freq,
                                                fill_missing=body.fill_missing, fill_gaps=body.fill_gaps,
                                                hierarchy=body.hierarchy)

            job = await sync_to_thread(submit)
        return Response(job_out(job), status_code=HTTP_202_ACCEPTED, headers={"Location": f"/v1/jobs/{job.id}"})

    return train


def _store_routes(services: RegisteredModels, more: dict[int, ResponseSpec]) -> list[Any]:
    """Listing registered models, their versions and aliases."""

    @get("/v1/models", tags=["registry"], summary="The tenant's registered models", sync_to_thread=True)
    def list_registered(tenant: NamedDependency[str]) -> list[ModelSummaryOut]:
        """Each model name with its latest version, version count and aliases."""
        return [model_out(m) for m in services.list_models(tenant)]

    @get("/v1/models/{name:str}", tags=["registry"], summary="A model's versions and aliases", sync_to_thread=True,
         responses=more)
    def get_model(name: NamePath, tenant: NamedDependency[str]) -> ModelDetailOut:
        """Versions (spec, metrics, data fingerprint, artifact digest), aliases and the latest version."""
        return model_detail_out(*services.model_detail(tenant, name))

    @delete("/v1/models/{name:str}/versions/{version:str}", tags=["registry"], summary="Delete a version",
            status_code=204, sync_to_thread=True, responses=more)
    def delete_version(name: NamePath, version: Annotated[int, Parameter(ge=1, le=MAX_VERSION)], tenant: NamedDependency[str], force: FromQuery[bool] = False) -> None:
        """Delete a version and its artifact; 409 while an alias points at it (unless `force`, which drops the
        aliases too)."""
        services.delete_version(tenant, name, version, force=force)

    @put("/v1/models/{name:str}/aliases/{alias:str}", tags=["registry"], summary="Point an alias at a version",
         sync_to_thread=True, before_request=_require_json, responses=more)
    def set_alias(name: NamePath, alias: AliasPath, data: JSONBody[AliasRequest], tenant: NamedDependency[str]) -> VersionOut:
        """Create or move `name@alias` to `version`."""
        return version_out(services.set_alias(tenant, name, alias, version=data.version))

    @delete("/v1/models/{name:str}/aliases/{alias:str}", tags=["registry"], summary="Remove an alias",
            status_code=204, sync_to_thread=True, responses=more)
    def delete_alias(name: NamePath, alias: AliasPath, tenant: NamedDependency[str]) -> None:
        """Remove `name@alias` (the version stays)."""
        services.delete_alias(tenant, name, alias)

    return [list_registered, get_model, delete_version, set_alias, delete_alias]


def _use_routes(services: RegisteredModels, more: dict[int, ResponseSpec], metrics: Metrics) -> list[Any]:
    """Using a registered version: forecast, explain, report, ONNX export, predict."""

    @post("/v1/models/{ref:str}/forecast", tags=["registry"], summary="Forecast with a registered model",
          status_code=200, sync_to_thread=True, before_request=_require_json, responses=more)
    def forecast_registered(ref: RefPath, data: JSONBody[RegisteredForecastRequest], tenant: NamedDependency[str]) -> ForecastResponse:
        """`ref`: name (latest), name@3 or name@alias. Saved models predict from the stored model (history
        optional; its series too short for the model go to the spec's fallback); spec-only statistical
        versions refit on `history` (required). Same answer fields as POST /v1/forecast."""
        start = time.perf_counter()
        result = services.forecast(tenant, ref, h=data.h, level=data.level, history=data.history,
                                   X_future=data.X_future, fill_missing=data.fill_missing, fill_gaps=data.fill_gaps,
                                   hierarchy=data.hierarchy)
        fallbacks = len(result.fallbacks) if isinstance(result, ForecastResult) else 0
        metrics.observe_forecast(model=result.spec.name, n_series=result.panel.n_series,
                                 n_rows=result.panel.frame.height, n_fallbacks=fallbacks,
                                 seconds=time.perf_counter() - start)
        return forecast_out(result) if isinstance(result, ForecastResult) else hierarchy_out(result)  # issue 17

    @post("/v1/models/{ref:str}/explain", tags=["registry"], summary="SHAP values of a registered model",
          status_code=200, sync_to_thread=True, before_request=_require_json, responses=more)
    def explain_registered(ref: RefPath, data: JSONBody[ExplainRequest], tenant: NamedDependency[str]) -> ExplainResponse:
        """Forecast models: the forecast rows asked (`h`, optional `series`, `steps`); tabular: `rows`. Each row
        has its base value, output and top-`k` contributions; with the additivity error. Statistical models: the
        labelled decomposition of each step."""
        if services.kind(tenant, ref) == "tabular":
            if data.rows is None:
                msg = "rows is required to explain a tabular model"
                raise InvalidParameterError(msg, field="rows")
            return explain_out(services.explain_rows(tenant, ref, rows=data.rows), k=data.k)
        if data.h is None:
            msg = "h is required to explain a forecast model"
            raise InvalidParameterError(msg, field="h")
        result = services.explain(tenant, ref, h=data.h, history=data.history, X_future=data.X_future,
                                  series=data.series, steps=data.steps, approximate=data.approximate)
        return explain_out(result, k=data.k, h=data.h)

    @get("/v1/models/{ref:str}/report", tags=["registry"], summary="HTML report of a registered model",
         media_type=MediaType.HTML, sync_to_thread=True, responses=more)
    def report(ref: RefPath, h: Annotated[int, QueryParameter(schema_extra=H_BOUNDS["extra"])],
               tenant: NamedDependency[str]) -> str:
        """Self-contained HTML: forecasts from the stored history, model card, SHAP waterfalls."""
        return services.report(tenant, ref, h=h)

    @get("/v1/models/{ref:str}/onnx", tags=["registry"], summary="Download the model's ONNX export (zip)",
         media_type="application/zip", sync_to_thread=True, responses=more)
    def onnx(ref: RefPath, tenant: NamedDependency[str]) -> Response[bytes]:
        """Exported on first request (parity-checked against the native model), then kept beside the artifact and
        used to serve this version's forecasts. The zip holds the graphs, the feature pipeline, the state and
        `manifest.json` with every file's sha256. Statistical models have nothing to export: 422."""
        name, content = services.onnx_archive(tenant, ref)
        return Response(content=content, media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @post("/v1/models/{ref:str}/predict", tags=["registry"], summary="Predict rows with a tabular model",
          status_code=200, sync_to_thread=True, before_request=_require_json, responses=more)
    def predict(ref: RefPath, data: JSONBody[PredictRequest], tenant: NamedDependency[str]) -> PredictResponse:
        """One prediction per row, in order (classification: prediction and probability)."""
        info, predictions = services.predict(tenant, ref, rows=data.rows)
        return PredictResponse(model=info.ref, name=info.name, version=info.version,
                               predictions=predictions.to_dicts())

    return [forecast_registered, explain_registered, report, onnx, predict]


def _job_routes(services: RegisteredModels, more: dict[int, ResponseSpec]) -> list[Any]:
    """The tenant's training jobs."""

    @get("/v1/jobs", tags=["jobs"], summary="The tenant's jobs", sync_to_thread=True)
    def list_jobs(tenant: NamedDependency[str],
                  job_state: Annotated[str | None, QueryParameter(name="state", schema_extra={"enum": [*JOB_STATES]})]
                  = None,
                  limit: Annotated[int, QueryParameter(schema_extra={"minimum": 1, "maximum": 1000})] = 100
                  ) -> list[JobOut]:
        """Newest first, optionally only jobs in `state` (queued, running, succeeded, failed, cancelled); `limit`
        1..1000 (the document states both: a value outside them is a 422 naming the parameter)."""
        return [job_out(j) for j in services.list_jobs(tenant, state=job_state, limit=limit)]

    @get("/v1/jobs/{job_id:str}", tags=["jobs"], summary="A job's state", sync_to_thread=True, responses=more)
    def get_job(job_id: FromPath[str], tenant: NamedDependency[str]) -> JobOut:
        """State, progress, last step, timings, error (failed) and the registered version (succeeded)."""
        return job_out(services.get_job(tenant, job_id))

    @post("/v1/jobs/{job_id:str}/cancel", tags=["jobs"], summary="Cancel a job", status_code=200,
          sync_to_thread=True, responses=more)
    def cancel_job(job_id: FromPath[str], tenant: NamedDependency[str]) -> JobOut:
        """Cancel a queued or running job (a running one stops at its next step); 409 once finished."""
        return job_out(services.cancel_job(tenant, job_id))

    return [list_jobs, get_job, cancel_job]


_MULTIPART_TRAIN = {
    "type": "object", "required": ["name", "file"],
    "properties": {"name": {"type": "string"}, "file": {"type": "string", "format": "binary",
                                                        "description": "The data: a .csv or .parquet file."},
                   "model": {"type": "string", "description": "Registry name or a JSON spec object."},
                   "kind": {"type": "string", "enum": ["forecast", "tabular"]}, "target": {"type": "string"},
                   "h": {"type": "integer"}, "freq": {"type": "string"},
                   "fill_missing": {"type": "string", "enum": ["zero", "forward", "interpolate"]},
                   "fill_gaps": {"type": "boolean"}}}


@dataclass
class _TrainOperation(Operation):
    """POST /v1/models reads its body itself (JSON or multipart): document both forms."""

    def __post_init__(self) -> None:
        self.request_body = json_or_multipart_body(TrainRequest, _MULTIPART_TRAIN)


def _decode(body: bytes, type_: Any) -> Any:
    """Decode a JSON body into ``type_``; errors become the usual 400 (the field named)."""
    if not body:
        msg = "Validation failed"
        raise ValidationException(msg, extra=[{"key": "data", "message": "'data'"}])
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(" - at `$")
        key = path.rstrip("`").lstrip(".") or "data"
        msg = "Validation failed"
        raise ValidationException(msg, extra=[{"key": key, "message": message}]) from None
    except msgspec.DecodeError as exc:
        raise ValidationException(str(exc), extra=[{"key": "body", "message": str(exc)}]) from None


def _form_fields(form: Any) -> dict[str, Any]:
    """The training fields of a multipart form (all text): name, model (name or JSON spec), kind, target, h, freq,
    fill_missing, fill_gaps."""
    known = {"name", "model", "kind", "target", "h", "freq", "fill_missing", "fill_gaps", "file", "hierarchy"}
    unknown = sorted(set(form.keys()) - known)
    if unknown:
        msg = f"unknown form field '{unknown[0]}' (accepted: {', '.join(sorted(known))})"
        raise InvalidParameterError(msg, field=unknown[0])
    name = form.get("name")
    if not isinstance(name, str):
        msg = "form field 'name' is required"
        raise InvalidParameterError(msg, field="name")
    validate_name(name, field="name")
    model: Any = form.get("model") or "auto_ets"
    if isinstance(model, str) and model.strip().startswith("{"):
        try:
            model = msgspec.json.decode(model)
        except msgspec.DecodeError as exc:
            msg = f"form field 'model' is not valid JSON: {exc}"
            raise InvalidParameterError(msg, field="model") from None
    kind = form.get("kind") or "forecast"
    h: Any = form.get("h")
    if h not in (None, ""):
        try:
            h = int(h)
        except ValueError:
            msg = f"h must be an integer >= 1, got {h!r}"
            raise InvalidParameterError(msg, field="h") from None
    else:
        h = None
    freq: Any = form.get("freq") or None
    if isinstance(freq, str) and freq.isdigit():
        freq = int(freq)
    fill_gaps = str(form.get("fill_gaps") or "false").strip().lower()
    if fill_gaps not in ("true", "false", "1", "0"):
        msg = f"form field 'fill_gaps' must be true or false, got {fill_gaps!r}"
        raise InvalidParameterError(msg, field="fill_gaps")
    return {"name": name, "model": model, "kind": kind, "target": form.get("target") or None, "h": h, "freq": freq,
            "fill_missing": form.get("fill_missing") or None, "fill_gaps": fill_gaps in ("true", "1"),
            "hierarchy": form.get("hierarchy") or None}  # JSON text, read by the service (issue 17)


async def _require_json(request: Request) -> Any:
    """415 for a body sent as a form or text (``curl -d`` without ``-H 'content-type: application/json'``); then the
    body decoded strictly against the route's schema, so what the OpenAPI document says is what is accepted: a
    string is never coerced to a number or a boolean (Litestar decodes leniently), a 400 names the field."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        return problem(415, f"the body must be JSON sent with content-type application/json, got '{media}'",
                       field="content-type")
    body = request.route_handler.parsed_fn_signature.parameters.get("data")
    if body is not None and isinstance(body.annotation, type):
        raw = await request.body()
        if len(raw) > 256 * 1024:  # decoding a large body is CPU work: off the event loop
            await sync_to_thread(_decode, raw, body.annotation)
        else:
            _decode(raw, body.annotation)
    return None


logging.getLogger("forecasting.api").addHandler(logging.NullHandler())
