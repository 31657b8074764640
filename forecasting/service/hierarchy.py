"""The hierarchical forecasting use case: aggregate, forecast every series, reconcile (every door calls it).

:func:`forecast_hierarchy` takes the bottom series plus the structure (nested ``hierarchy`` and
crossed ``group`` columns, or a summing matrix ``S``), builds every aggregate series
(:mod:`forecasting.hierarchy`), forecasts them all with one zoo model (or ``auto``) and
reconciles the forecasts with each method asked for. :func:`backtest_hierarchy` does the same on
all but the last ``h`` steps and scores base and reconciled forecasts at each level (MASE, RMSE),
as fpp3 ch. 11 does for the prison data; the benchmark harness and the CLI call it. Both take
``report=`` (a path): the HTML report of the structure, the coherence check, the per-level accuracy
table and the top series' forecasts (:func:`write_hierarchy_report`, template
``forecasting/templates/hierarchy.html.j2``), the hold-out and the forecast both run for it.

Registered versions over a structure (:class:`~forecasting.service.registered.RegisteredModels`):
:func:`training_request` checks the structure and methods when the training is asked and gives the
job a spec that carries them; the job (:func:`forecasting.service.training.train`) aggregates with
:func:`training_panel`, trains on every series and keeps ``{"methods", "middle_level", "structure"}`` in
the version's metadata (``metrics["hierarchy"]``, :func:`structure_to_json`); :func:`forecast_registered`
aggregates the bottom ``history`` with the stored structure, forecasts and reconciles as the inline
use case does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

import msgspec
import numpy as np

from forecasting.data import FillPolicy, Panel, to_polars, validate_h, validate_levels, validate_panel
from forecasting.errors import CapabilityError, InsufficientHistoryError, InvalidInputError, InvalidParameterError
from forecasting.hierarchy import (
    INSAMPLE_METHODS,
    Hierarchy,
    _reconciler,
    coherence_error,
    from_columns,
    from_matrix,
    level_scores,
    parse_structure,
    reconcile,
    validate_methods,
)
from forecasting.models.base import require
from forecasting.models.local import ALL_CORES
from forecasting.models.registry import ModelSpec, make_model, parse_spec
from forecasting.service.core import Limits, SpecLike, check_limits, forecast_fitted, resolve, training_freq
from forecasting.service.results import Registered

if TYPE_CHECKING:
    from forecasting.models.base import Forecaster
    from forecasting.reports import WrittenReport
    from forecasting.store import VersionInfo

__all__ = ["COHERENCE_TOLERANCE", "DEFAULT_METHODS", "HierarchicalSpec", "HierarchyBacktest", "HierarchyResult",
           "backtest_hierarchy", "forecast_hierarchy", "forecast_registered", "refuse_over_hierarchy", "registered_refusal",
           "structure_from_json",
           "structure_of", "structure_to_json", "training_panel", "training_request", "write_hierarchy_report"]

#: Methods run when the caller names none (each applies to grouped structures too; no fitted values needed).
DEFAULT_METHODS: tuple[str, ...] = ("bottom_up", "ols", "wls_struct")
#: A reconciled column is coherent when its largest relative gap (:func:`forecasting.hierarchy.coherence_error`)
#: is below this (the issue's "within 1e-6 relative").
COHERENCE_TOLERANCE = 1e-6
NO_LIMITS = Limits()


@dataclass(frozen=True)
class HierarchyResult:
    """Base and reconciled forecasts of every series of a structure.

    Attributes
    ----------
    forecasts : pl.DataFrame
        ``unique_id, level, ds, <alias>[, intervals]`` then ``<alias>/<method>`` (and its intervals where the
        method gives them) per method: ``h`` rows for every series (aggregates first, ``level`` its level name).
    structure : Hierarchy
        The summing matrix and levels.
    spec : ModelSpec
        The base model's effective spec.
    alias : str
        The base forecast column.
    methods : list of str
    coherence : dict of str to float
        Per column (base and each method): the largest relative gap between an aggregate and the sum of its
        bottom series (:func:`forecasting.hierarchy.coherence_error`); reconciled columns are below 1e-6.
    panel : Panel
        Every series (aggregates included) as validated and fitted.
    h : int
    level : tuple of numbers
    notes : list of str
    report : WrittenReport, optional
        The HTML report, when ``report=`` was given.
    registered : Registered, optional
        The registered version that answered (:func:`forecast_registered`).
    """

    forecasts: pl.DataFrame
    structure: Hierarchy
    spec: ModelSpec
    alias: str
    methods: list[str]
    coherence: dict[str, float]
    panel: Panel
    h: int
    level: tuple[float | int, ...]
    notes: list[str] = field(default_factory=list)
    report: WrittenReport | None = None
    registered: Registered | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the HTTP ``hierarchy`` answer and the CLI's)."""
        reg = self.registered
        return {"model": self.spec.name, "alias": self.alias, "params": dict(self.spec.params),
                "freq": self.panel.freq, "h": self.h, "level": list(self.level), "methods": list(self.methods),
                "levels": {k: list(v) for k, v in self.structure.tags.items()},
                "coherence": dict(self.coherence), "forecasts": self.forecasts.to_dicts(), "notes": list(self.notes),
                "ref": None if reg is None else reg.ref, "name": None if reg is None else reg.name,
                "version": None if reg is None else reg.version}


