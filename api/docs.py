"""The OpenAPI pages without the internet, the API-key security scheme, and the request bodies routes read themselves.

Swagger UI and ReDoc are served from files shipped inside the package (``api/static``:
Swagger UI 5.33.1, Apache-2.0, and ReDoc 2.5.4, MIT, each with its licence; taken from the
``swagger-ui-dist`` and ``redoc`` npm builds as redistributed by the ``drf-spectacular-sidecar``
wheel, version 2026.10.1) at ``/schema/assets/...``, never from a CDN, and with no web fonts or
favicon fetched from elsewhere: the docs render on a machine with no network
(``tests/test_issue14_contract.py`` opens them in headless Chromium with the network blocked).

With API keys configured the document declares both ways of sending a key (``Authorization:
Bearer <key>`` and ``X-API-Key``), so the docs' Authorize button and generated clients send it;
the open routes (``/healthz``, ``/readyz``) say they need none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import msgspec

from litestar import Router
from litestar.openapi.plugins import OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, OpenAPIMediaType, RequestBody, Schema, SecurityScheme
from litestar.static_files import create_static_files_router

__all__ = ["ASSETS_PATH", "OPEN", "docs_assets", "docs_plugins", "security_schemes"]

#: where the vendored Swagger UI and ReDoc files are served (under /schema: open without a key)
ASSETS_PATH = "/schema/assets"
_STATIC = Path(__file__).parent / "static"
#: an operation's ``security`` for routes that need no key (an empty requirement: anonymous allowed)
OPEN: list[dict[str, list[str]]] = [{}]
_FAVICON = f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/swagger-ui/favicon-32x32.png'>"


def docs_plugins() -> list[OpenAPIRenderPlugin]:
    """Swagger UI at ``/schema/swagger`` and ReDoc at ``/schema/redoc``, loading only the package's own files."""
    return [
        SwaggerRenderPlugin(js_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui-bundle.js",
                            css_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui.css",
                            standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui-standalone-preset.js",
                            favicon=_FAVICON),
        RedocRenderPlugin(js_url=f"{ASSETS_PATH}/redoc/redoc.standalone.js", google_fonts=False, favicon=_FAVICON),
    ]


def docs_assets() -> Router:
    """The static route serving ``api/static`` at :data:`ASSETS_PATH` (cached for a day; not in the document)."""
    from litestar.datastructures import CacheControlHeader

    return create_static_files_router(path=ASSETS_PATH, directories=[_STATIC], name="docs-assets",
                                      cache_control=CacheControlHeader(max_age=86_400), opt={"public": True},
                                      security=OPEN)


def security_schemes(keys_required: bool) -> dict[str, Any]:
    """``OpenAPIConfig`` arguments declaring the API-key schemes (none when no keys are configured).

    Parameters
    ----------
    keys_required : bool
        Whether ``FORECASTING_API_KEYS`` / ``FORECASTING_API_KEYS_FILE`` configured keys.

    Returns
    -------
    dict
        ``components`` (``bearerAuth``: HTTP bearer; ``apiKeyHeader``: the ``X-API-Key`` header) and
        ``security`` (either one), as OpenAPI 3.1 §4.8.27 security schemes; empty without keys.
    """
    if not keys_required:
        return {}
    return {
        "components": Components(security_schemes={
            "bearerAuth": SecurityScheme(type="http", scheme="bearer",
                                         description="Authorization: Bearer <key> (FORECASTING_API_KEYS)."),
            "apiKeyHeader": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header",
                                           description="X-API-Key: <key> (the same keys)."),
        }),
        "security": [{"bearerAuth": []}, {"apiKeyHeader": []}],
    }


def json_or_multipart_body(struct: type[msgspec.Struct], multipart: dict[str, Any]) -> RequestBody:
    """The OpenAPI request body of a route that reads its body itself: ``struct`` as JSON, or the form
    ``multipart`` (a JSON-schema dict) as ``multipart/form-data`` with an uploaded file.

    msgspec's and our JSON-schema dicts are passed as given (Litestar serialises them; it types them as Schema).
    """
    (_, ), components = msgspec.json.schema_components([struct])
    return RequestBody(required=True, content={
        "application/json": OpenAPIMediaType(schema=cast("Schema", components[struct.__name__])),
        "multipart/form-data": OpenAPIMediaType(schema=cast("Schema", multipart))})
