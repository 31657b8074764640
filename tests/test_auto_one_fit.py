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
    """The projection of :meth:`AutoForecaster._projection`: a set-up of 2 s to the first report (1% of the
    steps), then 0.16 s for the next 4%: a fit of 2 + 4 x 0.99 = 5.96 s; with its final refit and 1 s of other
    refits it needs 12.92 s, so 14 s left keep it and 12 s skip it, with the seconds in the message (a fake
    clock: 1000 s at the start). The set-up counts once: the time so far over the fraction done would project
    43 s."""
    import pytest

    from forecasting.errors import TimeLimitError
    from forecasting.models import auto as auto_module

    clock = [1000.0]
    monkeypatch.setattr(auto_module.time, "time", lambda: clock[0])
    auto = make_model(ModelSpec(name="auto", params={"time_limit": 60}), freq=1)
    auto.limit_named_ = "time_limit=60 s"
    c = Candidate(label="nhits", spec=ModelSpec(name="nhits"))
    keep = auto._projection(c, 1014.0, 1.0)
    skip = auto._projection(c, 1012.0, 1.0)
    clock[0] = 1002.0
    keep(0.01, "step 30")  # the first report: the set-up's end, no pace yet
    skip(0.01, "step 30")
    clock[0] = 1002.16
    keep(0.05, "step 150")
    with pytest.raises(TimeLimitError, match=r"^skipped: its training, projected from its first 5% of steps, takes "
                                             r"6 s a fit; with its final refit and the final refits of the "
                                             r"candidates it could join \(1 s\) it would end 1 s past the time "
                                             r"limit \(time_limit=60 s\)") as info:
        skip(0.05, "step 150")
    assert info.value.details == {"projected": True, "fit_seconds": 6.0}


def test_validation_stops_where_the_time_left_is_what_the_final_refits_need(monkeypatch) -> None:
    """A candidate whose fit took 100 s of a 60 s limit (faked) leaves no time to validate more: the next one is
    skipped with the reason, so the time left goes to the final refit of the one the combination keeps (on M4
    Hourly the local models validated after NHITS left too little for its refit)."""
    import numpy as np
    import polars as pl

    from forecasting.models.auto import AutoForecaster

    real = AutoForecaster._validate

    def slow_on_paper(self, c, *args, **kwargs):
        real(self, c, *args, **kwargs)
        if c.label == "seasonal_naive":
            c.fit_seconds = 100.0

    monkeypatch.setattr(AutoForecaster, "_validate", slow_on_paper)
    t = np.arange(60)
    df = pl.concat(pl.DataFrame({"unique_id": f"s{i}", "ds": t, "y": 10.0 + i + np.sin(2 * np.pi * t / 12)})
                   for i in range(3))
    auto = make_model(ModelSpec(name="auto", params={"season_length": 12, "horizon": 6, "level": [], "time_limit": 60,
                                                     "candidates": ["seasonal_naive", "auto_ets"]}), freq=1)
    auto.fit(df)
    got = {c["model"]: (c["status"], c["reason"]) for c in auto.selection_["candidates"]}
    assert got["seasonal_naive"] == ("scored", None)
    status, reason = got["auto_ets"]
    assert status == "dropped"
    assert reason.startswith("skipped: the ") and reason.endswith(
        " s left are kept for the final refits of the candidates the combination could keep (~100 s)")
    assert auto.selection_["members"] == {"seasonal_naive": 1.0}


def test_a_global_member_without_time_for_its_refit_keeps_its_validation_fit(monkeypatch) -> None:
    """No time for XGBoost's final refit (the margin faked huge): its validation fit (the earliest window's training
    part) forecasts from the whole history instead of the member being dropped, with a note; the forecast is that
    fit's, to the digit."""
    import numpy as np

    from forecasting.models import auto as auto_module

    monkeypatch.setattr(auto_module, "_REFIT_MARGIN", 1e9)
    panel = _panel(20, 120)
    auto = make_model(ModelSpec(name="auto", params={"season_length": 12, "horizon": 6, "level": [],
                                                     "candidates": ["seasonal_naive", "xgboost"],
                                                     "ensemble_size": 1}), freq=1).fit(panel)
    assert auto.selection_["members"] == {"xgboost": 1.0}
    assert any(n.startswith("member 'xgboost': no final refit in time (") and n.endswith(
        "; its validation fit (the earliest window's training part) forecasts from the whole history")
        for n in auto.notes_)
    member = auto.members_["xgboost"]
    assert isinstance(member, auto_module._FromHistory)
    out = auto.predict(6)
    own = member.model.predict(6, history=panel).sort("unique_id", "ds")
    np.testing.assert_allclose(out.sort("unique_id", "ds")["Auto"].to_numpy(), own[member.alias].to_numpy(),
                               rtol=1e-12)
