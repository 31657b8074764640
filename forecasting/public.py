"""The public Python API, re-exported by ``import forecasting as fc``.

Frames come back in the caller's kind: pandas in gives pandas out, polars in gives polars out.
Columns may carry other names than the field's standard ``unique_id, ds, y``: say which with
``id_col``, ``time_col`` and ``target_col`` (as statsforecast does); the answers use the
caller's names too.

Examples
--------
>>> import polars as pl
>>> import forecasting as fc
>>> df = pl.DataFrame({"store": ["a"] * 6, "day": list(range(6)), "sales": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
>>> result = fc.forecast(df, model="naive", h=2, id_col="store", time_col="day", target_col="sales")
>>> result.forecasts.to_dicts()
[{'store': 'a', 'day': 6, 'Naive': 6.0}, {'store': 'a', 'day': 7, 'Naive': 6.0}]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from forecasting.data import FillPolicy, Panel
from forecasting.errors import InvalidInputError, InvalidParameterError
from forecasting.explanation import Explanation
from forecasting.models.base import Forecaster
from forecasting.models.registry import ModelSpec
from forecasting.service import ForecastResult

__all__ = ["cross_validation", "detect_anomalies", "explain", "forecast", "forecast_hierarchy", "load"]

SpecLike = ModelSpec | str | dict[str, Any]
_STANDARD = ("unique_id", "ds", "y")


def _is_pandas(data: Any) -> bool:
    return type(data).__module__.startswith("pandas")


class _Columns:
    """The caller's column names and frame kind; renames in and out."""

    def __init__(self, data: Any, id_col: str, time_col: str, target_col: str) -> None:
        self.pandas = _is_pandas(data)
        given = {"id_col": id_col, "time_col": time_col, "target_col": target_col}
        for i, (arg, own) in enumerate(given.items()):
            other = next((a for a, o in list(given.items())[i + 1:] if o == own), None)
            if other is not None:
                msg = (f"{arg} and {other} both name column {own!r}: unique_id, ds and y need a column each")
                raise InvalidParameterError(msg, field=other)
        self.names = dict(zip(_STANDARD, (id_col, time_col, target_col), strict=True))
        self.custom = {std: own for std, own in self.names.items() if own != std}

    def into(self, data: Any, *, field: str = "data", target: bool = True) -> Any:
        """``data`` as a polars frame with the standard names (``None`` stays ``None``)."""
        if data is None:
            return None
        from forecasting.data import to_polars

        frame = to_polars(data, field_name=field)
        wanted = {own: std for std, own in self.custom.items() if target or std != "y"}
        missing = [own for own in wanted if own not in frame.columns]
        if missing:
            msg = f"{field}: column {missing[0]!r} (given as the {wanted[missing[0]]} column) not found; columns: " \
                  f"{frame.columns[:10]}"
            raise InvalidInputError(msg, field=field)
        clash = [std for own, std in wanted.items() if std in frame.columns and std not in self.custom.values()]
        if clash:
            msg = (f"{field}: column {clash[0]!r} exists besides the column given for it "
                   f"({self.custom[clash[0]]!r}): rename or drop one")
            raise InvalidInputError(msg, field=field)
        return frame.rename(wanted)

    def out(self, frame: pl.DataFrame, panel: Panel | None = None) -> Any:
        """A result frame with the caller's names, in the caller's frame kind; a pandas frame's time column at
        the caller's fixed UTC offset (``panel``'s, as the JSON answer: :func:`forecasting.data.at_caller_offset`).

        Raises
        ------
        InvalidParameterError
            A model column (its ``alias``) named like one of the caller's columns.
        """
        mapping = {std: own for std, own in self.custom.items() if std in frame.columns}
        clash = sorted(set(mapping.values()) & (set(frame.columns) - set(mapping)))
        if clash:
            msg = f"the output column {clash[0]!r} is both a model column (its alias) and one of your columns: rename one"
            raise InvalidParameterError(msg, field="model.params.alias")
        renamed = frame.rename(mapping)
        if not self.pandas:
            return renamed
        from forecasting.data import at_caller_offset

        out = renamed.to_pandas()
        time_col = self.names["ds"]
        return at_caller_offset(out, panel, key=time_col) if panel is not None and time_col in out else out


