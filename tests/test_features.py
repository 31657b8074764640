"""The polars feature pipeline (:mod:`forecasting.features`).

Three kinds of test:

* hand-computed values on a tiny panel (two series, integer ``ds``), one feature
  family at a time, each expected number worked out in the test itself;
* hypothesis property tests (with explicit ``@example`` edge cases): no future value
  enters a row's features, no mixing across series, the target transforms invert
  exactly (also the ``y = (z_pred - z0) * scale`` identity the XGBoost adapter uses
  for recursive forecasting), row counts are preserved and ``training_rows`` drops
  exactly the rows whose target-derived features are incomplete;
* checks, rejections and the JSON round trip.

Scaling statistics come, by design, from each series' full history
(:meth:`FeaturePipeline.scale_stats` on the training frame, computed once and passed
to every ``transform``). The leakage property is therefore stated with the ``scales``
frame held fixed: what it checks is that the *features* never read a later row.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from forecasting.data import validate_panel
from forecasting.errors import InvalidInputError, InvalidParameterError
from forecasting.features import TARGET, FeaturePipeline, FeatureSpec, RollingSpec, default_features

NAN = None  # readability in the expected columns below

A = [1.0, 2.0, 4.0, 7.0, 11.0, 16.0]
B = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0]


def _tiny(**exog: list[float]) -> pl.DataFrame:
    return pl.DataFrame({"unique_id": ["a"] * 6 + ["b"] * 6, "ds": list(range(1, 7)) * 2, "y": A + B, **exog})


def _run(spec: FeatureSpec, data: pl.DataFrame | dict, *, static: pl.DataFrame | None = None,
         max_horizon: int | None = None) -> pl.DataFrame:
    panel = validate_panel(data)
    pipe = FeaturePipeline.fit(spec, panel, static=static, max_horizon=max_horizon)
    return pipe.transform(panel.frame, scales=pipe.scale_stats(panel.frame), static=static)


def _col(out: pl.DataFrame, name: str, uid: str) -> list[float | None]:
    return out.filter(pl.col("unique_id") == uid)[name].to_list()


def _close(got: list[float | None], want: list[float | None]) -> None:
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want, strict=True):
        if w is None:
            assert g is None, (got, want)
        else:
            assert g is not None and g == pytest.approx(w, rel=1e-12, abs=1e-12), (got, want)


# --------------------------------------------------------------------------- hand-computed values
def test_lags() -> None:
    out = _run(FeatureSpec(lags=[1, 2]), _tiny())
    _close(_col(out, "lag_1", "a"), [NAN, 1, 2, 4, 7, 11])
    _close(_col(out, "lag_2", "a"), [NAN, NAN, 1, 2, 4, 7])
    _close(_col(out, "lag_1", "b"), [NAN, 3, 1, 4, 1, 5])  # never a's last value
    _close(_col(out, TARGET, "a"), A)  # no scaler, no difference: the target is y


def test_rolling_mean_std_min_max() -> None:
    spec = FeatureSpec(rolling=[RollingSpec(window=2, stats=["mean"], lag=1),
                                RollingSpec(window=3, stats=["std"], lag=1),
                                RollingSpec(window=2, stats=["min", "max"], lag=2)])
    out = _run(spec, _tiny())
    # mean of y[t-1], y[t-2]
    _close(_col(out, "rolling_mean_2_lag_1", "a"), [NAN, NAN, (1 + 2) / 2, (2 + 4) / 2, (4 + 7) / 2, (7 + 11) / 2])
    # sample std (ddof=1) of y[t-1..t-3]: (1,2,4): mean 7/3, squares (16+1+25)/9 / 2 = 7/3
    # (2,4,7): mean 13/3, (49+1+64)/9 / 2 = 57/9; (4,7,11): mean 22/3, (100+1+121)/9 / 2 = 111/9
    _close(_col(out, "rolling_std_3_lag_1", "a"), [NAN, NAN, NAN, math.sqrt(7 / 3), math.sqrt(57) / 3, math.sqrt(111) / 3])
    # b: min/max of y[t-2], y[t-3]: (3,1), (1,4), (4,1)
    _close(_col(out, "rolling_min_2_lag_2", "b"), [NAN, NAN, NAN, 1, 1, 1])
    _close(_col(out, "rolling_max_2_lag_2", "b"), [NAN, NAN, NAN, 3, 4, 4])


def test_seasonal_rolling() -> None:
    # season 2, window 2, lag 1: the values 1 and 3 steps back
    spec = FeatureSpec(rolling=[RollingSpec(window=2, stats=["mean", "std", "min", "max"], lag=1, season_length=2)])
    out = _run(spec, _tiny())
    name = "seasonal_rolling_{}_2x2_lag_1"
    # a: rows 3..5 see (y2, y0) = (4, 1), (y3, y1) = (7, 2), (y4, y2) = (11, 4)
    _close(_col(out, name.format("mean"), "a"), [NAN, NAN, NAN, 2.5, 4.5, 7.5])
    _close(_col(out, name.format("std"), "a"), [NAN, NAN, NAN, 3 / math.sqrt(2), 5 / math.sqrt(2), 7 / math.sqrt(2)])
    _close(_col(out, name.format("min"), "a"), [NAN, NAN, NAN, 1, 2, 4])
    _close(_col(out, name.format("max"), "a"), [NAN, NAN, NAN, 4, 7, 11])
    # b: (4, 3), (1, 1), (5, 4)
    _close(_col(out, name.format("mean"), "b"), [NAN, NAN, NAN, 3.5, 1, 4.5])
    _close(_col(out, name.format("std"), "b"), [NAN, NAN, NAN, 1 / math.sqrt(2), 0, 1 / math.sqrt(2)])
    _close(_col(out, name.format("min"), "b"), [NAN, NAN, NAN, 3, 1, 4])
    _close(_col(out, name.format("max"), "b"), [NAN, NAN, NAN, 4, 1, 5])


def test_seasonal_rolling_window_3_lag_equal_to_season() -> None:
    # the default_features shape (lag m, season m): season 2, window 3, lag 2 -> values 2, 4, 6 steps back
    spec = FeatureSpec(rolling=[RollingSpec(window=3, stats=["mean", "min", "max"], lag=2, season_length=2)])
    up = [float(v) for v in range(10, 18)]
    data = pl.DataFrame({"unique_id": ["a"] * 8 + ["b"] * 8, "ds": list(range(8)) * 2, "y": up + up[::-1]})
    out = _run(spec, data)
    # a, row 6: y4, y2, y0 = 14, 12, 10; row 7: 15, 13, 11
    _close(_col(out, "seasonal_rolling_mean_2x3_lag_2", "a"), [NAN] * 6 + [12, 13])
    _close(_col(out, "seasonal_rolling_min_2x3_lag_2", "a"), [NAN] * 6 + [10, 11])
    _close(_col(out, "seasonal_rolling_max_2x3_lag_2", "a"), [NAN] * 6 + [14, 15])
    # b = 17..10, row 6: y4, y2, y0 = 13, 15, 17; row 7: 12, 14, 16
    _close(_col(out, "seasonal_rolling_min_2x3_lag_2", "b"), [NAN] * 6 + [13, 12])
    _close(_col(out, "seasonal_rolling_max_2x3_lag_2", "b"), [NAN] * 6 + [17, 16])


def test_expanding_mean() -> None:
    out = _run(FeatureSpec(expanding_mean_lags=[1, 2]), _tiny())
    _close(_col(out, "expanding_mean_lag_1", "a"), [NAN, 1, 3 / 2, 7 / 3, 14 / 4, 25 / 5])
    _close(_col(out, "expanding_mean_lag_2", "a"), [NAN, NAN, 1, 3 / 2, 7 / 3, 14 / 4])
    _close(_col(out, "expanding_mean_lag_1", "b"), [NAN, 3, 4 / 2, 8 / 3, 9 / 4, 14 / 5])


def test_calendar_daily_year_boundary() -> None:
    days = [dt.date(2023, 12, 30), dt.date(2023, 12, 31), dt.date(2024, 1, 1)]  # Saturday, Sunday, Monday
    data = {"unique_id": ["a"] * 3, "ds": days, "y": [1.0, 2.0, 3.0]}
    spec = FeatureSpec(calendar=["dayofweek", "day", "dayofyear", "week", "month", "quarter", "year"])
    out = _run(spec, data)
    _close(out["dayofweek"].to_list(), [5, 6, 0])  # Monday = 0
    _close(out["day"].to_list(), [30, 31, 1])
    _close(out["dayofyear"].to_list(), [364, 365, 1])
    _close(out["week"].to_list(), [52, 52, 1])  # ISO week: 2024-01-01 is in week 1
    _close(out["month"].to_list(), [12, 12, 1])
    _close(out["quarter"].to_list(), [4, 4, 1])
    _close(out["year"].to_list(), [2023, 2023, 2024])
    assert all(out[c].dtype == pl.Float64 for c in spec.calendar)


def test_calendar_minute_hour() -> None:
    ds = [dt.datetime(2024, 3, 10, 23, 30), dt.datetime(2024, 3, 10, 23, 45), dt.datetime(2024, 3, 11, 0, 0)]
    out = _run(FeatureSpec(calendar=["minute", "hour", "dayofweek"]), {"unique_id": ["a"] * 3, "ds": ds, "y": [1.0] * 3})
    _close(out["minute"].to_list(), [30, 45, 0])
    _close(out["hour"].to_list(), [23, 23, 0])
    _close(out["dayofweek"].to_list(), [6, 6, 0])  # Sunday, Sunday, Monday


def test_calendar_uses_the_callers_clock() -> None:
    # 2024-01-01 22:00 and 23:00 UTC are 23:00 Monday and 00:00 Tuesday in Paris (UTC+1)
    ds = pl.Series([dt.datetime(2024, 1, 1, 22), dt.datetime(2024, 1, 1, 23)]).dt.replace_time_zone("UTC")
    data = pl.DataFrame({"unique_id": ["a", "a"], "ds": ds.dt.convert_time_zone("Europe/Paris"), "y": [1.0, 2.0]})
    out = _run(FeatureSpec(calendar=["hour", "dayofweek", "day"]), data)
    _close(out["hour"].to_list(), [23, 0])
    _close(out["dayofweek"].to_list(), [0, 1])
    _close(out["day"].to_list(), [1, 2])


def test_hist_exog_lags_static_and_future_exog() -> None:
    x = [float(v) for v in range(100, 112)]  # a: 100..105, b: 106..111
    price = [0.5 * v for v in range(12)]
    static = pl.DataFrame({"unique_id": ["b", "a"], "region": [7.0, 3.0], "unused": [0, 0]})
    spec = FeatureSpec(lags=[1], hist_exog={"x": [2, 3]}, future_exog=["price"], static=["region"])
    out = _run(spec, _tiny(x=x, price=price), static=static, max_horizon=2)
    _close(_col(out, "x_lag_2", "a"), [NAN, NAN, 100, 101, 102, 103])
    _close(_col(out, "x_lag_3", "b"), [NAN, NAN, NAN, 106, 107, 108])  # never a's values
    _close(_col(out, "price", "b"), [3.0, 3.5, 4.0, 4.5, 5.0, 5.5])  # same row: known in advance
    _close(_col(out, "region", "a"), [3.0] * 6)
    _close(_col(out, "region", "b"), [7.0] * 6)
    assert "unused" not in out.columns
    assert out.height == 12


def test_standard_and_mean_scaler() -> None:
    out = _run(FeatureSpec(lags=[1], scaler="standard"), _tiny())
    # a: mean 41/6; population variance 447/6 - (41/6)^2 = 1001/36, std sqrt(1001)/6
    want = [(6 * y - 41) / math.sqrt(1001) for y in A]
    _close(_col(out, TARGET, "a"), want)
    _close(_col(out, "lag_1", "a"), [NAN, *want[:-1]])
    _close(_col(out, "_scale_loc", "a"), [41 / 6] * 6)
    _close(_col(out, "_scale_scale", "a"), [math.sqrt(1001) / 6] * 6)
    out = _run(FeatureSpec(lags=[1], scaler="mean"), _tiny())
    _close(_col(out, TARGET, "b"), [y * 6 / 23 for y in B])  # mean |y| of b = 23/6


def test_constant_series_scale_falls_back_to_one() -> None:
    data = pl.DataFrame({"unique_id": ["a"] * 4, "ds": [1, 2, 3, 4], "y": [5.0] * 4})
    out = _run(FeatureSpec(lags=[1], scaler="standard"), data)
    _close(out[TARGET].to_list(), [0.0] * 4)
    _close(out["_scale_scale"].to_list(), [1.0] * 4)


@pytest.mark.parametrize(("differences", "want_a", "want_b"), [
    ([1], [NAN, 1, 2, 3, 4, 5], [NAN, -2, 3, -3, 4, 4]),
    ([2], [NAN, NAN, 3, 5, 7, 9], [NAN, NAN, 1, 0, 1, 8]),
    # first difference, then the seasonal one on it: a (1, 2, 3, 4, 5) -> (2, 2, 2); b (-2, 3, -3, 4, 4) -> (-1, 1, 7)
    ([1, 2], [NAN, NAN, NAN, 2, 2, 2], [NAN, NAN, NAN, -1, 1, 7]),
])
def test_differences(differences: list[int], want_a: list, want_b: list) -> None:
    out = _run(FeatureSpec(lags=[1], differences=differences), _tiny())
    _close(_col(out, TARGET, "a"), want_a)
    _close(_col(out, TARGET, "b"), want_b)
    _close(_col(out, "lag_1", "a"), [NAN, *want_a[:-1]])  # lags are of the differenced target


def test_difference_after_standard_scaling() -> None:
    out = _run(FeatureSpec(lags=[1], differences=[1], scaler="standard"), _tiny())
    s = math.sqrt(1001) / 6
    _close(_col(out, TARGET, "a"), [NAN, 1 / s, 2 / s, 3 / s, 4 / s, 5 / s])  # the mean cancels


def test_lookback_and_names() -> None:
    spec = FeatureSpec(lags=[1, 3], rolling=[RollingSpec(window=7, lag=24, season_length=24)],
                       expanding_mean_lags=[2], differences=[1, 24])
    pipe = FeaturePipeline.fit(spec, validate_panel(_tiny()))
    assert pipe.feature_names == ["lag_1", "lag_3", "seasonal_rolling_mean_24x7_lag_24", "expanding_mean_lag_2"]
    assert pipe.lookback == 24 + 6 * 24 + 1 + 24
    assert pipe.min_length == pipe.lookback + 1
    # step 3 reads forecasts of steps 1 and 2 through lag_1 only (lag 3 and the rest look further back)
    assert pipe.forecast_feature_mask(3).tolist() == [True, False, False, True]
    assert pipe.forecast_feature_mask(1).tolist() == [False] * 4


def test_default_features_hourly() -> None:
    spec = default_features(24, freq="1h")
    assert spec.lags == [24, 48, 72, 96, 120, 144, 168]  # seasonal lags only (OWA 0.441 vs 0.502 on M4 Hourly)
    assert [(r.window, r.lag, r.season_length) for r in spec.rolling] == [(24, 24, None), (7, 24, 24)]
    assert spec.differences == [24] and spec.scaler == "standard"
    assert spec.calendar == ["hour", "dayofweek"]
    assert default_features(1).differences == [1] and default_features(1).calendar == []


# --------------------------------------------------------------------------- property tests
_DIFFS = st.lists(st.sampled_from([1, 2, 3]), max_size=2)
_SCALER = st.sampled_from(["none", "standard", "mean"])
_VALUE = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def _specs(draw: st.DrawFn) -> FeatureSpec:
    rolling = draw(st.lists(st.builds(
        RollingSpec, window=st.integers(2, 4), lag=st.integers(1, 3),
        stats=st.lists(st.sampled_from(["mean", "std", "min", "max"]), min_size=1, max_size=4, unique=True),
        season_length=st.one_of(st.none(), st.integers(2, 3))), max_size=2,
        unique_by=lambda r: (r.window, r.lag, r.season_length)))
    return FeatureSpec(lags=draw(st.lists(st.integers(1, 5), min_size=1, max_size=3, unique=True)),
                       rolling=rolling, expanding_mean_lags=draw(st.lists(st.integers(1, 3), max_size=1)),
                       hist_exog=draw(st.sampled_from([{}, {"x": [1]}, {"x": [2, 4]}])),
                       differences=draw(_DIFFS), scaler=draw(_SCALER))


@st.composite
def _panels(draw: st.DrawFn, *, min_len: int = 1, max_len: int = 30) -> pl.DataFrame:
    lengths = draw(st.lists(st.integers(min_len, max_len), min_size=1, max_size=3))
    frames = []
    for i, n in enumerate(lengths):
        y = draw(st.lists(_VALUE, min_size=n, max_size=n))
        x = draw(st.lists(_VALUE, min_size=n, max_size=n))
        frames.append(pl.DataFrame({"unique_id": f"s{i}", "ds": list(range(n)), "y": y, "x": x}))
    return pl.concat(frames)


def _derived(pipe: FeaturePipeline) -> list[str]:
    """Features computed from the target (hist_exog lags read ``x``, never ``y``)."""
    return list(pipe.target_lags)


_EDGE_SPEC = FeatureSpec(lags=[1], rolling=[RollingSpec(window=2, stats=["std"], lag=1, season_length=2)],
                         expanding_mean_lags=[1], differences=[1, 2], scaler="standard")
_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@given(spec=_specs(), data=_panels(), cut=st.floats(0, 1), new=_VALUE)
@example(spec=_EDGE_SPEC, data=pl.DataFrame({"unique_id": "s0", "ds": list(range(8)), "y": [0.0] * 8, "x": [0.0] * 8}),
         cut=0.0, new=1e4)  # constant series (scale falls back to 1), change from the first row
@example(spec=_EDGE_SPEC, data=pl.DataFrame({"unique_id": "s0", "ds": [0], "y": [1.0], "x": [1.0]}), cut=1.0, new=-1.0)
@_SETTINGS
def test_no_future_value_enters_a_row(spec: FeatureSpec, data: pl.DataFrame, cut: float, new: float) -> None:
    pipe = FeaturePipeline.fit(spec, validate_panel(data, freq=1))
    scales = pipe.scale_stats(data)  # held fixed: scaling statistics come from the full history by design
    n0 = int((data["unique_id"] == "s0").sum())
    t = min(int(cut * n0), n0 - 1)
    idx = pl.int_range(pl.len()).over("unique_id")
    changed = data.with_columns(pl.when((pl.col("unique_id") == "s0") & (idx >= t)).then(pl.col("y") + new + 1.0)
                                .otherwise(pl.col("y")).alias("y"))
    before = pipe.transform(data, scales=scales).filter(idx <= t, pl.col("unique_id") == "s0")
    after = pipe.transform(changed, scales=scales).filter(idx <= t, pl.col("unique_id") == "s0")
    cols = _derived(pipe) + [c for c in pipe.feature_names if c.startswith("x_lag_")]
    assert before.select(cols).equals(after.select(cols))


@given(spec=_specs(), data=_panels(), new=_VALUE)
@example(spec=_EDGE_SPEC, data=pl.DataFrame({"unique_id": ["s0", "s1"], "ds": [0, 0], "y": [1.0, 2.0], "x": [0.0, 0.0]}),
         new=0.0)  # one row per series
@_SETTINGS
def test_series_never_mix(spec: FeatureSpec, data: pl.DataFrame, new: float) -> None:
    pipe = FeaturePipeline.fit(spec, validate_panel(data, freq=1))
    changed = data.with_columns(pl.when(pl.col("unique_id") == "s0").then(pl.col("y") * 3 + new + 1.0)
                                .otherwise(pl.col("y")).alias("y"),
                                pl.when(pl.col("unique_id") == "s0").then(-pl.col("x")).otherwise(pl.col("x")).alias("x"))
    # scale statistics recomputed: they are per series too
    before = pipe.transform(data, scales=pipe.scale_stats(data)).filter(pl.col("unique_id") != "s0")
    after = pipe.transform(changed, scales=pipe.scale_stats(changed)).filter(pl.col("unique_id") != "s0")
    assert before.equals(after)


@given(spec=_specs(), data=_panels())
@example(spec=FeatureSpec(lags=[1], rolling=[RollingSpec(window=2, lag=1, season_length=2)], differences=[1],
                          hist_exog={"x": [2]}),
         data=pl.DataFrame({"unique_id": ["s0", "s0", "s1", "s1", "s2"], "ds": [0, 1, 0, 1, 0],
                            "y": [1.0, 2.0, 3.0, 4.0, 5.0], "x": [1.0, 2.0, 3.0, 4.0, 5.0]}))
@_SETTINGS
def test_interleaved_rows_give_the_same_features(spec: FeatureSpec, data: pl.DataFrame) -> None:
    """Series whose rows are not contiguous (sorted by ds, then id) take the ``over`` path: same values per row."""
    pipe = FeaturePipeline.fit(spec, validate_panel(data, freq=1))
    scales = pipe.scale_stats(data)
    interleaved = data.sort("ds", "unique_id")
    want = pipe.transform(data, scales=scales)
    got = pipe.transform(interleaved, scales=scales)
    assert got.height == interleaved.height and got.columns == want.columns
    assert got.sort("unique_id", "ds").equals(want)


@given(differences=_DIFFS, scaler=_SCALER, seed=st.integers(0, 2**32 - 1), n_hist=st.integers(8, 40),
       h=st.integers(1, 12), level=st.sampled_from([0.0, 1.0, -50.0, 1e5]))
@example(differences=[1, 3], scaler="standard", seed=0, n_hist=8, h=12, level=1e5)
@example(differences=[3, 3], scaler="mean", seed=1, n_hist=8, h=1, level=-50.0)
@example(differences=[], scaler="none", seed=2, n_hist=8, h=5, level=0.0)
@_SETTINGS
def test_inverse_restores_the_target(differences: list[int], scaler: str, seed: int, n_hist: int, h: int,
                                     level: float) -> None:
    rng = np.random.default_rng(seed)
    y = level + np.cumsum(rng.normal(size=n_hist + h)) + 10 * np.sin(np.arange(n_hist + h))
    frame = pl.DataFrame({"unique_id": "s", "ds": np.arange(n_hist + h), "y": y})
    hist = frame.head(n_hist)
    pipe = FeaturePipeline.fit(FeatureSpec(lags=[1], differences=differences, scaler=scaler),  # type: ignore[arg-type]
                               validate_panel(hist, freq=1))
    scales = pipe.scale_stats(hist)
    loc, sc = scales.row(0)[1:]
    z_future = pipe.transform(frame, scales=scales)[TARGET].to_numpy()[n_hist:]
    stages = pipe.difference_stages((hist["y"].to_numpy() - loc) / sc)
    got = pipe.inverse(z_future, stages, (loc, sc))
    np.testing.assert_allclose(got, y[n_hist:], rtol=1e-9, atol=1e-9 * np.abs(y).max())


@given(differences=_DIFFS, scaler=_SCALER, data=_panels(min_len=8), value=_VALUE)
@example(differences=[1, 2], scaler="standard", value=1e4,
         data=pl.DataFrame({"unique_id": "s0", "ds": list(range(8)), "y": [3.0] * 8, "x": [0.0] * 8}))
@_SETTINGS
def test_recursive_identity_used_by_xgboost(differences: list[int], scaler: str, data: pl.DataFrame,
                                            value: float) -> None:
    """``y = (z_pred - z0) * scale``: the target is affine in the new row's ``y`` with slope ``1 / scale``."""
    pipe = FeaturePipeline.fit(FeatureSpec(lags=[1], differences=differences, scaler=scaler),  # type: ignore[arg-type]
                               validate_panel(data, freq=1))
    scales = pipe.scale_stats(data)
    last = data.group_by("unique_id", maintain_order=True).agg(pl.col("ds").max() + 1, pl.col("x").last())
    new0 = last.with_columns(pl.lit(0.0).alias("y")).select(data.columns)

    def z_of(new: pl.DataFrame) -> pl.DataFrame:
        tr = pipe.transform(pl.concat([data, new]).sort("unique_id", "ds"), scales=scales)
        return tr.join(new.select("unique_id", "ds"), on=["unique_id", "ds"], how="semi", maintain_order="left")

    z0 = z_of(new0)
    zv = z_of(new0.with_columns(pl.lit(value).alias("y")))
    scale = z0["_scale_scale"].to_numpy()
    np.testing.assert_allclose((zv[TARGET].to_numpy() - z0[TARGET].to_numpy()) * scale, value,
                               rtol=1e-9, atol=1e-9 * max(1.0, float(data["y"].abs().max())))
    assert zv.select(pipe.feature_names).equals(z0.select(pipe.feature_names))  # features never read the new y


