"""Issue 13, tester T3: messages that name the limit and the column that actually applied."""

from __future__ import annotations

import time

import numpy as np
import polars as pl
import pytest
from litestar.testing import TestClient

from forecasting.api.app import create_app
from forecasting.api.settings import Settings
from forecasting.data import validate_panel
from forecasting.errors import InvalidInputError
from forecasting.models.auto import AutoForecaster
from forecasting.models.registry import make_model
from forecasting.models.stats import AutoARIMAForecaster
from forecasting.service.core import Limits


def _series(n: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame({"unique_id": "s0", "ds": np.arange(1, n + 1),
                         "y": 100.0 + 10 * np.sin(np.arange(n) / 3) + rng.normal(0, 1, n)})


def test_auto_names_the_servers_limit_when_it_binds(monkeypatch) -> None:
    """`auto` (time_limit 600 s by default) under the server's FORECASTING_MAX_SECONDS=4: a candidate left at
    its share named 'time_limit=600.0 s', a limit that did not apply; it now names the server's setting."""
    def fit_one(self, y):  # an uninterruptible 8 s fit
        time.sleep(8.0)
    monkeypatch.setattr(AutoARIMAForecaster, "_fit_one", fit_one)
    panel = validate_panel(_series(80))
    make_model("naive", freq=1).fit(panel).predict(6, level=[80])  # compiled before the clock starts
    model = AutoForecaster(candidates=["naive", "auto_arima"], horizon=6, season_length=1)
    assert model.params.time_limit == 600
    Limits(max_seconds=4, seconds_setting="FORECASTING_MAX_SECONDS").arm(model)
    assert model.deadline_source == "FORECASTING_MAX_SECONDS=4 s"
    model.fit(panel)
    arima = {c["model"]: c for c in model.selection_["candidates"]}["auto_arima"]
    assert arima["status"] == "dropped"
    assert "s share of the time limit (FORECASTING_MAX_SECONDS=4 s), left after " in arima["reason"]
    assert "600" not in arima["reason"]


def test_auto_names_its_own_time_limit_when_it_binds() -> None:
    """The earlier of the two limits is named: time_limit=3 under a 60 s server limit."""
    model = AutoForecaster(candidates=["naive"], horizon=6, season_length=1, time_limit=3)
    Limits(max_seconds=60, seconds_setting="FORECASTING_MAX_SECONDS").arm(model)
    model._deadline()
    assert model.limit_named_ == "time_limit=3.0 s"
    free = AutoForecaster(candidates=["naive"], horizon=6, season_length=1, time_limit=None)
    Limits().arm(free)  # no max_seconds: no deadline, no source
    assert free.deadline is None and free.deadline_source is None
    free._deadline()
    assert free.limit_named_ == "no time_limit"


EXOG_DATA = {"unique_id": ["a"] * 30, "ds": list(range(1, 31)), "y": [float(i % 7) for i in range(30)],
             "lag_1": [float(i % 3) for i in range(30)]}


def test_an_exogenous_column_named_like_a_generated_feature_is_named() -> None:
    """An exogenous column `lag_1` beside the target's lag 1 gave "duplicate features ['lag_1']" (field
    `features`), which names neither the column nor the rule."""
    from forecasting.service.core import forecast

    future = {"unique_id": ["a"] * 2, "ds": [31, 32], "lag_1": [0.0, 1.0]}
    with pytest.raises(InvalidInputError) as err:
        forecast(EXOG_DATA, model="xgboost", h=2, X_future=future)
    assert err.value.field == "data"
    assert err.value.message == (
        "exogenous column 'lag_1' has the name of a feature the model generates (lag feature 'lag_1'): a data "
        "column may not be named like a generated feature; rename the column")


def test_the_collision_is_a_422_naming_the_column_over_http(tmp_path) -> None:
    future = {"unique_id": ["a"] * 2, "ds": [31, 32], "lag_1": [0.0, 1.0]}
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        r = c.post("/v1/forecast", json={"data": EXOG_DATA, "h": 2, "model": "xgboost", "X_future": future})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "data"
    assert body["detail"].startswith("exogenous column 'lag_1' has the name of a feature the model generates")
