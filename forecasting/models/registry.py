"""The registry of model specs: one source of truth for the CLI, the API and the tests.

A spec is a model name plus typed, JSON-serialisable hyperparameters::

    {"name": "auto_ets", "params": {"season_length": 24, "model": "ZZA"}}

or just the name (``"auto_ets"``), in which case the defaults apply and
``season_length`` is derived from the data's frequency (:func:`default_season_length`).
Each model's parameters are a ``msgspec.Struct``: unknown or mistyped parameters are
an :class:`~forecasting.errors.InvalidParameterError` naming the parameter.

Adapters are imported lazily (as darts' ``_LAZY_IMPORTS``): naming a model does not
import its library.
"""

from __future__ import annotations

import importlib
import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec

from forecasting.errors import CapabilityError, InvalidParameterError, UnknownModelError
from forecasting.features import FeatureSpec
from forecasting.models.base import BaseForecaster, BaseParams, Forecaster, convert_params

__all__ = [
    "REGISTRY",
    "ModelEntry",
    "ModelSpec",
    "default_season_length",
    "make_model",
    "model_names",
    "BaseParams",
    "convert_params",
    "parse_spec",
    "resolve_spec",
]

SeasonLength = Annotated[int, msgspec.Meta(ge=1, le=10_000)]


class _Seasonal(BaseParams, kw_only=True, forbid_unknown_fields=True):
    season_length: SeasonLength | None = None


class NaiveParams(BaseParams, kw_only=True, forbid_unknown_fields=True):
    """``naive`` has no hyperparameters."""


class SeasonalNaiveParams(_Seasonal, kw_only=True, forbid_unknown_fields=True):
    """``season_length``: steps per season (default from ``freq``)."""


class Naive2Params(_Seasonal, kw_only=True, forbid_unknown_fields=True):
    """``season_length``: steps per season for the seasonality test and decomposition."""


class AutoETSParams(_Seasonal, kw_only=True, forbid_unknown_fields=True):
    """``model``: ETS code (error A/M/Z, trend N/A/M/Z, season N/A/M/Z); ``damped``: force or forbid damping."""

    model: Annotated[str, msgspec.Meta(pattern="^[AMZ][NAMZ][NAMZ]$")] = "ZZZ"
    damped: bool | None = None


class AutoARIMAParams(_Seasonal, kw_only=True, forbid_unknown_fields=True):
    """Orders searched by the Hyndman-Khandakar algorithm."""

    d: Annotated[int, msgspec.Meta(ge=0, le=2)] | None = None
    D: Annotated[int, msgspec.Meta(ge=0, le=1)] | None = None
    max_p: Annotated[int, msgspec.Meta(ge=0, le=10)] = 5
    max_q: Annotated[int, msgspec.Meta(ge=0, le=10)] = 5
    stepwise: bool = True
    #: statsforecast's default (False: exact likelihood); None applies R forecast's rule (approximate when
    #: n > 150 or season_length > 12)
    approximation: bool | None = False


class AutoThetaParams(_Seasonal, kw_only=True, forbid_unknown_fields=True):
    """``model``: restrict to one of STM, OTM, DSTM, DOTM (default: choose); ``decomposition_type`` of the seasonal
    adjustment: unset, statsforecast's rule (multiplicative when every value > 0, else additive); asked for,
    honoured or refused (:class:`forecasting.models.stats.AutoThetaForecaster`)."""

    decomposition_type: Literal["multiplicative", "additive"] | None = None
    model: Literal["STM", "OTM", "DSTM", "DOTM"] | None = None


class DynamicOptimizedThetaParams(_Seasonal, kw_only=True, forbid_unknown_fields=True):
    """``decomposition_type`` of the seasonal adjustment (unset: statsforecast's rule, as ``auto_theta``)."""

    decomposition_type: Literal["multiplicative", "additive"] | None = None


class AutoCESParams(_Seasonal, kw_only=True, forbid_unknown_fields=True):
    """``model``: CES type, ``Z`` (choose by AICc), ``N`` (simple), ``S`` (simple seasonal), ``P`` (partial) or
    ``F`` (full seasonal); statsforecast ``AutoCES``'s names and default."""

    model: Literal["Z", "N", "S", "P", "F"] = "Z"


