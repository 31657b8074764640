"""Serve exported models with ONNX Runtime: no xgboost, no torch.

:func:`load_onnx` (or :meth:`OnnxForecaster.load`) reads a folder written by
:func:`forecasting.export.export_model`, checks the sha256 of every file against its
``manifest.json`` (:func:`forecasting.artifacts.verify_export`: a changed byte is refused
with :class:`~forecasting.errors.ArtifactIntegrityError`, never loaded), and returns a forecaster
that runs the *same* code as the native model (the polars feature pipeline, the
recursion, the conformal or quantile intervals) with each model call answered by an
``onnxruntime.InferenceSession`` instead of XGBoost or torch. It implements the
:class:`~forecasting.models.base.Forecaster` predict API (``predict(h, history=...,
X_future=..., level=...)``); it cannot be refit or explained (``CapabilityError``).

Serving (issue 14): a model loaded to answer requests predicts with :data:`SERVING_THREADS`
threads (:func:`limit_threads`: XGBoost ``nthread``, LightGBM ``num_threads``, ONNX Runtime ``intra_op_num_threads``,
the torch threads of the request's thread), so concurrent requests share the cores instead
of each taking all of them; throughput grows with server processes instead
(:mod:`forecasting.api.processes`). :func:`choose_runtime` picks ONNX Runtime or the native
library per request size.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from forecasting.artifacts import verify_export
from forecasting.errors import ArtifactIntegrityError, CapabilityError, ForecastingError, InvalidInputError
from forecasting.models.base import Capabilities
from forecasting.models.global_base import GLOBAL_CAPABILITIES
from forecasting.models.neural import NeuralForecaster, network_class
from forecasting.models.trees import TreeForecaster, tree_class
from forecasting.models.xgb import XGBoostForecaster
from forecasting.tabular import TabularModel

__all__ = ["ONNX_MAX_SERIES", "SERVING_THREADS", "OnnxForecaster", "OnnxNeuralForecaster", "OnnxTabularModel",
           "OnnxTreeForecaster", "OnnxXGBoostForecaster", "choose_runtime", "count_series", "limit_threads", "load_onnx",
           "request_threads"]

#: threads one request's prediction may use in the server (the server's processes give the parallelism)
SERVING_THREADS = 1
#: the most series a request may have to be answered by ONNX Runtime when the version has an export; larger
#: requests are answered by the native library, faster there (see :func:`choose_runtime` for the measurement)
ONNX_MAX_SERIES = 4


def choose_runtime(n_series: int | None, *, has_export: bool) -> str:
    """``"onnxruntime"`` or ``"native"`` for a request of ``n_series`` series.

    The rule: the ONNX export (when there is one) answers requests of at most
    :data:`ONNX_MAX_SERIES` series, the native model larger ones; an unknown size counts as
    small. Measured (``benchmarks/serve_throughput.py --crossover``: XGBoost, 100 trees,
    414 synthetic hourly series of 300 points, ``predict(48, history=...)`` with one thread
    each, median of 3-5 calls; a shared 2-core machine at load average 11-12, so +-30 %):

    ========  ============  ==========  ===========
    series    native (ms)   ONNX (ms)   ONNX/native
    ========  ============  ==========  ===========
    1         4.1-5.0       3.3-3.9     0.77-0.90
    2         4.9-5.0       3.7-3.9     0.76-0.78
    4         4.4-4.7       4.3-4.8     0.91-1.08
    8         5.5-5.8       6.6-12.7    1.16-2.34
    32        12.9          16.2        1.25
    64        23.5          39.2        1.66
    128       73.6          139.0       1.89
    414       280.4         384.7       1.37
    ========  ============  ==========  ===========

    ONNX Runtime's per-call overhead is lower (one series: 10-25 % faster); once the recursive
    batch holds several series' rows, XGBoost's own predictor is faster (the issue measured a
    414-series request 1.4-1.8x slower from ONNX): they cross at about 4 series.

    Parameters
    ----------
    n_series : int or None
        Series in the request (its ``history``, or the stored series when none is sent).
    has_export : bool
        Whether the version has a recorded ONNX export.

    Returns
    -------
    str
        ``"onnxruntime"`` or ``"native"`` (a :data:`forecasting.loading.Runtime`).
    """
    if not has_export:
        return "native"
    return "native" if n_series is not None and n_series > ONNX_MAX_SERIES else "onnxruntime"


def limit_threads(model: Any, threads: int = SERVING_THREADS) -> Any:
    """Make a loaded model predict with ``threads`` threads; returns it.

    XGBoost boosters (global tree forecasters, tabular models) get ``nthread``, LightGBM forecasters
    ``predict_threads`` (LightGBM's ``num_threads`` of each predict call); a tabular
    model also its ``n_jobs`` (OpenMP/BLAS limits around its calls). ONNX sessions are made
    with the thread count instead (:func:`load_onnx` ``threads``); torch networks take the
    thread count of the request's thread (:func:`request_threads`).

    Parameters
    ----------
    model : Forecaster or TabularModel
        Freshly loaded, not yet shared (the setting stays with the cached model).
    threads : int, default SERVING_THREADS

    Returns
    -------
    The same model.
    """
    boosters = list(getattr(model, "boosters_", None) or [])
    if isinstance(model, TabularModel):
        model.n_jobs = threads
        boosters.append(getattr(model, "_booster_", None))
    for booster in boosters:
        if booster is not None and type(booster).__module__.startswith("xgboost"):
            booster.set_param({"nthread": threads})
    if hasattr(model, "predict_threads"):  # LightGBM: num_threads passed to each predict call
        model.predict_threads = threads
    return model


def count_series(data: Any) -> int | None:
    """How many series a request's raw data holds (distinct ``unique_id``), before validation; None when
    that cannot be told cheaply (validation reports the problem later).

    Parameters
    ----------
    data : mapping of columns, list of row mappings, polars or pandas frame

    Returns
    -------
    int or None
    """
    try:
        if isinstance(data, dict):
            ids = data.get("unique_id")
            return len(set(ids)) if isinstance(ids, list) else None
        if isinstance(data, list):
            return len({row.get("unique_id") for row in data}) if all(isinstance(r, dict) for r in data) else None
        column = data["unique_id"]
        return int(column.n_unique() if hasattr(column, "n_unique") else column.nunique())
    except (TypeError, KeyError, AttributeError, ValueError):  # unhashable ids, no such column: not ours to report
        return None


@contextmanager
def request_threads(threads: int = SERVING_THREADS) -> Iterator[None]:
    """Limit torch's intra-op threads of the calling thread (a server's request thread) to ``threads`` while
    serving a request; the thread's count is restored afterwards.

    The one per-request thread limit of every serving path (registered forecasts, reconciled forecasts,
    explanations and reports: :class:`~forecasting.service.registered.RegisteredModels`), used as a context
    manager or a decorator (``@request_threads()``). With torch's OpenMP build, ``torch.set_num_threads`` sets
    the calling thread's OpenMP thread count: a request's network forward (or its integrated gradients) then
    uses ``threads`` cores and concurrent requests do not stall each other. Nothing happens while torch is
    not imported (no network served yet). XGBoost, LightGBM and ONNX Runtime are limited per loaded model
    instead (:func:`limit_threads`, :func:`load_onnx`).

    Parameters
    ----------
    threads : int, default SERVING_THREADS
        Intra-op threads, >= 1.

    Examples
    --------
    >>> with request_threads():
    ...     pass
    """
    import sys

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    if torch is not None and before != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch is not None and before != threads:
            torch.set_num_threads(before)


def _session(path: Path, threads: int | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _run_session(sess: Any, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The session's first output; onnxruntime's own errors (graph and folder state disagree) as a typed error."""
    try:
        return sess.run(None, feeds)[0]
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        msg = (
            f"the exported graph refused its input ({type(exc).__name__}: {str(exc)[:200]}): the "
            f"export folder is inconsistent; export again"
        )
        raise InvalidInputError(msg, field="model") from exc


