"""Anomalies: points outside a prediction interval, with a score.

Two sources of intervals, one rule:

* **on history**, :func:`insample_intervals` puts an interval at ``level`` around each in-sample one-step
  fitted value (the model's ``fitted_values()``): ``normal`` (the default, the model's native band) a Gaussian
  band ``fitted +- z sigma`` with ``sigma`` the residuals' standard deviation (what statsforecast's in-sample
  intervals assume for its models), ``conformal`` the split-conformal quantile of the absolute in-sample
  residuals per series (the ``ceil((n + 1) level)``-th smallest; Vovk, Gammerman & Shafer 2005, *Algorithmic
  Learning in a Random World*; Angelopoulos & Bates 2021, "A gentle introduction to conformal prediction",
  section 1). The conformal band flags at most about ``100 - level`` % of each series' points, and none at all
  when the quantile's rank is the number of residuals or more (the band is then the largest residual, so the
  spike it should flag sets its width): a series needs at least :func:`conformal_min_residuals` residuals,
  ``ceil((100 + level) / (100 - level))`` (199 at level 99, 39 at 95). A series with fewer gets the normal band
  instead, and the caller's ``notes`` say which (:func:`insample_intervals`). On M4 Hourly with injected
  anomalies (``forecasting.benchmarks.anomalies_m4``) the normal band found more of them at a similar
  precision, hence the default. Residuals without spread (all equal up to rounding: a straight line under
  ``naive``) would give a zero-width normal band flagging every point off the fit; their band is the constant
  residual plus :data:`ZERO_SPREAD_TOLERANCE` times the series' largest ``|y|``, and a note says so;
* **on new observations**, the interval of the forecast served for that point (its ``-lo-``/``-hi-``
  columns at ``level``).

:func:`score_points` then gives each point its score: the distance from the centre in half-widths on its side,
``(y - center) / (hi - center)`` above the centre and ``(center - y) / (center - lo)`` below it; a point is an
anomaly when its score exceeds 1, i.e. when it lies outside ``[lo, hi]``. The use cases
(:func:`forecasting.service.monitoring.detect_anomalies` on inline data, and
:meth:`forecasting.service.monitoring.Monitoring.observation_anomalies` on a registered model's observations)
call these.
"""

from __future__ import annotations

from statistics import NormalDist
from typing import Literal

import math

import numpy as np
import polars as pl

from forecasting.errors import InvalidParameterError

__all__ = ["METHODS", "ZERO_SPREAD_RTOL", "ZERO_SPREAD_TOLERANCE", "conformal_min_residuals", "insample_intervals",
           "score_points"]

Method = Literal["conformal", "normal"]
METHODS: tuple[str, ...] = ("conformal", "normal")


def conformal_min_residuals(level: float) -> int:
    """The fewest residuals with which a split-conformal band at ``level`` can leave a point outside it.

    The band's half-width is the ``k = ceil((n + 1) level / 100)``-th smallest of ``n`` absolute residuals
    (Vovk, Gammerman & Shafer 2005); a residual can exceed it only when ``k <= n - 1``, i.e. when
    ``n >= (100 + level) / (100 - level)``.

    Parameters
    ----------
    level : float
        Percent, in (0, 100).

    Returns
    -------
    int
        The smallest such ``n`` (at least 2).

    Examples
    --------
    >>> conformal_min_residuals(99), conformal_min_residuals(95), conformal_min_residuals(50)
    (199, 39, 3)
    """
    n = max(2, math.ceil((100 + level) / (100 - level) - 1e-9))
    while math.ceil((n + 1) * level / 100.0) > n - 1:  # the rounding of the bound above, checked exactly
        n += 1
    return n


#: residuals whose standard deviation is at most this fraction of the series' scale (its largest ``|y|``) have
#: no spread: all equal up to rounding (a perfectly linear series under ``naive``, a constant one under any model)
ZERO_SPREAD_RTOL = 1e-9
#: how far from the fit, relative to the series' scale, a point must be to be flagged when its band has no spread
ZERO_SPREAD_TOLERANCE = 1e-6


