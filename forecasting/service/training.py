"""The training use case: validate, measure hold-out metrics, fit on all the data, save.

What a training job runs (:mod:`forecasting.jobs` calls :func:`train` in its worker
process with a ``step`` callback that records progress and stops on cancel or time
limit). What gets saved:

* global forecasters that can be saved (``xgboost``, ``nhits``, ``tft``, ``tsmixer``): the fitted model;
  series shorter than the model needs go to the spec's ``fallback`` (they are left out of
  the saved model, forecast by the fallback at forecast time, and said so in ``notes``);
* tabular models (:class:`~forecasting.tabular.TabularModel`): the fitted model;
* statistical forecasters (``auto_ets``, ``mstl``...): nothing but the effective spec, the data
  fingerprint and the validation metrics; they refit on the history given at forecast time.

A spec with a ``hierarchy`` (:class:`forecasting.service.hierarchy.HierarchicalSpec`, made by
:func:`~forecasting.service.hierarchy.training_request`): the bottom series are aggregated with its
structure, the model is trained on every series, and the structure and methods are kept in the
version's ``metrics["hierarchy"]``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import polars as pl

from forecasting.data import FillPolicy, Panel, validate_h, validate_panel
from forecasting.errors import CapabilityError, InsufficientHistoryError, InvalidInputError
from forecasting.models.base import Forecaster, arm, require
from forecasting.models.registry import ModelSpec, make_model, parse_spec
from forecasting.models.global_base import GlobalForecaster
from forecasting.models.trees import TreeForecaster
from forecasting.service.core import resolve
from forecasting.service.results import TrainResult

if TYPE_CHECKING:
    from forecasting.backtest import HoldoutScores

__all__ = ["data_fingerprint", "default_validation_h", "fit_and_save", "fit_for_saving", "holdout_metrics", "train"]

Step = Callable[[float, str], None]


def _no_step(progress: float, message: str) -> None:
    return None


def default_validation_h(season_length: int | list[int] | None) -> int:
    """Held-out steps when ``h`` is not given: two seasons, or 14 without a season (as XGBoost's calibration)."""
    m = max(season_length) if isinstance(season_length, list) else (season_length or 1)
    return 2 * m if m > 1 else 14


def data_fingerprint(frame: pl.DataFrame, *, freq: str | int | None = None, series: bool = True) -> dict[str, Any]:
    """What a model was trained on, compactly: enough to tell two training sets apart.

    Parameters
    ----------
    frame : pl.DataFrame
        The validated training frame (forecast: a panel's frame, sorted by ``unique_id, ds``).
    freq : str or int, optional
    series : bool, default True
        Forecast data (``unique_id``/``ds`` columns); False for a plain table.

    Returns
    -------
    dict
        ``series`` (count, None for tables), ``rows``, ``columns``, ``ds_min``, ``ds_max``
        (ISO 8601 or integers; None for tables), ``freq`` and ``sha256``: the sha256 of the
        canonical frame, i.e. the CSV text of the frame with ``unique_id, ds, y`` first and
        the other columns sorted by name, rows sorted by ``unique_id, ds`` (tables: as given).
    """
    if series:
        rest = sorted(c for c in frame.columns if c not in ("unique_id", "ds", "y"))
        canon = frame.select("unique_id", "ds", "y", *rest).sort("unique_id", "ds")
    else:
        canon = frame.select(sorted(frame.columns))
    digest = hashlib.sha256(canon.write_csv().encode("utf-8")).hexdigest()

    def _plain(v: Any) -> Any:
        return v.isoformat() if hasattr(v, "isoformat") else v

    return {
        "series": canon["unique_id"].n_unique() if series else None,
        "rows": canon.height,
        "columns": list(canon.columns),
        "ds_min": _plain(canon["ds"].min()) if series and canon.height else None,
        "ds_max": _plain(canon["ds"].max()) if series and canon.height else None,
        "freq": freq,
        "sha256": digest,
    }


def holdout_metrics(panel: Panel, spec: ModelSpec, h: int, *, deadline: float | None = None,
                    scores: HoldoutScores | None = None, progress: Step | None = None) -> dict[str, Any]:
    """sMAPE and MASE (M4 definitions) of the last ``h`` steps, fitted on what precedes them.

    :func:`forecasting.backtest.holdout_scores` in the JSON form a registered version records; a series
    without a MASE scale is left out of the MASE; a model that cannot be validated on this data
    (too short once ``h`` is held out) records why instead of scores. ``scores``: already measured (a
    retrain's challenger, scored once for its decision), recorded as they are. ``progress``: the refit's
    progress in [0, 1] (:func:`~forecasting.backtest.holdout_scores`).
    """
    from forecasting.backtest import holdout_scores

    season = spec.params.get("season_length")
    m = (max(season) if isinstance(season, list) else season) or 1
    if scores is None:
        try:
            scores = holdout_scores(panel, model=spec, h=h, season_length=m, unscaled="null", deadline=deadline,
                                    progress=progress)
        except (InsufficientHistoryError, CapabilityError) as exc:
            return {"window": {"h": h, "n_windows": 1}, "skipped": exc.message}
    out: dict[str, Any] = {"window": {"h": h, "n_windows": 1, "cutoff": str(scores.cutoff)},
                           "smape": scores.smape, "n_series": scores.n_series}
    if scores.mase is not None:
        out["mase"] = scores.mase
        out["mase_season_length"] = scores.season_length
    return out


def train(frame: pl.DataFrame, *, kind: str, spec: Any, workdir: str | Path, target: str | None = None,
          h: int | None = None, freq: str | int | None = None, fill_missing: FillPolicy | None = None,
          fill_gaps: bool = False, deadline: float | None = None, step: Step = _no_step,
          holdout: HoldoutScores | None = None) -> TrainResult:
    """Train a model for the registry: validation metrics, fit on all the data, save into ``workdir/artifact``.

    Parameters
    ----------
    frame : pl.DataFrame
        Forecast models: long format ``unique_id, ds, y[, exogenous]``; tabular: a table with ``target``.
    kind : {"forecast", "tabular"}
    spec : spec or dict
        Forecast: registry name or spec (a dict with ``hierarchy``: the bottom series are aggregated and the
        structure kept, see the module docstring); tabular: :class:`~forecasting.tabular.TabularModel` arguments.
    workdir : path
        The job's folder; the artifact is written to ``workdir/artifact``.
    fill_missing, fill_gaps
        Forecast models: as :func:`~forecasting.data.validate_panel` (filled rows are in the notes).
    h : int, optional
        Forecast models: held-out steps and the version's largest horizon (default: the model's
        calibrated horizon, else two seasons).
    deadline : float, optional
        Epoch seconds; fitting stops with ``TimeLimitError`` past it.
    step : callable(progress, message)
        Called after each step (0.1 validated, 0.15 hold-out fit started, 0.15-0.3 its progress where the model
        reports it (networks: per training step), 0.3 metrics, 0.3-0.5 training progress, 0.5 fitted, 0.9
        saved); may raise to stop the training (a cancel inside the hold-out fit stops it there).
    holdout : HoldoutScores, optional
        Forecast models: the hold-out scores of this spec on this data over ``h``, already measured (a
        retrain scores its challenger once, :meth:`forecasting.service.monitoring.Monitoring.retrain`):
        recorded as the version's validation metrics instead of fitting the hold-out again.

    Returns
    -------
    TrainResult

    Raises
    ------
    InvalidInputError, InvalidParameterError, InsufficientHistoryError, ModelFitError, TimeLimitError
    """
    if kind == "tabular":
        return _train_tabular(frame, spec=dict(spec), target=target, workdir=Path(workdir), step=step)
    if isinstance(spec, dict) and "hierarchy" in spec:  # a version over a hierarchy (service.hierarchy)
        from forecasting.service.hierarchy import training_panel

        hierarchy = spec["hierarchy"]
        spec = {k: v for k, v in spec.items() if k != "hierarchy"}
        panel = training_panel(frame, hierarchy, freq=freq, fill_missing=fill_missing, fill_gaps=fill_gaps)
        result = _train_forecast(panel, spec=spec, h=h, workdir=Path(workdir), deadline=deadline, step=step)
        return dataclasses.replace(result, metrics={**result.metrics, "hierarchy": hierarchy})
    panel = validate_panel(frame, freq=freq, fill_missing=fill_missing, fill_gaps=fill_gaps)
    return _train_forecast(panel, spec=spec, h=h, workdir=Path(workdir), deadline=deadline, step=step,
                           holdout=holdout)


def _train_forecast(panel: Panel, *, spec: Any, h: int | None, workdir: Path, deadline: float | None,
                    step: Step, holdout: HoldoutScores | None = None) -> TrainResult:
    effective, derived = resolve(parse_spec(spec), panel)
    notes = [*panel.report.notes, *derived]
    model = make_model(effective, freq=panel.freq)
    calibrated = model.calibrated_horizon if isinstance(model, TreeForecaster) else None  # trees' conformal horizon
    h = validate_h(h or calibrated or default_validation_h(effective.params.get("season_length")))
    step(0.1, "data validated")

    step(0.15, f"hold-out fit: fitting on all but the last {h} steps to measure validation metrics")
    within = lambda done, message: step(0.15 + 0.15 * done, f"hold-out fit: {message}")  # noqa: E731
    metrics = holdout_metrics(panel, effective, h, deadline=deadline, scores=holdout, progress=within)
    step(0.3, "validation metrics measured")

    saved = model.capabilities.can_save
    progress = lambda done, message: step(0.3 + 0.2 * done, message)  # noqa: E731
    if saved:
        model, more = fit_for_saving(effective, panel, deadline=deadline, progress=progress)
        notes.extend(more)
        if isinstance(model, GlobalForecaster) and model.panel_.n_series < panel.n_series:
            kept = set(model.panel_.ids)  # recorded: a forecast from the stored history says who is missing
            metrics = {**metrics, "left_out_series": [u for u in panel.ids if u not in kept][:1000]}
    else:
        arm(model, deadline=deadline, progress=progress)
        model.fit(panel)
    step(0.5, "fitted")

    artifact = None
    if saved:
        artifact = workdir / "artifact"
        model.save(artifact)
    step(0.9, "saved" if artifact is not None else "spec recorded (statistical model: no artifact)")
    return TrainResult(kind="forecast", spec=msgspec.to_builtins(effective),
                       artifact=None if artifact is None else str(artifact),
                       fingerprint=data_fingerprint(panel.frame, freq=panel.freq),
                       metrics={**metrics, **({"notes": notes} if notes else {})},  # kept with the version
                       exog=list(panel.exog), max_h=h, notes=notes)


def fit_for_saving(spec: ModelSpec, panel: Panel, *, deadline: float | None = None,
                   progress: Step | None = None, n_jobs: int | None = None) -> tuple[Forecaster, list[str]]:
    """Fit a model that will be saved (a global model): returns it and the notes on what was left out.

    A saved model holds no fallback model: with a spec ``fallback``, the series too short for the model
    are left out of the fit (said in the notes), and forecast by the fallback from the history given at
    forecast time (:func:`forecasting.service.forecast_fitted`), as an inline forecast does.

    Raises
    ------
    InsufficientHistoryError
        Short series without a ``fallback`` (or every series short).
    """
    plain = ModelSpec(name=spec.name, params=spec.params)
    model = make_model(plain, freq=panel.freq) if n_jobs is None else make_model(plain, freq=panel.freq, n_jobs=n_jobs)
    arm(model, deadline=deadline, progress=progress)
    try:
        model.fit(panel)
        return model, []
    except InsufficientHistoryError as exc:
        short = dict((exc.details or {}).get("series") or {})
        if spec.fallback is None or not short or len(short) == panel.n_series:
            raise
    model.fit(panel.subset([u for u in panel.ids if u not in short]))
    listed = ", ".join(f"'{u}'" for u in list(short)[:5]) + (f" and {len(short) - 5} more" if len(short) > 5 else "")
    return model, [f"{len(short)} series ({listed}) shorter than model '{spec.name}' needs are not in the saved model: "
                   f"they are forecast by the fallback '{spec.fallback}' from the history given at forecast time"]


def fit_and_save(data: Any, output: str | Path, *, model: Any = "xgboost", freq: str | int | None = None,
                 fill_missing: FillPolicy | None = None, fill_gaps: bool = False, n_jobs: int = -1,
                 progress: Step | None = None) -> tuple[Forecaster, Path, Panel, list[str]]:
    """Fit a global model on ``data`` and save it to ``output`` (safe formats only): ``forecasting train``.

    Returns
    -------
    (fitted model, folder written, validated panel, notes)

    Raises
    ------
    CapabilityError
        Models that are refitted on each forecast (the statistical zoo) are not saved.
    """
    from forecasting.artifacts import check_output

    check_output(output)  # before any training: a folder of other files is never replaced
    panel = validate_panel(data, freq=freq, fill_missing=fill_missing, fill_gaps=fill_gaps)
    spec, derived = resolve(parse_spec(model), panel)
    require(make_model(spec, freq=panel.freq), "save")  # statistical models: "... is refitted from history each time"
    forecaster, notes = fit_for_saving(spec, panel, progress=progress, n_jobs=n_jobs)
    return forecaster, forecaster.save(output), panel, [*panel.report.notes, *derived, *notes]


def _train_tabular(frame: pl.DataFrame, *, spec: dict[str, Any], target: str | None, workdir: Path,
                   step: Step) -> TrainResult:
    from forecasting.tabular import TabularModel, cross_validate

    if target is None:
        msg = "target is required for a tabular model"
        raise InvalidInputError(msg, field="target")
    model = TabularModel(**spec)
    if frame.height == 0:
        msg = "data has no rows"
        raise InvalidInputError(msg, field="data")
    step(0.1, "data loaded")

    metrics: dict[str, Any]
    if frame.height >= 20:
        k = 5 if frame.height >= 50 else 3
        step(0.15, f"cross-validating ({k} folds) to measure validation metrics")
        folds = cross_validate(spec, frame, target, k=k)
        cols = [c for c in folds.columns if c not in ("fold", "n_train", "n_test", "fit_seconds")]
        metrics = {"window": {"method": "k-fold", "k": k}}
        for c in cols:
            value = folds[c].mean()
            metrics[c] = float(value) if isinstance(value, int | float) and math.isfinite(value) else None
    else:
        metrics = {"window": {"method": "k-fold"}, "skipped": f"{frame.height} rows: too few to cross-validate "
                                                              f"(20 needed)"}
    step(0.3, "validation metrics measured")

    model.fit(frame, target)
    step(0.5, "fitted")
    artifact = workdir / "artifact"
    model.save(artifact)
    step(0.9, "saved")
    fp = data_fingerprint(frame, series=False)
    return TrainResult(kind="tabular", spec={**model.get_params(), "target": target}, artifact=str(artifact),
                       fingerprint={**fp, "target": target}, metrics=metrics, exog=list(model.feature_names_),
                       max_h=None)
