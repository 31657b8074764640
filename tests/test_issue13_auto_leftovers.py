"""Issue 13, `auto`'s leftovers from stop 22: the time limit on one long series, seasons of integer ``ds``,
bands of short series, the tree features' differencing."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest

from forecasting.data import validate_panel
from forecasting.errors import TimeLimitError
from forecasting.models.base import ABANDON_GRACE_S
from forecasting.models import local
from forecasting.models.auto import AutoForecaster
from forecasting.models.registry import make_model
from forecasting.models.stats import AutoARIMAForecaster


def _series(n_series: int, n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.concat(pl.DataFrame({"unique_id": f"s{i}", "ds": np.arange(1, n + 1),
                                   "y": 100.0 + 10 * np.sin(np.arange(n) / 3) + rng.normal(0, 1, n)})
                     for i in range(n_series))


def _sleepy(seconds: float):
    def fit_one(self, y):  # a statistical fit that cannot be interrupted, as AutoARIMA on one long series
        time.sleep(seconds)
        return None
    return fit_one


# --------------------------------------------------------------------------- 1. the time limit holds
def test_one_slow_series_is_left_at_the_deadline_not_waited_for(monkeypatch) -> None:
    """A series whose fit runs past the deadline: the fit ends 0.5 s after it (it used to wait the whole fit)."""
    monkeypatch.setattr(AutoARIMAForecaster, "_fit_one", _sleepy(6.0))
    model = make_model("auto_arima", freq=1)
    model.deadline = time.time() + 1.0
    t0 = time.perf_counter()
    with pytest.raises(TimeLimitError, match=r"^fitting stopped after 0 of 1 series: the time limit was reached"):
        model.fit(validate_panel(_series(1, 60)))
    assert 1.0 <= time.perf_counter() - t0 < 1.0 + ABANDON_GRACE_S + 0.8


def test_a_series_that_cannot_finish_is_not_started() -> None:
    """Series costing 0.3 s each (0.01 s per observation) and 1.05 s left: after three series (0.9 s) the fourth
    is estimated to end at 1.2 s, past the deadline, and is not started."""
    calls: list[int] = []

    def fit_one(y: np.ndarray) -> int:
        calls.append(y.size)
        time.sleep(0.01 * y.size)
        return y.size

    items = [(f"s{i}", np.zeros(30)) for i in range(6)]
    t0 = time.time()
    out, stopped = local._run_fit(fit_one, items, deadline=t0 + 1.05)
    assert stopped and len(out) == 3 and calls == [30, 30, 30]
    assert time.time() - t0 < 1.05  # stopped before the deadline, not at it
    out, stopped = local._run_fit(fit_one, items[:2], deadline=time.time() + 5)
    assert not stopped and [r[1] for r in out] == [30, 30]


def test_auto_skips_a_slow_candidate_and_names_the_time(monkeypatch) -> None:
    """`auto` with a candidate that would take 8 s on one series and a 4 s limit: it is dropped with the time it
    had, the rest is combined, and the whole fit ends within the limit."""
    monkeypatch.setattr(AutoARIMAForecaster, "_fit_one", _sleepy(8.0))
    panel = validate_panel(_series(1, 80))
    make_model("naive", freq=1).fit(panel).predict(6, level=[80])  # compiled before the clock starts
    model = AutoForecaster(candidates=["naive", "auto_arima"], horizon=6, season_length=1, time_limit=4.0)
    t0 = time.perf_counter()
    model.fit(panel)
    assert time.perf_counter() - t0 < 4.0
    cands = {c["model"]: c for c in model.selection_["candidates"]}
    assert cands["naive"]["status"] == "scored"
    arima = cands["auto_arima"]
    assert arima["status"] == "dropped"
    assert arima["reason"].startswith("skipped: not finished within its ")
    assert "s share of the time limit (time_limit=4.0 s), left after " in arima["reason"]
    share = float(arima["reason"].split("within its ")[1].split(" s share")[0])
    assert 0.5 < share < 2.8  # half of the 70% of 4 s left after naive
    assert arima["seconds"] == pytest.approx(share + ABANDON_GRACE_S, abs=0.6)
    assert model.selection_["members"] == {"naive": 1.0}
    assert model.predict(6)["Auto"].is_finite().all()


# --------------------------------------------------------------------------- 2. seasons of integer ds
def _hourly_like(n: int, weekly: bool, seed: int, n_series: int = 8) -> pl.DataFrame:
    """Integer ds, a daily cycle of 24 and (``weekly``) a weekend effect: a weekly cycle of 168."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    week = 25.0 * ((t // 24) % 7 >= 5) if weekly else 0.0
    return pl.concat(pl.DataFrame({"unique_id": f"s{i}", "ds": t + 1,
                                   "y": 100 + 5 * i + 30 * np.sin(2 * np.pi * t / 24) + week + rng.normal(0, 3, n)})
                     for i in range(n_series))


