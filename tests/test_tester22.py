"""The session-22 tester's findings (T1): each test names the case it came from; the report lists the commands."""

from __future__ import annotations

import re
import time

import numpy as np
import polars as pl
import pytest
from test_issue16_api import client  # noqa: F401 - the fixture: model 'm' (naive on 's', max_h 4)

from forecasting.data import validate_panel
from forecasting.models import local
from forecasting.models.registry import make_model


def test_a_benchmark_whose_every_model_fails_writes_its_leaderboard(tmp_path) -> None:
    """`forecasting bench --input short.csv --models naive,seasonal_naive --h 3` (series of 4 and 8 days): both
    models failed (too short), and writing the leaderboard ended the run with polars' ColumnNotFoundError "mase"
    (then matplotlib's "Number of rows must be a positive integer, not 0"), exit 1 and a traceback. Now each
    model is a row with null scores and its error, and the files are written."""
    from forecasting.benchmarks.harness import run_benchmark, write_results

    days = ["2024-01-0%d" % d for d in range(1, 9)]
    pl.DataFrame({"unique_id": ["a"] * 4 + ["b"] * 8, "ds": days[:4] + days,
                  "y": [1.0, 2, 3, 4, 1, 2, 3, 4, 4, 4, 4, 4]}).write_csv(tmp_path / "short.csv")
    result = run_benchmark(None, ["naive", "seasonal_naive"], input=tmp_path / "short.csv", h=3, n_jobs=1)
    paths = write_results(result, tmp_path / "out")
    metrics = pl.read_csv(paths["metrics"])
    assert metrics["model"].to_list() == ["naive", "seasonal_naive"]
    assert metrics.select("smape", "mase", "owa", "mae", "rmse").null_count().row(0) == (2, 2, 2, 2, 2)
    assert metrics["error"].to_list()[0] == ("InsufficientHistoryError: 1 series too short: series 'a': 1 "
                                             "observations, model 'naive' needs at least 2 (or ask for a fallback "
                                             "model)")
    assert "| seasonal_naive (reference) | - | - |" in paths["leaderboard"].read_text()
    assert paths["html"].read_text().count("InsufficientHistoryError") >= 2


def _no_pool(*args, **kwargs):  # pragma: no cover - called only when the finding is back
    raise AssertionError("a worker pool was started for a small fit")


def test_ten_short_series_are_fitted_without_starting_worker_processes(monkeypatch) -> None:
    """`serve --workers 2`: POST /v1/forecast of 10 series x 14 points (seasonal_naive) took 19 s against 0.01 s in
    one process: every fit of 4 series or more started a pool of spawned workers (each importing polars and
    statsforecast). Now the first series are fitted in this process and the rest's time is estimated first."""
    monkeypatch.setattr(local, "ProcessPoolExecutor", _no_pool)
    t = np.arange(14)
    df = pl.concat([pl.DataFrame({"unique_id": f"s{i}", "ds": t, "y": (t % 7 + 10.0 * i).astype(float)})
                    for i in range(10)])
    model = make_model({"name": "seasonal_naive", "params": {"season_length": 7}}, n_jobs=2).fit(validate_panel(df))
    forecast = model.predict(7)
    # seasonal naive by hand: step k repeats y[14 - 7 + k - 1] = (k - 1) % 7 + 10 i
    expected = [float((k - 1) % 7 + 10 * i) for i in range(10) for k in range(1, 8)]
    assert forecast["SeasonalNaive"].to_list() == expected


def _slow_fit(y: np.ndarray) -> float:
    time.sleep(0.03)
    return float(y[-1])


