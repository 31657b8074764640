"""The use cases on registered models: train (as a job), forecast, explain, report, export, predict, manage.

:class:`RegisteredModels` holds one app's store, job runner and request limits. Every
method is synchronous (the API runs them in worker threads), takes the caller's tenant
and raises only library errors (:mod:`forecasting.errors`), which the API maps to HTTP
statuses in one table. Forecasts and explanations go through the same functions as
inline data (:func:`forecasting.service.forecast`, :func:`forecasting.service.explain`), so
every door answers with the same fields.
"""

from __future__ import annotations

import os

import dataclasses
import io
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from forecasting.data import FillPolicy, to_polars, validate_h
from forecasting.errors import CapabilityError, InvalidInputError, InvalidParameterError
from forecasting.explanation import Explanation
from forecasting.jobs import JobRunner
from forecasting.loading import export_version, load_serving, load_version
from forecasting.runtime import count_series, request_threads
from forecasting.store import JobInfo, ModelInfo, Store, VersionInfo
from forecasting.tabular import TabularModel
from forecasting.models.base import Forecaster
from forecasting.service.core import Limits, stored_history, check_table_limits, explain, explain_rows, forecast, forecast_fitted
from forecasting.service.results import ExplainResult, ForecastResult, Registered
from forecasting.service.tables import read_upload

if TYPE_CHECKING:
    from forecasting.service.hierarchy import HierarchyResult

__all__ = ["RegisteredModels"]


