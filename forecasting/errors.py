"""The library's error hierarchy.

Every error the library raises on purpose is a :class:`ForecastingError`. The
library never imports a web framework: the API maps these classes to HTTP
statuses in one table (``api/errors.py``), and the CLI prints their message.

Messages name the thing, the rule and the value, e.g.
``series 's1': 2 duplicate timestamps (2024-01-02 x2)``. Where an error is
about a request field, :attr:`ForecastingError.field` names it (``"h"``,
``"level"``, ``"data"``...), so the API can point at it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArtifactIntegrityError",
    "CapabilityError",
    "ConflictError",
    "DatasetError",
    "ForecastingError",
    "InsufficientHistoryError",
    "InvalidInputError",
    "InvalidParameterError",
    "ModelFitError",
    "NotFittedError",
    "NotFoundError",
    "StoreBusyError",
    "TimeLimitError",
    "TooManyJobsError",
    "UnknownModelError",
]


class ForecastingError(Exception):
    """Base class of every error the library raises on purpose.

    Parameters
    ----------
    message : str
        What is wrong, naming the series, rows and rule.
    field : str, optional
        The request field the error is about (``"h"``, ``"data"``, ``"model"``...).
    details : dict, optional
        Machine-readable details (series ids, row numbers, limits). JSON-serialisable.

    Examples
    --------
    >>> err = InvalidParameterError("h must be an integer >= 1, got 0", field="h")
    >>> isinstance(err, ForecastingError), isinstance(err, ValueError)
    (True, True)
    >>> str(err), err.field, err.details
    ('h must be an integer >= 1, got 0', 'h', {})
    """

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details or {}

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class InvalidInputError(ForecastingError, ValueError):
    """The data violates the data contract (columns, types, duplicates, gaps, nulls...)."""


class InvalidParameterError(ForecastingError, ValueError):
    """A parameter (``h``, ``level``, ``freq``, a hyperparameter) is out of its domain."""


class NotFittedError(ForecastingError, ValueError, AttributeError):
    """``predict`` was called before ``fit`` (as scikit-learn's ``NotFittedError``)."""


class UnknownModelError(ForecastingError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class InsufficientHistoryError(InvalidInputError):
    """One or more series are shorter than the model needs.

    ``details["series"]`` maps each short series to ``{"length": n, "minimum": m}``.
    """


class CapabilityError(ForecastingError):
    """The model cannot do what was asked (intervals, exogenous inputs, export...)."""


class ModelFitError(ForecastingError):
    """The model failed on one or more series; ``details["series"]`` maps id -> reason."""


class DatasetError(ForecastingError):
    """A dataset cannot be found, downloaded or verified (checksum mismatch)."""


class TimeLimitError(ForecastingError):
    """The work asked for did not finish within the allowed time (``details["limit_seconds"]``)."""


class NotFoundError(ForecastingError, LookupError):
    """A named thing (a registered model, version, alias or job) does not exist for this tenant.

    Another tenant's model or job is "not found" too, never "forbidden", so that names do
    not leak across tenants. ``field`` names what was looked up (``"model"``, ``"job_id"``).
    """


class ConflictError(ForecastingError):
    """The request conflicts with the current state: deleting a version an alias points to,
    cancelling a job that has already finished, registering a name that is taken.
    ``details`` names what it conflicts with (``{"aliases": [...]}``, ``{"state": ...}``).
    """


class ArtifactIntegrityError(InvalidInputError):
    """An artifact folder (a saved model, an ONNX export, a registered version) no longer
    matches the sha256 digests recorded when it was sealed (a file changed, is missing or
    was added, or its manifest says what a sealed folder never says); it is refused, never
    loaded. Raised by :mod:`forecasting.artifacts`, the one place that verifies artifacts.

    To the library it is invalid input (a folder handed to ``load`` is not what was
    sealed); to the API it is the server's problem, not the caller's (its own store is
    damaged): a 500 "artifact integrity check failed", never a 422. ``details`` names the
    ``file``, the ``expected`` and ``actual`` digests and the artifact ``path``.
    """


class TooManyJobsError(ForecastingError):
    """A tenant already has as many unfinished (queued or running) training jobs as it may
    (``details["limit"]``); the API answers 429 with ``Retry-After: details["retry_after_s"]``.
    """


class StoreBusyError(ForecastingError):
    """The registry database stayed locked by another writer past the busy timeout; nothing was
    changed. The API answers 503 with ``Retry-After: details["retry_after_s"]``.
    """