def test_a_fit_estimated_longer_than_starting_workers_leaves_the_rest_to_them(monkeypatch) -> None:
    """The other side of the rule: after the probe (0.05 s here) the rest, estimated at ~0.5 s, is left to the
    workers when starting them is cheaper (0.1 s here), in order, nothing fitted twice."""
    monkeypatch.setattr(local, "_PROBE_S", 0.05)
    monkeypatch.setattr(local, "_POOL_MIN_S", {"fork": 0.1, "spawn": 0.1, "forkserver": 0.1})
    items = [(f"s{i}", np.full(10, float(i))) for i in range(20)]
    results, rest, stopped = local._fit_probing(_slow_fit, items, None, 2)
    assert not stopped and len(results) == 2  # the probe fits two series at least
    assert [uid for uid, _, _ in results] + [uid for uid, _ in rest] == [f"s{i}" for i in range(20)]
    assert [state for _, state, _ in results] == [float(i) for i in range(len(results))]
    monkeypatch.setattr(local, "_POOL_MIN_S", {"fork": 100.0, "spawn": 100.0, "forkserver": 100.0})
    results, rest, stopped = local._fit_probing(_slow_fit, items[:6], None, 2)
    assert rest == [] and [state for _, state, _ in results] == [float(i) for i in range(6)]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_forecasts_do_not_depend_on_where_the_series_were_fitted(monkeypatch, n_jobs: int) -> None:
    """auto_ets on 8 series: the probe-then-workers path gives the forecasts the one-process path gives."""
    monkeypatch.setattr(local, "_PROBE_S", 0.0)
    monkeypatch.setattr(local, "_POOL_MIN_S", {"fork": 0.0, "spawn": 0.0, "forkserver": 0.0})
    t = np.arange(36)
    df = pl.concat([pl.DataFrame({"unique_id": f"s{i}", "ds": t,
                                  "y": 50.0 + i + 5 * np.sin(2 * np.pi * t / 12) + 0.1 * ((7 * t) % 5)})
                    for i in range(8)])
    spec = {"name": "auto_ets", "params": {"season_length": 12}}
    ours = make_model(spec, n_jobs=n_jobs).fit(validate_panel(df)).predict(3)
    alone = make_model(spec, n_jobs=1).fit(validate_panel(df)).predict(3)
    assert ours.equals(alone)


def test_a_small_fit_in_this_process_still_reports_each_series() -> None:
    """The probe fits in this process what the workers used to: progress stays one call per series fitted."""
    from forecasting.models.base import arm

    t = np.arange(60)
    df = pl.concat([pl.DataFrame({"unique_id": f"s{k:02d}", "ds": t, "y": 10 + 5 * np.sin(2 * np.pi * t / 12) + k})
                    for k in range(20)])
    model = make_model({"name": "seasonal_naive", "params": {"season_length": 12}}, n_jobs=2)
    calls: list[tuple[float, str]] = []
    arm(model, progress=lambda f, m: calls.append((f, m)))
    model.fit(validate_panel(df, freq=1))
    assert calls == [(k / 20, f"series {k}/20 fitted") for k in range(1, 21)]


@pytest.mark.parametrize("y", [[None], [None, None]])
def test_observations_whose_every_y_is_null_are_refused_not_stored_as_zero(tmp_path, y: list) -> None:
    """POST /v1/models/xg/observations {"data": {"unique_id": ["s1"], "ds": ["2024-03-01"], "y": [null]}} answered
    200 and stored y = 0.0 (a column of nulls only has polars' Null type, which skipped the null check, and the
    gap filling filled it with zero); one null beside a number was a 422. Now both are a 422 naming the rows."""
    from test_issue16_monitoring import _register, _seasonal, _store

    from forecasting.errors import InvalidInputError
    from forecasting.service.monitoring import Monitoring

    store = _store(tmp_path)
    mon = Monitoring(store)
    _register(store, mon, _seasonal(), "naive", h=4)
    rows = "0" if len(y) == 1 else "0, 1"
    with pytest.raises(InvalidInputError, match=f"observations: y is null, NaN or infinite in rows {rows} "
                                                r"\(series s\); nothing was stored"):
        mon.observe("default", "m", {"unique_id": ["s"] * len(y), "ds": list(range(25, 25 + len(y))), "y": y})
    assert mon.observations("default", "m")["ds"].max() == 24  # nothing stored
    store.close()


