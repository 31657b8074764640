"""ONNX export of trained models, with parity checks against the native model.

An export is a folder::

    manifest.json        format, kind, opset, library versions, inputs, parity figures,
                         and the sha256 of every other file
    *.onnx               the graph(s): one per XGBoost booster, one network
    model.json, pipeline.json, history.parquet[, static.parquet]
                         the native model's state (feature pipeline, input column order,
                         scaling statistics, conformal scores) minus its weights

:class:`forecasting.runtime.OnnxForecaster` loads it with onnxruntime, numpy and polars
only. Converters: XGBoost boosters through onnxmltools (``convert_xgboost``; features
renamed ``f0..fN`` as it requires, the order kept in the manifest), scikit-learn tabular
models through skl2onnx, NHITS/TFT/TSMixer networks (window scaling included) through
``torch.onnx.export`` with a dynamic batch dimension.

Every export checks parity on real inputs (the training data's last windows) at batch
size 1 and at the full sample, and refuses (``ExportParityError``) when the largest
difference relative to the largest native output exceeds the tolerance (1e-4 for trees,
1e-3 for networks). Statistical models are refit from history at forecast time and have
no graph to export (``CapabilityError``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from forecasting.errors import CapabilityError, InvalidParameterError, ModelFitError, NotFittedError
from forecasting import artifacts

__all__ = ["ExportParityError", "FORMAT", "TOLERANCE", "export_model"]

FORMAT = artifacts.EXPORT_FORMAT
FORMAT_VERSION = 1
OPSET = 18  # networks (torch.onnx dynamo exporter)
TREE_OPSET = 15  # the highest onnxmltools' XGBoost converter supports
#: relative tolerance of the parity check: max |onnx - native| / max |native|
TOLERANCE = {"trees": 1e-4, "network": 1e-3}


class ExportParityError(ModelFitError):
    """The exported graph does not reproduce the native model within tolerance."""


def _versions(*names: str) -> dict[str, str]:
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def _parity(native: np.ndarray, onnx: np.ndarray, tol: float, what: str) -> dict[str, float]:
    native, onnx = np.asarray(native, dtype=np.float64), np.asarray(onnx, dtype=np.float64)
    if native.shape != onnx.shape:
        msg = f"{what}: the ONNX graph returns shape {onnx.shape}, the native model {native.shape}"
        raise ExportParityError(msg, field="model")
    diff = np.abs(native - onnx)
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(native).max()) if native.size else 0.0
    rel = max_abs / scale if scale > 0 else max_abs
    if not np.isfinite(onnx).all() or rel > tol:
        msg = (
            f"{what}: ONNX output differs from the native model: max absolute difference "
            f"{max_abs:.3g}, relative {rel:.3g} (tolerance {tol:g})"
        )
        raise ExportParityError(msg, field="model",
                                details={"max_abs_diff": max_abs, "max_rel_diff": rel, "tolerance": tol})
    return {"max_abs_diff": max_abs, "max_rel_diff": rel}


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------------------- tree forecasters
def _convert_booster(booster: Any, n_features: int) -> Any:
    from forecasting.models.xgb import xgboost_to_onnx

    return xgboost_to_onnx(booster, n_features, TREE_OPSET)


def _export_trees(model: Any, tmp: Path, sample_series: int) -> dict[str, Any]:
    """A global tree model (:class:`~forecasting.models.trees.TreeForecaster`): each booster through the
    adapter's own converter (``_booster_to_onnx``), with a parity check against the native booster."""
    model.save(tmp)  # the state (pipeline, history tail, scales, scores) and the native boosters
    for f in tmp.glob(f"booster_*.{model.booster_suffix}"):
        f.unlink()
    pipe = model.pipeline_
    panel = model.panel_.subset(model.panel_.ids[:sample_series])
    if pipe.spec.future_exog:  # no future values at hand: the stored history's own feature rows
        rows = pipe.training_rows(pipe.transform(panel.frame, scales=model.scales_))
        X = pipe.matrix(rows)
    else:  # the inputs of a real forecast from the stored history: every step's model call
        _, steps = model._paths(panel, min(model.calibrated_horizon, 48), None, scales=model.scales_, collect=True)
        X = np.concatenate([st.X[:, :len(pipe.feature_names)] for st in steps])
    if len(X) == 0:
        msg = "no parity sample: the stored history yields no complete feature row"
        raise CapabilityError(msg, field="model")
    parity: dict[str, Any] = {}
    graphs = []
    for i, booster in enumerate(model.boosters_):
        n_features = model._booster_features(booster)
        Xi = X if n_features == X.shape[1] else np.column_stack([X, np.ones(len(X), dtype=np.float32)])
        onx = model._booster_to_onnx(booster, n_features, TREE_OPSET)
        path = tmp / f"booster_{i}.onnx"
        path.write_bytes(onx.SerializeToString())
        sess = _session(path)
        native = model._predict_booster(booster, Xi)
        many = sess.run(None, {"input": Xi.astype(np.float32)})[0].reshape(-1)
        one = np.concatenate([sess.run(None, {"input": Xi[j:j + 1].astype(np.float32)})[0].reshape(-1)
                              for j in range(min(len(Xi), 32))])
        parity[path.name] = {"rows": int(len(Xi)),
                             "batch_many": _parity(native, many, TOLERANCE["trees"], f"{path.name} (batch {len(Xi)})"),
                             "batch_1": _parity(native[:len(one)], one, TOLERANCE["trees"], f"{path.name} (batch 1)")}
        graphs.append(path.name)
    return {"kind": model.name, "graphs": graphs, "parity": parity,
            "inputs": {"input": {"shape": ["batch", "n_features"], "dtype": "float32",
                                 "columns": list(pipe.feature_names)}},
            "versions": _versions(model.library, "onnxmltools", "onnx", "onnxruntime", "polars")}


