"""Forecast accuracy metrics, following the M4 competition's definitions.

Point metrics: sMAPE, MASE (and the dataset-level OWA relative to Naive2), MAE, RMSE.
Interval metrics: coverage and MSIS. Probabilistic metrics: weighted and scaled quantile loss
(WQL, SQL, as fev-bench), with the interval bounds read as quantiles (``lo-80`` = q0.10,
``hi-80`` = q0.90) and the point forecast as the median. The array functions score one series; :func:`evaluate`
scores long-format frames per series and averages over series, as the M4 organisers did.

Source: Makridakis, S., Spiliotis, E. & Assimakopoulos, V. (2020). "The M4 Competition:
100,000 time series and 61 forecasting methods". International Journal of Forecasting
36(1), 54-74; the organisers' evaluation code, ``Benchmarks and Evaluation.R`` in
https://github.com/Mcompetitions/M4-methods (``smape_cal``, ``mase_cal``, ``msis_cal``).

Rolling origins (the splitter), cross-validation and the hold-out scorer live in
:mod:`forecasting.backtest` (they need the model zoo): :func:`~forecasting.backtest.rolling_origins`,
:func:`~forecasting.backtest.cross_validation`, :func:`~forecasting.backtest.holdout_scores`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import polars as pl

from forecasting.errors import InsufficientHistoryError, InvalidInputError, InvalidParameterError

__all__ = [
    "coverage",
    "evaluate",
    "finite_series",
    "interval_quantiles",
    "mae",
    "mase",
    "msis",
    "owa",
    "quantile_loss",
    "rmse",
    "series_scores",
    "smape",
    "sql",
    "wql",
]

ArrayLike = Sequence[float] | np.ndarray


# --------------------------------------------------------------------------- helpers


def finite_series(values: object, name: str = "y") -> np.ndarray:
    """One series' values as a float64 array, refused unless 1-D, non-empty and finite.

    The input rule of every array function here and of :mod:`forecasting.decomposition` (the M4
    organisers' code assumes it; a NaN would silently become a NaN score or forecast).

    Parameters
    ----------
    values : array-like of shape (n,)
        Numbers, in the units of the series.
    name : str, default "y"
        The argument's name, for the error (and its ``field``).

    Returns
    -------
    np.ndarray of shape (n,), float64

    Raises
    ------
    InvalidInputError
        Not 1-D, empty, or holding NaN/inf (the first positions in the message, up to 20 in
        ``details["positions"]``).

    Examples
    --------
    >>> finite_series([1, 2.5]).tolist()
    [1.0, 2.5]
    >>> finite_series([1.0, float("nan")], "y_hat")
    Traceback (most recent call last):
    ...
    forecasting.errors.InvalidInputError: `y_hat` must be finite; 1 non-finite value(s) at positions [1]
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        msg = f"`{name}` must be 1-dimensional, got shape {arr.shape}"
        raise InvalidInputError(msg, field=name)
    if arr.size == 0:
        msg = f"`{name}` must not be empty"
        raise InvalidInputError(msg, field=name)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        msg = f"`{name}` must be finite; {bad.size} non-finite value(s) at positions {bad[:5].tolist()}"
        raise InvalidInputError(msg, field=name, details={"positions": bad[:20].tolist()})
    return arr


def _pair(y: object, other: object, other_name: str) -> tuple[np.ndarray, np.ndarray]:
    a = finite_series(y, "y")
    b = finite_series(other, other_name)
    if a.shape != b.shape:
        msg = f"`y` and `{other_name}` must have the same shape, got {a.shape} and {b.shape}"
        raise InvalidInputError(msg, field=other_name)
    return a, b


def _season(season_length: object) -> int:
    if isinstance(season_length, bool) or not isinstance(season_length, (int, np.integer)) or season_length < 1:
        msg = f"`season_length` must be an integer >= 1, got {season_length!r}"
        raise InvalidParameterError(msg, field="season_length")
    return int(season_length)


def _level(level: object) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.integer, np.floating)) or not 0 < level < 100:
        msg = f"`level` must be a number in (0, 100) (percent), got {level!r}"
        raise InvalidParameterError(msg, field="level")
    return float(level)


def _mase_scale(y_train: object, season_length: int) -> float:
    train = finite_series(y_train, "y_train")
    m = _season(season_length)
    if train.size <= m:
        msg = (f"the MASE/MSIS scale with season_length={m} needs more than {m} training observations, "
               f"got {train.size}")
        raise InsufficientHistoryError(msg, field="y_train", details={"length": int(train.size), "minimum": m + 1})
    scale = float(np.mean(np.abs(train[m:] - train[:-m])))
    if scale == 0.0:
        msg = (f"the MASE/MSIS scale (mean absolute seasonal difference of the training data, lag {m}) is 0: "
               "the training series repeats exactly every season, so scaled errors are undefined")
        raise InvalidInputError(msg, field="y_train")
    return scale


# --------------------------------------------------------------------------- array metrics


