"""The tree-model base: one gradient-boosted model over every series, any tree library.

What every global tree forecaster shares (the XGBoost adapter, :mod:`forecasting.models.xgb`,
and any other tree library's), so that an adapter only trains a booster, calls it and
writes it to a file:

Features come from :mod:`forecasting.features` (lags, rolling and seasonal-rolling
statistics, calendar, static and exogenous columns, scaled and differenced target).
Multi-step forecasts are recursive by default (each step's prediction feeds the next
step's lags, as mlforecast's ``MLForecast.predict``) or direct (one model per horizon
step, or per group of steps with the step as a feature).

Default features are sized for the data (:func:`forecasting.features.default_features`: the
frequency, the lower-decile series length and, when given, ``horizon``); so are the calibrated
horizon and the number of calibration windows when the parameters leave them out (see
:meth:`TreeForecaster.fit`). What was derived, and how the bands are made, is in ``notes_``.

Prediction intervals are split-conformal on rolling-origin residuals (as mlforecast's
``PredictionIntervals``): the model is refitted with the last ``w`` blocks of ``horizon``
steps held out (``w`` = 1 .. ``conformal_windows``; each series takes part in the windows its
history allows), and the absolute errors of its forecasts, divided by each series' scale (mean
absolute seasonal difference, so that one quantile serves series of any size and series never
seen in training), give per-step quantiles with the finite-sample correction
``ceil((n + 1) level) / n``. With too few errors for the highest level asked (``n`` <
``level / (100 - level)``: 19 for 95%) that quantile does not exist; the bands of every level are
then ``z * rms`` of the errors per step (a normal approximation), and ``notes_`` says so. Sources:
Vovk, Gammerman & Shafer, *Algorithmic Learning in a Random World* (2005); Papadopoulos, Vovk &
Gammerman, normalised nonconformity scores, JAIR 40 (2011); Stankeviciute et al., NeurIPS 2021
(conformal time-series forecasting).

Explanations are exact TreeSHAP values of each step's model call (the library's own
contributions, ``pred_contribs``), rescaled to the units of ``y``.

An adapter subclasses :class:`TreeForecaster` with its parameter struct (a subclass of
:class:`~forecasting.models.registry.TreeParams`) and implements :meth:`TreeForecaster._fit_booster`,
:meth:`TreeForecaster._predict_booster`, :meth:`TreeForecaster._write_booster` and
:meth:`TreeForecaster._read_booster`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar, cast

import msgspec
import numpy as np
import polars as pl

from forecasting.artifacts import seal, verify
from forecasting.data import (
    Panel,
    collect_all_small,
    collect_small,
    find_float32_inexact,
    float32_note,
    future_frame,
    level_columns,
    to_caller_tz,
    validate_future,
    validate_h,
)
from forecasting.devices import resolve_device
from forecasting.errors import (
    CapabilityError,
    ForecastingError,
    InsufficientHistoryError,
    InvalidInputError,
    InvalidParameterError,
    NotFittedError,
    TimeLimitError,
)
from forecasting.explanation import Explanation, calendar_categories, rebase
from forecasting.features import (
    DIFFERENCE_MIN_LENGTH,
    SCALE_MEAN,
    SCALE_STD,
    TARGET,
    FeaturePipeline,
    FeatureSpec,
    choose_differences,
    default_features,
    scale_exprs,
    typical_length,
)
from forecasting.models.base import Capabilities, abandonable, as_panel, split_short
from forecasting.models.global_base import GLOBAL_CAPABILITIES, GlobalForecaster, check_exog_values
from forecasting.models.registry import TreeParams

__all__ = ["StepRows", "TreeForecaster", "tree_class"]

FORMAT_VERSION = 1
#: Most series a recursive forecast computes with the numpy evaluator (:meth:`TreeForecaster._paths_numpy`); more
#: take the polars block queries, whose fixed cost is then small beside the work.
NUMPY_MAX_SERIES = 64
#: Smallest training matrix (rows x features) a booster is trained on more than one thread
#: (:meth:`TreeForecaster.train_threads`): below it OpenMP's per-round synchronisation costs more than the threads
#: save, and on a loaded machine far more. Stop 24, 2 cores at load 16-17, 50 rounds, 30 features, one thread
#: against two (wall s): XGBoost 1,000 rows 2.2 against 71, 10,000 7.2 / 103, 30,000 11 / 121, 100,000 26 / 147,
#: 300,000 81 / 198; LightGBM 1,000 rows 0.43 / 37, 10,000 1.5 / 43. Two threads lost at every size there (an idle machine was not
#: available to find where they start to pay); 1e6 cells (33,000 rows of 30 features) keeps the many-core fits of
#: large panels. Both libraries fit the same trees on any number of threads (forecasts at 1 and 2: difference 0.0).
FIT_THREADS_MIN_CELLS = 1_000_000
TP = TypeVar("TP", bound=TreeParams)


@dataclass
class StepRows:
    """The model call that produced one forecast step: keys, features, output."""

    step: int
    keys: pl.DataFrame  # unique_id, ds (caller form)
    X: np.ndarray  # (n_series, n_features) float32
    output: np.ndarray  # (n_series,) booster output (transformed scale)
    z0: np.ndarray  # (n_series,) transformed target when y = 0: y = (output - z0) * scale
    scale: np.ndarray  # (n_series,) per-series scale of the target transform


@dataclass(frozen=True)
class _Warm:
    """A warm start's champion (:meth:`TreeForecaster.warm_start_from`)."""

    boosters: list[Any]
    rounds: int
    scores: np.ndarray | None
    spec: FeatureSpec
    features: list[str]


