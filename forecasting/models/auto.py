"""``auto``: the default model. Candidates chosen from the data, cross-validated, combined greedily.

What it does, in order (every decision is recorded in ``selection_``):

1. **Seasonality.** The season length(s) come from the frequency (``1h`` -> 24 and 168, ``1mo`` -> 12, ...;
   :func:`forecasting.models.registry.default_season_length`) or from ``season_length``. A season is kept
   only where the history holds at least two of it. Integer ``ds`` (no calendar) gets ``m = 1`` unless the
   autocorrelation test finds a period, and the longer periods the series show twice (a daily and a weekly
   cycle of hourly-like data: 24 and 168; :func:`detect_seasons`).
2. **Candidates that fit the data** (:func:`candidate_pool`): seasonal naive (naive when ``m = 1``),
   AutoETS, AutoTheta, DynamicOptimizedTheta, AutoCES, AutoARIMA, MSTL (several seasons), the
   intermittent-demand models when many values are zero, the global LightGBM/XGBoost models when the
   panel has enough rows, NHITS when asked (``deep``), when a GPU is present or on long intraday panels (kept only while its training,
   projected from its first steps, leaves time for its final refit). A candidate that cannot apply is dropped
   with the reason, never an error.
3. **Rolling-origin cross-validation** (:mod:`forecasting.backtest`'s splitter): ``n_windows`` origins
   ``horizon`` steps apart, each candidate fitted on the series long enough for the window (with ``naive``
   as the fallback of the few series too short for it) and scored by OWA (the M4 competition's measure: the mean
   of MASE and sMAPE, each relative to seasonal naive's on the same windows; or by MASE or sMAPE alone, ``metric``:
   a MASE-only loss let a few large scaled errors steer the weights, see :class:`AutoForecaster`). Cheap candidates run
   first; each may use at most half of the cross-validation budget that is left, so a slow one is cut off
   (``TimeLimitError``) and dropped, not waited for.
4. **Greedy ensemble selection** (Caruana, Niculescu-Mizil, Crew & Ksikes, *Ensemble selection from
   libraries of models*, ICML 2004; AutoGluon-TimeSeries' ``GreedyEnsemble``, Shchur et al., AutoML 2023):
   starting from nothing, ``ensemble_size`` times add (with replacement) the candidate that most lowers the
   validation error of the running average; the weights are the counts. Candidates scoring over
   ``_TRIM_FACTOR`` (1.25) times the best are left out first (a trimmed combination), each with its reason. With ``selection="auto"`` the
   weights are chosen per series too when that measurably helps: per-series and dataset weights are both
   learnt on the older windows and scored on the latest, and the per-series ones are kept only when they win
   by more than 2% (then relearnt on every window). Where the windows do not overlap, the
   pool's combination (the greedy weights, the plain mean or the median: Stock & Watson 2004) is the one with the
   lowest leave-one-window-out error (:meth:`AutoForecaster._combination_rule`); where they overlap (less than
   ``horizon`` steps apart) the greedy dataset weights are kept, as a held-out window would share its targets
   with the windows the rule was learnt on.
5. **Calibrated intervals.** The bounds of the members kept at the refit (step 6) are averaged with their
   final weights, then conformalised on the validation windows (conformalized quantile regression, Romano,
   Patterson & Candès, NeurIPS 2019):
   for each level the width-relative non-conformity scores ``max(lo - y, y - hi) / (hi - lo)`` give the
   factor by which the band is widened (or narrowed), per horizon step when there are at least 200 scores
   a step, else pooled.
6. **Refit** of the members with a positive weight on the full history (cheapest first, by validation time),
   and **clipping at zero** when every observed value is non-negative (``non_negative``; the clipped count is
   in ``notes_``).

``time_limit`` (seconds, default 600) bounds the whole search: cross-validation takes at most 70% of it and
the final refits the rest; a global member with no time left for its refit keeps its validation fit (forecasting
from the whole history), another member whose refit runs out of time is dropped and the weights renormalised.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import msgspec
import numpy as np
import polars as pl

from forecasting.data import Panel, check_min_length, level_columns, validate_levels
from forecasting.errors import (CapabilityError, ForecastingError, InsufficientHistoryError, InvalidParameterError,
                               TimeLimitError)
from forecasting.models.base import BaseForecaster, Capabilities, Fallback, Forecaster, Progress, arm, as_panel
from forecasting.models.combination import (finish_bands, median, member_forecast, member_forecasts, member_values,
                                             weight_matrix, weighted_mean)
from forecasting.models.local import LOCAL_CAPABILITIES
from forecasting.models.registry import (REGISTRY, AutoParams, ModelSpec, default_season_length, parse_spec,
                                        seasons_shown)

__all__ = ["AutoForecaster", "Candidate", "candidate_pool", "detect_season", "detect_seasons", "greedy_weights"]

#: conventional horizons of the M competitions per frequency unit, used when ``horizon`` is not given
_HORIZONS = {"y": 6, "q": 8, "mo": 18, "w": 13, "d": 14, "h": 48, "m": 60, "s": 60, "bd": 10}
#: the order candidates run in (cheapest first), by registry name
_COST_ORDER = ("seasonal_naive", "naive", "auto_theta", "dynamic_optimized_theta", "croston_sba", "adida",
               "imapa", "tsb", "lightgbm", "auto_ets", "xgboost", "auto_ces", "mstl", "auto_arima", "nhits")
#: the order on long intraday panels (the seasonal tree features apply): a local model's cost grows with the
#: season and the series length (AutoETS with m = 24 over 900 points: minutes per hundred series) while a
#: global tree's grows with the rows only, so the trees run right after the baseline and are not the ones a
#: time limit cuts; the network (its cost is its training steps, ~150 s on 2 CPU cores) right after them
_INTRADAY_ORDER = ("seasonal_naive", "naive", "xgboost", "lightgbm", "nhits", "dynamic_optimized_theta",
                   "auto_theta", "auto_ces", "mstl", "auto_ets", "croston_sba", "adida", "imapa", "tsb", "auto_arima")
#: candidates whose validation score is over this many times the best are left out of the combination before
#: the greedy selection (trimmed combination: forecast pooling, Kourentzes, Barrow & Petropoulos, IJPE 2019;
#: Aiolfi & Timmermann, J. Econometrics 2006). From stored validation and test forecasts: on M4 Hourly greedy
#: had given AutoCES (1.51 times the best) 8%, which took the test sMAPE from 9.55 to 10.11; on the M3 sets
#: (all 756 quarterly series, slices of yearly, monthly, other) it changes nothing
_TRIM_FACTOR = 1.25
#: the share of a network's training steps after which its fit time is projected (:meth:`AutoForecaster._projection`)
_PROJECT_FROM = 0.05
#: a global member's final refit is not started when the time left is under this many times its validation fit
#: (the refit trains on the whole history, longer than the earliest window's training part); its validation fit
#: forecasts instead (:meth:`AutoForecaster._keep_validation_fit`)
_REFIT_MARGIN = 1.25
_ZERO_SHARE = 0.3  # intermittent models join the pool above this share of zeros
_GLOBAL_MIN_ROWS = 1_000  # global models join the pool from this many observations in all
_ARIMA_MAX_SEASON = 12  # seasonal AutoARIMA beyond this period is left out of the default pool (cost)
#: bounds of the conformal factor (in band widths): a band is at most widened by 3 widths on each side or
#: narrowed to a tenth of its width
_MIN_FACTOR, _MAX_FACTOR = -0.45, 3.0


@dataclass
class Candidate:
    """One candidate of the search and what became of it.

    Attributes
    ----------
    label : str
        Unique label (the model name, with a suffix when the same model appears twice).
    spec : ModelSpec
    status : {"pending", "scored", "unvalidated", "dropped"}
        ``unvalidated``: no series was long enough to validate on (combined with equal weights).
    reason : str or None
        Why it was dropped.
    score : float or None
        Validation error (the ``metric``: OWA, MASE or sMAPE, over series and windows).
    seconds : float
        Cross-validation wall time.
    fit_seconds : float
        The longest single fit of its validation (what its final refit is expected to take).
    fitted : Forecaster or None
        The one fit on the earliest window a global model was validated from (:meth:`AutoForecaster._validate`;
        kept for the final combination when there is no time left for the refit); ``one_fit`` says whether there
        is one.
    weight : float
        Its share of the final combination (dataset level).
    """

    label: str
    spec: ModelSpec
    status: str = "pending"
    reason: str | None = None
    score: float | None = None
    seconds: float = 0.0
    weight: float = 0.0
    fit_seconds: float = field(default=0.0, repr=False)
    fitted: Any = field(default=None, repr=False)
    forecasts: list[np.ndarray] = field(default_factory=list, repr=False)
    bounds: dict[float, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict, repr=False)

    @property
    def one_fit(self) -> bool:
        """Validated from one fit on the earliest window (a global model without fallback series)."""
        return self.fitted is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (the response's ``selection.candidates``)."""
        return {"model": self.label, "spec": msgspec.to_builtins(self.spec), "status": self.status,
                "reason": self.reason, "score": None if self.score is None else round(self.score, 6),
                "seconds": round(self.seconds, 3), "weight": round(self.weight, 6)}


