"""Compiled loops of the tree models' small forecasts (issue 14), in polars' own order of operations.

A sequential floating-point reduction gives polars' result bit for bit only when it adds in polars' order;
these loops are compiled with numba (a dependency of statsforecast, already imported by a server process's
preload) because in Python they would cost what the query they replace costs. Imported only by the paths
that use them (:meth:`forecasting.models.trees.TreeForecaster._scales_one_series`); ``cache=True`` keeps the
compiled code beside this file (or in numba's user cache), so a process compiles them once per machine.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["kahan_mean_welford_std"]


@njit(cache=True)
def kahan_mean_welford_std(v: np.ndarray) -> tuple[float, float]:  # pragma: no cover - compiled by numba
    """Mean and population standard deviation of ``v`` as polars aggregates a hashed group's rows.

    The mean is Kahan's compensated sum (polars_utils ``KahanSum``: ``y = x - err; t = sum + y;
    err = (t - sum) - y``) divided by ``n``; a single value is returned as is. The variance is Welford's
    online update (polars_compute ``VarState::insert_one``: ``w' = w + 1; d = x - mean; mean' = mean + d / w';
    dp += (x - mean') * d``) finished as ``dp / w`` (0 when negative), and its square root.

    Parameters
    ----------
    v : float64 array of shape (n,), n >= 1, finite

    Returns
    -------
    (float, float)
        ``(mean, std)`` with ``ddof=0``.

    References
    ----------
    Kahan, W. (1965), "Further remarks on reducing truncation errors", CACM 8(1); Welford, B. P. (1962),
    "Note on a method for calculating corrected sums of squares and products", Technometrics 4(3);
    polars ``group_by`` aggregations (``agg_mean``, ``agg_std`` of ``GroupsType::Idx``).
    """
    n = v.shape[0]
    total = 0.0
    err = 0.0
    for i in range(n):
        y = v[i] - err
        t = total + y
        err = (t - total) - y
        total = t
    mean = v[0] if n == 1 else total / n
    w = 0.0
    mu = 0.0
    dp = 0.0
    for i in range(n):
        x = v[i]
        nw = w + 1.0
        d = x - mu
        nm = mu + d / nw
        dp += (x - nm) * d
        w = nw
        mu = nm
    var = dp / w
    return mean, math.sqrt(0.0 if var < 0.0 else var)