def smape(y: ArrayLike, y_hat: ArrayLike) -> float:
    """Symmetric mean absolute percentage error, M4 definition, on a 0-200 scale.

    ``sMAPE = mean(200 * |y - y_hat| / (|y| + |y_hat|))``. A step where both ``y`` and
    ``y_hat`` are 0 is a perfect forecast and counts 0 (the M4 formula gives 0/0 there; the
    M4 data are strictly positive so the published scores are unaffected).

    Parameters
    ----------
    y : array of shape (h,)
        Actual values.
    y_hat : array of shape (h,)
        Forecasts.

    Returns
    -------
    float
        sMAPE in percent, in [0, 200].

    Raises
    ------
    InvalidInputError
        If the arrays are empty, not 1-D, of different shapes, or hold NaN/inf.

    Notes
    -----
    Source: Makridakis, Spiliotis & Assimakopoulos (2020), IJF 36(1), eq. (1); ``smape_cal``
    in the M4-methods repository.

    Examples
    --------
    >>> round(smape([100.0, 200.0], [110.0, 180.0]), 4)
    10.0251
    """
    a, f = _pair(y, y_hat, "y_hat")
    num = 200.0 * np.abs(a - f)
    den = np.abs(a) + np.abs(f)
    terms = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return float(terms.mean())


def mase(y: ArrayLike, y_hat: ArrayLike, y_train: ArrayLike, season_length: int) -> float:
    """Mean absolute scaled error, M4 definition.

    ``MASE = mean(|y - y_hat|) / mean_{t > m}(|y_train[t] - y_train[t - m]|)``: the forecast's
    MAE over the in-sample MAE of the seasonal naive method.

    Parameters
    ----------
    y : array of shape (h,)
        Actual values.
    y_hat : array of shape (h,)
        Forecasts.
    y_train : array of shape (n_train,)
        The training part of the series, in time order; ``n_train > season_length``.
    season_length : int
        Lag of the scaling naive (M4 "frequency": 24 hourly, 12 monthly, 1 yearly), >= 1.

    Returns
    -------
    float
        MASE, unitless (1.0 = as good in-sample as seasonal naive).

    Raises
    ------
    InvalidInputError
        If an array is empty, not 1-D, holds NaN/inf, ``y``/``y_hat`` shapes differ, or the
        scale is 0 (the training series repeats exactly every season).
    InsufficientHistoryError
        If ``y_train`` has ``season_length`` or fewer points.
    InvalidParameterError
        If ``season_length`` is not an integer >= 1.

    Notes
    -----
    Source: Hyndman & Koehler (2006), IJF 22(4); M4 version (seasonal scale) in
    Makridakis, Spiliotis & Assimakopoulos (2020), IJF 36(1), eq. (2); ``mase_cal``.

    Examples
    --------
    >>> mase([5.0, 7.0], [6.0, 6.0], [1.0, 2.0, 4.0, 7.0], 1)
    0.5
    """
    a, f = _pair(y, y_hat, "y_hat")
    scale = _mase_scale(y_train, season_length)
    return float(np.mean(np.abs(a - f)) / scale)


def mae(y: ArrayLike, y_hat: ArrayLike) -> float:
    """Mean absolute error, ``mean(|y - y_hat|)``, in the units of ``y``.

    Parameters
    ----------
    y, y_hat : arrays of shape (h,)
        Actual values and forecasts.

    Raises
    ------
    InvalidInputError
        If the arrays are empty, not 1-D, of different shapes, or hold NaN/inf.

    Examples
    --------
    >>> mae([1.0, 2.0], [2.0, 4.0])
    1.5
    """
    a, f = _pair(y, y_hat, "y_hat")
    return float(np.mean(np.abs(a - f)))


def rmse(y: ArrayLike, y_hat: ArrayLike) -> float:
    """Root mean squared error, ``sqrt(mean((y - y_hat)^2))``, in the units of ``y``.

    Parameters
    ----------
    y, y_hat : arrays of shape (h,)
        Actual values and forecasts.

    Raises
    ------
    InvalidInputError
        If the arrays are empty, not 1-D, of different shapes, or hold NaN/inf.

    Examples
    --------
    >>> rmse([0.0, 0.0], [3.0, 4.0]) == math.sqrt(12.5)
    True
    """
    a, f = _pair(y, y_hat, "y_hat")
    return float(math.sqrt(np.mean((a - f) ** 2)))


def coverage(y: ArrayLike, lo: ArrayLike, hi: ArrayLike) -> float:
    """Fraction of actual values inside their prediction interval (bounds included).

    Parameters
    ----------
    y : array of shape (h,)
        Actual values.
    lo, hi : arrays of shape (h,)
        Lower and upper interval bounds, ``lo <= hi``.

    Returns
    -------
    float
        Coverage as a fraction in [0, 1] (compare with ``level / 100``).

    Raises
    ------
    InvalidInputError
        If the arrays are empty, not 1-D, of different shapes, hold NaN/inf, or ``lo > hi``
        somewhere.

    Notes
    -----
    The M4 organisers report it as "ACD", ``|coverage - level/100|``.

    Examples
    --------
    >>> coverage([1.0, 5.0, 3.0, 2.0], [0.0, 0.0, 3.0, 2.5], [2.0, 4.0, 4.0, 3.0])
    0.5
    """
    a, low = _pair(y, lo, "lo")
    _, high = _pair(y, hi, "hi")
    _check_bounds(low, high)
    return float(np.mean((a >= low) & (a <= high)))