# ---------------------------------------------------------------------------- networks
@contextlib.contextmanager
def _exportable_neuralforecast() -> Iterator[None]:
    """Two export traps of neuralforecast, patched for the duration of the export only.

    * ``len(tensor)`` in NHITS freezes the batch dimension to a constant (STACK-NOTES):
      inside the module ``len`` becomes ``tensor.shape[0]``, which stays symbolic.
    * The robust scaler's ``nanmedian`` has no ONNX function: the same lower median
      (torch's convention for even counts) through sort + gather.
    """
    import neuralforecast.common._scalers as scalers
    import neuralforecast.models.nhits as nhits
    import torch

    def masked_median(x: Any, mask: Any, dim: int = -1, keepdim: bool = True) -> Any:
        valid = (mask >= 1).expand_as(x)
        filled = torch.where(valid, x, torch.full_like(x, float("inf")))
        ordered, _ = torch.sort(filled, dim=dim)
        count = valid.sum(dim=dim, keepdim=True)
        idx = torch.div(torch.clamp(count - 1, min=0), 2, rounding_mode="floor")
        med = torch.gather(ordered, dim, idx)
        med = torch.where(count > 0, med, torch.zeros_like(med))
        return med if keepdim else med.squeeze(dim)

    original = scalers.masked_median
    scalers.masked_median = masked_median
    nhits.len = lambda t: t.shape[0]
    try:
        yield
    finally:
        scalers.masked_median = original
        del nhits.len


