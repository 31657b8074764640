"""The ``Forecaster`` protocol and the base class of the local (per-series) models.

Every model in the zoo, local or global, answers the same two calls::

    fit(panel, *, static=None) -> self
    predict(h, *, history=None, X_future=None, level=()) -> pl.DataFrame

and declares what it can do through capability flags (as darts' ``ForecastingModel``:
``supports_intervals``, ``supports_exog``, ``is_global``, ``min_train_length``), so
callers check capabilities instead of catching surprises.

The forecast frame is ``unique_id, ds, <alias>`` plus ``<alias>-lo-<L>`` and
``<alias>-hi-<L>`` for each requested level (Nixtla's naming, so utilsforecast and
existing user code read it directly), with ``ds`` in the caller's form (timezone,
date or integer steps).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

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
    validate_panel,
)
from forecasting.errors import CapabilityError, ModelFitError, NotFittedError, TimeLimitError

__all__ = ["Fallback", "Forecaster", "LocalForecaster", "as_panel", "split_short"]

log = logging.getLogger(__name__)


@runtime_checkable
class Forecaster(Protocol):
    """What every model in the zoo provides.

    Attributes
    ----------
    name : str
        Registry name (``"auto_ets"``).
    alias : str
        Output column name (``"AutoETS"``, the library's class name by default).
    supports_intervals, supports_exog, is_global : bool
        Capabilities; asking for what a model lacks raises ``CapabilityError``.
    """

    name: str
    alias: str
    supports_intervals: bool
    supports_exog: bool
    is_global: bool

    @property
    def min_train_length(self) -> int:
        """Fewest observations a series needs for this model."""
        ...

    def fit(self, panel: Panel | Any, *, static: pl.DataFrame | None = None) -> Self:
        """Fit on a validated panel (raw frames are validated first). Returns ``self``."""
        ...

    def predict(
        self,
        h: int,
        *,
        history: Panel | Any | None = None,
        X_future: pl.DataFrame | None = None,
        level: Sequence[float] = (),
    ) -> pl.DataFrame:
        """Forecast ``h`` steps after each series' end: ``unique_id, ds, <alias>[, intervals]``."""
        ...


@dataclass(frozen=True)
class Fallback:
    """A series forecast by the fallback model instead of the requested one, and why."""

    unique_id: str
    model: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"unique_id": self.unique_id, "model": self.model, "reason": self.reason}


def split_short(model: Any, panel: Panel, minimum: int, why: str) -> Panel:
    """Hand series shorter than ``minimum`` to ``model.fallback`` and return the others (global models).

    Sets ``model.fallbacks_`` (one :class:`Fallback` per short series, after fitting the
    fallback on them).

    Raises
    ------
    InsufficientHistoryError
        Without a fallback: ``N series too short for model 'name' (needs at least
        minimum observations: why)``, naming up to five series and their lengths; the
        details list every one.
    """
    from forecasting.errors import InsufficientHistoryError

    short = {u: n for u, n in panel.lengths.items() if n < minimum}
    model.fallbacks_ = []
    if not short:
        return panel
    if model.fallback is None:
        raise InsufficientHistoryError(
            f"{len(short)} series too short for model '{model.name}' (needs at least {minimum} observations: {why}): "
            + "; ".join(f"series '{u}': {n} observations" for u, n in list(short.items())[:5]),
            field="data", details={"minimum": minimum,
                                   "series": {u: {"length": n, "minimum": minimum} for u, n in short.items()}})
    model.fallback.fit(panel.subset(short))
    model.fallbacks_ = [Fallback(u, model.fallback.name, f"{n} observations, model '{model.name}' needs at least "
                                                         f"{minimum}") for u, n in short.items()]
    return panel.subset([u for u in panel.lengths if u not in short])


def as_panel(data: Panel | Any, *, freq: str | int | None = None) -> Panel:
    """Return ``data`` if it is a :class:`Panel`, else validate it."""
    return data if isinstance(data, Panel) else validate_panel(data, freq=freq)


def _run_fit(fit_one: Callable[[np.ndarray], Any], items: list[tuple[str, np.ndarray]],
             deadline: float | None = None) -> list[tuple[str, Any, str | None]]:
    out = []
    for i, (uid, y) in enumerate(items):
        if deadline is not None and time.time() > deadline:
            raise TimeLimitError(f"fitting stopped after {i} of {len(items)} series: the time limit was reached; send "
                                 f"fewer or shorter series, or choose a faster model", field="data",
                                 details={"fitted": i, "series": len(items)})
        try:
            out.append((uid, fit_one(y), None))
        except Exception as exc:  # the underlying library's own errors, reported per series  # noqa: BLE001
            out.append((uid, None, f"{type(exc).__name__}: {exc}"))
    return out


