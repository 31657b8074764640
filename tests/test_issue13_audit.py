"""Issue 13 audit (session 24, helper T): the "Done when" items no other test pins, and defects found
using ``auto`` as a new user would.

- ``auto`` on a business-day panel (the other synthetic panels are in test_issue13_auto.py);
- LightGBM's explanation adds up to its own forecast and its ONNX export matches it on a panel of two
  series of different scales (the contract suite checks one series and the explanation's row count);
- ``auto``'s point forecast must not depend on the interval levels asked for (the contract's
  ``test_point_forecast_does_not_depend_on_levels``); with levels the intermittent candidates were dropped
  on short quarterly series with zeros because their own conformal bands needed more history.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import forecasting as fc
from forecasting.data import validate_panel
from forecasting.models.registry import make_model, resolve_spec


def _auto(df: pl.DataFrame, h: int, level: list[float], **params: object):
    panel = validate_panel(df)
    spec, _ = resolve_spec({"name": "auto", "params": params}, freq=panel.freq, h=h, level=level)
    model = make_model(spec, freq=panel.freq).fit(panel)
    return panel, model, model.predict(h, level=level)


# --------------------------------------------------------------------------- business days
def test_auto_on_a_business_day_panel_forecasts_business_days_with_a_weekly_season() -> None:
    days = pd.bdate_range("2024-01-01", periods=80)  # Monday 1 January to Friday 19 April 2024
    t = np.arange(80)
    frames = [pl.DataFrame({"unique_id": f"b{i}", "ds": days.to_pydatetime().tolist(),
                            "y": 50.0 + 10 * i + 5 * (t % 5)}) for i in range(3)]  # a Monday..Friday cycle
    panel, model, out = _auto(pl.concat(frames), 5, [80], candidates=["naive", "seasonal_naive", "auto_ets"])
    assert panel.freq == "1bd"
    assert model.selection_["season_length"] == 5
    assert out.height == 15
    first = out.filter(pl.col("unique_id") == "b0")
    # the next business week: Monday 22 to Friday 26 April, no weekend
    assert [d.date() for d in first["ds"].to_list()] == [dt.date(2024, 4, d) for d in range(22, 27)]
    # the weekly cycle repeats exactly: seasonal naive scores 0 in validation and carries the combination
    assert model.selection_["members"].get("seasonal_naive", 0.0) > 0.5
    np.testing.assert_allclose(first["Auto"].to_numpy(), 50.0 + 5 * np.arange(5), atol=1e-6)
    assert np.isfinite(out.drop("unique_id", "ds").to_numpy()).all()
    assert {c["model"] for c in model.selection_["candidates"]} == {"naive", "seasonal_naive", "auto_ets"}


# --------------------------------------------------------------------------- LightGBM: explain and ONNX
def _two_scales() -> pl.DataFrame:
    rng = np.random.default_rng(11)
    start = dt.datetime(2015, 1, 1)
    frames = []
    for uid, level in (("small", 10.0), ("large", 5000.0)):
        t = np.arange(96)
        y = level * (1 + 0.01 * t + 0.2 * np.sin(2 * np.pi * t / 12)) + rng.normal(0, level * 0.02, t.size)
        ds = [dt.datetime(start.year + (start.month - 1 + k) // 12, (start.month - 1 + k) % 12 + 1, 1) for k in t]
        frames.append(pl.DataFrame({"unique_id": uid, "ds": ds, "y": y}))
    return pl.concat(frames)


def test_lightgbm_explanation_adds_up_to_its_own_forecast() -> None:
    pytest.importorskip("lightgbm")
    model = make_model({"name": "lightgbm", "params": {"n_estimators": 30}}, freq="1mo").fit(_two_scales())
    h = 6
    forecast = model.predict(h).sort("unique_id", "ds")
    explanation = model.explain(h)
    assert explanation.rows.height == 2 * h
    assert explanation.method.startswith("tree_shap (lightgbm")
    order = explanation.rows.with_row_index("i").sort("unique_id", "ds")["i"].to_numpy()
    np.testing.assert_allclose(explanation.output[order], forecast["LightGBM"].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(explanation.base_values + explanation.values.sum(axis=1), explanation.output,
                               rtol=1e-9, atol=1e-9 * np.abs(explanation.output).max())
    assert explanation.additivity_error_relative < 1e-6
    # the two series differ by a factor of 500: the large one's forecast is in its own units
    large = forecast.filter(pl.col("unique_id") == "large")["LightGBM"].to_numpy()
    assert (large > 4000).all()


def test_lightgbm_onnx_export_matches_on_two_series_of_different_scales(tmp_path: Path) -> None:
    pytest.importorskip("lightgbm")
    pytest.importorskip("onnxmltools")
    from forecasting.export import export_model
    from forecasting.runtime import load_onnx

    model = make_model({"name": "lightgbm", "params": {"n_estimators": 30}}, freq="1mo").fit(_two_scales())
    folder = export_model(model, tmp_path / "lgb", sample_series=2)
    onnx = load_onnx(folder)
    native = model.predict(12, level=[80]).sort("unique_id", "ds")
    exported = onnx.predict(12, level=[80]).sort("unique_id", "ds")
    assert exported.columns == native.columns
    for column in ("LightGBM", "LightGBM-lo-80", "LightGBM-hi-80"):
        np.testing.assert_allclose(exported[column].to_numpy(), native[column].to_numpy(), rtol=1e-4)


# --------------------------------------------------------------------------- auto: levels and the point forecast
def _quarterly_with_zeros() -> pl.DataFrame:
    """Six quarterly series of 40 points, 40% zeros (as the issue's quarterly dataset with zeros)."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(6):
        ds = pd.date_range("2010-01-01", periods=40, freq="QS").to_pydatetime().tolist()
        y = rng.integers(0, 20, 40).astype(float)
        y[rng.random(40) < 0.4] = 0.0
        frames.append(pl.DataFrame({"unique_id": f"q{i}", "ds": ds, "y": y}))
    return pl.concat(frames)


def test_auto_point_forecast_does_not_depend_on_the_levels_asked_for() -> None:
    """Was: with level=[80] croston_sba was dropped (its own conformal bands need 2h+1 = 17 points, the earliest
    window's training part has 16), so the members and the point forecast changed with the levels asked for."""
    df = _quarterly_with_zeros()
    candidates = ["seasonal_naive", "croston_sba"]
    _, plain, without = _auto(df, 8, [], candidates=candidates)
    _, banded, with_bands = _auto(df, 8, [80.0], candidates=candidates)
    status = {c["model"]: c["status"] for c in plain.selection_["candidates"]}
    assert status == {"seasonal_naive": "scored", "croston_sba": "scored"}
    assert {c["model"]: c["status"] for c in banded.selection_["candidates"]} == status
    np.testing.assert_allclose(with_bands["Auto"].to_numpy(), without["Auto"].to_numpy(), rtol=1e-9)
    assert any(n.startswith("croston_sba: validated on its point forecasts only") for n in banded.notes_)
    assert (with_bands["Auto-lo-80"] <= with_bands["Auto"]).all() and (with_bands["Auto"] <= with_bands["Auto-hi-80"]).all()


def test_auto_without_levels_scores_the_intermittent_candidates_on_the_same_panel() -> None:
    """The control of the test above: without levels croston_sba validates and wins most of the weight."""
    _, model, out = _auto(_quarterly_with_zeros(), 8, [], candidates=["seasonal_naive", "croston_sba"])
    cands = {c["model"]: c for c in model.selection_["candidates"]}
    assert cands["croston_sba"]["status"] == "scored"
    assert cands["croston_sba"]["score"] < cands["seasonal_naive"]["score"]
    assert model.selection_["members"]["croston_sba"] > 0.5
    assert (out["Auto"].to_numpy() >= 0).all()


def test_public_forecast_defaults_to_auto_on_the_readme_call() -> None:
    """The README's ``fc.forecast(df, h=12, level=[80, 95])`` on a 5-point series: finite, said why."""
    df = pd.DataFrame({"unique_id": "s", "ds": pd.date_range("2024-01-01", periods=5, freq="D"),
                       "y": [3.0, 5, 4, 6, 5]})
    result = fc.forecast(df, h=3, level=[80, 95])
    assert result.spec.name == "auto"
    assert np.isfinite(result.forecasts.drop(columns=["unique_id", "ds"]).to_numpy(dtype=float)).all()
    assert result.selection["n_windows"] == 0
    assert any("no series is long enough to validate on" in n for n in result.notes)


# --------------------------------------------------------------------------- auto: a slow global candidate
def _slow_first_round(seconds: float):
    """XGBoost's training whose first boosting round takes ``seconds`` and cannot be interrupted: what the quantile
    sketch of a large panel costs (300 hourly series of 2,000 points with the recent lags: one round 6-14 s at load
    10, measured 2026-12-02)."""
    from forecasting.models.xgb import XGBoostForecaster

    original = XGBoostForecaster._fit_booster

    def fit_booster(self, *args, **kwargs):
        time.sleep(seconds)
        return original(self, *args, **kwargs)

    return fit_booster


def test_auto_leaves_a_slow_tree_candidate_at_the_time_limit(monkeypatch) -> None:
    """Was: a tree candidate's booster round was waited for past its share of time_limit (the deadline was checked
    only after each round): 13.6 s for a 4 s limit; the booster's fit is now abandonable as a local series' fit."""
    from forecasting.models.auto import AutoForecaster
    from forecasting.models.base import ABANDON_GRACE_S
    from forecasting.models.xgb import XGBoostForecaster

    rng = np.random.default_rng(3)
    panel = validate_panel(pl.concat(pl.DataFrame({"unique_id": f"s{i}", "ds": np.arange(1, 301),
                                                   "y": 50 + 5 * np.sin(np.arange(300) / 4) + rng.normal(0, 1, 300)})
                                     for i in range(4)))
    make_model("naive", freq=1).fit(panel).predict(6, level=[80])  # compiled before the clock starts
    monkeypatch.setattr(XGBoostForecaster, "_fit_booster", _slow_first_round(10.0))
    model = AutoForecaster(candidates=["naive", {"name": "xgboost", "params": {"n_estimators": 5}}], horizon=6,
                           season_length=1, time_limit=4.0)
    t0 = time.perf_counter()
    model.fit(panel)
    wall = time.perf_counter() - t0
    cands = {c["model"]: c for c in model.selection_["candidates"]}
    assert cands["xgboost"]["status"] == "dropped" and cands["xgboost"]["reason"].startswith("skipped: ")
    assert model.selection_["members"] == {"naive": 1.0}
    assert wall < 4.0 + ABANDON_GRACE_S + 1.5  # as a local candidate (test_auto_skips_a_slow_candidate_...)


# --------------------------------------------------------------------------- bench on a user's file
def test_bench_on_a_file_with_one_series_shorter_than_a_season_still_scores_the_models(tmp_path: Path) -> None:
    """Was: the seasonal-naive reference (the skill column) had no fallback, so one series too short for it ended
    the run with InsufficientHistoryError after every model ran (found by the issue 13 audit, stop 24)."""
    from forecasting.benchmarks.harness import run_benchmark

    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"unique_id": f"long{i}", "ds": pd.date_range("2015-01-01", periods=60, freq="MS"),
                            "y": 100 + 10 * np.sin(2 * np.pi * np.arange(60) / 12) + rng.normal(0, 1, 60)})
              for i in range(3)]
    # twelve months: six to train on, fewer than the 13 seasonal naive (m = 12) needs; naive needs one
    frames.append(pd.DataFrame({"unique_id": "short", "ds": pd.date_range("2019-06-01", periods=12, freq="MS"),
                                "y": np.arange(12.0) + 5}))
    path = tmp_path / "mixed.csv"
    pd.concat(frames).to_csv(path, index=False)
    result = run_benchmark(None, ["naive"], input=path, h=6, store=tmp_path / "store")
    row = result.metrics.filter(pl.col("model") == "naive").to_dicts()[0]
    assert row["error"] is None
    # naive on the short series' last six steps: it forecasts 10 for 11..16, sMAPE > 0; finite over 4 series
    assert np.isfinite(row["smape"]) and row["smape"] > 0


