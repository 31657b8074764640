"""The base class of the local (per-series) models: the statistical zoo.

A local model is fitted one series at a time; this base does validation, minimum
lengths, per-series failures, fallbacks, parallelism and the output frame, so that an
adapter implements only :meth:`LocalForecaster._fit_one` and
:meth:`LocalForecaster._predict_one`.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from dataclasses import replace
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
)
from forecasting.errors import CapabilityError, ModelFitError, TimeLimitError
from forecasting.models.base import (P, BaseForecaster, Capabilities, Fallback, Progress, abandonable,
                                     as_panel, require)

__all__ = ["ALL_CORES", "LOCAL_CAPABILITIES", "SERIES_CAPABILITIES", "LocalForecaster", "available_cpus",
           "resolve_n_jobs"]

#: ``n_jobs`` value meaning "one worker process per usable CPU" (scikit-learn's and statsforecast's -1).
ALL_CORES = -1


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else ``os.cpu_count()``), >= 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no affinity call
        return max(1, os.cpu_count() or 1)


def resolve_n_jobs(n_jobs: int) -> int:
    """Worker processes for ``n_jobs``: negative values count back from the CPUs (-1: all, -2: all but one).

    As scikit-learn/joblib: ``n_jobs < 0`` means ``available_cpus() + 1 + n_jobs`` (at least 1); 0 and 1
    mean one (in-process).
    """
    return max(1, available_cpus() + 1 + n_jobs) if n_jobs < 0 else max(1, n_jobs)


#: What a statistical model does: intervals, nothing trained ahead (refit from each request's history).
LOCAL_CAPABILITIES = Capabilities(
    supports_intervals=True, supports_exog=False, is_global=False, can_explain=False, can_save=False,
    can_export=False, reports_progress=False, honours_time_limit=True,
    why_not={"explain": "statistical models are explained by their decomposition (trend/seasonal/remainder); use a "
                        "global model such as 'xgboost' for per-feature attributions",
             "global_importance": "statistical models have no features; use a global model such as 'xgboost'",
             "save": "it is refitted from history each time and is not saved; use `forecasting forecast`",
             "export": "statistical models are refit from each request's history (nothing is trained ahead to "
                       "export); export xgboost, nhits, tft, tsmixer or a tabular model",
             "exog": "drop the exogenous columns or choose a model that supports them",
             "progress": "it fits in one pass per series",
             "fitted_values": "this model keeps no in-sample fit; use a statistical model such as 'auto_ets' or "
                              "cross-validation"})
#: What a model fitted one series at a time adds: progress as series fitted / series (:func:`_series_reporter`:
#: per series in this process, per chunk back from the worker processes); the models built on other models
#: (``ensemble``, ``auto``) keep :data:`LOCAL_CAPABILITIES`.
SERIES_CAPABILITIES = replace(LOCAL_CAPABILITIES, reports_progress=True,
                              why_not={k: v for k, v in LOCAL_CAPABILITIES.why_not.items() if k != "progress"})


def _series_reporter(progress: Progress | None, total: int) -> Callable[[int], None] | None:
    """What the fit calls with the number of series fitted so far: ``progress(done / total, "series k/n
    fitted")``, at most once per 1 % of the series and for the last (a job writes each call to its database
    row); None without a ``progress`` callback (:func:`~forecasting.models.base.arm`)."""
    if progress is None or total < 1:
        return None
    last = [0]

    def report(done: int) -> None:
        if done * 100 // total > last[0] * 100 // total or done == total:
            last[0] = done
            progress(done / total, f"series {done}/{total} fitted")

    return report


def _run_fit(fit_one: Callable[[np.ndarray], Any], items: list[tuple[str, np.ndarray]],
             deadline: float | None = None, report: Callable[[int], None] | None = None, *,
             stop: threading.Event | None = None, out: list[tuple[str, Any, str | None]] | None = None,
             ) -> tuple[list[tuple[str, Any, str | None]], bool]:
    """Fit ``items`` in order (in this process or a worker): ``(unique_id, state or None, error or None)``
    per series fitted, and whether the deadline (epoch seconds) stopped it before the end; ``report(k)`` after
    the k-th series (in this process only).

    With a ``deadline`` a series is not started when it cannot finish before it: its cost is estimated from the
    seconds per observation of the series fitted so far in this call (those after the first, which pays the
    library's just-in-time compilation). ``stop`` (set by :func:`abandonable` when it gives up waiting) ends the
    loop before the next series; ``out`` receives each result as it comes (what an abandoned fit had done).
    """
    out = [] if out is None else out
    first_end, first_size, size = 0.0, 0, 0
    for i, (uid, y) in enumerate(items):
        if stop is not None and stop.is_set():
            return out, True
        now = time.time()
        if deadline is not None:
            rate = (now - first_end) / (size - first_size) if i >= 2 and size > first_size else 0.0
            if now > deadline or now + rate * y.size > deadline:
                return out, True
        try:
            out.append((uid, fit_one(y), None))
        except Exception as exc:  # the underlying library's own errors, reported per series  # noqa: BLE001
            out.append((uid, None, f"{type(exc).__name__}: {exc}"))
        size += y.size
        if i == 0:
            first_end, first_size = time.time(), size
        if report is not None and not (stop is not None and stop.is_set()):
            report(len(out))
    return out, False


#: seconds a pool may run past the deadline (each worker checks the deadline before every series and does not start
#: one it cannot finish; a worker still inside a series' fit then is killed: the time limit holds)
_POOL_GRACE_S = 2.0

#: seconds of fitting in this process after which the rest of the work is estimated (see :func:`_fit_probing`)
_PROBE_S = 0.25

#: estimated in-process seconds below which no worker processes are started, by start method: a forked worker
#: starts in ~0.1 s; a spawned one (the default inside ``serve --workers N``'s processes) imports the interpreter,
#: numpy, polars and the model library first: 18-30 s per pool under load 18 on 2 cores, where 10 series of 14
#: points took 19 s over HTTP against 0.01 s in one process
_POOL_MIN_S = {"fork": 1.0, "spawn": 10.0, "forkserver": 10.0}


def _fit_probing(fit_one: Callable[[np.ndarray], Any], items: list[tuple[str, np.ndarray]],
                 deadline: float | None, n_jobs: int, report: Callable[[int], None] | None = None, *,
                 stop: threading.Event | None = None, out: list[tuple[str, Any, str | None]] | None = None,
                 ) -> tuple[list[tuple[str, Any, str | None]], list[tuple[str, np.ndarray]], bool]:
    """Fit ``items`` in this process while that is cheaper than starting ``n_jobs`` worker processes.

    Series are fitted in order for :data:`_PROBE_S` seconds (and at least two); then the rest's in-process time is
    estimated from the seconds per observation of those after the first (which pays for the library's just-in-time
    compilation), and the rest is left to the workers when that estimate reaches :data:`_POOL_MIN_S` for this
    platform's start method (else it is fitted here too). Small requests thus never pay for process starts, and
    the forked workers of a large one inherit what the probe compiled (numba).

    Returns
    -------
    (results, rest, stopped)
        :func:`_run_fit`'s results so far, the ``(unique_id, y)`` left to the workers (empty when all were
        fitted here), and whether the deadline stopped the fit; ``report(k)`` after the k-th series fitted here.
        ``stop`` and ``out`` as :func:`_run_fit`'s (``results`` is ``out``).
    """
    import multiprocessing

    pool_min_s = _POOL_MIN_S.get(multiprocessing.get_start_method(), max(_POOL_MIN_S.values()))
    total = sum(y.size for _, y in items)
    start, done = time.perf_counter(), 0
    results: list[tuple[str, Any, str | None]] = [] if out is None else out
    first_end, first_size = start, 0  # the rate leaves the first series out: it pays the library's compilation
    for i, item in enumerate(items):
        now = time.perf_counter()
        if (now - start >= _PROBE_S and i >= 2) or _PROBE_S <= 0:
            left = (now - first_end) / max(done - first_size, 1) * (total - done)
            if left >= pool_min_s and len(items) - i >= 2 * n_jobs:
                return results, items[i:], False
            so_far = len(results)
            _, stopped = _run_fit(fit_one, items[i:], deadline,
                                  None if report is None else lambda k: report(so_far + k), stop=stop, out=results)
            return results, [], stopped
        _, stopped = _run_fit(fit_one, [item], deadline, stop=stop, out=results)
        done += item[1].size
        if i == 0:
            first_end, first_size = time.perf_counter(), done
        if stopped:
            return results, [], True
        if report is not None:
            report(len(results))
    return results, [], False


def _map_in_workers(fit_one: Callable[[np.ndarray], Any], chunks: list[list[tuple[str, np.ndarray]]], n_jobs: int,
                    deadline: float | None, report: Callable[[int], None] | None = None,
                    ) -> list[tuple[list[tuple[str, Any, str | None]], bool]]:
    """:func:`_run_fit` of every chunk in ``n_jobs`` worker processes, in order; ``report(k)`` with the series
    fitted so far each time a chunk comes back (called here, so it may raise to stop the fit: the workers are
    then stopped).

    With a ``deadline``, the pool is waited for until :data:`_POOL_GRACE_S` after it at most: a worker stuck
    inside one series' fit (which the per-series deadline check cannot interrupt) is then killed, and the
    fit ends with :class:`TimeLimitError` rather than holding the caller forever.
    """
    from concurrent.futures import TimeoutError as FuturesTimeout
    from concurrent.futures import as_completed

    pool = ProcessPoolExecutor(max_workers=n_jobs)
    timeout = None if deadline is None else max(1.0, deadline - time.time() + _POOL_GRACE_S)
    futures = [pool.submit(_run_fit, fit_one, chunk, deadline) for chunk in chunks]
    fitted = 0
    try:
        for future in as_completed(futures, timeout=timeout):
            fitted += len(future.result()[0])
            if report is not None:
                report(fitted)
        parts = [future.result() for future in futures]
    except FuturesTimeout:
        _stop_pool(pool)
        msg = (f"fitting did not finish {_POOL_GRACE_S:.0f} s after the time limit: its worker processes were "
               f"stopped; send fewer or shorter series, or choose a faster model")
        raise TimeLimitError(msg, field="data") from None
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    return parts


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's workers (one stuck inside a series' fit cannot be stopped otherwise) and drop its queue."""
    for proc in list(getattr(pool, "_processes", {}).values()):
        proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _chunks(items: list[tuple[str, np.ndarray]], n_chunks: int) -> list[list[tuple[str, np.ndarray]]]:
    """``items`` cut into ``n_chunks`` contiguous parts of near-equal total length (observations), in order."""
    sizes = np.cumsum([y.size for _, y in items])
    bounds = np.searchsorted(sizes, sizes[-1] * np.arange(1, n_chunks) / n_chunks, side="left") + 1
    edges = [0, *sorted(set(np.clip(bounds, 1, len(items) - 1).tolist())), len(items)]
    return [items[i:j] for i, j in zip(edges[:-1], edges[1:], strict=True) if j > i]


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
        Worker processes for fitting: 1 in this process, ``ALL_CORES`` (-1) one per usable CPU
        (:func:`resolve_n_jobs`). Results are identical for every value.
    """

    capabilities: ClassVar[Capabilities] = SERIES_CAPABILITIES
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

    #: chunks per worker process: a few, so that a slow chunk does not leave the other workers idle, while each
    #: worker pays one task round trip per chunk, not per series (statsforecast splits the same way)
    chunks_per_worker: ClassVar[int] = 4
    #: whether series may be fitted in forked worker processes; a model whose library deadlocks in a forked
    #: child (Prophet's cmdstanpy) fits in this process whatever ``n_jobs`` says
    parallel_fit: ClassVar[bool] = True

    def _fit_many(self, items: list[tuple[str, np.ndarray]]) -> list[tuple[str, Any, str | None]]:
        """Fit every ``(unique_id, y)``: in this process, or in ``n_jobs`` worker processes.

        The first series are fitted here (:func:`_fit_probing`); workers are started only when the rest is
        estimated to take longer in this process than starting them. With a :attr:`deadline`, the fit here is left
        at the deadline (:func:`abandonable`) and no series is started that cannot finish before it
        (:func:`_run_fit`): the time limit holds, even on one long series. Workers get contiguous chunks of series of
        near-equal total length (:attr:`chunks_per_worker` each) and this model's parameters only (no fitted
        state); each checks :attr:`deadline` before every series and reports each failure for its series, as the
        in-process path does. With a :attr:`progress` callback
        (:func:`~forecasting.models.base.arm`) the series fitted so far are reported (:func:`_series_reporter`).

        Raises
        ------
        TimeLimitError
            The deadline passed: ``fitting stopped after <fitted> of <total> series``.
        """
        n_jobs = min(resolve_n_jobs(self.n_jobs), len(items)) if self.parallel_fit else 1
        report = _series_reporter(self.progress, len(items))
        results: list[tuple[str, Any, str | None]] = []  # filled as series are fitted here (also if abandoned)

        def here(stop: threading.Event) -> tuple[list[tuple[str, np.ndarray]], bool]:
            """The series fitted in this process (all, or the first ones: :func:`_fit_probing`); the rest and
            whether the deadline stopped it."""
            if n_jobs <= 1 or len(items) < 2 * n_jobs:
                return [], _run_fit(self._fit_one, items, self.deadline, report, stop=stop, out=results)[1]
            _, left, stopped = _fit_probing(self._fit_one, items, self.deadline, n_jobs, report, stop=stop,
                                            out=results)
            return left, stopped

        done = abandonable(here, self.deadline)  # a series' fit running past the deadline is not waited for
        rest, stopped = ([], True) if done is None else done
        results = list(results)  # a snapshot: an abandoned fit may still append the series it was fitting
        if rest:
            chunks = _chunks(rest, min(len(rest), self.chunks_per_worker * n_jobs))
            worker = copy.copy(self)  # ship parameters only, not fitted state, to the workers
            for attr in ("panel_", "states_", "fallback_states_", "fallbacks_", "fallback"):
                worker.__dict__.pop(attr, None)
            worker.progress = None  # reported here, per chunk back (a callback may not pickle)
            probed = len(results)
            parts = _map_in_workers(worker._fit_one, chunks, n_jobs, self.deadline,
                                    None if report is None else lambda k: report(probed + k))
            results += [r for part, _ in parts for r in part]
            stopped = any(s for _, s in parts)
        if stopped:
            msg = (f"fitting stopped after {len(results)} of {len(items)} series: the time limit was reached; send "
                   f"fewer or shorter series, or choose a faster model")
            raise TimeLimitError(msg, field="data", details={"fitted": len(results), "series": len(items)})
        return results

    # -- in-sample fit -------------------------------------------------------------
    def _fitted_one(self, state: Any) -> np.ndarray:
        """In-sample one-step fitted values of one series' fitted state, shape (n,) (NaN where none)."""
        require(self, "fitted_values")
        raise NotImplementedError  # pragma: no cover - a class that declares has_fitted_values overrides this

    def fitted_values(self) -> pl.DataFrame:
        """In-sample fitted values of the series of the last fit: one row per training row.

        The value at ``t`` is the model's one-step forecast of ``y_t`` from the history before it, as the
        underlying library computes it (statsforecast's ``predict_in_sample``; R forecast's ``fitted``).
        Series forecast by the fallback model get the fallback's fitted values.

        Returns
        -------
        pl.DataFrame
            ``unique_id, ds, y, <alias>``, the training rows in order (``ds`` in the caller's form); the
            fitted value is null where the model has none (e.g. naive's first row).

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        CapabilityError
            The model (or the fallback, for the series it fitted) keeps no in-sample fit.
        """
        self.check_is_fitted("fitted_values()")
        require(self, "fitted_values")
        parts: list[np.ndarray] = []
        for uid in self.panel_.ids:
            if uid in self.states_:
                values = self._fitted_one(self.states_[uid])
            else:
                fb = self._local_fallback()
                require(fb, "fitted_values")
                values = fb._fitted_one(self.fallback_states_[uid])
            values = np.asarray(values, dtype=np.float64).reshape(-1)
            if values.size != self.panel_.lengths[uid]:  # pragma: no cover - a library contract violation
                msg = (f"model '{self.name}' gave {values.size} fitted values for series '{uid}' of "
                       f"{self.panel_.lengths[uid]} observations")
                raise ModelFitError(msg, field="data", details={"series": uid})
            parts.append(values)
        fitted = pl.Series(self.alias, np.concatenate(parts) if parts else np.empty(0), dtype=pl.Float64)
        frame = self.panel_.frame.select("unique_id", "ds", "y").with_columns(fitted.fill_nan(None))
        return to_caller_tz(frame, self.panel_)

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
            return self._refit_predict(h, history, X_future=X_future, level=level)
        h, levels = self._prepare_local(h, level, X_future)
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