class IntermittentParams(BaseParams, kw_only=True, forbid_unknown_fields=True):
    """The intermittent-demand models ``croston_classic``, ``croston_optimized``, ``croston_sba``, ``adida`` and
    ``imapa`` have no hyperparameters (statsforecast's fixed or self-optimised smoothing)."""


class TSBParams(BaseParams, kw_only=True, forbid_unknown_fields=True):
    """``tsb``: smoothing of the demand size (``alpha_d``) and of the demand probability (``alpha_p``).

    statsforecast's ``TSB`` has no defaults; 0.1 for both is sktime's ``TSB`` and SAP PAL's ``CrostonTSB`` default
    and the constant of statsforecast's ``CrostonClassic`` (Teunter, Syntetos & Babai, EJOR 214(3) 2011).
    """

    alpha_d: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.1
    alpha_p: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.1


class MSTLParams(BaseParams, kw_only=True, forbid_unknown_fields=True):
    """``season_length``: one period or several (``[24, 168]``); ``trend_model`` forecasts the trend."""

    season_length: SeasonLength | Annotated[list[SeasonLength], msgspec.Meta(min_length=1, max_length=4)] | None = None
    trend_model: Literal["auto_ets", "auto_arima", "auto_theta"] = "auto_ets"


class TreeParams(_Seasonal, kw_only=True, forbid_unknown_fields=True):
    """Settings shared by the global tree models (features, multi-step strategy, conformal intervals); see
    :class:`forecasting.models.trees.TreeForecaster`. A tree library's struct adds its own hyperparameters."""

    features: FeatureSpec | None = None
    recent_lags: bool = False
    strategy: Literal["recursive", "direct"] = "recursive"
    step_group_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    horizon: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None
    conformal_windows: Annotated[int, msgspec.Meta(ge=0, le=20)] | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0


#: Cross-validation of the trees' loss (default features, last h of each training series held out, mean MASE;
#: 200 series of each M3 category and 80 of M4 Hourly, 2026-12): squared / absolute / pseudo-Huber error.
#: XGBoost: M3 yearly 3.788 / 3.577 / 3.680, quarterly 1.225 / 1.191 / 1.229, monthly 1.007 / 1.024 / 1.021,
#: other 2.104 / 1.885 / 2.091, M4 Hourly 0.873 / 0.843 / 0.870 (absolute error: geometric mean ratio 0.958
#: to squared). LightGBM: 3.784 / 3.640 / 3.746, 1.215 / 1.187 / 1.206, 0.987 / 1.019 / 0.994,
#: 2.094 / 1.903 / 2.096, 0.900 / 0.847 / 0.896 (0.964). Absolute error wins on 4 of 5 for both (not monthly).
class XGBoostParams(TreeParams, kw_only=True, forbid_unknown_fields=True):
    """Global XGBoost over the polars feature pipeline; see :class:`forecasting.models.xgb.XGBoostForecaster`.

    ``objective`` defaults to the absolute error, chosen by cross-validation (figures above this class).
    """

    n_estimators: Annotated[int, msgspec.Meta(ge=1, le=20_000)] = 300
    learning_rate: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.05
    max_depth: Annotated[int, msgspec.Meta(ge=1, le=20)] = 7
    min_child_weight: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    subsample: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    colsample_bytree: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    reg_lambda: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    objective: Literal["reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror"] = "reg:absoluteerror"


class ProphetParams(_Seasonal, kw_only=True, forbid_unknown_fields=True):
    """Prophet (Taylor & Letham 2018): piecewise-linear trend with changepoints plus Fourier seasonality.

    ``season_length``: a custom seasonality of that many steps (integer ``ds``; with calendar ``ds`` Prophet's own
    yearly/weekly/daily seasonalities apply); ``uncertainty_samples``: posterior-predictive draws for the
    intervals; ``seed``: their random seed.
    """

    growth: Literal["linear", "flat"] = "linear"
    seasonality_mode: Literal["additive", "multiplicative"] = "additive"
    changepoint_prior_scale: Annotated[float, msgspec.Meta(gt=0)] = 0.05
    seasonality_prior_scale: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    n_changepoints: Annotated[int, msgspec.Meta(ge=0, le=200)] = 25
    uncertainty_samples: Annotated[int, msgspec.Meta(ge=20, le=10_000)] = 500
    seed: int = 0


