"""The Temporal Fusion Transformer through neuralforecast (registry name ``tft``).

Lim, Arik, Loeff & Pfister, "Temporal Fusion Transformers for interpretable multi-horizon
time series forecasting", International Journal of Forecasting 37(4), 2021. Training,
forecasting, explanations and the model folder are
:class:`~forecasting.models.neural.NeuralForecaster`'s; TFT adds its own variable-selection
weights (:meth:`TFTForecaster.variable_importance`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl

from forecasting.models.network_core import quiet
from forecasting.models.neural import NeuralForecaster
from forecasting.models.registry import TFTParams

__all__ = ["TFTForecaster"]


class TFTForecaster(NeuralForecaster[TFTParams]):
    """Temporal Fusion Transformer (registry name ``tft``; Lim et al., IJF 2021) through neuralforecast.

    Architecture parameters: ``hidden_size`` (default 64), ``n_head`` (4), ``dropout`` (0.1).
    :meth:`variable_importance` gives TFT's own variable-selection weights.
    """

    name: ClassVar[str] = "tft"
    default_alias: ClassVar[str] = "TFT"

    def _build_net(self, futr: list[str], hist: list[str], stat: list[str], trainer: dict[str, Any]) -> Any:
        from neuralforecast.models import TFT

        p = self._p
        return TFT(h=self.trained_horizon, input_size=self.window, futr_exog_list=futr or None,
                   hist_exog_list=hist or None, stat_exog_list=stat or None, loss=self._loss(),
                   hidden_size=int(p.hidden_size or 64), n_head=int(p.n_head or 4),
                   dropout=float(p.dropout if p.dropout is not None else 0.1), **self._training_settings(), **trainer)

    def variable_importance(self, *, history: Any = None, X_future: Any = None) -> dict[str, pl.DataFrame]:
        """TFT's variable-selection weights for the forecast windows (not SHAP values).

        The softmax weights of TFT's variable selection networks (Lim et al. 2021, 4.2),
        averaged over the series forecast: ``past`` (per input step: each historic input,
        the observed target), ``future`` (per forecast step: each future-known input) and
        ``static``. Each row sums to 1. They say what the network attends to, not how
        much each input moved the forecast: for that use :meth:`explain`.

        Returns
        -------
        dict of str to pl.DataFrame
            ``{"past": ..., "future": ..., "static": ...}`` (present parts only); every
            frame has ``kind = "tft_variable_selection_weight"``.
        """
        import torch

        self.check_is_fitted("variable_importance()")
        panel = self._history(history)
        self._check_history_length(panel, "history" if history is not None else "data")
        H, L = self.trained_horizon, self.window
        _, temporal, static = self._windows(panel, H, X_future)
        with torch.no_grad(), quiet():
            self._core()(torch.from_numpy(np.ascontiguousarray(temporal[:, :L + H])).to(torch.device(self.device_)),
                         torch.from_numpy(static).to(torch.device(self.device_)))
            parts = self.net_.feature_importances()
        out: dict[str, pl.DataFrame] = {}
        names = {"Past variable importance over time": "past", "Future variable importance over time": "future",
                 "Static covariates": "static"}
        for key, frame in parts.items():
            pf = pl.from_pandas(frame.reset_index(names="input" if key == "Static covariates" else "position"))
            out[names.get(key, key)] = pf.with_columns(pl.lit("tft_variable_selection_weight").alias("kind"))
        return out
