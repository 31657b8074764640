"""Service settings, read once from the environment in the app factory and passed in."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from forecasting.data import MAX_HORIZON
from forecasting.store import default_locations, validate_name

__all__ = ["Settings", "hash_key", "parse_api_keys"]


def hash_key(key: str) -> str:
    """sha256 hex digest of an API key: only digests are kept in memory."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_api_keys(text: str, *, source: str, one_per_line: bool = False) -> tuple[tuple[str, str], ...]:
    """``tenant:key`` entries -> ``((tenant, sha256 of key), ...)``.

    The key is everything after the entry's first ``:`` with the surrounding blanks removed:
    every printable character is kept (``#``, ``!``, ``:`` and, in a file, ``,``), so a key is
    never silently cut to a prefix that would then be the one accepted.

    Parameters
    ----------
    text : str
    source : str
        The variable or file the text came from, for messages.
    one_per_line : bool, default False
        False (``FORECASTING_API_KEYS``): entries separated by commas or newlines. True (the file
        of ``FORECASTING_API_KEYS_FILE``): one entry per line, commas kept in the key; a line
        whose first non-blank character is ``#`` is a comment.

    Raises
    ------
    ValueError
        An entry without ``:``, an empty key, a key with a control character or a tenant that
        is not a valid name, naming ``source`` and the entry's position (never the key).
    """
    out = []
    lines = [line for line in text.splitlines() if not (one_per_line and line.lstrip().startswith("#"))]
    items = [i.strip() for line in lines for i in ([line] if one_per_line else line.split(","))]
    for n, item in enumerate([i for i in items if i], start=1):
        tenant, sep, key = item.partition(":")
        tenant, key = tenant.strip(), key.strip()
        if not sep or not key:
            msg = f"{source}: entry {n} must be 'tenant:key' (a tenant name, a colon, then the key)"
            raise ValueError(msg)
        if not key.isprintable():
            msg = f"{source}: entry {n}: the key holds a control character (keys are printable text)"
            raise ValueError(msg)
        try:
            validate_name(tenant, field="tenant")
        except ValueError as exc:
            msg = f"{source}: entry {n}: {exc}"
            raise ValueError(msg) from None
        out.append((tenant, hash_key(key)))
    return tuple(out)


