"""Several server processes on one port, one database and one artifact store (``forecasting serve --workers N``).

One Python process serves one request's CPU work at a time (the GIL around the feature
pipeline, JSON and validation), so throughput grows with cores only with several
processes. :func:`run` starts them with uvicorn's process supervisor (``workers=N``: the
parent binds the socket, each child accepts on it and runs :func:`app_factory`; a child
that dies is restarted). They share everything through the database and the artifact store:

* a model registered through one process is served by every other (each loads it from the
  store, verified against the database's digests, into its own cache);
* SQLite runs in WAL mode with a busy timeout (:func:`forecasting.store.tables.make_engine`),
  so readers never block the one writer and a writer waits ``FORECASTING_DB_BUSY_TIMEOUT_S``;
* a server process stops (SIGTERM) when the supervisor dies, even by ``kill -9``;
* exactly one process runs training jobs: each app's :class:`~forecasting.jobs.JobRunner` is
  ``shared``, the one holding its lock file (``<database>.jobs.lock``) is the leader, the others queue jobs in
  the database for it (and one of them takes over when the leader's process is gone).

Each process limits a request's prediction to one thread (:mod:`forecasting.runtime`,
``SERVING_THREADS``), so N processes use N cores without oversubscribing them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from litestar import Litestar

    from forecasting.api.settings import Settings

__all__ = ["app_factory", "run"]


def app_factory() -> Litestar:
    """The app of one server process: settings from the environment, logging configured, then
    :func:`~forecasting.api.app.create_app` (what each uvicorn worker process calls).

    Raises
    ------
    ValueError
        A bad ``FORECASTING_*`` variable (the parent checked them before starting the processes).
    """
    from forecasting.api.app import create_app
    from forecasting.api.logs import configure_logging
    from forecasting.api.settings import Settings

    _stop_with_supervisor()
    settings = Settings.from_env()
    configure_logging(fmt="text" if settings.log_format == "text" else "json", level=settings.log_level)
    return create_app(settings)


def _stop_with_supervisor() -> None:
    """SIGTERM this server process when the supervisor dies (``kill -9`` included; Linux ``PR_SET_PDEATHSIG``):
    it then stops as on a normal shutdown, handing its running jobs back, and its job workers die with it."""
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # another libc: nothing more to do
        return
    if os.getppid() != parent:  # the supervisor died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def run(settings: Settings, *, host: str, port: int, env: dict[str, str]) -> None:
    """Serve with ``settings.workers`` processes (uvicorn's supervisor); blocks until stopped.

    Parameters
    ----------
    settings : Settings
        Already validated; ``settings.workers`` >= 2 (one process: call uvicorn with the app itself).
    host, port : str, int
        Where the parent binds the shared socket.
    env : dict
        ``FORECASTING_*`` values given on the command line (``--log-format``...): set in this
        process's environment so the worker processes read the same settings.

    Raises
    ------
    ForecastingError
        The store refuses to start (e.g. an emptied database beside a used artifact store):
        checked once here, before any worker starts, so the message is one line.
    """
    import uvicorn

    from forecasting.store import Store

    os.environ.update(env)
    database_url, artifacts_dir = settings.registry_locations
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    with Store(database_url, artifacts_dir, cache_size=0, busy_timeout_s=settings.db_busy_timeout_s) as store:
        store.check_consistency()  # migrated once here: the workers start on an up-to-date schema
    uvicorn.run("forecasting.api.processes:app_factory", factory=True, host=host, port=port,
                workers=settings.workers, log_config=None, log_level=settings.log_level.lower(),
                access_log=False, timeout_graceful_shutdown=5)
