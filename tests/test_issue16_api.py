"""Issue 16 over HTTP (in-process app): multipart observations, 422 problems naming the field, inline anomalies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import TestClient
from test_issue16_monitoring import _batch, _register, _seasonal

from forecasting.api.app import create_app
from forecasting.api.settings import Settings
from forecasting.service.monitoring import Monitoring
from forecasting.store import Store, default_locations


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    with Store(*default_locations(tmp_path)) as store:
        _register(store, Monitoring(store), _seasonal(), "naive", h=4)
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        yield c


def test_multipart_observations_and_problems(client: TestClient, tmp_path: Path) -> None:
    csv = tmp_path / "new.csv"
    _batch(["s", "s"], [25, 26], [1.0, 5.0]).write_csv(csv)
    r = client.post("/v1/models/m/observations", files={"file": ("new.csv", csv.read_bytes(), "text/csv")},
                    data={"replace": "false"})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == 2 and r.json()["series"] == ["s"]
    r = client.post("/v1/models/m/observations", json={"data": {"unique_id": ["s", "x"], "ds": [27, 27],
                                                                 "y": [9.0, 1.0]}})
    assert r.status_code == 422
    assert r.json()["field"] == "data.unique_id"
    assert r.json()["detail"] == "observations for series model 'm' does not have: x (rows 1); nothing was stored"
    r = client.post("/v1/models/m/observations", json={"data": {"unique_id": ["s"], "ds": [27]}, "extra": 1})
    assert r.status_code == 400 and r.json()["field"] == "extra"
    assert client.get("/v1/models/m/observations", params={"start": "25"}).json()["data"]["ds"] == [25, 26]
    r = client.put("/v1/models/m/retraining", json={"cron": "61 * * * *"})
    assert r.status_code == 422 and r.json()["field"] == "cron"
    r = client.get("/v1/models/m/accuracy", params={"by": "week"})
    assert r.status_code == 422 and r.json()["detail"] == "by must be one of version, step, series, got 'week'"
    assert client.get("/v1/models/nothing/decisions").status_code == 404


def test_inline_anomalies(client: TestClient) -> None:
    rng = np.random.default_rng(3)
    y = 20 + 5 * np.sin(np.arange(120) * 2 * np.pi / 12) + rng.normal(0, 0.3, 120)
    y[70] += 12
    body = {"data": {"unique_id": ["a"] * 120, "ds": list(range(120)), "y": y.tolist()},
            "model": {"name": "mstl", "params": {"season_length": 12}}}
    r = client.post("/v1/anomalies", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["points"] == 120 and out["level"] == 99.0 and out["method"] == "normal"
    assert out["anomalies"][0]["ds"] == 70 and out["anomalies"][0]["score"] > 1
    r = client.post("/v1/anomalies", json={**body, "level": 100})
    assert r.status_code == 422 and r.json()["field"] == "level"
