"""What the store returns: :class:`VersionInfo`, :class:`ModelInfo`, :class:`JobInfo` (frozen, JSON-ready)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["JOB_STATES", "KINDS", "TERMINAL_STATES", "JobInfo", "ModelInfo", "VersionInfo"]

JOB_STATES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
KINDS: tuple[str, ...] = ("forecast", "tabular")


def utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes: they were written in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


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
        :func:`forecasting.service.training.data_fingerprint`).
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
    export_sha256: str | None = field(default=None, repr=False)  # its ONNX export's digest, once made
    export_files: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def ref(self) -> str:
        """``"name@version"``."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (timestamps ISO 8601, no per-file digests)."""
        out = asdict(self)
        out.pop("files")
        out.pop("export_files")
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
    attempts : int
        Times the job was interrupted while running (a crash, a restart, a shutdown); it is
        re-queued once (:meth:`forecasting.jobs.JobRunner.recover`), then failed.
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
    attempts: int = 0

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