def forecast(
    df: Any,
    *,
    model: SpecLike | Forecaster = "auto",
    h: int,
    freq: str | int | None = None,
    level: Sequence[float] = (),
    fill_missing: FillPolicy | None = None,
    fill_gaps: bool = False,
    X_future: Any = None,
    n_jobs: int = -1,
    fallback: str | None = None,
    non_negative: bool | None = None,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
) -> ForecastResult:
    """Fit ``model`` on every series of ``df`` and forecast ``h`` steps (or forecast with a loaded model).

    Parameters
    ----------
    df : pandas or polars DataFrame (or a mapping of columns / list of row dicts)
        Long format: one row per observation, ``id_col`` (series), ``time_col`` (timestamps or integer
        steps) and ``target_col`` (numbers), then exogenous columns.
    model : spec or fitted model
        A registry name (default ``"auto"``: candidates chosen from the data, cross-validated and
        combined; ``"auto_ets"``...; ``forecasting models`` lists them), a spec
        ``{"name": ..., "params": {...}, "fallback": ...}``, or a model from :func:`load`.
    h : int
        Steps to forecast per series.
    level : numbers in (0, 100)
        Prediction-interval levels, percent.
    fallback : str, optional
        Model for series too short for ``model`` (or that it fails on), e.g. ``"naive"``; each such series
        is reported in ``fallbacks``. With a loaded model, the series shorter than its input window.
    non_negative : bool, optional
        Clip forecasts at 0; by default when every observed value is >= 0 (the notes count what was clipped).
    id_col, time_col, target_col : str
        The names of the series, time and target columns in ``df`` (and ``X_future``).
    Other parameters as :func:`forecasting.service.forecast`.

    Returns
    -------
    ForecastResult
        ``forecasts`` (``h`` rows per series: ``id_col, time_col, <Model>[, <Model>-lo-<L>, <Model>-hi-<L>]``,
        in the caller's frame kind), the effective ``spec``, ``fallbacks``, ``filled`` rows and ``notes``.

    Raises
    ------
    InvalidInputError, InvalidParameterError, UnknownModelError, InsufficientHistoryError, ModelFitError,
    CapabilityError
        Naming the series, rows and rule.
    """
    from forecasting import service

    cols = _Columns(df, id_col, time_col, target_col)
    result = service.forecast(cols.into(df), model=model, h=h, freq=freq, level=level, fill_missing=fill_missing,
                              fill_gaps=fill_gaps, X_future=cols.into(X_future, field="X_future", target=False),
                              n_jobs=n_jobs, fallback=fallback, non_negative=non_negative)
    notes = result.notes
    if result.panel.utc_offset is not None and not cols.pandas:
        notes = [*notes, f"polars has no fixed-offset time zones: the forecasts' ds are in UTC (the caller's offset "
                         f"{result.panel.utc_offset} is kept in pandas frames and JSON answers)"]
    return dataclasses.replace(result, forecasts=cols.out(result.forecasts, result.panel), notes=notes)


def forecast_hierarchy(
    df: Any,
    *,
    hierarchy: str | Sequence[str] | None = None,
    group: str | Sequence[str] | None = None,
    S: Any = None,
    tags: dict[str, Sequence[str]] | None = None,
    model: SpecLike = "auto",
    h: int,
    methods: Sequence[str] = ("bottom_up", "ols", "wls_struct"),
    middle_level: str | None = None,
    level: Sequence[float] = (),
    freq: str | int | None = None,
    n_jobs: int = -1,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
    report: str | Path | None = None,
) -> Any:
    """Forecast every series of a hierarchical or grouped structure with ``model`` and reconcile them.

    Parameters
    ----------
    df : pandas or polars DataFrame
        The bottom series (``id_col, time_col, target_col``) plus the structure columns.
    hierarchy : str or list of str, optional
        Nested columns, top first (``"state/region"``).
    group : str or list of str, optional
        Crossed columns (``["purpose"]``).
    S : frame, optional
        Instead of columns: the summing matrix (``unique_id`` then one 0/1 column per bottom series) and its
        ``tags`` (level name -> series).
    methods : names
        ``bottom_up``, ``top_down``, ``middle_out``, ``ols``, ``wls_struct``, ``wls_var``, ``mint_shrink``
        (hierarchicalforecast's reconcilers).
    report : path, optional
        Also hold out the last ``h`` steps and write the HTML report there: the coherence check and MASE/RMSE per
        level and method (:func:`forecasting.service.hierarchy.write_hierarchy_report`); ``result.report``.
    Other parameters as :func:`forecast`.

    Returns
    -------
    forecasting.service.hierarchy.HierarchyResult
        ``forecasts`` (caller's frame kind): ``id_col, level, time_col, <Model>`` then ``<Model>/<method>`` per
        method, ``h`` rows for every series (aggregates ``"Total"``, ``"NSW"``, ``"NSW/Female"``...);
        ``coherence`` per column (reconciled: below 1e-6), ``structure`` (``S``, levels), ``notes``.

    Raises
    ------
    InvalidInputError, InvalidParameterError, CapabilityError
        A bad structure (a column not in ``df``, a series in two parents, a missing level) naming the rows; an
        unknown method; a method the structure or model cannot do.
    """
    from forecasting.service.hierarchy import forecast_hierarchy as run

    cols = _Columns(df, id_col, time_col, target_col)
    result = run(cols.into(df), hierarchy=hierarchy, group=group, S=S, tags=tags, model=model, h=h,
                 methods=methods, middle_level=middle_level, level=level, freq=freq, n_jobs=n_jobs, report=report)
    return dataclasses.replace(result, forecasts=cols.out(result.forecasts, result.panel))


