"""The XGBoost global forecaster: recursion by hand, save/load, new series, exogenous inputs,
conformal coverage on held-out data, and exact SHAP additivity on real data."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import xgboost as xgb

from forecasting.data import validate_panel
from forecasting.datasets import load_air_passengers, load_m4_hourly
from forecasting.errors import CapabilityError, InsufficientHistoryError, InvalidInputError, InvalidParameterError
from forecasting.evaluation import coverage
from forecasting.models.base import explain_forecast, global_importance
from forecasting.models import make_model
from forecasting.models.xgb import XGBoostForecaster

SMALL = {"n_estimators": 60, "max_depth": 4}


@pytest.fixture(scope="module")
def air() -> pl.DataFrame:
    return load_air_passengers()


@pytest.fixture(scope="module")
def air_model(air: pl.DataFrame) -> XGBoostForecaster:
    return make_model({"name": "xgboost", "params": SMALL}, freq="1mo").fit(air)


@pytest.fixture(scope="module")
def m4_small(data_dir: Path):
    train, test = load_m4_hourly()
    ids = train["unique_id"].unique(maintain_order=True).head(60).to_list()
    return train.filter(pl.col("unique_id").is_in(ids)), test.filter(pl.col("unique_id").is_in(ids))


@pytest.fixture(scope="module")
def m4_model(m4_small) -> XGBoostForecaster:
    train, _ = m4_small
    params = {"season_length": 24, "n_estimators": 150, "conformal_windows": 2}
    return make_model({"name": "xgboost", "params": params}, freq=1, n_jobs=2).fit(train)


def test_recursive_forecast_by_hand():
    """With only lag_1 and no transforms, step 2 is the booster applied to step 1's forecast."""
    y = [float(v) for v in np.sin(np.arange(60) / 3) * 10 + 50]
    df = pl.DataFrame({"unique_id": ["a"] * 60, "ds": list(range(60)), "y": y})
    spec = {"features": {"lags": [1]}, "n_estimators": 20, "max_depth": 3, "conformal_windows": 0}
    model = make_model({"name": "xgboost", "params": spec}, freq=1).fit(df)
    out = model.predict(3)["XGBoost"].to_list()
    booster = model.boosters_[0]

    def one(v: float) -> float:
        return float(booster.predict(xgb.DMatrix(np.array([[v]], dtype=np.float32), feature_names=["lag_1"]))[0])

    step1 = one(y[-1])
    step2 = one(np.float32(step1))
    step3 = one(np.float32(step2))
    assert out == pytest.approx([step1, step2, step3], rel=1e-6)
    assert out[0] != out[1]


def test_forecast_shape_dates_and_intervals(air_model: XGBoostForecaster):
    out = air_model.predict(12, level=[80, 95])
    assert out["ds"].to_list() == [dt.datetime(1961, m, 1) for m in range(1, 13)]
    assert out.columns == ["unique_id", "ds", "XGBoost", "XGBoost-lo-80", "XGBoost-hi-80", "XGBoost-lo-95",
                           "XGBoost-hi-95"]
    assert (out["XGBoost-lo-95"] <= out["XGBoost-lo-80"]).all() and (out["XGBoost-lo-80"] < out["XGBoost"]).all()
    assert (out["XGBoost"] < out["XGBoost-hi-80"]).all() and (out["XGBoost-hi-80"] <= out["XGBoost-hi-95"]).all()
    # the 1961 peak is in the summer, July or August, as in every year of the history (1959: August)
    assert out["XGBoost"].arg_max() in (6, 7)


def test_save_load_gives_identical_forecasts(air_model: XGBoostForecaster, tmp_path: Path):
    folder = air_model.save(tmp_path / "model")
    assert sorted(p.name for p in folder.iterdir()) == ["booster_0.ubj", "history.parquet", "model.json",
                                                        "pipeline.json"]
    loaded = XGBoostForecaster.load(folder)
    before, after = air_model.predict(12, level=[90]), loaded.predict(12, level=[90])
    assert before.equals(after)
    # loaded on the CPU whatever it was trained on (simulating a GPU-trained artifact by its config)
    config = json.loads(loaded.boosters_[0].save_config())
    assert config["learner"]["generic_param"]["device"] == "cpu"


def test_load_refuses_a_folder_of_another_kind(tmp_path: Path):
    (tmp_path / "model.json").write_text(json.dumps({"format_version": 99, "model": "xgboost"}))
    with pytest.raises(InvalidInputError, match="is not an xgboost model folder"):
        XGBoostForecaster.load(tmp_path)


