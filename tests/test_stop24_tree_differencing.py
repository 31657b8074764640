"""Stop 24: a tree model's differencing is tested on the series it keeps, and its note is said only when used.

The recent feature set differences ``y`` as a unit-root test says (``features.choose_differences``). It used to
test every series of the panel, the series the fallback then takes included, and to keep the note of a test whose
recent set the seasonal set replaced once the short series were left out: so the inline door (fitted with the
short series) and a saved model (fitted without them, ``service.training.fit_for_saving``) could difference
differently and did not say the same notes (``tests/test_every_door.py`` pins the notes through every door).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from forecasting.data import validate_panel
from forecasting.features import choose_differences
from forecasting.models.registry import make_model

SPEC = {"name": "xgboost", "params": {"n_estimators": 20, "max_depth": 3, "season_length": 52, "conformal_windows": 0}}
KEPT = [f"s{i}" for i in range(10)]


def _panel() -> pl.DataFrame:
    """Ten series of 400 weeks, five random walks and five white noises, and one white noise of 100 weeks: shorter
    than the features' lookback (lags up to 156), longer than the 48 points the unit-root test is given."""
    rng = np.random.default_rng(0)
    frames = [pl.DataFrame({"unique_id": u, "ds": np.arange(1, 401),
                            "y": 100 + (np.cumsum(rng.normal(0, 1, 400)) if i % 2 else rng.normal(0, 1, 400))})
              for i, u in enumerate(KEPT)]
    frames.append(pl.DataFrame({"unique_id": "short", "ds": np.arange(1, 101), "y": 100 + rng.normal(0, 1, 100)}))
    return pl.concat(frames)


def test_the_differencing_is_tested_on_the_series_kept() -> None:
    panel = validate_panel(_panel())
    # the short white noise tips the panel's share below one half: tested with it, y would stay in levels
    assert choose_differences(panel)[0] == []
    kept_note = ("differences [1]: the KPSS unit-root test (as statsforecast's ndiffs) finds 5 of 10 series needing a "
                 "difference (50%; y is differenced from 50%)")
    assert choose_differences(panel, among=KEPT) == ([1], kept_note)

    inline = make_model({**SPEC, "fallback": "naive"}, freq=panel.freq).fit(panel)  # as POST /v1/forecast
    assert [f.unique_id for f in inline.fallbacks_] == ["short"]
    saved = make_model(SPEC, freq=panel.freq).fit(panel.subset(KEPT))  # as fit_for_saving, without the short series
    assert inline.pipeline_.spec == saved.pipeline_.spec
    assert inline.pipeline_.spec.differences == [1] and inline.pipeline_.min_length > 100
    assert inline.notes_ == saved.notes_ and inline.notes_[0] == kept_note
    a, b = inline.predict(6), saved.predict(6)
    np.testing.assert_allclose(a.filter(pl.col("unique_id") != "short")["XGBoost"].to_numpy(), b["XGBoost"].to_numpy(),
                               rtol=1e-6)


def test_no_note_of_a_differencing_the_features_do_not_use() -> None:
    """Series of two weeks of hourly steps and one of ten steps: the short series makes the panel's features the recent
    set (whose differencing is tested), the two long ones alone the seasonal set ([24]): the note was left behind."""
    rng = np.random.default_rng(7)
    n = 24 * 14
    rows = []
    for u, length in (("a", n), ("b", n), ("short", 10)):
        t = np.arange(length)
        rows.append(pl.DataFrame({"unique_id": u, "ds": np.arange(length), "y": 50 + 8 * np.sin(2 * np.pi * t / 24)
                                  + rng.normal(0, 0.5, length)}))
    panel = validate_panel(pl.concat(rows))
    model = make_model({**SPEC, "params": {**SPEC["params"], "season_length": 24}, "fallback": "naive"},
                       freq=panel.freq).fit(panel)
    assert model.pipeline_.spec.differences == [24]
    assert not any(n.startswith("differences ") for n in model.notes_), model.notes_
