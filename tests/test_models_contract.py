"""The model contract over the whole registry (scikit-learn ``parametrize_with_checks`` style),
hand-computed forecasts, a regression pin against statsforecast, and per-series failures."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from forecasting.data import validate_panel
from forecasting.datasets import load_air_passengers
from forecasting.decomposition import seasonality_test
from forecasting.errors import (
    CapabilityError,
    InsufficientHistoryError,
    InvalidInputError,
    InvalidParameterError,
    ModelFitError,
    NotFittedError,
)
from forecasting.models import (
    REGISTRY,
    BaseForecaster,
    Capabilities,
    Forecaster,
    LocalForecaster,
    capabilities_of,
    make_model,
    model_names,
    parse_spec,
    require,
    resolve_spec,
)

H = 12
LEVELS = [80, 95]


@pytest.fixture(scope="module")
def air() -> pl.DataFrame:
    return load_air_passengers()


@pytest.fixture(scope="module")
def panel2(air: pl.DataFrame) -> pl.DataFrame:
    """Two series with different ends: AirPassengers (to 1960-12) and a scaled copy cut at 1958-12."""
    other = air.head(120).with_columns(pl.lit("B").alias("unique_id"), (pl.col("y") * 2 + 1).alias("y"))
    return pl.concat([air, other])


def _months_after(last: dt.datetime, h: int) -> list[dt.datetime]:
    out, y, m = [], last.year, last.month
    for _ in range(h):
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        out.append(dt.datetime(y, m, 1))
    return out


#: deep models train for a handful of steps on tiny networks here (their quality is benchmarked elsewhere)
SMALL = {"nhits": {"max_steps": 5, "windows_batch_size": 16, "batch_size": 2, "mlp_units": 16},
         "tft": {"max_steps": 5, "windows_batch_size": 16, "batch_size": 2, "hidden_size": 8},
         "tsmixer": {"max_steps": 5, "windows_batch_size": 16, "batch_size": 2, "ff_dim": 8},
         "auto": {"candidates": ["naive", "seasonal_naive", "auto_theta"]}}


def _model(name: str) -> Any:
    # season_length 12 derived from the monthly frequency
    return make_model({"name": name, "params": SMALL.get(name, {})}, freq="1mo")


#: the whole registry, fitted once per model on AirPassengers and shared by the tests that only predict from it
#: (tiny settings: the contract, not the accuracy, is tested here; a test that fits or changes a model makes its own)
TINY = {**SMALL, "xgboost": {"n_estimators": 10}, "lightgbm": {"n_estimators": 10},
        "ensemble": {"members": [{"name": "xgboost", "params": {"n_estimators": 10}}, "seasonal_naive"]}}
_FITTED: dict[str, Any] = {}


def _fitted(name: str, air: pl.DataFrame) -> Any:
    if name not in _FITTED:
        _FITTED[name] = make_model({"name": name, "params": TINY.get(name, {})}, freq="1mo").fit(air)
    return _FITTED[name]


ALL = pytest.mark.parametrize("name", model_names())


def test_registry_is_the_source_of_truth() -> None:
    assert model_names() == list(REGISTRY)
    assert {"naive", "naive2", "seasonal_naive", "auto_ets", "auto_theta"} <= set(model_names())


# ----------------------------------------------------------------------------- the contract


@ALL
def test_fit_returns_self_and_follows_the_protocol(name: str, air: pl.DataFrame) -> None:
    model = _model(name)
    assert isinstance(model, Forecaster)
    assert model.name == name
    assert model.alias
    assert isinstance(model.min_train_length, int) and model.min_train_length >= 1
    assert model.fit(air) is model
    if "season_length" in model.get_params():
        assert model.get_params()["season_length"] in (12, [12])


@ALL
def test_predict_before_fit_raises_not_fitted(name: str) -> None:
    model = _model(name)
    with pytest.raises(NotFittedError, match=rf"model '{name}' is not fitted: call fit"):
        model.predict(H)
    with pytest.raises(AttributeError):  # as scikit-learn's NotFittedError
        model.predict(H)


@ALL
def test_h_rows_per_series_on_the_grid_with_levels(name: str, panel2: pl.DataFrame) -> None:
    model = _model(name).fit(panel2)
    out = model.predict(H, level=LEVELS)
    a = model.alias
    assert out.columns == ["unique_id", "ds", a, f"{a}-lo-80", f"{a}-hi-80", f"{a}-lo-95", f"{a}-hi-95"]
    assert out.schema["ds"] == pl.Datetime("us")
    assert out.group_by("unique_id", maintain_order=True).len().rows() == [("AirPassengers", H), ("B", H)]
    for uid, last in (("AirPassengers", dt.datetime(1960, 12, 1)), ("B", dt.datetime(1958, 12, 1))):
        assert out.filter(pl.col("unique_id") == uid)["ds"].to_list() == _months_after(last, H)
    values = out.select(pl.exclude("unique_id", "ds"))
    assert values.null_count().sum_horizontal()[0] == 0
    assert all(values[c].is_finite().all() for c in values.columns)
    tol = 1e-9
    assert (out[f"{a}-lo-95"] <= out[f"{a}-lo-80"] + tol).all()
    assert (out[f"{a}-lo-80"] <= out[a] + tol).all()
    assert (out[a] <= out[f"{a}-hi-80"] + tol).all()
    assert (out[f"{a}-hi-80"] <= out[f"{a}-hi-95"] + tol).all()


@ALL
def test_point_forecast_does_not_depend_on_levels(name: str, air: pl.DataFrame) -> None:
    model = _fitted(name, air)
    plain = model.predict(H)
    assert plain.columns == ["unique_id", "ds", model.alias]
    with_levels = model.predict(H, level=LEVELS)
    np.testing.assert_allclose(plain[model.alias].to_numpy(), with_levels[model.alias].to_numpy(), rtol=1e-12)


@ALL
def test_predict_with_history_refits(name: str, air: pl.DataFrame) -> None:
    model = _model(name).fit(air)
    history = air.head(120)  # ends 1958-12
    out = model.predict(6, history=history)
    assert out["ds"].to_list() == _months_after(dt.datetime(1958, 12, 1), 6)
    if model.capabilities.is_global:
        # a global model forecasts the new history without retraining: the fitted state is unchanged
        assert model.predict(1)["ds"].to_list() == [dt.datetime(1961, 1, 1)]
        again = model.predict(6, history=history)
        np.testing.assert_array_equal(out[model.alias].to_numpy(), again[model.alias].to_numpy())
        return
    fresh = _model(name).fit(history).predict(6)
    np.testing.assert_allclose(out[model.alias].to_numpy(), fresh[model.alias].to_numpy(), rtol=1e-10)
    # the model now holds the new history: a plain predict continues from it
    assert model.predict(1)["ds"].to_list() == [dt.datetime(1959, 1, 1)]


@ALL
def test_exogenous_columns_refused(name: str, air: pl.DataFrame) -> None:
    model = _model(name)
    if model.capabilities.supports_exog:
        # a model that uses them needs their future values, and says which are missing
        model.fit(air.with_columns(pl.lit(1.0).alias("price")))
        with pytest.raises(InvalidInputError, match=r"X_future is required.*\['price'\]"):
            model.predict(2)
        return
    with pytest.raises(CapabilityError, match=rf"model '{name}' does not use exogenous columns; drop price"):
        model.fit(air.with_columns(pl.lit(1.0).alias("price")))


@ALL
def test_x_future_refused(name: str, air: pl.DataFrame) -> None:
    """A model fitted without exogenous columns refuses X_future (those that use them: when trained without)."""
    model = _fitted(name, air)
    X_future = pl.DataFrame({"unique_id": ["AirPassengers"], "ds": [dt.datetime(1961, 1, 1)], "price": [1.0]})
    with pytest.raises(CapabilityError, match=r"X_future is not accepted") as err:
        model.predict(1, X_future=X_future)
    assert err.value.field == "X_future"


@ALL
def test_bad_h_and_level_refused(name: str, air: pl.DataFrame) -> None:
    model = _fitted(name, air)
    with pytest.raises(InvalidParameterError, match=r"h must be an integer >= 1, got 0"):
        model.predict(0)
    with pytest.raises(InvalidParameterError, match=r"level must be numbers strictly between 0 and 100"):
        model.predict(1, level=[100])


@ALL
def test_min_train_length_is_enforced_and_sufficient(name: str, air: pl.DataFrame) -> None:
    model = _model(name)
    n = model.min_train_length
    if n > 1:
        with pytest.raises(InsufficientHistoryError) as err:
            model.fit(validate_panel(air.head(n - 1), freq="1mo"))
        assert err.value.details["series"] == {"AirPassengers": {"length": n - 1, "minimum": n}}
    fitted = _model(name).fit(validate_panel(air.head(n), freq="1mo"))
    # a global model's intervals also need held-out calibration windows beyond its minimum length
    out = fitted.predict(3, level=[] if fitted.capabilities.is_global else [80])
    assert out.height == 3
    assert all(out[c].is_finite().all() for c in out.columns[2:])


# ----------------------------------------------------------------------------- declared capabilities
@ALL
def test_make_model_builds_the_registered_class_from_its_params_struct(name: str) -> None:
    model = _model(name)
    entry = REGISTRY[name]
    assert type(model) is entry.load()
    assert isinstance(model, BaseForecaster) and isinstance(model, Forecaster)
    assert type(model).params_type is entry.params  # the struct is declared once, on the generic base
    assert isinstance(model.params, entry.params)
    assert isinstance(model.capabilities, Capabilities)


@ALL
def test_params_round_trip(name: str) -> None:
    """get_params -> spec -> make_model gives the same parameters (each declared once, in the struct)."""
    model = _model(name)
    params = model.get_params()
    again = make_model({"name": name, "params": params}, freq="1mo")
    assert again.get_params() == params
    assert again.params == model.params
    # keyword construction goes through the same struct (and its validation)
    assert type(model)(**params).get_params() == params
    with pytest.raises(InvalidParameterError, match=rf"model '{name}': invalid parameter 'no_such_parameter'"):
        type(model)(no_such_parameter=1)


@ALL
def test_save_load_round_trip_or_capability_error(name: str, air: pl.DataFrame, tmp_path: Path) -> None:
    model = _fitted(name, air)
    if not model.capabilities.can_save:
        with pytest.raises(CapabilityError, match=rf"model '{name}' cannot be saved") as err:
            model.save(tmp_path / "m")
        assert err.value.details == {"model": name, "capability": "save"}
        with pytest.raises(CapabilityError):
            type(model).load(tmp_path / "m")
        assert not (tmp_path / "m").exists()
        return
    loaded = type(model).load(model.save(tmp_path / "m"))
    assert type(loaded) is type(model)
    assert loaded.get_params() == {**model.get_params(), "device": loaded.get_params()["device"]}
    assert loaded.predict(H, level=[80]).equals(model.predict(H, level=[80]))


@ALL
def test_explain_or_capability_error(name: str, air: pl.DataFrame) -> None:
    from forecasting.explanation import Explanation
    from forecasting.models.base import explain_forecast

    model = _fitted(name, air)
    if not model.capabilities.can_explain:
        for call in (lambda: model.explain(2), lambda: explain_forecast(model, 2)):
            with pytest.raises(CapabilityError, match=rf"model '{name}' cannot explain its forecasts: ") as err:
                call()
            assert err.value.details["capability"] == "explain"
        return
    explanation = model.explain(2)
    assert isinstance(explanation, Explanation)
    assert explanation.rows.height == 2  # one series, h rows


@ALL
def test_onnx_export_or_capability_error(name: str, air: pl.DataFrame, tmp_path: Path) -> None:
    from forecasting.export import export_model

    model = _fitted(name, air)
    if not model.capabilities.can_export:
        with pytest.raises(CapabilityError, match=rf"model '{name}' cannot be exported to ONNX: ") as err:
            export_model(model, tmp_path / "x")
        assert err.value.details == {"model": name, "capability": "export"}
        assert not (tmp_path / "x").exists()
        return
    from forecasting.runtime import load_onnx

    folder = export_model(model, tmp_path / "x", sample_series=1)  # the export itself checks parity
    onnx = load_onnx(folder)
    np.testing.assert_allclose(onnx.predict(H)[onnx.alias].to_numpy(), model.predict(H)[model.alias].to_numpy(),
                               rtol=1e-4)
    assert not onnx.capabilities.can_explain and not onnx.capabilities.can_save


@ALL
def test_declared_progress_and_time_limit_match_behaviour(name: str, air: pl.DataFrame) -> None:
    from forecasting.errors import TimeLimitError

    caps = _model(name).capabilities
    if caps.reports_progress:
        model = _model(name)
        seen: list[tuple[float, str]] = []
        model.progress = lambda done, message: seen.append((done, message))
        model.fit(air)
        assert seen and 0 <= seen[-1][0] <= 1
    model = _model(name)
    model.deadline = 0.0  # long past
    if caps.honours_time_limit:
        with pytest.raises(TimeLimitError):
            model.fit(air)


@ALL
def test_declared_intervals_and_exog_match_behaviour(name: str, air: pl.DataFrame) -> None:
    model = _fitted(name, air)
    caps = model.capabilities
    assert caps.supports_intervals  # every registered model gives intervals (a local model that cannot: below)
    assert model.predict(2, level=[80]).width == 5
    assert caps.is_global == (REGISTRY[name].family in ("machine-learning", "deep-learning"))
    assert caps.supports_exog == caps.is_global


def test_require_names_the_model_the_capability_and_why() -> None:
    model = make_model("auto_ets")
    with pytest.raises(CapabilityError, match=r"model 'auto_ets' cannot be exported to ONNX: statistical models are "
                                              r"refit from each request's history") as err:
        require(model, "export")
    assert err.value.field == "model" and err.value.details == {"model": "auto_ets", "capability": "export"}
    require(model, "intervals")  # declared: no error
    assert capabilities_of(model) is type(model).capabilities
    with pytest.raises(CapabilityError, match=r"model 'object' cannot explain its forecasts"):
        require(object(), "explain")  # not a forecaster: no capabilities
    with pytest.raises(ValueError, match=r"unknown capability 'fly'"):
        require(model, "fly")  # type: ignore[arg-type]  # a programming error, refused


def test_one_registry_of_model_names() -> None:
    """The networks are found through REGISTRY (no second name -> class table in the neural module)."""
    import forecasting.models.neural as neural

    assert not [v for v in vars(neural).values() if isinstance(v, dict) and "nhits" in v and v is not REGISTRY]
    assert neural.network_class("nhits") is REGISTRY["nhits"].load()
    assert neural.network_class("xgboost") is None and neural.network_class("nope") is None


# ----------------------------------------------------------------------------- the effective spec
def test_resolve_spec_derives_season_length_and_says_so() -> None:
    spec, notes = resolve_spec("auto_ets", freq="1d")
    assert spec.params == {"season_length": 7} and notes == ["season_length=7 derived from freq '1d'"]
    spec, notes = resolve_spec("mstl", freq="1h")
    assert spec.params == {"season_length": [24, 168]}
    spec, notes = resolve_spec("naive2", freq=1)
    assert spec.params == {"season_length": 1}
    assert notes == ["season_length=1 derived from integer ds (no calendar: pass season_length)"]
    # given: untouched, no note; models without a season: untouched
    assert resolve_spec({"name": "auto_ets", "params": {"season_length": 12}}, freq="1d") == (
        parse_spec({"name": "auto_ets", "params": {"season_length": 12}}), [])
    assert resolve_spec("naive", freq="1h") == (parse_spec("naive"), [])


def test_resolve_spec_with_a_known_season_and_series_lengths() -> None:
    # a dataset's own season (M4 Hourly: 24): single-season models take it, multi-season ones the calendar's periods
    assert resolve_spec("xgboost", freq="1h", season_length=24)[0].params == {"season_length": 24}
    assert resolve_spec("mstl", freq="1h", season_length=24)[0].params == {"season_length": [24, 168]}
    assert resolve_spec("mstl", freq="1mo", season_length=12)[0].params == {"season_length": 12}
    assert resolve_spec("xgboost", freq=None, season_length=[24, 168])[0].params == {"season_length": 24}
    _, notes = resolve_spec("auto_ets", freq="1d", lengths={"a": 30, "b": 10})
    assert notes[1] == ("1 series ('b') have fewer than 14 observations (2 seasons of 7): 'auto_ets' may fit them "
                        "without a seasonal component, as it needs about 2 seasons to estimate one")
    # a global model hands short series to its fallback (or refuses them): no seasonal-component note
    assert resolve_spec("xgboost", freq="1d", lengths={"a": 30, "b": 10})[1] == ["season_length=7 derived from freq '1d'"]


def test_make_model_uses_the_resolved_spec() -> None:
    for name, freq in (("auto_ets", "1d"), ("mstl", "1h"), ("xgboost", "15m"), ("ensemble", "1h")):
        spec, _ = resolve_spec(name, freq=freq)
        assert make_model(name, freq=freq).get_params()["season_length"] == spec.params["season_length"]


# ----------------------------------------------------------------------------- by hand


def test_naive_is_the_last_value(air: pl.DataFrame) -> None:
    out = make_model("naive").fit(air).predict(5)
    assert out["Naive"].to_list() == [432.0] * 5


def test_naive_per_series(panel2: pl.DataFrame) -> None:
    out = make_model("naive").fit(panel2).predict(2)
    b_last = float(panel2.filter(pl.col("unique_id") == "B")["y"][-1])
    assert out["Naive"].to_list() == [432.0, 432.0, b_last, b_last]


def test_seasonal_naive_repeats_the_last_season(air: pl.DataFrame) -> None:
    out = make_model({"name": "seasonal_naive", "params": {"season_length": 12}}).fit(air).predict(H)
    assert out["SeasonalNaive"].to_list() == [417.0, 391.0, 419.0, 461.0, 472.0, 535.0, 622.0, 606.0, 508.0, 461.0,
                                              390.0, 432.0]
    again = make_model({"name": "seasonal_naive", "params": {"season_length": 12}}).fit(air).predict(24)
    assert again["SeasonalNaive"].to_list()[12:] == out["SeasonalNaive"].to_list()


def test_naive_intervals_widen_with_sqrt_h(air: pl.DataFrame) -> None:
    out = make_model("naive").fit(air).predict(4, level=[95])
    half = (out["Naive-hi-95"] - out["Naive"]).to_numpy()
    np.testing.assert_allclose(half / half[0], np.sqrt([1, 2, 3, 4]), rtol=1e-9)


def test_naive2_equals_naive_when_the_seasonality_test_fails() -> None:
    y = np.array([5.0, 3, 8, 1, 9, 2, 7, 4, 6, 3, 8, 2, 5, 9, 1, 7, 3, 6, 4, 8, 2, 9, 5, 1, 6, 3, 7, 2, 8, 4, 5, 9,
                  3, 6, 1, 7])
    assert not seasonality_test(y, 12)
    data = {"unique_id": ["x"] * len(y), "ds": list(range(len(y))), "y": y.tolist()}
    naive2 = make_model({"name": "naive2", "params": {"season_length": 12}}).fit(data).predict(H)
    naive = make_model("naive").fit(data).predict(H)
    assert naive2["Naive2"].to_list() == naive["Naive"].to_list() == [7.0] * H


def test_naive2_on_seasonal_air_passengers_is_not_naive(air: pl.DataFrame) -> None:
    assert seasonality_test(air["y"].to_numpy(), 12)
    out = make_model({"name": "naive2", "params": {"season_length": 12}}).fit(air).predict(H)["Naive2"].to_numpy()
    assert not np.allclose(out, 432.0)
    assert np.argmax(out) in (6, 7)  # July/August peak survives the reseasonalisation


@pytest.mark.parametrize(("name", "sf_class"), [("auto_ets", "AutoETS"), ("auto_theta", "AutoTheta")])
def test_matches_statsforecast_on_air_passengers(name: str, sf_class: str, air: pl.DataFrame) -> None:
    """Regression pin: our per-series adapters give StatsForecast's own numbers on the series as the adapter fits
    it (brought to max |y| = FIT_MAGNITUDE by ``series_scale``, forecasts scaled back: scale equivariance)."""
    import statsforecast.models as sfm
    from statsforecast import StatsForecast

    from forecasting.models.stats import series_scale

    scale = series_scale(air["y"].to_numpy())
    ref = StatsForecast(models=[getattr(sfm, sf_class)(season_length=12)], freq="MS").forecast(
        df=air.with_columns(pl.col("y") / scale).to_pandas(), h=H, level=[95])
    for col in (sf_class, f"{sf_class}-lo-95", f"{sf_class}-hi-95"):
        ref[col] = ref[col] * scale
    ours = make_model({"name": name, "params": {"season_length": 12}}).fit(air).predict(H, level=[95])
    assert [d.to_pydatetime() for d in ref["ds"]] == ours["ds"].to_list()
    for col in (sf_class, f"{sf_class}-lo-95", f"{sf_class}-hi-95"):
        np.testing.assert_allclose(ours[col].to_numpy(), ref[col].to_numpy(), rtol=0, atol=1e-6)


def test_n_jobs_gives_the_same_forecasts(air: pl.DataFrame) -> None:
    panel = pl.concat([air.with_columns(pl.lit(f"s{k}").alias("unique_id"), pl.col("y") + k) for k in range(4)])
    one = make_model("seasonal_naive", freq="1mo", n_jobs=1).fit(panel).predict(3, level=[80])
    two = make_model("seasonal_naive", freq="1mo", n_jobs=2).fit(panel).predict(3, level=[80])
    assert one.equals(two)


# ----------------------------------------------------------------------------- base class paths


class _LastValue(LocalForecaster):
    """A tiny local model for the base-class paths: forecasts the last value."""

    name = "last_value"
    default_alias = "Last"

    def _fit_one(self, y: np.ndarray) -> float:
        return float(y[-1])

    def _predict_one(self, state: float, h: int, levels: tuple[float, ...]) -> dict[str, np.ndarray]:
        out = {"mean": np.full(h, state)}
        for lv in levels:
            out[f"lo-{lv}"] = np.full(h, state - lv)
            out[f"hi-{lv}"] = np.full(h, state + lv)
        return out


class _NoIntervals(_LastValue):
    name = "no_intervals"
    capabilities = replace(LocalForecaster.capabilities, supports_intervals=False)


class _FailsOnNegative(_LastValue):
    name = "fails_on_negative"

    def _fit_one(self, y: np.ndarray) -> float:
        if y.min() < 0:
            raise ValueError("negative values are not supported")
        return float(y[-1])


class _NaNForecast(_LastValue):
    name = "nan_forecast"

    def _predict_one(self, state: float, h: int, levels: tuple[float, ...]) -> dict[str, np.ndarray]:
        return {"mean": np.full(h, np.nan)}


TWO = {"unique_id": ["ok"] * 3 + ["neg"] * 3, "ds": [1, 2, 3] * 2, "y": [1.0, 2.0, 3.0, 1.0, -2.0, 3.0]}


def test_intervals_refused_when_unsupported() -> None:
    model = _NoIntervals().fit(TWO)
    with pytest.raises(CapabilityError, match=r"model 'no_intervals' cannot give prediction intervals") as err:
        model.predict(2, level=[80])
    assert err.value.field == "level"
    assert model.predict(2)["Last"].to_list() == [3.0, 3.0, 3.0, 3.0]


def test_base_class_builds_nixtla_columns() -> None:
    out = _LastValue(alias="L").fit(TWO).predict(2, level=[95, 80])
    assert out.columns == ["unique_id", "ds", "L", "L-lo-80", "L-hi-80", "L-lo-95", "L-hi-95"]
    assert out.rows()[0] == ("neg", 4, 3.0, -77.0, 83.0, -92.0, 98.0)


def test_failure_on_one_series_names_it() -> None:
    with pytest.raises(ModelFitError) as err:
        _FailsOnNegative().fit(TWO)
    msg = err.value.message
    assert "model 'fails_on_negative' failed on 1 series: series 'neg': ValueError: negative values are not supported" in msg
    assert "'ok'" not in msg
    assert err.value.details["series"] == {"neg": "ValueError: negative values are not supported"}


def test_failure_on_one_series_uses_the_fallback_and_reports_it() -> None:
    model = _FailsOnNegative(fallback=make_model("naive"))
    out = model.fit(TWO).predict(2)
    assert [(f.unique_id, f.model) for f in model.fallbacks_] == [("neg", "naive")]
    assert "ValueError: negative values are not supported" in model.fallbacks_[0].reason
    assert out.filter(pl.col("unique_id") == "neg")["Last"].to_list() == [3.0, 3.0]
    assert out.filter(pl.col("unique_id") == "ok")["Last"].to_list() == [3.0, 3.0]


def test_non_finite_forecasts_are_a_model_error() -> None:
    with pytest.raises(ModelFitError, match=r"produced non-finite forecasts for 2 series: series 'neg': non-finite 'mean'"):
        _NaNForecast().fit(TWO).predict(1)


def test_no_fallbacks_when_everything_fits() -> None:
    model = _LastValue(fallback=make_model("naive")).fit(TWO)
    assert model.fallbacks_ == []


def test_mstl_refuses_season_length_one_instead_of_silently_dropping_seasonality():
    """Regression: integer ds gives season_length 1 by default; MSTL then has nothing to decompose."""
    df = pl.DataFrame({"unique_id": ["a"] * 30, "ds": list(range(30)), "y": [float(i % 5) for i in range(30)]})
    with pytest.raises(InvalidParameterError, match=r"'mstl' needs every season_length >= 2, got 1") as err:
        make_model("mstl", freq=1).fit(df)
    assert err.value.field == "model.params.season_length"


def test_invalid_list_parameter_names_the_parameter():
    with pytest.raises(InvalidParameterError) as err:
        make_model({"name": "mstl", "params": {"season_length": [24, -1]}})
    assert err.value.field == "model.params.season_length"
    assert "season_length[1]" in err.value.message


class _NaNBandsOnNegative(_LastValue):
    """Last value; NaN lower bands for a series with a negative value."""

    name = "nan_bands_on_negative"

    def _fit_one(self, y: np.ndarray) -> tuple[float, float]:  # type: ignore[override]
        return float(y[-1]), float(y.min())

    def _predict_one(self, state: tuple[float, float], h: int,  # type: ignore[override]
                     levels: tuple[float, ...]) -> dict[str, np.ndarray]:
        out = super()._predict_one(state[0], h, levels)
        if state[1] < 0:
            for lv in levels:
                out[f"lo-{lv}"] = np.full(h, np.nan)
        return out


def test_fallback_replaces_non_finite_forecasts_and_reports_it() -> None:
    """A model whose bands are NaN on one series: the fallback takes that series over and says why."""
    model = _NaNBandsOnNegative(fallback=make_model("naive")).fit(TWO)
    out = model.predict(2, level=[80])
    assert [(f.unique_id, f.model) for f in model.fallbacks_] == [("neg", "naive")]
    assert "produced non-finite" in model.fallbacks_[0].reason
    neg = out.filter(pl.col("unique_id") == "neg")
    assert neg["Last"].to_list() == [3.0, 3.0]
    assert np.isfinite(neg["Last-lo-80"].to_numpy()).all()
    ok = out.filter(pl.col("unique_id") == "ok")
    assert ok["Last-lo-80"].to_list() == [3.0 - 80, 3.0 - 80]


def test_auto_ets_forecasts_an_exactly_trending_series_itself() -> None:
    """This series once gave AutoETS NaN 95% bounds (the fallback took over); fitted in FIT_MAGNITUDE units
    (stats.series_scale) AutoETS forecasts it itself, exactly."""
    ds = [dt.datetime(2024, 1, 1) + dt.timedelta(hours=i) for i in range(100)]
    df = pl.DataFrame({"unique_id": ["s"] * 100, "ds": ds, "y": [10 + (i % 24) + 0.1 * i for i in range(100)]})
    model = make_model({"name": "auto_ets", "fallback": "seasonal_naive"}, freq="1h").fit(df)
    out = model.predict(3, level=[95])
    assert model.fallbacks_ == []
    assert out["AutoETS"].to_list() == pytest.approx([10 + 4 + 0.1 * 100, 10 + 5 + 0.1 * 101, 10 + 6 + 0.1 * 102])
    assert np.isfinite(out["AutoETS-lo-95"].to_numpy()).all()


@pytest.mark.parametrize("alias", ["ds", "y", "unique_id", "", "a-b"])
def test_alias_cannot_clash_with_output_columns(alias):
    with pytest.raises(InvalidParameterError) as err:
        make_model({"name": "naive", "params": {"alias": alias}})
    assert err.value.field == "model.params.alias"