def test_new_series_from_history_without_retraining(air_model: XGBoostForecaster, air: pl.DataFrame):
    """A series the model never saw, with the same values, gets the same forecast; the model is unchanged."""
    renamed = air.with_columns(pl.lit("new_series").alias("unique_id"))
    out = air_model.predict(6, history=renamed)
    assert out["unique_id"].unique().to_list() == ["new_series"]
    np.testing.assert_allclose(out["XGBoost"].to_numpy(), air_model.predict(6)["XGBoost"].to_numpy(), rtol=1e-6)


def test_history_too_short_names_series_and_minimum(air_model: XGBoostForecaster, air: pl.DataFrame):
    short = air.tail(20).with_columns(pl.lit("tiny").alias("unique_id"))
    need = air_model.pipeline_.lookback
    with pytest.raises(InsufficientHistoryError) as err:
        air_model.predict(3, history=pl.concat([air, short]))
    assert "series 'tiny': 20 observations" in err.value.message and f"at least {need}" in err.value.message
    assert err.value.details["series"] == {"tiny": {"length": 20, "minimum": need}}


def test_training_series_too_short_is_refused_or_falls_back(air: pl.DataFrame):
    # lengths 144 and 5: the lower decile (18) sizes lags 1-8 (lookback 9), which leave 'tiny' out; the features
    # are then those of the series kept (AirPassengers alone: lags 1-24, 36, lookback 37)
    short = air.tail(5).with_columns(pl.lit("tiny").alias("unique_id"))
    data = pl.concat([air, short])
    with pytest.raises(InsufficientHistoryError, match=r"series 'tiny': 5 observations"):
        make_model({"name": "xgboost", "params": SMALL}, freq="1mo").fit(data)
    model = make_model({"name": "xgboost", "params": SMALL, "fallback": "naive"}, freq="1mo").fit(data)
    out = model.predict(3)
    assert [f.unique_id for f in model.fallbacks_] == ["tiny"]
    assert model.pipeline_.lookback == 37
    tiny = out.filter(pl.col("unique_id") == "tiny")["XGBoost"].to_list()
    assert tiny == [432.0] * 3  # naive: December 1960


def _with_price(air: pl.DataFrame) -> pl.DataFrame:
    return air.with_columns((pl.int_range(pl.len()) % 3).cast(pl.Float64).alias("price"))


def test_future_exogenous_values_are_required_and_missing_pairs_named(air: pl.DataFrame):
    model = make_model({"name": "xgboost", "params": SMALL}, freq="1mo").fit(_with_price(air))
    assert "price" in model.pipeline_.feature_names
    future = pl.DataFrame({"unique_id": ["AirPassengers"] * 3, "ds": [dt.datetime(1961, m, 1) for m in (1, 2, 4)],
                           "price": [1.0, 2.0, 0.0]})
    with pytest.raises(InvalidInputError) as err:
        model.predict(3, X_future=future)
    assert err.value.field == "X_future"
    assert "'price' missing for 1 (unique_id, ds) pairs: (AirPassengers, 1961-03-01)" in err.value.message
    with pytest.raises(InvalidInputError, match=r"X_future is required.*\['price'\]"):
        model.predict(3)
    full = future.with_columns(pl.Series("ds", [dt.datetime(1961, m, 1) for m in (1, 2, 3)]))
    assert model.predict(3, X_future=full).height == 3


def test_unknown_exogenous_column_in_spec_is_refused(air: pl.DataFrame):
    spec = {"name": "xgboost", "params": {**SMALL, "features": {"lags": [1, 12], "future_exog": ["promo"]}}}
    with pytest.raises(InvalidInputError, match=r"exogenous columns \['promo'\] named in the features are not in the data"):
        make_model(spec, freq="1mo").fit(air)


def test_invalid_feature_spec_names_the_parameter():
    with pytest.raises(InvalidParameterError) as err:
        make_model({"name": "xgboost", "params": {"features": {"lags": [0]}}})
    assert err.value.field == "model.params.features"


def test_direct_strategy(air: pl.DataFrame):
    params = {**SMALL, "strategy": "direct", "step_group_size": 6, "horizon": 12}
    model = make_model({"name": "xgboost", "params": params}, freq="1mo").fit(air)
    assert len(model.boosters_) == 2
    out = model.predict(12, level=[80])
    assert out.height == 12 and out["XGBoost"].is_finite().all()
    assert out["XGBoost"].arg_max() in (6, 7)  # July or August, as in the history
    with pytest.raises(CapabilityError, match="trained for h <= 12"):
        model.predict(13)
    e = explain_forecast(model, 12)
    assert e.additivity_error_relative < 1e-5


