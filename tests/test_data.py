"""The data contract: one test per rejection (error class + message content), the fill
policies checked by hand, timezones, frequencies, and property tests of validate_panel."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal, assert_series_equal

import forecasting.data as data_module

from forecasting.data import (
    MAX_ABS_Y,
    MAX_HORIZON,
    check_min_length,
    future_frame,
    infer_freq,
    normalize_freq,
    to_caller_tz,
    validate_h,
    validate_levels,
    validate_panel,
)
from forecasting.errors import (
    ForecastingError,
    InsufficientHistoryError,
    InvalidInputError,
    InvalidParameterError,
)
from forecasting.models import make_model
from forecasting.service import forecast

DAYS4 = ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"]


def _daily(y: list, uid: str = "s1") -> dict:
    return {"unique_id": [uid] * len(y), "ds": DAYS4[: len(y)], "y": y}


def _filled(panel) -> list[tuple]:
    return [tuple(r) for r in panel.report.filled.select("unique_id", "ds", "reason", "policy").iter_rows()]


def _y(panel) -> list[float]:
    return panel.frame["y"].to_list()


# ----------------------------------------------------------------------------- columns


def test_missing_column_named_with_present_columns() -> None:
    with pytest.raises(InvalidInputError, match=r"missing required column 'y'") as err:
        validate_panel({"unique_id": ["a"], "ds": ["2024-01-01"]})
    assert "columns present: unique_id, ds" in err.value.message
    assert err.value.details["missing"] == ["y"]
    assert err.value.field == "data"


def test_two_missing_columns_plural() -> None:
    with pytest.raises(InvalidInputError, match=r"missing required columns 'ds', 'y' \(found 'value': rename it to 'y'\)"):
        validate_panel({"unique_id": ["a"], "value": [1.0]})


def test_misspelled_y_column_suggests_the_right_name() -> None:
    with pytest.raises(InvalidInputError) as err:
        validate_panel({"unique_id": ["a"], "ds": ["2024-01-01"], "Y": [1.0]})
    assert "missing required column 'y' (found 'Y': rename it to 'y')" in err.value.message


def test_date_instead_of_ds_is_named() -> None:
    with pytest.raises(InvalidInputError) as err:
        validate_panel({"unique_id": ["a"], "date": ["2024-01-01"], "y": [1.0]})
    msg = err.value.message
    assert "missing required column 'ds'" in msg
    assert "missing required column 'ds' (found 'date': rename it to 'ds')" in msg  # a synonym hint
    assert err.value.details["present"] == ["unique_id", "date", "y"]


def test_empty_frame_rejected() -> None:
    empty = pl.DataFrame(schema={"unique_id": pl.String, "ds": pl.Datetime("us"), "y": pl.Float64})
    with pytest.raises(InvalidInputError, match=r"data is empty"):
        validate_panel(empty)
    with pytest.raises(InvalidInputError, match=r"data is empty"):
        validate_panel({"unique_id": [], "ds": [], "y": []})


def test_unsupported_input_type_rejected() -> None:
    with pytest.raises(InvalidInputError, match=r"data must be a polars or pandas DataFrame.*got str"):
        validate_panel("unique_id,ds,y")


# ----------------------------------------------------------------------------- y


def test_y_strings_not_numeric_rows_named() -> None:
    data = {"unique_id": ["a"] * 3, "ds": DAYS4[:3], "y": ["1", "abc", "3"]}
    with pytest.raises(InvalidInputError) as err:
        validate_panel(data)
    assert "y must be numeric" in err.value.message
    assert "rows 1 are not numbers ('abc')" in err.value.message
    assert err.value.details["rows"] == [1]
    assert err.value.field == "y"


def test_y_mixed_numbers_and_strings_rows_named() -> None:
    data = {"unique_id": ["a"] * 3, "ds": DAYS4[:3], "y": [1.0, "abc", 3]}
    with pytest.raises(InvalidInputError) as err:
        validate_panel(data)
    assert "column 'y' mixes value types (number at rows 0, 2; string at rows 1)" in err.value.message


@pytest.mark.parametrize(("bad", "word"), [(None, "null"), (float("nan"), "NaN"), (float("inf"), "infinite"),
                                          (float("-inf"), "infinite")])
@pytest.mark.parametrize("kind", ["dict", "polars", "pandas"])
def test_invalid_y_named_per_series_with_ds(bad: float | None, word: str, kind: str) -> None:
    data = {"unique_id": ["s1"] * 4 + ["s2"] * 4, "ds": DAYS4 * 2, "y": [1.0, bad, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]}
    frame = {"dict": data, "polars": pl.DataFrame(data, strict=False), "pandas": pd.DataFrame(data)}[kind]
    with pytest.raises(InvalidInputError) as err:
        validate_panel(frame)
    msg = err.value.message
    if kind == "pandas" and bad is None or kind == "pandas" and bad != bad:
        word = "null"  # pandas' missing marker is NaN, and None becomes NaN: both read as null
    assert f"series 's1': 1 {word} y values at ds 2024-01-02" in msg
    assert "s2" not in msg
    assert "fill_missing" in msg
    assert list(err.value.details["series"]) == ["s1"]


def test_invalid_y_kinds_combined_per_series() -> None:
    data = {"unique_id": ["s1"] * 4, "ds": DAYS4, "y": [1.0, None, float("nan"), float("inf")]}
    with pytest.raises(InvalidInputError, match=r"series 's1': 3 NaN/infinite/null y values at ds "
                                               r"2024-01-02, 2024-01-03, 2024-01-04"):
        validate_panel(data)


@pytest.mark.parametrize(("policy", "expected"), [
    ("zero", [2.0, 0.0, 4.0, 5.0]),
    ("forward", [2.0, 2.0, 4.0, 5.0]),
    ("interpolate", [2.0, 3.0, 4.0, 5.0]),  # halfway between 2 and 4
])
@pytest.mark.parametrize("bad", [None, float("nan"), float("inf")])
def test_fill_policies_by_hand(policy: str, expected: list[float], bad: float | None) -> None:
    panel = validate_panel(_daily([2.0, bad, 4.0, 5.0]), fill_missing=policy)
    assert _y(panel) == expected
    filled = panel.report.filled
    assert filled.height == 1
    assert filled["unique_id"].to_list() == ["s1"]
    assert filled["ds"].to_list()[0].startswith("2024-01-02")
    assert filled["reason"].to_list() == ["missing"]
    assert filled["policy"].to_list() == [policy]


def test_fill_lists_exactly_the_filled_rows_across_series() -> None:
    data = {"unique_id": ["a"] * 4 + ["b"] * 4, "ds": DAYS4 * 2,
            "y": [1.0, None, None, 7.0, 10.0, 20.0, 30.0, float("nan")]}
    panel = validate_panel(data, fill_missing="interpolate")
    assert _y(panel) == [1.0, 3.0, 5.0, 7.0, 10.0, 20.0, 30.0, 30.0]  # trailing NaN carried forward
    assert [(u, d[:10], r) for u, d, r, _ in _filled(panel)] == [
        ("a", "2024-01-02", "missing"), ("a", "2024-01-03", "missing"), ("b", "2024-01-04", "missing")]


def test_nothing_filled_gives_empty_report() -> None:
    panel = validate_panel(_daily([1.0, 2.0, 3.0]), fill_missing="zero")
    assert panel.report.filled.height == 0
    assert panel.report.to_dict()["filled"] == []


def test_forward_fill_cannot_fill_a_leading_missing_value() -> None:
    with pytest.raises(InvalidInputError) as err:
        validate_panel(_daily([None, 2.0, 3.0]), fill_missing="forward")
    assert "fill_missing='forward' left 1 rows empty" in err.value.message
    assert "series 's1': cannot fill y at ds 2024-01-01 (no earlier value)" in err.value.message


def test_forward_fill_does_not_leak_across_series() -> None:
    data = {"unique_id": ["a"] * 2 + ["b"] * 2, "ds": DAYS4[:2] * 2, "y": [1.0, 2.0, None, 5.0]}
    with pytest.raises(InvalidInputError, match=r"series 'b': cannot fill y at ds 2024-01-01"):
        validate_panel(data, fill_missing="forward")


def test_unknown_fill_policy() -> None:
    with pytest.raises(InvalidParameterError, match=r"fill_missing must be one of zero, forward, interpolate, got 'mean'"):
        validate_panel(_daily([1.0, 2.0]), fill_missing="mean")  # type: ignore[arg-type]


def test_fill_gaps_requires_a_policy() -> None:
    with pytest.raises(InvalidParameterError, match=r"fill_gaps=True inserts rows without y; choose fill_missing"):
        validate_panel(_daily([1.0, 2.0]), fill_gaps=True)


# ----------------------------------------------------------------------------- duplicates


def test_duplicate_timestamps_named() -> None:
    data = {"unique_id": ["s1"] * 3 + ["s2"] * 2, "ds": ["2024-01-01", "2024-01-02", "2024-01-02"] + DAYS4[:2],
            "y": [1.0, 2.0, 3.0, 1.0, 2.0]}
    with pytest.raises(InvalidInputError) as err:
        validate_panel(data)
    assert err.value.message.startswith("duplicate (unique_id, ds) rows in 1 series: ")
    assert "series 's1': 2 duplicate timestamps (2024-01-02 x2)" in err.value.message
    assert list(err.value.details["duplicates"]) == ["s1"]


def test_duplicate_integer_steps_named() -> None:
    data = {"unique_id": ["m"] * 4, "ds": [1, 2, 2, 2], "y": [1.0, 2.0, 3.0, 4.0]}
    with pytest.raises(InvalidInputError, match=r"series 'm': 3 duplicate timestamps \(2 x3\)"):
        validate_panel(data)


# ----------------------------------------------------------------------------- ds types


def test_ds_mixing_ints_and_strings_in_a_dict() -> None:
    data = {"unique_id": ["s1"] * 3, "ds": [1, "2024-01-02", 3], "y": [1.0, 2.0, 3.0]}
    with pytest.raises(InvalidInputError) as err:
        validate_panel(data)
    assert "column 'ds' mixes value types (number at rows 0, 2; string at rows 1)" in err.value.message
    assert err.value.field == "data.ds"


def test_ds_mixing_ints_and_strings_in_a_pandas_object_column() -> None:
    pdf = pd.DataFrame({"unique_id": ["s1"] * 3, "ds": pd.Series([1, "2024-01-02", 3], dtype=object),
                        "y": [1.0, 2.0, 3.0]})
    with pytest.raises(InvalidInputError, match=r"column 'ds' mixes value types \(number at rows 0, 2; string at rows 1\)"):
        validate_panel(pdf)


def test_ds_strings_mixing_integer_steps_and_timestamps() -> None:
    data = {"unique_id": ["s1"] * 3, "ds": ["1", "2024-01-02", "3"], "y": [1.0, 2.0, 3.0]}
    with pytest.raises(InvalidInputError, match=r"ds mixes integer steps and timestamps \(integers at rows 0, 2\)"):
        validate_panel(data)


def test_ds_not_a_timestamp() -> None:
    data = {"unique_id": ["s1"] * 3, "ds": ["2024-01-01", "yesterday", "2024-01-03"], "y": [1.0, 2.0, 3.0]}
    with pytest.raises(InvalidInputError, match=r"ds has 1 values that are not ISO 8601 timestamps \(rows 1: 'yesterday'\)"):
        validate_panel(data)


def test_fractional_ds_rejected() -> None:
    data = {"unique_id": ["s1"] * 3, "ds": [1.0, 2.5, 3.0], "y": [1.0, 2.0, 3.0]}
    with pytest.raises(InvalidInputError, match=r"1 rows have fractional values \(rows 1\)"):
        validate_panel(data)


def test_null_ds_named() -> None:
    pdf = pd.DataFrame({"unique_id": ["s1"] * 3, "ds": pd.to_datetime(["2024-01-01", None, "2024-01-03"]),
                        "y": [1.0, 2.0, 3.0]})
    with pytest.raises(InvalidInputError, match=r"1 rows without ds: series 's1': ds is null at rows 1"):
        validate_panel(pdf)


def test_aware_and_naive_strings_rejected() -> None:
    data = {"unique_id": ["s1"] * 3,
            "ds": ["2024-01-01T00:00:00+01:00", "2024-01-02T00:00:00", "2024-01-03T00:00:00+01:00"],
            "y": [1.0, 2.0, 3.0]}
    with pytest.raises(InvalidInputError) as err:
        validate_panel(data)
    assert "ds mixes timezone-aware and naive timestamps (aware at rows 0, 2; naive at rows 1)" in err.value.message


def test_aware_and_naive_in_a_pandas_object_column_rejected() -> None:
    values = [pd.Timestamp("2024-01-01", tz="Europe/Paris"), pd.Timestamp("2024-01-02"),
              pd.Timestamp("2024-01-03", tz="Europe/Paris")]
    pdf = pd.DataFrame({"unique_id": ["s1"] * 3, "ds": pd.Series(values, dtype=object), "y": [1.0, 2.0, 3.0]})
    with pytest.raises(InvalidInputError) as err:
        validate_panel(pdf)
    assert "column 'ds' mixes timezone-aware and naive timestamps (aware at rows 0, 2; naive at rows 1)" in err.value.message


def test_aware_and_naive_python_datetimes_rejected() -> None:
    utc = dt.timezone.utc
    data = {"unique_id": ["s1"] * 2, "ds": [dt.datetime(2024, 1, 1, tzinfo=utc), dt.datetime(2024, 1, 2)], "y": [1.0, 2.0]}
    with pytest.raises(InvalidInputError, match=r"mixes timezone-aware and naive timestamps"):
        validate_panel(data)


# ----------------------------------------------------------------------------- timezones


def _paris(start: str = "2024-03-20", end: str = "2024-03-30") -> pd.DataFrame:
    ds = pd.date_range(start, end, freq="D", tz="Europe/Paris")
    return pd.DataFrame({"unique_id": "p", "ds": ds, "y": np.arange(len(ds), dtype=float)})


def test_aware_ds_stored_in_utc_with_caller_zone_kept() -> None:
    panel = validate_panel(_paris())
    assert panel.tz == "Europe/Paris"
    assert panel.frame.schema["ds"] == pl.Datetime("us")  # naive, in UTC
    assert panel.frame["ds"][0] == dt.datetime(2024, 3, 19, 23, 0)  # 00:00 CET = 23:00 UTC
    assert panel.freq == "1d"
    assert any("Europe/Paris" in n for n in panel.report.notes)


@pytest.mark.parametrize("kind", ["pandas", "polars"])
def test_paris_daily_forecasts_stay_at_local_midnight_across_dst(kind: str) -> None:
    # DST starts on 2024-03-31 in Europe/Paris: 24h steps in UTC would drift to 01:00 local.
    data = _paris() if kind == "pandas" else pl.from_pandas(_paris())
    out = forecast(data, model="naive", h=4).forecasts
    assert out.schema["ds"] == pl.Datetime("us", "Europe/Paris")
    local = [d.replace(tzinfo=None) for d in out["ds"].to_list()]
    assert local == [dt.datetime(2024, 3, d) for d in (31,)] + [dt.datetime(2024, 4, d) for d in (1, 2, 3)]
    utc = out["ds"].dt.convert_time_zone("UTC").dt.hour().to_list()
    assert utc == [23, 22, 22, 22]  # the UTC offset changes, the local clock does not
    assert out["Naive"].to_list() == [10.0] * 4


def test_python_zoneinfo_datetimes_keep_their_zone_across_dst() -> None:
    # regression: aware Python datetimes (dict/records input, pandas object columns) were
    # converted to UTC and lost their zone, so a Paris daily series across the DST change was
    # rejected as "off the 1d grid" and forecasts came back in UTC.
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
    ds = [dt.datetime(2024, 3, d, tzinfo=paris) for d in range(25, 31)]
    rows = [{"unique_id": "p", "ds": d, "y": float(i)} for i, d in enumerate(ds)]
    panel = validate_panel(rows)
    assert (panel.tz, panel.freq) == ("Europe/Paris", "1d")
    out = forecast(rows, model="naive", h=3).forecasts
    assert [d.isoformat() for d in out["ds"].to_list()] == [
        "2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00", "2024-04-02T00:00:00+02:00"]


def test_python_datetimes_in_several_zones_stored_in_utc() -> None:
    from zoneinfo import ZoneInfo

    ds = [dt.datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Paris")), dt.datetime(2024, 1, 1, 23, tzinfo=dt.timezone.utc)]
    panel = validate_panel({"unique_id": ["a"] * 2, "ds": ds, "y": [1.0, 2.0]})
    assert panel.tz == "UTC"
    assert panel.frame["ds"].to_list() == [dt.datetime(2023, 12, 31, 23), dt.datetime(2024, 1, 1, 23)]


def test_gap_in_paris_series_found_on_local_grid_and_reported_in_local_time() -> None:
    # the series spans the DST change; 2024-03-25 is missing
    pdf = _paris("2024-03-28", "2024-04-03")
    pdf = pdf[pdf["ds"].dt.day != 1].reset_index(drop=True)  # drop 2024-04-01 (after the change)
    with pytest.raises(InvalidInputError, match=r"series 'p': 1 missing timestamps"):
        validate_panel(pdf)
    panel = validate_panel(pdf, fill_gaps=True, fill_missing="zero")
    assert panel.lengths == {"p": 7}
    assert _filled(panel) == [("p", "2024-04-01T00:00:00+02:00", "gap", "zero")]


def test_fixed_offset_strings_returned_at_that_offset() -> None:
    data = {"unique_id": ["s1"] * 3,
            "ds": ["2024-01-01T00:00:00+01:00", "2024-01-02T00:00:00+01:00", "2024-01-03T00:00:00+01:00"],
            "y": [1.0, 2.0, 3.0]}
    panel = validate_panel(data)
    assert panel.tz == "Etc/GMT-1"  # POSIX sign: GMT-1 is UTC+01:00
    assert panel.frame["ds"].to_list()[0] == dt.datetime(2023, 12, 31, 23, 0)
    out = forecast(data, model="naive", h=2).forecasts
    assert [d.isoformat() for d in out["ds"].to_list()] == ["2024-01-04T00:00:00+01:00", "2024-01-05T00:00:00+01:00"]


def test_z_suffix_is_utc() -> None:
    data = {"unique_id": ["s1"] * 2, "ds": ["2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"], "y": [1.0, 2.0]}
    panel = validate_panel(data)
    assert panel.tz == "UTC"
    assert panel.freq == "1h"


def test_several_offsets_returned_in_utc_with_a_note() -> None:
    data = {"unique_id": ["s1"] * 3,
            "ds": ["2024-03-30T01:00:00+01:00", "2024-03-31T01:00:00+01:00", "2024-04-01T02:00:00+02:00"],
            "y": [1.0, 2.0, 3.0]}
    # several offsets (not all at local midnight) fall back to UTC, with a note
    panel = validate_panel(data, freq="1d")
    assert panel.tz == "UTC"
    assert panel.frame["ds"].dt.hour().to_list() == [0, 0, 0]
    assert any("several UTC offsets" in n for n in panel.report.notes)


def test_local_midnight_across_dst_is_read_as_dates() -> None:
    """Regression (issue 14): daily data at local midnight across a DST change was refused as off the 1d grid."""
    data = {"unique_id": ["s1"] * 3,
            "ds": ["2024-03-30T00:00:00+01:00", "2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00"],
            "y": [1.0, 2.0, 3.0]}
    panel = validate_panel(data)
    assert (panel.freq, panel.tz, panel.ds_kind) == ("1d", None, "date")
    assert [str(d.date()) for d in panel.frame["ds"]] == ["2024-03-30", "2024-03-31", "2024-04-01"]
    assert any("local midnight" in n for n in panel.report.notes)


# ----------------------------------------------------------------------------- gaps and grid


def test_gap_rejected_with_missing_timestamps() -> None:
    data = {"unique_id": ["s1"] * 4 + ["s2"] * 2, "ds": ["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-06"] + DAYS4[:2],
            "y": [1.0, 2.0, 5.0, 6.0, 1.0, 2.0]}
    with pytest.raises(InvalidInputError) as err:
        validate_panel(data)
    msg = err.value.message
    assert "gaps against freq '1d' in 1 series" in msg
    assert "series 's1': 2 missing timestamps (2024-01-03, 2024-01-04)" in msg
    assert "fill_gaps" in msg
    assert list(err.value.details["gaps"]) == ["s1"]


@pytest.mark.parametrize(("policy", "expected"), [
    ("zero", [1.0, 2.0, 0.0, 0.0, 5.0]),
    ("forward", [1.0, 2.0, 2.0, 2.0, 5.0]),
    ("interpolate", [1.0, 2.0, 3.0, 4.0, 5.0]),
])
def test_gaps_filled_and_reported_as_gap(policy: str, expected: list[float]) -> None:
    data = {"unique_id": ["s1"] * 3, "ds": ["2024-01-01", "2024-01-02", "2024-01-05"], "y": [1.0, 2.0, 5.0]}
    panel = validate_panel(data, fill_gaps=True, fill_missing=policy)
    assert _y(panel) == expected
    assert panel.lengths == {"s1": 5}
    assert [(u, d[:10], r, p) for u, d, r, p in _filled(panel)] == [
        ("s1", "2024-01-03", "gap", policy), ("s1", "2024-01-04", "gap", policy)]


def test_gap_and_missing_value_reported_with_their_reasons() -> None:
    data = {"unique_id": ["s1"] * 4, "ds": ["2024-01-01", "2024-01-02", "2024-01-04", "2024-01-05"],
            "y": [1.0, None, 4.0, 5.0]}
    panel = validate_panel(data, fill_gaps=True, fill_missing="interpolate")
    assert _y(panel) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert sorted((d[:10], r) for _, d, r, _ in _filled(panel)) == [("2024-01-02", "missing"), ("2024-01-03", "gap")]


def test_integer_gaps() -> None:
    data = {"unique_id": ["m"] * 3, "ds": [1, 2, 5], "y": [1.0, 2.0, 5.0]}
    with pytest.raises(InvalidInputError, match=r"series 'm': 2 missing timestamps \(3, 4\)"):
        validate_panel(data, freq=1)


def test_off_grid_timestamp_with_explicit_freq() -> None:
    data = {"unique_id": ["s1"] * 3, "ds": ["2024-01-01 00:00", "2024-01-02 00:00", "2024-01-03 12:00"], "y": [1.0, 2.0, 4.0]}
    with pytest.raises(InvalidInputError) as err:
        validate_panel(data, freq="1d")
    msg = err.value.message
    assert "timestamps not on the frequency grid '1d'" in msg
    assert "series 's1': 1 timestamps off the 1d grid (2024-01-03 12:00:00)" in msg


def test_off_grid_integer_step() -> None:
    data = {"unique_id": ["m"] * 3, "ds": [0, 2, 5], "y": [1.0, 2.0, 3.0]}
    with pytest.raises(InvalidInputError, match=r"series 'm': 1 timestamps off the 2 grid \(5\)"):
        validate_panel(data, freq=2)


def test_freq_kind_must_match_ds_kind() -> None:
    with pytest.raises(InvalidParameterError, match=r"ds holds integer steps, so freq must be a positive integer, got '1d'"):
        validate_panel({"unique_id": ["m"] * 2, "ds": [1, 2], "y": [1.0, 2.0]}, freq="1d")
    with pytest.raises(InvalidParameterError, match=r"ds holds timestamps, so freq must be an offset"):
        validate_panel(_daily([1.0, 2.0]), freq=1)


# ----------------------------------------------------------------------------- frequency


def test_freq_cannot_be_inferred_from_single_observations() -> None:
    data = {"unique_id": ["s1", "s2"], "ds": ["2024-01-01", "2024-01-02"], "y": [1.0, 2.0]}
    with pytest.raises(InvalidInputError, match=r"every series has a single observation; pass freq") as err:
        validate_panel(data)
    assert err.value.field == "freq"
    panel = validate_panel(data, freq="1d")  # an explicit freq makes it valid
    assert panel.lengths == {"s1": 1, "s2": 1}


def test_freq_cannot_be_inferred_from_irregular_steps() -> None:
    data = {"unique_id": ["s1"] * 5, "ds": ["2024-01-01", "2024-01-02", "2024-01-05", "2024-01-12", "2024-01-30"],
            "y": [1.0, 2.0, 3.0, 4.0, 5.0]}
    with pytest.raises(InvalidInputError) as err:
        validate_panel(data)
    assert "cannot infer the frequency: steps between timestamps vary (" in err.value.message
    assert "1d x1" in err.value.message and "3d x1" in err.value.message and "pass freq" in err.value.message


@pytest.mark.parametrize(("given", "expected"), [
    ("H", "1h"), ("h", "1h"), ("D", "1d"), ("MS", "1mo"), ("ME", "1mo"), ("M", "1mo"), ("W", "1w"), ("W-SUN", "1w"),
    ("15min", "15m"), ("QS", "3mo"), ("1q", "3mo"), ("YS", "1y"), ("1h", "1h"), ("30m", "30m"), (7, 7), ("24", 24),
    (None, None),
])
def test_normalize_freq(given, expected) -> None:
    assert normalize_freq(given) == expected


@pytest.mark.parametrize("bad", ["fortnightly", "", 0, -3, True, 1.5])
def test_normalize_freq_rejects(bad) -> None:
    with pytest.raises(InvalidParameterError, match=r"freq"):
        normalize_freq(bad)


@pytest.mark.parametrize("zero", ["0h", "0min", "00d", "0mo"])
def test_zero_step_freq_is_a_parameter_error(zero) -> None:
    # used to reach polars and surface as a raw ComputeError ("`interval` must be positive")
    with pytest.raises(InvalidParameterError, match=rf"freq must be a positive step, got '{zero}'"):
        validate_panel({"unique_id": ["a", "a"], "ds": ["2024-01-01T00:00", "2024-01-01T01:00"], "y": [1.0, 2.0]},
                       freq=zero)


def test_an_unknown_zero_freq_is_still_an_unknown_freq() -> None:
    with pytest.raises(InvalidParameterError, match=r"freq '0xyz' is not a known frequency"):
        normalize_freq("0xyz")
    with pytest.raises(InvalidParameterError, match=r"freq must be a positive step, got '0MS'"):
        normalize_freq("0MS")


def test_unknown_freq_message_lists_examples() -> None:
    with pytest.raises(InvalidParameterError, match=r"freq 'fortnightly' is not a known frequency; use a polars offset"):
        validate_panel(_daily([1.0, 2.0]), freq="fortnightly")


@pytest.mark.parametrize("dates", [
    ["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01"],
    ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31"],
])
def test_monthly_inference_month_start_and_month_end(dates: list[str]) -> None:
    panel = validate_panel({"unique_id": ["s1"] * 5, "ds": dates, "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    assert panel.freq == "1mo"
    assert panel.ds_kind == "date"


def test_month_end_future_dates() -> None:
    dates = ["2024-01-31", "2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31"]
    panel = validate_panel({"unique_id": ["s1"] * 5, "ds": dates, "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    out = to_caller_tz(future_frame(panel, 3), panel)
    assert out["ds"].to_list() == [dt.date(2024, 6, 30), dt.date(2024, 7, 31), dt.date(2024, 8, 31)]


def test_month_start_future_dates() -> None:
    dates = ["2023-11-01", "2023-12-01", "2024-01-01"]
    panel = validate_panel({"unique_id": ["s1"] * 3, "ds": dates, "y": [1.0, 2.0, 3.0]})
    out = to_caller_tz(future_frame(panel, 2), panel)
    assert out["ds"].to_list() == [dt.date(2024, 2, 1), dt.date(2024, 3, 1)]


@pytest.mark.parametrize(("step_days", "expected"), [(1, "1d"), (7, "1w"), (91, "3mo"), (365, "1y")])
def test_infer_freq_fixed_and_calendar(step_days: int, expected: str) -> None:
    if expected == "3mo":
        ds = [dt.datetime(2024, m, 1) for m in (1, 4, 7, 10)]
    elif expected == "1y":
        ds = [dt.datetime(y, 1, 1) for y in (2020, 2021, 2022, 2023)]
    else:
        ds = [dt.datetime(2024, 1, 1) + dt.timedelta(days=step_days * k) for k in range(4)]
    frame = pl.DataFrame({"unique_id": ["s"] * 4, "ds": ds}).with_columns(pl.col("ds").dt.cast_time_unit("us"))
    assert infer_freq(frame) == expected


def test_hourly_inferred() -> None:
    ds = pd.date_range("2024-01-01", periods=6, freq="h")
    panel = validate_panel(pd.DataFrame({"unique_id": "s", "ds": ds, "y": np.arange(6.0)}))
    assert panel.freq == "1h"
    assert panel.ds_kind == "datetime"


# ----------------------------------------------------------------------------- ds kinds, inputs


def test_integer_ds_m4_style() -> None:
    data = {"unique_id": ["H1"] * 4 + ["H2"] * 3, "ds": [1, 2, 3, 4, 1, 2, 3], "y": [1.0, 2.0, 3.0, 4.0, 5, 6, 7]}
    panel = validate_panel(data)
    assert panel.ds_kind == "int"
    assert panel.freq == 1
    assert panel.frame.schema["ds"] == pl.Int64
    assert panel.lengths == {"H1": 4, "H2": 3}
    out = to_caller_tz(future_frame(panel, 2), panel)
    assert out.rows() == [("H1", 5), ("H1", 6), ("H2", 4), ("H2", 5)]


def test_integer_strings_are_integer_steps() -> None:
    panel = validate_panel({"unique_id": ["a"] * 3, "ds": ["10", "20", "30"], "y": [1.0, 2.0, 3.0]})
    assert panel.ds_kind == "int"
    assert panel.freq == 10


def test_datetime_ds_supported() -> None:
    ds = [dt.datetime(2024, 1, 1, h) for h in range(3)]
    panel = validate_panel(pl.DataFrame({"unique_id": ["a"] * 3, "ds": ds, "y": [1.0, 2.0, 3.0]}))
    assert panel.ds_kind == "datetime"
    assert panel.freq == "1h"
    assert panel.tz is None


def test_date_ds_returned_as_dates() -> None:
    data = pl.DataFrame({"unique_id": ["a"] * 3, "ds": [dt.date(2024, 1, d) for d in (1, 2, 3)], "y": [1.0, 2.0, 3.0]})
    out = forecast(data, model="naive", h=2).forecasts
    assert out.schema["ds"] == pl.Date
    assert out["ds"].to_list() == [dt.date(2024, 1, 4), dt.date(2024, 1, 5)]


def test_pandas_input_accepted() -> None:
    pdf = pd.DataFrame({"unique_id": ["b", "b", "a", "a", "a"],
                        "ds": pd.to_datetime(["2024-01-02", "2024-01-01", "2024-01-01", "2024-01-02", "2024-01-03"]),
                        "y": [2, 1, 10, 20, 30]})
    panel = validate_panel(pdf)
    assert panel.frame.schema == pl.Schema({"unique_id": pl.String, "ds": pl.Datetime("us"), "y": pl.Float64})
    assert panel.frame.rows() == [("a", dt.datetime(2024, 1, 1), 10.0), ("a", dt.datetime(2024, 1, 2), 20.0),
                                  ("a", dt.datetime(2024, 1, 3), 30.0), ("b", dt.datetime(2024, 1, 1), 1.0),
                                  ("b", dt.datetime(2024, 1, 2), 2.0)]
    assert panel.lengths == {"a": 3, "b": 2}
    assert panel.freq == "1d"


def test_pandas_ds_index_accepted() -> None:
    pdf = pd.DataFrame({"unique_id": ["a"] * 3, "y": [1.0, 2.0, 3.0]},
                       index=pd.Index(pd.to_datetime(DAYS4[:3]), name="ds"))
    assert validate_panel(pdf).lengths == {"a": 3}


def test_list_of_records_and_integer_ids() -> None:
    rows = [{"unique_id": 7, "ds": "2024-01-01", "y": 1}, {"unique_id": 7, "ds": "2024-01-02", "y": 2}]
    panel = validate_panel(rows)
    assert panel.ids == ["7"]
    assert _y(panel) == [1.0, 2.0]


def test_exogenous_columns_kept() -> None:
    data = {"unique_id": ["a"] * 2, "ds": DAYS4[:2], "y": [1.0, 2.0], "price": [3.0, 4.0]}
    panel = validate_panel(data)
    assert panel.exog == ("price",)
    assert panel.frame.columns == ["unique_id", "ds", "y", "price"]


# ----------------------------------------------------------------------------- h and level


@pytest.mark.parametrize(("h", "msg"), [
    (0, "h must be an integer >= 1, got 0"),
    (-1, "h must be an integer >= 1, got -1"),
    (1.5, "h must be an integer >= 1, got 1.5"),
    ("3", "h must be an integer >= 1, got '3'"),
    (True, "h must be an integer >= 1, got True"),
    (None, "h must be an integer >= 1, got None"),
    (MAX_HORIZON + 1, f"h must be at most {MAX_HORIZON}, got {MAX_HORIZON + 1}"),
])
def test_validate_h_rejects(h, msg: str) -> None:
    with pytest.raises(InvalidParameterError) as err:
        validate_h(h)
    assert err.value.message == msg
    assert err.value.field == "h"


def test_validate_h_accepts() -> None:
    assert validate_h(1) == 1
    assert validate_h(MAX_HORIZON) == MAX_HORIZON
    assert validate_h(12.0) == 12
    assert validate_h(5, max_h=5) == 5
    with pytest.raises(InvalidParameterError, match=r"h must be at most 4, got 5"):
        validate_h(5, max_h=4)


@pytest.mark.parametrize("level", [0, 100, -5, 120, [80, 100], float("nan"), "95", [True], [None]])
def test_validate_levels_rejects(level) -> None:
    with pytest.raises(InvalidParameterError, match=r"level must be numbers strictly between 0 and 100 \(percent\)") as err:
        validate_levels(level)
    assert err.value.field == "level"


def test_validate_levels_string_named_whole() -> None:
    # regression: a string used to be iterated character by character ("got '9'")
    with pytest.raises(InvalidParameterError, match=r"got '95'$"):
        validate_levels("95")


def test_validate_levels_accepts() -> None:
    assert validate_levels(None) == ()
    assert validate_levels([]) == ()
    assert validate_levels(95) == (95,)
    assert validate_levels([95, 80, 80.0, 99.5]) == (80, 95, 99.5)
    assert all(type(v) is int for v in validate_levels([80.0, 95]))


# ----------------------------------------------------------------------------- history length


def _short(n: int = 5, uid: str = "short") -> dict:
    return {"unique_id": [uid] * n, "ds": list(range(1, n + 1)), "y": [float(v) for v in range(1, n + 1)]}


def test_series_too_short_for_the_model() -> None:
    model = make_model({"name": "seasonal_naive", "params": {"season_length": 12}})
    data = {"unique_id": ["short"] * 5 + ["long"] * 20, "ds": list(range(1, 6)) + list(range(1, 21)),
            "y": [1.0] * 25}
    with pytest.raises(InsufficientHistoryError) as err:
        model.fit(data)
    msg = err.value.message
    assert "series 'short': 5 observations, model 'seasonal_naive' needs at least 13" in msg
    assert "long" not in msg
    assert err.value.details["series"] == {"short": {"length": 5, "minimum": 13}}
    assert err.value.details["minimum"] == 13
    assert isinstance(err.value, InvalidInputError)  # a data problem, same HTTP class


def test_check_min_length_returns_short_ids_with_fallback() -> None:
    panel = validate_panel(_short(3))
    assert check_min_length(panel, 3, model="m") == []
    assert check_min_length(panel, 4, model="m", fallback="naive") == ["short"]
    with pytest.raises(InsufficientHistoryError, match=r"series 'short': 3 observations, model 'm' needs at least 4"):
        check_min_length(panel, 4, model="m")


def test_explicit_fallback_forecasts_short_series_with_naive() -> None:
    model = make_model({"name": "seasonal_naive", "params": {"season_length": 12}, "fallback": "naive"})
    long_y = [float(v % 12) for v in range(24)]
    data = {"unique_id": ["short"] * 5 + ["long"] * 24, "ds": list(range(1, 6)) + list(range(1, 25)),
            "y": [1.0, 2.0, 3.0, 4.0, 5.0] + long_y}
    out = model.fit(data).predict(3)
    assert [f.to_dict() for f in model.fallbacks_] == [
        {"unique_id": "short", "model": "naive",
         "reason": "5 observations, model 'seasonal_naive' needs at least 13"}]
    short = out.filter(pl.col("unique_id") == "short")
    assert short["SeasonalNaive"].to_list() == [5.0, 5.0, 5.0]  # naive: the last value
    assert short["ds"].to_list() == [6, 7, 8]
    long = out.filter(pl.col("unique_id") == "long")
    assert long["SeasonalNaive"].to_list() == [0.0, 1.0, 2.0]  # the season repeated


def test_service_reports_fallbacks() -> None:
    result = forecast(_short(5), model={"name": "seasonal_naive", "params": {"season_length": 12}, "fallback": "naive"}, h=2)
    assert [f.unique_id for f in result.fallbacks] == ["short"]
    assert result.forecasts["SeasonalNaive"].to_list() == [5.0, 5.0]


def test_service_errors_are_library_errors() -> None:
    with pytest.raises(ForecastingError):
        forecast(_short(5), model={"name": "seasonal_naive", "params": {"season_length": 12}}, h=2)


# ----------------------------------------------------------------------------- properties


@st.composite
def panels(draw):
    """A small panel as a dict of columns: int or datetime ds, on a regular grid per series, shuffled."""
    n_series = draw(st.integers(1, 4))
    datetime_ds = draw(st.booleans())
    rows = []
    for k in range(n_series):
        uid = draw(st.sampled_from(["a", "b", "s 1", "é", "0"])) + str(k)
        n = draw(st.integers(1, 6))
        start = draw(st.integers(-5, 5))
        ys = draw(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e12, max_value=1e12),
                           min_size=n, max_size=n))
        for i, y in enumerate(ys):
            ds = dt.datetime(2024, 1, 10) + dt.timedelta(days=start + i) if datetime_ds else start + i
            rows.append((uid, ds, y))
    order = draw(st.permutations(range(len(rows))))
    rows = [rows[i] for i in order]
    return rows, ("1d" if datetime_ds else 1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panels(), st.sampled_from(["dict", "polars", "pandas", "records"]))
@example(([("a0", 1, 0.0)], 1), "dict")
@example(([("a0", 3, -0.0), ("b1", 1, 1e12), ("a0", 2, 5.5)], 1), "pandas")
def test_validate_panel_preserves_every_triple(drawn, kind: str) -> None:
    rows, freq = drawn
    cols = {"unique_id": [r[0] for r in rows], "ds": [r[1] for r in rows], "y": [r[2] for r in rows]}
    data = {"dict": cols, "polars": pl.DataFrame(cols), "pandas": pd.DataFrame(cols),
            "records": [dict(zip(("unique_id", "ds", "y"), r, strict=True)) for r in rows]}[kind]
    panel = validate_panel(data, freq=freq)
    got = panel.frame.select("unique_id", "ds", "y").rows()
    assert sorted(got) == sorted(rows)
    assert sum(panel.lengths.values()) == len(rows) == panel.frame.height
    assert panel.lengths == {u: sum(r[0] == u for r in rows) for u in panel.lengths}
    # sorted by (unique_id, ds), ids in that order
    assert got == sorted(got, key=lambda r: (r[0], r[1]))
    assert panel.ids == sorted(set(cols["unique_id"]))
    assert panel.report.filled.height == 0


@settings(max_examples=40, deadline=None)
@given(panels(), st.integers(1, 5))
def test_future_frame_continues_each_series(drawn, h: int) -> None:
    rows, freq = drawn
    panel = validate_panel({"unique_id": [r[0] for r in rows], "ds": [r[1] for r in rows], "y": [r[2] for r in rows]},
                           freq=freq)
    fut = future_frame(panel, h)
    assert fut.height == h * panel.n_series
    last = {u: max(r[1] for r in rows if r[0] == u) for u in panel.lengths}
    step = dt.timedelta(days=1) if freq == "1d" else 1
    for uid, part in fut.group_by("unique_id", maintain_order=True):
        assert part["ds"].to_list() == [last[uid[0]] + step * k for k in range(1, h + 1)]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(allow_infinity=True, allow_nan=True, min_value=None, max_value=None)
                          .filter(lambda v: not MAX_ABS_Y < abs(v) < math.inf),  # finite beyond 1e150: refused
                          st.floats(-100, 100)), min_size=2, max_size=10),
       st.sampled_from(["zero", "interpolate"]))
def test_fill_reports_exactly_the_invalid_rows(ys: list[float | None], policy: str) -> None:
    def bad(v: float | None) -> bool:
        return v is None or not math.isfinite(v)

    if all(bad(v) for v in ys) and policy == "interpolate":
        ys = [*ys[:-1], 1.0]
    data = {"unique_id": ["s"] * len(ys), "ds": list(range(len(ys))), "y": ys}
    panel = validate_panel(data, fill_missing=policy)
    expected = [str(i) for i, v in enumerate(ys) if bad(v)]
    assert panel.report.filled["ds"].to_list() == expected
    assert panel.frame["y"].is_finite().all()
    for i, v in enumerate(ys):
        if not bad(v):
            assert panel.frame["y"][i] == v  # valid values are never touched


def test_half_hour_offset_is_returned_at_that_offset() -> None:
    """Regression (issue 14): '+05:30' has no fixed-offset zone in polars; answers come back at +05:30."""
    from forecasting.service import forecast

    data = {"unique_id": ["a"] * 5, "ds": [f"2024-01-0{i}T00:00:00+05:30" for i in range(1, 6)], "y": [1.0, 2, 3, 4, 5]}
    result = forecast(data, model="naive", h=2)
    assert result.panel.utc_offset == "+05:30"
    assert [r["ds"].isoformat() for r in result.to_dict()["forecasts"]] == ["2024-01-06T00:00:00+05:30",
                                                                           "2024-01-07T00:00:00+05:30"]


def test_month_end_series_forecast_month_ends() -> None:
    """Regression: month-end monthly data was forecast on the 29th (2024-02-29 + 1mo = 2024-03-29)."""
    import calendar

    from forecasting.service import forecast

    ds = [f"{y}-{m:02d}-{calendar.monthrange(y, m)[1]:02d}" for y, m in [(2023, i) for i in range(1, 13)] + [(2024, 1), (2024, 2)]]
    result = forecast({"unique_id": ["a"] * 14, "ds": ds, "y": [float(i) for i in range(14)]}, model="naive", h=4)
    assert [d.isoformat() for d in result.forecasts["ds"].to_list()] == ["2024-03-31", "2024-04-30", "2024-05-31",
                                                                        "2024-06-30"]
    # a month-end series starting on the 30th is on its grid too
    panel = validate_panel({"unique_id": ["b"] * 8, "ds": ds[5:13], "y": [1.0] * 8})
    assert panel.freq == "1mo" and panel.month_end


def test_non_iso_value_is_named_not_the_iso_ones() -> None:
    """Regression: a leading '01/02/2024' made polars infer that format and reject every ISO value."""
    with pytest.raises(InvalidInputError) as err:
        validate_panel({"unique_id": ["a"] * 3, "ds": ["01/02/2024", "2024-01-02", "2024-01-03"], "y": [1.0, 2, 3]})
    assert err.value.message == "ds has 1 values that are not ISO 8601 timestamps (rows 0: '01/02/2024')"


def test_time_limit_stops_fitting_with_a_clear_error() -> None:
    from forecasting.errors import TimeLimitError
    from forecasting.service import Limits, forecast

    data = {"unique_id": [f"s{i}" for i in range(3) for _ in range(30)], "ds": list(range(30)) * 3,
            "y": [float(i % 7) for i in range(90)]}
    with pytest.raises(TimeLimitError, match=r"fitting stopped after 0 of 3 series: the time limit was reached"):
        forecast(data, model="auto_ets", h=2, limits=Limits(max_seconds=-1))


# ----------------------------------------------------------------------------- fast paths
# validate_panel has fast paths for the common valid request (plain Python columns, rows already in
# order one freq step apart, finite y). They must give exactly what the general code gives: same
# frame, freq, lengths, tz, kind, report, or the same error. data._FAST_PATHS = False is the general code.


@contextlib.contextmanager
def _general_paths() -> Iterator[None]:
    previous = data_module._FAST_PATHS
    data_module._FAST_PATHS = False
    try:
        yield
    finally:
        data_module._FAST_PATHS = previous


def _outcome(make: Callable[[], Any], **kw: Any) -> tuple:
    try:
        return ("ok", validate_panel(make(), **kw))
    except ForecastingError as exc:
        return ("error", type(exc).__name__, exc.message, exc.field, exc.details)
    except Exception as exc:  # noqa: BLE001 - whatever it is, both paths must raise the same
        return ("crash", type(exc).__name__, str(exc))


def _assert_paths_agree(make: Callable[[], Any], **kw: Any) -> tuple:
    fast = _outcome(make, **kw)
    with _general_paths():
        general = _outcome(make, **kw)
    if fast[0] != "ok" or general[0] != "ok":
        assert fast == general
        return fast
    a, b = fast[1], general[1]
    assert_frame_equal(a.frame, b.frame)
    assert (a.freq, list(a.lengths.items()), a.tz, a.ds_kind, a.exog, a.month_end, a.report.notes) == (
        b.freq, list(b.lengths.items()), b.tz, b.ds_kind, b.exog, b.month_end, b.report.notes)
    assert_frame_equal(a.report.filled, b.report.filled)
    return fast


def _cols(ids: list, ds: list, y: list, **extra: list) -> dict:
    return {"unique_id": ids, "ds": ds, "y": y, **extra}


_N = 50
_HOURS = [(dt.datetime(2024, 1, 1) + dt.timedelta(hours=i)).isoformat() for i in range(_N)]
_YS = [float(i % 7) + 0.5 for i in range(_N)]
_FAST_CASES: dict[str, tuple[Callable[[], Any], dict]] = {
    # valid, fast
    "int-ds-float-y": (lambda: _cols(["H1"] * _N, list(range(1, _N + 1)), _YS), {"freq": 1}),
    "int-ds-int-y": (lambda: _cols(["H1"] * _N, list(range(1, _N + 1)), list(range(_N))), {"freq": 1}),
    "int-ds-mixed-int-float-y": (lambda: _cols(["H1"] * 4, [1, 2, 3, 4], [1, 2.5, 3, -0.0]), {"freq": 1}),
    "int-ds-step-3": (lambda: _cols(["a"] * 4, [0, 3, 6, 9], [1.0] * 4), {"freq": 3}),
    "iso-hourly": (lambda: _cols(["H1"] * _N, _HOURS, _YS), {"freq": "1h"}),
    "iso-hourly-inferred": (lambda: _cols(["H1"] * _N, _HOURS, _YS), {}),
    "iso-dates-daily": (lambda: _daily([1.0, 2, 3, 4]), {"freq": "1d"}),
    "iso-dates-inferred": (lambda: _daily([1.0, 2, 3, 4]), {}),
    "iso-minutes-format": (lambda: _cols(["a"] * 3, ["2024-01-01 00:00", "2024-01-01 00:15", "2024-01-01 00:30"],
                                         [1.0, 2, 3]), {"freq": "15m"}),
    "python-datetimes": (lambda: _cols(["a"] * 3, [dt.datetime(2024, 1, 1, h) for h in range(3)], [1.0, 2, 3]),
                         {"freq": "1h"}),
    "python-dates-weekly": (lambda: _cols(["a"] * 3, [dt.date(2024, 1, 1) + dt.timedelta(weeks=k) for k in range(3)],
                                          [1.0, 2, 3]), {"freq": "W"}),
    "two-series-in-order": (lambda: _cols(["a", "a", "b", "b", "b"], [1, 2, 5, 6, 7], [1.0] * 5), {"freq": 1}),
    "int-ids-and-exog": (lambda: _cols([1, 1, 2], [1, 2, 1], [1.0, 2, 3], x=[0.5, None, 1]), {"freq": 1}),
    "single-rows-per-series": (lambda: _cols(["a", "b"], [1, 1], [1.0, 2]), {"freq": 1}),
    "polars-input": (lambda: pl.DataFrame(_cols(["a"] * 3, _HOURS[:3], [1.0, 2, 3])), {"freq": "1h"}),
    "pandas-input": (lambda: pd.DataFrame(_cols(["a"] * 3, pd.date_range("2024-01-01", periods=3, freq="h"),
                                                [1.0, 2, 3])), {"freq": "1h"}),
    "records-input": (lambda: [{"unique_id": "a", "ds": i, "y": float(i)} for i in range(4)], {"freq": 1}),
    "int-ds-strings": (lambda: _cols(["a"] * 3, ["1", "2", "3"], [1.0, 2, 3]), {"freq": 1}),
    # valid, but not the fast path's to prove
    "unsorted": (lambda: _cols(["b", "a", "b", "a"], [2, 2, 1, 1], [1.0, 2, 3, 4]), {"freq": 1}),
    "unsorted-iso": (lambda: _cols(["a"] * 3, [_HOURS[2], _HOURS[0], _HOURS[1]], [1.0, 2, 3]), {"freq": "1h"}),
    "ids-out-of-order-but-contiguous": (lambda: _cols(["b", "b", "a", "a"], [1, 2, 1, 2], [1.0, 2, 3, 4]), {"freq": 1}),
    "aware-strings": (lambda: _cols(["a"] * 3, [f"2024-01-01T0{h}:00:00+01:00" for h in range(3)], [1.0, 2, 3]),
                      {"freq": "1h"}),
    "monthly-month-ends": (lambda: _cols(["a"] * 3, ["2024-01-31", "2024-02-29", "2024-03-31"], [1.0, 2, 3]),
                           {"freq": "1mo"}),
    "huge-int-y-is-a-float": (lambda: _cols(["a"] * 3, [1, 2, 3], [10**20, 1, 2]), {"freq": 1}),
    "nan-y-filled": (lambda: _cols(["a"] * 4, [1, 2, 3, 4], [1.0, float("nan"), None, 4]), {"freq": 1, "fill_missing": "zero"}),
    "gap-filled": (lambda: _cols(["a"] * 3, [1, 2, 4], [1.0, 2, 4]), {"freq": 1, "fill_missing": "interpolate",
                                                                        "fill_gaps": True}),
    # errors: same message
    "nan-y": (lambda: _cols(["a"] * 3, [1, 2, 3], [1.0, float("nan"), 3]), {"freq": 1}),
    "inf-y": (lambda: _cols(["a"] * 3, [1, 2, 3], [1.0, float("inf"), 3]), {"freq": 1}),
    "none-y": (lambda: _cols(["a"] * 3, [1, 2, 3], [1.0, None, 3]), {"freq": 1}),
    "all-none-y": (lambda: _cols(["a"] * 2, [1, 2], [None, None]), {"freq": 1}),
    "duplicates": (lambda: _cols(["a"] * 3, [1, 2, 2], [1.0, 2, 3]), {"freq": 1}),
    "duplicate-iso": (lambda: _cols(["a"] * 3, [_HOURS[0], _HOURS[1], _HOURS[1]], [1.0, 2, 3]), {"freq": "1h"}),
    "gap": (lambda: _cols(["a"] * 3, [1, 2, 4], [1.0, 2, 3]), {"freq": 1}),
    "gap-iso": (lambda: _cols(["a"] * 3, [_HOURS[0], _HOURS[1], _HOURS[3]], [1.0, 2, 3]), {"freq": "1h"}),
    "off-grid": (lambda: _cols(["a"] * 3, [0, 2, 3], [1.0, 2, 3]), {"freq": 2}),
    "oversized-grid": (lambda: _cols(["a"] * 3, [0, 1, 10**15], [1.0, 2, 3]), {"freq": 1}),
    "int64-wraparound": (lambda: _cols(["a"] * 2, [2**63 - 1, -(2**63)], [1.0, 2]), {"freq": 1}),
    "bool-in-y": (lambda: _cols(["a"] * 3, [1, 2, 3], [1.0, True, 3]), {"freq": 1}),
    "all-bool-y": (lambda: _cols(["a"] * 2, [1, 2], [True, False]), {"freq": 1}),
    "huge-int-ds": (lambda: _cols(["a"] * 3, [1, 2, 10**20], [1.0, 2, 3]), {"freq": 1}),
    "huge-int-ds-among-floats": (lambda: _cols(["a"] * 3, [1.0, 2.0, 2**63], [1.0, 2, 3]), {"freq": 1}),
    "int-beyond-float-y": (lambda: _cols(["a"] * 3, [1, 2, 3], [10**400, 1, 2]), {"freq": 1}),
    "mixed-int-str-ds": (lambda: _cols(["a"] * 3, [1, "2", 3], [1.0, 2, 3]), {"freq": 1}),
    "mixed-str-nan-ds": (lambda: _cols(["a"] * 3, [_HOURS[0], float("nan"), _HOURS[2]], [1.0, 2, 3]), {"freq": "1h"}),
    "string-y": (lambda: _cols(["a"] * 2, [1, 2], ["1", "2"]), {"freq": 1}),
    "none-ds": (lambda: _cols(["a"] * 2, [1, None], [1.0, 2]), {"freq": 1}),
    "none-id": (lambda: _cols(["a", None], [1, 2], [1.0, 2]), {"freq": 1}),
    "not-iso-ds": (lambda: _cols(["a"] * 2, ["2024-01-01", "01/02/2024"], [1.0, 2]), {"freq": "1d"}),
    "int-ds-with-offset-freq": (lambda: _cols(["a"] * 2, [1, 2], [1.0, 2]), {"freq": "1h"}),
    "timestamps-with-int-freq": (lambda: _cols(["a"] * 2, _HOURS[:2], [1.0, 2]), {"freq": 1}),
    "zero-offset-freq": (lambda: _cols(["a", "b"], _HOURS[:2], [1.0, 2]), {"freq": "0h"}),
    "single-rows-inferred": (lambda: _cols(["a", "b"], [1, 1], [1.0, 2]), {}),
    # issue 13: out-of-order rows are sorted on one integer key and their grid proven from one scan
    "time-major": (lambda: _cols(["b", "a"] * 3, [1, 1, 2, 2, 3, 3], [1.0] * 6), {}),
    "time-major-iso": (lambda: _cols(["b", "a"] * 3, [_HOURS[0]] * 2 + [_HOURS[1]] * 2 + [_HOURS[2]] * 2,
                                     [1.0] * 6), {}),
    "numeric-ids-contiguous": (lambda: _cols(["2", "2", "10", "10"], [1, 2, 1, 2], [1.0, 2, 3, 4]), {}),
    "unsorted-duplicates": (lambda: _cols(["b", "a", "b", "a", "a"], [2, 1, 1, 2, 1], [1.0] * 5), {"freq": 1}),
    "unsorted-gap": (lambda: _cols(["a", "b", "a", "b"], [4, 1, 1, 2], [1.0] * 4), {"freq": 1}),
    "unsorted-nan-filled": (lambda: _cols(["b", "a", "a"], [1, 2, 1], [None, 1.0, 2.0]), {"fill_missing": "zero"}),
    "unsorted-wide-int-span": (lambda: _cols(["b", "a", "a"], [2**62, -(2**62), -(2**62) + 1], [1.0] * 3),
                               {"freq": 1}),
    "aware-hourly-across-dst": (lambda: pd.DataFrame(_cols(["a"] * 6, pd.date_range(
        "2024-03-31", periods=6, freq="h", tz="Europe/Paris"), [1.0] * 6)), {"freq": "H"}),
    "aware-daily-across-dst": (lambda: pd.DataFrame(_cols(["a"] * 4, pd.date_range(
        "2024-03-29", periods=4, freq="D", tz="Europe/Paris"), [1.0] * 4)), {}),
    "business-days": (lambda: _cols(["a"] * 7, [f"2024-01-{d:02d}" for d in (4, 5, 8, 9, 10, 11, 12)], [1.0] * 7), {}),
    "business-days-given": (lambda: _cols(["a"] * 3, ["2024-01-04", "2024-01-05", "2024-01-08"], [1.0] * 3),
                            {"freq": "B"}),
    "business-days-two": (lambda: _cols(["a"] * 3, ["2024-01-03", "2024-01-05", "2024-01-09"], [1.0] * 3),
                          {"freq": "2B"}),
    "business-days-gap": (lambda: _cols(["a"] * 3, ["2024-01-04", "2024-01-05", "2024-01-09"], [1.0] * 3),
                          {"freq": "B"}),
    "business-days-weekend-row": (lambda: _cols(["a"] * 3, ["2024-01-05", "2024-01-06", "2024-01-08"], [1.0] * 3),
                                  {"freq": "B"}),
    "business-days-gap-filled": (lambda: _cols(["a"] * 3, ["2024-01-04", "2024-01-05", "2024-01-09"], [1.0, 2, 4]),
                                 {"freq": "B", "fill_gaps": True, "fill_missing": "interpolate"}),
    "gaps-two-series-filled": (lambda: _cols(["b", "a", "a", "b", "a"], [1, 1, 4, 4, 6], [1.0, 2, 3, 4, 5]),
                               {"freq": 1, "fill_gaps": True, "fill_missing": "interpolate"}),
    "step-3-gaps": (lambda: _cols(["a"] * 3, [0, 3, 12], [1.0] * 3), {"freq": 3}),
    "aware-hourly-gap-filled": (lambda: pd.DataFrame(_cols(["a"] * 5, pd.date_range(
        "2024-03-31", periods=6, freq="h", tz="Europe/Paris").delete(2), [1.0] * 5)),
                                {"freq": "H", "fill_gaps": True, "fill_missing": "zero"}),
    "business-days-unsorted-nan": (lambda: _cols(["a"] * 3, ["2024-01-08", "2024-01-04", "2024-01-05"],
                                                 [1.0, None, 2]), {"freq": "B", "fill_missing": "forward"}),
}


@pytest.mark.parametrize("case", list(_FAST_CASES))
def test_fast_paths_give_what_the_general_code_gives(case: str) -> None:
    make, kw = _FAST_CASES[case]
    _assert_paths_agree(make, **kw)


def test_fast_path_cases_cover_results_and_errors() -> None:
    outcomes = {case: _outcome(make, **kw)[0] for case, (make, kw) in _FAST_CASES.items()}
    assert outcomes["int-ds-float-y"] == outcomes["iso-hourly"] == outcomes["unsorted"] == "ok"
    assert outcomes["nan-y"] == outcomes["duplicates"] == outcomes["gap"] == outcomes["bool-in-y"] == "error"
    assert outcomes["huge-int-ds"] == outcomes["mixed-int-str-ds"] == outcomes["int-beyond-float-y"] == "error"
    assert outcomes["time-major"] == outcomes["business-days"] == outcomes["business-days-gap-filled"] == "ok"
    assert outcomes["unsorted-duplicates"] == outcomes["unsorted-gap"] == outcomes["business-days-gap"] == "error"
    assert outcomes["business-days-weekend-row"] == "error"


@pytest.mark.parametrize("case", ["int-ds-float-y", "int-ds-int-y", "iso-hourly", "iso-dates-daily", "two-series-in-order",
                                  "python-datetimes", "single-rows-per-series", "unsorted", "unsorted-iso", "time-major",
                                  "numeric-ids-contiguous", "aware-hourly-across-dst", "business-days",
                                  "business-days-given", "business-days-two"])
def test_the_common_request_skips_the_general_checks(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Guard that the fast path is really taken (so the equivalence tests above test something)."""
    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("general path taken")

    for name in ("find_duplicates", "find_oversized_grids", "find_gaps", "find_invalid_y", "_check_grid_and_y"):
        monkeypatch.setattr(data_module, name, refuse)
    make, kw = _FAST_CASES[case]
    panel = validate_panel(make(), **kw)
    assert panel.report.filled.height == 0


