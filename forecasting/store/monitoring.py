"""What the monitoring use cases keep: observations and served forecasts (append-only Parquet), retraining
policies and decisions (database).

:class:`MonitoringStore` sits beside a :class:`~forecasting.store.Store` and shares its database and its
artifact folder:

* observations of a model (``unique_id, ds, y``) and the forecasts served for it are written as one Parquet
  part per batch under ``<artifacts_dir>/<tenant>/<name>/_observations/`` and ``.../_served/``: each part is
  written to a temporary file, fsynced and renamed (a reader never sees half a part), and never changed
  afterwards (served forecasts are queued and written in batches, one part per batch: at most ~1 s of them
  is lost on a crash, :meth:`forecasting.service.monitoring.Monitoring.record_served`). Each row carries the batch's ``batch`` number (nanoseconds since the epoch at writing, increasing
  per store): a later batch wins over an earlier one for the same ``(unique_id, ds)`` (``replace=true``).
  Reading scans the parts lazily (:func:`polars.scan_parquet`: filters on series and time are pushed down),
  which keeps millions of rows cheap;
* each model's retraining policy (JSON), its count of observations since the last retrain and its run lock,
  and every champion/challenger decision: tables ``retrain_policies`` and ``retrain_decisions`` (Alembic
  revision ``0002``).

It knows no model family, as the rest of the store.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

import polars as pl
from sqlalchemy import select, update

from forecasting.errors import ConflictError
from forecasting.store.records import utc
from forecasting.store.store import Store
from forecasting.store.tables import DecisionRow, RetrainPolicyRow

__all__ = ["DecisionInfo", "MonitoringStore", "PartKind"]

PartKind = Literal["observations", "served"]
_FOLDERS: dict[str, str] = {"observations": "_observations", "served": "_served"}
#: a retrain holding the lock longer than this is taken to have died with its process
STALE_LOCK = timedelta(hours=6)


@dataclass(frozen=True)
class DecisionInfo:
    """One retraining decision (``GET /v1/models/{name}/decisions``).

    Attributes
    ----------
    id : int
    created_at : datetime (UTC)
    trigger : str
        ``"schedule"``, ``"observations"``, ``"drift"`` or ``"manual"``.
    champion_version, challenger_version : int or None
        The version serving before (``production``, else the latest) and the version trained.
    metric : str
        ``"mase"`` or ``"smape"``: the score compared (lower is better).
    champion_score, challenger_score : float or None
        Both models' score on the latest hold-out window.
    margin : float
        Relative improvement the challenger needed (0.05: 5 % lower).
    promoted : bool
        Whether ``production`` moved to the challenger.
    detail : dict
        The window, every score of both models, the reason in words.
    """

    id: int
    created_at: datetime
    trigger: str
    champion_version: int | None
    challenger_version: int | None
    metric: str
    champion_score: float | None
    challenger_score: float | None
    margin: float
    promoted: bool
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``created_at`` in ISO 8601)."""
        out = asdict(self)
        out["created_at"] = self.created_at.isoformat()
        return out


def _now() -> datetime:
    return datetime.now(UTC)