def _half_width(residuals: np.ndarray, level: float, method: str, *, scale: float = 0.0) -> tuple[float, str]:
    """The interval's half-width for one series' residuals (finite ones only; NaN when there are none) and the
    band used: ``conformal`` falls back to ``normal`` below :func:`conformal_min_residuals`; a ``normal`` band of
    residuals without spread (see :data:`ZERO_SPREAD_RTOL`) is ``zero-spread``: their common absolute value plus
    :data:`ZERO_SPREAD_TOLERANCE` times ``scale`` (the series' largest ``|y|``), not a zero width that would flag
    every point off the fit by rounding or by the constant residual."""
    from forecasting.models.auto import _conformal_quantile

    r = residuals[np.isfinite(residuals)]
    if r.size == 0:
        return float("nan"), method
    if method == "conformal" and r.size >= conformal_min_residuals(level):
        return _conformal_quantile(np.abs(r), level), method
    if r.size < 2:
        return float("nan"), "normal"
    sigma = float(np.std(r, ddof=1))
    if sigma <= ZERO_SPREAD_RTOL * scale or sigma == 0.0:
        return float(np.max(np.abs(r))) + ZERO_SPREAD_TOLERANCE * scale, "zero-spread"
    return float(NormalDist().inv_cdf(0.5 + level / 200.0) * sigma), "normal"


def insample_intervals(fitted: pl.DataFrame, *, level: float, method: Method = "normal",
                       fitted_col: str = "fitted", notes: list[str] | None = None) -> pl.DataFrame:
    """Intervals at ``level`` around in-sample fitted values, per series.

    Parameters
    ----------
    fitted : pl.DataFrame
        ``unique_id, ds, y`` and ``fitted_col`` (the one-step fitted value; null where the model has none, such
        as a seasonal naive's first season).
    level : float
        Percent, in (0, 100).
    method : {"conformal", "normal"}
        See the module docstring. ``conformal`` on a series with fewer residuals than
        :func:`conformal_min_residuals` (199 at level 99) uses the normal band for it.
    fitted_col : str
    notes : list of str, optional
        Receives one note naming the series that got the normal band instead of the conformal one, with their
        residual counts and the minimum, and one naming the series with fewer than 2 residuals (no band).

    Returns
    -------
    pl.DataFrame
        ``unique_id, ds, y, fitted, lo, hi`` in the input's order (``lo``/``hi`` null where ``fitted`` is, and
        for a series with fewer than 2 residuals: no spread to estimate).

    Raises
    ------
    InvalidParameterError
        An unknown ``method`` or a ``level`` outside (0, 100).

    Examples
    --------
    Residuals 0, 1, -1, 2, -2, 10 of one series: the 50 % conformal half-width is the
    ``ceil(7 * 0.5) = 4``-th smallest absolute residual, 2; the normal one ``0.6745 * 4.3205`` (``z`` of the
    75th percentile times the residuals' standard deviation, ``sqrt((110 - 6 (5/3)^2) / 5)``).

    >>> f = pl.DataFrame({"unique_id": ["a"] * 6, "ds": range(6), "y": [0.0, 1, -1, 2, -2, 10],
    ...                   "fitted": [0.0] * 6})
    >>> insample_intervals(f, level=50, method="conformal")["hi"].to_list()
    [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    >>> round(insample_intervals(f, level=50)["hi"][0], 4)
    2.9141
    """
    if method not in METHODS:
        msg = f"method must be one of {', '.join(METHODS)}, got {method!r}"
        raise InvalidParameterError(msg, field="method")
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 100:
        msg = f"level must be a number in (0, 100) (percent), got {level!r}"
        raise InvalidParameterError(msg, field="level")
    frame = fitted.rename({fitted_col: "fitted"}) if fitted_col != "fitted" else fitted
    widths, normal, flat, unscored = {}, {}, [], {}
    for (uid,), part in frame.select("unique_id", "y", "fitted").group_by("unique_id", maintain_order=True):
        residuals = (part["y"] - part["fitted"]).to_numpy().astype(np.float64)
        y = part["y"].to_numpy().astype(np.float64)
        scale = float(np.max(np.abs(y[np.isfinite(y)]), initial=0.0))
        widths[str(uid)], used = _half_width(residuals, float(level), method, scale=scale)
        if used == "zero-spread":
            flat.append(str(uid))
        if np.isnan(widths[str(uid)]):
            unscored[str(uid)] = int(np.isfinite(residuals).sum())
        if used != method and method == "conformal":
            normal[str(uid)] = int(np.isfinite(residuals).sum())
    if flat and notes is not None:
        shown = ", ".join(f"'{u}'" for u in flat[:5]) + (f" and {len(flat) - 5} more" if len(flat) > 5 else "")
        notes.append(f"zero residual spread: the in-sample residuals of {len(flat)} series ({shown}) are all equal "
                     f"(the fit follows them exactly, e.g. a straight line under naive), so a normal band would have "
                     f"zero width and flag every point; their band is the constant residual plus "
                     f"{ZERO_SPREAD_TOLERANCE:g} times the series' largest |y|: a point is flagged only when it is "
                     f"further than that from the fit")
    if normal and notes is not None:
        shown = ", ".join(f"'{u}' ({n})" for u, n in list(normal.items())[:5])
        more = f" and {len(normal) - 5} more" if len(normal) > 5 else ""
        notes.append(f"conformal band: {len(normal)} series have fewer than {conformal_min_residuals(level)} "
                     f"in-sample residuals ({shown}{more}), the fewest with which a {level:g}% conformal band can "
                     f"leave a point outside it (with fewer, it is the largest residual, set by the spike itself): "
                     f"they got the normal band")
    if unscored and notes is not None:
        shown = ", ".join(f"'{u}' ({n})" for u, n in list(unscored.items())[:5])
        more = f" and {len(unscored) - 5} more" if len(unscored) > 5 else ""
        notes.append(f"no band: {len(unscored)} series have fewer than 2 in-sample residuals ({shown}{more}), too few "
                     f"to estimate their spread: their points have no interval and no score, and none is flagged")
    # no spread estimate (NaN) is no band (null): a NaN bound would score NaN, which polars orders above 1
    half = pl.col("unique_id").cast(pl.String).replace_strict(widths, return_dtype=pl.Float64).fill_nan(None)
    return frame.select("unique_id", "ds", "y", "fitted").with_columns(
        (pl.col("fitted") - half).alias("lo"), (pl.col("fitted") + half).alias("hi"))


