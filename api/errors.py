"""The one table from library error classes to HTTP statuses, and RFC 9457 bodies.

Client mistakes are 4xx ``application/problem+json`` with ``field`` naming the request
field at fault; the library never imports Litestar.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from forecasting.errors import (
    ArtifactIntegrityError,
    CapabilityError,
    ConflictError,
    DatasetError,
    ForecastingError,
    InsufficientHistoryError,
    InvalidInputError,
    InvalidParameterError,
    ModelFitError,
    NotFittedError,
    NotFoundError,
    StoreBusyError,
    TimeLimitError,
    TooManyJobsError,
    UnknownModelError,
)

__all__ = ["STATUS", "exception_handlers", "problem"]

log = logging.getLogger("forecasting.api")

#: library error class -> (HTTP status, problem type slug). Matched up the class hierarchy.
STATUS: dict[type[ForecastingError], tuple[int, str]] = {
    InsufficientHistoryError: (422, "insufficient-history"),
    InvalidInputError: (422, "invalid-input"),
    InvalidParameterError: (422, "invalid-parameter"),
    UnknownModelError: (422, "unknown-model"),
    CapabilityError: (422, "capability"),
    ModelFitError: (422, "model-fit"),
    TimeLimitError: (422, "time-limit"),
    NotFittedError: (409, "not-fitted"),
    DatasetError: (404, "dataset"),
    NotFoundError: (404, "not-found"),  # another tenant's model or job too: its existence is not revealed
    ConflictError: (409, "conflict"),
    TooManyJobsError: (429, "too-many-jobs"),  # with Retry-After
    StoreBusyError: (503, "database-busy"),  # with Retry-After: the database stayed locked past the busy timeout
    # a stored artifact (registered version or its ONNX export) failed its digests: never loaded; the server's fault
    ArtifactIntegrityError: (500, "artifact-integrity"),
    ForecastingError: (400, "bad-request"),
}

#: problem types whose title says more than their status's
_TYPE_TITLES = {"artifact-integrity": "Artifact integrity check failed"}

_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           409: "Conflict", 413: "Request body too large", 415: "Unsupported media type", 422: "Unprocessable request",
           429: "Too many requests", 500: "Internal server error", 503: "Service unavailable"}


def problem(status: int, detail: str, *, type_: str = "about:blank", field: str | None = None,
            **extra: Any) -> Response[dict[str, Any]]:
    """An RFC 9457 problem-details response (title: the type's own, else the status's)."""
    title = _TYPE_TITLES.get(type_) or _TITLES.get(status, "Error")
    body: dict[str, Any] = {"type": type_ if type_ == "about:blank" else f"/problems/{type_}",
                            "title": title, "status": status, "detail": detail}
    if field is not None:
        body["field"] = field
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(body, status_code=status, media_type="application/problem+json")


def _status_for(exc: ForecastingError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400, "bad-request"  # pragma: no cover - ForecastingError is in the table


def _library_error(request: Request, exc: ForecastingError) -> Response[dict[str, Any]]:
    status, slug = _status_for(exc)
    if status >= 500:
        log.error("%s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc.message)
    field = exc.field
    if field and not field.startswith(("data", "model")) and field in ("unique_id", "ds", "y"):
        field = f"data.{field}"
    response = problem(status, exc.message, type_=slug, field=field, details=exc.details or None)
    retry_after = (exc.details or {}).get("retry_after_s")
    if status in (429, 503) and retry_after is not None:
        response.headers["Retry-After"] = str(max(1, int(retry_after)))
    return response


def _validation_error(request: Request, exc: ValidationException) -> Response[dict[str, Any]]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [e for e in extra if isinstance(e, dict)]
    first = next((e for e in errors if e.get("key")), {})
    key, message = str(first.get("key") or ""), str(first.get("message") or "")
    if key == "data" and (message in ("'data'", "") or message.startswith("Expected `object`, got")):
        # litestar names the whole body "data": a missing or null body surfaces as KeyError('data') and an
        # array, string or number body as "Expected `object`"; neither is about the request's `data` member
        what = "empty or null" if message in ("'data'", "") else f"not a JSON object ({message})"
        detail = (f"the request body is {what}; send a JSON object such as "
                  '{"data": {"unique_id": [...], "ds": [...], "y": [...]}, "h": 12}')
        return problem(400, detail, type_="invalid-request", field="body", errors=extra or None)
    member = re.search(r"(unknown|missing required) field `([^`]+)`", message)
    if member:  # msgspec reports the object holding the member; name the member itself
        field = member.group(2) if key in ("", "data") else f"{key}.{member.group(2)}"
        detail = f"{field}: {message} (the accepted fields are in the OpenAPI document, /schema/openapi.json)"
    else:
        field = key or "body"
        detail = "; ".join(f"{e['key']}: {e['message']}" if e.get("key") else str(e["message"])
                           for e in errors if e.get("message")) or str(exc.detail)
    return problem(400, _json_hint(detail), type_="invalid-request", field=field, errors=extra or None)


#: msgspec's messages for a body that is not JSON at all
_DECODE_ERRORS = ("JSON is malformed", "Input data was truncated")


def _json_hint(detail: str) -> str:
    if any(m in detail for m in _DECODE_ERRORS):
        return (f"{detail}. The body must be JSON; NaN and Infinity are not JSON numbers: use null for a missing "
                f"value (with fill_missing to fill it)")
    return detail


def _http_error(_: Request, exc: HTTPException) -> Response[dict[str, Any]]:
    detail = str(exc.detail)
    if exc.status_code == 400 and any(m in detail for m in _DECODE_ERRORS):
        return problem(400, _json_hint(detail), type_="invalid-json", field="body")
    if exc.status_code == 401:
        response = problem(401, detail, type_="unauthorized", field="authorization")
        response.headers["WWW-Authenticate"] = 'Bearer realm="forecasting"'
        return response
    response = problem(exc.status_code, detail)
    if exc.status_code == 405 and exc.headers:  # Allow: the methods the route has (RFC 9110 §15.5.6)
        response.headers.update({k: v for k, v in exc.headers.items() if k.lower() == "allow"})
    return response


def _unexpected(request: Request, exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "an unexpected error occurred; it has been logged")


def exception_handlers(max_body_bytes: int) -> dict[Any, Any]:
    """Handlers for the app: library errors, validation, HTTP errors (413 names the limit), the rest."""

    def http_error(request: Request, exc: HTTPException) -> Response[dict[str, Any]]:
        if exc.status_code == 413:
            return problem(413, f"request body exceeds the limit of {max_body_bytes} bytes "
                                f"(FORECASTING_MAX_BODY_BYTES)", field="body", limit=max_body_bytes)
        return _http_error(request, exc)

    def too_deep(request: Request, exc: RecursionError) -> Response[dict[str, Any]]:
        return problem(400, "the request body is nested too deeply; data must be rows or columns of plain values",
                       type_="invalid-request", field="body")

    return {
        RecursionError: too_deep,
        ForecastingError: _library_error,
        ValidationException: _validation_error,
        HTTPException: http_error,
        Exception: _unexpected,
    }
