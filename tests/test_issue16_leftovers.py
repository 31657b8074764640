"""Issue 16 leftovers: one retrain per tick with several processes on one store, warm starts of boosters,
LightGBM served on one thread, the CLI's --tenant and the accuracy range checks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from forecasting.jobs import JobRunner
from forecasting.service.monitoring import Monitoring, RetrainScheduler
from forecasting.service.training import train
from forecasting.store import Store

T = "default"


def _store(folder: Path) -> Store:
    return Store(f"sqlite:///{(folder / 'forecasting.db').as_posix()}", folder / "artifacts")


def _register(store: Store, mon: Monitoring, frame: pl.DataFrame, spec: Any, *, name: str = "m", h: int = 2,
              freq: Any = 1) -> None:
    result = train(frame, kind="forecast", spec=spec, workdir=store.artifacts_dir.parent / f"work-{name}", h=h,
                   freq=freq)
    info = store.register_version(name, tenant=T, spec=result.spec, kind="forecast", artifact_src_dir=result.artifact,
                                  fingerprint=result.fingerprint, metrics=result.metrics, exog=result.exog,
                                  max_h=result.max_h)
    mon.keep_training_data(info, frame)


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


# --------------------------------------------------------------------------- 1. one retrain per tick
def test_two_processes_on_one_store_run_each_scheduled_retrain_once_and_the_follower_takes_over(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two apps' worth of runner + monitoring + scheduler on one database (the runner lock is an flock: two
    descriptors conflict within one process as across processes): only the leader's scheduler runs jobs."""
    calls: list[tuple[str, str, float]] = []
    guard = threading.Lock()

    def fake_retrain(self: Monitoring, tenant: str, name: str, *, trigger: str = "manual") -> None:
        with guard:
            calls.append((threading.current_thread().name, trigger, time.monotonic()))

    one, two = _store(tmp_path), _store(tmp_path)
    history = pl.DataFrame({"unique_id": ["a"] * 8, "ds": list(range(1, 9)), "y": [1.0, 2, 3, 4, 5, 6, 7, 8]})
    _register(one, Monitoring(one), history, "naive")
    runners = [JobRunner(one, shared=True), JobRunner(two, shared=True)]
    mons = [Monitoring(one), Monitoring(two)]
    scheds = [RetrainScheduler(m, leads=lambda r=r: r.is_leader, poll_s=0.2) for m, r in zip(mons, runners)]
    mons[1].set_policy(T, "m", {"interval_s": 1})  # stored: each scheduler loads it at start (a restart)
    monkeypatch.setattr(Monitoring, "retrain", fake_retrain)
    try:
        for runner, sched in zip(runners, scheds):
            runner.recover()
            sched.start()
        assert [r.is_leader for r in runners] == [True, False]
        assert [s.leading for s in scheds] == [True, False]
        assert scheds[0].next_run(T, "m") is not None
        time.sleep(3.6)
        ticks = [c for c in calls if c[1] == "schedule"]
        assert 2 <= len(ticks) <= 4, ticks
        gaps = [b[2] - a[2] for a, b in zip(ticks, ticks[1:])]
        assert min(gaps) > 0.6, gaps  # never two runs of one tick
        # a retrain triggered in the follower (new observations) runs in the leader, once
        scheds[1].run_now(T, "m", "observations")
        _wait(lambda: any(c[1] == "observations" for c in calls), 5, "the triggered retrain")
        # the leader stops: the follower's runner takes the lock and its scheduler resumes the schedule
        scheds[0].shutdown()
        runners[0].shutdown(wait=False)
        _wait(lambda: scheds[1].leading, 6, "the follower's scheduler taking over")
        before = len(calls)
        _wait(lambda: len(calls) > before, 4, "a tick run by the new leader")
        time.sleep(1.5)
        ticks = [c for c in calls[before:] if c[1] == "schedule"]
        gaps = [b[2] - a[2] for a, b in zip(ticks, ticks[1:])]
        assert not gaps or min(gaps) > 0.6, gaps
        assert sum(c[1] == "observations" for c in calls) == 1
    finally:
        for sched in scheds:
            sched.shutdown()
        for runner in runners:
            runner.shutdown(wait=False)
        one.close()
        two.close()
