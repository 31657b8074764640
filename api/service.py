"""Registered-model use cases behind the ``/v1/models``, ``/v1/jobs`` routes: route -> here -> registry -> model.

Every function is synchronous (the routes run them in worker threads), takes the caller's
tenant and raises only library errors (:mod:`forecasting.errors`), which the API maps to
HTTP statuses in one table (:mod:`api.errors`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from forecasting.data import to_polars, validate_h, validate_levels, validate_panel
from forecasting.errors import CapabilityError, InvalidInputError, InvalidParameterError
from forecasting.explain import explain_forecast
from forecasting.explanation import Explanation
from forecasting.jobs import JobRunner
from forecasting.registry import JobInfo, Registry, VersionInfo
from forecasting.service import Limits, check_limits
from forecasting.service import forecast as forecast_inline

__all__ = [
    "Services",
    "explanation_out",
    "subset_rows",
    "job_out",
]

_UPLOAD_SUFFIXES = (".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class Services:
    """The registry, the job runner and the request limits of one app."""

    registry: Registry
    runner: JobRunner
    limits: Limits

    # ------------------------------------------------------------------ training
    def submit_training(self, tenant: str, *, name: str, model: Any, data: Any, kind: str, target: str | None,
                        h: int | None, freq: str | int | None) -> JobInfo:
        """Check the request and the data's size, queue the training, return the ``queued`` job.

        ``data`` is rows, columns or a frame (inline or parsed from an uploaded file).
        """
        if h is not None:
            validate_h(h, max_h=self.limits.max_h)
        frame = data if isinstance(data, pl.DataFrame) else to_polars(data)
        _check_table_limits(frame, self.limits, series=kind == "forecast")
        job_id = self.runner.submit_training(tenant, name, model, frame, kind=kind, target=target,  # type: ignore[arg-type]
                                             h=h, freq=freq)
        return self.runner.get_job(job_id, tenant)

    def submit_upload(self, tenant: str, *, filename: str, content: bytes, **fields: Any) -> JobInfo:
        """As :meth:`submit_training` with the data in an uploaded CSV or Parquet file (read as data only)."""
        suffix = Path(filename or "").suffix.lower()
        if suffix not in _UPLOAD_SUFFIXES:
            raise InvalidParameterError(f"the uploaded file must end in .csv or .parquet, got '{filename}'",
                                        field="file")
        with tempfile.TemporaryDirectory(prefix="forecasting-upload-") as tmp:
            path = Path(tmp) / f"data{suffix}"
            path.write_bytes(content)
            from forecasting.service import read_table

            try:
                frame = read_table(path)
            except InvalidInputError as exc:
                raise InvalidInputError(exc.message.replace(str(path), filename), field="file") from exc
        return self.submit_training(tenant, data=frame, **fields)

    # ------------------------------------------------------------------ the registry
    def list_models(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's models: name, latest version, version count, aliases."""
        return [_no_tenant(m.to_dict()) for m in self.registry.list_models(tenant)]

    def model_detail(self, tenant: str, name: str) -> dict[str, Any]:
        """A model's summary and every version (spec, metrics, fingerprint, digest).

        Raises
        ------
        NotFoundError
            No such model for this tenant.
        """
        versions = self.registry.versions(name, tenant)
        summary = next(m for m in self.registry.list_models(tenant) if m.name == name)
        return {**_no_tenant(summary.to_dict()), "versions": [_no_tenant(v.to_dict()) for v in versions]}

    def set_alias(self, tenant: str, name: str, alias: str, *, version: int) -> dict[str, Any]:
        """Point ``name@alias`` at ``version``; returns that version."""
        return _no_tenant(self.registry.set_alias(name, alias, version, tenant).to_dict())

    # ------------------------------------------------------------------ registered forecast models
    def _forecast_version(self, tenant: str, ref: str) -> VersionInfo:
        info = self.registry.get(ref, tenant=tenant)
        if info.kind != "forecast":
            raise CapabilityError(f"model '{info.ref}' is a tabular model: use POST /v1/models/{info.name}@"
                                  f"{info.version}/predict", field="model")
        return info

    def _history(self, info: VersionInfo, history: Any) -> Any:
        if history is None:
            return None
        panel = validate_panel(history, freq=info.fingerprint.get("freq"), field_name="history")
        check_limits(panel, self.limits)
        return panel

    def forecast(self, tenant: str, ref: str, *, h: int, level: Sequence[float] = (), history: Any = None,
                 X_future: Any = None) -> dict[str, Any]:
        """Forecast ``h`` steps with a registered model.

        Saved (global) models predict from the stored model, from ``history`` when given and
        from the stored training tail otherwise; spec-only (statistical) versions refit on
        ``history``, which they need.

        Raises
        ------
        NotFoundError, CapabilityError (a tabular model), InvalidInputError (``history``
        missing for a spec-only version, or invalid), InvalidParameterError.
        """
        info = self._forecast_version(tenant, ref)
        h = validate_h(h, max_h=self.limits.max_h)
        levels = validate_levels(level)
        if info.artifact is None:
            panel = self._needs_history(info, history)
            result = forecast_inline(panel.frame, model=info.spec, h=h, freq=panel.freq, level=levels,
                                     X_future=X_future, limits=self.limits)
            return _forecast_out(info, h, levels, result.alias, result.forecasts, result.notes)
        model, runtime = self.registry.load_serving_model(info)
        panel = self._history(info, history)
        frame = model.predict(h, history=panel, X_future=X_future, level=levels)
        notes = [] if panel is not None else ["forecast from the stored training history (no history given)"]
        if runtime == "onnxruntime":
            notes.append("served by onnxruntime from the model's ONNX export")
        return _forecast_out(info, h, levels, model.alias, frame, notes)

    def onnx_archive(self, tenant: str, ref: str) -> tuple[str, bytes]:
        """A zip of the version's ONNX export (exported on first request): ``(file name, bytes)``.

        Raises
        ------
        NotFoundError (another tenant's model too), CapabilityError (statistical or tabular
        models), ExportParityError.
        """
        import io
        import zipfile

        info = self.registry.get(ref, tenant=tenant)
        folder = self.registry.export_onnx(info)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(folder.iterdir()):
                zf.write(f, arcname=f"{info.name}-v{info.version}.onnx/{f.name}")
        return f"{info.name}-v{info.version}.onnx.zip", buf.getvalue()

    def _needs_history(self, info: VersionInfo, history: Any) -> Any:
        if history is None:
            raise InvalidInputError(f"model '{info.ref}' ({info.spec.get('name')}) is registered as a spec only: it "
                                    f"refits at forecast time, so history (the series to fit and forecast from) is "
                                    f"required", field="history")
        return self._history(info, history)

    def explain(self, tenant: str, ref: str, *, h: int, history: Any = None, X_future: Any = None,
                series: Sequence[str] | None = None, steps: Sequence[int] | None = None, k: int = 5) -> dict[str, Any]:
        """SHAP values of the forecast rows asked, top ``k`` contributions first.

        Raises
        ------
        CapabilityError
            Statistical models (no SHAP) and tabular models (use the rows form).
        """
        info = self._forecast_version(tenant, ref)
        h = validate_h(h, max_h=self.limits.max_h)
        if info.artifact is None:
            explain_forecast(self.registry.load_model(info), h)  # raises the capability problem
        model = self.registry.load_model(info)
        explanation = explain_forecast(model, h, history=self._history(info, history), X_future=X_future)
        explanation = _select(explanation, series=series, steps=steps)
        return {"model": info.ref, "name": info.name, "version": info.version, "h": h,
                **explanation_out(explanation, k=k)}

    def explain_any(self, tenant: str, ref: str, *, h: int | None, history: Any, X_future: Any,
                    series: Sequence[str] | None, steps: Sequence[int] | None, rows: Any, k: int) -> dict[str, Any]:
        """:meth:`explain` for forecast models (``h`` required), :meth:`explain_rows` for tabular ones (``rows``)."""
        info = self.registry.get(ref, tenant=tenant)
        if info.kind == "tabular":
            if rows is None:
                raise InvalidParameterError("rows is required to explain a tabular model", field="rows")
            return self.explain_rows(tenant, ref, rows=rows, k=k)
        if h is None:
            raise InvalidParameterError("h is required to explain a forecast model", field="h")
        return self.explain(tenant, ref, h=h, history=history, X_future=X_future, series=series, steps=steps, k=k)

    def report(self, tenant: str, ref: str, *, h: int) -> str:
        """The HTML report of a saved model's forecasts from its stored training history.

        Raises
        ------
        CapabilityError
            Spec-only (statistical) versions keep no history to report on.
        """
        from forecasting.reports import build_report

        info = self._forecast_version(tenant, ref)
        h = validate_h(h, max_h=self.limits.max_h)
        if info.artifact is None:
            raise CapabilityError(f"model '{info.ref}' is registered as a spec only and keeps no history: forecast it "
                                  f"with history, or run `forecasting report` on the data", field="model")
        model = self.registry.load_model(info)
        numeric = {k: v for k, v in info.metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)}
        return build_report(model, model.panel_, h=h, validation=numeric or False, title=f"{info.ref}",
                            data_name=f"training history of {info.ref}")

    # ------------------------------------------------------------------ tabular models
    def _tabular(self, tenant: str, ref: str) -> tuple[VersionInfo, Any]:
        info = self.registry.get(ref, tenant=tenant)
        if info.kind != "tabular":
            raise CapabilityError(f"model '{info.ref}' is a forecast model: use POST /v1/models/{info.name}@"
                                  f"{info.version}/forecast", field="model")
        return info, self.registry.load_model(info)

    def predict(self, tenant: str, ref: str, *, rows: Any) -> dict[str, Any]:
        """Predictions of a registered tabular model for each row, in order."""
        info, model = self._tabular(tenant, ref)
        table = _rows_table(rows, self.limits)
        return {"model": info.ref, "name": info.name, "version": info.version,
                "predictions": model.predict(table).to_dicts()}

    def explain_rows(self, tenant: str, ref: str, *, rows: Any, k: int = 5) -> dict[str, Any]:
        """SHAP values of a registered tabular model for each row."""
        info, model = self._tabular(tenant, ref)
        table = _rows_table(rows, self.limits)
        return {"model": info.ref, "name": info.name, "version": info.version,
                **explanation_out(model.explain(table), k=k)}

    # ------------------------------------------------------------------ operations
    def readiness(self) -> list[str]:
        """What is not reachable: the database and the artifact store ([] when ready)."""
        problems = []
        try:
            self.registry.schema_revision()
        except Exception as exc:  # noqa: BLE001 - any driver error means not ready
            problems.append(f"database unreachable: {type(exc).__name__}")
        folder = self.registry.artifacts_dir
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            problems.append(f"artifact store '{folder}' is not a writable folder")
        return problems

    def jobs_by_state(self) -> dict[str, int]:
        """Job counts by state, every tenant (for the metrics)."""
        from sqlalchemy import func, select

        from forecasting.registry import JOB_STATES, JobRow

        with self.registry.engine.connect() as conn:
            counts = dict(conn.execute(select(JobRow.state, func.count()).group_by(JobRow.state)).all())
        return {s: int(counts.get(s, 0)) for s in JOB_STATES}

    def cache_size(self) -> tuple[int, int]:
        """(fitted models loaded, capacity)."""
        return len(getattr(self.registry, "_cache", ())), self.registry.cache_size