def test_conformal_coverage_on_held_out_m4(m4_model: XGBoostForecaster, m4_small):
    """Coverage of the real 48-hour test values is within a few points of the nominal level."""
    _, test = m4_small
    out = m4_model.predict(48, level=[80, 95]).join(test, on=["unique_id", "ds"])
    assert out.height == 60 * 48
    for lv in (80, 95):
        cov = coverage(out["y"].to_numpy(), out[f"XGBoost-lo-{lv}"].to_numpy(), out[f"XGBoost-hi-{lv}"].to_numpy())
        assert abs(cov - lv / 100) < 0.06, (lv, cov)


def test_shap_additivity_on_real_data(m4_model: XGBoostForecaster):
    e_y = explain_forecast(m4_model, 48)
    assert e_y.n_rows == 60 * 48
    assert e_y.additivity_error_relative < 1e-3, e_y.additivity_error_relative
    forecast = m4_model.predict(48).sort("unique_id", "ds")["XGBoost"].to_numpy()
    np.testing.assert_allclose(e_y.output, forecast, rtol=1e-6)  # in units of y, the outputs are the forecasts
    e_model = explain_forecast(m4_model, 6, units="model")
    assert e_model.additivity_error_relative < 1e-3
    # step k flags exactly the lags shorter than k as coming from earlier forecasts
    flagged = e_y.to_frame().filter(pl.col("is_forecast_value"))
    lags = flagged.filter(pl.col("feature").str.starts_with("lag_")).with_columns(
        pl.col("feature").str.strip_prefix("lag_").cast(pl.Int64).alias("lag"))
    assert (lags["lag"] < lags["step"]).all() and lags.height > 0
    assert flagged.filter(pl.col("step") == 1).height == 0


def test_global_importance_ranks_seasonal_lags_high(m4_model: XGBoostForecaster):
    imp = global_importance(m4_model, max_rows=2000)
    assert imp.columns == ["feature", "mean_abs_shap"]
    assert set(imp["feature"]) == set(m4_model.pipeline_.feature_names)
    top = imp["feature"].head(5).to_list()
    assert any(f in top for f in ("lag_1", "lag_24", "lag_168", "rolling_mean_24_lag_1")), top


def test_statistical_models_have_no_shap(air: pl.DataFrame):
    model = make_model("auto_ets", freq="1mo").fit(air)
    with pytest.raises(CapabilityError, match="explained by their decomposition"):
        explain_forecast(model, 3)


def test_panel_with_gap_filled_is_on_grid(air: pl.DataFrame):
    """The pipeline refuses rows that are not one freq step apart (it never treats 'previous row' as lag 1)."""
    model = make_model({"name": "xgboost", "params": SMALL}, freq="1mo")
    gappy = validate_panel(air.filter(pl.col("ds") != dt.datetime(1955, 6, 1)), fill_gaps=True,
                           fill_missing="interpolate")
    assert model.fit(gappy).predict(2).height == 2


# ----------------------------------------------------------------------------- regressions from the hostile test
def _exog(air: pl.DataFrame, values) -> pl.DataFrame:
    return air.with_columns(pl.Series("temp", values))


def test_nulls_in_exogenous_training_column_are_missing_values(air: pl.DataFrame):
    """Regression: interval calibration sent held-out rows through X_future validation, rejecting nulls."""
    values = [None if i % 7 == 0 else float(i % 5) for i in range(air.height)]
    model = make_model({"name": "xgboost", "params": SMALL}, freq="1mo").fit(_exog(air, values))
    future = pl.DataFrame({"unique_id": ["AirPassengers"] * 3, "ds": [dt.datetime(1961, m, 1) for m in (1, 2, 3)],
                           "temp": [1.0, 2.0, 3.0]})
    assert model.predict(3, X_future=future, level=[80]).height == 3


@pytest.mark.parametrize(("values", "message"), [
    (["a"] * 144, "exogenous column 'temp' must be numeric, got String"),
    ([float("inf")] + [1.0] * 143, "exogenous column 'temp' has 1 infinite values"),
])
def test_bad_exogenous_values_are_named(air: pl.DataFrame, values, message):
    with pytest.raises(InvalidInputError, match=message) as err:
        make_model({"name": "xgboost", "params": SMALL}, freq="1mo").fit(_exog(air, values))
    assert err.value.field == "data.temp"