class _ExportedOnly:
    """What an exported model refuses: it only answers (``_only``), it cannot train, be saved or explain."""

    runtime: ClassVar[str] = "onnxruntime"
    _only: ClassVar[str] = "forecasts"

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        msg = f"an ONNX-exported model {self._only} only; train the native model and export it again"
        raise CapabilityError(msg, field="model")

    def save(self, *args: Any, **kwargs: Any) -> Any:
        msg = "an ONNX-exported model is already an artifact: copy its folder"
        raise CapabilityError(msg, field="model")

    def explain(self, *args: Any, **kwargs: Any) -> Any:
        msg = "explanations need the native model (SHAP runs on the library that trained it)"
        raise CapabilityError(msg, field="model")


class OnnxForecaster(_ExportedOnly):
    """Base of the ONNX Runtime forecasters: forecasts only (no fit, save or explain).

    ``OnnxForecaster.load(path)`` is :func:`load_onnx`.
    """

    capabilities: ClassVar[Capabilities] = replace(GLOBAL_CAPABILITIES, can_explain=False, can_save=False,
                                                   can_export=False, honours_time_limit=False, why_not={
        "explain": "explanations need the native model (SHAP runs on the library that trained it)",
        "global_importance": "explanations need the native model (SHAP runs on the library that trained it)",
        "save": "an ONNX-exported model is already an artifact: copy its folder",
        "export": "it is already an ONNX export",
        "time_limit": "an ONNX-exported model forecasts only; it does not train"})

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, quantized: bool = False, threads: int | None = None) -> Any:
        """Load an export folder (see :func:`load_onnx`)."""
        return load_onnx(path, quantized=quantized, threads=threads)

    def global_importance(self, *args: Any, **kwargs: Any) -> Any:
        return self.explain()

    def variable_importance(self, *args: Any, **kwargs: Any) -> Any:
        msg = "TFT's variable-selection weights need the native model"
        raise CapabilityError(msg, field="model")


