"""Training jobs: models are trained in worker processes, never on the caller's thread.

:class:`JobRunner` records a job (``queued``), persists the training data to
``<artifacts_dir>/_jobs/<id>/data.parquet`` and queues it in memory, one queue per
tenant. ``max_workers`` worker slots each keep one worker process (spawn context, so a
worker never inherits the API's event loop, threads or open connections) and take the
next job **round robin across tenants**: a tenant with 50 queued jobs delays another
tenant's job by at most the jobs already running. A tenant may have at most
``max_unfinished_per_tenant`` queued or running jobs; the next submission is refused
with :class:`~forecasting.errors.TooManyJobsError` (HTTP 429 with ``Retry-After``)
before anything is written.

The worker opens the registry database itself, marks the job ``running`` and writes its
progress there:

====  =====================================================================
0.1   data validated (forecast: :func:`~forecasting.data.validate_panel`)
0.15  hold-out fit started (validation metrics); up to 0.3 its own progress where the model
      reports it (networks: per training step, "hold-out fit: window 1 of 1: step 40/100";
      XGBoost/LightGBM: per 1 % of their boosting rounds)
0.3   validation metrics measured (held-out last ``h`` steps / k-fold)
0.5   model fitted on all the data
0.9   artifact saved to a temporary folder
1.0   version registered (by the parent process), job ``succeeded``
====  =====================================================================

Failures are caught in the worker and the job is marked ``failed`` with the library
error's message (and the field it names); unexpected exceptions are reported as
``internal error: <type>: <message>``.

Cancellation: :meth:`JobRunner.cancel` marks a ``queued`` or ``running`` job
``cancelled`` at once; a queued job never starts, and a running job's worker process
(with its process group: the fitting libraries' own workers) is killed, whatever phase
it is in (the hold-out fit included), and replaced for the next job; a step's progress call
also stops the worker itself once it sees the job cancelled. Every ``_BEAT_S`` seconds the
worker writes its heartbeat and the seconds spent in the current step into the message
(``"hold-out fit: ... (35 s so far)"``), so a step whose model reports no progress still moves. The time limit
(``time_limit_s``) is given to the forecaster as its deadline and checked between steps;
a worker still running 10 s past it is killed.

Processes: each worker process starts its own process group and watches its parent
(polling ``getppid`` every 0.5 s; Linux also gets ``PR_SET_PDEATHSIG``): when the server
dies -- ``kill -9`` included -- the worker kills its group and exits. Its pid and start
time are written to ``_jobs/workers/<pid>``; a runner starting on the same artifact store
(:meth:`JobRunner.recover`) kills any group left there by a previous server.

Restarts and shutdown: :meth:`JobRunner.recover` (call it once at startup, before
submitting) takes the jobs a previous process left unfinished: a ``queued`` job, or a
``running`` job interrupted for the first time (``attempts`` 0 -> 1), is re-queued with
its data (its message says so); a job interrupted a second time, or whose data is gone,
is marked ``failed`` with ``"interrupted by a restart"``. :meth:`JobRunner.shutdown`
(SIGTERM through the server's lifespan) leaves queued jobs queued for the next start,
gives running jobs ``grace_s`` seconds (default 5) to finish, then kills their workers
and hands them back (``queued``, counted as an interruption): it returns within
``grace_s`` + about 2 s.

Several server processes on one store (``forecasting serve --workers N``): pass ``shared=True``.
Each process's runner tries an exclusive lock on the runner lock file (:attr:`JobRunner.lock_path`:
``<database file>.jobs.lock`` beside a SQLite database, else ``_jobs/runner.lock``; ``fcntl.flock``,
released by the kernel when its holder dies); the one that holds it is the **leader** and alone runs jobs,
recovers them at start and takes, every ``_ADOPT_S`` seconds, the ``queued`` jobs the other
processes wrote to the database. The others (**followers**) only write a job (its data file and
its row) and leave it queued; the per-tenant cap is then counted in the database, and a cancel
is seen by the leader in the job's row (its worker is killed within ``_ADOPT_S``). A follower
retries the lock every second and becomes the leader when the leader's process is gone.

Memory: a worker process idle for ``idle_s`` seconds (default 30; 0: after every job) exits,
returning what the fitting libraries held to the system; the next job starts a new one
(a spawn: about a second, plus the libraries' imports).

What a job runs is :func:`forecasting.service.training.train` (validation metrics, fit, save), or, for a
job of kind ``retrain`` (:meth:`JobRunner.submit_retrain`: the retraining scheduler's ticks and triggers),
:meth:`Monitoring.retrain <forecasting.service.monitoring.Monitoring.retrain>` (it registers its challenger and
records its decision; a killed retrain's lock on the model is freed by the runner); this module only runs
them: queues, worker processes, progress, cancel, time limit, restarts.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
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
    TooManyJobsError,
)
from forecasting.store import TERMINAL_STATES, JobInfo, Store, validate_name

#: job lifecycle events (``extra``: event, job_id, tenant, kind, state, duration_s); the service logs them as JSON
_log = logging.getLogger("forecasting.jobs")

__all__ = ["JobRunner"]

_DATA_FILE = "data.parquet"
_JOBS_DIR = "_jobs"
_WORKERS_DIR = "workers"
_TABULAR_KEYS = {"kind", "algorithm", "params", "device", "seed", "handle_unknown", "n_jobs"}
#: seconds past its time limit after which a job's worker is killed (the limit itself is cooperative)
_HARD_LIMIT_GRACE_S = 10.0
#: how often the parent looks at a running job (result, cancel, shutdown, worker death), seconds
_POLL_S = 0.1
#: the Retry-After of a refused submission, seconds
_RETRY_AFTER_S = 10
#: how often a shared runner's leader looks for jobs other processes queued (and cancels), seconds
_ADOPT_S = 0.5
#: how often a follower tries to become the leader, seconds
_TAKEOVER_S = 1.0
#: how often a running job's worker writes its heartbeat and the time spent in its current step, seconds
_BEAT_S = 5.0
_LOCK_FILE = "runner.lock"


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
        self._lock = threading.Lock()  # a step and a heartbeat never write the message over each other
        self._current = ("started", time.monotonic())  # the last step's message and when it was recorded

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
        with self._lock:
            self._current = (message, time.monotonic())
            self.registry.update_job(self.id, only_from=("running",), progress=progress, message=message,
                                     heartbeat_at=_now())

    def _beat(self) -> None:
        """Every ``_BEAT_S``: the heartbeat, and the current step's message with the seconds spent in it, so a
        long step that reports no progress of its own (a hold-out fit of a statistical model or of trees) still
        shows it is working: ``hold-out fit: ... (35 s so far)``."""
        while not self._stop.wait(_BEAT_S):
            with self._lock:
                message, since = self._current
                try:
                    self.registry.update_job(self.id, only_from=("running",), heartbeat_at=_now(),
                                             message=f"{message} ({time.monotonic() - since:.0f} s so far)")
                except Exception:  # noqa: BLE001 - a missed heartbeat is not worth failing the job for
                    pass

    def run(self) -> dict[str, Any]:
        if not self.registry.update_job(self.id, only_from=("queued",), state="running", started_at=_now(),
                                        heartbeat_at=_now(), message="started", progress=0.0):
            return {"status": "cancelled"}
        beat = threading.Thread(target=self._beat, daemon=True)
        beat.start()
        try:
            if self.job["kind"] == "retrain":
                return self._retrain()
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


    def _retrain(self) -> dict[str, Any]:
        """A retrain job: :meth:`Monitoring.retrain <forecasting.service.monitoring.Monitoring.retrain>` (which
        registers the challenger and records the decision itself), with this job's progress, cancel and limit."""
        from forecasting.service.monitoring import Monitoring

        monitoring = Monitoring(self.registry)
        try:
            decision = monitoring.retrain(self.job["tenant"], self.job["name"], trigger=self.job.get("trigger", "schedule"),
                                          deadline=self.deadline, step=self.step)
        finally:
            monitoring.close()
        reason = str(decision.detail.get("reason", ""))
        return {"status": "retrained", "version": decision.challenger_version,
                "message": f"decision {decision.id}: {reason}"[:1000]}


