"""``auto`` calibrates the band that ``predict`` gives: its validation bounds are mixed by the one weighted mean.

``AutoForecaster._combine_bounds`` mixes the candidates' validation-window bounds with
:func:`forecasting.models.combination.weighted_mean` (the rule ``predict`` mixes the members' bounds with), so
the band the conformal factor is learnt on is the band it widens.
"""

from __future__ import annotations

import numpy as np

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
