"""Rolling-origin cross-validation (time-series backtesting).

For ``n_windows`` forecast origins spaced ``step_size`` steps apart, each series is cut
at the origin, the model is fitted on what comes before and forecasts ``h`` steps,
which are then set beside the actual values. The last window ends at each series'
last observation. This is the evaluation "on a rolling forecasting origin" of
Tashman (IJF 16(4), 2000) and Hyndman & Athanasopoulos, *FPP3* 5.10, with the output
layout of statsforecast's ``cross_validation`` (``unique_id, ds, cutoff, y, <model>``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from forecasting.data import Panel, to_caller_tz, validate_h, validate_levels, validate_panel
from forecasting.errors import InsufficientHistoryError, InvalidParameterError
from forecasting.models.registry import ModelSpec, make_model, parse_spec

__all__ = ["cross_validation", "cross_validation_metrics"]


def cross_validation(
    data: Panel | Any,
    *,
    model: ModelSpec | str | dict[str, Any],
    h: int,
    n_windows: int = 1,
    step_size: int | None = None,
    level: Sequence[float] = (),
    freq: str | int | None = None,
    n_jobs: int = 1,
    deadline: float | None = None,
) -> pl.DataFrame:
    """Backtest ``model`` over ``n_windows`` rolling origins.

    Parameters
    ----------
    data : Panel or long-format frame
        ``unique_id, ds, y``.
    model : spec
        Registry name or spec.
    h : int
        Steps forecast from each origin.
    n_windows : int, default 1
        Number of origins (>= 1).
    step_size : int, optional
        Steps between consecutive origins (>= 1); defaults to ``h`` (non-overlapping
        test windows).
    level : numbers in (0, 100)
        Interval levels, percent.
    deadline : float, optional
        Epoch seconds after which fitting stops with ``TimeLimitError``.

    Returns
    -------
    pl.DataFrame
        ``n_windows * h`` rows per series: ``unique_id, ds, cutoff`` (the last training
        ``ds`` of the window), ``y`` (actual), ``<alias>`` and interval columns.

    Raises
    ------
    InvalidParameterError
        ``h``, ``n_windows`` or ``step_size`` out of range.
    InsufficientHistoryError
        A series too short for the windows plus the model's minimum training length,
        naming the series, its length and the length needed.
    """
    h = validate_h(h)
    levels = validate_levels(level)
    if isinstance(n_windows, bool) or not isinstance(n_windows, int) or n_windows < 1:
        raise InvalidParameterError(f"n_windows must be an integer >= 1, got {n_windows!r}", field="n_windows")
    step = h if step_size is None else step_size
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise InvalidParameterError(f"step_size must be an integer >= 1, got {step_size!r}", field="step_size")
    panel = data if isinstance(data, Panel) else validate_panel(data, freq=freq)
    spec = parse_spec(model)
    probe = make_model(spec, freq=panel.freq)
    held_out = h + (n_windows - 1) * step
    need = held_out + (1 if spec.fallback else probe.min_train_length)
    short = {u: n for u, n in panel.lengths.items() if n < need}
    if short:
        listed = "; ".join(f"series '{u}': {n} observations" for u, n in list(short.items())[:5])
        raise InsufficientHistoryError(
            f"{len(short)} series too short for {n_windows} windows of h={h} every {step} steps with model "
            f"'{spec.name}' (needs at least {need} = {held_out} held out + {need - held_out} to train): {listed}",
            field="data", details={"minimum": need, "series": {u: {"length": n, "minimum": need} for u, n in short.items()}})
    idx = pl.int_range(pl.len()).over("unique_id")
    size = pl.len().over("unique_id").cast(pl.Int64)
    frames = []
    for w in range(n_windows):
        end = held_out - w * step  # rows after the cutoff, counted from the end
        train_rows = panel.frame.filter(idx < size - end)
        test_rows = panel.frame.filter((idx >= size - end) & (idx < size - end + h))
        train = Panel(frame=train_rows, freq=panel.freq,
                      lengths={u: n - end for u, n in panel.lengths.items()}, tz=panel.tz, ds_kind=panel.ds_kind,
                      exog=panel.exog, report=panel.report)
        forecaster = make_model(spec, freq=panel.freq, n_jobs=n_jobs)
        if deadline is not None:
            forecaster.deadline = deadline
            if getattr(forecaster, "fallback", None) is not None:
                forecaster.fallback.deadline = deadline
        forecaster.fit(train)
        pipeline = getattr(forecaster, "pipeline_", None)
        if pipeline is not None and pipeline.spec.future_exog:
            # the exogenous values after the cutoff are known in a backtest: they are the window's X_future
            # (all later rows: a network reads whole blocks of future values)
            X_future = to_caller_tz(panel.frame.filter(idx >= size - end).select(
                "unique_id", "ds", *pipeline.spec.future_exog), panel)
            fc = forecaster.predict(h, level=levels, X_future=X_future)
        else:
            fc = forecaster.predict(h, level=levels)
        cutoff = to_caller_tz(train_rows.group_by("unique_id", maintain_order=True).agg(pl.col("ds").last().alias("cutoff"))
                              .rename({"cutoff": "ds"}), panel).rename({"ds": "cutoff"})
        actual = to_caller_tz(test_rows.select("unique_id", "ds", "y"), panel)
        frames.append(actual.join(cutoff, on="unique_id").join(fc, on=["unique_id", "ds"], how="left")
                      .select("unique_id", "ds", "cutoff", "y", *[c for c in fc.columns if c not in ("unique_id", "ds")]))
    return pl.concat(frames).sort("unique_id", "cutoff", "ds")


def cross_validation_metrics(
    data: Panel | Any,
    *,
    models: Sequence[ModelSpec | str | dict[str, Any]],
    h: int,
    n_windows: int = 1,
    step_size: int | None = None,
    level: Sequence[float] = (),
    freq: str | int | None = None,
    season_length: int | None = None,
    n_jobs: int = 1,
) -> pl.DataFrame:
    """Backtest several models and score every window (M4 definitions).

    Parameters
    ----------
    models : sequence of specs
        One or more registry names or specs.
    season_length : int, optional
        MASE/MSIS scale lag; defaults to the frequency's season (``default_season_length``).
    Other parameters as :func:`cross_validation`.

    Returns
    -------
    pl.DataFrame
        One row per (model, cutoff): ``model, cutoff, smape, mase, mae, rmse`` and, for each
        level, ``coverage_<L>`` and ``msis_<L>``; metrics are per series then averaged.

    Raises
    ------
    InvalidParameterError
        No model, or as :func:`cross_validation`.
    """
    from forecasting.evaluation import evaluate
    from forecasting.models.registry import default_season_length

    if not models:
        raise InvalidParameterError("give at least one model", field="models")
    panel = data if isinstance(data, Panel) else validate_panel(data, freq=freq)
    m = season_length or default_season_length(panel.freq)
    m = m if isinstance(m, int) else 1
    frames = []
    for spec_in in models:
        spec = parse_spec(spec_in)
        cv = cross_validation(panel, model=spec, h=h, n_windows=n_windows, step_size=step_size, level=level, n_jobs=n_jobs)
        alias = next(c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y") and "-lo-" not in c
                     and "-hi-" not in c)
        history = to_caller_tz(panel.frame.select("unique_id", "ds", "y"), panel)
        for (cutoff,), window in cv.group_by("cutoff", maintain_order=True):
            per_series_cut = window.select("unique_id", "cutoff").unique()
            train = history.join(per_series_cut, on="unique_id").filter(pl.col("ds") <= pl.col("cutoff")).drop("cutoff")
            scores = evaluate(window.drop("cutoff", "y"), window.select("unique_id", "ds", "y"), train,
                              models=[alias], season_length=m, level=level)
            frames.append(scores.drop("owa").with_columns(pl.lit(spec.name).alias("model"),
                                                          pl.lit(cutoff).alias("cutoff")))
    out = pl.concat(frames, how="diagonal_relaxed")
    return out.select("model", "cutoff", *[c for c in out.columns if c not in ("model", "cutoff")])
