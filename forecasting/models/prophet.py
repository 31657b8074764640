"""Prophet as a baseline in the zoo (optional extra ``prophet``).

Source: Taylor & Letham, "Forecasting at scale", *The American Statistician* 72(1), 2018; the
``prophet`` package (Meta), whose Stan model ships prebuilt in the wheel. One Prophet model per
series (a :class:`~forecasting.models.local.LocalForecaster`): a piecewise-linear trend with
``n_changepoints`` changepoints plus Fourier seasonalities, fitted by MAP (L-BFGS in Stan).

Timestamps: with calendar ``ds`` Prophet sees the real dates and applies its own yearly,
weekly and daily seasonalities (switched on from the data's span and spacing, Prophet's
``"auto"``); with integer ``ds`` the steps become consecutive days from 2000-01-01 and the
seasonality is one custom period of ``season_length`` steps. Intervals are quantiles of
``uncertainty_samples`` posterior-predictive draws (Prophet's ``predictive_samples``), seeded by
``seed`` so that they repeat.

Measured (2026-12-01, ``forecasting bench --series-limit N --n-jobs 1 --no-cache``, 2 cores shared with six
other engineers' work, so times are inflated): M4 Hourly, first 20 series (h=48, integer ds, custom season 24):
sMAPE 8.27, MASE 1.216, OWA 1.078, 0.31 s per series (seasonal naive OWA 0.789, auto_ets 1.550);
M3 Monthly, first 100 series (h=18, calendar ds): sMAPE 34.35, MASE 0.825, OWA 0.901, 0.22 s per series
(auto_ets OWA 0.752, seasonal naive 0.937). Install: ``pip install prophet`` 3 s from the local wheels
(prophet 37 MB, holidays 14 MB, cmdstanpy 1 MB); ``import prophet`` about 3 s.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import polars as pl

from forecasting.data import Panel
from forecasting.models.base import Capabilities, as_panel
from forecasting.models.local import SERIES_CAPABILITIES, LocalForecaster
from forecasting.models.registry import ProphetParams

__all__ = ["ProphetForecaster"]

_EPOCH = np.datetime64("2000-01-01T00:00:00", "s")
_DAY = 86_400.0


def _quiet() -> None:
    from cmdstanpy.utils import get_logger

    get_logger()  # cmdstanpy's first call sets its logger to DEBUG with its own handler: let it happen before ours
    for name in ("cmdstanpy", "prophet", "prophet.plot"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


class ProphetForecaster(LocalForecaster[ProphetParams]):
    """Prophet fitted per series (Taylor & Letham 2018).

    Each fitted state is ``(model, last timestamp in seconds, step in seconds or calendar offset)``;
    forecasts step forward from the last timestamp by the panel's frequency.
    """

    name = "prophet"
    default_alias = "Prophet"
    #: cmdstanpy deadlocks in forked worker processes (a forecast of 8 series with n_jobs=2 never returned): the
    #: series are fitted in this process (about 0.2-0.3 s each on M4 Hourly and M3 Monthly)
    parallel_fit = False
    params_type = ProphetParams
    capabilities: ClassVar[Capabilities] = replace(SERIES_CAPABILITIES, has_fitted_values=True)

    @property
    def min_train_length(self) -> int:
        """Two observations (Prophet refuses fewer)."""
        return 2

    def fit(self, panel: Panel | Any, *, static: pl.DataFrame | None = None) -> ProphetForecaster:
        """Fit one Prophet model per series (see :meth:`LocalForecaster.fit`)."""
        panel = as_panel(panel)
        self.calendar_ = panel.ds_kind != "int"
        self.freq_ = panel.freq
        self._ds = {}
        if self.calendar_:
            seconds = panel.frame.select("unique_id", pl.col("ds").cast(pl.Datetime("ms")).dt.epoch("s"))
            for (uid,), part in seconds.group_by("unique_id", maintain_order=True):
                self._ds[str(uid)] = part["ds"].to_numpy().astype(np.float64)
        return super().fit(panel, static=static)

    def _fit_many(self, items: list[tuple[str, np.ndarray]]) -> list[tuple[str, Any, str | None]]:
        """Attach each series' timestamps (seconds) as a first column: ``_fit_one`` gets an (n, 2) array."""
        ds, self._ds = self._ds, {}
        stacked = [(uid, np.column_stack([ds[uid] if uid in ds else
                                          _EPOCH.astype(np.float64) + _DAY * np.arange(y.size), y]))
                   for uid, y in items]
        return super()._fit_many(stacked)

    def _make(self) -> Any:
        from prophet import Prophet

        p = self.params
        calendar = getattr(self, "calendar_", False)
        model = Prophet(growth=p.growth, seasonality_mode=p.seasonality_mode,
                        changepoint_prior_scale=p.changepoint_prior_scale,
                        seasonality_prior_scale=p.seasonality_prior_scale, n_changepoints=p.n_changepoints,
                        uncertainty_samples=0, yearly_seasonality="auto" if calendar else False,
                        weekly_seasonality="auto" if calendar else False,
                        daily_seasonality="auto" if calendar else False)
        m = p.season_length or 1
        if not calendar and m > 1:
            model.add_seasonality(name=f"period_{m}", period=float(m), fourier_order=max(1, min(10, m // 2)))
        return model

    def _fit_one(self, y: np.ndarray) -> Any:
        import pandas as pd

        _quiet()
        values = np.asarray(y, dtype=np.float64)
        if values.ndim == 1:  # a fallback's or a direct call: consecutive days
            values = np.column_stack([_EPOCH.astype(np.float64) + _DAY * np.arange(values.size), values])
        seconds, target = values[:, 0], values[:, 1]
        frame = pd.DataFrame({"ds": pd.to_datetime(seconds.astype(np.int64), unit="s"), "y": target})
        model = self._make()
        model.fit(frame, algorithm="LBFGS")
        step = float(np.median(np.diff(seconds))) if seconds.size > 1 else _DAY
        return model, float(seconds[-1]), step

    def _future(self, state: Any, h: int) -> Any:
        import pandas as pd

        _, last, step = state
        start = pd.to_datetime(last, unit="s")
        if getattr(self, "calendar_", False) and isinstance(self.freq_, str):
            dates = pl.select(pl.lit(start).cast(pl.Datetime("us"))).to_series()
            out = []
            for _ in range(h):
                dates = dates.dt.offset_by(self.freq_)
                out.append(dates[0])
            return pd.DataFrame({"ds": pd.to_datetime(out)})
        return pd.DataFrame({"ds": start + pd.to_timedelta(step * np.arange(1, h + 1), unit="s")})

    def _predict_one(self, state: Any, h: int, levels: tuple[float, ...]) -> dict[str, np.ndarray]:
        model = state[0]
        future = self._future(state, h)
        out = {"mean": model.predict(future)["yhat"].to_numpy(dtype=np.float64)}
        if levels:
            saved = np.random.get_state()
            try:
                np.random.seed(self.params.seed)
                model.uncertainty_samples = self.params.uncertainty_samples
                draws = np.asarray(model.predictive_samples(future)["yhat"], dtype=np.float64)  # (h, samples)
            finally:
                model.uncertainty_samples = 0
                np.random.set_state(saved)
            for lv in levels:
                out[f"lo-{lv}"] = np.quantile(draws, 0.5 - lv / 200.0, axis=1)
                out[f"hi-{lv}"] = np.quantile(draws, 0.5 + lv / 200.0, axis=1)
        return out

    def _fitted_one(self, state: Any) -> np.ndarray:
        model = state[0]
        return model.predict(model.history[["ds"]])["yhat"].to_numpy(dtype=np.float64)