class LightGBMParams(TreeParams, kw_only=True, forbid_unknown_fields=True):
    """Global LightGBM over the polars feature pipeline; see :class:`forecasting.models.lgbm.LightGBMForecaster`.

    LightGBM's own names and defaults, but ``n_estimators`` and ``learning_rate`` as ``xgboost``'s, and the
    absolute error (``regression_l1``) as ``objective``, chosen by cross-validation (figures above ``XGBoostParams``).
    """

    n_estimators: Annotated[int, msgspec.Meta(ge=1, le=20_000)] = 300
    learning_rate: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.05
    num_leaves: Annotated[int, msgspec.Meta(ge=2, le=131_072)] = 31
    max_depth: Annotated[int, msgspec.Meta(ge=-1, le=64)] = -1
    min_child_samples: Annotated[int, msgspec.Meta(ge=1)] = 20
    subsample: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    colsample_bytree: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.8
    reg_lambda: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    objective: Literal["regression", "regression_l1", "huber"] = "regression_l1"


Level = Annotated[float, msgspec.Meta(gt=0, lt=100)]


class NeuralParams(_Seasonal, kw_only=True, forbid_unknown_fields=True):
    """Training settings shared by ``nhits`` and ``tft`` (neuralforecast's names); see
    :class:`forecasting.models.neural.NeuralForecaster`. ``None`` (and ``target_transform="auto"``):
    derived from the data at fit; ``time_limit``: seconds of training, after which the network
    trained so far is kept."""

    horizon: Annotated[int, msgspec.Meta(ge=1, le=2_000)] | None = None
    input_size: Annotated[int, msgspec.Meta(ge=1, le=20_000)] | None = None
    max_steps: Annotated[int, msgspec.Meta(ge=1, le=200_000)] | None = None
    time_limit: Annotated[float, msgspec.Meta(gt=0, le=1_000_000)] | None = None
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 32
    windows_batch_size: Annotated[int, msgspec.Meta(ge=1, le=65_536)] | None = None
    learning_rate: Annotated[float, msgspec.Meta(gt=0, le=1)] = 1e-3
    num_lr_decays: Annotated[int, msgspec.Meta(ge=-1, le=100)] = 3
    early_stop_patience_steps: Annotated[int, msgspec.Meta(ge=-1, le=10_000)] | None = None
    val_check_steps: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 100
    scaler_type: Literal["robust", "standard", "minmax", "identity"] = "robust"
    level: Annotated[list[Level], msgspec.Meta(min_length=0, max_length=10)] = msgspec.field(
        default_factory=lambda: [80, 95])
    hist_exog: list[str] = msgspec.field(default_factory=list)
    calendar: list[Literal["minute", "hour", "dayofweek", "day", "dayofyear", "week", "month", "quarter",
                           "year"]] | None = None
    random_seed: int = 1
    device: Literal["auto", "cpu", "cuda"] = "auto"
    target_transform: Literal["auto", "log", "log1p"] | None = "auto"


class NHITSParams(NeuralParams, kw_only=True, forbid_unknown_fields=True):
    """NHITS (Challu et al., AAAI 2023): pooling kernels, frequency downsampling per stack, block width."""

    n_pool_kernel_size: Annotated[list[Annotated[int, msgspec.Meta(ge=1, le=1000)]],
                                  msgspec.Meta(min_length=3, max_length=3)] | None = None
    n_freq_downsample: Annotated[list[Annotated[int, msgspec.Meta(ge=1, le=1000)]],
                                 msgspec.Meta(min_length=3, max_length=3)] | None = None
    mlp_units: Annotated[int, msgspec.Meta(ge=4, le=4096)] | None = None
    dropout_prob_theta: Annotated[float, msgspec.Meta(ge=0, lt=1)] | None = None


class TFTParams(NeuralParams, kw_only=True, forbid_unknown_fields=True):
    """Temporal Fusion Transformer (Lim et al., IJF 2021): hidden size, attention heads, dropout."""

    hidden_size: Annotated[int, msgspec.Meta(ge=4, le=1024)] | None = None
    n_head: Annotated[int, msgspec.Meta(ge=1, le=16)] | None = None
    dropout: Annotated[float, msgspec.Meta(ge=0, lt=1)] | None = None