# --------------------------------------------------------------------------- helpers
def _no_tenant(d: dict[str, Any]) -> dict[str, Any]:
    d.pop("tenant", None)
    return d


def _check_table_limits(frame: pl.DataFrame, limits: Limits, *, series: bool) -> None:
    if frame.height > limits.max_rows:
        raise InvalidInputError(f"data has {frame.height} rows; the limit is {limits.max_rows}", field="data",
                                details={"limit": limits.max_rows})
    if series and "unique_id" in frame.columns:
        n = frame["unique_id"].n_unique()
        if n > limits.max_series:
            raise InvalidInputError(f"data has {n} series; the limit is {limits.max_series}", field="data",
                                    details={"limit": limits.max_series})


def _rows_table(rows: Any, limits: Limits) -> pl.DataFrame:
    table = to_polars(rows, field_name="rows")
    if table.height > limits.max_rows:
        raise InvalidInputError(f"rows has {table.height} rows; the limit is {limits.max_rows}", field="rows",
                                details={"limit": limits.max_rows})
    return table


def _forecast_out(info: VersionInfo, h: int, levels: Sequence[float], alias: str, frame: pl.DataFrame,
                  notes: list[str]) -> dict[str, Any]:
    return {"model": info.ref, "name": info.name, "version": info.version, "spec": info.spec, "alias": alias, "h": h,
            "level": list(levels), "forecasts": frame.to_dicts(), "notes": notes}


