"""Training jobs: models are trained in worker processes, never on the caller's thread.

:class:`JobRunner` records a job (``queued``), persists the training data to
``<artifacts_dir>/_jobs/<id>/data.parquet`` and hands the work to a
``ProcessPoolExecutor`` (spawn context, so a worker never inherits the API's event
loop, threads or open connections). The worker opens the registry database itself,
marks the job ``running`` and writes its progress there:

====  =====================================================================
0.1   data validated (forecast: :func:`~forecasting.data.validate_panel`)
0.3   validation metrics measured (held-out last ``h`` steps / k-fold)
0.5   model fitted on all the data
0.9   artifact saved to a temporary folder
1.0   version registered (by the parent process), job ``succeeded``
====  =====================================================================

Failures are caught in the worker and the job is marked ``failed`` with the library
error's message (and the field it names); unexpected exceptions are reported as
``internal error: <type>: <message>``.

Cancellation is cooperative: :meth:`JobRunner.cancel` marks a ``queued`` or
``running`` job ``cancelled`` at once; a queued job never starts, and a running worker
checks the flag between steps (before fitting, after fitting, after saving) and stops
there, registering nothing. A fit in progress is not interrupted (worker processes are
shared, and terminating one would break the pool for the other jobs); the time limit
(``time_limit_s``) bounds it instead: it is given to the forecaster as its deadline
(XGBoost stops with :class:`~forecasting.errors.TimeLimitError`) and checked between
steps.

Restarts: :meth:`JobRunner.recover` (call it once at startup, before submitting) marks
every job left ``queued`` or ``running`` by a previous process ``failed`` with
``"interrupted by a restart"`` -- they are not re-queued: the caller resubmits, and
nothing ever stays silently "running". Their data files and half-registered versions
are removed.

What a job runs is :func:`forecasting.service.training.train` (validation metrics, fit, save);
this module only runs it: queue, worker processes, progress, cancel, time limit, restarts.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import polars as pl

from forecasting.errors import (
    CapabilityError,
    ConflictError,
    ForecastingError,
    InvalidInputError,
    InvalidParameterError,
    TimeLimitError,
)
from forecasting.store import TERMINAL_STATES, JobInfo, Store, validate_name

__all__ = ["JobRunner"]

_DATA_FILE = "data.parquet"
_JOBS_DIR = "_jobs"
_TABULAR_KEYS = {"kind", "algorithm", "params", "device", "seed", "handle_unknown", "n_jobs"}


# --------------------------------------------------------------------------- worker side
class _Cancelled(Exception):
    pass


class _Worker:
    """One job's steps inside the worker process."""

    def __init__(self, job: dict[str, Any]):
        self.job = job
        self.id = job["id"]
        self.registry = Store(job["database_url"], job["artifacts_dir"], migrate=False, cache_size=0)
        self.deadline = job["started"] + job["time_limit_s"]
        self._stop = threading.Event()

    def step(self, progress: float, message: str) -> None:
        """Record progress and stop if the job was cancelled or is out of time."""
        if self.registry.job_state(self.id) != "running":
            raise _Cancelled
        if time.time() > self.deadline:
            msg = (
                f"training did not finish within the time limit of {self.job['time_limit_s']} s "
                f"(stopped after: {message})"
            )
            raise TimeLimitError(msg, field="time_limit_s", details={"limit_seconds": self.job["time_limit_s"]})
        self.registry.update_job(self.id, only_from=("running",), progress=progress, message=message,
                                 heartbeat_at=_now())

    def _beat(self) -> None:
        while not self._stop.wait(10.0):
            try:
                self.registry.update_job(self.id, only_from=("running",), heartbeat_at=_now())
            except Exception:  # noqa: BLE001 - a missed heartbeat is not worth failing the job for
                pass

    def run(self) -> dict[str, Any]:
        if not self.registry.update_job(self.id, only_from=("queued",), state="running", started_at=_now(),
                                        heartbeat_at=_now(), message="started"):
            return {"status": "cancelled"}
        beat = threading.Thread(target=self._beat, daemon=True)
        beat.start()
        try:
            frame = pl.read_parquet(Path(self.job["dir"]) / _DATA_FILE)
            return self._train(frame)
        except _Cancelled:
            return {"status": "cancelled"}
        except TimeLimitError as exc:
            return {"status": "failed", "field": exc.field,
                    "error": f"training did not finish within the time limit of {self.job['time_limit_s']} s: "
                             f"{exc.message}"}
        except ForecastingError as exc:
            return {"status": "failed", "error": exc.message, "field": exc.field}
        except Exception as exc:  # noqa: BLE001 - reported on the job, never lost
            return {"status": "failed", "error": f"internal error: {type(exc).__name__}: {exc}", "field": None}
        finally:
            self._stop.set()
            self.registry.close()

    def _train(self, frame: pl.DataFrame) -> dict[str, Any]:
        from forecasting.service.training import train

        result = train(frame, kind=self.job["kind"], spec=self.job["spec"], target=self.job.get("target"),
                       h=self.job.get("h"), freq=self.job.get("freq"), fill_missing=self.job.get("fill_missing"),
                       fill_gaps=bool(self.job.get("fill_gaps")), workdir=self.job["dir"],
                       deadline=self.deadline, step=self.step)
        return {"status": "ok", **result.to_dict()}


