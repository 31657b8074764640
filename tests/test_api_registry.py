"""Registered models over HTTP: training jobs, forecasts by reference, explanations, reports, tenants.

One app (module scope) on a temporary state folder with two API keys (tenants ``acme`` and
``beta``); training runs in the real worker processes of the app's job runner, with small
XGBoost models so the module stays fast.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import wait_job
from litestar.testing import TestClient

from forecasting.api.app import create_app
from forecasting.api.settings import Settings, hash_key, parse_api_keys

PROBLEM = "application/problem+json"
KEY_A, KEY_B = "key-acme-123", "key-beta-456"
A = {"Authorization": f"Bearer {KEY_A}"}
B = {"X-API-Key": KEY_B}
XGB = {"name": "xgboost", "params": {"n_estimators": 20, "max_depth": 3, "conformal_windows": 0}}


def hourly(n_series: int = 2, n: int = 24 * 10, *, seed: int = 0, start: str = "2024-01-01") -> dict[str, list[Any]]:
    """Hourly series with a daily season (columns form)."""
    rng = np.random.default_rng(seed)
    ds = pl.datetime_range(pl.lit(start).str.to_datetime(), pl.lit(start).str.to_datetime() + pl.duration(hours=n - 1),
                           "1h", eager=True).dt.strftime("%Y-%m-%dT%H:%M:%S").to_list()
    out: dict[str, list[Any]] = {"unique_id": [], "ds": [], "y": []}
    for i in range(n_series):
        t = np.arange(n)
        y = 50 + 10 * i + 8 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, n)
        out["unique_id"] += [f"s{i}"] * n
        out["ds"] += ds
        out["y"] += [round(float(v), 3) for v in y]
    return out


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def client(state_dir: Path) -> Iterator[TestClient]:
    keys = parse_api_keys(f"acme:{KEY_A}, beta:{KEY_B}", source="test")
    app = create_app(Settings(state_dir=state_dir, api_keys=keys, max_train_seconds=120, admin_tenants=("acme",)))
    with TestClient(app) as c:
        yield c


def problem(r: Any, status: int, field: str | None = None, *needles: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body = r.json()
    assert body["status"] == status and body["detail"]
    if field is not None:
        assert body.get("field") == field, body
    for needle in needles:
        assert needle.lower() in body["detail"].lower(), (needle, body["detail"])
    return body


def train(client: TestClient, body: dict[str, Any], headers: dict[str, str] = A) -> dict[str, Any]:
    r = client.post("/v1/models", json=body, headers=headers)
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] in ("queued", "running")
    return job


def wait(client: TestClient, job_id: str, headers: dict[str, str] = A, timeout: float = 120) -> dict[str, Any]:
    return wait_job(client, job_id, headers=headers, timeout=timeout)


@pytest.fixture(scope="module")
def demand(client: TestClient) -> dict[str, Any]:
    """An XGBoost model 'demand' of tenant acme, trained through the API (version 1)."""
    job = wait(client, train(client, {"name": "demand", "model": XGB, "data": hourly(), "h": 24})["id"])
    assert job["state"] == "succeeded", job
    return job


# --------------------------------------------------------------------------- training and forecasting
def test_xgboost_job_succeeds_with_timings_and_result(demand: dict[str, Any]) -> None:
    assert demand["progress"] == 1.0 and demand["result"]["ref"] == "demand@1"
    assert demand["timings"]["run_s"] is not None and demand["timings"]["total_s"] >= demand["timings"]["run_s"]
    assert demand["error"] is None and "tenant" not in demand


def test_forecast_by_name_version_and_alias(client: TestClient, demand: dict[str, Any]) -> None:
    by_name = client.post("/v1/models/demand/forecast", json={"h": 12}, headers=A)
    assert by_name.status_code == 200, by_name.text
    out = by_name.json()
    # the registered route answers with the fields of POST /v1/forecast, plus which version answered
    assert out["model"] == "xgboost" and out["ref"] == "demand@1" and out["version"] == 1 and len(out["forecasts"]) == 2 * 12
    assert out["fallbacks"] == [] and out["filled"] == [] and out["runtime"] == "native"
    assert out["forecasts"][0]["ds"].startswith("2024-01-11T00:00")  # after the stored training tail
    assert all(math.isfinite(row[out["alias"]]) for row in out["forecasts"])
    by_version = client.post("/v1/models/demand@1/forecast", json={"h": 12}, headers=A).json()
    assert by_version["forecasts"] == out["forecasts"]

    r = client.put("/v1/models/demand/aliases/production", json={"version": 1}, headers=A)
    assert r.status_code == 200, r.text
    assert "production" in r.json()["aliases"]
    by_alias = client.post("/v1/models/demand@production/forecast", json={"h": 12}, headers=A).json()
    assert by_alias["forecasts"] == out["forecasts"]

    problem(client.post("/v1/models/demand@staging/forecast", json={"h": 12}, headers=A), 404, "model", "staging")
    problem(client.post("/v1/models/demand@7/forecast", json={"h": 12}, headers=A), 404, "model", "version 7")
    problem(client.post("/v1/models/demand/forecast", json={"h": 0}, headers=A), 422, "h")


def test_forecast_with_new_history(client: TestClient, demand: dict[str, Any]) -> None:
    new = hourly(n=24 * 9, seed=3, start="2024-03-01")
    r = client.post("/v1/models/demand/forecast", json={"h": 6, "history": new}, headers=A)
    assert r.status_code == 200, r.text
    rows = r.json()["forecasts"]
    assert len(rows) == 12 and rows[0]["ds"].startswith("2024-03-10T00:00")
    bad = hourly(n=24 * 9, seed=3, start="2024-03-01")
    bad["y"][3] = None
    problem(client.post("/v1/models/demand/forecast", json={"h": 6, "history": bad}, headers=A), 422, None, "s0")


def test_concurrent_forecasts_share_the_cached_model_safely(client: TestClient, demand: dict[str, Any]) -> None:
    """The loaded model is shared by every request thread: concurrent forecasts equal serial ones."""
    from concurrent.futures import ThreadPoolExecutor

    bodies = [{"h": 12, "history": hourly(n=24 * 9, seed=10 + i, start="2024-03-01")} for i in range(6)]

    def run(body: dict[str, Any]) -> list[dict[str, Any]]:
        r = client.post("/v1/models/demand/forecast", json=body, headers=A)
        assert r.status_code == 200, r.text
        return r.json()["forecasts"]

    serial = [run(b) for b in bodies]
    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(run, bodies * 2)) == serial * 2


def test_explain_is_additive_and_ordered(client: TestClient, demand: dict[str, Any]) -> None:
    r = client.post("/v1/models/demand/explain", json={"h": 6, "series": ["s1"], "steps": [1, 6], "k": 3}, headers=A)
    assert r.status_code == 200, r.text
    out = r.json()
    assert [(row["unique_id"], row["step"]) for row in out["rows"]] == [("s1", 1), ("s1", 6)]
    assert out["additivity_error"] < 1e-3 * max(abs(row["output"]) for row in out["rows"])
    for row in out["rows"]:
        shap = [abs(c["shap"]) for c in row["contributions"]]
        assert len(shap) == 3 and shap == sorted(shap, reverse=True)
    forecast = client.post("/v1/models/demand/forecast", json={"h": 6}, headers=A).json()
    s1 = [f for f in forecast["forecasts"] if f["unique_id"] == "s1"]
    assert out["rows"][0]["output"] == pytest.approx(s1[0][forecast["alias"]], rel=1e-5)
    problem(client.post("/v1/models/demand/explain", json={"h": 6, "series": ["nope"]}, headers=A), 422, "series")
    problem(client.post("/v1/models/demand/explain", json={"h": 6, "steps": [7]}, headers=A), 422, "steps")


def test_report_is_html(client: TestClient, demand: dict[str, Any]) -> None:
    r = client.get("/v1/models/demand/report", params={"h": 12}, headers=A)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower() and "demand@1" in r.text


def test_statistical_spec_only_needs_history(client: TestClient) -> None:
    spec = {"name": "seasonal_naive", "params": {"season_length": 24}}
    job = wait(client, train(client, {"name": "snaive", "model": spec, "data": hourly(), "h": 24})["id"])
    assert job["state"] == "succeeded", job
    info = client.get("/v1/models/snaive", headers=A).json()
    assert info["versions"][0]["artifact"] is None and info["versions"][0]["metrics"]["smape"] >= 0
    problem(client.post("/v1/models/snaive/forecast", json={"h": 24}, headers=A), 422, "history", "spec only")
    r = client.post("/v1/models/snaive/forecast", json={"h": 24, "history": hourly(n_series=1, n=72)}, headers=A)
    assert r.status_code == 200, r.text
    assert len(r.json()["forecasts"]) == 24
    problem(client.post("/v1/models/snaive/explain", json={"h": 24}, headers=A), 422, "history", "give history")
    r = client.post("/v1/models/snaive/explain", json={"h": 24, "history": hourly(n_series=1, n=72)}, headers=A)
    assert r.status_code == 200, r.text  # a statistical model is explained by its labelled decomposition
    assert r.json()["method"].startswith("labelled decomposition (not SHAP) of the SeasonalNaive forecast")
    problem(client.get("/v1/models/snaive/report", params={"h": 12}, headers=A), 422, "model")
    problem(client.get("/v1/models/snaive/onnx", headers=A), 422, "model", "no trained graph to export")


def test_tabular_linear_train_predict_explain(client: TestClient) -> None:
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=60), rng.normal(size=60)
    table = {"x1": x1.tolist(), "x2": x2.tolist(), "y": (3 * x1 - 2 * x2 + 1).tolist()}
    job = wait(client, train(client, {"name": "price", "kind": "tabular", "target": "y",
                                      "model": {"kind": "regression", "algorithm": "linear"}, "data": table})["id"])
    assert job["state"] == "succeeded", job
    rows = [{"x1": 1.0, "x2": 0.0}, {"x1": 0.0, "x2": 1.0}]
    r = client.post("/v1/models/price/predict", json={"rows": rows}, headers=A)
    assert r.status_code == 200, r.text
    preds = [p["prediction"] for p in r.json()["predictions"]]
    assert preds == pytest.approx([4.0, -1.0], abs=0.1)  # ridge-regularised
    r = client.post("/v1/models/price/explain", json={"rows": rows, "k": 1}, headers=A)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["additivity_error"] < 1e-6
    assert [row["contributions"][0]["feature"] for row in out["rows"]] == ["x1", "x2"]
    problem(client.post("/v1/models/price/forecast", json={"h": 3}, headers=A), 422, "model", "tabular")
    problem(client.post("/v1/models/price/predict", json={"rows": [{"x1": 1.0}]}, headers=A), 422, None, "x2")


def test_multipart_csv_upload_trains(client: TestClient) -> None:
    csv = pl.DataFrame(hourly(n_series=1)).write_csv()
    r = client.post("/v1/models", files={"file": ("data.csv", io.BytesIO(csv.encode()), "text/csv")},
                    data={"name": "uploaded", "model": '{"name": "seasonal_naive", "params": {"season_length": 24}}',
                          "h": "24"}, headers=A)
    assert r.status_code == 202, r.text
    job = wait(client, r.json()["id"])
    assert job["state"] == "succeeded", job
    r = client.post("/v1/models", files={"file": ("data.txt", io.BytesIO(b"x"), "text/plain")},
                    data={"name": "uploaded"}, headers=A)
    problem(r, 422, "file", ".csv")


def test_multipart_parquet_upload_trains_a_tabular_model(client: TestClient) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=40)
    buf = io.BytesIO()
    pl.DataFrame({"x": x, "y": 2 * x + 1}).write_parquet(buf)
    r = client.post("/v1/models", files={"file": ("table.parquet", io.BytesIO(buf.getvalue()),
                                                   "application/octet-stream")},
                    data={"name": "uploaded-tab", "kind": "tabular", "target": "y",
                          "model": '{"kind": "regression", "algorithm": "linear"}'}, headers=A)
    assert r.status_code == 202, r.text
    assert wait(client, r.json()["id"])["state"] == "succeeded"
    out = client.post("/v1/models/uploaded-tab/predict", json={"rows": {"x": [0.0]}}, headers=A).json()
    assert out["predictions"][0]["prediction"] == pytest.approx(1.0, abs=0.1)
    problem(client.post("/v1/models", files={"file": ("t.parquet", io.BytesIO(b"not parquet"), "x/y")},
                        data={"name": "bad", "kind": "tabular", "target": "y"}, headers=A), 422, "file", "t.parquet")


def test_tampered_artifact_is_a_500_naming_the_file(client: TestClient, state_dir: Path) -> None:
    job = wait(client, train(client, {"name": "tamper", "model": XGB, "data": hourly(seed=9)})["id"])
    assert job["state"] == "succeeded", job
    folder = state_dir / "artifacts" / "acme" / "tamper" / "1"
    (folder / "pipeline.json").write_bytes((folder / "pipeline.json").read_bytes() + b" ")
    body = problem(client.post("/v1/models/tamper/forecast", json={"h": 3}, headers=A), 500, "model",
                   "pipeline.json", "has changed")
    assert body["type"] == "/problems/artifact-integrity"
    # /readyz reports the failure until the version is deleted (or its files verify again); an open route, so
    # without an admin key it counts the failures and names no tenant, model, file or path
    body = problem(client.get("/readyz"), 503, None, "artifact integrity failure in 1 loaded artifact(s)")
    assert "acme" not in body["detail"] and "pipeline.json" not in body["detail"] and str(state_dir) not in body["detail"]
    problem(client.get("/readyz", headers=B), 503, None, "an admin key's /readyz names them")  # another tenant: same
    problem(client.get("/readyz", headers=A), 503, None, "artifact integrity failure", "acme/tamper/1",
            "pipeline.json")  # acme is this app's admin tenant
    assert client.delete("/v1/models/tamper/versions/1", headers=A).status_code == 204
    assert client.get("/readyz").json() == {"status": "ready"}


def test_job_failure_surfaces_the_library_message(client: TestClient) -> None:
    short = hourly(n=3)  # frequency-aware features train on 30 hourly points now; 3 are too few for any
    job = wait(client, train(client, {"name": "short", "model": XGB, "data": short})["id"])
    assert job["state"] == "failed"
    assert "too short" in job["error"] and job["error_field"] == "data", job
    problem(client.post(f"/v1/jobs/{job['id']}/cancel", headers=A), 409, "job_id", "failed")
    problem(client.post("/v1/models", json={"name": "Bad Name", "model": XGB, "data": short}, headers=A), 422, "name")
    problem(client.post("/v1/models", json={"name": "x", "model": "nope", "data": short}, headers=A), 422)
    problem(client.post("/v1/models", json={"name": "x", "data": short, "bogus": 1}, headers=A), 400, "bogus")


# --------------------------------------------------------------------------- registry management
def test_list_and_delete_version_rules(client: TestClient, demand: dict[str, Any]) -> None:
    job = wait(client, train(client, {"name": "demand", "model": XGB, "data": hourly(seed=5), "h": 24})["id"])
    assert job["state"] == "succeeded" and job["version"] == 2
    client.put("/v1/models/demand/aliases/production", json={"version": 1}, headers=A)
    listed = {m["name"]: m for m in client.get("/v1/models", headers=A).json()}
    assert listed["demand"]["latest_version"] == 2 and listed["demand"]["aliases"]["production"] == 1
    body = problem(client.delete("/v1/models/demand/versions/1", headers=A), 409, "version", "production")
    assert body["details"]["aliases"] == ["production"]
    assert client.delete("/v1/models/demand/versions/2", headers=A).status_code == 204
    problem(client.delete("/v1/models/demand/versions/2", headers=A), 404, "model")
    assert [v["version"] for v in client.get("/v1/models/demand", headers=A).json()["versions"]] == [1]
    problem(client.put("/v1/models/demand/aliases/latest", json={"version": 1}, headers=A), 422, "alias")


# --------------------------------------------------------------------------- access
def test_tenants_are_isolated(client: TestClient, demand: dict[str, Any]) -> None:
    assert client.get("/v1/models", headers=B).json() == []
    problem(client.post("/v1/models/demand/forecast", json={"h": 3}, headers=B), 404, "model", "not found")
    problem(client.get("/v1/models/demand", headers=B), 404)
    problem(client.get(f"/v1/jobs/{demand['id']}", headers=B), 404, "job_id")
    problem(client.post(f"/v1/jobs/{demand['id']}/cancel", headers=B), 404)
    assert client.get("/v1/jobs", headers=B).json() == []


def test_keys_are_required_except_on_open_routes(client: TestClient) -> None:
    r = client.get("/v1/models")
    problem(r, 401, "authorization", "api key")
    assert r.headers["www-authenticate"].startswith("Bearer")
    problem(client.get("/v1/models", headers={"Authorization": "Bearer wrong"}), 401, None, "not valid")
    problem(client.post("/v1/forecast", json={"h": 1, "data": hourly()}), 401)
    for path in ("/healthz", "/readyz", "/schema/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_no_keys_means_tenant_default(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        assert c.get("/v1/models").json() == []
        assert c.get("/v1/model-types").status_code == 200


def test_keys_from_a_file_are_hashed(tmp_path: Path) -> None:
    f = tmp_path / "keys"
    f.write_text("# tenants\nacme:k1\nbeta:k2\n")
    settings = Settings.from_env({"FORECASTING_API_KEYS_FILE": str(f), "FORECASTING_API_KEYS": "gamma:k3"})
    assert settings.api_keys == (("gamma", hash_key("k3")), ("acme", hash_key("k1")), ("beta", hash_key("k2")))
    with pytest.raises(ValueError, match="entry 1"):
        Settings.from_env({"FORECASTING_API_KEYS": "no-colon"})


# --------------------------------------------------------------------------- operations
def test_readyz_and_metrics(client: TestClient, demand: dict[str, Any]) -> None:
    assert client.get("/readyz").json() == {"status": "ready"}
    client.post("/v1/models/demand/forecast", json={"h": 3}, headers=A)
    r = client.get("/metrics", headers=A)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'forecasting_http_requests_total{method="POST",route="/v1/models/{ref}/forecast",status="200"}' in text
    assert "forecasting_http_request_duration_seconds_bucket" in text
    assert 'forecasting_jobs{state="succeeded"}' in text and 'forecasting_jobs{state="failed"}' in text
    assert "forecasting_model_cache_size" in text
    problem(client.get("/metrics"), 401)


def test_readyz_503_when_the_artifact_store_is_gone(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        (tmp_path / "artifacts" / "_jobs").rmdir()
        (tmp_path / "artifacts").rmdir()
        problem(c.get("/readyz"), 503, None, "artifact store")


# --------------------------------------------------------------------------- limits and cancellation
def test_cancel_a_job(client: TestClient) -> None:
    slow = {"name": "xgboost", "params": {"n_estimators": 300, "max_depth": 6, "conformal_windows": 0}}
    job = train(client, {"name": "cancelled", "model": slow, "data": hourly(n_series=4, n=24 * 30)})
    r = client.post(f"/v1/jobs/{job['id']}/cancel", headers=A)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "cancelled"
    assert wait(client, job["id"])["state"] == "cancelled"
    problem(client.post("/v1/models/cancelled/forecast", json={"h": 3}, headers=A), 404)
    assert [j["id"] for j in client.get("/v1/jobs", params={"state": "cancelled"}, headers=A).json()] == [job["id"]]
    problem(client.get("/v1/jobs", params={"state": "nope"}, headers=A), 422, "state")


def test_training_time_limit_fails_the_job(tmp_path: Path) -> None:
    big = {"name": "xgboost", "params": {"n_estimators": 800, "max_depth": 6, "learning_rate": 0.01,
                                         "conformal_windows": 0}}
    with TestClient(create_app(Settings(state_dir=tmp_path, max_train_seconds=1))) as c:
        r = c.post("/v1/models", json={"name": "big", "model": big, "data": hourly(n_series=8, n=24 * 30)})
        assert r.status_code == 202, r.text
        job = wait(c, r.json()["id"], headers={})
    assert job["state"] == "failed", job
    assert "time limit of 1.0 s" in job["error"], job["error"]
    # the deadline reaches the hold-out validation fit too: the job stops within a few boosting rounds
    assert job["timings"]["run_s"] < 30, job["timings"]


def test_nhits_job_forecast_and_onnx_serving(client: TestClient) -> None:
    """A deep model goes through the same registry: trained in a job, saved as safetensors, exported on demand."""
    spec = {"name": "nhits", "params": {"max_steps": 5, "mlp_units": 16, "windows_batch_size": 16, "batch_size": 2,
                                        "horizon": 24, "input_size": 48, "device": "cpu"}}
    job = wait(client, train(client, {"name": "deep", "model": spec, "data": hourly(), "h": 24})["id"])
    assert job["state"] == "succeeded", job
    native = client.post("/v1/models/deep/forecast", json={"h": 24, "level": [80]}, headers=A)
    assert native.status_code == 200, native.text
    rows = native.json()["forecasts"]
    assert len(rows) == 48 and rows[0]["NHITS-lo-80"] <= rows[0]["NHITS"] <= rows[0]["NHITS-hi-80"]
    explained = client.post("/v1/models/deep/explain", json={"h": 3, "k": 4}, headers=A)
    assert explained.status_code == 200, explained.text  # was a 500 (units= not accepted), found by a hostile pass
    body = explained.json()
    assert len(body["rows"]) == 6 and len(body["rows"][0]["contributions"]) == 4
    assert body["additivity_error_relative"] < 1e-3
    r = client.get("/v1/models/deep/onnx", headers=A)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    served = client.post("/v1/models/deep/forecast", json={"h": 24, "level": [80]}, headers=A).json()
    assert "served by onnxruntime from the model's ONNX export" in served["notes"]
    for a, b in zip(served["forecasts"], rows, strict=True):
        assert abs(a["NHITS"] - b["NHITS"]) <= 1e-3 * abs(b["NHITS"])
    # another tenant cannot see it, and a statistical model has nothing to export
    problem(client.get("/v1/models/deep/onnx", headers=B), 404, "model")
