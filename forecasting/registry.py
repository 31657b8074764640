"""The model registry: metadata in a SQL database, artifacts on disk.

A registered model is a name owned by a tenant, with versions numbered 1, 2, 3...
(numbers are never reused, even after a version is deleted) and aliases
(``production``, ``staging``...) pointing at versions. A reference is

* ``"demand"`` -- the latest version,
* ``"demand@3"`` -- version 3,
* ``"demand@production"`` -- the version the alias points to (``@latest`` is built in).

Each version records the model spec, its kind (``"forecast"`` or ``"tabular"``), a
fingerprint of the training data, validation metrics, the exogenous columns it needs,
its largest horizon and, for models that are saved (global forecasters such as
``xgboost``, tabular models), an artifact folder under
``<artifacts_dir>/<tenant>/<name>/<version>/``. Statistical models are registered as a
spec only (no artifact): they refit on the history given at forecast time.

Storage
-------
The database is SQLite by default (``sqlite:///var/forecasting.db``, embedded, nothing
to start); any SQLAlchemy URL works, e.g. PostgreSQL with
``FORECASTING_DATABASE_URL=postgresql+psycopg://user:pass@host/forecasting`` (the API
reads that variable once into its settings and passes it here; the library reads no
environment). The schema is managed by Alembic (``forecasting/migrations``): opening a
:class:`Registry` runs ``upgrade head``, which is a no-op on an up-to-date database.

Trust
-----
Artifacts are copied in atomically (temporary folder, files fsynced, one rename) and
their digest -- sha256 over ``"<file>\\0<sha256 of file>\\n"`` for every file, sorted by
relative path -- is stored with each file's sha256. :meth:`Registry.artifact_path`
recomputes it and raises :class:`~forecasting.errors.ArtifactIntegrityError` naming the
file on any mismatch; :meth:`Registry.load_model` goes through it, so a tampered
artifact is never loaded.

Tenants
-------
Every call takes the tenant; another tenant's model, version, alias or job is
:class:`~forecasting.errors.NotFoundError` exactly like a missing one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from forecasting.errors import (
    ArtifactIntegrityError,
    CapabilityError,
    ConflictError,
    InvalidInputError,
    InvalidParameterError,
    NotFoundError,
)
from forecasting.hashing import sha256_file

__all__ = [
    "DEFAULT_ARTIFACTS_DIR",
    "DEFAULT_DATABASE_URL",
    "JOB_STATES",
    "TERMINAL_STATES",
    "AliasRow",
    "Base",
    "JobInfo",
    "JobRow",
    "ModelInfo",
    "ModelRow",
    "Registry",
    "VersionInfo",
    "VersionRow",
    "alembic_config",
    "artifact_digest",
    "default_locations",
    "parse_ref",
    "validate_name",
]

#: The embedded defaults (relative to the working directory), as the API's settings use them.
DEFAULT_DATABASE_URL = "sqlite:///var/forecasting.db"
DEFAULT_ARTIFACTS_DIR = Path("var/artifacts")

Kind = Literal["forecast", "tabular"]
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JOB_STATES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
KINDS: tuple[str, ...] = ("forecast", "tabular")

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_TMP_PREFIX = ".tmp-"


def default_locations(state_dir: str | os.PathLike[str] = "var") -> tuple[str, Path]:
    """The embedded defaults under a state folder: ``(sqlite URL of <state_dir>/forecasting.db,
    <state_dir>/artifacts)``. The API builds these from ``FORECASTING_STATE_DIR`` unless
    ``FORECASTING_DATABASE_URL`` / ``FORECASTING_ARTIFACTS_DIR`` say otherwise."""
    state = Path(state_dir)
    return f"sqlite:///{(state / 'forecasting.db').as_posix()}", state / "artifacts"


# --------------------------------------------------------------------------- names and refs
def validate_name(value: Any, *, field: str) -> str:
    """Check a model, alias or tenant name: ``^[a-z0-9][a-z0-9_.-]{0,62}$``.

    Names are also folder names under the artifact store, hence the narrow alphabet.

    Raises
    ------
    InvalidParameterError
        Naming ``field``, the rule and the value.
    """
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidParameterError(
            f"{field} must be 1-63 characters of a-z, 0-9, '_', '.' or '-', starting with a letter or digit, "
            f"got {value!r}", field=field)
    return value


def _validate_alias(alias: Any, *, field: str = "alias") -> str:
    validate_name(alias, field=field)
    if alias.isdigit():
        raise InvalidParameterError(f"{field} must not be a number (name@3 means version 3), got {alias!r}",
                                    field=field)
    if alias == "latest":
        raise InvalidParameterError(f"{field} 'latest' is reserved (name@latest is always the newest version)",
                                    field=field)
    return alias


def parse_ref(ref: str, *, field: str = "model") -> tuple[str, int | str | None]:
    """Split ``"name"``, ``"name@3"`` or ``"name@alias"`` into ``(name, 3 | "alias" | None)``.

    ``None`` and ``"latest"`` both mean the newest version.

    Raises
    ------
    InvalidParameterError
        A malformed reference, naming ``field``.
    """
    if not isinstance(ref, str):
        raise InvalidParameterError(f"{field} must be a string like 'demand', 'demand@3' or 'demand@production', "
                                    f"got {type(ref).__name__}", field=field)
    name, sep, sel = ref.partition("@")
    validate_name(name, field=field)
    if not sep or sel == "latest":
        return name, None
    if sel.isdigit():
        version = int(sel)
        if version < 1:
            raise InvalidParameterError(f"{field}: version must be >= 1, got {ref!r}", field=field)
        return name, version
    return name, _validate_alias(sel, field=field)


# --------------------------------------------------------------------------- ORM
class Base(DeclarativeBase):
    """Declarative base of the registry tables (the Alembic revisions are the source of the schema)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes: they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


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


