"""Issue 14: served forecasts are queued by the request and written in batches by one writer thread.

The records must stay what issue 16 kept (every served forecast with version, origin, step, intervals), readable
right after serving (readers drain the queue), in fewer Parquet parts than forecasts, flushed on shutdown.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import forecasting.service.monitoring as monitoring_module
from forecasting.service.core import Limits
from forecasting.service.monitoring import Monitoring, _internal_ds
from forecasting.service.registered import RegisteredModels
from forecasting.service.training import train
from forecasting.store import Store

T = "default"
HISTORY = pl.DataFrame({"unique_id": ["a"] * 8 + ["b"] * 8, "ds": list(range(1, 9)) * 2,
                        "y": [1.0, 2, 3, 4, 5, 6, 7, 8] + [5.0] * 7 + [6.0]})


@pytest.fixture()
def store(tmp_path: Path):
    store = Store(f"sqlite:///{(tmp_path / 'forecasting.db').as_posix()}", tmp_path / "artifacts")
    result = train(HISTORY, kind="forecast", spec="naive", workdir=tmp_path / "work", h=3, freq=1)
    store.register_version("m", tenant=T, spec=result.spec, kind="forecast", artifact_src_dir=result.artifact,
                           fingerprint=result.fingerprint, metrics=result.metrics, exog=result.exog,
                           max_h=result.max_h)
    yield store
    store.close()


def _serve(mon: Monitoring, n: int) -> list[tuple[Any, Any]]:
    """Serve ``n`` forecasts (h=3, 80 % interval, two series) from histories ending at ds 4..8 in turn;
    returns what ``on_served`` got, per forecast."""
    seen: list[tuple[Any, Any]] = []

    def on_served(tenant: str, info: Any, result: Any) -> None:
        seen.append((info, result))
        mon.record_served(tenant, info, result)

    services = RegisteredModels(store=mon.store, runner=None, limits=Limits(), on_served=on_served)  # type: ignore[arg-type]
    for i in range(n):
        services.forecast(T, "m", h=3, level=[80], history=HISTORY.filter(pl.col("ds") <= 4 + i % 5))
    return seen


def _old_record(info: Any, result: Any) -> pl.DataFrame:
    """What the per-forecast path before issue 14 wrote (commit b8e0848's ``Monitoring._record_served``),
    without ``served_at`` and ``batch``: the oracle the batched frame must equal."""
    fc = _internal_ds(result.forecasts)
    alias = result.alias
    origin = result.panel.frame.group_by("unique_id").agg(pl.col("ds").max().alias("origin"))
    rename = {alias: "y_hat"}
    for lv in result.level:
        for side in ("lo", "hi"):
            rename[f"{alias}-{side}-{lv}"] = f"{side}-{float(lv):g}"
    cols = [c for c in rename if c in fc.columns]
    return (fc.select("unique_id", "ds", *cols).rename({c: rename[c] for c in cols})
            .with_columns(pl.col("unique_id").cast(pl.String),
                          (pl.int_range(pl.len()).over("unique_id") + 1).alias("step"),
                          pl.lit(info.version).alias("version"))
            .join(origin.with_columns(pl.col("unique_id").cast(pl.String)), on="unique_id", how="left"))


def _parts(mon: Monitoring) -> list[Path]:
    return sorted(mon.parts.folder(T, "m", "served").glob("part-*.parquet"))


def test_fifty_forecasts_are_readable_right_after_in_one_part_equal_to_the_old_records(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitoring_module, "SERVED_FLUSH_S", 60.0)  # only the reader's drain flushes
    mon = Monitoring(store, background=True)
    start = datetime.now(UTC)
    seen = _serve(mon, 50)
    try:
        assert _parts(mon) == []  # queued, nothing written on the request path
        acc = mon.accuracy(T, "m")  # a reader: drains the queue first
        assert acc.rows.is_empty()  # no actuals yet
        assert len(_parts(mon)) == 1  # 50 forecasts, one part
        stored = mon.parts.scan(T, "m", "served").collect()  # type: ignore[union-attr]
        assert stored.height == 50 * 2 * 3
        assert stored.columns == ["unique_id", "ds", "y_hat", "lo-80", "hi-80", "step", "version", "served_at",
                                  "origin", "batch"]
        # one batch number per forecast, increasing in the order served
        batches = stored.get_column("batch").unique(maintain_order=True).to_list()
        assert len(batches) == 50 and batches == sorted(batches)
        assert stored.get_column("served_at").min() >= start  # type: ignore[operator]
        assert stored.get_column("served_at").max() <= datetime.now(UTC)  # type: ignore[operator]
        expected = pl.concat([_old_record(info, result) for info, result in seen])
        assert_frame_equal(stored.drop("served_at", "batch"), expected)
        # origins 4..8 in turn, steps 1..3 after them; naive of a from ds 4 is 4.0
        first = stored.filter(pl.col("batch") == batches[0], pl.col("unique_id") == "a")
        assert first.select("ds", "step", "origin", "y_hat").rows() == [(5, 1, 4, 4.0), (6, 2, 4, 4.0),
                                                                       (7, 3, 4, 4.0)]
        assert sorted(stored.get_column("origin").unique().to_list()) == [4, 5, 6, 7, 8]
    finally:
        mon.close()


def test_forecasts_at_other_levels_share_a_part(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitoring_module, "SERVED_FLUSH_S", 60.0)
    mon = Monitoring(store, background=True)
    seen: list[tuple[Any, Any]] = []

    def on_served(tenant: str, info: Any, result: Any) -> None:
        seen.append((info, result))
        mon.record_served(tenant, info, result)

    services = RegisteredModels(store=store, runner=None, limits=Limits(), on_served=on_served)  # type: ignore[arg-type]
    try:
        for level in ([], [80], [95, 80]):
            services.forecast(T, "m", h=3, level=level, history=HISTORY)
        mon._drain_served()
        assert len(_parts(mon)) == 1
        stored = mon.parts.scan(T, "m", "served").collect()  # type: ignore[union-attr]
        assert stored.columns[:7] == ["unique_id", "ds", "y_hat", "lo-80", "hi-80", "lo-95", "hi-95"]
        assert stored.get_column("lo-80").null_count() == 6 and stored.get_column("lo-95").null_count() == 12
        expected = pl.concat([_old_record(info, result) for info, result in seen], how="diagonal_relaxed")
        assert_frame_equal(stored.drop("served_at", "batch"), expected.select(stored.drop("served_at", "batch").columns))
    finally:
        mon.close()


def test_actuals_score_every_batched_forecast(store: Store) -> None:
    mon = Monitoring(store, background=True)
    mon.keep_training_data(store.get("m", tenant=T), HISTORY)
    try:
        _serve(mon, 5)  # origins 4..8, h=3: ds 5..11
        mon.observe(T, "m", pl.DataFrame({"unique_id": ["a", "b"], "ds": [9, 9], "y": [9.0, 6.0]}))
        row = mon.accuracy(T, "m").rows.row(0, named=True)
        # actuals up to ds 9 per series: 3 points from origins 4, 5 and 6, 2 from 7, 1 from 8 = 12
        assert row["points"] == 2 * 12 and row["series"] == 2
    finally:
        mon.close()


def test_shutdown_writes_what_is_queued(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitoring_module, "SERVED_FLUSH_S", 60.0)
    mon = Monitoring(store, background=True)
    _serve(mon, 5)
    time.sleep(0.05)
    assert _parts(mon) == []
    mon.close()
    parts = _parts(mon)
    assert len(parts) == 1 and pl.read_parquet(parts[0]).height == 5 * 2 * 3
    closed = monitoring_module._ServedWriter(mon._write_served)
    closed.close()
    info = store.get("m", tenant=T)
    closed.put(monitoring_module._ServedRecord(T, info, _serve(Monitoring(store), 1)[0][1], datetime.now(UTC)))
    assert len(_parts(mon)) == 1 + 2  # the synchronous monitor's part, then the late record written at once


def test_a_full_queue_or_the_interval_flushes_without_a_reader(store: Store,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitoring_module, "SERVED_FLUSH_S", 60.0)
    monkeypatch.setattr(monitoring_module, "SERVED_BATCH", 10)
    mon = Monitoring(store, background=True)
    try:
        _serve(mon, 25)  # full batches of 10 (or a few more, queued while the writer wakes), the rest queued
        deadline = time.monotonic() + 10
        while not _parts(mon) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        heights = [pl.read_parquet(p).height for p in _parts(mon)]
        assert heights and min(heights) >= 10 * 6 and sum(heights) <= 25 * 6  # full batches only, no reader
    finally:
        mon.close()
    assert sum(pl.read_parquet(p).height for p in _parts(mon)) == 25 * 6 and len(_parts(mon)) <= 3
    before = len(_parts(mon))

    monkeypatch.setattr(monitoring_module, "SERVED_FLUSH_S", 0.2)
    again = Monitoring(store, background=True)
    try:
        _serve(again, 1)
        deadline = time.monotonic() + 10
        while len(_parts(again)) < before + 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_parts(again)) == before + 1  # written ~0.2 s after it was served, no reader, no close
    finally:
        again.close()


def test_the_request_only_queues(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    built_on: list[str] = []
    real = monitoring_module._served_frame

    def spy(records: Any, next_batch: Any) -> pl.DataFrame:
        built_on.append(threading.current_thread().name)
        return real(records, next_batch)

    monkeypatch.setattr(monitoring_module, "_served_frame", spy)
    mon = Monitoring(store, background=True)
    _serve(mon, 3)
    mon.close()
    assert built_on == ["served-forecasts"]  # one frame, built by the writer thread


def test_a_failing_batch_is_logged_and_the_writer_goes_on(store: Store, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    real = monitoring_module._served_frame
    calls = {"n": 0}

    def flaky(records: Any, next_batch: Any) -> pl.DataFrame:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        return real(records, next_batch)

    monkeypatch.setattr(monitoring_module, "_served_frame", flaky)
    mon = Monitoring(store, background=True)
    try:
        _serve(mon, 2)
        mon._drain_served()
        assert "could not record 2 forecast(s) served by m@1" in caplog.text
        _serve(mon, 1)
        mon._drain_served()
        assert len(_parts(mon)) == 1 and pl.read_parquet(_parts(mon)[0]).height == 6
    finally:
        mon.close()
