"""The model zoo: one :class:`Forecaster` contract with declared capabilities, one registry of specs, thin adapters.

One family per module: :mod:`~forecasting.models.stats` (statistical, on
:mod:`~forecasting.models.local`), :mod:`~forecasting.models.xgb` (on the tree base
:mod:`~forecasting.models.trees`), :mod:`~forecasting.models.nhits` and
:mod:`~forecasting.models.tft` (on :mod:`~forecasting.models.neural`), the latter two
families on :mod:`~forecasting.models.global_base`; :mod:`~forecasting.models.ensemble`.
"""

from forecasting.models.base import (
    BaseForecaster,
    Capabilities,
    Capability,
    Fallback,
    Forecaster,
    capabilities_of,
    require,
)
from forecasting.models.local import LocalForecaster
from forecasting.models.registry import (
    REGISTRY,
    ModelSpec,
    default_season_length,
    make_model,
    model_names,
    parse_spec,
    resolve_spec,
)

__all__ = [
    "REGISTRY",
    "BaseForecaster",
    "Capabilities",
    "Capability",
    "Fallback",
    "Forecaster",
    "LocalForecaster",
    "ModelSpec",
    "capabilities_of",
    "default_season_length",
    "make_model",
    "model_names",
    "parse_spec",
    "require",
    "resolve_spec",
]
