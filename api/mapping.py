"""From the use cases' typed results (:mod:`forecasting.service`) to the response schemas: no logic but the mapping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from forecasting.errors import InvalidParameterError
from forecasting.explanation import Explanation
from forecasting.service import ExplainResult, ForecastResult
from forecasting.service.hierarchy import HierarchyResult
from forecasting.store import JobInfo, ModelInfo, VersionInfo

from forecasting.api.schemas import (
    ExplainResponse,
    FallbackOut,
    FilledOut,
    ForecastResponse,
    HierarchyOut,
    JobOut,
    JobResultOut,
    JobTimings,
    SelectionOut,
    ModelDetailOut,
    ModelSummaryOut,
    VersionOut,
)

__all__ = ["explain_out", "forecast_out", "hierarchy_out", "job_out", "model_detail_out", "model_out", "version_out"]


def forecast_out(result: ForecastResult) -> ForecastResponse:
    """Every forecast route's answer (inline and registered)."""
    d = result.to_dict()
    return ForecastResponse(
        model=d["model"], alias=d["alias"], params=d["params"], freq=d["freq"], h=d["h"], level=d["level"],
        forecasts=d["forecasts"], fallbacks=[FallbackOut(**f) for f in d["fallbacks"]],
        filled=[FilledOut(unique_id=str(r["unique_id"]), ds=str(r["ds"]), reason=str(r["reason"]),
                          policy=str(r["policy"])) for r in d["filled"]],
        notes=d["notes"], runtime=d["runtime"], ref=d["ref"], name=d["name"], version=d["version"],
        selection=None if d["selection"] is None else msgspec.convert(d["selection"], SelectionOut))


def hierarchy_out(result: HierarchyResult) -> ForecastResponse:
    """A hierarchical forecast's answer: the forecast fields plus the structure and its coherence check."""
    d = result.to_dict()
    return ForecastResponse(
        model=d["model"], alias=d["alias"], params=d["params"], freq=d["freq"], h=d["h"], level=d["level"],
        forecasts=d["forecasts"], fallbacks=[], filled=[], notes=d["notes"], runtime="native",
        ref=d["ref"], name=d["name"], version=d["version"], hierarchy=HierarchyOut(methods=d["methods"], levels=d["levels"], coherence=d["coherence"]))


def explain_out(result: ExplainResult, *, k: int, h: int | None = None) -> ExplainResponse:
    """Per explained row its keys, base value, output and top-``k`` contributions (largest |shap| first).

    Raises
    ------
    InvalidParameterError
        ``k`` is not an integer >= 1.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        msg = f"k must be an integer >= 1, got {k!r}"
        raise InvalidParameterError(msg, field="k")
    e = result.explanation
    rows, k = _explained_rows(e, k)
    plain = e.to_dict()
    reg = result.registered
    return ExplainResponse(model=result.model, method=e.method, k=k, rows=rows,
                           additivity_error=plain["additivity_error"],
                           additivity_error_relative=plain["additivity_error_relative"], h=h,
                           weights=plain["weights"],
                           notes=list(result.notes), ref=None if reg is None else reg.ref,
                           name=None if reg is None else reg.name, version=None if reg is None else reg.version)


def _explained_rows(e: Explanation, k: int) -> tuple[list[dict[str, Any]], int]:
    k = min(k, max(len(e.feature_names), 1))
    top = e.top(k) if e.n_rows else None
    keys = list(e.rows.columns)
    plain = e.to_dict()
    rows: list[dict[str, Any]] = [{**rec, "base_value": plain["base_values"][i], "output": plain["output"][i],
                                   "contributions": []} for i, rec in enumerate(plain["rows"])]
    if top is not None:
        contrib_cols = [c for c in top.columns if c not in keys]
        for j, rec in enumerate(top.select(contrib_cols).to_dicts()):
            for col in ("value", "value_transformed"):
                value = rec.get(col)
                if isinstance(value, float) and not np.isfinite(value):
                    rec[col] = None
            rows[j // k]["contributions"].append(rec)
    return rows, k


def version_out(v: VersionInfo) -> VersionOut:
    """A registered version (no tenant, no per-file digests)."""
    d = v.to_dict()
    return VersionOut(name=d["name"], version=d["version"], ref=d["ref"], kind=d["kind"], spec=d["spec"],
                      fingerprint=d["fingerprint"], metrics=d["metrics"], exog=d["exog"], max_h=d["max_h"],
                      artifact=d["artifact"], sha256=d["sha256"], size_bytes=d["size_bytes"],
                      created_at=d["created_at"], status=d["status"], aliases=d["aliases"])


def model_out(m: ModelInfo) -> ModelSummaryOut:
    """A registered model's summary (no tenant)."""
    d = m.to_dict()
    return ModelSummaryOut(name=d["name"], created_at=d["created_at"], latest_version=d["latest_version"],
                           n_versions=d["n_versions"], aliases=d["aliases"])


def model_detail_out(m: ModelInfo, versions: list[VersionInfo]) -> ModelDetailOut:
    """A registered model's summary and every version."""
    s = model_out(m)
    return ModelDetailOut(name=s.name, created_at=s.created_at, latest_version=s.latest_version,
                          n_versions=s.n_versions, aliases=s.aliases, versions=[version_out(v) for v in versions])


def job_out(job: JobInfo) -> JobOut:
    """A job as the API returns it: state, progress, timings (seconds), error and result."""
    d = job.to_dict()
    now = datetime.now(UTC)

    def secs(a: datetime | None, b: datetime | None) -> float | None:
        return None if a is None or b is None else round((b - a).total_seconds(), 3)

    running_end = None if job.done else now
    timings = JobTimings(queued_s=secs(job.created_at, job.started_at or running_end),
                         run_s=secs(job.started_at, job.finished_at or running_end),
                         total_s=secs(job.created_at, job.finished_at or running_end))
    result = None if job.model is None else JobResultOut(model=job.model, version=job.version,
                                                         ref=f"{job.model}@{job.version}",
                                                         location=f"/v1/models/{job.model}")
    return JobOut(id=d["id"], kind=d["kind"], state=d["state"], progress=d["progress"], message=d["message"],
                  error=d["error"], error_field=d["error_field"], request=d["request"], model=d["model"],
                  version=d["version"], created_at=d["created_at"], started_at=d["started_at"],
                  finished_at=d["finished_at"], heartbeat_at=d["heartbeat_at"], timings=timings, result=result)