class LocalForecaster:
    """Base class of models fitted one series at a time (the statistical zoo).

    Subclasses set the class attributes and implement :meth:`_fit_one` and
    :meth:`_predict_one`; this class does validation, minimum lengths, per-series
    failures, fallbacks, parallelism and the output frame.

    Parameters
    ----------
    alias : str, optional
        Output column name; defaults to :attr:`default_alias`.
    fallback : LocalForecaster, optional
        Model used for series that are too short for this one or on which it fails;
        every such series is listed in :attr:`fallbacks_`. Without a fallback they
        raise ``InsufficientHistoryError`` / ``ModelFitError``.
    n_jobs : int, default 1
        Worker processes for fitting (-1: one per CPU).
    """

    name: ClassVar[str] = ""
    default_alias: ClassVar[str] = ""
    supports_intervals: ClassVar[bool] = True
    supports_exog: ClassVar[bool] = False
    is_global: ClassVar[bool] = False

    def __init__(self, *, alias: str | None = None, fallback: LocalForecaster | None = None, n_jobs: int = 1):
        self.alias = alias or self.default_alias
        self.fallback = fallback
        self.n_jobs = n_jobs
        self.deadline: float | None = None  # epoch seconds after which fitting stops with TimeLimitError

    # -- subclass hooks -----------------------------------------------------------
    @property
    def min_train_length(self) -> int:
        """Fewest observations a series needs (1 unless the subclass says more)."""
        return 1

    def _fit_one(self, y: np.ndarray) -> Any:
        """Fit one series (float64 array of shape (n,)); return the fitted state."""
        raise NotImplementedError

    def _predict_one(self, state: Any, h: int, levels: tuple[float, ...]) -> dict[str, np.ndarray]:
        """Forecast from a fitted state: ``{"mean": (h,), "lo-L": (h,), "hi-L": (h,)}``."""
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters (JSON-serialisable)."""
        return {}

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
        if panel.exog and not self.supports_exog:
            raise CapabilityError(
                f"model '{self.name}' does not use exogenous columns; drop {', '.join(panel.exog)} or choose a model "
                f"that supports them", field="data")
        if static is not None and not self.supports_exog:
            raise CapabilityError(f"model '{self.name}' does not use static features", field="static")
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
            assert self.fallback is not None
            fb_panel = panel.subset(fallbacks)
            self.fallback.fit(fb_panel)
            fb_states = self.fallback.states_
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
            return self.fit(as_panel(history, freq=getattr(self, "panel_", None) and self.panel_.freq)).predict(
                h, X_future=X_future, level=level)
        if not hasattr(self, "states_"):
            raise NotFittedError(f"model '{self.name}' is not fitted: call fit(panel) before predict(h)")
        h = validate_h(h)
        levels = validate_levels(level)
        if levels and not self.supports_intervals:
            raise CapabilityError(f"model '{self.name}' cannot give prediction intervals; ask without level",
                                  field="level")
        if X_future is not None:
            raise CapabilityError(f"model '{self.name}' does not use exogenous columns, so X_future is not accepted",
                                  field="X_future")
        cols: dict[str, list[np.ndarray]] = {c: [] for c in ["mean", *[f"{s}-{lv}" for lv in levels for s in ("lo", "hi")]]}
        outputs: dict[str, dict[str, np.ndarray]] = {}
        bad: dict[str, str] = {}
        for uid in self.panel_.ids:
            if uid in self.states_:
                out = self._predict_one(self.states_[uid], h, levels)
            else:
                assert self.fallback is not None
                out = self.fallback._predict_one(self.fallback_states_[uid], h, levels)
            outputs[uid] = {k: np.asarray(out[k], dtype=np.float64) for k in cols}
            broken = [k for k, a in outputs[uid].items() if a.shape != (h,) or not np.isfinite(a).all()]
            if broken:
                bad[uid] = f"non-finite '{broken[0]}' values"
        if bad and self.fallback is not None and all(u in self.states_ for u in bad):
            # the model fitted but its forecasts are unusable: the fallback takes over, reported per series
            fb = self.fallback
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

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

