"""Request and response bodies (msgspec), documented in the OpenAPI page."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar.params import Parameter

from forecasting.api.settings import Settings
from forecasting.hierarchy import Method
from forecasting.models.registry import ModelSpec
from forecasting.store.names import ALIAS_PATTERN, MAX_VERSION, NAME_PATTERN, REF_PATTERN

__all__ = [
    "MAX_VERSION", "AliasPath", "AliasRequest", "NamePath", "RefPath", "Contribution", "CrossValidationRequest", "CrossValidationResponse", "ExplainRequest",
    "ExplainResponse", "FallbackOut", "FilledOut", "ForecastRequest", "ForecastResponse", "HealthOut",
    "HierarchyIn", "HierarchyOut", "JobOut",
    "JobResultOut", "JobTimings", "ModelDetailOut", "ModelInfo", "ModelSummaryOut", "PredictRequest",
    "PredictResponse", "Problem", "ReadyOut", "RegisteredForecastRequest", "TrainRequest", "VersionOut",
]


class Problem(msgspec.Struct):
    """An RFC 9457 problem (media type application/problem+json)."""

    type: Annotated[str, msgspec.Meta(description="Problem kind, e.g. /problems/invalid-input.")]
    title: str
    status: int
    detail: Annotated[str, msgspec.Meta(description="What is wrong, naming the series, rows and rule.")]
    field: Annotated[str | None, msgspec.Meta(description="The request field at fault, e.g. h, data.ds, model.name.")] = None
    details: dict[str, Any] | None = None


def enforced(**bounds: Any) -> dict[str, Any]:
    """``extra_json_schema`` for bounds the service checks itself: the OpenAPI document shows them (Litestar's
    ``schema_extra``, ``Schema`` attribute names) while decoding does not, so a request outside them is answered
    by the service's own 422 problem naming the field and rule (msgspec's constraints would answer 400 first)."""
    return {"extra": bounds}


#: what ``forecasting.data.validate_h`` enforces against the service's ``max_h`` (declared with the default
#: settings; the app's document says the operator's value: :data:`SETTING_BOUNDS`)
H_BOUNDS = enforced(minimum=1, maximum=Settings.max_h)
#: what ``forecasting.data.validate_levels`` enforces: each level strictly inside (0, 100), percent
LEVEL_BOUNDS = enforced(items={"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100})
#: at least one row (``validate_panel``: "data is empty") and at most the service's ``max_rows`` (declared with the
#: default settings, as ``H_BOUNDS``)
DATA_BOUNDS = enforced(min_items=1, max_items=Settings.max_rows)
#: the documented bounds that are service settings: request field -> {JSON-schema keyword: ``Settings`` attribute}.
#: Declared above with the defaults; :func:`forecasting.api.docs.document_settings` writes the live values into
#: the app's OpenAPI document (``FORECASTING_MAX_H=200``: every ``h`` says ``maximum: 200``).
SETTING_BOUNDS: dict[str, dict[str, str]] = {"h": {"maximum": "max_h"}, "data": {"maxItems": "max_rows"}}

#: path parameters documented with the rules validation enforces (forecasting.store.names): a request outside them
#: is still answered by the service's own 422 naming the field (``schema_extra`` documents, it does not validate)
NamePath = Annotated[str, Parameter(schema_extra={"pattern": NAME_PATTERN})]
AliasPath = Annotated[str, Parameter(schema_extra={"pattern": ALIAS_PATTERN})]
RefPath = Annotated[str, Parameter(schema_extra={"pattern": REF_PATTERN})]

Rows = Annotated[list[dict[str, Any]], msgspec.Meta(
    description="Long format: one object per observation with unique_id, ds (ISO 8601 timestamp or integer step) "
                "and y (number; null only with fill_missing).",
    examples=[[{"unique_id": "s1", "ds": "2024-01-01T00:00:00", "y": 10.0},
               {"unique_id": "s1", "ds": "2024-01-01T01:00:00", "y": 12.5}]])]
Columns = Annotated[dict[str, list[Any]], msgspec.Meta(
    description="Column form: {\"unique_id\": [...], \"ds\": [...], \"y\": [...]}.")]


class HierarchyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A hierarchical or grouped structure over the bottom series of ``data`` (issue 17)."""

    nested: Annotated[str | list[str] | None, msgspec.Meta(
        description="Nested columns of data, top first ('state/region' or [\"state\", \"region\"]).",
        examples=["state/region"])] = None
    group: Annotated[str | list[str] | None, msgspec.Meta(
        description="Crossed columns of data ('purpose' or [\"state\", \"gender\"]).", examples=[["purpose"]])] = None
    S: Annotated[Rows | Columns | None, msgspec.Meta(
        description="Instead of columns: the summing matrix, unique_id of every series then one 0/1 column per "
                    "bottom series (hierarchicalforecast's S_df).")] = None
    tags: Annotated[dict[str, list[str]] | None, msgspec.Meta(
        description="With S: level name -> its series, top first (each level partitions the bottom series).")] = None
    methods: Annotated[list[Method], msgspec.Meta(
        description="Reconciliation methods: bottom_up, top_down, middle_out, ols, wls_struct, wls_var, mint_shrink.",
        examples=[["bottom_up", "ols", "mint_shrink"]])] = msgspec.field(
        default_factory=lambda: ["bottom_up", "ols", "wls_struct"])
    middle_level: Annotated[str | None, msgspec.Meta(description="middle_out's level (e.g. 'state').")] = None


