"""Where independent tasks run: this process, a pool of local worker processes, or a Ray cluster.

One small interface, :func:`run_tasks`, used by the benchmark harness (one task per model and
window) and by the batch forecasts (:mod:`forecasting.service.batch`, one task per partition).
A task is ``fn(task, shared, cores)``: ``shared`` is the same object for every task (sent once
to Ray's object store), ``cores`` the CPU cores the task may use. Results come back to the
caller's ``done(task, result)`` as each task finishes, in completion order.

Ray (an optional extra, ``forecasting[distributed]``) is imported only when ``engine="ray"``.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

from forecasting.errors import CapabilityError, InvalidParameterError

__all__ = ["ENGINES", "Engine", "check_engine", "run_tasks", "task_cores"]

Engine = Literal["local", "ray"]
ENGINES: tuple[str, ...] = ("local", "ray")
T = TypeVar("T")
R = TypeVar("R")
TaskFn = Callable[[T, Any, int], R]


def check_engine(engine: str) -> Engine:
    """``engine`` if it is one of :data:`ENGINES`.

    Raises
    ------
    InvalidParameterError
        Naming the value and the choices (field ``engine``).
    """
    if engine not in ENGINES:
        msg = f"engine must be 'local' or 'ray', got {engine!r}"
        raise InvalidParameterError(msg, field="engine")
    return engine  # type: ignore[return-value]


def task_cores(n_jobs: int, n_tasks: int) -> tuple[int, int]:
    """Worker processes and cores per task for ``n_tasks`` tasks on ``n_jobs`` cores.

    One worker per task up to ``n_jobs``; when there are fewer tasks than cores each task
    gets ``n_jobs // workers`` cores, so the total stays within ``n_jobs``.

    Examples
    --------
    >>> task_cores(8, 2), task_cores(2, 10), task_cores(4, 1)
    ((2, 4), (2, 1), (1, 4))
    """
    workers = max(1, min(n_jobs, n_tasks))
    return workers, max(1, n_jobs // workers)


_POOLS: dict[int, Any] = {}


def _pool(workers: int) -> Any:
    """A spawned process pool of ``workers`` processes, kept for the next run in this process.

    Later runs (a suite's datasets, reruns, the next batch) reuse warm workers: no second
    start-up, import or numba compilation (seconds per model per process). Shut down at exit.
    """
    if workers not in _POOLS:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        _POOLS[workers] = pool
        atexit.register(pool.shutdown, wait=False, cancel_futures=True)
    return _POOLS[workers]


def run_tasks(todo: Sequence[tuple[T, TaskFn[T, R]]], shared: Any, done: Callable[[T, R], None], *,
              engine: Engine = "local", n_jobs: int = 1, address: str | None = None) -> None:
    """Run ``fn(task, shared, cores)`` for every ``(task, fn)`` of ``todo``, calling ``done(task, result)`` as each ends.

    Parameters
    ----------
    todo : sequence of (task, fn)
        ``fn`` must be a module-level function (it is pickled to the workers); ``task`` and
        ``shared`` must pickle too.
    shared : object
        Passed to every task (Ray: put in the object store once).
    done : callable
        Called in this process with each task's result, in completion order.
    engine : {"local", "ray"}
        ``local``: this process when one worker suffices, else a pool of ``n_jobs`` spawned
        processes (:func:`task_cores`). ``ray``: one Ray task per item, one CPU each; Ray is
        started locally with ``n_jobs`` CPUs unless ``address`` names a cluster (or Ray is
        already initialised in this process, which is then left running).
    n_jobs : int
        Local cores (local engine; Ray without ``address``).
    address : str, optional
        Ray cluster address (``ray://host:10001`` or ``auto``).

    Raises
    ------
    CapabilityError
        ``engine="ray"`` without Ray installed.
    Exception
        The first task's error, re-raised here; the tasks not yet finished are cancelled.
    """
    if check_engine(engine) == "ray":
        _run_ray(todo, shared, done, n_jobs=n_jobs, address=address)
    else:
        _run_local(todo, shared, done, n_jobs=n_jobs)


def _run_local(todo: Sequence[tuple[T, TaskFn[T, R]]], shared: Any, done: Callable[[T, R], None], *,
               n_jobs: int) -> None:
    workers, per_task = task_cores(n_jobs, len(todo))
    if workers == 1:
        for task, fn in todo:
            done(task, fn(task, shared, per_task))
        return
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = _pool(workers)
    try:
        pending = {pool.submit(fn, task, shared, per_task): task for task, fn in todo}
    except BrokenProcessPool:  # a worker died in an earlier run: start afresh
        _POOLS.pop(workers, None)
        pool = _pool(workers)
        pending = {pool.submit(fn, task, shared, per_task): task for task, fn in todo}
    try:
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                done(pending.pop(fut), fut.result())
    except BaseException:
        for fut in pending:
            fut.cancel()
        _POOLS.pop(workers, None)  # interrupted: running tasks are left to finish; the next run starts new workers
        pool.shutdown(wait=False, cancel_futures=True)
        raise


def _run_ray(todo: Sequence[tuple[T, TaskFn[T, R]]], shared: Any, done: Callable[[T, R], None], *,
             n_jobs: int, address: str | None) -> None:
    try:
        import ray
    except ImportError:
        msg = ("engine 'ray' needs Ray, which is an optional extra: pip install 'forecasting[distributed]' "
               "(or use engine 'local')")
        raise CapabilityError(msg, field="engine") from None

    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else n_jobs, include_dashboard=False,
                 ignore_reinit_error=True, log_to_driver=False)
    pending: dict[Any, T] = {}
    try:
        shared_ref = ray.put(shared)
        remotes = {fn: ray.remote(num_cpus=1, max_retries=0)(fn) for fn in {fn for _, fn in todo}}
        pending = {remotes[fn].remote(task, shared_ref, 1): task for task, fn in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                task = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    raise (cause if isinstance(cause, BaseException) else exc) from None
                done(task, result)
    except BaseException:
        for other in pending:  # the first failure (or an interruption) cancels what has not finished
            ray.cancel(other)
        raise
    finally:
        if started:
            ray.shutdown()