class MonitoringStore:
    """Observations, served forecasts, retraining policies and decisions of a store's models.

    Parameters
    ----------
    store : Store
        Its database (tables of revision ``0002``) and artifact folder are used.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._last_batch = 0

    # ------------------------------------------------------------------ Parquet parts
    def folder(self, tenant: str, name: str, kind: PartKind) -> Path:
        """``<artifacts_dir>/<tenant>/<name>/_observations`` (or ``_served``)."""
        return self.store.artifacts_dir / tenant / name / _FOLDERS[kind]

    def next_batch(self) -> int:
        """A batch number larger than every earlier one of this process (epoch nanoseconds)."""
        with self._lock:
            self._last_batch = max(self._last_batch + 1, time.time_ns())
            return self._last_batch

    def append(self, tenant: str, name: str, kind: PartKind, frame: pl.DataFrame, *, batch: int | None = None) -> int:
        """Write ``frame`` as one new part (with its ``batch`` column); returns the batch number.

        The part is written to a temporary file in the same folder, fsynced, then renamed, so readers see
        all of it or none. A ``frame`` that already has a ``batch`` column (several served forecasts written
        as one part, each with its own number from :meth:`next_batch`) keeps it; the part is named by its
        first number and that number is returned.
        """
        if "batch" in frame.columns:
            batch = int(frame.get_column("batch").min())  # type: ignore[arg-type]
        else:
            batch = self.next_batch() if batch is None else batch
            frame = frame.with_columns(pl.lit(batch, dtype=pl.Int64).alias("batch"))
        folder = self.folder(tenant, name, kind)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"part-{batch:020d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = folder / f".tmp-{final.name}"
        frame.write_parquet(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        return batch

    def scan(self, tenant: str, name: str, kind: PartKind) -> pl.LazyFrame | None:
        """Every part, lazily (``None`` when there is none yet). Parts of one kind may differ in their interval
        columns (served forecasts at other levels): they are concatenated diagonally."""
        parts = sorted(self.folder(tenant, name, kind).glob("part-*.parquet"))
        if not parts:
            return None
        if kind == "observations":
            return pl.scan_parquet(parts)
        return pl.concat([pl.scan_parquet(p) for p in parts], how="diagonal_relaxed")

    # ------------------------------------------------------------------ policies
    def _model_id(self, session: Any, name: str, tenant: str) -> int:
        return Store._model_row(session, name, tenant).id

    def get_policy(self, name: str, tenant: str) -> tuple[dict[str, Any] | None, int]:
        """``(policy or None, observations since the last retrain)``.

        Raises
        ------
        NotFoundError
            No such model for this tenant.
        """
        with self.store._session() as s:
            row = s.scalar(select(RetrainPolicyRow).where(
                RetrainPolicyRow.model_id == self._model_id(s, name, tenant)))
            return (None, 0) if row is None else (dict(row.policy), row.new_observations)

    def set_policy(self, name: str, tenant: str, policy: dict[str, Any]) -> None:
        """Create or replace the model's policy (the counter of new observations is kept)."""
        with self.store._session() as s:
            model_id = self._model_id(s, name, tenant)
            row = s.scalar(select(RetrainPolicyRow).where(RetrainPolicyRow.model_id == model_id))
            if row is None:
                s.add(RetrainPolicyRow(model_id=model_id, policy=policy, new_observations=0, updated_at=_now()))
            else:
                row.policy, row.updated_at = policy, _now()

    def policies(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every model's policy, every tenant: ``[(tenant, name, policy)...]``."""
        from forecasting.store.tables import ModelRow

        with self.store._session() as s:
            rows = s.execute(select(ModelRow.tenant, ModelRow.name, RetrainPolicyRow.policy)
                             .join(RetrainPolicyRow, RetrainPolicyRow.model_id == ModelRow.id)).all()
            return [(str(t), str(n), dict(cast("dict[str, Any]", p))) for t, n, p in rows]

    def count_observations(self, name: str, tenant: str, n: int) -> int:
        """Add ``n`` to the model's count of observations since its last retrain; returns the count (0 and
        nothing kept when the model has no policy)."""
        with self.store._session() as s:
            row = s.scalar(select(RetrainPolicyRow).where(
                RetrainPolicyRow.model_id == self._model_id(s, name, tenant)))
            if row is None:
                return 0
            row.new_observations += n
            return row.new_observations

    def acquire(self, name: str, tenant: str) -> None:
        """Take the model's retrain lock (a compare-and-set in the database, so two processes never retrain one
        model at once). A model without a policy gets an empty one.

        Raises
        ------
        ConflictError
            A retrain of the model is running (started less than :data:`STALE_LOCK` ago).
        """
        with self.store._session() as s:
            model_id = self._model_id(s, name, tenant)
            if s.scalar(select(RetrainPolicyRow.id).where(RetrainPolicyRow.model_id == model_id)) is None:
                s.add(RetrainPolicyRow(model_id=model_id, policy={}, new_observations=0, updated_at=_now()))
        with self.store._session() as s:
            model_id = self._model_id(s, name, tenant)
            stale = _now() - STALE_LOCK
            done = s.execute(update(RetrainPolicyRow).where(
                RetrainPolicyRow.model_id == model_id,
                (RetrainPolicyRow.running_since.is_(None)) | (RetrainPolicyRow.running_since < stale))
                .values(running_since=_now()))
            if not getattr(done, "rowcount", 0):
                msg = f"a retrain of model '{name}' is already running"
                raise ConflictError(msg, field="model", details={"model": name})

    def release(self, name: str, tenant: str, *, reset_count: bool) -> None:
        """Free the retrain lock (and zero the count of new observations after a retrain that ran)."""
        values: dict[str, Any] = {"running_since": None}
        if reset_count:
            values["new_observations"] = 0
        with self.store._session() as s:
            s.execute(update(RetrainPolicyRow).where(
                RetrainPolicyRow.model_id == self._model_id(s, name, tenant)).values(**values))

    # ------------------------------------------------------------------ decisions
    def record_decision(self, name: str, tenant: str, **values: Any) -> DecisionInfo:
        """Keep one decision (the columns of :class:`DecisionInfo` but ``id`` and ``created_at``)."""
        with self.store._session() as s:
            row = DecisionRow(model_id=self._model_id(s, name, tenant), created_at=_now(), **values)
            s.add(row)
            s.flush()
            return _decision(row)

    def decisions(self, name: str, tenant: str, *, limit: int = 100) -> list[DecisionInfo]:
        """The model's decisions, newest first (NotFoundError for an unknown model)."""
        with self.store._session() as s:
            rows = s.scalars(select(DecisionRow).where(DecisionRow.model_id == self._model_id(s, name, tenant))
                             .order_by(DecisionRow.id.desc()).limit(limit)).all()
            return [_decision(r) for r in rows]


def _decision(row: DecisionRow) -> DecisionInfo:
    created = utc(row.created_at)
    assert created is not None  # NOT NULL
    return DecisionInfo(id=row.id, created_at=created, trigger=row.trigger, champion_version=row.champion_version,
                        challenger_version=row.challenger_version, metric=row.metric,
                        champion_score=row.champion_score, challenger_score=row.challenger_score, margin=row.margin,
                        promoted=bool(row.promoted), detail=dict(row.detail))