@dataclass(frozen=True)
class Settings:
    """Embedded defaults: nothing else to start; state lives under ``./var/``.

    Attributes
    ----------
    state_dir : Path
        Where the service keeps its state (``FORECASTING_STATE_DIR``, default ``./var``).
    max_body_bytes : int
        Largest request body; larger bodies get 413 naming the limit
        (``FORECASTING_MAX_BODY_BYTES``, default 20 MiB).
    max_h : int
        Largest horizon per request (``FORECASTING_MAX_H``, default 1,000).
    max_series : int
        Most series per request (``FORECASTING_MAX_SERIES``, default 1,000).
    max_rows : int
        Most input rows per request (``FORECASTING_MAX_ROWS``, default 1,000,000).
    max_seconds : int
        Wall time a forecast request may spend fitting (``FORECASTING_MAX_SECONDS``,
        default 60); past it the answer is 422 naming the limit.
    database_url : str or None
        Registry database (``FORECASTING_DATABASE_URL``); None: SQLite file
        ``<state_dir>/forecasting.db``.
    artifacts_dir : Path or None
        Registry artifact store (``FORECASTING_ARTIFACTS_DIR``); None: ``<state_dir>/artifacts``.
    max_train_seconds : int
        Wall time a training job may take (``FORECASTING_MAX_TRAIN_SECONDS``, default 3,600).
    job_workers : int
        Training worker processes (``FORECASTING_JOB_WORKERS``, default 1).
    model_cache_size : int
        Fitted models kept loaded (``FORECASTING_MODEL_CACHE_SIZE``, default 4).
    api_keys : tuple of (tenant, sha256 of key)
        From ``FORECASTING_API_KEYS`` (comma-separated ``tenant:key`` pairs) and/or the file
        named by ``FORECASTING_API_KEYS_FILE`` (one pair per line, ``#`` lines are comments).
        Empty: no authentication, every request is tenant ``default``.
    admin_tenants : tuple of str
        Tenants whose keys may read ``/metrics`` when keys are configured
        (``FORECASTING_ADMIN_TENANTS``, comma-separated, default ``admin``); other keys get 403.
    max_jobs_per_tenant : int
        Queued or running training jobs a tenant may have; one more is answered 429 with
        ``Retry-After`` (``FORECASTING_MAX_JOBS_PER_TENANT``, default 50).
    db_busy_timeout_s : float
        How long a request waits for a database lock held by another writer before a 503 with
        ``Retry-After`` (``FORECASTING_DB_BUSY_TIMEOUT_S``, default 5).
    shutdown_grace_s : float
        At shutdown (SIGTERM), how long running training jobs may take to finish before their
        workers are stopped and the jobs handed back to the next start
        (``FORECASTING_SHUTDOWN_GRACE_S``, default 5).
    log_format : {"json", "text"}
        Log lines as JSON objects or text (``FORECASTING_LOG_FORMAT``, default ``json``;
        ``forecasting serve --log-format``).
    log_level : str
        DEBUG, INFO, WARNING or ERROR (``FORECASTING_LOG_LEVEL``, default ``INFO``;
        ``forecasting serve --log-level``).
    workers : int
        Server processes sharing the port, the database and the artifact store
        (``FORECASTING_WORKERS``, default 1; ``forecasting serve --workers``); one of them runs
        the training jobs (:class:`~forecasting.jobs.JobRunner` with ``shared``).
    job_worker_idle_s : float
        A training worker process idle this long exits and frees its memory
        (``FORECASTING_JOB_WORKER_IDLE_S``, default 30; 0: after every job).
    preload : bool
        Each server process makes one small forecast at startup, before it accepts connections, so no request
        waits for the statistical libraries' import (:func:`forecasting.service.core.preload`;
        ``FORECASTING_PRELOAD``, default ``true``; ``false`` saves about 240 MiB per process that never
        forecasts with a statistical model).
    """

    state_dir: Path = Path("var")
    max_body_bytes: int = 20 * 1024 * 1024
    max_h: int = 1_000
    max_series: int = 1_000
    max_rows: int = 1_000_000
    max_seconds: int = 60
    database_url: str | None = None
    artifacts_dir: Path | None = None
    max_train_seconds: int = 3600
    job_workers: int = 1
    model_cache_size: int = 4
    api_keys: tuple[tuple[str, str], ...] = ()
    admin_tenants: tuple[str, ...] = ("admin",)
    max_jobs_per_tenant: int = 50
    db_busy_timeout_s: float = 5.0
    shutdown_grace_s: float = 5.0
    log_format: str = "json"
    log_level: str = "INFO"
    workers: int = 1
    job_worker_idle_s: float = 30.0
    preload: bool = True

    @property
    def registry_locations(self) -> tuple[str, Path]:
        """``(database URL, artifacts folder)`` with the defaults under ``state_dir`` filled in."""
        url, artifacts = default_locations(self.state_dir)
        return self.database_url or url, self.artifacts_dir or artifacts

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from ``FORECASTING_*`` environment variables (defaults above)."""
        env = dict(os.environ if env is None else env)

        def num(key: str, default: int) -> int:
            raw = env.get(key)
            if raw is None or raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value < 1:
                msg = f"{key} must be a positive integer, got {raw!r}"
                raise ValueError(msg)
            return value

        def seconds(key: str, default: float) -> float:
            raw = env.get(key)
            if raw is None or raw == "":
                return default
            try:
                value = float(raw)
            except ValueError:
                value = -1.0
            if not 0 < value < 86_400:
                msg = f"{key} must be a number of seconds > 0 (and below one day), got {raw!r}"
                raise ValueError(msg)
            return value

        def choice(key: str, allowed: tuple[str, ...], default: str) -> str:
            raw = env.get(key) or default
            if raw.upper() not in {a.upper() for a in allowed}:
                msg = f"{key} must be one of {', '.join(allowed)}, got {raw!r}"
                raise ValueError(msg)
            return raw.lower() if allowed[0].islower() else raw.upper()

        idle_raw = env.get("FORECASTING_JOB_WORKER_IDLE_S") or ""
        idle = 0.0 if idle_raw.strip() in ("0", "0.0") else seconds("FORECASTING_JOB_WORKER_IDLE_S",
                                                                    cls.job_worker_idle_s)

        admins = tuple(t.strip() for t in env.get("FORECASTING_ADMIN_TENANTS", "admin").split(",") if t.strip())
        for tenant in admins:
            try:
                validate_name(tenant, field="tenant")
            except ValueError as exc:
                msg = f"FORECASTING_ADMIN_TENANTS: {exc}"
                raise ValueError(msg) from None

        keys = parse_api_keys(env.get("FORECASTING_API_KEYS", ""), source="FORECASTING_API_KEYS")
        key_file = env.get("FORECASTING_API_KEYS_FILE")
        if key_file:
            try:
                text = Path(key_file).read_text(encoding="utf-8")
            except OSError as exc:
                msg = f"FORECASTING_API_KEYS_FILE: cannot read '{key_file}': {exc.strerror}"
                raise ValueError(msg) from None
            keys += parse_api_keys(text, source=f"FORECASTING_API_KEYS_FILE ({key_file})", one_per_line=True)

        return cls(
            state_dir=Path(env.get("FORECASTING_STATE_DIR", "var")),
            max_body_bytes=num("FORECASTING_MAX_BODY_BYTES", cls.max_body_bytes),
            max_h=min(num("FORECASTING_MAX_H", cls.max_h), MAX_HORIZON),
            max_series=num("FORECASTING_MAX_SERIES", cls.max_series),
            max_rows=num("FORECASTING_MAX_ROWS", cls.max_rows),
            max_seconds=num("FORECASTING_MAX_SECONDS", cls.max_seconds),
            database_url=env.get("FORECASTING_DATABASE_URL") or None,
            artifacts_dir=Path(env["FORECASTING_ARTIFACTS_DIR"]) if env.get("FORECASTING_ARTIFACTS_DIR") else None,
            max_train_seconds=num("FORECASTING_MAX_TRAIN_SECONDS", cls.max_train_seconds),
            job_workers=num("FORECASTING_JOB_WORKERS", cls.job_workers),
            model_cache_size=num("FORECASTING_MODEL_CACHE_SIZE", cls.model_cache_size),
            api_keys=keys,
            admin_tenants=admins,
            max_jobs_per_tenant=num("FORECASTING_MAX_JOBS_PER_TENANT", cls.max_jobs_per_tenant),
            db_busy_timeout_s=seconds("FORECASTING_DB_BUSY_TIMEOUT_S", cls.db_busy_timeout_s),
            shutdown_grace_s=seconds("FORECASTING_SHUTDOWN_GRACE_S", cls.shutdown_grace_s),
            log_format=choice("FORECASTING_LOG_FORMAT", ("json", "text"), cls.log_format),
            log_level=choice("FORECASTING_LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR"), cls.log_level).upper(),
            workers=num("FORECASTING_WORKERS", cls.workers),
            job_worker_idle_s=idle,
            preload=choice("FORECASTING_PRELOAD", ("true", "false"), "true") == "true",
        )
