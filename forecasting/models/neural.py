"""The base of the deep forecasters trained by neuralforecast (NHITS: :mod:`forecasting.models.nhits`,
TFT: :mod:`forecasting.models.tft`, TSMixer: :mod:`forecasting.models.tsmixer`); an adapter only builds its
network (``_build_net``).

They are trained by neuralforecast (``NeuralForecast.fit``: its window sampling, optimiser
and early stopping), as global models over every series, with a multi-quantile loss
(``MQLoss``) at the spec's ``level``s: the point forecast is the median.

Forecasting does *not* go back through ``NeuralForecast.predict``: one small torch module
(:func:`~forecasting.models.network_core.NetworkCore`) takes a window of raw values (``temporal``: ``y`` and the temporal
exogenous columns over ``input_size + horizon`` steps, plus the availability mask) and
returns the quantiles in the units of ``y``. It calls the network's own window
normalisation, forward pass and inverse normalisation, so it equals neuralforecast's
predictions (a test checks it), and the same module is what SHAP/integrated gradients
differentiate and what the ONNX export traces (scaling included, so no statistics live
outside the graph).

Calendar inputs (hour of day, day of week, ...) and the future-known, historic and static
exogenous columns come from :class:`forecasting.features.FeaturePipeline`, the pipeline of
the XGBoost forecaster. neuralforecast, torch and Lightning are imported only when a
neural model is fitted or loaded.
"""

from __future__ import annotations

import dataclasses

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from dataclasses import replace
from typing import Any, ClassVar, Self, TypeVar

import msgspec
import numpy as np
import polars as pl

from forecasting.data import Panel, future_frame, to_caller_tz, validate_future, validate_h
from forecasting.errors import (
    CapabilityError,
    ForecastingError,
    InvalidInputError,
    InvalidParameterError,
    NotFittedError,
    TimeLimitError,
)
from forecasting.explanation import Explanation, calendar_categories, rebase
from forecasting.features import FeaturePipeline, FeatureSpec
from forecasting.artifacts import seal, verify
from forecasting.models.base import Capabilities, as_panel, split_short
from forecasting.models.global_base import GLOBAL_CAPABILITIES, GlobalForecaster, calendar_inputs, check_exog_values
from forecasting.models.network_core import (
    MIN_LOG_VALUE,
    SCALE_COLUMN,
    SCALE_FLOOR,
    NetworkCore,
    callback_error,
    callback_stop,
    check_complete,
    check_range,
    check_target,
    guard_scaler,
    quantile_of,
    quiet,
    rearrange_quantiles,
    series_scales,
    torch_device,
    training_callback,
    transform_target,
    window_spread,
)
from forecasting.models.registry import REGISTRY, NeuralParams, default_season_length

__all__ = ["NeuralForecaster", "gather_sampled_windows", "network_class"]

log = logging.getLogger(__name__)
FORMAT_VERSION = 2  # 2: the series' reference scales (scales.parquet) and the effective settings (issue 13)
#: default training steps (a ceiling when early stopping is on), windows per step and the early-stopping patience,
#: in validation checks of ``val_check_steps``; see NeuralForecaster._derive (an adapter may set its own steps and
#: windows: NHITSForecaster)
DEFAULT_MAX_STEPS = 1000
DEFAULT_WINDOWS_BATCH_SIZE = 1024
DEFAULT_PATIENCE = 5
_EPS_PATH = 1e-3  # explanation baselines: this fraction of the way from the flat window to the input
NP = TypeVar("NP", bound=NeuralParams)


