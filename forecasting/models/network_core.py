"""The torch side of the neural forecasters: the network core, quantile outputs, input checks, training callbacks.

Shared by :class:`forecasting.models.neural.NeuralForecaster` (and so by every network
adapter), :mod:`forecasting.export` (the ONNX export traces :func:`NetworkCore`) and the
ONNX runtime. torch, Lightning and neuralforecast are imported inside the functions only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl

from forecasting.errors import ForecastingError, InvalidInputError, InvalidParameterError, TimeLimitError
from forecasting.models.base import Progress

__all__ = [
    "MAX_ABS_VALUE",
    "MIN_LOG_VALUE",
    "NetworkCore",
    "callback_error",
    "check_complete",
    "check_positive",
    "check_range",
    "quantile_of",
    "quiet",
    "rearrange_quantiles",
    "torch_device",
    "training_callback",
]

log = logging.getLogger("forecasting.models.neural")


def torch_device(device: str = "auto") -> str:
    """``"cuda"`` when ``device="auto"`` and torch sees a GPU, else ``"cpu"``; explicit values as given.

    Raises
    ------
    InvalidParameterError
        An unknown device name, or ``"cuda"`` when torch sees no GPU.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return "cpu"
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            msg = f"device '{device}' asked for, but torch sees no GPU; use 'auto' or 'cpu'"
            raise InvalidParameterError(msg,
                                        field="device")
        return device
    msg = f"device must be 'auto', 'cpu' or 'cuda', got {device!r}"
    raise InvalidParameterError(msg, field="device")


_NOISY = ("lightning", "pytorch_lightning", "lightning_fabric", "neuralforecast", "torch.onnx", "onnxscript",
          "onnx_ir")


@contextlib.contextmanager
def quiet(*, root: bool = False) -> Iterator[None]:
    """Silence Lightning's banners ("Seed set to 1", GPU availability), the ONNX exporter's notes and
    warnings for the duration; ``root``: the root logger too (onnxruntime's quantiser logs there)."""
    names = [n for n in list(logging.root.manager.loggerDict) if n.startswith(_NOISY)] + list(_NOISY)
    loggers = [logging.getLogger(n) for n in dict.fromkeys(names)] + ([logging.root] if root else [])
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


def check_complete(frame: pl.DataFrame, columns: list[str], *, where: str) -> None:
    """The networks take no missing exogenous values (trees do): nulls and NaN are refused.

    Raises
    ------
    InvalidInputError
        Naming the column, the count and the first ``(unique_id, ds)`` pairs.
    """
    for col in columns:
        e = pl.col(col).is_null()
        if frame.schema[col].is_float():
            e = e | pl.col(col).is_nan()
        bad = frame.filter(e)
        if bad.height:
            pairs = ", ".join(f"({u}, {d})" for u, d in bad.select("unique_id", "ds").head(5).iter_rows())
            msg = (
                f"{where}: exogenous column '{col}' has {bad.height} missing values (unique_id, "
                f"ds): {pairs}; the neural models need every value (fill them first)"
            )
            raise InvalidInputError(msg,
                                    field=f"{where}.{col}")


#: largest magnitude the networks accept: they compute in float32 (max 3.4e38), and their window statistics square
#: deviations, so values must stay far below it
MAX_ABS_VALUE = 1e30


def check_range(frame: pl.DataFrame, columns: list[str], *, where: str) -> None:
    """Refuse values the float32 networks cannot represent, naming the column and the first pairs.

    Raises
    ------
    InvalidInputError
    """
    for col in columns:
        if col not in frame.columns or not frame.schema[col].is_numeric():
            continue
        bad = frame.filter(pl.col(col).abs() > MAX_ABS_VALUE)
        if bad.height:
            pairs = ", ".join(f"({u}, {d})" for u, d in bad.select("unique_id", "ds").head(5).iter_rows())
            msg = (
                f"{where}: column '{col}' has {bad.height} values beyond +/-{MAX_ABS_VALUE:g} "
                f"(unique_id, ds): {pairs}; the neural models compute in float32: rescale the "
                f"data"
            )
            raise InvalidInputError(msg, field=f"{where}.{col}" if col != "y" else where)


