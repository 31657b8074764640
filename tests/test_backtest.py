"""Rolling-origin cross-validation: windows, cutoffs, values, and rejections."""

from __future__ import annotations

import polars as pl
import pytest

from forecasting.backtest import cross_validation
from forecasting.datasets import load_air_passengers
from forecasting.errors import InsufficientHistoryError, InvalidParameterError

SNAIVE12 = {"name": "seasonal_naive", "params": {"season_length": 12}}


def test_windows_match_statsforecast_cross_validation():
    """Same cutoffs and forecasts as statsforecast's own cross_validation on AirPassengers."""
    from statsforecast import StatsForecast
    from statsforecast.models import SeasonalNaive

    df = load_air_passengers()
    ours = cross_validation(df, model=SNAIVE12, h=3, n_windows=3, step_size=2)
    theirs = StatsForecast(models=[SeasonalNaive(season_length=12)], freq="MS").cross_validation(
        df=df.to_pandas(), h=3, n_windows=3, step_size=2)
    theirs = pl.from_pandas(theirs).with_columns(pl.col("ds", "cutoff").cast(pl.Datetime("us")))
    assert ours.select("ds", "cutoff", "y", "SeasonalNaive").equals(theirs.select("ds", "cutoff", "y", "SeasonalNaive"))


def test_hand_computed_window_values():
    """Seasonal naive from cutoff 1960-09: Oct..Dec 1960 forecast by Oct..Dec 1959 (407, 362, 405)."""
    cv = cross_validation(load_air_passengers(), model=SNAIVE12, h=3, n_windows=1)
    assert cv["cutoff"].unique().to_list()[0].isoformat() == "1960-09-01T00:00:00"
    assert cv["SeasonalNaive"].to_list() == [407.0, 362.0, 405.0]  # Oct..Dec 1959
    assert cv["y"].to_list() == [461.0, 390.0, 432.0]  # Oct..Dec 1960


def test_default_step_is_h_and_levels_are_returned():
    cv = cross_validation(load_air_passengers(), model=SNAIVE12, h=4, n_windows=2, level=[90])
    assert cv.height == 8 and cv["cutoff"].n_unique() == 2
    assert (cv["SeasonalNaive-lo-90"] <= cv["SeasonalNaive"]).all()
    assert (cv["SeasonalNaive"] <= cv["SeasonalNaive-hi-90"]).all()


def test_integer_ds_panel():
    df = pl.DataFrame({"unique_id": ["a"] * 10, "ds": list(range(1, 11)), "y": [float(i) for i in range(10)]})
    cv = cross_validation(df, model="naive", h=2, n_windows=2, step_size=1)
    assert cv["cutoff"].to_list() == [7, 7, 8, 8]
    assert cv["Naive"].to_list() == [6.0, 6.0, 7.0, 7.0]


def test_series_too_short_for_the_windows_names_series_and_lengths():
    df = pl.DataFrame({"unique_id": ["long"] * 40 + ["short"] * 15, "ds": list(range(40)) + list(range(15)),
                       "y": [1.0 + (i % 12) for i in range(55)]})
    with pytest.raises(InsufficientHistoryError) as err:
        cross_validation(df, model=SNAIVE12, h=3, n_windows=2)
    msg = str(err.value)
    assert "series 'short': 15 observations" in msg and "needs at least 19" in msg and "'long'" not in msg


@pytest.mark.parametrize(("kwargs", "field"), [({"n_windows": 0}, "n_windows"), ({"step_size": 0}, "step_size"),
                                                ({"h": 0}, "h")])
def test_bad_window_parameters(kwargs, field):
    params = {"h": 3, "n_windows": 1} | kwargs
    with pytest.raises(InvalidParameterError) as err:
        cross_validation(load_air_passengers(), model="naive", **params)
    assert err.value.field == field