class OnnxTreeForecaster(OnnxForecaster, TreeForecaster[Any]):  # type: ignore[misc]
    """A global tree forecaster with each booster answered by an ONNX graph."""

    def _predict_booster(self, booster: Any, X: np.ndarray, **kw: Any) -> np.ndarray:
        if kw:
            msg = f"SHAP contributions need the native {self.name} model"
            raise CapabilityError(msg, field="model")
        return _run_session(booster, {"input": np.ascontiguousarray(X, dtype=np.float32)}).reshape(-1)


class OnnxXGBoostForecaster(OnnxTreeForecaster, XGBoostForecaster):  # type: ignore[misc]
    """The XGBoost forecaster with each booster answered by an ONNX graph."""


class OnnxNeuralForecaster(OnnxForecaster, NeuralForecaster):  # type: ignore[misc]
    """An NHITS/TFT/TSMixer forecaster whose network (window scaling included) is an ONNX graph."""

    def _network(self) -> Any:
        sess = self.net_
        use_static = "static" in {i.name for i in sess.get_inputs()}

        def call(window: np.ndarray, static: np.ndarray) -> np.ndarray:
            return _run_session(sess, {"temporal": window, **({"static": static} if use_static else {})})

        return call


class OnnxTabularModel(_ExportedOnly, TabularModel):
    """A tabular model whose trees or coefficients are an ONNX graph; encoding and outputs as the native model."""

    _only = "predicts"
    session_: Any  # the onnxruntime session of the graph
    manifest_: dict[str, Any]

    def _margin(self, x: np.ndarray) -> np.ndarray:
        from forecasting.export import tabular_output

        if x.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        if self.algorithm == "linear":
            return tabular_output(self.session_, self._linear_design(x), False)
        if self.kind == "regression":
            return tabular_output(self.session_, x, False)
        p = np.clip(tabular_output(self.session_, x, True), 1e-15, 1 - 1e-15)
        return np.log(p / (1 - p))