@dataclass(frozen=True)
class HierarchyBacktest:
    """Hold-out scores of base and reconciled forecasts at each level.

    Attributes
    ----------
    table : pl.DataFrame
        ``level, method, mase, rmse`` (:func:`forecasting.hierarchy.level_scores`); ``method`` is ``base`` or a
        reconciliation method.
    result : HierarchyResult
        The forecasts of the held-out steps.
    seconds : float
        Wall time of fitting, forecasting and reconciling.
    season_length : int
        MASE's scaling lag.
    cutoff : str
        The last training ``ds`` (the hold-out starts after it).
    report : WrittenReport, optional
        The HTML report, when ``report=`` was given.
    """

    table: pl.DataFrame
    result: HierarchyResult
    seconds: float
    season_length: int = 1
    cutoff: str = ""
    report: WrittenReport | None = None


def registered_refusal() -> CapabilityError:
    """The error a registered forecast answers to a ``hierarchy`` in the request (HTTP: a 422 naming it).

    A registered version's structure and methods are fixed when it is trained (a ``hierarchy`` in the
    training request); a forecast request cannot give another.
    """
    msg = ("hierarchy: a registered version's structure and reconciliation methods are fixed at training (train it "
           "with 'hierarchy'); a forecast request cannot give one: send the bottom series in 'history' to a version "
           "trained with a hierarchy, or forecast and reconcile inline with POST /v1/forecast and its 'hierarchy' "
           "field")
    return CapabilityError(msg, field="hierarchy", details={"where": "forecast"})


#: what each use of a registered version that treats it as a plain model would get wrong over a hierarchy, and
#: what the caller can do instead (``{ref}``: the version, ``{name}``: the model)
_PLAIN_USES: dict[str, str] = {
    "explain": ("its explanations would be of the base forecasts of every series, not of the reconciled forecasts it "
                "serves: explain the model inline (POST /v1/explain, `forecasting explain`) on the series you want, "
                "or forecast it reconciled (POST /v1/models/{ref}/forecast)"),
    "report": ("its model report would show unreconciled base forecasts: write the hierarchy report (structure, "
               "coherence, accuracy per level) with `forecasting hierarchy --report` or fc.forecast_hierarchy("
               "report=...) on the bottom series"),
    "export": ("an ONNX graph gives the base forecasts only (the reconciliation is not in it), so its answers would "
               "not add up: forecast it reconciled with POST /v1/models/{ref}/forecast"),
    "retrain": ("a retrain would register a plain model of every series and production would serve unreconciled "
                "forecasts: train a new version with its 'hierarchy' (POST /v1/models) on the new data, and remove "
                "the retraining policy (PUT /v1/models/{name}/retraining with {{}})"),
}


def refuse_over_hierarchy(info: VersionInfo, use: str) -> None:
    """Refuse a use of a registered version that would treat a version trained over a hierarchy as a plain model.

    The one check every door of those uses passes (HTTP, CLI and library alike go through
    :class:`~forecasting.service.registered.RegisteredModels` for ``explain``, ``report`` and ``export`` and
    through :class:`~forecasting.service.monitoring.Monitoring` for ``retrain``, policies included): a version
    whose ``metrics["hierarchy"]`` is set serves reconciled forecasts (:func:`forecast_registered`), which none
    of these would honour.

    Parameters
    ----------
    info : VersionInfo
        The version asked for.
    use : {"explain", "report", "export", "retrain"}

    Raises
    ------
    CapabilityError
        ``field="model"`` (HTTP 422), naming the version, why, and what to do instead; ``details``:
        ``{"hierarchy": methods, "use": use}``.
    """
    stored = info.metrics.get("hierarchy")
    if stored is None:
        return
    methods = ", ".join(stored.get("methods") or []) if isinstance(stored, Mapping) else ""
    why = _PLAIN_USES[use].format(ref=info.ref, name=info.name)
    msg = f"model '{info.ref}' was trained over a hierarchy (reconciled: {methods or 'yes'}), so {use} is refused: {why}"
    raise CapabilityError(msg, field="model", details={"hierarchy": methods, "use": use})