@given(spec=_specs(), data=_panels())
@example(spec=FeatureSpec(lags=[5], differences=[3, 3]),
         data=pl.DataFrame({"unique_id": "s0", "ds": list(range(11)), "y": [1.0] * 11, "x": [0.0] * 11}))
@example(spec=FeatureSpec(lags=[1], hist_exog={"x": [4]}),  # exogenous lag longer than every target lag
         data=pl.DataFrame({"unique_id": "s0", "ds": list(range(5)), "y": [1.0] * 5, "x": [0.0] * 5}))
@_SETTINGS
def test_row_counts_and_training_rows(spec: FeatureSpec, data: pl.DataFrame) -> None:
    pipe = FeaturePipeline.fit(spec, validate_panel(data, freq=1))
    tr = pipe.transform(data, scales=pipe.scale_stats(data))
    assert tr.height == data.height
    assert tr.select("unique_id", "ds").equals(data.select("unique_id", "ds"))
    # worked out from the spec: row t (0-based) of a series has every target-derived feature
    # once t - (furthest lag) >= sum(differences), and its exogenous lags once t >= the exogenous lag
    d = sum(spec.differences)
    far = [*spec.lags, *spec.expanding_mean_lags, *[r.lag + (r.window - 1) * (r.season_length or 1) for r in spec.rolling]]
    first = max(d + max(far, default=0), *[lag for lags in spec.hist_exog.values() for lag in lags], d)
    assert first <= pipe.lookback
    rows = pipe.training_rows(tr)
    idx = tr.with_columns(pl.int_range(pl.len()).over("unique_id").alias("_t"))
    want = idx.filter(pl.col("_t") >= first).drop("_t")
    assert rows.equals(want)
    assert not rows.select(pipe.feature_names + [TARGET]).select(pl.all().is_nan().any()).row(0).count(True)