class HierarchyOut(msgspec.Struct):
    """The structure and the coherence check of a hierarchical forecast."""

    methods: list[str]
    levels: Annotated[dict[str, list[str]], msgspec.Meta(description="Level name -> its series, top first.")]
    coherence: Annotated[dict[str, float], msgspec.Meta(
        description="Per forecast column: the largest relative gap between an aggregate and the sum of its bottom "
                    "series (reconciled columns: below 1e-6).")]


class ForecastRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Series to forecast and how."""

    data: Annotated[Rows | Columns, msgspec.Meta(
        description="The series in long format, as rows [{\"unique_id\", \"ds\", \"y\"}, ...] or as columns "
                    "{\"unique_id\": [...], \"ds\": [...], \"y\": [...]}. unique_id: series name; ds: ISO 8601 "
                    "timestamp (optionally with a UTC offset) or integer step; y: number (null only with "
                    "fill_missing). Extra columns are exogenous inputs (models that use them only).",
        examples=[{"unique_id": ["s1", "s1", "s1", "s1", "s1", "s1", "s1", "s1"],
                   "ds": ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04", "2024-03-05", "2024-03-06",
                          "2024-03-07", "2024-03-08"],
                   "y": [112, 118, 132, 129, 121, 135, 148, 110]}], extra_json_schema=DATA_BOUNDS)]
    h: Annotated[int, msgspec.Meta(description="Steps of freq to forecast per series (1 to the service's max_h, "
                                               "1,000 by default).", examples=[3], extra_json_schema=H_BOUNDS)]
    model: Annotated[str | ModelSpec, msgspec.Meta(
        description="Registry name or spec object; default 'auto' (candidates cross-validated and combined).",
        examples=["auto", "auto_ets"])] = "auto"
    freq: Annotated[str | int | None, msgspec.Meta(
        description="Frequency as a polars offset ('1h', '1d', '1bd' for business days, '1mo'), a pandas alias "
                    "('H', 'D', 'B', 'W-SUN', 'MS', 'ME', 'QS', '15min') or an integer step for integer ds; "
                    "inferred when omitted.")] = None
    level: Annotated[list[float], msgspec.Meta(
        description="Prediction-interval levels in percent, each in (0, 100).", examples=[[80, 95]],
        extra_json_schema=LEVEL_BOUNDS)] = []
    fill_missing: Annotated[Literal["zero", "forward", "interpolate"] | None, msgspec.Meta(
        description="Fill null y instead of rejecting them; filled rows are reported.")] = None
    fill_gaps: Annotated[bool, msgspec.Meta(
        description="Insert missing timestamps (needs fill_missing); inserted rows are reported.")] = False
    non_negative: Annotated[bool | None, msgspec.Meta(
        description="Clip forecasts and bounds at 0. Default: when every observed y is >= 0; false: never. "
                    "What was clipped is counted in notes.")] = None
    X_future: Annotated[Rows | Columns | None, msgspec.Meta(
        description="Future values of exogenous columns for models that use them (xgboost): unique_id, ds and the "
                    "columns, for the h steps after each series' end.")] = None
    hierarchy: Annotated[HierarchyIn | None, msgspec.Meta(
        description="Forecast every aggregate of this structure too and reconcile: the forecasts then carry "
                    "<alias>/<method> columns and a level per series.")] = None


class FallbackOut(msgspec.Struct):
    """A series forecast by the fallback model, and why."""

    unique_id: str
    model: str
    reason: str


class CandidateOut(msgspec.Struct):
    """One candidate of ``auto``'s search."""

    model: Annotated[str, msgspec.Meta(description="Candidate label (registry name; a suffix when repeated).")]
    spec: ModelSpec
    status: Annotated[Literal["pending", "scored", "unvalidated", "dropped"], msgspec.Meta(
        description="scored: cross-validated; unvalidated: no series long enough to validate on (equal weights); "
                    "dropped: could not apply or ran out of time (see reason).")]
    reason: str | None
    score: Annotated[float | None, msgspec.Meta(description="Validation error (the selection's metric).")]
    seconds: Annotated[float, msgspec.Meta(description="Cross-validation wall time, seconds.")]
    weight: Annotated[float, msgspec.Meta(description="Share in the combination learnt over all series.")]