# --------------------------------------------------------------------------- read models
def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True)
class VersionInfo:
    """One registered version, as the API returns it.

    Attributes
    ----------
    tenant, name : str
    version : int
        1..n per model.
    kind : {"forecast", "tabular"}
    spec : dict
        The model spec (forecast: ``{"name", "params", "fallback"}`` with ``season_length``
        resolved; tabular: :class:`~forecasting.tabular.TabularModel` arguments + ``target``).
    fingerprint : dict
        Training data: ``series`` (count; None for tabular), ``rows``, ``ds_min``, ``ds_max``
        (ISO 8601), ``freq``, ``sha256`` (of the canonical training frame, see
        :func:`forecasting.jobs.data_fingerprint`).
    metrics : dict
        Validation metrics and the window they were measured on (empty when not measurable).
    exog : tuple of str
        Exogenous columns (forecast: needed in ``X_future``) or feature columns (tabular).
    max_h : int or None
        Largest horizon validated for (forecast models).
    artifact : str or None
        Artifact folder relative to the registry's ``artifacts_dir``; None for spec-only versions.
    sha256 : str or None
        The artifact digest (see the module docstring).
    size_bytes : int
    created_at : datetime (UTC)
    status : str
        ``"ready"`` (``"pending"`` only while its artifact is being copied in).
    aliases : tuple of str
        Aliases pointing at this version.
    """

    tenant: str
    name: str
    version: int
    kind: str
    spec: dict[str, Any]
    fingerprint: dict[str, Any]
    metrics: dict[str, Any]
    exog: tuple[str, ...]
    max_h: int | None
    artifact: str | None
    sha256: str | None
    size_bytes: int
    created_at: datetime
    status: str
    aliases: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def ref(self) -> str:
        """``"name@version"``."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (timestamps ISO 8601, no per-file digests)."""
        out = asdict(self)
        out.pop("files")
        out["exog"] = list(self.exog)
        out["aliases"] = list(self.aliases)
        out["created_at"] = _iso(self.created_at)
        out["ref"] = self.ref
        return out


@dataclass(frozen=True)
class ModelInfo:
    """A model name with its versions' summary: ``latest_version`` is None when it has none left."""

    tenant: str
    name: str
    created_at: datetime
    latest_version: int | None
    n_versions: int
    aliases: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**asdict(self), "created_at": _iso(self.created_at)}


@dataclass(frozen=True)
class JobInfo:
    """A job's state as the API returns it.

    Attributes
    ----------
    id : str (uuid4)
    tenant, kind : str
    state : {"queued", "running", "succeeded", "failed", "cancelled"}
    progress : float in [0, 1]
    message : str
        The last step done ("data validated", "fitted"...).
    error, error_field : str or None
        For failed jobs: the library error's message and the field it names.
    request : dict
        What was asked (name, kind, spec, target, h...; not the data).
    model, version : result, when succeeded.
    created_at, started_at, finished_at, heartbeat_at : datetime (UTC) or None
    """

    id: str
    tenant: str
    kind: str
    state: str
    progress: float
    message: str
    error: str | None
    error_field: str | None
    request: dict[str, Any]
    model: str | None
    version: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None

    @property
    def done(self) -> bool:
        """True in a terminal state (succeeded, failed, cancelled)."""
        return self.state in TERMINAL_STATES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        for k in ("created_at", "started_at", "finished_at", "heartbeat_at"):
            out[k] = _iso(out[k])
        return out