def cross_validation(
    df: Any,
    *,
    model: SpecLike,
    h: int,
    n_windows: int = 1,
    step_size: int | None = None,
    level: Sequence[float] = (),
    freq: str | int | None = None,
    n_jobs: int = -1,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
) -> Any:
    """Backtest ``model`` on ``n_windows`` rolling origins (the splitter the benchmark harness uses).

    Returns
    -------
    DataFrame (the caller's kind)
        ``n_windows * h`` rows per series: ``id_col, time_col, cutoff, target_col, <Model>[, intervals]``,
        statsforecast's layout; score it with :func:`forecasting.evaluation.evaluate`.

    Raises
    ------
    InvalidInputError, InvalidParameterError, InsufficientHistoryError
    """
    from forecasting.backtest import cross_validation as run
    from forecasting.data import at_caller_offset, validate_panel

    cols = _Columns(df, id_col, time_col, target_col)
    panel = validate_panel(cols.into(df), freq=freq)
    frame = run(panel, model=model, h=h, n_windows=n_windows, step_size=step_size, level=level, n_jobs=n_jobs)
    out = cols.out(frame, panel)  # ds, and below the cutoff, at the caller's fixed UTC offset in a pandas frame
    return at_caller_offset(out, panel, key="cutoff") if cols.pandas and "cutoff" in out else out


def explain(
    df: Any,
    *,
    model: SpecLike | Forecaster,
    h: int,
    freq: str | int | None = None,
    X_future: Any = None,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
) -> Explanation:
    """Explain each forecast step of ``model`` on ``df``: SHAP values (trees), integrated gradients (networks).

    Returns
    -------
    Explanation
        One row per (series, step): ``values`` (rows x features), ``base_values``, ``feature_names``,
        ``data``, ``output``; :meth:`Explanation.to_frame` gives one row per (series, step, feature).

    Raises
    ------
    CapabilityError
        Statistical models (explained by their decomposition in ``forecasting report``).
    """
    from forecasting import service

    cols = _Columns(df, id_col, time_col, target_col)
    return service.explain(cols.into(df), model=model, h=h, freq=freq,
                           X_future=cols.into(X_future, field="X_future", target=False)).explanation


def load(path: str | Path) -> Any:
    """Load a saved model folder (``forecasting train``, ``model.save``) or an ONNX export folder.

    Every file's sha256 is checked before anything is read.

    Raises
    ------
    ArtifactIntegrityError
        A file changed since it was written.
    InvalidInputError
        Not a model folder.
    """
    from forecasting.loading import load as load_folder

    return load_folder(path)


def detect_anomalies(
    df: Any,
    *,
    model: SpecLike = "mstl",
    level: float = 99.0,
    method: str = "normal",
    freq: str | int | None = None,
    id_col: str = "unique_id",
    time_col: str = "ds",
    target_col: str = "y",
) -> Any:
    """Points of ``df`` outside the model's in-sample prediction interval at ``level``, with a score.

    :func:`forecasting.service.monitoring.detect_anomalies`: the model's one-step in-sample fitted values are
    the centre, the interval is Gaussian (``method="normal"``, the model's native band) or split-conformal on the
    in-sample residuals (``"conformal"``), and ``score`` is the distance from the centre in half-widths (above 1: an anomaly).

    Returns
    -------
    DataFrame (the caller's kind)
        One row per input point: ``id_col, time_col, target_col, center, lo, hi, score, anomaly`` (``center``,
        ``lo``, ``hi`` and ``score`` null where the model has no fitted value, e.g. a seasonal naive's first
        season).

    Raises
    ------
    InvalidInputError, InvalidParameterError
        The data contract; ``level`` outside (0, 100); an unknown ``method``.
    CapabilityError
        A model without in-sample fitted values (the global models).

    Examples
    --------
    >>> import numpy as np
    >>> import polars as pl
    >>> import forecasting as fc
    >>> rng = np.random.default_rng(0)
    >>> y = (10 + np.tile([0.0, 2, 1, 3], 50) + rng.normal(0, 0.5, 200)).round(2)
    >>> y[120] += 15
    >>> df = pl.DataFrame({"unique_id": ["a"] * 200, "ds": list(range(200)), "y": y})
    >>> out = fc.detect_anomalies(df, model={"name": "seasonal_naive", "params": {"season_length": 4}})
    >>> out.filter(pl.col("anomaly"))["ds"].to_list()  # the spike, and its echo one season later
    [120, 124]
    """
    from forecasting.service.monitoring import detect_anomalies as run

    cols = _Columns(df, id_col, time_col, target_col)
    result = run(cols.into(df), model=model, level=level, method=method, freq=freq)  # type: ignore[arg-type]
    return cols.out(result.points, result.panel)
