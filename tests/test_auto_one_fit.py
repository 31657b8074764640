"""``auto``'s validation of global models from one fit (issue 13): fitted once on the earliest window's training
part, each later window forecast from its own history; local models keep one fit per window."""

from __future__ import annotations

import numpy as np
import polars as pl

from forecasting.data import validate_panel
from forecasting.models.auto import AutoForecaster, Candidate
from forecasting.models.registry import ModelSpec, make_model


def _panel(n_series: int = 6, n: int = 160, seed: int = 3):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    frame = pl.concat(pl.DataFrame({"unique_id": f"s{i}", "ds": t + 1,
                                    "y": 50.0 + 5 * i + 8 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)})
                      for i in range(n_series))
    return validate_panel(frame)


def _windows(auto: AutoForecaster, panel, h: int):
    auto.notes_ = []
    windows, ids = auto._windows(panel, h, 12)
    return [w.train_panel(panel, ids) for w in windows]


def test_a_global_model_is_validated_from_one_fit_on_the_earliest_window() -> None:
    """xgboost's validation forecasts are those of one xgboost fitted on the earliest (shortest) training part:
    its own forecast there, and ``predict(h, history=...)`` of each later window's training part; a local
    model's are its fits on each window."""
    panel, h = _panel(), 8
    auto = make_model(ModelSpec(name="auto", params={"season_length": 12, "horizon": h}), freq=panel.freq)
    trains = _windows(auto, panel, h)
    assert len(trains) == 3 and [t.frame.height for t in trains] == [6 * 152, 6 * 144, 6 * 136]
    spec = ModelSpec(name="xgboost", params={"season_length": 12, "horizon": h, "n_estimators": 20})
    c = Candidate(label="xgboost", spec=spec)
    auto._validate(c, trains, panel.freq, h, (), None)
    assert c.one_fit and len(c.forecasts) == 3 and c.fit_seconds > 0
    once = make_model(spec, freq=panel.freq).fit(trains[-1])
    expected = [once.predict(h, history=trains[0]), once.predict(h, history=trains[1]), once.predict(h)]
    for got, want in zip(c.forecasts, expected, strict=True):
        np.testing.assert_array_equal(got, want.sort("unique_id", "ds")[once.alias].to_numpy())
    # the later windows differ from the earliest one's forecast: they read their own (longer) history
    assert not np.allclose(c.forecasts[0], c.forecasts[2])
    local = Candidate(label="seasonal_naive", spec=ModelSpec(name="seasonal_naive", params={"season_length": 12}))
    auto._validate(local, trains, panel.freq, h, (), None)
    assert not local.one_fit
    for got, train in zip(local.forecasts, trains, strict=True):  # seasonal naive: the last season repeated
        last = train.frame.group_by("unique_id", maintain_order=True).agg(pl.col("y").tail(12))["y"].to_list()
        np.testing.assert_array_equal(got, np.concatenate([np.asarray(v[:h]) for v in last]))


def test_the_search_notes_which_candidates_were_validated_from_one_fit() -> None:
    panel = _panel(n_series=4, n=160)
    trees = [{"name": name, "params": {"n_estimators": 20}} for name in ("xgboost", "lightgbm")]
    auto = make_model(ModelSpec(name="auto", params={"season_length": 12, "horizon": 8,
                                                     "candidates": ["seasonal_naive", *trees]}),
                      freq=panel.freq).fit(panel)
    notes = [n for n in auto.notes_ if "validated from one fit" in n]
    assert notes == ["xgboost, lightgbm: validated from one fit on the earliest window's training part, each later "
                     "window forecast from its own history without retraining (global models)"]
    assert {c["model"]: c["status"] for c in auto.selection_["candidates"]} == {
        "seasonal_naive": "scored", "xgboost": "scored", "lightgbm": "scored"}


def test_a_network_is_skipped_once_its_projected_training_would_not_end_in_time(monkeypatch) -> None:
    """The projection of :meth:`AutoForecaster._projection`: 0.2 s for the first 5% of steps is a 4 s fit; with
    its final refit (4 s more) and 1 s of other refits it needs 9 s, so 10 s left keep it and 8 s skip it, with
    the seconds in the message (a fake clock: 1000 s at the start)."""
    import pytest

    from forecasting.errors import TimeLimitError
    from forecasting.models import auto as auto_module

    clock = [1000.0]
    monkeypatch.setattr(auto_module.time, "time", lambda: clock[0])
    auto = make_model(ModelSpec(name="auto", params={"time_limit": 60}), freq=1)
    auto.limit_named_ = "time_limit=60 s"
    c = Candidate(label="nhits", spec=ModelSpec(name="nhits"))
    keep = auto._projection(c, 1010.0, 1.0)
    skip = auto._projection(c, 1008.0, 1.0)
    clock[0] = 1000.2
    keep(0.01, "step 30")  # before 5% of the steps: no projection yet
    skip(0.01, "step 30")
    keep(0.05, "step 150")
    with pytest.raises(TimeLimitError, match=r"^skipped: its training, projected from its first 5% of steps, takes "
                                             r"4 s a fit; with its final refit and the final refits of the "
                                             r"candidates it could join \(1 s\) it would end 1 s past the time "
                                             r"limit \(time_limit=60 s\)") as info:
        skip(0.05, "step 150")
    assert info.value.details == {"projected": True, "fit_seconds": 4.0}
