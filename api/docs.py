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

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import msgspec

from litestar import Router
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.plugins import OpenAPIRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, OpenAPIMediaType, Parameter, RequestBody, Schema, SecurityScheme
from litestar.static_files import create_static_files_router

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

    from forecasting.api.settings import Settings

__all__ = ["ASSETS_PATH", "OPEN", "StrictStructSchemaPlugin", "docs_assets", "docs_plugins", "document_settings",
           "limits_description", "security_schemes"]

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


def document_settings(app: Litestar, settings: Settings) -> None:
    """Write the operator's limits into the app's OpenAPI document, once, at app creation.

    The request bodies declare the bounds that are settings (:data:`forecasting.api.schemas.SETTING_BOUNDS`: ``h``'s
    ``maximum`` is ``max_h``, ``data``'s ``maxItems`` is ``max_rows``) with the default settings, as a class is
    declared once per process; this rewrites them in every schema of the document (components and the request
    bodies routes document themselves; the retraining policy's ``h``: ``api.monitoring.RetrainPolicyBody``) with
    ``settings``' values, so the document says what validation
    enforces: ``FORECASTING_MAX_H=200`` documents ``maximum: 200`` and answers ``h=201`` with a 422 naming ``h``.
    With the default limits nothing is changed (and the document is built lazily, on its first request).

    Parameters
    ----------
    app : Litestar
        The app whose document (``app.openapi_schema``, served at ``/schema/openapi.json``) is rewritten in place.
    settings : Settings
        The live settings.
    """
    from forecasting.api.schemas import SETTING_BOUNDS
    from forecasting.api.settings import Settings

    changed = {field: {keyword: getattr(settings, attr) for keyword, attr in bounds.items()
                       if getattr(settings, attr) != getattr(Settings, attr)}
               for field, bounds in SETTING_BOUNDS.items()}
    changed = {field: bounds for field, bounds in changed.items() if bounds}
    if changed:
        _rewrite_bounds(app.openapi_schema, changed, seen=set())


def limits_description(settings: Settings) -> str:
    """The operator's request limits in words, for the document's description (the series count and the
    body size have no JSON-schema keyword; ``h`` and the rows are also each field's bounds).

    Examples
    --------
    >>> from forecasting.api.settings import Settings
    >>> limits_description(Settings(max_h=200))
    'Limits of this service: h at most 200; at most 1,000,000 rows and 1,000 series per request; bodies up to 20 MiB; \
60 s of fitting per forecast request (a 422 or 413 names the limit).'
    """
    return (f"Limits of this service: h at most {settings.max_h:,}; at most {settings.max_rows:,} rows and "
            f"{settings.max_series:,} series per request; bodies up to {settings.max_body_bytes / 2**20:g} MiB; "
            f"{settings.max_seconds:,} s of fitting per forecast request (a 422 or 413 names the limit).")


#: ``Schema`` attribute names by JSON-schema keyword (``maxItems`` -> ``max_items``)
_SCHEMA_ATTRS = {f.metadata.get("alias", f.name): f.name for f in dataclasses.fields(Schema)}


def _rewrite_bounds(node: Any, changed: dict[str, dict[str, Any]], *, seen: set[int]) -> None:
    """Set ``changed[field][keyword]`` on every property ``field`` of every schema below ``node`` that declares
    ``keyword`` (litestar's spec dataclasses and the JSON-schema dicts msgspec wrote, alike)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, Schema):
        props: Any = node.properties or {}
    elif isinstance(node, Parameter):  # a query parameter (GET .../report?h=) is a property of its name
        props = {node.name: node.schema}
    else:
        props = node.get("properties") if isinstance(node, dict) else None
    for field, prop in (props.items() if isinstance(props, dict) else ()):
        for keyword, value in changed.get(field, {}).items():
            if isinstance(prop, dict) and keyword in prop:
                prop[keyword] = value
            elif isinstance(prop, Schema) and getattr(prop, _SCHEMA_ATTRS[keyword], None) is not None:
                setattr(prop, _SCHEMA_ATTRS[keyword], value)
    if isinstance(node, dict):
        children: Any = node.values()
    elif isinstance(node, list | tuple):
        children = node
    elif dataclasses.is_dataclass(node) and not isinstance(node, type):
        children = [getattr(node, f.name) for f in dataclasses.fields(node)]
    else:
        return
    for child in children:
        _rewrite_bounds(child, changed, seen=seen)


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Request bodies that refuse unknown fields say so: ``additionalProperties: false``.

    Litestar documents a msgspec ``Struct`` without it, so an object with an extra field was valid by the document
    and answered 400 ("Object contains unknown field"): the most common schema-valid request refused (schemathesis'
    positive mode, issue 14). Applies to every ``Struct`` declared with ``forbid_unknown_fields=True`` (the request
    bodies of :mod:`forecasting.api.schemas`); other structs (the answers) are documented as before. Litestar consults
    an app's own schema plugins before its built-in ones.
    """

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        """A ``Struct`` subclass (not a union) whose config forbids unknown fields."""
        return (super().is_plugin_supported_field(field_definition)
                and bool(field_definition.type_.__struct_config__.forbid_unknown_fields))

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        """The built-in struct schema with ``additionalProperties: false``."""
        schema = super().to_openapi_schema(field_definition, schema_creator)  # the component (registry) schema
        schema.additional_properties = False
        return schema