def _check_bounds(low: np.ndarray, high: np.ndarray) -> None:
    crossed = np.flatnonzero(low > high)
    if crossed.size:
        msg = f"interval bounds must satisfy lo <= hi; {crossed.size} crossed at positions {crossed[:5].tolist()}"
        raise InvalidInputError(msg, field="lo")


def msis(
    y: ArrayLike,
    lo: ArrayLike,
    hi: ArrayLike,
    y_train: ArrayLike,
    season_length: int,
    level: float,
) -> float:
    """Mean scaled interval score, M4 definition.

    ``MSIS = mean((hi - lo) + 2/a * (lo - y) * [y < lo] + 2/a * (y - hi) * [y > hi]) / scale``
    with ``a = 1 - level / 100`` and ``scale`` the MASE scale of ``y_train`` (mean absolute
    seasonal difference at lag ``season_length``).

    Parameters
    ----------
    y : array of shape (h,)
        Actual values.
    lo, hi : arrays of shape (h,)
        Interval bounds at ``level``, ``lo <= hi``.
    y_train : array of shape (n_train,)
        Training part of the series, in time order; ``n_train > season_length``.
    season_length : int
        Lag of the scaling naive, >= 1.
    level : float
        Nominal coverage of the interval in percent, in (0, 100) (M4: 95).

    Returns
    -------
    float
        MSIS, unitless; lower is better.

    Raises
    ------
    InvalidInputError
        As :func:`mase`, or if ``lo > hi`` somewhere.
    InsufficientHistoryError
        If ``y_train`` has ``season_length`` or fewer points.
    InvalidParameterError
        If ``season_length`` or ``level`` is out of its domain.

    Notes
    -----
    Source: Gneiting & Raftery (2007), JASA 102(477) (interval score); scaled version in
    Makridakis, Spiliotis & Assimakopoulos (2020), IJF 36(1), eq. (4); ``msis_cal``.

    Examples
    --------
    >>> round(msis([5.0, 10.0], [4.0, 4.0], [6.0, 6.0], [1.0, 2.0, 4.0, 7.0], 1, 95), 9)
    41.0
    """
    a, low = _pair(y, lo, "lo")
    _, high = _pair(y, hi, "hi")
    _check_bounds(low, high)
    alpha = 1.0 - _level(level) / 100.0
    scale = _mase_scale(y_train, season_length)
    score = (high - low) + (2.0 / alpha) * (low - a) * (a < low) + (2.0 / alpha) * (a - high) * (a > high)
    return float(np.mean(score) / scale)


def interval_quantiles(level: float) -> tuple[float, float]:
    """The quantile levels of a central prediction interval's bounds.

    ``lo-L`` is the ``(1 - L/100) / 2`` quantile and ``hi-L`` the ``1 - (1 - L/100) / 2``
    quantile (80% -> 0.1 and 0.9; 95% -> 0.025 and 0.975).

    Raises
    ------
    InvalidParameterError
        If ``level`` is not in (0, 100).

    Examples
    --------
    >>> interval_quantiles(80)
    (0.1, 0.9)
    """
    tail = round((1.0 - _level(level) / 100.0) / 2.0, 12)
    return tail, round(1.0 - tail, 12)


def quantile_loss(y: ArrayLike, q_hat: ArrayLike, q: float) -> np.ndarray:
    """Quantile (pinball) loss of each step, on fev-bench's scale (twice the pinball loss).

    ``QL_q(y, f) = 2 * |(y - f) * (1[y <= f] - q)|``: at ``q = 0.5`` it is ``|y - f|``.

    Parameters
    ----------
    y, q_hat : arrays of shape (h,)
        Actual values and the forecast ``q``-quantile.
    q : float
        Quantile level in (0, 1).

    Returns
    -------
    np.ndarray of shape (h,)
        The loss per step, in the units of ``y``.

    Raises
    ------
    InvalidInputError
        If the arrays are empty, not 1-D, of different shapes, or hold NaN/inf.
    InvalidParameterError
        If ``q`` is not in (0, 1).

    Notes
    -----
    Source: Koenker & Bassett (1978), Econometrica 46(1); the factor 2 as in fev
    (``fev.metrics._quantile_loss``; Shchur et al. (2025), "fev-bench").

    Examples
    --------
    >>> quantile_loss([10.0, 10.0], [8.0, 13.0], 0.9).round(9).tolist()
    [3.6, 0.6]
    """
    a, f = _pair(y, q_hat, "q_hat")
    return 2.0 * np.abs((a - f) * ((a <= f).astype(np.float64) - _quantile(q)))


def _quantile(q: object) -> float:
    if isinstance(q, bool) or not isinstance(q, (int, float, np.integer, np.floating)) or not 0 < q < 1:
        msg = f"quantile level must be a number in (0, 1), got {q!r}"
        raise InvalidParameterError(msg, field="q")
    return float(q)


def _quantile_losses(y: ArrayLike, quantiles: Mapping[float, ArrayLike]) -> np.ndarray:
    """Mean over the quantile levels of each step's quantile loss, shape (h,)."""
    if not quantiles:
        msg = "`quantiles` must map at least one quantile level to its forecasts"
        raise InvalidParameterError(msg, field="quantiles")
    return np.mean([quantile_loss(y, f, q) for q, f in quantiles.items()], axis=0)


