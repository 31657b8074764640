"""Adapters over statsforecast's models, and the M4 Naive2 benchmark.

Each adapter fits the statsforecast model class one series at a time through the
model's own ``fit(y)`` / ``predict(h, level=...)`` API (the same per-series calls
``StatsForecast`` makes internally), so that a failure is reported for the series it
happened on, and adds validation, minimum lengths and fallbacks from
:class:`~forecasting.models.base.LocalForecaster`.

Sources: Garza, Mergenthaler Canseco, Challú & Olivares, *StatsForecast: Lightning
fast forecasting with statistical and econometric models* (PyCon 2022); the models'
own papers are cited on each class.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar, NamedTuple

import numpy as np
import polars as pl

from forecasting.decomposition import naive2_decompose
from forecasting.data import Panel, _examples, _series_messages
from forecasting.errors import InsufficientHistoryError, InvalidInputError, InvalidParameterError
from forecasting.models.base import Capabilities, Fallback, P, as_panel
from forecasting.models.local import SERIES_CAPABILITIES, LocalForecaster
from forecasting.models.registry import (
    AutoARIMAParams,
    AutoCESParams,
    AutoETSParams,
    AutoThetaParams,
    DynamicOptimizedThetaParams,
    IntermittentParams,
    MSTLParams,
    Naive2Params,
    NaiveParams,
    SeasonalNaiveParams,
    TSBParams,
)

__all__ = [
    "ADIDAForecaster",
    "AutoARIMAForecaster",
    "AutoCESForecaster",
    "AutoETSForecaster",
    "AutoThetaForecaster",
    "CrostonClassicForecaster",
    "CrostonOptimizedForecaster",
    "CrostonSBAForecaster",
    "DynamicOptimizedThetaForecaster",
    "IMAPAForecaster",
    "MSTLForecaster",
    "Naive2Forecaster",
    "NaiveForecaster",
    "ScaledState",
    "SeasonalNaiveForecaster",
    "TSBForecaster",
    "FIT_MAGNITUDE",
    "series_scale",
]

#: statsforecast's models keep their in-sample fit (``predict_in_sample``).
FITTED_CAPABILITIES = replace(SERIES_CAPABILITIES, has_fitted_values=True)


#: the rule of every multiplicative form (ETS error, trend or season "M"; a multiplicative seasonal adjustment):
#: a ratio to the level or to seasonal indices exists only for positive values (Hyndman & Athanasopoulos, FPP3 8.5)
MULTIPLICATIVE_RULE = "a multiplicative model needs every y > 0"


def find_non_positive(panel: Panel) -> pl.DataFrame:
    """The rows of ``panel`` with ``y <= 0``: ``unique_id, ds, y`` in panel order (a pure validator, as
    mlforecast's ``data_validation``; :meth:`_StatsForecastAdapter.fit` raises on it)."""
    return panel.frame.filter(pl.col("y") <= 0).select("unique_id", "ds", "y")


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 200.0))


#: the largest magnitude every series is brought to before a fit. statsforecast's Theta optimiser degrades on small
#: magnitudes (AirPassengers, 12 months held out, MASE of ``AutoTheta`` with ``max |y|`` brought to 1: 0.827, to
#: 1,000 or 10,000: 0.636, raw 0.636; ``DynamicOptimizedTheta`` 0.705 at 1, 0.622 at 10,000, raw 0.633); on M3
#: Quarterly (756 series) 10,000 came closest to the raw series' accuracy (mean MASE ``AutoTheta`` 1.1056 at
#: 1,000, 1.1037 at 10,000, 1.1048 at 100,000, raw 1.1031; ``DynamicOptimizedTheta`` 1.1264 / 1.1256 / 1.1257, raw
#: 1.1256; ``AutoETS`` identical); measured with statsforecast 2.1.1
FIT_MAGNITUDE = 10_000.0