def test_a_series_with_one_residual_has_no_band_and_is_not_flagged() -> None:
    """POST /v1/anomalies {"data": {"unique_id": ["a", "a"], "ds": [1, 2], "y": [1, 2]}, "model": "naive"}: the
    point ds=2 came back with lo, hi and score null (NaN in the frame: the standard deviation of one residual) and
    "anomaly": true (polars orders NaN above 1). Now it has no band, no score, is not flagged, and a note says so."""
    import forecasting as fc

    points = fc.detect_anomalies({"unique_id": ["a", "a", "b", "b", "b"], "ds": [1, 2, 1, 2, 3],
                                  "y": [1.0, 2.0, 1.0, 2.0, 4.0]}, model="naive")
    a = points.filter(pl.col("unique_id") == "a")
    assert a.select("lo", "hi", "score").null_count().row(0) == (2, 2, 2)
    assert a["anomaly"].to_list() == [False, False]
    # b's two residuals 1 and 2: sigma 0.7071, the 99 % half-width 2.5758 * 0.7071 = 1.8214; ds 3 is 2 from 2
    b = points.filter(pl.col("unique_id") == "b")
    assert b["hi"].to_list()[1:] == pytest.approx([1.0 + 1.821386, 2.0 + 1.821386], abs=1e-6)
    assert b["anomaly"].to_list() == [False, False, True]


def test_the_no_band_note_names_the_series() -> None:
    from forecasting.anomalies import insample_intervals

    notes: list[str] = []
    f = pl.DataFrame({"unique_id": ["a", "a"], "ds": [1, 2], "y": [1.0, 2.0], "fitted": [None, 1.0]})
    bands = insample_intervals(f, level=99, notes=notes)
    assert bands["hi"].to_list() == [None, None]
    assert notes == ["no band: 1 series have fewer than 2 in-sample residuals ('a' (1)), too few to estimate their "
                     "spread: their points have no interval and no score, and none is flagged"]


@pytest.mark.parametrize("model", ["naive", "croston_classic"])
def test_the_report_of_a_model_without_season_length_has_its_validation_metrics(tmp_path, model: str) -> None:
    """`forecasting report --model naive --input air_passengers.csv --h 12`: "validation metrics not computed:
    model 'naive': invalid parameter 'season_length'" (the model card's spec gained the frequency's season, which
    naive and the intermittent models do not take, and the hold-out refit refused it). By hand, naive on 1..30
    holding out 2: forecasts 28, 28 for 29, 30; sMAPE (200/57 + 400/58) / 2 = 5.2027; MASE 1.5 (lag-1 scale 1)."""
    from forecasting.reports import write_report

    frame = pl.DataFrame({"unique_id": ["a"] * 30, "ds": list(range(1, 31)), "y": [float(t) for t in range(1, 31)]})
    written = write_report(model, frame, tmp_path / "r.html", h=2, level=())
    assert not [n for n in written.notes if "validation metrics not computed" in n]
    page = (tmp_path / "r.html").read_text()
    if model == "naive":
        values = dict(re.findall(r'id="validation-(smape|mase)" data-value="([^"]+)"', page))
        assert float(values["smape"]) == pytest.approx((200 / 57 + 400 / 58) / 2) and float(values["mase"]) == 1.5


