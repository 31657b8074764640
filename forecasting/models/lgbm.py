"""The LightGBM global forecaster: the LightGBM library under the tree-model base.

Everything but the library calls (features, recursive and direct strategies, conformal
intervals, TreeSHAP explanations, the model folder, ONNX export) is
:class:`~forecasting.models.trees.TreeForecaster`'s. LightGBM: Ke et al., "LightGBM: A Highly
Efficient Gradient Boosting Decision Tree", NeurIPS 2017; its global use for forecasting many
series follows the M5 competition's winners (Makridakis et al., IJF 38(4), 2022).

Trains on the CPU (LightGBM's GPU build is not the PyPI wheel); needs the optional extra
``forecasting[lightgbm]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from forecasting.errors import TimeLimitError
from forecasting.models.registry import LightGBMParams
from forecasting.models.trees import TreeForecaster

__all__ = ["LightGBMForecaster"]


def _rounds_callback(deadline: float | None, report: Callable[[int], None] | None) -> Any:
    """A LightGBM training callback: after each boosting round, ``report(k)`` (``k``: the rounds this call
    trained, 1-based; a warm start's ``init_model`` rounds not counted) and a TimeLimitError once ``deadline``
    (epoch seconds) passes."""

    def check(env: Any) -> None:
        done = env.iteration - env.begin_iteration + 1
        if deadline is not None and time.time() > deadline:
            msg = (f"training stopped after {done} boosting rounds: the time limit was reached; send "
                   f"fewer series or lower n_estimators")
            raise TimeLimitError(msg, field="data")
        if report is not None:
            report(done)

    return check


class LightGBMForecaster(TreeForecaster[LightGBMParams]):
    """Global LightGBM forecaster (registry name ``lightgbm``).

    Parameters: :class:`~forecasting.models.registry.LightGBMParams` (the tree settings of
    :class:`~forecasting.models.trees.TreeForecaster`, plus ``n_estimators``, ``learning_rate``,
    ``num_leaves``, ``max_depth``, ``min_child_samples``, ``subsample``, ``colsample_bytree``,
    ``reg_lambda`` and ``objective``, LightGBM's own).
    """

    name: ClassVar[str] = "lightgbm"
    default_alias: ClassVar[str] = "LightGBM"
    shap_method: ClassVar[str] = "tree_shap (lightgbm pred_contrib, exact)"
    booster_suffix: ClassVar[str] = "txt"  # LightGBM's text model format (no pickle)
    library: ClassVar[str] = "lightgbm"

    def _lgb_params(self, n_rows: int, threads: int) -> dict[str, Any]:
        p = self.params
        # row subsampling only where it leaves rows to train on (LightGBM refuses an empty bag)
        bagging = p.subsample < 1 and int(n_rows * p.subsample) >= 1
        return {"objective": p.objective, "learning_rate": p.learning_rate, "num_leaves": p.num_leaves,
                "max_depth": p.max_depth, "min_child_samples": p.min_child_samples,
                "bagging_fraction": p.subsample if bagging else 1.0, "bagging_freq": 1 if bagging else 0,
                "feature_fraction": p.colsample_bytree, "lambda_l2": p.reg_lambda, "seed": p.seed,
                "deterministic": True, "force_row_wise": True, "verbosity": -1,
                "num_threads": threads}

    #: threads of a prediction call (None: LightGBM's default, every core); a served model gets
    #: :data:`forecasting.runtime.SERVING_THREADS` (:func:`forecasting.runtime.limit_threads`)
    predict_threads: int | None = None

    def _fit_booster(self, X: np.ndarray, y: np.ndarray, names: list[str], *, init: Any = None,
                     rounds: int | None = None) -> Any:
        import lightgbm as lgb

        data = lgb.Dataset(X, label=y, feature_name=names, free_raw_data=True)
        rounds = rounds or self.params.n_estimators
        report = self._round_reporter(rounds)
        callbacks = [_rounds_callback(self.deadline, report)] if self.deadline is not None or report is not None \
            else None
        # init_model: LightGBM starts from its predictions on the data and adds the rounds (the champion untouched)
        return lgb.train(self._lgb_params(len(y), self.train_threads(X)), data, num_boost_round=rounds,
                         callbacks=callbacks, init_model=init)

    def _predict_booster(self, booster: Any, X: np.ndarray, **kw: Any) -> np.ndarray:
        threads = {} if self.predict_threads is None else {"num_threads": self.predict_threads}
        out: np.ndarray = np.asarray(booster.predict(X, pred_contrib=bool(kw.get("pred_contribs")), **threads),
                                     dtype=np.float64)
        return out

    def _write_booster(self, booster: Any, path: Path) -> None:
        booster.save_model(str(path))

    @classmethod
    def _read_booster(cls, path: Path, device: str) -> Any:
        import lightgbm as lgb

        return lgb.Booster(model_file=str(path))

    @classmethod
    def _library_errors(cls) -> tuple[type[Exception], ...]:
        import lightgbm as lgb

        return (lgb.basic.LightGBMError,)

    def _booster_features(self, booster: Any) -> int:
        return int(booster.num_feature())

    def _booster_to_onnx(self, booster: Any, n_features: int, opset: int) -> Any:
        from onnxmltools.convert import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        return convert_lightgbm(booster, initial_types=[("input", FloatTensorType([None, n_features]))],
                                target_opset=opset)
