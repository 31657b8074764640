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

from forecasting.data import first_pairs, refuse_beyond
from forecasting.errors import ForecastingError, InvalidInputError, InvalidParameterError, TimeLimitError
from forecasting.models.base import Progress

__all__ = [
    "MAX_ABS_VALUE",
    "MIN_LOG_VALUE",
    "SCALE_COLUMN",
    "SCALE_FLOOR",
    "MAD_FLOOR",
    "NetworkCore",
    "callback_error",
    "callback_stop",
    "check_complete",
    "check_range",
    "check_target",
    "guard_scaler",
    "quantile_of",
    "quiet",
    "rearrange_quantiles",
    "series_scales",
    "torch_device",
    "training_callback",
    "transform_target",
    "window_spread",
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
            pairs = first_pairs(bad)
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
    """Refuse values the float32 networks cannot represent (beyond :data:`MAX_ABS_VALUE`), naming the column and
    the first pairs (:func:`forecasting.data.refuse_beyond`).

    Raises
    ------
    InvalidInputError
    """
    refuse_beyond(frame, columns, MAX_ABS_VALUE, rule=f"+/-{MAX_ABS_VALUE:g} (the neural models compute in float32)",
                  where=where, advice="rescale the data", field_of_y=where)


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


#: the temporal column carrying each series' reference scale (constant along a window; not a network input)
SCALE_COLUMN = "series_scale"
#: the floor on the per-window scale of ``y``, as a fraction of the series' reference scale (:func:`guard_scaler`)
SCALE_FLOOR = 0.1
#: the robust scaler's MAD is combined with this fraction of the normal-theory MAD (0.6745 x the window's standard
#: deviation) (:func:`guard_scaler`)
MAD_FLOOR = 0.5
#: smallest y the log transform accepts: float32 windows hold nothing much smaller, and the network core clamps there
MIN_LOG_VALUE = 1e-30


def series_scales(frame: pl.DataFrame, window: int) -> pl.DataFrame:
    """Each series' reference scale: the median, over its windows of ``window`` steps, of the window's spread.

    The spread of a window is its median absolute deviation from the median (its
    population standard deviation times 0.6745 when the MAD is 0), the statistic of
    neuralforecast's robust ``TemporalNorm``. Windows end every ``max(1, window // 4)``
    steps back from the last observation. It is the scale a typical window of the series
    has, so a floor relative to it (:data:`SCALE_FLOOR`, :func:`guard_scaler`) binds only on
    windows far flatter than the series usually is: on ETTh1 (windows of 512) and M4
    Hourly (168) fewer than 0.1 % of windows have a spread below 0.3 of it. A series
    whose windows are mostly flat falls back to the mean spread, then to ``mean |y|``,
    then to 1.

    Parameters
    ----------
    frame : pl.DataFrame
        ``unique_id, y`` sorted by time within each series (``y`` in the units the network
        is trained on, i.e. after the target transform).
    window : int
        The network's ``input_size``.

    Returns
    -------
    pl.DataFrame
        ``unique_id`` (String), ``series_scale`` (Float64, > 0), one row per series in
        order of first appearance.
    """
    ids: list[str] = []
    scales: list[float] = []
    for (uid,), part in frame.select(pl.col("unique_id").cast(pl.String), "y").group_by(
            "unique_id", maintain_order=True):
        y = part["y"].to_numpy().astype(np.float64)
        n = len(y)
        w = max(1, min(window, n))
        ends = np.arange(n, w - 1, -max(1, window // 4))
        wins = np.lib.stride_tricks.sliding_window_view(y, w)[ends - w]
        med = np.median(wins, axis=1, keepdims=True)
        spread = np.median(np.abs(wins - med), axis=1)
        spread = np.where(spread > 0, spread, 0.6744897501960817 * wins.std(axis=1))
        scale = float(np.median(spread))
        for fallback in (float(spread.mean()), float(np.mean(np.abs(y))), 1.0):
            if math.isfinite(scale) and scale > 0:
                break
            scale = fallback
        ids.append(str(uid))
        scales.append(scale)
    return pl.DataFrame({"unique_id": ids, SCALE_COLUMN: scales}, schema={"unique_id": pl.String,
                                                                             SCALE_COLUMN: pl.Float64})


def guard_scaler(net: Any, floor: float = SCALE_FLOOR, mad_floor: float = MAD_FLOOR) -> None:
    """Keep the network's per-window scale of ``y`` from collapsing on flat or mostly flat windows.

    neuralforecast's window normalisation (``TemporalNorm``) divides each input window by
    its own spread and multiplies the network's output by it. Two kinds of window get a
    spread far below what the window holds or what the series usually has:

    * a window that is flat but for a few quantisation steps (a stuck sensor) has a spread
      far below the series' usual one, so those steps become scaled inputs of tens of units;
    * under the robust scaler (median / MAD), a window whose *majority* sits on one or two
      quantised levels (a run of 200+ identical values beside normal variation) has a MAD of
      about one quantum, while its other half varies over several standard deviations: its
      scaled inputs reach hundreds. neuralforecast falls back to ``0.6745 * std`` only when
      the MAD is exactly 0.

    Such inputs lie far outside what the network was trained on, and a ReLU network
    extrapolates them linearly with gains it never had to keep small: on a 7-channel hourly
    dataset such windows were forecast down to -74 standard deviations (issue 13). The guard,
    on the ``y`` channel only (the exogenous channels keep neuralforecast's statistics):

    * robust scaler: the MAD is combined in quadrature with ``mad_floor`` times the
      normal-theory MAD (``0.6745 *`` the window's standard deviation), i.e. the library's
      own fallback made continuous. A normal window (MAD about 0.6745 std) moves by 12 %;
      a window with a few large outliers keeps a scale well below its inflated std;
    * every scaler: the networks are trained and run on ``y`` divided by the series'
      reference scale (:func:`series_scales`), and there the spread ``s`` becomes
      ``sqrt(s**2 + floor**2)``: at least a tenth of the series' usual window spread (a
      typical window, ``s`` about 1, moves by 0.5 %).

    Combining in quadrature rather than clamping keeps the network smooth in its inputs
    (integrated gradients need that). The same guard runs in training (the net is wrapped
    before ``NeuralForecast.fit``) and in the forecasting core, ONNX export included.

    Parameters
    ----------
    net : neuralforecast model
        Its ``scaler`` (``TemporalNorm``) is wrapped in place (once); ``identity`` scaling is left alone.
    floor : float
        The floor on the spread of ``y`` per window, in units of the reference scale.
    mad_floor : float
        The robust scaler's floor, as a fraction of the normal-theory MAD.
    """
    import torch

    scaler = net.scaler
    if scaler.scaler_type in (None, "identity") or getattr(scaler, "guarded_floor", None) == floor:
        return
    base = scaler.compute_statistics
    robust = scaler.scaler_type == "robust"

    def guarded(x: Any, mask: Any, dim: int = -1, eps: float = 1e-6) -> tuple[Any, Any]:
        shift, scale = base(x=x, mask=mask, dim=dim, eps=eps)
        # channel 0 (dim 2) is y (neuralforecast's _normalization puts it first); the rest are exogenous
        y_scale = scale.narrow(2, 0, 1) ** 2 + floor ** 2
        if robust:
            # the window's standard deviation of y, computed here without neuralforecast's std_statistics,
            # which edits its own sqrt in place (integrated gradients then cannot differentiate through it)
            my = mask.narrow(2, 0, 1) > 0
            xy = torch.where(my, x.narrow(2, 0, 1), torch.zeros_like(x.narrow(2, 0, 1)))  # padding may be NaN
            n = torch.clamp(my.to(x.dtype).sum(dim=dim, keepdim=True), min=1.0)
            mean = xy.sum(dim=dim, keepdim=True) / n
            var = (torch.where(my, xy - mean, torch.zeros_like(xy)) ** 2).sum(dim=dim, keepdim=True) / n
            y_scale = y_scale + (mad_floor * 0.6744897501960817) ** 2 * (var + eps)
        # a fresh tensor: neuralforecast edits the scale in place later, which sqrt's backward must not see
        y_spread = torch.sqrt(y_scale).clone()
        if scale.shape[2] == 1:
            return shift, y_spread
        return shift, torch.cat([y_spread, scale.narrow(2, 1, scale.shape[2] - 1)], dim=2)

    scaler.compute_statistics = guarded
    scaler.unguarded_statistics = base
    scaler.guarded_floor = floor


def window_spread(net: Any, y: Any) -> Any | None:
    """The spread of each window of ``y`` (torch ``(B, L)``, all observed) by the network's own window statistic,
    before the floor of :func:`guard_scaler`; ``(B,)``, or None when the network does not scale windows."""
    import torch

    stats = getattr(net.scaler, "unguarded_statistics", None)
    if stats is None:
        return None
    x = y.reshape(y.shape[0], y.shape[1], 1, 1)
    _, scale = stats(x=x, mask=torch.ones_like(x), dim=1, eps=net.scaler.eps)
    return scale.reshape(-1)


def transform_target(y: Any, target: str | None, mask: Any) -> Any:
    """``y`` (torch, y units) in the units the network was trained on: ``log``, ``log1p`` or unchanged.

    Unavailable (future) rows, ``mask`` 0, stay 0.
    """
    import torch

    if target == "log":
        return torch.where(mask > 0, torch.log(torch.clamp(y, min=MIN_LOG_VALUE)), torch.zeros_like(y))
    if target == "log1p":
        return torch.where(mask > 0, torch.log1p(torch.clamp(y, min=0.0)), torch.zeros_like(y))
    return y


def _untransform(q: Any, target: str | None) -> Any:
    """Quantiles back in y units. Quantiles commute with monotone maps (``exp(q_p(log y)) = q_p(y)``); under
    ``log1p`` the data were non-negative, so a negative quantile is projected to 0."""
    import torch

    if target == "log":
        return torch.exp(q)
    if target == "log1p":
        return torch.clamp(torch.expm1(q), min=0.0)
    return q


def _core_class() -> type:
    import torch

    class _NetworkCore(torch.nn.Module):
        """Raw window -> quantiles in y units: target transform, series scale, normalisation, network, inverses.

        ``forward(temporal, static)``:

        * ``temporal``: float32 tensor of shape ``(B, input_size + h, C)``, columns
          :attr:`temporal_cols` (``y``, the temporal exogenous columns, ``available_mask``,
          ``series_scale``); the last ``h`` rows carry future exogenous values, ``y = 0`` and mask 0;
          ``series_scale`` is the series' reference scale (:func:`series_scales`) on every row.
        * ``static``: ``(B, S)`` static values, or an empty ``(B, 0)`` tensor.

        Returns ``(B, h, Q)``: the loss's outputs in order (``output_names``).
        """

        def __init__(self, net: Any, temporal_cols: list[str], static_cols: list[str], target: str | None = None):
            super().__init__()
            self.net = net
            self.temporal_cols = list(temporal_cols)
            self.net_cols = [c for c in self.temporal_cols if c != SCALE_COLUMN]
            self.static_cols = list(static_cols)
            self.target = target
            guard_scaler(net)

        def forward(self, temporal: Any, static: Any) -> Any:
            import pandas as pd

            net = self.net
            cols = self.temporal_cols
            yi, mi, si = cols.index("y"), cols.index("available_mask"), cols.index(SCALE_COLUMN)
            y_units, mask = temporal[:, :, yi], temporal[:, :, mi]
            scale = temporal[:, :1, si]  # (B, 1)
            # the network sees y (transformed) in units of the series' reference scale; its window scaler, floored
            # there (guard_scaler), does the rest
            y = transform_target(y_units, self.target, mask) / scale
            parts = [temporal[:, :, i:i + 1] for i in range(len(cols)) if i != si]
            parts[yi if yi < si else yi - 1] = y.unsqueeze(-1)
            windows = {"temporal": torch.cat(parts, dim=2).unsqueeze(-1), "temporal_cols": pd.Index(self.net_cols),
                       "static": static if self.static_cols else None,
                       "static_cols": pd.Index(self.static_cols) if self.static_cols else None}
            windows = net._normalization(windows=windows, y_idx=0)
            insample_y, insample_mask, _, _, hist, futr, stat = net._parse_windows({"y_idx": 0}, windows)
            out = net._predict_step_direct_batch(insample_y=insample_y, insample_mask=insample_mask, futr_exog=futr,
                                                 hist_exog=hist, stat_exog=stat, y_idx=0)
            out = _untransform(out.reshape(out.shape[0], out.shape[1], -1) * scale.unsqueeze(-1), self.target)
            # A window without any variation carries no scale for the network (its scaler falls back to an
            # absolute unit): every quantile of such a window's forecast is its constant value.
            big = torch.full_like(y_units, float("inf"))
            top = torch.amax(torch.where(mask > 0, y_units, -big), dim=1)
            low = torch.amin(torch.where(mask > 0, y_units, big), dim=1)
            flat = (top == low).reshape(-1, 1, 1)
            return torch.where(flat, top.reshape(-1, 1, 1).expand_as(out), out)

    return _NetworkCore


def NetworkCore(net: Any, temporal_cols: list[str], static_cols: list[str],  # noqa: N802 - a class factory
                target: str | None = None) -> Any:
    """The torch module mapping raw windows to quantiles (see the module docstring).

    ``target``: the network was trained on ``log(y)`` or ``log1p(y)`` (:func:`transform_target`);
    windows are transformed on the way in and the quantiles mapped back on the way out,
    inside the module (and so inside an ONNX export and under the explanations). The
    series' reference scale (column ``series_scale``) and the floor on each window's scale
    (:func:`guard_scaler`) are inside it too.
    """
    return _core_class()(net, temporal_cols, static_cols, target)


def check_target(frame: pl.DataFrame, target: str | None, *, where: str, chosen: str = "") -> None:
    """The data a target transform needs: ``log``: every ``y > 0`` (and ``>= MIN_LOG_VALUE``); ``log1p``: ``y >= 0``.

    ``chosen``: how the transform was chosen, for the message (e.g. ``" (chosen by 'auto'
    from the training data)"``).

    Raises
    ------
    InvalidInputError
        Naming the rule, the count, the first ``(unique_id, ds, y)`` rows and (``details``)
        the series.
    """
    if target == "log":
        rules = [("y > 0", frame.filter(pl.col("y") <= 0), "<= 0",
                  "use target_transform 'log1p' (or 'auto') for data with zeros, or drop the transform"),
                 (f"y >= {MIN_LOG_VALUE:g} (the networks compute in float32)",
                  frame.filter((pl.col("y") > 0) & (pl.col("y") < MIN_LOG_VALUE)), f"below {MIN_LOG_VALUE:g}",
                  "rescale the data")]
    elif target == "log1p":
        rules = [("y >= 0", frame.filter(pl.col("y") < 0), "< 0", "drop the transform for data with negative values")]
    else:
        return
    for rule, bad, what, advice in rules:
        if bad.height:
            rows = ", ".join(f"({u}, {d}, {v:g})" for u, d, v in bad.select("unique_id", "ds", "y").head(5).iter_rows())
            series = bad["unique_id"].unique(maintain_order=True)
            msg = (
                f"{where}: target_transform='{target}'{chosen} needs {rule}, but {bad.height} rows of "
                f"{series.len()} series have y {what} (unique_id, ds, y): {rows}; {advice}"
            )
            raise InvalidInputError(msg, field=where, details={"series": series.head(100).to_list()})


#: errors raised inside training callbacks, by token: neuralforecast deep-copies its models (and with
#: them the callback objects) before training, so the caller reads the outcome here, not off the object
_CALLBACK_ERRORS: dict[str, ForecastingError] = {}
#: the step at which a training callback stopped training at its time budget, by token
_CALLBACK_STOPS: dict[str, int] = {}


def training_callback(name: str, total: int, *, deadline: float | None, progress: Progress | None,
                      budget_end: float | None = None) -> Any:
    """A Lightning callback reporting training steps to ``progress``, enforcing ``deadline`` and ``budget_end``.

    ``deadline`` (epoch s) is the caller's hard limit: past it training stops with
    :class:`TimeLimitError` and no model. ``budget_end`` (epoch s) is the model's own
    training budget (``time_limit``): past it training stops *with* the network as trained
    so far (read the step with :func:`callback_stop`). It holds only plain values (the
    model's name, limits, progress function and a token), so the deep copy neuralforecast
    makes stays cheap; errors are left in :data:`_CALLBACK_ERRORS` under the token, read by
    :func:`callback_error`.
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

        def on_train_start(self, trainer: Any, pl_module: Any) -> None:
            # the data loaders and the first batch can take minutes on a loaded machine (50-199 s measured at
            # load 15-19 on 2 cores): a deadline that passed meanwhile stops here, before the first step
            if deadline is not None and time.time() > deadline:
                self._stop(trainer, TimeLimitError(f"training of '{name}' stopped before its first step: the time "
                                                   f"limit was reached while the training was set up",
                                                   field="data", details={"steps": 0, "max_steps": total}))

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            step = trainer.global_step
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            if loss is not None and not math.isfinite(float(loss)):
                from forecasting.errors import ModelFitError

                self._stop(trainer, ModelFitError(f"model '{name}': the training loss became {float(loss)} at step "
                                                  f"{step}; lower learning_rate or check the data's scale",
                                                  field="model"))
                return
            now = time.time()
            if deadline is not None and now > deadline:
                self._stop(trainer, TimeLimitError(f"training of '{name}' stopped at step {step} of {total}: the "
                                                   f"time limit was reached; use fewer max_steps or less data",
                                                   field="data", details={"steps": step, "max_steps": total}))
                return
            if budget_end is not None and now > budget_end and step < total:
                _CALLBACK_STOPS[self.token] = step
                trainer.should_stop = True
            if step % self.every == 0 or step == total or step == 1:  # step 1: the set-up's end
                msg = f"{name}: step {step}/{total}, loss {float(loss):.4f}" if loss is not None else ""
                if progress is not None:
                    progress(min(1.0, step / total), msg)
                else:
                    log.info("%s (%.0f s)", msg, now - self.started)

    return _Progress()


def callback_error(callback: Any) -> ForecastingError | None:
    """The error a training callback stopped on (and forget it)."""
    return _CALLBACK_ERRORS.pop(callback.token, None)


def callback_stop(callback: Any) -> int | None:
    """The step at which a training callback stopped at its time budget, or None (and forget it)."""
    return _CALLBACK_STOPS.pop(callback.token, None)