def _select(e: Explanation, *, series: Sequence[str] | None, steps: Sequence[int] | None) -> Explanation:
    mask = np.ones(e.n_rows, dtype=bool)
    if series is not None:
        known = set(e.rows["unique_id"].cast(pl.Utf8).to_list())
        missing = [s for s in series if s not in known]
        if missing:
            raise InvalidInputError(f"series {missing[:5]} not in the forecast (series: {sorted(known)[:5]})",
                                    field="series")
        mask &= e.rows["unique_id"].cast(pl.Utf8).is_in(list(series)).to_numpy()
    if steps is not None:
        bad = [s for s in steps if not 1 <= s <= int(e.rows["step"].max() or 0)]
        if bad:
            raise InvalidParameterError(f"steps must be in 1..h, got {bad[:5]}", field="steps")
        mask &= e.rows["step"].is_in(list(steps)).to_numpy()
    if mask.all():
        return e
    return subset_rows(e, mask)


def subset_rows(e: Explanation, mask: np.ndarray) -> Explanation:
    """The explanation of the rows where ``mask`` is True."""
    return Explanation(values=e.values[mask], base_values=e.base_values[mask], feature_names=e.feature_names,
                       data=e.data[mask], output=e.output[mask], rows=e.rows.filter(pl.Series(mask)), method=e.method,
                       is_forecast_value=None if e.is_forecast_value is None else e.is_forecast_value[mask])