@dataclass(frozen=True)
class RegisteredModels:
    """The store, the job runner and the request limits of one app.

    Attributes
    ----------
    store : Store
        Versions, aliases, jobs and artifacts.
    runner : JobRunner
        Runs training jobs in worker processes.
    limits : Limits
        Request-size limits.
    """

    store: Store
    runner: JobRunner
    limits: Limits
    #: called with (tenant, version, result) after each forecast served (monitoring records it)
    on_served: Callable[[str, VersionInfo, ForecastResult], None] | None = None
    #: called with (tenant, name, job, frame) when a forecast model's training is queued (monitoring keeps the data)
    on_training: Callable[[str, str, JobInfo, pl.DataFrame], None] | None = None
    #: called with (tenant, name) for live HTML sections appended to a model's report (monitoring's accuracy)
    report_sections: Callable[[str, str], str] | None = None

    # ------------------------------------------------------------------ training
    def submit_training(self, tenant: str, *, name: str, model: Any, data: Any, kind: str = "forecast",
                        target: str | None = None, h: int | None = None, freq: str | int | None = None,
                        fill_missing: FillPolicy | None = None, fill_gaps: bool = False,
                        hierarchy: Any = None) -> JobInfo:
        """Check the request and the data's size, queue the training, return the ``queued`` job.

        ``data`` is rows, columns or a frame (inline or parsed from an uploaded file); the job runs
        :func:`forecasting.service.training.train`.

        Raises
        ------
        InvalidParameterError, InvalidInputError
            A bad name, ``h`` or model; data above the limits.
        CapabilityError
            A ``hierarchy`` method the structure or the model cannot support
            (:func:`forecasting.service.hierarchy.training_request`).

        With a ``hierarchy`` (POST /v1/forecast's field: ``nested``/``group`` columns or ``S`` + ``tags``,
        ``methods``, ``middle_level``) the structure is checked now; the job aggregates the bottom series, trains
        on every series and keeps the structure and methods with the version, whose forecasts are reconciled.
        """
        if h is not None:
            validate_h(h, max_h=self.limits.max_h)
        frame = data if isinstance(data, pl.DataFrame) else to_polars(data)
        if hierarchy is not None and kind == "forecast":
            from forecasting.service.hierarchy import training_request

            frame, model = training_request(frame, hierarchy, model, freq=freq, fill_missing=fill_missing,
                                            fill_gaps=fill_gaps, limits=self.limits)
        elif hierarchy is not None:
            msg = "hierarchy is for forecast models (kind 'forecast')"
            raise InvalidParameterError(msg, field="hierarchy")
        n_series = frame["unique_id"].n_unique() if kind == "forecast" and "unique_id" in frame.columns else None
        check_table_limits(frame, self.limits, n_series=n_series)
        job_id = self.runner.submit_training(tenant, name, model, frame, kind=kind,  # type: ignore[arg-type]
                                             target=target, h=h, freq=freq, fill_missing=fill_missing,
                                             fill_gaps=fill_gaps)
        job = self.runner.get_job(job_id, tenant)
        if self.on_training is not None and kind == "forecast":
            self.on_training(tenant, name, job, frame)
        return job

    def submit_upload(self, tenant: str, *, filename: str, content: bytes, **fields: Any) -> JobInfo:
        """As :meth:`submit_training` with the data in an uploaded CSV or Parquet file (read as data only).

        Raises
        ------
        InvalidParameterError
            The file name does not end in .csv or .parquet.
        """
        frame = read_upload(filename, content, field="file")
        return self.submit_training(tenant, data=frame, **fields)

    # ------------------------------------------------------------------ the registry
    def list_models(self, tenant: str) -> list[ModelInfo]:
        """The tenant's models: name, latest version, version count, aliases."""
        return self.store.list_models(tenant)

    def model_detail(self, tenant: str, name: str) -> tuple[ModelInfo, list[VersionInfo]]:
        """A model's summary and every version.

        Raises
        ------
        NotFoundError
            No such model for this tenant.
        """
        versions = self.store.versions(name, tenant)
        summary = next(m for m in self.store.list_models(tenant) if m.name == name)
        return summary, versions

    def set_alias(self, tenant: str, name: str, alias: str, *, version: int) -> VersionInfo:
        """Point ``name@alias`` at ``version``; returns that version."""
        return self.store.set_alias(name, alias, version, tenant)

    def delete_alias(self, tenant: str, name: str, alias: str) -> None:
        """Remove ``name@alias`` (the version stays)."""
        self.store.delete_alias(name, alias, tenant)

    def delete_version(self, tenant: str, name: str, version: int, *, force: bool = False) -> None:
        """Delete a version and its artifact (``force`` drops the aliases pointing at it too)."""
        self.store.delete_version(name, version, tenant, force=force)

    # ------------------------------------------------------------------ jobs
    def list_jobs(self, tenant: str, *, state: str | None = None, limit: int = 100) -> list[JobInfo]:
        """The tenant's jobs, newest first.

        Raises
        ------
        InvalidParameterError
            ``limit`` outside 1..1000.
        """
        if isinstance(limit, bool) or not 1 <= limit <= 1000:
            msg = f"limit must be in 1..1000, got {limit}"
            raise InvalidParameterError(msg, field="limit")
        return self.runner.list_jobs(tenant, state=state, limit=limit)

    def get_job(self, tenant: str, job_id: str) -> JobInfo:
        """One job (NotFoundError for another tenant's)."""
        return self.runner.get_job(job_id, tenant)

    def cancel_job(self, tenant: str, job_id: str) -> JobInfo:
        """Cancel a queued or running job (ConflictError once finished)."""
        return self.runner.cancel(job_id, tenant)

    # ------------------------------------------------------------------ registered forecast models
    def _forecast_version(self, tenant: str, ref: str, *, use: str | None = None) -> VersionInfo:
        """The forecast version ``ref``; with ``use`` (explain, report, export) one that is not over a hierarchy
        (:func:`~forecasting.service.hierarchy.refuse_over_hierarchy`)."""
        info = self.store.get(ref, tenant=tenant)
        if info.kind != "forecast" and use != "export":
            msg = f"model '{info.ref}' is a tabular model: use POST /v1/models/{info.name}@{info.version}/predict"
            raise CapabilityError(msg, field="model")
        if use is not None:
            from forecasting.service.hierarchy import refuse_over_hierarchy

            refuse_over_hierarchy(info, use)
        return info

    @request_threads()  # a served network's forward on one core of this request's thread (issue 14)
    def forecast(self, tenant: str, ref: str, *, h: int, level: Sequence[float] = (), history: Any = None,
                 X_future: Any = None, fill_missing: FillPolicy | None = None,
                 fill_gaps: bool = False, hierarchy: Any = None) -> ForecastResult | HierarchyResult:
        """Forecast ``h`` steps with a registered model.

        Saved (global) models predict from the stored model, from ``history`` when given and from
        the stored training tail otherwise (series of ``history`` too short for the model go to the
        spec's ``fallback``, reported); spec-only (statistical) versions refit on ``history``, which
        they need. Both go through the functions inline forecasts use.

        A version trained with a ``hierarchy`` answers a
        :class:`~forecasting.service.hierarchy.HierarchyResult`: ``history`` holds the bottom series, the
        aggregates are built with the stored structure and the forecasts reconciled
        (:func:`forecasting.service.hierarchy.forecast_registered`).

        Raises
        ------
        NotFoundError, CapabilityError (a tabular model; a ``hierarchy`` in the request: a version's structure
        is fixed at training), InvalidInputError (``history`` missing for a spec-only version, or invalid; a
        series not in the version's hierarchy), InvalidParameterError.
        """
        if hierarchy is not None:
            from forecasting.service.hierarchy import registered_refusal

            raise registered_refusal()
        info = self._forecast_version(tenant, ref)
        registered = Registered(info.name, info.version)
        if info.metrics.get("hierarchy") is not None:
            return self._forecast_hierarchy(info, h=h, level=level, history=history, fill_missing=fill_missing,
                                            fill_gaps=fill_gaps)
        if info.artifact is None:
            if history is None:
                msg = (f"model '{info.ref}' ({info.spec.get('name')}) is registered as a spec only: it refits at "
                       f"forecast time, so history (the series to fit and forecast from) is required")
                raise InvalidInputError(msg, field="history")
            result = forecast(history, model=info.spec, h=h, freq=info.fingerprint.get("freq"), level=level,
                              fill_missing=fill_missing, fill_gaps=fill_gaps, X_future=X_future,
                              limits=self.limits, field_name="history")
            return self._served(tenant, info, dataclasses.replace(result, registered=registered))
        served, runtime = load_serving(self.store, info, n_series=count_series(history) if history is not None
                                       else info.fingerprint.get("series"))
        model = _forecaster(info, served)
        result = forecast_fitted(model, history, h=h, level=level, X_future=X_future, fill_missing=fill_missing,
                                 fill_gaps=fill_gaps, limits=self.limits, fallback=info.spec.get("fallback"),
                                 registered=registered, runtime=runtime, field_name="history")
        left_out = info.metrics.get("left_out_series") or []
        if history is None and left_out:
            listed = ", ".join(f"'{u}'" for u in left_out[:5]) + (f" and {len(left_out) - 5} more"
                                                                   if len(left_out) > 5 else "")
            note = (f"{len(left_out)} series of the training data ({listed}) are not in the saved model (shorter than "
                    f"it needs) and have no forecast here: send them in history to forecast them with the fallback "
                    f"'{info.spec.get('fallback')}'")
            result = dataclasses.replace(result, notes=[*result.notes, note])
        return self._served(tenant, info, result)

    def _forecast_hierarchy(self, info: VersionInfo, *, h: int, level: Sequence[float], history: Any,
                            fill_missing: FillPolicy | None, fill_gaps: bool) -> HierarchyResult:
        """A version trained over a hierarchy: reconciled forecasts (monitoring does not record them)."""
        from forecasting.service.hierarchy import forecast_registered

        model = None
        if info.artifact is not None:
            served, _ = load_serving(self.store, info, n_series=count_series(history) if history is not None
                                     else info.fingerprint.get("series"))
            model = _forecaster(info, served)
        return forecast_registered(info.metrics["hierarchy"], spec=info.spec, model=model, history=history, h=h,
                                   level=level, freq=info.fingerprint.get("freq"), fill_missing=fill_missing,
                                   fill_gaps=fill_gaps, limits=self.limits,
                                   registered=Registered(info.name, info.version))

    def _served(self, tenant: str, info: VersionInfo, result: ForecastResult) -> ForecastResult:
        if info.max_h is not None and result.h > info.max_h:  # answered, and said: no hold-out measured it
            note = (f"h={result.h} is beyond the {info.max_h} steps version {info.ref} was validated for (its "
                    f"metrics' window): the steps after {info.max_h} were not measured")
            result = dataclasses.replace(result, notes=[*result.notes, note])
        if self.on_served is not None:
            self.on_served(tenant, info, result)
        return result

    @request_threads()
    def explain(self, tenant: str, ref: str, *, h: int, history: Any = None, X_future: Any = None,
                series: Sequence[str] | None = None, steps: Sequence[int] | None = None,
                approximate: bool = False) -> ExplainResult:
        """Explanations of the forecast rows asked (all by default), as :func:`forecasting.service.explain`.

        Raises
        ------
        CapabilityError
            Tabular models (use :meth:`explain_rows`); a version trained over a hierarchy (its explanations would
            not be of the reconciled forecasts it serves).
        InvalidInputError, InvalidParameterError
            Unknown ``series``, ``steps`` outside 1..h.
        """
        info = self._forecast_version(tenant, ref, use="explain")
        h = validate_h(h, max_h=self.limits.max_h)
        model = _forecaster(info, load_version(self.store, info))
        result = explain(history, model=model, h=h, X_future=X_future, limits=self.limits,
                         registered=Registered(info.name, info.version), approximate=approximate)
        return ExplainResult(explanation=select_rows(result.explanation, series=series, steps=steps),
                             model=result.model, registered=result.registered, notes=result.notes)

    @request_threads()
    def report(self, tenant: str, ref: str, *, h: int) -> str:
        """The HTML report of a saved model's forecasts from its stored training history.

        Cached with the version: written once to ``<artifacts_dir>/<tenant>/<name>/_reports/``
        under the version, its artifact digest and ``h``, and read back from there (a version
        re-registered with other bytes has another digest, so a stale report is never served).

        Raises
        ------
        CapabilityError
            Spec-only (statistical) versions keep no history to report on; a version trained over a hierarchy.
        """
        from forecasting.reports import build_report

        info = self._forecast_version(tenant, ref, use="report")
        h = validate_h(h, max_h=self.limits.max_h)
        if info.artifact is None:
            msg = (f"model '{info.ref}' is registered as a spec only and keeps no history: forecast it with history, "
                   f"or run `forecasting report` on the data")
            raise CapabilityError(msg, field="model")
        cached = (self.store.artifacts_dir / tenant / info.name / "_reports"
                  / f"{info.version}-{(info.sha256 or 'none')[:16]}-h{h}.html")
        if cached.is_file():
            return self._live_sections(tenant, info, cached.read_text(encoding="utf-8"))
        model = _forecaster(info, load_version(self.store, info))
        numeric = {k: v for k, v in info.metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        text = build_report(model, stored_history(model), h=h, validation=numeric or False, title=f"{info.ref}",
                            data_name=f"training history of {info.ref}")
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, cached)  # atomic: a concurrent reader sees the old file or the whole new one
        return self._live_sections(tenant, info, text)

    def _live_sections(self, tenant: str, info: VersionInfo, text: str) -> str:
        """The cached report with the sections that change as observations arrive (not cached)."""
        extra = self.report_sections(tenant, info.name) if self.report_sections is not None else ""
        return text.replace("</main>", f"{extra}\n</main>", 1) if extra else text

    def onnx_archive(self, tenant: str, ref: str) -> tuple[str, bytes]:
        """A zip of the version's ONNX export (exported on first request): ``(file name, bytes)``.

        Raises
        ------
        NotFoundError (another tenant's model too), CapabilityError (statistical or tabular models),
        ExportParityError; CapabilityError for a version trained over a hierarchy (its graph would not reconcile).
        """
        info = self._forecast_version(tenant, ref, use="export")
        folder = export_version(self.store, info)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(folder.iterdir()):
                zf.write(f, arcname=f"{info.name}-v{info.version}.onnx/{f.name}")
        return f"{info.name}-v{info.version}.onnx.zip", buf.getvalue()

    # ------------------------------------------------------------------ tabular models
    def _tabular(self, tenant: str, ref: str) -> tuple[VersionInfo, Any]:
        info = self.store.get(ref, tenant=tenant)
        if info.kind != "tabular":
            msg = f"model '{info.ref}' is a forecast model: use POST /v1/models/{info.name}@{info.version}/forecast"
            raise CapabilityError(msg, field="model")
        return info, load_version(self.store, info)

    def predict(self, tenant: str, ref: str, *, rows: Any) -> tuple[VersionInfo, pl.DataFrame]:
        """Predictions of a registered tabular model for each row, in order."""
        info, model = self._tabular(tenant, ref)
        return info, model.predict(self._rows(rows))

    def explain_rows(self, tenant: str, ref: str, *, rows: Any) -> ExplainResult:
        """SHAP values of a registered tabular model for each row."""
        info, model = self._tabular(tenant, ref)
        return explain_rows(model, rows, limits=self.limits, registered=Registered(info.name, info.version))

    def kind(self, tenant: str, ref: str) -> str:
        """``"forecast"`` or ``"tabular"`` (NotFoundError when there is no such version)."""
        return self.store.get(ref, tenant=tenant).kind

    # ------------------------------------------------------------------ operations
    def readiness(self, *, detail: bool = True) -> list[str]:
        """What is not ready: the database, the artifact store, and any loaded artifact whose files failed
        their digests (re-verified when their files changed since loading; ``[]`` when ready).

        ``detail=False`` (an open route's anonymous caller): the same problems without the server's paths or
        the failing artifacts' tenants, models and files -- one line counting the integrity failures."""
        import os

        problems = []
        try:
            self.store.schema_revision()
        except Exception as exc:  # noqa: BLE001 - any driver error means not ready
            problems.append(f"database unreachable: {type(exc).__name__}")
        folder = self.store.artifacts_dir
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            problems.append(f"artifact store '{folder}' is not a writable folder" if detail
                            else "the artifact store is not a writable folder")
        failures = self.store.integrity.check()
        if detail:
            problems.extend(f"artifact integrity failure: {line}" for line in failures)
        elif failures:
            problems.append(f"artifact integrity failure in {len(failures)} loaded artifact(s) (an admin key's "
                            f"/readyz names them)")
        return problems

    def jobs_by_state(self) -> dict[str, int]:
        """Job counts by state, every tenant (for the metrics)."""
        return self.store.job_counts()

    def cache_size(self) -> tuple[int, int]:
        """(fitted models loaded, capacity)."""
        return self.store.cache_usage()

    def _rows(self, rows: Any) -> pl.DataFrame:
        table = to_polars(rows, field_name="rows")
        check_table_limits(table, self.limits, field="rows")
        return table


