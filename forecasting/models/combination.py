"""Combining member forecasts: one place for what ``ensemble`` and ``auto`` share.

A combination model (:mod:`forecasting.models.ensemble`, :mod:`forecasting.models.auto`) asks each
member for its forecast, with prediction intervals where the member can give them here
(:func:`member_forecasts`), mixes the members' columns row by row (:func:`weighted_mean`, with the
rows x members weights of :func:`weight_matrix`, or :func:`median`) and finishes the bands
(:func:`finish_bands`: lo <= point <= hi, then nested across levels). Every rule skips a member
that has no value in a row (no bands at all, or a row it did not forecast) and renormalises over
the others, so one member without intervals leaves the band to the rest.

Combining forecasts is one of the most reliable ways to improve accuracy (Bates & Granger 1969;
the median: Stock & Watson 2004; M4: Makridakis, Spiliotis & Assimakopoulos 2020). Combined bands
are a heuristic (the same rule applied to the members' bounds, level by level) with no coverage
guarantee of their own; ``auto`` calibrates them on its validation windows.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from forecasting.errors import CapabilityError
from forecasting.models.base import Forecaster

__all__ = ["finish_bands", "median", "member_forecast", "member_forecasts", "member_values", "weight_matrix", "weighted_mean"]

KEYS = ["unique_id", "ds"]


def member_forecast(model: Forecaster, h: int, levels: Sequence[float | int]) -> pl.DataFrame:
    """One member's forecast with intervals where it can give them here, else the point forecast only.

    A global model's conformal bands need calibration windows its training series may not have had
    (xgboost on short series): its ``CapabilityError`` for ``level`` leaves it point-only.

    Parameters
    ----------
    model : Forecaster
        A fitted member.
    h : int
        Steps ahead.
    levels : sequence of numbers in (0, 100)
        Interval levels, percent (validated by the caller).

    Returns
    -------
    pl.DataFrame
        ``unique_id, ds, <alias>[, <alias>-lo-<L>, <alias>-hi-<L>]``: ``h`` rows per series.

    Raises
    ------
    CapabilityError
        Only from the point forecast (asked without ``level``).
    """
    if levels and model.capabilities.supports_intervals:
        try:
            return model.predict(h, level=levels)
        except CapabilityError:
            pass
    return model.predict(h)


def member_forecasts(models: Sequence[Forecaster], h: int, levels: Sequence[float | int], *,
                     name: str) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    """Every member's forecast aligned on the first member's ``(unique_id, ds)`` rows, sorted.

    Members order their rows alike except around fallbacks, so the forecasts are joined on the keys
    (a row a member did not forecast reads null there) rather than stacked by position.

    Parameters
    ----------
    models : sequence of Forecaster
        Fitted members, at least one.
    h : int
        Steps ahead.
    levels : sequence of numbers in (0, 100)
        Interval levels, percent (validated by the caller).
    name : str
        The combining model's name, for the error.

    Returns
    -------
    keys : pl.DataFrame
        ``unique_id, ds`` of shape (n_rows, 2), sorted by series then time.
    frames : list of pl.DataFrame
        One per member, in order, each ``keys`` plus the member's columns (:func:`member_forecast`).

    Raises
    ------
    CapabilityError
        ``level`` asked and no member gives intervals here (field ``level``).
    """
    outs = [member_forecast(m, h, levels) for m in models]
    if levels and not any(f"{m.alias}-lo-{levels[0]}" in o.columns for m, o in zip(models, outs, strict=True)):
        msg = f"model '{name}': none of its members gives prediction intervals here; ask without level"
        raise CapabilityError(msg, field="level")
    keys = outs[0].select(KEYS).sort(KEYS, maintain_order=True)
    return keys, [keys.join(o, on=KEYS, how="left", maintain_order="left") for o in outs]


def member_values(frames: Sequence[pl.DataFrame], models: Sequence[Forecaster], suffix: str = ""
                  ) -> list[np.ndarray | None]:
    """Each member's ``<alias><suffix>`` column as float64 values (None for a member without it).

    Parameters
    ----------
    frames : sequence of pl.DataFrame
        The aligned forecasts of :func:`member_forecasts`, one per member.
    models : sequence of Forecaster
        The members, in the same order (their ``alias`` names the columns).
    suffix : str
        ``""`` for the point forecast, ``"-lo-80"``, ``"-hi-95"``... for a bound.

    Returns
    -------
    list of (np.ndarray of shape (n_rows,) or None)
        Null (a row the member did not forecast) reads NaN.
    """
    return [o[f"{m.alias}{suffix}"].cast(pl.Float64).fill_null(np.nan).to_numpy()
            if f"{m.alias}{suffix}" in o.columns else None for o, m in zip(frames, models, strict=True)]


def weight_matrix(ids: np.ndarray, labels: Sequence[str], dataset: Mapping[str, float],
                  series: Mapping[str, Mapping[str, float]] | None = None) -> np.ndarray:
    """The rows x members weights: a series' own where it has some, else the dataset's.

    Parameters
    ----------
    ids : np.ndarray of shape (n_rows,)
        Each row's ``unique_id``.
    labels : sequence of str, length n_members
        The members, in the order of the columns to mix.
    dataset : mapping of label to weight
        Shared weights, as given (a member missing: 0; all zero: equal weights); :func:`weighted_mean`
        renormalises each row.
    series : mapping of unique_id to (label to weight), optional
        Per-series weights (renormalised over ``labels``); a series without them, or whose weights
        on ``labels`` sum to 0, keeps the dataset's.

    Returns
    -------
    np.ndarray of shape (n_rows, n_members)

    Examples
    --------
    >>> weight_matrix(np.array(["a", "b"]), ["m1", "m2"], {"m1": 3.0}, {"b": {"m1": 1.0, "m2": 1.0}})
    array([[3. , 0. ],
           [0.5, 0.5]])
    """
    shared = np.array([dataset.get(lab, 0.0) for lab in labels])
    if not shared.sum():
        shared = np.full(len(labels), 1.0 / len(labels))
    W = np.tile(shared, (ids.size, 1))
    if series:
        for u in np.unique(ids):
            own = series.get(str(u))
            if own:
                row = np.array([own.get(lab, 0.0) for lab in labels])
                if row.sum() > 0:
                    W[ids == u] = row / row.sum()
    return W


def _stack(arrays: Sequence[np.ndarray | None], n: int) -> np.ndarray:
    """(n, n_members) float array; a member without values (``None``) is a column of NaN."""
    return np.column_stack([np.full(n, np.nan) if a is None else np.asarray(a, dtype=float) for a in arrays])


def weighted_mean(arrays: Sequence[np.ndarray | None], weights: np.ndarray) -> np.ndarray:
    """Row-wise weighted mean over the members that have a value, weights renormalised per row.

    ``out[i] = sum_j w_ij x_ij / sum_j w_ij`` over the members ``j`` with a finite ``x_ij``
    (Bates & Granger 1969's linear combination). A row where no member with weight > 0 has a
    value is NaN.

    Parameters
    ----------
    arrays : sequence of (np.ndarray of shape (n_rows,) or None), length n_members
        Each member's values (``None``: the member has none, e.g. no bands).
    weights : np.ndarray of shape (n_rows, n_members) or (n_members,)
        Non-negative weights (a shared vector applies to every row).

    Returns
    -------
    np.ndarray of shape (n_rows,)

    Examples
    --------
    >>> weighted_mean([np.array([1.0, 1.0]), np.array([4.0, np.nan])], np.array([1.0, 2.0]))
    array([3., 1.])
    """
    n = next((np.asarray(a).size for a in arrays if a is not None), 0)
    stack = _stack(arrays, n)
    W = np.broadcast_to(np.asarray(weights, dtype=float), stack.shape)
    have = np.isfinite(stack)
    w = np.where(have, W, 0.0)
    total = w.sum(axis=1)
    return np.where(total > 0, (np.where(have, stack, 0.0) * w).sum(axis=1) / np.where(total > 0, total, 1.0), np.nan)


def median(arrays: Sequence[np.ndarray | None]) -> np.ndarray:
    """Row-wise median over the members that have a value (Stock & Watson 2004).

    Parameters
    ----------
    arrays : sequence of (np.ndarray of shape (n_rows,) or None)
        Each member's values (``None``: the member has none).

    Returns
    -------
    np.ndarray of shape (n_rows,)
        NaN where no member has a value.

    Examples
    --------
    >>> median([np.array([1.0, 5.0]), np.array([3.0, np.nan]), np.array([2.0, 7.0])])
    array([2., 6.])
    """
    n = next((np.asarray(a).size for a in arrays if a is not None), 0)
    stack = _stack(arrays, n)
    with warnings.catch_warnings():  # a row without any value is NaN, which is what is wanted
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(stack, axis=1)


def finish_bands(point: np.ndarray, bands: Mapping[float | int, tuple[np.ndarray, np.ndarray]],
                 alias: str) -> dict[str, np.ndarray]:
    """The interval columns: each band widened to hold the point, then nested across levels.

    A band combined from fewer members (or calibrated) may leave the point outside it, and a wider
    level's band may cross a narrower one's: ``lo = min(lo, point)``, ``hi = max(hi, point)``,
    then, level by level upwards, ``lo_b = min(lo_b, lo_a)`` and ``hi_b = max(hi_b, hi_a)`` for
    ``a < b``, so that lo-95 <= lo-80 <= point <= hi-80 <= hi-95.

    Parameters
    ----------
    point : np.ndarray of shape (n_rows,)
    bands : mapping of level (percent) to (lo, hi), each np.ndarray of shape (n_rows,)
    alias : str
        The column prefix.

    Returns
    -------
    dict of str to np.ndarray of shape (n_rows,)
        ``<alias>-lo-<L>`` and ``<alias>-hi-<L>`` for every level.

    Examples
    --------
    >>> cols = finish_bands(np.array([5.0]), {80: (np.array([6.0]), np.array([7.0])),
    ...                                       95: (np.array([4.5]), np.array([6.5]))}, "M")
    >>> {k: float(v[0]) for k, v in cols.items()}
    {'M-lo-80': 5.0, 'M-hi-80': 7.0, 'M-lo-95': 4.5, 'M-hi-95': 7.0}
    """
    columns: dict[str, np.ndarray] = {}
    for lev, (lo, hi) in bands.items():
        columns[f"{alias}-lo-{lev}"] = np.minimum(lo, point)
        columns[f"{alias}-hi-{lev}"] = np.maximum(hi, point)
    ordered = sorted(bands)
    for a, b in zip(ordered, ordered[1:], strict=False):
        columns[f"{alias}-lo-{b}"] = np.minimum(columns[f"{alias}-lo-{b}"], columns[f"{alias}-lo-{a}"])
        columns[f"{alias}-hi-{b}"] = np.maximum(columns[f"{alias}-hi-{b}"], columns[f"{alias}-hi-{a}"])
    return columns
