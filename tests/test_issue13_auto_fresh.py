"""Issue 13, `auto` on kinds of data the suite lacks (tester T2): short seasonal series, refits under a tight limit."""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import polars as pl

from forecasting.data import validate_panel
from forecasting.errors import TimeLimitError
from forecasting.models import registry
from forecasting.models.auto import AutoForecaster, Candidate
from forecasting.models.registry import ModelSpec, make_model, resolve_spec


def _monthly(n_series: int, n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pl.date_range(date(2020, 1, 1), date(2030, 1, 1), "1mo", eager=True)[:n]
    season = 50 * np.sin(2 * np.pi * np.arange(12) / 12)
    return pl.concat(pl.DataFrame({"unique_id": f"s{i}", "ds": ds,
                                   "y": 500 + i * 10 + np.resize(season, n) + rng.normal(0, 3, n)})
                     for i in range(n_series))


def test_short_seasonal_series_are_validated_on_one_season_of_history():
    """24 months and h = 6: no series has two seasons before a window; before the fix auto combined its
    candidates with equal weights (on 50 such series: MASE 1.21 against seasonal naive's 1.03 on the held-out
    tail; validated, 0.69)."""
    panel = validate_panel(_monthly(4, 24, 0), freq="1mo")
    spec, _ = resolve_spec({"name": "auto", "params": {"candidates": ["naive", "seasonal_naive"]}},
                           freq=panel.freq, h=6, level=[80])
    model = make_model(spec, freq=panel.freq).fit(panel)
    sel = model.selection_
    assert sel["season_length"] == 12
    assert sel["n_windows"] == 3 and sel["series_validated"] == 4
    assert "no series has 24 observations (two seasons) before a validation window: the windows' training " \
           "parts keep 13" in sel["notes"]
    assert sel["members"] == {"seasonal_naive": 1.0}  # the seasonal pattern: naive is 1.25x off and trimmed
    scores = {c["model"]: c["score"] for c in sel["candidates"]}
    # OWA relative to seasonal naive (the reference scores 1): naive is 19 times worse on this seasonal data
    assert scores["seasonal_naive"] == 1.0 and scores["naive"] > 5.0, scores


def test_series_with_two_seasons_keep_two_seasons_of_training_history():
    """The relaxed windows apply only where no series has the usual history: 30 months (h = 6) keep 24."""
    panel = validate_panel(_monthly(2, 30, 1), freq="1mo")
    model = AutoForecaster(candidates=["seasonal_naive"], horizon=6)
    model.notes_ = []
    windows, ids = model._windows(panel, 6, 12)
    assert len(windows) == 1 and ids == ["s0", "s1"]
    assert windows[0].train.group_by("unique_id").len()["len"].to_list() == [24, 24]
    assert not any("training parts keep" in n for n in model.notes_)


def test_a_slow_member_at_the_final_fit_does_not_starve_the_cheap_ones(monkeypatch):
    """The refit runs the members cheapest first: a slow member (here, one that runs to the deadline) used to go
    first by weight, leave no time to the others, and auto fell back to 'naive'."""
    panel = validate_panel(_monthly(3, 36, 2), freq="1mo")
    real_make = registry.make_model

    def slow_fit(*args, **kwargs):
        time.sleep(0.5)
        raise TimeLimitError("training stopped: the time limit was reached")

    def make(spec, **kwargs):
        model = real_make(spec, **kwargs)
        if spec.name == "auto_theta":
            model.fit = slow_fit
        return model

    monkeypatch.setattr(registry, "make_model", make)
    auto = AutoForecaster(candidates=["seasonal_naive", "auto_theta"])
    auto.notes_ = []
    auto.weights_, auto.series_weights_ = {"auto_theta": 0.7, "seasonal_naive": 0.3}, None
    scored = [Candidate("seasonal_naive", ModelSpec(name="seasonal_naive", params={"season_length": 12}),
                        status="scored", seconds=0.2),
              Candidate("auto_theta", ModelSpec(name="auto_theta", params={"season_length": 12}),
                        status="scored", seconds=5.0)]
    auto._refit(panel, scored, time.time() + 0.4)
    assert list(auto.members_) == ["seasonal_naive"]
    assert auto.weights_ == {"seasonal_naive": 1.0}
    assert auto.notes_ == ["member 'auto_theta' dropped at the final fit: training stopped: the time limit was "
                           "reached"]


def _refits_out_of_time(monkeypatch, fails) -> None:
    """Every fit made while ``AutoForecaster._refit`` runs raises TimeLimitError where ``fails(spec, kwargs)``."""
    real_make, refit = registry.make_model, AutoForecaster._refit

    def refit_out_of_time(self, panel, scored, deadline):
        def failing(spec, **kwargs):
            model = real_make(spec, **kwargs)
            if fails(spec, kwargs):
                def fit(*args, **kw):
                    raise TimeLimitError("training stopped: the time limit was reached")
                model.fit = fit
            return model
        monkeypatch.setattr(registry, "make_model", failing)
        refit(self, panel, scored, deadline)

    monkeypatch.setattr(AutoForecaster, "_refit", refit_out_of_time)


def test_bands_after_the_naive_fallback_are_naives_own(monkeypatch):
    """Every member out of time at the final fit: auto forecasts with 'naive', whose bands were calibrated with
    the factor learnt for the members' validation bands (first 50 M3 quarterly under a tight limit: coverage
    66% / 74.5% at 80 / 95). The calibration now follows the refit: no validated member, no factor."""
    panel = validate_panel(_monthly(3, 48, 3), freq="1mo")
    real_make = registry.make_model
    auto = AutoForecaster(candidates=["seasonal_naive", "auto_theta"], horizon=6, level=[80])
    _refits_out_of_time(monkeypatch, lambda spec, kwargs: spec.name != "naive")
    auto.fit(panel)
    assert auto.selection_["members"] == {"naive": 1.0}
    assert "no candidate could be fitted in time: forecasting with 'naive'" in auto.notes_
    assert auto.calibration_ == {}
    out = auto.predict(6, level=[80])
    own = real_make(ModelSpec(name="naive"), freq=panel.freq).fit(panel).predict(6, level=[80])
    np.testing.assert_allclose(out["Auto-lo-80"].to_numpy(), own["Naive-lo-80"].to_numpy())
    np.testing.assert_allclose(out["Auto-hi-80"].to_numpy(), own["Naive-hi-80"].to_numpy())


def test_every_member_out_of_time_leaves_seasonal_naive_on_seasonal_data(monkeypatch):
    """Was: the last resort was always 'naive', so a slow candidate that used up the time limit took the season
    away (hourly data forecast flat; found by the issue 13 audit, stop 24). Seasonal data now gets seasonal naive
    at the data's season, fitted without the deadline."""
    panel = validate_panel(_monthly(3, 48, 3), freq="1mo")
    real_make = registry.make_model
    auto = AutoForecaster(candidates=["seasonal_naive", "auto_theta"], horizon=6)
    # the members' refits fail (the last resort is made without n_jobs)
    _refits_out_of_time(monkeypatch, lambda spec, kwargs: "n_jobs" in kwargs)
    auto.fit(panel)
    assert auto.selection_["members"] == {"seasonal_naive": 1.0}
    assert "no candidate could be fitted in time: forecasting with 'seasonal_naive' (season_length=12)" in auto.notes_
    out = auto.predict(6)
    own = real_make(ModelSpec(name="seasonal_naive", params={"season_length": 12}), freq=panel.freq).fit(panel)
    np.testing.assert_allclose(out["Auto"].to_numpy(), own.predict(6)["SeasonalNaive"].to_numpy())