@pytest.mark.parametrize("values", [
    [1, 2, 3], [1, None, 3], [-(2**63), 2**63 - 1], [2**63], [-(2**63) - 1], [10**400], [1.5, 2**63], [1, 2.5],
    [0.5, float("nan"), None], [float("nan")], [float("nan"), None], [None], [], ["a", None, "b"], ["a", float("nan")],
    [True, 1], [True, False], [1, "2"], [np.float64(1.5), 2.0], [np.int64(1), 2], [dt.date(2024, 1, 1), None],
    [float("inf"), -0.0],
], ids=repr)
@pytest.mark.parametrize("name", ["ds", "y", "x"])
def test_fast_columns_are_the_general_columns(values: list, name: str) -> None:
    def build() -> tuple:
        try:
            return ("ok", data_module._series_from_python(name, list(values), "data"))
        except InvalidInputError as exc:
            return ("error", exc.message, exc.field)

    fast = build()
    with _general_paths():
        general = build()
    assert fast[0] == general[0]
    if fast[0] == "ok":
        assert_series_equal(fast[1], general[1])
    else:
        assert fast == general


@st.composite
def damaged_panels(draw):
    """panels(), sometimes with a row dropped (gap), duplicated, or a y made NaN/None, in order or not."""
    rows, freq = draw(panels())
    if draw(st.booleans()):
        rows = sorted(rows, key=lambda r: (r[0], r[1]))
    damage = draw(st.sampled_from(["none", "none", "drop", "duplicate", "nan", "null"]))
    i = draw(st.integers(0, len(rows) - 1))
    if damage == "drop" and len(rows) > 2:
        rows = rows[:i] + rows[i + 1:]
    elif damage == "duplicate":
        rows = [*rows[: i + 1], rows[i], *rows[i + 1:]]
    elif damage in ("nan", "null"):
        rows[i] = (rows[i][0], rows[i][1], float("nan") if damage == "nan" else None)
    return rows, freq


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_panels(), st.sampled_from(["dict", "polars", "records"]), st.booleans(), st.booleans())
def test_fast_paths_agree_on_random_panels(drawn, kind: str, int_y: bool, infer: bool) -> None:
    rows, freq = drawn
    cols = {"unique_id": [r[0] for r in rows], "ds": [r[1] for r in rows],
            "y": [round(r[2]) if int_y and r[2] is not None and math.isfinite(r[2]) else r[2] for r in rows]}

    def make() -> Any:
        return {"dict": lambda: {k: list(v) for k, v in cols.items()}, "polars": lambda: pl.DataFrame(cols, strict=False),
                "records": lambda: [dict(zip(cols, r, strict=True)) for r in zip(*cols.values(), strict=True)]}[kind]()

    _assert_paths_agree(make, freq=None if infer else freq)