def explanation_out(e: Explanation, *, k: int) -> dict[str, Any]:
    """JSON form: per explained row its keys, base value, output and top-``k`` contributions (largest |shap| first)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidParameterError(f"k must be an integer >= 1, got {k!r}", field="k")
    k = min(k, max(len(e.feature_names), 1))
    top = e.top(k) if e.n_rows else None
    keys = list(e.rows.columns)
    plain = e.to_dict()
    rows: list[dict[str, Any]] = []
    for i, rec in enumerate(plain["rows"]):
        rows.append({**rec, "base_value": plain["base_values"][i], "output": plain["output"][i],
                     "contributions": []})
    if top is not None:
        contrib_cols = [c for c in top.columns if c not in keys]
        for j, rec in enumerate(top.select(contrib_cols).to_dicts()):
            value = rec.get("value")
            if isinstance(value, float) and not np.isfinite(value):
                rec["value"] = None
            rows[j // k]["contributions"].append(rec)
    return {"method": e.method, "k": k, "rows": rows, "additivity_error": plain["additivity_error"],
            "additivity_error_relative": plain["additivity_error_relative"]}


def job_out(job: JobInfo) -> dict[str, Any]:
    """A job as the API returns it: state, progress, timings (seconds), error and result."""
    out = job.to_dict()
    out.pop("tenant", None)

    def secs(a: Any, b: Any) -> float | None:
        return None if a is None or b is None else round((b - a).total_seconds(), 3)

    from datetime import UTC, datetime

    now = datetime.now(UTC)
    out["timings"] = {"queued_s": secs(job.created_at, job.started_at or (None if job.done else now)),
                      "run_s": secs(job.started_at, job.finished_at or (None if job.done else now)),
                      "total_s": secs(job.created_at, job.finished_at or (None if job.done else now))}
    out["result"] = None if job.model is None else {"model": job.model, "version": job.version,
                                                     "ref": f"{job.model}@{job.version}",
                                                     "location": f"/v1/models/{job.model}"}
    return out

