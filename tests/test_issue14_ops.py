"""Issue 14, the operator's findings: keys, fair job queues, export digests, cached-model integrity, admin-only
metrics, workers that die with the server, restarts and SIGTERM, database faults, settings errors.

Jobs are tiny (naive on a few rows) except where a job must still be running when something happens to it
(an xgboost with very many trees, killed within seconds; one thread in a real server's workers). The command line
is run in this process (typer's runner) except where a real server must be killed.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from conftest import wait_until
from litestar.testing import TestClient

from forecasting import artifacts
from forecasting.api.app import create_app
from forecasting.api.settings import Settings, hash_key, parse_api_keys
from forecasting.errors import ArtifactIntegrityError, ConflictError, TooManyJobsError
from forecasting.jobs import JobRunner
from forecasting.loading import export_version, load_serving, load_version
from forecasting.store import Store

FORECASTING = str(Path(sys.executable).parent / "forecasting")
#: xgboost in the job workers of a real server on one thread: the slow job leaves a core to the test and the server
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
SLOW = {"name": "xgboost", "params": {"n_estimators": 20000, "max_depth": 10, "learning_rate": 0.001,
                                      "conformal_windows": 0}}


def rows(n: int = 12, uid: str = "a") -> dict[str, list[Any]]:
    return {"unique_id": [uid] * n, "ds": list(range(1, n + 1)), "y": [float(10 + (i % 4)) for i in range(n)]}


def hourly(n: int = 24 * 8) -> dict[str, list[Any]]:
    ds = pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 1) + pl.duration(hours=n - 1), "1h",
                           eager=True).dt.strftime("%Y-%m-%dT%H:%M:%S").to_list()
    return {"unique_id": ["s0"] * n, "ds": ds, "y": [50.0 + (i % 24) + 0.1 * (i % 7) for i in range(n)]}


def serve_in_process(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """``forecasting serve --port 1`` through the console script's typer app in this process (no new interpreter:
    the same code path, seconds faster); logging is left alone (serve configures it only once it starts)."""
    from typer.testing import CliRunner

    from forecasting.cli import app

    monkeypatch.setattr("forecasting.api.logs.configure_logging", lambda **_: None)
    return CliRunner().invoke(app, ["serve", "--port", "1"], env=env)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")  # a zombie is dead


# --------------------------------------------------------------------------- keys, settings, metrics
def test_an_api_key_with_a_hash_sign_works_whole_and_its_prefix_is_refused(tmp_path: Path) -> None:
    settings = Settings.from_env({"FORECASTING_API_KEYS": "acme:Xy#9kQ2!vLp", "FORECASTING_STATE_DIR": str(tmp_path)})
    assert settings.api_keys == (("acme", hash_key("Xy#9kQ2!vLp")),)
    with TestClient(create_app(settings)) as c:
        assert c.get("/v1/models", headers={"Authorization": "Bearer Xy#9kQ2!vLp"}).status_code == 200
        assert c.get("/v1/models", headers={"Authorization": "Bearer Xy"}).status_code == 401
        assert c.get("/v1/models", headers={"X-API-Key": "Xy#9kQ2!vLp"}).status_code == 200
    # a key file: one entry per line, '#' lines are comments, commas and '#' inside keys are kept
    text = "# operators\nacme: a,b#c \n  # beta: old\nbeta:z:9\n"
    assert parse_api_keys(text, source="f", one_per_line=True) == (("acme", hash_key("a,b#c")),
                                                                   ("beta", hash_key("z:9")))


@pytest.mark.parametrize(("env", "needle"), [
    ({"FORECASTING_MAX_H": "abc"}, "FORECASTING_MAX_H must be a positive integer, got 'abc'"),
    ({"FORECASTING_API_KEYS": "acme"}, "FORECASTING_API_KEYS: entry 1 must be 'tenant:key'"),
    ({"FORECASTING_DB_BUSY_TIMEOUT_S": "-1"}, "FORECASTING_DB_BUSY_TIMEOUT_S must be a number of seconds > 0"),
])
def test_a_bad_setting_is_one_line_naming_the_variable_and_the_rule(tmp_path: Path, env: dict[str, str],
                                                                    needle: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="^" + needle.replace("(", r"\(")):
        Settings.from_env(env)
    if "FORECASTING_MAX_H" not in env:
        return  # one start of the command line is enough to pin its one-line message
    r = serve_in_process({"FORECASTING_STATE_DIR": str(tmp_path), **env}, monkeypatch)
    assert r.exit_code == 2, r
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in r.stderr, r.stderr


def test_metrics_are_for_admin_tenants_only(tmp_path: Path) -> None:
    keys = parse_api_keys("acme:k-acme, admin:k-admin", source="test")
    with TestClient(create_app(Settings(state_dir=tmp_path, api_keys=keys))) as c:
        r = c.get("/metrics", headers={"X-API-Key": "k-acme"})
        assert r.status_code == 403 and "admin tenant" in r.json()["detail"]
        assert c.get("/metrics", headers={"X-API-Key": "k-admin"}).status_code == 200
        assert c.get("/metrics").status_code == 401


# --------------------------------------------------------------------------- database faults
def test_a_locked_database_is_a_quick_503_with_retry_after_and_leaves_no_data(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(state_dir=tmp_path, db_busy_timeout_s=0.5))) as c:
        lock = sqlite3.connect(tmp_path / "forecasting.db")
        lock.execute("BEGIN EXCLUSIVE")
        try:
            start = time.monotonic()
            r = c.post("/v1/models", json={"name": "m", "model": "naive", "data": rows(), "h": 2})
            took = time.monotonic() - start
        finally:
            lock.rollback()
            lock.close()
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "2" and r.json()["type"] == "/problems/database-busy"
        assert took < 10, took
        jobs = tmp_path / "artifacts" / "_jobs"
        # the uploaded data was removed (the workers' pid files and the runner's lock file are no upload)
        assert [p.name for p in jobs.iterdir() if p.name not in ("workers", "runner.lock")] == []


def test_an_empty_database_beside_a_used_artifact_store_refuses_to_start(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.bin").write_bytes(b"weights")
    store = Store(f"sqlite:///{tmp_path / 'forecasting.db'}", tmp_path / "artifacts")
    store.register_version("demand", tenant="acme", spec={"name": "x"}, kind="forecast", artifact_src_dir=src,
                           fingerprint={})
    store.close()
    (tmp_path / "forecasting.db").unlink()
    for extra in ("-wal", "-shm"):
        (tmp_path / f"forecasting.db{extra}").unlink(missing_ok=True)
    (tmp_path / "forecasting.db").write_bytes(b"")  # a 0-byte database file
    with pytest.raises(ConflictError, match=r"holds no model versions, but the artifact store .* holds 1 version "
                                            r"folder\(s\) \(e\.g\. acme/demand/1\)"):
        create_app(Settings(state_dir=tmp_path))
    r = serve_in_process({"FORECASTING_STATE_DIR": str(tmp_path)}, monkeypatch)
    assert r.exit_code == 2 and "Traceback" not in r.stderr and "holds no model versions" in r.stderr, r.stderr


# --------------------------------------------------------------------------- export digests, cached models
@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Any]]:
    from forecasting.service.training import fit_and_save

    root = tmp_path_factory.mktemp("export")
    fit_and_save(pl.DataFrame(hourly()), root / "saved", model={"name": "xgboost", "params": {
        "n_estimators": 5, "max_depth": 2, "conformal_windows": 0}}, freq="1h")
    store = Store(f"sqlite:///{root / 'db.sqlite'}", root / "artifacts", cache_size=4)
    info = store.register_version("pax", tenant="acme", spec={"name": "xgboost"}, kind="forecast",
                                  artifact_src_dir=root / "saved", fingerprint={"freq": "1h"})
    yield store, info
    store.close()


def test_an_export_whose_files_and_manifest_were_rewritten_together_is_refused(exported: tuple[Store, Any]) -> None:
    import json

    store, info = exported
    folder = export_version(store, info)
    info = store.get("pax", tenant="acme")
    assert info.export_sha256 == artifacts.digest_folder(folder).sha256  # recorded with the version
    model, runtime = load_serving(store, info)
    assert runtime == "onnxruntime"
    # rewrite the history file and the manifest consistently: the export alone still verifies ...
    history = folder / "history.parquet"
    frame = pl.read_parquet(history)
    frame.with_columns(pl.col("y") * 10).write_parquet(history)
    manifest = json.loads((folder / artifacts.EXPORT_MANIFEST).read_text())
    manifest["files"]["history.parquet"] = artifacts.sha256_file(history)
    (folder / artifacts.EXPORT_MANIFEST).write_text(json.dumps(manifest))
    artifacts.verify_export(folder)
    # ... but not against the database: refused, also for the model cached before
    with pytest.raises(ArtifactIntegrityError, match="history.parquet"):
        load_serving(store, info)
    with pytest.raises(ArtifactIntegrityError):
        export_version(store, info)
    assert any("history.parquet" in line for line in store.integrity.check())


def test_a_cached_model_is_verified_again_when_its_files_change(exported: tuple[Store, Any]) -> None:
    store, info = exported
    model = load_version(store, info)
    assert load_version(store, info) is model  # cached
    assert not [line for line in store.integrity.check() if line.startswith(f"{info.artifact}: ")]
    folder = store.artifacts_dir / info.artifact
    (folder / "pipeline.json").write_bytes((folder / "pipeline.json").read_bytes() + b" ")
    with pytest.raises(ArtifactIntegrityError, match="pipeline.json"):
        load_version(store, info)
    failures = [line for line in store.integrity.check() if line.startswith(f"{info.artifact}: ")]
    assert len(failures) == 1 and "pipeline.json" in failures[0], failures


# --------------------------------------------------------------------------- fairness and queue limits
def test_another_tenants_job_starts_within_5_s_behind_50_queued_and_the_51st_gets_429(tmp_path: Path) -> None:
    keys = parse_api_keys("big:k-big, small:k-small", source="test")
    settings = Settings(state_dir=tmp_path, api_keys=keys, max_jobs_per_tenant=50, shutdown_grace_s=1.0)
    big, small = {"X-API-Key": "k-big"}, {"X-API-Key": "k-small"}
    with TestClient(create_app(settings)) as c:
        def job(job_id: str, headers: dict[str, str]) -> dict[str, Any]:
            return c.get(f"/v1/jobs/{job_id}", headers=headers).json()

        warm = c.post("/v1/models", json={"name": "warm", "model": "naive", "data": rows(), "h": 2}, headers=big)
        wait_until(lambda: job(warm.json()["id"], big)["state"] == "succeeded", 120, "the warm-up job")
        # short jobs: the queue fills faster than one worker drains them, up to the cap
        body = {"model": "naive", "data": rows(), "h": 2}
        ids, refused = [], None
        for i in range(150):
            r = c.post("/v1/models", json={"name": f"m{i}", **body}, headers=big)
            if r.status_code != 202:
                refused = r
                break
            ids.append(r.json()["id"])
        assert refused is not None and refused.status_code == 429, refused
        assert refused.headers["retry-after"] == "10" and refused.json()["type"] == "/problems/too-many-jobs"
        assert "already has 50 unfinished training jobs (the limit is 50" in refused.json()["detail"]
        start = time.monotonic()
        mine = c.post("/v1/models", json={"name": "mine", "model": "naive", "data": rows(), "h": 2}, headers=small)
        assert mine.status_code == 202
        wait_until(lambda: job(mine.json()["id"], small)["state"] in ("running", "succeeded"), 5,
                   "the other tenant's job starting")
        waited = time.monotonic() - start
        queued = sum(job(i, big)["state"] == "queued" for i in ids)
        assert queued >= 40, (queued, waited)  # it did not wait for the big tenant's queue to drain


def test_cancel_during_the_hold_out_fit_kills_the_worker(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "artifacts")
    runner = JobRunner(store, max_workers=1, grace_s=1.0)
    try:
        job_id = runner.submit_training("acme", "slow", SLOW, hourly(), h=24)
        info = wait_until(lambda: (j := runner.get_job(job_id, "acme")).message.startswith("hold-out fit") and j,
                          120, "the hold-out fit step")
        assert info.state == "running" and 0.15 <= info.progress < 0.3  # XGBoost reports its rounds (team 21, H5)
        pid = runner._slots[0].process.pid
        assert alive(pid)
        runner.cancel(job_id, "acme")
        wait_until(lambda: not alive(pid), 5, "the worker killed")
        assert runner.wait(job_id, "acme", timeout_s=10).state == "cancelled"
        assert not (runner.jobs_dir / job_id).exists()
        with pytest.raises(TooManyJobsError):  # the per-tenant cap holds at the runner too
            small = JobRunner(store, max_workers=1, max_unfinished_per_tenant=1)
            try:
                small.submit_training("acme", "a", "naive", rows(), h=2)
                small.submit_training("acme", "b", "naive", rows(), h=2)
            finally:
                small.shutdown(cancel_queued=True)
    finally:
        runner.shutdown()
        store.close()


# --------------------------------------------------------------------------- a real server: SIGKILL, SIGTERM
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(state: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FORECASTING_STATE_DIR": str(state), "FORECASTING_SHUTDOWN_GRACE_S": "1", **ONE_THREAD}
    proc = subprocess.Popen([FORECASTING, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 90, "the server answering")
    return proc


def _workers(state: Path) -> list[int]:
    folder = state / "artifacts" / "_jobs" / "workers"
    return [int(p.name) for p in folder.iterdir()] if folder.is_dir() else []


def test_sigkill_leaves_no_worker_and_the_job_runs_again_and_sigterm_stops_within_10_s(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve(tmp_path, port)
    try:
        r = httpx.post(f"{url}/v1/models", json={"name": "slow", "model": SLOW, "data": hourly(), "h": 24}, timeout=30)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        wait_until(lambda: httpx.get(f"{url}/v1/jobs/{job_id}").json()["state"] == "running", 120, "the job running")
        (worker,) = _workers(tmp_path)
        assert alive(worker)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        wait_until(lambda: not alive(worker), 5, "the orphaned worker exiting")  # parent-death watch
    finally:
        if server.poll() is None:
            server.kill()

    restarted = time.time()
    server = _serve(tmp_path, port)
    try:
        job = wait_until(lambda: (j := httpx.get(f"{url}/v1/jobs/{job_id}").json())["state"] == "running"
                         and j["started_at"] and j, 120, "the job running again")
        from datetime import datetime

        assert datetime.fromisoformat(job["started_at"]).timestamp() >= restarted - 1  # it started again
        assert worker not in _workers(tmp_path)
        (new_worker,) = wait_until(lambda: _workers(tmp_path), 30, "a new worker")
        start = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(10)
        stopped = time.monotonic() - start
        assert stopped < 10, stopped
        wait_until(lambda: not alive(new_worker), 5, "the worker stopped with the server")
    finally:
        if server.poll() is None:
            server.kill()
    store = Store(f"sqlite:///{tmp_path / 'forecasting.db'}", tmp_path / "artifacts")
    info = store.get_job(job_id, "default")
    store.close()
    # interrupted twice (the SIGKILL, then the SIGTERM past its grace): re-queued once, then failed
    assert (info.state, info.attempts) == ("failed", 2), info
    assert info.error == "interrupted by a shutdown a second time; not re-queued again"
