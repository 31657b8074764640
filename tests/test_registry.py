"""The model store (forecasting.store), registered versions loaded (forecasting.loading), training jobs.

Everything runs on a temporary SQLite file; the job tests start real (spawned) worker
processes, shared by one module-scoped runner so their start-up is paid once.
"""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sqlalchemy import inspect

from forecasting.errors import (
    ArtifactIntegrityError,
    CapabilityError,
    ConflictError,
    InvalidParameterError,
    NotFoundError,
)
from forecasting.jobs import JobRunner
from forecasting.loading import load_version
from forecasting.service.training import data_fingerprint
from forecasting.store import Store, parse_ref

XGB_SPEC = {"name": "xgboost", "params": {"n_estimators": 20, "max_depth": 3, "conformal_windows": 0}}


def _url(path: Path) -> str:
    return f"sqlite:///{(path / 'registry.db').as_posix()}"


@pytest.fixture()
def registry(tmp_path: Path) -> Store:
    reg = Store(_url(tmp_path), tmp_path / "artifacts")
    yield reg
    reg.close()


def _artifact(folder: Path, payload: str = "x") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text('{"payload": "%s"}' % payload)
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "weights.bin").write_bytes(b"\x00\x01\x02" + payload.encode())
    return folder


def _register(reg: Store, name: str = "demand", *, tenant: str = "acme", src: Path | None = None, **kw):
    return reg.register_version(name, tenant=tenant, spec={"name": "xgboost"}, kind="forecast",
                                artifact_src_dir=src, fingerprint={"rows": 10}, metrics={"smape": 1.0},
                                exog=["price"], max_h=12, **kw)


