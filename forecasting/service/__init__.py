"""THE use-case layer: every door (library, CLI, HTTP API, jobs) calls these functions.

One function per use case, each returning one typed result (:mod:`forecasting.service.results`):

* :func:`forecast` -- an inline spec fitted on the data, or a fitted/saved/exported model
  (:func:`forecast_fitted`); registered versions: :func:`forecasting.service.registered.forecast`.
* :func:`cross_validate` -- rolling-origin backtests scored with the M4 definitions.
* :func:`explain` -- SHAP values / integrated gradients of forecast rows.
* :func:`forecasting.service.training.train` -- validation metrics, fit and save (what a training job runs).
* :func:`fit_and_save`, :func:`export`, :func:`report` -- a model folder, its ONNX export, its HTML report.

:func:`resolve` is the one resolver from a spec plus the data to the effective spec.
Routes and CLI commands are a call to one of these plus a schema mapping.
"""

from forecasting.service.core import (
    Limits,
    check_limits,
    check_table_limits,
    cross_validate,
    explain,
    explain_rows,
    export,
    forecast,
    forecast_fitted,
    report,
    resolve,
)
from forecasting.service.results import CrossValidationResult, ExplainResult, ForecastResult, Registered, TrainResult
from forecasting.service.tables import read_table, write_table
from forecasting.service.training import fit_and_save

__all__ = [
    "CrossValidationResult",
    "ExplainResult",
    "ForecastResult",
    "Limits",
    "Registered",
    "TrainResult",
    "check_limits",
    "check_table_limits",
    "cross_validate",
    "explain",
    "explain_rows",
    "export",
    "fit_and_save",
    "forecast",
    "forecast_fitted",
    "read_table",
    "report",
    "resolve",
    "write_table",
]
