"""Issue 14, registered forecast latency: what a repeated registered forecast no longer pays for, and the
guarantees it keeps.

* ``Store.get`` keeps resolved references until anything is committed to the SQLite database
  (``PRAGMA data_version`` on a dedicated connection): a repeated forecast runs no SQL, and an alias moved,
  a version registered or deleted by another ``Store`` -- of this process or of another process, as the
  processes of ``forecasting serve --workers 2`` are -- is seen by the next request.
* The artifact and export checks on a cache hit are a ``stat`` of the folder (``artifacts.stat_signature``,
  one ``scandir`` per folder): a file changed after the model was cached is still refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import event

from forecasting import artifacts
from forecasting.errors import ArtifactIntegrityError, NotFoundError
from forecasting.service.core import Limits
from forecasting.service.registered import RegisteredModels
from forecasting.store import Store
from test_issue14_ops import hourly

SMALL_XGB = {"name": "xgboost", "params": {"n_estimators": 5, "max_depth": 2, "conformal_windows": 0}}


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small XGBoost saved folder (fitted once for the module; each test registers its own copies)."""
    pytest.importorskip("onnxruntime")
    from forecasting.service.training import fit_and_save

    folder = tmp_path_factory.mktemp("latency") / "saved"
    fit_and_save(pl.DataFrame(hourly()), folder, model=SMALL_XGB, freq="1h")
    return folder


@pytest.fixture
def registered(saved: Path, tmp_path: Path) -> Iterator[tuple[Store, RegisteredModels, Path]]:
    """Versions 1 and 2 of 'pax' (tenant acme), ``production`` on 1, version 1 exported to ONNX."""
    from forecasting.loading import export_version

    db = tmp_path / "db.sqlite"
    store = Store(f"sqlite:///{db}", tmp_path / "artifacts", cache_size=4)
    for _ in range(2):
        store.register_version("pax", tenant="acme", spec=SMALL_XGB, kind="forecast",
                               artifact_src_dir=saved, fingerprint={"freq": "1h", "series": 1})
    store.set_alias("pax", "production", 1, "acme")
    export_version(store, store.get("pax@1", tenant="acme"))
    services = RegisteredModels(store=store, runner=None, limits=Limits())  # type: ignore[arg-type]
    yield store, services, db
    store.close()


class Statements:
    """SQL statements run on an engine (SQLAlchemy's ``before_cursor_execute`` event)."""

    def __init__(self, engine: Any) -> None:
        self.seen: list[str] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.seen.append(statement)

    def count(self) -> int:
        n = len(self.seen)
        self.seen.clear()
        return n


def _forecast(services: RegisteredModels, ref: str) -> Any:
    return services.forecast("acme", ref, h=3, history=hourly(24 * 4))


def test_a_repeated_registered_forecast_runs_no_sql_and_one_lookup_after_a_change(
        registered: tuple[Store, RegisteredModels, Path]) -> None:
    store, services, _ = registered
    statements = Statements(store.engine)
    first = _forecast(services, "pax@production")
    assert first.registered.version == 1 and first.runtime == "onnxruntime"
    assert statements.count() <= 2  # the lookup and the version's aliases, or nothing if already resolved
    for _ in range(3):
        assert _forecast(services, "pax@production").registered.version == 1
    assert statements.count() == 0
    store.set_alias("pax", "production", 2, "acme")  # a commit: every resolved reference is dropped
    statements.count()
    assert _forecast(services, "pax@production").registered.version == 2
    assert statements.count() == 2  # one join query for the version, one for its aliases
    _forecast(services, "pax@production")
    assert statements.count() == 0


