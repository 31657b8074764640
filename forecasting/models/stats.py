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
from typing import Any

import numpy as np

from forecasting.decomposition import seasonal_indices, seasonality_test
from forecasting.errors import InvalidParameterError
from forecasting.models.base import P
from forecasting.models.local import LocalForecaster
from forecasting.models.registry import (
    AutoARIMAParams,
    AutoETSParams,
    AutoThetaParams,
    DynamicOptimizedThetaParams,
    MSTLParams,
    Naive2Params,
    NaiveParams,
    SeasonalNaiveParams,
)

__all__ = [
    "AutoARIMAForecaster",
    "AutoETSForecaster",
    "AutoThetaForecaster",
    "DynamicOptimizedThetaForecaster",
    "MSTLForecaster",
    "Naive2Forecaster",
    "NaiveForecaster",
    "SeasonalNaiveForecaster",
]


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 200.0))


class _StatsForecastAdapter(LocalForecaster[P]):
    """Common code: build the statsforecast model, fit per series, predict with levels."""

    @property
    def season_length(self) -> int:
        """Steps per season (1 when the parameters leave it unset: no seasonality)."""
        return getattr(self.params, "season_length", None) or 1

    def _make(self) -> Any:
        raise NotImplementedError

    def _fit_one(self, y: np.ndarray) -> Any:
        model = self._make()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(y=y)

    def _predict_one(self, state: Any, h: int, levels: tuple[float, ...]) -> dict[str, np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return state.predict(h=h, level=list(levels) if levels else None)


class NaiveForecaster(_StatsForecastAdapter[NaiveParams]):
    """Random walk: every step forecasts the last value (statsforecast ``Naive``).

    Intervals: ``y_T ± z * sigma * sqrt(k)`` with sigma from the one-step residuals.
    Source: Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., 5.2.
    """

    name = "naive"
    default_alias = "Naive"

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

    @property
    def min_train_length(self) -> int:
        """One full season plus one observation (a seasonal residual for the intervals)."""
        return self.season_length + 1

    def _make(self) -> Any:
        from statsforecast.models import SeasonalNaive

        return SeasonalNaive(season_length=self.season_length)


class Naive2Forecaster(LocalForecaster[Naive2Params]):
    """The M4 competition's Naive2 benchmark: naive on the seasonally adjusted series.

    When the 90% autocorrelation test at lag ``season_length`` passes (and the series
    has at least three seasons), the series is divided by the seasonal indices of a
    classical multiplicative decomposition; the last adjusted value is carried forward
    and multiplied by the indices of the last season. Otherwise it is plain naive.
    Intervals: naive intervals on the adjusted series (``± z * sigma * sqrt(k)``, sigma
    the RMS of the one-step differences), reseasonalised.

    Source: Makridakis, Spiliotis & Assimakopoulos, *The M4 Competition: 100,000 time
    series and 61 forecasting methods*, IJF 36(1) 2020; the organisers' R benchmark code
    (github.com/Mcompetitions/M4-methods). Used as the denominator of OWA.
    """

    name = "naive2"
    default_alias = "Naive2"

    @property
    def season_length(self) -> int:
        """Steps per season (1 when unset)."""
        return self.params.season_length or 1

    @property
    def min_train_length(self) -> int:
        """Two observations (one difference for the interval width)."""
        return 2

    def _fit_one(self, y: np.ndarray) -> tuple[float, np.ndarray, float]:
        m = self.season_length
        if m > 1 and seasonality_test(y, m):
            seasonal = seasonal_indices(y, m)
            adjusted = y / seasonal
            last_season = seasonal[-m:]
        else:
            adjusted = y
            last_season = np.ones(max(m, 1))
        sigma = float(np.sqrt(np.mean(np.diff(adjusted) ** 2)))
        return float(adjusted[-1]), last_season, sigma

    def _predict_one(self, state: tuple[float, np.ndarray, float], h: int, levels: tuple[float, ...]) -> dict[str, np.ndarray]:
        last, season, sigma = state
        si = np.resize(season, h)
        out = {"mean": last * si}
        steps = np.sqrt(np.arange(1, h + 1))
        for lv in levels:
            half = _z(lv) * sigma * steps
            out[f"lo-{lv}"] = (last - half) * si
            out[f"hi-{lv}"] = (last + half) * si
        return out


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


class AutoThetaForecaster(_StatsForecastAdapter[AutoThetaParams]):
    """The Theta family (STM, OTM, DSTM, DOTM) chosen by in-sample MSE (statsforecast ``AutoTheta``).

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

        return AutoTheta(season_length=self.season_length, decomposition_type=self.params.decomposition_type,
                         model=self.params.model)


class DynamicOptimizedThetaForecaster(_StatsForecastAdapter[DynamicOptimizedThetaParams]):
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

        return DynamicOptimizedTheta(season_length=self.season_length,
                                     decomposition_type=self.params.decomposition_type)


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
