"""The forecasting use case shared by the CLI and the API.

``forecast(data, model=..., h=...)`` validates the panel, builds the model from its
spec, fits, predicts and returns the forecasts together with everything that was
decided on the caller's behalf (filled rows, fallbacks, default season length), so
that nothing happens silently. Routes and CLI commands are thin wrappers over it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from forecasting.data import MAX_HORIZON, FillPolicy, Panel, ValidationReport, validate_h, validate_levels, validate_panel
from forecasting.errors import CapabilityError, InvalidInputError, InvalidParameterError
from forecasting.models.base import Fallback
from forecasting.models.registry import ModelSpec, make_model, parse_spec

__all__ = ["ForecastResult", "Limits", "check_limits", "forecast", "read_table", "write_table"]


@dataclass(frozen=True)
class Limits:
    """Request-size limits (the API sets these from its settings; the CLI has none by default).

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
    """

    max_h: int = MAX_HORIZON
    max_series: int = 1_000_000
    max_rows: int = 100_000_000
    max_seconds: float | None = None


@dataclass(frozen=True)
class ForecastResult:
    """Forecasts and what was decided on the caller's behalf.

    Attributes
    ----------
    forecasts : pl.DataFrame
        ``unique_id, ds, <alias>[, <alias>-lo-<L>, <alias>-hi-<L>]``, ``h`` rows per series.
    spec : ModelSpec
        The spec as resolved (``season_length`` filled in when derived from ``freq``).
    alias : str
        The forecast column name.
    panel : Panel
        The validated input.
    fallbacks : list of Fallback
        Series forecast by the fallback model, and why.
    notes : list of str
        Everything else the caller should know (default season length, conversions...).
    """

    forecasts: pl.DataFrame
    spec: ModelSpec
    alias: str
    panel: Panel
    level: tuple[float | int, ...]
    fallbacks: list[Fallback] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def report(self) -> ValidationReport:
        """The validation report (filled rows, conversions)."""
        return self.panel.report


def forecast(
    data: Any,
    *,
    model: ModelSpec | str | dict[str, Any] = "auto_ets",
    h: int,
    freq: str | int | None = None,
    level: Sequence[float] = (),
    fill_missing: FillPolicy | None = None,
    fill_gaps: bool = False,
    X_future: Any = None,
    n_jobs: int = 1,
    limits: Limits = Limits(),
) -> ForecastResult:
    """Validate ``data``, fit the model of ``model`` and forecast ``h`` steps per series.

    Parameters
    ----------
    data : frame, mapping of columns or list of row dicts
        Long format ``unique_id, ds, y`` (see :func:`forecasting.data.validate_panel`).
    model : spec
        Registry name or spec (see :func:`forecasting.models.make_model`).
    h : int
        Horizon in steps of ``freq``.
    freq : str or int, optional
        Inferred from ``ds`` when omitted.
    level : numbers in (0, 100)
        Prediction-interval levels, percent.
    fill_missing, fill_gaps
        As :func:`~forecasting.data.validate_panel`.
    X_future : frame, optional
        Future values of the exogenous columns (``unique_id, ds, <columns>`` for the
        ``h`` steps), for models that use them (``xgboost``).
    n_jobs : int
        Worker processes for fitting.
    limits : Limits
        Size limits, checked before any model work.

    Raises
    ------
    InvalidInputError, InvalidParameterError, UnknownModelError, InsufficientHistoryError,
    ModelFitError, CapabilityError
        With the series, rows and rule named.
    """
    h = validate_h(h, max_h=limits.max_h)
    levels = validate_levels(level)
    spec = parse_spec(model)
    panel = validate_panel(data, freq=freq, fill_missing=fill_missing, fill_gaps=fill_gaps)
    check_limits(panel, limits)
    forecaster = make_model(spec, freq=panel.freq, n_jobs=n_jobs)
    notes = list(panel.report.notes)
    params = forecaster.get_params()
    if "season_length" in params and "season_length" not in spec.params:
        spec = ModelSpec(name=spec.name, params={**spec.params, "season_length": params["season_length"]},
                         fallback=spec.fallback)
        origin = f"freq '{panel.freq}'" if isinstance(panel.freq, str) else "integer ds (no calendar: pass season_length)"
        notes.append(f"season_length={params['season_length']} derived from {origin}")
    season = params.get("season_length")
    m = max(season) if isinstance(season, list) else season
    if isinstance(m, int) and m > 1:
        need = 3 * m if spec.name == "naive2" else 2 * m
        short = [u for u, n in panel.lengths.items() if n < need]
        if short and spec.name not in ("seasonal_naive", "mstl"):  # those two refuse short series outright
            listed = ", ".join(f"'{u}'" for u in short[:5]) + (f" and {len(short) - 5} more" if len(short) > 5 else "")
            notes.append(f"{len(short)} series ({listed}) have fewer than {need} observations ({need // m} seasons "
                         f"of {m}): '{spec.name}' may fit them without a seasonal component, as it needs about "
                         f"{need // m} seasons to estimate one")
    if X_future is not None and not panel.exog:  # refused before any training, not after it
        raise CapabilityError(f"X_future was given but the data has no exogenous columns, so model '{spec.name}' "
                              f"would not use it: drop X_future, or add the columns to the data", field="X_future")
    if limits.max_seconds is not None:
        forecaster.deadline = time.time() + limits.max_seconds
        if getattr(forecaster, "fallback", None) is not None:
            forecaster.fallback.deadline = forecaster.deadline
    forecaster.fit(panel)
    frame = forecaster.predict(h, level=levels, X_future=X_future) if X_future is not None else forecaster.predict(
        h, level=levels)
    return ForecastResult(forecasts=frame, spec=spec, alias=forecaster.alias, panel=panel, level=levels,
                          fallbacks=list(forecaster.fallbacks_), notes=notes)


def check_limits(panel: Panel, limits: Limits) -> None:
    """Refuse panels above the row or series limits.

    Raises
    ------
    InvalidInputError
        Naming the count and the limit.
    """
    if panel.frame.height > limits.max_rows:
        raise InvalidInputError(f"data has {panel.frame.height} rows; the limit is {limits.max_rows}", field="data",
                                details={"limit": limits.max_rows})
    if panel.n_series > limits.max_series:
        raise InvalidInputError(f"data has {panel.n_series} series; the limit is {limits.max_series}", field="data",
                                details={"limit": limits.max_series})


_READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: str | Path) -> pl.DataFrame:
    """Read a CSV or Parquet file as data (never executed or unpickled).

    CSV dates are parsed when they look like ISO 8601; ``unique_id`` is read as text.

    Raises
    ------
    InvalidInputError
        Missing file, unknown extension, or a file that is not valid CSV/Parquet.
    """
    p = Path(path)
    kind = _READERS.get(p.suffix.lower())
    if kind is None:
        raise InvalidParameterError(f"input file must end in .csv or .parquet, got '{p.name}'", field="input")
    if not p.is_file():
        raise InvalidInputError(f"input file '{p}' does not exist", field="input")
    try:
        if kind == "csv":
            return pl.read_csv(p, try_parse_dates=True, schema_overrides={"unique_id": pl.String},
                               infer_schema_length=10_000)
        return pl.read_parquet(p)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        raise InvalidInputError(f"could not read '{p}' as {kind}: {exc}", field="input") from exc


def write_table(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write a frame as CSV or Parquet (by extension), creating parent folders.

    Raises
    ------
    InvalidParameterError
        Unknown extension.
    """
    p = Path(path)
    kind = _READERS.get(p.suffix.lower())
    if kind is None:
        raise InvalidParameterError(f"output file must end in .csv or .parquet, got '{p.name}'", field="output")
    p.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        frame.write_csv(p)
    else:
        frame.write_parquet(p)
    return p