def test_integer_ds_with_a_daily_and_a_weekly_cycle_gets_both_seasons() -> None:
    from forecasting.models.auto import candidate_pool, detect_season, detect_seasons

    panel = validate_panel(_hourly_like(24 * 7 * 5, weekly=True, seed=0))
    seasons, note = detect_seasons(panel)
    assert seasons == [24, 168]
    assert note == ("season_length=[24, 168] detected (integer ds): 24 by the autocorrelation test (6 of 8 series "
                    "examined); 168 by the repetition test (8 of 8 series long enough to show it twice)")
    assert detect_season(panel)[0] == 24  # the single-season answer is unchanged
    kept, notes = AutoForecaster()._seasons(panel)
    assert kept == [24, 168] and notes == [note]
    specs, _ = candidate_pool(panel, kept)
    assert {s.name: s.params.get("season_length") for s in specs}["mstl"] == [24, 168]


def test_one_season_stays_one() -> None:
    """A daily cycle only (840 points), and a weekly one the history does not show twice (300 points)."""
    from forecasting.models.auto import detect_seasons

    assert detect_seasons(validate_panel(_hourly_like(24 * 7 * 5, weekly=False, seed=1)))[0] == [24]
    assert detect_seasons(validate_panel(_hourly_like(300, weekly=True, seed=0)))[0] == [24]
    rng = np.random.default_rng(0)
    t = np.arange(140)
    weekly = pl.concat(pl.DataFrame({"unique_id": f"s{i}", "ds": t + 1,
                                     "y": 50 + 10 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 1, t.size)})
                       for i in range(6))
    assert detect_seasons(validate_panel(weekly)) == (
        [7], "season_length=7 detected by the autocorrelation test (integer ds: 6 of 6 series examined)")


# --------------------------------------------------------------------------- 3. bands of short series
def _short_monthly_file(tmp_path) -> str:
    """20 monthly series of 24 points with a trend and a season (T2's short20.csv, stop 22)."""
    from datetime import date

    rng = np.random.default_rng(3)
    ds = pl.date_range(date(2020, 1, 1), date(2021, 12, 1), "1mo", eager=True)
    t = np.arange(24)
    frame = pl.concat(pl.DataFrame({"unique_id": f"s{i:03d}", "ds": ds,
                                    "y": 700 + 10 * i + 5 * t + 60 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 15, 24)})
                      for i in range(20))
    path = tmp_path / "short20.csv"
    frame.write_csv(path)
    return str(path)


def test_a_tree_forecasts_past_its_calibrated_horizon_with_widened_bands(tmp_path) -> None:
    """24-point series and h = 6: xgboost calibrates for h <= 5 (two held-out windows after its lookback). It used
    to fail the bench row ("intervals are calibrated for h <= 5"); step 6 now gets step 5's band times
    sqrt(6 / 5), with a note saying so."""
    from forecasting.service.tables import read_table

    panel = validate_panel(read_table(_short_monthly_file(tmp_path)), freq="1mo")
    model = make_model({"name": "xgboost", "params": {"season_length": 12}}, freq=panel.freq).fit(panel)
    assert model.calibrated_horizon == 5
    five = model.predict(5, level=[80, 95])
    six = model.predict(6, level=[80, 95])
    assert six.height == 120 and all(six[c].is_finite().all() for c in six.columns[2:])
    half = lambda f, lv, k: (f.filter(pl.col("ds") == f["ds"].unique().sort()[k])  # noqa: E731
                             .select(pl.col(f"XGBoost-hi-{lv}") - pl.col("XGBoost")).to_series().to_numpy())
    for lv in (80, 95):
        np.testing.assert_allclose(half(six, lv, 5), half(five, lv, 4) * np.sqrt(6 / 5), rtol=1e-4)
        np.testing.assert_allclose(half(six, lv, 4), half(five, lv, 4), rtol=1e-6)  # calibrated steps unchanged
    assert ("intervals are calibrated for h <= 5: the band of step 6 is step 5's widened by sqrt(k / 5) (a random "
            "walk's growth), not calibrated; refit with params.horizon >= 6 to calibrate them") in model.notes_


