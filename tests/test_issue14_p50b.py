"""Issue 14, the registered forecast's p50 (team 23, H1): a retrain asked twice at the same moment queues one job
(the pending check and the insert are one transaction), and the per-series scales of a forecast from a given
history computed without a polars query, bit for bit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import wait_job
from litestar.testing import TestClient

from forecasting.api.app import create_app
from forecasting.api.settings import Settings
from forecasting.errors import ConflictError
from forecasting.store import Store

HOURS = [f"2024-01-{1 + i // 24:02d}T{i % 24:02d}:00:00" for i in range(24 * 8)]
DATA = {"unique_id": ["s0"] * len(HOURS), "ds": HOURS,
        "y": [50.0 + (i % 24) + 0.1 * (i % 7) for i in range(len(HOURS))]}


# --------------------------------------------------------------------------- one pending retrain, atomically
@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    state = tmp_path_factory.mktemp("state")
    with TestClient(create_app(Settings(state_dir=state, max_train_seconds=120))) as c:
        r = c.post("/v1/models", json={"name": "m", "model": "naive", "data": DATA, "h": 24})
        assert wait_job(c, r.json()["id"])["state"] == "succeeded"
        yield c


def test_two_simultaneous_retrain_posts_queue_one_job_and_the_other_is_a_409_naming_it(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both POSTs passed the runner's "pending job" check before either inserted its job (found by a tester):
    two retrain jobs of one model. The insert is slowed by 0.3 s here so that the two requests overlap every
    time; the check now runs inside the insert's transaction, so one request gets 202 and the other 409."""
    slow = {"name": "xgboost", "params": {"n_estimators": 20000, "max_depth": 10, "learning_rate": 0.001,
                                          "conformal_windows": 0}}
    assert client.put("/v1/models/m/retraining", json={"model": slow}).status_code == 200
    create_job = Store.create_job

    def slowed(self: Store, **kw: Any) -> Any:
        time.sleep(0.3)
        return create_job(self, **kw)

    monkeypatch.setattr(Store, "create_job", slowed)
    answers: list[Any] = []
    start = threading.Barrier(2)

    def post() -> None:
        start.wait()
        answers.append(client.post("/v1/models/m/retrain"))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    monkeypatch.undo()
    assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
    queued = next(a.json() for a in answers if a.status_code == 202)
    refused = next(a.json() for a in answers if a.status_code == 409)
    assert (refused["field"], refused["details"]) == ("model", {"model": "m", "job_id": queued["id"]})
    assert refused["detail"].startswith("a retrain of model 'm' is already ")
    jobs = [j for j in client.get("/v1/jobs").json() if j["kind"] == "retrain"]
    assert [j["id"] for j in jobs] == [queued["id"]]
    assert client.post(f"/v1/jobs/{queued['id']}/cancel").json()["state"] == "cancelled"


def test_two_processes_creating_the_same_pending_job_get_one_job(tmp_path: Path) -> None:
    """Two stores on one SQLite file (two engines: as two server processes) create a retrain job of the same
    model at the same moment, 10 times: each time exactly one is created and the other's conflict names it;
    a finished job does not count, and another model's job is not a conflict."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    stores = [Store(url, tmp_path / "artifacts"), Store(url, tmp_path / "artifacts")]
    try:
        stores[0].register_version("m", tenant="t", spec={"name": "naive"}, kind="forecast", artifact_src_dir=None,
                                   fingerprint={})
        for _ in range(10):
            barrier = threading.Barrier(2)
            got: list[Any] = []

            def create(store: Store, barrier: threading.Barrier = barrier, got: list[Any] = got) -> None:
                barrier.wait()
                try:
                    got.append(store.create_job(tenant="t", kind="retrain", request={"name": "m"}, one_pending=True))
                except ConflictError as exc:
                    got.append(exc)

            threads = [threading.Thread(target=create, args=(s,)) for s in stores]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            created = [g for g in got if not isinstance(g, ConflictError)]
            refused = [g for g in got if isinstance(g, ConflictError)]
            assert (len(created), len(refused)) == (1, 1), got
            assert refused[0].details == {"model": "m", "job_id": created[0].id, "state": "queued"}
            assert str(refused[0]) == f"a retrain job of model 'm' is already queued (job {created[0].id})"
            stores[0].update_job(created[0].id, state="succeeded")
        other = stores[1].create_job(tenant="t", kind="retrain", request={"name": "other"}, one_pending=True)
        assert other.state == "queued"
        assert len([j for j in stores[0].list_jobs("t") if j.request["name"] == "m"]) == 10
    finally:
        for s in stores:
            s.close()


def test_a_job_without_one_pending_is_created_beside_a_pending_one(tmp_path: Path) -> None:
    """Training jobs (no ``one_pending``) are not limited to one per model."""
    with Store(f"sqlite:///{tmp_path / 'registry.db'}", tmp_path / "artifacts") as store:
        a = store.create_job(tenant="t", kind="train", request={"name": "m"})
        b = store.create_job(tenant="t", kind="train", request={"name": "m"})
        assert (a.state, b.state, a.id != b.id) == ("queued", "queued", True)
        assert pl.Series([j.id for j in store.list_jobs("t")]).n_unique() == 2