def series_scale(y: np.ndarray) -> float:
    """The unit a statistical model is fitted in: ``max |y| / FIT_MAGNITUDE`` (1 for an all-zero or empty series).

    statsforecast's optimisers and checks use absolute tolerances (measured with 2.1.1: the same series times
    1e-12 gave ``AutoETS`` an 80% band about 20 times narrower, ``AutoARIMA`` moved at 1e-6 and 1e6, the Theta
    models returned non-finite forecasts around 1e140). Every adapter but the linear ones
    (:attr:`_StatsForecastAdapter.linear`) fits ``y / series_scale(y)`` (largest magnitude
    :data:`FIT_MAGNITUDE`) and multiplies forecasts, bands and fitted values back (:class:`ScaledState`), so that
    ``forecast(a * y) == a * forecast(y)`` up to rounding for any ``a > 0`` (measured: 2e-9 relative at most);
    the forecasts are statsforecast's on the rescaled series, not on ``y`` itself. A positive scale keeps signs
    and zeros (the multiplicative and intermittent-demand rules); the series is not centred, as that would
    change them.

    Parameters
    ----------
    y : array of shape (n,)
        One series, units of ``y`` (finite, as validated panels are).

    Returns
    -------
    float
        A positive finite scale, units of ``y`` per fitted unit; 1 when ``max |y|`` is 0 or so small
        (below about 2e-304) that the scale would not be a normal float.
    """
    top = float(np.max(np.abs(y))) if y.size else 0.0
    scale = top / FIT_MAGNITUDE
    return scale if np.finfo(np.float64).tiny <= scale < np.inf else 1.0


class ScaledState(NamedTuple):
    """One series' fitted statsforecast model and the scale it was fitted in (:func:`series_scale`).

    ``model_`` gives the parts of the fitted model that other modules read
    (:mod:`forecasting.decomposition`) back in units of ``y``: MSTL's components; ETS's ``states`` (level, and
    the additive trend and seasonal states, times the scale; multiplicative ones are ratios and unchanged).
    """

    fit: Any  # the statsforecast model (or intermittent state) fitted on y / scale
    scale: float  # units of y

    @property
    def model_(self) -> Any:
        """The fitted model's ``model_`` with its components in units of ``y`` (see the class)."""
        inner: Any = getattr(self.fit, "model_", None)
        if self.scale == 1.0:
            return inner
        if hasattr(inner, "columns"):
            return inner * self.scale  # MSTL (a pandas frame): data, trend, seasonal(s), remainder are all additive
        if isinstance(inner, dict) and "states" in inner and "components" in inner:
            code = str(inner["components"]) + "NNN"  # error, trend, season (statsforecast's ets)
            states = np.array(inner["states"], dtype=np.float64, copy=True)
            additive = [True] + ([code[1] == "A"] if code[1] in "AM" else []) + [code[2] == "A"] * (
                states.shape[1] - 1 - (code[1] in "AM"))
            states[:, np.asarray(additive, dtype=bool)] *= self.scale
            return {**inner, "states": states}
        return inner


