"""Classical multiplicative decomposition and the M4 organisers' Naive2 benchmark.

A numpy port of the statistical-benchmark code the M4 organisers published with
the competition (``Benchmarks and Evaluation.R`` in
https://github.com/Mcompetitions/M4-methods: ``SeasonalityTest`` and the Naive2
branch of ``Benchmarks``), which in turn calls R's ``stats::acf`` and
``stats::decompose(type = "multiplicative")``. Every R detail that changes a
number is kept, including the ones that look accidental (see
:func:`seasonality_test`).

Naive2 is the benchmark that the M4 Overall Weighted Average (OWA) is relative
to: a random-walk forecast of the seasonally adjusted series, re-seasonalised
with the last cycle of seasonal indices, where the series is only adjusted when
a 90% autocorrelation test finds seasonality.

Source: Makridakis, S., Spiliotis, E. & Assimakopoulos, V. (2020). "The M4
Competition: 100,000 time series and 61 forecasting methods". International
Journal of Forecasting 36(1), 54-74.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from scipy.stats import norm

from forecasting.errors import InsufficientHistoryError, InvalidInputError, InvalidParameterError
from forecasting.evaluation import finite_series

__all__ = [
    "centred_ma",
    "classical_components",
    "components",
    "forecast_components",
    "Naive2Decomposition",
    "Naive2Forecast",
    "acf",
    "naive2_decompose",
    "naive2_forecast",
    "naive2_intervals",
    "r_default_max_lag",
    "seasonal_indices",
    "seasonality_test",
]

#: One-sided 95% normal quantile, i.e. the two-sided 90% critical value the M4 code uses.
_TCRIT = 1.645


class Naive2Forecast(NamedTuple):
    """What :func:`naive2_forecast` returns (a tuple, so it also unpacks as three arrays)."""

    mean: np.ndarray
    """Point forecast, shape (h,), in the units of ``y``."""
    seasonal_out: np.ndarray
    """Seasonal indices applied to each step, shape (h,), unitless (all 1.0 when not seasonal)."""
    adjusted: np.ndarray
    """The seasonally adjusted history ``y / seasonal``, shape (n,), in the units of ``y``."""


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        msg = f"`{name}` must be an integer >= 1, got {value!r}"
        raise InvalidParameterError(msg, field=name)
    return int(value)


def r_default_max_lag(n: int) -> int:
    """R's default ``lag.max`` for ``acf`` on one series: ``min(floor(10 * log10(n)), n - 1)``.

    Parameters
    ----------
    n : int
        Number of observations, >= 1.

    Returns
    -------
    int
        The largest lag R computes when ``lag.max`` is not given.
    """
    return int(min(math.floor(10 * math.log10(n)), n - 1))


def acf(y: Sequence[float] | np.ndarray, nlags: int) -> np.ndarray:
    """Biased sample autocorrelation, as R's ``stats::acf(x, demean = TRUE)``.

    ``acf[k] = sum_{t=1}^{n-k} (y_t - ybar)(y_{t+k} - ybar) / sum_{t=1}^{n} (y_t - ybar)^2``
    (both sums over ``n``, so the ``1/n`` factors cancel).

    Parameters
    ----------
    y : array of shape (n_timesteps,)
        Finite observations.
    nlags : int
        Largest lag, ``0 <= nlags <= n_timesteps - 1``.

    Returns
    -------
    ndarray of shape (nlags + 1,)
        Autocorrelations at lags ``0..nlags``; ``acf[0]`` is 1.0. A constant series has
        zero variance and gives NaN at every lag (as R does).

    Raises
    ------
    InvalidInputError
        If ``y`` is not 1-D, is empty or holds NaN/inf.
    InvalidParameterError
        If ``nlags`` is negative or not below the series length.

    Examples
    --------
    >>> acf([1.0, 2.0, 3.0, 4.0], 2).round(4).tolist()
    [1.0, 0.25, -0.3]
    """
    x = finite_series(y)
    n = x.size
    if isinstance(nlags, bool) or not isinstance(nlags, (int, np.integer)) or not 0 <= nlags <= n - 1:
        msg = f"`nlags` must be an integer in [0, {n - 1}] for a series of length {n}, got {nlags!r}"
        raise InvalidParameterError(msg, field="nlags",)
    d = x - x.mean()
    denom = float(np.dot(d, d))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.array([np.dot(d[: n - k], d[k:]) for k in range(int(nlags) + 1)]) / denom
    return out


def seasonality_test(y: Sequence[float] | np.ndarray, season_length: int) -> bool:
    """The M4 organisers' 90% autocorrelation test for seasonality (``SeasonalityTest`` in R).

    The series is called seasonal when the autocorrelation at lag ``m = season_length``
    exceeds ``1.645 / sqrt(n) * sqrt(1 + 2 * sum_{k=1}^{m-1} acf_k^2)`` in absolute value
    (Bartlett's standard error for lag ``m`` under an MA(m-1) null).

    Two R behaviours are kept on purpose, because the published Naive2 scores depend on them:

    - series shorter than ``3 * m`` are not seasonal;
    - the autocorrelations come from R's default ``lag.max`` (``floor(10 * log10(n))``, see
      :func:`r_default_max_lag`). When ``m`` exceeds it, ``xacf[ppy]`` is ``NA`` in R and the
      test returns FALSE. So, e.g., an hourly series (``m = 24``) of fewer than 252 points is
      never seasonal, however strong its daily cycle.

    A constant series (undefined autocorrelation) is not seasonal, as in R.

    Parameters
    ----------
    y : array of shape (n_timesteps,)
        Finite observations.
    season_length : int
        Observations per seasonal cycle (M4's ``frequency``: 24 hourly, 12 monthly...), >= 1.

    Returns
    -------
    bool
        True when the series passes the test. Always False for ``season_length == 1``.

    Raises
    ------
    InvalidInputError
        If ``y`` is not 1-D, is empty or holds NaN/inf.
    InvalidParameterError
        If ``season_length`` is not an integer >= 1.

    Notes
    -----
    Source: ``SeasonalityTest`` in ``Benchmarks and Evaluation.R``,
    https://github.com/Mcompetitions/M4-methods; Makridakis, Spiliotis & Assimakopoulos
    (2020), IJF 36(1).
    """
    x = finite_series(y)
    m = _check_positive_int(season_length, "season_length")
    n = x.size
    if m == 1 or n < 3 * m:
        return False
    max_lag = r_default_max_lag(n)
    if m > max_lag:
        return False  # R: xacf[ppy] is NA -> test_seasonal is NA -> FALSE
    xacf = acf(x, max_lag)[1:]  # lags 1..max_lag; xacf[k - 1] is lag k
    if not np.all(np.isfinite(xacf[:m])):
        return False
    clim = _TCRIT / math.sqrt(n) * np.sqrt(np.cumsum(np.concatenate(([1.0], 2.0 * xacf**2))))
    # R (1-based): abs(xacf[ppy]) > clim[ppy]; clim[ppy] sums lags 1..ppy-1.
    return bool(abs(xacf[m - 1]) > clim[m - 1])


def seasonal_indices(y: Sequence[float] | np.ndarray, season_length: int) -> np.ndarray:
    """Multiplicative seasonal component, as R's ``decompose(x, type = "multiplicative")$seasonal``.

    1. Trend: centred moving average of order ``m`` (``c(0.5, rep(1, m - 1), 0.5) / m`` for
       even ``m``, ``rep(1, m) / m`` for odd ``m``), undefined (NaN) for the first and last
       ``m // 2`` points.
    2. Detrended ratios ``y / trend``.
    3. Seasonal figure: for each cycle position ``j`` (the series' first point is position 0,
       whatever its calendar phase, as in R), the mean of the ratios at positions ``t`` with
       ``t mod m == j``, ignoring NaN; then divided by its mean so the figure averages 1.
    4. The figure tiled over the series.

    Parameters
    ----------
    y : array of shape (n_timesteps,)
        Strictly positive, finite observations; at least two full cycles (``n >= 2 * m``).
    season_length : int
        Observations per cycle, >= 2.

    Returns
    -------
    ndarray of shape (n_timesteps,)
        Seasonal indices (unitless ratios, mean 1 over a cycle); ``y / indices`` is the
        seasonally adjusted series.

    Raises
    ------
    InvalidInputError
        If ``y`` is not 1-D, holds NaN/inf, or has a value <= 0 (a multiplicative
        decomposition divides by the level).
    InvalidParameterError
        If ``season_length`` is not an integer >= 2.
    InsufficientHistoryError
        If ``y`` has fewer than ``2 * season_length`` points (R: "time series has no or
        less than 2 periods").

    Notes
    -----
    Source: R ``stats::decompose``; used by the M4 Naive2 benchmark
    (https://github.com/Mcompetitions/M4-methods, ``Benchmarks and Evaluation.R``).

    Examples
    --------
    >>> seasonal_indices([1.0, 3.0, 1.0, 3.0, 1.0, 3.0], 2).tolist()
    [0.5, 1.5, 0.5, 1.5, 0.5, 1.5]
    """
    x = finite_series(y)
    m = _check_positive_int(season_length, "season_length")
    if m < 2:
        msg = f"`season_length` must be >= 2 for a seasonal decomposition, got {m}"
        raise InvalidParameterError(msg, field="season_length")
    n = x.size
    if n < 2 * m:
        msg = (
            f"a seasonal decomposition with season_length={m} needs at least {2 * m} observations "
            f"(two full cycles), got {n}"
        )
        raise InsufficientHistoryError(msg, field="y", details={"length": n, "minimum": 2 * m},)
    nonpos = np.flatnonzero(x <= 0)
    if nonpos.size:
        msg = (
            f"a multiplicative decomposition needs strictly positive values; {nonpos.size} value(s) "
            f"<= 0 at positions {nonpos[:5].tolist()}"
        )
        raise InvalidInputError(msg, field="y", details={"positions": nonpos[:20].tolist()},)
    if m % 2 == 0:
        weights = np.concatenate(([0.5], np.ones(m - 1), [0.5])) / m
    else:
        weights = np.ones(m) / m
    half = (weights.size - 1) // 2  # filter is symmetric with odd length in both cases
    trend = np.full(n, np.nan)
    trend[half : n - half] = np.convolve(x, weights, mode="valid")
    ratios = x / trend
    # R: index <- seq(1, l, by = f) - 1; figure[i] <- mean(season[index + i], na.rm = TRUE)
    n_cycles = -(-n // m)
    padded = np.full(n_cycles * m, np.nan)
    padded[:n] = ratios
    figure = np.nanmean(padded.reshape(n_cycles, m), axis=0)
    figure = figure / figure.mean()
    return np.tile(figure, n_cycles)[:n]


class Naive2Decomposition(NamedTuple):
    """What :func:`naive2_decompose` returns."""

    adjusted: np.ndarray
    """The seasonally adjusted history ``y / seasonal``, shape (n,), in the units of ``y``."""
    seasonal: np.ndarray
    """Multiplicative seasonal indices, shape (n,), unitless (all 1.0 when Naive2 does not adjust)."""
    note: str | None
    """Why a series that the seasonality test calls seasonal is not adjusted (values <= 0), else None."""


def naive2_decompose(y: Sequence[float] | np.ndarray, season_length: int) -> Naive2Decomposition:
    """The seasonal adjustment of the M4 Naive2 benchmark (the one place its rule lives).

    When ``season_length > 1`` and :func:`seasonality_test` passes, the series is divided by its
    multiplicative seasonal indices (:func:`seasonal_indices`); otherwise it is left as it is.
    A series that passes the test but has a value <= 0 has no multiplicative indices (a ratio to a
    level that is zero or negative): it is left unadjusted, so Naive2 is plain naive on it, and
    ``note`` says so. (The M4 organisers' code assumes positive data, as every M4 series is; R's
    ``decompose`` would return infinite or sign-flipped indices.)

    Parameters
    ----------
    y : array of shape (n_timesteps,)
        Finite observations.
    season_length : int
        Observations per cycle (M4's ``frequency``), >= 1.

    Returns
    -------
    Naive2Decomposition
        ``(adjusted, seasonal, note)``: arrays of shape (n_timesteps,) and the note (or None).

    Raises
    ------
    InvalidInputError
        If ``y`` is not 1-D, is empty or holds NaN/inf.
    InvalidParameterError
        If ``season_length`` is not an integer >= 1.

    Notes
    -----
    Source: ``Benchmarks`` in ``Benchmarks and Evaluation.R``, https://github.com/Mcompetitions/M4-methods;
    Makridakis, Spiliotis & Assimakopoulos (2020), IJF 36(1).

    Examples
    --------
    >>> naive2_decompose([1.0, 2.0, 3.0], 1).note is None
    True
    """
    x = finite_series(y)
    m = _check_positive_int(season_length, "season_length")
    if m == 1 or not seasonality_test(x, m):
        return Naive2Decomposition(adjusted=x.copy(), seasonal=np.ones(x.size), note=None)
    nonpos = np.flatnonzero(x <= 0)
    if nonpos.size:
        note = (f"seasonal at lag {m} by Naive2's 90% autocorrelation test, but {nonpos.size} value(s) <= 0 "
                f"(first at position {int(nonpos[0])}) leave its multiplicative seasonal indices undefined: plain "
                f"naive used")
        return Naive2Decomposition(adjusted=x.copy(), seasonal=np.ones(x.size), note=note)
    seasonal = seasonal_indices(x, m)
    return Naive2Decomposition(adjusted=x / seasonal, seasonal=seasonal, note=None)


def naive2_forecast(y: Sequence[float] | np.ndarray, h: int, season_length: int) -> Naive2Forecast:
    """The M4 Naive2 benchmark: naive forecast of the seasonally adjusted series, re-seasonalised.

    The series is seasonally adjusted as :func:`naive2_decompose` says (when ``season_length > 1``
    and :func:`seasonality_test` passes, and every value is positive); the forecast is the last
    adjusted value times the last cycle of indices repeated over the horizon. Otherwise the
    forecast is the plain naive forecast (last value repeated).

    Parameters
    ----------
    y : array of shape (n_timesteps,)
        Finite observations.
    h : int
        Forecast horizon in steps, >= 1.
    season_length : int
        Observations per cycle (M4's ``frequency``), >= 1.

    Returns
    -------
    Naive2Forecast
        ``(mean, seasonal_out, adjusted)``: point forecast of shape (h,) in the units of
        ``y``; the seasonal index used at each step, shape (h,) (all ones when not
        seasonal); the adjusted history, shape (n_timesteps,).

    Raises
    ------
    InvalidInputError
        If ``y`` is not 1-D, empty or holds NaN/inf.
    InvalidParameterError
        If ``h`` or ``season_length`` is not an integer >= 1.

    Notes
    -----
    Source: ``Benchmarks`` (``f3``) in ``Benchmarks and Evaluation.R``,
    https://github.com/Mcompetitions/M4-methods; Makridakis, Spiliotis & Assimakopoulos
    (2020), IJF 36(1). On M4 Hourly (m = 24, h = 48) it gives the published
    sMAPE 18.383 and MASE 2.395 (pinned in ``tests/test_evaluation.py``).

    Examples
    --------
    >>> naive2_forecast([1.0, 2.0, 3.0], 2, 1).mean.tolist()
    [3.0, 3.0]
    """
    x = finite_series(y)
    h = _check_positive_int(h, "h")
    m = _check_positive_int(season_length, "season_length")
    adjusted, seasonal, _ = naive2_decompose(x, m)
    seasonal_out = np.resize(seasonal[-m:], h)  # R: head(rep(tail(seasonal, ppy), fh), fh)
    mean = adjusted[-1] * seasonal_out
    return Naive2Forecast(mean=mean, seasonal_out=seasonal_out, adjusted=adjusted)


def naive2_intervals(
    y: Sequence[float] | np.ndarray,
    h: int,
    season_length: int,
    *,
    level: Sequence[float],
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Normal prediction intervals for Naive2, as R's ``forecast::naive`` on the adjusted series.

    On the seasonally adjusted scale the random walk's ``k``-step interval is
    ``last +/- z * sigma * sqrt(k)`` with ``sigma = sqrt(mean(diff(adjusted)^2))`` (the
    root mean square of the one-step naive residuals, not mean-centred and with divisor
    ``n - 1``, the number of residuals: what ``forecast::naive``/``lagwalk`` uses). Both
    bounds are then multiplied by the seasonal indices of the horizon, like the mean.

    Parameters
    ----------
    y : array of shape (n_timesteps,)
        Finite observations, at least 2.
    h : int
        Forecast horizon in steps, >= 1.
    season_length : int
        Observations per cycle, >= 1.
    level : sequence of float
        Coverage levels in percent, each in (0, 100), e.g. ``[80, 95]``.

    Returns
    -------
    dict
        ``{level: (lo, hi)}`` with ``lo`` and ``hi`` arrays of shape (h,) in the units of ``y``.

    Raises
    ------
    InvalidInputError
        As :func:`naive2_forecast`.
    InsufficientHistoryError
        If ``y`` has fewer than 2 observations (no residual to estimate sigma).
    InvalidParameterError
        If ``h`` or ``season_length`` is not an integer >= 1, or a level is outside (0, 100).

    Notes
    -----
    Source: Hyndman & Athanasopoulos, *Forecasting: Principles and Practice* (3rd ed.),
    section 5.5 (naive method); R package ``forecast``, ``naive``.
    """
    levels = list(level)
    for lv in levels:
        if isinstance(lv, bool) or not isinstance(lv, (int, float, np.integer, np.floating)) or not 0 < lv < 100:
            msg = f"`level` values must be numbers in (0, 100), got {lv!r}"
            raise InvalidParameterError(msg, field="level")
    x = finite_series(y)
    if x.size < 2:
        msg = f"naive prediction intervals need at least 2 observations, got {x.size}"
        raise InsufficientHistoryError(msg, field="y", details={"length": int(x.size), "minimum": 2},)
    fc = naive2_forecast(x, h, season_length)
    sigma = math.sqrt(float(np.mean(np.diff(fc.adjusted) ** 2)))
    steps = np.sqrt(np.arange(1, fc.mean.size + 1))
    last = fc.adjusted[-1]
    out: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for lv in levels:
        z = float(norm.ppf(0.5 + lv / 200.0))
        half_width = z * sigma * steps
        out[lv] = ((last - half_width) * fc.seasonal_out, (last + half_width) * fc.seasonal_out)
    return out


# ---------------------------------------------------------------------------- labelled components
def components(model: Any, uid: str, y: np.ndarray, season: int) -> tuple[dict[str, np.ndarray], str]:
    """Labelled components of one series and a sentence saying how they were computed.

    ``mstl``: the model's own MSTL components (statsforecast; Bandara, Hyndman & Bergmeir 2021);
    any other model: :func:`classical_components`.

    Parameters
    ----------
    model : fitted statistical forecaster (or any object with a ``name``)
    uid : str
        The series (to find its fitted MSTL state).
    y : array of shape (n,)
        The series, units of ``y``.
    season : int
        Season length, steps.

    Returns
    -------
    (dict of str to array of shape (n,), str)
        ``observed``, ``trend``, the seasonal component(s) and the remainder, in that order; the method.
    """
    if getattr(model, "name", "") == "mstl":
        state = getattr(model, "states_", {}).get(uid)
        if state is None or len(getattr(state, "model_", [])) != len(y):
            try:
                state = model._fit_one(y)  # the model's own MSTL on this history
            except Exception:  # noqa: BLE001 - fall back to the classical decomposition, said in the method text
                state = None
        if state is not None and hasattr(state, "model_"):
            comp = state.model_
            out = {c: comp[c].to_numpy() for c in comp.columns}
            out["observed"] = out.pop("data")
            ordered = {"observed": out.pop("observed"), "trend": out.pop("trend")}
            rem = out.pop("remainder")
            ordered.update(out)
            ordered["remainder"] = rem
            return ordered, "MSTL's own components (statsforecast MSTL: LOESS trend and seasonal components)"
    return classical_components(y, season, naive2=getattr(model, "name", "") == "naive2")


def classical_components(y: np.ndarray, m: int, *, naive2: bool = False) -> tuple[dict[str, np.ndarray], str]:
    """Classical decomposition (R's ``decompose``): multiplicative for positive series, else additive.

    Returns ``observed``, ``trend`` (centred moving average, NaN at the ends), ``seasonal (index)``
    (multiplicative, unitless) or ``seasonal`` (additive, units of ``y``), and the remainder; fewer
    than two seasons: a moving-average trend and remainder only. ``naive2`` adds what the M4 Naive2
    seasonality test concluded to the method sentence.
    """
    n = len(y)
    if m < 2 or n < 2 * m:
        w = min(max(3, (n // 10) | 1), n if n % 2 else n - 1) if n >= 3 else 1
        trend = centred_ma(y, w)
        why = "no seasonal period" if m < 2 else f"fewer than two seasons ({n} < {2 * m})"
        return ({"observed": y, "trend": trend, "remainder": y - trend},
                f"moving-average trend (window {w}) and remainder; no seasonal component ({why})")
    trend = centred_ma(y, m)
    test = ""
    if naive2:
        passed = seasonality_test(y, m)
        test = (f"; Naive2's 90% autocorrelation test at lag {m} {'passed' if passed else 'failed'}, so Naive2 "
                f"{'divides by these seasonal indices' if passed else 'does not seasonally adjust this series'}")
    if np.all(y > 0):
        seasonal = seasonal_indices(y, m)
        return ({"observed": y, "trend": trend, "seasonal (index)": seasonal, "remainder (ratio)": y / (trend * seasonal)},
                f"classical multiplicative decomposition, season length {m} (R decompose; the seasonal indices of "
                f"the M4 Naive2 benchmark){test}")
    detr = y - trend
    n_cycles = -(-n // m)
    padded = np.full(n_cycles * m, np.nan)
    padded[:n] = detr
    figure = np.nanmean(padded.reshape(n_cycles, m), axis=0)
    figure = figure - figure.mean()
    seasonal = np.tile(figure, n_cycles)[:n]
    return ({"observed": y, "trend": trend, "seasonal": seasonal, "remainder": y - trend - seasonal},
            f"classical additive decomposition, season length {m} (R decompose, additive: the series has values "
            f"<= 0){test}")


def centred_ma(y: np.ndarray, m: int) -> np.ndarray:
    """Centred moving average of order ``m`` (2 x m for even ``m``, as R's ``decompose``); NaN at the ends."""
    n = len(y)
    w = np.concatenate(([0.5], np.ones(m - 1), [0.5])) / m if m % 2 == 0 else np.ones(m) / m
    half = (len(w) - 1) // 2
    out = np.full(n, np.nan)
    if n >= len(w):
        out[half:n - half] = np.convolve(y, w, mode="valid")
    return out


def _ets_parts(model: Any, uid: str, y: np.ndarray,
               f: np.ndarray) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], float, np.ndarray] | None:
    """An ETS forecast split by the model's own states (Hyndman et al. 2008): level, trend, seasonal; else None.

    ``level`` is the last level state ``l`` minus the series mean; ``trend`` the trend the model
    carries forward over ``k`` steps (additive ``phi_k b``, multiplicative ``l (b^phi_k - 1)``,
    ``phi_k = phi + ... + phi^k``); ``seasonal`` the rest of the forecast (``f - (l + trend)``).
    """
    state = getattr(model, "states_", {}).get(uid) if isinstance(getattr(model, "states_", None), dict) else None
    fitted = getattr(state, "model_", None)
    if not isinstance(fitted, dict) or "components" not in fitted or "states" not in fitted:
        return None
    states = np.asarray(fitted["states"], dtype=np.float64)
    if states.ndim != 2 or states.shape[0] != len(y) + 1:
        return None
    code = str(fitted["components"]) + "NNNN"  # error, trend, season types, then "D" when damped (statsforecast ets)
    trend, damped = code[1], code[3]
    last = states[-1]
    level = float(last[0])
    par = np.asarray(fitted.get("par", []), dtype=np.float64).reshape(-1)  # alpha, beta, gamma, phi, initial states
    phi = float(par[3]) if damped == "D" and par.size > 3 and np.isfinite(par[3]) else 1.0
    k = np.arange(1, len(f) + 1)
    phi_k = np.cumsum(phi ** k) if phi != 1.0 else k.astype(np.float64)
    if trend == "A":
        carried = level + phi_k * float(last[1])
    elif trend == "M":
        carried = level * float(last[1]) ** phi_k
    else:
        carried = np.full(len(f), level)
    mean = float(y.mean())
    cols = {"level (ETS level at the last observation, minus the series mean)": (np.full(len(f), level - mean),
                                                                                  np.full(len(f), level)),
            "trend (ETS trend carried forward)": (carried - level, carried),
            "seasonal (ETS seasonal component)": (f - carried, f - carried)}
    return cols, mean, f


def _phase_value(component: np.ndarray, n: int, k: int, period: int) -> float:
    """The component's value one or more whole periods before forecast step ``k`` (1-based) of a series of ``n``."""
    back = period * math.ceil(k / period)
    i = n - 1 + k - back
    return float(component[i]) if 0 <= i < n else float("nan")


def forecast_components(model: Any, series: Sequence[tuple[str, np.ndarray]], forecasts: Any, alias: str,
                        season: int) -> Any:
    """A statistical model's forecasts explained by its labelled decomposition (not SHAP).

    Each forecast step ``f`` of a series with history ``y`` is written exactly as
    ``mean(y) + level + trend + seasonal``: ``level`` is the series' trend at its last
    observation minus its mean, ``seasonal`` the seasonal component(s) at the same phase of
    the last season (:func:`components`: MSTL's own for ``mstl``, else R's classical
    decomposition; a multiplicative index ``s`` contributes ``f - f / s``) and ``trend`` the
    rest (the seasonally adjusted forecast minus that level). The remainder of a forecast is 0.
    ``auto_ets`` forecasts are split by the model's own states instead (level, trend, seasonal).

    Parameters
    ----------
    model : fitted statistical forecaster
    series : list of (unique_id, array of shape (n,))
        Each series' history, units of ``y``.
    forecasts : pl.DataFrame
        ``unique_id, ds, <alias>`` (``h`` rows per series, in step order).
    alias : str
        The forecast column.
    season : int
        Season length, steps.

    Returns
    -------
    forecasting.explanation.Explanation
        One row per (series, step) (keys ``unique_id, ds, step``), columns of kind ``series``,
        base value the series' mean, method starting "labelled decomposition (not SHAP)".
    """
    import polars as pl

    from forecasting.explanation import Explanation

    hist = dict(series)
    rows, parts, methods = [], [], []
    for uid, frame in forecasts.group_by("unique_id", maintain_order=True):
        uid = str(uid[0])
        y = np.asarray(hist[uid], dtype=np.float64)
        f = frame[alias].to_numpy().astype(np.float64)
        ets = _ets_parts(model, uid, y, f)
        if ets is not None:
            parts.append(ets)
            methods.append("the ETS model's own components (statsforecast AutoETS: its last level and trend "
                           "states carried forward, the seasonal component the rest of the forecast)")
            rows.append(frame.select("unique_id", "ds").with_columns(pl.int_range(1, pl.len() + 1).alias("step")))
            continue
        comps, method = components(model, uid, y, season)
        methods.append(method)
        trend = comps["trend"]
        finite = trend[np.isfinite(trend)]
        level = float(finite[-1]) if finite.size else float(y.mean())
        seasonal: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        adjusted = f.copy()
        for name, comp in comps.items():
            if name in ("observed", "trend") or name.startswith("remainder"):
                continue
            digits = "".join(ch for ch in name if ch.isdigit())
            period = int(digits) if digits else season
            at = np.array([_phase_value(np.asarray(comp, dtype=np.float64), len(y), k, period)
                           for k in range(1, len(f) + 1)])
            if "index" in name:  # multiplicative: f = adjusted * s
                adjusted = adjusted / at
                seasonal[name] = (f - f / at, at)
            else:
                adjusted = adjusted - at
                seasonal[name] = (at, at)
        mean = float(y.mean())
        cols = {"level (trend at the last observation, minus the series mean)": (np.full(len(f), level - mean),
                                                                                  np.full(len(f), level)),
                "trend (seasonally adjusted forecast, minus that level)": (adjusted - level, adjusted), **seasonal}
        parts.append((cols, mean, f))
        rows.append(frame.select("unique_id", "ds").with_columns(pl.int_range(1, pl.len() + 1).alias("step")))
    names = list(dict.fromkeys(n for cols, _, _ in parts for n in cols))
    values, data, base, output = [], [], [], []
    for cols, mean, f in parts:
        values.append(np.column_stack([cols[n][0] if n in cols else np.zeros(len(f)) for n in names]))
        data.append(np.column_stack([cols[n][1] if n in cols else np.full(len(f), np.nan) for n in names]))
        base.append(np.full(len(f), mean))
        output.append(f)
    if not parts:
        names = ["level (trend at the last observation, minus the series mean)"]
    n_cols = len(names)
    method = "; ".join(dict.fromkeys(methods)) or "no series"
    return Explanation(values=np.concatenate(values) if values else np.zeros((0, n_cols)),
                       base_values=np.concatenate(base) if base else np.zeros(0), feature_names=names,
                       data=np.concatenate(data) if data else np.zeros((0, n_cols)),
                       output=np.concatenate(output) if output else np.zeros(0),
                       rows=pl.concat(rows) if rows else pl.DataFrame({"unique_id": [], "ds": [], "step": []}),
                       method=f"labelled decomposition (not SHAP) of the {alias} forecast: series mean + level + "
                              f"trend + seasonal ({method}; a forecast has no remainder)",
                       kinds=["series"] * n_cols)
