"""API keys: who is calling, and which tenant's models and jobs they see.

Keys come from the settings (``FORECASTING_API_KEYS`` / ``FORECASTING_API_KEYS_FILE``) as
``(tenant, sha256 of key)`` pairs; the clear keys are never kept. A request presents its
key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; its sha256 is compared
with every configured digest using :func:`hmac.compare_digest`.

With no keys configured, authentication is off and every request is tenant
``"default"``. Routes marked ``opt={"public": True}`` (``/healthz``, ``/readyz``) and the
OpenAPI pages under ``/schema`` are always open. Routes marked ``opt={"admin": True}``
(``/metrics``: every tenant's job counts) answer only keys of the admin tenants
(``FORECASTING_ADMIN_TENANTS``, default ``admin``); other keys get 403. ``/readyz`` names
failing artifacts (tenant, model, file) only to an admin key (:meth:`KeyGuard.is_operator`).
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from forecasting.api.settings import hash_key

__all__ = ["DEFAULT_TENANT", "KeyGuard", "tenant_of"]

DEFAULT_TENANT = "default"


class KeyGuard:
    """A Litestar guard that authenticates the request and records its tenant in ``connection.state``."""

    def __init__(self, keys: tuple[tuple[str, str], ...], *, schema_path: str = "/schema",
                 admin_tenants: tuple[str, ...] = ("admin",)) -> None:
        self.keys = tuple(keys)
        self.schema_path = schema_path
        self.admin_tenants = frozenset(admin_tenants)

    def __call__(self, connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        if not self.keys:
            connection.state.tenant = DEFAULT_TENANT
            return
        path = connection.scope.get("path", "")
        if handler.opt.get("public") or path == self.schema_path or path.startswith(self.schema_path + "/"):
            return
        presented = _presented_key(connection)
        if presented is None:
            msg = (
                "an API key is required: send 'Authorization: Bearer <key>' or "
                                         "'X-API-Key: <key>'"
            )
            raise NotAuthorizedException(msg)
        tenant = self._tenant_of_key(presented)
        if tenant is None:
            msg = "the API key is not valid"
            raise NotAuthorizedException(msg)
        if handler.opt.get("admin") and tenant not in self.admin_tenants:
            msg = (
                f"{path} is for the operator: it needs the key of an admin tenant (FORECASTING_ADMIN_TENANTS), "
                f"not tenant '{tenant}'"
            )
            raise PermissionDeniedException(msg)
        connection.state.tenant = tenant

    def _tenant_of_key(self, presented: str) -> str | None:
        digest = hash_key(presented)
        tenant = None
        for t, expected in self.keys:  # no early exit: the time taken does not depend on which key matched
            if hmac.compare_digest(digest, expected) and tenant is None:
                tenant = t
        return tenant

    def is_operator(self, connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
        """Whether the caller may see every tenant's details on an open route (``/readyz``): authentication is
        off (no keys configured), or the request presents a valid key of an admin tenant. A missing or invalid
        key is ``False``, never an error (the route stays open)."""
        if not self.keys:
            return True
        presented = _presented_key(connection)
        return presented is not None and self._tenant_of_key(presented) in self.admin_tenants


def _presented_key(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    auth = connection.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = connection.headers.get("x-api-key", "").strip()
    return key or None


def tenant_of(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The tenant the guard recorded (dependency ``tenant`` of the registry routes)."""
    return str(connection.state.get("tenant", DEFAULT_TENANT))