def _train_worker(job: dict[str, Any]) -> dict[str, Any]:
    """One job in the worker process; the time limit counts from when a worker picks it up."""
    return _Worker({**job, "started": time.time()}).run()


def _worker_main(conn: Connection, parent_pid: int) -> None:
    """A worker process: its own process group, dies with its parent, runs the jobs sent on ``conn``."""
    with contextlib.suppress(OSError):
        os.setsid()  # a group of its own: killing it reaches the fitting libraries' processes too
    _die_with_parent(parent_pid)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the parent closed the pipe or died
            break
        if job is None:
            break
        conn.send(_train_worker(job))


def _die_with_parent(parent_pid: int) -> None:
    """Kill this process group when the parent dies (``PR_SET_PDEATHSIG`` on Linux, and a watcher thread)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - another libc: the watcher covers it
            pass

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        _kill_group(os.getpgrp())
        os._exit(1)

    if os.getppid() != parent_pid:  # the parent died before this process got here
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="forecasting-parent-watch").start()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)


def _start_time(pid: int) -> str | None:
    """A process's start time (clock ticks since boot, Linux ``/proc``); None when it is gone or unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


# --------------------------------------------------------------------------- parent side
@dataclass
class _Slot:
    """One worker process and the job it runs."""

    index: int
    process: Any = None
    conn: Connection | None = None
    job_id: str | None = None
    kill: str | None = None  # why the running job's worker must be killed: "cancel" or "shutdown"
    thread: threading.Thread | None = field(default=None, repr=False)


