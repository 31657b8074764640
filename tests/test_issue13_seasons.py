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