# --------------------------------------------------------------------------- seasonality
def detect_season(panel: Panel, *, max_series: int = 200, max_lag: int = 400) -> tuple[int, str]:
    """A season length for data without a calendar (integer ``ds``): the shortest period of
    :func:`detect_seasons`.

    Returns
    -------
    (int, str)
        The period (1: none) and a note saying how it was found.
    """
    seasons, note = detect_seasons(panel, max_series=max_series, max_lag=max_lag, multiple=False)
    return seasons[0], note


def detect_seasons(panel: Panel, *, max_series: int = 200, max_lag: int = 400,
                   multiple: bool = True) -> tuple[list[int], str]:
    """The season lengths of data without a calendar (integer ``ds``), from the series themselves.

    **The first period.** For each of up to ``max_series`` series (the longest), the autocorrelation of the first
    differences is computed up to ``min(n // 3, max_lag)``; its highest peak at a lag ``p >= 2`` is a vote for
    ``p`` when it passes the M4 competition's 90% seasonality test at ``p``
    (:func:`forecasting.decomposition.seasonality_test`). The most voted period wins if at least a third of the
    examined series vote for it (or a multiple of it); otherwise ``1``.

    **Longer periods** (``multiple``; hourly-like data with a daily and a weekly cycle, 24 and 168). A longer season
    is a multiple ``q = k p`` of the last one found that the series show twice (``n >= 2 q``, the rule of
    :func:`forecasting.models.registry.seasons_shown`). A series votes for the smallest multiple whose pattern
    beyond ``p`` repeats: over its last full cycles of ``q``, less a least-squares line, each cycle's mean and
    the means per phase ``t mod p``, the mean profile of the first half of the cycles correlates with the second
    half's (Pearson, one-sided, at 1% Bonferroni-corrected for the multiples tried; Student's t, scipy's). A shorter
    multiple that only holds part of a longer cycle (144 in hourly data with a weekly cycle, 300 points) does
    not repeat. The most voted multiple is kept when a third of the series
    long enough to show one vote for it; then the search goes on from it (at most three seasons).

    Parameters
    ----------
    panel : Panel
        The series (any ``ds``; only the order of the values is used).
    max_series : int, default 200
        Series examined (the longest).
    max_lag : int, default 400
        Largest autocorrelation lag for the first period.
    multiple : bool, default True
        Look for longer periods after the first.

    Returns
    -------
    (list of int, str)
        The periods, shortest first (``[1]``: none), and a note saying how they were found.
    """
    from forecasting.decomposition import acf, seasonality_test

    longest = sorted(panel.lengths.items(), key=lambda kv: -kv[1])[:max_series]
    keep = {u for u, _ in longest}
    values = dict(panel.frame.filter(pl.col("unique_id").is_in(list(keep))).group_by("unique_id")
                  .agg(pl.col("y")).iter_rows())
    votes: dict[int, int] = {}
    examined: list[np.ndarray] = []
    for y in values.values():
        arr = np.asarray(y, dtype=float)
        n = arr.size
        lags = min(n // 3, max_lag)
        if lags < 4 or not np.isfinite(arr).all():
            continue
        examined.append(arr)
        diff = np.diff(arr)
        if np.ptp(diff) == 0:
            continue
        r = acf(diff, lags)
        p = int(np.argmax(r[2:]) + 2)
        if r[p] > 0 and seasonality_test(arr, p):
            votes[p] = votes.get(p, 0) + 1
    if not votes or not examined:
        return [1], "season_length=1: integer ds and no seasonal period found by the autocorrelation test"
    # the period most series peak at (a divisor such as 2 must not win on the votes of its multiples 24, 168)
    best = max(votes, key=lambda p: (votes[p], -p))
    support = sum(v for q, v in votes.items() if q % best == 0)
    if support * 3 < len(examined):
        return [1], (f"season_length=1: integer ds; the autocorrelation test found no period shared by a third of "
                     f"the series (best: {best}, in {support} of {len(examined)})")
    seasons = [best]
    found = [f"{best} by the autocorrelation test ({support} of {len(examined)} series examined)"]
    while multiple and len(seasons) < 3:
        longer = _longer_season(examined, seasons[-1])
        if longer is None:
            break
        seasons.append(longer[0])
        found.append(f"{longer[0]} by the repetition test ({longer[1]} of {longer[2]} series long enough to show "
                     f"it twice)")
    if len(seasons) == 1:
        return seasons, (f"season_length={best} detected by the autocorrelation test (integer ds: {support} of "
                         f"{len(examined)} series examined)")
    return seasons, f"season_length={seasons} detected (integer ds): {'; '.join(found)}"


#: significance of the repetition test of a longer season (before the Bonferroni correction), and the most
#: multiples of the last season tried per series
_LONGER_ALPHA, _LONGER_MAX_MULTIPLES = 0.01, 60


def _repeats(y: np.ndarray, p: int, q: int, alpha: float) -> bool:
    """Whether the pattern of period ``q`` beyond period ``p`` repeats in ``y`` (see :func:`detect_seasons`): the
    last full cycles of ``q`` less a least-squares line, each cycle's mean and the means per phase ``t mod p``;
    the mean profile of the first half of the cycles against the second half's, by Pearson's correlation at
    one-sided level ``alpha`` (:func:`_critical_r`)."""
    cycles = y.size // q
    x = y[y.size - cycles * q:]
    t = np.arange(x.size, dtype=float)
    tc = t - t.mean()
    x = x - x.mean() - tc * (tc @ (x - x.mean())) / (tc @ tc)
    rows = x.reshape(cycles, q)
    x = (rows - rows.mean(axis=1, keepdims=True)).ravel()
    phase = np.arange(x.size) % p
    x = x - (np.bincount(phase, x, minlength=p) / np.bincount(phase, minlength=p))[phase]
    rows = x.reshape(cycles, q)
    first, second = rows[:cycles // 2].mean(axis=0), rows[cycles // 2:].mean(axis=0)
    first, second = first - first.mean(), second - second.mean()
    norm = math.sqrt(float(first @ first) * float(second @ second))
    return norm > 0 and float(first @ second) / norm > _critical_r(q, alpha)


@functools.lru_cache(maxsize=1024)
def _critical_r(n: int, alpha: float) -> float:
    """The correlation of ``n`` pairs above which Pearson's one-sided test rejects no correlation at ``alpha``
    (Student's t with ``n - 2`` degrees of freedom, scipy's: ``r = t / sqrt(n - 2 + t^2)``)."""
    from scipy.stats import t as t_dist

    crit = float(t_dist.isf(alpha, n - 2))
    return crit / math.sqrt(n - 2 + crit * crit)


def _longer_season(series: list[np.ndarray], p: int) -> tuple[int, int, int] | None:
    """The longer season of :func:`detect_seasons` after ``p``: ``(q, votes, series able to vote)`` or None."""
    votes: dict[int, int] = {}
    able = 0
    for arr in series:
        multiples = list(range(2 * p, arr.size // 2 + 1, p))[:_LONGER_MAX_MULTIPLES]
        if not multiples or np.ptp(arr) == 0:
            continue
        able += 1
        for q in multiples:
            if _repeats(arr, p, q, _LONGER_ALPHA / len(multiples)):
                votes[q] = votes.get(q, 0) + 1
                break
    if not votes:
        return None
    q = max(votes, key=lambda k: (votes[k], -k))
    return (q, votes[q], able) if votes[q] * 3 >= able else None


# --------------------------------------------------------------------------- candidates
def _usable(name: str) -> bool:
    entry = REGISTRY.get(name)
    if entry is None:
        return False
    from forecasting.models.registry import _importable

    return all(_importable(m) for m in entry.requires)


def candidate_pool(panel: Panel, seasons: list[int], *, deep: bool | None = None) -> tuple[list[ModelSpec], list[str]]:
    """The candidate specs that fit ``panel`` and the notes on those left out.

    Parameters
    ----------
    panel : Panel
    seasons : list of int
        The season lengths kept for this data (``[1]``: none).
    deep : bool, optional
        Include NHITS (``None``: when a GPU is present, and on the CPU for long intraday panels, where the
        seasonal tree features apply: there it runs right after the trees, before the local models whose cost
        grows with the season. On M4 Hourly its validation OWA is within 1.25 times the trees' and the OWA
        greedy selection gives it 20%, test OWA 0.413 against 0.428 without it in replays; end to end, within the
        default 600 s on 2 CPU cores, 0.4145 (a default NHITS fit takes ~80-150 s there). The search keeps a network only while its training, projected from its
        first steps, leaves time for its final refit: :meth:`AutoForecaster._cross_validate`).

    Returns
    -------
    (list of ModelSpec, list of str)
        In cost order (cheapest first; on long intraday panels the global trees right after the baseline).
        Where the intraday seasonal tree features apply (:func:`forecasting.features.seasonal_set_applies`)
        the XGBoost with recent lags joins beside the plain one (``ensemble``'s default members).
    """
    m = seasons[0]
    lengths = np.fromiter(panel.lengths.values(), dtype=np.int64)
    median = int(np.median(lengths))
    zero_share = float(np.mean(panel.frame["y"].to_numpy() == 0)) if panel.frame.height else 0.0
    left_out: list[str] = []
    names = ["seasonal_naive" if m > 1 else "naive", "auto_theta", "dynamic_optimized_theta", "auto_ets", "auto_ces"]
    if m <= _ARIMA_MAX_SEASON:
        names.append("auto_arima")
    else:
        left_out.append(f"auto_arima: its seasonal search with season_length={m} takes minutes per hundred series "
                        f"(name it in candidates to include it)")
    if len(seasons) > 1:
        names.append("mstl")
    elif m > 1:
        left_out.append("mstl: one season only (auto_ets and auto_theta cover it)")
    if zero_share >= _ZERO_SHARE:
        names += ["croston_sba", "adida", "imapa", "tsb"]
    extra: list[ModelSpec] = []
    order = _COST_ORDER
    intraday = False
    if int(lengths.sum()) >= _GLOBAL_MIN_ROWS and median >= 2 * max(m, 4):
        from forecasting.features import seasonal_set_applies

        names += ["lightgbm", "xgboost"]
        if seasonal_set_applies(m, panel.lengths):  # intraday: the recent-lag XGBoost differs too
            extra.append(ModelSpec(name="xgboost", params={"recent_lags": True}))
            order = _INTRADAY_ORDER
            intraday = True
    else:
        left_out.append(f"lightgbm, xgboost: {int(lengths.sum())} observations, median length {median} (global "
                        f"models join from {_GLOBAL_MIN_ROWS} observations and series of {2 * max(m, 4)})")
    if deep is None:
        from forecasting.devices import resolve_device

        deep = intraday or resolve_device("auto") == "cuda"
    if deep:
        names.append("nhits")
    specs: list[ModelSpec] = []
    for name in sorted(dict.fromkeys(names), key=order.index):
        if not _usable(name):
            entry = REGISTRY.get(name)
            why = "not registered" if entry is None else f"needs the optional extra '{entry.extra}'"
            left_out.append(f"{name}: {why}")
            continue
        params: dict[str, Any] = {}
        if "season_length" in REGISTRY[name].params.__struct_fields__:
            params["season_length"] = list(seasons) if REGISTRY[name].multi_season and len(seasons) > 1 else m
        specs.append(ModelSpec(name=name, params=params))
        specs += [ModelSpec(name=name, params={**params, **e.params}) for e in extra if e.name == name]
    return specs, left_out


# --------------------------------------------------------------------------- selection
def greedy_weights(errors: Sequence[np.ndarray] | np.ndarray, actual: np.ndarray, scale: np.ndarray, *,
                   size: int, ref: np.ndarray | None = None) -> np.ndarray:
    """Greedy ensemble selection with replacement (Caruana et al., ICML 2004).

    Parameters
    ----------
    errors : array (n_candidates, n_rows)
        The candidates' forecasts on the validation rows (named for what they are scored on).
    actual : array (n_rows,)
    scale : array (n_rows,)
        Each row's error scale (MASE: the series' in-sample seasonal-naive MAE; sMAPE: ``nan``, then
        the sMAPE of the row is used).
    size : int
        Selection rounds.
    ref : array (n_rows,), optional
        The reference forecast of each row (seasonal naive): the loss is then OWA (:func:`_losses`).

    Returns
    -------
    array (n_candidates,)
        Weights summing to 1.
    """
    forecasts = np.asarray(errors, dtype=float)
    counts = np.zeros(forecasts.shape[0])
    running = np.zeros_like(actual, dtype=float)
    for step in range(size):
        trial = (running[None, :] * step + forecasts) / (step + 1)
        best = int(np.argmin(_losses(actual, trial, scale, ref)))
        counts[best] += 1
        running = trial[best]
    return counts / counts.sum()


def _losses(actual: np.ndarray, f: np.ndarray, scale: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    """The validation loss of each row of ``f`` (k, n) against ``actual`` (n,): mean scaled absolute error (MASE,
    ``scale`` the rows' MASE denominators), sMAPE (``scale`` all ``nan``), or, given the reference forecast
    ``ref`` (n,), OWA: the mean of the MASE and the sMAPE, each relative to the reference's on the same rows (the
    M4 competition's overall weighted average, Makridakis, Spiliotis & Assimakopoulos, IJF 2020, with seasonal
    naive as the reference; a reference error of 0 leaves that term unscaled)."""
    def smape(g: np.ndarray) -> np.ndarray:
        err, den = np.abs(actual[None, :] - g), np.abs(actual)[None, :] + np.abs(g)
        return np.where(den > 0, 200.0 * err / np.where(den > 0, den, 1.0), 0.0).mean(axis=1)

    if np.isnan(scale).all():
        return smape(f)
    mase = (np.abs(actual[None, :] - f) / scale[None, :]).mean(axis=1)
    if ref is None:
        return mase
    ref_mase = float(np.mean(np.abs(actual - ref) / scale))
    ref_smape = float(smape(ref[None, :])[0])
    return 0.5 * (mase / (ref_mase if ref_mase > 0 else 1.0) + smape(f) / (ref_smape if ref_smape > 0 else 1.0))


def _loss(actual: np.ndarray, f: np.ndarray, scale: np.ndarray, ref: np.ndarray | None = None) -> float:
    """:func:`_losses` of one forecast vector (n,)."""
    return float(_losses(actual, f[None, :], scale, ref)[0])


def _part(ref: np.ndarray | None, rows: np.ndarray) -> np.ndarray | None:
    """``ref[rows]`` (``None`` stays ``None``: the metric is not OWA)."""
    return None if ref is None else ref[rows]


class AutoForecaster(BaseForecaster[AutoParams]):
    """The default model: candidates chosen from the data, cross-validated and combined (module docstring).

    Parameters
    ----------
    season_length : int or list of int, optional
        Season length(s); default from the frequency (integer ``ds``: detected).
    horizon : int, optional
        Validation horizon (the request's ``h`` through the service; default the M competitions' horizon of
        the frequency, else two seasons, at least 6).
    level : list of float
        Interval levels calibrated on the validation windows (the request's through the service).
    candidates : list of specs, optional
        The pool (default: :func:`candidate_pool`).
    n_windows : int, default 3
        Validation origins (fewer when the history is short). On 150 M3 quarterly series the greedy
        combination's test sMAPE was 10.50 / 10.12 / 10.09 with 1 / 2 / 3 windows (best single candidate
        by validation: 10.95); on 150 M3 yearly 22.92 / 22.65 / 22.62 (best single 22.72).
    metric : {"owa", "mase", "smape"}, default "owa"
        The validation loss that scores, trims and combines the candidates. ``owa``: the mean of MASE and sMAPE,
        each relative to seasonal naive's (naive when ``m = 1``) on the same validation rows (the M4
        competition's overall weighted average with seasonal naive as its reference; 1.0 is seasonal naive's
        score). From stored validation and test forecasts of M4 Hourly (414 series, h = 48, 3 windows), greedy
        selection on MASE gave NHITS 8% beside the trees (test OWA 0.422), on OWA 20% (0.413): NHITS's sMAPE is
        within 4% of XGBoost's while its MASE is 32% worse, and MASE alone weighs the series with large scaled
        errors most.
    ensemble_size : int, default 25
        Greedy selection rounds (1: the single best candidate).
    selection : {"auto", "dataset", "series"}
        Where weights are learnt (see the module docstring).
    time_limit : float, default 600
        Seconds for the whole search.
    deep : bool, optional
        Include NHITS (default: with a GPU; see :func:`candidate_pool`).
    non_negative : bool, optional
        Clip forecasts at zero (default: when every observed value is >= 0).

    Attributes (after ``fit``)
    --------------------------
    selection_ : dict
        The report: season, horizon, windows, candidates (scores, seconds, weights, reasons), the chosen
        combination and the notes.
    notes_ : list of str
    """

    name: ClassVar[str] = "auto"
    default_alias: ClassVar[str] = "Auto"
    capabilities: ClassVar[Capabilities] = Capabilities(
        supports_intervals=True, honours_time_limit=True, why_not={
            **LOCAL_CAPABILITIES.why_not,
            "explain": "auto combines several models' forecasts; explain a global member such as 'lightgbm' or "
                       "'xgboost' instead (the selection report names the members)",
            "global_importance": "auto combines several models; ask a global member such as 'xgboost'",
            "save": "auto searches and refits from each request's history and is not saved; register the member "
                    "it chose (see the selection report) to keep a trained model",
            "export": "auto refits from each request's history; export a global member such as xgboost",
            "progress": "it reports its search in the selection report"})
    fitted_attribute: ClassVar[str] = "members_"

    @property
    def min_train_length(self) -> int:
        """Two observations (what ``naive``, the last resort, needs for its intervals)."""
        return 2

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters; after ``fit``, ``season_length`` is the season(s) the search used (a season the
        history does not show twice is dropped: a 5-day daily series is searched with ``1``, not the frequency's
        ``7``), so the spec a response reports is what ran."""
        out = super().get_params()
        selection = getattr(self, "selection_", None)
        if selection is not None:
            out["season_length"] = selection["season_length"]
        return out

    # ------------------------------------------------------------------ settings
    def _seasons(self, panel: Panel) -> tuple[list[int], list[str]]:
        notes: list[str] = []
        given = self.params.season_length
        if given is None:
            if isinstance(panel.freq, int):
                seasons, note = detect_seasons(panel)
                notes.append(note)
            else:
                d = default_season_length(panel.freq, multiple=True)
                seasons = list(d) if isinstance(d, list) else [d]
        else:
            seasons = list(given) if isinstance(given, list) else [given]
        kept, left_out = seasons_shown(seasons, panel.lengths, keep=[1])
        if left_out:
            notes.append(left_out)
        return kept, notes

    def _metric(self, panel: Panel) -> str:
        """The validation metric: ``metric``, except OWA on data with many zeros, where MASE is used with a note
        (sMAPE, half of OWA, is 200 for any non-zero forecast of a zero and 0 for a zero forecast, so it favours
        forecasting the last value on intermittent demand: Hyndman & Koehler, IJF 2006)."""
        if self.params.metric != "owa" or not panel.frame.height:
            return self.params.metric
        zero_share = float(np.mean(panel.frame["y"].to_numpy() == 0))
        if zero_share < _ZERO_SHARE:
            return "owa"
        self.notes_.append(f"metric: MASE, not OWA: {zero_share:.0%} of the values are zero, where sMAPE (half of "
                           f"OWA) scores any non-zero forecast of a zero 200")
        return "mase"

    def _horizon(self, panel: Panel, m: int) -> int:
        if self.params.horizon is not None:
            return self.params.horizon
        if isinstance(panel.freq, str):
            from forecasting.data import offset_parts

            try:
                _, unit = offset_parts(panel.freq)
            except ForecastingError:
                unit = ""
            if unit in _HORIZONS:
                return _HORIZONS[unit]
        return max(2 * m, 6)

    def _deadline(self) -> float | None:
        """The search's deadline (epoch seconds): the earlier of ``time_limit`` from now and the caller's
        (:func:`arm`); ``self.limit_named_`` says which one binds, as messages name it."""
        limit = None if self.params.time_limit is None else time.time() + self.params.time_limit
        self.limit_named_ = "no time_limit" if self.params.time_limit is None else f"time_limit={self.params.time_limit} s"
        if self.deadline is not None and (limit is None or self.deadline < limit):
            limit = self.deadline
            self.limit_named_ = self.deadline_source or "the caller's deadline"
        return limit

    def _pool(self, panel: Panel, seasons: list[int], h: int) -> tuple[list[Candidate], list[str]]:
        if self.params.candidates is None:
            specs, left_out = candidate_pool(panel, seasons, deep=self.params.deep)
        else:
            specs, left_out = [], []
            for c in self.params.candidates:
                spec = parse_spec(c)
                if spec.name in ("auto", "ensemble"):
                    msg = f"an auto candidate cannot be '{spec.name}'"
                    raise InvalidParameterError(msg, field="model.params.candidates")
                specs.append(spec)
        from forecasting.models.registry import resolve_spec

        out: list[Candidate] = []
        seen: dict[str, int] = {}
        for spec in specs:
            resolved, _ = resolve_spec(spec, freq=panel.freq, season_length=seasons if len(seasons) > 1 else seasons[0])
            if "horizon" in REGISTRY[resolved.name].params.__struct_fields__ and "horizon" not in resolved.params:
                resolved = ModelSpec(name=resolved.name, params={**resolved.params, "horizon": h},
                                     fallback=resolved.fallback)  # global models calibrate their bands for h
            label = spec.name if spec.name not in seen else f"{spec.name}_{seen[spec.name] + 1}"
            seen[spec.name] = seen.get(spec.name, 0) + 1
            fallback = None if resolved.name == "naive" else "naive"
            out.append(Candidate(label=label, spec=ModelSpec(name=resolved.name, params=resolved.params,
                                                             fallback=resolved.fallback or fallback)))
        return out, left_out

    # ------------------------------------------------------------------ fit
    def fit(self, panel: Panel | Any, *, static: pl.DataFrame | None = None) -> Self:
        """Search, select and refit (module docstring).

        Raises
        ------
        CapabilityError
            Exogenous columns or static features (the search uses none).
        InvalidParameterError
            A candidate spec that is itself ``auto`` or ``ensemble``, or invalid.
        TimeLimitError
            Not even the baseline could be fitted before the deadline.
        """
        panel = as_panel(panel)
        if panel.exog:
            msg = (f"model 'auto' does not use exogenous columns; drop {', '.join(panel.exog)} or name a model that "
                   f"uses them, e.g. 'xgboost'")
            raise CapabilityError(msg, field="data")
        if static is not None:
            msg = "model 'auto' does not use static features; name a model that uses them, e.g. 'xgboost'"
            raise CapabilityError(msg, field="static")
        check_min_length(panel, self.min_train_length, model=self.name,
                         fallback=self.fallback.name if self.fallback else None)
        started = time.time()
        deadline = self._deadline()
        if deadline is not None and started >= deadline:
            msg = f"model 'auto': the time limit ({self.limit_named_}) passed before the search could start"
            raise TimeLimitError(msg, field="time_limit", details={"limit_seconds": self.params.time_limit})
        self.notes_: list[str] = []
        self.metric_ = self._metric(panel)
        seasons, notes = self._seasons(panel)
        self.notes_.extend(notes)
        m = seasons[0]
        h = self._horizon(panel, m)
        levels = tuple(sorted(validate_levels(self.params.level)))
        candidates, left_out = self._pool(panel, seasons, h)
        windows, ids = self._windows(panel, h, m)
        # test parts less than h steps apart share values: a rule learnt on some windows and scored on another
        # would be scored on values it was learnt on
        self.overlapping_ = len(windows) > 1 and windows[1].offset - windows[0].offset < h
        cv_end = None if deadline is None else started + 0.7 * (deadline - started)
        truth = self._cross_validate(panel, candidates, windows, ids, h, m, levels, cv_end, deadline)
        scored = [c for c in candidates if c.status in ("scored", "unvalidated")]
        self.combination_ = "greedy"
        self.weights_, self.series_weights_ = self._select(scored, truth, len(windows))
        self.season_ = m
        self._refit(panel, scored, deadline)
        # after the refit: the bands are calibrated for the members that were refitted, with their final weights
        self.calibration_ = self._calibrate(scored, truth, levels, h)
        self.panel_ = panel
        self.non_negative_ = (self.params.non_negative if self.params.non_negative is not None
                              else bool((panel.frame["y"] >= 0).all()))
        self.selection_ = {
            "season_length": seasons if len(seasons) > 1 else m, "horizon": h, "n_windows": len(windows),
            "series_validated": len(ids), "metric": self.metric_,
            "selection": "series" if self.series_weights_ is not None else "dataset",
            "combination": "weights" if self.series_weights_ is not None else self.combination_,
            "candidates": [c.to_dict() for c in candidates], "left_out": left_out,
            "members": {lab: round(float(w), 6) for lab, w in self.weights_.items()},
            "seconds": round(time.time() - started, 3), "notes": list(self.notes_)}
        return self

    def _windows(self, panel: Panel, h: int, m: int) -> tuple[list[Any], list[str]]:
        """The validation origins and the series long enough for all of them.

        Each window's training part keeps ``max(2m, 8)`` points. Origins ``h`` steps apart when at least half of
        the series have the history for ``n_windows`` of them; else ``h // 2`` steps, then 1 step apart
        (overlapping test parts: short yearly or quarterly series still get several origins); else fewer
        windows. Where no series has that history but some have one season more than ``h`` (short seasonal
        series: 24 months and h = 6), the training parts keep ``max(m + 1, 8)`` points (a season for seasonal
        naive and the MASE scale; the seasonal models see one season there, as they would on a series that
        short), with a note; else none (equal weights, with a note).
        """
        from forecasting.backtest import rolling_origins

        wanted = self.params.n_windows
        plans = [(n, h) for n in range(wanted, 1, -1)]
        if wanted > 1:
            plans[1:1] = [(wanted, s) for s in sorted({max(1, h // 2), 1}, reverse=True) if s < h]
        plans.append((1, h))
        needs = [max(2 * m if m > 1 else 0, 8)]
        if m > 1 and m + 1 < needs[0]:
            needs.append(max(m + 1, 8))
        for need_train in needs:
            for n_windows, step in plans:
                held = h + (n_windows - 1) * step
                ids = [u for u, n in panel.lengths.items() if n >= held + need_train]
                if len(ids) >= max(1, 0.5 * panel.n_series) or (n_windows == 1 and ids):
                    if need_train < needs[0]:
                        self.notes_.append(f"no series has {needs[0]} observations (two seasons) before a "
                                           f"validation window: the windows' training parts keep {need_train}")
                    if (n_windows, step) != (wanted, h):
                        self.notes_.append(f"validated on {n_windows} window(s) of h={h}, {step} step(s) apart: "
                                           f"too little history for {wanted} windows {h} steps apart")
                    if len(ids) < panel.n_series:
                        self.notes_.append(f"{len(ids)} of {panel.n_series} series are long enough to validate on "
                                           f"(at least {held + need_train} observations); the others are forecast "
                                           f"with the weights learnt on them")
                    return rolling_origins(panel.frame, h=h, n_windows=n_windows, step_size=step), ids
        return [], []

    def _cross_validate(self, panel: Panel, candidates: list[Candidate], windows: list[Any], ids: list[str], h: int,
                        m: int, levels: tuple[float | int, ...], cv_end: float | None,
                        deadline: float | None = None) -> dict[str, Any]:
        """Validate every candidate on ``windows`` (scores, forecasts and bounds into each :class:`Candidate`) and
        return the truth of the windows (``actual``, ``scale``, ``ids``, ``step``: one array per window).

        Candidates start in order until ``cv_end``, or earlier when the time left to ``deadline`` is only what the
        final refits of the candidates the combination could keep need (their fit times so far: on M4 Hourly the
        local models validated after NHITS left it too little time for its refit); each may use half of the
        validation time left (to that end), the first all of it. A network (a candidate with a training ``time_limit``, validated from one fit) is
        instead kept only while its training, projected from its first steps, leaves time before ``deadline`` for
        its final refit and the final refits of the candidates that could join the combination
        (:meth:`_projection`): it may run past ``cv_end`` but is skipped, with a note, as soon as the projection
        says it would not end in time.
        """

        truth = self._truth(windows, ids, h, m)
        if not windows:
            self.notes_.append("no series is long enough to validate on: the candidates are combined with equal "
                               "weights")
            for c in candidates:
                c.status, c.reason = "unvalidated", None
            return truth
        trains = [w.train_panel(panel, ids) for w in windows]
        actual = np.concatenate(truth["actual"])
        scale = np.concatenate(truth["scale"])
        ref = _reference_rows(truth)
        for i, c in enumerate(candidates):
            now = time.time()
            projected = (deadline is not None and len(trains) > 1
                         and "time_limit" in REGISTRY[c.spec.name].params.__struct_fields__)
            reserve = sum(o.fit_seconds for o in self._eligible(candidates))
            if cv_end is not None and now >= cv_end:
                c.status, c.reason = "dropped", "skipped: the time limit's share for validation was used up"
                continue
            # validation ends early enough for the final refits of the candidates the combination could keep
            end = cv_end if cv_end is None or deadline is None else min(cv_end, deadline - reserve)
            if not projected and deadline is not None and end is not None and now >= end:
                c.status, c.reason = "dropped", (f"skipped: the {deadline - now:.0f} s left are kept "
                                                 f"for the final refits of the candidates the combination could keep "
                                                 f"(~{reserve:.0f} s)")
                continue
            if projected:
                assert deadline is not None
                share: float | None = deadline - reserve
            else:
                share = None if end is None else now + (end - now) * (1.0 if i == 0 else 0.5)
            t0 = time.perf_counter()
            try:
                progress = self._projection(c, deadline, reserve) if projected else None
                self._validate_points_at_least(c, trains, panel.freq, h, levels, share, progress)
            except ForecastingError as exc:
                c.status, c.reason = "dropped", f"{type(exc).__name__}: {exc}"[:300]
                if exc.details.get("projected"):
                    c.reason = str(exc)[:300]
                    self.notes_.append(f"{c.label}: {exc}"[:300])
                elif isinstance(exc, TimeLimitError) and share is not None:  # left, not waited for
                    c.reason = (f"skipped: not finished within its {share - now:.1f} s share of the time limit "
                                f"({self.limit_named_}), left after "
                                f"{time.perf_counter() - t0:.1f} s: {exc}")[:300]
                c.forecasts, c.bounds = [], {}
                continue
            finally:
                c.seconds = time.perf_counter() - t0
            c.status = "scored"
            f = np.concatenate(c.forecasts)
            if f.shape == actual.shape and np.isfinite(f).all():
                c.score = _loss(actual, f, scale, ref)
        one = [c.label for c in candidates if c.one_fit and c.status == "scored"]
        if one:
            self.notes_.append(f"{', '.join(one)}: validated from one fit on the earliest window's training part, "
                               f"each later window forecast from its own history without retraining (global models)")
        for c in candidates:
            if c.status == "scored" and c.score is None:
                c.status, c.reason = "dropped", "non-finite or misaligned validation forecasts"
        return truth

    def _truth(self, windows: list[Any], ids: list[str], h: int, m: int) -> dict[str, Any]:
        """Each window's actual values, series, steps, MASE scales and (OWA) reference forecasts of the validated
        series ``ids`` (``actual``, ``ids``, ``step``, ``scale``, ``ref``: one array per window, rows sorted by
        ``unique_id, ds``; ``ref`` empty unless the metric is OWA)."""
        truth: dict[str, Any] = {"actual": [], "scale": [], "ids": [], "step": [], "ref": []}
        for w in windows:
            test = w.test.filter(pl.col("unique_id").is_in(ids)).sort("unique_id", "ds", maintain_order=True)
            train = w.train.filter(pl.col("unique_id").is_in(ids))
            truth["actual"].append(test["y"].to_numpy().astype(float))
            truth["ids"].append(test["unique_id"].to_numpy())
            truth["step"].append(np.tile(np.arange(h), len(ids)))
            truth["scale"].append(self._scale(train, test, m))
            if getattr(self, "metric_", self.params.metric) == "owa":
                truth["ref"].append(_reference(train, test, m))
        return truth

    def _validate_points_at_least(self, c: Candidate, trains: list[Panel], freq: str | int, h: int,
                                  levels: tuple[float | int, ...], share: float | None,
                                  progress: Progress | None) -> None:
        """:meth:`_validate` with ``levels``; where a window is too short for the candidate's own bands only
        (croston_sba's conformal bands need 2h + 1 points), its point forecasts alone, with a note: the selection
        and the point forecast do not depend on the levels asked for (its bands take no part in the calibration).

        Raises
        ------
        ForecastingError
            What :meth:`_validate` raises without levels (the candidate is dropped).
        """
        try:
            self._validate(c, trains, freq, h, levels, share, progress=progress)
        except InsufficientHistoryError as exc:
            if not levels:
                raise
            c.forecasts, c.bounds = [], {}
            self._validate(c, trains, freq, h, (), share, progress=progress)
            self.notes_.append(f"{c.label}: validated on its point forecasts only (its bands need more history "
                               f"than a validation window has: {exc})"[:300])

    @staticmethod
    def _eligible(candidates: list[Candidate]) -> list[Candidate]:
        """The candidates scored so far that the trimming would keep (within ``_TRIM_FACTOR`` of the best)."""
        scored = [c for c in candidates if c.status == "scored" and c.score is not None]
        if not scored:
            return []
        best = min(float(c.score) for c in scored if c.score is not None)
        return [c for c in scored if c.score is not None and c.score <= _TRIM_FACTOR * best]

    def _projection(self, c: Candidate, deadline: float | None, reserve: float) -> Progress:
        """A training-progress callback that skips ``c`` (a network) once its fit cannot end in time.

        From ``_PROJECT_FROM`` (5%) of its training steps on, the fit's total time is projected as its set-up
        (the time to its first report: data loaders, the first batch) plus the steps left at the pace of the
        steps since that report; when that fit, a final refit as long, and ``reserve`` (seconds: the final
        refits of the candidates the combination could keep) would end past ``deadline``, it raises
        ``TimeLimitError`` (``details["projected"]``), so the network is left, not waited for. (Dividing the
        whole time so far by the fraction done counted the set-up twenty times: on M4 Hourly it projected 330 s
        for a fit that takes ~150 s on 2 CPU cores.)
        """
        started = time.time()
        first: list[tuple[float, float]] = []  # (time, fraction) of the first report

        def progress(fraction: float, message: str) -> None:
            now = time.time()
            if not first:
                first.append((now, fraction))
            if deadline is None or fraction < _PROJECT_FROM:
                return
            t1, f1 = first[0]
            if fraction <= f1:  # the first report: no pace yet
                return
            fit = (t1 - started) + (now - t1) / (fraction - f1) * (1.0 - f1)
            if started + 2 * fit + reserve > deadline:
                msg = (f"skipped: its training, projected from its first {fraction:.0%} of steps, takes {fit:.0f} s a "
                       f"fit; with its final refit and the final refits of the candidates it could join "
                       f"({reserve:.0f} s) it would end {started + 2 * fit + reserve - deadline:.0f} s past the time "
                       f"limit ({self.limit_named_})")
                raise TimeLimitError(msg, field="time_limit",
                                     details={"projected": True, "fit_seconds": round(fit, 1)})

        return progress

    def _validate(self, c: Candidate, trains: list[Panel], freq: str | int, h: int, levels: tuple[float | int, ...],
                  share: float | None, *, progress: Progress | None = None) -> None:
        """Fit ``c`` and collect its forecast of every validation window (``trains`` in window order, the latest
        first).

        A local model is fitted on each window's training part. A global model (trees, networks) is fitted once,
        on the earliest window's training part (the shortest), and forecasts each later window from that
        window's own history without retraining (``predict(h, history=...)``), as mlforecast's
        ``cross_validation(refit=False)`` does: its validation costs one fit instead of one per window, so with
        the final refit two in all. When that fit handed series to its fallback (too short for it), the later
        windows are fitted each on their own, as a local model's.

        Raises
        ------
        ForecastingError
            From the model (``TimeLimitError`` past ``share``).
        """
        from forecasting.models.global_base import GlobalForecaster
        from forecasting.models.registry import make_model

        one_fit = len(trains) > 1 and isinstance(make_model(c.spec, freq=freq), GlobalForecaster)
        spec = _soft_limited(c.spec, share, 1 if one_fit else len(trains))

        def fitted(train: Panel) -> Forecaster:
            model = make_model(spec, freq=freq, n_jobs=self.n_jobs)
            arm(model, deadline=share, progress=progress)
            t0 = time.perf_counter()
            out = model.fit(train)
            c.fit_seconds = max(c.fit_seconds, time.perf_counter() - t0)
            return out

        earliest = fitted(trains[-1]) if one_fit else None
        c.fitted = earliest if earliest is not None and not earliest.fallbacks_ else None
        for k, train in enumerate(trains):
            source: Any  # a fitted model, or the earliest fit forecasting from this window's history
            if k == len(trains) - 1 and earliest is not None:
                source = earliest
            elif c.fitted is not None:
                source = _FromHistory(c.fitted, train)
            else:
                source = fitted(train)
            self._collect(c, source.alias, member_forecast(source, h, levels), levels)

    def _scale(self, train: pl.DataFrame, test: pl.DataFrame, m: int) -> np.ndarray:
        """Per test row: the series' MASE denominator on its training part (``nan`` for sMAPE)."""
        if getattr(self, "metric_", self.params.metric) == "smape":
            return np.full(test.height, np.nan)
        lag = pl.when(pl.len().over("unique_id") > m).then(m).otherwise(1) if m > 1 else pl.lit(1)
        diffs = train.with_columns(lag.alias("_lag")).group_by("unique_id", maintain_order=True).agg(
            (pl.col("y") - pl.col("y").shift(pl.col("_lag").first())).abs().mean().alias("s"),
            pl.col("y").abs().mean().alias("a"))
        per = {u: (s if s is not None and s > 0 else (a if a and a > 0 else 1.0)) for u, s, a in diffs.iter_rows()}
        return np.array([per[u] for u in test["unique_id"].to_list()], dtype=float)

    @staticmethod
    def _collect(c: Candidate, alias: str, fc: pl.DataFrame, levels: tuple[float | int, ...]) -> None:
        """One window's forecast of ``c``, and its bounds per level; a window without bounds at a level where
        another window has them (a global model too short to calibrate on the earliest window) gets NaN bounds,
        so every level's bounds line up with the forecasts and the combination skips those rows."""
        fc = fc.sort("unique_id", "ds", maintain_order=True)
        point = fc[alias].to_numpy().astype(float)
        c.forecasts.append(point)
        for lev in levels:
            lo, hi = f"{alias}-lo-{lev}", f"{alias}-hi-{lev}"
            if lo in fc.columns and hi in fc.columns:
                band = (fc[lo].to_numpy().astype(float), fc[hi].to_numpy().astype(float))
            elif float(lev) in c.bounds:
                band = (np.full(point.size, np.nan), np.full(point.size, np.nan))
            else:
                continue
            windows = c.bounds.setdefault(float(lev), [])
            windows.extend((np.full(f.size, np.nan), np.full(f.size, np.nan)) for f in c.forecasts[len(windows):-1])
            windows.append(band)

    # ------------------------------------------------------------------ selection
    def _select(self, scored: list[Candidate], truth: dict[str, Any],
                n_windows: int) -> tuple[dict[str, float], dict[str, dict[str, float]] | None]:
        if not scored:
            return {}, None
        if not truth["actual"]:  # nothing to validate on: equal weights
            return {c.label: 1.0 / len(scored) for c in scored}, None
        actual = np.concatenate(truth["actual"])
        scale = np.concatenate(truth["scale"])
        ref = _reference_rows(truth)
        best = min(float(c.score) for c in scored if c.score is not None)
        pool = [c for c in scored if c.score is not None and c.score <= _TRIM_FACTOR * best]
        trimmed = [c for c in scored if c.score is None or c.score > _TRIM_FACTOR * best]
        for c in trimmed:
            c.reason = (f"left out of the combination: its validation score {c.score:.4f} is over {_TRIM_FACTOR} "
                        f"times the best ({best:.4f})")
        if trimmed:
            self.notes_.append(f"{', '.join(c.label for c in trimmed)}: left out of the combination (validation "
                               f"score over {_TRIM_FACTOR} times the best, {best:.4f})")
        F = np.stack([np.concatenate(c.forecasts) for c in pool])
        w = greedy_weights(F, actual, scale, size=self.params.ensemble_size, ref=ref)
        self.combination_ = "greedy"
        if (n_windows >= 2 and len(pool) >= 3 and self.params.ensemble_size > 1 and self.params.selection != "series"
                and not self.overlapping_):
            self.combination_ = self._combination_rule(F, actual, scale, truth)
            if self.combination_ != "greedy":
                w = np.full(len(pool), 1.0 / len(pool))
        for c, wt in zip(pool, w, strict=True):
            c.weight = float(wt)
        weights = {c.label: float(wt) for c, wt in zip(pool, w, strict=True) if wt > 0}
        series = None
        if self.params.selection == "auto" and n_windows >= 2 and self.overlapping_:
            self.notes_.append("dataset weights: the validation windows overlap (less than h steps apart), so "
                               "per-series weights cannot be scored on a window they were not learnt on")
        if self.params.selection == "series" or (self.params.selection == "auto" and n_windows >= 2
                                                 and self.combination_ != "median" and not self.overlapping_):
            series = self._series_weights(pool, truth, F, actual, scale, force=self.params.selection == "series")
        return weights, series

    def _combination_rule(self, F: np.ndarray, actual: np.ndarray, scale: np.ndarray, truth: dict[str, Any]) -> str:
        """How the trimmed pool is combined: ``greedy`` (ensemble selection), ``mean`` or ``median`` (equal weights,
        Stock & Watson 2004), whichever has the lowest leave-one-window-out validation error: each rule learnt on
        all the windows but one and scored on that one, averaged over the windows (ties: greedy, then mean).

        Measured with ``benchmarks/m3_rules.py`` (the default pool with every candidate finished): M3 Quarterly
        (756 series, h = 8, windows 0/8/16 steps before the end) leave-one-window-out MASE greedy 1.2449, mean
        1.2446, median 1.2304: median kept, test sMAPE 8.973 against greedy's 9.086 (Theta: 8.96); M3 Other (174
        series) greedy 2.0825, mean 2.1361, median 2.1792: greedy kept (test sMAPE 4.201; median's 4.384).
        Only asked when the windows do not overlap (``overlapping_``): on M3 Yearly (windows 1 step apart, h = 6)
        a rule learnt on two windows shares 5 of 6 target steps with the third, and the held-out scores favour
        what was learnt; the per-series weights are not considered there either (they scored 2.43 against 2.96
        for dataset weights on the latest window, then 16.47 against 15.53 test sMAPE).
        """
        win = np.concatenate([np.full(a.size, i) for i, a in enumerate(truth["actual"])])
        ref = _reference_rows(truth)
        errs: dict[str, list[float]] = {"greedy": [], "mean": [], "median": []}
        for k in range(len(truth["actual"])):
            fit, held = win != k, win == k
            wk = greedy_weights(F[:, fit], actual[fit], scale[fit], size=self.params.ensemble_size, ref=_part(ref, fit))
            errs["greedy"].append(_loss(actual[held], wk @ F[:, held], scale[held], _part(ref, held)))
            errs["mean"].append(_loss(actual[held], F[:, held].mean(axis=0), scale[held], _part(ref, held)))
            errs["median"].append(_loss(actual[held], np.median(F[:, held], axis=0), scale[held], _part(ref, held)))
        score = {rule: float(np.mean(e)) for rule, e in errs.items()}
        rule = min(score, key=lambda r: score[r])
        self.notes_.append("combination by leave-one-window-out validation error: " + ", ".join(
            f"{r} {v:.4f}" for r, v in score.items()) + f"; {rule} kept")
        return rule

    def _series_weights(self, scored: list[Candidate], truth: dict[str, Any], F: np.ndarray, actual: np.ndarray,
                        scale: np.ndarray, *, force: bool) -> dict[str, dict[str, float]] | None:
        ids = np.concatenate(truth["ids"])
        win = np.concatenate([np.full(a.size, i) for i, a in enumerate(truth["actual"])])
        ref = _reference_rows(truth)
        size = max(1, min(self.params.ensemble_size, 5))
        if not force:
            old, new = win > 0, win == 0
            wd = greedy_weights(F[:, old], actual[old], scale[old], size=self.params.ensemble_size, ref=_part(ref, old))
            dataset_err = _loss(actual[new], wd @ F[:, new], scale[new], _part(ref, new))
            pred = np.empty(int(new.sum()))
            for u in np.unique(ids[new]):
                o, n = old & (ids == u), (ids == u)[new]
                wu = greedy_weights(F[:, o], actual[o], scale[o], size=size, ref=_part(ref, o))
                pred[n] = wu @ F[:, new][:, n]
            series_err = _loss(actual[new], pred, scale[new], _part(ref, new))
            self.notes_.append(f"per-series weights scored {series_err:.4f} against {dataset_err:.4f} for "
                               f"dataset weights on the latest window: "
                               f"{'kept' if series_err < 0.98 * dataset_err else 'dataset weights kept'}")
            if not series_err < 0.98 * dataset_err:
                return None
        out: dict[str, dict[str, float]] = {}
        for u in np.unique(ids):
            rows = ids == u
            wu = greedy_weights(F[:, rows], actual[rows], scale[rows], size=size, ref=_part(ref, rows))
            out[str(u)] = {c.label: float(x) for c, x in zip(scored, wu, strict=True) if x > 0}
        return out

    def _calibrate(self, scored: list[Candidate], truth: dict[str, Any], levels: tuple[float | int, ...],
                   h: int) -> dict[float, np.ndarray]:
        """Per level, the conformal widening factor per horizon step (length ``h``; pooled when few scores)."""
        out: dict[float, np.ndarray] = {}
        if not truth["actual"] or not self.weights_:
            return out
        actual = np.concatenate(truth["actual"])
        step = np.concatenate(truth["step"])
        for lev in levels:
            lo, hi = self._combine_bounds(scored, float(lev))
            if lo is None or hi is None:
                continue
            width = hi - lo
            # a band of (almost) no width (a flat validation window) says nothing about how wide to be
            ok = width > 1e-9 * (np.abs(actual) + np.abs(hi) + 1.0)
            if ok.sum() < 10:
                continue
            s = np.maximum(lo - actual, actual - hi)[ok] / width[ok]
            steps = step[ok]
            q = np.full(h, _conformal_quantile(s, float(lev)))
            if s.size >= 200 * h:
                q = np.array([_conformal_quantile(s[steps == k], float(lev)) for k in range(h)])
            capped = np.clip(q, _MIN_FACTOR, _MAX_FACTOR)
            if not np.array_equal(capped, q):
                self._note(f"level {lev}: the conformal factor was capped to [{_MIN_FACTOR}, {_MAX_FACTOR}] band "
                           f"widths (the validation windows disagreed strongly with the members' bands)")
            out[float(lev)] = capped
        return out

    def _combine_bounds(self, scored: list[Candidate], lev: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The validation windows' band at ``lev``: the members' bounds mixed as :meth:`predict` mixes them
        (:func:`~forecasting.models.combination.weighted_mean` with the dataset weights); None when no member
        with a weight has bounds at that level."""
        use = [c for c in scored if lev in c.bounds and self.weights_.get(c.label, 0.0) > 0]
        if not use:
            return None, None
        weights = np.array([self.weights_[c.label] for c in use])
        if getattr(self, "combination_", "greedy") == "median":
            lo, hi = (median([np.concatenate([b[side] for b in c.bounds[lev]]) for c in use]) for side in (0, 1))
        else:
            lo, hi = (weighted_mean([np.concatenate([b[side] for b in c.bounds[lev]]) for c in use], weights)
                      for side in (0, 1))
        return lo, hi

    def _refit(self, panel: Panel, scored: list[Candidate], deadline: float | None) -> None:
        from forecasting.models.registry import make_model

        by_label = {c.label: c for c in scored}
        labels = set(self.weights_)
        if self.series_weights_:
            for w in self.series_weights_.values():
                labels |= set(w)
        self.members_: dict[str, Forecaster] = {}
        # cheapest first (by validation time): a slow member that runs out of time must not leave none for the
        # cheap ones (M3 quarterly under a tight limit: lightgbm's refit took the rest, theta got 0 of 50 series)
        for label in sorted(labels, key=lambda lab: (by_label[lab].seconds, -self.weights_.get(lab, 0.0))):
            c = by_label[label]
            if c.fitted is not None and deadline is not None and time.time() + _REFIT_MARGIN * c.fit_seconds > deadline:
                self._keep_validation_fit(c, panel, f"{max(0.0, deadline - time.time()):.0f} s left, its fit took "
                                                   f"{c.fit_seconds:.0f} s")
                continue
            model = make_model(_soft_limited(c.spec, deadline, 1), freq=panel.freq, n_jobs=self.n_jobs)
            arm(model, deadline=deadline)
            try:
                self.members_[label] = model.fit(panel)
            except ForecastingError as exc:
                if c.fitted is not None:
                    self._keep_validation_fit(c, panel, str(exc))
                    continue
                self.notes_.append(f"member '{label}' dropped at the final fit: {exc}"[:300])
        if not self.members_:
            self._last_resort(panel)
            return
        kept = {k: v for k, v in self.weights_.items() if k in self.members_}
        total = sum(kept.values()) or 1.0
        self.weights_ = {k: v / total for k, v in kept.items()} or {next(iter(self.members_)): 1.0}
        self.fallbacks_ = [Fallback(fb.unique_id, fb.model, f"within member '{label}' (weight "
                                             f"{self.weights_.get(label, 0.0):.2f}): {fb.reason}")
                           for label, model in self.members_.items() for fb in model.fallbacks_]

    def _keep_validation_fit(self, c: Candidate, panel: Panel, why: str) -> None:
        """Member ``c`` (a global model validated from one fit) without its final refit: its validation fit
        forecasts from the whole history, as mlforecast's ``refit=False`` (on M4 Hourly the median of XGBoost,
        LightGBM, the recent-lag XGBoost and NHITS scored test OWA 0.4131 refitted and 0.4183 from their
        validation fits, where dropping the last two for lack of time gave 0.4296)."""
        self.members_[c.label] = _FromHistory(c.fitted, panel)  # type: ignore[assignment]
        self.notes_.append(f"member '{c.label}': no final refit in time ({why}); its validation fit (the earliest "
                           f"window's training part) forecasts from the whole history"[:300])

    def _last_resort(self, panel: Panel) -> None:
        """No member could be fitted in time: seasonal naive at the data's season (naive for the series shorter
        than a season) where there is one, else naive, fitted without the deadline (a pass over the data). Was:
        always naive, so hourly data lost its daily cycle when a slow candidate had used up the time limit."""
        from forecasting.models.registry import make_model

        m = getattr(self, "season_", 1)
        specs = [ModelSpec(name="seasonal_naive", params={"season_length": m}, fallback="naive")] if m > 1 else []
        for spec in [*specs, ModelSpec(name="naive")]:
            try:
                model = make_model(spec, freq=panel.freq).fit(panel)
            except ForecastingError as exc:
                self.notes_.append(f"'{spec.name}' could not be fitted as the last resort: {exc}"[:300])
                continue
            self.notes_.append(f"no candidate could be fitted in time: forecasting with '{spec.name}'"
                               + (f" (season_length={m})" if spec.name == "seasonal_naive" else ""))
            self.members_ = {spec.name: model}
            self.weights_ = {spec.name: 1.0}
            self.series_weights_ = None
            return

    # ------------------------------------------------------------------ predict
    def predict(self, h: int, *, history: Panel | Any | None = None, X_future: pl.DataFrame | None = None,
                level: Sequence[float] = ()) -> pl.DataFrame:
        """The members' forecasts mixed with the selected weights (a series' own where it has them).

        Parameters
        ----------
        h : int
            Steps after each series' end.
        history : Panel or frame, optional
            Reruns the search on it (as the statistical models refit) and forecasts from its end.
        X_future : None
            Not used (``CapabilityError`` if given).
        level : sequence of numbers in (0, 100)
            Interval levels, percent: the members' bands mixed with the same weights, widened by the
            conformal factor calibrated for the level, then lo <= point <= hi, nested across levels.

        Returns
        -------
        pl.DataFrame
            ``unique_id, ds, Auto[, Auto-lo-<L>, Auto-hi-<L>]``, ``h`` rows per series (clipped at 0
            when ``non_negative_``).

        Raises
        ------
        NotFittedError, InvalidParameterError
            Before ``fit``; ``h`` or ``level`` out of range.
        CapabilityError
            ``X_future`` given; ``level`` when none of the members gives intervals here.
        """
        if history is not None:
            return self._refit_predict(h, history, X_future=X_future, level=level)
        h, levels = self._prepare_local(h, level, X_future)
        members = list(self.members_.values())
        keys, outs = member_forecasts(members, h, levels, name=self.name)
        W = weight_matrix(keys["unique_id"].to_numpy(), list(self.members_), self.weights_, self.series_weights_)
        use_median = getattr(self, "combination_", "greedy") == "median" and self.series_weights_ is None

        def mix(values: Sequence[np.ndarray | None]) -> np.ndarray:
            return median(values) if use_median else weighted_mean(values, W)

        point = mix(member_values(outs, members))
        steps = keys.group_by("unique_id", maintain_order=True).agg(pl.int_range(pl.len()).alias("k"))["k"].explode()
        bands: dict[float | int, tuple[np.ndarray, np.ndarray]] = {}
        for lev in levels:
            lo = mix(member_values(outs, members, f"-lo-{lev}"))
            hi = mix(member_values(outs, members, f"-hi-{lev}"))
            q = self.calibration_.get(float(lev))
            if q is not None:
                k = np.minimum(steps.to_numpy(), q.size - 1)
                width = hi - lo
                lo, hi = lo - q[k] * width, hi + q[k] * width
            elif self.selection_["series_validated"]:
                self._note(f"level {lev} was not calibrated on the validation windows (calibrated: "
                           f"{', '.join(str(x) for x in self.calibration_) or 'none'}): the members' bands are "
                           f"averaged as they are")
            bands[lev] = (lo, hi)
        columns: dict[str, np.ndarray] = {self.alias: point, **finish_bands(point, bands, self.alias)}
        if self.non_negative_:
            clipped = int((columns[self.alias] < 0).sum())
            for name in list(columns):
                columns[name] = np.maximum(columns[name], 0.0)
            if clipped:
                why = ("non_negative=true" if self.params.non_negative else
                       "every observed value is >= 0 (non_negative=false keeps them)")
                self._note(f"{clipped} negative forecasts clipped at 0: {why}")
        ordered_cols = [self.alias, *level_columns(self.alias, levels)]
        return keys.with_columns([pl.Series(c, columns[c], dtype=pl.Float64) for c in ordered_cols])

    def _note(self, text: str) -> None:
        if text not in self.notes_:
            self.notes_.append(text)


class _FromHistory:
    """A fitted global model seen as one that forecasts from ``history`` (a later validation window's training
    part) without retraining: what :func:`~forecasting.models.combination.member_forecast` needs (``predict``,
    ``capabilities``, ``alias``)."""

    def __init__(self, model: Forecaster, history: Panel) -> None:
        self.model, self.history = model, history
        self.capabilities, self.alias = model.capabilities, model.alias
        self.fallbacks_ = model.fallbacks_

    def predict(self, h: int, *, level: Sequence[float] = ()) -> pl.DataFrame:
        """The model's forecast of ``h`` steps after each series' end in ``history``."""
        return self.model.predict(h, history=self.history, level=level)


def _reference(train: pl.DataFrame, test: pl.DataFrame, m: int) -> np.ndarray:
    """Per ``test`` row (sorted by ``unique_id, ds``, each series' first rows the first steps): the seasonal naive
    forecast from the series' ``train`` part (naive where the series has ``m`` points or fewer, as the MASE scale of
    :meth:`AutoForecaster._scale`): the reference of the OWA metric."""
    tails = {u: np.asarray(y, dtype=float) for u, y in
             train.sort("unique_id", "ds").group_by("unique_id", maintain_order=True).agg(pl.col("y")).iter_rows()}
    ids = test["unique_id"].to_numpy()
    out = np.empty(test.height)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if ids.size else np.array([], dtype=int)
    for a, b in zip(starts, [*starts[1:], ids.size], strict=True):
        y = tails[ids[a]]
        lag = m if y.size > m else 1
        out[a:b] = y[y.size - lag + np.arange(b - a) % lag]
    return out


def _reference_rows(truth: dict[str, Any]) -> np.ndarray | None:
    """The OWA reference of every validation row (``None`` when the metric is not OWA)."""
    return np.concatenate(truth["ref"]) if truth.get("ref") else None


def _soft_limited(spec: ModelSpec, deadline: float | None, fits: int) -> ModelSpec:
    """``spec`` with a soft ``time_limit`` (seconds of training after which the model trained so far is kept:
    the networks) of 80% of the time to ``deadline`` split over ``fits`` fits, where the model takes one and the
    spec names none; the hard deadline (:func:`arm`) still applies."""
    if deadline is None or "time_limit" not in REGISTRY[spec.name].params.__struct_fields__ or \
            spec.params.get("time_limit") is not None:
        return spec
    seconds = max(1.0, 0.8 * (deadline - time.time()) / max(fits, 1))
    return ModelSpec(name=spec.name, params={**spec.params, "time_limit": round(seconds, 1)}, fallback=spec.fallback)


def _conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The ``ceil((n + 1) * level)``-th smallest score (split conformal, Vovk et al. 2005; 0 when empty)."""
    scores = scores[np.isfinite(scores)]
    n = scores.size
    if n == 0:
        return 0.0
    rank = math.ceil((n + 1) * level / 100.0)
    if rank > n:  # too few scores for this level: the largest one, and never a narrower band
        return max(float(scores.max()), 0.0)
    return float(np.sort(scores)[max(rank, 1) - 1])  # the rank-th smallest score
