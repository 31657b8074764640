"""The model zoo: one :class:`Forecaster` protocol, a registry of specs, thin adapters."""

from forecasting.models.base import Fallback, Forecaster, LocalForecaster
from forecasting.models.registry import REGISTRY, ModelSpec, default_season_length, make_model, model_names, parse_spec

__all__ = [
    "REGISTRY",
    "Fallback",
    "Forecaster",
    "LocalForecaster",
    "ModelSpec",
    "default_season_length",
    "make_model",
    "model_names",
    "parse_spec",
]