def _job_info(row: JobRow) -> JobInfo:
    return JobInfo(id=row.id, tenant=row.tenant, kind=row.kind, state=row.state, progress=row.progress,
                   message=row.message, error=row.error, error_field=row.error_field, request=dict(row.request),
                   model=row.result_model, version=row.result_version, created_at=_utc(row.created_at),
                   started_at=_utc(row.started_at), finished_at=_utc(row.finished_at),
                   heartbeat_at=_utc(row.heartbeat_at))


# --------------------------------------------------------------------------- artifacts
def _folder_files(folder: Path) -> list[tuple[str, Path]]:
    """Regular files under ``folder`` as (relative posix path, path), sorted; refuses links and odd entries."""
    out = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).as_posix()
        if p.is_symlink():
            raise InvalidInputError(f"artifact folder '{folder}': {rel} is a symbolic link; only plain files are "
                                    f"stored", field="artifact")
        if p.is_file():
            out.append((rel, p))
        elif not p.is_dir():
            raise InvalidInputError(f"artifact folder '{folder}': {rel} is not a plain file", field="artifact")
    return sorted(out)


def _combine(files: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{files[name]}\n".encode())
    return digest.hexdigest()


def artifact_digest(folder: str | os.PathLike[str]) -> tuple[str, dict[str, str], int]:
    """Digest of an artifact folder: ``(sha256, {relative file: sha256}, total bytes)``.

    The digest is sha256 over ``"<relative path>\\0<file sha256>\\n"`` for every file,
    sorted by relative path (posix separators), so it covers names as well as content.

    Raises
    ------
    InvalidInputError
        The folder is missing or holds symbolic links or special files.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InvalidInputError(f"artifact folder '{root}' does not exist", field="artifact")
    files: dict[str, str] = {}
    size = 0
    for rel, p in _folder_files(root):
        files[rel] = sha256_file(p)
        size += p.stat().st_size
    return _combine(files), files, size


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory handles (Windows)
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _copy_durably(src: Path, dst: Path) -> None:
    """Copy the plain files of ``src`` into the new folder ``dst``, fsyncing each file and folder."""
    dst.mkdir(parents=True)
    for rel, p in _folder_files(src):
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "rb") as fin, open(target, "wb") as fout:
            shutil.copyfileobj(fin, fout, 1 << 20)
            fout.flush()
            os.fsync(fout.fileno())
    for d in sorted({p for p in dst.rglob("*") if p.is_dir()} | {dst}, key=lambda q: len(q.parts), reverse=True):
        _fsync_dir(d)


# --------------------------------------------------------------------------- alembic
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


def _make_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        db = url.database
        if db and db != ":memory:" and not db.startswith("file:"):
            Path(db).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")  # aliases cascade with their version
            cur.execute("PRAGMA busy_timeout=30000")  # worker processes write progress concurrently
            if db and db != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
            cur.close()
    return engine


# --------------------------------------------------------------------------- the registry
def _lookups() -> dict[str, Any]:
    """The statements of :meth:`Registry.get`'s one-query path, built once (building them per request cost
    more than running them)."""
    from sqlalchemy import bindparam

    base = (select(ModelRow, VersionRow).join(VersionRow, VersionRow.model_id == ModelRow.id)
            .where(ModelRow.tenant == bindparam("tenant"), ModelRow.name == bindparam("name")))
    return {
        "latest": base.where(VersionRow.status == "ready").order_by(VersionRow.version.desc()).limit(1),
        "version": base.where(VersionRow.version == bindparam("sel"), VersionRow.status == "ready"),
        "alias": base.join(AliasRow, AliasRow.version_id == VersionRow.id).where(
            AliasRow.model_id == ModelRow.id, AliasRow.alias == bindparam("sel")),
    }


_LOOKUP = _lookups()


class Registry:
    """Model store: metadata in a SQL database, artifacts under ``artifacts_dir``.

    Parameters
    ----------
    database_url : str
        SQLAlchemy URL; default :data:`DEFAULT_DATABASE_URL` (SQLite under ``./var``). The
        API passes ``FORECASTING_DATABASE_URL`` from its settings (PostgreSQL:
        ``postgresql+psycopg://user:pass@host/db``, with the driver installed).
    artifacts_dir : path
        Root of the artifact store; default ``./var/artifacts``.
    cache_size : int, default 4
        Fitted models kept in memory by :meth:`load_model` (least recently used evicted;
        0 disables the cache).
    migrate : bool, default True
        Run Alembic ``upgrade head`` on construction (idempotent). Worker processes open
        the registry with ``migrate=False``.

    Raises
    ------
    InvalidParameterError
        A malformed database URL.
    """

    def __init__(self, database_url: str = DEFAULT_DATABASE_URL,
                 artifacts_dir: str | os.PathLike[str] = DEFAULT_ARTIFACTS_DIR, *, cache_size: int = 4,
                 migrate: bool = True) -> None:
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise InvalidParameterError(f"cache_size must be an integer >= 0, got {cache_size!r}", field="cache_size")
        try:
            self.engine = _make_engine(database_url)
        except Exception as exc:  # noqa: BLE001 - sqlalchemy raises ArgumentError, ImportError (driver)...
            raise InvalidParameterError(f"database_url: cannot open {_redact(database_url)!r}: {exc}",
                                        field="database_url") from exc
        self.database_url = database_url
        self.artifacts_dir = Path(artifacts_dir)
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._export_lock = threading.Lock()
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"Registry({_redact(self.database_url)!r}, artifacts_dir={str(self.artifacts_dir)!r})"

    # ------------------------------------------------------------------ lifecycle
    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (no-op when it is there)."""
        from alembic import command

        with self.engine.begin() as conn:
            command.upgrade(alembic_config(self.database_url, connection=conn), "head")

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (``"0001"``...), None before any migration."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def close(self) -> None:
        """Release the database connections and the model cache."""
        with self._cache_lock:
            self._cache.clear()
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _model_row(session: Session, name: str, tenant: str) -> ModelRow:
        row = session.scalar(select(ModelRow).where(ModelRow.tenant == tenant, ModelRow.name == name))
        if row is None:
            raise NotFoundError(f"model '{name}' not found", field="model", details={"model": name})
        return row

    @staticmethod
    def _version_row(session: Session, model: ModelRow, version: int) -> VersionRow:
        row = session.scalar(select(VersionRow).where(VersionRow.model_id == model.id, VersionRow.version == version,
                                                      VersionRow.status == "ready"))
        if row is None:
            raise NotFoundError(f"model '{model.name}' has no version {version}", field="model",
                                details={"model": model.name, "version": version})
        return row

    def _info(self, session: Session, model: ModelRow, row: VersionRow) -> VersionInfo:
        aliases = session.scalars(select(AliasRow.alias).where(AliasRow.version_id == row.id)
                                  .order_by(AliasRow.alias)).all()
        return VersionInfo(tenant=model.tenant, name=model.name, version=row.version, kind=row.kind,
                           spec=dict(row.spec), fingerprint=dict(row.fingerprint), metrics=dict(row.metrics),
                           exog=tuple(row.exog), max_h=row.max_h, artifact=row.artifact_path,
                           sha256=row.artifact_sha256, size_bytes=row.size_bytes, created_at=_utc(row.created_at),
                           status=row.status, aliases=tuple(aliases), files=dict(row.artifact_files or {}))

    def _version_dir(self, relative: str) -> Path:
        path = (self.artifacts_dir / relative).resolve()
        root = self.artifacts_dir.resolve()
        if root not in path.parents:
            raise ArtifactIntegrityError(f"artifact path {relative!r} points outside the artifact store",
                                         field="model", details={"path": relative})
        return path

    # ------------------------------------------------------------------ versions
    def register_version(
        self,
        name: str,
        *,
        tenant: str,
        spec: Mapping[str, Any],
        kind: Kind,
        artifact_src_dir: str | os.PathLike[str] | None,
        fingerprint: Mapping[str, Any],
        metrics: Mapping[str, Any] | None = None,
        exog: Iterable[str] = (),
        max_h: int | None = None,
    ) -> VersionInfo:
        """Register a new version of ``name`` (creating the model on first use).

        The artifact folder is copied to ``<artifacts_dir>/<tenant>/<name>/<version>/``
        atomically: into a temporary sibling folder, every file fsynced, then one rename.
        Its digest is stored. The version number is reserved first (``status="pending"``)
        and the row turns ``"ready"`` once the artifact is in place, so concurrent
        registrations never share a number and readers never see a half-copied version.

        Parameters
        ----------
        name : str
            Model name (``^[a-z0-9][a-z0-9_.-]{0,62}$``).
        tenant : str
            Owner (same rule).
        spec : dict
            JSON-serialisable model spec.
        kind : {"forecast", "tabular"}
        artifact_src_dir : path or None
            Folder written by the model's ``save``; None for a spec-only version
            (statistical models, which refit at forecast time).
        fingerprint, metrics : dict
            JSON-serialisable.
        exog : iterable of str
        max_h : int, optional

        Returns
        -------
        VersionInfo

        Raises
        ------
        InvalidParameterError
            A bad name, tenant or kind, or metadata that is not JSON-serialisable.
        InvalidInputError
            The artifact folder is missing, empty, or holds links or special files.
        """
        validate_name(name, field="name")
        validate_name(tenant, field="tenant")
        if kind not in KINDS:
            raise InvalidParameterError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}", field="kind")
        if max_h is not None and (isinstance(max_h, bool) or not isinstance(max_h, int) or max_h < 1):
            raise InvalidParameterError(f"max_h must be an integer >= 1, got {max_h!r}", field="max_h")
        meta = {"spec": dict(spec), "fingerprint": dict(fingerprint), "metrics": dict(metrics or {}),
                "exog": [str(c) for c in exog]}
        for key, value in meta.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise InvalidParameterError(f"{key} must be JSON-serialisable (finite numbers): {exc}",
                                            field=key) from exc
        src = Path(artifact_src_dir) if artifact_src_dir is not None else None
        if src is not None:
            if not src.is_dir():
                raise InvalidInputError(f"artifact folder '{src}' does not exist", field="artifact")
            if not _folder_files(src):
                raise InvalidInputError(f"artifact folder '{src}' is empty", field="artifact")

        # 1. reserve the number: the UPDATE takes the model row's write lock (SQLite: the database's)
        now = _now()
        for attempt in range(2):
            try:
                with self._session() as s:
                    model = s.scalar(select(ModelRow).where(ModelRow.tenant == tenant, ModelRow.name == name))
                    if model is None:
                        model = ModelRow(tenant=tenant, name=name, created_at=now, last_version=0)
                        s.add(model)
                        s.flush()
                    s.execute(update(ModelRow).where(ModelRow.id == model.id)
                              .values(last_version=ModelRow.last_version + 1))
                    version = s.scalar(select(ModelRow.last_version).where(ModelRow.id == model.id))
                    rel = f"{tenant}/{name}/{version}" if src is not None else None
                    row = VersionRow(model_id=model.id, version=version, kind=kind, max_h=max_h, artifact_path=rel,
                                     created_at=now, status="pending", size_bytes=0, **meta)
                    s.add(row)
                    s.flush()
                    row_id = row.id
                break
            except IntegrityError:  # another process created the same model at the same moment
                if attempt:
                    raise

        # 2. copy the artifact in, then 3. mark the version ready with its digest
        tmp: Path | None = None
        try:
            digest = files = None
            size = 0
            if src is not None:
                final = self.artifacts_dir / rel
                tmp = final.parent / f"{_TMP_PREFIX}{version}-{uuid.uuid4().hex}"
                if final.exists():  # left by a crash before its row was committed: not referenced by anything
                    shutil.rmtree(final)
                _copy_durably(src, tmp)
                digest, files, size = artifact_digest(tmp)
                os.replace(tmp, final)
                _fsync_dir(final.parent)
            with self._session() as s:
                s.execute(update(VersionRow).where(VersionRow.id == row_id).values(
                    status="ready", artifact_sha256=digest, artifact_files=files, size_bytes=size))
                model = s.get(ModelRow, s.get(VersionRow, row_id).model_id)
                return self._info(s, model, s.get(VersionRow, row_id))
        except BaseException:
            with self._session() as s:
                s.execute(delete(VersionRow).where(VersionRow.id == row_id))
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            if rel is not None:
                shutil.rmtree(self.artifacts_dir / rel, ignore_errors=True)
            raise

    def get(self, name_or_ref: str, *, tenant: str) -> VersionInfo:
        """Resolve ``"name"`` (latest), ``"name@3"``, ``"name@alias"`` or ``"name@latest"``.

        Raises
        ------
        InvalidParameterError
            A malformed reference.
        NotFoundError
            No such model for this tenant (another tenant's model included), version or alias.
        """
        name, sel = parse_ref(name_or_ref)
        with self._session() as s:
            # the common case in one query (this runs on every forecast request); misses take the detailed path
            # below, whose errors say what is missing
            kind = "latest" if sel is None else "version" if isinstance(sel, int) else "alias"
            found = s.execute(_LOOKUP[kind], {"tenant": tenant, "name": name, "sel": sel}).first()
            if found is not None:
                return self._info(s, found[0], found[1])
            model = self._model_row(s, name, tenant)
            if sel is None:
                row = s.scalar(select(VersionRow).where(VersionRow.model_id == model.id, VersionRow.status == "ready")
                               .order_by(VersionRow.version.desc()).limit(1))
                if row is None:
                    raise NotFoundError(f"model '{name}' has no versions", field="model", details={"model": name})
            elif isinstance(sel, int):
                row = self._version_row(s, model, sel)
            else:
                alias = s.scalar(select(AliasRow).where(AliasRow.model_id == model.id, AliasRow.alias == sel))
                if alias is None:
                    known = s.scalars(select(AliasRow.alias).where(AliasRow.model_id == model.id)).all()
                    raise NotFoundError(f"model '{name}' has no alias '{sel}' (aliases: "
                                        f"{', '.join(sorted(known)) or 'none'})", field="model",
                                        details={"model": name, "alias": sel})
                row = s.get(VersionRow, alias.version_id)
            return self._info(s, model, row)

    def list_models(self, tenant: str) -> list[ModelInfo]:
        """The tenant's models, by name."""
        with self._session() as s:
            models = s.scalars(select(ModelRow).where(ModelRow.tenant == tenant).order_by(ModelRow.name)).all()
            out = []
            for m in models:
                n, latest = s.execute(select(func.count(VersionRow.id), func.max(VersionRow.version))
                                      .where(VersionRow.model_id == m.id, VersionRow.status == "ready")).one()
                aliases = dict(s.execute(select(AliasRow.alias, VersionRow.version)
                                         .join(VersionRow, VersionRow.id == AliasRow.version_id)
                                         .where(AliasRow.model_id == m.id).order_by(AliasRow.alias)).all())
                out.append(ModelInfo(tenant=m.tenant, name=m.name, created_at=_utc(m.created_at), latest_version=latest,
                                     n_versions=n, aliases=aliases))
            return out

    def versions(self, name: str, tenant: str) -> list[VersionInfo]:
        """Every ready version of ``name``, oldest first.

        Raises
        ------
        NotFoundError
            No such model for this tenant.
        """
        validate_name(name, field="model")
        with self._session() as s:
            model = self._model_row(s, name, tenant)
            rows = s.scalars(select(VersionRow).where(VersionRow.model_id == model.id, VersionRow.status == "ready")
                             .order_by(VersionRow.version)).all()
            return [self._info(s, model, r) for r in rows]

    def delete_version(self, name: str, version: int, tenant: str, *, force: bool = False) -> None:
        """Delete a version and its artifact folder (its number is not reused).

        Raises
        ------
        NotFoundError
            No such model or version for this tenant.
        ConflictError
            An alias points at the version and ``force`` is False (``details["aliases"]``);
            with ``force`` the aliases are deleted too.
        """
        validate_name(name, field="model")
        with self._session() as s:
            model = self._model_row(s, name, tenant)
            row = self._version_row(s, model, version)
            aliases = s.scalars(select(AliasRow.alias).where(AliasRow.version_id == row.id)
                                .order_by(AliasRow.alias)).all()
            if aliases and not force:
                listed = ", ".join(f"'{a}'" for a in aliases)
                raise ConflictError(f"model '{name}' version {version} is the target of alias {listed}; move the "
                                    f"alias or delete with force", field="version",
                                    details={"model": name, "version": version, "aliases": list(aliases)})
            s.execute(delete(AliasRow).where(AliasRow.version_id == row.id))
            rel = row.artifact_path
            s.delete(row)
        if rel is not None:
            folder = self._version_dir(rel)
            if folder.exists():
                # rename first so a crash never leaves a half-deleted folder at a real version's path
                trash = folder.parent / f"{_TMP_PREFIX}deleted-{version}-{uuid.uuid4().hex}"
                os.replace(folder, trash)
                shutil.rmtree(trash, ignore_errors=True)
            shutil.rmtree(self._export_dir(rel), ignore_errors=True)

    def set_alias(self, name: str, alias: str, version: int, tenant: str) -> VersionInfo:
        """Point ``name@alias`` at ``version`` (creating or moving the alias).

        Raises
        ------
        InvalidParameterError
            A bad alias name (numbers and ``latest`` are reserved), naming ``alias``.
        NotFoundError
            No such model or version for this tenant.
        """
        validate_name(name, field="model")
        _validate_alias(alias)
        with self._session() as s:
            model = self._model_row(s, name, tenant)
            row = self._version_row(s, model, version)
            current = s.scalar(select(AliasRow).where(AliasRow.model_id == model.id, AliasRow.alias == alias))
            if current is None:
                s.add(AliasRow(model_id=model.id, alias=alias, version_id=row.id, updated_at=_now()))
            else:
                current.version_id, current.updated_at = row.id, _now()
            s.flush()
            return self._info(s, model, row)

    def delete_alias(self, name: str, alias: str, tenant: str) -> None:
        """Remove ``name@alias``.

        Raises
        ------
        NotFoundError
            No such model or alias for this tenant.
        """
        validate_name(name, field="model")
        with self._session() as s:
            model = self._model_row(s, name, tenant)
            done = s.execute(delete(AliasRow).where(AliasRow.model_id == model.id, AliasRow.alias == alias))
            if not done.rowcount:
                raise NotFoundError(f"model '{name}' has no alias '{alias}'", field="alias")

    # ------------------------------------------------------------------ artifacts
    def artifact_path(self, info: VersionInfo) -> Path:
        """The version's artifact folder, after checking every file against the stored digests.

        Raises
        ------
        CapabilityError
            A spec-only version (no artifact).
        ArtifactIntegrityError
            A file changed, is missing or was added, or the folder is gone; the message
            names the file. The artifact must not be loaded.
        """
        from forecasting.errors import CapabilityError

        if info.artifact is None or info.sha256 is None:
            raise CapabilityError(f"model '{info.ref}' is registered as a spec only (no artifact): it refits on the "
                                  f"history at forecast time", field="model")
        folder = self._version_dir(info.artifact)
        where = f"artifact of model '{info.ref}' ({info.artifact})"
        if not folder.is_dir():
            raise ArtifactIntegrityError(f"{where} is missing", field="model", details={"path": info.artifact})
        try:
            actual = dict(_folder_files(folder))
        except InvalidInputError as exc:
            raise ArtifactIntegrityError(f"{where}: {exc.message}", field="model",
                                         details={"path": info.artifact}) from exc
        expected = info.files
        for rel in sorted(set(expected) | set(actual)):
            if rel not in actual:
                raise ArtifactIntegrityError(f"{where}: file {rel} is missing; refusing to load it", field="model",
                                             details={"path": info.artifact, "file": rel, "expected": expected[rel],
                                                      "actual": None})
            if rel not in expected:
                raise ArtifactIntegrityError(f"{where}: unexpected file {rel} was added; refusing to load it",
                                             field="model", details={"path": info.artifact, "file": rel,
                                                                     "expected": None})
            digest = sha256_file(actual[rel])
            if digest != expected[rel]:
                raise ArtifactIntegrityError(
                    f"{where}: file {rel} has changed (sha256 {digest[:12]}..., registered {expected[rel][:12]}...); "
                    f"refusing to load it", field="model",
                    details={"path": info.artifact, "file": rel, "expected": expected[rel], "actual": digest})
        if _combine(expected) != info.sha256:
            raise ArtifactIntegrityError(f"{where}: the file list does not match the registered digest",
                                         field="model", details={"path": info.artifact, "expected": info.sha256})
        return folder

    def load_model(self, info: VersionInfo) -> Any:
        """The fitted model of a version, ready to predict.

        * forecast with an artifact: the adapter's ``load`` (``XGBoostForecaster.load``, on
          the CPU) after :meth:`artifact_path` verified the digest;
        * tabular: :meth:`forecasting.tabular.TabularModel.load`, after the same check;
        * forecast spec-only (statistical models): a new unfitted model built from the
          stored spec and the training ``freq``; it fits on the history at forecast time.

        Loaded models are kept in an LRU cache of ``cache_size`` entries keyed by
        (artifact path, digest); a cache hit does not re-read (nor re-hash) the files.
        Treat the returned model as read-only: it is shared by every caller.

        Raises
        ------
        ArtifactIntegrityError
            The artifact fails its digest (never loaded).
        InvalidInputError
            The adapter refuses the folder (damaged beyond the digest, e.g. unsupported format).
        """
        if info.artifact is None:
            from forecasting.models.registry import make_model

            return make_model(info.spec, freq=info.fingerprint.get("freq"))
        def load() -> Any:
            folder = self.artifact_path(info)
            if info.kind == "tabular":
                from forecasting.tabular import TabularModel

                return TabularModel.load(folder, device="cpu")
            from forecasting.models.registry import REGISTRY, parse_spec

            return REGISTRY[parse_spec(info.spec).name].load().load(folder)

        return self._cached((info.artifact, info.sha256 or ""), load)

    def _cached(self, key: tuple[str, str], load: Any) -> Any:
        """The LRU model cache: ``load()`` on a miss (outside the lock), kept up to ``cache_size`` entries."""
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        model = load()
        if self.cache_size:
            with self._cache_lock:
                self._cache[key] = model
                self._cache.move_to_end(key)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return model

    # ------------------------------------------------------------------ ONNX exports
    def _export_dir(self, relative: str) -> Path:
        version = self._version_dir(relative)
        return version.parent / f"{version.name}.onnx"

    def export_onnx(self, info: VersionInfo) -> Path:
        """The version's ONNX export folder (:func:`forecasting.export.export_model`), made on first request.

        The export sits beside the artifact (``<version>.onnx/``) with its own sha256
        manifest, verified on every use; the native artifact is verified before exporting.

        Raises
        ------
        CapabilityError
            Spec-only (statistical) versions and models without an ONNX export.
        ArtifactIntegrityError, InvalidInputError
            A damaged artifact or export.
        ExportParityError
            The graph does not reproduce the model.
        """
        from forecasting.export import export_model
        from forecasting.runtime import verify_artifact

        if info.artifact is None:
            raise CapabilityError(f"model '{info.ref}' is a statistical model refit from each request's history: "
                                  f"there is no trained graph to export", field="model")
        folder = self._export_dir(info.artifact)
        with self._export_lock:
            if (folder / "manifest.json").is_file():
                verify_artifact(folder)
                return folder
            if info.kind == "tabular":
                raise CapabilityError("ONNX export of tabular models is not available yet", field="model")
            export_model(self.load_model(info), folder)
        return folder

    def load_serving_model(self, info: VersionInfo) -> tuple[Any, str]:
        """The model to forecast with and its runtime: the ONNX export when there is one, else the native model.

        ONNX models share the LRU cache of :meth:`load_model` (keyed by the export's manifest digest).
        """
        if info.artifact is not None and info.kind == "forecast":
            folder = self._export_dir(info.artifact)
            try:
                st = (folder / "manifest.json").stat()
            except OSError:
                st = None
            if st is not None:
                from forecasting.runtime import load_onnx

                # keyed by the manifest file's identity (inode, size, mtime): an export is written to a temporary
                # folder and renamed into place, so a new export is a new key; load_onnx verifies every sha256
                key = (str(folder), f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
                return self._cached(key, lambda: load_onnx(folder)), "onnxruntime"
        return self.load_model(info), "native"

    # ------------------------------------------------------------------ jobs (used by forecasting.jobs)
    def create_job(self, *, tenant: str, kind: str, request: Mapping[str, Any], job_id: str | None = None) -> JobInfo:
        """Record a new ``queued`` job and return it."""
        validate_name(tenant, field="tenant")
        row = JobRow(id=job_id or str(uuid.uuid4()), tenant=tenant, kind=kind, state="queued", progress=0.0,
                     message="queued", request=dict(request), created_at=_now())
        with self._session() as s:
            s.add(row)
            s.flush()
            return _job_info(row)

    def get_job(self, job_id: str, tenant: str) -> JobInfo:
        """A job of this tenant.

        Raises
        ------
        NotFoundError
            No such job for this tenant (another tenant's job included).
        """
        with self._session() as s:
            row = s.get(JobRow, str(job_id))
            if row is None or row.tenant != tenant:
                raise NotFoundError(f"job '{job_id}' not found", field="job_id", details={"job_id": str(job_id)})
            return _job_info(row)

    def list_jobs(self, tenant: str, *, state: str | None = None, limit: int = 100) -> list[JobInfo]:
        """The tenant's jobs, newest first (at most ``limit``), optionally in one state."""
        if state is not None and state not in JOB_STATES:
            raise InvalidParameterError(f"state must be one of {', '.join(JOB_STATES)}, got {state!r}", field="state")
        q = select(JobRow).where(JobRow.tenant == tenant)
        if state is not None:
            q = q.where(JobRow.state == state)
        with self._session() as s:
            return [_job_info(r) for r in s.scalars(q.order_by(JobRow.created_at.desc()).limit(limit)).all()]

    def update_job(self, job_id: str, *, only_from: Iterable[str] | None = None, **values: Any) -> bool:
        """Set columns of a job (``state``, ``progress``, ``message``, ``error``...).

        With ``only_from``, the update applies only while the job is in one of those
        states (compare-and-set, so a cancelled job is never flipped back to running).
        ``finished_at`` is set when ``state`` becomes terminal. Returns whether a row changed.
        """
        if values.get("state") in TERMINAL_STATES:
            values.setdefault("finished_at", _now())
        q = update(JobRow).where(JobRow.id == job_id)
        if only_from is not None:
            q = q.where(JobRow.state.in_(list(only_from)))
        with self._session() as s:
            return bool(s.execute(q.values(**values)).rowcount)

    def job_state(self, job_id: str) -> str | None:
        """A job's state (any tenant; for the runner and its workers)."""
        with self._session() as s:
            return s.scalar(select(JobRow.state).where(JobRow.id == job_id))

    def unfinished_jobs(self) -> list[JobInfo]:
        """Jobs in ``queued`` or ``running`` state, every tenant (for restart recovery)."""
        with self._session() as s:
            return [_job_info(r) for r in s.scalars(select(JobRow).where(JobRow.state.in_(("queued", "running"))))]

    def remove_pending_versions(self) -> int:
        """Delete versions left ``pending`` by a crash during registration (and their folders). Returns the count."""
        with self._session() as s:
            rows = s.scalars(select(VersionRow).where(VersionRow.status == "pending")).all()
            paths = [r.artifact_path for r in rows if r.artifact_path]
            for r in rows:
                s.delete(r)
        for rel in paths:
            shutil.rmtree(self.artifacts_dir / rel, ignore_errors=True)
        for tmp in self.artifacts_dir.glob(f"*/*/{_TMP_PREFIX}*"):
            shutil.rmtree(tmp, ignore_errors=True)
        return len(paths)


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for messages
        return "<unparseable url>"