def wql(y: ArrayLike, quantiles: Mapping[float, ArrayLike]) -> float:
    """Weighted quantile loss: the quantile losses over the sum of ``|y|``, averaged over quantile levels.

    ``WQL = mean_q( sum_t QL_q(y_t, f_q,t) / sum_t |y_t| )``. For a panel the sums run over every
    series and step (:func:`evaluate` does that), so large series weigh more.

    Parameters
    ----------
    y : array of shape (h,)
        Actual values.
    quantiles : mapping of float to array of shape (h,)
        Quantile level in (0, 1) -> that quantile's forecasts (e.g. ``{0.1: lo_80, 0.5: point,
        0.9: hi_80}``; :func:`interval_quantiles` names an interval's levels).

    Returns
    -------
    float
        WQL, unitless; lower is better; 0 for perfect quantiles. ``nan`` when ``sum |y|`` is 0.

    Raises
    ------
    InvalidInputError
        If an array is empty, not 1-D, holds NaN/inf or differs in shape from ``y``.
    InvalidParameterError
        If ``quantiles`` is empty or a level is not in (0, 1).

    Notes
    -----
    Source: fev-bench's ``WQL`` (Shchur et al. (2025), "fev-bench: A Realistic Benchmark for Time
    Series Forecasting"; ``fev.metrics.WQL``), also GluonTS' and AutoGluon's weighted quantile loss.

    Examples
    --------
    >>> round(wql([10.0, 10.0], {0.1: [8.0, 9.0], 0.5: [10.0, 11.0], 0.9: [12.0, 13.0]}), 9)
    0.043333333
    """
    a = finite_series(y, "y")
    denom = float(np.sum(np.abs(a)))
    total = float(np.sum(_quantile_losses(a, quantiles)))
    return total / denom if denom > 0 else math.nan


def sql(y: ArrayLike, quantiles: Mapping[float, ArrayLike], y_train: ArrayLike, season_length: int) -> float:
    """Scaled quantile loss: the mean quantile loss over the MASE scale of the training data.

    ``SQL = mean_{t, q}( QL_q(y_t, f_q,t) ) / mean_{t > m}|y_train[t] - y_train[t - m]|``, the
    probabilistic counterpart of MASE (at the median alone it equals MASE).

    Parameters
    ----------
    y : array of shape (h,)
        Actual values.
    quantiles : mapping of float to array of shape (h,)
        Quantile level in (0, 1) -> that quantile's forecasts.
    y_train : array of shape (n_train,)
        The training part of the series, in time order; ``n_train > season_length``.
    season_length : int
        Lag of the scaling naive, >= 1.

    Returns
    -------
    float
        SQL, unitless; lower is better.

    Raises
    ------
    InvalidInputError
        As :func:`wql`, or if the scale is 0.
    InsufficientHistoryError
        If ``y_train`` has ``season_length`` or fewer points.
    InvalidParameterError
        If ``quantiles`` is empty, a level is not in (0, 1) or ``season_length`` < 1.

    Notes
    -----
    Source: fev-bench's ``SQL`` (``fev.metrics.SQL``); the scale of Hyndman & Koehler (2006).

    Examples
    --------
    >>> sql([5.0, 7.0], {0.5: [6.0, 6.0]}, [1.0, 2.0, 4.0, 7.0], 1)  # = MASE at the median
    0.5
    """
    scale = _mase_scale(y_train, season_length)
    return float(np.mean(_quantile_losses(y, quantiles)) / scale)


def owa(smape: float, mase: float, smape_naive2: float, mase_naive2: float) -> float:
    """Overall Weighted Average of sMAPE and MASE relative to Naive2 (M4's ranking metric).

    ``OWA = 0.5 * (sMAPE / sMAPE_naive2 + MASE / MASE_naive2)``, computed on dataset-level
    means (the average of per-series sMAPE and MASE over all series), not per series.

    Parameters
    ----------
    smape, mase : float
        The method's dataset-level sMAPE (0-200 scale) and MASE.
    smape_naive2, mase_naive2 : float
        The same for Naive2 on the same series; both > 0.

    Returns
    -------
    float
        OWA, unitless; 1.0 = as good as Naive2, lower is better.

    Raises
    ------
    InvalidParameterError
        If a Naive2 score is not a finite number > 0, or the method's scores are not finite.

    Notes
    -----
    Source: Makridakis, Spiliotis & Assimakopoulos (2020), IJF 36(1), section 2.3.

    Examples
    --------
    >>> owa(10.0, 1.0, 20.0, 2.0)
    0.5
    """
    for name, value in (("smape_naive2", smape_naive2), ("mase_naive2", mase_naive2)):
        if not (math.isfinite(value) and value > 0):
            msg = f"`{name}` must be a finite number > 0, got {value!r}"
            raise InvalidParameterError(msg, field=name)
    for name, value in (("smape", smape), ("mase", mase)):
        if not math.isfinite(value):
            msg = f"`{name}` must be finite, got {value!r}"
            raise InvalidParameterError(msg, field=name)
    return 0.5 * (smape / smape_naive2 + mase / mase_naive2)


# --------------------------------------------------------------------------- frames


def _level_names(level: float) -> list[str]:
    """Column-name spellings of a level, as Nixtla writes them (``80`` or ``80.0`` or ``95.5``)."""
    names = [str(level)]
    if float(level).is_integer():
        names = [str(int(level)), str(float(level))]
    return list(dict.fromkeys(names))