def load_onnx(path: str | os.PathLike[str], *, quantized: bool = False, threads: int | None = None) -> Any:
    """Load an export folder as a forecaster run by ONNX Runtime.

    Parameters
    ----------
    path : folder written by :func:`forecasting.export.export_model`
    quantized : bool
        Use the int8 graph of a network export (when it was exported with ``quantize``).
    threads : int, optional
        ONNX Runtime intra-op threads (default: its own choice).

    Returns
    -------
    OnnxXGBoostForecaster, OnnxNeuralForecaster or OnnxTabularModel

    Raises
    ------
    ArtifactIntegrityError
        A tampered or incomplete folder (see :func:`forecasting.artifacts.verify_export`).
    InvalidInputError
        A verified folder whose contents disagree (damaged before it was sealed).
    CapabilityError
        A kind this runtime does not serve, or ``quantized`` without an int8 graph.
    """
    folder = Path(path)
    manifest = verify_export(folder)
    kind = manifest.get("kind")
    try:
        if kind == "tabular":
            meta = json.loads((folder / "metadata.json").read_text())
            tab = OnnxTabularModel(kind=meta["kind"], algorithm=meta["algorithm"], params=meta["params"],
                                   device="cpu", seed=meta["seed"], handle_unknown=meta["handle_unknown"],
                                   n_jobs=meta.get("n_jobs"))
            tab._validate_params()
            tab.feature_names_ = list(meta["features"])
            tab.categories_ = {k: list(v) for k, v in meta["categories"].items()}
            tab.target_, tab.classes_, tab.device_ = meta["target"], list(meta["classes"]), "cpu"
            if tab.algorithm == "linear":
                tab._linear_ = meta["linear"]
            tab.session_ = _session(folder / manifest["graphs"][0], threads)
            tab.manifest_ = manifest
            return tab
        meta = json.loads((folder / "model.json").read_text())
        if meta.get("model") != kind:
            msg = (
                f"export folder '{folder}': the manifest says {kind!r} but model.json holds "
                f"{meta.get('model')!r}"
            )
            raise ArtifactIntegrityError(msg, field="model", details={"path": str(folder), "file": "model.json"})
        if (tree := tree_class(str(kind))) is not None:
            onnx_cls: type[OnnxTreeForecaster] = OnnxXGBoostForecaster if tree is XGBoostForecaster else type(
                f"Onnx{tree.__name__}", (OnnxTreeForecaster, tree), {})
            model: Any = onnx_cls._restore(folder, meta)
            model.boosters_ = [_session(folder / g, threads) for g in manifest["graphs"]]
            model.device_ = "cpu"
        elif (native := network_class(str(kind))) is not None:
            cls: type[OnnxNeuralForecaster] = type(f"Onnx{native.__name__}", (OnnxNeuralForecaster, native), {})
            model = cls._restore(folder, meta)
            graph = manifest["graphs"][0]
            if quantized:
                q = manifest.get("quantized")
                if not q:
                    msg = f"export folder '{folder}' has no int8 graph (export with quantize)"
                    raise CapabilityError(msg, field="quantized")
                graph = q["graph"]  # listed in the manifest: verify_export checked it
            model.net_ = _session(folder / graph, threads)
        else:
            msg = f"export folder '{folder}' holds a {kind!r} model, which this runtime does not serve"
            raise CapabilityError(msg, field="model")
    except ForecastingError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        msg = f"export folder '{folder}' is damaged or incomplete: {type(exc).__name__}: {exc}"
        raise InvalidInputError(msg, field="model") from exc
    except Exception as exc:  # onnxruntime's own load errors (a graph that is not ONNX)  # noqa: BLE001
        msg = (
            f"export folder '{folder}': a graph could not be loaded: {type(exc).__name__}: "
            f"{str(exc)[:200]}"
        )
        raise InvalidInputError(msg, field="model") from exc
    model.manifest_ = manifest
    return model