def structure_of(frame: pl.DataFrame, *, hierarchy: str | Sequence[str] | None = None,
                 group: str | Sequence[str] | None = None, S: Any = None,
                 tags: Mapping[str, Sequence[str]] | None = None, limits: Limits = NO_LIMITS) -> Hierarchy:
    """The structure from the columns of ``frame`` or from the summing matrix ``S`` (exactly one of the two).

    ``limits``' series and row bounds are checked before the aggregate series are built (a few columns crossed
    over many series would otherwise build a summing matrix of gigabytes before the panel's own check).

    Raises
    ------
    InvalidParameterError
        Both or neither given.
    InvalidInputError
        As :func:`forecasting.hierarchy.from_columns` / :func:`~forecasting.hierarchy.from_matrix`; more series
        than ``limits.max_series`` (naming the count and the limit).
    """
    by_columns = bool(parse_structure(hierarchy, field="hierarchy") or parse_structure(group, field="group"))
    if by_columns == (S is not None):
        msg = ("give the structure once: hierarchy/group columns, or a summing matrix S" if by_columns else
               "give the structure: hierarchy (nested columns, 'state/region'), group (crossed columns) or S")
        raise InvalidParameterError(msg, field="hierarchy")
    if S is not None:
        structure = from_matrix(S, tags=tags)
        if len(structure.ids) > limits.max_series:
            msg = f"S has {len(structure.ids)} series (rows); the limit is {limits.max_series}"
            raise InvalidInputError(msg, field="S", details={"limit": limits.max_series})
        return structure
    return from_columns(frame, hierarchy=hierarchy, group=group, max_series=limits.max_series,
                        max_rows=limits.max_rows)


def _bottom_panel(data: Any, structure_args: dict[str, Any], *, freq: str | int | None,
                  fill_missing: FillPolicy | None, fill_gaps: bool,
                  limits: Limits) -> tuple[Hierarchy, Panel]:
    frame = data if isinstance(data, pl.DataFrame) else to_polars(data, field_name="data")
    structure = structure_of(frame, **structure_args, limits=limits)
    if "unique_id" not in frame.columns and structure_args.get("S") is None:
        frame = frame.with_columns(pl.concat_str(
            [pl.col(c).cast(pl.String) for c in parse_structure(structure_args.get("hierarchy"), field="hierarchy")
             + parse_structure(structure_args.get("group"), field="group")], separator="/").alias("unique_id"))
    bottom = validate_panel(frame.select("unique_id", "ds", "y"), freq=freq, fill_missing=fill_missing,
                            fill_gaps=fill_gaps)
    check_limits(bottom, limits)
    every = structure.aggregate(bottom.frame.select("unique_id", "ds", "y"))
    panel = validate_panel(every, freq=bottom.freq)
    check_limits(panel, limits)
    return structure, panel


def forecast_hierarchy(
    data: Any,
    *,
    hierarchy: str | Sequence[str] | None = None,
    group: str | Sequence[str] | None = None,
    S: Any = None,
    tags: Mapping[str, Sequence[str]] | None = None,
    model: SpecLike = "auto",
    h: int,
    methods: Sequence[str] = DEFAULT_METHODS,
    middle_level: str | None = None,
    freq: str | int | None = None,
    level: Sequence[float] = (),
    fill_missing: FillPolicy | None = None,
    fill_gaps: bool = False,
    n_jobs: int = ALL_CORES,
    limits: Limits = NO_LIMITS,
    report: str | os.PathLike[str] | None = None,
) -> HierarchyResult:
    """Forecast every series of a hierarchical or grouped structure and reconcile (fpp3 ch. 11).

    Parameters
    ----------
    data : frame
        The bottom series, long format ``unique_id, ds, y`` plus the structure columns.
    hierarchy : str or list of str, optional
        Nested columns, top first (``"state/region"``).
    group : str or list of str, optional
        Crossed columns (``"purpose"``).
    S : frame, optional
        Instead of columns: the summing matrix (``unique_id`` + one 0/1 column per bottom series), with
        optional ``tags`` (level name -> series ids), see :func:`forecasting.hierarchy.from_matrix`.
    model : spec
        The base model fitted on every series (any zoo name or ``auto``).
    h : int
        Steps forecast.
    methods : names
        From :data:`forecasting.hierarchy.METHODS`: ``bottom_up``, ``top_down`` (forecast proportions),
        ``middle_out``, ``ols``, ``wls_struct``, ``wls_var``, ``mint_shrink``.
    middle_level : str, optional
        ``middle_out``'s level.
    level : numbers in (0, 100)
        Interval levels, percent; reconciled intervals where the method supports them.
    report : path, optional
        Also hold out the last ``h`` steps (:func:`backtest_hierarchy`, same model and methods) and write the
        HTML report there (:func:`write_hierarchy_report`); ``result.report`` says what it holds.
    Other parameters as :func:`forecasting.service.forecast`.

    Returns
    -------
    HierarchyResult

    Raises
    ------
    InvalidInputError
        Bad data or structure (a column not in the data, a series in two parents, a missing level), naming rows.
    InvalidParameterError
        Unknown method, bad ``h``/``level``, both or neither of columns and ``S``.
    CapabilityError
        A method the structure or the model cannot support (top-down on a grouped structure; ``mint_shrink`` with
        a model without in-sample fitted values).
    """
    h = validate_h(h, max_h=limits.max_h)
    levels = validate_levels(level)
    names = validate_methods(methods)
    structure, panel = _bottom_panel(data, {"hierarchy": hierarchy, "group": group, "S": S, "tags": tags},
                                     freq=freq, fill_missing=fill_missing, fill_gaps=fill_gaps, limits=limits)
    result = _forecast_all(panel, structure, parse_spec(model), h=h, levels=levels, methods=names,
                           middle_level=middle_level, n_jobs=n_jobs, limits=limits)
    if report is None:
        return result
    held_out = _holdout(panel, structure, parse_spec(model), h=h, methods=names, middle_level=middle_level,
                        season_length=None, n_jobs=n_jobs, limits=limits)
    return replace(result, report=write_hierarchy_report(report, result, held_out))