class SelectionOut(msgspec.Struct):
    """``auto`` only: what was tried and what was chosen (rolling-origin validation, greedy selection)."""

    season_length: int | list[int]
    horizon: Annotated[int, msgspec.Meta(description="Validation horizon, steps.")]
    n_windows: Annotated[int, msgspec.Meta(description="Validation origins.")]
    series_validated: int
    metric: Annotated[Literal["owa", "mase", "smape"], msgspec.Meta(
        description="The validation loss: OWA (MASE and sMAPE each relative to seasonal naive's, averaged; "
                    "seasonal naive scores 1), MASE or sMAPE.")]
    selection: Annotated[Literal["dataset", "series"], msgspec.Meta(
        description="Whether the weights were learnt over all series or per series.")]
    candidates: list[CandidateOut]
    left_out: Annotated[list[str], msgspec.Meta(description="Models not tried on this data, and why.")]
    members: Annotated[dict[str, float], msgspec.Meta(description="The chosen combination: member -> weight.")]
    seconds: Annotated[float, msgspec.Meta(description="Search and refit wall time, seconds.")]
    notes: list[str]


class ModelInfo(msgspec.Struct):
    """A registered model."""

    name: str
    family: str
    summary: str
    parameters: list[str]


class HealthOut(msgspec.Struct):
    """Liveness."""

    status: Literal["ok"]
    version: str


class CrossValidationRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Backtest models on rolling origins and score each window."""

    data: Annotated[Rows | Columns, msgspec.Meta(description="Series in long format, as in POST /v1/forecast.",
                                                 extra_json_schema=DATA_BOUNDS)]
    h: Annotated[int, msgspec.Meta(description="Steps forecast from each origin.", examples=[12],
                                   extra_json_schema=H_BOUNDS)]
    models: Annotated[list[str | ModelSpec], msgspec.Meta(
        min_length=1, max_length=8, description="Models to compare (names or spec objects).",
        examples=[["seasonal_naive", "auto_ets"]])]
    n_windows: Annotated[int, msgspec.Meta(ge=1, le=20, description="Number of forecast origins.")] = 1
    step_size: Annotated[Annotated[int, msgspec.Meta(ge=1)] | None, msgspec.Meta(
        description="Steps between origins (default h).")] = None
    level: Annotated[list[float], msgspec.Meta(description="Interval levels for coverage and MSIS.",
                                               extra_json_schema=LEVEL_BOUNDS)] = []
    freq: str | int | None = None
    season_length: Annotated[Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None, msgspec.Meta(
        description="MASE/MSIS scale lag (default: the frequency's season).")] = None


class CrossValidationResponse(msgspec.Struct):
    """Metrics per model and window (sMAPE 0-200, MASE, MAE, RMSE; coverage and MSIS per level)."""

    metrics: list[dict[str, Any]]


# --------------------------------------------------------------------------- registered models and jobs
class TrainRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Train and register a new version of a model (JSON form; the multipart form sends the same fields as form
    fields and the data as a CSV or Parquet file in `file`)."""

    name: Annotated[str, msgspec.Meta(description="Model name: 1-63 of a-z, 0-9, '_', '.', '-'.",
                                      examples=["demand"],
                                      extra_json_schema={"pattern": "^[a-z0-9][a-z0-9_.-]{0,62}$"})]
    data: Annotated[Rows | Columns, msgspec.Meta(
        description="Training data. forecast: long format unique_id, ds, y[, exogenous]; tabular: a table with the "
                    "target column.", extra_json_schema={"minItems": 1, "maxItems": Settings.max_rows})]
    model: Annotated[str | dict[str, Any], msgspec.Meta(
        description="forecast: registry name or spec {name, params, fallback} (GET /v1/model-types); tabular: "
                    "TabularModel arguments {kind, algorithm, params, seed...}.",
        examples=[{"name": "xgboost", "params": {"n_estimators": 50}}])] = "auto_ets"
    kind: Literal["forecast", "tabular"] = "forecast"
    target: Annotated[str | None, msgspec.Meta(description="tabular: the target column.")] = None
    h: Annotated[int | None, msgspec.Meta(
        description="forecast: validation window and the version's max_h (default: the model's calibrated "
                    "horizon).", extra_json_schema={"minimum": 1, "maximum": Settings.max_h})] = None
    freq: str | int | None = None
    fill_missing: Annotated[Literal["zero", "forward", "interpolate"] | None, msgspec.Meta(
        description="forecast: fill null y instead of rejecting them; filled rows are reported.")] = None
    fill_gaps: Annotated[bool, msgspec.Meta(
        description="forecast: insert missing timestamps (needs fill_missing).")] = False
    hierarchy: Annotated[dict[str, Any] | None, msgspec.Meta(
        description="forecast: train over a hierarchical or grouped structure, the same object as POST "
                    "/v1/forecast's 'hierarchy' (nested/group columns of data, or S and tags; methods; middle_level). "
                    "Every aggregate is built and trained on; the structure and methods are kept with the version, "
                    "whose forecasts are reconciled. Multipart: the object as JSON text.")] = None


class RegisteredForecastRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Forecast with a registered model."""

    h: Annotated[int, msgspec.Meta(description="Steps to forecast per series (beyond the version's max_h, the "
                                                "window it was validated on, a note says so).",
                                   examples=[24], extra_json_schema=H_BOUNDS)]
    level: Annotated[list[float], msgspec.Meta(description="Interval levels in percent, each in (0, 100).",
                                               extra_json_schema=LEVEL_BOUNDS)] = []
    history: Annotated[Rows | Columns | None, msgspec.Meta(
        description="Series to forecast from. Saved (global) models: optional, default the stored training tail; "
                    "spec-only (statistical) versions: required, they refit on it.")] = None
    X_future: Annotated[Rows | Columns | None, msgspec.Meta(
        description="Future exogenous values for the h steps (models trained with exogenous columns).")] = None
    fill_missing: Annotated[Literal["zero", "forward", "interpolate"] | None, msgspec.Meta(
        description="Fill null y of history instead of rejecting them; filled rows are reported.")] = None
    fill_gaps: Annotated[bool, msgspec.Meta(
        description="Insert missing timestamps in history (needs fill_missing); inserted rows are reported.")] = False
    hierarchy: Annotated[dict[str, Any] | None, msgspec.Meta(
        description="Refused (422, field 'hierarchy'): a version's structure is fixed at training. A version "
                    "trained with a hierarchy takes the bottom series in 'history' and answers reconciled "
                    "forecasts with the 'hierarchy' member.")] = None


class ExplainRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """SHAP explanation. Forecast models: `h` (and optionally history, X_future, series, steps); tabular: `rows`."""

    h: Annotated[int | None, msgspec.Meta(description="Forecast models: steps to forecast and explain.",
                                          extra_json_schema=H_BOUNDS)] = None
    history: Rows | Columns | None = None
    X_future: Rows | Columns | None = None
    series: Annotated[list[str] | None, msgspec.Meta(description="Only these series (default all).")] = None
    steps: Annotated[list[int] | None, msgspec.Meta(description="Only these steps, 1..h (default all).")] = None
    rows: Annotated[Rows | Columns | None, msgspec.Meta(description="Tabular models: the rows to explain.")] = None
    k: Annotated[int, msgspec.Meta(ge=1, le=1000, description="Contributions kept per row, largest |shap| first.")] = 5
    approximate: Annotated[bool, msgspec.Meta(
        description="Trees: fast approximate attributions (Saabas paths, not Shapley values) for dashboards; the "
                    "method says so.")] = False


class InlineExplainRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Series to fit a model on and the forecast steps to explain (the data fields as in POST /v1/forecast)."""

    data: Annotated[Rows | Columns, msgspec.Meta(description="The series in long format, as in POST /v1/forecast.",
                                                 extra_json_schema=DATA_BOUNDS)]
    h: Annotated[int, msgspec.Meta(description="Steps to forecast and explain per series.", examples=[12],
                                   extra_json_schema=H_BOUNDS)]
    model: Annotated[str | ModelSpec, msgspec.Meta(
        description="Registry name or spec: trees (SHAP), networks (integrated gradients) or statistical models "
                    "(labelled decomposition).", examples=["xgboost", "mstl"])] = "xgboost"
    freq: str | int | None = None
    X_future: Rows | Columns | None = None
    fill_missing: Literal["zero", "forward", "interpolate"] | None = None
    fill_gaps: bool = False
    series: Annotated[list[str] | None, msgspec.Meta(description="Only these series (default all).")] = None
    steps: Annotated[list[int] | None, msgspec.Meta(description="Only these steps, 1..h (default all).")] = None
    k: Annotated[int, msgspec.Meta(ge=1, le=1000, description="Contributions kept per row, largest |shap| first.")] = 5
    approximate: Annotated[bool, msgspec.Meta(
        description="Trees: fast approximate attributions (Saabas paths, not Shapley values); the method says "
                    "so.")] = False


class PredictRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Rows to predict with a registered tabular model."""

    rows: Annotated[Rows | Columns, msgspec.Meta(description="Feature columns the model was trained on.")]


class AliasRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The version an alias points to."""

    version: Annotated[int, msgspec.Meta(ge=1, le=MAX_VERSION, description="Version number.", examples=[1])]


# --------------------------------------------------------------------------- typed responses
class FilledOut(msgspec.Struct):
    """A row whose y was filled (fill_missing / fill_gaps)."""

    unique_id: str
    ds: str
    reason: str
    policy: str


class ForecastResponse(msgspec.Struct, omit_defaults=True):
    """Forecasts in long format with Nixtla's column names, plus what was decided for the caller.

    Every forecast route answers with these fields: inline data (POST /v1/forecast) and registered
    versions (POST /v1/models/{ref}/forecast, where ``ref``, ``name`` and ``version`` are set).
    """

    model: Annotated[str, msgspec.Meta(description="Model name (registry name, e.g. auto_ets, xgboost).")]
    alias: Annotated[str, msgspec.Meta(description="Name of the forecast column (the library's class name).")]
    params: Annotated[dict[str, Any], msgspec.Meta(description="Effective hyperparameters (derived ones filled in).")]
    freq: str | int
    h: int
    level: list[float]
    forecasts: Annotated[list[dict[str, Any]], msgspec.Meta(
        description="h objects per series: unique_id, ds (in the caller's timezone), <alias>, "
                    "<alias>-lo-<level>, <alias>-hi-<level>.")]
    fallbacks: Annotated[list[FallbackOut], msgspec.Meta(description="Series forecast by the fallback model.")]
    filled: Annotated[list[FilledOut], msgspec.Meta(
        description="Rows whose y was filled: the first 1,000; a note counts any beyond.")]
    notes: list[str]
    runtime: Annotated[Literal["native", "onnxruntime"], msgspec.Meta(
        description="What computed the forecasts: the native model or onnxruntime from its ONNX export.")]
    ref: Annotated[str | None, msgspec.Meta(description="Registered models only: name@version that answered.")] = None
    name: Annotated[str | None, msgspec.Meta(description="Registered models: the model name.")] = None
    version: Annotated[int | None, msgspec.Meta(description="Registered models: the version.")] = None
    selection: Annotated[SelectionOut | None, msgspec.Meta(
        description="Model 'auto' only: the candidates tried, their validation scores and the chosen "
                    "combination.")] = None
    hierarchy: Annotated[HierarchyOut | None, msgspec.Meta(
        description="Requests with a hierarchy only: the levels, methods and coherence check.")] = None


