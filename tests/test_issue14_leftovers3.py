"""Leftovers of issue 14 (team 22, H2): ``POST .../retrain`` as a runner job, a registered version's ``max_h``
(a note where the model can forecast further, a 422 where it cannot), ``POST /v1/anomalies`` decoded strictly,
statistical models' progress as series fitted, and each server process's preload (the inline soak's p99)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import wait_job, wait_until
from litestar.testing import TestClient

from forecasting.api.app import create_app
from forecasting.api.settings import Settings
from forecasting.errors import CapabilityError
from forecasting.store import Store, default_locations

T = "default"
HOURS = [f"2024-01-{1 + i // 24:02d}T{i % 24:02d}:00:00" for i in range(24 * 8)]
DATA = {"unique_id": ["s0"] * len(HOURS), "ds": HOURS,
        "y": [50.0 + (i % 24) + 0.1 * (i % 7) for i in range(len(HOURS))]}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    state = tmp_path_factory.mktemp("state")
    from forecasting.service.training import train

    frame = pl.DataFrame(DATA).with_columns(pl.col("ds").str.to_datetime())
    with Store(*default_locations(state)) as store:  # registered without its data: nothing to retrain on
        result = train(frame, kind="forecast", spec="naive", workdir=state / "work", h=2, freq="1h")
        store.register_version("bare", tenant=T, spec=result.spec, kind="forecast", artifact_src_dir=None,
                               fingerprint=result.fingerprint, metrics=result.metrics, max_h=result.max_h)
    with TestClient(create_app(Settings(state_dir=state, max_train_seconds=120))) as c:
        r = c.post("/v1/models", json={"name": "m", "model": "naive", "data": DATA, "h": 24})
        assert wait_job(c, r.json()["id"])["state"] == "succeeded"
        yield c


# --------------------------------------------------------------------------- 1. POST .../retrain is a job
def test_post_retrain_answers_202_with_a_retrain_job_that_a_second_post_conflicts_with_and_cancel_stops(
        client: TestClient) -> None:
    """It ran in the request (minutes for a large challenger, no cancel, no time limit, outside the tenant's
    fair queue). Now: 202 with the job (kind ``retrain``, trigger ``manual``) and its Location, as POST /v1/models;
    a second POST while it runs is a 409 naming that job; a cancel kills it: no version, no decision."""
    slow = {"name": "xgboost", "params": {"n_estimators": 20000, "max_depth": 10, "learning_rate": 0.001,
                                          "conformal_windows": 0}}
    assert client.put("/v1/models/m/retraining", json={"model": slow}).status_code == 200
    r = client.post("/v1/models/m/retrain")
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert (job["kind"], job["state"], job["request"], job["result"]) == (
        "retrain", "queued", {"name": "m", "kind": "retrain", "trigger": "manual"}, None)
    again = client.post("/v1/models/m/retrain")
    assert again.status_code == 409, again.text
    assert (again.json()["field"], again.json()["details"]) == ("model", {"model": "m", "job_id": job["id"]})
    assert again.json()["detail"].startswith("a retrain of model 'm' is already ")
    assert again.json()["detail"].endswith(f"(job {job['id']}): follow it at /v1/jobs/{job['id']} or cancel it first")
    wait_until(lambda: client.get(f"/v1/jobs/{job['id']}").json()["state"] == "running", 60, "the retrain to start")
    assert client.post(f"/v1/jobs/{job['id']}/cancel").json()["state"] == "cancelled"
    time.sleep(1.0)
    assert client.get(f"/v1/jobs/{job['id']}").json()["state"] == "cancelled"
    assert [v["version"] for v in client.get("/v1/models/m").json()["versions"]] == [1]
    assert client.get("/v1/models/m/decisions").json() == []


def test_a_retrain_job_records_its_manual_decision_and_its_result_is_the_challenger(client: TestClient) -> None:
    """Seasonal naive against the naive champion on hourly data with a daily cycle: the challenger wins on the
    last 24 hours (MASE 1.024 against 34.61, hand-checkable: naive repeats the last hour, 23 steps of 1 an hour
    apart plus the jump back), is registered as version 2 and ``production`` moves to it."""
    seasonal = {"name": "seasonal_naive", "params": {"season_length": 24}}
    assert client.put("/v1/models/m/retraining", json={"model": seasonal}).status_code == 200
    r = client.post("/v1/models/m/retrain")
    assert r.status_code == 202, r.text
    done = wait_job(client, r.json()["id"])
    assert done["state"] == "succeeded", done
    assert done["result"] == {"model": "m", "version": 2, "ref": "m@2", "location": "/v1/models/m"}
    assert done["message"] == "decision 1: challenger mase 1.024 vs champion 34.61: the challenger wins"
    decision = client.get("/v1/models/m/decisions").json()[0]
    assert (decision["trigger"], decision["champion_version"], decision["challenger_version"],
            decision["promoted"]) == ("manual", 1, 2, True)
    assert client.get("/v1/models/m").json()["aliases"] == {"production": 2}
    # the champion's own spec on its own data now: "no change", and the job names no version it did not register
    assert client.put("/v1/models/m/retraining", json={}).status_code == 200
    same = wait_job(client, client.post("/v1/models/m/retrain").json()["id"])
    assert same["state"] == "succeeded" and "no change" in same["message"]
    assert (same["model"], same["version"], same["result"]) == (None, None, None)


def test_what_a_retrain_cannot_do_is_answered_at_once_not_as_a_failed_job(client: TestClient) -> None:
    r = client.post("/v1/models/nope/retrain")
    assert (r.status_code, r.json()["field"]) == (404, "model")
    r = client.post("/v1/models/bare/retrain")
    assert r.status_code == 422, r.text
    assert (r.json()["field"], r.json()["detail"]) == (
        "model", "model 'bare' has no stored data to retrain on: post observations first")
    assert not [j for j in client.get("/v1/jobs").json() if j["request"].get("name") in ("nope", "bare")]


def test_the_openapi_document_says_retrain_answers_202_with_a_job(tmp_path: Path) -> None:
    document = create_app(Settings(state_dir=tmp_path)).openapi_schema.to_schema()
    responses = document["paths"]["/v1/models/{name}/retrain"]["post"]["responses"]
    assert sorted(responses) == ["202", "400", "404", "409", "413", "415", "422", "429"]
    assert responses["202"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/JobOut"}


# --------------------------------------------------------------------------- 2. h beyond a version's max_h
def test_past_max_h_a_recursive_tree_answers_with_a_note_and_a_direct_tree_is_a_422_naming_h(tmp_path: Path) -> None:
    """Decided with the README: ``max_h`` is what the hold-out measured, not a limit of the model. A recursive
    tree forecasts further (each step feeds the next lags) and says the steps were not measured; a direct tree
    has no model for the steps past its horizon and refuses with its own error naming ``h``."""
    from forecasting.service.core import Limits
    from forecasting.service.registered import RegisteredModels
    from forecasting.service.training import train

    t = np.arange(96)
    frame = pl.concat([pl.DataFrame({"unique_id": u, "ds": t, "y": 10 + 5 * np.sin(2 * np.pi * t / 12) + k})
                       for k, u in enumerate("ab")])
    store = Store(f"sqlite:///{(tmp_path / 'db.sqlite').as_posix()}", tmp_path / "artifacts")
    services = RegisteredModels(store=store, runner=None, limits=Limits())  # type: ignore[arg-type]
    try:
        for name, strategy in (("rec", "recursive"), ("dir", "direct")):
            spec = {"name": "xgboost", "params": {"n_estimators": 5, "season_length": 12, "horizon": 4,
                                                  "strategy": strategy, "conformal_windows": 0}}
            result = train(frame, kind="forecast", spec=spec, workdir=tmp_path / name, h=4, freq=1)
            store.register_version(name, tenant=T, spec=result.spec, kind="forecast",
                                   artifact_src_dir=result.artifact, fingerprint=result.fingerprint,
                                   metrics=result.metrics, exog=result.exog, max_h=result.max_h)
        answer = services.forecast(T, "rec", h=6, level=[])
        assert answer.forecasts.height == 12
        assert [n for n in answer.notes if "validated for" in n] == [
            "h=6 is beyond the 4 steps version rec@1 was validated for (its metrics' window): the steps after 4 "
            "were not measured"]
        with pytest.raises(CapabilityError) as err:
            services.forecast(T, "dir", h=6, level=[])
        assert (err.value.field, err.value.message) == (
            "h", "direct strategy was trained for h <= 4, got h=6; refit with a larger horizon")
        assert services.forecast(T, "dir", h=4, level=[]).forecasts.height == 8
    finally:
        store.close()


# --------------------------------------------------------------------------- 3. strict anomalies body
@pytest.mark.parametrize(("body", "field", "message"), [
    ({"level": "99"}, "level", "Expected `float`, got `str`"),
    ({"freq": 1.5}, "freq", "Expected `int | str | null`, got `float`"),
    ({"method": 1}, "method", "Expected `str`, got `int`"),
])
def test_post_anomalies_decodes_its_body_strictly_like_forecast(client: TestClient, body: dict[str, Any],
                                                                field: str, message: str) -> None:
    """``"level": "99"`` was coerced to 99.0 and answered 200; now a 400 naming the field, as /v1/forecast."""
    r = client.post("/v1/anomalies", json={"data": DATA, **body})
    assert r.status_code == 400, r.text
    assert (r.json()["field"], r.json()["detail"]) == (field, f"{field}: {message}")


def test_post_anomalies_still_answers_a_well_typed_body(client: TestClient) -> None:
    r = client.post("/v1/anomalies", json={"data": DATA, "model": "naive", "level": 95})
    assert r.status_code == 200, r.text
    assert (r.json()["points"], r.json()["level"], r.json()["method"]) == (192, 95.0, "normal")


# --------------------------------------------------------------------------- 4. statistical progress
def _panel(n: int) -> pl.DataFrame:
    t = np.arange(60)
    return pl.concat([pl.DataFrame({"unique_id": f"s{k:02d}", "ds": t, "y": 10 + 5 * np.sin(2 * np.pi * t / 12) + k})
                      for k in range(n)])


def test_a_statistical_models_fit_reports_series_fitted_in_process_and_per_chunk_from_workers(monkeypatch) -> None:
    from forecasting.data import validate_panel
    from forecasting.models import local
    from forecasting.models.base import arm
    from forecasting.models.registry import ModelSpec, make_model

    # straight to the workers with n_jobs=2 (a fit this small is otherwise done in this process: test_tester22)
    monkeypatch.setattr(local, "_PROBE_S", 0.0)
    monkeypatch.setattr(local, "_POOL_MIN_S", {"fork": 0.0, "spawn": 0.0, "forkserver": 0.0})

    panel = validate_panel(_panel(20), freq=1)
    seen: dict[int, list[tuple[float, str]]] = {}
    for n_jobs in (1, 2):
        model = make_model(ModelSpec(name="seasonal_naive", params={"season_length": 12}), freq=1)
        assert model.capabilities.reports_progress
        model.n_jobs = n_jobs
        calls: list[tuple[float, str]] = []
        arm(model, progress=lambda f, m, calls=calls: calls.append((f, m)))
        model.fit(panel)
        seen[n_jobs] = calls
    assert seen[1] == [(k / 20, f"series {k}/20 fitted") for k in range(1, 21)]
    # two workers, 8 chunks of 3 and 2 series (equal lengths), reported as each comes back, in any order
    done = [int(re.fullmatch(r"series (\d+)/20 fitted", m).group(1)) for _, m in seen[2]]  # type: ignore[union-attr]
    assert len(done) == 8 and done[-1] == 20 and [f for f, _ in seen[2]] == [d / 20 for d in done]
    assert sorted(b - a for a, b in zip([0, *done], done)) == [2, 2, 2, 2, 3, 3, 3, 3]


def test_a_training_jobs_hold_out_fit_of_a_statistical_model_moves_by_series_between_015_and_03(
        tmp_path: Path) -> None:
    """It showed only the seconds spent in the step (the heartbeat); now each series fitted moves it."""
    from forecasting.service.training import train

    steps: list[tuple[float, str]] = []
    train(_panel(20), kind="forecast", spec={"name": "seasonal_naive", "params": {"season_length": 12}},
          workdir=tmp_path, h=6, freq=1, step=lambda p, m: steps.append((round(p, 4), m)))
    holdout = [s for s in steps if "series" in s[1] and s[1].startswith("hold-out fit")]
    assert holdout == [(round(0.15 + 0.15 * k / 20, 4), f"hold-out fit: window 1 of 1: series {k}/20 fitted")
                       for k in range(1, 21)]


# --------------------------------------------------------------------------- 5. the inline soak's p99
def test_each_server_process_preloads_before_it_serves_unless_told_not_to(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The inline soak's p99 of 9.9 s (wrk, 16 clients, --workers 2) was one cold process: its first forecast
    imported the statistical stack while 7 connections waited 4.7 s behind it, which wrk's coordinated-omission
    correction (stats_correct) spread over ~400 synthetic samples (server-side p99: 230 ms). Each process now
    makes one small forecast in its startup, before uvicorn accepts connections there."""
    import forecasting.api.app as app_module

    calls: list[str] = []
    monkeypatch.setattr(app_module, "preload", lambda: calls.append("preload") or 0.25)
    with TestClient(create_app(Settings(state_dir=tmp_path / "a"))) as c:
        assert calls == ["preload"]  # at startup, before any request
        assert c.get("/healthz").status_code == 200
    assert calls == ["preload"]
    with TestClient(create_app(Settings(state_dir=tmp_path / "b", preload=False))):
        assert calls == ["preload"]
    assert Settings.from_env({"FORECASTING_PRELOAD": "false"}).preload is False
    assert Settings.from_env({}).preload is True
    with pytest.raises(ValueError, match="FORECASTING_PRELOAD must be one of true, false, got 'no'"):
        Settings.from_env({"FORECASTING_PRELOAD": "no"})


def test_preload_imports_what_a_first_inline_forecast_needs_in_a_fresh_process() -> None:
    """In a new interpreter: the app alone imports no statistical library; after :func:`preload` a 700-point
    seasonal-naive forecast (the soak's request) imports no new top-level module."""
    import subprocess
    import sys

    code = """
import sys
import forecasting.api.app
assert "statsforecast" not in sys.modules, "the app imports statsforecast by itself"
from forecasting.service.core import forecast, preload
preload()
before = {m.split(".")[0] for m in sys.modules}
y = [100.0 + (i % 24) for i in range(700)]
forecast({"unique_id": ["a"] * 700, "ds": list(range(700)), "y": y}, model="seasonal_naive", h=48, level=[80, 95])
print(sorted({m.split(".")[0] for m in sys.modules} - before))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
