"""Stop 24: one range check of model inputs (``forecasting.data.refuse_beyond``), NaN a missing value, not a range.

The exogenous float32 check (``global_base.check_exog_values``) and the networks' 1e30 check
(``network_core.check_range``) were two copies of one shape (duplicates' D23); both now say the same thing through
``refuse_beyond``. The float32 copy refused a NaN exogenous value as "beyond float32's range" (polars orders NaN
above every number), where ``check_exog_values`` documents NaN as a missing value.
"""
from __future__ import annotations

import math

import polars as pl
import pytest

from forecasting.data import FLOAT32_MAX, refuse_beyond
from forecasting.errors import InvalidInputError


def _frame(values: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"unique_id": ["s1"] * len(values), "ds": list(range(1, len(values) + 1)), "price": values})


def test_names_the_column_the_count_the_rows_and_the_rule() -> None:
    values = [1.0] * 8
    values[2], values[5], values[6] = 1e300, -5e38, math.inf
    with pytest.raises(InvalidInputError) as err:
        refuse_beyond(_frame(values), ["price"], FLOAT32_MAX, where="X_future", kind="exogenous column",
                      rule=f"float32's range (|x| > {FLOAT32_MAX:.7g}, the models' input type)")
    assert str(err.value) == ("X_future: exogenous column 'price' has 3 values beyond float32's range "
                              "(|x| > 3.402823e+38, the models' input type) at (unique_id, ds): (s1, 3), (s1, 6), "
                              "(s1, 7); rescale the column")
    assert err.value.field == "X_future.price"


def test_the_bound_itself_nan_null_and_other_columns_pass() -> None:
    frame = _frame([FLOAT32_MAX, -FLOAT32_MAX, math.nan, 2.0]).with_columns(
        pl.Series("promo", [None, 1.0, None, 0.0]), pl.Series("store", ["x", "x", "y", "y"]))
    refuse_beyond(frame, ["price", "promo", "store", "absent"], FLOAT32_MAX, rule="float32's range", where="data")


def test_integers_and_y_field() -> None:
    frame = pl.DataFrame({"unique_id": ["a", "a", "b"], "ds": [1, 2, 1], "y": [1.0, 2e30, -3e30],
                          "units": [2**62, 1, 1]})
    refuse_beyond(frame, ["units"], 1e30, rule="+/-1e+30", where="data")  # an int64 is never beyond 1e30
    with pytest.raises(InvalidInputError) as err:
        refuse_beyond(frame, ["units", "y"], 1e30, rule="+/-1e+30 (the neural models compute in float32)",
                      where="data", advice="rescale the data", field_of_y="data")
    assert str(err.value) == ("data: column 'y' has 2 values beyond +/-1e+30 (the neural models compute in float32) "
                              "at (unique_id, ds): (a, 2), (b, 1); rescale the data")
    assert err.value.field == "data"



def test_check_exog_values_takes_nan_as_missing_and_check_range_says_the_rule() -> None:
    from forecasting.models.global_base import check_exog_values
    from forecasting.models.network_core import check_range

    frame = _frame([1.0, math.nan, 2.0]).with_columns(pl.Series("promo", [None, 1.0, 0.0]))
    check_exog_values(frame, ["price", "promo"], where="data")  # was: "beyond float32's range" at (s1, 2)
    with pytest.raises(InvalidInputError) as err:
        check_range(_frame([1.0, 2e30, 3.0]), ["price"], where="history")
    assert str(err.value) == ("history: column 'price' has 1 values beyond +/-1e+30 (the neural models compute in "
                              "float32) at (unique_id, ds): (s1, 2); rescale the data")
    assert err.value.field == "history.price"
