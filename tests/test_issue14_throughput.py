"""Issue 14, throughput: several server processes on one store with one job runner, one thread per request's
prediction, the runtime chosen by request size, idle job workers that exit.

The two-process test starts two real ``forecasting serve`` processes on one state folder (the same code
path as ``--workers N``, whose processes are uvicorn's children) and trains a small XGBoost through the
process that does not run jobs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest

from forecasting.errors import TooManyJobsError
from forecasting.jobs import JobRunner
from forecasting.loading import export_version, load_serving, load_version
from forecasting.runtime import ONNX_MAX_SERIES, SERVING_THREADS, choose_runtime, count_series
from forecasting.store import Store
from conftest import wait_until
from test_issue14_ops import _free_port, alive, hourly

FORECASTING = str(Path(sys.executable).parent / "forecasting")
SMALL_XGB = {"name": "xgboost", "params": {"n_estimators": 5, "max_depth": 2, "conformal_windows": 0}}


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


# --------------------------------------------------------------------------- two processes, one store
def test_two_server_processes_share_a_store_and_only_the_lock_holder_runs_jobs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "FORECASTING_STATE_DIR": str(state), "FORECASTING_JOB_WORKER_IDLE_S": "1",
           "FORECASTING_SHUTDOWN_GRACE_S": "1"}
    ports = [_free_port(), _free_port()]
    logs = [(tmp_path / f"server{i}.log").open("wb") for i in range(2)]
    procs = [subprocess.Popen([FORECASTING, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=log) for port, log in zip(ports, logs, strict=True)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        def up(i: int) -> bool:
            assert procs[i].poll() is None, (tmp_path / f"server{i}.log").read_text()
            try:
                return httpx.get(f"{urls[i]}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(lambda: up(0) and up(1), 90, "both servers ready")
        lock = state / "forecasting.db.jobs.lock"
        leader = wait_until(lambda: lock.is_file() and lock.read_text().strip(), 10, "the runner lock written")
        pids = [p.pid for p in procs]
        assert int(leader) in pids
        follower = 1 - pids.index(int(leader))
        # trained through the process that does not run jobs: queued in the database, run by the leader
        r = httpx.post(f"{urls[follower]}/v1/models", json={"name": "pax", "model": SMALL_XGB, "data": hourly(),
                                                             "h": 24}, timeout=30)
        assert r.status_code == 202, r.text
        job_url = f"{urls[follower]}{r.headers['location']}"
        workers = state / "artifacts" / "_jobs" / "workers"
        seen: dict[int, int | None] = {}

        def done() -> dict[str, Any] | None:
            for entry in workers.iterdir() if workers.is_dir() else []:
                seen.setdefault(int(entry.name), parent_of(int(entry.name)))
            job = httpx.get(job_url, timeout=10).json()
            return job if job["state"] in ("succeeded", "failed", "cancelled") else None

        job = wait_until(done, 120, "the training job")
        assert job["state"] == "succeeded", job
        assert seen and set(seen.values()) == {int(leader)}, seen  # every job worker is the leader's child
        # the model registered through one process is served by the other (loaded from the shared store)
        answers = [httpx.post(f"{url}/v1/models/pax/forecast", json={"h": 3}, timeout=60) for url in urls]
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        assert answers[0].json()["forecasts"] == answers[1].json()["forecasts"]
        assert len(answers[0].json()["forecasts"]) == 3
        # the idle worker exits (FORECASTING_JOB_WORKER_IDLE_S=1): its memory goes back to the system
        for pid in seen:
            wait_until(lambda pid=pid: not alive(pid), 15, f"the idle job worker {pid} exiting")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()
    leads = [sum('"event": "jobs.leader"' in line for line in (tmp_path / f"server{i}.log").read_text().splitlines())
             for i in range(2)]
    assert sorted(leads) == [0, 1], leads  # exactly one process ran the job runner


def test_a_follower_counts_the_tenant_cap_in_the_database_and_takes_over_from_a_stopped_leader(
        tmp_path: Path) -> None:
    url, artifacts = f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "artifacts"
    with Store(url, artifacts) as one, Store(url, artifacts) as two:
        leader = JobRunner(one, shared=True)
        follower = JobRunner(two, shared=True, max_unfinished_per_tenant=1)
        try:
            assert not leader.is_leader  # decided at recover(), i.e. the app's startup
            leader.recover()
            follower.recover()
            assert leader.is_leader and not follower.is_leader
            assert leader.lock_path == tmp_path / "db.sqlite.jobs.lock"
            assert leader.lock_path.read_text() == str(os.getpid())
            # the leader is stopped before anything it adopts could start: the follower's job stays queued
            leader.shutdown(wait=False)
            job_id = follower.submit_training("acme", "a", "naive", hourly(48), h=2)
            assert two.get_job(job_id, "acme").state in ("queued", "running", "succeeded")
            with pytest.raises(TooManyJobsError, match="already has 1 unfinished training jobs"):
                follower.submit_training("acme", "b", "naive", hourly(48), h=2)
            wait_until(lambda: follower.is_leader, 5, "the follower taking over")
        finally:
            follower.shutdown(cancel_queued=True, wait=False)
            leader.shutdown(wait=False)


# --------------------------------------------------------------------------- one thread per request
@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Any]]:
    pytest.importorskip("onnxruntime")
    from forecasting.service.training import fit_and_save

    root = tmp_path_factory.mktemp("throughput")
    fit_and_save(pl.DataFrame(hourly()), root / "saved", model=SMALL_XGB, freq="1h")
    store = Store(f"sqlite:///{root / 'db.sqlite'}", root / "artifacts", cache_size=4)
    info = store.register_version("pax", tenant="acme", spec={"name": "xgboost"}, kind="forecast",
                                  artifact_src_dir=root / "saved", fingerprint={"freq": "1h", "series": 1})
    export_version(store, info)
    yield store, store.get("pax", tenant="acme")
    store.close()


def test_served_models_predict_with_the_per_request_thread_limit(exported: tuple[Store, Any]) -> None:
    store, info = exported
    assert SERVING_THREADS == 1
    native = load_version(store, info)
    for booster in native.boosters_:  # type: ignore[union-attr]
        config = json.loads(booster.save_config())
        assert config["learner"]["generic_param"]["nthread"] == "1"
    onnx, runtime = load_serving(store, info, n_series=1)
    assert runtime == "onnxruntime"
    for session in onnx.boosters_:  # type: ignore[union-attr]
        assert session.get_session_options().intra_op_num_threads == 1
    # a model loaded outside serving keeps the library's default (every core)
    from forecasting.loading import load

    plain = load(store.artifacts_dir / info.artifact)
    assert json.loads(plain.boosters_[0].save_config())["learner"]["generic_param"]["nthread"] != "1"  # type: ignore[union-attr]


def test_the_runtime_follows_the_documented_rule_by_request_size(exported: tuple[Store, Any]) -> None:
    assert ONNX_MAX_SERIES == 4
    assert choose_runtime(1, has_export=True) == "onnxruntime"
    assert choose_runtime(ONNX_MAX_SERIES, has_export=True) == "onnxruntime"
    assert choose_runtime(ONNX_MAX_SERIES + 1, has_export=True) == "native"
    assert choose_runtime(None, has_export=True) == "onnxruntime"  # size unknown: counted as small
    assert choose_runtime(1, has_export=False) == "native"
    store, info = exported
    assert load_serving(store, info, n_series=ONNX_MAX_SERIES)[1] == "onnxruntime"
    model, runtime = load_serving(store, info, n_series=ONNX_MAX_SERIES + 1)
    assert runtime == "native" and type(model).__name__ == "XGBoostForecaster"
    # the count comes from the request's raw data, before validation
    assert count_series({"unique_id": ["a", "a", "b"], "ds": [1, 2, 1], "y": [1.0, 2.0, 3.0]}) == 2
    assert count_series([{"unique_id": "a"}, {"unique_id": "b"}, {"unique_id": "c"}]) == 3
    assert count_series(pl.DataFrame({"unique_id": ["x"] * 4})) == 1
    assert count_series({"unique_id": [["unhashable"]]}) is None


def test_serve_workers_2_starts_two_server_processes_one_leading_and_stops_on_sigterm(tmp_path: Path) -> None:
    import signal

    port = _free_port()
    env = {**os.environ, "FORECASTING_STATE_DIR": str(tmp_path)}
    proc = subprocess.Popen([FORECASTING, "serve", "--port", str(port), "--workers", "2", "--log-format", "text"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def ready() -> bool:
            assert proc.poll() is None, proc.returncode
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 90, "the server answering")
        lock = tmp_path / "forecasting.db.jobs.lock"
        leader = int(wait_until(lambda: lock.is_file() and lock.read_text().strip(), 30, "a leader"))

        def servers() -> list[int]:  # the supervisor's children that run the app (multiprocessing's helper aside)
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            return [int(c) for c in children if "resource_tracker" not in Path(f"/proc/{c}/cmdline").read_text()]

        wait_until(lambda: len(servers()) == 2, 30, "two server processes")
        assert leader in servers()
        assert httpx.get(f"http://127.0.0.1:{port}/v1/model-types", timeout=10).status_code == 200
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
