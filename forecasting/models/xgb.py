"""The XGBoost global forecaster: the XGBoost library under the tree-model base.

Everything but the library calls (features, recursive and direct strategies, conformal
intervals, TreeSHAP explanations, the model folder) is
:class:`~forecasting.models.trees.TreeForecaster`'s. XGBoost: Chen & Guestrin, KDD 2016.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from forecasting.devices import resolve_device
from forecasting.errors import TimeLimitError
from forecasting.models.registry import XGBoostParams
from forecasting.models.trees import TreeForecaster

__all__ = ["XGBoostForecaster", "resolve_device", "xgboost_to_onnx"]


def xgboost_to_onnx(booster: Any, n_features: int, opset: int) -> Any:
    """An XGBoost booster as an ONNX model (onnxmltools' ``convert_xgboost``), input ``input``:
    float32 ``(batch, n_features)``. The feature names are dropped (the converter needs ``f0..fN``)."""
    from onnxmltools.convert import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    b = booster.copy()
    b.feature_names = None
    b.feature_types = None
    return convert_xgboost(b, initial_types=[("input", FloatTensorType([None, n_features]))], target_opset=opset)


def _Rounds(deadline: float | None, report: Callable[[int], None] | None) -> Any:  # noqa: N802 - a factory
    """An XGBoost training callback: after each boosting round, ``report(k)`` (``k``: the rounds this call trained,
    1-based; a warm start's earlier rounds not counted) and a TimeLimitError once ``deadline`` (epoch s) passes."""
    import time

    import xgboost as xgb

    class Rounds(xgb.callback.TrainingCallback):
        def __init__(self) -> None:
            super().__init__()
            self.done = 0

        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            self.done += 1
            if deadline is not None and time.time() > deadline:
                msg = (
                    f"training stopped after {self.done} boosting rounds: the time limit was reached; "
                    f"send fewer series or lower n_estimators"
                )
                raise TimeLimitError(msg, field="data")
            if report is not None:
                report(self.done)
            return False

    return Rounds()


class XGBoostForecaster(TreeForecaster[XGBoostParams]):
    """Global XGBoost forecaster (registry name ``xgboost``).

    Parameters: :class:`~forecasting.models.registry.XGBoostParams` (the tree settings of
    :class:`~forecasting.models.trees.TreeForecaster`, plus ``n_estimators``,
    ``learning_rate``, ``max_depth``, ``min_child_weight``, ``subsample``,
    ``colsample_bytree``, ``reg_lambda`` and ``objective``, XGBoost's own).
    """

    name: ClassVar[str] = "xgboost"
    default_alias: ClassVar[str] = "XGBoost"
    shap_method: ClassVar[str] = "tree_shap (xgboost pred_contribs, exact)"
    booster_suffix: ClassVar[str] = "ubj"  # XGBoost's UBJSON model format
    library: ClassVar[str] = "xgboost"

    def _xgb_params(self, device: str, threads: int) -> dict[str, Any]:
        p = self.params
        return {"objective": p.objective, "eta": p.learning_rate, "max_depth": p.max_depth,
                "min_child_weight": p.min_child_weight, "subsample": p.subsample,
                "colsample_bytree": p.colsample_bytree, "lambda": p.reg_lambda, "tree_method": "hist",
                "device": device, "seed": p.seed, "verbosity": 0, "nthread": threads}

    def _fit_booster(self, X: np.ndarray, y: np.ndarray, names: list[str], *, init: Any = None,
                     rounds: int | None = None) -> Any:
        import xgboost as xgb

        threads = self.train_threads(X)  # one on small data (the booster then predicts on one too)
        dtrain = xgb.DMatrix(X, label=y, feature_names=names, nthread=threads)
        rounds = rounds or self.params.n_estimators
        report = self._round_reporter(rounds)
        callbacks = [_Rounds(self.deadline, report)] if self.deadline is not None or report is not None else None
        return xgb.train(self._xgb_params(self.device_, threads), dtrain, num_boost_round=rounds,
                         callbacks=callbacks, xgb_model=None if init is None else init.copy())

    def _predict_booster(self, booster: Any, X: np.ndarray, **kw: Any) -> np.ndarray:
        import xgboost as xgb

        if not kw:  # plain predictions: no DMatrix construction (it dominates small recursive batches)
            out: np.ndarray = booster.inplace_predict(X, validate_features=False)
            return out
        # contributions (an explanation): a small matrix is built on one thread (with every thread, building a
        # 12-row DMatrix took 25 ms on 2 loaded cores, more than the TreeSHAP call itself)
        dm = xgb.DMatrix(X, feature_names=booster.feature_names, nthread=1 if len(X) < 10_000 else None)
        contributions: np.ndarray = booster.predict(dm, **kw)
        return contributions

    def _write_booster(self, booster: Any, path: Path) -> None:
        booster.save_model(str(path))

    @classmethod
    def _read_booster(cls, path: Path, device: str) -> Any:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(path))
        booster.set_param({"device": device})
        return booster

    @classmethod
    def _library_errors(cls) -> tuple[type[Exception], ...]:
        import xgboost as xgb

        return (xgb.core.XGBoostError,)

    def _booster_features(self, booster: Any) -> int:
        return int(booster.num_features())

    def _booster_to_onnx(self, booster: Any, n_features: int, opset: int) -> Any:
        return xgboost_to_onnx(booster, n_features, opset)
