"""Rolling-origin cross-validation: windows, cutoffs, values, and rejections."""

from __future__ import annotations

import polars as pl
import pytest

from forecasting.backtest import cross_validation
from forecasting.datasets import load_air_passengers
from forecasting.errors import InsufficientHistoryError, InvalidParameterError

SNAIVE12 = {"name": "seasonal_naive", "params": {"season_length": 12}}


def test_windows_match_statsforecast_cross_validation():
    """Same cutoffs and forecasts as statsforecast's own cross_validation on AirPassengers."""
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    df = load_air_passengers()
    ours = cross_validation(df, model=SNAIVE12, h=3, n_windows=3, step_size=2)
    theirs = StatsForecast(models=[SeasonalNaive(season_length=12)], freq="MS").cross_validation(
        df=df.to_pandas(), h=3, n_windows=3, step_size=2)
    theirs = pl.from_pandas(theirs).with_columns(pl.col("ds", "cutoff").cast(pl.Datetime("us")))
    assert ours.select("ds", "cutoff", "y", "SeasonalNaive").equals(theirs.select("ds", "cutoff", "y", "SeasonalNaive"))


def test_hand_computed_window_values():
    """Seasonal naive from cutoff 1960-09: Oct..Dec 1960 forecast by Oct..Dec 1959 (407, 362, 405)."""
    cv = cross_validation(load_air_passengers(), model=SNAIVE12, h=3, n_windows=1)
    assert cv["cutoff"].unique().to_list()[0].isoformat() == "1960-09-01T00:00:00"
    assert cv["SeasonalNaive"].to_list() == [407.0, 362.0, 405.0]  # Oct..Dec 1959
    assert cv["y"].to_list() == [461.0, 390.0, 432.0]  # Oct..Dec 1960


def test_default_step_is_h_and_levels_are_returned():
    cv = cross_validation(load_air_passengers(), model=SNAIVE12, h=4, n_windows=2, level=[90])
    assert cv.height == 8 and cv["cutoff"].n_unique() == 2
    assert (cv["SeasonalNaive-lo-90"] <= cv["SeasonalNaive"]).all()
    assert (cv["SeasonalNaive"] <= cv["SeasonalNaive-hi-90"]).all()


def test_integer_ds_panel():
    df = pl.DataFrame({"unique_id": ["a"] * 10, "ds": list(range(1, 11)), "y": [float(i) for i in range(10)]})
    cv = cross_validation(df, model="naive", h=2, n_windows=2, step_size=1)
    assert cv["cutoff"].to_list() == [7, 7, 8, 8]
    assert cv["Naive"].to_list() == [6.0, 6.0, 7.0, 7.0]


def test_series_too_short_for_the_windows_names_series_and_lengths():
    df = pl.DataFrame({"unique_id": ["long"] * 40 + ["short"] * 15, "ds": list(range(40)) + list(range(15)),
                       "y": [1.0 + (i % 12) for i in range(55)]})
    with pytest.raises(InsufficientHistoryError) as err:
        cross_validation(df, model=SNAIVE12, h=3, n_windows=2)
    msg = str(err.value)
    assert "series 'short': 15 observations" in msg and "needs at least 19" in msg and "'long'" not in msg


@pytest.mark.parametrize(("kwargs", "field"), [({"n_windows": 0}, "n_windows"), ({"step_size": 0}, "step_size"),
                                                ({"h": 0}, "h")])
def test_bad_window_parameters(kwargs, field):
    params = {"h": 3, "n_windows": 1} | kwargs
    with pytest.raises(InvalidParameterError) as err:
        cross_validation(load_air_passengers(), model="naive", **params)
    assert err.value.field == field