def _forecast_all(panel: Panel, structure: Hierarchy, spec: ModelSpec, *, h: int, levels: tuple[float | int, ...],
                  methods: list[str], middle_level: str | None, n_jobs: int, limits: Limits) -> HierarchyResult:
    spec, derived = resolve(spec, panel, h=h, level=levels)
    forecaster = make_model(spec, freq=panel.freq, n_jobs=n_jobs)
    needs_fit = bool(INSAMPLE_METHODS & set(methods))
    if needs_fit:
        require(forecaster, "fitted_values")  # refused before fitting, naming the model
    limits.arm(forecaster)
    forecaster.fit(panel)
    base = forecaster.predict(h, level=levels)
    fitted = forecaster.fitted_values() if needs_fit else None  # type: ignore[attr-defined]
    notes = [*panel.report.notes, *derived, *getattr(forecaster, "notes_", [])]
    return _reconciled(base, fitted, panel, structure, spec, alias=forecaster.alias, h=h, levels=levels,
                       methods=methods, middle_level=middle_level, notes=notes)


def _reconciled(base: pl.DataFrame, fitted: pl.DataFrame | None, panel: Panel, structure: Hierarchy,
                spec: ModelSpec, *, alias: str, h: int, levels: tuple[float | int, ...], methods: list[str],
                middle_level: str | None, notes: list[str]) -> HierarchyResult:
    """Base forecasts of every series reconciled, their coherence checked, ordered as ``structure.ids``."""
    frame, more = reconcile(base, structure, alias=alias, methods=methods, level=levels, fitted=fitted,
                            middle_level=middle_level)
    columns = [alias, *[f"{alias}/{m}" for m in methods]]
    coherence = {c: coherence_error(frame, structure, c) for c in columns}
    order = pl.DataFrame({"unique_id": list(structure.ids), "level": [structure.level_of[u] for u in structure.ids]})
    frame = (order.with_row_index("_o").join(frame, on="unique_id", how="left")
             .sort("_o", "ds", maintain_order=True).drop("_o"))
    notes = [*notes, *more,
             f"{len(structure.ids)} series forecast ({len(structure.ids) - len(structure.bottom)} aggregates, "
             f"{len(structure.bottom)} bottom) in {len(structure.tags)} levels"]
    return HierarchyResult(forecasts=frame, structure=structure, spec=spec, alias=alias, methods=methods,
                           coherence=coherence, panel=panel, h=h, level=levels, notes=notes)


def backtest_hierarchy(
    data: Any,
    *,
    hierarchy: str | Sequence[str] | None = None,
    group: str | Sequence[str] | None = None,
    S: Any = None,
    tags: Mapping[str, Sequence[str]] | None = None,
    model: SpecLike = "auto",
    h: int,
    methods: Sequence[str] = DEFAULT_METHODS,
    middle_level: str | None = None,
    freq: str | int | None = None,
    season_length: int | None = None,
    n_jobs: int = ALL_CORES,
    limits: Limits = NO_LIMITS,
    report: str | os.PathLike[str] | None = None,
    level: Sequence[float] = (),
) -> HierarchyBacktest:
    """Hold out the last ``h`` steps of every series, forecast and reconcile, score each level (fpp3 ch. 11.7).

    Parameters
    ----------
    season_length : int, optional
        MASE's scaling lag (default: the frequency's season, 4 for quarterly data).
    report : path, optional
        Also forecast ``h`` steps past the data (:func:`forecast_hierarchy`, intervals at ``level``) and write the
        HTML report there (:func:`write_hierarchy_report`): its accuracy table is this ``table``.
    Other parameters as :func:`forecast_hierarchy`.

    Returns
    -------
    HierarchyBacktest
        ``table`` with ``level, method, mase, rmse`` (``method`` ``base`` or a reconciliation method).

    Raises
    ------
    InsufficientHistoryError, InvalidInputError, InvalidParameterError, CapabilityError
        As :func:`forecast_hierarchy`; series of ``h`` points or fewer.
    """
    h = validate_h(h, max_h=limits.max_h)
    names = validate_methods(methods)
    levels = validate_levels(level)
    structure, panel = _bottom_panel(data, {"hierarchy": hierarchy, "group": group, "S": S, "tags": tags},
                                     freq=None if freq is None else freq, fill_missing=None, fill_gaps=False,
                                     limits=limits)
    backtest = _holdout(panel, structure, parse_spec(model), h=h, methods=names, middle_level=middle_level,
                        season_length=season_length, n_jobs=n_jobs, limits=limits)
    if report is None:
        return backtest
    future = _forecast_all(panel, structure, parse_spec(model), h=h, levels=levels, methods=names,
                           middle_level=middle_level, n_jobs=n_jobs, limits=limits)
    return replace(backtest, report=write_hierarchy_report(report, future, backtest))