# --------------------------------------------------------------------------- checks and rejections
def _int_pipe() -> FeaturePipeline:
    return FeaturePipeline.fit(FeatureSpec(lags=[1]), validate_panel(_tiny()))


def test_check_regular_rejects_a_gap_naming_series_and_timestamp() -> None:
    frame = pl.DataFrame({"unique_id": ["a", "a", "a", "b", "b", "b"], "ds": [1, 2, 3, 1, 2, 4], "y": [1.0] * 6})
    with pytest.raises(InvalidInputError, match=r"series 'b' at 4") as err:
        _int_pipe().check_regular(frame)
    assert "'a'" not in str(err.value)
    _int_pipe().check_regular(frame.filter(pl.col("unique_id") == "a"))


def test_check_regular_hourly_gap() -> None:
    ds = [dt.datetime(2024, 1, 1, h) for h in (0, 1, 2)]
    pipe = FeaturePipeline.fit(FeatureSpec(lags=[1]), validate_panel({"unique_id": ["a"] * 3, "ds": ds, "y": [1.0] * 3}))
    gap = pl.DataFrame({"unique_id": ["a"] * 3, "ds": [ds[0], ds[1], dt.datetime(2024, 1, 1, 4)], "y": [1.0] * 3})
    with pytest.raises(InvalidInputError, match=r"series 'a' at 2024-01-01 04:00:00"):
        pipe.check_regular(gap)


