"""Leftovers of issues 14, 16 and 17 (team 21, H5): registered hierarchies refused where they would be treated as
plain models, scheduled retrains as jobs of the runner, and boosting-round progress of the tree models."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl
import pytest
from conftest import wait_job, wait_until
from litestar.testing import TestClient

from forecasting.api.app import create_app
from forecasting.api.settings import Settings
from forecasting.errors import CapabilityError
from forecasting.models.base import arm
from forecasting.service.core import Limits
from forecasting.service.hierarchy import training_request
from forecasting.service.monitoring import Monitoring
from forecasting.service.registered import RegisteredModels
from forecasting.service.training import train
from forecasting.store import Store

T = "default"


def _bottom() -> pl.DataFrame:
    """Four bottom series (states A, B; two regions each), 24 monthly points."""
    rows = []
    for k, (state, region) in enumerate([("A", "a1"), ("A", "a2"), ("B", "b1"), ("B", "b2")]):
        rows.append(pl.DataFrame({"state": state, "region": region,
                                  "ds": pl.date_range(pl.date(2020, 1, 1), pl.date(2021, 12, 1), "1mo", eager=True),
                                  "y": 10.0 + 3 * k + np.arange(24) % 12}))
    return pl.concat(rows)


# --------------------------------------------------------------------------- 1. registered hierarchies
def test_a_version_trained_over_a_hierarchy_is_refused_by_explain_report_export_and_retrain(tmp_path: Path) -> None:
    """explain, report, ONNX export and retrain would all treat it as a plain model (unreconciled answers, or a
    retrain registering a plain model that production then serves): each refuses with a CapabilityError naming
    the model, the use, why and what to do instead; a plain version of the same store is unaffected."""
    store = Store(f"sqlite:///{(tmp_path / 'forecasting.db').as_posix()}", tmp_path / "artifacts")
    services = RegisteredModels(store=store, runner=None, limits=Limits())  # type: ignore[arg-type]
    monitoring = Monitoring(store)
    try:
        data, spec = training_request(_bottom(), {"nested": "state/region", "methods": ["bottom_up", "ols"]},
                                      "xgboost")
        result = train(data, kind="forecast", spec=msgspec.to_builtins(spec), workdir=tmp_path / "w", h=4)
        store.register_version("tree", tenant=T, spec=result.spec, kind="forecast", artifact_src_dir=result.artifact,
                               fingerprint=result.fingerprint, metrics=result.metrics, exog=result.exog,
                               max_h=result.max_h)
        calls: dict[str, Callable[[], Any]] = {
            "explain": lambda: services.explain(T, "tree", h=2),
            "report": lambda: services.report(T, "tree", h=2),
            "export": lambda: services.onnx_archive(T, "tree"),
            "retrain": lambda: monitoring.retrain(T, "tree"),
        }
        for use, call in calls.items():
            with pytest.raises(CapabilityError) as err:
                call()
            assert err.value.field == "model" and err.value.details == {"hierarchy": "bottom_up, ols", "use": use}
            assert err.value.message.startswith(
                f"model 'tree@1' was trained over a hierarchy (reconciled: bottom_up, ols), so {use} is refused: ")
        assert "forecast it reconciled (POST /v1/models/tree@1/forecast)" in str(
            pytest.raises(CapabilityError, calls["explain"]).value)
        with pytest.raises(CapabilityError, match="so retrain is refused: a retrain would register a plain model"):
            monitoring.set_policy(T, "tree", {"interval_s": 60})
        monitoring.set_policy(T, "tree", {})  # stopping retraining stays allowed
        assert monitoring.policy(T, "tree") is None
        # the same model without a hierarchy still explains (the check looks at the version, not the family)
        plain = train(_bottom().with_columns(unique_id=pl.col("state") + "/" + pl.col("region"))
                      .select("unique_id", "ds", "y"), kind="forecast", spec="xgboost", workdir=tmp_path / "p", h=4)
        store.register_version("flat", tenant=T, spec=plain.spec, kind="forecast", artifact_src_dir=plain.artifact,
                               fingerprint=plain.fingerprint, metrics=plain.metrics, exog=plain.exog,
                               max_h=plain.max_h)
        assert services.explain(T, "flat", h=2).explanation.n_rows == 8
    finally:
        monitoring.close()
        store.close()


# --------------------------------------------------------------------------- 2 + 1 over HTTP: one app
@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(Settings(state_dir=tmp_path_factory.mktemp("state"), max_train_seconds=120))
    with TestClient(app) as c:
        yield c


def test_http_refuses_a_hierarchical_versions_explain_report_onnx_and_retraining_with_422s(
        client: TestClient) -> None:
    frame = _bottom()
    data = {c: [str(v) for v in frame[c].to_list()] if c != "y" else frame[c].to_list() for c in frame.columns}
    r = client.post("/v1/models", json={"name": "tot", "model": "naive", "data": data, "h": 4,
                                        "hierarchy": {"nested": "state/region", "methods": ["bottom_up"]}})
    assert r.status_code == 202, r.text
    assert wait_job(client, r.json()["id"])["state"] == "succeeded"
    answers = {
        "explain": client.post("/v1/models/tot/explain", json={"h": 2}),
        "report": client.get("/v1/models/tot/report", params={"h": 2}),
        "export": client.get("/v1/models/tot/onnx"),
        "retrain": client.post("/v1/models/tot/retrain"),
    }
    for use, answer in answers.items():
        assert answer.status_code == 422, (use, answer.text)
        body = answer.json()
        assert body["field"] == "model", body
        assert body["detail"].startswith(f"model 'tot@1' was trained over a hierarchy (reconciled: bottom_up), so "
                                         f"{use} is refused: "), body
    r = client.put("/v1/models/tot/retraining", json={"interval_s": 60})
    assert r.status_code == 422 and "so retrain is refused" in r.json()["detail"], r.text


def test_a_scheduled_tick_queues_a_retrain_job_that_shows_progress_and_cancel_stops_it(client: TestClient) -> None:
    """The leader's scheduler no longer retrains in its thread: each tick queues a job of kind ``retrain`` in the
    tenant's queue, listed by GET /v1/jobs, moving through the challenger's hold-out fit (an XGBoost challenger
    reports its boosting rounds), and a cancel kills its worker: no version, no decision, the lock freed so the
    next tick's retrain runs and records its decision (trigger ``schedule``) as before."""
    hours = [f"2024-01-{1 + i // 24:02d}T{i % 24:02d}:00:00" for i in range(24 * 8)]
    data = {"unique_id": ["s0"] * len(hours), "ds": hours,
            "y": [50.0 + (i % 24) + 0.1 * (i % 7) for i in range(len(hours))]}
    r = client.post("/v1/models", json={"name": "hourly", "model": "naive", "data": data, "h": 24})
    assert wait_job(client, r.json()["id"])["state"] == "succeeded"
    slow = {"name": "xgboost", "params": {"n_estimators": 20000, "max_depth": 10, "learning_rate": 0.001,
                                          "conformal_windows": 0}}
    assert client.put("/v1/models/hourly/retraining", json={"interval_s": 1, "model": slow}).status_code == 200

    def retrain_job() -> Any:
        jobs = client.get("/v1/jobs").json()
        jobs = jobs.get("jobs", jobs) if isinstance(jobs, dict) else jobs
        return next((j for j in jobs if j["kind"] == "retrain"), None)

    job = wait_until(retrain_job, 30, "a retrain job queued by a tick")
    assert job["request"] == {"name": "hourly", "kind": "retrain", "trigger": "schedule"}
    moving = wait_until(lambda: (j := client.get(f"/v1/jobs/{job['id']}").json())["progress"] > 0.1 and j, 120,
                        "the challenger's hold-out fit reporting rounds")
    assert moving["state"] == "running" and moving["message"].startswith("challenger hold-out fit: "), moving
    assert client.put("/v1/models/hourly/retraining", json={}).status_code == 200  # no more ticks
    assert client.post(f"/v1/jobs/{job['id']}/cancel").json()["state"] == "cancelled"
    time.sleep(1.0)
    assert client.get(f"/v1/jobs/{job['id']}").json()["state"] == "cancelled"
    assert [v["version"] for v in client.get("/v1/models/hourly").json()["versions"]] == [1]
    assert client.get("/v1/models/hourly/decisions").json() in ([], {"decisions": []})

    # the next tick (the champion's own spec on its own data): a job again, with its decision recorded
    assert client.put("/v1/models/hourly/retraining", json={"interval_s": 1}).status_code == 200
    nxt = wait_until(lambda: (j := retrain_job()) and j["id"] != job["id"] and j, 30, "the next tick's job")
    done = wait_job(client, nxt["id"])
    client.put("/v1/models/hourly/retraining", json={})
    assert done["state"] == "succeeded", done
    assert done["message"].startswith("decision ") and "no change" in done["message"], done
    decisions = client.get("/v1/models/hourly/decisions").json()
    decisions = decisions.get("decisions", decisions) if isinstance(decisions, dict) else decisions
    assert decisions[0]["trigger"] == "schedule" and decisions[0]["challenger_version"] is None


