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