class _StatsForecastAdapter(LocalForecaster[P]):
    """Common code: build the statsforecast model, fit per series, predict with levels, fitted values."""

    capabilities: ClassVar[Capabilities] = FITTED_CAPABILITIES

    @property
    def season_length(self) -> int:
        """Steps per season (1 when the parameters leave it unset: no seasonality)."""
        return getattr(self.params, "season_length", None) or 1

    @property
    def multiplicative(self) -> str | None:
        """The parameter that explicitly asks for a multiplicative form (``"model='MAM'"``), None when none does."""
        return None

    def fit(self, panel: Panel | Any, *, static: pl.DataFrame | None = None) -> Any:
        """Fit per series; see :meth:`LocalForecaster.fit`.

        Raises
        ------
        InvalidInputError
            A multiplicative form asked for explicitly (:attr:`multiplicative`) and series with values <= 0, without
            a fallback: the message names each series, its first rows (``ds``) and the rule (with a fallback those
            series are fitted by it and listed in :attr:`fallbacks_` with the rule).
        """
        panel = as_panel(panel)
        asked = self.multiplicative
        if asked is not None and self.fallback is None:
            bad = find_non_positive(panel)
            if bad.height:
                per = {str(uid): f"{part.height} value(s) <= 0 at ds {_examples(part['ds'].to_list())}"
                       for (uid,), part in bad.group_by("unique_id", maintain_order=True)}
                msg = _series_messages(per, f"model '{self.name}' with {asked}: {MULTIPLICATIVE_RULE}") + (
                    "; ask for an additive form, or name a fallback model")
                raise InvalidInputError(msg, field="y", details={"model": self.name, "rule": MULTIPLICATIVE_RULE,
                                                                "series": per})
        return super().fit(panel, static=static)

    def _make(self) -> Any:
        raise NotImplementedError

    def _check_honoured(self, state: Any) -> None:
        """Raise ``ValueError`` when the fitted ``state`` is not the form the parameters asked for."""

    #: True for the models whose forecasts, bands and fitted values are linear in ``y`` with fixed weights
    #: (naive, seasonal naive, Croston and SBA, TSB): already scale-equivariant, they are fitted on ``y`` itself,
    #: so that values they copy (the last value, the last season) stay bit-exact
    linear: ClassVar[bool] = False

    def _fit_one(self, y: np.ndarray) -> ScaledState:
        scale = 1.0 if self.linear else series_scale(y)
        return ScaledState(self._fit_unit(y / scale if scale != 1.0 else y), scale)

    def _predict_one(self, state: ScaledState, h: int, levels: tuple[float, ...]) -> dict[str, np.ndarray]:
        out = self._predict_unit(state.fit, h, levels)
        if state.scale == 1.0:
            return out
        return {k: np.asarray(v, dtype=np.float64) * state.scale for k, v in out.items()}

    def _fitted_one(self, state: ScaledState) -> np.ndarray:
        fitted = self._fitted_unit(state.fit)
        return fitted if state.scale == 1.0 else fitted * state.scale

    def _fit_unit(self, y: np.ndarray) -> Any:
        """Fit statsforecast's model on one series already divided by its :func:`series_scale`."""
        asked = self.multiplicative
        if asked is not None and y.size and y.min() <= 0:
            where = np.flatnonzero(y <= 0)
            msg = f"{MULTIPLICATIVE_RULE} ({asked}); {where.size} value(s) <= 0, first at position {int(where[0])}"
            raise ValueError(msg)
        model = self._make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = model.fit(y=y)
        self._check_honoured(state)
        return state

    def _predict_unit(self, state: Any, h: int, levels: tuple[float, ...]) -> dict[str, np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return state.predict(h=h, level=list(levels) if levels else None)

    def _fitted_unit(self, state: Any) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(state.predict_in_sample()["fitted"], dtype=np.float64)


class NaiveForecaster(_StatsForecastAdapter[NaiveParams]):
    """Random walk: every step forecasts the last value (statsforecast ``Naive``).

    Intervals: ``y_T ± z * sigma * sqrt(k)`` with sigma from the one-step residuals.
    Source: Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., 5.2.
    """

    name = "naive"
    default_alias = "Naive"
    linear = True

    @property
    def min_train_length(self) -> int:
        """Two observations: one residual is needed for the interval width."""
        return 2

    def _make(self) -> Any:
        from statsforecast.models import Naive

        return Naive()


class SeasonalNaiveForecaster(_StatsForecastAdapter[SeasonalNaiveParams]):
    """Each step forecasts the value one season earlier (statsforecast ``SeasonalNaive``).

    The M4 competition's "sNaive" benchmark (Makridakis et al., IJF 2020).
    """

    name = "seasonal_naive"
    default_alias = "SeasonalNaive"
    linear = True

    @property
    def min_train_length(self) -> int:
        """One full season plus one observation (a seasonal residual for the intervals)."""
        return self.season_length + 1

    def _make(self) -> Any:
        from statsforecast.models import SeasonalNaive

        return SeasonalNaive(season_length=self.season_length)


class _Naive2State(NamedTuple):
    adjusted: np.ndarray  # (n,) seasonally adjusted history
    seasonal: np.ndarray  # (n,) multiplicative indices (ones when not adjusted)
    season_length: int
    sigma: float  # RMS of the one-step differences of ``adjusted``
    note: str | None  # why a seasonal series was not adjusted


class Naive2Forecaster(LocalForecaster[Naive2Params]):
    """The M4 competition's Naive2 benchmark: naive on the seasonally adjusted series.

    When the 90% autocorrelation test at lag ``season_length`` passes (and the series
    has at least three seasons), the series is divided by the seasonal indices of a
    classical multiplicative decomposition; the last adjusted value is carried forward
    and multiplied by the indices of the last season. Otherwise it is plain naive; so is
    a seasonal series with a value <= 0 (no multiplicative indices exist), which is
    reported in :attr:`fallbacks_` (model ``naive``) with the reason
    (:func:`forecasting.decomposition.naive2_decompose`, the one place of the rule).
    Intervals: naive intervals on the adjusted series (``± z * sigma * sqrt(k)``, sigma
    the RMS of the one-step differences), reseasonalised. Fitted values: the previous
    adjusted value times the current index.

    Source: Makridakis, Spiliotis & Assimakopoulos, *The M4 Competition: 100,000 time
    series and 61 forecasting methods*, IJF 36(1) 2020; the organisers' R benchmark code
    (github.com/Mcompetitions/M4-methods). Used as the denominator of OWA.
    """

    name = "naive2"
    default_alias = "Naive2"
    capabilities: ClassVar[Capabilities] = FITTED_CAPABILITIES

    @property
    def season_length(self) -> int:
        """Steps per season (1 when unset)."""
        return self.params.season_length or 1

    @property
    def min_train_length(self) -> int:
        """Two observations (one difference for the interval width)."""
        return 2

    def fit(self, panel: Panel | Any, *, static: pl.DataFrame | None = None) -> Naive2Forecaster:
        """Fit per series (see :meth:`LocalForecaster.fit`); seasonal series with values <= 0 are plain naive,
        each listed in :attr:`fallbacks_` with the reason."""
        super().fit(panel, static=static)
        self.fallbacks_ += [Fallback(u, "naive", s.note) for u, s in self.states_.items() if s.note]
        return self

    def _fit_one(self, y: np.ndarray) -> _Naive2State:
        adjusted, seasonal, note = naive2_decompose(y, self.season_length)
        sigma = float(np.sqrt(np.mean(np.diff(adjusted) ** 2)))
        return _Naive2State(adjusted, seasonal, self.season_length, sigma, note)

    def _predict_one(self, state: _Naive2State, h: int, levels: tuple[float, ...]) -> dict[str, np.ndarray]:
        last, sigma = state.adjusted[-1], state.sigma
        si = np.resize(state.seasonal[-state.season_length:], h)
        out = {"mean": last * si}
        steps = np.sqrt(np.arange(1, h + 1))
        for lv in levels:
            half = _z(lv) * sigma * steps
            out[f"lo-{lv}"] = (last - half) * si
            out[f"hi-{lv}"] = (last + half) * si
        return out

    def _fitted_one(self, state: _Naive2State) -> np.ndarray:
        return np.concatenate(([np.nan], state.adjusted[:-1])) * state.seasonal


class AutoETSForecaster(_StatsForecastAdapter[AutoETSParams]):
    """Exponential smoothing state-space model chosen by AICc (statsforecast ``AutoETS``).

    ``model`` is the three-letter ETS code (error, trend, season; ``Z`` = select).
    Source: Hyndman, Koehler, Snyder & Grose, IJF 18(3) 2002; Hyndman & Khandakar, JSS 2008.
    """

    name = "auto_ets"
    default_alias = "AutoETS"

    @property
    def min_train_length(self) -> int:
        """statsforecast's ETS refuses "tiny datasets" below 7 observations (measured)."""
        return 7

    @property
    def multiplicative(self) -> str | None:
        """``model='...'`` when the ETS code has a multiplicative (``M``) component (statsforecast then refuses
        values <= 0, or finds no model)."""
        return f"model='{self.params.model}'" if "M" in self.params.model else None

    def _make(self) -> Any:
        from statsforecast.models import AutoETS

        return AutoETS(season_length=self.season_length, model=self.params.model, damped=self.params.damped)


class AutoARIMAForecaster(_StatsForecastAdapter[AutoARIMAParams]):
    """ARIMA with orders chosen by the Hyndman-Khandakar algorithm (statsforecast ``AutoARIMA``).

    Source: Hyndman & Khandakar, *Automatic time series forecasting: the forecast
    package for R*, JSS 27(3) 2008.
    """

    name = "auto_arima"
    default_alias = "AutoARIMA"

    @property
    def min_train_length(self) -> int:
        """Three observations (fewer leaves no degrees of freedom for the variance)."""
        return 3

    def _make(self) -> Any:
        from statsforecast.models import AutoARIMA

        p = self.params
        return AutoARIMA(season_length=self.season_length, d=p.d, D=p.D, max_p=p.max_p, max_q=p.max_q,
                         stepwise=p.stepwise, approximation=p.approximation)


class _ThetaAdapter(_StatsForecastAdapter[P]):
    """Common code of the Theta adapters: the seasonal adjustment's ``decomposition_type``.

    statsforecast's ``auto_theta`` (2.1.1) adjusts a series only when the 90% autocorrelation test at lag
    ``season_length`` passes (and ``season_length >= 4``, two seasons of data); a multiplicative adjustment
    silently becomes additive when a value is <= 0 or a seasonal index is < 0.01. Unset (the default), that
    rule applies. Asked for explicitly, ``multiplicative`` is honoured or refused: series with values <= 0 are
    refused naming their rows (:meth:`_StatsForecastAdapter.fit`), and a series whose indices statsforecast
    found below 0.01 fails (or goes to the fallback) instead of running additive.
    """

    @property
    def decomposition_type(self) -> str:
        """What statsforecast is given: the parameter, or its own default (``"multiplicative"``) when unset."""
        return getattr(self.params, "decomposition_type", None) or "multiplicative"

    @property
    def multiplicative(self) -> str | None:
        """``decomposition_type='multiplicative'`` when asked for explicitly."""
        asked = getattr(self.params, "decomposition_type", None) == "multiplicative"
        return "decomposition_type='multiplicative'" if asked else None

    def _check_honoured(self, state: Any) -> None:
        fitted = getattr(state, "model_", {})
        if self.multiplicative and fitted.get("decompose") and fitted.get("decomposition_type") != "multiplicative":
            msg = ("decomposition_type='multiplicative' asked for, but a multiplicative seasonal index is < 0.01 "
                   "(statsforecast would run an additive adjustment); ask for decomposition_type='additive'")
            raise ValueError(msg)


class AutoThetaForecaster(_ThetaAdapter[AutoThetaParams]):
    """The Theta family (STM, OTM, DSTM, DOTM) chosen by in-sample MSE (statsforecast ``AutoTheta``).

    ``decomposition_type``: see :class:`_ThetaAdapter` (unset: statsforecast's rule; asked: honoured or refused).
    Source: Assimakopoulos & Nikolopoulos, IJF 16(4) 2000; Fiorucci et al., IJF 32(4) 2016.
    """

    name = "auto_theta"
    default_alias = "AutoTheta"

    @property
    def min_train_length(self) -> int:
        """statsforecast's Theta refuses "tiny datasets" below 4 observations (measured)."""
        return 4

    def _make(self) -> Any:
        from statsforecast.models import AutoTheta

        return AutoTheta(season_length=self.season_length, decomposition_type=self.decomposition_type,
                         model=self.params.model)


class DynamicOptimizedThetaForecaster(_ThetaAdapter[DynamicOptimizedThetaParams]):
    """Dynamic optimised Theta (statsforecast ``DynamicOptimizedTheta``).

    Source: Fiorucci, Pellegrini, Louzada, Petropoulos & Koehler, *Models for optimising
    the theta method and their relationship to state space models*, IJF 32(4) 2016.
    """

    name = "dynamic_optimized_theta"
    default_alias = "DynamicOptimizedTheta"

    @property
    def min_train_length(self) -> int:
        """statsforecast's Theta refuses "tiny datasets" below 4 observations (measured)."""
        return 4

    def _make(self) -> Any:
        from statsforecast.models import DynamicOptimizedTheta

        return DynamicOptimizedTheta(season_length=self.season_length, decomposition_type=self.decomposition_type)


class MSTLForecaster(_StatsForecastAdapter[MSTLParams]):
    """Multiple seasonal-trend decomposition by LOESS; the trend is forecast by ``trend_model``
    and the seasonal components repeat (statsforecast ``MSTL``).

    Source: Bandara, Hyndman & Bergmeir, *MSTL: A Seasonal-Trend Decomposition Algorithm
    for Time Series with Multiple Seasonal Patterns*, 2021 (arXiv:2107.13462).
    """

    name = "mstl"
    default_alias = "MSTL"

    @property
    def seasons(self) -> list[int]:
        """Seasonal periods as a list ([1] when unset)."""
        m = self.params.season_length or 1
        return [m] if isinstance(m, int) else list(m)

    @property
    def min_train_length(self) -> int:
        """Two full cycles of the longest season, plus one (LOESS needs two cycles per season)."""
        return 2 * max(self.seasons) + 1

    def fit(self, panel: Any, *, static: Any = None) -> MSTLForecaster:
        """Fit per series; see :meth:`LocalForecaster.fit`.

        Raises
        ------
        InvalidParameterError
            A season length below 2: MSTL decomposes seasons, and with none it would
            silently become its trend model (integer ``ds`` has no calendar, so pass
            ``season_length``).
        """
        if min(self.seasons) < 2:
            msg = (
                f"model 'mstl' needs every season_length >= 2, got {self.params.season_length or 1}; with integer ds "
                f"there is no calendar to derive it from: pass params.season_length (e.g. 24 for hourly data)"
            )
            raise InvalidParameterError(
                msg,
                field="model.params.season_length")
        return super().fit(panel, static=static)

    def _make(self) -> Any:
        from statsforecast.models import MSTL, AutoARIMA, AutoETS, AutoTheta

        trend = {"auto_ets": lambda: AutoETS(model="ZZN"), "auto_arima": lambda: AutoARIMA(),
                 "auto_theta": lambda: AutoTheta()}[self.params.trend_model]()
        seasons = self.seasons
        return MSTL(season_length=seasons if len(seasons) > 1 else seasons[0], trend_forecaster=trend)


class AutoCESForecaster(_StatsForecastAdapter[AutoCESParams]):
    """Complex exponential smoothing, the type chosen by AICc (statsforecast ``AutoCES``).

    CES models the level as a complex-valued series, which lets it follow trends and
    non-linear levels without choosing a trend form; ``model`` restricts the seasonal
    type (``N`` none, ``S`` simple seasonal, ``P`` partial, ``F`` full; ``Z`` chooses).
    Intervals: statsforecast's normal intervals of the state-space form.

    Source: Svetunkov & Kourentzes, *Complex exponential smoothing*, Naval Research
    Logistics 69(8) 2022 (working paper 2015); Svetunkov, Kourentzes & Ord, *Complex
    exponential smoothing for seasonal time series*, EJOR 304(3) 2023.
    """

    name = "auto_ces"
    default_alias = "CES"

    @property
    def min_train_length(self) -> int:
        """Ten observations: statsforecast's CES refuses 2 ("tiny datasets") and finds no model for 3-4, and on
        5-9 its prediction intervals take about 11 s per series (measured with statsforecast 2.1.1 on M3
        yearly series; 0.2 s from 10 observations)."""
        return 10

    def _make(self) -> Any:
        from statsforecast.models import AutoCES

        return AutoCES(season_length=self.season_length, model=self.params.model)


class _IntermittentState(NamedTuple):
    model: Any  # the fitted statsforecast model
    y: np.ndarray  # (n,) the history, for the conformal windows


class _IntermittentAdapter(_StatsForecastAdapter[P]):
    """Common code of statsforecast's intermittent-demand models (Croston, ADIDA, IMAPA, TSB).

    Their forecast is flat (one value repeated over the horizon) and they have no
    distributional intervals. Intervals are statsforecast's conformal ones
    (``ConformalIntervals``, method ``conformal_distribution``): the model is refitted on
    :attr:`conformal_windows` rolling windows of ``h`` steps at the end of the history
    (as many as fit, at least two) and the bands are quantiles of the forecasts shifted
    by the absolute errors of each step. They need ``2h + 1`` observations per series.
    Negative values are refused per series (demand is never negative).

    Source: Stankeviciute, Alaa & van der Schaar, *Conformal time-series forecasting*,
    NeurIPS 2021 (statsforecast's conformal intervals); the models' papers on each class.
    """

    #: most conformal windows used for intervals (fewer when the history is short; at least two)
    conformal_windows: ClassVar[int] = 5

    @property
    def min_train_length(self) -> int:
        """Seven observations (as ``auto_ets``): fewer hold one or two demands, too few for the smoothed
        demand sizes and intervals to move from their first values; also conformal intervals at ``h = 3``."""
        return 7

    def _make(self, h: int | None = None) -> Any:
        raise NotImplementedError

    def _fit_unit(self, y: np.ndarray) -> _IntermittentState:
        negative = np.flatnonzero(y < 0)
        if negative.size:
            msg = (f"intermittent-demand models need non-negative values (demand); {negative.size} value(s) < 0, "
                   f"first at position {int(negative[0])}")
            raise ValueError(msg)
        return _IntermittentState(super()._fit_unit(y), y)

    def predict(self, h: int, *, history: Panel | Any | None = None, X_future: pl.DataFrame | None = None,
                level: Sequence[float] = ()) -> pl.DataFrame:
        """Forecast ``h`` steps; see :meth:`LocalForecaster.predict`.

        Raises
        ------
        InsufficientHistoryError
            ``level`` given and a series has fewer than ``2h + 1`` observations (two conformal
            windows of ``h`` and one to fit on), naming the series.
        """
        if history is None and level and self.is_fitted and isinstance(h, int):
            need = 2 * h + 1
            short = {u: n for u, n in self.panel_.lengths.items() if n < need}
            if short:
                msg = (f"model '{self.name}': conformal prediction intervals at h={h} need at least {need} "
                       f"observations per series (two windows of h plus one); "
                       + "; ".join(f"series '{u}': {n}" for u, n in list(short.items())[:5])
                       + " (ask without level, or for a shorter h)")
                raise InsufficientHistoryError(msg, field="level", details={
                    "minimum": need, "series": {u: {"length": n, "minimum": need} for u, n in short.items()}})
        return super().predict(h, history=history, X_future=X_future, level=level)

    def _predict_unit(self, state: _IntermittentState, h: int, levels: tuple[float, ...]) -> dict[str, np.ndarray]:
        if not levels:
            return super()._predict_unit(state.model, h, levels)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out: dict[str, np.ndarray] = self._make(h).forecast(y=state.y, h=h, level=list(levels))
        return out

    def _fitted_unit(self, state: _IntermittentState) -> np.ndarray:
        return super()._fitted_unit(state.model)

    def _conformal(self, h: int | None) -> Any:
        """statsforecast's conformal settings for horizon ``h`` (None: no intervals)."""
        if h is None:
            return None
        from statsforecast.utils import ConformalIntervals

        return ConformalIntervals(h=h, n_windows=self.conformal_windows)


class CrostonClassicForecaster(_IntermittentAdapter[IntermittentParams]):
    """Croston's method: SES (alpha = 0.1) of the non-zero demand sizes divided by SES of the
    intervals between demands (statsforecast ``CrostonClassic``).

    Source: Croston, *Forecasting and stock control for intermittent demands*, Operational
    Research Quarterly 23(3) 1972.
    """

    name = "croston_classic"
    default_alias = "CrostonClassic"
    linear = True

    def _make(self, h: int | None = None) -> Any:
        from statsforecast.models import CrostonClassic

        return CrostonClassic(prediction_intervals=self._conformal(h))


class CrostonOptimizedForecaster(_IntermittentAdapter[IntermittentParams]):
    """Croston's method with each smoothing constant chosen in [0.1, 0.3] by in-sample error
    (statsforecast ``CrostonOptimized``). Its fitted values refit at every demand (slow on long series).

    Source: Croston, Operational Research Quarterly 23(3) 1972.
    """

    name = "croston_optimized"
    default_alias = "CrostonOptimized"

    def _make(self, h: int | None = None) -> Any:
        from statsforecast.models import CrostonOptimized

        return CrostonOptimized(prediction_intervals=self._conformal(h))


class CrostonSBAForecaster(_IntermittentAdapter[IntermittentParams]):
    """The Syntetos-Boylan approximation: Croston's forecast times 0.95 (1 - alpha/2), which removes
    its bias (statsforecast ``CrostonSBA``).

    Source: Syntetos & Boylan, *The accuracy of intermittent demand estimates*, IJF 21(2) 2005.
    """

    name = "croston_sba"
    default_alias = "CrostonSBA"
    linear = True

    def _make(self, h: int | None = None) -> Any:
        from statsforecast.models import CrostonSBA

        return CrostonSBA(prediction_intervals=self._conformal(h))


class ADIDAForecaster(_IntermittentAdapter[IntermittentParams]):
    """ADIDA: sums over non-overlapping buckets of the mean inter-demand interval (rounded), optimised
    SES on the sums, the forecast spread evenly back over the bucket (statsforecast ``ADIDA``).

    Source: Nikolopoulos, Syntetos, Boylan, Petropoulos & Assimakopoulos, *An aggregate-disaggregate
    intermittent demand approach (ADIDA) to forecasting*, JORS 62(3) 2011.
    """

    name = "adida"
    default_alias = "ADIDA"

    def _make(self, h: int | None = None) -> Any:
        from statsforecast.models import ADIDA

        return ADIDA(prediction_intervals=self._conformal(h))


class IMAPAForecaster(_IntermittentAdapter[IntermittentParams]):
    """IMAPA: ADIDA at every aggregation level from 1 to the mean inter-demand interval, the forecasts
    averaged (statsforecast ``IMAPA``).

    Source: Petropoulos & Kourentzes, *Forecast combinations for intermittent demand*, JORS 66(6) 2015.
    """

    name = "imapa"
    default_alias = "IMAPA"

    def _make(self, h: int | None = None) -> Any:
        from statsforecast.models import IMAPA

        return IMAPA(prediction_intervals=self._conformal(h))


class TSBForecaster(_IntermittentAdapter[TSBParams]):
    """Teunter-Syntetos-Babai: SES of the demand probability (every period, ``alpha_p``) times SES of
    the demand size (at demands, ``alpha_d``); unlike Croston it decays towards zero when demand stops
    (statsforecast ``TSB``).

    Source: Teunter, Syntetos & Babai, *Intermittent demand: linking forecasting to inventory
    obsolescence*, EJOR 214(3) 2011.
    """

    name = "tsb"
    default_alias = "TSB"
    linear = True

    def _make(self, h: int | None = None) -> Any:
        from statsforecast.models import TSB

        return TSB(alpha_d=self.params.alpha_d, alpha_p=self.params.alpha_p, prediction_intervals=self._conformal(h))
