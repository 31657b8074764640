"""The store: registered models, versions, aliases and jobs in a SQL database, artifacts on disk.

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
:class:`Store` runs ``upgrade head``, which is a no-op on an up-to-date database.

Trust
-----
Artifacts are copied in by :func:`forecasting.artifacts.copy_sealed` (temporary folder,
files fsynced, one rename) and their digest is stored with each file's sha256.
:meth:`Store.artifact_path` checks them with :func:`forecasting.artifacts.verify_digest`
and raises :class:`~forecasting.errors.ArtifactIntegrityError` naming the file on any
mismatch; :mod:`forecasting.loading` goes through it, so a tampered artifact is never
loaded.

The store knows no model family: it never imports :mod:`forecasting.models`, the ONNX
export or runtime (loading a version's model is :func:`forecasting.loading.load_version`).

Tenants
-------
Every call takes the tenant; another tenant's model, version, alias or job is
:class:`~forecasting.errors.NotFoundError` exactly like a missing one.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from forecasting import artifacts
from forecasting.errors import (
    ArtifactIntegrityError,
    CapabilityError,
    ConflictError,
    InvalidInputError,
    InvalidParameterError,
    NotFoundError,
)
from forecasting.store.names import parse_ref, validate_alias, validate_name
from forecasting.store.records import JOB_STATES, KINDS, TERMINAL_STATES, JobInfo, ModelInfo, VersionInfo, utc
from forecasting.store.tables import AliasRow, JobRow, ModelRow, VersionRow, alembic_config, make_engine, redact

__all__ = ["DEFAULT_ARTIFACTS_DIR", "DEFAULT_DATABASE_URL", "Kind", "ObjectCache", "Store", "default_locations"]

T = TypeVar("T")

#: The embedded defaults (relative to the working directory), as the API's settings use them.
DEFAULT_DATABASE_URL = "sqlite:///var/forecasting.db"
DEFAULT_ARTIFACTS_DIR = Path("var/artifacts")

Kind = Literal["forecast", "tabular"]


def default_locations(state_dir: str | os.PathLike[str] = "var") -> tuple[str, Path]:
    """The embedded defaults under a state folder: ``(sqlite URL of <state_dir>/forecasting.db,
    <state_dir>/artifacts)``. The API builds these from ``FORECASTING_STATE_DIR`` unless
    ``FORECASTING_DATABASE_URL`` / ``FORECASTING_ARTIFACTS_DIR`` say otherwise."""
    state = Path(state_dir)
    return f"sqlite:///{(state / 'forecasting.db').as_posix()}", state / "artifacts"


def _now() -> datetime:
    return datetime.now(UTC)


def _job_info(row: JobRow) -> JobInfo:
    return JobInfo(id=row.id, tenant=row.tenant, kind=row.kind, state=row.state, progress=row.progress,
                   message=row.message, error=row.error, error_field=row.error_field, request=dict(row.request),
                   model=row.result_model, version=row.result_version, created_at=_utc(row.created_at),
                   started_at=utc(row.started_at), finished_at=utc(row.finished_at),
                   heartbeat_at=utc(row.heartbeat_at), attempts=int(row.attempts or 0))


def _utc(value: datetime) -> datetime:
    out = utc(value)
    assert out is not None  # a NOT NULL column
    return out


class ObjectCache:
    """A thread-safe LRU cache of objects loaded from a store's artifacts (fitted models, ONNX sessions).

    :mod:`forecasting.loading` fills it; keys name the artifact and its digest (or its file
    identity), so a changed artifact is a new key. Values are shared by every caller: treat
    them as read-only.

    Parameters
    ----------
    size : int
        Entries kept (least recently used evicted first); 0 keeps nothing.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get_or_load(self, key: tuple[str, str], load: Callable[[], T]) -> T:
        """The cached value of ``key``, or ``load()`` (called outside the lock) kept under it."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()
        if self.size:
            with self._lock:
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._items.clear()


def _lookups() -> dict[str, Any]:
    """The statements of :meth:`Store.get`'s one-query path, built once (building them per request cost
    more than running them)."""
    base = (select(ModelRow, VersionRow).join(VersionRow, VersionRow.model_id == ModelRow.id)
            .where(ModelRow.tenant == bindparam("tenant"), ModelRow.name == bindparam("name")))
    return {
        "latest": base.where(VersionRow.status == "ready").order_by(VersionRow.version.desc()).limit(1),
        "version": base.where(VersionRow.version == bindparam("sel"), VersionRow.status == "ready"),
        "alias": base.join(AliasRow, AliasRow.version_id == VersionRow.id).where(
            AliasRow.model_id == ModelRow.id, AliasRow.alias == bindparam("sel")),
    }


_LOOKUP = _lookups()


#: references kept resolved by :meth:`Store.get` until the database changes (then all are dropped)
_RESOLVED_MAX = 4096


def _copied(info: VersionInfo) -> VersionInfo:
    """A resolved version whose dicts the caller may change without touching the cached one."""
    return dataclasses.replace(info, spec=copy.deepcopy(info.spec), fingerprint=copy.deepcopy(info.fingerprint),
                               metrics=copy.deepcopy(info.metrics))


class _ChangeCounter:
    """A token that changes whenever any connection of any process commits to a SQLite file database.

    ``(inode of the file, PRAGMA data_version)`` read on one dedicated connection that never writes:
    SQLite changes that connection's ``data_version`` whenever another connection -- of this process
    or another one -- commits (https://sqlite.org/pragma.html#pragma_data_version), and the inode
    changes when the file is replaced. About 10 microseconds, against the half millisecond of a
    version lookup. :meth:`token` is None for other databases (PostgreSQL, in-memory SQLite) and
    when the file cannot be read: then nothing is cached.
    """

    def __init__(self, engine: Any) -> None:
        url = engine.url
        db = url.database if url.get_backend_name() == "sqlite" else None
        self._path = os.path.abspath(db) if db and db != ":memory:" and not db.startswith("file:") else None
        self._conn: Any = None
        self._lock = threading.Lock()

    def token(self) -> tuple[int, int] | None:
        """The current token, or None when changes cannot be detected (never cache then)."""
        if self._path is None:
            return None
        import sqlite3

        with self._lock:
            try:
                inode = os.stat(self._path).st_ino
                if self._conn is None:
                    self._conn = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
                return inode, int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            except (OSError, sqlite3.Error):
                self.close_locked()
                return None

    def close_locked(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Close the dedicated connection (opened again on the next :meth:`token`)."""
        with self._lock:
            self.close_locked()


class Store:
    """Registered models, their versions, aliases and jobs: metadata in a SQL database, artifacts
    under ``artifacts_dir``. Knows no model family (see :mod:`forecasting.loading` for loading).

    Parameters
    ----------
    database_url : str
        SQLAlchemy URL; default :data:`DEFAULT_DATABASE_URL` (SQLite under ``./var``). The
        API passes ``FORECASTING_DATABASE_URL`` from its settings (PostgreSQL:
        ``postgresql+psycopg://user:pass@host/db``, with the driver installed).
    artifacts_dir : path
        Root of the artifact store; default ``./var/artifacts``.
    cache_size : int, default 4
        Loaded models kept in memory by :func:`forecasting.loading.load_version` (least
        recently used evicted; 0 disables the cache): :attr:`cache`.
    migrate : bool, default True
        Run Alembic ``upgrade head`` on construction (idempotent). Worker processes open
        the store with ``migrate=False``.
    busy_timeout_s : float, default 30
        How long a statement waits for another writer's lock (SQLite) before
        :class:`~forecasting.errors.StoreBusyError`; the API uses a short one
        (``FORECASTING_DB_BUSY_TIMEOUT_S``) so a locked database answers 503, not a hang.

    Attributes
    ----------
    cache : ObjectCache
        The loaded-model cache of this store's artifacts.
    export_lock : threading.Lock
        Held while a version's ONNX export is made (one export at a time).
    integrity : forecasting.artifacts.IntegrityWatch
        The artifact folders loaded into :attr:`cache` (re-verified when their files change)
        and the integrity failures seen (``/readyz`` reports them).

    Raises
    ------
    InvalidParameterError
        A malformed database URL.
    """

    def __init__(self, database_url: str = DEFAULT_DATABASE_URL,
                 artifacts_dir: str | os.PathLike[str] = DEFAULT_ARTIFACTS_DIR, *, cache_size: int = 4,
                 migrate: bool = True, busy_timeout_s: float = 30.0) -> None:
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            msg = f"cache_size must be an integer >= 0, got {cache_size!r}"
            raise InvalidParameterError(msg, field="cache_size")
        try:
            self.engine = make_engine(database_url, busy_timeout_s=busy_timeout_s)
        except Exception as exc:  # noqa: BLE001 - sqlalchemy raises ArgumentError, ImportError (driver)...
            msg = f"database_url: cannot open {redact(database_url)!r}: {exc}"
            raise InvalidParameterError(msg, field="database_url") from exc
        self.database_url = database_url
        self.artifacts_dir = Path(artifacts_dir)
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.cache_size = cache_size
        self.cache = ObjectCache(cache_size)
        self.export_lock = threading.Lock()
        self.integrity = artifacts.IntegrityWatch()
        self._changes = _ChangeCounter(self.engine)
        self._resolved: tuple[tuple[int, int] | None, dict[tuple[str, str, str | int | None], VersionInfo]] = (None, {})
        self._resolved_lock = threading.Lock()
        self._dirs: dict[str, Path] = {}  # artifact path in the database -> its folder (checked: _version_dir)
        if migrate:
            self.migrate()

    def __repr__(self) -> str:
        return f"Store({redact(self.database_url)!r}, artifacts_dir={str(self.artifacts_dir)!r})"

    # ------------------------------------------------------------------ lifecycle
    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (no-op when it is there).

        Server processes sharing the store (``forecasting serve --workers N``) start together: the
        upgrade runs under an exclusive lock on ``<artifacts_dir>/.migrate.lock`` (``fcntl.flock``,
        waited for), so one process migrates and the others then find the schema at head
        (SQLite runs DDL outside the transaction, so two upgrades would both create the tables).
        The file is removed afterwards: a process that opens a new one can only start once a
        migration finished, and then finds nothing to do.
        """
        import fcntl

        from alembic import command

        fd = os.open(self.artifacts_dir / ".migrate.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released with the descriptor
            with self.engine.begin() as conn:
                command.upgrade(alembic_config(self.database_url, connection=conn), "head")
            (self.artifacts_dir / ".migrate.lock").unlink(missing_ok=True)
        finally:
            os.close(fd)

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at (``"0001"``...), None before any migration."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def close(self) -> None:
        """Release the database connections and the model cache."""
        self.cache.clear()
        self._changes.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
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
            msg = f"model '{name}' not found"
            raise NotFoundError(msg, field="model", details={"model": name})
        return row

    @staticmethod
    def _version_row(session: Session, model: ModelRow, version: int) -> VersionRow:
        row = session.scalar(select(VersionRow).where(VersionRow.model_id == model.id, VersionRow.version == version,
                                                      VersionRow.status == "ready"))
        if row is None:
            msg = f"model '{model.name}' has no version {version}"
            raise NotFoundError(msg, field="model", details={"model": model.name, "version": version})
        return row

    def _info(self, session: Session, model: ModelRow, row: VersionRow) -> VersionInfo:
        aliases = session.scalars(select(AliasRow.alias).where(AliasRow.version_id == row.id)
                                  .order_by(AliasRow.alias)).all()
        return VersionInfo(tenant=model.tenant, name=model.name, version=row.version, kind=row.kind,
                           spec=dict(row.spec), fingerprint=dict(row.fingerprint), metrics=dict(row.metrics),
                           exog=tuple(row.exog), max_h=row.max_h, artifact=row.artifact_path,
                           sha256=row.artifact_sha256, size_bytes=row.size_bytes, created_at=_utc(row.created_at),
                           status=row.status, aliases=tuple(aliases), files=dict(row.artifact_files or {}),
                           export_sha256=row.export_sha256, export_files=dict(row.export_files or {}))

    def _version_dir(self, relative: str) -> Path:
        """The absolute folder of an artifact path recorded in the database, checked to lie inside the
        artifact store once per path (a version's path never changes; ``resolve`` costs more than a forecast's
        stat check)."""
        known = self._dirs.get(relative)
        if known is not None:
            return known
        path = (self.artifacts_dir / relative).resolve()
        root = self.artifacts_dir.resolve()
        if root not in path.parents:
            msg = f"artifact path {relative!r} points outside the artifact store"
            raise ArtifactIntegrityError(msg, field="model", details={"path": relative})
        if len(self._dirs) >= _RESOLVED_MAX:
            self._dirs.clear()
        self._dirs[relative] = path
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
            msg = f"kind must be one of {', '.join(KINDS)}, got {kind!r}"
            raise InvalidParameterError(msg, field="kind")
        if max_h is not None and (isinstance(max_h, bool) or not isinstance(max_h, int) or max_h < 1):
            msg = f"max_h must be an integer >= 1, got {max_h!r}"
            raise InvalidParameterError(msg, field="max_h")
        meta = {"spec": dict(spec), "fingerprint": dict(fingerprint), "metrics": dict(metrics or {}),
                "exog": [str(c) for c in exog]}
        for key, value in meta.items():
            try:
                json.dumps(value, allow_nan=False)
            except (TypeError, ValueError) as exc:
                msg = f"{key} must be JSON-serialisable (finite numbers): {exc}"
                raise InvalidParameterError(msg, field=key) from exc
        src = Path(artifact_src_dir) if artifact_src_dir is not None else None
        if src is not None:
            if not src.is_dir():
                msg = f"artifact folder '{src}' does not exist"
                raise InvalidInputError(msg, field="artifact")
            if not artifacts.plain_files(src):
                msg = f"artifact folder '{src}' is empty"
                raise InvalidInputError(msg, field="artifact")

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
        try:
            digest = None
            if src is not None and rel is not None:
                # a folder left at the final path by a crash before its row was committed is replaced
                digest = artifacts.copy_sealed(src, self.artifacts_dir / rel)
            with self._session() as s:
                s.execute(update(VersionRow).where(VersionRow.id == row_id).values(
                    status="ready", artifact_sha256=None if digest is None else digest.sha256,
                    artifact_files=None if digest is None else digest.files,
                    size_bytes=0 if digest is None else digest.size_bytes))
                done = s.get(VersionRow, row_id)
                assert done is not None  # reserved above, in this process
                model = s.get(ModelRow, done.model_id)
                assert model is not None  # the version row's foreign key
                return self._info(s, model, done)
        except BaseException:
            with self._session() as s:
                s.execute(delete(VersionRow).where(VersionRow.id == row_id))
            if rel is not None:
                shutil.rmtree(self.artifacts_dir / rel, ignore_errors=True)
            raise

    def get(self, name_or_ref: str, *, tenant: str) -> VersionInfo:
        """Resolve ``"name"`` (latest), ``"name@3"``, ``"name@alias"`` or ``"name@latest"``.

        On a SQLite file database a resolved reference is kept until anything is committed to the
        database by any connection of any process (an alias moved, a version registered or deleted,
        an export recorded...: :class:`_ChangeCounter`), so a repeated forecast runs no SQL; each
        call returns its own copy. Other databases are asked every time.

        Raises
        ------
        InvalidParameterError
            A malformed reference.
        NotFoundError
            No such model for this tenant (another tenant's model included), version or alias.
        """
        name, sel = parse_ref(name_or_ref)
        key = (tenant, name, sel)
        token = self._changes.token()  # read before the query: a commit after it makes the entry stale at once
        if token is not None:
            with self._resolved_lock:
                seen, resolved = self._resolved
                hit = resolved.get(key) if seen == token else None
            if hit is not None:
                return _copied(hit)
        info = self._get(name, sel, tenant)
        if token is not None:
            with self._resolved_lock:
                seen, resolved = self._resolved
                if seen != token:
                    resolved = {}
                    self._resolved = (token, resolved)
                if len(resolved) >= _RESOLVED_MAX:
                    resolved.clear()
                resolved[key] = info
            return _copied(info)
        return info

    def _get(self, name: str, sel: str | int | None, tenant: str) -> VersionInfo:
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
                    msg = f"model '{name}' has no versions"
                    raise NotFoundError(msg, field="model", details={"model": name})
            elif isinstance(sel, int):
                row = self._version_row(s, model, sel)
            else:
                alias = s.scalar(select(AliasRow).where(AliasRow.model_id == model.id, AliasRow.alias == sel))
                if alias is None:
                    known = s.scalars(select(AliasRow.alias).where(AliasRow.model_id == model.id)).all()
                    msg = (
                        f"model '{name}' has no alias '{sel}' (aliases: "
                        f"{', '.join(sorted(known)) or 'none'})"
                    )
                    raise NotFoundError(msg, field="model", details={"model": name, "alias": sel})
                row = self._version_row(s, model, s.scalars(select(VersionRow.version).where(
                    VersionRow.id == alias.version_id)).one())
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
                msg = (
                    f"model '{name}' version {version} is the target of alias {listed}; move the "
                    f"alias or delete with force"
                )
                raise ConflictError(msg, field="version",
                                    details={"model": name, "version": version, "aliases": list(aliases)})
            s.execute(delete(AliasRow).where(AliasRow.version_id == row.id))
            rel = row.artifact_path
            s.delete(row)
        if rel is not None:
            artifacts.remove_folder(self._version_dir(rel))
            shutil.rmtree(self._export_dir(rel), ignore_errors=True)
            self.integrity.forget(rel)
            self.integrity.forget(str(self._export_dir(rel)))

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
        validate_alias(alias)
        for attempt in range(2):
            try:
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
            except IntegrityError:  # another request created the same alias at the same moment: move it instead
                if attempt:
                    raise
        raise AssertionError  # unreachable: the second attempt returns or raises

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
            if not cast("CursorResult[Any]", done).rowcount:
                msg = f"model '{name}' has no alias '{alias}'"
                raise NotFoundError(msg, field="alias")

    # ------------------------------------------------------------------ artifacts
    # ------------------------------------------------------------------ artifacts
    def artifact_path(self, info: VersionInfo) -> Path:
        """The version's artifact folder, after checking every file against the stored digests
        (:func:`forecasting.artifacts.verify_digest`).

        Raises
        ------
        CapabilityError
            A spec-only version (no artifact).
        ArtifactIntegrityError
            A file changed, is missing or was added, or the folder is gone; the message
            names the file and ``details["path"]`` the artifact's path in the store. The
            artifact must not be loaded.
        """
        if info.artifact is None or info.sha256 is None:
            msg = (
                f"model '{info.ref}' is registered as a spec only (no artifact): it refits on the "
                f"history at forecast time"
            )
            raise CapabilityError(msg, field="model")
        folder = self._version_dir(info.artifact)
        artifacts.verify_digest(folder, files=info.files, sha256=info.sha256,
                                where=f"artifact of model '{info.ref}' ({info.artifact})",
                                details={"path": info.artifact})
        return folder

    def export_dir(self, info: VersionInfo) -> Path | None:
        """Where the version's ONNX export lives (``<version>.onnx/`` beside its artifact, made by
        :func:`forecasting.loading.export_version`); None for a spec-only version. Not verified here."""
        return None if info.artifact is None else self._export_dir(info.artifact)

    def record_export(self, info: VersionInfo, digest: artifacts.Digest | None) -> None:
        """Record (or, with None, forget) the digest of the version's ONNX export, checked on every load."""
        model_id = select(ModelRow.id).where(ModelRow.tenant == info.tenant, ModelRow.name == info.name)
        with self._session() as s:
            s.execute(update(VersionRow).where(VersionRow.model_id == model_id.scalar_subquery(),
                                               VersionRow.version == info.version).values(
                export_sha256=None if digest is None else digest.sha256,
                export_files=None if digest is None else digest.files))

    def check_consistency(self) -> None:
        """Refuse a database that knows no version while the artifact store holds version folders.

        An emptied, replaced or 0-byte database file beside a used artifact store would start
        "ready" with an empty registry while the artifacts sit on disk (and the next
        registrations would reuse their paths).

        Raises
        ------
        ConflictError
            Naming the database, the artifact folder and one of the version folders found.
        """
        with self._session() as s:
            if s.scalar(select(func.count(VersionRow.id))):
                return
        found = sorted(p for p in self.artifacts_dir.glob("*/*/*") if p.is_dir() and p.name.isdigit())
        if found:
            example = found[0].relative_to(self.artifacts_dir).as_posix()
            msg = (
                f"the registry database {redact(self.database_url)} holds no model versions, but the artifact "
                f"store '{self.artifacts_dir}' holds {len(found)} version folder(s) (e.g. {example}): the database "
                f"was emptied or replaced. Restore the database, or point FORECASTING_ARTIFACTS_DIR at an empty "
                f"folder"
            )
            raise ConflictError(msg, field="database_url", details={"artifact_folders": len(found)})

    def _export_dir(self, relative: str) -> Path:
        version = self._version_dir(relative)
        return version.parent / f"{version.name}.onnx"

    # ------------------------------------------------------------------ jobs (used by forecasting.jobs)
    def create_job(self, *, tenant: str, kind: str, request: Mapping[str, Any], job_id: str | None = None,
                   one_pending: bool = False) -> JobInfo:
        """Record a new ``queued`` job and return it.

        With ``one_pending``, only while no job of the same ``kind`` for the same model (``request["name"]``) is
        queued or running: the check and the insert are one transaction that first takes the model row's write
        lock (an UPDATE: SQLite's database lock, another database's row lock), so of two requests at the same
        moment, from any threads or processes, one gets the job and the other the conflict (issue 14: both
        passed a check made before the insert).

        Raises
        ------
        ConflictError
            ``one_pending`` and such a job exists: ``details`` names its ``job_id`` and ``state``.
        """
        validate_name(tenant, field="tenant")
        row = JobRow(id=job_id or str(uuid.uuid4()), tenant=tenant, kind=kind, state="queued", progress=0.0,
                     message="queued", request=dict(request), created_at=_now())
        with self._session() as s:
            if one_pending:
                name = str(request.get("name"))
                s.execute(update(ModelRow).where(ModelRow.tenant == tenant, ModelRow.name == name)
                          .values(last_version=ModelRow.last_version))
                pending = next((j for j in s.scalars(select(JobRow).where(
                    JobRow.tenant == tenant, JobRow.kind == kind, JobRow.state.in_(("queued", "running"))))
                    if j.request.get("name") == name), None)
                if pending is not None:
                    msg = f"a {kind} job of model '{name}' is already {pending.state} (job {pending.id})"
                    raise ConflictError(msg, field="model", details={"model": name, "job_id": pending.id,
                                                                     "state": pending.state})
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
                msg = f"job '{job_id}' not found"
                raise NotFoundError(msg, field="job_id", details={"job_id": str(job_id)})
            return _job_info(row)

    def list_jobs(self, tenant: str, *, state: str | None = None, limit: int = 100) -> list[JobInfo]:
        """The tenant's jobs, newest first (at most ``limit``), optionally in one state."""
        if state is not None and state not in JOB_STATES:
            msg = f"state must be one of {', '.join(JOB_STATES)}, got {state!r}"
            raise InvalidParameterError(msg, field="state")
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
            return bool(cast("CursorResult[Any]", s.execute(q.values(**values))).rowcount)

    def job_state(self, job_id: str) -> str | None:
        """A job's state (any tenant; for the runner and its workers)."""
        with self._session() as s:
            return s.scalar(select(JobRow.state).where(JobRow.id == job_id))

    def unfinished_jobs(self) -> list[JobInfo]:
        """Jobs in ``queued`` or ``running`` state, every tenant (for restart recovery)."""
        with self._session() as s:
            return [_job_info(r) for r in s.scalars(select(JobRow).where(JobRow.state.in_(("queued", "running"))))]

    def job_counts(self) -> dict[str, int]:
        """Job counts by state, every tenant (for the metrics): every state of :data:`JOB_STATES`, 0 included."""
        with self._session() as s:
            counts = {state: n for state, n in s.execute(select(JobRow.state, func.count()).group_by(JobRow.state))}
        return {state: int(counts.get(state, 0)) for state in JOB_STATES}

    def cache_usage(self) -> tuple[int, int]:
        """``(models loaded in the cache, its capacity)``."""
        return len(self.cache), self.cache_size

    def remove_pending_versions(self) -> int:
        """Delete versions left ``pending`` by a crash during registration (and their folders). Returns the count."""
        with self._session() as s:
            rows = s.scalars(select(VersionRow).where(VersionRow.status == "pending")).all()
            paths = [r.artifact_path for r in rows if r.artifact_path]
            for r in rows:
                s.delete(r)
        for rel in paths:
            shutil.rmtree(self.artifacts_dir / rel, ignore_errors=True)
        for tmp in self.artifacts_dir.glob(f"*/*/{artifacts.TEMP_PREFIX}*"):
            shutil.rmtree(tmp, ignore_errors=True)
        return len(paths)