def _require_columns(frame: pl.DataFrame, columns: Sequence[str], frame_name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        msg = f"`{frame_name}` is missing column(s) {missing}; it has {frame.columns}"
        raise InvalidInputError(msg, field=frame_name)


def _series_list(ids: pl.Series, limit: int = 5) -> str:
    values = ids.unique(maintain_order=True).to_list()
    shown = ", ".join(repr(str(v)) for v in values[:limit])
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return f"{shown}{more}"


def _check_unique_keys(frame: pl.DataFrame, frame_name: str) -> None:
    dup = frame.group_by("unique_id", "ds").len().filter(pl.col("len") > 1)
    if dup.height:
        first = dup.row(0, named=True)
        msg = (f"`{frame_name}`: {dup.height} duplicated (unique_id, ds) pair(s), e.g. series "
               f"{str(first['unique_id'])!r} at ds={first['ds']} x{first['len']}; series {_series_list(dup['unique_id'])}")
        raise InvalidInputError(
            msg,
            field=frame_name,
            details={"series": [str(s) for s in dup["unique_id"].unique().to_list()[:20]]},
        )


def evaluate(
    forecasts: pl.DataFrame,
    actuals: pl.DataFrame,
    train: pl.DataFrame,
    *,
    models: Sequence[str],
    season_length: int,
    level: Sequence[float] = (),
    naive2_column: str | None = None,
    unscaled: Literal["raise", "null"] = "raise",
) -> pl.DataFrame:
    """Score forecasts against actuals, per model, M4 style (per series, then averaged).

    For each model and series the metric is computed over the series' forecast rows, then
    the dataset-level score is the unweighted mean over series (as the M4 organisers
    averaged sMAPE and MASE). Coverage and MSIS are averaged the same way.

    Parameters
    ----------
    forecasts : pl.DataFrame
        Long format: ``unique_id``, ``ds``, one column per model (point forecasts) and
        optionally ``<model>-lo-<L>`` / ``<model>-hi-<L>`` interval columns (Nixtla names).
    actuals : pl.DataFrame
        ``unique_id``, ``ds``, ``y``: the held-out values. Must hold exactly the
        ``(unique_id, ds)`` pairs of ``forecasts``.
    train : pl.DataFrame
        ``unique_id``, ``ds``, ``y``: each series' training data (for the MASE/MSIS scale).
    models : sequence of str
        Forecast columns to score, one output row each.
    season_length : int
        Lag of the MASE/MSIS scaling naive, >= 1 (M4 Hourly: 24).
    level : sequence of float, default ()
        Interval levels in percent, each in (0, 100). For each level whose ``-lo-``/``-hi-``
        columns exist for a model, ``coverage_<L>`` (fraction in [0, 1]) and ``msis_<L>`` are
        reported; they are null for a model without those columns. With levels, ``wql`` and
        ``sql`` are also reported for each model that has intervals at every level: the
        interval bounds are its quantiles (:func:`interval_quantiles`) and the point forecast
        its median; WQL pools every series and step (:func:`wql`), SQL is the mean over series
        of :func:`sql`.
    naive2_column : str, optional
        Column of ``forecasts`` holding the Naive2 benchmark; when given, ``owa`` is computed
        from the dataset-level sMAPE and MASE of each model and of Naive2.
    unscaled : {"raise", "null"}, default "raise"
        A series without a MASE/MSIS scale (``season_length`` or fewer training points, or
        a zero scale): raise (below), or give it a null MASE/MSIS and average those over the
        other series (null when no series has a scale; ``owa`` is then null too).

    Returns
    -------
    pl.DataFrame
        One row per model, in the order given: ``model``, ``smape`` (0-200), ``mase``,
        ``owa`` (null without ``naive2_column``), ``mae``, ``rmse`` (units of ``y``), then
        ``coverage_<L>`` and ``msis_<L>`` for each level, then ``wql`` and ``sql`` when levels
        are given (null for a model without every level's interval).

    Raises
    ------
    InvalidInputError
        If a column is missing, a frame has duplicated ``(unique_id, ds)`` pairs, the ``ds``
        types differ, forecasts and actuals do not cover the same ``(unique_id, ds)`` pairs
        (naming the series), a forecast or actual is null/NaN/inf (naming the model and
        series), a series has no training data, or a series' MASE scale is 0.
    InsufficientHistoryError
        If a series has ``season_length`` or fewer training points (``unscaled="raise"``).
    InvalidParameterError
        If ``models`` is empty, ``season_length`` < 1, a level is outside (0, 100) or
        ``unscaled`` is not one of its values.

    Notes
    -----
    Source: Makridakis, Spiliotis & Assimakopoulos (2020), IJF 36(1); the M4 organisers'
    ``Benchmarks and Evaluation.R``.
    """
    model_list = list(models)
    if not model_list:
        msg = "`models` must name at least one forecast column, got none"
        raise InvalidParameterError(msg, field="models")
    m = _season(season_length)
    levels = [_level(lv) for lv in level]
    if unscaled not in ("raise", "null"):
        msg = f"`unscaled` must be 'raise' or 'null', got {unscaled!r}"
        raise InvalidParameterError(msg, field="unscaled")
    score_cols = list(dict.fromkeys(model_list + ([naive2_column] if naive2_column else [])))
    _check_frames(forecasts, actuals, train, score_cols)
    interval_cols = _interval_columns(forecasts, model_list, levels)
    value_cols = list(dict.fromkeys(score_cols + [c for pair in interval_cols.values() for c in pair]))
    fc, act, tr = _clean_frames(forecasts, actuals, train, value_cols)
    joined = _with_scale(fc, act, tr, m, unscaled)
    _check_crossed(joined, interval_cols)
    per_series = _per_series(joined, score_cols, interval_cols, levels)
    means = per_series.drop("unique_id").mean().row(0, named=True)  # unweighted mean over series, nulls left out
    return _score_table(means, model_list, levels, interval_cols, naive2_column)


def series_scores(
    forecasts: pl.DataFrame,
    actuals: pl.DataFrame,
    train: pl.DataFrame,
    *,
    models: Sequence[str],
    season_length: int,
    unscaled: Literal["raise", "null"] = "raise",
) -> pl.DataFrame:
    """Point scores per model and series: the values :func:`evaluate` averages over series.

    Parameters
    ----------
    forecasts, actuals, train, models, season_length, unscaled
        As :func:`evaluate`.

    Returns
    -------
    pl.DataFrame
        One row per (model, series), models in the order given, series sorted: ``model``,
        ``unique_id`` (Utf8), ``smape`` (0-200), ``mase`` (null for an unscaled series with
        ``unscaled="null"``), ``mae``, ``rmse``. The mean of a column over a model's rows is
        :func:`evaluate`'s score (a bootstrap over series resamples these rows).

    Raises
    ------
    InvalidInputError, InsufficientHistoryError, InvalidParameterError
        As :func:`evaluate`.
    """
    model_list = list(models)
    if not model_list:
        msg = "`models` must name at least one forecast column, got none"
        raise InvalidParameterError(msg, field="models")
    m = _season(season_length)
    _check_frames(forecasts, actuals, train, model_list)
    fc, act, tr = _clean_frames(forecasts, actuals, train, model_list)
    per_series = _per_series(_with_scale(fc, act, tr, m, unscaled), model_list, {}, [])
    metrics = ("smape", "mase", "mae", "rmse")
    return pl.concat([per_series.select(pl.lit(model).alias("model"), "unique_id",
                                        *[pl.col(f"{model}__{k}").alias(k) for k in metrics])
                      for model in model_list])


def _check_frames(forecasts: pl.DataFrame, actuals: pl.DataFrame, train: pl.DataFrame, score_cols: list[str]) -> None:
    """Frames, their columns and matching ``ds`` types (raises InvalidInputError)."""
    for name, frame in (("forecasts", forecasts), ("actuals", actuals), ("train", train)):
        if not isinstance(frame, pl.DataFrame):
            msg = f"`{name}` must be a polars DataFrame, got {type(frame).__name__}"
            raise InvalidInputError(msg, field=name)
    _require_columns(forecasts, ["unique_id", "ds", *score_cols], "forecasts")
    _require_columns(actuals, ["unique_id", "ds", "y"], "actuals")
    _require_columns(train, ["unique_id", "ds", "y"], "train")
    if forecasts.schema["ds"] != actuals.schema["ds"]:
        msg = f"`ds` types differ: forecasts {forecasts.schema['ds']}, actuals {actuals.schema['ds']}"
        raise InvalidInputError(msg, field="ds")


def _interval_columns(forecasts: pl.DataFrame, model_list: list[str],
                      levels: list[float]) -> dict[tuple[str, float], tuple[str, str]]:
    """Interval columns ``(lo, hi)`` present for each (model, level), in either level spelling."""
    interval_cols: dict[tuple[str, float], tuple[str, str]] = {}
    for model in model_list:
        for lv in levels:
            for spelled in _level_names(lv):
                lo, hi = f"{model}-lo-{spelled}", f"{model}-hi-{spelled}"
                if lo in forecasts.columns and hi in forecasts.columns:
                    interval_cols[(model, lv)] = (lo, hi)
                    break
    return interval_cols


def _clean_frames(forecasts: pl.DataFrame, actuals: pl.DataFrame, train: pl.DataFrame,
                  value_cols: list[str]) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Numeric, unique, matching and finite frames (``unique_id`` as text, values as Float64), or InvalidInputError."""
    for frame_name, frame, cols in (("forecasts", forecasts, value_cols), ("actuals", actuals, ["y"]), ("train", train, ["y"])):
        not_numeric = [c for c in cols if not frame.schema[c].is_numeric()]
        if not_numeric:
            msg = (f"`{frame_name}` column(s) {not_numeric} must be numeric, got "
                   f"{[str(frame.schema[c]) for c in not_numeric]}")
            raise InvalidInputError(msg, field=frame_name)
    uid = pl.col("unique_id").cast(pl.Utf8)
    fc = forecasts.select(uid, "ds", *[pl.col(c).cast(pl.Float64) for c in value_cols])
    act = actuals.select(uid, "ds", pl.col("y").cast(pl.Float64))
    tr = train.select(uid, "ds", pl.col("y").cast(pl.Float64))
    _check_unique_keys(fc, "forecasts")
    _check_unique_keys(act, "actuals")
    _check_unique_keys(tr, "train")

    # Same (unique_id, ds) pairs on both sides.
    only_fc = fc.join(act, on=["unique_id", "ds"], how="anti")
    only_act = act.join(fc, on=["unique_id", "ds"], how="anti")
    if only_fc.height or only_act.height:
        parts = []
        if only_fc.height:
            parts.append(f"{only_fc.height} forecast row(s) without actuals (series {_series_list(only_fc['unique_id'])})")
        if only_act.height:
            parts.append(
                f"{only_act.height} actual row(s) without forecasts (series {_series_list(only_act['unique_id'])})"
            )
        series = pl.concat([only_fc["unique_id"], only_act["unique_id"]]).unique(maintain_order=True)
        raise InvalidInputError(
            "forecasts and actuals must cover the same (unique_id, ds) pairs: " + "; ".join(parts),
            field="forecasts",
            details={"series": series.to_list()[:100]},
        )

    # Non-finite values.
    for col, frame, frame_name in [(c, fc, "forecasts") for c in value_cols] + [("y", act, "actuals")]:
        bad = frame.filter(pl.col(col).is_null() | ~pl.col(col).is_finite())
        if bad.height:
            what = f"model column {col!r}" if frame_name == "forecasts" else "actuals column 'y'"
            msg = f"{what} has {bad.height} null/NaN/inf value(s) in series {_series_list(bad['unique_id'])}"
            raise InvalidInputError(
                msg,
                field=frame_name,
                details={"column": col, "series": bad["unique_id"].unique(maintain_order=True).to_list()[:100]},
            )
    return fc, act, tr


def _with_scale(fc: pl.DataFrame, act: pl.DataFrame, tr: pl.DataFrame, m: int,
                unscaled: Literal["raise", "null"]) -> pl.DataFrame:
    """Forecasts joined to actuals and to each series' MASE/MSIS scale (mean absolute lag-``m`` difference)."""
    scale = (
        tr.sort("unique_id", "ds")
        .group_by("unique_id", maintain_order=True)
        .agg(
            pl.len().alias("n_train"),
            (pl.col("y") - pl.col("y").shift(m)).abs().mean().alias("scale"),
            pl.col("y").is_null().any().alias("has_null"),
            (~pl.col("y").is_finite()).any().alias("has_nonfinite"),
        )
    )
    joined = (fc.join(act, on=["unique_id", "ds"], how="inner").join(scale, on="unique_id", how="left")
              .sort("unique_id", "ds"))
    series_ids = joined["unique_id"].unique(maintain_order=True)
    no_train = joined.filter(pl.col("n_train").is_null())["unique_id"]
    if no_train.len():
        msg = f"`train` has no rows for series {_series_list(no_train)} (needed for the MASE scale)"
        raise InvalidInputError(
            msg,
            field="train",
            details={"series": no_train.unique(maintain_order=True).to_list()[:100]},
        )
    per_series_train = scale.filter(pl.col("unique_id").is_in(series_ids.implode()))
    bad_train = per_series_train.filter(pl.col("has_null") | pl.col("has_nonfinite"))
    if bad_train.height:
        msg = f"`train` column 'y' has null/NaN/inf values in series {_series_list(bad_train['unique_id'])}"
        raise InvalidInputError(msg, field="train", details={"series": bad_train["unique_id"].to_list()[:100]})
    if unscaled == "null":  # no scale: null MASE/MSIS for the series, left out of the means
        undefined = (pl.col("n_train") <= m) | (pl.col("scale") == 0)
        joined = joined.with_columns(pl.when(undefined).then(None).otherwise(pl.col("scale")).alias("scale"))
        per_series_train = per_series_train.filter(~undefined)
    short = per_series_train.filter(pl.col("n_train") <= m)
    if short.height:
        msg = (f"the MASE scale with season_length={m} needs more than {m} training points; "
               f"{short.height} series too short: {_series_list(short['unique_id'])}")
        raise InsufficientHistoryError(
            msg,
            field="train",
            details={"series": {r["unique_id"]: {"length": r["n_train"], "minimum": m + 1} for r in short.iter_rows(named=True)}},
        )
    zero = per_series_train.filter(pl.col("scale") == 0)
    if zero.height:
        msg = (f"the MASE scale (mean absolute lag-{m} difference of the training data) is 0 for series "
               f"{_series_list(zero['unique_id'])}: they repeat exactly every season, so scaled errors are undefined")
        raise InvalidInputError(msg, field="train", details={"series": zero["unique_id"].to_list()[:100]})
    return joined


def _check_crossed(joined: pl.DataFrame, interval_cols: dict[tuple[str, float], tuple[str, str]]) -> None:
    for (model, lv), (lo_col, hi_col) in interval_cols.items():
        crossed = joined.filter(pl.col(lo_col) > pl.col(hi_col))
        if crossed.height:
            msg = (f"model {model!r} level {lv:g}: {crossed.height} interval(s) with lo > hi in series "
                   f"{_series_list(crossed['unique_id'])}")
            raise InvalidInputError(msg, field="forecasts")


def _per_series(joined: pl.DataFrame, score_cols: list[str],
                interval_cols: dict[tuple[str, float], tuple[str, str]], levels: list[float]) -> pl.DataFrame:
    """Each metric per series: one row per ``unique_id``, columns ``<model>__<metric>``."""
    y = pl.col("y")

    def point_exprs(col: str) -> list[pl.Expr]:
        f = pl.col(col)
        err = (y - f).abs()
        den = y.abs() + f.abs()
        smape_term = pl.when(den > 0).then(200.0 * err / den).otherwise(0.0)
        return [
            smape_term.mean().alias(f"{col}__smape"),
            (err.mean() / pl.col("scale").first()).alias(f"{col}__mase"),
            err.mean().alias(f"{col}__mae"),
            ((y - f) ** 2).mean().sqrt().alias(f"{col}__rmse"),
        ]

    def interval_exprs(model: str, lv: float, lo_col: str, hi_col: str) -> list[pl.Expr]:
        lo, hi = pl.col(lo_col), pl.col(hi_col)
        alpha = 1.0 - lv / 100.0
        below = pl.when(y < lo).then(lo - y).otherwise(0.0)
        above = pl.when(y > hi).then(y - hi).otherwise(0.0)
        score = (hi - lo) + (2.0 / alpha) * below + (2.0 / alpha) * above
        return [
            ((y >= lo) & (y <= hi)).cast(pl.Float64).mean().alias(f"{model}__cov__{lv}"),
            (score.mean() / pl.col("scale").first()).alias(f"{model}__msis__{lv}"),
        ]

    exprs = [e for col in score_cols for e in point_exprs(col)]
    exprs += [e for (model, lv), (lo, hi) in interval_cols.items() for e in interval_exprs(model, lv, lo, hi)]
    exprs += [e for model, quantiles in _model_quantiles(interval_cols, levels).items()
              for e in _quantile_loss_exprs(model, quantiles)]
    exprs.append(y.abs().sum().alias("__abs_y"))
    return joined.group_by("unique_id").agg(exprs).sort("unique_id")  # fixed order: reproducible float sums


def _model_quantiles(interval_cols: dict[tuple[str, float], tuple[str, str]],
                     levels: list[float]) -> dict[str, dict[float, str]]:
    """Models with interval columns at every requested level: quantile level -> column (the point is the median)."""
    out: dict[str, dict[float, str]] = {}
    for model in dict.fromkeys(m for m, _ in interval_cols):
        if levels and all((model, lv) in interval_cols for lv in levels):
            quantiles = {0.5: model}
            for lv in levels:
                q_lo, q_hi = interval_quantiles(lv)
                quantiles[q_lo], quantiles[q_hi] = interval_cols[(model, lv)]
            out[model] = quantiles
    return out


def _quantile_loss_exprs(model: str, quantiles: dict[float, str]) -> list[pl.Expr]:
    """Per series: the summed (for WQL) and scaled mean (for SQL) quantile loss, averaged over quantile levels."""
    y = pl.col("y")
    losses = [2.0 * ((y - pl.col(col)) * ((y <= pl.col(col)).cast(pl.Float64) - q)).abs()
              for q, col in quantiles.items()]
    mean_q = pl.sum_horizontal(losses) / len(losses)
    return [mean_q.sum().alias(f"{model}__ql_sum"), (mean_q.mean() / pl.col("scale").first()).alias(f"{model}__sql")]


def _score_table(means: dict[str, Any], model_list: list[str], levels: list[float],
                 interval_cols: dict[tuple[str, float], tuple[str, str]], naive2_column: str | None) -> pl.DataFrame:
    """One row per model: the means, OWA against Naive2 (when given), coverage and MSIS per level."""
    naive2 = None
    if naive2_column is not None:
        naive2 = (means[f"{naive2_column}__smape"], means[f"{naive2_column}__mase"])

    rows = []
    for model in model_list:
        row: dict[str, object] = {
            "model": model,
            "smape": means[f"{model}__smape"],
            "mase": means[f"{model}__mase"],
            "owa": None,
            "mae": means[f"{model}__mae"],
            "rmse": means[f"{model}__rmse"],
        }
        if naive2 is not None and None not in (row["mase"], naive2[1]):
            row["owa"] = owa(row["smape"], row["mase"], naive2[0], naive2[1])  # type: ignore[arg-type]
        for lv in levels:
            key = _level_names(lv)[0]
            present = (model, lv) in interval_cols
            row[f"coverage_{key}"] = means[f"{model}__cov__{lv}"] if present else None
            row[f"msis_{key}"] = means[f"{model}__msis__{lv}"] if present else None
        if levels:
            ql_sum, abs_y = means.get(f"{model}__ql_sum"), means["__abs_y"]
            row["wql"] = ql_sum / abs_y if ql_sum is not None and abs_y else None
            row["sql"] = means.get(f"{model}__sql")
        rows.append(row)
    schema: dict[str, pl.DataType] = {
        "model": pl.Utf8(),
        "smape": pl.Float64(),
        "mase": pl.Float64(),
        "owa": pl.Float64(),
        "mae": pl.Float64(),
        "rmse": pl.Float64(),
    }
    for lv in levels:
        key = _level_names(lv)[0]
        schema[f"coverage_{key}"] = pl.Float64()
        schema[f"msis_{key}"] = pl.Float64()
    if levels:
        schema["wql"] = pl.Float64()
        schema["sql"] = pl.Float64()
    return pl.DataFrame(rows, schema=schema)