# --------------------------------------------------------------------------- 3. tree progress
@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
def test_tree_models_report_each_boosting_round_monotonically_to_one(name: str) -> None:
    from forecasting.data import validate_panel
    from forecasting.models.registry import ModelSpec, make_model

    pytest.importorskip(name)
    t = np.arange(120)
    frame = pl.concat([pl.DataFrame({"unique_id": u, "ds": t, "y": 10 + 5 * np.sin(2 * np.pi * t / 12) + 0.1 * t + k})
                       for k, u in enumerate("abc")])
    model = make_model(ModelSpec(name=name, params={"n_estimators": 7, "season_length": 12}), freq=1)
    assert model.capabilities.reports_progress
    seen: list[tuple[float, str]] = []
    arm(model, progress=lambda f, m: seen.append((f, m)))
    model.fit(validate_panel(frame, freq=1))
    # all the data, then the conformal windows the series are long enough for: 4 trainings of 7 rounds
    assert [f for f, _ in seen] == [k / 28 for k in range(1, 29)] + [1.0]
    assert seen[0][1] == "boosting round 1/7 (1/28 in all)" and seen[-2][1] == "boosting round 7/7 (28/28 in all)"
    assert seen[-1] == (1.0, "fitted")


def test_a_training_jobs_hold_out_fit_of_xgboost_moves_between_015_and_03(tmp_path: Path) -> None:
    calls: list[tuple[float, str]] = []
    hours = 24 * 6
    frame = pl.DataFrame({"unique_id": ["s0"] * hours, "ds": list(range(hours)),
                          "y": [50.0 + (i % 24) + 0.1 * (i % 7) for i in range(hours)]})
    spec = {"name": "xgboost", "params": {"n_estimators": 200, "conformal_windows": 0, "season_length": 24}}
    train(frame, kind="forecast", spec=spec, workdir=tmp_path, h=24, freq=1, step=lambda p, m: calls.append((p, m)))
    hold = [(p, m) for p, m in calls if m.startswith("hold-out fit: window 1 of 1: boosting round")]
    # one report per 1 % of the 200 rounds (every second round), mapped into the hold-out step's 0.15-0.3
    assert [round(p, 6) for p, _ in hold] == [round(0.15 + 0.15 * k / 200, 6) for k in range(2, 201, 2)]
    assert hold[-1][1] == "hold-out fit: window 1 of 1: boosting round 200/200 (200/200 in all)"
    assert [p for p, _ in calls] == sorted(p for p, _ in calls)  # never backwards