def quantile_of(name: str) -> float:
    """The quantile an MQLoss output stands for: ``-median`` 0.5, ``-lo-80`` 0.1, ``-hi-80`` 0.9."""
    if name == "-median":
        return 0.5
    side, lv = name[1:3], float(name.split("-")[-1])
    return 0.5 - lv / 200 if side == "lo" else 0.5 + lv / 200


def rearrange_quantiles(q: np.ndarray, output_names: list[str]) -> np.ndarray:
    """Sort each row's quantile outputs into quantile order, so intervals never cross.

    A network's separately learnt quantiles can cross (lo-95 above lo-80); sorting the
    outputs of each (series, step) is the monotone rearrangement of Chernozhukov,
    Fernandez-Val & Galichon, "Quantile and probability curves without crossing",
    Econometrica 78(3), 2010, which never increases the quantile loss.

    Parameters
    ----------
    q : ndarray of shape (..., Q)
    output_names : list of str, length Q (``-median``, ``-lo-80``...)
    """
    order = np.argsort([quantile_of(n) for n in output_names], kind="stable")
    out = np.empty_like(q)
    out[..., order] = np.sort(q, axis=-1)
    return out


def _core_class() -> type:
    import torch

    class _NetworkCore(torch.nn.Module):
        """Raw window -> quantiles in y units: normalisation, network, inverse normalisation.

        ``forward(temporal, static)``:

        * ``temporal``: float32 tensor of shape ``(B, input_size + h, C)``, columns
          :attr:`temporal_cols` (``y``, the temporal exogenous columns, ``available_mask``);
          the last ``h`` rows carry future exogenous values, ``y = 0`` and mask 0.
        * ``static``: ``(B, S)`` static values, or an empty ``(B, 0)`` tensor.

        Returns ``(B, h, Q)``: the loss's outputs in order (``output_names``).
        """

        def __init__(self, net: Any, temporal_cols: list[str], static_cols: list[str], log_target: bool = False):
            super().__init__()
            self.net = net
            self.temporal_cols = list(temporal_cols)
            self.static_cols = list(static_cols)
            self.log_target = bool(log_target)

        def forward(self, temporal: Any, static: Any) -> Any:
            import pandas as pd

            net = self.net
            yi, mi = self.temporal_cols.index("y"), self.temporal_cols.index("available_mask")
            y_units, mask = temporal[:, :, yi], temporal[:, :, mi]
            y = y_units
            if self.log_target:  # the network was trained on log(y); unavailable (future) rows stay 0
                y = torch.where(mask > 0, torch.log(torch.clamp(y_units, min=MIN_LOG_VALUE)), torch.zeros_like(y_units))
            # Windows of tiny values: the network's scaler adds an absolute epsilon (1e-6) to the window's scale,
            # which then swamps values of 1e-6 or less. Such windows are brought to unit magnitude first (and the
            # outputs back); windows with values >= 1 are untouched (so forecasts equal neuralforecast's).
            amax = torch.amax(torch.abs(y) * mask, dim=1, keepdim=True)
            c = torch.where(amax < 1.0, torch.clamp(amax, min=1e-30), torch.ones_like(amax))
            temporal = torch.cat([temporal[:, :, :yi], (y / c).unsqueeze(-1), temporal[:, :, yi + 1:]], dim=2)
            windows = {"temporal": temporal.unsqueeze(-1), "temporal_cols": pd.Index(self.temporal_cols),
                       "static": static if self.static_cols else None,
                       "static_cols": pd.Index(self.static_cols) if self.static_cols else None}
            windows = net._normalization(windows=windows, y_idx=0)
            insample_y, insample_mask, _, _, hist, futr, stat = net._parse_windows({"y_idx": 0}, windows)
            out = net._predict_step_direct_batch(insample_y=insample_y, insample_mask=insample_mask, futr_exog=futr,
                                                 hist_exog=hist, stat_exog=stat, y_idx=0)
            out = out.reshape(out.shape[0], out.shape[1], -1) * c.unsqueeze(-1)
            if self.log_target:  # quantiles commute with the monotone exp: exp(q_p(log y)) = q_p(y)
                out = torch.exp(out)
            # A window without any variation carries no scale for the network (its scaler falls back to an
            # absolute unit): every quantile of such a window's forecast is its constant value.
            big = torch.full_like(y_units, float("inf"))
            top = torch.amax(torch.where(mask > 0, y_units, -big), dim=1)
            low = torch.amin(torch.where(mask > 0, y_units, big), dim=1)
            flat = (top == low).reshape(-1, 1, 1)
            return torch.where(flat, top.reshape(-1, 1, 1).expand_as(out), out)

    return _NetworkCore


