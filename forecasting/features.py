"""The polars feature pipeline shared by the global models (XGBoost now, the networks later).

A :class:`FeatureSpec` describes the features; a :class:`FeaturePipeline` is that spec
plus what fitting decided (frequency, timezone, the exogenous columns, feature order).
Both are JSON-serialisable, and one method, :meth:`FeaturePipeline.transform`, builds
the feature rows for training *and* for inference, so there is one code path:

* training: ``transform(history)`` and keep the rows whose features and target exist;
* recursive inference: append the next timestamp (``y`` unknown) to each series' tail,
  ``transform`` it, predict, write the prediction into ``y`` and repeat.

Every feature is computed within its own series (``.over("unique_id")``) on a frame
sorted by ``ds``. Target-derived features only look at earlier rows (every lag is
>= 1), and :meth:`FeaturePipeline.check_regular` verifies the series are on the
``freq`` grid first, so a shift of one row is exactly one step of ``freq`` (gaps are
rejected or filled at the edge, :func:`forecasting.data.validate_panel`).

Timezones: ``ds`` is stored in UTC and a step of ``freq`` is a step of absolute time, so
in a zone with daylight saving an hourly ``lag_24`` is the same *UTC* hour the day before
(one local hour off for a day after each clock change). Calendar features (``hour``...)
are computed on the caller's local clock, which lets the model learn local patterns.

Target transforms, applied in this order and inverted exactly in reverse:

* per-series scaling (``"standard"``: ``(y - mean) / std``; ``"mean"``: ``y / mean|y|``),
  with the statistics of each series' own history;
* differences (``[1]``, a seasonal ``[24]``, or several), as mlforecast's
  ``Differences`` (Nixtla, mlforecast ``target_transforms``).

Feature names: ``lag_24``, ``rolling_mean_24_lag_1``, ``seasonal_rolling_mean_24x7_lag_24``
(the mean of the values 24, 48, ..., 168 steps back), ``expanding_mean_lag_1``, calendar
names (``hour``, ``dayofweek``...), static and future exogenous column names, and
``<column>_lag_<L>`` for historic-only exogenous columns.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec
import numpy as np
import polars as pl

from forecasting.data import Panel, collect_small, offset_parts
from forecasting.errors import InvalidInputError, InvalidParameterError

__all__ = ["CALENDAR", "FeatureDef", "FeaturePipeline", "FeatureSpec", "RollingSpec", "choose_differences",
           "default_features", "feature_budget", "feature_defs", "typical_length"]

Stat = Literal["mean", "std", "min", "max"]
CALENDAR = ("minute", "hour", "dayofweek", "day", "dayofyear", "week", "month", "quarter", "year")
Positive = Annotated[int, msgspec.Meta(ge=1, le=100_000)]
CalendarFeature = Literal["minute", "hour", "dayofweek", "day", "dayofyear", "week", "month", "quarter", "year"]
TARGET = "_target"
SCALE_MEAN, SCALE_STD = "_scale_loc", "_scale_scale"
_POS = "_position_in_series"


class RollingSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Rolling statistics of the (transformed) target.

    ``window`` consecutive values ending ``lag`` steps back; with ``season_length`` the
    window takes every ``season_length``-th value instead (``window`` seasons back):
    ``seasonal_rolling_mean_24x7_lag_24`` is the mean of the values 24, 48, ..., 168
    steps back (mlforecast's ``seasonal_rolling_mean``).
    """

    window: Positive
    stats: list[Stat] = msgspec.field(default_factory=lambda: ["mean"])
    lag: Positive = 1
    season_length: Positive | None = None


class FeatureSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Which features to build (JSON: the keys below).

    Attributes
    ----------
    lags : list of int >= 1
        Lags of the transformed target, in steps of ``freq``.
    rolling : list of RollingSpec
    expanding_mean_lags : list of int >= 1
        Mean of all values up to ``L`` steps back.
    calendar : list of names from :data:`CALENDAR`
        Taken from ``ds`` on the caller's clock (datetime ``ds`` only).
    static : list of str
        Columns of the static frame (one row per series).
    future_exog : list of str
        Exogenous columns known for the future (given in ``X_future`` at predict time).
    hist_exog : dict of str to list of int
        Historic-only exogenous columns and their lags (each lag >= the model's maximum
        horizon, so no future value is ever needed).
    differences : list of int >= 1
        Target differences, applied in order (``[24]`` = seasonal difference).
    scaler : {"none", "standard", "mean"}
        Per-series scaling of the target before differencing.
    """

    lags: list[Positive] = msgspec.field(default_factory=list)
    rolling: list[RollingSpec] = msgspec.field(default_factory=list)
    expanding_mean_lags: list[Positive] = msgspec.field(default_factory=list)
    calendar: list[CalendarFeature] = msgspec.field(default_factory=list)
    static: list[str] = msgspec.field(default_factory=list)
    future_exog: list[str] = msgspec.field(default_factory=list)
    hist_exog: dict[str, list[Positive]] = msgspec.field(default_factory=dict)
    differences: list[Positive] = msgspec.field(default_factory=list)
    scaler: Literal["none", "standard", "mean"] = "none"


FeatureKind = Literal["lag", "rolling", "seasonal_rolling", "expanding_mean", "calendar", "static", "future_exog",
                      "hist_exog"]
#: The kinds computed from the (transformed) target: their ``lag`` is the nearest step they read.
TARGET_KINDS = ("lag", "rolling", "seasonal_rolling", "expanding_mean")


@dataclass(frozen=True)
class FeatureDef:
    """One feature of a :class:`FeatureSpec`, as :func:`feature_defs` lists them: the one definition that both
    evaluators read (the polars query, :meth:`FeaturePipeline.transform_lazy`, and the numpy evaluator of a
    forecast's rows, :meth:`FeaturePipeline.block_matrix`).

    Attributes
    ----------
    name : str
        The column name (``lag_24``, ``rolling_std_24_lag_24``, ``seasonal_rolling_mean_24x7_lag_24``, ``hour``...).
    kind : {"lag", "rolling", "seasonal_rolling", "expanding_mean", "calendar", "static", "future_exog", "hist_exog"}
    lag : int
        Steps back of the nearest value read (target-derived and ``hist_exog``; 0 otherwise).
    window : int
        Values in a rolling window (``seasonal_rolling``: seasons).
    stat : {"mean", "std", "min", "max"}
        Statistic of a rolling window.
    season_length : int
        Steps between the values of a seasonal rolling window (0 otherwise).
    column : str
        The calendar field, or the static/exogenous column.
    """

    name: str
    kind: FeatureKind
    lag: int = 0
    window: int = 1
    stat: Stat = "mean"
    season_length: int = 0
    column: str = ""

    @property
    def reach(self) -> list[int]:
        """Steps back of every value a seasonal rolling window reads: ``lag, lag + m, ..., lag + (window-1) m``."""
        return [self.lag + i * self.season_length for i in range(self.window)]


def feature_defs(spec: FeatureSpec) -> tuple[FeatureDef, ...]:
    """Every feature of ``spec``, in the model's column order: lags, rolling statistics (per window spec,
    per statistic), expanding means, calendar, static, future exogenous, historic exogenous lags.

    Examples
    --------
    >>> [f.name for f in feature_defs(FeatureSpec(lags=[1, 24], rolling=[RollingSpec(window=3, lag=24,
    ...                                                                  season_length=24)], calendar=["hour"]))]
    ['lag_1', 'lag_24', 'seasonal_rolling_mean_24x3_lag_24', 'hour']
    """
    return _feature_defs(msgspec.json.encode(spec))


@functools.lru_cache(maxsize=128)
def _feature_defs(spec_json: bytes) -> tuple[FeatureDef, ...]:
    spec = msgspec.json.decode(spec_json, type=FeatureSpec)
    out = [FeatureDef(f"lag_{lag}", "lag", lag=lag) for lag in spec.lags]
    for r in spec.rolling:
        for stat in r.stats:
            if r.season_length:
                out.append(FeatureDef(f"seasonal_rolling_{stat}_{r.season_length}x{r.window}_lag_{r.lag}",
                                      "seasonal_rolling", lag=r.lag, window=r.window, stat=stat,
                                      season_length=r.season_length))
            else:
                out.append(FeatureDef(f"rolling_{stat}_{r.window}_lag_{r.lag}", "rolling", lag=r.lag,
                                      window=r.window, stat=stat))
    out += [FeatureDef(f"expanding_mean_lag_{lag}", "expanding_mean", lag=lag) for lag in spec.expanding_mean_lags]
    out += [FeatureDef(c, "calendar", column=c) for c in spec.calendar]
    out += [FeatureDef(c, "static", column=c) for c in spec.static]
    out += [FeatureDef(c, "future_exog", column=c) for c in spec.future_exog]
    out += [FeatureDef(f"{c}_lag_{lag}", "hist_exog", lag=lag, column=c) for c, lags in spec.hist_exog.items()
            for lag in lags]
    return tuple(out)


_CALENDAR_BY_UNIT: dict[str, list[CalendarFeature]] = {"m": ["minute", "hour", "dayofweek"], "h": ["hour", "dayofweek"], "d": ["dayofweek", "month"],
                                                        "bd": ["dayofweek", "month"],
                                                        "w": ["week"], "mo": ["month"], "q": ["quarter"], "y": []}

#: Quantile of the series lengths the default features are sized for: the features fit the history of
#: at least 90% of the series (the shorter ones go to a fallback model, or are refused naming them).
LENGTH_QUANTILE = 0.1
#: Seasons of lags kept by the seasonal feature set (M4 Hourly: lags 24, 48, ..., 168).
MAX_SEASONS = 7
#: Smallest seasonal period for which the seasonal feature set (seasonal lags and difference) is used:
#: intraday data. Longer-period data (daily, weekly, monthly...) gets recent lags and a first difference.
SEASONAL_SET_MIN_PERIOD = 24


def typical_length(lengths: Iterable[int] | Mapping[str, int] | None) -> int | None:
    """The history the default features are sized for: the lower decile of the series lengths.

    Parameters
    ----------
    lengths : iterable of int, or mapping of ``unique_id`` to int, optional
        Observations per series.

    Returns
    -------
    int or None
        ``floor`` of the :data:`LENGTH_QUANTILE` quantile (numpy's linear interpolation); None when
        ``lengths`` is None or empty (unknown: the features are not limited by the history).

    Examples
    --------
    >>> typical_length([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110])
    20
    """
    if lengths is None:
        return None
    values = list(lengths.values()) if isinstance(lengths, Mapping) else list(lengths)
    if not values:
        return None
    return int(np.floor(np.quantile(np.asarray(values, dtype=np.float64), LENGTH_QUANTILE)))


def seasonal_set_applies(season_length: int, lengths: Iterable[int] | Mapping[str, int] | None) -> bool:
    """Whether the intraday seasonal feature set applies: a first season of at least
    :data:`SEASONAL_SET_MIN_PERIOD` steps and a :func:`feature_budget` of five seasons or more (no limit
    when the lengths are unknown). Then the global tree model with recent lags differs from the plain one,
    so both are worth combining (``ensemble``'s default members, ``auto``'s pool).
    """
    budget = feature_budget(lengths)
    return season_length >= SEASONAL_SET_MIN_PERIOD and (budget is None or budget >= 5 * season_length)


def feature_budget(lengths: Iterable[int] | Mapping[str, int] | None, horizon: int | None = None) -> int | None:
    """Longest lookback (rows a series spends before its first feature row) the default features may use.

    Half of :func:`typical_length` (the other half gives each series its training rows), and, when the
    horizon is known, no more than leaves one held-out window of ``horizon`` steps on that series
    (conformal calibration); never below 3. None when the lengths are unknown (no limit).
    """
    n = typical_length(lengths)
    if n is None:
        return None
    budget = n // 2
    if horizon is not None:
        budget = min(budget, n - 1 - horizon)
    return max(3, budget)


#: share of the series the unit-root test must find needing a difference for the recent feature set to difference
#: ``y`` (:func:`choose_differences`), the series tested at most, and the shortest series tested: the KPSS test
#: has little power on short series (20 trending monthly series of 24 points were all called level-stationary,
#: and xgboost in levels scored sMAPE 6.53 against 5.62 differenced), so shorter ones keep the difference
DIFFERENCE_SHARE, DIFFERENCE_SERIES, DIFFERENCE_MIN_LENGTH = 0.5, 200, 48


def choose_differences(panel: Panel, among: Iterable[str] | None = None) -> tuple[list[int], str]:
    """Whether the recent feature set differences ``y`` once, from a unit-root test of the panel's series.

    Each of up to :data:`DIFFERENCE_SERIES` series (evenly spaced over the panel, or over ``among``; those of at least
    :data:`DIFFERENCE_MIN_LENGTH` observations, where the test has power: without one, a first difference)
    gets the first test of statsforecast's ``ndiffs`` (R forecast's: the KPSS test of level stationarity at 5%,
    Kwiatkowski, Phillips, Schmidt & Shin, J. Econometrics 1992, statsmodels' ``kpss``; :func:`_needs_difference`). ``y`` is differenced once when at least :data:`DIFFERENCE_SHARE` of them need a difference: a
    trending or wandering panel (M3 Monthly, Quarterly) keeps its first difference, a stationary one (a level
    driven by an exogenous price) is modelled in levels.

    Parameters
    ----------
    panel : Panel
    among : iterable of str, optional
        The series the features are made for (default: every series of ``panel``): a tree model tests only the
        series it keeps, so the panel without its short series gets the same answer
        (:meth:`~forecasting.models.trees.TreeForecaster.feature_spec_for`).

    Returns
    -------
    (list of int, str)
        ``[1]`` or ``[]``, and the note that says why.
    """
    wanted = None if among is None else set(among)
    ids = [u for u, n in panel.lengths.items() if n >= DIFFERENCE_MIN_LENGTH and (wanted is None or u in wanted)]
    if not ids:
        return [1], (f"differences [1]: no series has the {DIFFERENCE_MIN_LENGTH} observations the unit-root test "
                     f"is given (the default: a first difference)")
    picked = [ids[i] for i in np.unique(np.linspace(0, len(ids) - 1, min(len(ids), DIFFERENCE_SERIES)).astype(int))]
    values = dict(panel.frame.filter(pl.col("unique_id").is_in(picked)).group_by("unique_id")
                  .agg(pl.col("y")).iter_rows())
    need = sum(_needs_difference(np.asarray(values[u], dtype=np.float64)) for u in picked)
    share = need / len(picked)
    verdict = "[1]" if share >= DIFFERENCE_SHARE else "[] (y in levels)"
    note = (f"differences {verdict}: the KPSS unit-root test (as statsforecast's ndiffs) finds {need} of {len(picked)} "
            f"series needing a difference ({share:.0%}; y is differenced from {DIFFERENCE_SHARE:.0%})")
    return ([1] if share >= DIFFERENCE_SHARE else []), note


def _needs_difference(y: np.ndarray) -> bool:
    """Whether the KPSS test rejects level stationarity of ``y`` at 5%: statsforecast's ``ndiffs(y) >= 1`` (its
    first test: statsmodels' ``kpss`` with a constant and ``floor(3 sqrt(n) / 13)`` lags, R forecast's rule),
    without importing statsforecast's ARIMA module (seconds at a tree model's first fit); a constant series
    needs none."""
    import warnings

    from statsmodels.tsa.stattools import kpss

    if np.ptp(y) == 0:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the p-value table's interpolation warning
        return bool(kpss(y, "c", nlags=int(3 * np.sqrt(y.size) / 13))[1] < 0.05)


def default_features(season_length: int, *, freq: str | int | None = None, recent_lags: bool = False,
                     lengths: Iterable[int] | Mapping[str, int] | None = None, horizon: int | None = None,
                     seasons: Sequence[int] = (), differences: Sequence[int] | None = None) -> FeatureSpec:
    """Features for a frequency and the history actually available (a starting point, not a tuned set).

    The features may look back at most :func:`feature_budget` rows (half the lower-decile series
    length; unlimited when ``lengths`` is None), so most series keep most of their history for
    training. Two shapes:

    * **Seasonal set** (intraday periods, ``m`` >= 24, when the budget holds five seasons): every
      multiple of ``m`` up to 7 seasons as lags, rolling mean and std over one season and the
      seasonal rolling mean of the same position over those seasons (all from one season back), a
      seasonal difference ``[m]``. Hourly data thus gets lags 24, 48, ..., 168, as Nixtla's M4
      Hourly examples. Only seasonal lags: over a horizon of two seasons a recursive forecast then
      feeds back at most one season of its own forecasts. On M4 Hourly this scored OWA 0.441
      against 0.502 with lags 1-3 added (2026-11-29). A second period of ``seasons`` (hourly: 168)
      adds the lag of two such periods (336) when the budget allows.
    * **Recent set** (everything else, e.g. daily, weekly, monthly, quarterly, yearly, integer
      steps): ``differences`` (default a first difference; :func:`choose_differences` tells from the data), lags ``1..k`` with ``k`` the budget minus one, at most
      ``max(8, min(2m, 32))`` (yearly/``m`` = 1: 8, monthly 24, weekly 32, daily 14), the seasonal
      lags ``m, 2m, 3m`` and a second period (daily: 364) beyond them that fit, rolling means
      from lag 1 over windows of 4, ``m`` and ``2m`` steps (``m`` < 4: 4, 8, 16) and the rolling std
      over the widest. This is the shape the mlforecast authors used for M4 Weekly, Daily and
      Yearly (Differences([1]), lags 1..32 / 1..14 / 1..6, rolling and expanding means; M4 Weekly
      LightGBM OWA 0.842, ``tests/test_m4.py`` of Nixtla/mlforecast).

    Both use per-series standard scaling (one global model serves series of any scale) and the
    calendar features of a datetime ``freq`` (hourly: hour and day of week; daily: day of week and
    month; weekly: week; monthly: month...; none for integer steps).

    ``recent_lags=True`` (seasonal set only) adds lags 1 .. m-1 and takes the rolling statistics
    from lag 1: a model that reacts to the latest level (M4 Hourly OWA 0.498 alone, but a useful,
    different member of an ensemble). The recent set already has them: there it changes nothing.

    Parameters
    ----------
    season_length : int
        The main seasonal period ``m`` (1: none).
    freq : str or int, optional
        The data's frequency (``"1h"``...; integer steps: no calendar features).
    recent_lags : bool
    lengths : iterable of int or mapping of unique_id to int, optional
        Observations per series (the panel's ``lengths``).
    horizon : int, optional
        The horizon the model is calibrated for, when known (see :func:`feature_budget`).
    seasons : sequence of int
        Further seasonal periods (hourly: ``[24, 168]``); the ones above ``m`` are used.
    differences : sequence of int, optional
        The recent set's differences of ``y`` (default ``[1]``); the seasonal set keeps ``[m]``.

    Returns
    -------
    FeatureSpec

    Examples
    --------
    >>> spec = default_features(24, freq="1h")
    >>> spec.lags, spec.differences, spec.calendar
    ([24, 48, 72, 96, 120, 144, 168], [24], ['hour', 'dayofweek'])
    >>> spec = default_features(52, freq="1w", lengths=[148] * 10)  # three years of weekly data
    >>> spec.lags[-3:], spec.differences, FeaturePipeline(spec=spec, freq="1w").lookback
    ([31, 32, 52], [1], 53)
    >>> default_features(1, lengths=[14, 20, 41]).lags  # yearly-like: short series
    [1, 2, 3, 4, 5, 6]
    """
    calendar: list[CalendarFeature] = []
    if isinstance(freq, str):
        unit = re.match(r"^\d+(\w+)$", freq)
        calendar = list(_CALENDAR_BY_UNIT.get(unit.group(1), []) if unit else [])
    m = max(1, season_length)
    budget = feature_budget(lengths, horizon)
    extra = sorted({s for s in seasons if s > m})
    if m >= SEASONAL_SET_MIN_PERIOD and (budget is None or budget >= 5 * m):
        return _seasonal_set(m, budget, extra, recent_lags, calendar)
    return _recent_set(m, budget, extra, calendar, [1] if differences is None else list(differences))


def _seasonal_set(m: int, budget: int | None, extra: list[int], recent_lags: bool,
                  calendar: list[CalendarFeature]) -> FeatureSpec:
    """The seasonal feature set of :func:`default_features` (lookback ``k * m + m`` within ``budget``)."""
    k = MAX_SEASONS if budget is None else min(MAX_SEASONS, (budget - m) // m)
    lags = [*(range(1, m) if recent_lags else []), *[m * i for i in range(1, k + 1)]]
    for period in extra:  # a second period: two of them back (one is usually a multiple of m already)
        if budget is not None and 2 * period not in lags and 2 * period + m <= budget:
            lags.append(2 * period)
    return FeatureSpec(lags=lags, rolling=[RollingSpec(window=m, stats=["mean", "std"], lag=1 if recent_lags else m),
                                           RollingSpec(window=k, stats=["mean"], lag=m, season_length=m)],
                       differences=[m], scaler="standard", calendar=calendar)


def _recent_set(m: int, budget: int | None, extra: list[int], calendar: list[CalendarFeature],
                differences: list[int]) -> FeatureSpec:
    """The recent feature set of :func:`default_features` (a first difference: lookback ``lag + 1``)."""
    reach = (10**9 if budget is None else budget) - 1  # the farthest lag (or window end) allowed
    k = max(2, min(reach, max(8, min(2 * m, 32))))
    lags = list(range(1, k + 1))
    seasonal = [m * i for i in range(1, 4)] if m > 1 else []
    seasonal += [(p // m) * m for p in extra[:1]]  # daily: 364, a whole number of weeks
    lags += sorted({s for s in seasonal if k < s <= reach})
    windows = sorted({w for w in ([4, m, 2 * m] if m >= 4 else [4, 8, 16]) if 2 <= w <= reach})
    rolling = [RollingSpec(window=w, stats=["mean", "std"] if w == windows[-1] else ["mean"], lag=1) for w in windows]
    return FeatureSpec(lags=lags, rolling=rolling, differences=differences, scaler="standard", calendar=calendar)


class FeaturePipeline(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A fitted feature pipeline: the spec plus the panel's form.

    Build one with :meth:`fit`; save it with :meth:`to_json` and restore it with
    :meth:`from_json`. All work happens in :meth:`transform`.
    """

    spec: FeatureSpec
    freq: str | int
    tz: str | None = None
    ds_kind: str = "datetime"
    feature_names: list[str] = msgspec.field(default_factory=list)
    target_lags: dict[str, int] = msgspec.field(default_factory=dict)

    # ------------------------------------------------------------------ building
    @classmethod
    def fit(cls, spec: FeatureSpec, panel: Panel, *, static: pl.DataFrame | None = None,
            max_horizon: int | None = None) -> FeaturePipeline:
        """Check ``spec`` against ``panel`` and fix the feature order.

        Raises
        ------
        InvalidParameterError
            Calendar features on integer ``ds``; a historic-exogenous lag below
            ``max_horizon``; a rolling ``std`` over a window of 1; no feature at all.
        InvalidInputError
            A named exogenous or static column that is absent.
        """
        if spec.calendar and panel.ds_kind == "int":
            msg = f"calendar features {spec.calendar} need datetime ds; this panel has integer steps"
            raise InvalidParameterError(msg, field="features.calendar")
        both = sorted(set(spec.future_exog) & set(spec.hist_exog))
        if both:
            msg = (
                f"exogenous columns {both} are listed both as future_exog and hist_exog; a "
                f"column is either known in the future or not"
            )
            raise InvalidParameterError(msg, field="features")
        missing = [c for c in [*spec.future_exog, *spec.hist_exog] if c not in panel.frame.columns]
        if missing:
            msg = (
                f"exogenous columns {missing} named in the features are not in the data "
                f"(columns: {', '.join(panel.frame.columns)})"
            )
            raise InvalidInputError(msg, field="data")
        if spec.static:
            if static is None:
                msg = f"static features {spec.static} need a static frame (unique_id + columns)"
                raise InvalidInputError(msg, field="static")
            absent = [c for c in spec.static if c not in static.columns]
            if absent:
                msg = f"static columns {absent} are not in the static frame"
                raise InvalidInputError(msg, field="static")
        for col, lags in spec.hist_exog.items():
            low = [lag for lag in lags if max_horizon is not None and lag < max_horizon]
            if low:
                msg = (
                    f"historic-only exogenous '{col}' lags {low} are below the maximum horizon {max_horizon}: their "
                    f"future values would be needed; use lags >= {max_horizon} or pass '{col}' as future_exog"
                )
                raise InvalidParameterError(msg, field="features.hist_exog")
        one = [r for r in spec.rolling if r.window < 2 and "std" in r.stats]
        if one:  # the sample std of one value is undefined (polars: null on every row, so no training row)
            msg = f"rolling std needs a window >= 2, got window {one[0].window}"
            raise InvalidParameterError(msg, field="features.rolling")
        names, target_lags = cls._names(spec)
        if not names:
            msg = "the feature spec produces no feature"
            raise InvalidParameterError(msg, field="features")
        if len(set(names)) != len(names):
            cls._refuse_duplicates(spec)
        return cls(spec=spec, freq=panel.freq, tz=panel.tz, ds_kind=panel.ds_kind, feature_names=names,
                   target_lags=target_lags)

    @staticmethod
    def _refuse_duplicates(spec: FeatureSpec) -> None:
        """Raise for the feature names of ``spec`` that two features share: a data column (exogenous or static)
        named like a feature the pipeline generates names the column and the rule (field ``data`` or ``static``);
        two generated features with one name, the spec (field ``features``).

        Raises
        ------
        InvalidInputError
            A data column named like a generated feature (``lag_1`` beside the target's lag 1).
        InvalidParameterError
            Two generated features of one name.
        """
        defs = feature_defs(spec)
        by_name: dict[str, list[FeatureDef]] = {}
        for f in defs:
            by_name.setdefault(f.name, []).append(f)
        data_kinds = {"future_exog": "data", "static": "static"}
        for name, same in sorted(by_name.items()):
            if len(same) < 2:
                continue
            column = next((f for f in same if f.kind in data_kinds), None)
            made = next((f for f in same if f is not column), None)
            if column is not None and made is not None and made.kind not in data_kinds:
                where = "exogenous column" if column.kind == "future_exog" else "static column"
                msg = (f"{where} '{name}' has the name of a feature the model generates ({made.kind} feature "
                       f"'{name}'): a data column may not be named like a generated feature; rename the column")
                raise InvalidInputError(msg, field=data_kinds[column.kind])
        dup = sorted(n for n, same in by_name.items() if len(same) > 1)
        msg = f"duplicate features {dup}"
        raise InvalidParameterError(msg, field="features")

    @staticmethod
    def _names(spec: FeatureSpec) -> tuple[list[str], dict[str, int]]:
        """``(feature names in order, {target-derived feature: its lag})`` of ``spec`` (:func:`feature_defs`)."""
        defs = feature_defs(spec)
        return [f.name for f in defs], {f.name: f.lag for f in defs if f.kind in TARGET_KINDS}

    @property
    def lookback(self) -> int:
        """Rows of history a series needs before its first complete feature row."""
        spec = self.spec
        need = [0]
        need += list(spec.lags) + list(spec.expanding_mean_lags)
        need += [r.lag + (r.window - 1) * (r.season_length or 1) for r in spec.rolling]
        need += [lag for lags in spec.hist_exog.values() for lag in lags]
        return max(need) + sum(spec.differences)

    @property
    def min_length(self) -> int:
        """Fewest observations a series needs to produce one training row (lookback + 1)."""
        return self.lookback + 1

    def to_json(self) -> bytes:
        """The pipeline as JSON bytes."""
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> FeaturePipeline:
        """Restore a pipeline written by :meth:`to_json`."""
        return msgspec.json.decode(raw, type=cls)

    # ------------------------------------------------------------------ checks
    def check_regular(self, frame: pl.DataFrame) -> None:
        """Verify consecutive rows of each series are exactly one ``freq`` step apart.

        Raises
        ------
        InvalidInputError
            Naming the series and the first irregular timestamp.
        """
        ds = pl.col("ds")
        if isinstance(self.freq, int):
            step_ok = ds.diff().over("unique_id") == self.freq
        else:
            num, unit = offset_parts(self.freq)
            local = ds if self.tz is None else ds.dt.replace_time_zone("UTC").dt.convert_time_zone(self.tz)
            if unit in ("mo", "q", "y"):  # calendar months (month-start or month-end anchored alike)
                months = num * {"mo": 1, "q": 3, "y": 12}[unit]
                index = local.dt.year().cast(pl.Int64) * 12 + local.dt.month().cast(pl.Int64)
                step_ok = index.diff().over("unique_id") == months
            elif unit == "bd":  # business days (forecasting.data): Friday -> Monday is one step
                step_ok = ((local.shift(1).over("unique_id").dt.add_business_days(num, roll="forward") == local)
                           & (local.dt.weekday() <= 5))
            else:
                step_ok = local.shift(1).over("unique_id").dt.offset_by(self.freq) == local
        bad = frame.with_columns(step_ok.alias("_ok")).filter(pl.col("_ok").not_())
        if bad.height:
            first = bad.group_by("unique_id", maintain_order=True).agg(pl.col("ds").first())
            listed = "; ".join(f"series '{u}' at {d}" for u, d in first.head(5).iter_rows())
            msg = f"series are not on the '{self.freq}' grid (a gap or misplaced timestamp): {listed}"
            raise InvalidInputError(msg, field="data")

    def check_panel(self, panel: Panel) -> None:
        """:meth:`check_regular` for a Panel, skipped when :func:`~forecasting.data.validate_panel`
        already checked this grid (``grid_checked``, same freq and zone)."""
        if not (panel.grid_checked and panel.freq == self.freq and panel.tz == self.tz):
            self.check_regular(panel.frame)

    # ------------------------------------------------------------------ the one code path
    def scale_stats(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Per-series scaling statistics of ``y``: ``unique_id, _scale_loc, _scale_scale``."""
        return collect_small(self.scale_stats_lazy(frame.lazy()))

    def scale_stats_lazy(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        """:meth:`scale_stats` as a lazy query."""
        aggs, finish = scale_exprs(self.spec.scaler)
        return frame.group_by("unique_id", maintain_order=True).agg(aggs).with_columns(finish)

    def transform(self, frame: pl.DataFrame, *, scales: pl.DataFrame, static: pl.DataFrame | None = None) -> pl.DataFrame:
        """Add the transformed target and every feature to ``frame``.

        Parameters
        ----------
        frame : pl.DataFrame
            ``unique_id, ds, y`` (+ exogenous columns), sorted by ``unique_id, ds``, on
            the ``freq`` grid; ``y`` may be null on rows to forecast.
        scales : pl.DataFrame
            From :meth:`scale_stats` on the series' history.
        static : pl.DataFrame, optional
            ``unique_id`` + static columns.

        Returns
        -------
        pl.DataFrame
            ``frame`` + ``_target`` (scaled, differenced ``y``) + the features in
            :attr:`feature_names` order (null where the history is too short).
        """
        # Plain shifts (lags, differences, seasonal windows, exogenous lags) are the hot path. When
        # each series' rows are contiguous (the documented input), a shift of the whole column
        # masked by the row's position in its series gives exactly shift().over("unique_id")
        # (values are copied, never combined) several times faster; otherwise use over().
        uid = frame["unique_id"]
        contiguous = frame.height == 0 or int(uid.ne_missing(uid.shift(1)).sum()) == uid.n_unique()
        return self.transform_lazy(frame.lazy(), scales=scales, static=static, contiguous=contiguous).collect(
            engine="in-memory")  # polars 2 defaults lazy queries to its streaming engine: ~6 ms more per call here

    def transform_lazy(self, frame: pl.LazyFrame, *, scales: pl.DataFrame, static: pl.DataFrame | None = None,
                       contiguous: bool, reach_checked: bool = False) -> pl.LazyFrame:
        """:meth:`transform` as one lazy query (one collect: the per-query overhead dominates small forecasts).

        ``contiguous``: every series' rows are consecutive in ``frame`` (the caller knows, e.g.
        right after a sort by ``unique_id, ds``); otherwise shifts go through ``over("unique_id")``.
        ``reach_checked``: the caller keeps only rows with at least :attr:`lookback` earlier rows of
        their own series in ``frame`` (a forecast's rows after the history tail): every value such a
        row reads is then inside its series, so shifts need neither a series test nor ``over`` (the
        other rows' features are wrong and must be dropped). Expanding means always use ``over``.
        """
        out = frame.join(scales.lazy(), on="unique_id", how="left", maintain_order="left")
        mode = "plain" if reach_checked else "masked" if contiguous else "over"
        if mode == "masked":
            row = pl.int_range(pl.len(), dtype=pl.Int64)
            start = pl.col("unique_id").ne_missing(pl.col("unique_id").shift(1))
            out = out.with_columns((row - pl.when(start).then(row).forward_fill()).alias(_POS))
        differences, exprs = _feature_exprs(msgspec.json.encode(self.spec), self.tz, mode)
        out = out.with_columns(((pl.col("y") - pl.col(SCALE_MEAN)) / pl.col(SCALE_STD)).alias(TARGET))
        for e in differences:
            out = out.with_columns(e)
        out = out.with_columns(exprs)
        if mode == "masked":
            out = out.drop(_POS)
        if self.spec.static:
            assert static is not None
            out = out.join(static.lazy().select("unique_id", *self.spec.static), on="unique_id", how="left",
                           maintain_order="left")
        return out

    def matrix(self, rows: pl.DataFrame) -> np.ndarray:
        """The feature matrix of transformed rows: float32 array of shape (n_rows, n_features) (nulls are NaN)."""
        schema = rows.schema
        if all(schema[c].is_float() or schema[c].is_integer() for c in self.feature_names):
            # column by column, without a query (this runs once per recursion block of every forecast)
            out = np.empty((rows.height, len(self.feature_names)), dtype=np.float32)
            for j, c in enumerate(self.feature_names):
                out[:, j] = rows.get_column(c).cast(pl.Float32).to_numpy()
            return out
        return rows.select([pl.col(c).cast(pl.Float32) for c in self.feature_names]).to_numpy()

    # ------------------------------------------------------------------ the numpy evaluator (small forecasts)
    @property
    def numpy_ready(self) -> bool:
        """Whether :meth:`block_matrix` evaluates this pipeline: every feature but expanding means, static and
        historic-exogenous columns (those forecasts take the polars query)."""
        spec = self.spec
        return not (spec.expanding_mean_lags or spec.static or spec.hist_exog)

    def target_numpy(self, y: np.ndarray, loc: np.ndarray | float, scale: np.ndarray | float) -> np.ndarray:
        """The transformed target ``_target`` of :meth:`transform_lazy` (``mode="plain"``) on one column, bit for bit.

        Parameters
        ----------
        y : float64 array of shape (n,)
            Series one after another.
        loc, scale : float64 arrays of shape (n,), or floats
            Each row's series scaling statistics (:meth:`scale_stats`); floats when ``scales`` has one row
            (one series): polars then joins them as scalars and divides by multiplying with the reciprocal.

        Returns
        -------
        float64 array of shape (n,)
            ``(y - loc) / scale``, then each difference ``z - z[-d]`` along the whole column (NaN where the
            query has null: the first ``d`` rows).
        """
        z = (y - loc) * (1.0 / scale) if np.ndim(scale) == 0 else (y - loc) / scale
        for d in self.spec.differences:
            prev = np.full_like(z, np.nan)
            prev[d:] = z[:-d] if d < len(z) else z[:0]
            z = z - prev
        return z

    def calendar_matrix(self, ds: pl.Series) -> np.ndarray:
        """The calendar features of timestamps ``ds`` (internal naive UTC): float64 array of shape
        (len(ds), len(spec.calendar)), computed by the polars query's own expressions (:func:`calendar_expr`)."""
        names = self.spec.calendar
        if not names:
            return np.empty((len(ds), 0))
        return ds.rename("ds").to_frame().select([calendar_expr(c, self.tz).alias(c) for c in names]).to_numpy()

    def block_matrix(self, z: np.ndarray, rows: np.ndarray, *, calendar: np.ndarray | None = None,
                     future: np.ndarray | None = None) -> np.ndarray:
        """The feature matrix of some rows of a column, without the polars query: what :meth:`matrix` gives for
        those rows of :meth:`transform_lazy` in ``mode="plain"`` (``reach_checked``), bit for bit.

        Each feature is read from its :class:`FeatureDef` (:func:`feature_defs`, as the query builds it): lags
        and seasonal rolling windows index ``z``; rolling windows run the query's own expression
        (:func:`rolling_expr`: polars' stateful window kernels, one small query for all of them) over the
        whole column; calendar and future exogenous values are given. Only for :attr:`numpy_ready` pipelines.

        Parameters
        ----------
        z : float64 array of shape (n,)
            The transformed target over the frame the query would see (:meth:`target_numpy`; NaN for null).
        rows : int array of shape (r,)
            Positions of the rows to evaluate; each follows at least :attr:`lookback` rows of its own series.
        calendar : float64 array of shape (r, len(spec.calendar)), optional
            :meth:`calendar_matrix` of those rows' ``ds``.
        future : float32 array of shape (r, len(spec.future_exog)), optional
            Those rows' future exogenous values, each column cast to Float32 by polars.

        Returns
        -------
        float32 array of shape (r, n_features)
            Columns in :attr:`feature_names` order (NaN for null).
        """
        defs = feature_defs(self.spec)
        out = np.empty((len(rows), len(defs)), dtype=np.float32)
        rolling = [f for f in defs if f.kind == "rolling"]
        rolled: dict[str, np.ndarray] = {}
        if rolling:
            column = pl.Series(TARGET, z, nan_to_null=True).to_frame()
            done = column.select([rolling_expr(f, pl.col(TARGET)).alias(f.name) for f in rolling])
            rolled = {f.name: done.get_column(f.name).to_numpy()[rows] for f in rolling}
        n_cal = n_fut = 0
        for j, f in enumerate(defs):
            if f.kind == "lag":
                out[:, j] = z[rows - f.lag]
            elif f.kind == "seasonal_rolling":
                out[:, j] = _seasonal_rolling_numpy(f, [z[rows - k] for k in f.reach])
            elif f.kind == "rolling":
                out[:, j] = rolled[f.name]
            elif f.kind == "calendar" and calendar is not None:
                out[:, j] = calendar[:, n_cal]
                n_cal += 1
            elif f.kind == "future_exog" and future is not None:
                out[:, j] = future[:, n_fut]
                n_fut += 1
            else:
                msg = f"feature '{f.name}' ({f.kind}) is not evaluated by block_matrix (see numpy_ready)"
                raise InvalidParameterError(msg, field="features")
        return out

    def training_rows(self, transformed: pl.DataFrame) -> pl.DataFrame:
        """Rows with a target and every target-derived feature (exogenous nulls are kept: XGBoost handles them)."""
        needed = [TARGET, *self.target_lags, *[f"{c}_lag_{lag}" for c, lags in self.spec.hist_exog.items() for lag in lags]]
        return transformed.drop_nulls(subset=needed)

    def inverse(self, z: np.ndarray, history_levels: list[np.ndarray], scale: tuple[float, float]) -> np.ndarray:
        """Invert the target transforms for one series' forecast path.

        Parameters
        ----------
        z : array of shape (h,)
            Forecasts on the transformed (scaled, differenced) scale, in time order.
        history_levels : list of arrays
            For each difference, in order, the series at that stage (before applying
            it) over the history (scaled target for the first difference, once
            differenced for the second...), at least ``d`` values each.
        scale : (loc, scale)

        Returns
        -------
        array of shape (h,)
            Forecasts in the units of ``y``.
        """
        out = np.asarray(z, dtype=np.float64)
        for d, level in zip(reversed(self.spec.differences), reversed(history_levels), strict=True):
            path = np.concatenate([np.asarray(level, dtype=np.float64)[-d:], np.empty(len(out))])
            for i in range(len(out)):
                path[d + i] = out[i] + path[i]
            out = path[d:]
        loc, sc = scale
        return out * sc + loc

    def difference_stages(self, y_scaled: np.ndarray) -> list[np.ndarray]:
        """The series before each difference (for :meth:`inverse`): ``[s, s - s.shift(d1), ...]`` minus the last."""
        stages = []
        cur = np.asarray(y_scaled, dtype=np.float64)
        for d in self.spec.differences:
            stages.append(cur)
            nxt = np.full_like(cur, np.nan)
            nxt[d:] = cur[d:] - cur[:-d]
            cur = nxt
        return stages

    def forecast_feature_mask(self, step: int) -> np.ndarray:
        """Which features of step ``step`` (1-based) are computed from earlier forecasts.

        A target-derived feature with lag ``L`` uses a forecast value at steps ``k > L``
        (recursive forecasting). Returns a bool array of shape (n_features,).
        """
        return np.array([self.target_lags.get(n, step + 1) < step for n in self.feature_names])


@functools.lru_cache(maxsize=8)
def scale_exprs(scaler: str | None) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """The expressions of :meth:`FeaturePipeline.scale_stats_lazy`: ``(per-series aggregations, their
    finishing)``. Cached per scaler (polars expressions are immutable): building them is a fixed cost of
    every forecast from a new history (issue 14)."""
    y = pl.col("y")
    if scaler == "standard":
        loc, scale = y.mean(), y.std(ddof=0)
    elif scaler == "mean":
        loc, scale = pl.lit(0.0), y.abs().mean()
    else:
        loc, scale = pl.lit(0.0), pl.lit(1.0)
    return [loc.alias(SCALE_MEAN), scale.alias(SCALE_STD)], [
        pl.when(pl.col(SCALE_STD).is_null() | (pl.col(SCALE_STD) <= 1e-12)).then(1.0)
        .otherwise(pl.col(SCALE_STD)).alias(SCALE_STD),
        pl.col(SCALE_MEAN).fill_null(0.0)]


@functools.lru_cache(maxsize=128)
def _feature_exprs(spec_json: bytes, tz: str | None, mode: str) -> tuple[list[pl.Expr], list[pl.Expr]]:
    """The expressions of :meth:`FeaturePipeline.transform_lazy` for one spec: ``(differences, features)``.

    ``mode``: ``"over"`` (shifts per series), ``"masked"`` (contiguous series: one shift of the
    column, masked by the row's position ``_POS`` in its series) or ``"plain"`` (the kept rows
    are known to read inside their series: bare shifts). Cached (keyed by the spec's JSON):
    building the expressions costs about as much as running them on one series. Each feature is
    built from its :class:`FeatureDef` (:func:`feature_defs`), as the numpy evaluator reads it.
    """
    spec = msgspec.json.decode(spec_json, type=FeatureSpec)
    contiguous = mode == "masked"

    def back(e: pl.Expr, k: int) -> pl.Expr:
        """``e`` ``k`` rows earlier in the same series (null before the series starts)."""
        if mode == "plain":
            return e.shift(k)
        return pl.when(pl.col(_POS) >= k).then(e.shift(k)) if contiguous else e.shift(k).over("unique_id")

    differences = [(pl.col(TARGET) - back(pl.col(TARGET), d)).alias(TARGET) for d in spec.differences]
    z = pl.col(TARGET)
    exprs: list[pl.Expr] = []
    for f in feature_defs(spec):
        if f.kind == "lag":
            exprs.append(back(z, f.lag).alias(f.name))
        elif f.kind == "seasonal_rolling":
            # Plain shifts and `+` (null if any term is null: every value must be present); with contiguous
            # series one position test for the farthest shift replaces a test per term.
            e = _seasonal_rolling_expr(f, [z.shift(k).over("unique_id") if mode == "over" else z.shift(k)
                                           for k in f.reach])
            if contiguous:
                e = pl.when(pl.col(_POS) >= f.reach[-1]).then(e)
            exprs.append(e.alias(f.name))
        elif f.kind == "rolling":
            e = rolling_expr(f, z)
            exprs.append((e if mode == "plain" else e.over("unique_id")).alias(f.name))
        elif f.kind == "expanding_mean":
            shifted = z.shift(f.lag)
            exprs.append((shifted.cum_sum() / shifted.cum_count()).over("unique_id").alias(f.name))
        elif f.kind == "calendar":
            exprs.append(calendar_expr(f.column, tz).alias(f.name))
        elif f.kind == "hist_exog":
            exprs.append(back(pl.col(f.column), f.lag).alias(f.name))
    return differences, exprs


def rolling_expr(f: FeatureDef, z: pl.Expr) -> pl.Expr:
    """A ``rolling`` feature of the target column ``z``: the statistic of the ``window`` values ending ``lag``
    steps back (polars' rolling kernels: the polars query and the numpy evaluator both run this expression)."""
    shifted = z.shift(f.lag)
    fn = {"mean": shifted.rolling_mean, "std": shifted.rolling_std, "min": shifted.rolling_min,
          "max": shifted.rolling_max}[f.stat]
    return fn(window_size=f.window)


def _seasonal_rolling_expr(f: FeatureDef, cols: list[pl.Expr]) -> pl.Expr:
    """A ``seasonal_rolling`` feature from its terms ``cols`` (the values :attr:`FeatureDef.reach` steps back):
    the left-to-right sum divided by the window (mean), the sample std about that mean, or min/max (null when
    any term is); :func:`_seasonal_rolling_numpy` is the same arithmetic on arrays."""
    total = functools.reduce(operator.add, cols)
    mean = total / f.window
    if f.stat == "mean":
        return mean
    if f.stat == "std":
        return (functools.reduce(operator.add, [(c - mean) ** 2 for c in cols]) / max(f.window - 1, 1)).sqrt()
    # min/max_horizontal skip nulls: null when any value is missing, as the mean is
    return pl.when(total.is_null()).then(None).otherwise(
        pl.min_horizontal(cols) if f.stat == "min" else pl.max_horizontal(cols))


def _seasonal_rolling_numpy(f: FeatureDef, cols: list[np.ndarray]) -> np.ndarray:
    """:func:`_seasonal_rolling_expr` on float64 arrays (NaN for null), bit for bit: the same order of
    additions, and a division by a literal as polars computes it (times its reciprocal)."""
    total = cols[0]
    for c in cols[1:]:
        total = total + c
    mean = total * (1.0 / f.window)
    if f.stat == "mean":
        return mean
    if f.stat == "std":
        acc = (cols[0] - mean) ** 2
        for c in cols[1:]:
            acc = acc + (c - mean) ** 2
        return np.sqrt(acc * (1.0 / max(f.window - 1, 1)))
    out = np.minimum.reduce(cols) if f.stat == "min" else np.maximum.reduce(cols)
    return np.where(np.isnan(total), np.nan, out)


def calendar_expr(name: str, tz: str | None) -> pl.Expr:
    """The calendar field ``name`` of ``ds`` on the caller's clock (zone ``tz``; ``ds`` is naive UTC), Float64."""
    local = pl.col("ds") if tz is None else pl.col("ds").dt.replace_time_zone("UTC").dt.convert_time_zone(tz)
    cal = {"minute": local.dt.minute, "hour": local.dt.hour, "dayofweek": lambda: local.dt.weekday() - 1,
           "day": local.dt.day, "dayofyear": local.dt.ordinal_day, "week": local.dt.week, "month": local.dt.month,
           "quarter": local.dt.quarter, "year": local.dt.year}
    return cal[name]().cast(pl.Float64)