class TSMixerParams(NeuralParams, kw_only=True, forbid_unknown_fields=True):
    """TSMixer (Chen et al., TMLR 2023): mixing blocks, feature-MLP width, dropout, reversible instance norm."""

    n_block: Annotated[int, msgspec.Meta(ge=1, le=16)] | None = None
    ff_dim: Annotated[int, msgspec.Meta(ge=4, le=4096)] | None = None
    dropout: Annotated[float, msgspec.Meta(ge=0, lt=1)] | None = None
    revin: bool = False


#: Ensemble members for intraday data with the seasonal tree features (the ensemble chooses its members
#: from the data when none are given: forecasting.models.ensemble.default_members).
#: Median of two different global XGBoost models (seasonal lags only; with recent lags too) and MSTL:
#: M4 Hourly OWA 0.423, against 0.441 for the best member alone (2026-11-29, from stored forecasts).
DEFAULT_ENSEMBLE_MEMBERS: tuple[str | dict[str, Any], ...] = (
    "xgboost", {"name": "xgboost", "params": {"recent_lags": True}, "fallback": None}, "mstl")


class EnsembleParams(BaseParams, kw_only=True, forbid_unknown_fields=True):
    """``members``: specs combined (default: chosen from the data); ``method``: ``median`` or ``weighted``
    (1 / validation error).

    See :class:`forecasting.models.ensemble.EnsembleForecaster`.
    """

    members: Annotated[list[str | dict[str, Any]], msgspec.Meta(min_length=2, max_length=10)] | None = None
    method: Literal["median", "weighted"] = "median"
    validation_h: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None
    validation_metric: Literal["smape", "mase"] = "smape"
    season_length: SeasonLength | Annotated[list[SeasonLength], msgspec.Meta(min_length=1, max_length=4)] | None = None