def _train_worker(job: dict[str, Any]) -> dict[str, Any]:
    """Entry point in the worker process (module-level so the spawn context can import it)."""
    return _Worker(job).run()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


# --------------------------------------------------------------------------- parent side
class JobRunner:
    """Runs training jobs in worker processes and records them in the registry's job table.

    Parameters
    ----------
    registry : Store
    max_workers : int, default 1
        Worker processes (jobs beyond that wait ``queued``).
    time_limit_s : float, default 3600
        Wall time a job may take from its start, seconds (see the module docstring).
    max_tasks_per_child : int, optional
        Jobs a worker process runs before it is replaced (None: reused; 1 gives every job
        a fresh process, at ~2 s of start-up each).

    Use one runner per database: :meth:`recover` assumes no other process runs jobs on
    it (or pass ``stale_after_s`` to only fail jobs whose heartbeat stopped).
    """

    def __init__(self, registry: Store, *, max_workers: int = 1, time_limit_s: float = 3600.0,
                 max_tasks_per_child: int | None = None) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            msg = f"max_workers must be an integer >= 1, got {max_workers!r}"
            raise InvalidParameterError(msg, field="max_workers")
        if isinstance(time_limit_s, bool) or not isinstance(time_limit_s, int | float) or not time_limit_s > 0:
            msg = f"time_limit_s must be a number > 0, got {time_limit_s!r}"
            raise InvalidParameterError(msg, field="time_limit_s")
        self.registry = registry
        self.max_workers = max_workers
        self.time_limit_s = float(time_limit_s)
        self.jobs_dir = registry.artifacts_dir / _JOBS_DIR
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        kw: dict[str, Any] = {"max_workers": max_workers, "mp_context": multiprocessing.get_context("spawn")}
        if max_tasks_per_child is not None:
            kw["max_tasks_per_child"] = max_tasks_per_child
        self._pool = ProcessPoolExecutor(**kw)
        # registering a version copies files: done off the pool's management thread
        self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forecasting-jobs")
        self._futures: dict[str, Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def __enter__(self) -> JobRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # ------------------------------------------------------------------ submit
    def submit_training(
        self,
        tenant: str,
        name: str,
        spec: Any,
        data: Any,
        kind: Literal["forecast", "tabular"] = "forecast",
        target: str | None = None,
        *,
        h: int | None = None,
        freq: str | int | None = None,
        fill_missing: str | None = None,
        fill_gaps: bool = False,
    ) -> str:
        """Queue the training of a new version of ``name`` and return the job id.

        Parameters
        ----------
        tenant : str
            Owner of the job and the model.
        name : str
            Model name (``^[a-z0-9][a-z0-9_.-]{0,62}$``).
        spec : forecast: registry spec (name, JSON or dict, see
            :func:`~forecasting.models.registry.parse_spec`); tabular: a dict of
            :class:`~forecasting.tabular.TabularModel` arguments (``kind``, ``algorithm``,
            ``params``, ``seed``...).
        data : frame, mapping of columns, list of rows, or a path to a CSV/Parquet file
            Forecast: long format ``unique_id, ds, y[, exog]``; tabular: a table with ``target``.
        kind : {"forecast", "tabular"}
        target : str
            Tabular only (required there): the target column.
        h : int, optional
            Forecast only: the validation window and the version's ``max_h``; default the
            model's calibrated horizon (two seasons, or 14).
        freq : str or int, optional
            Forecast only: the data's frequency (inferred when omitted).
        fill_missing, fill_gaps
            Forecast only: as :func:`~forecasting.data.validate_panel` (filled rows are reported).

        Raises
        ------
        InvalidParameterError, UnknownModelError
            Bad name, kind, spec, target or ``h`` -- checked here, before anything is queued.
        CapabilityError
            A tabular algorithm that cannot be saved (``hist_gradient_boosting``).
        InvalidInputError
            Data that cannot be read or written as Parquet. (The data contract itself is
            checked by the worker; violations fail the job with the message.)
        """
        from forecasting.data import to_polars, validate_h

        if self._closed:
            msg = "the job runner is shut down"
            raise ConflictError(msg, field="job")
        validate_name(tenant, field="tenant")
        validate_name(name, field="name")
        if kind not in ("forecast", "tabular"):
            msg = f"kind must be 'forecast' or 'tabular', got {kind!r}"
            raise InvalidParameterError(msg, field="kind")
        request: dict[str, Any] = {"name": name, "kind": kind}
        if kind == "forecast":
            import msgspec

            from forecasting.models.registry import parse_spec

            if target not in (None, "y"):
                msg = (
                    f"target is for tabular models; forecast data's target is 'y', got "
                    f"{target!r}"
                )
                raise InvalidParameterError(msg, field="target")
            request["spec"] = msgspec.to_builtins(parse_spec(spec))
            if h is not None:
                request["h"] = validate_h(h)
            if freq is not None:
                request["freq"] = freq
            if fill_missing is not None:
                from forecasting.data import check_fill_policy

                request["fill_missing"] = check_fill_policy(fill_missing)
            if fill_gaps:
                request["fill_gaps"] = True
        else:
            request["spec"], request["target"] = _check_tabular(spec, target)
            if h is not None:
                msg_0 = "h is for forecast models"
                raise InvalidParameterError(msg_0, field="h")
        frame = data if isinstance(data, pl.DataFrame) else (
            _read_path(data) if isinstance(data, str | os.PathLike) else to_polars(data))

        job_id = str(uuid.uuid4())
        folder = self.jobs_dir / job_id
        folder.mkdir(parents=True)
        try:
            tmp = folder / f".{_DATA_FILE}.tmp"
            frame.write_parquet(tmp)
            os.replace(tmp, folder / _DATA_FILE)
        except (pl.exceptions.PolarsError, OSError, ValueError, TypeError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            msg_0 = f"data cannot be stored as Parquet: {exc}"
            raise InvalidInputError(msg_0, field="data") from exc
        request["rows"] = frame.height
        self.registry.create_job(tenant=tenant, kind="train", request=request, job_id=job_id)
        payload = {"id": job_id, "tenant": tenant, "dir": str(folder), "database_url": self.registry.database_url,
                   "artifacts_dir": str(self.registry.artifacts_dir), "time_limit_s": self.time_limit_s,
                   "started": time.time(), **request}
        with self._lock:
            future = self._pool.submit(_start_clock, payload)
            self._futures[job_id] = future
        def done(f: Future[dict[str, Any]], j: str = job_id, t: str = tenant) -> None:
            self._on_done(j, t, f)

        future.add_done_callback(done)
        return job_id

    def _on_done(self, job_id: str, tenant: str, future: Future[dict[str, Any]]) -> None:
        try:
            self._finisher.submit(self._finish, job_id, tenant, future)
        except RuntimeError:  # the finisher is shut down (shutdown(wait=False)): finish here
            self._finish(job_id, tenant, future)

    # ------------------------------------------------------------------ finish (parent)
    def _finish(self, job_id: str, tenant: str, future: Future[dict[str, Any]]) -> None:
        folder = self.jobs_dir / job_id
        try:
            if future.cancelled():
                self.registry.update_job(job_id, only_from=("queued", "running"), state="cancelled",
                                         message="cancelled before it started")
                return
            died = future.exception()
            if died is not None:  # the worker process died (killed, out of memory): BrokenProcessPool
                self.registry.update_job(job_id, only_from=("queued", "running"), state="failed",
                                         error=f"the worker process failed: {type(died).__name__}: {died}",
                                         message="failed")
                return
            result = future.result()
            if result["status"] == "cancelled":
                self.registry.update_job(job_id, only_from=("queued", "running"), state="cancelled",
                                         message="cancelled")
                return
            if result["status"] == "failed":
                self.registry.update_job(job_id, only_from=("running",), state="failed", error=result["error"],
                                         error_field=result.get("field"), message="failed")
                return
            if self.registry.job_state(job_id) != "running":
                return  # cancelled after the worker's last check
            request = self.registry.get_job(job_id, tenant).request
            try:
                info = self.registry.register_version(
                    request["name"], tenant=tenant, spec=result["spec"], kind=result["kind"],
                    artifact_src_dir=result["artifact"], fingerprint=result["fingerprint"], metrics=result["metrics"],
                    exog=result["exog"], max_h=result["max_h"])
            except ForecastingError as exc:
                self.registry.update_job(job_id, only_from=("running",), state="failed", error=exc.message,
                                         error_field=exc.field, message="failed")
                return
            if not self.registry.update_job(job_id, only_from=("running",), state="succeeded", progress=1.0,
                                            message=f"registered {info.ref}", result_model=info.name,
                                            result_version=info.version):
                # cancelled while registering: the caller asked for nothing to be kept
                self.registry.delete_version(info.name, info.version, tenant, force=True)
        except Exception as exc:  # noqa: BLE001 - the job must never stay "running"
            self.registry.update_job(job_id, only_from=("queued", "running"), state="failed",
                                     error=f"internal error: {type(exc).__name__}: {exc}", message="failed")
        finally:
            with self._lock:
                self._futures.pop(job_id, None)
            shutil.rmtree(folder, ignore_errors=True)

    # ------------------------------------------------------------------ queries and control
    def get_job(self, job_id: str, tenant: str) -> JobInfo:
        """The job's state, progress and result.

        Raises
        ------
        NotFoundError
            No such job for this tenant.
        """
        return self.registry.get_job(job_id, tenant)

    def list_jobs(self, tenant: str, *, state: str | None = None, limit: int = 100) -> list[JobInfo]:
        """The tenant's jobs, newest first."""
        return self.registry.list_jobs(tenant, state=state, limit=limit)

    def cancel(self, job_id: str, tenant: str) -> JobInfo:
        """Cancel a queued or running job (cooperatively, see the module docstring).

        Returns
        -------
        JobInfo
            In state ``cancelled``.

        Raises
        ------
        NotFoundError
            No such job for this tenant.
        ConflictError
            The job has already finished (``details["state"]``).
        """
        info = self.registry.get_job(job_id, tenant)
        if info.state in TERMINAL_STATES or not self.registry.update_job(
                job_id, only_from=("queued", "running"), state="cancelled",
                message="cancelled" if info.state == "queued" else "cancel requested; the worker stops at its next "
                                                                    "step"):
            state = self.registry.get_job(job_id, tenant).state
            if state == "cancelled":
                return self.registry.get_job(job_id, tenant)
            msg = f"job '{job_id}' has already {state}; only queued or running jobs can be cancelled"
            raise ConflictError(msg, field="job_id", details={"state": state})
        with self._lock:
            future = self._futures.get(job_id)
        if future is not None:
            future.cancel()  # only works while the pool has not handed it to a process; the flag covers the rest
        return self.registry.get_job(job_id, tenant)

    def wait(self, job_id: str, tenant: str, *, timeout_s: float = 600.0, poll_s: float = 0.2) -> JobInfo:
        """Poll until the job is finished (succeeded, failed or cancelled) and its result recorded.

        Raises
        ------
        TimeLimitError
            Still unfinished after ``timeout_s``.
        """
        end = time.monotonic() + timeout_s
        while True:
            info = self.registry.get_job(job_id, tenant)
            with self._lock:
                pending = job_id in self._futures
            if info.done and not pending:
                return info
            if time.monotonic() > end:
                msg = f"job '{job_id}' still {info.state} after {timeout_s} s"
                raise TimeLimitError(msg, field="job_id", details={"limit_seconds": timeout_s})
            time.sleep(poll_s)

    def recover(self, *, stale_after_s: float | None = None) -> list[str]:
        """Fail the jobs a previous process left ``queued`` or ``running``; returns their ids.

        Each is marked ``failed`` with ``"interrupted by a restart"`` (not re-queued: the
        caller resubmits). Call once at startup, before :meth:`submit_training`. With
        ``stale_after_s``, only jobs whose heartbeat (or creation) is older than that are
        failed -- for deployments where several processes share the database. Also removes
        their data folders and any version left half-registered.
        """
        now = _now()
        failed = []
        with self._lock:
            mine = set(self._futures)
        for job in self.registry.unfinished_jobs():
            if job.id in mine:
                continue
            last = job.heartbeat_at or job.started_at or job.created_at
            if stale_after_s is not None and (now - last).total_seconds() < stale_after_s:
                continue
            if self.registry.update_job(job.id, only_from=("queued", "running"), state="failed",
                                        error="interrupted by a restart", message="failed"):
                failed.append(job.id)
                shutil.rmtree(self.jobs_dir / job.id, ignore_errors=True)
        if stale_after_s is None:
            self.registry.remove_pending_versions()
        return failed

    def shutdown(self, *, wait: bool = True, cancel_queued: bool = True) -> None:
        """Stop accepting jobs; cancel the queued ones (by default) and wait for running ones."""
        self._closed = True
        if cancel_queued:
            with self._lock:
                ids = list(self._futures)
            for job_id in ids:
                self.registry.update_job(job_id, only_from=("queued",), state="cancelled",
                                         message="cancelled at shutdown")
        self._pool.shutdown(wait=wait, cancel_futures=cancel_queued)
        self._finisher.shutdown(wait=wait)


def _start_clock(payload: dict[str, Any]) -> dict[str, Any]:
    """The time limit counts from when a worker picks the job up, not from submission."""
    return _train_worker({**payload, "started": time.time()})


def _read_path(path: str | os.PathLike[str]) -> pl.DataFrame:
    from forecasting.service import read_table

    return read_table(Path(path))


def _check_tabular(spec: Any, target: Any) -> tuple[dict[str, Any], str]:
    from forecasting.tabular import TabularModel

    if not isinstance(spec, Mapping):
        msg = (
            f"a tabular spec must be an object of TabularModel arguments "
            f"({', '.join(sorted(_TABULAR_KEYS))}), got {type(spec).__name__}"
        )
        raise InvalidParameterError(msg, field="spec")
    unknown = set(spec) - _TABULAR_KEYS
    if unknown:
        msg = (
            f"unknown tabular spec keys: {', '.join(sorted(unknown))} (known: "
            f"{', '.join(sorted(_TABULAR_KEYS))})"
        )
        raise InvalidParameterError(msg, field=f"spec.{sorted(unknown)[0]}")
    if not isinstance(target, str) or not target:
        msg = f"target must name the target column for a tabular model, got {target!r}"
        raise InvalidParameterError(msg, field="target")
    model = TabularModel(**dict(spec))
    model._validate_params()
    if model.algorithm == "hist_gradient_boosting":
        msg = (
            "hist_gradient_boosting models cannot be saved safely, so they cannot be registered; "
            "use algorithm 'xgboost' or 'linear'"
        )
        raise CapabilityError(msg, field="spec.algorithm")
    return dict(spec), target
