"""The base class of the local (per-series) models: the statistical zoo.

A local model is fitted one series at a time; this base does validation, minimum
lengths, per-series failures, fallbacks, parallelism and the output frame, so that an
adapter implements only :meth:`LocalForecaster._fit_one` and
:meth:`LocalForecaster._predict_one`.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, ClassVar, Self

import numpy as np
import polars as pl

from forecasting.data import (
    Panel,
    check_min_length,
    future_frame,
    level_columns,
    to_caller_tz,
    validate_h,
    validate_levels,
)
from forecasting.errors import CapabilityError, ModelFitError, TimeLimitError
from forecasting.models.base import P, BaseForecaster, Capabilities, Fallback, as_panel, require

__all__ = ["LOCAL_CAPABILITIES", "LocalForecaster"]

#: What a statistical model does: intervals, nothing trained ahead (refit from each request's history).
LOCAL_CAPABILITIES = Capabilities(
    supports_intervals=True, supports_exog=False, is_global=False, can_explain=False, can_save=False,
    can_export=False, reports_progress=False, honours_time_limit=True,
    why_not={"explain": "statistical models are explained by their decomposition (trend/seasonal/remainder); use a "
                        "global model such as 'xgboost' for per-feature attributions",
             "global_importance": "statistical models have no features; use a global model such as 'xgboost'",
             "save": "it is refitted from history each time and is not saved; use `forecasting forecast`",
             "export": "statistical models are refit from each request's history (nothing is trained ahead to "
                       "export); export xgboost, nhits, tft or a tabular model",
             "exog": "drop the exogenous columns or choose a model that supports them",
             "progress": "it fits in one pass per series"})


def _run_fit(fit_one: Callable[[np.ndarray], Any], items: list[tuple[str, np.ndarray]],
             deadline: float | None = None) -> list[tuple[str, Any, str | None]]:
    out: list[tuple[str, Any, str | None]] = []
    for i, (uid, y) in enumerate(items):
        if deadline is not None and time.time() > deadline:
            msg = (
                f"fitting stopped after {i} of {len(items)} series: the time limit was reached; send "
                f"fewer or shorter series, or choose a faster model"
            )
            raise TimeLimitError(msg, field="data",
                                 details={"fitted": i, "series": len(items)})
        try:
            out.append((uid, fit_one(y), None))
        except Exception as exc:  # the underlying library's own errors, reported per series  # noqa: BLE001
            out.append((uid, None, f"{type(exc).__name__}: {exc}"))
    return out


class LocalForecaster(BaseForecaster[P]):
    """Base class of models fitted one series at a time (the statistical zoo).

    Subclasses set the class attributes and implement :meth:`_fit_one` and
    :meth:`_predict_one`; this class does validation, minimum lengths, per-series
    failures, fallbacks, parallelism and the output frame.

    Parameters
    ----------
    params, n_jobs, **kwargs
        See :class:`~forecasting.models.base.BaseForecaster`.
    fallback : LocalForecaster, optional
        Model used for series that are too short for this one or on which it fails;
        every such series is listed in :attr:`fallbacks_`. Without a fallback they
        raise ``InsufficientHistoryError`` / ``ModelFitError``.
    n_jobs : int, default 1
        Worker processes for fitting (-1: one per CPU).
    """

    capabilities: ClassVar[Capabilities] = LOCAL_CAPABILITIES
    fitted_attribute: ClassVar[str] = "states_"
    states_: dict[str, Any]  # unique_id -> fitted state
    fallback_states_: dict[str, Any]
    panel_: Panel

    def _local_fallback(self) -> LocalForecaster[Any]:
        """The fallback model, which a local model's per-series states require to be local too."""
        fb = self.fallback
        if not isinstance(fb, LocalForecaster):
            msg = (
                f"model '{self.name}': the fallback of a local model must be local, got "
                f"{type(fb).__name__}"
            )
            raise TypeError(msg)
        return fb

    # -- subclass hooks -----------------------------------------------------------
    def _fit_one(self, y: np.ndarray) -> Any:
        """Fit one series (float64 array of shape (n,)); return the fitted state."""
        raise NotImplementedError

    def _predict_one(self, state: Any, h: int, levels: tuple[float, ...]) -> dict[str, np.ndarray]:
        """Forecast from a fitted state: ``{"mean": (h,), "lo-L": (h,), "hi-L": (h,)}``."""
        raise NotImplementedError

    # -- protocol ------------------------------------------------------------------
    def fit(self, panel: Panel | Any, *, static: pl.DataFrame | None = None) -> Self:
        """Fit every series of ``panel``.

        Raises
        ------
        InsufficientHistoryError
            Series shorter than :attr:`min_train_length` (without a fallback).
        ModelFitError
            Series the underlying library fails on (without a fallback), each with
            the library's reason.
        CapabilityError
            Exogenous columns given to a model that cannot use them.
        """
        panel = as_panel(panel)
        if panel.exog and not self.capabilities.supports_exog:
            msg = (
                f"model '{self.name}' does not use exogenous columns; drop {', '.join(panel.exog)} or choose a model "
                f"that supports them"
            )
            raise CapabilityError(
                msg, field="data")
        if static is not None and not self.capabilities.supports_exog:
            msg = f"model '{self.name}' does not use static features"
            raise CapabilityError(msg, field="static")
        fb_name = self.fallback.name if self.fallback is not None else None
        short = check_min_length(panel, self.min_train_length, model=self.name, fallback=fb_name)
        fallbacks: dict[str, str] = {
            uid: f"{panel.lengths[uid]} observations, model '{self.name}' needs at least {self.min_train_length}"
            for uid in short}
        items = [(uid, y) for uid, y in panel.series_values() if uid not in fallbacks]
        results = self._fit_many(items)
        states: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for uid, state, err in results:
            if err is None:
                states[uid] = state
            else:
                failed[uid] = err
        if failed and self.fallback is None:
            raise ModelFitError(
                f"model '{self.name}' failed on {len(failed)} series: "
                + "; ".join(f"series '{u}': {r}" for u, r in list(failed.items())[:5])
                + ("; ..." if len(failed) > 5 else "") + " (or ask for a fallback model)",
                field="data", details={"model": self.name, "series": failed})
        fallbacks.update({u: f"model '{self.name}' failed: {r}" for u, r in failed.items()})
        fb_states: dict[str, Any] = {}
        if fallbacks:
            local_fb = self._local_fallback()
            local_fb.fit(panel.subset(fallbacks))
            fb_states = local_fb.states_
        self.panel_ = panel
        self.states_ = states
        self.fallback_states_ = fb_states
        self.fallbacks_ = [Fallback(u, fb_name or "", r) for u, r in fallbacks.items()]
        return self

    def _fit_many(self, items: list[tuple[str, np.ndarray]]) -> list[tuple[str, Any, str | None]]:
        n_jobs = (os.cpu_count() or 1) if self.n_jobs == -1 else max(1, self.n_jobs)
        if n_jobs == 1 or len(items) < 2 * n_jobs:
            return _run_fit(self._fit_one, items, self.deadline)
        size = math.ceil(len(items) / (4 * n_jobs))
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        worker = copy.copy(self)  # ship parameters only, not fitted state, to the workers
        for attr in ("panel_", "states_", "fallback_states_", "fallbacks_", "fallback"):
            worker.__dict__.pop(attr, None)
        with ProcessPoolExecutor(max_workers=n_jobs) as pool:
            parts = pool.map(_run_fit, [worker._fit_one] * len(chunks), chunks, [self.deadline] * len(chunks))
            return [r for part in parts for r in part]

    def predict(
        self,
        h: int,
        *,
        history: Panel | Any | None = None,
        X_future: pl.DataFrame | None = None,
        level: Sequence[float] = (),
    ) -> pl.DataFrame:
        """Forecast ``h`` steps after the end of each series.

        Parameters
        ----------
        h : int
            Horizon in steps of the panel's ``freq`` (1 <= h <= ``MAX_HORIZON``).
        history : Panel or frame, optional
            New or updated series: a local model refits on them (that is how local
            statistical models are meant to be used) and forecasts from their end.
        X_future : frame, optional
            Not used by local statistical models (``CapabilityError`` if given).
        level : sequence of numbers in (0, 100)
            Prediction-interval levels, percent.

        Returns
        -------
        pl.DataFrame
            ``h`` rows per series: ``unique_id, ds, <alias>[, <alias>-lo-<L>, <alias>-hi-<L>]``.

        Raises
        ------
        NotFittedError, CapabilityError, InvalidParameterError, ModelFitError
        """
        if history is not None:
            return self.fit(as_panel(history, freq=self.panel_.freq if self.is_fitted else None)).predict(
                h, X_future=X_future, level=level)
        self.check_is_fitted()
        h = validate_h(h)
        levels = validate_levels(level)
        if levels:
            require(self, "intervals", field="level")
        if X_future is not None:
            msg = f"model '{self.name}' does not use exogenous columns, so X_future is not accepted"
            raise CapabilityError(msg,
                                  field="X_future")
        cols: dict[str, list[np.ndarray]] = {c: [] for c in ["mean", *[f"{s}-{lv}" for lv in levels for s in ("lo", "hi")]]}
        outputs: dict[str, dict[str, np.ndarray]] = {}
        bad: dict[str, str] = {}
        for uid in self.panel_.ids:
            if uid in self.states_:
                out = self._predict_one(self.states_[uid], h, levels)
            else:
                out = self._local_fallback()._predict_one(self.fallback_states_[uid], h, levels)
            outputs[uid] = {k: np.asarray(out[k], dtype=np.float64) for k in cols}
            broken = [k for k, a in outputs[uid].items() if a.shape != (h,) or not np.isfinite(a).all()]
            if broken:
                bad[uid] = f"non-finite '{broken[0]}' values"
        if bad and self.fallback is not None and all(u in self.states_ for u in bad):
            # the model fitted but its forecasts are unusable: the fallback takes over, reported per series
            fb = self._local_fallback()
            fb.fit(self.panel_.subset(bad))
            for uid in bad:
                out = fb._predict_one(fb.states_[uid], h, levels)
                outputs[uid] = {k: np.asarray(out[k], dtype=np.float64) for k in cols}
            self.fallbacks_ = [f for f in self.fallbacks_ if f.unique_id not in bad] + [
                Fallback(u, fb.name, f"model '{self.name}' produced {r}") for u, r in bad.items()]
            bad = {u: f"fallback '{fb.name}' produced non-finite values too" for u in bad
                   if not all(np.isfinite(a).all() for a in outputs[u].values())}
        if bad:
            raise ModelFitError(
                f"model '{self.name}' produced non-finite forecasts for {len(bad)} series: "
                + "; ".join(f"series '{u}': {r}" for u, r in list(bad.items())[:5])
                + ("" if self.fallback is not None else " (or ask for a fallback model)"),
                field="data", details={"model": self.name, "series": bad})
        for uid in self.panel_.ids:
            for key in cols:
                cols[key].append(outputs[uid][key])
        frame = future_frame(self.panel_, h)
        names = {"mean": self.alias} | {k: f"{self.alias}-{k}" for k in cols if k != "mean"}
        frame = frame.with_columns([pl.Series(names[k], np.concatenate(v)) for k, v in cols.items()])
        ordered = [self.alias, *level_columns(self.alias, levels)]
        return to_caller_tz(frame.select("unique_id", "ds", *ordered), self.panel_)
