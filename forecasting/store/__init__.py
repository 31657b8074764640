"""The store: registered models, versions, aliases and jobs (SQL database + artifact folders).

:class:`Store` keeps the metadata (SQLAlchemy, schema managed by Alembic under
``forecasting/migrations``) and copies each version's artifact folder in and checks it
with :mod:`forecasting.artifacts`. It knows no model family: loading a version's model
is :func:`forecasting.loading.load_version`.

Modules: :mod:`~forecasting.store.names` (names and references),
:mod:`~forecasting.store.tables` (tables, engine, Alembic configuration),
:mod:`~forecasting.store.records` (what the store returns),
:mod:`~forecasting.store.store` (the :class:`Store`).
"""

from forecasting.store.names import parse_ref, validate_alias, validate_name
from forecasting.store.records import JOB_STATES, KINDS, TERMINAL_STATES, JobInfo, ModelInfo, VersionInfo
from forecasting.store.store import (
    DEFAULT_ARTIFACTS_DIR,
    DEFAULT_DATABASE_URL,
    Kind,
    ObjectCache,
    Store,
    default_locations,
)
from forecasting.store.tables import AliasRow, Base, JobRow, ModelRow, VersionRow, alembic_config

__all__ = [
    "DEFAULT_ARTIFACTS_DIR",
    "DEFAULT_DATABASE_URL",
    "JOB_STATES",
    "KINDS",
    "TERMINAL_STATES",
    "AliasRow",
    "Base",
    "JobInfo",
    "JobRow",
    "Kind",
    "ModelInfo",
    "ModelRow",
    "ObjectCache",
    "Store",
    "VersionInfo",
    "VersionRow",
    "alembic_config",
    "default_locations",
    "parse_ref",
    "validate_alias",
    "validate_name",
]