class TreeForecaster(GlobalForecaster[TP]):
    """Base of the global tree forecasters (see the module docstring).

    Parameters (:class:`~forecasting.models.registry.TreeParams`; the library's own in its struct)
    ----------
    season_length : int
        Steps per season; drives the default features (lags at multiples of it, a
        seasonal difference) and the conformal scale.
    features : FeatureSpec or dict, optional
        Feature spec; defaults to :func:`forecasting.features.default_features`, with
        any exogenous columns of the data as future-known inputs.
    recent_lags : bool
        With the default seasonal features, also lags 1 .. season_length-1 (ignored with
        ``features`` and by the recent feature set, which has them).
    strategy : {"recursive", "direct"}
    step_group_size : int
        Direct strategy: steps per model (1 = one model per step).
    horizon : int, optional
        Longest horizon trained for (direct) and calibrated for (intervals); default
        two seasons (M4 Hourly: 48; 14 without a season), shortened at fit to what leaves the
        upper-quartile series two held-out windows after the features' lookback (weekly data of
        148 points: 47).
    conformal_windows : int, optional
        Held-out windows used to calibrate intervals (0 = no intervals); default: at least 2,
        up to 5 while the panel has fewer than 40 series per window (and the history allows).
    device : {"auto", "cpu", "cuda"}
    seed : int
    """

    #: progress: every boosting round of every booster a fit trains (the conformal windows' too), issue 17
    capabilities: ClassVar[Capabilities] = replace(GLOBAL_CAPABILITIES, has_global_importance=True,
                                                   reports_progress=True)
    fitted_attribute: ClassVar[str] = "boosters_"
    #: how the explanations are computed (named in each Explanation)
    shap_method: ClassVar[str] = "tree_shap"
    #: file name suffix of a saved booster (``booster_<i>.<suffix>``)
    booster_suffix: ClassVar[str] = "bin"
    #: the tree library's distribution name (recorded with its version in ONNX exports)
    library: ClassVar[str] = ""

    @property
    def season_length(self) -> int:
        """Steps per season (1 when unset)."""
        return self.params.season_length or 1

    @property
    def horizon_param(self) -> int | None:
        """The ``horizon`` parameter as given."""
        return self.params.horizon

    @property
    def features(self) -> FeatureSpec | None:
        """The feature spec as given (None: :func:`~forecasting.features.default_features`)."""
        return self.params.features

    def train_threads(self, X: np.ndarray) -> int:
        """Threads to train a booster on ``X`` (rows, features): ``n_jobs`` (-1: every usable CPU, as
        :func:`~forecasting.models.local.resolve_n_jobs`), but one below :data:`FIT_THREADS_MIN_CELLS` cells."""
        from forecasting.models.local import resolve_n_jobs

        return 1 if X.shape[0] * max(1, X.shape[1]) < FIT_THREADS_MIN_CELLS else resolve_n_jobs(self.n_jobs)

    # ------------------------------------------------------------------ library hooks
    def _fit_booster(self, X: np.ndarray, y: np.ndarray, names: list[str], *, init: Any = None,
                     rounds: int | None = None) -> Any:
        """Train one booster on ``X`` (n, features) float32 and ``y`` (n,); honour ``self.deadline`` and report
        each round to ``self._round_reporter(rounds)`` (the library's training callbacks). With ``init`` (a warm
        start, :meth:`warm_start_from`): continue boosting from that booster for ``rounds`` more rounds (left
        unchanged)."""
        raise NotImplementedError

    def _predict_booster(self, booster: Any, X: np.ndarray, **kw: Any) -> np.ndarray:
        """Booster outputs for ``X``: (n,); with ``pred_contribs=True`` the contributions (n, features + 1)."""
        raise NotImplementedError

    def _write_booster(self, booster: Any, path: Path) -> None:
        """Write one booster to ``path``."""
        raise NotImplementedError

    @classmethod
    def _read_booster(cls, path: Path, device: str) -> Any:
        """Read one booster from ``path`` onto ``device`` (library errors propagate)."""
        raise NotImplementedError

    @classmethod
    def _library_errors(cls) -> tuple[type[Exception], ...]:
        """The library's own exception types a damaged booster file raises."""
        return ()

    def _booster_features(self, booster: Any) -> int:
        """Number of input columns of one booster (the direct strategy's grouped boosters add the step)."""
        raise NotImplementedError

    def _booster_to_onnx(self, booster: Any, n_features: int, opset: int) -> Any:
        """One booster as an ONNX model (input ``input``: float32 ``(batch, n_features)``), for
        :func:`forecasting.export.export_model`."""
        raise NotImplementedError

    @property
    def calibrated_horizon(self) -> int:
        """Horizon the intervals (and direct models) are built for: ``horizon``, else the one derived at
        fit (:meth:`fit`), else :attr:`trained_horizon` (two seasons)."""
        if self.params.horizon is not None:
            return self.params.horizon
        return self.__dict__.get("horizon_") or self.trained_horizon

    @property
    def min_train_length(self) -> int:
        """Observations a series needs: the pipeline's lookback + 1 (known after fit). Before fit: that of
        ``features`` when given, else of the smallest default features (a panel of very short series:
        lags 1, 2 and a first difference, 4 observations); longer panels get longer features at fit and
        hand the series shorter than those to the fallback (see :meth:`feature_spec_for`)."""
        if "pipeline_" in self.__dict__:
            return self.pipeline_.min_length
        spec = self.features or default_features(self.season_length, recent_lags=self.params.recent_lags, lengths=[0])
        return FeaturePipeline(spec=spec, freq=1).min_length

    def feature_spec_for(self, panel: Panel, notes: list[str] | None = None) -> FeatureSpec:
        """The feature spec :meth:`fit` uses on ``panel``.

        ``features`` as given; else :func:`~forecasting.features.default_features` of the season,
        the frequency (and its further periods, hourly: 168), the lengths of the series it keeps and
        ``horizon`` when given, with the data's exogenous columns as future-known inputs. The series
        kept are found by iterating from all of them (features of their lengths, then those long enough
        for the features, until none more is left out): so the panel without its short series gets the
        same features (a saved model, fitted without the fallback's series, forecasts as the inline one).
        The recent set differences ``y`` as a unit-root test of the series kept says
        (:func:`~forecasting.features.choose_differences`); its note is added to ``notes`` only when the spec
        returned is the recent set (a panel whose short series first make it the recent set, then the seasonal
        set without them, gets no note of a differencing it does not use: every door says the same).
        A warm start (:meth:`warm_start_from`) keeps the champion's.
        """
        if (warm := getattr(self, "warm_", None)) is not None:
            return warm.spec
        if self.features is not None:
            return self.features
        from forecasting.models.registry import default_season_length

        several = default_season_length(panel.freq, multiple=True)
        seasons = several if isinstance(several, list) and several[0] == self.season_length else []
        lengths = dict(panel.lengths)
        tested: tuple[tuple[str, ...], list[int], str] | None = None  # the series tested, the answer and its note
        while True:
            spec = default_features(self.season_length, freq=panel.freq, recent_lags=self.params.recent_lags,
                                    lengths=list(lengths.values()), horizon=self.params.horizon, seasons=seasons)
            note = None
            if spec.differences == [1]:  # the recent set: differenced as the test of the series kept says
                testable = tuple(u for u, n in lengths.items() if n >= DIFFERENCE_MIN_LENGTH)
                if tested is None or tested[0] != testable:
                    differences, why = choose_differences(panel, among=lengths)
                    tested = (testable, differences, why)
                spec, note = msgspec.structs.replace(spec, differences=tested[1]), tested[2]
            need = FeaturePipeline(spec=spec, freq=panel.freq).min_length
            kept = {u: n for u, n in lengths.items() if n >= need}
            if not kept or len(kept) == len(lengths):
                break
            lengths = kept
        if note is not None and notes is not None:
            notes.append(note)
        if panel.exog:
            spec = msgspec.structs.replace(spec, future_exog=list(panel.exog))
        return spec

    def _derive_horizon(self, panel: Panel, min_length: int) -> int:
        """The calibrated horizon for ``panel`` when ``horizon`` is not given: :attr:`trained_horizon`, shortened
        so that a quarter of the series (the upper-quartile length) keep two held-out windows after
        ``min_length`` (at least 1; M3 Yearly: 8, weekly series of 148 points: 47)."""
        default = self.trained_horizon
        if self.params.horizon is not None or not panel.lengths:
            return self.params.horizon or default
        upper = int(np.quantile(np.asarray(list(panel.lengths.values()), dtype=np.float64), 0.75))
        derived = max(1, min(default, (upper - min_length) // 2))
        if derived < default and self.params.conformal_windows != 0:
            self.notes_.append(f"intervals calibrated for h <= {derived}, not the default {default} (two seasons): "
                               f"the upper-quartile series length ({upper}) leaves two held-out windows of {derived} "
                               f"steps after the features' {min_length - 1} steps of lookback; pass params.horizon "
                               f"for another")
        return derived

    def _conformal_windows(self, panel: Panel) -> int:
        """Calibration windows: ``conformal_windows`` as given, else 2, up to 5 while fewer than 40 series take part."""
        if self.params.conformal_windows is not None:
            return self.params.conformal_windows
        return min(5, max(2, math.ceil(40 / max(1, panel.n_series))))

    # ------------------------------------------------------------------ fit
    def fit(self, panel: Panel | Any, *, static: pl.DataFrame | None = None) -> Self:
        """Fit the global model (and calibrate intervals) on every series.

        Raises
        ------
        InsufficientHistoryError
            Series shorter than the pipeline's lookback + 1, naming each with its length
            and the minimum (unless a ``fallback`` model is given).
        InvalidInputError, InvalidParameterError
            Exogenous/static columns that do not match the feature spec.
        """
        panel = as_panel(panel)
        self.notes_ = []
        spec = self.feature_spec_for(panel, self.notes_)
        unused = [c for c in panel.exog if c not in spec.future_exog and c not in spec.hist_exog]
        if unused:
            msg = (
                f"exogenous columns {unused} are not in the feature spec: list them in "
                f"features.future_exog or features.hist_exog, or drop them"
            )
            raise InvalidInputError(msg, field="data")
        check_exog_values(panel.frame, list(panel.exog), where="data")
        if self.features is None:
            self.notes_.append(_describe_features(spec, panel))
        self._note_float32(spec, panel, static)
        self.horizon_ = horizon = self._derive_horizon(panel, FeaturePipeline(spec=spec, freq=panel.freq).min_length)
        pipeline = FeaturePipeline.fit(spec, panel, static=static, max_horizon=horizon)
        pipeline.check_panel(panel)
        self._check_warm(pipeline)
        self.pipeline_ = pipeline
        panel = split_short(self, panel, pipeline.min_length, f"lookback {pipeline.lookback} + 1")
        self.static_ = static
        self.device_ = resolve_device(self.params.device)
        warm = getattr(self, "warm_", None)
        windows = 0 if warm is not None else self._conformal_windows(panel)
        longest = max(panel.lengths.values(), default=0)  # the windows _calibrate fits (it stops at the first empty)
        self._plan_rounds(passes=1 + sum(longest - w * self.calibrated_horizon >= pipeline.min_length
                                         for w in range(1, windows + 1)))
        self.boosters_ = self._train(panel)
        self.panel_ = panel
        self.scales_ = pipeline.scale_stats(panel.frame)
        self.cscales_ = self._series_scale(panel.frame)
        self.levels_ = series_levels(panel.frame)
        if warm is not None:  # the champion's conformal scores: recalibrating would refit from scratch
            self.scores_ = warm.scores
            self.notes_.append(f"warm start: {warm.rounds} boosting rounds continued from the champion's boosters "
                               f"on all the data; its conformal scores kept for the intervals")
        else:
            self.scores_ = self._calibrate(panel, windows) if windows > 0 else None
        if self.progress is not None:
            self.progress(1.0, "fitted")
        return self

    def _plan_rounds(self, *, passes: int) -> None:
        """Count the boosting rounds the coming fit trains: ``passes`` trainings (all the data, then each
        conformal window) of every booster group, each of ``n_estimators`` rounds (a warm start's ``rounds``)."""
        warm = getattr(self, "warm_", None)
        rounds = warm.rounds if warm is not None else int(getattr(self.params, "n_estimators", 1))
        self._rounds_plan = [0, max(1, passes * len(self._groups()) * rounds), 0]  # done, total, reported

    def _round_reporter(self, rounds: int) -> Callable[[int], None] | None:
        """What the library's training callback calls after each boosting round of the booster about to be
        trained (``rounds`` rounds), with that round's number (1-based): ``progress(fraction, message)`` over
        every round the fit trains (:meth:`_plan_rounds`), so a fraction never goes back; at most one call per
        1% of the rounds (a job records each call in its database row) and the last round's; None without a
        ``progress`` callback (:func:`~forecasting.models.base.arm`)."""
        progress = self.progress
        if progress is None:
            return None
        plan = getattr(self, "_rounds_plan", None) or [0, rounds, 0]
        start, total = plan[0], plan[1]
        plan[0] = start + rounds

        def report(k: int) -> None:
            done = start + k
            if done * 100 // total > plan[2] * 100 // total or done == total:
                plan[2] = done
                progress(min(1.0, done / total), f"boosting round {k}/{rounds} ({done}/{total} in all)")

        return report

    def warm_start_from(self, champion: TreeForecaster[Any], rounds: int) -> Self:
        """Make the next :meth:`fit` continue boosting from ``champion``'s boosters (a warm start) instead of
        training from scratch: ``rounds`` more boosting rounds on the data given to :meth:`fit` (XGBoost's
        ``xgb_model=``, LightGBM's ``init_model=``: the new trees fit the residuals of the champion's
        predictions), on the champion's feature spec. The champion's conformal scores are kept for the
        intervals (calibrating would refit from scratch on each held-out window).

        Parameters
        ----------
        champion : TreeForecaster
            A fitted model of the same class with the same feature pipeline (same spec).
        rounds : int
            Boosting rounds added, >= 1.

        Returns
        -------
        self

        Raises
        ------
        CapabilityError
            ``champion`` is another model family or is not fitted.
        InvalidParameterError
            ``rounds`` below 1.
        """
        if type(champion) is not type(self) or not getattr(champion, "boosters_", None):
            msg = (f"warm start: model '{self.name}' continues only from a fitted '{self.name}' model, got "
                   f"'{getattr(champion, 'name', type(champion).__name__)}'")
            raise CapabilityError(msg, field="model")
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            msg = f"warm start: rounds must be an integer >= 1, got {rounds!r}"
            raise InvalidParameterError(msg, field="warm_rounds")
        self.warm_ = _Warm(boosters=list(champion.boosters_), rounds=rounds, scores=champion.scores_,
                           spec=champion.pipeline_.spec, features=list(champion.pipeline_.feature_names))
        return self

    def _check_warm(self, pipeline: FeaturePipeline) -> None:
        warm = getattr(self, "warm_", None)
        if warm is not None and (pipeline.feature_names != warm.features
                                 or len(self._groups()) != len(warm.boosters)):
            msg = (f"warm start: the champion's features ({len(warm.features)} columns, {len(warm.boosters)} "
                   f"boosters) differ from this spec's on this data ({len(pipeline.feature_names)} columns, "
                   f"{len(self._groups())} boosters): retrain without warm_start")
            raise CapabilityError(msg, field="warm_start")

    def _note_float32(self, spec: FeatureSpec, panel: Panel, static: pl.DataFrame | None) -> None:
        """Warn (in :attr:`notes_`) of inputs beyond float32's exact range, |x| > 2^24, naming each column.

        XGBoost and LightGBM hold features and labels as float32; the target is checked only when the features
        leave it raw (``scaler="none"``, no differences), exogenous and static columns always. Nothing is
        rescaled: the caller chooses the unit (:func:`forecasting.data.float32_note`).
        """
        cols = [*spec.future_exog, *spec.hist_exog] + (["y"] if spec.scaler == "none" and not spec.differences else [])
        found = find_float32_inexact(panel.frame, cols)
        if static is not None:
            found |= find_float32_inexact(static, list(spec.static))
        if found:
            self._note(float32_note(found, model=self.name))

    def _note_future_float32(self, future: pl.DataFrame, cols: Sequence[str]) -> None:
        """The training data's float32 check (:meth:`_note_float32`, same note) on a forecast's ``X_future``.

        The note of the previous forecast's ``X_future`` is replaced (a fitted model serves many forecasts; the
        note is this one's), a note the fit gave is kept.
        """
        previous = getattr(self, "future_note_", None)
        if previous is not None and previous in self.notes_:
            self.notes_.remove(previous)
        self.future_note_: str | None = None
        found = find_float32_inexact(future, cols)
        if found and (note := float32_note(found, model=self.name)) not in self.notes_:
            self.notes_.append(note)
            self.future_note_ = note

    def _groups(self) -> list[list[int]]:
        if self.params.strategy == "recursive":
            return [[1]]
        g = max(1, self.params.step_group_size)
        steps = list(range(1, self.calibrated_horizon + 1))
        return [steps[i:i + g] for i in range(0, len(steps), g)]

    def _time_columns(self) -> list[str]:
        spec = self.pipeline_.spec
        return [*spec.calendar, *spec.future_exog]

    def _train(self, panel: Panel) -> list[Any]:
        pipe = self.pipeline_
        scales = pipe.scale_stats(panel.frame)
        tr = pipe.transform(panel.frame, scales=scales, static=self.static_)
        boosters: list[Any] = []
        for group in self._groups():
            parts = []
            for k in group:
                shifted = tr
                if k > 1:  # direct: target and time features of step k, target-derived features of the origin
                    moved = [TARGET, *self._time_columns()]
                    shifted = tr.with_columns([pl.col(c).shift(-(k - 1)).over("unique_id") for c in moved])
                rows = pipe.training_rows(shifted)
                _check_finite_target(rows, self.name)
                X = pipe.matrix(rows)
                if len(group) > 1:
                    X = np.column_stack([X, np.full(len(X), k, dtype=np.float32)])
                parts.append((X, rows[TARGET].to_numpy()))
            X = np.concatenate([p[0] for p in parts])
            y = np.concatenate([p[1] for p in parts])
            if len(y) == 0:
                msg = "no training rows: every series is shorter than the features need"
                raise InsufficientHistoryError(msg,
                                               field="data")
            names = pipe.feature_names + (["horizon_step"] if len(group) > 1 else [])
            boosters.append(self._booster_in_time(X, y, names, len(boosters)))
        return boosters

    def _booster_in_time(self, X: np.ndarray, y: np.ndarray, names: list[str], index: int) -> Any:
        """:meth:`_fit_booster` (continuing the warm start's booster ``index`` when there is one), left at
        ``deadline``: the training callbacks check it after each boosting round only, and one round over a large
        panel (or XGBoost's first, which sketches the quantiles) takes seconds under load, so the fit runs where
        it can be abandoned (:func:`~forecasting.models.base.abandonable`: a 4 s limit held at 4.5 s, not 13.6 s).

        Raises
        ------
        TimeLimitError
            The round in progress had not finished :data:`~forecasting.models.base.ABANDON_GRACE_S` after the
            deadline (its thread stops at the round's end).
        """
        warm = getattr(self, "warm_", None)

        def work(stop: threading.Event) -> Any:
            if warm is None:
                return self._fit_booster(X, y, names)
            return self._fit_booster(X, y, names, init=warm.boosters[index], rounds=warm.rounds)

        booster = abandonable(work, self.deadline)
        if booster is None:
            msg = (f"training stopped: the time limit was reached within a boosting round ({len(y)} rows x "
                   f"{X.shape[1]} features); send fewer series or lower n_estimators")
            raise TimeLimitError(msg, field="data")
        return booster

    def _series_scale(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Per-series conformal scale: mean |y_t - y_{t-m}| (MASE's denominator), else std, else 1."""
        return collect_small(self._series_scale_lazy(frame.lazy()))

    def _series_scale_lazy(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        aggs, finish = self._series_scale_exprs()
        return frame.group_by("unique_id", maintain_order=True).agg(aggs).select("unique_id", finish)

    def _series_scale_exprs(self) -> tuple[list[pl.Expr], pl.Expr]:
        """The conformal scale's per-series aggregations (``s1``, ``s2``) and the ``_cscale`` built from them."""
        m = self.season_length if self.season_length > 1 else 1
        y = pl.col("y")
        return [(y - y.shift(m)).abs().mean().alias("s1"), (y - y.shift(1)).abs().mean().alias("s2")], pl.coalesce(
            pl.when(pl.col("s1") > 0).then(pl.col("s1")), pl.when(pl.col("s2") > 0).then(pl.col("s2")),
            pl.lit(1.0)).alias("_cscale")

    def _calibrate(self, panel: Panel, windows: int) -> np.ndarray:
        """Normalised absolute errors on up to ``windows`` held-out windows: array (n_scores, horizon).

        Adds a note to ``notes_`` saying how many windows and errors the bands rest on.
        """
        horizon = self.calibrated_horizon
        idx = pl.int_range(pl.len()).over("unique_id")
        size = pl.len().over("unique_id").cast(pl.Int64)
        scores = []
        saved = self.boosters_
        try:
            for w in range(1, windows + 1):
                cut = w * horizon
                keep = [u for u, n in panel.lengths.items() if n - cut >= self.pipeline_.min_length]
                if not keep:
                    break
                frame = panel.frame.filter(pl.col("unique_id").is_in(keep))
                train = frame.filter(idx < size - cut)
                test = frame.filter((idx >= size - cut) & (idx < size - cut + horizon))
                sub = Panel(frame=train, freq=panel.freq, lengths={u: panel.lengths[u] - cut for u in keep},
                            tz=panel.tz, ds_kind=panel.ds_kind, exog=panel.exog)
                self.boosters_ = self._train(sub)
                fut = test.select("unique_id", "ds", *panel.exog) if panel.exog else None
                paths, _ = self._paths(sub, horizon, fut, scales=self.pipeline_.scale_stats(train), trusted_future=True)
                scale = self._series_scale(train)
                truth = test.select("unique_id", "y").with_columns(pl.int_range(pl.len()).over("unique_id").alias("k"))
                pred = paths.select("unique_id", "_pred").with_columns(pl.int_range(pl.len()).over("unique_id").alias("k"))
                joined = truth.join(pred, on=["unique_id", "k"]).join(scale, on="unique_id")
                err = ((joined["y"] - joined["_pred"]).abs() / joined["_cscale"]).to_numpy()
                scores.append(err.reshape(len(keep), horizon))
        finally:
            self.boosters_ = saved
        n = sum(len(s) for s in scores)
        if not scores:
            self.notes_.append(f"no prediction intervals: no series is long enough for a held-out window of {horizon} "
                               f"steps after the features' {self.pipeline_.lookback} steps of lookback")
            return np.empty((0, horizon))
        if len(scores) < min(2, windows):
            self.notes_.append(f"intervals calibrated on one held-out window of {horizon} steps ({n} errors): the "
                               f"history is too short for two; the bands are less reliable")
        else:
            self.notes_.append(f"intervals calibrated on {len(scores)} held-out windows of {horizon} steps ({n} errors)")
        return np.concatenate(scores)

    # ------------------------------------------------------------------ predict
    def _paths(self, panel: Panel, h: int, X_future: Any, *, scales: pl.DataFrame, collect: bool = False,
               trusted_future: bool = False) -> tuple[pl.DataFrame, list[StepRows]]:
        """Forecast ``h`` steps for every series of ``panel``: frame unique_id, ds, _pred (internal ds).

        ``scales`` are the target-scaling statistics of each series' full history.
        ``trusted_future``: ``X_future`` is held-out training data in internal form
        (calibration), whose missing exogenous values are kept as missing, as in training.
        """
        pipe = self.pipeline_
        future = self._future_rows(panel, h, X_future, trusted_future=trusted_future)
        if not collect and not trusted_future and (small := self._paths_numpy(panel, h, future, scales)) is not None:
            return small, []
        hist_cols = ["unique_id", "ds", "y", *pipe.spec.future_exog, *pipe.spec.hist_exog]
        tail_q = panel.frame.lazy().select(hist_cols)
        one = panel.n_series == 1  # one series (a typical request): its rows are already in order
        if not pipe.spec.expanding_mean_lags:  # an expanding mean needs the whole history; everything else the lookback
            keep = pipe.lookback + 1
            tail_q = (tail_q.slice(max(0, panel.frame.height - keep)) if one else tail_q.filter(
                pl.int_range(pl.len()).over("unique_id") >= pl.len().over("unique_id").cast(pl.Int64) - keep))
        tail_q = tail_q.with_columns(pl.lit(None, dtype=pl.Int64).alias("_step"))
        tail: pl.DataFrame | None = None
        future = future.lazy().with_columns(pl.int_range(1, pl.len() + 1).over("unique_id").alias("_step"))
        hist_nulls = [pl.lit(None, dtype=panel.frame.schema[c]).alias(c) for c in pipe.spec.hist_exog]
        steps: list[StepRows] = []
        preds: list[pl.DataFrame] = []
        origin_X: np.ndarray | None = None
        groups = self._groups()
        block = self.recursive_block() if self.params.strategy == "recursive" else 1
        for k in range(1, h + 1, block):
            ks = list(range(k, min(h, k + block - 1) + 1))
            # One lazy query per block: the block's rows appended to the tail, features, the block's rows back
            # (a query's fixed cost, not its size, dominates a small forecast).
            new = future.filter(pl.col("_step").is_between(ks[0], ks[-1])).with_columns(pl.lit(0.0).alias("y"),
                                                                                          *hist_nulls)
            frame = pl.concat([tail_q if tail is None else tail.lazy(), new.select(*hist_cols, "_step")],
                              how="vertical_relaxed")
            if not one:
                frame = frame.sort("unique_id", "ds")
            # kept rows (the block's) follow at least `lookback` rows of their series: the tail holds
            # min(lookback + 1, n) rows and every history has n >= lookback (checked in _history, fit)
            # (not with expanding means: they sum each series' whole history, whose first rows would read the
            # previous series)
            block_q = (pipe.transform_lazy(frame, scales=scales, static=self.static_, contiguous=True,
                                           reach_checked=not pipe.spec.expanding_mean_lags)
                       .filter(pl.col("_step").is_not_null()))
            if tail is None:  # the first block and the tail in one call
                tail, last = collect_all_small([tail_q, block_q])
            else:
                last = collect_small(block_q)
            X = pipe.matrix(last)
            if self.params.strategy == "recursive":
                booster, Xk = self.boosters_[0], X
            else:
                if k == 1:
                    origin_X = X
                gi = next(i for i, g in enumerate(groups) if k in g) if k <= self.calibrated_horizon else None
                if gi is None:
                    msg = (
                        f"direct strategy was trained for h <= {self.calibrated_horizon}, got h={h}; "
                        f"refit with a larger horizon"
                    )
                    raise CapabilityError(msg, field="h")
                time_idx = [pipe.feature_names.index(c) for c in self._time_columns()]
                Xk = origin_X.copy()  # type: ignore[union-attr]
                Xk[:, time_idx] = X[:, time_idx]
                if len(groups[gi]) > 1:
                    Xk = np.column_stack([Xk, np.full(len(Xk), k, dtype=np.float32)])
                booster = self.boosters_[gi]
            z = self._predict_booster(booster, Xk)
            z0, scale = last[TARGET].to_numpy(), last[SCALE_STD].to_numpy()
            y_new = (z - z0) * scale
            if not np.isfinite(y_new).all():
                bad = last.filter(~pl.Series(np.isfinite(y_new)))["unique_id"].head(5).to_list()
                msg = (
                    f"non-finite forecasts at steps {ks[0]}-{ks[-1]} for series {bad}; check the "
                    f"inputs"
                )
                raise InvalidInputError(msg, field="data")
            preds.append(pl.DataFrame([last.get_column("unique_id"), last.get_column("ds"), pl.Series("_pred", y_new)]))
            done = pl.DataFrame([pl.Series("y", y_new) if c == "y" else last.get_column(c) for c in hist_cols]
                                + [pl.Series("_step", [None] * last.height, dtype=pl.Int64)])
            tail = tail.vstack(done) if done.schema == tail.schema else pl.concat([tail, done], how="vertical_relaxed")
            if collect:
                step_of = last["_step"].to_numpy()
                for kk in ks:
                    rows = step_of == kk
                    steps.append(StepRows(step=kk, keys=to_caller_tz(last.filter(pl.Series(rows)).select(
                        "unique_id", "ds"), panel), X=Xk[rows], output=z[rows], z0=z0[rows], scale=scale[rows]))
        out = pl.concat(preds)
        return (out if one else out.sort("unique_id", "ds")), steps

    def _paths_numpy(self, panel: Panel, h: int, future: pl.DataFrame | pl.LazyFrame,
                     scales: pl.DataFrame) -> pl.DataFrame | None:
        """:meth:`_paths` of a small recursive forecast without the polars block queries (issue 14: their fixed
        cost was most of a one-series request), bit for bit: the same frame column the block query builds
        (each series' last ``lookback + 1`` rows, the forecasts so far and the block's rows, series in the
        order the query sorts them), its transformed target in numpy (:meth:`FeaturePipeline.target_numpy`)
        and the block rows' features from the same definitions (:meth:`FeaturePipeline.block_matrix`).

        Returns None (the caller runs the query) for direct models, features the numpy evaluator does not
        compute (:attr:`FeaturePipeline.numpy_ready`), more than :data:`NUMPY_MAX_SERIES` series, series whose
        rows are not contiguous, or future exogenous values of another dtype than the history's.
        """
        pipe = self.pipeline_
        spec = pipe.spec
        frame = panel.frame
        if (self.params.strategy != "recursive" or not pipe.numpy_ready or self.static_ is not None
                or not 0 < panel.n_series <= NUMPY_MAX_SERIES):
            return None
        future = collect_small(future) if isinstance(future, pl.LazyFrame) else future
        if any(future.schema[c] != frame.schema[c] for c in spec.future_exog):
            return None
        uid = frame.get_column("unique_id").to_numpy()
        cuts = np.flatnonzero(uid[1:] != uid[:-1]) + 1
        starts, ends = np.concatenate([[0], cuts]), np.concatenate([cuts, [len(uid)]])
        ids = [str(uid[a]) for a in starts]
        if len(set(ids)) != len(ids) or len(ids) != panel.n_series or future.height != h * len(ids):
            return None
        one = len(ids) == 1
        order = [0] if one else sorted(range(len(ids)), key=ids.__getitem__)  # the query sorts by unique_id
        stats = dict(zip(scales.get_column("unique_id").to_list(), zip(scales.get_column(SCALE_MEAN).to_list(),
                                                                        scales.get_column(SCALE_STD).to_list(),
                                                                        strict=True), strict=True))
        if any(u not in stats for u in ids):
            return None
        keep = pipe.lookback + 1
        y_all = frame.get_column("y").to_numpy()
        tails = [y_all[max(starts[i], ends[i] - keep):ends[i]].astype(np.float64) for i in order]
        calendar = pipe.calendar_matrix(future.get_column("ds"))
        exog = (np.column_stack([future.get_column(c).cast(pl.Float32).to_numpy() for c in spec.future_exog])
                if spec.future_exog else None)
        preds = [np.empty(0) for _ in order]
        block = self.recursive_block()
        for k in range(1, h + 1, block):
            n_new = min(h, k + block - 1) - k + 1
            parts, locs, scs, rows, fut = [], [], [], [], []
            at = 0
            for j, i in enumerate(order):
                loc, sc = stats[ids[i]]
                part = np.concatenate([tails[j], preds[j], np.zeros(n_new)])
                parts.append(part)
                locs.append(np.full(len(part), loc))
                scs.append(np.full(len(part), sc))
                rows.append(np.arange(at + len(part) - n_new, at + len(part)))
                fut.append(np.arange(i * h + k - 1, i * h + k - 1 + n_new))
                at += len(part)
            row, at_future = np.concatenate(rows), np.concatenate(fut)
            scale = np.concatenate(scs)
            if scales.height == 1:  # joined as scalars by the query (see target_numpy)
                z = pipe.target_numpy(parts[0], locs[0][0], scs[0][0])
            else:
                z = pipe.target_numpy(np.concatenate(parts), np.concatenate(locs), scale)
            X = pipe.block_matrix(z, row, calendar=calendar[at_future],
                                  future=None if exog is None else exog[at_future])
            out = self._predict_booster(self.boosters_[0], X)
            y_new = (out - z[row]) * scale[row]
            if not np.isfinite(y_new).all():
                bad = [ids[order[r // n_new]] for r in np.flatnonzero(~np.isfinite(y_new))[:5]]
                msg = (
                    f"non-finite forecasts at steps {k}-{k + n_new - 1} for series {bad}; check the "
                    f"inputs"
                )
                raise InvalidInputError(msg, field="data")
            preds = [np.concatenate([preds[j], y_new[j * n_new:(j + 1) * n_new]]) for j in range(len(order))]
        ds = future.get_column("ds")
        if order != sorted(order):  # series not in id order in the frame: their future rows in id order
            ds = ds.gather(np.concatenate([np.arange(i * h, (i + 1) * h) for i in order]))
        return pl.DataFrame([pl.Series("unique_id", [ids[i] for i in order for _ in range(h)], dtype=pl.String),
                             ds, pl.Series("_pred", np.concatenate(preds))])

    def _future_rows(self, panel: Panel, h: int, X_future: Any, *,
                     trusted_future: bool) -> pl.DataFrame | pl.LazyFrame:
        """``unique_id, ds`` (+ the future exogenous columns) of the ``h`` steps to forecast, per series.

        Raises
        ------
        CapabilityError
            ``X_future`` for a model that uses no future exogenous columns.
        InvalidInputError
            Missing or non-finite future values, naming the pairs and columns.
        """
        exog_cols = list(self.pipeline_.spec.future_exog)
        if trusted_future:
            future = future_frame(panel, h)
            if exog_cols:
                future = future.join(X_future.select("unique_id", "ds", *exog_cols), on=["unique_id", "ds"],
                                     how="left", maintain_order="left")
            return future
        if X_future is not None and not exog_cols:
            msg = (
                f"this {self.name} model uses no future exogenous columns, so X_future is not "
                "accepted"
            )
            raise CapabilityError(msg, field="X_future")
        if exog_cols:
            checked = validate_future(X_future, panel, h, exog_cols)
            check_exog_values(checked, exog_cols, where="X_future")
            self._note_future_float32(checked, exog_cols)
            return checked
        if panel.n_series <= NUMPY_MAX_SERIES and self.params.strategy == "recursive" and self.pipeline_.numpy_ready:
            return future_frame(panel, h)  # for _paths_numpy
        return future_frame(panel, h, lazy=True)  # folded into the first block's query

    def recursive_block(self) -> int:
        """Steps forecast per model call in a recursive forecast.

        A step's features read the target no nearer than the shortest target lag ``L``
        (lags, rolling windows, expanding means) and, through the differences, ``d`` steps
        back; so the next ``min(L, d)`` steps need no forecast of each other and are
        computed in one pass (default hourly features: 24 steps at once, 2 passes for
        h = 48 instead of 48). Identical forecasts to step-by-step recursion.
        """
        spec = self.pipeline_.spec
        reach = [*self.pipeline_.target_lags.values(), *spec.differences]
        return max(1, min(reach)) if reach else 10_000

    def _history(self, history: Any) -> Panel:
        panel = super()._history(history)
        if history is not None:
            self._refuse_short(panel, self.pipeline_.lookback, "history")
        return panel

    def predict(self, h: int, *, history: Panel | Any | None = None, X_future: Any = None,
                level: Sequence[float] = ()) -> pl.DataFrame:
        """Forecast ``h`` steps after each series' end, without retraining.

        Parameters
        ----------
        h : int
        history : Panel or frame, optional
            Series to forecast from (new series, or newer observations of known ones);
            default: the training series.
        X_future : frame, optional
            ``unique_id, ds`` + the future exogenous columns for the ``h`` steps.
        level : numbers in (0, 100)
            Conformal interval levels, percent (``h`` <= the calibrated horizon).

        Raises
        ------
        NotFittedError, InsufficientHistoryError, InvalidInputError (missing future
        values, naming the ``(unique_id, ds)`` pairs and columns), CapabilityError.
        """
        h, levels = self._prepare(h, level)
        if levels and self.scores_ is None:
            msg = (
                f"this {self.name} model was fitted without conformal calibration "
                "(conformal_windows=0), so it cannot give intervals"
            )
            raise CapabilityError(msg, field="level")
        self._check_hist_exog_horizon(h)
        panel = self._history(history)
        scales, cscales = self._scales(panel, history)
        paths, _ = self._paths(panel, h, X_future, scales=scales)
        frame = pl.DataFrame([paths.get_column("unique_id"), paths.get_column("ds"),
                              paths.get_column("_pred").alias(self.alias)])  # renamed without a query
        if levels:
            frame = self._intervals(frame, cscales, levels)
        return self._with_fallback_forecasts(to_caller_tz(frame, panel), h, levels, history)

    def _check_hist_exog_horizon(self, h: int) -> None:
        """Historic-only exogenous lags must reach back beyond the horizon (their future is unknown)."""
        lags = [lag for lags in self.pipeline_.spec.hist_exog.values() for lag in lags]
        if lags and h > min(lags):
            msg = (
                f"h={h} exceeds the shortest historic-exogenous lag {min(lags)}: steps beyond it "
                f"would need unknown future values; ask for h <= {min(lags)}"
            )
            raise CapabilityError(msg, field="h")

    def _scales(self, panel: Panel, history: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Target-scaling and conformal scales: the training ones, or those of the given history."""
        if history is None:
            return self.scales_, self.cscales_
        return self._scales_one_series(panel) or self._scales_query(panel)

    def _scales_query(self, panel: Panel) -> tuple[pl.DataFrame, pl.DataFrame]:
        """:meth:`_scales` of a history by the polars query (every case; :meth:`_scales_one_series` first)."""
        # one group_by for both (a query's fixed cost was a tenth of a one-series request, issue 14)
        aggs, finish = scale_exprs(self.pipeline_.spec.scaler)
        c_aggs, c_finish = self._series_scale_exprs()
        both = collect_small(panel.frame.lazy().group_by("unique_id", maintain_order=True).agg(*aggs, *c_aggs)
                             .with_columns(*finish, c_finish))
        uid = both.get_column("unique_id")
        return (pl.DataFrame([uid, both.get_column(SCALE_MEAN), both.get_column(SCALE_STD)]),
                pl.DataFrame([uid, both.get_column("_cscale")]))

    def _scales_one_series(self, panel: Panel) -> tuple[pl.DataFrame, pl.DataFrame] | None:
        """:meth:`_scales` of a one-series history without the ``group_by`` query (issue 14: its collect, waiting
        on polars' thread pool under load, was two thirds of a one-series forecast's model time), bit for bit.

        Each statistic is reduced in the order polars reduces it (:func:`~forecasting.features.scale_exprs`,
        :meth:`_series_scale_exprs`):

        * a key not flagged sorted (a request's history) is hashed into an index group, whose ``mean`` is a
          Kahan sum over ``n`` and whose ``std`` a Welford update (:func:`~forecasting.models.tree_kernels.
          kahan_mean_welford_std`, compiled); a key flagged sorted is aggregated as a slice of the column, with
          the column's own ``Series.mean`` and ``Series.std(ddof=0)``;
        * the conformal scale's means of ``|y_t - y_{t-m}|`` are polars' masked pairwise sum of the group's list
          (its ``m`` nulls as zeros in place: ``Series.sum``) over its ``n - m`` values, either way.

        The query's finishing follows (a ``scale`` that is null or at most 1e-12 is 1; the conformal scale is the
        first positive of the two means, else 1). Identical to the query on random series, both ways
        (``tests/test_issue14_p50b.py``).

        Returns None (the caller runs the query) for several series, a target that is not Float64 or not
        finite, or a scaler :func:`~forecasting.features.scale_exprs` does not define.
        """
        frame = panel.frame
        scaler = self.pipeline_.spec.scaler
        if panel.n_series != 1 or scaler not in ("standard", "mean", None):
            return None
        uid, y = frame.get_column("unique_id"), frame.get_column("y")
        if y.dtype != pl.Float64:
            return None
        v = y.to_numpy()
        if not np.isfinite(v).all():
            return None
        n = len(v)
        loc, scale = 0.0, 1.0
        if scaler is not None:
            hashed = not uid.flags["SORTED_ASC"]
            if hashed:
                from forecasting.models.tree_kernels import kahan_mean_welford_std

                mean, std = kahan_mean_welford_std(v if scaler == "standard" else np.abs(v))
            elif scaler == "standard":
                mean, std = cast(float, y.mean()), cast(float, y.std(ddof=0))
            else:
                mean, std = cast(float, pl.Series(np.abs(v)).mean()), 0.0
            loc, scale = (mean, std) if scaler == "standard" else (0.0, mean)
        scale = 1.0 if scale <= 1e-12 else scale
        cscale = 1.0
        for lag in (self.season_length if self.season_length > 1 else 1, 1):
            if n > lag:
                d = np.empty(n)
                d[:lag] = 0.0
                np.abs(v[lag:] - v[:-lag], out=d[lag:])
                mean = cast(float, pl.Series(d).sum()) / (n - lag)
                if mean > 0:
                    cscale = mean
                    break
        uid = uid.slice(0, 1)
        return (pl.DataFrame([uid, pl.Series(SCALE_MEAN, [0.0 if loc is None else loc], dtype=pl.Float64),
                              pl.Series(SCALE_STD, [scale], dtype=pl.Float64)]),
                pl.DataFrame([uid, pl.Series("_cscale", [cscale], dtype=pl.Float64)]))

    def _intervals(self, frame: pl.DataFrame, cscales: pl.DataFrame, levels: tuple[float | int, ...]) -> pl.DataFrame:
        """``frame`` (``unique_id, ds, <alias>``) with the conformal bands of each level: the forecast plus and minus
        the width of its step (:func:`interval_widths`, the ``k``-th row of a series is step ``k + 1``) times its
        series' conformal scale (``cscales``; null bands for a series without one). Computed in numpy, the same
        arithmetic a polars query would do (issue 14: a query per level was a fixed cost of every request)."""
        scores = self.scores_
        assert scores is not None
        n = scores.shape[0]
        if n == 0:
            msg = (
                "no series was long enough to calibrate intervals (needs the lookback plus "
                f"{self.params.conformal_windows} x {self.calibrated_horizon} steps)"
            )
            raise CapabilityError(msg, field="level")
        codes, step = _series_codes(frame.get_column("unique_id"))
        widths = interval_widths(scores, levels)
        longest = int(step.max()) + 1 if step.size else 0
        if longest > scores.shape[1]:  # steps beyond the calibrated horizon: bands made another way, said so
            widths = widen_beyond(widths, longest)
            cal = scores.shape[1]
            beyond = f"the band of step {longest} is" if longest == cal + 1 else \
                f"the bands of steps {cal + 1} to {longest} are"
            self._note(f"intervals are calibrated for h <= {cal}: {beyond} step {cal}'s widened by sqrt(k / {cal}) (a "
                       f"random walk's growth), not calibrated; refit with params.horizon >= {longest} to calibrate them")
        if any(math.ceil((n + 1) * lv / 100) > n for lv in levels):
            self._note(f"{n} calibration errors are too few for a conformal {max(levels)}% band (it needs at least "
                       f"{math.ceil(max(levels) / (100 - max(levels)))}): the bands are z * rms of the errors per step "
                       f"(a normal approximation), not conformal quantiles")
        known = dict(zip(cscales.get_column("unique_id").to_list(), cscales.get_column("_cscale").to_list(),
                         strict=True))
        by_code = np.array([np.nan if known.get(u) is None else known[u] for u in codes[1]], dtype=np.float64)
        cscale = by_code[codes[0]]
        pred = frame.get_column(self.alias).to_numpy()
        out = [frame.get_column("unique_id"), frame.get_column("ds"), frame.get_column(self.alias)]
        names = level_columns(self.alias, levels)  # lo, hi of each level
        for i, lv in enumerate(levels):
            width = widths[lv][step] * cscale
            out += [pl.Series(names[2 * i], pred - width, nan_to_null=True),
                    pl.Series(names[2 * i + 1], pred + width, nan_to_null=True)]
        return pl.DataFrame(out)

    # ------------------------------------------------------------------ explanations
    def explain(self, h: int, *, history: Any = None, X_future: Any = None, units: str = "y",
                approximate: bool = False) -> Explanation:
        """Exact TreeSHAP of each forecast step's model call (the library's ``pred_contribs``).

        Step ``k``'s row explains the booster call that produced step ``k``; in a recursive
        forecast, features computed from earlier forecasts are flagged in
        ``is_forecast_value`` (a lag ``L`` feature at step ``k > L``). The contributions of every
        step are computed in one batched call per booster after the forecast (Lundberg et al.'s
        TreeSHAP is per row, so batching changes no value): a 48-step explanation costs one
        TreeSHAP call on 48 rows plus the forecast.

        Parameters
        ----------
        h : int
        history, X_future
            As :meth:`predict`.
        units : {"y", "model"}
            ``"y"`` (default): values in the units of ``y``. The booster predicts the
            transformed target ``z``, and ``y = (z - z0) * scale`` is affine for each row,
            so SHAP values scale exactly (``values * scale``) and add up to the forecast itself.
            The model's expected output, mapped to a series' units, is split into one base value
            for the whole model (:meth:`base_value`) and named series terms (its level, the anchor
            a differenced target is added back to, its scale; :func:`~forecasting.explanation.rebase`);
            target-derived feature values are given in units of ``y`` (``lag_12``: the value of
            ``y`` 12 steps earlier), the transformed value beside them. ``"model"``: the booster's
            own units, per-row base values, transformed feature values.
        approximate : bool
            Saabas path attributions (``approx_contribs``; Saabas 2014, as XGBoost computes them)
            instead of exact TreeSHAP: cheaper per tree, additive, but not Shapley values; the
            ``method`` says "approximate".

        Returns
        -------
        forecasting.explanation.Explanation
            ``h`` rows per series (keys ``unique_id, ds, step``).

        Raises
        ------
        InvalidInputError
            ``units`` not ``"y"``/``"model"``; as :meth:`predict`.
        """
        self.check_is_fitted("explain(h)")
        if units not in ("y", "model"):
            msg = f"units must be 'y' or 'model', got {units!r}"
            raise InvalidInputError(msg, field="units")
        h = validate_h(h)
        self._check_hist_exog_horizon(h)
        panel = self._history(history)
        scales, _ = self._scales(panel, history)
        paths, steps = self._paths(panel, h, X_future, scales=scales, collect=True)
        groups = self._groups()
        names = list(self.pipeline_.feature_names)
        approx = approximate and self.library == "xgboost"  # other libraries: their exact values are the fast path
        gi_of = [0 if self.params.strategy == "recursive" else next(i for i, g in enumerate(groups) if st.step in g)
                 for st in steps]
        contrib_rows: dict[int, np.ndarray] = {}
        for gi in sorted(set(gi_of)):  # one batched contribution call per booster
            members = [i for i, g in enumerate(gi_of) if g == gi]
            X = np.concatenate([steps[i].X for i in members])
            contrib_rows[gi] = self._predict_booster(self.boosters_[gi], X, pred_contribs=True,
                                                     **({"approx_contribs": True} if approx else {}))
        offsets = {gi: 0 for gi in contrib_rows}
        values, base, data, output, masks, keys, z0s, scs = [], [], [], [], [], [], [], []
        for st, gi in zip(steps, gi_of, strict=True):
            contrib = contrib_rows[gi][offsets[gi]:offsets[gi] + len(st.X)]
            offsets[gi] += len(st.X)
            # columns: one per booster feature (ours, + horizon_step for grouped direct models), then the bias
            v, b = contrib[:, :len(names)], contrib[:, -1] + contrib[:, len(names):-1].sum(axis=1)
            out = st.output
            if units == "y":
                v, b, out = v * st.scale[:, None], (b - st.z0) * st.scale, (out - st.z0) * st.scale
            values.append(v)
            base.append(b)
            data.append(st.X[:, :len(names)].astype(np.float64))
            output.append(out)
            z0s.append(st.z0)
            scs.append(st.scale)
            mask = (self.pipeline_.forecast_feature_mask(st.step) if self.params.strategy == "recursive"
                    else np.zeros(len(names), dtype=bool))
            masks.append(np.tile(mask, (len(st.X), 1)))
            keys.append(st.keys.with_columns(pl.lit(st.step).alias("step")))
        shap_name = ("approximate Saabas path attributions (xgboost approx_contribs; not Shapley values)"
                     if approx else self.shap_method)
        where = "forecast units of y" if units == "y" else "the model's transformed-target units"
        rows = pl.concat(keys)
        order = rows.with_row_index("_i").sort("unique_id", "step")["_i"].to_numpy()
        model_data = np.concatenate(data)[order]
        e = Explanation(values=np.concatenate(values)[order], base_values=np.concatenate(base)[order],
                        feature_names=names, data=model_data, output=np.concatenate(output)[order], rows=rows[order],
                        method=f"{shap_name}, in {where}", is_forecast_value=np.concatenate(masks)[order],
                        categories=calendar_categories(names))
        if units == "model":
            return e
        anchor = -np.concatenate(z0s)[order] * np.concatenate(scs)[order]
        return self._readable(e, panel, paths, anchor=anchor, scale=np.concatenate(scs)[order])

    def base_value(self) -> float:
        """The model's one base value, units of ``y``: what every explanation of it starts from.

        With a scaled or differenced target: the mean over the training series of each series'
        mean ``y`` (the average level the model was trained on); without: the booster's expected
        output (TreeSHAP's bias). Unchanged by save/load (the training history is stored).
        """
        spec = self.pipeline_.spec
        if spec.scaler == "none" and not spec.differences:
            contrib = self._predict_booster(self.boosters_[0], np.full((1, self._booster_features(self.boosters_[0])),
                                                                       np.nan, dtype=np.float32), pred_contribs=True)
            return float(contrib[0, -1])
        return float(self._levels()["_level"].mean())  # type: ignore[arg-type]

    def _levels(self) -> pl.DataFrame:
        """Each training series' mean ``y`` (``unique_id, _level``), kept with the model (saved in model.json)."""
        if "levels_" not in self.__dict__:  # a folder saved before the levels were kept: its stored history
            self.levels_ = series_levels(self.panel_.frame)
        return self.levels_

    def _readable(self, e: Explanation, panel: Panel, paths: pl.DataFrame, *, anchor: np.ndarray,
                  scale: np.ndarray) -> Explanation:
        """``e`` (units of ``y``) with one base value, named series terms and feature values in units of ``y``."""
        spec = self.pipeline_.spec
        uids = e.rows["unique_id"]
        raw, transformed = self._raw_feature_values(panel, paths, e)
        e = replace(e, data=raw, data_transformed=transformed)
        if spec.scaler == "none" and not spec.differences:
            if np.ptp(e.base_values) == 0 if e.n_rows else True:
                return e
            return rebase(e, self.base_value(), [], last=("this step's model (direct strategy): its bias",
                                                          np.full(e.n_rows, np.nan)))
        levels = self._levels() if panel is self.panel_ else series_levels(panel.frame)
        level = (pl.DataFrame({"unique_id": uids}).join(levels, on="unique_id", how="left", maintain_order="left")
                 ["_level"].to_numpy().astype(np.float64))
        b0 = self.base_value()
        terms = [("series level (mean of its history)", level - b0, level)]
        if spec.differences:
            d = spec.differences
            if len(d) == 1:
                kind = "seasonal anchor" if d[0] == self.season_length and d[0] > 1 else "anchor"
                name = f"{kind}: value {d[0]} step{'s' if d[0] > 1 else ''} earlier"
            else:
                name = f"anchor: the differences {d} added back (values of y before the step)"
            terms.append((f"{name}, minus the level", anchor - level, anchor))
            last = ("average change per step (model bias × series scale)", scale)
        else:
            last = ("model bias × series scale", scale)
        out = rebase(e, b0, terms, last=last)
        if spec.differences and out.is_forecast_value is not None and self.params.strategy == "recursive":
            # beyond the nearest difference, the anchor is one of the model's own earlier forecasts
            j = out.feature_names.index(terms[-1][0])
            out.is_forecast_value[:, j] = out.rows["step"].to_numpy() > min(spec.differences)
        return out

    def _raw_feature_values(self, panel: Panel, paths: pl.DataFrame,
                            e: Explanation) -> tuple[np.ndarray, np.ndarray | None]:
        """Target-derived features recomputed on ``y`` itself (history + the forecast path): (data, transformed).

        ``data``: ``e.data`` with the target-derived columns in units of ``y``; ``transformed``:
        the model's values of those columns (NaN elsewhere), or None when the target is not transformed.
        """
        pipe = self.pipeline_
        spec = pipe.spec
        if spec.scaler == "none" and not spec.differences:
            return e.data, None
        raw_spec = FeatureSpec(lags=spec.lags, rolling=spec.rolling, expanding_mean_lags=spec.expanding_mean_lags)
        raw_pipe = FeaturePipeline(spec=raw_spec, freq=pipe.freq, tz=pipe.tz, ds_kind=pipe.ds_kind,
                                   feature_names=FeaturePipeline._names(raw_spec)[0])
        hist = panel.frame.select("unique_id", "ds", pl.col("y").cast(pl.Float64), pl.lit(None, dtype=pl.Int64)
                                  .alias("_step"))
        fut = paths.select("unique_id", "ds", pl.col("_pred").alias("y"),
                           pl.int_range(1, pl.len() + 1).over("unique_id").cast(pl.Int64).alias("_step"))
        frame = pl.concat([hist, fut], how="vertical_relaxed").sort("unique_id", "ds")
        unit = pl.DataFrame({"unique_id": frame["unique_id"].unique()}).with_columns(
            pl.lit(0.0).alias(SCALE_MEAN), pl.lit(1.0).alias(SCALE_STD))
        out = raw_pipe.transform(frame, scales=unit).filter(pl.col("_step").is_not_null()).sort("unique_id", "_step")
        if self.params.strategy == "direct":  # every step reads the origin's features
            out = out.with_columns(pl.col(c).first().over("unique_id") for c in raw_pipe.feature_names)
        step_rows = e.rows.select("unique_id", "step").with_row_index("_i")
        out = step_rows.join(out, left_on=["unique_id", "step"], right_on=["unique_id", "_step"], how="left",
                             maintain_order="left")
        data = e.data.copy()
        transformed = np.full_like(data, np.nan)
        for c in raw_pipe.feature_names:
            j = pipe.feature_names.index(c)
            transformed[:, j] = data[:, j]
            data[:, j] = out[c].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        return data, transformed

    def global_importance(self, data: Panel | Any | None = None, *, max_rows: int = 10_000, seed: int = 0) -> pl.DataFrame:
        """Mean |SHAP| per feature over training-style rows of ``data`` (default: the training series).

        Rows are sampled down to ``max_rows`` (seeded). Values are in units of ``y``
        (each row's SHAP values times its series' scale).

        Returns
        -------
        pl.DataFrame
            ``feature, mean_abs_shap`` (largest first).
        """
        self.check_is_fitted("global_importance()")
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            msg = f"max_rows must be an integer >= 1, got {max_rows!r}"
            raise InvalidParameterError(msg, field="max_rows")
        panel = self._history(data)
        pipe = self.pipeline_
        scales, _ = self._scales(panel, data)
        rows = pipe.training_rows(pipe.transform(panel.frame, scales=scales, static=self.static_))
        if rows.height > max_rows:
            rows = rows.sample(n=max_rows, seed=seed)
        X = pipe.matrix(rows)
        booster = self.boosters_[0]
        if len(booster.feature_names or []) > X.shape[1]:  # grouped direct model: the first step
            X = np.column_stack([X, np.ones(len(X), dtype=np.float32)])
        contrib = self._predict_booster(booster, X, pred_contribs=True)[:, :len(pipe.feature_names)]
        contrib = contrib * rows[SCALE_STD].to_numpy()[:, None]
        return pl.DataFrame({"feature": pipe.feature_names, "mean_abs_shap": np.abs(contrib).mean(axis=0)}).sort(
            "mean_abs_shap", descending=True)

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model folder: ``booster_<i>.<booster_suffix>`` (the library's format), ``pipeline.json``,
        ``model.json`` (params, per-series state, conformal scores) and ``history.parquet``
        (each series' last lookback rows). Files are written to a temporary folder and
        renamed into place."""
        if not self.is_fitted:
            msg = f"model '{self.name}' is not fitted: nothing to save"
            raise NotFittedError(msg)
        if self.fallbacks_ or self.static_ is not None:
            msg = (
                f"saving an {self.name} model with fallbacks or static features is not supported "
                f"yet"
            )
            raise CapabilityError(msg, field="model")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        for i, b in enumerate(self.boosters_):
            self._write_booster(b, tmp / f"booster_{i}.{self.booster_suffix}")
        (tmp / "pipeline.json").write_bytes(self.pipeline_.to_json())
        hist = self.panel_.frame
        if not self.pipeline_.spec.expanding_mean_lags:  # an expanding mean needs the whole history
            keep = self.pipeline_.lookback + 1
            hist = hist.filter(pl.int_range(pl.len()).over("unique_id") >= pl.len().over("unique_id").cast(pl.Int64) - keep)
        hist.write_parquet(tmp / "history.parquet")
        meta = {"format_version": FORMAT_VERSION, "model": self.name, "params": self.get_params(), "alias": self.alias,
                "panel": self._panel_meta(),
                "scales": self.scales_.to_dict(as_series=False), "cscales": self.cscales_.to_dict(as_series=False),
                "levels": self._levels().to_dict(as_series=False),
                "conformal_scores": None if self.scores_ is None else self.scores_.tolist(),
                "n_boosters": len(self.boosters_), "device_trained": self.device_,
                "horizon": self.calibrated_horizon, "notes": list(self.notes_)}
        # every other file's sha256 is recorded, and checked on load: a changed byte is refused, never loaded
        return seal(tmp, target, meta)

    @classmethod
    def _restore(cls, folder: Path, meta: dict[str, Any], *, device: str = "cpu") -> Self:
        """Everything but the boosters, from a verified ``model.json`` and its folder (no tree library import)."""
        params = {k: v for k, v in meta["params"].items() if v is not None}
        model = cls(**{**params, "device": device, "alias": meta["alias"]})
        model.pipeline_ = FeaturePipeline.from_json((folder / "pipeline.json").read_bytes())
        model.horizon_ = int(meta.get("horizon") or model.trained_horizon)
        model.notes_ = [str(n) for n in meta.get("notes") or []]
        model.panel_ = cls._stored_panel(folder, meta["panel"])
        model.scales_ = pl.DataFrame(meta["scales"])
        model.cscales_ = pl.DataFrame(meta["cscales"])
        if meta.get("levels"):
            model.levels_ = pl.DataFrame(meta["levels"], schema={"unique_id": pl.Utf8, "_level": pl.Float64})
        raw = meta["conformal_scores"]
        if raw is None:
            model.scores_ = None
        elif isinstance(raw, list) and not raw:  # no series was long enough to calibrate: (0, horizon)
            model.scores_ = np.zeros((0, model.calibrated_horizon))
        else:
            model.scores_ = np.asarray(raw, dtype=np.float64)
        if model.scores_ is not None and (model.scores_.ndim != 2 or not np.isfinite(model.scores_).all()
                                          or (model.scores_ < 0).any()):
            msg = (
                f"model folder '{folder}': conformal scores are not finite non-negative "
                f"numbers"
            )
            raise InvalidInputError(msg, field="model")
        model.static_ = None
        model.fallbacks_ = []
        model.device_ = device
        return model

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "cpu") -> Self:
        """Load a folder written by :meth:`save` (on the CPU by default, whatever it was trained on).

        Every file's sha256 is checked against ``model.json`` and the parameters are
        validated as a spec would be.

        Raises
        ------
        InvalidInputError
            A folder that is not a model of this kind, is incomplete, or whose files changed
            (naming the file and the problem).
        """
        folder = Path(path)
        damaged: tuple[type[Exception], ...] = (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError, *cls._library_errors(),
                   pl.exceptions.PolarsError, msgspec.ValidationError)
        try:
            meta = json.loads((folder / "model.json").read_text())
            if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION or meta.get("model") != cls.name:
                msg = f"'{folder}' is not an {cls.name} model folder of format {FORMAT_VERSION}"
                raise InvalidInputError(msg,
                                        field="model")
            verify(folder, meta, required=["pipeline.json", "history.parquet"])
            files: dict[str, str] = meta["files"]
            n_boosters = int(meta["n_boosters"])
            if not 1 <= n_boosters <= len([f for f in files if f.startswith("booster_")]):
                msg = f"model folder '{folder}': n_boosters {n_boosters} does not match its files"
                raise InvalidInputError(msg,
                                        field="model")
            model = cls._restore(folder, meta, device=device)
            model.boosters_ = []
            for i in range(n_boosters):
                model.boosters_.append(cls._read_booster(folder / f"booster_{i}.{cls.booster_suffix}",
                                                         resolve_device(device)))
        except ForecastingError as exc:
            if isinstance(exc, InvalidInputError):
                raise
            msg = f"model folder '{folder}' is damaged: {exc.message}"
            raise InvalidInputError(msg, field="model") from exc
        except damaged as exc:
            msg = f"model folder '{folder}' is damaged or incomplete: {type(exc).__name__}: {exc}"
            raise InvalidInputError(msg,
                                    field="model") from exc
        model.static_ = None
        model.fallbacks_ = []
        model.device_ = resolve_device(device)
        return model


def _series_codes(uid: pl.Series) -> tuple[tuple[np.ndarray, list[str]], np.ndarray]:
    """Each row's series and its position in it: ``((codes, ids), step)``: ``ids[codes[i]]`` is row ``i``'s
    ``unique_id`` and ``step[i]`` the number of earlier rows of that series (``int_range().over("unique_id")``)."""
    values = uid.to_numpy()
    if len(values) == 0:
        return (np.zeros(0, dtype=np.int64), []), np.zeros(0, dtype=np.int64)
    ids, codes = np.unique(values, return_inverse=True)
    order = np.argsort(codes, kind="stable")
    first = np.searchsorted(codes[order], np.arange(len(ids)))
    step = np.empty(len(values), dtype=np.int64)
    step[order] = np.arange(len(values)) - first[codes[order]]
    return (codes, [str(u) for u in ids]), step


def series_levels(frame: pl.DataFrame) -> pl.DataFrame:
    """Each series' mean ``y``: ``unique_id, _level`` (Float64, units of ``y``)."""
    return frame.group_by("unique_id", maintain_order=True).agg(pl.col("y").cast(pl.Float64).mean().alias("_level"))


def widen_beyond(widths: dict[float, np.ndarray], h: int) -> dict[float, np.ndarray]:
    """Band half-widths calibrated for ``H`` steps extended to ``h > H`` steps: step ``k > H`` gets step ``H``'s
    width times ``sqrt(k / H)``, as a random walk's forecast error grows (the naive method's bands, Hyndman &
    Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed., section 5.5). Not calibrated: used where the
    history is too short to hold out windows of ``h`` steps (the model's note says so).

    Parameters
    ----------
    widths : dict of level to array of shape (H,)
        :func:`interval_widths`' answer.
    h : int
        Steps wanted (``>= H``).

    Returns
    -------
    dict of level to array of shape (h,)

    Examples
    --------
    >>> [round(float(x), 3) for x in widen_beyond({80: np.array([1.0, 2.0])}, 4)[80]]
    [1.0, 2.0, 2.449, 2.828]
    """
    out = {}
    for lv, w in widths.items():
        k = np.arange(w.size + 1, h + 1, dtype=np.float64)
        out[lv] = np.concatenate([w, w[-1] * np.sqrt(k / w.size)])
    return out


def interval_widths(scores: np.ndarray, levels: Sequence[float]) -> dict[float, np.ndarray]:
    """Half-widths of the bands per level, in units of each series' conformal scale.

    Parameters
    ----------
    scores : array of shape (n, horizon)
        Normalised absolute errors of held-out forecasts (``n`` >= 1).
    levels : sequence of numbers in (0, 100)

    Returns
    -------
    dict of level to array of shape (horizon,)
        The split-conformal quantile, rank ``ceil((n + 1) level / 100)`` of the sorted errors per step
        (Vovk et al. 2005), when ``n`` is enough for every level asked; otherwise, for every level,
        ``z_((1 + level) / 2) * sqrt(mean(error^2))`` per step (a normal approximation of the errors:
        the conformal rank would exceed ``n``, and clipping it to ``n`` gives two levels the same band).
        Widths never decrease with the level.

    Examples
    --------
    >>> w = interval_widths(np.array([[1.0], [2.0], [3.0], [4.0]]), [80, 95])  # 4 errors: too few for 95%
    >>> [round(float(w[lv][0]), 3) for lv in (80, 95)]  # rms sqrt(30 / 4) = 2.739 times z 1.2816 and 1.96
    [3.51, 5.368]
    >>> w = interval_widths(np.arange(1.0, 41.0)[:, None], [80, 95])  # 40 errors: conformal ranks 33 and 39
    >>> [float(w[lv][0]) for lv in (80, 95)]
    [33.0, 39.0]
    """
    from statistics import NormalDist

    n = scores.shape[0]
    ordered = np.sort(scores, axis=0)
    if all(math.ceil((n + 1) * lv / 100) <= n for lv in levels):
        out = {lv: ordered[math.ceil((n + 1) * lv / 100) - 1] for lv in levels}
    else:
        rms = np.sqrt(np.mean(np.square(scores), axis=0))
        out = {lv: NormalDist().inv_cdf(0.5 + lv / 200) * rms for lv in levels}
    widest = np.zeros(scores.shape[1])
    for lv in sorted(levels):  # nested bands, whatever the errors
        widest = np.maximum(widest, out[lv])
        out[lv] = widest
    return out


def _compact(values: Sequence[int]) -> str:
    """``[1, 2, 3, 5, 52]`` -> ``"1-3, 5, 52"``."""
    parts: list[str] = []
    for v in values:
        if parts and v == int(parts[-1].split("-")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{v}"
        else:
            parts.append(str(v))
    return ", ".join(parts)


def _describe_features(spec: FeatureSpec, panel: Panel) -> str:
    """The note that says which default features were derived for ``panel``."""
    lookback = FeaturePipeline(spec=spec, freq=panel.freq).lookback
    typical = typical_length([n for n in panel.lengths.values() if n > lookback])  # of the series kept
    windows = ", ".join(f"{r.season_length}x{r.window}" if r.season_length else str(r.window) for r in spec.rolling)
    return (f"default features for this data: lags {_compact(spec.lags)}, rolling windows {windows or 'none'}, "
            f"differences {spec.differences}{', calendar ' + ', '.join(spec.calendar) if spec.calendar else ''} "
            f"(lookback {lookback} steps, sized for the lower-decile length {typical} of the series kept; shorter series "
            f"(under {lookback + 1} observations) go to the fallback, if any)")


def tree_class(name: str) -> type[TreeForecaster[Any]] | None:
    """The registered tree adapter called ``name`` (None for any other name): the registry is the one table."""
    from forecasting.models.registry import REGISTRY

    entry = REGISTRY.get(name)
    if entry is None or entry.family != "machine-learning":
        return None
    cls = entry.load()
    return cls if issubclass(cls, TreeForecaster) else None


def _check_finite_target(rows: pl.DataFrame, model: str) -> None:
    """Refuse training rows whose transformed target is not finite (``y`` so large that scaling or
    differencing overflows float64), naming the series and the first rows: the booster library would
    fail on them with its own error.

    Raises
    ------
    InvalidInputError
        ``model 'xgboost': y too large to train on in N series ...``.
    """
    bad = rows.filter(~pl.col(TARGET).is_finite())
    if bad.height == 0:
        return
    series = bad["unique_id"].unique(maintain_order=True).to_list()
    listed = ", ".join(f"'{u}'" for u in series[:5]) + (f" and {len(series) - 5} more" if len(series) > 5 else "")
    first = bad.select("unique_id", "ds").head(3).with_columns(pl.col("ds").cast(pl.String)).rows()
    msg = (f"model '{model}': y too large to train on in {len(series)} series ({listed}): its scaled or differenced "
           f"value overflows (not finite) at {bad.height} rows, first {first}; rescale y (e.g. divide by a power of "
           f"10) or choose a statistical model")
    raise InvalidInputError(msg, field="data.y", details={"series": series[:100], "rows": bad.height})