class VersionOut(msgspec.Struct):
    """One registered version."""

    name: str
    version: int
    ref: Annotated[str, msgspec.Meta(description="name@version")]
    kind: Literal["forecast", "tabular"]
    spec: Annotated[dict[str, Any], msgspec.Meta(description="The effective spec it was trained with.")]
    fingerprint: Annotated[dict[str, Any], msgspec.Meta(description="Training data: series, rows, ds range, freq, "
                                                                    "sha256.")]
    metrics: Annotated[dict[str, Any], msgspec.Meta(description="Validation metrics and their window.")]
    exog: list[str]
    max_h: int | None
    artifact: str | None
    sha256: str | None
    size_bytes: int
    created_at: str
    status: str
    aliases: list[str]


class ModelSummaryOut(msgspec.Struct):
    """A registered model name with its versions' summary."""

    name: str
    created_at: str
    latest_version: int | None
    n_versions: int
    aliases: dict[str, int]


class ModelDetailOut(msgspec.Struct):
    """A registered model: summary and every version."""

    name: str
    created_at: str
    latest_version: int | None
    n_versions: int
    aliases: dict[str, int]
    versions: list[VersionOut]


class JobTimings(msgspec.Struct):
    """Seconds queued, running and in all (so far, while not finished)."""

    queued_s: float | None
    run_s: float | None
    total_s: float | None


class JobResultOut(msgspec.Struct):
    """The version a succeeded job registered."""

    model: str
    version: int | None
    ref: str
    location: str


class JobOut(msgspec.Struct):
    """A training job: state, progress, timings, error (failed) and result (succeeded)."""

    id: str
    kind: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: Annotated[float, msgspec.Meta(description="0 to 1.")]
    message: Annotated[str, msgspec.Meta(description="The last step done.")]
    error: str | None
    error_field: str | None
    request: dict[str, Any]
    model: str | None
    version: int | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    heartbeat_at: str | None
    timings: JobTimings
    result: JobResultOut | None


class Contribution(msgspec.Struct):
    """One feature's contribution to an explained output, in units of y (tabular: of the model output)."""

    feature: str
    value: Annotated[Any, msgspec.Meta(description="The feature's value in units of y (null when not finite).")]
    shap: float
    kind: Annotated[str, msgspec.Meta(description="'feature' (a model input) or 'series' (a named series term: "
                                                  "its level, anchor or scale).")] = "feature"
    value_label: Annotated[str | None, msgspec.Meta(description="A category's name (month 7: 'Jul').")] = None
    value_transformed: Annotated[float | None, msgspec.Meta(
        description="The value the model saw, where it differs (a scaled, differenced target's lag).")] = None
    is_forecast_value: Annotated[bool | None, msgspec.Meta(
        description="Recursive forecasts: the value came from the model's own earlier forecast.")] = None


class ExplainResponse(msgspec.Struct, omit_defaults=True):
    """Explained rows (each with base value, output and top-k contributions) and the measured additivity error."""

    model: Annotated[str, msgspec.Meta(description="Model name (xgboost, nhits, tft, tsmixer; tabular: its algorithm).")]
    method: Annotated[str, msgspec.Meta(description="How the values were computed (TreeSHAP, integrated "
                                                    "gradients...).")]
    k: int
    rows: Annotated[list[dict[str, Any]], msgspec.Meta(
        description="Per explained row: its keys (unique_id, ds, step; tabular: row), base_value (one per global "
                    "model), output, contributions (feature, value, value_label, value_transformed, kind, shap[, "
                    "is_forecast_value]), largest |shap| first.")]
    additivity_error: float | None
    additivity_error_relative: Annotated[float | None, msgspec.Meta(
        description="additivity_error divided by the largest |contribution| (not by the output).")]
    h: int | None = None
    weights: Annotated[dict[str, list[dict[str, Any]]] | None, msgspec.Meta(
        description="TFT: its variable-selection weights (past, future, static; not attributions).")] = None
    notes: list[str] = []
    ref: str | None = None
    name: str | None = None
    version: int | None = None


class PredictResponse(msgspec.Struct):
    """One prediction per row, in order (classification: prediction and probability)."""

    model: Annotated[str, msgspec.Meta(description="name@version that answered.")]
    name: str
    version: int
    predictions: list[dict[str, Any]]


class ReadyOut(msgspec.Struct):
    """Readiness."""

    status: Literal["ready"]
