"""Explanations for every model family, in the one :class:`~forecasting.explanation.Explanation` shape.

* XGBoost forecaster and tabular XGBoost: exact TreeSHAP through XGBoost's own
  ``pred_contribs`` (Lundberg et al., Nature Machine Intelligence 2020), which runs on
  the GPU when the booster is on one.
* Statistical models are explained by their decomposition (trend / seasonal /
  remainder), not SHAP; that view comes with the reports.

Additivity (base + sum of values = prediction) is measured on every explanation and
reported (:attr:`Explanation.additivity_error`).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from forecasting.errors import CapabilityError
from forecasting.explanation import Explanation

__all__ = ["Explanation", "explain_forecast", "global_importance"]


def explain_forecast(model: Any, h: int, *, history: Any = None, X_future: Any = None, units: str = "y") -> Explanation:
    """SHAP values of each forecast step of a fitted forecaster.

    Parameters
    ----------
    model : fitted forecaster
        A model with an ``explain`` method (``xgboost``).
    h : int
        Steps to forecast and explain.
    history, X_future
        As the model's ``predict``.
    units : {"y", "model"}
        Units of the values (see :meth:`forecasting.models.xgb.XGBoostForecaster.explain`).

    Returns
    -------
    Explanation
        One row per (series, step), keys ``unique_id, ds, step``.

    Raises
    ------
    CapabilityError
        For models without SHAP explanations (the statistical zoo), naming the model.
    """
    if not hasattr(model, "explain"):
        raise CapabilityError(
            f"model '{getattr(model, 'name', type(model).__name__)}' has no SHAP explanation: statistical models are "
            f"explained by their decomposition (trend/seasonal/remainder); use a global model such as 'xgboost' for "
            f"per-feature attributions", field="model")
    return model.explain(h, history=history, X_future=X_future, units=units)


def global_importance(model: Any, data: Any = None, *, max_rows: int = 10_000, seed: int = 0) -> pl.DataFrame:
    """Mean |SHAP| per feature over a dataset (the model's training data by default).

    Returns
    -------
    pl.DataFrame
        ``feature, mean_abs_shap``, largest first.

    Raises
    ------
    CapabilityError
        For models without SHAP explanations.
    """
    if not hasattr(model, "global_importance"):
        raise CapabilityError(
            f"model '{getattr(model, 'name', type(model).__name__)}' has no SHAP global importance", field="model")
    return model.global_importance(data, max_rows=max_rows, seed=seed)