class AutoParams(BaseParams, kw_only=True, forbid_unknown_fields=True):
    """``auto``: candidates chosen from the data, scored by rolling-origin cross-validation, combined greedily.

    See :class:`forecasting.models.auto.AutoForecaster`. ``horizon`` and ``level`` are filled from the request
    (the validation horizon and the interval levels calibrated on the validation windows).
    """

    season_length: SeasonLength | Annotated[list[SeasonLength], msgspec.Meta(min_length=1, max_length=4)] | None = None
    horizon: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None
    level: Annotated[list[Level], msgspec.Meta(min_length=0, max_length=10)] = msgspec.field(
        default_factory=lambda: [80, 95])
    candidates: Annotated[list[str | dict[str, Any]], msgspec.Meta(min_length=1, max_length=20)] | None = None
    n_windows: Annotated[int, msgspec.Meta(ge=1, le=20)] = 3
    metric: Literal["owa", "mase", "smape"] = "owa"
    ensemble_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = 25
    selection: Literal["auto", "dataset", "series"] = "auto"
    time_limit: Annotated[float, msgspec.Meta(gt=0, le=86_400)] | None = 600.0
    deep: bool | None = None
    non_negative: bool | None = None


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: name, parameter type, adapter location and description.

    ``extra`` names the optional dependency group the model needs (``pip install 'forecasting[deep]'``)
    and ``requires`` the top-level modules of that group; :meth:`load` checks them first.
    """

    name: str
    params: type[msgspec.Struct]
    target: str  # "module:Class", imported lazily
    summary: str
    family: str = "statistical"
    multi_season: bool = False
    extra: str | None = None
    requires: tuple[str, ...] = ()
    #: parameters filled from the request when the spec leaves them out (``horizon`` from ``h``, ``level``)
    from_request: tuple[str, ...] = ()
    #: integer ``ds`` (no calendar): the model finds its season itself (``season_length`` is left unset)
    detects_season: bool = False

    def load(self) -> type[BaseForecaster[Any]]:
        """Import and return the adapter class.

        Raises
        ------
        CapabilityError
            A library of the model's optional extra is not installed, naming the extra.
        """
        missing = [m for m in self.requires if not _importable(m)]
        if missing:
            msg = (f"model '{self.name}' needs {', '.join(missing)}, from the optional extra '{self.extra}': "
                   f"pip install 'forecasting[{self.extra}]'")
            raise CapabilityError(msg, field="model.name", details={"extra": self.extra, "missing": missing})
        module, _, cls = self.target.partition(":")
        loaded: type[BaseForecaster[Any]] = getattr(importlib.import_module(module), cls)
        return loaded


def _importable(module: str) -> bool:
    """Whether a top-level module can be found (without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


_S = "forecasting.models.stats:"
REGISTRY: dict[str, ModelEntry] = {e.name: e for e in [
    ModelEntry("naive", NaiveParams, _S + "NaiveForecaster", "last value carried forward (random walk)"),
    ModelEntry("naive2", Naive2Params, _S + "Naive2Forecaster", "M4 Naive2: naive on the seasonally adjusted series"),
    ModelEntry("seasonal_naive", SeasonalNaiveParams, _S + "SeasonalNaiveForecaster",
               "value one season earlier (M4 sNaive)"),
    ModelEntry("auto_ets", AutoETSParams, _S + "AutoETSForecaster", "exponential smoothing chosen by AICc"),
    ModelEntry("auto_arima", AutoARIMAParams, _S + "AutoARIMAForecaster", "ARIMA chosen by Hyndman-Khandakar"),
    ModelEntry("auto_theta", AutoThetaParams, _S + "AutoThetaForecaster", "Theta family chosen by in-sample fit"),
    ModelEntry("dynamic_optimized_theta", DynamicOptimizedThetaParams, _S + "DynamicOptimizedThetaForecaster",
               "dynamic optimised Theta (Fiorucci et al. 2016)"),
    ModelEntry("mstl", MSTLParams, _S + "MSTLForecaster", "multiple seasonal-trend decomposition (LOESS) + trend model",
               multi_season=True),
    ModelEntry("auto_ces", AutoCESParams, _S + "AutoCESForecaster",
               "complex exponential smoothing chosen by AICc (Svetunkov & Kourentzes)"),
    ModelEntry("croston_classic", IntermittentParams, _S + "CrostonClassicForecaster",
               "intermittent demand: Croston's method, SES (alpha 0.1) of demand sizes and intervals"),
    ModelEntry("croston_optimized", IntermittentParams, _S + "CrostonOptimizedForecaster",
               "intermittent demand: Croston's method with each smoothing constant optimised in [0.1, 0.3]"),
    ModelEntry("croston_sba", IntermittentParams, _S + "CrostonSBAForecaster",
               "intermittent demand: Syntetos-Boylan approximation (Croston debiased by 0.95)"),
    ModelEntry("adida", IntermittentParams, _S + "ADIDAForecaster",
               "intermittent demand: temporal aggregation at the mean inter-demand interval, then SES"),
    ModelEntry("imapa", IntermittentParams, _S + "IMAPAForecaster",
               "intermittent demand: SES forecasts averaged over every aggregation level up to the mean interval"),
    ModelEntry("tsb", TSBParams, _S + "TSBForecaster",
               "intermittent demand: Teunter-Syntetos-Babai, SES of demand probability and size"),
    ModelEntry("xgboost", XGBoostParams, "forecasting.models.xgb:XGBoostForecaster",
               "global gradient-boosted trees over lag/rolling/calendar features, conformal intervals",
               family="machine-learning"),
    ModelEntry("lightgbm", LightGBMParams, "forecasting.models.lgbm:LightGBMForecaster",
               "global LightGBM over lag/rolling/calendar features, conformal intervals", family="machine-learning",
               extra="lightgbm", requires=("lightgbm",)),
    ModelEntry("prophet", ProphetParams, "forecasting.models.prophet:ProphetForecaster",
               "Prophet (Meta): piecewise-linear trend + Fourier seasonality, a baseline to compare against",
               extra="prophet", requires=("prophet",)),
    ModelEntry("nhits", NHITSParams, "forecasting.models.nhits:NHITSForecaster",
               "NHITS neural network (neuralforecast), quantile outputs; trains on a GPU when present",
               family="deep-learning", extra="deep", requires=("torch", "neuralforecast"), from_request=("horizon",)),
    ModelEntry("tft", TFTParams, "forecasting.models.tft:TFTForecaster",
               "Temporal Fusion Transformer (neuralforecast), quantile outputs; trains on a GPU when present",
               family="deep-learning", extra="deep", requires=("torch", "neuralforecast"), from_request=("horizon",)),
    ModelEntry("tsmixer", TSMixerParams, "forecasting.models.tsmixer:TSMixerForecaster",
               "TSMixer all-MLP network (neuralforecast TSMixer/TSMixerx, channel-independent), quantile outputs; "
               "trains on a GPU when present",
               family="deep-learning", extra="deep", requires=("torch", "neuralforecast"), from_request=("horizon",)),
    ModelEntry("auto", AutoParams, "forecasting.models.auto:AutoForecaster",
               "candidates chosen from the data, cross-validated and combined by greedy ensemble selection",
               family="combination", multi_season=True, from_request=("horizon", "level"),
               detects_season=True),
    ModelEntry("ensemble", EnsembleParams, "forecasting.models.ensemble:EnsembleForecaster",
               "median or validation-weighted combination of member models", family="combination", multi_season=True),
]}


def model_names() -> list[str]:
    """Registered model names, in registry order."""
    return list(REGISTRY)


class ModelSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A model and its hyperparameters, e.g. ``{"name": "auto_ets", "params": {"season_length": 24}}``.

    The one spec type of the library, the CLI and the API (its request bodies use it as
    is). ``fallback`` names a model used for series too short for this one (or that it
    fails on); every such series is reported. Without it they are errors.
    """

    name: Annotated[str, msgspec.Meta(description="Registry name, see GET /v1/model-types.", examples=["auto_ets"])]
    params: Annotated[dict[str, Any], msgspec.Meta(description="Hyperparameters; see GET /v1/model-types.")] = (
        msgspec.field(default_factory=dict))
    fallback: Annotated[str | None, msgspec.Meta(
        description="Model used, and reported, for series too short for `name` or that it fails on.")] = None


def parse_spec(spec: ModelSpec | str | dict[str, Any]) -> ModelSpec:
    """Accept a name (``"auto_ets"``), a JSON object string, a dict or a :class:`ModelSpec`.

    Raises
    ------
    UnknownModelError
        Unknown name (the message lists the registered ones and the closest match).
    InvalidParameterError
        A malformed spec or parameters of the wrong type or range, naming the parameter.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("{"):
            try:
                spec = msgspec.json.decode(text.encode(), type=ModelSpec)
            except msgspec.ValidationError as exc:
                msg = f"invalid model spec: {exc}"
                raise InvalidParameterError(msg, field="model") from exc
            except msgspec.DecodeError as exc:
                msg = f"model spec is not valid JSON: {exc}"
                raise InvalidParameterError(msg, field="model") from exc
        else:
            spec = ModelSpec(name=text)
    elif isinstance(spec, dict):
        try:
            spec = msgspec.convert(spec, ModelSpec)
        except msgspec.ValidationError as exc:
            msg = f"invalid model spec: {exc}"
            raise InvalidParameterError(msg, field="model") from exc
    elif not isinstance(spec, ModelSpec):  # model=None or a number reached spec.name (an AttributeError)
        msg = (f"model must be a registry name such as 'auto_ets', a spec (JSON text, a dict or a ModelSpec: name, "
               f"params, fallback) or, where one is accepted, a fitted model (fc.load, make_model(...).fit); "
               f"got {type(spec).__name__}")
        raise InvalidParameterError(msg, field="model")
    entry = _entry(spec.name)
    _params(entry, spec.params)
    if spec.fallback is not None:
        if spec.fallback == spec.name:
            msg = f"fallback must differ from the model, got '{spec.fallback}'"
            raise InvalidParameterError(msg, field="model.fallback")
        _entry(spec.fallback, field="model.fallback")
    return spec


def _entry(name: str, *, field: str = "model.name") -> ModelEntry:
    if name not in REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, list(REGISTRY), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        msg = f"unknown model '{name}'{hint}; registered models: {', '.join(REGISTRY)}"
        raise UnknownModelError(msg, field=field,
                                details={"models": list(REGISTRY)})
    return REGISTRY[name]


def _params(entry: ModelEntry, params: dict[str, Any]) -> msgspec.Struct:
    return convert_params(entry.name, entry.params, params)


_SEASONS = {"m": 60 * 24, "h": 24, "d": 7, "bd": 5, "w": 52, "mo": 12, "q": 4, "y": 1}
_MULTI = {"h": [24, 168], "m": [60 * 24, 60 * 24 * 7], "d": [7, 365]}


def default_season_length(freq: str | int | None, *, multiple: bool = False) -> int | list[int]:
    """The conventional season length for a frequency.

    Hourly 24 (multiple: [24, 168]), daily 7, business days 5 (a week), weekly 52, monthly 12, quarterly 4,
    yearly 1, sub-hourly one day of steps (30m -> 48); integer steps 1 (no known
    season: pass ``season_length``). With ``multiple``, any step that divides a day gets the day and the
    week in steps, as hourly data does (30m -> [48, 336], 15m -> [96, 672], 2h -> [12, 84]); daily
    [7, 365]. Conventions of the M4 competition and Hyndman & Athanasopoulos, *FPP3*, 12.1
    (multiple seasonal periods of intraday data: FPP3, 12.1, Table 12.1).
    """
    if freq is None or isinstance(freq, int):
        return 1
    m = re.match(r"^(\d+)(ns|us|ms|s|m|h|d|bd|w|mo|q|y)$", freq)
    if not m:
        return 1
    n, unit = int(m.group(1)), m.group(2)
    if unit == "mo":
        unit, n = ("q", n // 3) if n % 3 == 0 and n > 1 else ("mo", n)
    if multiple and unit in _MULTI and n == 1:
        return list(_MULTI[unit])
    if multiple and unit in ("m", "h") and all(p % n == 0 for p in _MULTI[unit]):
        return [p // n for p in _MULTI[unit]]  # the day and the week in steps of n minutes or hours
    base = _SEASONS.get(unit)
    if base is None:
        return 1
    if unit in ("m", "h") and base % n == 0:
        return base // n
    return base if n == 1 else 1


def seasons_shown(seasons: list[int], lengths: Mapping[str, int], *,
                  keep: list[int] | None = None) -> tuple[list[int], str | None]:
    """The seasons the data can show: those with at least two cycles in the median series (a season of 1 always),
    and a note naming the others (None when all are kept).

    Parameters
    ----------
    seasons : list of int
        Candidate season lengths, in steps.
    lengths : mapping of unique_id to int
        Each series' observation count.
    keep : list of int, optional
        What to return when none is shown (default: none).
    """
    median = int(statistics.median(lengths.values()))
    kept = [s for s in seasons if s == 1 or median >= 2 * s] or list(keep or [])
    dropped = [s for s in seasons if s not in kept]
    note = (f"season_length {', '.join(map(str, dropped))} left out: the median series has {median} observations, "
            f"fewer than two seasons") if dropped else None
    return kept, note


def _season_origin(freq: str | int | None) -> str:
    return f"freq '{freq}'" if isinstance(freq, str) else "integer ds (no calendar: pass season_length)"


def resolve_spec(spec: ModelSpec | str | dict[str, Any], *, freq: str | int | None,
                 season_length: int | list[int] | None = None,
                 lengths: Mapping[str, int] | None = None, h: int | None = None,
                 level: list[float] | tuple[float, ...] | None = None) -> tuple[ModelSpec, list[str]]:
    """The effective spec for data of frequency ``freq``, and the notes a user should read about it.

    The one place where parameters derived from the data are filled in: a spec that
    leaves ``season_length`` out gets

    * ``season_length`` (the data's known season, e.g. a dataset's catalogue entry)
      when given: single-season models take it (the first period of a list), multi-season
      models (``mstl``, ``ensemble``) every conventional period of ``freq`` when there are
      several (hourly: ``[24, 168]``), else it;
    * otherwise :func:`default_season_length` of ``freq`` (``multiple`` for multi-season
      models), with the note ``"season_length=7 derived from freq '1d'"`` (integer ``ds``:
      1, and the note says to pass it).

    With ``lengths`` (each series' observation count) a note also names the series
    shorter than two seasons (three for ``naive2``), which a seasonal model may fit
    without a seasonal component.

    Parameters
    ----------
    spec : ModelSpec, name, JSON string or dict
    freq : str or int or None
        The data's frequency (a polars offset such as ``"1h"``, or an integer step).
    season_length : int or list of int, optional
        The data's season when known better than from ``freq``.
    lengths : mapping of unique_id to int, optional
    h, level : optional
        The request's horizon and interval levels, given to models that take them from the request
        (``ModelEntry.from_request``: ``auto`` validates at ``h`` and calibrates ``level``) when the
        spec leaves them out.

    Returns
    -------
    (ModelSpec, list of str)
        The spec with the derived parameters in ``params`` (the others untouched), and
        the notes.

    Raises
    ------
    UnknownModelError, InvalidParameterError
        As :func:`parse_spec`.
    """
    spec = parse_spec(spec)
    entry = REGISTRY[spec.name]
    notes: list[str] = []
    params = dict(spec.params)
    detects = entry.detects_season and season_length is None and not isinstance(freq, str)
    if "season_length" in entry.params.__struct_fields__ and params.get("season_length") is None and not detects:
        if season_length is None:
            params["season_length"] = default_season_length(freq, multiple=entry.multi_season)
            notes.append(f"season_length={params['season_length']} derived from {_season_origin(freq)}")
        elif isinstance(season_length, list):
            params["season_length"] = list(season_length) if entry.multi_season else season_length[0]
        else:
            several = default_season_length(freq, multiple=True) if entry.multi_season else season_length
            params["season_length"] = several if isinstance(several, list) else season_length
        several = params["season_length"]
        if isinstance(several, list) and lengths:
            # derived periods the data cannot show are left out, as auto does (the first is kept): an explicit
            # list is the caller's and keeps its own refusal
            kept, note = seasons_shown(several, lengths, keep=[several[0]])
            if note:
                notes.append(note)
                params["season_length"] = kept if len(kept) > 1 else kept[0]
        spec = ModelSpec(name=spec.name, params=params, fallback=spec.fallback)
    request = {"horizon": h, "level": None if level is None else list(level)}
    taken = {k: request[k] for k in entry.from_request if request.get(k) is not None and k not in spec.params}
    if taken:
        params.update(taken)
        spec = ModelSpec(name=spec.name, params=params, fallback=spec.fallback)
    season = params.get("season_length")
    m = max(season) if isinstance(season, list) else season
    if lengths is not None and isinstance(m, int) and m > 1:
        need = 3 * m if spec.name == "naive2" else 2 * m
        short = [u for u, n in lengths.items() if n < need]
        # statistical models fit short series without their season (seasonal_naive and mstl refuse them
        # outright); global models hand them to the fallback or refuse them, which says so itself
        if short and entry.family == "statistical" and spec.name not in ("seasonal_naive", "mstl"):
            listed = ", ".join(f"'{u}'" for u in short[:5]) + (f" and {len(short) - 5} more" if len(short) > 5 else "")
            notes.append(f"{len(short)} series ({listed}) have fewer than {need} observations ({need // m} seasons "
                         f"of {m}): '{spec.name}' may fit them without a seasonal component, as it needs about "
                         f"{need // m} seasons to estimate one")
    return spec, notes


def make_model(spec: ModelSpec | str | dict[str, Any], *, freq: str | int | None = None,
               n_jobs: int = 1) -> Forecaster:
    """Build a model from its spec.

    Parameters
    ----------
    spec : ModelSpec, name, JSON string or dict
    freq : str or int, optional
        The data's frequency, used for ``season_length`` when the spec leaves it out
        (see :func:`resolve_spec`).
    n_jobs : int, default 1
        Worker processes for fitting (-1: all CPUs).

    Returns
    -------
    Forecaster
        An adapter built from its parameter struct (``model.params``).

    Raises
    ------
    UnknownModelError, InvalidParameterError
    """
    spec, _ = resolve_spec(spec, freq=freq)
    fallback = None
    if spec.fallback is not None:
        fallback = make_model(ModelSpec(name=spec.fallback), freq=freq, n_jobs=n_jobs)
    entry = REGISTRY[spec.name]
    return entry.load()(_params(entry, spec.params), fallback=fallback, n_jobs=n_jobs)
