"""Rolling-origin cross-validation (time-series backtesting) and hold-out scoring.

For ``n_windows`` forecast origins spaced ``step_size`` steps apart, each series is cut
at the origin, the model is fitted on what comes before and forecasts ``h`` steps,
which are then set beside the actual values. The last window ends at each series'
last observation. This is the evaluation "on a rolling forecasting origin" of
Tashman (IJF 16(4), 2000) and Hyndman & Athanasopoulos, *FPP3* 5.10, with the output
layout of statsforecast's ``cross_validation`` (``unique_id, ds, cutoff, y, <model>``).

This module is the one place where rolling origins are cut (:func:`rolling_origins`,
:class:`Window`): :func:`cross_validation` (``POST /v1/cross_validation``) and the
benchmark harness (``forecasting bench``) both use it, so the same data, ``h``, number of
windows and step give the same cutoffs and the same training and test rows. It is also
the one hold-out scorer (:func:`holdout_scores`: fit on all but the last ``h`` points,
forecast ``h``, score with the M4 metrics), used by training jobs and the model card.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import polars as pl

from forecasting.data import Panel, to_caller_tz, validate_h, validate_levels, validate_panel
from forecasting.errors import InsufficientHistoryError, InvalidParameterError
from forecasting.models.base import Progress, arm
from forecasting.models.registry import ModelSpec, make_model, parse_spec, resolve_spec

__all__ = ["HoldoutScores", "Window", "cross_validation", "cross_validation_metrics", "holdout_scores",
           "origin_step", "rolling_origins"]


# --------------------------------------------------------------------------- the splitter
@dataclass(frozen=True)
class Window:
    """One rolling origin of a long-format frame: the rows before it and the ``h`` after it.

    Rows are counted from each series' end, so series of different lengths (or ending at
    different times) are all cut ``offset`` observations before their own last one.

    Attributes
    ----------
    window : int
        0 for the last origin, whose test part is each series' last ``h`` observations (for
        M4, whose official test part continues the training series, exactly the official
        train/test split); window ``w`` ends ``w * step_size`` steps earlier.
    offset : int
        Observations after the origin, counted from each series' end (``h + w * step_size``).
    h : int
        Test steps per series.
    frame : pl.DataFrame
        The whole long-format frame (``unique_id, ds, y`` and any other column), each
        series' rows in time order and contiguous.
    """

    window: int
    offset: int
    h: int
    frame: pl.DataFrame = field(repr=False, compare=False)

    def _index(self) -> tuple[pl.Expr, pl.Expr]:
        idx = pl.int_range(pl.len()).over("unique_id")
        return idx, pl.len().over("unique_id").cast(pl.Int64) - self.offset  # first row after the origin

    @cached_property
    def train(self) -> pl.DataFrame:
        """Rows up to and including the origin: ``n - offset`` rows per series."""
        idx, first = self._index()
        return self.frame.filter(idx < first)

    @cached_property
    def test(self) -> pl.DataFrame:
        """The ``h`` rows after the origin (fewer when ``offset < h``), per series."""
        idx, first = self._index()
        return self.frame.filter((idx >= first) & (idx < first + self.h))

    @cached_property
    def after(self) -> pl.DataFrame:
        """Every row after the origin (``offset`` per series): a backtest's known future exogenous values."""
        idx, first = self._index()
        return self.frame.filter(idx >= first)

    def train_panel(self, panel: Panel, ids: Sequence[str] | None = None) -> Panel:
        """The training part as a :class:`~forecasting.data.Panel` of ``panel`` (this window's ``frame``), same
        frequency, timezone and kind; ``ids`` keeps only those series (each must be longer than ``offset``)."""
        frame = self.train if ids is None else self.train.filter(pl.col("unique_id").is_in(list(ids)))
        keep = panel.lengths if ids is None else {u: panel.lengths[u] for u in ids}
        return Panel(frame=frame, freq=panel.freq, lengths={u: n - self.offset for u, n in keep.items()},
                     tz=panel.tz, ds_kind=panel.ds_kind, exog=panel.exog, month_end=panel.month_end,
                     report=panel.report)

    @cached_property
    def cutoff(self) -> pl.DataFrame:
        """``unique_id, cutoff``: each series' last training ``ds``, in the order of ``train``."""
        return self.train.group_by("unique_id", maintain_order=True).agg(pl.col("ds").last().alias("cutoff"))


def origin_step(*, h: int, n_windows: int, step_size: int | None, windows_field: str = "n_windows") -> int:
    """Check a rolling-origin plan and return its step (``step_size``, default ``h``).

    Parameters
    ----------
    h : int
        Test steps per window (already validated, >= 1).
    n_windows : int
        Number of origins, >= 1.
    step_size : int, optional
        Steps between consecutive origins, >= 1; ``None`` means ``h``.
    windows_field : str, default "n_windows"
        Name of the window count in the caller's interface (``windows`` for the harness),
        used in the error.

    Raises
    ------
    InvalidParameterError
        ``n_windows`` (named ``windows_field``) or ``step_size`` not an integer >= 1.
    """
    if isinstance(n_windows, bool) or not isinstance(n_windows, int) or n_windows < 1:
        msg = f"{windows_field} must be an integer >= 1, got {n_windows!r}"
        raise InvalidParameterError(msg, field=windows_field)
    step = h if step_size is None else step_size
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        msg = f"step_size must be an integer >= 1, got {step_size!r}"
        raise InvalidParameterError(msg, field="step_size")
    return step


