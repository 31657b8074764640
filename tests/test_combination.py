"""The combination layer shared by `ensemble` and `auto` (forecasting.models.combination) and the predict
preamble of the models refitted from each request's history (BaseForecaster._refit_predict/_prepare_local)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest

from forecasting.errors import CapabilityError, InvalidParameterError, NotFittedError
from forecasting.models.base import Capabilities
from forecasting.models.combination import (
    finish_bands,
    median,
    member_forecasts,
    member_values,
    weight_matrix,
    weighted_mean,
)
from forecasting.models.registry import make_model


# ----------------------------------------------------------------------------- the weighted mix
def test_weighted_mean_renormalises_over_the_members_that_have_a_value() -> None:
    W = np.array([[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]])
    out = weighted_mean([np.array([1.0, 2.0]), np.array([3.0, np.nan]), None], W)
    # row 0: (0.5*1 + 0.25*3) / 0.75 = 5/3 (the member without values is left out)
    # row 1: only the first member has a value: 2
    np.testing.assert_allclose(out, [5.0 / 3.0, 2.0], rtol=0, atol=1e-15)


def test_weighted_mean_with_one_weight_vector_for_every_row() -> None:
    out = weighted_mean([np.array([1.0, 10.0]), np.array([4.0, 20.0])], np.array([1.0, 3.0]))
    np.testing.assert_allclose(out, [(1 + 12) / 4, (10 + 60) / 4], rtol=0, atol=1e-15)  # 3.25, 17.5


def test_weighted_mean_is_nan_where_no_weighted_member_has_a_value() -> None:
    out = weighted_mean([np.array([np.nan, 1.0]), np.array([5.0, 5.0])], np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert np.isnan(out[0]) and out[1] == 1.0  # row 0: the only value has weight 0


def test_median_of_three_and_with_a_missing_member() -> None:
    out = median([np.array([1.0, 1.0, np.nan]), np.array([9.0, np.nan, np.nan]), np.array([4.0, 4.0, np.nan])])
    assert out[0] == 4.0  # median of 1, 9, 4
    assert out[1] == 2.5  # median of 1, 4 (the missing value left out)
    assert np.isnan(out[2])  # no member has a value
    np.testing.assert_array_equal(median([np.array([2.0, 8.0]), None, np.array([6.0, 0.0])]), [4.0, 4.0])


# ----------------------------------------------------------------------------- weights per row
def test_weight_matrix_takes_a_series_own_weights_else_the_datasets() -> None:
    ids = np.array(["a", "a", "b", "c"])
    W = weight_matrix(ids, ["m1", "m2"], {"m1": 0.75, "m2": 0.25},
                      {"a": {"m2": 2.0, "m1": 2.0}, "b": {"other": 1.0}})
    np.testing.assert_array_equal(W, [[0.5, 0.5], [0.5, 0.5],  # a: its own, renormalised
                                      [0.75, 0.25],  # b: its own weights are on no listed member
                                      [0.75, 0.25]])  # c: none of its own
    np.testing.assert_array_equal(weight_matrix(ids[:2], ["m1", "m2"], {}), [[0.5, 0.5], [0.5, 0.5]])


# ----------------------------------------------------------------------------- bands
def test_finish_bands_holds_the_point_and_nests_the_levels() -> None:
    point = np.array([10.0, 10.0])
    cols = finish_bands(point, {95: (np.array([9.5, 8.0]), np.array([11.0, 13.0])),
                                80: (np.array([9.0, 11.0]), np.array([12.0, 12.5]))}, "E")
    # row 0: 80 = [9, 12]; 95 = [9.5, 11] crosses it -> [min(9.5, 9), max(11, 12)] = [9, 12]
    # row 1: 80's lo 11 > point -> 10; 95 = [8, 13] already holds it
    np.testing.assert_array_equal(cols["E-lo-80"], [9.0, 10.0])
    np.testing.assert_array_equal(cols["E-hi-80"], [12.0, 12.5])
    np.testing.assert_array_equal(cols["E-lo-95"], [9.0, 8.0])
    np.testing.assert_array_equal(cols["E-hi-95"], [12.0, 13.0])


# ----------------------------------------------------------------------------- the members' forecasts
class _Member:
    """A fitted member answering fixed frames (point-only when it has no bands)."""

    name = "fake"
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, alias: str, rows: list[tuple[str, int, float]], *, bands: bool) -> None:
        self.alias, self.rows, self.bands = alias, rows, bands

    def predict(self, h: int, *, level: Any = ()) -> pl.DataFrame:
        if level and not self.bands:
            msg = "no bands"
            raise CapabilityError(msg, field="level")
        frame = pl.DataFrame(self.rows, schema=["unique_id", "ds", self.alias], orient="row")
        for lev in level:
            frame = frame.with_columns((pl.col(self.alias) - lev).alias(f"{self.alias}-lo-{lev}"),
                                       (pl.col(self.alias) + lev).alias(f"{self.alias}-hi-{lev}"))
        return frame


def test_member_forecasts_align_on_the_keys_and_keep_point_only_members() -> None:
    first = _Member("A", [("s2", 1, 20.0), ("s1", 1, 10.0), ("s1", 2, 11.0)], bands=True)
    # another order, and no row for (s1, 2) (as around a fallback)
    second = _Member("B", [("s1", 1, 12.0), ("s2", 1, 24.0)], bands=False)
    keys, outs = member_forecasts([first, second], 2, (80,), name="ensemble")
    assert keys.rows() == [("s1", 1), ("s1", 2), ("s2", 1)]
    values = member_values(outs, [first, second])
    np.testing.assert_array_equal(values[0], [10.0, 11.0, 20.0])
    np.testing.assert_array_equal(values[1], [12.0, np.nan, 24.0])
    lows = member_values(outs, [first, second], "-lo-80")
    assert lows[1] is None  # point only: its CapabilityError for level is not the combination's
    np.testing.assert_array_equal(lows[0], [-70.0, -69.0, -60.0])
    np.testing.assert_array_equal(weighted_mean(values, np.array([1.0, 1.0])), [11.0, 11.0, 22.0])


def test_member_forecasts_refuse_level_when_no_member_gives_bands() -> None:
    members = [_Member("A", [("s1", 1, 1.0)], bands=False), _Member("B", [("s1", 1, 2.0)], bands=False)]
    with pytest.raises(CapabilityError) as err:
        member_forecasts(members, 1, (95,), name="ensemble")
    assert err.value.message == "model 'ensemble': none of its members gives prediction intervals here; ask without level"
    assert err.value.field == "level"
    keys, _ = member_forecasts(members, 1, (), name="ensemble")  # without level: the points
    assert keys.height == 1


# ----------------------------------------------------------------------------- the preamble
def _panel() -> pl.DataFrame:
    return pl.DataFrame({"unique_id": ["a"] * 8, "ds": list(range(8)), "y": [1.0, 2, 3, 4, 5, 6, 7, 8]})


ENSEMBLE = {"name": "ensemble", "params": {"members": ["naive", "seasonal_naive"], "season_length": 4}}


@pytest.mark.parametrize("spec", ["naive", ENSEMBLE])
def test_the_preamble_refuses_alike(spec: Any) -> None:
    model = make_model(spec, freq=1)
    with pytest.raises(NotFittedError):
        model.predict(2)
    model.fit(_panel())
    name = model.name
    with pytest.raises(CapabilityError) as err:
        model.predict(2, X_future=pl.DataFrame({"unique_id": ["a"], "ds": [8]}))
    assert err.value.message == f"model '{name}' does not use exogenous columns, so X_future is not accepted"
    with pytest.raises(InvalidParameterError):
        model.predict(0)
    with pytest.raises(InvalidParameterError):
        model.predict(2, level=[100])


def test_history_refits_the_ensemble_as_a_fit_would() -> None:
    spec = ENSEMBLE
    longer = pl.concat([_panel(), pl.DataFrame({"unique_id": ["a"], "ds": [8], "y": [20.0]})])
    via_history = make_model(spec, freq=1).fit(_panel()).predict(2, history=longer, level=[80])
    direct = make_model(spec, freq=1).fit(longer).predict(2, level=[80])
    assert via_history.equals(direct)
    # the median of two members is their mean: naive 20, 20; seasonal naive (4) 6, 7
    np.testing.assert_array_equal(direct["Ensemble"].to_numpy(), [13.0, 13.5])