class NeuralForecaster(GlobalForecaster[NP]):
    """Base of the neuralforecast adapters (``nhits``, ``tft``, ``tsmixer``).

    Every setting left unset is derived from the data at ``fit`` (:meth:`_derive`; the
    effective values are ``settings_``, saved with the model, and ``notes_`` says what
    was chosen), so that the defaults fit any frequency and history length.

    Parameters
    ----------
    season_length : int
        Steps per season; drives the defaults of ``horizon`` and ``input_size``.
    horizon : int, optional
        Steps the network outputs at once (neuralforecast's ``h``); default two seasons
        (M4 Hourly: 48), at least 14 for non-seasonal data (the service passes the
        request's ``h``). Longer forecasts are made recursively in blocks of ``horizon``
        steps, feeding the median back.
    input_size : int, optional
        Steps of history each forecast reads. Default ``max(2 * horizon, 7 * season_length,
        3 * longest season)`` (the longest season of the frequency: hourly data 168, so 504),
        capped at 1024 and by the shortest series (``input_size + horizon`` observations,
        plus ``horizon`` for validation, must fit in every series); at least
        ``max(4, min(horizon, 2 * season_length))``.
    max_steps : int, optional
        Training steps; default the adapter's ``default_max_steps`` (1000; ``nhits``: 3000), a
        ceiling when early stopping is on.
    windows_batch_size : int, optional
        Training windows per step; default the adapter's ``default_windows_batch_size``
        (1024, neuralforecast's; ``nhits``: 256). A step copies only the windows it samples
        (:func:`gather_sampled_windows`), so its cost follows this number.
    early_stop_patience_steps : int, optional
        Validation checks without improvement before training stops (neuralforecast's);
        default 5 when every series has room for a validation block of ``horizon`` steps
        after its training windows, else off (-1). The validation block is the last
        ``horizon`` steps of each series.
    time_limit : float, optional
        Seconds of training: past them training stops *with* the network trained so far
        and a note (``notes_``). The service's deadline (``model.deadline``, :func:`arm`) is
        different: a hard limit, past which fitting fails with ``TimeLimitError``.
    batch_size, learning_rate, num_lr_decays, val_check_steps, scaler_type,
    random_seed : neuralforecast's training settings.
    level : list of numbers in (0, 100)
        Interval levels trained into the quantile loss (``MQLoss(level=...)``); ``predict``
        accepts any subset of them.
    hist_exog : list of str
        Exogenous columns known only up to the forecast origin (the rest are future-known).
    calendar : list of str, optional
        Calendar inputs (future-known, from ``ds`` on the caller's clock); default by
        frequency (hourly: ``hour``, ``dayofweek``); ``[]`` for none.
    device : {"auto", "cpu", "cuda"}
        ``auto``: a GPU when torch sees one. Forecasts always run where the weights are.
    target_transform : {"auto", "log", "log1p"} or None
        ``log``: train on ``log(y)`` (every ``y`` must be > 0) and exponentiate the quantiles
        back (quantiles commute with monotone maps, so they stay quantiles of ``y``); the log
        transform of ES-RNN (Smyl 2020, the M4 winner), for positive series with
        multiplicative seasonality or level-dependent noise. ``log1p``: ``log(1 + y)`` for
        non-negative data with zeros (forecasts never below 0). ``auto`` (default): ``log``
        when every training ``y`` is > 0, ``log1p`` when they are >= 0 with zeros, none
        otherwise. ``None``: no transform. On M4 Hourly the log took NHITS from OWA 0.487
        to 0.427 (README).

    Notes
    -----
    Every network is trained and run on ``y`` (transformed) divided by the series'
    reference scale (:func:`~forecasting.models.network_core.series_scales`), with each
    window's scale floored at a tenth of it
    (:func:`~forecasting.models.network_core.guard_scaler`): nearly flat windows (a stuck,
    quantised sensor) otherwise get a tiny scale and forecasts far off the series.
    """

    capabilities: ClassVar[Capabilities] = replace(GLOBAL_CAPABILITIES, reports_progress=True)
    #: ``max_steps`` and ``windows_batch_size`` when unset (an adapter's own; see :meth:`_derive`)
    default_max_steps: ClassVar[int] = DEFAULT_MAX_STEPS
    default_windows_batch_size: ClassVar[int] = DEFAULT_WINDOWS_BATCH_SIZE
    fitted_attribute: ClassVar[str] = "net_"
    net_: Any  # the trained network (torch module; an ONNX session in forecasting.runtime)
    temporal_cols_: list[str]
    static_cols_: list[str]
    static_: pl.DataFrame | None
    settings_: NP  # the effective parameters: every derived default filled in (set by fit and load)
    scales_: pl.DataFrame  # unique_id, series_scale: each training series' reference scale

    # ------------------------------------------------------------------ params
    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as given (JSON-serialisable); whole-number levels as integers (``[80, 95]``).
        The values derived from the data are in ``settings_``."""
        return {**super().get_params(), "level": self.level}

    @property
    def _p(self) -> NP:
        """The effective parameters once fitted (``settings_``), the given ones before."""
        settings: NP | None = self.__dict__.get("settings_")
        return settings if settings is not None else self.params

    @property
    def level(self) -> list[float | int]:
        """The trained interval levels, whole numbers as integers (they name the outputs: ``-lo-80``)."""
        return [float(v) if not float(v).is_integer() else int(v) for v in self.params.level]

    @property
    def season_length(self) -> int:
        """Steps per season (1 when unset)."""
        return self.params.season_length or 1

    @property
    def horizon_param(self) -> int | None:
        """The ``horizon`` parameter as given."""
        return self.params.horizon

    @property
    def _floor_input(self) -> int:
        """The shortest default ``input_size``: ``max(4, min(horizon, 2 * season_length))``."""
        return max(4, min(self.trained_horizon, 2 * self.season_length))

    @property
    def window(self) -> int:
        """Steps of history each forecast reads (``input_size``; before ``fit``, the given one or the
        shortest default)."""
        return self._p.input_size or self._floor_input

    @property
    def min_train_length(self) -> int:
        """Observations a series needs: one full training window (``input_size + horizon``), plus the
        ``horizon`` held out for validation when early stopping is on."""
        val = self.trained_horizon if (self._p.early_stop_patience_steps or -1) > 0 else 0
        return self.window + self.trained_horizon + val

    def _derive(self, panel: Panel) -> tuple[NP, list[str]]:
        """The effective parameters for ``panel`` (every unset default derived) and a note saying what was derived.

        ``input_size``, the early stopping and ``target_transform="auto"`` follow the
        rules in the class docstring; ``max_steps`` and ``windows_batch_size`` default to the
        adapter's ``default_max_steps`` and ``default_windows_batch_size``. Adapters add
        their own (:meth:`_derive_architecture`).

        Raises
        ------
        InvalidInputError
            ``target_transform`` ``log``/``log1p`` on data it cannot take (:func:`check_target`).
        """
        p = self.params
        H, m = self.trained_horizon, self.season_length
        longest = self._longest_season(panel)
        shortest = min(panel.lengths.values())
        derived: dict[str, Any] = {}
        patience = p.early_stop_patience_steps
        if p.input_size is None:
            preferred = min(1024, max(2 * H, 7 * m, 3 * longest))
            with_val = min(preferred, shortest - 2 * H)
            if patience is None and with_val >= max(self._floor_input, preferred // 2):
                derived["input_size"] = with_val
            else:
                room = shortest - H - (H if (patience or -1) > 0 else 0)
                derived["input_size"] = max(self._floor_input, min(preferred, room))
        if patience is None:
            L: int = derived.get("input_size") or p.input_size or self._floor_input
            patience = DEFAULT_PATIENCE if shortest >= L + 2 * H else -1
            derived["early_stop_patience_steps"] = patience
        if p.max_steps is None:
            derived["max_steps"] = self.default_max_steps
        if p.windows_batch_size is None:
            derived["windows_batch_size"] = self.default_windows_batch_size
        target = p.target_transform
        if target == "auto":
            low = float(panel.frame["y"].min())  # type: ignore[arg-type]
            target = "log" if low >= MIN_LOG_VALUE else "log1p" if low >= 0 else None
            derived["target_transform"] = target
        else:
            check_target(panel.frame, target, where="data")
        settings = msgspec.structs.replace(self.params, **derived)
        extra = self._derive_architecture(settings, panel)
        if extra:
            derived.update(extra)
            settings = msgspec.structs.replace(settings, **extra)
        said = ", ".join(f"{k}={v}" for k, v in derived.items() if k != "early_stop_patience_steps")
        stop = (f"early stopping on the last {H} steps of each series (patience {patience} checks of "
                f"{p.val_check_steps} steps)" if patience > 0 else "no early stopping (the shortest series has no room "
                                                                     "for a validation block)"
                if "early_stop_patience_steps" in derived else "")
        notes = [f"{self.name}: {', '.join(x for x in (said, stop) if x)} (derived from the data: horizon {H}, "
                 f"season {m}, shortest series {shortest} observations)"] if derived else []
        return settings, notes

    def _derive_architecture(self, settings: NP, panel: Panel) -> dict[str, Any]:
        """An adapter's own derived settings, given the shared ones (``settings``): ``{name: value}``."""
        return {}

    def _longest_season(self, panel: Panel) -> int:
        """The longest season of the data: the frequency's longest conventional period when ``season_length``
        is one of its periods (hourly data, season 24: 168), else ``season_length``."""
        m = self.season_length
        seasons = default_season_length(panel.freq, multiple=True)
        return max([m, *(seasons if isinstance(seasons, list) and m in seasons else [])])

    def _loss(self) -> Any:
        from neuralforecast.losses.pytorch import MQLoss

        return MQLoss(level=list(self.level))

    def _training_settings(self) -> dict[str, Any]:
        """neuralforecast's training settings, shared by every network (its own parameter names)."""
        p = self._p
        return {"max_steps": p.max_steps or self.default_max_steps, "learning_rate": p.learning_rate,
                "num_lr_decays": p.num_lr_decays,
                "early_stop_patience_steps": -1 if p.early_stop_patience_steps is None else p.early_stop_patience_steps,
                "val_check_steps": p.val_check_steps, "batch_size": p.batch_size,
                "windows_batch_size": p.windows_batch_size or self.default_windows_batch_size,
                "scaler_type": p.scaler_type, "random_seed": p.random_seed}

    def _build_net(self, futr: list[str], hist: list[str], stat: list[str], trainer: dict[str, Any]) -> Any:
        """The untrained network (``futr``/``hist``/``stat``: its exogenous columns; ``trainer``: Lightning's
        settings), built with :meth:`_loss` and :meth:`_training_settings`."""
        raise NotImplementedError

    # ------------------------------------------------------------------ fit
    def _split_exog(self, panel: Panel, static: pl.DataFrame | None) -> tuple[list[str], list[str], list[str]]:
        unknown = [c for c in self.params.hist_exog if c not in panel.exog]
        if unknown:
            msg = (
                f"hist_exog columns {unknown} are not in the data (exogenous columns: "
                f"{list(panel.exog) or 'none'})"
            )
            raise InvalidInputError(msg, field="data")
        futr = [c for c in panel.exog if c not in self.params.hist_exog]
        stat: list[str] = []
        if static is not None:
            static = static if isinstance(static, pl.DataFrame) else pl.DataFrame(static)
            if "unique_id" not in static.columns:
                msg = "the static frame needs a unique_id column"
                raise InvalidInputError(msg, field="static")
            stat = [c for c in static.columns if c != "unique_id"]
            bad = [c for c in stat if not static.schema[c].is_numeric()]
            if bad:
                msg = f"static columns {bad} are not numeric; encode them as numbers first"
                raise InvalidInputError(msg,
                                        field="static")
            check_exog_values(static.with_columns(pl.lit(0).alias("ds")), stat, where="static")
            check_complete(static.with_columns(pl.lit(0).alias("ds")), stat, where="static")
            missing = sorted(set(panel.lengths) - set(static["unique_id"].cast(pl.String).to_list()))
            if missing:
                msg = (
                    f"the static frame has no row for series {missing[:5]}"
                    f"{' ...' if len(missing) > 5 else ''}"
                )
                raise InvalidInputError(msg, field="static")
        return futr, list(self.params.hist_exog), stat

    def fit(self, panel: Panel | Any, *, static: pl.DataFrame | None = None) -> Self:
        """Train the network on every series (global model).

        Raises
        ------
        InsufficientHistoryError
            Series shorter than ``input_size + horizon``, naming each (unless a
            ``fallback`` model is given).
        InvalidInputError
            Exogenous or static columns that are missing or not finite; ``y`` that the
            ``target_transform`` cannot take (naming the series).
        ModelFitError
            The training loss became NaN.
        TimeLimitError
            The caller's ``deadline`` passed (``time_limit`` stops training without an error).
        """
        panel = as_panel(panel)
        futr, hist, stat = self._split_exog(panel, static)
        check_exog_values(panel.frame, list(panel.exog), where="data")
        check_complete(panel.frame, list(panel.exog), where="data")
        check_range(panel.frame, ["y", *panel.exog], where="data")
        calendar = calendar_inputs(panel, self.params.calendar)
        spec = FeatureSpec(calendar=calendar, future_exog=futr, static=stat)  # type: ignore[arg-type]
        pipeline = FeaturePipeline(spec=spec, freq=panel.freq, tz=panel.tz, ds_kind=panel.ds_kind,
                                   feature_names=[*calendar, *stat, *futr])
        pipeline.check_panel(panel)
        self.__dict__.pop("settings_", None)
        settings, notes = self._derive(panel)
        self.settings_ = settings
        val = f" + validation {self.trained_horizon}" if (settings.early_stop_patience_steps or -1) > 0 else ""
        derived = "" if self.params.input_size is not None else (
            " (the smallest input_size derived: a longer shortest series gets a longer input_size)")
        panel = split_short(self, panel, self.min_train_length,
                            f"input_size {self.window} + horizon {self.trained_horizon}{val}{derived}")
        self.pipeline_ = pipeline
        self.futr_cols_ = [*calendar, *futr]
        self.hist_cols_ = hist
        self.static_cols_ = stat
        self.static_ = None if static is None else (static if isinstance(static, pl.DataFrame)
                                                    else pl.DataFrame(static)).with_columns(
            pl.col("unique_id").cast(pl.String)).select("unique_id", *stat)
        frame = self._transformed(self._temporal_frame(panel.frame))
        self.scales_ = series_scales(frame, self.window)
        # the network learns y (transformed) in units of each series' reference scale (see guard_scaler)
        frame = (frame.with_columns(pl.col("unique_id").cast(pl.String))
                 .join(self.scales_, on="unique_id", how="left", maintain_order="left")
                 .with_columns(pl.col("y") / pl.col(SCALE_COLUMN)).drop(SCALE_COLUMN))
        self.notes_ = notes
        self.device_ = torch_device(self.params.device)
        self.net_ = self._train(frame)
        self.panel_ = panel
        return self

    def _transformed(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with ``y`` in the units the network learns: ``log(y)``, ``log(1 + y)`` or as is."""
        target = self._p.target_transform
        if target == "log":
            return frame.with_columns(pl.col("y").log())
        if target == "log1p":
            return frame.with_columns(pl.col("y").log1p())
        return frame

    def _temporal_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``unique_id, ds, y`` + the network's temporal columns (calendar from the feature pipeline)."""
        pipe = self.pipeline_
        if pipe.spec.calendar:
            scales = pl.DataFrame({"unique_id": frame["unique_id"].unique(maintain_order=True)}).with_columns(
                pl.lit(0.0).alias("_scale_loc"), pl.lit(1.0).alias("_scale_scale"))
            spec_cal = FeaturePipeline(spec=FeatureSpec(calendar=pipe.spec.calendar), freq=pipe.freq, tz=pipe.tz,
                                       ds_kind=pipe.ds_kind, feature_names=list(pipe.spec.calendar))
            frame = spec_cal.transform(frame, scales=scales)
        cols = [*self.futr_cols_, *self.hist_cols_]
        return frame.select("unique_id", "ds", pl.col("y").cast(pl.Float64),
                            *[pl.col(c).cast(pl.Float64) for c in cols])

    def _train(self, frame: pl.DataFrame) -> Any:
        import torch
        from neuralforecast import NeuralForecast

        settings = self._training_settings()
        started = time.time()
        budget = self._p.time_limit
        callback = training_callback(self.name, settings["max_steps"], deadline=self.deadline, progress=self.progress,
                                     budget_end=None if budget is None else started + budget)
        accelerator = "cpu" if self.device_ == "cpu" else "gpu"
        devices: Any = [int(self.device_[5:])] if self.device_.startswith("cuda:") else 1
        with tempfile.TemporaryDirectory(prefix="forecasting-nf-") as root, quiet():
            trainer = {"accelerator": accelerator, "devices": devices, "logger": False, "enable_checkpointing": False,
                       "enable_progress_bar": False, "enable_model_summary": False, "default_root_dir": root,
                       "callbacks": [callback]}
            net = self._build_net(self.futr_cols_, self.hist_cols_, self.static_cols_, trainer)
            guard_scaler(net)  # the same floor on each window's scale as the forecasting core applies
            gather_sampled_windows(net)  # a step's cost follows its windows_batch_size, not its series' history
            # neuralforecast sees integer steps: the grid is already checked, and univariate windows need
            # no absolute time (the calendar inputs carry it)
            df = frame.with_columns(pl.int_range(pl.len()).over("unique_id").alias("ds")).to_pandas()
            static_df = self.static_.to_pandas() if self.static_ is not None and self.static_cols_ else None
            nf = NeuralForecast(models=[net], freq=1)
            val_size = self.trained_horizon if settings["early_stop_patience_steps"] > 0 else 0
            if self.deadline is not None and time.time() > self.deadline:  # the frames took the time left
                msg = (f"training of '{self.name}' not started: the time limit was reached while its data was "
                       f"prepared")
                raise TimeLimitError(msg, field="data", details={"steps": 0, "max_steps": settings["max_steps"]})
            cwd = os.getcwd()
            try:
                os.chdir(root)  # nothing Lightning writes lands in the caller's working directory
                nf.fit(df=df, static_df=static_df, val_size=val_size)
            except TimeLimitError:
                raise
            except Exception as exc:
                if isinstance(exc.__cause__, TimeLimitError) or isinstance(exc.__context__, TimeLimitError):
                    raise exc.__cause__ or exc.__context__ from None  # type: ignore[misc]
                if "nan" in str(exc).lower() and "loss" in str(exc).lower():  # neuralforecast's own NaN-loss stop
                    from forecasting.errors import ModelFitError

                    msg = (
                        f"model '{self.name}': training failed, the loss became NaN ({exc}); lower "
                        f"learning_rate, use scaler_type 'robust' or 'standard', or check the data's "
                        f"scale"
                    )
                    raise ModelFitError(msg, field="model") from exc
                raise
            finally:
                os.chdir(cwd)
        error = callback_error(callback)
        if error is not None:
            raise error
        stopped = callback_stop(callback)
        if stopped is not None:
            self.notes_.append(f"{self.name}: training stopped at step {stopped} of {settings['max_steps']} at its "
                               f"time_limit of {budget:g} s ({time.time() - started:.0f} s); the network as trained "
                               f"so far forecasts")
        model = nf.models[0]
        model.trainer_kwargs = {}
        model._trainer = None
        dataset = getattr(nf, "dataset", None)  # neuralforecast's own record of the window columns, when kept
        self.temporal_cols_ = [*(list(dataset.temporal_cols) if dataset is not None else
                                 ["y", *[c for c in df.columns if c not in ("unique_id", "ds", "y")], "available_mask"]),
                               SCALE_COLUMN]
        self.output_names_ = [str(n) for n in model.loss.output_names]
        model.eval()
        model.to(torch.device(self.device_))
        return model

    # ------------------------------------------------------------------ forecasting
    def _core(self) -> Any:
        return NetworkCore(self.net_, self.temporal_cols_, self.static_cols_, self._p.target_transform)

    def _history_exog(self) -> list[str]:
        return [*self.pipeline_.spec.future_exog, *self.hist_cols_]

    def _check_history(self, panel: Panel) -> None:
        cols = self._history_exog()
        check_exog_values(panel.frame, cols, where="history")
        check_complete(panel.frame, cols, where="history")
        check_range(panel.frame, ["y", *cols], where="history")
        if self._p.target_transform != self.params.target_transform:
            check_target(panel.frame, self._p.target_transform, where="history",
                         chosen=f" (chosen by '{self.params.target_transform}' from the training data)")
        else:
            check_target(panel.frame, self._p.target_transform, where="history")
        if self.static_cols_:
            assert self.static_ is not None
            unknown = sorted(set(panel.lengths) - set(self.static_["unique_id"].to_list()))
            if unknown:
                msg = (
                    f"series {unknown[:5]} have no static values (the model was trained with "
                    f"static columns {self.static_cols_})"
                )
                raise InvalidInputError(msg, field="history")

    def _check_history_length(self, panel: Panel, where: str) -> None:
        self._refuse_short(panel, self.window, where, ", its input_size")

    def _windows(self, panel: Panel, h: int, X_future: Any) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
        """Future keys (internal ds), the temporal array ``(B, L + n_blocks*H, C)`` and static ``(B, S)``."""
        H, L = self.trained_horizon, self.window
        n_blocks = math.ceil(h / H)
        steps = n_blocks * H
        user_futr = list(self.pipeline_.spec.future_exog)
        if user_futr:
            future = validate_future(X_future, panel, steps, user_futr) if steps == h or X_future is None else \
                self._future_blocks(X_future, panel, h, steps, user_futr)
            check_exog_values(future, user_futr, where="X_future")
            check_complete(future, user_futr, where="X_future")
            check_range(future, user_futr, where="X_future")
        else:
            if X_future is not None:
                msg = (
                    f"this {self.name} model uses no future exogenous columns, so X_future is not "
                    f"accepted"
                )
                raise CapabilityError(msg, field="X_future")
            future = future_frame(panel, steps)
        tail = panel.frame.filter(pl.int_range(pl.len()).over("unique_id") >= pl.len().over("unique_id").cast(pl.Int64) - L)
        cols = ["unique_id", "ds", "y", *user_futr, *self.hist_cols_]
        fut = future.with_columns(pl.lit(0.0).alias("y"), *[pl.lit(0.0).alias(c) for c in self.hist_cols_])
        frame = pl.concat([tail.select(cols), fut.select(cols)], how="vertical_relaxed").sort("unique_id", "ds",
                                                                                               maintain_order=True)
        frame = self._temporal_frame(frame)
        n = panel.n_series
        names = [c for c in self.temporal_cols_ if c not in ("available_mask", SCALE_COLUMN)]
        arr = frame.select(names).to_numpy().astype(np.float32).reshape(n, L + steps, len(names))
        mask = np.zeros((n, L + steps, 1), dtype=np.float32)
        mask[:, :L] = 1.0
        scale = np.broadcast_to(self._scales(panel)[:, None, None], (n, L + steps, 1)).astype(np.float32)
        temporal = np.concatenate([arr, mask, scale], axis=2)
        temporal = temporal[:, :, [([*names, "available_mask", SCALE_COLUMN]).index(c) for c in self.temporal_cols_]]
        if self.static_cols_:
            assert self.static_ is not None  # static columns were trained: their values are kept
            stat = pl.DataFrame({"unique_id": panel.ids}).join(self.static_, on="unique_id", how="left",
                                                               maintain_order="left")
            static = stat.select(self.static_cols_).to_numpy().astype(np.float32)
        else:
            static = np.zeros((n, 0), dtype=np.float32)
        return future.select("unique_id", "ds"), temporal, static

    def _scales(self, panel: Panel) -> np.ndarray:
        """Each series' reference scale ``(n_series,)``, in ``panel.ids`` order: the training series keep the
        scale of their training data; series the model did not see get the scale of their history here."""
        known = pl.DataFrame({"unique_id": panel.ids}, schema={"unique_id": pl.String}).join(
            self.scales_, on="unique_id", how="left", maintain_order="left")
        missing = known.filter(pl.col(SCALE_COLUMN).is_null())["unique_id"]
        if missing.len():
            frame = panel.frame.filter(pl.col("unique_id").cast(pl.String).is_in(missing.implode()))
            new = series_scales(self._transformed(frame), self.window)
            known = known.join(new, on="unique_id", how="left", suffix="_new", maintain_order="left").select(
                pl.coalesce(SCALE_COLUMN, f"{SCALE_COLUMN}_new"))
        return known[SCALE_COLUMN].to_numpy().astype(np.float64)

    def _future_blocks(self, X_future: Any, panel: Panel, h: int, steps: int, cols: list[str]) -> pl.DataFrame:
        try:
            return validate_future(X_future, panel, steps, cols)
        except InvalidInputError as exc:
            msg = (
                f"model '{self.name}' forecasts in blocks of {self.trained_horizon} steps and reads the future "
                f"exogenous values of the whole block, so X_future must cover {steps} steps per series for h={h}: "
                f"{exc.message}"
            )
            raise InvalidInputError(
                msg, field="X_future", details=exc.details) from exc

    def _network(self) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """One network call: float32 windows ``(B, L + H, C)`` and static ``(B, S)`` -> quantiles ``(B, H, Q)``.

        The ONNX runtime (:mod:`forecasting.runtime`) overrides this with its session.
        """
        import torch

        core, dev = self._core(), torch.device(self.device_)

        def call(window: np.ndarray, static: np.ndarray) -> np.ndarray:
            with torch.no_grad(), quiet():
                return core(torch.from_numpy(window).to(dev), torch.from_numpy(static).to(dev)).cpu().numpy()

        return call

    def _run(self, temporal: np.ndarray, static: np.ndarray, h: int) -> np.ndarray:
        """Quantile paths ``(B, h, Q)`` by blocks of ``horizon`` (recursive beyond one block)."""
        H, L = self.trained_horizon, self.window
        network = self._network()
        y_col = self.temporal_cols_.index("y")
        m_col = self.temporal_cols_.index("available_mask")
        med = self.output_names_.index("-median")
        out = []
        temporal = temporal.astype(np.float32, copy=True)
        static = np.ascontiguousarray(static, dtype=np.float32)
        for b in range(math.ceil(h / H)):
            q = network(np.ascontiguousarray(temporal[:, b * H: b * H + L + H]), static)
            out.append(q)
            # the next block reads this block's median as observed history (available, as neuralforecast's
            # own recursion marks it)
            temporal[:, L + b * H: L + (b + 1) * H, y_col] = q[:, :, med]
            temporal[:, L + b * H: L + (b + 1) * H, m_col] = 1.0
        return np.concatenate(out, axis=1)[:, :h].astype(np.float64)

    def predict(self, h: int, *, history: Panel | Any | None = None, X_future: Any = None,
                level: Sequence[float] = ()) -> pl.DataFrame:
        """Forecast ``h`` steps after each series' end (median + quantile intervals), without retraining.

        Parameters
        ----------
        h : int
            Any horizon; beyond ``horizon`` steps the network runs again on its own median.
        history : Panel or frame, optional
            New or updated series (at least ``input_size`` observations each); default: the
            training series.
        X_future : frame, optional
            ``unique_id, ds`` + the future exogenous columns, for ``ceil(h / horizon) * horizon``
            steps per series (the network reads a whole block of future values).
        level : subset of the trained ``level``

        Raises
        ------
        NotFittedError, InsufficientHistoryError (naming the series), InvalidInputError
        (missing future values, naming the ``(unique_id, ds)`` pairs), CapabilityError (a
        level that was not trained).
        """
        h, levels = self._prepare(h, level)
        untrained = [lv for lv in levels if float(lv) not in {float(v) for v in self.level}]
        if untrained:
            msg = (
                f"model '{self.name}' was trained for levels {self.level}; levels {untrained} need "
                f"a model trained with them (params.level)"
            )
            raise CapabilityError(msg, field="level")
        if self.hist_cols_ and h > self.trained_horizon:
            msg = (
                f"with historic-only exogenous columns {self.hist_cols_}, h must be <= the trained "
                f"horizon {self.trained_horizon} (later blocks would need their unknown values)"
            )
            raise CapabilityError(msg,
                                  field="h")
        panel = self._history(history)
        self._check_history_length(panel, "history" if history is not None else "data")
        keys, temporal, static = self._windows(panel, h, X_future)
        q = rearrange_quantiles(self._run(temporal, static, h), self.output_names_)
        names = self.output_names_
        data: dict[str, Any] = {self.alias: q[:, :, names.index("-median")].reshape(-1)}
        for lv in levels:
            lo, hi = q[:, :, names.index(f"-lo-{lv}")], q[:, :, names.index(f"-hi-{lv}")]
            data[f"{self.alias}-lo-{lv}"] = lo.reshape(-1)
            data[f"{self.alias}-hi-{lv}"] = hi.reshape(-1)
        keys = keys.filter(pl.int_range(pl.len()).over("unique_id") < h)
        frame = keys.with_columns(pl.Series(k, v) for k, v in data.items())
        if not np.isfinite(frame.select(list(data)).to_numpy()).all():
            msg = (
                f"model '{self.name}' produced non-finite forecasts; check the inputs for extreme "
                f"values"
            )
            raise InvalidInputError(msg, field="data")
        return self._with_fallback_forecasts(to_caller_tz(frame, panel), h, levels, history)

    # ------------------------------------------------------------------ explanations
    def explain(self, h: int | None = None, *, history: Any = None, X_future: Any = None,
                units: str = "y", n_steps: int = 64) -> Explanation:
        """Attributions of each forecast step's median to every input; see :meth:`_explain`.

        ``units`` must be ``"y"`` (the network's window scaling is part of what is
        explained, so there is no other "model unit"). The network runs on the CPU for
        this (captum's gradients) and goes back to its device afterwards, also when the
        call fails.
        """
        if units != "y":
            msg = (
                f"units must be 'y' for model '{self.name}' (its window scaling is part of the "
                f"network), got {units!r}"
            )
            raise InvalidInputError(msg, field="units")
        try:
            e = self._explain(h, history=history, X_future=X_future, n_steps=n_steps)
            selection = getattr(self, "variable_importance", None)  # TFT: its variable-selection weights beside
            return e if selection is None else dataclasses.replace(e, weights=selection(history=history,
                                                                                        X_future=X_future))
        finally:
            net = self.__dict__.get("net_")
            if isinstance(net, _torch_module()):  # not an ONNX session
                import torch

                net.to(torch.device(self.device_))

    def _explain(self, h: int | None = None, *, history: Any = None, X_future: Any = None,
                 n_steps: int = 64) -> Explanation:
        """Attributions of each forecast step's median to every input (integrated gradients).

        Integrated gradients (Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep
        Networks", ICML 2017) through captum, on the network *with* its window scaling, in
        units of ``y``. Path methods satisfy completeness: the values of a row add up to
        the forecast minus the baseline's forecast; the Riemann-sum residual is reported
        as the explanation's additivity error. The baseline of a window is the same window
        with ``y`` and every temporal exogenous column flattened to their window means (a
        history with no shape to react to; strictly, 0.1 % of the way from that flat window
        towards the input, since an exactly flat window has no scale for the window
        scaler, and for ``y`` the point of that path where the window's spread reaches the
        floor of :func:`~forecasting.models.network_core.guard_scaler`, so that the path
        stays where the network is smooth), and static values set to their training means.
        (Expected gradients, shap's ``GradientExplainer``, would average over a background
        sample instead; it satisfies additivity only in expectation.)

        Features: ``y_lag_<k>`` (``k`` = 1 is the last observation), ``<col>_lag_<k>`` and
        ``<col>_step_<j>`` for temporal exogenous and calendar values over the input window
        and the forecast block, and static columns by name.

        Parameters
        ----------
        h : int, optional
            Steps to explain, at most one block (``horizon``); default ``horizon``.
        history, X_future
            As :meth:`predict`.
        n_steps : int
            Integration steps (more: smaller additivity error).

        Returns
        -------
        forecasting.explanation.Explanation
            ``h`` rows per series (keys ``unique_id, ds, step``).
        """
        import torch
        from captum.attr import IntegratedGradients

        self.check_is_fitted("explain(h)")
        H, L = self.trained_horizon, self.window
        h = H if h is None else validate_h(h)
        if h > H:
            msg = f"explanations cover one block of the network's output, h <= {H}; got h={h}"
            raise CapabilityError(msg,
                                  field="h")
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or not 2 <= n_steps <= 1024:
            msg = f"n_steps must be an integer in [2, 1024], got {n_steps!r}"
            raise InvalidParameterError(msg, field="n_steps")
        panel = self._history(history)
        self._check_history_length(panel, "history" if history is not None else "data")
        keys, temporal, static = self._windows(panel, h, X_future)
        temporal, keys = temporal[:, :L + H], keys.filter(pl.int_range(pl.len()).over("unique_id") < h)
        core = self._core().to(torch.device("cpu"))
        self.net_.to(torch.device("cpu"))
        med_sorted = sorted(quantile_of(n) for n in self.output_names_).index(0.5)
        cols = list(self.temporal_cols_)
        y_col, m_col, s_col = cols.index("y"), cols.index("available_mask"), cols.index(SCALE_COLUMN)
        ex_cols = [i for i, c in enumerate(cols) if c not in ("y", "available_mask", SCALE_COLUMN)]
        mask = torch.from_numpy(temporal[:, :, [m_col, s_col]])  # fixed inputs: availability, the series' scale
        futr_set = set(self.futr_cols_)

        def f(y_in: Any, ex: Any, st: Any) -> Any:
            B = y_in.shape[0]
            full = torch.zeros((B, L + H, len(cols)), dtype=y_in.dtype)
            full[:, :L, y_col] = y_in
            for j, c in enumerate(ex_cols):
                full[:, :, c] = ex[:, :, j]
            if not ex_cols:  # no exogenous input (calendar=[]): keep the empty tensor in the graph for captum
                full = full + ex.sum()
            fixed = mask.repeat(B // mask.shape[0], 1, 1)
            full[:, :, m_col], full[:, :, s_col] = fixed[:, :, 0], fixed[:, :, 1]
            # the point forecast after quantile rearrangement (rearrange_quantiles), as predict returns it
            return torch.sort(core(full, st)[:, :h, :], dim=-1).values[:, :, med_sorted]

        y_in = torch.from_numpy(temporal[:, :L, y_col].copy())
        ex = torch.from_numpy(temporal[:, :, ex_cols].copy())
        # historic-only columns have no future values: zeros there, attributions zero
        st = torch.from_numpy(static.copy())
        y_base = y_in.mean(dim=1, keepdim=True).expand_as(y_in).clone()
        ex_base = ex.clone()
        for j, c in enumerate(ex_cols):
            span = L + H if cols[c] in futr_set else L
            ex_base[:, :span, j] = ex[:, :span, j].mean(dim=1, keepdim=True)
        st_base = st.clone()
        if self.static_cols_ and self.static_ is not None:
            st_base[:] = torch.from_numpy(self.static_.select(self.static_cols_).to_numpy().mean(axis=0)
                                          .astype(np.float32))
        # A perfectly flat window has no scale (the window scaler falls back to its guards there), so the
        # forecast jumps at the flat point itself. Start the path just off it: along the straight path the
        # scaled inputs are then constant and the output moves smoothly, so completeness holds to rounding.
        # For y, start where the window's spread reaches the scaler's floor (guard_scaler): nearer the flat
        # point the floor dominates and the output turns sharply, which the quadrature would miss.
        alpha = torch.full((y_in.shape[0], 1), _EPS_PATH, dtype=y_in.dtype)
        scale_ref = torch.from_numpy(temporal[:, :1, s_col].copy())
        spread = window_spread(self.net_, transform_target(y_in, self._p.target_transform,
                                                           torch.ones_like(y_in)) / scale_ref)
        if spread is not None:
            alpha = torch.clamp(SCALE_FLOOR / spread.to(y_in.dtype), min=_EPS_PATH, max=1.0).reshape(-1, 1)
        y_base = y_base + alpha * (y_in - y_base)
        ex_base, st_base = (b + _EPS_PATH * (x - b) for b, x in ((ex_base, ex), (st_base, st)))
        has_static = bool(self.static_cols_)
        ig = IntegratedGradients(f if has_static else (lambda a, b: f(a, b, st)))
        inputs, baselines = ((y_in, ex, st), (y_base, ex_base, st_base)) if has_static else ((y_in, ex), (y_base, ex_base))
        n = y_in.shape[0]
        values, base, output = [], [], []
        with quiet():
            with torch.no_grad():
                out_all = f(y_in, ex, st).numpy().astype(np.float64)
                base_all = f(y_base, ex_base, st_base).numpy().astype(np.float64)
            for k in range(h):
                attrs = ig.attribute(inputs, baselines=baselines, target=k, n_steps=n_steps, method="gausslegendre")
                a_y, a_ex = (a.detach().numpy().astype(np.float64) for a in attrs[:2])
                a_st = attrs[2].detach().numpy().astype(np.float64) if has_static else np.zeros((n, 0))
                parts = [a_y[:, ::-1]]  # lag 1 first
                for j, c in enumerate(ex_cols):
                    parts.append(a_ex[:, :L, j][:, ::-1])
                    if cols[c] in futr_set:
                        parts.append(a_ex[:, L:L + H, j])
                parts.append(a_st)
                values.append(np.concatenate(parts, axis=1))
                base.append(base_all[:, k])
                output.append(out_all[:, k])
        names = [f"y_lag_{k}" for k in range(1, L + 1)]
        data_parts = [temporal[:, :L, y_col][:, ::-1]]
        for c in ex_cols:
            names += [f"{cols[c]}_lag_{k}" for k in range(1, L + 1)]
            data_parts.append(temporal[:, :L, c][:, ::-1])
            if cols[c] in futr_set:
                names += [f"{cols[c]}_step_{j}" for j in range(1, H + 1)]
                data_parts.append(temporal[:, L:L + H, c])
        names += list(self.static_cols_)
        data_parts.append(static)
        data = np.concatenate(data_parts, axis=1).astype(np.float64)
        # rows: series-major (series i, steps 1..h)
        V = np.stack(values, axis=1).reshape(n * h, -1)
        Bv = np.stack(base, axis=1).reshape(-1)
        Ov = np.stack(output, axis=1).reshape(-1)
        Dv = np.repeat(data, h, axis=0)
        rows = to_caller_tz(keys, panel).with_columns(pl.int_range(1, pl.len() + 1).over("unique_id").alias("step"))
        self.net_.to(torch.device(self.device_))
        e = Explanation(values=V, base_values=Bv, feature_names=names, data=Dv, output=Ov, rows=rows,
                        method=f"integrated gradients (captum, {n_steps} Gauss-Legendre steps) on the {self.alias} "
                               f"network with its window scaling, in units of y; baseline: the window flattened "
                               f"to its means (y: to the spread of the scaler's floor)",
                        categories=calendar_categories(names))
        # one base value for the model; the series' level and the baseline's own forecast as series terms
        level = np.repeat(temporal[:, :L, y_col].mean(axis=1), h).astype(np.float64)
        b0 = self.base_value()
        return rebase(e, b0, [("series level (mean of its input window)", level - b0, level)],
                      last=("forecast from the flat window, minus the level", Bv))

    def base_value(self) -> float:
        """The model's one base value, units of ``y``: the mean over the training series of the mean of each
        series' last ``input_size`` values (what is stored with the model, so unchanged by save/load)."""
        keep = self.window
        tail = self.panel_.frame.filter(pl.int_range(pl.len()).over("unique_id")
                                        >= pl.len().over("unique_id").cast(pl.Int64) - keep)
        return float(tail.group_by("unique_id").agg(pl.col("y").mean())["y"].mean())  # type: ignore[arg-type]

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model folder: ``weights.safetensors`` (the network's tensors), ``pipeline.json``,
        ``history.parquet`` (each series' last ``input_size`` rows), ``scales.parquet`` (each
        series' reference scale), ``static.parquet`` (if any) and ``model.json`` (params, the
        effective settings, columns, loss outputs, sha256 of every other file).
        Written to a temporary folder and renamed into place; no pickle anywhere."""
        from safetensors.torch import save_file

        if not self.is_fitted:
            msg = f"model '{self.name}' is not fitted: nothing to save"
            raise NotFittedError(msg)
        if self.fallbacks_:
            msg = f"saving a {self.name} model with fallbacks is not supported"
            raise CapabilityError(msg, field="model")
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        state = {k: v.detach().to("cpu").clone().contiguous() for k, v in self.net_.state_dict().items()}
        save_file(state, str(tmp / "weights.safetensors"))
        (tmp / "pipeline.json").write_bytes(self.pipeline_.to_json())
        keep = self.window
        hist = self.panel_.frame.filter(pl.int_range(pl.len()).over("unique_id") >= pl.len().over("unique_id").cast(pl.Int64) - keep)
        hist.write_parquet(tmp / "history.parquet")
        self.scales_.write_parquet(tmp / "scales.parquet")
        if self.static_ is not None:
            self.static_.write_parquet(tmp / "static.parquet")
        meta = {"format_version": FORMAT_VERSION, "model": self.name, "params": self.get_params(), "alias": self.alias,
                "settings": msgspec.to_builtins(self.settings_), "notes": list(self.notes_),
                "panel": self._panel_meta(),
                "futr_cols": self.futr_cols_, "hist_cols": self.hist_cols_, "static_cols": self.static_cols_,
                "temporal_cols": self.temporal_cols_, "output_names": self.output_names_,
                "device_trained": self.device_}
        return seal(tmp, target, meta)

    @classmethod
    def _restore(cls, folder: Path, meta: dict[str, Any], *, device: str = "cpu") -> Any:
        """Everything but the network, from a verified ``model.json`` and its folder (no torch import)."""
        params = {k: v for k, v in meta["params"].items() if v is not None}
        # the device parameter records where it should run: "cuda:N" loads are recorded as "cuda"
        where = device if device in ("auto", "cpu", "cuda") else "cuda"
        model = cls(**{**params, "device": where, "alias": meta["alias"]})
        model.pipeline_ = FeaturePipeline.from_json((folder / "pipeline.json").read_bytes())
        model.futr_cols_, model.hist_cols_ = list(meta["futr_cols"]), list(meta["hist_cols"])
        model.static_cols_ = list(meta["static_cols"])
        model.temporal_cols_, model.output_names_ = list(meta["temporal_cols"]), list(meta["output_names"])
        model.static_ = pl.read_parquet(folder / "static.parquet") if model.static_cols_ else None
        model.settings_ = msgspec.convert(meta["settings"], type(model.params))
        model.scales_ = pl.read_parquet(folder / "scales.parquet")
        model.notes_ = list(meta.get("notes", []))
        model.panel_ = cls._stored_panel(folder, meta["panel"])
        model.fallbacks_ = []
        model.device_ = "cpu"
        return model

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "cpu") -> Self:
        """Load a folder written by :meth:`save` onto ``device`` (the CPU by default, wherever it was trained).

        Raises
        ------
        InvalidInputError
            Not a model folder of this kind, a missing file, or a file whose sha256 changed.
        """
        import torch
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(path)
        try:
            meta = json.loads((folder / "model.json").read_text())
            if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
                old = isinstance(meta, dict) and meta.get("format_version") == 1
                msg = (f"'{folder}' is not a neural model folder of format {FORMAT_VERSION}"
                       + (" (it was saved in format 1, before the networks learnt on each series' reference "
                          "scale: retrain it)" if old else ""))
                raise InvalidInputError(msg,
                                        field="model")
            kind = network_class(str(meta.get("model")))
            if kind is None or (cls is not NeuralForecaster and kind is not cls):
                msg = f"'{folder}' holds model {meta.get('model')!r}, not '{cls.name or 'nhits/tft/tsmixer'}'"
                raise InvalidInputError(msg,
                                        field="model")
            verify(folder, meta, required=["weights.safetensors", "pipeline.json", "history.parquet",
                                           "scales.parquet"])
            files: dict[str, str] = meta["files"]
            model = kind._restore(folder, meta, device=device)
            if model.static_cols_ and "static.parquet" not in files:
                msg = f"model folder '{folder}': static.parquet is not in the manifest"
                raise InvalidInputError(msg, field="model")
            model.device_ = torch_device(device)
            import neuralforecast.models  # noqa: F401 - imported first, so quiet finds (and silences) its loggers

            with quiet():
                net = model._build_net(model.futr_cols_, model.hist_cols_, model.static_cols_, {"logger": False})
            state = load_file(str(folder / "weights.safetensors"), device="cpu")
            net.load_state_dict(state, strict=True)
            net.eval()
            net.to(torch.device(model.device_))
            model.net_ = net
        except ForecastingError as exc:
            if isinstance(exc, InvalidInputError):
                raise
            msg = f"model folder '{folder}' is damaged: {exc.message}"
            raise InvalidInputError(msg, field="model") from exc
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError, pl.exceptions.PolarsError,
                msgspec.ValidationError) as exc:
            msg = f"model folder '{folder}' is damaged or incomplete: {type(exc).__name__}: {exc}"
            raise InvalidInputError(msg,
                                    field="model") from exc
        model.fallbacks_ = []
        return model


class _WindowsOnDemand:
    """The training windows of one batch of series, gathered only where they are indexed.

    Stands for neuralforecast's ``windows`` tensor ``(B * Ws, L + H, C, 1)`` (series-major)
    in ``training_step``, which indexes it once with the sampled window numbers: only those
    ``windows_batch_size`` windows are copied, not every window of every series of the batch.
    """

    def __init__(self, temporal: Any, size: int, step: int) -> None:
        self.windows = temporal.unfold(dimension=-1, size=size, step=step)  # a view (B, C, Ws, L + H)
        self.per_series = int(self.windows.shape[2])
        self.device = temporal.device

    def __getitem__(self, idx: Any) -> Any:
        # advanced indices split by a slice go first: (n, C, L + H) -> (n, L + H, C, 1), neuralforecast's layout
        return self.windows[idx // self.per_series, :, idx % self.per_series, :].permute(0, 2, 1).unsqueeze(-1)


def gather_sampled_windows(net: Any) -> None:
    """Make a training step of ``net`` copy only the windows it samples (same windows, same draws).

    neuralforecast (``BaseModel._create_windows``, 3.3) cuts every window of every series
    in the step's batch of ``batch_size`` series (``unfold``, then a copy of all of them:
    32 series of M4 Hourly hold about 25,000 windows of 216 steps), keeps those with
    enough available points, and only then samples ``windows_batch_size`` of them. The
    copy and the availability sums over all windows cost as much as the network's own
    forward and backward pass on 256 windows. Here the availability of every window comes
    from cumulative sums of the availability mask (``O(B T)``), the list of valid windows
    and the draw are neuralforecast's own (same order, same random numbers), and only the
    drawn windows are copied (:class:`_WindowsOnDemand`): training is the same, step for
    step (a test checks the weights), at a cost that follows ``windows_batch_size``.

    Applies to univariate, non-recurrent networks trained without ``sample_weight``;
    others, and the validation and prediction windows, keep neuralforecast's method.

    Parameters
    ----------
    net : neuralforecast model
        Its ``_create_windows`` is wrapped in place (an instance attribute, kept by the deep
        copy ``NeuralForecast.fit`` makes).
    """
    import types

    import torch

    if getattr(net, "MULTIVARIATE", True) or getattr(net, "RECURRENT", True):
        return
    library = type(net)._create_windows

    def create_windows(self: Any, batch: dict[str, Any], step: str) -> Any:
        cols = batch["temporal_cols"]
        if step != "train" or "sample_weight" in cols:
            return library(self, batch, step)
        temporal = batch["temporal"]
        if self.val_size + self.test_size > 0:
            temporal = temporal[:, :, :-self.val_size - self.test_size]
        temporal = self.padder_train(temporal)
        L, size = self.input_size, self.input_size + self.h
        if temporal.shape[-1] < size:
            return library(self, batch, step)  # its own error
        # available points in each window's input and output part, as neuralforecast sums them (exact: 0/1 counts)
        mask = temporal[:, cols.get_loc("available_mask"), :].to(torch.float64)
        cum = torch.nn.functional.pad(mask.cumsum(-1), (1, 0))  # (B, T + 1)
        starts = torch.arange(0, temporal.shape[-1] - size + 1, self.step_size, device=temporal.device)
        n_in = cum[:, starts + L] - cum[:, starts]
        keep = n_in >= max(1, int(L * self.min_insample_fraction * self.n_series))
        if self.h > 0:
            n_out = cum[:, starts + size] - cum[:, starts + L]
            keep &= n_out >= max(1, int(self.h * self.min_outsample_fraction * self.n_series))
        if not bool(keep.any()):
            return library(self, batch, step)  # its own error
        static = batch.get("static", None)
        if static is not None:
            static = torch.repeat_interleave(static, repeats=len(starts), dim=0)
        final = torch.nonzero(keep.reshape(-1)).squeeze(-1)
        return _WindowsOnDemand(temporal, size, self.step_size), static, batch.get("static_cols", None), final, \
            None, cols

    net._create_windows = types.MethodType(create_windows, net)


def network_class(name: str) -> type[NeuralForecaster[Any]] | None:
    """The registered neural adapter called ``name`` (None for any other name): the registry is the one table."""
    entry = REGISTRY.get(name)
    if entry is None or entry.family != "deep-learning":
        return None
    cls = entry.load()
    return cls if issubclass(cls, NeuralForecaster) else None


def _torch_module() -> type[Any]:
    import torch

    return torch.nn.Module
