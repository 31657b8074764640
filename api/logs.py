"""Structured logs of the service: one line per request, job lifecycle events, errors with their problem type.

* :func:`configure_logging` -- the ``forecasting`` loggers (and uvicorn's) to stderr, as JSON lines
  (``--log-format json``, ``FORECASTING_LOG_FORMAT``) or text, at ``--log-level``
  (``FORECASTING_LOG_LEVEL``);
* :class:`RequestLog` -- ASGI middleware around the whole app (:meth:`RequestLog.install`, so unknown paths
  and wrong methods are seen too): a request id for every request (the client's
  ``X-Request-ID`` when it is sane, else a new one), echoed in the response's ``X-Request-ID``
  and attached to every log line written while the request runs (worker threads included: the
  id lives in a :class:`contextvars.ContextVar`, which ``anyio`` copies into them); one
  ``access`` line per request with ``method, route, path, status, duration_ms, tenant,
  request_id`` and, for problem answers, ``problem`` (the RFC 9457 type).

Library code logs events with ``extra={"event": ..., ...}`` on its own ``forecasting.*``
logger (the job runner: ``job.queued``, ``job.started`` with the worker's pid, ``job.finished``
with its state and ``duration_s``); the JSON formatter writes every such extra field as a member of the line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from typing import Any, Literal, TypeVar

__all__ = ["REQUEST_ID_HEADER", "JsonFormatter", "RequestLog", "configure_logging", "request_id"]

#: the header that carries the request id, both ways
REQUEST_ID_HEADER = "x-request-id"
#: what a client-given request id may look like (else a new one is made): no spaces, quotes or control characters
_SANE_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
_request_id: ContextVar[str | None] = ContextVar("forecasting_request_id", default=None)
#: LogRecord attributes that are not extra fields
_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "taskName"}

log = logging.getLogger("forecasting.api.access")
_App = TypeVar("_App")


def request_id() -> str | None:
    """The id of the request being served in this context (None outside a request)."""
    return _request_id.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``request_id`` when
    inside a request, every ``extra`` field, and ``exc`` (the traceback) for exceptions."""

    def format(self, record: logging.LogRecord) -> str:  # noqa: D102 - logging.Formatter's
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        rid = getattr(record, "request_id", None) or _request_id.get()
        if rid:
            out["request_id"] = rid
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD and k not in out})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    """``time level logger message key=value...`` (the extra fields, then the request id)."""

    def format(self, record: logging.LogRecord) -> str:  # noqa: D102 - logging.Formatter's
        line = super().format(record)
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        rid = _request_id.get()
        if rid and "request_id" not in extra:
            extra["request_id"] = rid
        tail = " ".join(f"{k}={v}" for k, v in extra.items())
        return f"{line} {tail}" if tail else line


def configure_logging(*, fmt: Literal["json", "text"] = "json", level: str = "INFO") -> None:
    """Send the ``forecasting`` and ``uvicorn`` loggers to stderr in ``fmt`` at ``level``.

    Idempotent: a second call replaces the handler it installed.

    Parameters
    ----------
    fmt : {"json", "text"}
        JSON lines (for log collectors) or plain text (for a terminal).
    level : str
        A :mod:`logging` level name: DEBUG, INFO, WARNING, ERROR.

    Raises
    ------
    ValueError
        An unknown format or level, naming it.
    """
    if fmt not in ("json", "text"):
        msg = f"log format must be 'json' or 'text', got {fmt!r}"
        raise ValueError(msg)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        msg = f"log level must be one of DEBUG, INFO, WARNING, ERROR, got {level!r}"
        raise ValueError(msg)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name("forecasting-service")
    handler.setFormatter(JsonFormatter() if fmt == "json" else _TextFormatter("%(asctime)s %(levelname)s %(name)s "
                                                                              "%(message)s"))
    for name in ("forecasting", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == "forecasting-service"]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(numeric)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True  # RequestLog writes the access lines, with more in them


class RequestLog:
    """ASGI middleware factory: request ids and one access line per request (see the module docstring).

    Installed around the whole application (:meth:`install`), outside Litestar's router: a Litestar
    ``middleware=[...]`` entry runs only for matched routes, so a 404 for an unknown path or a 405 would
    carry no ``X-Request-ID`` and write no access line.

    Examples
    --------
    ``app = RequestLog().install(Litestar(...))``
    """

    def install(self, app: _App) -> _App:
        """Wrap a Litestar app's outermost ASGI handler (router, exception handling, CORS) and return the app.

        Litestar calls ``app.asgi_handler`` for every request after its ``before_send`` wrapping; routing errors
        (404, 405) are answered inside it, so the access line and the request id see them too.
        """
        app.asgi_handler = self.middleware(app.asgi_handler)  # type: ignore[attr-defined]
        return app

    def middleware(self, app: Any) -> Any:
        """Wrap an ASGI app (Litestar ``middleware=[...]``)."""

        async def handle(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            given = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"x-request-id"), "")
            rid = given if _SANE_ID.fullmatch(given) else uuid.uuid4().hex
            token = _request_id.set(rid)
            seen: dict[str, Any] = {"status": 500, "problem": None}

            async def send_wrapper(message: Any) -> None:
                if message["type"] == "http.response.start":
                    seen["status"] = message["status"]
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                    message = {**message, "headers": [*headers, (b"x-request-id", rid.encode("latin-1"))]}
                    seen["problem_body"] = any(k.lower() == b"content-type" and b"problem+json" in v
                                               for k, v in headers)
                elif message["type"] == "http.response.body" and seen.get("problem_body") and seen["problem"] is None:
                    seen["problem"] = _problem_type(message.get("body", b""))
                await send(message)

            start = time.perf_counter()
            try:
                await app(scope, receive, send_wrapper)
            finally:
                status = int(seen["status"])
                fields = {"event": "request", "method": scope.get("method", ""),
                          "route": scope.get("path_template") or "unmatched", "path": scope.get("path", ""),
                          "status": status, "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                          "tenant": (scope.get("state") or {}).get("tenant"), "request_id": rid}
                if seen["problem"]:
                    fields["problem"] = seen["problem"]
                level = logging.ERROR if status >= 500 else logging.INFO
                log.log(level, "%s %s %s", fields["method"], fields["path"], status, extra=fields)
                _request_id.reset(token)

        return handle


def _problem_type(body: bytes) -> str | None:
    try:
        value = json.loads(body).get("type")
    except (ValueError, AttributeError):
        return None
    return str(value) if value else None