# --------------------------------------------------------------------------- auto: intermittent candidates
def test_auto_on_an_intermittent_panel_scores_the_intermittent_models_and_leans_on_them() -> None:
    """test_issue13_auto.py's intermittent panel (60% zeros) pins the clipping; here the pool: the four
    intermittent models join it (zero share >= the threshold), all four are validated with the bands asked for,
    and they are members of the combination (the greedy weights gave imapa 0.92, naive 0.08; with the combination
    chosen by leave-one-window-out error the median of the trimmed pool wins there, 0.8152 against greedy's 0.8643,
    and every member has an equal share)."""
    rng = np.random.default_rng(2)
    df = pl.concat([pl.DataFrame({"unique_id": f"s{i}", "ds": np.arange(60),
                                  "y": np.where(rng.random(60) < 0.6, 0.0, rng.integers(1, 5, 60)).astype(float)})
                    for i in range(5)])
    _, model, out = _auto(df, 6, [80.0])
    cands = {c["model"]: c for c in model.selection_["candidates"]}
    intermittent = ("croston_sba", "adida", "imapa", "tsb")
    assert all(cands[name]["status"] == "scored" for name in intermittent)
    members = model.selection_["members"]
    assert all(members.get(name, 0.0) > 0 for name in intermittent), members
    if model.selection_["combination"] == "median":
        assert len(set(members.values())) == 1  # equal shares of the median
    else:
        assert sum(members.get(name, 0.0) for name in intermittent) > 0.5
    assert (out.drop("unique_id", "ds").to_numpy() >= 0).all() and model.non_negative_