def rolling_origins(frame: pl.DataFrame, *, h: int, n_windows: int = 1, step_size: int | None = None,
                    windows_field: str = "n_windows") -> list[Window]:
    """The ``n_windows`` rolling origins of ``frame``, ``step_size`` steps apart, last first.

    Parameters
    ----------
    frame : pl.DataFrame
        Long format, ``unique_id, ds, y`` (other columns are carried along), each series'
        rows in time order and contiguous (a :class:`~forecasting.data.Panel`'s ``frame``).
    h : int
        Test steps per window (already validated, >= 1).
    n_windows : int, default 1
        Number of origins (>= 1).
    step_size : int, optional
        Steps between consecutive origins (>= 1); default ``h`` (non-overlapping test parts).
    windows_field : str, default "n_windows"
        As :func:`origin_step`.

    Returns
    -------
    list of Window
        ``n_windows`` windows; element ``w`` is window ``w`` (``offset = h + w * step_size``),
        so element 0 ends at each series' end. Series lengths are not checked here: each
        caller applies its own minimum (at least ``h + (n_windows - 1) * step_size + 1``).

    Raises
    ------
    InvalidParameterError
        As :func:`origin_step`.

    Examples
    --------
    >>> frame = pl.DataFrame({"unique_id": ["a"] * 6, "ds": range(6), "y": [1.0, 2, 3, 4, 5, 6]})
    >>> [(w.window, w.train["y"].to_list(), w.test["y"].to_list())
    ...  for w in rolling_origins(frame, h=2, n_windows=2, step_size=1)]
    [(0, [1.0, 2.0, 3.0, 4.0], [5.0, 6.0]), (1, [1.0, 2.0, 3.0], [4.0, 5.0])]
    """
    step = origin_step(h=h, n_windows=n_windows, step_size=step_size, windows_field=windows_field)
    return [Window(window=w, offset=h + w * step, h=h, frame=frame) for w in range(n_windows)]


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
    progress: Progress | None = None,
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
    progress : callable(fraction, message), optional
        Fitting progress over all the windows, in [0, 1]: each window's fit reports its share (models that
        declare ``reports_progress``: networks, per training step) and each finished window its end; may
        raise to stop (a training job's cancel).

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
    step = origin_step(h=h, n_windows=n_windows, step_size=step_size)
    panel = data if isinstance(data, Panel) else validate_panel(data, freq=freq)
    spec, _ = resolve_spec(model, freq=panel.freq, h=h, level=list(levels))
    probe = make_model(spec, freq=panel.freq)
    held_out = h + (n_windows - 1) * step
    need = held_out + (1 if spec.fallback else probe.min_train_length)
    short = {u: n for u, n in panel.lengths.items() if n < need}
    if short:
        listed = "; ".join(f"series '{u}': {n} observations" for u, n in list(short.items())[:5])
        msg = (f"{len(short)} series too short for {n_windows} windows of h={h} every {step} steps with model "
               f"'{spec.name}' (needs at least {need} = {held_out} held out + {need - held_out} to train): {listed}")
        raise InsufficientHistoryError(
            msg, field="data",
            details={"minimum": need, "series": {u: {"length": n, "minimum": need} for u, n in short.items()}})
    frames = []
    # earliest origin first, as the models have always been fitted (the output is sorted by cutoff anyway)
    for done, win in enumerate(reversed(rolling_origins(panel.frame, h=h, n_windows=n_windows, step_size=step))):
        train = win.train_panel(panel)
        forecaster = make_model(spec, freq=panel.freq, n_jobs=n_jobs)
        arm(forecaster, deadline=deadline, progress=None if progress is None else _window_share(
            progress, done, n_windows))
        forecaster.fit(train)
        if progress is not None:
            progress((done + 1) / n_windows, f"window {done + 1} of {n_windows} fitted")
        pipeline = getattr(forecaster, "pipeline_", None)
        if pipeline is not None and pipeline.spec.future_exog:
            # the exogenous values after the cutoff are known in a backtest: they are the window's X_future
            # (all later rows: a network reads whole blocks of future values)
            X_future = to_caller_tz(win.after.select("unique_id", "ds", *pipeline.spec.future_exog), panel)
            fc = forecaster.predict(h, level=levels, X_future=X_future)
        else:
            fc = forecaster.predict(h, level=levels)
        cutoff = to_caller_tz(win.cutoff.rename({"cutoff": "ds"}), panel).rename({"ds": "cutoff"})
        actual = to_caller_tz(win.test.select("unique_id", "ds", "y"), panel)
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
        msg = "give at least one model"
        raise InvalidParameterError(msg, field="models")
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


def _window_share(progress: Progress, done: int, n_windows: int) -> Progress:
    """``progress`` of one window's fit (in [0, 1]) as a share of all ``n_windows`` (window ``done`` is next)."""
    return lambda fraction, message: progress((done + fraction) / n_windows,
                                              f"window {done + 1} of {n_windows}: {message}")


# --------------------------------------------------------------------------- the hold-out scorer
@dataclass(frozen=True)
class HoldoutScores:
    """Scores of a model refitted without each series' last ``h`` points (:func:`holdout_scores`).

    Attributes
    ----------
    h : int
        Points held out per series.
    season_length : int
        Lag of the MASE scale.
    cutoff : object
        The latest cutoff over the series (last training ``ds``, in the caller's time zone).
    n_series : int
        Series scored.
    smape : float
        Mean over series of the per-series sMAPE (0-200).
    mase : float or None
        Mean over series of the per-series MASE; with ``unscaled="null"``, over the series
        that have a MASE scale, and ``None`` when none has.
    metrics : dict of str to float or None
        Every score :func:`~forecasting.evaluation.evaluate` gives for the model (``smape``,
        ``mase``, ``mae``, ``rmse``, and ``coverage_<L>``, ``msis_<L>`` per level; ``None``
        where the model gave no interval at that level).
    forecasts : pl.DataFrame
        The window as :func:`cross_validation` returns it (``unique_id, ds, cutoff, y, <alias>...``).
    """

    h: int
    season_length: int
    cutoff: object
    n_series: int
    smape: float
    mase: float | None
    metrics: dict[str, float | None]
    forecasts: pl.DataFrame = field(repr=False, compare=False)


def holdout_scores(
    panel: Panel,
    *,
    model: ModelSpec | str | dict[str, Any],
    h: int,
    season_length: int,
    level: Sequence[float] = (),
    unscaled: Literal["raise", "null"] = "raise",
    n_jobs: int = 1,
    deadline: float | None = None,
    progress: Progress | None = None,
) -> HoldoutScores:
    """Hold out each series' last ``h`` points, refit ``model`` on the rest, forecast ``h`` and score (M4).

    The training jobs' validation metrics and the model card's "validation metrics on the
    last ``h`` points held out" are this function: :func:`cross_validation` with one window,
    scored by :func:`forecasting.evaluation.evaluate` (per series, then averaged over series).

    Parameters
    ----------
    panel : Panel
        The validated history.
    model : spec
        Registry name or spec (refitted here).
    h : int
        Points held out and forecast per series, >= 1.
    season_length : int
        Lag of the MASE scale, >= 1 (M4 Hourly: 24).
    level : numbers in (0, 100)
        Interval levels for coverage, percent.
    unscaled : {"raise", "null"}, default "raise"
        A series without a MASE scale (training part of ``season_length`` or fewer points,
        or repeating exactly every season): raise, or leave it out of the MASE mean.
    n_jobs : int
        Passed to the model.
    deadline : float, optional
        Epoch seconds after which fitting stops with ``TimeLimitError``.
    progress : callable(fraction, message), optional
        The refit's progress, as :func:`cross_validation`'s.

    Returns
    -------
    HoldoutScores

    Raises
    ------
    InsufficientHistoryError
        A series too short to hold out ``h`` points and train the model (as
        :func:`cross_validation`), or, with ``unscaled="raise"``, too short for the MASE scale.
    InvalidInputError
        With ``unscaled="raise"``, a series with a zero MASE scale; a non-finite forecast.
    CapabilityError
        The model cannot give the asked intervals.

    Examples
    --------
    Naive on ``1..6`` holding out 2 points forecasts 4, 4 for 5, 6: sMAPE
    ``(200/9 + 400/10) / 2``, MASE ``1.5 / 1`` (mean absolute error over the in-sample MAE
    of the lag-1 naive on ``1..4``).

    >>> frame = pl.DataFrame({"unique_id": ["a"] * 6, "ds": range(1, 7), "y": [1.0, 2, 3, 4, 5, 6]})
    >>> s = holdout_scores(validate_panel(frame), model="naive", h=2, season_length=1)
    >>> round(s.smape, 6), s.mase, s.cutoff
    (31.111111, 1.5, 4)
    """
    from forecasting.evaluation import evaluate

    cv = cross_validation(panel, model=model, h=h, n_windows=1, level=level, n_jobs=n_jobs, deadline=deadline,
                          progress=progress)
    alias = next(c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y") and "-lo-" not in c
                 and "-hi-" not in c)
    train = rolling_origins(panel.frame, h=h)[0].train.select("unique_id", "ds", "y")
    row = evaluate(cv.drop("y", "cutoff"), cv.select("unique_id", "ds", "y"), train, models=[alias],
                   season_length=season_length, level=level, unscaled=unscaled).row(0, named=True)
    return HoldoutScores(h=h, season_length=season_length, cutoff=cv["cutoff"].max(), n_series=cv["unique_id"].n_unique(),
                         smape=row["smape"], mase=row["mase"],
                         metrics={k: v for k, v in row.items() if k not in ("model", "owa")}, forecasts=cv)
