"""The use cases on data the caller gives: forecast, cross-validate, explain, report, export.

Each function validates its input once (the panel, ``h``, ``level``, the spec), resolves
the effective spec with the one resolver (:func:`resolve`), runs the models and returns
one typed result (:mod:`forecasting.service.results`). Routes and CLI commands are a
call to one of these plus a schema mapping; the registered-model use cases
(:mod:`forecasting.service.registered`) go through the same functions.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import polars as pl

from forecasting.data import (
    MAX_HORIZON,
    FillPolicy,
    Panel,
    normalize_freq,
    validate_h,
    validate_levels,
    validate_panel,
)
from forecasting.errors import CapabilityError, InsufficientHistoryError, InvalidInputError, InvalidParameterError
from forecasting.models.base import BaseForecaster, Fallback, Forecaster, arm, clip_non_negative, require
from forecasting.models.global_base import GlobalForecaster
from forecasting.models.local import ALL_CORES
from forecasting.models.registry import ModelSpec, make_model, parse_spec, resolve_spec
from forecasting.tabular import TabularModel
from forecasting.service.results import CrossValidationResult, ExplainResult, ForecastResult, Registered

__all__ = [
    "Limits",
    "explain_rows",
    "export",
    "report",
    "check_limits",
    "cross_validate",
    "explain",
    "forecast",
    "forecast_fitted",
    "preload",
    "resolve",
]

SpecLike = ModelSpec | str | dict[str, Any]


@dataclass(frozen=True)
class Limits:
    """Request-size limits (the API sets these from its settings; the CLI and the library have none by default).

    Attributes
    ----------
    max_h : int
        Largest horizon, steps.
    max_series : int
        Most series per request.
    max_rows : int
        Most input rows per request.
    max_seconds : float, optional
        Wall time allowed for fitting; past it the work stops with ``TimeLimitError``.
    seconds_setting : str
        The name a message gives ``max_seconds`` (the API: ``FORECASTING_MAX_SECONDS``).
    """

    max_h: int = MAX_HORIZON
    max_series: int = 1_000_000
    max_rows: int = 100_000_000
    max_seconds: float | None = None
    seconds_setting: str = "max_seconds"

    def arm(self, model: Any) -> None:
        """Give ``model`` the deadline ``max_seconds`` from now (none without one), naming the setting it comes
        from (:func:`forecasting.models.base.arm`)."""
        if self.max_seconds is not None:
            arm(model, deadline=time.time() + self.max_seconds,
                source=f"{self.seconds_setting}={self.max_seconds:g} s")


#: The largest forecast answer, in values (series x h x (1 + 2 x levels)), as a multiple of the row limit: the input's
#: rows bound the request, this the answer (10 series x h=1000 x 99 levels was 56 MB of JSON from a 1 KB request, so
#: the server's 1,000 series could have asked for 5.6 GB)
ANSWER_VALUES_PER_ROW = 10


def check_limits(panel: Panel, limits: Limits, *, h: int | None = None, n_levels: int = 0) -> None:
    """Refuse panels above the row or series limits, and (given ``h``) forecasts whose answer would hold more than
    :data:`ANSWER_VALUES_PER_ROW` x ``limits.max_rows`` values.

    Raises
    ------
    InvalidInputError, InvalidParameterError
        Naming the count and the limit (the answer's size: ``InvalidParameterError``, ``field`` ``"h"``).
    """
    check_table_limits(panel.frame, limits, n_series=panel.n_series)
    if h is not None:
        check_answer_size(panel.n_series, h, n_levels, limits)


def check_answer_size(n_series: int, h: int, n_levels: int, limits: Limits) -> None:
    """Refuse a forecast whose answer would hold more than :data:`ANSWER_VALUES_PER_ROW` x ``limits.max_rows``
    values (``n_series`` x ``h`` x (1 + 2 x ``n_levels``)).

    Raises
    ------
    InvalidParameterError
        Naming the product, the limit and what to lower (``field`` ``"h"``).
    """
    values, most = n_series * h * (1 + 2 * n_levels), ANSWER_VALUES_PER_ROW * limits.max_rows
    if values > most:
        msg = (f"the answer would hold {n_series:,} series x h={h} x {1 + 2 * n_levels} columns (the forecast "
               f"and {n_levels} levels' bounds) = {values:,} values; the limit is {most:,} ({ANSWER_VALUES_PER_ROW} "
               f"per row of the row limit): ask for a smaller h, fewer levels or fewer series per request")
        raise InvalidParameterError(msg, field="h", details={"values": values, "limit": most})


def check_table_limits(frame: pl.DataFrame, limits: Limits, *, n_series: int | None = None,
                       field: str = "data") -> None:
    """Refuse a raw table above the row limit, or above the series limit when ``n_series`` is given.

    Raises
    ------
    InvalidInputError
        Naming the count and the limit.
    """
    if frame.height > limits.max_rows:
        msg = f"{field} has {frame.height} rows; the limit is {limits.max_rows}"
        raise InvalidInputError(msg, field=field, details={"limit": limits.max_rows})
    if n_series is not None and n_series > limits.max_series:
        msg = f"{field} has {n_series} series; the limit is {limits.max_series}"
        raise InvalidInputError(msg, field=field, details={"limit": limits.max_series})


# --------------------------------------------------------------------------- the one resolver
def resolve(spec: SpecLike, panel: Panel, *, h: int | None = None,
            level: Sequence[float] | None = None) -> tuple[ModelSpec, list[str]]:
    """The effective spec for ``panel`` and the notes on what was derived (:func:`resolve_spec` on the panel).

    Parameters
    ----------
    spec : spec
        Registry name, JSON text, dict or :class:`ModelSpec`.
    panel : Panel
        The validated data: its ``freq`` gives the default ``season_length``, its series lengths
        the notes on series shorter than two seasons.
    h, level : optional
        The request's horizon and levels, for models that take them from the request (``auto``).

    Returns
    -------
    (ModelSpec, list of str)

    Raises
    ------
    UnknownModelError, InvalidParameterError
        As :func:`forecasting.models.registry.parse_spec`.
    """
    return resolve_spec(spec, freq=panel.freq, lengths=panel.lengths, h=h,
                        level=None if level is None else list(level))


# --------------------------------------------------------------------------- forecast
def forecast(
    data: Any,
    *,
    model: SpecLike | Forecaster = "auto",
    h: int,
    freq: str | int | None = None,
    level: Sequence[float] = (),
    fill_missing: FillPolicy | None = None,
    fill_gaps: bool = False,
    X_future: Any = None,
    n_jobs: int = ALL_CORES,
    limits: Limits = Limits(),
    fallback: str | None = None,
    non_negative: bool | None = None,
    field_name: str = "data",
) -> ForecastResult:
    """Validate ``data``, fit the model of ``model`` and forecast ``h`` steps per series.

    Parameters
    ----------
    data : frame, mapping of columns or list of row dicts
        Long format ``unique_id, ds, y`` (see :func:`forecasting.data.validate_panel`).
    model : spec or fitted model
        Registry name or spec (see :func:`forecasting.models.make_model`); or a fitted, saved or
        exported global model (from :func:`forecasting.loading.load`), which forecasts ``data``
        without retraining (:func:`forecast_fitted`).
    h : int
        Horizon in steps of ``freq``.
    freq : str or int, optional
        Inferred from ``ds`` when omitted.
    level : numbers in (0, 100)
        Prediction-interval levels, percent.
    fill_missing, fill_gaps
        As :func:`~forecasting.data.validate_panel`.
    X_future : frame, optional
        Future values of the exogenous columns (``unique_id, ds, <columns>`` for the ``h`` steps), for
        models that use them.
    n_jobs : int
        Worker processes for fitting the statistical models (default: one per usable CPU; a small
        request stays in this process).
    limits : Limits
        Size limits, checked before any model work.
    fallback : str, optional
        Model (registry name) for series too short for ``model`` or that it fails on; every such
        series is reported. Replaces a spec's own ``fallback``; for a fitted model, see
        :func:`forecast_fitted`.
    non_negative : bool, optional
        Clip forecasts and bounds at 0 (``None``: when every observed ``y`` is >= 0; ``False``:
        never); the count clipped is in the notes (:func:`forecasting.models.base.clip_non_negative`).
    field_name : str
        The request field ``data`` came in (``"history"`` for a registered version): errors name its columns.

    Returns
    -------
    ForecastResult

    Raises
    ------
    InvalidInputError, InvalidParameterError, UnknownModelError, InsufficientHistoryError,
    ModelFitError, CapabilityError, TimeLimitError
        With the series, rows and rule named.
    """
    if not isinstance(model, ModelSpec | str | dict):
        return forecast_fitted(model, data, h=h, freq=freq, level=level, fill_missing=fill_missing,
                               fill_gaps=fill_gaps, X_future=X_future, limits=limits, fallback=fallback,
                               non_negative=non_negative, field_name=field_name)
    h = validate_h(h, max_h=limits.max_h)
    levels = validate_levels(level)
    spec = parse_spec(model)
    if fallback is not None:
        spec = parse_spec({"name": spec.name, "params": spec.params, "fallback": fallback})
    panel = validate_panel(data, freq=freq, fill_missing=fill_missing, fill_gaps=fill_gaps, field_name=field_name)
    check_limits(panel, limits, h=h, n_levels=len(levels))
    spec, derived = resolve(spec, panel, h=h, level=levels)
    if X_future is not None and not panel.exog:  # refused before any training, not after it
        msg = (f"X_future was given but the data has no exogenous columns, so model '{spec.name}' would not use "
               f"it: drop X_future, or add the columns to the data")
        raise CapabilityError(msg, field="X_future")
    forecaster = make_model(spec, freq=panel.freq, n_jobs=n_jobs)
    _check_future_first(forecaster, panel, h, X_future)
    limits.arm(forecaster)
    forecaster.fit(panel)
    used = forecaster.get_params().get("season_length")
    if "season_length" in spec.params and used is not None and used != spec.params["season_length"]:
        # the model narrowed the season it was given (auto drops a season the history does not show twice):
        # the spec reported is what ran
        spec = ModelSpec(name=spec.name, params={**spec.params, "season_length": used}, fallback=spec.fallback)
    frame = forecaster.predict(h, level=levels, X_future=X_future)
    own = spec.params.get("non_negative")  # a model's own setting (auto's) when the request leaves it open
    frame, clipped = clip_non_negative(frame, forecaster.alias, panel, own if non_negative is None else non_negative)
    return ForecastResult(forecasts=frame, spec=spec, alias=forecaster.alias, panel=panel, h=h, level=levels,
                          fallbacks=list(forecaster.fallbacks_),
                          notes=[*panel.report.notes, *derived, *getattr(forecaster, "notes_", []),
                                 *([clipped] if clipped else [])],
                          selection=getattr(forecaster, "selection_", None))


def preload() -> float:
    """Import what a process's first forecast imports, by making one: a seasonal-naive forecast of 48 points.

    A server process's first inline forecast used to import the statistical stack (statsforecast, statsmodels,
    SciPy's statistics, numba: about 240 MiB, and 5 to 20 s on a 2-core machine at a load average of 14 to 18);
    every request reaching that process meanwhile waited behind the import lock (at ``--workers 2`` and 16
    clients, 7 requests waited 4.7 s each). The server calls this in each process's startup, before
    uvicorn accepts connections there (``FORECASTING_PRELOAD``; :func:`forecasting.api.app.create_app`), so no
    request waits for it: with ``--workers N`` the processes already up take the connections.

    Returns
    -------
    float
        Seconds it took (wall).
    """
    start = time.perf_counter()
    data = {"unique_id": ["preload"] * 48, "ds": list(range(1, 49)), "y": [float(i % 12) for i in range(48)]}
    forecast(data, model={"name": "seasonal_naive", "params": {"season_length": 12}}, h=2, level=[80])
    return time.perf_counter() - start


def forecast_fitted(
    model: Forecaster,
    data: Any = None,
    *,
    h: int,
    freq: str | int | None = None,
    level: Sequence[float] = (),
    fill_missing: FillPolicy | None = None,
    fill_gaps: bool = False,
    X_future: Any = None,
    limits: Limits = Limits(),
    fallback: str | None = None,
    registered: Registered | None = None,
    runtime: str | None = None,
    field_name: str = "data",
    non_negative: bool | None = None,
) -> ForecastResult:
    """Forecast with a fitted global model (saved folder, ONNX export or registered version), without retraining.

    Parameters
    ----------
    model : fitted global forecaster
        From :func:`forecasting.loading.load` or a fitted ``xgboost`` / ``nhits`` / ``tft``.
    data : frame, optional
        The series to forecast from (validated against the model's frequency); ``None``: the model's
        stored training history.
    fallback : str, optional
        Model (registry name) for series of ``data`` shorter than the model's input window: they are
        fitted and forecast by it and reported in ``fallbacks`` (the spec's ``fallback``). Without it
        such series are an ``InsufficientHistoryError``.
    registered : Registered, optional
        Recorded on the result.
    non_negative : bool, optional
        As :func:`forecast`.
    runtime : str, optional
        What computes the forecasts (default: what the model declares, ``"onnxruntime"`` for an export).
    Other parameters as :func:`forecast`.

    Raises
    ------
    InvalidInputError, InvalidParameterError, InsufficientHistoryError, CapabilityError
    """
    _require_fitted(model)
    h = validate_h(h, max_h=limits.max_h)
    levels = validate_levels(level)
    spec = model_spec(model)
    notes: list[str] = []
    if data is None:
        panel = stored_history(model)
        check_answer_size(panel.n_series, h, len(levels), limits)
        notes.append("forecast from the stored training history (no history given)")
    else:
        trained_freq = training_freq(model)
        if freq is not None and trained_freq is not None and normalize_freq(freq) != trained_freq:
            msg = f"freq '{freq}' differs from the frequency the model was trained on ('{trained_freq}')"
            raise InvalidParameterError(msg, field="freq")
        panel = validate_panel(data, freq=trained_freq if trained_freq is not None else freq,
                               fill_missing=fill_missing, fill_gaps=fill_gaps, field_name=field_name)
        check_limits(panel, limits, h=h, n_levels=len(levels))
        notes.extend(panel.report.notes)
        notes.extend(resolve(spec, panel)[1])  # what the resolver says of this data, as an inline forecast does
    runtime = runtime or model.runtime
    if runtime == "onnxruntime":
        notes.append("served by onnxruntime from the model's ONNX export")
    history = None if data is None else panel
    fallback = fallback if fallback is not None else spec.fallback
    try:
        frame = model.predict(h, history=history, X_future=X_future, level=levels)
        fallbacks: list[Fallback] = []
    except InsufficientHistoryError as exc:
        short = dict((exc.details or {}).get("series") or {})
        if history is None or fallback is None or not short:
            raise
        frame, fallbacks = _with_fallback(model, panel, short, fallback, h=h, levels=levels, X_future=X_future)
    notes.extend(getattr(model, "notes_", []))  # what the model derived at fit and how its bands are made, as inline
    if history is not None and isinstance(model, GlobalForecaster) and \
            (cold := model.cold_start_note(history, exclude={fb.unique_id for fb in fallbacks})):
        notes.append(cold)
    frame, clipped = clip_non_negative(frame, model.alias, panel, non_negative)
    if clipped:
        notes.append(clipped)
    return ForecastResult(forecasts=frame, spec=spec, alias=model.alias, panel=panel, h=h, level=levels,
                          fallbacks=fallbacks, notes=notes, registered=registered, runtime=runtime)


def _with_fallback(model: Forecaster, panel: Panel, short: dict[str, Any], fallback: str, *, h: int,
                   levels: tuple[float | int, ...], X_future: Any) -> tuple[pl.DataFrame, list[Fallback]]:
    """Forecast the long series with ``model`` and the ``short`` ones with a ``fallback`` fitted on them."""
    long_ids = [u for u in panel.ids if u not in short]
    parts = []
    if long_ids:
        future = None if X_future is None else _only(X_future, long_ids)
        parts.append(model.predict(h, history=panel.subset(long_ids), X_future=future, level=levels))
    fb_spec, _ = resolve(fallback, panel)
    fb = make_model(fb_spec, freq=panel.freq)
    fb.fit(panel.subset(list(short)))
    fb_frame = fb.predict(h, level=levels)
    parts.append(fb_frame.rename({c: c.replace(fb.alias, model.alias, 1) for c in fb_frame.columns
                                  if c.startswith(fb.alias)}))
    order = pl.DataFrame({"unique_id": panel.ids}).with_row_index("_order")
    frame = (pl.concat(parts, how="vertical_relaxed").join(order, on="unique_id", how="left")
             .sort("_order", "ds", maintain_order=True).drop("_order"))
    reasons = [Fallback(u, fb.name, f"{info.get('length')} observations, model '{model.name}' needs at least "
                                    f"{info.get('minimum')}") for u, info in short.items()]
    return frame, reasons


def _only(X_future: Any, ids: list[str]) -> pl.DataFrame:
    from forecasting.data import to_polars

    frame = X_future if isinstance(X_future, pl.DataFrame) else to_polars(X_future, field_name="X_future")
    if "unique_id" not in frame.columns:
        return frame
    return frame.filter(pl.col("unique_id").cast(pl.String).is_in(ids))


def _require_fitted(model: object) -> None:
    """Refuse what is neither a spec nor a fitted model (``None``, a number) with
    :func:`~forecasting.models.registry.parse_spec`'s typed error naming ``model``, not an ``AttributeError`` from
    deep inside; called where a door's non-spec branch starts."""
    if not callable(getattr(model, "predict", None)):
        parse_spec(model)  # type: ignore[arg-type]  # raises InvalidParameterError


def model_spec(model: Forecaster) -> ModelSpec:
    """The spec of a fitted model: its name, the parameters that differ from the defaults plus the derived
    ``season_length`` (what an inline spec reports as its effective parameters), and its fallback."""
    params = {k: v for k, v in model.get_params().items() if v is not None}
    if isinstance(model, BaseForecaster):
        defaults = msgspec.structs.asdict(model.params_type())
        params = {k: v for k, v in params.items() if k == "season_length" or v != defaults.get(k)}
    return ModelSpec(name=model.name, params=params, fallback=None if model.fallback is None else model.fallback.name)


def training_freq(model: Forecaster) -> str | int | None:
    """The frequency a fitted global model was trained on (``None`` when it does not say)."""
    if isinstance(model, GlobalForecaster) and model.is_fitted:
        return model.pipeline_.freq
    return None


def stored_history(model: Forecaster) -> Panel:
    """The training history a saved global model keeps (its forecasts start after it).

    Raises
    ------
    CapabilityError
        The model keeps none (statistical models registered as a spec refit on ``history``).
    """
    if not (isinstance(model, GlobalForecaster) and model.is_fitted):
        msg = f"model '{model.name}' keeps no training history: give the series to forecast from as history"
        raise CapabilityError(msg, field="history")
    return model.panel_


# --------------------------------------------------------------------------- cross-validate
def cross_validate(
    data: Any,
    *,
    models: Sequence[SpecLike],
    h: int,
    n_windows: int = 1,
    step_size: int | None = None,
    level: Sequence[float] = (),
    freq: str | int | None = None,
    season_length: int | None = None,
    n_jobs: int = ALL_CORES,
    limits: Limits = Limits(),
) -> CrossValidationResult:
    """Backtest models over ``n_windows`` rolling origins and score every window (M4 definitions).

    The splitter is :func:`forecasting.backtest.rolling_origins`, the one the benchmark harness uses.

    Parameters
    ----------
    models : sequence of specs
        One or more registry names or specs.
    h : int
        Steps forecast from each origin.
    n_windows : int
        Number of origins (>= 1).
    step_size : int, optional
        Steps between origins (default ``h``).
    season_length : int, optional
        MASE/MSIS scale lag; defaults to the frequency's season.
    Other parameters as :func:`forecast`.

    Returns
    -------
    CrossValidationResult

    Raises
    ------
    InvalidParameterError, InvalidInputError, InsufficientHistoryError, UnknownModelError
    """
    from forecasting.backtest import cross_validation_metrics

    h = validate_h(h, max_h=limits.max_h)
    levels = validate_levels(level)
    if not models:
        msg = "give at least one model"
        raise InvalidParameterError(msg, field="models")
    specs = [parse_spec(m) for m in models]
    panel = validate_panel(data, freq=freq)
    check_limits(panel, limits)
    scores = cross_validation_metrics(panel, models=specs, h=h, n_windows=n_windows, step_size=step_size,
                                      level=levels, season_length=season_length, n_jobs=n_jobs)
    return CrossValidationResult(metrics=scores, panel=panel, notes=list(panel.report.notes))


def _check_future_first(model: Any, panel: Panel, h: int, X_future: Any) -> None:
    """A tree model's ``X_future`` checked before it is fitted, by the checks its ``predict`` runs
    (:func:`forecasting.data.validate_future`, :func:`forecasting.models.global_base.check_exog_values`) on the
    future columns its feature spec will have (``feature_spec_for``): a bad ``X_future`` is refused before a fit
    of possibly minutes, not after it (an xgboost explain fitted 40 s first). Other models are checked at
    predict time.

    Raises
    ------
    InvalidInputError
        ``X_future`` absent, lacking columns, or not covering the horizon, naming the pairs and columns.
    """
    spec_for = getattr(model, "feature_spec_for", None)
    columns = list(spec_for(panel).future_exog) if spec_for is not None else []
    if columns and set(columns) <= set(panel.exog):  # a spec naming columns the data lacks: fit says so first
        from forecasting.data import validate_future
        from forecasting.models.global_base import check_exog_values

        check_exog_values(validate_future(X_future, panel, h, columns), columns, where="X_future")


# --------------------------------------------------------------------------- explain
def explain(
    data: Any,
    *,
    model: SpecLike | Forecaster | TabularModel,
    h: int | None,
    freq: str | int | None = None,
    X_future: Any = None,
    fill_missing: FillPolicy | None = None,
    fill_gaps: bool = False,
    n_jobs: int = -1,
    limits: Limits = Limits(),
    registered: Registered | None = None,
    approximate: bool = False,
) -> ExplainResult:
    """Explain each forecast step, in units of ``y``: one :class:`~forecasting.explanation.Explanation` shape.

    Trees: exact TreeSHAP (``approximate``: Saabas path attributions, named as such); networks:
    integrated gradients; both from one base value per model with the series' level, anchor and
    scale as named series terms. Statistical models: the labelled decomposition of each forecast
    step (:func:`forecasting.decomposition.forecast_components`, not SHAP).

    Parameters
    ----------
    data : frame
        The series to forecast from; a spec is fitted on them first, a fitted model forecasts them
        without retraining (``None``: its stored training history).
    model : spec or fitted model
    h : int
        Steps to forecast and explain.
    approximate : bool
        Trees: the fast approximate attributions (for dashboards); the method says so.

    Returns
    -------
    ExplainResult
        One explanation row per (series, step).

    Raises
    ------
    CapabilityError
        Models with neither attributions nor a decomposition (an ensemble), naming the model.
    """
    if isinstance(model, TabularModel):  # a table model explains the rows given (h does not apply)
        return explain_rows(model, data, limits=limits, registered=registered)
    h = validate_h(h, max_h=limits.max_h)
    notes: list[str] = []
    if isinstance(model, ModelSpec | str | dict):
        spec = parse_spec(model)
        panel = validate_panel(data, freq=freq, fill_missing=fill_missing, fill_gaps=fill_gaps)
        check_limits(panel, limits)
        spec, notes = resolve(spec, panel, h=h)
        spec, skipped = _without_calibration(spec)
        notes += skipped
        fitted = make_model(spec, freq=panel.freq, n_jobs=n_jobs)
        if not _decomposed(fitted):
            require(fitted, "explain")  # before fitting, not after
        _check_approximate(fitted, approximate)  # statistical models too
        _check_future_first(fitted, panel, h, X_future)
        limits.arm(fitted)
        fitted.fit(panel)
        explanation = _explain_fitted(fitted, h, None, X_future, approximate)
        return ExplainResult(explanation=explanation, model=spec.name, notes=[*panel.report.notes, *notes])
    _require_fitted(model)
    history = None
    if data is not None:
        trained_freq = training_freq(model)
        history = validate_panel(data, freq=trained_freq if trained_freq is not None else freq,
                                 fill_missing=fill_missing, fill_gaps=fill_gaps,
                                 field_name="history" if registered is not None else "data")
        check_limits(history, limits)
        notes.extend(history.report.notes)
    explanation = _explain_fitted(model, h, history, X_future, approximate)
    return ExplainResult(explanation=explanation, model=model.name, registered=registered, notes=notes)


def _without_calibration(spec: ModelSpec) -> tuple[ModelSpec, list[str]]:
    """A tree spec fitted to be explained skips the conformal calibration it leaves unset (an explanation has no
    intervals; the boosters are the same): AirPassengers' xgboost explained in 10 s instead of 84 s (2 loaded cores)."""
    from forecasting.models.registry import REGISTRY

    entry = REGISTRY.get(spec.name)
    fields = getattr(entry.params, "__struct_fields__", ()) if entry is not None else ()
    if "conformal_windows" not in fields or spec.params.get("conformal_windows") is not None:
        return spec, []
    return (msgspec.structs.replace(spec, params={**spec.params, "conformal_windows": 0}),
            ["fitted without conformal calibration (conformal_windows=0): an explanation has no intervals"])


def _decomposed(model: Any) -> bool:
    """A statistical (local) model without attributions: explained by its labelled decomposition."""
    from forecasting.models.base import capabilities_of

    caps = capabilities_of(model)
    return not caps.can_explain and not caps.is_global and getattr(model, "name", "") not in ("ensemble", "auto")


def _check_approximate(model: Any, approximate: bool) -> None:
    """``approximate`` only for models whose ``explain`` has that mode (trees); else a ``CapabilityError`` naming
    ``approximate``: networks (integrated gradients) and statistical models (their labelled decomposition, which
    is exact) are refused alike, never silently explained the other way."""
    if not approximate:
        return
    if _decomposed(model):
        msg = (f"model '{model.name}' has no approximate explanation (trees only; a statistical model is explained "
               f"by its exact labelled decomposition): drop approximate")
        raise CapabilityError(msg, field="approximate")
    if "approximate" not in inspect.signature(model.explain).parameters:
        msg = f"model '{model.name}' has no approximate explanation (trees only): drop approximate"
        raise CapabilityError(msg, field="approximate")


def _explain_fitted(model: Any, h: int, history: Panel | None, X_future: Any, approximate: bool) -> Any:
    """The explanation of a fitted model: its attributions, or its forecasts' labelled decomposition."""
    from forecasting.models.base import explain_forecast

    if approximate and not _decomposed(model):
        require(model, "explain")
    _check_approximate(model, approximate)
    if _decomposed(model):
        from forecasting.decomposition import forecast_components
        from forecasting.reports import season_length_of

        if history is None and "panel_" not in model.__dict__:  # a spec-only registered version keeps no history
            msg = (f"model '{model.name}' keeps no history to explain a forecast from (a spec-only statistical "
                   "version refits on the data): give history")
            raise CapabilityError(msg, field="history")
        panel = history if history is not None else model.panel_
        forecasts = model.predict(h, history=history)
        alias = next(c for c in forecasts.columns if c not in ("unique_id", "ds"))
        return forecast_components(model, list(panel.series_values()), forecasts, alias,
                                   season_length_of(model, panel))
    if approximate:
        return model.explain(h, history=history, X_future=X_future, approximate=True)
    return explain_forecast(model, h, history=history, X_future=X_future)


def explain_rows(model: Any, rows: Any, *, limits: Limits = Limits(),
                 registered: Registered | None = None) -> ExplainResult:
    """SHAP values of a tabular model (:class:`~forecasting.tabular.TabularModel`) for each row of ``rows``.

    Raises
    ------
    InvalidInputError
        ``rows`` missing, above the row limit, or lacking the model's feature columns.
    """
    from forecasting.data import to_polars

    if rows is None:
        msg = "rows is required to explain a tabular model"
        raise InvalidInputError(msg, field="rows")
    table = to_polars(rows, field_name="rows")
    check_table_limits(table, limits, field="rows")
    return ExplainResult(explanation=model.explain(table), model=str(model.get_params().get("algorithm")),
                         registered=registered)


# --------------------------------------------------------------------------- report and export
def report(
    data: Any,
    output: str | Path,
    *,
    model: SpecLike | Forecaster,
    h: int,
    level: Sequence[float] = (80, 95),
    series: Sequence[str] | None = None,
    freq: str | int | None = None,
    title: str | None = None,
    data_name: str | None = None,
    n_jobs: int = 1,
) -> Any:
    """Write the self-contained HTML report (model card, SHAP or decomposition, forecasts) of ``model`` on ``data``.

    A spec is fitted on ``data`` (its last ``h`` points also held out for the model card's validation
    metrics); a fitted or saved model forecasts ``data`` without retraining.

    Returns
    -------
    forecasting.reports.WrittenReport
        ``path``, ``sections``, ``notes``.

    Raises
    ------
    InvalidInputError, InvalidParameterError, CapabilityError
    """
    from forecasting.reports import write_report

    h = validate_h(h)
    chosen: SpecLike | Forecaster = model
    if isinstance(model, ModelSpec | str | dict):
        chosen = parse_spec(model)
        panel = validate_panel(data, freq=freq)
    else:
        _require_fitted(model)
        trained_freq = training_freq(model)
        panel = validate_panel(data, freq=trained_freq if trained_freq is not None else freq)
    return write_report(chosen, panel, output, h=h, level=tuple(level), series=series, title=title,
                        data_name=data_name, n_jobs=n_jobs)


def export(model: str | Path, output: str | Path, *, quantize: bool = False, sample: Any = None) -> tuple[Path,
                                                                                                           dict[str, Any]]:
    """Export a saved model folder to ONNX (graphs + pipeline + sha256 manifest), after a parity check.

    Parameters
    ----------
    model : path
        A folder written by a model's ``save`` (``xgboost``, ``nhits``, ``tft``, tabular).
    output : path
        The export folder (must not be inside the model folder, nor hold it).
    quantize : bool
        Networks: also write an int8 graph and report its accuracy change.
    sample : frame, optional
        Tabular models: real rows for the parity check.

    Returns
    -------
    (Path, dict)
        The export folder and its manifest (parity figures per graph, the quantised graph's accuracy).

    Raises
    ------
    InvalidParameterError
        ``output`` would overwrite the model folder.
    CapabilityError, ExportParityError, ArtifactIntegrityError
    """
    import json

    from forecasting.export import export_model
    from forecasting.loading import load

    from forecasting.artifacts import check_output

    src, dst = Path(model).resolve(), Path(output).resolve()
    if dst == src or src in dst.parents or dst in src.parents:
        msg = f"output {output} would overwrite the model folder {model}: export to another folder"
        raise InvalidParameterError(msg, field="output")
    check_output(output)
    path = export_model(load(model), output, quantize=quantize, sample=sample)
    manifest: dict[str, Any] = json.loads((path / "manifest.json").read_text())
    return path, manifest
