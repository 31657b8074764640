"""Issue 14: the registered forecast's fixed per-request costs (p50 at one client).

The small-request path of the tree models evaluates the feature spec with numpy
(:meth:`FeaturePipeline.block_matrix`) instead of the polars query: both read the same
:func:`feature_defs`, and these tests pin that they give identical features (bit for bit) on random
panels, and identical forecasts through the whole model.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from forecasting.data import collect_small
from forecasting.features import (
    SCALE_MEAN,
    SCALE_STD,
    TARGET,
    FeatureDef,
    FeaturePipeline,
    FeatureSpec,
    RollingSpec,
    feature_defs,
)

SPEC = FeatureSpec(
    lags=[1, 2, 24, 48],
    rolling=[RollingSpec(window=24, stats=["mean", "std", "min", "max"], lag=1),
             RollingSpec(window=5, stats=["mean", "std"], lag=24),
             RollingSpec(window=7, stats=["mean", "std", "min", "max"], lag=24, season_length=24)],
    calendar=["hour", "dayofweek", "day", "month", "dayofyear", "week", "quarter", "year", "minute"],
    future_exog=["price", "promo"],
    differences=[24, 1],
    scaler="standard",
)


def _random_panel(rng: np.random.Generator, n_series: int, pipe: FeaturePipeline) -> pl.DataFrame:
    """Hourly series of random lengths (the lookback plus 1..60 rows), scales and levels, sorted by id and ds."""
    parts = []
    for i in range(n_series):
        n = pipe.lookback + int(rng.integers(1, 60))
        start = np.datetime64("2024-03-20T00:00") + np.timedelta64(int(rng.integers(0, 2000)), "h")
        level, scale = rng.choice([1e-3, 1.0, 1e4]) * rng.uniform(1, 100), rng.uniform(0.01, 30)
        t = np.arange(n)
        parts.append(pl.DataFrame({
            "unique_id": f"s{i:02d}", "ds": pl.Series((start + t.astype("timedelta64[h]")).astype("datetime64[us]")),
            "y": level + scale * (np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, n)),
            "price": rng.normal(10, 3, n), "promo": rng.integers(0, 3, n)}))
    return pl.concat(parts).sort("unique_id", "ds")


@pytest.mark.parametrize("tz", [None, "America/New_York"])
@pytest.mark.parametrize(("seed", "n_series"), [(0, 1), (1, 1), (2, 3), (3, 5)])
def test_numpy_features_are_the_polars_query_s_bit_for_bit_on_random_panels(seed: int, n_series: int,
                                                                             tz: str | None) -> None:
    rng = np.random.default_rng(seed)
    pipe = FeaturePipeline(spec=SPEC, freq="1h", tz=tz, feature_names=FeaturePipeline._names(SPEC)[0],
                           target_lags=FeaturePipeline._names(SPEC)[1])
    frame = _random_panel(rng, n_series, pipe)
    scales = pipe.scale_stats(frame)
    # collected as a forecast block is (collect_small: the in-memory engine, no optimiser passes)
    query = collect_small(pipe.transform_lazy(frame.lazy(), scales=scales, contiguous=True, reach_checked=True))
    # the rows the query's plain mode is valid for: at least `lookback` rows of their own series before them
    position = frame.select(pl.int_range(pl.len()).over("unique_id"))["literal"].to_numpy()
    rows = np.flatnonzero(position >= pipe.lookback)
    expected = pipe.matrix(query[rows])

    if n_series == 1:  # one row of scales: the query joins them as scalars
        z = pipe.target_numpy(frame["y"].to_numpy(), scales[SCALE_MEAN][0], scales[SCALE_STD][0])
    else:
        per_row = frame.select("unique_id").join(scales, on="unique_id", how="left", maintain_order="left")
        z = pipe.target_numpy(frame["y"].to_numpy(), per_row[SCALE_MEAN].to_numpy(), per_row[SCALE_STD].to_numpy())
    assert np.array_equal(z, query[TARGET].to_numpy(), equal_nan=True)  # float64, bit for bit
    assert np.isnan(z).sum() == sum(SPEC.differences) and query[TARGET].null_count() == sum(SPEC.differences)
    future = np.column_stack([frame[c].cast(pl.Float32).to_numpy()[rows] for c in SPEC.future_exog])
    got = pipe.block_matrix(z, rows, calendar=pipe.calendar_matrix(frame["ds"][rows]), future=future)

    assert got.dtype == np.float32 and got.shape == (len(rows), len(pipe.feature_names)) == expected.shape
    assert np.array_equal(got.view(np.uint32), expected.view(np.uint32))  # bit for bit, NaN included
    assert np.isfinite(got).all()  # every feature of those rows exists (so the comparison is not of NaNs)


def test_one_series_is_scaled_as_the_query_does_it_by_the_reciprocal() -> None:
    """polars joins a one-row scales frame as scalars and divides by multiplying with the reciprocal (one ulp
    apart from a division for some values): target_numpy follows it, so one-series forecasts stay identical."""
    pipe = FeaturePipeline(spec=FeatureSpec(lags=[1], scaler="standard"), freq=1, feature_names=["lag_1"],
                           target_lags={"lag_1": 1})
    y = np.random.default_rng(1).normal(500, 100, 300)
    frame = pl.DataFrame({"unique_id": "a", "ds": np.arange(300), "y": y})
    scales = pipe.scale_stats(frame)
    loc, scale = scales[SCALE_MEAN][0], scales[SCALE_STD][0]
    query = pipe.transform(frame, scales=scales)[TARGET].to_numpy()
    assert np.array_equal(pipe.target_numpy(y, loc, scale), query)
    assert np.array_equal(query, (y - loc) * (1.0 / scale)) and not np.array_equal(query, (y - loc) / scale)


def test_feature_defs_are_the_feature_names_in_order_with_their_lags() -> None:
    defs = feature_defs(SPEC)
    names, lags = FeaturePipeline._names(SPEC)
    assert [f.name for f in defs] == names
    assert names[:6] == ["lag_1", "lag_2", "lag_24", "lag_48", "rolling_mean_24_lag_1", "rolling_std_24_lag_1"]
    assert defs[-2:] == (FeatureDef("price", "future_exog", column="price"),
                         FeatureDef("promo", "future_exog", column="promo"))
    seasonal = next(f for f in defs if f.kind == "seasonal_rolling")
    assert (seasonal.name, seasonal.reach) == ("seasonal_rolling_mean_24x7_lag_24", [24, 48, 72, 96, 120, 144, 168])
    assert lags["rolling_std_5_lag_24"] == 24 and "hour" not in lags


@pytest.fixture(scope="module")
def hourly_models() -> dict[str, object]:
    """XGBoost and LightGBM on three hourly series with a future exogenous column (small, seconds to fit)."""
    from forecasting.models.registry import make_model

    rng = np.random.default_rng(7)
    t = np.arange(400)
    frame = pl.concat([pl.DataFrame({"unique_id": f"s{i}", "ds": pl.datetime_range(
        pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 1) + pl.duration(hours=399), "1h", eager=True),
        "y": 50 + 10 * i + 8 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1, t.size),
        "price": rng.normal(3, 1, t.size)}) for i in range(3)])
    return {lib: make_model({"name": lib, "params": {"season_length": 24, "n_estimators": 20}}, freq="1h").fit(frame)
            for lib in ("xgboost", "lightgbm")}


@pytest.mark.parametrize("lib", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("n_series", [1, 3])
def test_forecasts_of_the_numpy_path_are_the_query_path_s_bit_for_bit(
        lib: str, n_series: int, hourly_models: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    from forecasting.data import future_frame, validate_panel
    from forecasting.models import trees

    model = hourly_models[lib]
    history = validate_panel(model.panel_.frame.filter(  # type: ignore[attr-defined]
        pl.col("unique_id").is_in([f"s{i}" for i in range(n_series)])), freq="1h")
    future = future_frame(history, 30).with_columns(pl.Series("price", np.linspace(1, 5, 30 * n_series)))
    answered: list[bool] = []
    numpy_paths = trees.TreeForecaster._paths_numpy

    def spy(self: trees.TreeForecaster, *args: object, **kwargs: object) -> object:
        out = numpy_paths(self, *args, **kwargs)  # type: ignore[arg-type]
        answered.append(out is not None)
        return out

    monkeypatch.setattr(trees.TreeForecaster, "_paths_numpy", spy)
    fast = model.predict(30, history=history, X_future=future, level=[80, 95])  # type: ignore[attr-defined]
    assert answered == [True]  # the numpy path gave these forecasts
    monkeypatch.setattr(trees, "NUMPY_MAX_SERIES", 0)  # the polars block queries
    slow = model.predict(30, history=history, X_future=future, level=[80, 95])  # type: ignore[attr-defined]
    assert fast.schema == slow.schema and fast.height == 30 * n_series
    assert fast.equals(slow)  # every value, bit for bit


def _scan_frames() -> list[pl.DataFrame]:
    """Frames of every kind the scan answers differently on: in order or not, repeats, irregular steps,
    non-finite and null y, one row, datetimes, ids whose order needs more than the first character."""
    base = {"unique_id": ["a", "a", "a", "ab", "ab", "b"], "ds": [1, 2, 3, 1, 3, 7], "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}
    frames = [pl.DataFrame(base)]
    frames.append(pl.DataFrame({**base, "ds": [1, 2, 2, 1, 3, 7]}))  # a repeated (unique_id, ds)
    frames.append(pl.DataFrame({**base, "unique_id": ["b", "b", "b", "a", "a", "c"]}))  # ids out of order
    frames.append(pl.DataFrame({**base, "y": [1.0, float("inf"), 3.0, 4.0, None, 6.0]}))
    frames.append(pl.DataFrame({**base, "y": [1.0, 2.0, float("nan"), 4.0, 5.0, 6.0]}))
    frames.append(pl.DataFrame({"unique_id": ["z"], "ds": [5], "y": [1.0]}))
    frames.append(pl.DataFrame({"unique_id": ["é", "é", "z"], "ds": [3, 1, 2], "y": [1.0, 2.0, 3.0]}))
    frames.append(pl.DataFrame({"unique_id": ["a"] * 3, "ds": [2**62, -(2**62), 0], "y": [1.0] * 3}))  # wraps
    hours = pl.datetime_range(pl.datetime(2024, 3, 30), pl.datetime(2024, 4, 1), "1h", eager=True)
    frames.append(pl.DataFrame({"unique_id": "h", "ds": hours, "y": np.arange(len(hours), dtype=float)}))
    return frames


@pytest.mark.parametrize("i", range(9))
def test_the_numpy_scan_of_a_small_request_answers_as_the_polars_query(i: int,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from forecasting import data

    frame = _scan_frames()[i].with_columns(pl.col("y").cast(pl.Float64))
    numpy_scan = data._scan(frame)
    monkeypatch.setattr(data, "_NUMPY_ROWS", 0)  # the query
    assert numpy_scan == data._scan(frame)
    runs = frame["unique_id"].rle()
    assert data._run_lengths(frame["unique_id"]) == dict(
        zip(runs.struct.field("value").to_list(), runs.struct.field("len").to_list(), strict=True))


def test_scan_values_of_a_small_request_are_the_hand_computed_ones() -> None:
    from forecasting.data import _scan

    frame = _scan_frames()[0]
    scan = _scan(frame)
    assert scan is not None
    assert (scan.in_order, scan.ds_int, scan.y_finite, scan.step_lo, scan.step_hi) == (True, True, True, 1, 2)
    scan = _scan(_scan_frames()[3].with_columns(pl.col("y").cast(pl.Float64)))
    assert scan is not None and scan.y_finite is False


@pytest.mark.parametrize("freq", [1, 7])
def test_future_steps_of_a_small_integer_request_are_the_query_s(freq: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from forecasting import data

    frame = pl.DataFrame({"unique_id": ["b", "b", "a", "a", "a"], "ds": [3, 4, 1, 2, 3], "y": [1.0] * 5})
    panel = data.Panel(frame=frame.with_columns(pl.col("ds") * freq), freq=freq, lengths={"b": 2, "a": 3})
    small = data.future_frame(panel, 2)
    assert small.to_dict(as_series=False) == {"unique_id": ["b", "b", "a", "a"],
                                              "ds": [5 * freq, 6 * freq, 4 * freq, 5 * freq]}
    monkeypatch.setattr(data, "_NUMPY_ROWS", 0)  # the query
    assert small.equals(data.future_frame(panel, 2)) and small.schema == data.future_frame(panel, 2).schema