def _forecaster(info: VersionInfo, loaded: Forecaster | TabularModel) -> Forecaster:
    """The loaded model of a forecast version (a tabular model there is a CapabilityError naming the route)."""
    if isinstance(loaded, TabularModel):
        msg = f"model '{info.ref}' is a tabular model: use POST /v1/models/{info.name}@{info.version}/predict"
        raise CapabilityError(msg, field="model")
    return loaded


def select_rows(e: Explanation, *, series: Sequence[str] | None, steps: Sequence[int] | None) -> Explanation:
    """The rows of a forecast explanation for ``series`` and ``steps`` (all when ``None``).

    Raises
    ------
    InvalidInputError
        A series that is not in the forecast.
    InvalidParameterError
        A step outside 1..h.
    """
    import numpy as np

    mask = np.ones(e.n_rows, dtype=bool)
    if series is not None:
        known = set(e.rows["unique_id"].cast(pl.Utf8).to_list())
        missing = [s for s in series if s not in known]
        if missing:
            msg = f"series {missing[:5]} not in the forecast (series: {sorted(known)[:5]})"
            raise InvalidInputError(msg, field="series")
        mask &= e.rows["unique_id"].cast(pl.Utf8).is_in(list(series)).to_numpy()
    if steps is not None:
        last = e.rows["step"].max()
        bad = [s for s in steps if not 1 <= s <= (last if isinstance(last, int) else 0)]
        if bad:
            msg = f"steps must be in 1..h, got {bad[:5]}"
            raise InvalidParameterError(msg, field="steps")
        mask &= e.rows["step"].is_in(list(steps)).to_numpy()
    if mask.all():
        return e
    return e.subset(mask)