class JobRunner:
    """Runs training jobs in worker processes, fairly across tenants, and records them in the job table.

    Parameters
    ----------
    registry : Store
    max_workers : int, default 1
        Worker processes, i.e. jobs running at once (the others wait ``queued``).
    time_limit_s : float, default 3600
        Wall time a job may take from its start, seconds (see the module docstring).
    max_unfinished_per_tenant : int, default 50
        Queued or running jobs a tenant may have; one more is refused with
        :class:`~forecasting.errors.TooManyJobsError`.
    grace_s : float, default 5
        At :meth:`shutdown`, how long running jobs may take to finish before their workers are
        killed and the jobs handed back.
    idle_s : float, default 30
        A worker process idle this long exits (its memory goes back to the system); 0: it
        exits after every job.
    shared : bool, default False
        Several processes share this database and artifact store (see the module docstring):
        only the runner holding :attr:`lock_path` runs jobs (:attr:`is_leader`), the others
        write jobs for it.

    Without ``shared``, use one runner per database and artifact store: :meth:`recover` assumes
    no other process runs jobs on it (or pass ``stale_after_s`` to only take jobs whose
    heartbeat stopped).
    """

    def __init__(self, registry: Store, *, max_workers: int = 1, time_limit_s: float = 3600.0,
                 max_unfinished_per_tenant: int = 50, grace_s: float = 5.0, idle_s: float = 30.0,
                 shared: bool = False) -> None:
        for name, value in (("max_workers", max_workers), ("max_unfinished_per_tenant", max_unfinished_per_tenant)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"{name} must be an integer >= 1, got {value!r}"
                raise InvalidParameterError(msg, field=name)
        for name, number in (("time_limit_s", time_limit_s), ("grace_s", grace_s), ("idle_s", idle_s)):
            if isinstance(number, bool) or not isinstance(number, int | float) or not number >= 0 or (
                    name == "time_limit_s" and not number > 0):
                msg = f"{name} must be a number > 0, got {number!r}"
                raise InvalidParameterError(msg, field=name)
        self.registry = registry
        self.max_workers = max_workers
        self.time_limit_s = float(time_limit_s)
        self.max_unfinished_per_tenant = max_unfinished_per_tenant
        self.grace_s = float(grace_s)
        self.jobs_dir = registry.artifacts_dir / _JOBS_DIR
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.workers_dir = self.jobs_dir / _WORKERS_DIR  # made when the first worker starts
        self._context = multiprocessing.get_context("spawn")
        self._cond = threading.Condition()
        self._queues: dict[str, deque[str]] = {}  # tenant -> its queued job ids, oldest first
        self._turn: deque[str] = deque()  # tenants with queued jobs, in round-robin order
        self._payloads: dict[str, dict[str, Any]] = {}  # queued or running job -> what the worker gets
        self._tenant: dict[str, str] = {}  # unfinished job -> tenant
        self._reserved: dict[str, int] = {}  # tenant -> submissions being written
        self._closed = False
        self.idle_s = float(idle_s)
        self.shared = shared
        self._slots = [_Slot(i) for i in range(max_workers)]
        self._lock_fd: int | None = None
        self._background: threading.Thread | None = None
        self._adopter: threading.Thread | None = None
        if not shared:
            self._start_slots()  # shared: recover() decides whether this runner leads

    @property
    def is_leader(self) -> bool:
        """Whether this runner runs jobs: always unless ``shared``; a shared one once :meth:`recover` (or a
        takeover) got it the lock."""
        return not self.shared or self._lock_fd is not None

    def _start_slots(self) -> None:
        for slot in self._slots:
            slot.thread = threading.Thread(target=self._slot_loop, args=(slot,), daemon=True,
                                           name=f"forecasting-jobs-{slot.index}")
            slot.thread.start()

    # ------------------------------------------------------------------ several processes (shared)
    @property
    def lock_path(self) -> Path:
        """The file whose lock makes a ``shared`` runner the leader (it holds the leader's pid): beside a SQLite
        database file ``<database>.jobs.lock``, else ``<artifacts>/_jobs/runner.lock``."""
        from sqlalchemy.engine import make_url

        url = make_url(self.registry.database_url)
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            database = Path(str(url.database))
            return database.with_name(f"{database.name}.jobs.lock")
        return self.jobs_dir / _LOCK_FILE

    def _try_lock(self) -> bool:
        """Take :attr:`lock_path` without waiting; True when this runner is now the leader."""
        import fcntl

        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())  # who leads, for an operator
        self._lock_fd = fd
        _log.info("job runner: this process runs the jobs", extra={"event": "jobs.leader", "pid": os.getpid()})
        return True

    def _lead(self) -> bool:
        """Hold the lock (taking it now when free) with the worker slots started; False while another leads."""
        if self._lock_fd is None:
            if not self._try_lock():
                return False
            self._start_slots()
        return True

    def _take_over(self) -> None:
        """A follower: try the lock every ``_TAKEOVER_S``; once held, recover and run jobs."""
        while True:
            with self._cond:
                if self._cond.wait_for(lambda: self._closed, timeout=_TAKEOVER_S):
                    return
            if self._lead():
                self.recover()
                return

    def _adopt_loop(self) -> None:
        """The leader: queue the jobs other processes wrote, and kill the workers of jobs cancelled there."""
        while True:
            with self._cond:
                if self._cond.wait_for(lambda: self._closed, timeout=_ADOPT_S):
                    return
            try:
                self._adopt_once()
            except Exception:  # noqa: BLE001 - a busy database now is retried at the next poll
                _log.debug("adopting queued jobs failed; retried", exc_info=True)

    def _adopt_once(self) -> None:
        with self._cond:
            known = set(self._payloads)
            running = {slot.job_id: slot for slot in self._slots if slot.job_id is not None}
        for job in self.registry.unfinished_jobs():
            if job.state == "queued" and job.id not in known and self._runnable(job):
                self._enqueue(job.id, job.tenant, job.request)
        for job_id, slot in running.items():  # cancelled through another process: stop its worker now
            if self.registry.job_state(job_id) == "cancelled":
                with self._cond:
                    if slot.job_id == job_id:
                        slot.kill = "cancelled"

    def _runnable(self, job: JobInfo) -> bool:
        """Whether a job left in the database can run here: a retrain, or a training whose data file is there."""
        return "name" in job.request and (job.request.get("kind") == "retrain"
                                          or (self.jobs_dir / job.id / _DATA_FILE).is_file())

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)  # the lock goes with the descriptor
            self._lock_fd = None

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
        TooManyJobsError
            The tenant already has ``max_unfinished_per_tenant`` queued or running jobs
            (``details``: ``limit``, ``retry_after_s``); nothing was written.
        ConflictError
            The runner is shut down.
        StoreBusyError
            The database stayed locked; nothing was left behind.
        """
        validate_name(tenant, field="tenant")
        validate_name(name, field="name")
        request = _request(name, spec, kind, target, h=h, freq=freq, fill_missing=fill_missing, fill_gaps=fill_gaps)
        from forecasting.data import to_polars

        frame = data if isinstance(data, pl.DataFrame) else (
            _read_path(data) if isinstance(data, str | os.PathLike) else to_polars(data))
        request["rows"] = frame.height

        def write(folder: Path) -> None:
            try:
                tmp = folder / f".{_DATA_FILE}.tmp"
                frame.write_parquet(tmp)
                os.replace(tmp, folder / _DATA_FILE)
            except (pl.exceptions.PolarsError, OSError, ValueError, TypeError) as exc:
                msg_0 = f"data cannot be stored as Parquet: {exc}"
                raise InvalidInputError(msg_0, field="data") from exc

        return self._queue(tenant, request, kind="train", write=write)

    def submit_retrain(self, tenant: str, name: str, *, trigger: str = "schedule",
                       if_pending: Literal["skip", "refuse"] = "skip") -> str | None:
        """Queue a retrain of model ``name`` (a job of kind ``retrain``) and return the job id.

        The job runs :meth:`Monitoring.retrain <forecasting.service.monitoring.Monitoring.retrain>` in a worker
        process like a training job: the tenant's fair queue and cap, progress (the challenger's hold-out fit
        and training), cancel (the worker is killed and the model's retrain lock freed) and the time limit. The
        retrain registers its challenger and records its decision itself; the job's result is the challenger's
        version (none for a "no change" decision) and its message the decision's reason. Scheduled ticks and
        triggers (:class:`~forecasting.service.monitoring.RetrainScheduler`) and ``POST .../retrain``
        (:meth:`Monitoring.queue_retrain <forecasting.service.monitoring.Monitoring.queue_retrain>`) queue it here.

        Parameters
        ----------
        tenant, name : str
        trigger : str, default "schedule"
            Recorded with the decision (``schedule``, ``observations``, ``drift``, ``manual``).
        if_pending : {"skip", "refuse"}, default "skip"
            When a retrain job of the model is already queued or running: return None (a tick: that job covers
            it), or raise :class:`~forecasting.errors.ConflictError` naming that job (a caller asking for one).

        Returns
        -------
        str or None
            None when a retrain job of the model is already queued or running and ``if_pending="skip"``.

        Raises
        ------
        ConflictError
            ``if_pending="refuse"`` and a retrain job of the model is queued or running (``details["job_id"]``).
        InvalidParameterError, TooManyJobsError, ConflictError, StoreBusyError
            As :meth:`submit_training`.
        """
        validate_name(tenant, field="tenant")
        validate_name(name, field="name")
        try:  # the pending check and the insert are one transaction (Store.create_job's one_pending)
            return self._queue(tenant, {"name": name, "kind": "retrain", "trigger": trigger}, kind="retrain",
                               one_pending=True)
        except ConflictError as exc:
            pending = (exc.details or {}).get("job_id")
            if pending is None:  # not the pending retrain (the runner is shut down)
                raise
            if if_pending == "refuse":
                msg = (f"a retrain of model '{name}' is already {exc.details['state']} (job {pending}): follow it "
                       f"at /v1/jobs/{pending} or cancel it first")
                raise ConflictError(msg, field="model", details={"model": name, "job_id": pending}) from None
            _log.info("retrain of %s/%s not queued: one is queued or running", tenant, name,
                      extra={"event": "job.retrain_pending", "tenant": tenant, "model": name})
            return None

    def _queue(self, tenant: str, request: dict[str, Any], *, kind: str,
               write: Callable[[Path], None] | None = None, one_pending: bool = False) -> str:
        """Reserve the tenant's place, write the job's folder (``write``: its data) and row, and queue it (this
        runner leads) or leave it for the leader; the job id. ``one_pending``: as :meth:`Store.create_job`'s."""
        self._reserve(tenant)
        job_id = str(uuid.uuid4())
        folder = self.jobs_dir / job_id
        try:
            folder.mkdir(parents=True)
            if write is not None:
                write(folder)
            self.registry.create_job(tenant=tenant, kind=kind, request=request, job_id=job_id, one_pending=one_pending)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # uploaded data is never left behind
            self._release(tenant)
            raise
        if self.is_leader:
            self._enqueue(job_id, tenant, request, reserved=True)
        else:  # the leader adopts it from the database
            self._release(tenant)
            _log.info("job %s queued for the leader", job_id, extra={"event": "job.queued", "job_id": job_id,
                                                                       "tenant": tenant, "kind": request.get("kind")})
        return job_id

    def _reserve(self, tenant: str) -> None:
        with self._cond:
            if self._closed:
                msg = "the job runner is shut down"
                raise ConflictError(msg, field="job")
            if self.shared:  # other processes queue jobs too: the database holds the count
                unfinished = sum(1 for j in self.registry.unfinished_jobs() if j.tenant == tenant)
            else:
                unfinished = sum(1 for t in self._tenant.values() if t == tenant)
            unfinished += self._reserved.get(tenant, 0)
            if unfinished >= self.max_unfinished_per_tenant:
                msg = (
                    f"tenant '{tenant}' already has {unfinished} unfinished training jobs (the limit is "
                    f"{self.max_unfinished_per_tenant}, FORECASTING_MAX_JOBS_PER_TENANT); retry when some have "
                    f"finished"
                )
                raise TooManyJobsError(msg, field="job", details={"limit": self.max_unfinished_per_tenant,
                                                                  "retry_after_s": _RETRY_AFTER_S})
            self._reserved[tenant] = self._reserved.get(tenant, 0) + 1

    def _release(self, tenant: str) -> None:
        with self._cond:
            self._reserved[tenant] -= 1

    def _enqueue(self, job_id: str, tenant: str, request: Mapping[str, Any], *, reserved: bool = False) -> None:
        payload = {"id": job_id, "tenant": tenant, "dir": str(self.jobs_dir / job_id),
                   "database_url": self.registry.database_url, "artifacts_dir": str(self.registry.artifacts_dir),
                   "time_limit_s": self.time_limit_s, **request}
        with self._cond:
            if reserved:
                self._reserved[tenant] -= 1
            if job_id in self._payloads:  # adopted from the database meanwhile
                return
            self._payloads[job_id] = payload
            self._tenant[job_id] = tenant
            queue = self._queues.setdefault(tenant, deque())
            queue.append(job_id)
            if tenant not in self._turn:
                self._turn.append(tenant)
            self._cond.notify_all()  # not notify(): the adopter and follower threads wait on it too (a job then waited idle_s)
        _log.info("job %s queued", job_id, extra={"event": "job.queued", "job_id": job_id, "tenant": tenant,
                                                  "kind": request.get("kind")})

    def _next_job(self, timeout: float | None = None) -> str | None:
        """The next job to run, round robin across tenants (None once shut down, ``""`` after ``timeout``
        seconds without one)."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                if self._turn:
                    tenant = self._turn.popleft()
                    queue = self._queues[tenant]
                    job_id = queue.popleft()
                    if queue:
                        self._turn.append(tenant)  # its next job waits for every other tenant's turn
                    else:
                        del self._queues[tenant]
                    return job_id
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return ""
                self._cond.wait(left)
            return None

    # ------------------------------------------------------------------ the worker slots
    def _slot_loop(self, slot: _Slot) -> None:
        while True:
            job_id = self._next_job(timeout=self.idle_s if slot.process is not None else None)
            if job_id is None:
                break
            if not job_id:  # idle: the worker exits, its memory goes back to the system
                self._stop_worker(slot, kill=False)
                _log.info("idle job worker stopped", extra={"event": "jobs.worker_idle_exit", "slot": slot.index})
                continue
            with self._cond:
                payload = self._payloads.get(job_id)
                slot.job_id, slot.kill = job_id, None
            if payload is not None:
                try:
                    outcome = self._run(slot, payload)
                    self._finish(job_id, payload["tenant"], outcome)
                except Exception as exc:  # noqa: BLE001 - the job must never stay "running"
                    self._record_failure(job_id, f"internal error: {type(exc).__name__}: {exc}")
            with self._cond:
                slot.job_id = None
        self._stop_worker(slot)

    def _ensure_worker(self, slot: _Slot) -> None:
        if slot.process is not None and slot.process.is_alive():
            return
        self._stop_worker(slot)
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(child, os.getpid()),
                                        name=f"forecasting-job-worker-{slot.index}")
        process.start()
        child.close()
        slot.process, slot.conn = process, parent
        assert process.pid is not None  # started
        started = _start_time(process.pid)
        if started is not None:
            self.workers_dir.mkdir(exist_ok=True)
            (self.workers_dir / str(process.pid)).write_text(started)

    def _stop_worker(self, slot: _Slot, *, kill: bool = True) -> None:
        process, slot.process = slot.process, None
        conn, slot.conn = slot.conn, None
        if process is None:
            return
        if not kill and conn is not None:  # idle: asked to exit, killed only if it does not
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
            process.join(timeout=5)
        with contextlib.suppress(OSError):
            if conn is not None:
                conn.close()
        if kill or process.is_alive():
            _kill_group(process.pid)  # the worker and the processes its fitting libraries started
            with contextlib.suppress(OSError, ValueError):
                process.kill()  # in case it had no group of its own yet
        process.join(timeout=5)
        (self.workers_dir / str(process.pid)).unlink(missing_ok=True)

    def _run(self, slot: _Slot, payload: dict[str, Any]) -> dict[str, Any]:
        """Send the job to the slot's worker and wait for its result, a kill request or the worker's death."""
        if self.registry.job_state(payload["id"]) != "queued":
            return {"status": "cancelled"}
        self._ensure_worker(slot)
        assert slot.conn is not None and slot.process is not None
        slot.conn.send(payload)
        _log.info("job %s started", payload["id"], extra={"event": "job.started", "job_id": payload["id"],
                                                          "tenant": payload["tenant"], "kind": payload.get("kind"),
                                                          "worker_pid": slot.process.pid})
        hard_deadline = time.monotonic() + self.time_limit_s + _HARD_LIMIT_GRACE_S
        while True:
            try:
                if slot.conn.poll(_POLL_S):
                    outcome = dict(slot.conn.recv())
                    if outcome.get("status") == "cancelled":  # stopped by its own progress call: replaced too,
                        self._stop_worker(slot)               # as a killed one (what its libraries held goes)
                    return outcome
            except (EOFError, OSError):
                pass  # the worker died: reported below
            if slot.kill is not None:
                self._stop_worker(slot)
                return {"status": slot.kill, "killed": True}
            if not slot.process.is_alive():
                code = slot.process.exitcode
                self._stop_worker(slot)
                return {"status": "failed", "field": None, "killed": True,
                        "error": f"the worker process died (exit code {code}: killed, or out of memory)"}
            if time.monotonic() > hard_deadline:
                self._stop_worker(slot)
                return {"status": "failed", "field": "time_limit_s", "killed": True,
                        "error": f"training did not finish within the time limit of {self.time_limit_s} s "
                                 f"(the worker was stopped)"}

    # ------------------------------------------------------------------ finish (parent)
    def _finish(self, job_id: str, tenant: str, result: dict[str, Any]) -> None:
        folder = self.jobs_dir / job_id
        keep_data = False
        with self._cond:
            request = self._payloads.get(job_id) or {}
        try:
            status = result["status"]
            if result.get("killed") and request.get("kind") == "retrain":  # its lock died with the worker
                from forecasting.store.monitoring import MonitoringStore

                with contextlib.suppress(ForecastingError):
                    MonitoringStore(self.registry).release(request["name"], tenant, reset_count=False)
            if status == "retrained":
                version = result["version"]  # None: a "no change" decision registered nothing
                self.registry.update_job(job_id, only_from=("running",), state="succeeded", progress=1.0,
                                         message=result["message"],
                                         result_model=None if version is None else request.get("name"),
                                         result_version=version)
                return
            if status == "shutdown":
                keep_data = self._hand_back(job_id)
                return
            if status == "cancelled":
                self.registry.update_job(job_id, only_from=("queued", "running"), state="cancelled",
                                         message="cancelled")
                return
            if status == "failed":
                self.registry.update_job(job_id, only_from=("queued", "running"), state="failed",
                                         error=result["error"], error_field=result.get("field"), message="failed")
                return
            self._register(job_id, tenant, result)
        finally:
            # the folder goes before the job leaves the unfinished set: ``wait`` returns only after the cleanup
            # (it returned between the two, and a caller saw the job's folder still there)
            if not keep_data:
                shutil.rmtree(folder, ignore_errors=True)
            with self._cond:
                self._payloads.pop(job_id, None)
                self._tenant.pop(job_id, None)
            self._log_finished(job_id, tenant)

    def _log_finished(self, job_id: str, tenant: str) -> None:
        """One ``job.finished`` event (state, kind, seconds from start to end) on the ``forecasting.jobs`` logger."""
        try:
            job = self.registry.get_job(job_id, tenant)
        except Exception:  # noqa: BLE001 - logging must never fail a job
            return
        took = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
        _log.info("job %s %s", job_id, job.state, extra={"event": "job.finished", "job_id": job_id, "tenant": tenant,
                                                         "kind": job.kind, "state": job.state, "duration_s": took,
                                                         "error": job.error})

    def _register(self, job_id: str, tenant: str, result: dict[str, Any]) -> None:
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

    def _hand_back(self, job_id: str) -> bool:
        """A running job stopped by :meth:`shutdown`: queued again for the next start (once). Returns
        whether its data is kept."""
        job = self.registry.get_job(job_id, self._tenant.get(job_id, ""))
        if job.attempts >= 1:
            self.registry.update_job(job_id, only_from=("running",), state="failed", attempts=job.attempts + 1,
                                     error="interrupted by a shutdown a second time; not re-queued again",
                                     message="failed")
            return False
        return self.registry.update_job(job_id, only_from=("running",), state="queued", progress=0.0,
                                        attempts=job.attempts + 1,
                                        message=f"handed back at shutdown (interrupted during: {job.message}); "
                                                f"runs again at the next start")

    def _record_failure(self, job_id: str, error: str) -> None:
        with contextlib.suppress(Exception):
            self.registry.update_job(job_id, only_from=("queued", "running"), state="failed", error=error,
                                     message="failed")
        with self._cond:
            self._payloads.pop(job_id, None)
            self._tenant.pop(job_id, None)
        shutil.rmtree(self.jobs_dir / job_id, ignore_errors=True)

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
        """Cancel a queued or running job; a running job's worker is killed, whatever phase it is in.

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
                job_id, only_from=("queued", "running"), state="cancelled", message="cancelled"):
            state = self.registry.get_job(job_id, tenant).state
            if state == "cancelled":
                return self.registry.get_job(job_id, tenant)
            msg = f"job '{job_id}' has already {state}; only queued or running jobs can be cancelled"
            raise ConflictError(msg, field="job_id", details={"state": state})
        dequeued = False
        with self._cond:
            queue = self._queues.get(tenant)
            if queue is not None and job_id in queue:
                queue.remove(job_id)
                if not queue:
                    del self._queues[tenant]
                    self._turn.remove(tenant)
                self._payloads.pop(job_id, None)
                self._tenant.pop(job_id, None)
                dequeued = True
            for slot in self._slots:
                if slot.job_id == job_id:
                    slot.kill = "cancelled"
        if dequeued:
            shutil.rmtree(self.jobs_dir / job_id, ignore_errors=True)
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
            with self._cond:
                pending = job_id in self._tenant
            if info.done and not pending:
                return info
            if time.monotonic() > end:
                msg = f"job '{job_id}' still {info.state} after {timeout_s} s"
                raise TimeLimitError(msg, field="job_id", details={"limit_seconds": timeout_s})
            time.sleep(poll_s)

    def unfinished(self, tenant: str | None = None) -> int:
        """Jobs this runner holds queued or running (of one tenant, or all)."""
        with self._cond:
            return sum(1 for t in self._tenant.values() if tenant is None or t == tenant)

    def recover(self, *, stale_after_s: float | None = None) -> list[str]:
        """Take over the jobs a previous process left ``queued`` or ``running``; returns those failed.

        First kills any worker process group a previous server on this artifact store left
        alive. Then each unfinished job is re-queued (its data still there, and, for a job
        that was running, not interrupted before: ``attempts`` becomes 1 and its message says
        it was re-queued), or marked ``failed`` with ``"interrupted by a restart"``. Call once
        at startup, before :meth:`submit_training`. With ``stale_after_s``, only jobs whose
        heartbeat (or creation) is older than that are taken -- for deployments where several
        processes share the database. Also removes any version left half-registered.

        A ``shared`` runner that is not the leader does nothing here (it recovers when it takes
        over); the leader then starts adopting the jobs other processes queue.
        """
        if self.shared and not self._lead():  # another process runs the jobs: follow, and take over later
            with self._cond:
                if self._background is None and not self._closed:
                    self._background = threading.Thread(target=self._take_over, daemon=True,
                                                        name="forecasting-jobs-follower")
                    self._background.start()
            return []
        self.kill_leftover_workers()
        now = _now()
        failed = []
        with self._cond:
            mine = set(self._tenant)
        for job in sorted(self.registry.unfinished_jobs(), key=lambda j: j.created_at):
            if job.id in mine:
                continue
            last = job.heartbeat_at or job.started_at or job.created_at
            if stale_after_s is not None and (now - last).total_seconds() < stale_after_s:
                continue
            interrupted = job.state == "running"
            if self._runnable(job) and not (interrupted and job.attempts >= 1):
                attempts = job.attempts + int(interrupted)
                message = (f"re-queued after a restart (interrupted while running: {job.message}; attempt "
                           f"{attempts + 1})" if interrupted else f"{job.message}; re-queued after a restart")
                if self.registry.update_job(job.id, only_from=(job.state,), state="queued", progress=0.0,
                                            attempts=attempts, message=message):
                    self._enqueue(job.id, job.tenant, job.request)
                continue
            error = "interrupted by a restart" + (" a second time; not re-queued again" if job.attempts else "")
            if self.registry.update_job(job.id, only_from=("queued", "running"), state="failed",
                                        attempts=job.attempts + int(interrupted), error=error, message="failed"):
                failed.append(job.id)
                shutil.rmtree(self.jobs_dir / job.id, ignore_errors=True)
        if stale_after_s is None:
            self.registry.remove_pending_versions()
        with self._cond:
            adopt = self.shared and self._adopter is None and not self._closed
            if adopt:
                self._adopter = threading.Thread(target=self._adopt_loop, daemon=True, name="forecasting-jobs-adopt")
        if adopt and self._adopter is not None:
            self._adopter.start()
        return failed

    def kill_leftover_workers(self) -> list[int]:
        """Kill the worker process groups a previous runner on this artifact store left alive; their pids.

        Each worker wrote ``_jobs/workers/<pid>`` with its start time; a process is killed only
        when that pid still runs with that start time (a reused pid is left alone).
        """
        with self._cond:
            mine = {slot.process.pid for slot in self._slots if slot.process is not None}
        killed: list[int] = []
        if not self.workers_dir.is_dir():
            return killed
        for entry in self.workers_dir.iterdir():
            if not entry.name.isdigit() or int(entry.name) in mine:
                continue
            pid = int(entry.name)
            with contextlib.suppress(OSError):
                if _start_time(pid) == entry.read_text().strip():
                    _kill_group(pid)
                    killed.append(pid)
            entry.unlink(missing_ok=True)
        return killed

    def shutdown(self, *, wait: bool = True, cancel_queued: bool = False, grace_s: float | None = None) -> None:
        """Stop taking jobs; running jobs get ``grace_s`` seconds, then their workers are killed and the jobs
        handed back (queued again for the next start, once). Queued jobs stay queued for the next start
        (or, with ``cancel_queued``, are cancelled). Returns within ``grace_s`` + about 2 s.

        Parameters
        ----------
        wait : bool, default True
            False: no grace period (running jobs are handed back at once).
        cancel_queued : bool, default False
        grace_s : float, optional
            Default: the runner's ``grace_s``.
        """
        with self._cond:
            if self._closed and all(s.thread is None for s in self._slots):
                return
            self._closed = True
            queued = [j for q in self._queues.values() for j in q]
            self._queues.clear()
            self._turn.clear()
            self._cond.notify_all()
        for job_id in queued:
            if cancel_queued:
                self.registry.update_job(job_id, only_from=("queued",), state="cancelled",
                                         message="cancelled at shutdown")
                shutil.rmtree(self.jobs_dir / job_id, ignore_errors=True)
            with self._cond:
                self._payloads.pop(job_id, None)
                self._tenant.pop(job_id, None)
        end = time.monotonic() + (grace_s if grace_s is not None else self.grace_s if wait else 0.0)
        while time.monotonic() < end and any(s.job_id is not None for s in self._slots):
            time.sleep(_POLL_S)
        with self._cond:
            for slot in self._slots:
                if slot.job_id is not None:
                    slot.kill = "shutdown"
        for slot in self._slots:
            if slot.thread is not None:
                slot.thread.join(timeout=max(1.0, _HARD_LIMIT_GRACE_S / 5))
                slot.thread = None
        for thread in (self._background, self._adopter):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=2.0)
        self._release_lock()


def _request(name: str, spec: Any, kind: str, target: str | None, *, h: int | None, freq: str | int | None,
             fill_missing: str | None, fill_gaps: bool) -> dict[str, Any]:
    """What a training job is asked (checked before anything is written), as the job records it."""
    from forecasting.data import validate_h

    if kind not in ("forecast", "tabular"):
        msg = f"kind must be 'forecast' or 'tabular', got {kind!r}"
        raise InvalidParameterError(msg, field="kind")
    request: dict[str, Any] = {"name": name, "kind": kind}
    if kind == "tabular":
        request["spec"], request["target"] = _check_tabular(spec, target)
        if h is not None:
            msg = "h is for forecast models"
            raise InvalidParameterError(msg, field="h")
        return request
    import msgspec

    from forecasting.models.registry import parse_spec

    if target not in (None, "y"):
        msg = f"target is for tabular models; forecast data's target is 'y', got {target!r}"
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
    return request


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