# --------------------------------------------------------------------------- one splitter
def test_bench_and_cross_validation_share_one_splitter(tmp_path, monkeypatch):
    """Issue 12: `forecasting bench` and POST /v1/cross_validation cut rolling origins with one splitter.

    Same data (two series of different lengths), h, windows and step: the harness's windows and
    cross_validation's give the same cutoffs, the same training rows (recorded at fit) and the same
    test rows.
    """
    from forecasting.backtest import rolling_origins
    from forecasting.benchmarks import harness
    from forecasting.models import registry

    air = load_air_passengers()
    data = pl.concat([air.with_columns(pl.lit("a").alias("unique_id")),
                      air.tail(100).with_columns(pl.lit("b").alias("unique_id"), pl.col("y") * 2)])
    src = tmp_path / "two.csv"
    data.write_csv(src)
    h, windows, step = 3, 3, 2
    seen: dict[str, list[pl.DataFrame]] = {"bench": [], "cv": []}

    def recording(where, real):
        def make(spec, **kwargs):
            model = real(spec, **kwargs)
            if spec.name == "naive":  # not the harness's Naive2 reference
                fit = model.fit

                def fit_and_record(panel, *args, **kw):
                    seen[where].append(panel.frame.select("unique_id", "ds", "y"))
                    return fit(panel, *args, **kw)

                model.fit = fit_and_record
            return model
        return make

    monkeypatch.setattr(harness, "make_model", recording("bench", registry.make_model))
    import forecasting.backtest as backtest
    monkeypatch.setattr(backtest, "make_model", recording("cv", registry.make_model))

    bench = harness.run_benchmark(None, ["naive"], input=src, freq="1mo", h=h, windows=windows, step_size=step)
    cv = cross_validation(data, model="naive", h=h, n_windows=windows, step_size=step, freq="1mo")

    # cutoffs, test rows and forecasts
    ours = bench.forecasts.select("unique_id", "ds", "cutoff", "y", pl.col("naive").alias("Naive"))
    assert ours.sort("unique_id", "cutoff", "ds").equals(cv.select(ours.columns))
    by_window = bench.forecasts.group_by("window").agg(pl.col("cutoff").max()).sort("window")["cutoff"].to_list()
    assert by_window == sorted(cv["cutoff"].unique().to_list(), reverse=True)  # window 0 is the last origin
    # training rows: window 0 first in the harness, the earliest origin first in cross_validation
    assert len(seen["bench"]) == len(seen["cv"]) == windows
    for b, c in zip(seen["bench"], reversed(seen["cv"]), strict=True):
        assert b.equals(c)
    # and both are the splitter's own windows
    origins = rolling_origins(data.sort("unique_id", "ds"), h=h, n_windows=windows, step_size=step)
    for b, win in zip(seen["bench"], origins, strict=True):
        assert b.height == win.train.height and b["ds"].to_list() == win.train["ds"].to_list()


# --------------------------------------------------------------------------- one hold-out scorer
def test_holdout_scores_by_hand():
    """Naive on 1..6 holding out 2: forecasts 4, 4 for 5, 6.

    sMAPE = mean(200*|5-4|/(5+4), 200*|6-4|/(6+4)) = (22.22... + 40) / 2; MASE = mean(1, 2) / the in-sample
    mean absolute lag-1 difference of 1..4 (= 1) = 1.5.
    """
    from forecasting.backtest import holdout_scores
    from forecasting.data import validate_panel

    frame = pl.DataFrame({"unique_id": ["a"] * 6, "ds": list(range(1, 7)), "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    scores = holdout_scores(validate_panel(frame), model="naive", h=2, season_length=1)
    assert scores.smape == pytest.approx((200 * 1 / 9 + 200 * 2 / 10) / 2, abs=1e-12)
    assert scores.mase == pytest.approx(1.5, abs=1e-12)
    assert scores.cutoff == 4 and scores.n_series == 1 and scores.h == 2
    assert scores.forecasts["Naive"].to_list() == [4.0, 4.0]
    assert scores.metrics["mae"] == pytest.approx(1.5) and scores.metrics["rmse"] == pytest.approx((2.5) ** 0.5)


def test_holdout_scores_leave_a_series_without_mase_scale_out_of_the_mase_when_asked():
    """Training jobs score a flat series' sMAPE but leave it out of the MASE (its scale is 0); the model card raises."""
    from forecasting.backtest import holdout_scores
    from forecasting.data import validate_panel
    from forecasting.errors import InvalidInputError

    frame = pl.DataFrame({"unique_id": ["a"] * 6 + ["flat"] * 6, "ds": list(range(1, 7)) * 2,
                          "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] + [3.0] * 6})
    panel = validate_panel(frame)
    scores = holdout_scores(panel, model="naive", h=2, season_length=1, unscaled="null")
    assert scores.n_series == 2 and scores.mase == pytest.approx(1.5, abs=1e-12)
    assert scores.smape == pytest.approx(((200 * 1 / 9 + 200 * 2 / 10) / 2 + 0.0) / 2, abs=1e-12)
    with pytest.raises(InvalidInputError, match="'flat'"):
        holdout_scores(panel, model="naive", h=2, season_length=1)