def test_numpy_horizons_and_levels_are_numbers() -> None:
    """fc.forecast(df, h=np.int64(2)) answered "h must be an integer >= 1, got np.int64(2)" and level=np.array([80,
    95]) "level must be numbers strictly between 0 and 100 (percent), got np.int64(80)": numpy scalars (an h from
    a frame's count, levels as an array) named a rule they keep. Now they are their Python numbers."""
    import forecasting as fc

    df = pl.DataFrame({"unique_id": ["a"] * 6, "ds": list(range(1, 7)), "y": [1.0, 2, 3, 4, 5, 6]})
    result = fc.forecast(df, model="naive", h=np.int64(2), level=np.array([80, 95]))
    assert result.forecasts.columns == ["unique_id", "ds", "Naive", "Naive-lo-80", "Naive-hi-80", "Naive-lo-95",
                                        "Naive-hi-95"]
    assert result.forecasts["Naive"].to_list() == [6.0, 6.0] and type(result.h) is int
    with pytest.raises(fc.InvalidParameterError, match=r"^h must be an integer >= 1, got 0$"):
        fc.forecast(df, model="naive", h=np.int64(0))
    with pytest.raises(fc.InvalidParameterError, match=r"got True$"):
        fc.forecast(df, model="naive", h=2, level=[np.bool_(True)])


def test_one_column_given_for_two_roles_is_named() -> None:
    """fc.forecast(df, id_col="store", time_col="store", target_col="units") answered "missing required column
    'unique_id' ... (columns present: ds, week, y)": the caller's mistake, reported as columns it never had."""
    import forecasting as fc

    df = pl.DataFrame({"store": ["a"] * 4, "week": [1, 2, 3, 4], "units": [1.0, 2, 3, 4]})
    with pytest.raises(fc.InvalidParameterError) as err:
        fc.forecast(df, model="naive", h=1, id_col="store", time_col="store", target_col="units")
    assert (str(err.value), err.value.field) == (
        "id_col and time_col both name column 'store': unique_id, ds and y need a column each", "time_col")
    with pytest.raises(fc.InvalidParameterError, match="^time_col and target_col both name column 'y'"):
        fc.forecast(df, model="naive", h=1, time_col="y")


@pytest.mark.parametrize(("history", "field", "detail"), [
    ({"unique_id": ["s", "s"], "ds": [1, 1], "y": [1.0, 2.0]}, "history.ds",
     "duplicate (unique_id, ds) rows in 1 series: series 's': 2 duplicate timestamps (1 x2)"),
    ({"unique_id": ["s", "s", "s"], "ds": [1, 2, 3], "y": [1.0, None, 2.0]}, "history.y",
     "y must be finite numbers; 1 rows are not: series 's': 1 null y values at ds 2; pass fill_missing ('zero', "
     "'forward' or 'interpolate') to fill them"),
    ({"unique_id": [], "ds": [], "y": []}, "history",
     "history is empty: at least one row with unique_id, ds and y is needed"),
])
def test_a_registered_forecasts_history_problems_name_history(client, history: dict, field: str,  # noqa: F811
                                                              detail: str) -> None:
    """POST /v1/models/xg/forecast with a history off the model's grid answered "field": "data.ds" (and a spec-only
    version's empty history "data is empty"): the request has no `data`, its series are in `history`."""
    r = client.post("/v1/models/m/forecast", json={"h": 2, "history": history})
    assert r.status_code == 422, r.text
    assert (r.json()["field"], r.json()["detail"]) == (field, detail)
    r = client.post("/v1/forecast", json={"model": "naive", "h": 2, "data": history})  # the inline route: data.*
    assert r.json()["field"] == field.replace("history", "data")


def test_a_fitted_models_history_problems_name_history() -> None:
    """The global models' path (forecast_fitted, explain) validates history with the same field name."""
    from forecasting.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as err:
        validate_panel({"unique_id": ["a"] * 3, "ds": [1, 2, 4], "y": [1.0, 2, 3]}, field_name="history")
    assert err.value.field == "history.ds"
    with pytest.raises(InvalidInputError) as err:
        validate_panel({"unique_id": ["a"] * 3, "ds": [1, 2, 4], "y": [1.0, 2, 3]})
    assert err.value.field == "ds"  # the API names it data.ds; the CLI prints [ds]