def _holdout(panel: Panel, structure: Hierarchy, spec: ModelSpec, *, h: int, methods: list[str],
             middle_level: str | None, season_length: int | None, n_jobs: int,
             limits: Limits) -> HierarchyBacktest:
    """The last ``h`` steps of every series held out, forecast, reconciled and scored per level."""
    from forecasting.backtest import rolling_origins
    from forecasting.models.registry import default_season_length

    names = methods
    short = {u: n for u, n in panel.lengths.items() if n <= h}
    if short:
        listed = "; ".join(f"series '{u}': {n} observations" for u, n in list(short.items())[:5])
        msg = (f"{len(short)} series too short for a hold-out of h={h}: the last h steps are held out and at least "
               f"one observation must be left to train on, so every series needs more than {h} observations "
               f"({listed}); give a smaller h")
        raise InsufficientHistoryError(msg, field="h", details={
            "minimum": h + 1, "series": {u: {"length": n, "minimum": h + 1} for u, n in list(short.items())[:50]}})
    window = rolling_origins(panel.frame, h=h, n_windows=1)[0]
    train = window.train_panel(panel)
    start = time.perf_counter()
    result = _forecast_all(train, structure, spec, h=h, levels=(), methods=names,
                           middle_level=middle_level, n_jobs=n_jobs, limits=limits)
    seconds = time.perf_counter() - start
    alias = result.alias
    columns = [alias, *[f"{alias}/{m}" for m in names]]
    m = season_length if season_length is not None else int(default_season_length(panel.freq))  # type: ignore[arg-type]
    table = level_scores(result.forecasts.select("unique_id", "ds", *columns), window.test.select(
        "unique_id", "ds", "y"), window.train.select("unique_id", "ds", "y"), structure, columns=columns,
        season_length=m)
    table = table.with_columns(pl.col("method").replace({alias: "base", **{f"{alias}/{n}": n for n in names}}))
    cutoff = window.train["ds"].max()
    return HierarchyBacktest(table=table, result=result, seconds=seconds, season_length=m, cutoff=str(cutoff))


# --------------------------------------------------------------------------- registered versions
#: The keys of a training request's ``hierarchy`` (as POST /v1/forecast's ``hierarchy`` field).
HIERARCHY_KEYS: tuple[str, ...] = ("nested", "group", "S", "tags", "methods", "middle_level")


class HierarchicalSpec(ModelSpec, kw_only=True):
    """A model spec plus the structure a registered version is trained over: what the training job carries.

    ``hierarchy`` is ``{"methods", "middle_level", "structure"}`` (``structure``: :func:`structure_to_json`);
    :func:`forecasting.service.training.train` takes it out of the spec, aggregates the bottom series with it
    (:func:`training_panel`) and keeps it in the version's ``metrics["hierarchy"]``.
    """

    hierarchy: dict[str, Any]


def structure_to_json(structure: Hierarchy) -> dict[str, Any]:
    """The structure as JSON: ``ids``, ``bottom``, ``tags``, ``strict`` and, per aggregate, its bottom series.

    ``members[i]`` lists the column indices of ``S``'s row ``i`` that are 1, for the aggregates (the first
    ``len(ids) - len(bottom)`` rows; the bottom rows are the identity), so the size grows with the number of
    (aggregate, bottom) pairs rather than with the dense matrix. :func:`structure_from_json` inverts it.
    """
    n_agg = len(structure.ids) - len(structure.bottom)
    return {"ids": list(structure.ids), "bottom": list(structure.bottom),
            "tags": {k: list(v) for k, v in structure.tags.items()}, "strict": bool(structure.strict),
            "members": [np.flatnonzero(structure.S[i]).tolist() for i in range(n_agg)]}


def structure_from_json(data: Mapping[str, Any]) -> Hierarchy:
    """The :class:`~forecasting.hierarchy.Hierarchy` written by :func:`structure_to_json`."""
    ids, bottom = tuple(data["ids"]), tuple(data["bottom"])
    S = np.zeros((len(ids), len(bottom)))
    for i, cols in enumerate(data["members"]):
        S[i, cols] = 1.0
    S[len(ids) - len(bottom):] = np.eye(len(bottom))
    return Hierarchy(S=S, ids=ids, bottom=bottom, tags={k: tuple(v) for k, v in data["tags"].items()},
                     strict=bool(data["strict"]))