def test_bench_with_levels_scores_every_row_on_short_series(tmp_path) -> None:
    """`forecasting bench --input short20.csv --h 6 --level 80 95`: xgboost is scored with its bands and the note;
    a tree with no calibration at all (conformal_windows=0) is scored on its points, never a failed row."""
    from forecasting.benchmarks.harness import run_benchmark

    bare = '{"name": "xgboost", "params": {"conformal_windows": 0}}'
    result = run_benchmark(None, ["xgboost", bare, "seasonal_naive"], input=_short_monthly_file(tmp_path), h=6,
                           freq="1mo", season_length=12, level=[80, 95], n_jobs=1)
    rows = {r["model"]: r for r in result.metrics.iter_rows(named=True)}
    assert all(r["error"] is None for r in rows.values()), rows
    assert 0.0 <= rows["xgboost"]["coverage_80"] <= rows["xgboost"]["coverage_95"] <= 1.0
    assert rows["xgboost_1"]["mase"] == pytest.approx(rows["xgboost"]["mase"])  # the same points, no bands
    assert rows["xgboost_1"]["coverage_80"] is None
    # the window's training part has 18 points: calibrated for h <= 4
    assert ("xgboost (window 0): intervals are calibrated for h <= 4: the bands of steps 5 to 6 are step 4's "
            "widened by sqrt(k / 4) (a random walk's growth), not calibrated; refit with params.horizon >= 6 to "
            "calibrate them") in result.notes
    assert ("xgboost_1 (window 0): no bands at h=6 (this xgboost model was fitted without conformal calibration "
            "(conformal_windows=0), so it cannot give intervals): scored on its point forecasts, coverage left "
            "empty") in result.notes


# --------------------------------------------------------------------------- 4. the tree features' differencing
def _priced(n_series: int, n: int, h: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """T1's panel (stop 22): y = 50 - 20 price + noise, the price exogenous and stationary; train and future."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_series):
        price = 1 + 0.3 * rng.normal(size=n + h)
        frames.append(pl.DataFrame({"unique_id": f"s{i}", "ds": np.arange(1, n + h + 1), "price": price,
                                    "y": 50 - 20 * price + rng.normal(0, 0.5, n + h)}))
    frame = pl.concat(frames)
    return frame.filter(pl.col("ds") <= n), frame.filter(pl.col("ds") > n)


def test_the_unit_root_test_chooses_the_differencing() -> None:
    from forecasting.features import choose_differences

    train, _ = _priced(20, 120, 0)
    assert choose_differences(validate_panel(train)) == ([], (
        "differences [] (y in levels): the KPSS unit-root test (as statsforecast's ndiffs) finds 1 of 20 series needing "
        "a difference (5%; y is differenced from 50%)"))
    rng = np.random.default_rng(1)
    walks = pl.concat(pl.DataFrame({"unique_id": f"w{i}", "ds": np.arange(1, 121), "y": 100 + np.cumsum(rng.normal(size=120))})
                      for i in range(10))
    diffs, note = choose_differences(validate_panel(walks))
    assert diffs == [1] and note.startswith("differences [1]: the KPSS unit-root test (as statsforecast's ndiffs) finds ")
    short, _ = _priced(20, 40, 0)  # too short for the test's power: the difference is kept
    assert choose_differences(validate_panel(short)) == ([1], (
        "differences [1]: no series has the 48 observations the unit-root test is given (the default: a first "
        "difference)"))


def test_xgboost_models_a_stationary_priced_series_in_levels() -> None:
    """Differenced, xgboost could not see that y follows the price (MAE 2.46 against 0.84 in levels, naive 6.88,
    on 20 series of 120 points); in levels it does."""
    train, future = _priced(8, 80, 6, seed=2)
    panel = validate_panel(train)
    model = make_model({"name": "xgboost", "params": {"n_estimators": 60}}, freq=1).fit(panel)
    assert model.pipeline_.spec.differences == []
    assert model.notes_[0].startswith("differences [] (y in levels): the KPSS unit-root test")
    fc = future.join(model.predict(6, X_future=future.select("unique_id", "ds", "price")), on=["unique_id", "ds"])
    last = train.group_by("unique_id").agg(pl.col("y").last().alias("last"))
    mae = (fc["y"] - fc["XGBoost"]).abs().mean()
    naive = (fc.join(last, on="unique_id").select((pl.col("y") - pl.col("last")).abs().mean())).item()
    assert mae < 0.3 * naive, (mae, naive)


def test_reported_spec_names_the_season_auto_used():
    """A 5-day daily series: the frequency says 7 (and 365), the history shows neither twice, so auto searches with
    season 1; the spec the response reports says 1, not 7 (T's D4, stop 24), and the notes say why."""
    import datetime as dt

    from forecasting import forecast

    df = pl.DataFrame({"unique_id": ["a"] * 5, "ds": [dt.date(2024, 1, d) for d in range(1, 6)],
                       "y": [1.0, 2.0, 3.0, 2.0, 4.0]})
    result = forecast(df, h=2)
    assert result.spec.name == "auto"
    assert result.spec.params["season_length"] == 1
    assert "season_length 7 left out: the median series has 5 observations, fewer than two seasons" in result.notes
    long = pl.DataFrame({"unique_id": ["a"] * 28, "ds": [dt.date(2024, 1, 1) + dt.timedelta(days=d) for d in range(28)],
                         "y": [float(d % 7) for d in range(28)]})
    assert forecast(long, h=7).spec.params["season_length"] == 7  # 4 weeks show the week; 365 is dropped
