"""The tester's five findings of session 21 (second batch): the retraining policy's ``h`` bound in the OpenAPI
document, the float32 note for a forecast's ``X_future``, strict decoding of the retraining policy, repeated
explicit ensemble members, and anomalies on a series whose residuals have no spread."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from litestar.testing import TestClient

from forecasting.anomalies import insample_intervals, score_points
from forecasting.api.app import create_app
from forecasting.api.settings import Settings
from forecasting.data import validate_panel
from forecasting.errors import InvalidInputError, InvalidParameterError
from forecasting.models.registry import make_model
from forecasting.service.core import forecast
from forecasting.service.monitoring import detect_anomalies


# --------------------------------------------------------------------------- 1. RetrainPolicy.h in the document
def test_the_retraining_policy_body_documents_h_at_most_the_operators_max_h(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(state_dir=tmp_path, max_h=200))) as c:
        doc = c.get("/schema/openapi.json").json()
    put = doc["paths"]["/v1/models/{name}/retraining"]["put"]["requestBody"]["content"]["application/json"]
    assert put["schema"] == {"$ref": "#/components/schemas/RetrainPolicyBody"}
    h = doc["components"]["schemas"]["RetrainPolicyBody"]["properties"]["h"]
    assert (h["minimum"], h["maximum"]) == (1, 200)
    assert h["oneOf"] == [{"type": "integer"}, {"type": "null"}]


def test_the_retraining_policy_body_documents_the_default_max_h(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        h = c.get("/schema/openapi.json").json()["components"]["schemas"]["RetrainPolicyBody"]["properties"]["h"]
    assert h["maximum"] == Settings.max_h == 1000


# --------------------------------------------------------------------------- 2. float32 note for X_future
def _xgb_with_price() -> tuple[object, pl.DataFrame]:
    t = np.arange(60)
    frame = pl.DataFrame({"unique_id": "a", "ds": t, "y": 10.0 + np.sin(t / 3), "price": 100.0 + t})
    model = make_model({"name": "xgboost", "params": {"n_estimators": 5, "max_depth": 2, "conformal_windows": 0,
                                                 "features": {"lags": [1, 2], "future_exog": ["price"]}}})
    model.fit(validate_panel(frame, freq=1))
    return model, frame


def _future(price: float) -> pl.DataFrame:
    return pl.DataFrame({"unique_id": ["a"] * 3, "ds": [60, 61, 62], "price": [1.0, price, 2.0]})


def test_x_future_beyond_float32s_exact_range_gets_the_training_datas_note_and_only_for_that_forecast() -> None:
    model, _ = _xgb_with_price()
    assert not any(n.startswith("float32 range") for n in model.notes_)  # training data within range
    model.predict(3, X_future=_future(3e7))
    [note] = [n for n in model.notes_ if n.startswith("float32 range")]
    assert note == ("float32 range: model 'xgboost' works in float32, which holds values exactly only up to "
                    "|x| <= 2^24 (16,777,216); 'price' (|x| up to 3e+07) exceed it, so nearby values may be read as "
                    "equal and give identical predictions: rescale or difference them (e.g. in thousands) before "
                    "fitting")
    model.predict(3, X_future=_future(5.0))  # the next forecast's X_future is in range: no stale note
    assert not any(n.startswith("float32 range") for n in model.notes_)


def test_x_future_beyond_float32s_largest_value_is_refused_not_silently_infinite() -> None:
    assert float(np.finfo(np.float32).max) < 1e39  # why: float32 would hold it as inf
    model, _ = _xgb_with_price()
    with pytest.raises(InvalidInputError, match=r"X_future: exogenous column 'price' has 1 values beyond "
                                                r"float32's range .* at \(unique_id, ds\): \(a, 61\)"):
        model.predict(3, X_future=_future(1e39))


def test_a_fit_note_of_the_training_data_survives_forecasts_with_x_future_in_range() -> None:
    t = np.arange(60)
    frame = pl.DataFrame({"unique_id": "a", "ds": t, "y": 10.0 + np.sin(t / 3), "price": 3e7 + t})
    model = make_model({"name": "xgboost", "params": {"n_estimators": 5, "max_depth": 2, "conformal_windows": 0,
                                                 "features": {"lags": [1, 2], "future_exog": ["price"]}}})
    model.fit(validate_panel(frame, freq=1))
    model.predict(3, X_future=_future(4e7))
    model.predict(3, X_future=_future(5.0))
    notes = [n for n in model.notes_ if n.startswith("float32 range")]
    assert len(notes) == 1 and "'price' (|x| up to 3.00001e+07)" in notes[0]


# --------------------------------------------------------------------------- 3. strict retraining policy body
@pytest.mark.parametrize(("body", "field", "detail"), [
    ({"h": 5.0}, "h", "h: Expected `int | null`, got `float`"),
    ({"margin": "0.1"}, "margin", "margin: Expected `float`, got `str`"),
])
def test_the_retraining_policy_is_decoded_strictly_naming_the_field(tmp_path: Path, body: dict, field: str,
                                                                      detail: str) -> None:
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        r = c.put("/v1/models/m/retraining", json=body)  # refused before the model is even looked up
    assert (r.status_code, r.json()["field"], r.json()["detail"]) == (400, field, detail)


def test_the_retraining_policy_answers_h_5_0_as_v1_forecast_does(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        policy = c.put("/v1/models/m/retraining", json={"h": 5.0})
        fc = c.post("/v1/forecast", json={"data": {"unique_id": ["a"] * 8, "ds": list(range(8)), "y": [1.0] * 8},
                                          "h": 5.0, "model": "naive"})
    assert (policy.status_code, policy.json()["field"]) == (fc.status_code, fc.json()["field"]) == (400, "h")


# --------------------------------------------------------------------------- 4. repeated explicit ensemble members
_SERIES = pl.DataFrame({"unique_id": "a", "ds": np.arange(40), "y": 10.0 + np.sin(np.arange(40) / 3)})


@pytest.mark.parametrize("members", [["naive", "naive"], ["naive", {"name": "naive", "params": {"alias": "n2"}}]])
def test_identical_explicit_ensemble_members_are_refused_naming_members(members: list) -> None:
    with pytest.raises(InvalidParameterError) as err:
        forecast(_SERIES, model={"name": "ensemble", "params": {"members": members}}, h=3, freq=1)
    assert err.value.field == "model.params.members"
    assert str(err.value).startswith("ensemble members 0 and 1 are the same model (")
    assert str(err.value).endswith("they would give identical forecasts; list each member once, or give it "
                                   "other parameters")


def test_identical_explicit_ensemble_members_are_a_422_over_http(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        r = c.post("/v1/forecast", json={"data": _SERIES.to_dict(as_series=False), "h": 3, "freq": 1,
                                         "model": {"name": "ensemble", "params": {"members": ["naive", "naive"]}}})
    assert r.status_code == 422 and r.json()["field"] == "model.params.members"
    assert r.json()["detail"].startswith('ensemble members 0 and 1 are the same model ("naive")')


def test_distinct_explicit_ensemble_members_are_kept_without_a_top_up() -> None:
    result = forecast(_SERIES, model={"name": "ensemble", "params": {"members": ["naive", "auto_theta"]}}, h=3,
                      freq=1)
    assert not any("added" in n or "left out" in n for n in result.notes)


# --------------------------------------------------------------------------- 5. zero residual spread
def _linear() -> pl.DataFrame:
    t = np.arange(48)
    return pl.DataFrame({"unique_id": "a", "ds": t, "y": 5.0 + 0.3 * t})


def test_a_perfectly_linear_series_under_naive_flags_nothing_with_a_finite_score() -> None:
    result = detect_anomalies(_linear(), model="naive", level=95, method="normal", freq=1)
    assert result.anomalies.height == 0
    scored = result.points.drop_nulls("score")
    assert scored.height == 47 and scored["score"].is_finite().all()
    # half-width: the constant residual 0.3 plus 1e-6 times the largest |y| (5 + 0.3 * 47 = 19.1)
    assert scored["hi"][0] - scored["center"][0] == pytest.approx(0.3 + 19.1e-6, rel=1e-9)
    assert scored["score"][0] == pytest.approx(0.3 / (0.3 + 19.1e-6), rel=1e-9)
    [note] = [n for n in result.notes if n.startswith("zero residual spread")]
    assert "1 series ('a')" in note and "1e-06 times the series' largest |y|" in note


def test_a_spike_on_a_linear_series_is_still_flagged() -> None:
    frame = _linear().with_columns(pl.when(pl.col("ds") == 30).then(pl.col("y") + 1.0).otherwise(pl.col("y"))
                                   .alias("y"))
    result = detect_anomalies(frame, model="naive", level=95, method="normal", freq=1)
    assert result.anomalies["ds"].to_list() == [30, 31]  # the spike and the step back: residuals now spread
    assert not any(n.startswith("zero residual spread") for n in result.notes)


def test_a_point_off_a_zero_spread_band_by_more_than_the_tolerance_is_flagged() -> None:
    # residuals 2, 2, 2 of a series whose largest |y| is 100: half-width 2 + 1e-4; y = 103 is 5 above its fit 98
    fitted = pl.DataFrame({"unique_id": ["a"] * 3, "ds": [0, 1, 2], "y": [100.0, 50.0, 30.0],
                           "fitted": [98.0, 48.0, 28.0]})
    notes: list[str] = []
    bands = insample_intervals(fitted, level=95, notes=notes)
    assert bands["hi"].to_list() == pytest.approx([100.0001, 50.0001, 30.0001], rel=1e-12)
    probe = bands.with_columns(pl.Series("y", [103.0, 50.0, 30.0]))
    scored = score_points(probe)
    assert scored["score"].to_list() == pytest.approx([5 / 2.0001, 2 / 2.0001, 2 / 2.0001], rel=1e-12)
    assert scored["anomaly"].to_list() == [True, False, False]
    assert len(notes) == 1
