"""Issue 16: observations, served-forecast accuracy, retraining decisions, schedules, anomalies (library, CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from forecasting.errors import ConflictError, InvalidInputError, InvalidParameterError, NotFoundError
from forecasting.service import Limits
from forecasting.service.monitoring import Monitoring, RetrainScheduler, detect_anomalies
from forecasting.service.registered import RegisteredModels
from forecasting.service.training import train
from forecasting.store import Store

T = "default"


def _store(folder: Path) -> Store:
    return Store(f"sqlite:///{(folder / 'forecasting.db').as_posix()}", folder / "artifacts")


def _register(store: Store, mon: Monitoring, frame: pl.DataFrame, spec: object, *, name: str = "m",
              h: int = 2) -> None:
    result = train(frame, kind="forecast", spec=spec, workdir=store.artifacts_dir.parent / "work", h=h, freq=1)
    info = store.register_version(name, tenant=T, spec=result.spec, kind="forecast", artifact_src_dir=result.artifact,
                                  fingerprint=result.fingerprint, metrics=result.metrics, exog=result.exog,
                                  max_h=result.max_h)
    mon.keep_training_data(info, frame)


@pytest.fixture()
def mon(tmp_path: Path):
    store = _store(tmp_path)
    monitoring = Monitoring(store)
    history = pl.DataFrame({"unique_id": ["a"] * 8 + ["b"] * 8, "ds": list(range(1, 9)) * 2,
                            "y": [1.0, 2, 3, 4, 5, 6, 7, 8] + [5.0] * 7 + [6.0]})
    _register(store, monitoring, history, "naive")
    yield monitoring
    store.close()


def _batch(uid: list[str], ds: list[int], y: list[float | None]) -> pl.DataFrame:
    return pl.DataFrame({"unique_id": uid, "ds": ds, "y": y}, schema={"unique_id": pl.String, "ds": pl.Int64,
                                                                       "y": pl.Float64})


# --------------------------------------------------------------------------- observations
def test_observations_append_read_back_replace_and_gaps(mon: Monitoring) -> None:
    assert mon.observations(T, "m").height == 16  # the training data is kept
    out = mon.observe(T, "m", _batch(["a", "a", "b"], [9, 12, 9], [9.0, 12.0, 6.5]))
    assert (out.rows, out.replaced, out.series) == (3, 0, ["a", "b"])
    assert out.gaps == [{"unique_id": "a", "missing": 2, "examples": ["10", "11"]}]
    got = mon.observations(T, "m", series=["a"], start="8", end=12)
    assert got["ds"].to_list() == [8, 9, 12] and got["y"].to_list() == [8.0, 9.0, 12.0]
    again = mon.observe(T, "m", _batch(["a"], [9], [9.5]), replace=True)
    assert again.replaced == 1
    assert mon.observations(T, "m", series=["a"], start=9, end=9)["y"].to_list() == [9.5]


@pytest.mark.parametrize(("batch", "message"), [
    (_batch(["a", "zz", "zz"], [9, 9, 10], [1.0, 2.0, 3.0]),
     "observations for series model 'm' does not have: zz (rows 1, 2); nothing was stored"),
    (_batch(["a", "a"], [9, 10], [1.0, None]),
     "observations: y is null, NaN or infinite in rows 1 (series a); nothing was stored"),
    (_batch(["b", "a"], [9, 8], [1.0, 2.0]),
     "rows 1 are already stored (series a, ds 8): pass replace=true to overwrite them; nothing was stored"),
    (_batch(["a", "a", "a"], [10, 12, 14], [1.0, 2.0, 3.0]),
     "observations are at frequency '2' but the model was trained at '1' (rows 0, 1, 2); nothing was stored"),
])
def test_bad_batches_name_the_rows_and_store_nothing(mon: Monitoring, batch: pl.DataFrame, message: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        mon.observe(T, "m", batch)
    assert err.value.message == message
    assert mon.observations(T, "m").height == 16


def test_timestamps_before_the_stored_ones_are_refused(mon: Monitoring) -> None:
    mon.observe(T, "m", _batch(["a"], [10], [10.0]))  # a gap at 9, reported
    with pytest.raises(InvalidInputError, match=r"rows 0 are at or before the last stored timestamp of their "
                                                 r"series \('a': 10\)"):
        mon.observe(T, "m", _batch(["a"], [9], [9.0]))
    with pytest.raises(NotFoundError):
        mon.observe(T, "nothing", _batch(["a"], [11], [1.0]))


# --------------------------------------------------------------------------- accuracy
def test_served_forecasts_are_scored_when_actuals_arrive(mon: Monitoring) -> None:
    services = RegisteredModels(store=mon.store, runner=None, limits=Limits(), on_served=mon.record_served)  # type: ignore[arg-type]
    served = services.forecast(T, "m", h=2, level=[80], history=mon.observations(T, "m"))
    mon.observe(T, "m", _batch(["a", "a", "b", "b"], [9, 10, 9, 10], [9.0, 12.0, 6.0, 6.0]))
    acc = mon.accuracy(T, "m")
    row = acc.rows.row(0, named=True)
    # naive from 8 (a) and 6 (b): a: sMAPE (200/17 + 200*4/20)/2, MASE 2.5/1; b: exact, MASE 0
    assert row["points"] == 4 and row["series"] == 2
    assert row["smape"] == pytest.approx((200 / 17 + 40) / 2 / 2)
    assert row["mase"] == pytest.approx((2.5 + 0.0) / 2)
    fc = served.forecasts
    lo, hi = fc["Naive-lo-80"].to_numpy(), fc["Naive-hi-80"].to_numpy()
    actual = np.array([9.0, 12.0, 6.0, 6.0])
    inside = (actual >= lo) & (actual <= hi)
    assert row["coverage_80"] == pytest.approx((inside[:2].mean() + inside[2:].mean()) / 2)
    steps = mon.accuracy(T, "m", by="step").rows
    assert steps["step"].to_list() == [1, 2]
    assert steps["smape"].to_list() == pytest.approx([200 / 17 / 2, 40 / 2])
    assert mon.accuracy(T, "m", by="series").rows["unique_id"].to_list() == ["a", "b"]
    assert ("default", "m", "1", "mase", pytest.approx(1.25)) in mon.gauges()
    flagged = mon.observation_anomalies(T, "m", level=80).points
    assert flagged["anomaly"].to_list() == (~inside).tolist()
    html = mon.report_sections(T, "m", level=80)
    assert 'id="served-accuracy"' in html and "By horizon step" in html and "data:image/png;base64," in html
    assert f"{int((~inside).sum())} of 4 observed points lie outside the served 80% interval" in html
    services = RegisteredModels(store=mon.store, runner=None, limits=Limits(), report_sections=mon.report_sections)  # type: ignore[arg-type]
    report = services._live_sections(T, mon.store.get("m", tenant=T), "<main><section>card</section></main>")
    assert report.startswith("<main><section>card</section><section id=\"served-accuracy\"")


# --------------------------------------------------------------------------- retraining
def _seasonal(n_days: int = 6) -> pl.DataFrame:
    y = np.tile([1.0, 5.0, 9.0, 5.0], n_days)
    return pl.DataFrame({"unique_id": ["s"] * y.size, "ds": list(range(1, y.size + 1)), "y": y})


def test_retrain_moves_production_only_when_the_challenger_wins(tmp_path: Path) -> None:
    store = _store(tmp_path)
    mon = Monitoring(store)
    _register(store, mon, _seasonal(), "naive", h=4)
    with pytest.raises(InvalidParameterError, match="cron"):
        mon.set_policy(T, "m", {"cron": "every day"})
    with pytest.raises(InvalidParameterError, match="margin"):
        mon.set_policy(T, "m", {"margin": 1.5})
    mon.set_policy(T, "m", {"model": {"name": "seasonal_naive", "params": {"season_length": 4}}, "h": 4})
    first = mon.retrain(T, "m")
    # the series repeats its season exactly: no MASE scale, so sMAPE decides: seasonal naive's 0 against naive's
    # (naive repeats the last training value 5 for 1, 5, 9, 5: sMAPE (800/6 + 0 + 800/14 + 0) / 4); production
    # moves to version 2
    assert (first.champion_version, first.challenger_version, first.promoted) == (1, 2, True)
    assert first.metric == "smape" and first.challenger_score == 0.0
    assert first.champion_score == pytest.approx((800 / 6 + 800 / 14) / 4)
    assert store.get("m@production", tenant=T).version == 2
    assert first.detail["window_in_champion_training"] == 0  # a spec refits without the window
    second = mon.retrain(T, "m")  # the same spec on the same data: "no change", nothing registered
    assert (second.champion_version, second.challenger_version, second.promoted) == (2, None, False)
    assert second.detail["no_change"] is True and [v.version for v in store.versions("m", T)] == [1, 2]
    assert store.get("m@production", tenant=T).version == 2
    assert [d.id for d in mon.decisions(T, "m")] == [second.id, first.id]
    mon.parts.acquire("m", T)  # a retrain running elsewhere
    with pytest.raises(ConflictError, match="a retrain of model 'm' is already running"):
        mon.retrain(T, "m")
    store.close()


def test_observations_trigger_and_schedules_survive_a_restart(tmp_path: Path) -> None:
    store = _store(tmp_path)
    mon = Monitoring(store)
    _register(store, mon, _seasonal(), "naive", h=4)
    fired: list[tuple[str, str, str]] = []
    mon.trigger = lambda tenant, name, reason: fired.append((tenant, name, reason))
    mon.set_policy(T, "m", {"every_n_observations": 3})
    assert mon.observe(T, "m", _batch(["s", "s"], [25, 26], [1.0, 5.0])).retrain is None
    assert mon.observe(T, "m", _batch(["s"], [27], [9.0])).retrain == "observations"
    assert fired == [(T, "m", "observations")]

    policy = mon.set_policy(T, "m", {"interval_s": 3600})
    scheduler = RetrainScheduler(mon)
    scheduler.start()
    scheduler.apply(T, "m", policy)
    planned = scheduler.next_run(T, "m")
    scheduler.shutdown()
    store.close()

    again = _store(tmp_path)
    restarted = RetrainScheduler(Monitoring(again))
    restarted.start()
    try:
        assert planned is not None and restarted.next_run(T, "m") == planned
    finally:
        restarted.shutdown()
        again.close()


# --------------------------------------------------------------------------- anomalies
def test_detect_anomalies_finds_spikes_with_a_score() -> None:
    rng = np.random.default_rng(1)
    y = 50 + 10 * np.sin(np.arange(240) * 2 * np.pi / 24) + rng.normal(0, 1, 240)
    y[[100, 170]] += [25.0, -25.0]
    frame = pl.DataFrame({"unique_id": ["x"] * 240, "ds": list(range(240)), "y": y})
    out = detect_anomalies(frame, model={"name": "mstl", "params": {"season_length": 24}}, level=99)
    assert set(out.anomalies["ds"].head(2).to_list()) == {100, 170}
    assert (out.anomalies["score"] > 1).all() and out.points.height == 240
    with pytest.raises(InvalidParameterError, match="method must be one of conformal, normal"):
        detect_anomalies(frame, model="naive", method="robust")  # type: ignore[arg-type]


def test_benchmark_spikes_of_five_scale_units_are_found(data_dir: Path) -> None:
    if not (data_dir / "m4_hourly").is_dir():
        pytest.skip("m4_hourly not in the data folder")
    from forecasting.benchmarks.anomalies_m4 import run

    figures = run(10, model={"name": "mstl", "params": {"season_length": 24}}, level=99.0, method="normal",
                  data_dir=str(data_dir))
    assert figures["recall_spike_5"] >= 0.9 and figures["recall_spike_8"] >= 0.9
    assert figures["precision"] > 0.3


# --------------------------------------------------------------------------- CLI
def test_cli_observe_accuracy_anomalies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from forecasting.cli import app

    store = Store(*__import__("forecasting.store", fromlist=["default_locations"]).default_locations(tmp_path))
    mon = Monitoring(store)
    _register(store, mon, _seasonal(), "naive", h=4)
    store.close()
    monkeypatch.setenv("FORECASTING_STATE_DIR", str(tmp_path))
    new = tmp_path / "new.csv"
    _batch(["s", "s"], [25, 27], [1.0, 9.0]).write_csv(new)
    runner = CliRunner()
    done = runner.invoke(app, ["observe", "--model", "m", "--input", str(new)])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["gaps"] == [{"unique_id": "s", "missing": 1, "examples": ["26"]}]
    refused = runner.invoke(app, ["observe", "--model", "m", "--input", str(new)])
    assert refused.exit_code == 2 and "already stored" in refused.output
    acc = runner.invoke(app, ["accuracy", "--model", "m", "--json"])
    assert acc.exit_code == 0 and json.loads(acc.output) == []
    history = tmp_path / "history.csv"
    _seasonal().with_columns(pl.when(pl.col("ds") == 13).then(40.0).otherwise(pl.col("y")).alias("y")).write_csv(history)
    found = runner.invoke(app, ["anomalies", "--input", str(history), "--model",
                                '{"name": "seasonal_naive", "params": {"season_length": 4}}', "--json"])
    assert found.exit_code == 0, found.output
    assert [r["ds"] for r in json.loads(found.output)] == [13, 17]  # the spike and its echo a season later


def test_accuracy_drift_fires_a_retrain_and_gauges_are_exposed(mon: Monitoring) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from forecasting.api.monitoring import AccuracyCollector

    # naive's hold-out on a: 6, 6 for 7, 8 (MAE 1.5, scale 1); b has no MASE scale
    assert mon.store.get("m", tenant=T).metrics["mase"] == 1.5
    fired: list[str] = []
    mon.trigger = lambda tenant, name, reason: fired.append(reason)
    mon.set_policy(T, "m", {"drift_factor": 1.5, "drift_window": 4})
    services = RegisteredModels(store=mon.store, runner=None, limits=Limits(), on_served=mon.record_served)  # type: ignore[arg-type]
    services.forecast(T, "m", h=2, history=mon.observations(T, "m"))
    # realised: a MASE (12 + 22) / 2 / 1 = 17, b 0: 8.5 > 1.5 * 1.5
    out = mon.observe(T, "m", _batch(["a", "a", "b", "b"], [9, 10, 9, 10], [20.0, 30.0, 6.0, 6.0]))
    assert out.retrain == "drift" and fired == ["drift"]
    assert mon.accuracy(T, "m").rows["mase"].to_list() == [pytest.approx(8.5)]

    registry = CollectorRegistry()
    registry.register(AccuracyCollector(mon.gauges))
    text = generate_latest(registry).decode()
    assert 'forecasting_model_accuracy{metric="mase",model="m",tenant="default",version="1"} 8.5' in text


def test_a_saved_champion_forecasts_the_window_without_refitting(tmp_path: Path) -> None:
    store = _store(tmp_path)
    mon = Monitoring(store)
    t = np.arange(24 * 12)
    frame = pl.concat([pl.DataFrame({"unique_id": uid, "ds": t + 1, "y": 10 * (i + 1) + 3 * np.sin(2 * np.pi * t / 24)
                                     + np.random.default_rng(i).normal(0, 0.2, t.size)})
                       for i, uid in enumerate(["p", "q"])])
    spec = {"name": "xgboost", "params": {"n_estimators": 20, "max_depth": 3, "season_length": 24,
                                          "conformal_windows": 0}}
    _register(store, mon, frame, spec, h=24)
    assert store.get("m", tenant=T).artifact is not None
    decision = mon.retrain(T, "m")
    # the champion's scores are its stored model's forecasts of the last 24 points from the points before them;
    # it was trained on those points too, which the decision says
    assert decision.detail["window_in_champion_training"] == 48
    assert decision.champion_score is not None and decision.challenger_score is not None
    assert 0 < decision.champion_score < 1.5 and 0 < decision.challenger_score < 1.5
    assert decision.promoted == (decision.challenger_score < decision.champion_score)
    store.close()
