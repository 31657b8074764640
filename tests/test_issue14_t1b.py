"""Tester T1 (session 23) as a new user and a hostile client: each test names the input it came from."""

from __future__ import annotations

import polars as pl
import pytest

from forecasting.data import validate_panel
from forecasting.errors import InvalidInputError
from forecasting.service.tables import read_table


@pytest.mark.parametrize(("text", "shown"), [
    ("01/02/2024\n01/03/2024\n01/04/2024", "'01/02/2024', '01/03/2024', '01/04/2024'"),  # US month/day
    ("13/02/2024\n14/02/2024\n15/02/2024", "'13/02/2024', '14/02/2024', '15/02/2024'"),  # day/month
    ("2024/01/02\n2024/01/03\n2024/01/04", "'2024/01/02', '2024/01/03', '2024/01/04'"),
])
def test_a_csv_of_dates_that_are_not_iso_8601_is_refused_naming_the_rows(tmp_path, text: str, shown: str) -> None:
    """`forecasting forecast -i us.csv --h 2 -m naive` with ds 01/02/2024, 01/03/2024, 01/04/2024 (2, 3, 4 January
    in the US order): polars' date inference read them day-first (1 February, 1 March, 1 April), so the series was
    monthly and the forecasts were for May and June, with no note. The CSV door now refuses what the JSON door
    refuses: dates that are not ISO 8601, naming the rows."""
    path = tmp_path / "us.csv"
    path.write_text("unique_id,ds,y\n" + "\n".join(f"a,{d},{i}" for i, d in enumerate(text.split("\n"), 1)) + "\n")
    frame = read_table(path)
    assert frame.schema["ds"] == pl.String
    with pytest.raises(InvalidInputError) as err:
        validate_panel(frame)
    assert err.value.message == f"ds has 3 values that are not ISO 8601 timestamps (rows 0, 1, 2: {shown})"
    assert err.value.field == "ds"


def test_a_csv_of_iso_dates_and_offsets_is_read_as_before(tmp_path) -> None:
    """The same reader keeps reading ISO dates as dates, ISO date-times as datetimes, and timestamps with a UTC
    offset as their text (the contract reads the caller's offset)."""
    path = tmp_path / "iso.csv"
    path.write_text("unique_id,ds,at,local\na,2024-01-02,2024-01-02 10:00,2024-01-02T00:00:00+05:30\n"
                    "a,2024-01-03,2024-01-03 10:00,2024-01-03T00:00:00+05:30\n")
    frame = read_table(path)
    assert frame.schema["ds"] == pl.Date
    assert frame.schema["at"] == pl.Datetime("us")
    assert frame["local"].to_list() == ["2024-01-02T00:00:00+05:30", "2024-01-03T00:00:00+05:30"]


_SPEC_RULE = ("model must be a registry name such as 'auto_ets', a spec (JSON text, a dict or a ModelSpec: name, "
              "params, fallback) or, where one is accepted, a fitted model (fc.load, make_model(...).fit); got ")


def _daily(n: int = 30):
    import numpy as np
    import pandas as pd

    return pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=n, freq="D"),
                         "y": np.arange(n, dtype=float)})


@pytest.mark.parametrize("door", ["forecast", "cross_validation", "explain", "detect_anomalies", "make_model",
                                  "report"])
@pytest.mark.parametrize("model", [None, 3])
def test_a_model_that_is_neither_a_spec_nor_a_fitted_model_is_named(tmp_path, door: str, model) -> None:
    """`fc.forecast(df, model=None, h=2)` (and every other door, with None or a number): AttributeError
    "'NoneType' object has no attribute 'get_params'" (forecast), "... 'name'" (cross_validation, make_model,
    detect_anomalies), "... 'predict'" (explain). Now one typed error naming `model`."""
    import forecasting as fc
    from forecasting.service.core import report

    calls = {
        "forecast": lambda: fc.forecast(_daily(), model=model, h=2),
        "cross_validation": lambda: fc.cross_validation(_daily(), model=model, h=2),
        "explain": lambda: fc.explain(_daily(), model=model, h=2),
        "detect_anomalies": lambda: fc.detect_anomalies(_daily(), model=model),
        "make_model": lambda: fc.make_model(model),
        "report": lambda: report(_daily(), tmp_path / "r.html", model=model, h=2),
    }
    with pytest.raises(fc.InvalidParameterError) as err:
        calls[door]()
    assert err.value.message == _SPEC_RULE + type(model).__name__
    assert err.value.field == "model"


