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
