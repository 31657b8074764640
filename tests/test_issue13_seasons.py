"""Sub-hourly and multi-hour data get the day and the week as seasons, as hourly data does (issue 13: multiple
seasonalities where the history allows; found by the T2 tester: 30-minute data had only [48], so MSTL and the
weekly tree features never joined ``auto``)."""

from __future__ import annotations

import pytest

from forecasting.models.registry import default_season_length, resolve_spec


@pytest.mark.parametrize(("freq", "single", "several"), [
    ("1h", 24, [24, 168]), ("2h", 12, [12, 84]), ("3h", 8, [8, 56]), ("4h", 6, [6, 42]),
    ("30m", 48, [48, 336]), ("15m", 96, [96, 672]), ("5m", 288, [288, 2016]), ("1m", 1440, [1440, 10080]),
    ("1d", 7, [7, 365]),
])
def test_intraday_steps_that_divide_a_day_get_the_day_and_the_week(freq: str, single: int, several: list[int]) -> None:
    assert default_season_length(freq) == single
    assert default_season_length(freq, multiple=True) == several


@pytest.mark.parametrize("freq", ["5h", "7m", "2d"])
def test_steps_that_do_not_divide_a_day_have_no_conventional_season(freq: str) -> None:
    assert default_season_length(freq) == 1
    assert default_season_length(freq, multiple=True) == 1


def test_mstl_on_half_hourly_data_gets_both_seasons_with_a_note() -> None:
    spec, notes = resolve_spec("mstl", freq="30m")
    assert spec.params["season_length"] == [48, 336]
    assert any("30m" in n for n in notes)


def test_derived_seasons_the_data_cannot_show_are_left_out_with_a_note() -> None:
    # 60 daily points: [7, 365] derived from the frequency; 365 needs 730 observations (found by the T1 tester:
    # an explicit mstl on 60 daily points was refused as needing 731)
    spec, notes = resolve_spec("mstl", freq="1d", lengths={"a": 60, "b": 61, "c": 59})
    assert spec.params["season_length"] == 7
    assert "season_length 365 left out: the median series has 60 observations, fewer than two seasons" in notes
    long_spec, long_notes = resolve_spec("mstl", freq="1d", lengths={"a": 800})
    assert long_spec.params["season_length"] == [7, 365]
    assert not any("left out" in n for n in long_notes)


def test_an_explicit_season_list_is_kept_for_its_own_refusal() -> None:
    spec, notes = resolve_spec({"name": "mstl", "params": {"season_length": [7, 365]}}, freq="1d", lengths={"a": 60})
    assert spec.params["season_length"] == [7, 365]
    assert not any("left out" in n for n in notes)


def test_mstl_forecasts_sixty_daily_points_through_the_library() -> None:
    import numpy as np
    import pandas as pd

    import forecasting as fc

    ds = pd.date_range("2024-01-01", periods=60, freq="D")
    y = 10 + np.tile([0.0, 1, 2, 3, 4, 8, 9], 9)[:60]
    out = fc.forecast(pd.DataFrame({"unique_id": "a", "ds": ds, "y": y}), h=7, model="mstl")
    assert len(out.forecasts) == 7 and np.isfinite(out.forecasts["MSTL"].to_numpy()).all()
    assert any("season_length 365 left out" in n for n in out.notes)