def test_two_processes_queue_one_retrain_job_per_tick_from_the_leader(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two apps' worth of runner + monitoring + scheduler with ``runner=`` on one database: only the leader's
    scheduler queues, one ``retrain`` job per tick, in its own runner (the follower's scheduler stays paused)."""
    import threading

    from forecasting.jobs import JobRunner
    from forecasting.service.monitoring import RetrainScheduler

    calls: list[tuple[int, str, float]] = []
    guard = threading.Lock()

    def fake_submit(self: JobRunner, tenant: str, name: str, *, trigger: str = "schedule") -> None:
        with guard:
            calls.append((id(self), trigger, time.monotonic()))

    one, two = (Store(f"sqlite:///{(tmp_path / 'forecasting.db').as_posix()}", tmp_path / "artifacts")
                for _ in range(2))
    frame = pl.DataFrame({"unique_id": ["a"] * 8, "ds": list(range(1, 9)), "y": [1.0, 2, 3, 4, 5, 6, 7, 8]})
    result = train(frame, kind="forecast", spec="naive", workdir=tmp_path / "w", h=2, freq=1)
    one.register_version("m", tenant=T, spec=result.spec, kind="forecast", artifact_src_dir=result.artifact,
                         fingerprint=result.fingerprint, metrics=result.metrics, exog=result.exog, max_h=result.max_h)
    runners = [JobRunner(one, shared=True), JobRunner(two, shared=True)]
    scheds = [RetrainScheduler(Monitoring(s), leads=lambda r=r: r.is_leader, poll_s=0.2, runner=r)
              for s, r in zip((one, two), runners, strict=True)]
    scheds[1].monitoring.set_policy(T, "m", {"interval_s": 1})
    monkeypatch.setattr(JobRunner, "submit_retrain", fake_submit)
    try:
        for runner, sched in zip(runners, scheds, strict=True):
            runner.recover()
            sched.start()
        time.sleep(3.6)
        assert 2 <= len(calls) <= 4, calls
        assert {c[0] for c in calls} == {id(runners[0])} and {c[1] for c in calls} == {"schedule"}
        gaps = [b[2] - a[2] for a, b in zip(calls, calls[1:])]
        assert min(gaps) > 0.6, gaps  # never two jobs for one tick
    finally:
        for sched in scheds:
            sched.shutdown()
        for runner in runners:
            runner.shutdown(wait=False)
        one.close()
        two.close()


def test_a_tick_while_the_models_retrain_job_is_unfinished_queues_none(tmp_path: Path) -> None:
    from forecasting.jobs import JobRunner

    store = Store(f"sqlite:///{(tmp_path / 'forecasting.db').as_posix()}", tmp_path / "artifacts")
    runner = JobRunner(store, shared=True)  # never recovered: a follower, it only writes jobs for a leader
    try:
        first = runner.submit_retrain(T, "m", trigger="drift")
        assert first is not None and runner.submit_retrain(T, "m") is None
        assert runner.submit_retrain(T, "other") is not None and runner.submit_retrain("acme", "m") is not None
        job = store.get_job(first, T)
        assert (job.kind, job.state, job.request) == ("retrain", "queued",
                                                      {"name": "m", "kind": "retrain", "trigger": "drift"})
    finally:
        runner.shutdown(wait=False)
        store.close()


def test_the_cli_retrain_of_a_version_over_a_hierarchy_exits_2_naming_why(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from forecasting.cli import app
    from forecasting.store import default_locations

    with Store(*default_locations(tmp_path)) as store:
        data, spec = training_request(_bottom(), {"nested": "state/region", "methods": ["bottom_up"]}, "naive")
        result = train(data, kind="forecast", spec=msgspec.to_builtins(spec), workdir=tmp_path / "w", h=4)
        store.register_version("tot", tenant=T, spec=result.spec, kind="forecast", artifact_src_dir=result.artifact,
                               fingerprint=result.fingerprint, metrics=result.metrics, max_h=result.max_h)
    monkeypatch.setenv("FORECASTING_STATE_DIR", str(tmp_path))
    done = CliRunner().invoke(app, ["retrain", "--model", "tot"])
    assert done.exit_code == 2, done.output
    assert "model 'tot@1' was trained over a hierarchy (reconciled: bottom_up), so retrain is refused" in " ".join(
        done.output.split())