def NetworkCore(net: Any, temporal_cols: list[str], static_cols: list[str],  # noqa: N802 - a class factory
                log_target: bool = False) -> Any:
    """The torch module mapping raw windows to quantiles (see the module docstring).

    ``log_target``: the network was trained on ``log(y)``; windows are logged on the way in
    and the quantiles exponentiated on the way out, inside the module (and so inside an
    ONNX export and under the explanations).
    """
    return _core_class()(net, temporal_cols, static_cols, log_target)


#: smallest y the log transform accepts: float32 windows hold nothing much smaller, and the network core clamps there
MIN_LOG_VALUE = 1e-30


def check_positive(frame: pl.DataFrame, *, where: str) -> None:
    """``target_transform="log"`` needs every ``y > 0`` (and ``>= MIN_LOG_VALUE``).

    Raises
    ------
    InvalidInputError
        Naming the count and the first ``(unique_id, ds, y)`` rows.
    """
    for rule, bad, advice in [
            ("y > 0", frame.filter(pl.col("y") <= 0), "drop the transform or shift the series"),
            (f"y >= {MIN_LOG_VALUE:g} (the networks compute in float32)",
             frame.filter((pl.col("y") > 0) & (pl.col("y") < MIN_LOG_VALUE)), "rescale the data")]:
        if bad.height:
            rows = ", ".join(f"({u}, {d}, {v:g})" for u, d, v in bad.select("unique_id", "ds", "y").head(5).iter_rows())
            msg = (
                f"{where}: target_transform='log' needs {rule}, but {bad.height} rows have y "
                f"{'<= 0' if rule == 'y > 0' else f'below {MIN_LOG_VALUE:g}'} (unique_id, ds, y): {rows}; {advice}"
            )
            raise InvalidInputError(
                msg,
                field=where, details={"series": bad["unique_id"].unique(maintain_order=True).head(100).to_list()})


#: errors raised inside training callbacks, by token: neuralforecast deep-copies its models (and with
#: them the callback objects) before training, so the caller reads the outcome here, not off the object
_CALLBACK_ERRORS: dict[str, ForecastingError] = {}


def training_callback(name: str, total: int, *, deadline: float | None, progress: Progress | None) -> Any:
    """A Lightning callback reporting training steps to ``progress`` and enforcing ``deadline`` (epoch s).

    It holds only plain values (the model's name, deadline, progress function and a token),
    so the deep copy neuralforecast makes stays cheap; errors are left in
    :data:`_CALLBACK_ERRORS` under the token, read by :func:`callback_error`.
    """
    import uuid

    import pytorch_lightning as pl_

    token = uuid.uuid4().hex

    class _Progress(pl_.Callback):
        def __init__(self) -> None:
            self.token = token
            self.every = max(1, total // 20)
            self.started = time.time()

        def _stop(self, trainer: Any, error: ForecastingError) -> None:
            _CALLBACK_ERRORS[self.token] = error
            trainer.should_stop = True

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            step = trainer.global_step
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if loss is not None and not math.isfinite(float(loss)):
                from forecasting.errors import ModelFitError

                self._stop(trainer, ModelFitError(f"model '{name}': the training loss became {float(loss)} at step "
                                                  f"{step}; lower learning_rate or check the data's scale",
                                                  field="model"))
                return
            if deadline is not None and time.time() > deadline:
                self._stop(trainer, TimeLimitError(f"training of '{name}' stopped at step {step} of {total}: the "
                                                   f"time limit was reached; use fewer max_steps or less data",
                                                   field="data", details={"steps": step, "max_steps": total}))
                return
            if step % self.every == 0 or step == total:
                msg = f"{name}: step {step}/{total}, loss {float(loss):.4f}" if loss is not None else ""
                if progress is not None:
                    progress(min(1.0, step / total), msg)
                else:
                    log.info("%s (%.0f s)", msg, time.time() - self.started)

    return _Progress()


def callback_error(callback: Any) -> ForecastingError | None:
    """The error a training callback stopped on (and forget it)."""
    return _CALLBACK_ERRORS.pop(callback.token, None)