def _hierarchy_request(hierarchy: Any) -> dict[str, Any]:
    """A training request's ``hierarchy`` (an object, or its JSON text from a multipart form) as a dict."""
    if isinstance(hierarchy, str | bytes):
        try:
            hierarchy = msgspec.json.decode(hierarchy)
        except msgspec.DecodeError as exc:
            msg = f"hierarchy is not valid JSON: {exc}"
            raise InvalidParameterError(msg, field="hierarchy") from None
    if not isinstance(hierarchy, Mapping):
        msg = f"hierarchy must be an object with {', '.join(HIERARCHY_KEYS)}, got {type(hierarchy).__name__}"
        raise InvalidParameterError(msg, field="hierarchy")
    unknown = sorted(set(hierarchy) - set(HIERARCHY_KEYS))
    if unknown:
        msg = f"unknown hierarchy field '{unknown[0]}' (accepted: {', '.join(HIERARCHY_KEYS)})"
        raise InvalidParameterError(msg, field=f"hierarchy.{unknown[0]}")
    return dict(hierarchy)


def training_request(data: Any, hierarchy: Any, model: SpecLike, *, freq: str | int | None = None,
                     fill_missing: FillPolicy | None = None, fill_gaps: bool = False,
                     limits: Limits = NO_LIMITS) -> tuple[pl.DataFrame, HierarchicalSpec]:
    """Check a registered training's ``hierarchy`` now (before anything is queued); the job's data and spec.

    Parameters
    ----------
    data : frame
        The bottom series with the structure columns (or ``unique_id`` with ``S``), as :func:`forecast_hierarchy`.
    hierarchy : dict or JSON text
        ``nested``, ``group``, ``S``, ``tags``, ``methods`` (default :data:`DEFAULT_METHODS`), ``middle_level``:
        POST /v1/forecast's ``hierarchy`` field.
    model : spec
        The base model.

    Returns
    -------
    (pl.DataFrame, HierarchicalSpec)
        The bottom series ``unique_id, ds, y`` (ids built from the columns as :func:`forecast_hierarchy` does),
        and the spec carrying the structure and methods.

    Raises
    ------
    InvalidInputError
        Bad data or structure, naming the rows (as :func:`forecast_hierarchy`).
    InvalidParameterError
        An unknown key, method or middle level.
    CapabilityError
        ``wls_var``/``mint_shrink`` with a model without in-sample fitted values, naming the method; top-down or
        middle-out on a grouped structure.
    """
    asked = _hierarchy_request(hierarchy)
    methods = validate_methods(asked.get("methods") or DEFAULT_METHODS)
    spec = parse_spec(model)
    structure, panel = _bottom_panel(data, {"hierarchy": asked.get("nested"), "group": asked.get("group"),
                                            "S": asked.get("S"), "tags": asked.get("tags")},
                                     freq=freq, fill_missing=fill_missing, fill_gaps=fill_gaps, limits=limits)
    for method in methods:
        _reconciler(method, structure, asked.get("middle_level"))
    needs_fit = sorted(INSAMPLE_METHODS & set(methods))
    if needs_fit and not make_model(spec, freq=panel.freq).capabilities.has_fitted_values:
        msg = (f"hierarchy.methods: {needs_fit} need the base model's in-sample fitted values and model "
               f"'{spec.name}' keeps none; use a statistical model such as 'auto_ets', or other methods")
        raise CapabilityError(msg, field="hierarchy.methods", details={"methods": needs_fit})
    frame = data if isinstance(data, pl.DataFrame) else to_polars(data, field_name="data")
    if "unique_id" not in frame.columns:  # as _bottom_panel named the bottom series
        columns = (parse_structure(asked.get("nested"), field="hierarchy")
                   + parse_structure(asked.get("group"), field="group"))
        frame = frame.with_columns(pl.concat_str([pl.col(c).cast(pl.String) for c in columns],
                                                 separator="/").alias("unique_id"))
    stored = {"methods": methods, "middle_level": asked.get("middle_level"), "structure": structure_to_json(structure)}
    return frame.select("unique_id", "ds", "y"), HierarchicalSpec(name=spec.name, params=spec.params,
                                                                  fallback=spec.fallback, hierarchy=stored)


def training_panel(frame: pl.DataFrame, hierarchy: Mapping[str, Any], *, freq: str | int | None = None,
                   fill_missing: FillPolicy | None = None, fill_gaps: bool = False) -> Panel:
    """The training job's panel: the bottom series validated, every aggregate built with the stored structure.

    Raises
    ------
    InvalidInputError
        As :func:`~forecasting.data.validate_panel`, or bottom series that differ from the structure's.
    """
    structure = structure_from_json(hierarchy["structure"])
    bottom = validate_panel(frame, freq=freq, fill_missing=fill_missing, fill_gaps=fill_gaps)
    return _with_aggregates(bottom, structure, field_name="data")


