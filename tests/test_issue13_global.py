"""Issue 13: frequency-aware global tree models and a data-fitting ensemble.

Default features sized for the data (no fixed seven seasons), the horizon and calibration
windows derived at fit, bands that differ between levels (with a note when they are not
conformal), and ensemble members that apply to the data.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting.data import validate_panel
from forecasting.features import FeaturePipeline, default_features, feature_budget, typical_length
from forecasting.models import make_model
from forecasting.models.trees import interval_widths
from forecasting.models.xgb import XGBoostForecaster

TINY = {"n_estimators": 20, "max_depth": 3}


def _weekly(n_series: int = 12, n: int = 148) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    t = np.arange(n)
    start = dt.datetime(2020, 1, 5)
    frames = []
    for i in range(n_series):
        y = 100 + 5 * i + 10 * np.sin(2 * np.pi * t / 52) + rng.normal(0, 1, n)
        frames.append(pl.DataFrame({"unique_id": f"w{i}", "ds": [start + dt.timedelta(weeks=int(k)) for k in t],
                                    "y": y}))
    return pl.concat(frames)


def _integer(n_series: int = 4, n: int = 40) -> pl.DataFrame:
    rng = np.random.default_rng(2)
    return pl.concat([pl.DataFrame({"unique_id": f"s{i}", "ds": np.arange(1, n + 1),
                                    "y": 20 + np.cumsum(rng.normal(0.3, 1, n))}) for i in range(n_series)])


# ----------------------------------------------------------------------------- default features
def test_lengths_size_the_features_hand_computed() -> None:
    assert typical_length([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110]) == 20  # 10 + 0.1 * 100
    assert feature_budget([148] * 5) == 74 and feature_budget([148] * 5, horizon=100) == 47
    assert feature_budget([4]) == 3 and feature_budget(None) is None


def test_hourly_defaults_are_unchanged_on_m4_hourly_lengths() -> None:
    """M4 Hourly (700 or 960 points): the seasonal set as before, lags 24..168 and a seasonal difference."""
    spec = default_features(24, freq="1h", lengths=[700] * 300 + [960] * 114, seasons=[24, 168])
    assert spec == default_features(24, freq="1h")
    assert spec.lags == [24, 48, 72, 96, 120, 144, 168] and spec.differences == [24]
    assert FeaturePipeline(spec=spec, freq="1h").lookback == 192


def test_long_hourly_history_adds_the_weekly_period() -> None:
    spec = default_features(24, freq="1h", lengths=[2000] * 10, seasons=[24, 168])
    assert spec.lags[-2:] == [168, 336] and spec.differences == [24]


def test_weekly_148_points_get_features_that_fit() -> None:
    spec = default_features(52, freq="1w", lengths=[148] * 321)
    assert spec.lags == [*range(1, 33), 52] and spec.differences == [1] and spec.calendar == ["week"]
    assert [(r.window, r.stats, r.lag) for r in spec.rolling] == [(4, ["mean"], 1), (52, ["mean", "std"], 1)]
    assert FeaturePipeline(spec=spec, freq="1w").min_length == 54


def test_non_seasonal_data_gets_recent_lags_and_several_windows() -> None:
    spec = default_features(1, lengths=[200] * 10)
    assert spec.lags == list(range(1, 9)) and spec.differences == [1]
    assert [r.window for r in spec.rolling] == [4, 8, 16]
    short = default_features(1, lengths=[14, 20, 41])  # M3 yearly-like: lower decile 15, budget 7
    assert short.lags == [1, 2, 3, 4, 5, 6] and [r.window for r in short.rolling] == [4]


# ----------------------------------------------------------------------------- trees on short data
def test_weekly_148_points_train_and_forecast_with_differing_bands() -> None:
    model = make_model({"name": "xgboost", "params": TINY}, freq="1w").fit(validate_panel(_weekly(), freq="1w"))
    # level-stationary series (a season and noise): the KPSS test keeps y in levels, no first difference (issue 13)
    assert model.pipeline_.spec.differences == [] and model.pipeline_.min_length == 53 and not model.fallbacks_
    assert model.calibrated_horizon == 47  # (148 - 53) // 2: two held-out windows on the upper-quartile series
    assert model.scores_.shape == (2 * 12, 47)  # 2 windows x 12 series
    out = model.predict(8, level=[80, 95])
    assert out.height == 12 * 8
    assert ((out["XGBoost-hi-95"] - out["XGBoost-hi-80"]) > 0).all()
    assert ((out["XGBoost-lo-80"] - out["XGBoost-lo-95"]) > 0).all()
    assert any("2 held-out windows of 47 steps (24 errors)" in n for n in model.notes_)
    assert any(n.startswith("default features for this data: lags 1-32, 52") for n in model.notes_)


def test_one_series_bands_differ_and_say_how_they_were_made() -> None:
    """One series of 60: lookback 17, horizon 14, so 3 of the 5 windows fit (60 - 3 * 14 >= 18): 3 errors per
    step, too few for a conformal 95% band (19)."""
    df = _integer(1, 60)
    model = XGBoostForecaster(**TINY).fit(df)
    assert model.pipeline_.min_length == 18 and model.calibrated_horizon == 14
    assert model.scores_.shape == (3, 14)
    out = model.predict(5, level=[80, 95])
    assert ((out["XGBoost-hi-95"] - out["XGBoost-hi-80"]) > 0).all()
    assert any("3 calibration errors are too few for a conformal 95% band (it needs at least 19)" in n
               for n in model.notes_)


def test_history_too_short_for_two_windows_is_noted() -> None:
    """Lengths 30 and 60 with horizon 12: only the long series reaches a second window (60 - 24 >= 9)."""
    df = pl.concat([_integer(1, 30), _integer(1, 60).with_columns(pl.lit("long").alias("unique_id"))])
    model = XGBoostForecaster(**TINY, horizon=12, conformal_windows=2).fit(df)
    assert model.scores_.shape == (3, 12)
    assert any(n.startswith("intervals calibrated on 2 held-out windows of 12 steps (3 errors)") for n in model.notes_)
    one = XGBoostForecaster(**TINY, horizon=12, conformal_windows=2).fit(_integer(2, 30))
    assert one.scores_.shape == (2, 12)
    assert any("one held-out window of 12 steps (2 errors): the history is too short for two" in n
               for n in one.notes_)


def test_derived_horizon_and_notes_survive_save_and_load(tmp_path: Path) -> None:
    model = make_model({"name": "xgboost", "params": TINY}, freq="1w").fit(validate_panel(_weekly(4), freq="1w"))
    loaded = XGBoostForecaster.load(model.save(tmp_path / "w"))
    assert loaded.calibrated_horizon == model.calibrated_horizon == 47
    assert loaded.notes_ == model.notes_
    assert loaded.pipeline_.spec == model.pipeline_.spec
    assert loaded.predict(8, level=[80, 95]).equals(model.predict(8, level=[80, 95]))


def test_lightgbm_uses_the_same_derived_features() -> None:
    pytest.importorskip("lightgbm")
    panel = validate_panel(_weekly(6), freq="1w")
    lgb = make_model({"name": "lightgbm", "params": {"n_estimators": 20}}, freq="1w").fit(panel)
    xgb = make_model({"name": "xgboost", "params": TINY}, freq="1w").fit(panel)
    assert lgb.pipeline_.spec == xgb.pipeline_.spec and lgb.calibrated_horizon == 47
    assert lgb.params.objective == "regression_l1" and xgb.params.objective == "reg:absoluteerror"
    out = lgb.predict(8, level=[80, 95])
    assert ((out["LightGBM-hi-95"] - out["LightGBM-hi-80"]) > 0).all()


def test_interval_widths_conformal_and_normal() -> None:
    conformal = interval_widths(np.arange(1.0, 41.0)[:, None], [80, 95])  # ranks ceil(41 * .8) = 33, 39
    assert [float(conformal[lv][0]) for lv in (80, 95)] == [33.0, 39.0]
    normal = interval_widths(np.array([[1.0], [2.0], [3.0], [4.0]]), [80, 95])
    assert float(normal[95][0]) == pytest.approx(1.959964 * np.sqrt(7.5), rel=1e-6)


# ----------------------------------------------------------------------------- the ensemble
def test_ensemble_on_integer_ds_chooses_members_that_apply() -> None:
    df = _integer(4, 40)
    spec = {"name": "ensemble", "params": {"season_length": 1}}
    ens = make_model(spec, freq=1).fit(df)
    assert [m.name for m in ens.members_] == ["xgboost", "dynamic_optimized_theta", "auto_ets"]
    out = ens.predict(4, level=[80, 95])
    assert out.height == 16 and all(out[c].is_finite().all() for c in out.columns[2:])


def test_ensemble_drops_seasonless_mstl_and_identical_members_with_notes() -> None:
    members = [{"name": "xgboost", "params": TINY}, {"name": "xgboost", "params": {**TINY, "recent_lags": True}},
               "mstl"]
    ens = make_model({"name": "ensemble", "params": {"members": members, "season_length": 1}}, freq=1).fit(_integer())
    assert [m.name for m in ens.members_] == ["xgboost", "dynamic_optimized_theta"]
    assert ens.notes_ == [
        'member \'xgboost {"max_depth": 3, "n_estimators": 20, "recent_lags": true}\' left out: on this data it is '
        'identical to member \'xgboost {"max_depth": 3, "n_estimators": 20}\'',
        "member 'mstl' left out: MSTL needs a season (season_length > 1; this data has [1])",
        "member 'dynamic_optimized_theta' added: fewer than two members could apply"]


def test_chosen_members_leave_out_mstl_when_the_series_are_too_short() -> None:
    """Weekly series of 60 points: MSTL (52) needs 105 and is left out of the chosen members."""
    df = _weekly(3, 60)
    ens = make_model({"name": "ensemble", "params": {"members": None}}, freq="1w").fit(
        validate_panel(df, freq="1w"))
    assert [m.name for m in ens.members_] == ["xgboost", "dynamic_optimized_theta", "auto_ets"]
    members = [{"name": "xgboost", "params": TINY}, "auto_ets", {"name": "mstl", "params": {"season_length": 52}}]
    listed = make_model({"name": "ensemble", "params": {"members": members}}, freq="1w")
    with pytest.raises(Exception, match="105"):  # a listed member keeps today's rule: its minimum is enforced
        listed.fit(validate_panel(df, freq="1w"))