def test_column_both_future_and_historic_is_refused(air: pl.DataFrame):
    spec = {**SMALL, "horizon": 12, "features": {"lags": [12], "future_exog": ["temp"], "hist_exog": {"temp": [12]}}}
    with pytest.raises(InvalidParameterError, match=r"\['temp'\] are listed both as future_exog and hist_exog"):
        make_model({"name": "xgboost", "params": spec}, freq="1mo").fit(_exog(air, [1.0] * 144))


def test_history_with_another_timezone_is_refused(air_model: XGBoostForecaster, air: pl.DataFrame):
    aware = air.with_columns(pl.col("ds").dt.replace_time_zone("Europe/Paris"))
    with pytest.raises(InvalidInputError, match=r"history ds must be like the training data's"):
        air_model.predict(3, history=aware)


def test_x_future_for_a_model_without_exogenous_inputs_is_refused(air_model: XGBoostForecaster):
    future = pl.DataFrame({"unique_id": ["AirPassengers"], "ds": [dt.datetime(1961, 1, 1)], "temp": [1.0]})
    with pytest.raises(CapabilityError, match="uses no future exogenous columns"):
        air_model.predict(1, X_future=future)


@pytest.mark.parametrize("damage", ["delete_booster", "corrupt_booster", "model_json_list", "edit_history",
                                    "bad_params"])
