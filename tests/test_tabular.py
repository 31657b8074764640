"""Tabular models (forecasting.tabular) on real tables, and their refusals.

Split used throughout (documented, fixed): ``sklearn.model_selection.train_test_split(
range(n), test_size=0.2, random_state=42)``, a random split (not chronological, also for
bike sharing). Models run with ``n_jobs=1``: on a shared 2-core machine, OpenMP
oversubscription made XGBoost 35x slower.

Bounds were measured on that split with the default hyperparameters (xgboost 3.2,
scikit-learn 1.9) and set a few percent above:
- California Housing (Géron's variant, ocean_proximity + 207 missing total_bedrooms),
  RMSE in $100k: xgboost 0.4502, hist_gradient_boosting 0.4510, linear 0.7004. The
  reference 0.433 is tuned XGBoost on scikit-learn's cleaner 8-feature version.
- Bike Sharing hourly, RMSE of cnt: xgboost 36.65, hist_gradient_boosting 37.60
  (reference ~42.7 for tuned models).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting.datasets import load_bike_sharing, load_california_housing
from forecasting.errors import (
    ArtifactIntegrityError,
    CapabilityError,
    InvalidInputError,
    InvalidParameterError,
    NotFittedError,
)
from forecasting.explanation import Explanation
from forecasting.tabular import TabularModel, cross_validate

TARGET = "median_house_value_100k"
BIKE_FEATURES = ["season", "yr", "mnth", "hr", "holiday", "weekday", "workingday", "weathersit",
                 "temp", "atemp", "hum", "windspeed"]


def _split(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    from sklearn.model_selection import train_test_split

    tr, te = train_test_split(np.arange(frame.height), test_size=0.2, random_state=42)
    return frame[tr], frame[te]


def _rmse(model: TabularModel, test: pl.DataFrame, target: str) -> float:
    pred = model.predict(test)["prediction"].to_numpy()
    return float(np.sqrt(np.mean((pred - test[target].cast(pl.Float64).to_numpy()) ** 2)))


@pytest.fixture(scope="module")
def housing(data_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    return _split(load_california_housing().drop("median_house_value"))


@pytest.fixture(scope="module")
def housing_xgb(housing: tuple[pl.DataFrame, pl.DataFrame]) -> TabularModel:
    return TabularModel(algorithm="xgboost", n_jobs=1).fit(housing[0], TARGET)


@pytest.fixture(scope="module")
def bike(data_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    return _split(load_bike_sharing("hour"))


# ------------------------------------------------------------------ loaders


def test_california_housing_loader(data_dir: Path) -> None:
    df = load_california_housing()
    assert df.shape == (20_640, 11)
    assert df["total_bedrooms"].null_count() == 207
    assert df["ocean_proximity"].dtype == pl.Utf8 and df["ocean_proximity"].n_unique() == 5
    np.testing.assert_allclose(df[TARGET].to_numpy() * 100_000, df["median_house_value"].to_numpy())
    assert (df["median_house_value"] == 500_001).sum() == 965


def test_bike_sharing_loader_handles_crlf_and_builds_ds(data_dir: Path) -> None:
    hour = load_bike_sharing("hour")
    assert hour.height == 17_379 and hour["cnt"].dtype == pl.Int64  # no "\r" left in the last column
    assert hour["cnt"].sum() == 3_292_679
    assert hour["ds"].dtype == pl.Datetime("us")
    assert str(hour["ds"][1]) == "2011-01-01 01:00:00" and str(hour["ds"][-1]) == "2012-12-31 23:00:00"
    day = load_bike_sharing("day")
    assert day.height == 731 and day["cnt"].sum() == 3_292_679
    with pytest.raises(InvalidParameterError, match="'hour' or 'day'"):
        load_bike_sharing("week")


# ------------------------------------------------------------------ quality on real data


def test_xgboost_california_rmse(housing, housing_xgb) -> None:
    assert _rmse(housing_xgb, housing[1], TARGET) < 0.465  # measured 0.4502


def test_hgb_california_rmse(housing) -> None:
    model = TabularModel(algorithm="hist_gradient_boosting", n_jobs=1).fit(housing[0], TARGET)
    assert _rmse(model, housing[1], TARGET) < 0.465  # measured 0.4510
    with pytest.raises(CapabilityError, match="cannot be saved safely"):
        model.save(Path("unused"))


def test_linear_california_rmse_and_exact_shap(housing) -> None:
    model = TabularModel(algorithm="linear").fit(housing[0], TARGET)
    assert _rmse(model, housing[1], TARGET) < 0.72  # measured 0.7004
    exp = model.explain(housing[1].head(200))
    assert exp.additivity_error < 1e-9
    assert exp.method.startswith("exact linear SHAP")


def test_xgboost_shap_additivity_on_real_data(housing, housing_xgb) -> None:
    exp = housing_xgb.explain(housing[1].head(200))
    assert isinstance(exp, Explanation)
    assert exp.values.shape == (200, 9) and exp.feature_names == housing_xgb.feature_names_
    assert exp.additivity_error_relative < 1e-3
    np.testing.assert_allclose(exp.output, housing_xgb.predict(housing[1].head(200))["prediction"].to_numpy(),
                               rtol=1e-5)
    assert "pred_contribs" in exp.method
    imp = exp.global_importance()
    assert imp["feature"][0] == "median_income"
    long = exp.to_frame()
    assert long.columns == ["row", "feature", "value", "value_label", "value_transformed", "kind", "shap"]
    assert long.height == 200 * 9
    first = long.filter(pl.col("row") == 0)["shap"].abs().to_numpy()
    assert np.all(np.diff(first) <= 0)
    assert exp.top(2).height == 400
    d = exp.to_dict()
    assert d["values"][0] and d["rows"][0] == {"row": 0}


def test_categorical_and_missing_values_are_handled(housing, housing_xgb) -> None:
    assert housing_xgb.categories_["ocean_proximity"] == ["<1H OCEAN", "INLAND", "ISLAND", "NEAR BAY", "NEAR OCEAN"]
    test = housing[1]
    nan_rows = test.filter(pl.col("total_bedrooms").is_null())
    assert nan_rows.height > 0
    pred = housing_xgb.predict(nan_rows)["prediction"]
    assert pred.null_count() == 0 and np.isfinite(pred.to_numpy()).all()
    exp = housing_xgb.explain(nan_rows)
    assert np.isnan(exp.data[:, exp.feature_names.index("total_bedrooms")]).all()
    # categories by name (issue 15): the code in data, the category in value_label
    named = exp.to_frame().filter(pl.col("feature") == "ocean_proximity")
    codes = named["value"].cast(pl.Int64).to_list()
    assert named["value_label"].to_list() == [housing_xgb.categories_["ocean_proximity"][c] for c in codes]
    # the category matters: inland vs near-bay for the same district
    row = test.head(1)
    inland = housing_xgb.predict(row.with_columns(pl.lit("INLAND").alias("ocean_proximity")))["prediction"][0]
    bay = housing_xgb.predict(row.with_columns(pl.lit("NEAR BAY").alias("ocean_proximity")))["prediction"][0]
    assert inland != bay
    # unseen category: refused by default, missing on request
    odd = row.with_columns(pl.lit("ON THE MOON").alias("ocean_proximity"))
    with pytest.raises(InvalidInputError, match=r"'ocean_proximity'.*'ON THE MOON'"):
        housing_xgb.predict(odd)
    lenient = TabularModel(params={"n_estimators": 20}, handle_unknown="missing", n_jobs=1).fit(housing[0], TARGET)
    as_missing = lenient.predict(odd)["prediction"][0]
    assert as_missing == lenient.predict(row.with_columns(pl.lit(None, pl.Utf8).alias("ocean_proximity")))["prediction"][0]


def test_pandas_input_with_category_dtype(housing, housing_xgb) -> None:
    pdf = housing[1].head(50).to_pandas()
    pdf["ocean_proximity"] = pdf["ocean_proximity"].astype("category")
    np.testing.assert_array_equal(housing_xgb.predict(pdf)["prediction"].to_numpy(),
                                  housing_xgb.predict(housing[1].head(50))["prediction"].to_numpy())


def test_hgb_explanation_with_categorical_is_additive(housing) -> None:
    model = TabularModel(algorithm="hist_gradient_boosting", params={"max_iter": 50}, n_jobs=1).fit(housing[0], TARGET)
    exp = model.explain(housing[1].head(2), background_size=10)
    assert "permutation" in exp.method and "approximate" in exp.method
    assert exp.additivity_error_relative < 1e-3
    numeric = TabularModel(algorithm="hist_gradient_boosting", params={"max_iter": 50}, n_jobs=1).fit(
        housing[0].drop("ocean_proximity"), TARGET)
    exact = numeric.explain(housing[1].head(200))
    assert exact.method.startswith("tree_shap (shap TreeExplainer") and exact.additivity_error_relative < 1e-3


@pytest.mark.parametrize("algorithm", ["xgboost", "linear"])
def test_save_load_identity(housing, housing_xgb, tmp_path: Path, algorithm: str) -> None:
    model = housing_xgb if algorithm == "xgboost" else TabularModel(algorithm="linear").fit(housing[0], TARGET)
    folder = model.save(tmp_path / algorithm)
    assert not list(folder.glob("*.pkl")) and (folder / "metadata.json").is_file()
    loaded = TabularModel.load(folder)
    test = housing[1]
    assert loaded.predict(test).equals(model.predict(test))
    np.testing.assert_array_equal(loaded.explain(test.head(20)).values, model.explain(test.head(20)).values)


def test_tampered_booster_is_refused(housing_xgb, tmp_path: Path) -> None:
    folder = housing_xgb.save(tmp_path / "m")
    raw = bytearray((folder / "model.ubj").read_bytes())
    raw[-10] ^= 0xFF
    (folder / "model.ubj").write_bytes(bytes(raw))
    with pytest.raises(ArtifactIntegrityError, match=r"file model.ubj has changed \(sha256 .*\); refusing to load it"):
        TabularModel.load(folder)


def test_bike_sharing_hourly_rmse(bike) -> None:
    train, test = bike
    xgb = TabularModel(n_jobs=1).fit(train, "cnt", features=BIKE_FEATURES)
    assert _rmse(xgb, test, "cnt") < 38.5  # measured 36.65; reference ~42.7 (tuned)
    hgb = TabularModel(algorithm="hist_gradient_boosting", n_jobs=1).fit(train, "cnt", features=BIKE_FEATURES)
    assert _rmse(hgb, test, "cnt") < 39.5  # measured 37.60


def test_bike_sharing_classification(bike) -> None:
    train, test = bike
    median = train["cnt"].median()
    label = (pl.col("cnt") > median).alias("busy")
    train, test = train.with_columns(label), test.with_columns(label)
    model = TabularModel("classification", params={"n_estimators": 200}, n_jobs=1).fit(
        train, "busy", features=BIKE_FEATURES)
    assert model.classes_ == [False, True]
    pred = model.predict(test)
    assert pred.columns == ["prediction", "probability"] and pred["prediction"].dtype == pl.Boolean
    accuracy = float((pred["prediction"] == test["busy"]).mean())
    assert accuracy > ACCURACY_BOUND
    exp = model.explain(test.head(200))
    assert "log-odds" in exp.method and exp.additivity_error_relative < 1e-3
    linear = TabularModel("classification", algorithm="linear").fit(train, "busy", features=BIKE_FEATURES)
    assert linear.explain(test.head(50)).additivity_error < 1e-9


ACCURACY_BOUND = 0.93  # measured 0.9502 (xgboost, 200 rounds); linear 0.781


def test_cross_validate(housing) -> None:
    small = housing[0].head(3000)
    # 'ISLAND' (5 districts) can be absent from a training fold: treat unseen categories as missing
    spec = {"algorithm": "xgboost", "params": {"n_estimators": 50}, "n_jobs": 1, "handle_unknown": "missing"}
    cv = cross_validate(spec, small, TARGET, k=3)
    assert cv.columns == ["fold", "n_train", "n_test", "rmse", "mae", "r2", "fit_seconds"]
    assert cv.height == 3 and cv["n_test"].sum() == 3000 and (cv["r2"] > 0.5).all()
    labelled = small.with_columns((pl.col(TARGET) > 2.0).alias("dear")).drop(TARGET)
    cls = cross_validate(TabularModel("classification", "linear", handle_unknown="missing"), labelled, "dear", k=4, seed=1)
    assert cls.columns == ["fold", "n_train", "n_test", "accuracy", "log_loss", "roc_auc", "fit_seconds"]
    assert (cls["roc_auc"] > 0.8).all()
    with pytest.raises(InvalidParameterError, match="k must be"):
        cross_validate({"algorithm": "linear"}, small, TARGET, k=1)


# ------------------------------------------------------------------ refusals

TOY = pl.DataFrame({
    "x": [0.0, 1.0, 2.0, 3.0, None, 5.0],
    "c": ["a", "b", "a", "b", "a", None],
    "when": pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 6), "1d", eager=True),
    "y": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
})


def test_target_missing_names_close_matches() -> None:
    with pytest.raises(InvalidInputError, match=r"target column 'Y'.*did you mean 'y'") as info:
        TabularModel(algorithm="linear").fit(TOY.drop("when"), "Y")
    assert info.value.field == "target"


def test_target_with_nan_names_rows() -> None:
    bad = TOY.drop("when").with_columns(pl.Series("y", [0.0, float("nan"), 2.0, None, 4.0, 5.0]))
    with pytest.raises(InvalidInputError, match=r"target 'y' is missing \(null/NaN\) in 2 rows: 1, 3"):
        TabularModel(algorithm="linear").fit(bad, "y")


def test_unsupported_column_type_is_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"'when' \(Datetime"):
        TabularModel(algorithm="linear").fit(TOY, "y")


def test_predict_missing_columns_named() -> None:
    model = TabularModel(algorithm="linear").fit(TOY, "y", features=["x", "c"])
    with pytest.raises(InvalidInputError, match="lacks 2 feature column.*x, c"):
        model.predict(TOY.select("y"))
    with pytest.raises(InvalidInputError, match="'x' was numeric in training but is String"):
        model.predict(TOY.with_columns(pl.col("x").cast(pl.Utf8)))


def test_bad_parameters_and_not_fitted() -> None:
    with pytest.raises(NotFittedError, match="fitted before predict"):
        TabularModel().predict(TOY)
    with pytest.raises(InvalidParameterError, match="algorithm must be one of"):
        TabularModel(algorithm="xgb").fit(TOY.drop("when"), "y")
    with pytest.raises(InvalidParameterError, match="kind must be one of"):
        TabularModel(kind="ranking").fit(TOY.drop("when"), "y")
    with pytest.raises(InvalidInputError, match="exactly 2 distinct values"):
        TabularModel("classification", "linear").fit(TOY.drop("when"), "y")


def test_toy_missing_values_every_algorithm() -> None:
    table = pl.concat([TOY.drop("when")] * 10)
    for algorithm in ("xgboost", "hist_gradient_boosting", "linear"):
        model = TabularModel(algorithm=algorithm, params={"n_estimators": 5} if algorithm == "xgboost" else {},
                             n_jobs=1).fit(table, "y")
        pred = model.predict(table)["prediction"].to_numpy()
        assert np.isfinite(pred).all(), algorithm


# ------------------------------------------------------------------ tester's findings (regressions)

NUM = pl.DataFrame({"x": [float(i) for i in range(40)], "c": ["a", "b"] * 20,
                    "y": [float(i % 7) for i in range(40)]})
ALGOS = ["xgboost", "hist_gradient_boosting", "linear"]


def _model(algorithm: str, **kw) -> TabularModel:
    params = {"n_estimators": 5} if algorithm == "xgboost" else {"max_iter": 5} if algorithm == "hist_gradient_boosting" else {}
    return TabularModel(algorithm=algorithm, params=params, n_jobs=1, **kw)


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("empty", [pl.Series("e", [None] * 40, dtype=pl.Float64), pl.Series("e", [float("nan")] * 40),
                                   pl.Series("e", [None] * 40, dtype=pl.Null), pl.Series("e", [None] * 40, dtype=pl.Utf8)])
def test_all_missing_feature_column_is_refused(algorithm: str, empty: pl.Series) -> None:
    with pytest.raises(InvalidInputError, match=r"entirely missing.*40 training rows: 'e'") as info:
        _model(algorithm).fit(NUM.with_columns(empty), "y")
    assert info.value.field == "features" and info.value.details["columns"] == ["e"]


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_predict_and_explain_on_empty_table(algorithm: str, kind: str) -> None:
    table = NUM.with_columns((pl.col("y") > 3).alias("y")) if kind == "classification" else NUM
    model = _model(algorithm, kind=kind).fit(table, "y")
    pred = model.predict(table.clear())
    full = model.predict(table.head(3))
    assert pred.height == 0 and pred.schema == full.schema
    exp = model.explain(table.clear())
    assert exp.values.shape == (0, 2)


@pytest.mark.parametrize("algorithm", ALGOS)
@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_infinite_values_are_refused(algorithm: str, value: float) -> None:
    bad_y = NUM.with_columns(pl.when(pl.int_range(40).is_in([3, 8])).then(value).otherwise(pl.col("y")).alias("y"))
    with pytest.raises(InvalidInputError, match=r"target 'y' is infinite \(inf/-inf\) in 2 rows: 3, 8") as info:
        _model(algorithm).fit(bad_y, "y")
    assert info.value.field == "target"
    bad_x = NUM.with_columns(pl.when(pl.int_range(40) == 5).then(value).otherwise(pl.col("x")).alias("x"))
    with pytest.raises(InvalidInputError, match=r"feature 'x' is infinite \(inf/-inf\) in 1 rows: 5") as info:
        _model(algorithm).fit(bad_x, "y")
    assert info.value.field == "data" and info.value.details == {"column": "x", "rows": [5], "n_rows": 1}
    model = _model(algorithm).fit(NUM.with_columns(pl.when(pl.int_range(40) == 5).then(None).otherwise(pl.col("x"))
                                                   .alias("x")), "y")  # null/NaN stays "missing"
    for call in (model.predict, model.explain):
        with pytest.raises(InvalidInputError, match=r"feature 'x' is infinite .* rows: 5"):
            call(bad_x)
    with pytest.raises(InvalidInputError, match="target 'y' is infinite"):
        cross_validate({"algorithm": algorithm}, bad_y, "y", k=2)


def test_xgboost_unknown_params_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match=r"unknown xgboost parameter\(s\): 'bogus'; accepted: .*max_depth") as info:
        TabularModel(params={"bogus": 1}, n_jobs=1).fit(NUM, "y")
    assert info.value.field == "params" and "learning_rate" in info.value.details["accepted"]
    with pytest.raises(InvalidParameterError, match=r"'max_dept'.*did you mean 'max_depth'"):
        TabularModel(params={"max_dept": 3}, n_jobs=1).fit(NUM, "y")
    with pytest.raises(InvalidParameterError, match="'seed' is set by the TabularModel argument seed="):
        TabularModel(params={"seed": 3}, n_jobs=1).fit(NUM, "y")
    with pytest.raises(InvalidParameterError, match="objective for regression must be one of"):
        TabularModel(params={"objective": "count:poisson"}, n_jobs=1).fit(NUM, "y")
    # num_boost_round is an alias of n_estimators (it used to be ignored in favour of the default)
    model = TabularModel(params={"num_boost_round": 3}, n_jobs=1).fit(NUM, "y")
    assert model._booster_.num_boosted_rounds() == 3
    with pytest.raises(InvalidParameterError, match="not both"):
        TabularModel(params={"num_boost_round": 3, "n_estimators": 3}, n_jobs=1).fit(NUM, "y")


@pytest.mark.parametrize("algorithm,params", [("hist_gradient_boosting", {"max_iter": -1}), ("linear", {"alpha": -1.0})])
def test_sklearn_bad_param_values_are_typed(algorithm: str, params: dict) -> None:
    with pytest.raises(InvalidParameterError, match="rejected params") as info:
        TabularModel(algorithm=algorithm, params=params, n_jobs=1).fit(NUM, "y")
    assert info.value.field == "params"


def _edit_meta(folder: Path, edit) -> None:
    import json

    meta = json.loads((folder / "metadata.json").read_text())
    edit(meta)
    (folder / "metadata.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("algorithm,edit,reason", [
    ("xgboost", lambda m: m.update(features=["x"], categories={}), r"the booster has 2 features but metadata.json lists 1"),
    ("xgboost", lambda m: m.update(features=m["features"][:1]), r"'categories' must be an object keyed by feature names"),
    ("xgboost", lambda m: m.pop("artifact"), r"lacks key\(s\): artifact"),
    ("xgboost", lambda m: m.update(artifact={"file": "../model.ubj", "sha256": "0"}), r"plain 'file' name"),
    ("xgboost", lambda m: m.update(categories={}), r"feature types"),
    ("xgboost", lambda m: m.update(kind="ranking"), r"'kind' must be one of"),
    ("linear", lambda m: m.update(linear={}), r"'linear' lacks key\(s\): mean, scale, coef, intercept, design_mean"),
    ("linear", lambda m: m["linear"].update(coef=[1.0]), r"'linear'\['coef'\] must be a list of 3 finite numbers"),
    ("linear", lambda m: m.update(features=["x"], categories={}), r"'linear'\['coef'\] must be a list of 1 finite"),
    ("linear", lambda m: m["linear"]["mean"].pop("x"), r"'linear'\['mean'\] must map each numeric feature"),
    ("linear", lambda m: m.update(classes=[0, 1]), r"'classes' must list 0 distinct values"),
    ("linear", lambda m: m.update(seed=-1), r"seed must be an integer >= 0"),
    ("linear", lambda m: m.update(params=[]), r"'params' must be an object"),
    ("linear", lambda m: m.clear(), r"not a forecasting.tabular model"),
])
def test_damaged_saved_model_is_refused(tmp_path: Path, algorithm: str, edit, reason: str) -> None:
    folder = _model(algorithm).fit(NUM, "y").save(tmp_path / "m")
    _edit_meta(folder, edit)
    with pytest.raises(InvalidInputError, match=rf"model folder '.*' is damaged or incomplete: .*{reason}") as info:
        TabularModel.load(folder)
    assert info.value.field == "path"


def test_damaged_files_are_refused(tmp_path: Path) -> None:
    folder = _model("xgboost").fit(NUM, "y").save(tmp_path / "m")
    (folder / "model.ubj").unlink()
    with pytest.raises(InvalidInputError, match=r"damaged or incomplete: the booster file model.ubj is missing"):
        TabularModel.load(folder)
    (folder / "metadata.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match=r"damaged or incomplete: metadata.json is not valid JSON"):
        TabularModel.load(folder)
    (folder / "metadata.json").write_text("[1, 2]")
    with pytest.raises(InvalidInputError, match=r"damaged or incomplete: metadata.json is not a JSON object"):
        TabularModel.load(folder)
    with pytest.raises(InvalidInputError, match=r"damaged or incomplete: metadata.json is missing"):
        TabularModel.load(tmp_path / "nowhere")
    with pytest.raises(InvalidParameterError, match="device must be"):
        TabularModel.load(folder, device="tpu")


def test_features_beyond_float32_are_refused_by_name() -> None:
    t = pl.DataFrame({"x": [0.0, 1.0, 2.0, 3.0] * 5, "y": [0.0, 1.0, 2.0, 3.0] * 5})
    model = TabularModel(algorithm="linear").fit(t, "y")
    with pytest.raises(InvalidInputError, match=r"feature 'x' exceeds the float32 range .* in 1 rows"):
        model.predict(pl.DataFrame({"x": [1.0, 1e39]}))