def test_check_regular_accepts_month_end_monthly() -> None:
    ends = [dt.date(2023, 11, 30), dt.date(2023, 12, 31), dt.date(2024, 1, 31), dt.date(2024, 2, 29), dt.date(2024, 3, 31)]
    panel = validate_panel({"unique_id": ["a"] * 5, "ds": ends, "y": [1.0, 2, 3, 4, 5]})
    assert panel.freq == "1mo"
    pipe = FeaturePipeline.fit(FeatureSpec(lags=[1], calendar=["month"]), panel)
    pipe.check_regular(panel.frame)
    missing_feb = panel.frame.filter(pl.col("ds").dt.month() != 2)
    with pytest.raises(InvalidInputError, match=r"series 'a' at 2024-03-31"):
        pipe.check_regular(missing_feb)


def test_json_round_trip_gives_identical_transform() -> None:
    static = pl.DataFrame({"unique_id": ["a", "b"], "region": [1.0, 2.0]})
    spec = FeatureSpec(lags=[1, 2], rolling=[RollingSpec(window=2, stats=["mean", "std"]),
                                             RollingSpec(window=2, lag=1, season_length=2, stats=["max"])],
                       expanding_mean_lags=[1], static=["region"], future_exog=["price"], hist_exog={"x": [2]},
                       differences=[1], scaler="mean")
    data = _tiny(x=[float(v) for v in range(12)], price=[float(-v) for v in range(12)])
    panel = validate_panel(data)
    pipe = FeaturePipeline.fit(spec, panel, static=static, max_horizon=2)
    back = FeaturePipeline.from_json(pipe.to_json())
    assert back == pipe
    scales = pipe.scale_stats(panel.frame)
    assert back.transform(panel.frame, scales=scales, static=static).equals(
        pipe.transform(panel.frame, scales=scales, static=static))