def test_damaged_model_folder_is_refused_with_a_typed_error(air_model: XGBoostForecaster, tmp_path: Path, damage):
    folder = air_model.save(tmp_path / "m")
    if damage == "delete_booster":
        (folder / "booster_0.ubj").unlink()
    elif damage == "corrupt_booster":
        (folder / "booster_0.ubj").write_bytes(b"not a model")
    elif damage == "model_json_list":
        (folder / "model.json").write_text("[1, 2]")
    elif damage == "edit_history":
        with open(folder / "history.parquet", "ab") as fh:
            fh.write(b"x")
    else:
        meta = json.loads((folder / "model.json").read_text())
        meta["params"]["season_length"] = -5
        (folder / "model.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError) as err:
        XGBoostForecaster.load(folder)
    assert str(folder) in err.value.message and err.value.field == "model"


def test_block_recursion_equals_step_by_step(m4_model: XGBoostForecaster, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seasonal-lag features (nearest target lag 24) let 24 steps share one pass: same forecasts, same SHAP."""
    assert m4_model.recursive_block() == 24
    fast = m4_model.predict(48, level=[80])
    fast_long = m4_model.predict(60)  # beyond two blocks
    fast_e = m4_model.explain(30)
    monkeypatch.setattr(XGBoostForecaster, "recursive_block", lambda self: 1)
    slow = m4_model.predict(48, level=[80])
    np.testing.assert_allclose(fast_long["XGBoost"].to_numpy(), m4_model.predict(60)["XGBoost"].to_numpy(), rtol=1e-10)
    slow_e = m4_model.explain(30)
    assert fast["ds"].equals(slow["ds"]) and fast["unique_id"].equals(slow["unique_id"])
    for c in fast.columns[2:]:
        np.testing.assert_allclose(fast[c].to_numpy(), slow[c].to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(fast_e.values, slow_e.values, rtol=1e-9, atol=1e-9)
    assert fast_e.rows.equals(slow_e.rows)
    np.testing.assert_array_equal(fast_e.is_forecast_value, slow_e.is_forecast_value)


def test_recent_lags_recurse_one_step_at_a_time(air: pl.DataFrame) -> None:
    model = XGBoostForecaster(season_length=12, recent_lags=True, n_estimators=5).fit(air)
    assert model.recursive_block() == 1


def test_a_model_too_short_to_calibrate_saves_and_loads(tmp_path: Path) -> None:
    """No series long enough for a calibration window: scores of shape (0, horizon) survive save/load."""
    t = np.arange(240)
    df = pl.DataFrame({"unique_id": ["a"] * 240, "ds": t.tolist(), "y": (10 + np.sin(2 * np.pi * t / 24)).tolist()})
    seasonal = {"lags": [24 * i for i in range(1, 8)], "differences": [24]}  # lookback 192: 240 - 48 < 193
    model = XGBoostForecaster(season_length=24, n_estimators=5, features=seasonal, horizon=48).fit(df)
    assert model.scores_.shape == (0, 48)
    loaded = XGBoostForecaster.load(model.save(tmp_path / "m"))
    assert loaded.predict(5).equals(model.predict(5))
    with pytest.raises(CapabilityError, match="no series was long enough to calibrate intervals"):
        loaded.predict(5, level=[80])


@pytest.mark.parametrize("recent_lags", [False, True])
def test_forecast_features_without_series_tests_equal_the_guarded_ones(recent_lags: bool,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The forecast path computes block rows with bare shifts (every read is inside the series): same forecasts as
    the guarded features, over series of different lengths, with differences and rolling windows."""
    from forecasting.features import FeaturePipeline, FeatureSpec, RollingSpec

    train, _ = load_m4_hourly()
    ids = train["unique_id"].unique(maintain_order=True).to_list()[:4]
    data = train.filter(pl.col("unique_id").is_in(ids)).filter(  # one series shorter than the others
        ~((pl.col("unique_id") == ids[1]) & (pl.int_range(pl.len()).over("unique_id") < 300)))
    spec = FeatureSpec(lags=[1, 24] if recent_lags else [24, 48], differences=[24],
                       rolling=[RollingSpec(window=6, stats=["mean", "std", "min", "max"], lag=24),
                                RollingSpec(window=3, stats=["mean", "max"], lag=24, season_length=24)])
    model = XGBoostForecaster(season_length=24, features=spec, n_estimators=20).fit(data)
    history = data.filter(pl.col("unique_id") != ids[0]).filter(
        pl.int_range(pl.len()).over("unique_id") >= pl.len().over("unique_id") - model.pipeline_.lookback)
    fast, fast_h = model.predict(48, level=[80]), model.predict(30, history=history)
    # a history of exactly `lookback` rows is enough (it used to forecast from an empty tail: an unsigned
    # length minus lookback + 1 wrapped around), and gives what a longer one gives when scaling is off
    assert model.pipeline_.spec.scaler == "none"
    longer = data.filter(pl.col("unique_id") != ids[0]).filter(
        pl.int_range(pl.len()).over("unique_id") >= pl.len().over("unique_id") - model.pipeline_.lookback - 10)
    np.testing.assert_allclose(fast_h["XGBoost"].to_numpy(), model.predict(30, history=longer)["XGBoost"].to_numpy(),
                               rtol=1e-12)
    original = FeaturePipeline.transform_lazy
    monkeypatch.setattr(FeaturePipeline, "transform_lazy",
                        lambda self, frame, **kw: original(self, frame, **{**kw, "reach_checked": False}))
    slow, slow_h = model.predict(48, level=[80]), model.predict(30, history=history)
    assert fast.equals(slow) and fast_h.equals(slow_h)


def test_expanding_means_with_differences_see_only_their_own_series() -> None:
    """Each series' forecast from a multi-series panel equals its forecast on its own (an expanding mean sums the
    whole differenced history, whose first rows must not read the previous series)."""
    rng = np.random.default_rng(0)
    n = 60
    df = pl.DataFrame({"unique_id": ["a"] * n + ["b"] * n, "ds": list(range(n)) * 2,
                       "y": np.r_[100 + rng.normal(0, 1, n).cumsum(), 5 + rng.normal(0, 1, n).cumsum()]})
    model = XGBoostForecaster(features={"lags": [1], "expanding_mean_lags": [1], "differences": [1]},
                              n_estimators=10, conformal_windows=0).fit(df)
    together = model.predict(3)
    for uid in ("a", "b"):
        alone = model.predict(3, history=df.filter(pl.col("unique_id") == uid))
        np.testing.assert_allclose(together.filter(pl.col("unique_id") == uid)["XGBoost"].to_numpy(),
                                   alone["XGBoost"].to_numpy(), rtol=1e-12)


def test_a_hand_built_panel_history_is_still_checked_for_gaps() -> None:
    from forecasting.data import Panel

    df = pl.DataFrame({"unique_id": ["a"] * 60, "ds": list(range(60)), "y": np.sin(np.arange(60.0)) + 10})
    model = XGBoostForecaster(n_estimators=5, conformal_windows=0).fit(df)
    p = validate_panel(df)
    gap = Panel(frame=p.frame.filter(pl.col("ds") != 50), freq=1, lengths={"a": 59}, ds_kind="int")
    with pytest.raises(InvalidInputError, match=r"not on the '1' grid \(a gap or misplaced timestamp\): series 'a' at 51"):
        model.predict(2, history=gap)
    backwards = Panel(frame=p.frame.sort("ds", descending=True), freq=1, lengths={"a": 60}, ds_kind="int")
    with pytest.raises(InvalidInputError, match=r"not on the '1' grid"):
        model.predict(2, history=backwards)
