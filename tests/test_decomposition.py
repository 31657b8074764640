"""The Naive2 machinery (R's acf/decompose and the M4 seasonality test) on small cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecasting.decomposition import (
    acf,
    naive2_forecast,
    naive2_intervals,
    r_default_max_lag,
    seasonal_indices,
    seasonality_test,
)
from forecasting.errors import InsufficientHistoryError, InvalidInputError, InvalidParameterError


def test_acf_by_hand() -> None:
    # y = 1..4, mean 2.5, d = [-1.5, -0.5, 0.5, 1.5], sum d^2 = 5
    # lag 1: (0.75 - 0.25 + 0.75) / 5 = 0.25; lag 2: (-0.75 - 0.75) / 5 = -0.3
    assert acf([1.0, 2.0, 3.0, 4.0], 2) == pytest.approx([1.0, 0.25, -0.3])


def test_r_default_max_lag() -> None:
    # R: floor(10 * log10(n)), capped at n - 1
    assert r_default_max_lag(700) == 28
    assert r_default_max_lag(251) == 23
    assert r_default_max_lag(252) == 24
    assert r_default_max_lag(5) == 4


def _seasonal(n: int, m: int, amp: float = 0.3) -> np.ndarray:
    t = np.arange(n)
    return 100.0 * (1 + amp * np.sin(2 * np.pi * t / m)) + 0.01 * t


def test_seasonality_test_detects_cycle() -> None:
    assert seasonality_test(_seasonal(300, 24), 24)
    assert seasonality_test(_seasonal(60, 12), 12)


def test_seasonality_test_rules() -> None:
    assert not seasonality_test(_seasonal(300, 24), 1)  # m = 1: never seasonal
    assert not seasonality_test(_seasonal(71, 24), 24)  # n < 3m
    # n = 200 >= 3m but R's default lag.max is floor(10*log10(200)) = 23 < 24, so xacf[24]
    # is NA in R and the test is FALSE, however strong the cycle.
    assert not seasonality_test(_seasonal(200, 24), 24)
    assert not seasonality_test(np.full(100, 5.0), 4)  # constant: acf undefined
    rng = np.random.default_rng(0)
    assert not seasonality_test(100 + rng.normal(size=400), 24)


def test_seasonal_indices_by_hand() -> None:
    # m = 2, filter (0.25, 0.5, 0.25): the trend is 2 wherever defined; ratios 0.5/1.5
    assert seasonal_indices([1.0, 3.0, 1.0, 3.0, 1.0, 3.0], 2) == pytest.approx([0.5, 1.5] * 3)
    # odd m = 3, filter (1/3, 1/3, 1/3); series 1,2,3 repeated -> trend 2 inside
    # ratios by position: 0 -> 0.5, 1 -> 1.0, 2 -> 1.5; mean 1 already
    assert seasonal_indices([1.0, 2.0, 3.0] * 3, 3) == pytest.approx([0.5, 1.0, 1.5] * 3)


def test_seasonal_indices_incomplete_last_cycle_and_normalisation() -> None:
    y = _seasonal(101, 12)
    s = seasonal_indices(y, 12)
    assert s.shape == (101,)
    assert s[:12].mean() == pytest.approx(1.0)
    assert s[12:24] == pytest.approx(s[:12])


def test_seasonal_indices_rejects() -> None:
    with pytest.raises(InsufficientHistoryError):
        seasonal_indices([1.0, 2.0, 3.0], 2)
    with pytest.raises(InvalidInputError, match="positive"):
        seasonal_indices([1.0, 0.0, 1.0, 2.0], 2)
    with pytest.raises(InvalidParameterError):
        seasonal_indices([1.0, 2.0, 3.0, 4.0], 1)


def test_naive2_non_seasonal_is_naive() -> None:
    mean, seasonal_out, adjusted = naive2_forecast([1.0, 5.0, 3.0], 4, 12)
    assert mean.tolist() == [3.0] * 4
    assert seasonal_out.tolist() == [1.0] * 4
    assert adjusted.tolist() == [1.0, 5.0, 3.0]


def test_naive2_seasonal_reseasonalises() -> None:
    y = _seasonal(300, 24)
    fc = naive2_forecast(y, 30, 24)
    s = seasonal_indices(y, 24)
    assert fc.seasonal_out == pytest.approx(np.resize(s[-24:], 30))
    assert fc.mean == pytest.approx(y[-1] / s[-1] * fc.seasonal_out)
    assert fc.adjusted == pytest.approx(y / s)


def test_naive2_intervals_by_hand() -> None:
    # non-seasonal: adjusted = y; diffs 1, -2, 2 -> sigma = sqrt((1 + 4 + 4)/3) = sqrt(3)
    y = [1.0, 2.0, 0.0, 2.0]
    out = naive2_intervals(y, 2, 1, level=[95])
    lo, hi = out[95]
    z = 1.959963984540054
    assert hi - 2.0 == pytest.approx([z * math.sqrt(3), z * math.sqrt(3) * math.sqrt(2)])
    assert 2.0 - lo == pytest.approx(hi - 2.0)
    with pytest.raises(InvalidParameterError):
        naive2_intervals(y, 2, 1, level=[100])


def test_naive2_rejects_bad_parameters() -> None:
    with pytest.raises(InvalidParameterError, match="`h`"):
        naive2_forecast([1.0, 2.0], 0, 1)
    with pytest.raises(InvalidInputError):
        naive2_forecast([1.0, float("nan")], 2, 1)
