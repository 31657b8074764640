"""Issue 14, the client mistakes left over: explicit multiplicative models on data with zeros (series, rows and
rule named), ``auto_theta``'s ``multiplicative`` honoured or refused, the cold-start note of a global model, the
float32-range note of the tree models, an OpenAPI document as strict as validation, and the ``job.started`` event.
"""

from __future__ import annotations

import logging
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from litestar.testing import TestClient

from forecasting import service
from forecasting.api.app import create_app
from forecasting.api.settings import Settings
from forecasting.data import FLOAT32_EXACT_LIMIT, find_float32_inexact, validate_panel
from forecasting.errors import InvalidInputError
from forecasting.jobs import JobRunner
from forecasting.models.stats import AutoThetaForecaster
from forecasting.store import Store


def monthly(y: np.ndarray, uid: str = "s1") -> pl.DataFrame:
    ds = [date(2020 + k // 12, k % 12 + 1, 1) for k in range(len(y))]
    return pl.DataFrame({"unique_id": [uid] * len(y), "ds": ds, "y": y})


def seasonal(n: int = 48) -> np.ndarray:
    """A positive, strongly seasonal monthly series (the 90% seasonality test of auto_theta passes)."""
    t = np.arange(n)
    return (100 + t) * (1 + 0.4 * np.sin(2 * np.pi * t / 12))


def with_zeros() -> pl.DataFrame:
    y = seasonal()
    y[5], y[17] = 0.0, -1.0
    return monthly(y)


# --------------------------------------------------------------------------- 1. multiplicative on zeros
@pytest.mark.parametrize("spec", [{"name": "auto_ets", "params": {"model": "MAM"}},
                                  {"name": "auto_ets", "params": {"model": "ZZM"}}])
def test_an_explicit_multiplicative_ets_on_zeros_names_the_series_the_rows_and_the_rule(spec: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as err:
        service.forecast(with_zeros(), model=spec, h=3)
    code = spec["params"]["model"]
    assert err.value.message == (
        f"model 'auto_ets' with model='{code}': a multiplicative model needs every y > 0: series 's1': 2 value(s) "
        "<= 0 at ds 2020-06-01, 2021-06-01; ask for an additive form, or name a fallback model")
    assert err.value.field == "y"


def test_an_explicit_multiplicative_model_with_a_fallback_hands_the_series_over_naming_the_rule() -> None:
    result = service.forecast(with_zeros(), model={"name": "auto_ets", "params": {"model": "MNN"},
                                                   "fallback": "naive"}, h=3)
    [fb] = result.fallbacks
    assert (fb.unique_id, fb.model) == ("s1", "naive")
    assert "a multiplicative model needs every y > 0 (model='MNN'); 2 value(s) <= 0, first at position 5" in fb.reason


def test_an_explicit_multiplicative_model_on_zeros_is_a_422_naming_y_over_http(tmp_path: Path) -> None:
    frame = with_zeros().with_columns(pl.col("ds").cast(pl.String))
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        r = c.post("/v1/forecast", json={"data": frame.to_dict(as_series=False), "h": 3,
                                         "model": {"name": "auto_theta",
                                                   "params": {"decomposition_type": "multiplicative"}}})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "data.y"
    assert "series 's1': 2 value(s) <= 0 at ds 2020-06-01, 2021-06-01" in r.json()["detail"]


# --------------------------------------------------------------------------- 2. auto_theta multiplicative
def test_statsforecast_auto_theta_silently_turns_multiplicative_into_additive_on_zeros() -> None:
    """Why the adapter refuses: statsforecast 2.1.1's ``auto_theta`` switches on its own (pinned here)."""
    from statsforecast.models import AutoTheta

    y = with_zeros()["y"].to_numpy()
    fitted = AutoTheta(season_length=12, decomposition_type="multiplicative").fit(y=y).model_
    assert fitted["decompose"] and fitted["decomposition_type"] == "additive"


def test_auto_theta_asked_for_multiplicative_runs_multiplicative_and_differs_from_additive() -> None:
    panel = validate_panel(monthly(seasonal()))
    forecasts = {}
    for kind in ("multiplicative", "additive"):
        model = AutoThetaForecaster(season_length=12, decomposition_type=kind).fit(panel)
        assert model.states_["s1"].model_["decomposition_type"] == kind
        forecasts[kind] = model.predict(12)["AutoTheta"].to_numpy()
    assert np.abs(forecasts["multiplicative"] - forecasts["additive"]).max() > 1.0


def test_auto_theta_asked_for_multiplicative_on_zeros_is_refused_and_unset_follows_statsforecast() -> None:
    with pytest.raises(InvalidInputError, match=r"model 'auto_theta' with decomposition_type='multiplicative': a "
                                                r"multiplicative model needs every y > 0: series 's1': 2 value"):
        service.forecast(with_zeros(), model={"name": "auto_theta",
                                              "params": {"decomposition_type": "multiplicative"}}, h=3)
    result = service.forecast(with_zeros(), model="auto_theta", h=3)  # unset: statsforecast's rule (additive here)
    assert result.forecasts.height == 3 and result.spec.params.get("decomposition_type") is None


# --------------------------------------------------------------------------- 3. cold start
def test_a_global_model_names_the_series_it_never_saw_in_a_cold_start_note() -> None:
    from forecasting.models.registry import make_model

    t = np.arange(60)
    train = pl.concat([pl.DataFrame({"unique_id": u, "ds": t, "y": 10.0 + k + np.sin(t / 3)})
                       for k, u in enumerate(["a", "b"])])
    model = make_model({"name": "xgboost", "params": {"n_estimators": 10, "max_depth": 2, "conformal_windows": 0}})
    model.fit(validate_panel(train, freq=1))
    new = pl.concat([train.filter(pl.col("unique_id") == "a"), train.filter(pl.col("unique_id") == "b")
                     .with_columns(pl.lit("zz").alias("unique_id"))])
    notes = service.forecast_fitted(model, new, h=2).notes
    assert ("cold start: model 'xgboost' was not trained on 1 series ('zz'); they are forecast from their own "
            "history with what it learnt from its 2 training series (its intervals were calibrated on those)") in notes
    assert not any(n.startswith("cold start") for n in service.forecast_fitted(model, train, h=2).notes)


# --------------------------------------------------------------------------- 4. float32 range
def test_float32_range_is_2_to_the_24_exactly() -> None:
    assert float(np.float32(FLOAT32_EXACT_LIMIT + 1)) == FLOAT32_EXACT_LIMIT  # why the rule exists
    frame = pl.DataFrame({"ok": [float(FLOAT32_EXACT_LIMIT), -1.0], "big": [0.0, -(FLOAT32_EXACT_LIMIT + 2.0)],
                          "text": ["a", "b"]})
    assert find_float32_inexact(frame, ["ok", "big", "text"]) == {"big": FLOAT32_EXACT_LIMIT + 2.0}


def test_a_tree_model_notes_an_exogenous_column_beyond_float32s_exact_range() -> None:
    from forecasting.models.registry import make_model

    t = np.arange(60)
    frame = pl.DataFrame({"unique_id": "a", "ds": t, "y": 10.0 + np.sin(t / 3), "price": 3e7 + t})
    model = make_model({"name": "xgboost", "params": {"n_estimators": 5, "max_depth": 2, "conformal_windows": 0,
                                                 "features": {"lags": [1, 2], "hist_exog": {"price": [14]}}}})
    model.fit(validate_panel(frame, freq=1))
    [note] = [n for n in model.notes_ if n.startswith("float32 range")]
    assert "'price' (|x| up to 3.00001e+07)" in note and "|x| <= 2^24 (16,777,216)" in note
    assert "'y'" not in note


def test_a_tabular_xgboost_warns_of_a_feature_beyond_float32s_exact_range() -> None:
    from forecasting.tabular import TabularModel

    frame = pl.DataFrame({"id": [2.0**25 + i for i in range(40)], "x": [float(i % 5) for i in range(40)],
                          "y": [float(i % 7) for i in range(40)]})
    with pytest.warns(UserWarning, match=r"float32 range: model 'tabular xgboost' .* 'id' \(\|x\| up to 3\.35545e\+07\)"):
        model = TabularModel(algorithm="xgboost", params={"n_estimators": 5}).fit(frame, "y")
    assert len(model.notes_) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TabularModel(algorithm="xgboost", params={"n_estimators": 5}).fit(frame.drop("id"), "y").notes_ == []


# --------------------------------------------------------------------------- 5. the OpenAPI document
def test_the_openapi_document_states_the_bounds_validation_enforces(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        doc = c.get("/schema/openapi.json").json()
        h0 = c.post("/v1/forecast", json={"data": {"unique_id": ["a"] * 8, "ds": list(range(8)),
                                                   "y": [1.0] * 8}, "h": 0})
    schemas = doc["components"]["schemas"]
    level = {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 100}
    for name in ("ForecastRequest", "CrossValidationRequest", "RegisteredForecastRequest", "InlineExplainRequest",
                 "ExplainRequest"):
        props = schemas[name]["properties"]
        assert (props["h"]["minimum"], props["h"]["maximum"]) == (1, 1000), name
        if "level" in props:
            assert props["level"]["items"] == level, name
        if "data" in props:
            assert (props["data"]["minItems"], props["data"]["maxItems"]) == (1, 1_000_000), name
    train = doc["paths"]["/v1/models"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert (train["h"]["minimum"], train["h"]["maximum"]) == (1, 1000)
    assert train["name"]["pattern"] == "^[a-z0-9][a-z0-9_.-]{0,62}$"
    # documented, still answered by the service's own 422 naming the field and rule
    assert h0.status_code == 422 and h0.json()["field"] == "h" and h0.json()["detail"] == "h must be an integer >= 1, got 0"


# --------------------------------------------------------------------------- 6. job.started
def test_a_job_logs_queued_then_started_then_finished(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "artifacts")
    runner = JobRunner(store, max_workers=1, grace_s=1.0)
    data = {"unique_id": ["a"] * 12, "ds": list(range(1, 13)), "y": [float(10 + i % 4) for i in range(12)]}
    try:
        with caplog.at_level(logging.INFO, logger="forecasting.jobs"):
            job_id = runner.submit_training("acme", "tiny", "naive", data, h=2)
            assert runner.wait(job_id, "acme", timeout_s=120).state == "succeeded"
    finally:
        runner.shutdown()
        store.close()
    events = [r for r in caplog.records if getattr(r, "job_id", None) == job_id]
    assert [r.event for r in events] == ["job.queued", "job.started", "job.finished"]  # type: ignore[attr-defined]
    started = events[1]
    assert (started.tenant, started.kind) == ("acme", "forecast")  # type: ignore[attr-defined]
    assert isinstance(started.worker_pid, int) and started.getMessage() == f"job {job_id} started"  # type: ignore[attr-defined]
