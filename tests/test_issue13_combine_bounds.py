"""``auto`` calibrates the band that ``predict`` gives: its validation bounds are mixed by the one weighted mean.

``AutoForecaster._combine_bounds`` mixes the candidates' validation-window bounds with
:func:`forecasting.models.combination.weighted_mean` (the rule ``predict`` mixes the members' bounds with), so
the band the conformal factor is learnt on is the band it widens.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from forecasting.data import validate_panel
from forecasting.models.auto import AutoForecaster, Candidate
from forecasting.models.registry import ModelSpec, make_model


def _auto(weights: dict[str, float]) -> AutoForecaster:
    model = make_model("auto")
    assert isinstance(model, AutoForecaster)
    model.weights_ = weights
    return model


def _candidate(label: str, windows: list[tuple[list[float], list[float]]], lev: float = 80.0) -> Candidate:
    c = Candidate(label=label, spec=ModelSpec(name="naive"))
    c.bounds[lev] = [(np.array(lo), np.array(hi)) for lo, hi in windows]
    return c


def test_bounds_are_the_weighted_mean_over_every_window() -> None:
    a = _candidate("a", [([1.0, 2.0], [3.0, 4.0]), ([0.0], [8.0])])
    b = _candidate("b", [([5.0, 6.0], [7.0, 8.0]), ([4.0], [4.0])])
    lo, hi = _auto({"a": 3.0, "b": 1.0})._combine_bounds([a, b], 80.0)
    # (3 * a + 1 * b) / 4, windows concatenated in order
    assert lo is not None and hi is not None
    assert lo.tolist() == [2.0, 3.0, 1.0]
    assert hi.tolist() == [4.0, 5.0, 7.0]


def test_members_without_weight_or_bounds_are_left_out() -> None:
    a = _candidate("a", [([1.0], [3.0])])
    zero = _candidate("zero", [([100.0], [200.0])])
    other_level = _candidate("other", [([50.0], [60.0])], lev=95.0)
    lo, hi = _auto({"a": 0.5, "zero": 0.0, "other": 0.5})._combine_bounds([a, zero, other_level], 80.0)
    assert lo is not None and hi is not None
    assert (lo.tolist(), hi.tolist()) == ([1.0], [3.0])
    assert _auto({"a": 1.0})._combine_bounds([other_level], 80.0) == (None, None)


def test_a_missing_bound_in_a_row_is_taken_from_the_other_members_as_predict_does() -> None:
    a = _candidate("a", [([1.0, np.nan], [3.0, np.nan])])
    b = _candidate("b", [([5.0, 6.0], [7.0, 8.0])])
    lo, hi = _auto({"a": 1.0, "b": 1.0})._combine_bounds([a, b], 80.0)
    assert lo is not None and hi is not None
    assert lo.tolist() == [3.0, 6.0]
    assert hi.tolist() == [5.0, 8.0]


def _window(alias: str, values: list[float], band: float | None) -> pl.DataFrame:
    frame = pl.DataFrame({"unique_id": ["a"] * len(values), "ds": list(range(len(values))), alias: values})
    if band is None:
        return frame
    return frame.with_columns((pl.col(alias) - band).alias(f"{alias}-lo-80"), (pl.col(alias) + band).alias(f"{alias}-hi-80"))


def test_a_window_without_bounds_gets_nan_bounds_so_the_windows_line_up() -> None:
    c = Candidate(label="xgboost", spec=ModelSpec(name="xgboost"))
    for values, band in (([1.0, 2.0], None), ([3.0, 4.0], 1.0), ([5.0], None), ([6.0], 2.0)):
        AutoForecaster._collect(c, "XGB", _window("XGB", values, band), (80,))
    lo, hi = (np.concatenate([b[side] for b in c.bounds[80.0]]) for side in (0, 1))
    assert np.concatenate(c.forecasts).tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    np.testing.assert_array_equal(lo, [np.nan, np.nan, 2.0, 3.0, np.nan, 4.0])
    np.testing.assert_array_equal(hi, [np.nan, np.nan, 4.0, 5.0, np.nan, 8.0])
    point_only = Candidate(label="naive", spec=ModelSpec(name="naive"))
    AutoForecaster._collect(point_only, "Naive", _window("Naive", [1.0], None), (80,))
    assert point_only.bounds == {}


def test_auto_fits_when_a_global_candidate_has_bands_in_only_some_validation_windows() -> None:
    # 40 series of 26 points, h=6, 3 windows: xgboost is too short to calibrate its bands on the earliest
    # window only; this used to stop the fit with "operands could not be broadcast together"
    rng = np.random.default_rng(0)
    n, t = 26, np.arange(26)
    frame = pl.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(40)], n), "ds": np.tile(t, 40),
                          "y": np.concatenate([100 + np.cumsum(rng.normal(0, 1, n)) + 10 * np.sin(t * np.pi / 2)
                                               for _ in range(40)])})
    model = make_model({"name": "auto", "params": {"candidates": ["naive", "xgboost"], "horizon": 6, "level": [80],
                                                   "time_limit": None, "season_length": 4}}, freq=1)
    model.fit(validate_panel(frame, freq=1))
    assert isinstance(model, AutoForecaster)
    fc = model.predict(6, level=[80])
    assert fc.height == 240 and fc.select(pl.all().exclude("unique_id").is_finite().all()).row(0) == (True,) * 4
    assert (fc["Auto-lo-80"] <= fc["Auto"]).all() and (fc["Auto"] <= fc["Auto-hi-80"]).all()
