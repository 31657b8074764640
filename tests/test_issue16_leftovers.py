"""Issue 16 leftovers: one retrain per tick with several processes on one store, warm starts of boosters,
LightGBM served on one thread, the CLI's --tenant and the accuracy range checks."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import wait_until

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
        wait_until(lambda: any(c[1] == "observations" for c in calls), 5, "the triggered retrain")
        # the leader stops: the follower's runner takes the lock and its scheduler resumes the schedule
        scheds[0].shutdown()
        runners[0].shutdown(wait=False)
        wait_until(lambda: scheds[1].leading, 6, "the follower's scheduler taking over")
        before = len(calls)
        wait_until(lambda: len(calls) > before, 4, "a tick run by the new leader")
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


# --------------------------------------------------------------------------- 2. warm starts
def _series(n: int, *, start: int = 1) -> pl.DataFrame:
    """Two integer-stepped series with a season of 24 (no noise: exact repeats are avoided by a trend)."""
    import numpy as np

    t = np.arange(start, start + n)
    rows = [pl.DataFrame({"unique_id": uid, "ds": t, "y": base + 0.05 * t + 8 * np.sin(2 * np.pi * t / 24)})
            for uid, base in (("a", 50.0), ("b", 80.0))]
    return pl.concat(rows)


def _small(name: str) -> dict[str, Any]:
    return {"name": name, "params": {"season_length": 24, "n_estimators": 8, "max_depth": 2, "horizon": 12}}


@pytest.mark.parametrize("family", ["xgboost", "lightgbm"])
def test_a_warm_retrain_continues_the_champions_boosters(tmp_path: Path, family: str) -> None:
    from forecasting.loading import load_version

    pytest.importorskip(family)
    store = _store(tmp_path)
    mon = Monitoring(store)
    try:
        _register(store, mon, _series(24 * 6), _small(family), h=12)
        mon.observe(T, "m", _series(24, start=24 * 6 + 1))
        mon.set_policy(T, "m", {"warm_start": True, "warm_rounds": 3, "h": 12})
        decision = mon.retrain(T, "m")
        assert decision.detail["warm_start"] == {"from_version": 1, "rounds": 3}
        assert decision.challenger_score is not None and decision.champion_score is not None
        champion, challenger = (load_version(store, store.get(f"m@{v}", tenant=T)) for v in (1, 2))
        trees = [(b.num_boosted_rounds() if family == "xgboost" else b.current_iteration())
                 for b in (champion.boosters_[0], challenger.boosters_[0])]  # type: ignore[union-attr]
        assert trees == [8, 11]  # 8 rounds, then 3 more on all the data
        assert challenger.scores_ is not None and challenger.scores_.shape == champion.scores_.shape  # type: ignore[union-attr]
        assert store.get("m@2", tenant=T).metrics["warm_start"] == {"from_version": 1, "rounds": 3}
    finally:
        store.close()


def test_warm_start_is_refused_for_families_that_cannot_continue(tmp_path: Path) -> None:
    from forecasting.errors import CapabilityError, InvalidParameterError
    from forecasting.service.monitoring import _warm_family

    store = _store(tmp_path)
    mon = Monitoring(store)
    try:
        _register(store, mon, _series(24 * 3), "naive", h=2)
        with pytest.raises(CapabilityError) as err:
            mon.set_policy(T, "m", {"warm_start": True})
        assert err.value.message == ("warm_start: model 'naive' cannot continue from the champion; warm starts "
                                     "are for xgboost and lightgbm boosters: set warm_start to false for a full "
                                     "retrain")
        assert err.value.field == "warm_start"
        with pytest.raises(InvalidParameterError, match="warm_start continues the champion's own model"):
            mon.set_policy(T, "m", {"warm_start": True, "model": "xgboost"})
        with pytest.raises(InvalidParameterError, match="warm_rounds must be an integer >= 1, got 0"):
            mon.set_policy(T, "m", {"warm_rounds": 0})
        with pytest.raises(CapabilityError, match=r"continued training of the networks, NHITS/TFT/TSMixer, is not"):
            _warm_family("nhits")
        assert mon.policy(T, "m") is None  # nothing kept from the refused policies
    finally:
        store.close()


# --------------------------------------------------------------------------- 3. LightGBM served on one thread
def test_served_lightgbm_predicts_with_the_per_request_thread_limit(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    lgb = pytest.importorskip("lightgbm")
    from forecasting.loading import load, load_version
    from forecasting.runtime import SERVING_THREADS

    store = _store(tmp_path)
    try:
        _register(store, Monitoring(store), _series(24 * 4), _small("lightgbm"), h=12)
        info = store.get("m", tenant=T)
        served = load_version(store, info)
        assert served.predict_threads == SERVING_THREADS == 1  # type: ignore[union-attr]
        seen: list[Any] = []
        original = lgb.Booster.predict

        def spy(self: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
            seen.append(kwargs.get("num_threads"))
            return original(self, data, *args, **kwargs)

        monkeypatch.setattr(lgb.Booster, "predict", spy)
        served.predict(3, history=_series(24 * 4))
        assert seen and set(seen) == {1}
        seen.clear()
        plain = load(store.artifacts_dir / info.artifact)  # type: ignore[operator]
        assert plain.predict_threads is None  # type: ignore[union-attr]  # outside serving: every core
        plain.predict(3, history=_series(24 * 4))
        assert seen and set(seen) == {None}
    finally:
        store.close()


# --------------------------------------------------------------------------- 4. --tenant and the accuracy range
def test_cli_monitoring_commands_take_a_tenant_and_check_the_range(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from forecasting.cli import app
    from forecasting.store import default_locations

    with Store(*default_locations(tmp_path)) as store:
        result = train(_series(48), kind="forecast", spec="naive", workdir=tmp_path / "work", h=2, freq=1)
        info = store.register_version("m", tenant="acme", spec=result.spec, kind="forecast", artifact_src_dir=None,
                                      fingerprint=result.fingerprint,
                                      metrics=result.metrics, max_h=result.max_h)
        Monitoring(store).keep_training_data(info, _series(48))
    monkeypatch.setenv("FORECASTING_STATE_DIR", str(tmp_path))
    new = tmp_path / "new.csv"
    _series(2, start=49).write_csv(new)
    runner = CliRunner()
    done = runner.invoke(app, ["observe", "--model", "m", "--input", str(new), "--tenant", "acme"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["rows"] == 4
    missing = runner.invoke(app, ["observe", "--model", "m", "--input", str(new)])  # tenant "default"
    assert missing.exit_code == 2 and "m" in missing.output and "not found" in missing.output.lower()
    acc = runner.invoke(app, ["accuracy", "--model", "m", "--tenant", "acme", "--json"])
    assert acc.exit_code == 0 and json.loads(acc.output) == []  # nothing served yet
    bad = runner.invoke(app, ["accuracy", "--model", "m", "--tenant", "acme", "--start", "9", "--end", "3"])
    assert bad.exit_code == 2 and "start (9) is after end (3): the range holds no point" in bad.output
    bad = runner.invoke(app, ["accuracy", "--model", "m", "--tenant", "acme", "--start", "2024-01-01"])
    assert bad.exit_code == 2
    assert "start must be a timestamp (ISO 8601) or an integer step like the stored ds" in bad.output
    odd = runner.invoke(app, ["retrain", "--model", "m", "--tenant", "../acme"])
    assert odd.exit_code == 2 and "--tenant must be a tenant name" in odd.output


def test_accuracy_bounds_are_422_before_anything_is_observed_or_served(tmp_path: Path) -> None:
    from litestar.testing import TestClient

    from forecasting.api.app import create_app
    from forecasting.api.settings import Settings
    from forecasting.store import default_locations

    hourly = _series(48).with_columns((pl.datetime(2024, 1, 1) + pl.duration(hours=pl.col("ds") - 1)).alias("ds"))
    with Store(*default_locations(tmp_path)) as store:  # registered without its data: no observations
        result = train(hourly, kind="forecast", spec="naive", workdir=tmp_path / "work", h=2, freq="1h")
        store.register_version("hr", tenant=T, spec=result.spec, kind="forecast", artifact_src_dir=None,
                                      fingerprint=result.fingerprint,
                               metrics=result.metrics, max_h=result.max_h)
    with TestClient(create_app(Settings(state_dir=tmp_path))) as client:
        r = client.get("/v1/models/hr/accuracy", params={"start": "2024-01-03", "end": "2024-01-02"})
        assert r.status_code == 422, r.text
        assert (r.json()["field"], r.json()["detail"]) == (
            "start", "start (2024-01-03) is after end (2024-01-02): the range holds no point")
        r = client.get("/v1/models/hr/accuracy", params={"end": "yesterday"})
        assert r.status_code == 422 and r.json()["field"] == "end"
        r = client.get("/v1/models/hr/accuracy", params={"start": "2024-01-02", "end": "2024-01-03"})
        assert r.status_code == 200, r.text
        r = client.get("/v1/models/hr/observations", params={"start": "2024-01-03", "end": "2024-01-02"})
        assert r.status_code == 422 and r.json()["field"] == "start"
        r = client.put("/v1/models/hr/retraining", json={"warm_start": True})  # a statistical champion
        assert r.status_code == 422 and r.json()["field"] == "warm_start"
        assert r.json()["detail"].startswith("warm_start: model 'naive' cannot continue from the champion")
