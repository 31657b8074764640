"""Regression tests of the issue 16 tester's findings (observations, accuracy, retraining, anomalies, hostile input)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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


def test_multipart_replace_that_is_not_a_boolean_is_refused(client: TestClient) -> None:
    """A multipart ``replace=maybe`` was read as false and the batch stored; now a 422 naming ``replace``."""
    csv = _batch(["s"], [25], [1.0]).write_csv().encode()
    r = client.post("/v1/models/m/observations", files={"file": ("new.csv", csv, "text/csv")},
                    data={"replace": "maybe"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "replace"
    assert r.json()["detail"] == "form field 'replace' must be true or false, got 'maybe'"
    assert client.get("/v1/models/m/observations", params={"start": "25"}).json()["data"]["ds"] == []
    r = client.post("/v1/models/m/observations", files={"file": ("new.csv", csv, "text/csv")}, data={"replace": "1"})
    assert r.status_code == 200 and r.json()["rows"] == 1


def test_policy_interval_and_model_are_checked_when_put(client: TestClient) -> None:
    """interval_s 10**18 was a 500 (APScheduler's timedelta overflow); an unknown model or a bad parameter was
    accepted and failed only at the retrain. Each is now a 422 naming the field, and the policy is unchanged."""
    r = client.put("/v1/models/m/retraining", json={"interval_s": 10**18})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "interval_s"
    assert r.json()["detail"] == f"interval_s must be at most 315360000 (10 years), got {10**18}"
    r = client.put("/v1/models/m/retraining", json={"model": "foo"})
    assert r.status_code == 422 and r.json()["field"] == "model.name"
    r = client.put("/v1/models/m/retraining", json={"model": {"name": "seasonal_naive", "params": {"season_length": 0}}})
    assert r.status_code == 422 and r.json()["field"] == "model.params.season_length"
    assert client.get("/v1/models/m/retraining").json()["policy"] is None
    r = client.put("/v1/models/m/retraining", json={"interval_s": 315360000, "model": "seasonal_naive"})
    assert r.status_code == 200 and r.json()["policy"] == {"interval_s": 315360000, "model": "seasonal_naive"}


def test_a_flat_series_has_no_anomaly_from_rounding() -> None:
    """auto_ets on a flat series fits 5.000000000000001 with a zero-width band: y = 5.0 was flagged with score
    inf (null in JSON). A point on a zero-width band up to rounding now scores 0; one really off it stays inf."""
    import polars as pl

    import forecasting as fc
    from forecasting.anomalies import score_points

    flat = pl.DataFrame({"unique_id": ["f"] * 60, "ds": list(range(60)), "y": [5.0] * 60})
    points = fc.detect_anomalies(flat, model="auto_ets", freq=1)
    assert points.filter(pl.col("anomaly")).height == 0
    band = pl.DataFrame({"y": [5.0, 5.001], "fitted": [5.000000000000001] * 2, "lo": [5.000000000000001] * 2,
                         "hi": [5.000000000000001] * 2})
    assert score_points(band).select("score", "anomaly").rows() == [(0.0, False), (float("inf"), True)]


def test_a_replace_inside_the_stored_range_reports_no_false_gap(client: TestClient) -> None:
    """Stored 1..26, then replace 23 and 24: the gap check compared the batch with the last stored point (26) only
    and reported the stored ds 25 as missing. A real gap is still reported."""
    new = {"data": {"unique_id": ["s", "s"], "ds": [25, 26], "y": [1.0, 2.0]}}
    assert client.post("/v1/models/m/observations", json=new).json()["gaps"] == []
    r = client.post("/v1/models/m/observations",
                    json={"data": {"unique_id": ["s", "s"], "ds": [23, 24], "y": [3.0, 4.0]}, "replace": True})
    assert r.status_code == 200, r.text
    assert r.json()["replaced"] == 2 and r.json()["gaps"] == []
    r = client.post("/v1/models/m/observations", json={"data": {"unique_id": ["s"], "ds": [29], "y": [5.0]}})
    assert r.json()["gaps"] == [{"unique_id": "s", "missing": 2, "examples": ["27", "28"]}]
