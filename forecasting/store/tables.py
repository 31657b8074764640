"""The store's database: tables (SQLAlchemy ORM), engine and Alembic configuration.

The Alembic revisions under ``forecasting/migrations`` are the source of the schema;
these classes mirror them (a test compares the two).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Unicode,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["AliasRow", "Base", "DecisionRow", "JobRow", "ModelRow", "RetrainPolicyRow", "SchedulerJobRow", "VersionRow",
           "alembic_config", "make_engine", "redact"]

_MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

class Base(DeclarativeBase):
    """Declarative base of the registry tables (the Alembic revisions are the source of the schema)."""

class ModelRow(Base):
    """``models``: one named model of one tenant."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("tenant", "name", name="uq_models_tenant_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(63))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

class VersionRow(Base):
    """``model_versions``: one trained version of a model (numbered 1..n per model, never reused)."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    fingerprint: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    exog: Mapped[list[str]] = mapped_column(JSON)
    max_h: Mapped[int | None] = mapped_column(Integer, nullable=True)
    artifact_path: Mapped[str | None] = mapped_column(String(400), nullable=True)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    artifact_files: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16))  # "pending" while its artifact is copied in, then "ready"
    export_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)  # its ONNX export's digest
    export_files: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)

class AliasRow(Base):
    """``aliases``: ``demand@production`` -> a version of ``demand``."""

    __tablename__ = "aliases"
    __table_args__ = (UniqueConstraint("model_id", "alias", name="uq_aliases_model_alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    alias: Mapped[str] = mapped_column(String(63))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

class JobRow(Base):
    """``jobs``: long work (training) run off the request path, with state and progress."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_tenant_created", "tenant", "created_at"), Index("ix_jobs_state", "state"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    message: Mapped[str] = mapped_column(Text, default="", server_default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_field: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    result_model: Mapped[str | None] = mapped_column(String(63), nullable=True)
    result_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # interruptions while running

class RetrainPolicyRow(Base):
    """``retrain_policies``: a model's retraining policy, its count of new observations and its run lock."""

    __tablename__ = "retrain_policies"
    __table_args__ = (UniqueConstraint("model_id", name="uq_retrain_policies_model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    new_observations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    running_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

class DecisionRow(Base):
    """``retrain_decisions``: one champion/challenger comparison and whether the alias moved."""

    __tablename__ = "retrain_decisions"
    __table_args__ = (Index("ix_retrain_decisions_model_created", "model_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    trigger: Mapped[str] = mapped_column(String(32))
    champion_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    challenger_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    metric: Mapped[str] = mapped_column(String(16))
    champion_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    challenger_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    margin: Mapped[float] = mapped_column(Float)
    promoted: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)

class SchedulerJobRow(Base):
    """``scheduler_jobs``: APScheduler's job store (its ``SQLAlchemyJobStore`` table, kept by Alembic here)."""

    __tablename__ = "scheduler_jobs"

    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), nullable=True, index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)

def alembic_config(database_url: str, *, connection: Any = None) -> Any:
    """An Alembic ``Config`` for the registry schema, built in code (no ``alembic.ini``).

    Parameters
    ----------
    database_url : str
        SQLAlchemy URL.
    connection : sqlalchemy Connection, optional
        Run the migrations on this connection (its transaction is the caller's).
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))  # ConfigParser interpolation
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg

def make_engine(database_url: str, *, busy_timeout_s: float = 30.0) -> Engine:
    """A SQLAlchemy engine for ``database_url``; SQLite gets its folder created, foreign keys, a busy timeout
    and WAL (file databases).

    ``busy_timeout_s`` is how long a statement waits for a lock held by another connection
    (SQLite's ``busy_timeout``); past it the statement fails, and every "database is locked"
    or lock-timeout error of the driver is raised as :class:`~forecasting.errors.StoreBusyError`
    (HTTP 503 with ``Retry-After``) through SQLAlchemy's ``handle_error`` event.
    """
    url = make_url(database_url)
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        db = url.database
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": busy_timeout_s}
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")  # aliases cascade with their version
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")  # wait this long for another writer
            if db and db != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
            cur.close()

    @event.listens_for(engine, "handle_error")
    def _busy(context: Any) -> None:
        text = str(context.original_exception).lower()
        if any(m in text for m in _BUSY_MESSAGES):
            from forecasting.errors import StoreBusyError

            msg = (
                f"the registry database is busy (locked by another writer for more than {busy_timeout_s:g} s); "
                f"retry shortly"
            )
            raise StoreBusyError(msg, field="database", details={"retry_after_s": _RETRY_AFTER_S}) \
                from context.original_exception

    return engine


#: driver messages of a lock that was not released in time (SQLite, PostgreSQL's lock_timeout)
_BUSY_MESSAGES = ("database is locked", "database is busy", "database table is locked", "lock timeout")
#: seconds a client is told to wait after a busy database
_RETRY_AFTER_S = 2


def redact(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for messages
        return "<unparseable url>"