def test_a_pandas_frame_with_a_column_twice_is_named() -> None:
    """`fc.forecast(pd.concat([df, df[["y"]]], axis=1), model="naive", h=2)`: AttributeError "'DataFrame' object
    has no attribute 'dtype'" from the pandas conversion."""
    import pandas as pd

    import forecasting as fc

    df = _daily()
    with pytest.raises(fc.InvalidInputError) as err:
        fc.forecast(pd.concat([df, df[["y"]]], axis=1), model="naive", h=2)
    assert err.value.message == "data: column names must be unique; 'y' appears more than once"
    assert err.value.field == "data.y"


def test_a_pandas_column_polars_cannot_read_is_named() -> None:
    """`fc.forecast(df.assign(y=df.y.astype(complex)), ...)`: pyarrow's ArrowNotImplementedError "Unsupported numpy
    type 15" escaped the library."""
    import forecasting as fc

    df = _daily()
    with pytest.raises(fc.InvalidInputError) as err:
        fc.forecast(df.assign(y=df.y.astype(complex)), model="naive", h=2)
    assert err.value.message == "data: column 'y' of dtype complex128 cannot be read (Unsupported numpy type 15)"
    assert err.value.field == "data.y"


def test_the_not_a_model_folder_message_names_an_option_that_exists(tmp_path) -> None:
    """`fc.load("/etc/passwd")` said to write a folder with `forecasting train --save`; train has no --save
    (its folder option is --output)."""
    import forecasting as fc
    from forecasting.cli import app

    with pytest.raises(fc.InvalidInputError) as err:
        fc.load(tmp_path / "nothing")
    assert "(write one with `forecasting train --output FOLDER`," in err.value.message
    train = next(c for c in app.registered_commands if c.name == "train" or c.callback.__name__ == "train")
    import inspect

    assert "output" in inspect.signature(train.callback).parameters


@pytest.mark.parametrize("algorithm", ["xgboost", "linear"])
def test_a_regression_target_beyond_float32_is_named(algorithm: str) -> None:
    """A tabular regression whose target holds 1e300 in row 3: XGBoost answered "InvalidParameterError: xgboost
    rejected the parameters {'objective': ...}" (its float32 label was inf), blaming `params`; the features had
    this check, the target did not."""
    import numpy as np

    from forecasting.tabular import TabularModel

    rng = np.random.default_rng(0)
    y = rng.normal(size=20)
    y[3] = 1e300
    table = pl.DataFrame({"x": rng.normal(size=20), "y": y})
    with pytest.raises(InvalidInputError) as err:
        TabularModel(algorithm=algorithm).fit(table, "y")
    assert err.value.message == ("target 'y' exceeds the float32 range (|y| > 3.4e38) in 1 rows: 3; XGBoost and the "
                                 "ONNX export compute in float32: rescale the target")
    assert err.value.field == "target"


@pytest.mark.parametrize(("value", "rule"), [("70000", "less than or equal to 65535"),
                                              ("0", "greater than or equal to 1")])