def air_passengers_like(n_series: int = 3, n: int = 120, *, seed: int = 0) -> pl.DataFrame:
    """Monthly series with a trend and a multiplicative yearly season, as AirPassengers."""
    rng = np.random.default_rng(seed)
    ds = pl.date_range(datetime(1949, 1, 1), datetime(1949 + n // 12, 12, 1), "1mo", eager=True)[:n]
    frames = []
    t = np.arange(n)
    for i in range(n_series):
        level = 100 + 40 * i
        y = (level + 2.0 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 12)) + rng.normal(0, 3, n)
        frames.append(pl.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": y}))
    return pl.concat(frames).with_columns(pl.col("ds").cast(pl.Datetime("us")))


# --------------------------------------------------------------------------- schema
def test_fresh_database_gets_the_schema_and_migrating_again_is_a_no_op(tmp_path: Path):
    reg = Store(_url(tmp_path), tmp_path / "artifacts")
    assert reg.schema_revision() == "0003"  # the newest revision (0003: operations)
    tables = set(inspect(reg.engine).get_table_names())
    assert {"models", "model_versions", "aliases", "jobs", "alembic_version"} <= tables
    _register(reg, src=_artifact(tmp_path / "src"))
    reg.migrate()  # idempotent, keeps the data
    reg.close()
    again = Store(_url(tmp_path), tmp_path / "artifacts")
    assert again.schema_revision() == "0003"
    assert again.get("demand", tenant="acme").version == 1
    again.close()


def test_the_orm_models_match_the_migration(registry: Store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from forecasting.store import Base

    with registry.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_parent_folder_is_created(tmp_path: Path):
    reg = Store(f"sqlite:///{(tmp_path / 'var' / 'deep' / 'f.db').as_posix()}", tmp_path / "a")
    assert (tmp_path / "var" / "deep" / "f.db").is_file()
    reg.close()


# --------------------------------------------------------------------------- versions and aliases
def test_versions_are_numbered_per_model_and_never_reused(registry: Store, tmp_path: Path):
    src = _artifact(tmp_path / "src")
    assert [_register(registry, src=src).version for _ in range(3)] == [1, 2, 3]
    assert _register(registry, "other", src=src).version == 1
    registry.delete_version("demand", 3, "acme")
    assert _register(registry, src=src).version == 4
    assert [v.version for v in registry.versions("demand", "acme")] == [1, 2, 4]
    latest = registry.get("demand", tenant="acme")
    assert latest.version == 4 and latest.artifact == "acme/demand/4" and latest.exog == ("price",)
    assert (registry.artifacts_dir / "acme" / "demand" / "4" / "sub" / "weights.bin").is_file()
    assert latest.size_bytes > 0 and len(latest.sha256) == 64
    assert registry.get("demand@2", tenant="acme").version == 2
    assert registry.get("demand@latest", tenant="acme").version == 4
    with pytest.raises(NotFoundError, match="no version 3"):
        registry.get("demand@3", tenant="acme")
    models = registry.list_models("acme")
    assert [(m.name, m.latest_version, m.n_versions) for m in models] == [("demand", 4, 3), ("other", 1, 1)]
    assert latest.to_dict()["ref"] == "demand@4"


def test_aliases_resolve_and_move(registry: Store, tmp_path: Path):
    src = _artifact(tmp_path / "src")
    for _ in range(2):
        _register(registry, src=src)
    info = registry.set_alias("demand", "production", 1, "acme")
    assert info.aliases == ("production",)
    assert registry.get("demand@production", tenant="acme").version == 1
    registry.set_alias("demand", "production", 2, "acme")
    assert registry.get("demand@production", tenant="acme").version == 2
    assert registry.list_models("acme")[0].aliases == {"production": 2}
    with pytest.raises(NotFoundError, match="no alias 'staging'"):
        registry.get("demand@staging", tenant="acme")
    with pytest.raises(NotFoundError):
        registry.set_alias("demand", "staging", 9, "acme")
    for bad in ("3", "latest", "Prod", "-x"):
        with pytest.raises(InvalidParameterError) as err:
            registry.set_alias("demand", bad, 1, "acme")
        assert err.value.field == "alias"
    registry.delete_alias("demand", "production", "acme")
    with pytest.raises(NotFoundError):
        registry.get("demand@production", tenant="acme")


@pytest.mark.parametrize("bad", ["Demand", "-demand", "a" * 64, "de mand", "", "../x"])
def test_model_names_are_checked_naming_the_field(registry: Store, bad: str):
    with pytest.raises(InvalidParameterError) as err:
        _register(registry, bad)
    assert err.value.field == "name" and repr(bad) in err.value.message
    with pytest.raises(InvalidParameterError) as err:
        registry.get(bad, tenant="acme")
    assert err.value.field == "model"


def test_parse_ref():
    assert parse_ref("demand") == ("demand", None)
    assert parse_ref("demand@3") == ("demand", 3)
    assert parse_ref("demand@production") == ("demand", "production")
    assert parse_ref("demand@latest") == ("demand", None)
    with pytest.raises(InvalidParameterError):
        parse_ref("demand@0")


def test_another_tenants_model_is_not_found(registry: Store, tmp_path: Path):
    _register(registry, tenant="acme", src=_artifact(tmp_path / "src"))
    registry.set_alias("demand", "production", 1, "acme")
    with pytest.raises(NotFoundError, match="model 'demand' not found") as err:
        registry.get("demand", tenant="globex")
    assert err.value.field == "model"
    for call in (lambda: registry.get("demand@production", tenant="globex"),
                 lambda: registry.versions("demand", "globex"),
                 lambda: registry.delete_version("demand", 1, "globex"),
                 lambda: registry.set_alias("demand", "mine", 1, "globex")):
        with pytest.raises(NotFoundError):
            call()
    assert registry.list_models("globex") == []
    # the same name is free for another tenant, with its own numbering and folder
    other = _register(registry, tenant="globex", src=_artifact(tmp_path / "src2", "y"))
    assert other.version == 1 and other.artifact == "globex/demand/1"
    assert registry.get("demand", tenant="acme").sha256 != other.sha256


def test_delete_refuses_an_aliased_version_unless_forced(registry: Store, tmp_path: Path):
    info = _register(registry, src=_artifact(tmp_path / "src"))
    registry.set_alias("demand", "production", 1, "acme")
    with pytest.raises(ConflictError, match="alias 'production'") as err:
        registry.delete_version("demand", 1, "acme")
    assert err.value.details["aliases"] == ["production"]
    folder = registry.artifacts_dir / info.artifact
    assert folder.is_dir()
    registry.delete_version("demand", 1, "acme", force=True)
    assert not folder.exists()
    with pytest.raises(NotFoundError):
        registry.get("demand@production", tenant="acme")
    with pytest.raises(NotFoundError, match="no versions"):
        registry.get("demand", tenant="acme")
    with pytest.raises(NotFoundError):
        registry.delete_version("demand", 1, "acme")


def test_store_imports_no_model_family() -> None:
    """The store knows versions, aliases and jobs, never a model family (nor the export, runtime or explainers)."""
    code = ("import sys, forecasting.store, forecasting.artifacts; "
            "bad = sorted(m for m in sys.modules if m.startswith(('forecasting.models', 'forecasting.export', "
            "'forecasting.runtime', 'forecasting.tabular', 'forecasting.explain', 'forecasting.loading', 'xgboost', "
            "'torch', 'neuralforecast', 'statsforecast', 'onnxruntime', 'sklearn')) or m == 'forecasting.features'); "
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


# --------------------------------------------------------------------------- integrity
@pytest.mark.parametrize("tamper, message", [
    (lambda d: (d / "sub" / "weights.bin").write_bytes(b"\x00\x01\x03x"), "file sub/weights.bin has changed"),
    (lambda d: (d / "model.json").unlink(), "file model.json is missing"),
    (lambda d: (d / "extra.py").write_text("import os"), "unexpected file extra.py"),
])
def test_a_tampered_artifact_is_refused_naming_the_file(registry: Store, tmp_path: Path, tamper, message):
    info = _register(registry, src=_artifact(tmp_path / "src"))
    assert registry.artifact_path(info) == (registry.artifacts_dir / info.artifact).resolve()
    tamper(registry.artifacts_dir / info.artifact)
    with pytest.raises(ArtifactIntegrityError, match=message) as err:
        registry.artifact_path(registry.get("demand", tenant="acme"))
    assert err.value.details["path"] == "acme/demand/1"
    with pytest.raises(ArtifactIntegrityError):
        load_version(registry, info)


def test_spec_only_versions_have_no_artifact(registry: Store):
    info = registry.register_version("ets", tenant="acme", spec={"name": "seasonal_naive", "params": {}},
                                     kind="forecast", artifact_src_dir=None, fingerprint={"freq": "1mo"}, metrics={})
    assert info.artifact is None and info.sha256 is None
    with pytest.raises(CapabilityError, match="spec only"):
        registry.artifact_path(info)
    model = load_version(registry, info)
    assert model.name == "seasonal_naive" and model.get_params()["season_length"] == 12


def test_data_fingerprint_is_canonical():
    df = air_passengers_like(2, 30)
    fp = data_fingerprint(df, freq="1mo")
    assert fp["series"] == 2 and fp["rows"] == 60 and fp["ds_min"].startswith("1949-01-01")
    assert data_fingerprint(df.reverse(), freq="1mo")["sha256"] == fp["sha256"]  # row order does not matter
    assert data_fingerprint(df.with_columns(pl.col("y") + 1e-9), freq="1mo")["sha256"] != fp["sha256"]


# --------------------------------------------------------------------------- jobs
@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("jobs")
    reg = Store(_url(root), root / "artifacts", cache_size=2)
    runner = JobRunner(reg, max_workers=1, time_limit_s=300)
    yield reg, runner
    runner.shutdown()
    reg.close()


def test_training_job_registers_a_loadable_xgboost_version(jobs):
    reg, runner = jobs
    data = air_passengers_like()
    job_id = runner.submit_training("acme", "passengers", XGB_SPEC, data, "forecast", h=12)
    assert runner.get_job(job_id, "acme").state in ("queued", "running")
    job = runner.wait(job_id, "acme", timeout_s=240)
    assert job.state == "succeeded", job.error
    assert (job.model, job.version, job.progress) == ("passengers", 1, 1.0)
    assert job.started_at is not None and job.finished_at >= job.started_at
    info = reg.get("passengers", tenant="acme")
    assert info.kind == "forecast" and info.max_h == 12 and info.artifact == "acme/passengers/1"
    assert info.spec["params"]["season_length"] == 12
    assert info.fingerprint["series"] == 3 and info.fingerprint["rows"] == 360 and info.fingerprint["freq"] == "1mo"
    assert info.metrics["window"]["h"] == 12 and 0 < info.metrics["smape"] < 50 and math.isfinite(info.metrics["mase"])
    assert not (runner.jobs_dir / job_id).exists()  # the job's data and temp artifact are cleaned up
    model = load_version(reg, info)
    assert load_version(reg, info) is model  # cached by (path, digest)
    fc = model.predict(12)
    assert fc.height == 36 and fc["XGBoost"].is_finite().all()
    with pytest.raises(NotFoundError):
        runner.get_job(job_id, "globex")


def test_statistical_and_tabular_jobs(jobs):
    reg, runner = jobs
    stat = runner.submit_training("acme", "naive-pax", "seasonal_naive", air_passengers_like(2, 60), "forecast")
    rng = np.random.default_rng(1)
    x = rng.normal(size=60)
    table = pl.DataFrame({"x": x, "c": ["a", "b", "c"] * 20, "y": 3 * x + rng.normal(0, 0.1, 60)})
    tab = runner.submit_training("acme", "pricing", {"algorithm": "linear"}, table, "tabular", target="y")
    s, t = runner.wait(stat, "acme", timeout_s=120), runner.wait(tab, "acme", timeout_s=120)
    assert s.state == "succeeded", s.error
    assert t.state == "succeeded", t.error
    si = reg.get("naive-pax", tenant="acme")
    assert si.artifact is None and si.max_h == 24 and "smape" in si.metrics  # spec only: refits at forecast time
    ti = reg.get("pricing", tenant="acme")
    assert ti.kind == "tabular" and ti.exog == ("x", "c") and ti.metrics["window"]["k"] == 5
    assert ti.metrics["r2"] > 0.9
    pred = load_version(reg, ti).predict(table.head(3))
    assert pred.height == 3


def test_a_job_with_bad_data_fails_with_the_library_message(jobs):
    _, runner = jobs
    data = air_passengers_like(1, 60)
    data = pl.concat([data, data.head(2)])  # duplicate timestamps
    job_id = runner.submit_training("acme", "broken", XGB_SPEC, data, "forecast")
    job = runner.wait(job_id, "acme", timeout_s=120)
    assert job.state == "failed"
    assert "duplicate" in job.error and "s0" in job.error
    assert job.error_field is not None and job.model is None
    with pytest.raises(NotFoundError):
        runner.registry.get("broken", tenant="acme")


def test_bad_requests_are_refused_before_queueing(jobs):
    _, runner = jobs
    with pytest.raises(InvalidParameterError) as err:
        runner.submit_training("acme", "Bad Name", "naive", air_passengers_like(1, 30))
    assert err.value.field == "name"
    with pytest.raises(InvalidParameterError):
        runner.submit_training("acme", "ok", {"name": "xgboost", "params": {"n_estimators": 0}},
                               air_passengers_like(1, 30))
    with pytest.raises(InvalidParameterError) as err:
        runner.submit_training("acme", "ok", {"algorithm": "linear"}, pl.DataFrame({"y": [1.0]}), "tabular")
    assert err.value.field == "target"
    with pytest.raises(CapabilityError):
        runner.submit_training("acme", "ok", {"algorithm": "hist_gradient_boosting"}, pl.DataFrame({"y": [1.0]}),
                               "tabular", target="y")


def test_cancel_a_queued_job(jobs):
    reg, runner = jobs
    first = runner.submit_training("acme", "first", XGB_SPEC, air_passengers_like(), "forecast")
    second = runner.submit_training("acme", "second", XGB_SPEC, air_passengers_like(), "forecast")
    assert runner.get_job(second, "acme").state == "queued"
    cancelled = runner.cancel(second, "acme")
    assert cancelled.state == "cancelled" and cancelled.finished_at is not None
    with pytest.raises(NotFoundError):
        runner.cancel(first, "globex")
    assert runner.wait(first, "acme", timeout_s=240).state == "succeeded"
    assert runner.wait(second, "acme", timeout_s=60).state == "cancelled"
    with pytest.raises(NotFoundError):
        reg.get("second", tenant="acme")
    with pytest.raises(ConflictError, match="already succeeded"):
        runner.cancel(first, "acme")


def test_restart_recovery_fails_jobs_left_running(tmp_path: Path):
    reg = Store(_url(tmp_path), tmp_path / "artifacts")
    running = reg.create_job(tenant="acme", kind="train", request={"name": "x"})
    reg.update_job(running.id, state="running")
    queued = reg.create_job(tenant="acme", kind="train", request={"name": "y"})
    done = reg.create_job(tenant="acme", kind="train", request={"name": "z"})
    reg.update_job(done.id, state="succeeded")
    reg.close()

    reg = Store(_url(tmp_path), tmp_path / "artifacts")  # "after the restart"
    runner = JobRunner(reg)
    assert sorted(runner.recover()) == sorted([running.id, queued.id])
    for job_id in (running.id, queued.id):
        job = runner.get_job(job_id, "acme")
        assert job.state == "failed" and job.error == "interrupted by a restart" and job.finished_at is not None
    assert runner.get_job(done.id, "acme").state == "succeeded"
    assert runner.recover() == []
    runner.shutdown()
    reg.close()