def _export_network(model: Any, tmp: Path, sample_series: int, quantize: bool) -> dict[str, Any]:
    import torch

    from forecasting.models.network_core import quiet as _quiet

    model.save(tmp)
    (tmp / "weights.safetensors").unlink()
    H, L = model.trained_horizon, model.window
    panel = model.panel_.subset(model.panel_.ids[:sample_series])
    if model.pipeline_.spec.future_exog:
        # future-known exogenous values: the last H observed values stand in for a block (a real input window)
        frame = panel.frame
        cut = frame.filter(pl.int_range(pl.len()).over("unique_id") < pl.len().over("unique_id").cast(pl.Int64) - H)
        from forecasting.models.base import as_panel

        hist = as_panel(cut.select("unique_id", "ds", "y", *panel.exog), freq=panel.freq)
        X_future = frame.filter(pl.int_range(pl.len()).over("unique_id") >= pl.len().over("unique_id").cast(pl.Int64) - H).select(
            "unique_id", "ds", *model.pipeline_.spec.future_exog)
        _, temporal, static = model._windows(hist, H, X_future)
    else:
        _, temporal, static = model._windows(panel, H, None)
    temporal = np.ascontiguousarray(temporal[:, :L + H]).astype(np.float32)
    core = model._core().to(torch.device("cpu")).eval()
    model.net_.to(torch.device("cpu"))
    path = tmp / "network.onnx"
    batch = torch.export.Dim("batch", min=1, max=1_000_000)
    t0 = time.perf_counter()
    with _quiet(), _exportable_neuralforecast(), torch.no_grad():
        x = torch.from_numpy(np.repeat(temporal[:1], 2, axis=0))
        st = torch.from_numpy(np.repeat(static[:1], 2, axis=0))
        try:
            torch.onnx.export(core, (x, st), str(path), input_names=["temporal", "static"], output_names=["quantiles"],
                              dynamic_shapes=({0: batch}, {0: batch}), dynamo=True, opset_version=OPSET,
                              external_data=False, verbose=False)
        except Exception as exc:  # the exporter's own errors, reported with the model named  # noqa: BLE001
            msg = (
                f"model '{model.name}' could not be exported to ONNX by torch.onnx: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            )
            raise CapabilityError(msg, field="model") from exc
        native = core(torch.from_numpy(temporal), torch.from_numpy(static)).numpy()
    model.net_.to(torch.device(model.device_))
    seconds = time.perf_counter() - t0
    sess = _session(path)
    feeds = _network_feeds(sess, temporal, static)
    many = sess.run(None, feeds)[0]
    one = sess.run(None, _network_feeds(sess, temporal[:1], static[:1]))[0]
    parity = {"network.onnx": {"rows": int(len(temporal)),
                               "batch_many": _parity(native, many, TOLERANCE["network"], f"network (batch {len(temporal)})"),
                               "batch_1": _parity(native[:1], one, TOLERANCE["network"], "network (batch 1)")}}
    out: dict[str, Any] = {"kind": model.name, "graphs": ["network.onnx"], "parity": parity,
                           "export_seconds": seconds,
                           "inputs": {"temporal": {"shape": ["batch", L + H, len(model.temporal_cols_)],
                                                   "dtype": "float32", "columns": list(model.temporal_cols_)},
                                      "static": {"shape": ["batch", len(model.static_cols_)], "dtype": "float32",
                                                 "columns": list(model.static_cols_)}},
                           "outputs": {"quantiles": {"shape": ["batch", H, len(model.output_names_)],
                                                     "columns": list(model.output_names_)}},
                           "versions": _versions("torch", "neuralforecast", "onnx", "onnxruntime", "onnxscript",
                                                 "polars")}
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        qpath = tmp / "network.int8.onnx"
        with contextlib.redirect_stdout(io.StringIO()), _quiet(root=True):  # the quantiser's shape-inference notes
            quantize_dynamic(str(path), str(qpath), weight_type=QuantType.QInt8)
        qsess = _session(qpath)
        q = qsess.run(None, feeds)[0]
        diff = np.abs(q.astype(np.float64) - native)
        med = model.output_names_.index("-median")
        out["quantized"] = {"graph": qpath.name, "weight_type": "int8 (dynamic quantisation, onnxruntime)",
                            "max_abs_diff": float(diff.max()),
                            "max_rel_diff": float(diff.max() / max(np.abs(native).max(), 1e-12)),
                            "median_mean_abs_pct_change": float(
                                np.mean(np.abs(q[..., med] - native[..., med]) / np.maximum(np.abs(native[..., med]),
                                                                                            1e-9)) * 100),
                            "size_bytes": {"float32": path.stat().st_size, "int8": qpath.stat().st_size}}
    return out


def _network_feeds(sess: Any, temporal: np.ndarray, static: np.ndarray) -> dict[str, np.ndarray]:
    names = [i.name for i in sess.get_inputs()]
    feeds = {"temporal": temporal.astype(np.float32)}
    if "static" in names:
        feeds["static"] = static.astype(np.float32)
    return feeds


# ---------------------------------------------------------------------------- tabular
def _export_tabular(model: Any, tmp: Path, sample: Any) -> dict[str, Any]:
    """Tabular models: xgboost through onnxmltools, hist_gradient_boosting through skl2onnx, linear as a
    skl2onnx linear graph over the model's own design matrix (imputation, standardisation, one-hot in numpy)."""
    from forecasting.tabular import _to_polars

    if sample is None:
        msg = (
            "a tabular export needs `sample`: real rows (e.g. the training table's tail) "
            "for the parity check"
        )
        raise InvalidParameterError(msg, field="sample")
    X = model._encode(_to_polars(sample, "sample"))
    if len(X) == 0:
        msg = "the parity sample has no rows"
        raise InvalidParameterError(msg, field="sample")
    meta = model._metadata()
    if model.algorithm == "linear":
        meta["linear"] = model._linear_
    (tmp / "metadata.json").write_text(json.dumps(meta, indent=1))
    path = tmp / "model.onnx"
    classify = model.kind == "classification"
    if model.algorithm == "xgboost":
        if model.categories_:
            msg = (
                f"xgboost tabular models with categorical features ({sorted(model.categories_)}) "
                f"have no ONNX converter for their categorical splits"
            )
            raise CapabilityError(msg, field="model")
        onx = _convert_booster(model._booster_, X.shape[1])
        inputs = X
    else:
        from skl2onnx import to_onnx

        if model.algorithm == "linear":
            from sklearn.linear_model import LinearRegression

            inputs = model._linear_design(X)
            est = LinearRegression()  # the fitted coefficients, as a graph: margin = design @ coef + intercept
            est.coef_ = np.asarray(model._linear_["coef"], dtype=np.float64)
            est.intercept_ = float(model._linear_["intercept"])
            est.n_features_in_ = inputs.shape[1]
            classify_graph = False
        else:
            inputs = X
            est = model._sk_
            classify_graph = classify
        options = {id(est): {"zipmap": False}} if classify_graph else None
        try:
            onx = to_onnx(est, inputs[:1].astype(np.float32), target_opset={"": TREE_OPSET, "ai.onnx.ml": 3},
                          options=options)
        except (TypeError, ValueError, RuntimeError) as exc:
            # skl2onnx 1.20 fails on scikit-learn 1.9's HistGradientBoosting trees (boolean node attributes)
            msg = (
                f"skl2onnx cannot convert this {type(est).__name__}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200]}; use algorithm 'xgboost' or 'linear' to export"
            )
            raise CapabilityError(msg, field="model") from exc
    path.write_bytes(onx.SerializeToString())
    sess = _session(path)
    linear_margin = model.algorithm == "linear"
    native = _tab_output(model._margin(X), classify and not linear_margin)
    many = tabular_output(sess, inputs, classify and not linear_margin)
    one = tabular_output(sess, inputs[:1], classify and not linear_margin)
    what = "probability" if classify and not linear_margin else "margin"
    parity = {"model.onnx": {"rows": int(len(X)), "compared": what,
                             "batch_many": _parity(native, many, TOLERANCE["trees"], f"model.onnx (batch {len(X)})"),
                             "batch_1": _parity(native[:1], one, TOLERANCE["trees"], "model.onnx (batch 1)")}}
    return {"kind": "tabular", "graphs": ["model.onnx"], "parity": parity, "algorithm": model.algorithm,
            "graph_output": "margin" if linear_margin or not classify else "probability",
            "inputs": {"input": {"shape": ["batch", int(inputs.shape[1])], "dtype": "float32",
                                 "columns": list(model.feature_names_),
                                 "design": "linear design matrix" if linear_margin else "encoded features"}},
            "versions": _versions("xgboost", "scikit-learn", "onnxmltools", "skl2onnx", "onnx", "onnxruntime")}


def _tab_output(margin: np.ndarray, probability: bool) -> np.ndarray:
    margin = np.asarray(margin, dtype=np.float64).reshape(-1)
    return 1.0 / (1.0 + np.exp(-margin)) if probability else margin


def tabular_output(sess: Any, inputs: np.ndarray, probability: bool) -> np.ndarray:
    """A tabular graph's answer: the regression value / margin, or the positive class's probability."""
    outs = sess.run(None, {sess.get_inputs()[0].name: np.ascontiguousarray(inputs, dtype=np.float32)})
    if not probability:
        return np.asarray(outs[0], dtype=np.float64).reshape(-1)
    probs = np.asarray(outs[-1], dtype=np.float64)
    return probs.reshape(len(probs), -1)[:, -1]


# ---------------------------------------------------------------------------- entry point
def export_model(model: Any, output: str | os.PathLike[str], *, quantize: bool = False, sample: Any = None,
                 sample_series: int = 64) -> Path:
    """Export a fitted model to an ONNX artifact folder, after a parity check.

    Parameters
    ----------
    model
        A fitted :class:`~forecasting.models.xgb.XGBoostForecaster`,
        :class:`~forecasting.models.neural.NeuralForecaster` (``nhits``, ``tft``, ``tsmixer``) or
        :class:`~forecasting.tabular.TabularModel` (xgboost without categorical features,
        linear; hist_gradient_boosting is attempted through skl2onnx, which cannot convert
        scikit-learn 1.9's trees: refused with its reason).
    output : path
        Folder to write (replaced atomically if it exists).
    quantize : bool
        Networks only: also write an int8 dynamically quantised graph and report its
        change on the parity sample (the float32 graph stays the default).
    sample : table, optional
        Tabular models (required): real rows for the parity check, e.g. the training
        table's tail.
    sample_series : int
        Forecasters: series whose last windows form the parity sample.

    Returns
    -------
    Path of the folder.

    Raises
    ------
    CapabilityError
        Statistical (refit-from-history) models, ensembles, models with fallbacks,
        xgboost tabular models with categorical features, and a converter's refusal.
    NotFittedError
    ExportParityError
        The graph's outputs differ from the native model's beyond :data:`TOLERANCE`
        (the message gives the max absolute and relative difference).
    """
    from forecasting.models.base import require
    from forecasting.models.trees import TreeForecaster
    from forecasting.tabular import TabularModel

    if isinstance(model, TabularModel):
        if not model.is_fitted:
            msg = "the tabular model is not fitted: nothing to export"
            raise NotFittedError(msg)
    else:
        require(model, "export")  # the CapabilityError says why (statistical models are refit, ...)
        if not model.is_fitted:
            msg = f"model '{model.name}' is not fitted: nothing to export"
            raise NotFittedError(msg)
        if quantize and isinstance(model, TreeForecaster):
            msg = "quantize applies to the networks (nhits, tft, tsmixer), not to tree models"
            raise InvalidParameterError(msg, field="quantize")
    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = artifacts.temp_folder(target)
    try:
        if isinstance(model, TabularModel):
            info = _export_tabular(model, tmp, sample)
        elif isinstance(model, TreeForecaster):
            info = _export_trees(model, tmp, sample_series)
        else:
            info = _export_network(model, tmp, sample_series, quantize)
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                    "opset": TREE_OPSET if isinstance(model, TreeForecaster) else OPSET,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "forecasting_version": _versions("forecasting").get("forecasting", "unknown"),
                    "tolerance": TOLERANCE["trees" if isinstance(model, TreeForecaster | TabularModel) else "network"],
                    **info}
        return artifacts.seal(tmp, target, manifest, manifest=artifacts.EXPORT_MANIFEST)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
