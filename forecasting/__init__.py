"""forecasting: time-series and tabular forecasting with explanations, in one place.

The public API (``import forecasting as fc``)::

    fc.forecast(df, model="auto_ets", h=12, level=[80])   # ForecastResult: forecasts, spec, fallbacks, notes
    fc.cross_validation(df, model="auto_ets", h=12, n_windows=3)
    fc.explain(df, model="xgboost", h=12)                  # Explanation (SHAP / integrated gradients)
    fc.make_model("xgboost", freq="1h"); fc.load("models/air")
    fc.validate_panel(df)                                  # the data contract
    fc.ForecastingError, fc.InvalidInputError, ...         # the error classes

pandas in gives pandas out; ``id_col``, ``time_col``, ``target_col`` name other columns. The
layers are described in the repository's ``ARCHITECTURE.md``: :mod:`forecasting.service` is the
one use-case layer the CLI, the HTTP API (:mod:`forecasting.api`) and the jobs share.
Names are imported lazily: ``import forecasting`` loads no model library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "forecast": "forecasting.public",
    "cross_validation": "forecasting.public",
    "explain": "forecasting.public",
    "detect_anomalies": "forecasting.public",
    "forecast_hierarchy": "forecasting.public",
    "load": "forecasting.public",
    "make_model": "forecasting.models.registry",
    "model_names": "forecasting.models.registry",
    "ModelSpec": "forecasting.models.registry",
    "Forecaster": "forecasting.models.base",
    "validate_panel": "forecasting.data",
    "Panel": "forecasting.data",
    "evaluate": "forecasting.evaluation",
    "Explanation": "forecasting.explanation",
    "ForecastResult": "forecasting.service.results",
    "ForecastingError": "forecasting.errors",
    "InvalidInputError": "forecasting.errors",
    "InvalidParameterError": "forecasting.errors",
    "NotFittedError": "forecasting.errors",
    "UnknownModelError": "forecasting.errors",
    "InsufficientHistoryError": "forecasting.errors",
    "CapabilityError": "forecasting.errors",
    "ModelFitError": "forecasting.errors",
    "TimeLimitError": "forecasting.errors",
    "ArtifactIntegrityError": "forecasting.errors",
}

__all__ = [
    "__version__",
    "ArtifactIntegrityError",
    "CapabilityError",
    "Explanation",
    "ForecastResult",
    "Forecaster",
    "ForecastingError",
    "InsufficientHistoryError",
    "InvalidInputError",
    "InvalidParameterError",
    "ModelFitError",
    "ModelSpec",
    "NotFittedError",
    "Panel",
    "TimeLimitError",
    "UnknownModelError",
    "cross_validation",
    "detect_anomalies",
    "evaluate",
    "explain",
    "forecast_hierarchy",
    "forecast",
    "load",
    "make_model",
    "model_names",
    "validate_panel",
]

if TYPE_CHECKING:
    from forecasting.data import Panel, validate_panel
    from forecasting.errors import (
        ArtifactIntegrityError,
        CapabilityError,
        ForecastingError,
        InsufficientHistoryError,
        InvalidInputError,
        InvalidParameterError,
        ModelFitError,
        NotFittedError,
        TimeLimitError,
        UnknownModelError,
    )
    from forecasting.evaluation import evaluate
    from forecasting.explanation import Explanation
    from forecasting.models.base import Forecaster
    from forecasting.models.registry import ModelSpec, make_model, model_names
    from forecasting.public import cross_validation, detect_anomalies, explain, forecast, forecast_hierarchy, load
    from forecasting.service.results import ForecastResult


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        msg = f"module 'forecasting' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