def score_points(frame: pl.DataFrame, *, center: str = "fitted") -> pl.DataFrame:
    """Add ``score`` and ``anomaly`` to rows with ``y``, a centre and ``lo``/``hi`` bounds.

    Parameters
    ----------
    frame : pl.DataFrame
        Columns ``y``, ``center``, ``lo``, ``hi`` (nulls allowed: no score there).
    center : str
        The column the interval is centred on (the fitted value or the served point forecast).

    Returns
    -------
    pl.DataFrame
        ``frame`` with ``score`` (half-widths from the centre on the point's side; ``inf`` for a point off a
        zero-width band, 0 on it (within 1e-9 relative: a flat series' fitted value off by rounding), null
        where a value or bound is null) and ``anomaly`` (``score > 1``: outside ``[lo, hi]``; false where no
        score).

    Examples
    --------
    >>> f = pl.DataFrame({"y": [11.0, 7.0, 10.5], "fitted": [10.0] * 3, "lo": [8.0] * 3, "hi": [12.0] * 3})
    >>> score_points(f).select("score", "anomaly").rows()
    [(0.5, False), (1.5, True), (0.25, False)]
    """
    y, c = pl.col("y"), pl.col(center)
    above = y >= c
    dist = pl.when(above).then(y - c).otherwise(c - y)
    side = pl.when(above).then(pl.col("hi") - c).otherwise(c - pl.col("lo"))
    missing = y.is_null() | c.is_null() | pl.col("lo").is_null() | pl.col("hi").is_null()
    score = (pl.when(missing).then(pl.lit(None, dtype=pl.Float64))
             .when(side > 0).then(dist / side)
             .when(dist <= 1e-9 * pl.max_horizontal(y.abs(), c.abs())).then(pl.lit(0.0))  # on it, up to rounding
             .otherwise(pl.lit(float("inf"))))
    return frame.with_columns(score.alias("score")).with_columns(
        (pl.col("score").fill_null(0.0) > 1.0).alias("anomaly"))