def test_an_alias_moved_by_another_store_is_seen_by_the_next_request(
        registered: tuple[Store, RegisteredModels, Path]) -> None:
    store, services, db = registered
    assert _forecast(services, "pax@production").registered.version == 1
    other = Store(f"sqlite:///{db}", store.artifacts_dir, migrate=False)
    try:
        other.set_alias("pax", "production", 2, "acme")
        assert _forecast(services, "pax@production").registered.version == 2
        assert store.get("pax", tenant="acme").version == 2
        info = other.register_version("pax", tenant="acme", spec=SMALL_XGB, kind="forecast", artifact_src_dir=None,
                                      fingerprint={"freq": "1h"})
        assert info.version == 3 and store.get("pax", tenant="acme").version == 3  # latest follows
        other.delete_version("pax", 2, "acme", force=True)
        with pytest.raises(NotFoundError, match="model 'pax' has no alias 'production'"):
            store.get("pax@production", tenant="acme")
        with pytest.raises(NotFoundError, match="model 'pax' has no version 2"):
            store.get("pax@2", tenant="acme")
    finally:
        other.close()


def test_an_alias_moved_by_another_process_is_seen_by_the_next_request(
        registered: tuple[Store, RegisteredModels, Path]) -> None:
    store, services, db = registered
    assert _forecast(services, "pax@production").registered.version == 1
    code = ("import sys; from forecasting.store import Store; "
            "s = Store(sys.argv[1], sys.argv[2], migrate=False); s.set_alias('pax', 'production', 2, 'acme'); "
            "s.close()")
    subprocess.run([sys.executable, "-c", code, f"sqlite:///{db}", str(store.artifacts_dir)], check=True,
                   timeout=120, env={**os.environ})
    assert _forecast(services, "pax@production").registered.version == 2


def test_a_resolved_version_is_a_copy_the_caller_may_change(registered: tuple[Store, RegisteredModels, Path]) -> None:
    store, _, _ = registered
    info = store.get("pax@1", tenant="acme")
    info.spec["params"]["n_estimators"] = 999
    info.metrics["x"] = 1
    again = store.get("pax@1", tenant="acme")
    assert again.spec["params"]["n_estimators"] == 5 and "x" not in again.metrics


def test_an_export_changed_after_it_was_cached_is_refused_on_the_next_request(
        registered: tuple[Store, RegisteredModels, Path]) -> None:
    store, services, _ = registered
    assert _forecast(services, "pax@1").runtime == "onnxruntime"  # the ONNX model is now cached
    folder = store.export_dir(store.get("pax@1", tenant="acme"))
    assert folder is not None
    onnx_file = next(p for p in sorted(folder.iterdir()) if p.suffix == ".onnx")
    data = bytearray(onnx_file.read_bytes())
    data[-1] ^= 0xFF  # same size, one byte changed: the mtime changes
    onnx_file.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match=onnx_file.name):
        _forecast(services, "pax@1")
    assert any(onnx_file.name in line for line in services.readiness())


def test_a_native_artifact_changed_after_it_was_cached_is_refused(
        registered: tuple[Store, RegisteredModels, Path]) -> None:
    store, services, _ = registered
    assert _forecast(services, "pax@2").runtime == "native"  # no export: the native model is cached
    folder = store.artifacts_dir / store.get("pax@2", tenant="acme").artifact  # type: ignore[operator]
    (folder / "pipeline.json").write_bytes((folder / "pipeline.json").read_bytes() + b" ")
    with pytest.raises(ArtifactIntegrityError, match="pipeline.json"):
        _forecast(services, "pax@2")


def test_stat_signature_sees_changes_in_subfolders_and_does_not_follow_links(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "f.bin").write_bytes(b"12")
    (folder / "m.json").write_text("{}")
    before = artifacts.stat_signature(folder)
    assert len(before) == 64 and artifacts.stat_signature(folder) == before
    (folder / "sub" / "f.bin").write_bytes(b"123")  # a nested file grows
    changed = artifacts.stat_signature(folder)
    assert changed != before
    (folder / "sub" / "g.bin").write_bytes(b"")  # a nested file added
    assert artifacts.stat_signature(folder) != changed
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"x" * 100)
    (folder / "link").symlink_to(outside)
    linked = artifacts.stat_signature(folder)
    (outside / "big").write_bytes(b"y" * 200)  # behind a link: not followed (sealed folders hold no links)
    assert artifacts.stat_signature(folder) == linked
    assert artifacts.stat_signature(tmp_path / "gone") == "missing"
    assert artifacts.stat_signature(folder / "m.json") == "missing"  # a file, not a folder