def _with_aggregates(bottom: Panel, structure: Hierarchy, *, field_name: str) -> Panel:
    """Every series of ``structure`` from validated bottom series (their notes kept)."""
    have = set(bottom.ids)
    extra = sorted(have - set(structure.bottom))
    if extra:
        listed = ", ".join(f"'{u}'" for u in extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        msg = (f"{field_name}: series {listed} not in the version's hierarchy (its bottom series: "
               f"{list(structure.bottom)[:5]}{' ...' if len(structure.bottom) > 5 else ''})")
        raise InvalidInputError(msg, field=field_name, details={"series": extra[:50]})
    missing = [b for b in structure.bottom if b not in have]
    if missing:
        listed = ", ".join(f"'{u}'" for u in missing[:5]) + (f" and {len(missing) - 5} more"
                                                             if len(missing) > 5 else "")
        msg = (f"{field_name}: the version's hierarchy needs every bottom series to build its aggregates; "
               f"missing: {listed}")
        raise InvalidInputError(msg, field=field_name, details={"missing": missing[:50]})
    every = validate_panel(structure.aggregate(bottom.frame.select("unique_id", "ds", "y")), freq=bottom.freq,
                           field_name=field_name)
    return replace(every, report=bottom.report)


def forecast_registered(stored: Mapping[str, Any], *, spec: Mapping[str, Any], model: Forecaster | None,
                        history: Any, h: int, level: Sequence[float] = (), freq: str | int | None = None,
                        fill_missing: FillPolicy | None = None, fill_gaps: bool = False,
                        limits: Limits = NO_LIMITS, registered: Registered | None = None) -> HierarchyResult:
    """Reconciled forecasts of a registered version trained over a hierarchy (``metrics["hierarchy"]``).

    Parameters
    ----------
    stored : dict
        The version's ``metrics["hierarchy"]``: ``methods``, ``middle_level``, ``structure``.
    spec : dict
        The version's effective spec.
    model : fitted forecaster, optional
        The saved model (global models); ``None`` for a spec-only version, refitted on ``history`` as
        :func:`forecast_hierarchy` does.
    history : frame, optional
        The bottom series ``unique_id, ds, y`` (every bottom series of the structure; the aggregates are built
        from them). Saved models: default their stored training history (every series).
    Other parameters as :func:`forecast_hierarchy`.

    Returns
    -------
    HierarchyResult
        Base and reconciled forecasts of every series with the coherence check, ``registered`` set.

    Raises
    ------
    InvalidInputError
        ``history`` missing for a spec-only version; a series not in the structure, or a bottom series missing
        (naming them); invalid rows.
    InvalidParameterError, CapabilityError
        As :func:`forecast_hierarchy`.
    """
    h = validate_h(h, max_h=limits.max_h)
    levels = validate_levels(level)
    structure = structure_from_json(stored["structure"])
    methods, middle = list(stored["methods"]), stored.get("middle_level")
    effective = parse_spec(dict(spec))
    if model is None and history is None:
        msg = (f"model '{registered.ref if registered else effective.name}' ({effective.name}) is registered as a "
               f"spec only: it refits at forecast time, so history (the bottom series of its hierarchy) is required")
        raise InvalidInputError(msg, field="history")
    panel = None
    if history is not None:
        trained = freq if model is None else training_freq(model) or freq
        bottom = validate_panel(history if isinstance(history, pl.DataFrame) else to_polars(history,
                                field_name="history"), freq=trained, fill_missing=fill_missing, fill_gaps=fill_gaps,
                                field_name="history")
        check_limits(bottom, limits)
        panel = _with_aggregates(bottom, structure, field_name="history")
        check_limits(panel, limits)
    if model is None:
        assert panel is not None  # noqa: S101 - history was required above
        result = _forecast_all(panel, structure, effective, h=h, levels=levels, methods=methods,
                               middle_level=middle, n_jobs=ALL_CORES, limits=limits)
        return replace(result, registered=registered)
    base = forecast_fitted(model, None if panel is None else panel.frame, h=h, level=levels, limits=limits,
                           fallback=effective.fallback, registered=registered, field_name="history",
                           non_negative=False)  # as the inline use case: reconciled from unclipped base forecasts
    result = _reconciled(base.forecasts, None, base.panel, structure, base.spec, alias=base.alias, h=h,
                         levels=levels, methods=methods, middle_level=middle,
                         notes=[*(panel.report.notes if panel is not None else []), *base.notes])
    return replace(result, registered=registered)


# --------------------------------------------------------------------------- the report
def write_hierarchy_report(path: str | os.PathLike[str], result: HierarchyResult,
                           backtest: HierarchyBacktest | None = None, *, title: str | None = None) -> WrittenReport:
    """Write the self-contained HTML report of a hierarchical forecast (and of its hold-out).

    Sections: the structure (levels and their series counts), the coherence check (per forecast column, the
    largest relative gap of :func:`forecasting.hierarchy.coherence_error` on the forecast and on the hold-out,
    "yes" for a reconciled column below :data:`COHERENCE_TOLERANCE`), the accuracy per level (MASE and RMSE of
    the base and each reconciled forecast, ``backtest.table`` as it is, fpp3 ch. 11.7) and a plot of the top
    series' forecasts. Rendered from ``forecasting/templates/hierarchy.html.j2`` by
    :func:`forecasting.reports.render` (inline CSS, the plot embedded, nothing fetched).

    Parameters
    ----------
    path : path
        The HTML file to write (its folder is created).
    result : HierarchyResult
        The forecast (:func:`forecast_hierarchy`).
    backtest : HierarchyBacktest, optional
        The hold-out of the same structure and methods (:func:`backtest_hierarchy`); without it the accuracy
        section says it was not measured.
    title : str, optional

    Returns
    -------
    forecasting.reports.WrittenReport
        The path, the sections ``(id, title)`` and the notes written in the report.

    Raises
    ------
    InvalidParameterError
        The backtest's methods differ from the forecast's.
    """
    from forecasting.reports import WrittenReport, render

    if backtest is not None and backtest.result.methods != result.methods:
        msg = (f"report: the hold-out's methods {backtest.result.methods} differ from the forecast's "
               f"{result.methods}")
        raise InvalidParameterError(msg, field="methods")
    notes = list(dict.fromkeys([*result.notes, *(backtest.result.notes if backtest is not None else [])]))
    figure, overlaps = _top_series_figure(result)
    notes += [f"plot: labels overlap: {a!r} and {b!r}" for a, b in overlaps]
    structure = result.structure
    html = render(
        "hierarchy.html.j2", title=title or f"Hierarchical forecast: {result.spec.name}, h={result.h}",
        subtitle="generated by forecasting.service.hierarchy", notes=notes, model=result.spec.name,
        alias=result.alias, h=result.h, freq=result.panel.freq, methods=result.methods, strict=structure.strict,
        n_series=len(structure.ids), n_bottom=len(structure.bottom), tolerance=f"{COHERENCE_TOLERANCE:g}",
        levels=[(name, len(ids), ids[0]) for name, ids in structure.tags.items()],
        coherence_runs=["forecast", *(["hold-out"] if backtest is not None else [])],
        coherence=_coherence_rows(result, backtest), accuracy=_accuracy_rows(backtest),
        accuracy_methods=["base", *result.methods], cutoff=backtest.cutoff if backtest is not None else "",
        season_length=backtest.season_length if backtest is not None else None, top=structure.ids[0],
        figure=figure)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    sections = [("structure", "Structure"), ("coherence", "Coherence check"), ("accuracy", "Accuracy per level"),
                ("forecasts", "Forecasts of the top series")]
    return WrittenReport(path=out, sections=sections, notes=notes)


def _coherence_rows(result: HierarchyResult, backtest: HierarchyBacktest | None) -> list[dict[str, Any]]:
    runs = [result, *([backtest.result] if backtest is not None else [])]
    rows = []
    for method, column in [("base", result.alias), *[(m, f"{result.alias}/{m}") for m in result.methods]]:
        gaps = [run.coherence.get(column) for run in runs]
        ok = all(g is not None and g < COHERENCE_TOLERANCE for g in gaps)
        rows.append({"method": method, "column": column, "gaps": gaps, "ok": ok})
    return rows


def _accuracy_rows(backtest: HierarchyBacktest | None) -> list[dict[str, Any]]:
    """Per level: one cell per method for MASE and for RMSE (``value``, ``best``: the row's lowest)."""
    if backtest is None:
        return []
    rows = []
    for (level,), part in backtest.table.group_by("level", maintain_order=True):
        row: dict[str, Any] = {"level": level}
        for metric in ("mase", "rmse"):
            values = [None if v is None or v != v else float(v) for v in part[metric].to_list()]
            best = min((v for v in values if v is not None), default=None)
            row[metric] = [{"method": m, "value": v, "best": v is not None and v == best}
                           for m, v in zip(part["method"].to_list(), values, strict=True)]
        rows.append(row)
    return rows


def _top_series_figure(result: HierarchyResult) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """The top series' last observations, base and reconciled forecasts (and the base intervals) as a figure."""
    from forecasting.reports import new_figure, png_base64, text_overlaps

    top = result.structure.ids[0]
    hist = result.panel.frame.filter(pl.col("unique_id") == top).tail(max(4 * result.h, 24))
    part = result.forecasts.filter(pl.col("unique_id") == top)
    fig = new_figure(10, 3.8)
    ax = fig.add_subplot()
    ax.plot(hist["ds"].to_numpy(), hist["y"].to_numpy(), color="#333", lw=1, label="history")
    fx = part["ds"].to_numpy()
    for lv in sorted(result.level, reverse=True):
        ax.fill_between(fx, part[f"{result.alias}-lo-{lv}"].to_numpy(), part[f"{result.alias}-hi-{lv}"].to_numpy(),
                        color="#9ecae1", alpha=0.5, linewidth=0, label=f"base {lv}% interval")
    ax.plot(fx, part[result.alias].to_numpy(), color="#1f4e9c", lw=1.5, label=f"base ({result.alias})")
    for m in result.methods:
        ax.plot(fx, part[f"{result.alias}/{m}"].to_numpy(), lw=1.2, ls="--", label=m)
    ax.set_title(f"series {top}: base and reconciled forecasts", fontsize=10)
    ax.set_xlabel("ds")
    ax.set_ylabel("y")
    ax.legend(fontsize=7, loc="upper left")
    overlaps = text_overlaps(fig)
    alt = (f"Forecast plot of the top series {top}: last {hist.height} observations, the base forecast and "
           f"{len(result.methods)} reconciled forecasts, {result.h} steps")
    return {"png": png_base64(fig), "alt": alt}, overlaps
