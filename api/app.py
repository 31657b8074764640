"""The Litestar application factory.

Routes are built inside :func:`create_app` (a handler object keeps the settings of the
first app that served it). Handlers are thin: they call :mod:`forecasting.service` in
a worker thread (never blocking the event loop) and map the result to a schema.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Litestar, Request, get, post
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.params import JSONBody
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin

from api.errors import exception_handlers, problem
from api.schemas import (
    CrossValidationRequest,
    CrossValidationResponse,
    FallbackOut,
    ForecastRequest,
    ForecastResponse,
    HealthOut,
    ModelInfo,
    Problem,
)
from api.settings import Settings
from forecasting import __version__
from forecasting.backtest import cross_validation_metrics
from forecasting.data import validate_panel
from forecasting.errors import InvalidParameterError
from forecasting.service import Limits, check_limits, forecast

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
    limits = Limits(max_h=settings.max_h, max_series=settings.max_series, max_rows=settings.max_rows,
                    max_seconds=settings.max_seconds)

    @get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> HealthOut:
        """The process is up."""
        return HealthOut(status="ok", version=__version__)

    @get("/v1/models", tags=["models"], summary="Registered models", sync_to_thread=False)
    def list_models() -> list[ModelInfo]:
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
        model: Any = data.model if isinstance(data.model, str) else msgspec.structs.asdict(data.model)
        result = forecast(data.data, model=model, h=data.h, freq=data.freq, level=data.level,
                          fill_missing=data.fill_missing, fill_gaps=data.fill_gaps, X_future=data.X_future,
                          limits=limits)
        return ForecastResponse(
            model=result.spec.name, alias=result.alias, params=result.spec.params, freq=result.panel.freq, h=data.h,
            level=list(result.level), forecasts=result.forecasts.to_dicts(),
            fallbacks=[FallbackOut(**f.to_dict()) for f in result.fallbacks],
            filled=result.report.to_dict()["filled"], notes=result.notes)

    @post("/v1/cross_validation", tags=["forecast"], summary="Backtest models on rolling origins", status_code=200,
          sync_to_thread=True, before_request=_require_json, responses=problems)
    def cross_validation_route(data: JSONBody[CrossValidationRequest]) -> CrossValidationResponse:
        """Fit each model on the data before each of `n_windows` origins, forecast `h` steps, score every window."""
        models = [m if isinstance(m, str) else msgspec.structs.asdict(m) for m in data.models]
        panel = validate_panel(data.data, freq=data.freq)
        check_limits(panel, limits)
        if data.h > limits.max_h:
            raise InvalidParameterError(f"h must be at most {limits.max_h}, got {data.h}", field="h")
        scores = cross_validation_metrics(panel, models=models, h=data.h, n_windows=data.n_windows,
                                          step_size=data.step_size, level=data.level, season_length=data.season_length)
        return CrossValidationResponse(metrics=scores.to_dicts())

    return Litestar(
        route_handlers=[healthz, list_models, forecast_route, cross_validation_route],
        exception_handlers=exception_handlers(settings.max_body_bytes),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="forecasting", version=__version__,
            description="Time-series forecasting with a zoo of models. Long-format data: unique_id, ds, y.",
            path="/schema", render_plugins=[SwaggerRenderPlugin(), RedocRenderPlugin()]),
        logging_config=LoggingConfig(log_exceptions="debug", root={"level": "WARNING", "handlers": ["queue_listener"]},
                                     configure_root_logger=False),
        debug=False,
    )


async def _require_json(request: Request) -> Any:
    """415 for a body sent as a form or text (``curl -d`` without ``-H 'content-type: application/json'``)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media != "application/json" and not media.endswith("+json"):
        return problem(415, f"the body must be JSON sent with content-type application/json, got '{media}'",
                       field="content-type")
    return None


logging.getLogger("api").addHandler(logging.NullHandler())
