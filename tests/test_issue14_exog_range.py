"""An exogenous value beyond float32's range is a client mistake named by column and rows (found by T1, stop 23).

``POST /v1/forecast`` with ``xgboost`` and ``price = 1e300`` answered HTTP 500 (XGBoostError "Input data contains
inf"), and the same value in a registered model's ``X_future`` answered 200 with forecasts equal to those of 1e30.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest
from litestar.testing import TestClient

from forecasting.api.app import create_app
from forecasting.api.settings import Settings
from forecasting.data import FLOAT32_MAX, validate_panel
from forecasting.errors import InvalidInputError
from forecasting.models.global_base import check_exog_values


def _panel(price: list[float]) -> pl.DataFrame:
    n = len(price)
    return pl.DataFrame({"unique_id": ["s1"] * n, "ds": list(range(1, n + 1)),
                         "y": [float(10 + (i % 7)) for i in range(n)], "price": price})


def test_float32_max_is_numpys() -> None:
    assert FLOAT32_MAX == float(np.finfo(np.float32).max)


def test_a_value_beyond_float32_is_named_with_its_rows() -> None:
    price = [1.0] * 60
    price[41] = 1e300
    price[50] = -5e38
    with pytest.raises(InvalidInputError) as err:
        check_exog_values(_panel(price), ["price"], where="data")
    msg = str(err.value)
    assert "exogenous column 'price' has 2 values beyond float32's range" in msg
    assert "(s1, 42), (s1, 51)" in msg
    assert err.value.field == "data.price"


def test_the_largest_float32_value_itself_is_accepted() -> None:
    check_exog_values(_panel([FLOAT32_MAX, -FLOAT32_MAX] + [1.0] * 10), ["price"], where="data")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(state_dir=tmp_path_factory.mktemp("state")))) as c:
        yield c


def test_over_http_it_is_a_422_naming_the_field_not_a_500(client: TestClient) -> None:
    frame = _panel([1e300] * 80)
    body = {"data": frame.to_dict(as_series=False), "h": 2, "model": "xgboost",
            "X_future": {"unique_id": ["s1", "s1"], "ds": [81, 82], "price": [1.0, 1.0]}}
    r = client.post("/v1/forecast", json=body)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert "beyond float32's range" in problem["detail"]
    assert "price" in str(problem)
    validate_panel(frame)  # the target itself is fine: only the exogenous column is refused
