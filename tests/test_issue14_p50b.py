"""Issue 14, the registered forecast's p50 (team 23, H1): a retrain asked twice at the same moment queues one job
(the pending check and the insert are one transaction), and the per-series scales of a forecast from a given
history computed without a polars query, bit for bit."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
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


# --------------------------------------------------------------------------- a one-series history's scales
@pytest.fixture(scope="module")
def tree() -> Any:
    from forecasting.models.registry import make_model

    t = np.arange(200)
    frame = pl.DataFrame({"unique_id": "a", "ds": t, "y": 10 + np.sin(2 * np.pi * t / 24)})
    return make_model({"name": "xgboost", "params": {"season_length": 24, "n_estimators": 2,
                                                     "conformal_windows": 0}}, freq=1).fit(frame)


def _history(rng: np.random.Generator, n: int, *, kind: str, as_frame: bool) -> Any:
    from forecasting.data import validate_panel

    y = rng.normal(rng.uniform(-1e3, 1e3), rng.uniform(1e-3, 1e3), n)
    if kind == "constant":
        y = np.full(n, 2.7)
    elif kind == "integers":
        y = np.round(y)
    data = {"unique_id": ["s"] * n, "ds": list(range(n)), "y": y.tolist()}
    return validate_panel(pl.DataFrame(data) if as_frame else data, freq=1)


@pytest.mark.parametrize("as_frame", [False, True], ids=["request-dict", "sorted-frame"])
@pytest.mark.parametrize("scaler", ["standard", "mean", None])
def test_a_one_series_historys_scales_are_the_querys_bit_for_bit(tree: Any, scaler: str | None, as_frame: bool,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The target-scaling (loc, scale) and conformal scales of one series without the group_by query: 120 random
    series (1 to 1,500 points, magnitudes 1e-3 to 1e3, constant and integer ones, shorter than the season),
    seasons 1, 7, 24 and 168, equal to the query's to the last bit. A request's history (a dict: the key is
    hashed, Kahan mean and Welford std) and a sorted frame (the key is a slice: the column's reductions) sum in
    different orders: both are pinned. The one-series path is the one a request of one series takes."""
    import msgspec

    monkeypatch.setattr(tree, "pipeline_", msgspec.structs.replace(
        tree.pipeline_, spec=msgspec.structs.replace(tree.pipeline_.spec, scaler=scaler)))
    rng = np.random.default_rng(2026)
    kinds = ["normal"] * 8 + ["constant", "integers"]
    for i in range(120):
        m = (1, 7, 24, 168)[i % 4]
        monkeypatch.setattr(type(tree), "season_length", property(lambda self, m=m: m))
        n = int(rng.integers(1, 1500)) if i % 6 else int(rng.integers(1, 30))
        panel = _history(rng, n, kind=kinds[i % len(kinds)], as_frame=as_frame)
        one = tree._scales_one_series(panel)
        assert one is not None
        query = tree._scales_query(panel)
        for got, want in zip(one, query, strict=True):
            assert got.schema == want.schema
            assert got.equals(want), (n, m, got, want)
            for col in got.columns[1:]:
                assert got[col].to_numpy().tobytes() == want[col].to_numpy().tobytes()


def test_several_series_or_a_non_finite_target_take_the_query(tree: Any) -> None:
    from forecasting.data import validate_panel

    two = validate_panel({"unique_id": ["a"] * 30 + ["b"] * 30, "ds": list(range(30)) * 2, "y": [1.0] * 60},
                         freq=1)
    assert tree._scales_one_series(two) is None
    panel = _history(np.random.default_rng(0), 50, kind="normal", as_frame=False)
    bad = dataclasses.replace(panel, frame=panel.frame.with_columns(pl.lit(float("inf")).alias("y")))
    assert tree._scales_one_series(bad) is None
    assert tree._scales(two, two)[0]["unique_id"].to_list() == ["a", "b"]