def test_fit_rejects_calendar_on_integer_ds() -> None:
    with pytest.raises(InvalidParameterError, match="calendar features .* need datetime ds"):
        FeaturePipeline.fit(FeatureSpec(calendar=["hour"]), validate_panel(_tiny()))


def test_fit_rejects_hist_exog_lag_below_max_horizon() -> None:
    panel = validate_panel(_tiny(x=[0.0] * 12))
    with pytest.raises(InvalidParameterError, match=r"'x' lags \[1, 2\] are below the maximum horizon 3"):
        FeaturePipeline.fit(FeatureSpec(hist_exog={"x": [1, 2, 3]}), panel, max_horizon=3)
    FeaturePipeline.fit(FeatureSpec(hist_exog={"x": [3]}), panel, max_horizon=3)


def test_fit_rejects_missing_exogenous_column() -> None:
    with pytest.raises(InvalidInputError, match=r"exogenous columns \['price'\]"):
        FeaturePipeline.fit(FeatureSpec(lags=[1], future_exog=["price"]), validate_panel(_tiny()))
    with pytest.raises(InvalidInputError, match=r"exogenous columns \['x'\]"):
        FeaturePipeline.fit(FeatureSpec(hist_exog={"x": [2]}), validate_panel(_tiny()))


def test_fit_rejects_static_without_frame() -> None:
    with pytest.raises(InvalidInputError, match="need a static frame"):
        FeaturePipeline.fit(FeatureSpec(static=["region"]), validate_panel(_tiny()))
    with pytest.raises(InvalidInputError, match=r"static columns \['region'\] are not in the static frame"):
        FeaturePipeline.fit(FeatureSpec(static=["region"]), validate_panel(_tiny()),
                            static=pl.DataFrame({"unique_id": ["a"], "other": [1.0]}))


@pytest.mark.parametrize("season_length", [None, 2])
def test_fit_rejects_rolling_std_over_one_value(season_length: int | None) -> None:
    # regression: window 1 gave a std that was null on every row (polars ddof=1), so training_rows
    # dropped every row, while the seasonal variant gave a constant 0
    spec = FeatureSpec(lags=[1], rolling=[RollingSpec(window=1, stats=["mean", "std"], season_length=season_length)])
    with pytest.raises(InvalidParameterError, match="rolling std needs a window >= 2, got window 1"):
        FeaturePipeline.fit(spec, validate_panel(_tiny()))
    FeaturePipeline.fit(FeatureSpec(rolling=[RollingSpec(window=1, stats=["mean", "min"])]), validate_panel(_tiny()))


def test_fit_rejects_an_empty_spec() -> None:
    with pytest.raises(InvalidParameterError, match="no feature"):
        FeaturePipeline.fit(FeatureSpec(), validate_panel(_tiny()))