def test_a_port_out_of_range_stops_the_server_naming_the_variable(value: str, rule: str) -> None:
    """`FORECASTING_PORT=70000 forecasting serve` printed "forecasting API on http://127.0.0.1:70000" and served
    on port 4464 (70000 - 65536): the README says a bad setting stops the server naming the variable."""
    from typer.testing import CliRunner

    from forecasting.cli import app

    result = CliRunner().invoke(app, ["serve"], env={"FORECASTING_PORT": value, "COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 2
    assert "Invalid value for '--port' (env var: 'FORECASTING_PORT')" in result.output
    assert f"Input should be {rule}" in result.output


def test_an_answer_lists_at_most_a_thousand_filled_rows_and_counts_the_rest() -> None:
    """`POST /v1/forecast` with 1,000 series of 3 days spread over 2000-2002, `fill_gaps` and `fill_missing`
    'zero': an 81 KB request answered 68 MB, every one of the 972,000 filled rows listed. The JSON answer (HTTP and
    `--json`) now lists the first 1,000 and says how many there were; the library's `filled` keeps them all."""
    from forecasting.data import FILLED_LISTED
    from forecasting.service.core import forecast

    data = {"unique_id": ["a"] * 2 + ["b"] * 2, "ds": ["2000-01-01", "2001-06-01"] * 2, "y": [1.0, 2.0, 3.0, 4.0]}
    result = forecast(data, model="naive", h=1, freq="1d", fill_gaps=True, fill_missing="zero")
    assert result.filled.height == 2 * 516  # 2000-01-02 ... 2001-05-31 in each series (2000 is a leap year)
    answer = result.to_dict()
    assert len(answer["filled"]) == FILLED_LISTED == 1000
    # the 1,000th: a's 516, then b's 484th day after 2000-01-01
    assert answer["filled"][-1] == {"unique_id": "b", "ds": "2001-04-29", "reason": "gap", "policy": "zero"}
    assert answer["notes"][-1] == "1,032 rows were filled; the first 1,000 are listed in filled"


def test_a_forecast_whose_answer_would_dwarf_the_row_limit_is_refused() -> None:
    """`POST /v1/forecast` with 10 series of 3 points, h=1000 and 99 levels: a 1 KB request answered 56 MB of JSON
    (1.99 million values); at the server's 1,000 series the same request would have been 5.6 GB. The answer is now
    bounded at 10 values per row of the row limit (10 million at the default 1,000,000), naming the product."""
    from forecasting.errors import InvalidParameterError
    from forecasting.service.core import Limits, check_answer_size, forecast

    data = {"unique_id": [f"s{i}" for i in range(10) for _ in range(3)], "ds": [1, 2, 3] * 10, "y": [1.0, 2, 4] * 10}
    with pytest.raises(InvalidParameterError) as err:
        forecast(data, model="naive", h=100, level=[50, 80, 95], limits=Limits(max_rows=600))
    assert err.value.message == (
        "the answer would hold 10 series x h=100 x 7 columns (the forecast and 3 levels' bounds) = 7,000 values; the "
        "limit is 6,000 (10 per row of the row limit): ask for a smaller h, fewer levels or fewer series per request")
    assert err.value.field == "h"
    assert forecast(data, model="naive", h=85, level=[50, 80, 95], limits=Limits(max_rows=600)).forecasts.height == 850
    check_answer_size(1000, 1000, 2, Limits(max_rows=1_000_000))  # the server's largest plain request still passes


def test_a_negative_version_in_a_reference_is_named_as_a_version() -> None:
    """`POST /v1/models/ets1@-1/forecast` answered "model must be 1-63 characters of a-z, 0-9, ... got '-1'", the
    alias rule, where `ets1@0` and `ets1@99999999999999999999999` get the version rule."""
    from forecasting.errors import InvalidParameterError
    from forecasting.store.names import parse_ref

    with pytest.raises(InvalidParameterError) as err:
        parse_ref("ets1@-1")
    assert err.value.message == "model: version must be an integer from 1 to 2147483647, got 'ets1@-1'"
    assert parse_ref("ets1@3") == ("ets1", 3)
    assert parse_ref("ets1@1.5") == ("ets1", "1.5")  # a valid alias name, as before


def test_timestamps_below_a_microsecond_are_named_not_called_duplicates() -> None:
    """ds '2024-01-01T00:00:00.000000001', '...002', '...003': refused as "duplicate (unique_id, ds) rows in 1
    series: series 'a': 3 duplicate timestamps (2024-01-01 x3)": the parse keeps microseconds, so they became one."""
    with pytest.raises(InvalidInputError) as err:
        validate_panel({"unique_id": ["a"] * 3, "ds": [f"2024-01-01T00:00:00.00000000{i}" for i in (1, 2, 3)],
                        "y": [1.0, 2.0, 3.0]})
    assert err.value.message == (
        "ds has 3 timestamps with digits below a microsecond (rows 0, 1, 2: '2024-01-01T00:00:00.000000001', "
        "'2024-01-01T00:00:00.000000002', '2024-01-01T00:00:00.000000003'); timestamps are kept to the microsecond: "
        "round them, or number the steps with integer ds")
    assert validate_panel({"unique_id": ["a"] * 3, "ds": [f"2024-01-01T00:00:00.00000{i}000" for i in (1, 2, 3)],
                           "y": [1.0, 2.0, 3.0]}).freq == "1us"
