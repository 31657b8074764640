"""Metrics against hand-computed values, and the M4 Hourly pins (published benchmark scores)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from forecasting.decomposition import naive2_forecast, naive2_intervals
from forecasting.errors import InsufficientHistoryError, InvalidInputError, InvalidParameterError
from forecasting.evaluation import coverage, evaluate, mae, mase, msis, owa, rmse, smape

# ----------------------------------------------------------------------------- array metrics


def test_smape_by_hand() -> None:
    # 200*|100-110|/(100+110) = 2000/210 = 9.5238095...
    # 200*|200-180|/(200+180) = 4000/380 = 10.5263157...
    # mean = (2000/210 + 4000/380) / 2
    assert smape([100.0, 200.0], [110.0, 180.0]) == pytest.approx((2000 / 210 + 4000 / 380) / 2, rel=1e-12)


def test_smape_bounds_and_zero_over_zero() -> None:
    assert smape([1.0], [-1.0]) == pytest.approx(200.0)  # 200*2/(1+1): the maximum
    assert smape([0.0, 2.0], [0.0, 2.0]) == 0.0  # 0/0 counts as a perfect step
    assert smape([3.0, 4.0], [3.0, 4.0]) == 0.0


def test_mase_by_hand() -> None:
    # MAE of the forecast: (|5-6| + |7-6|)/2 = 1.
    # m=1 scale: mean(|2-1|, |4-2|, |7-4|) = 2 -> 0.5
    # m=2 scale: mean(|4-1|, |7-2|) = 4 -> 0.25
    assert mase([5.0, 7.0], [6.0, 6.0], [1.0, 2.0, 4.0, 7.0], 1) == pytest.approx(0.5)
    assert mase([5.0, 7.0], [6.0, 6.0], [1.0, 2.0, 4.0, 7.0], 2) == pytest.approx(0.25)


def test_mase_zero_scale_raises() -> None:
    with pytest.raises(InvalidInputError, match="scale"):
        mase([1.0], [1.0], [1.0, 2.0, 1.0, 2.0], 2)  # repeats exactly every 2 steps


def test_mase_short_train_raises() -> None:
    with pytest.raises(InsufficientHistoryError):
        mase([1.0], [1.0], [1.0, 2.0], 2)


def test_mae_rmse_by_hand() -> None:
    # errors 1, 0, 2: MAE = 3/3 = 1, RMSE = sqrt((1 + 0 + 4)/3)
    assert mae([1.0, 2.0, 3.0], [2.0, 2.0, 5.0]) == pytest.approx(1.0)
    assert rmse([1.0, 2.0, 3.0], [2.0, 2.0, 5.0]) == pytest.approx(math.sqrt(5 / 3))


def test_coverage_by_hand() -> None:
    # 1 in [0,2] yes; 5 in [0,4] no; 3 in [3,4] yes (bound included); 2 in [2.5,3] no -> 2/4
    assert coverage([1.0, 5.0, 3.0, 2.0], [0.0, 0.0, 3.0, 2.5], [2.0, 4.0, 4.0, 3.0]) == 0.5


def test_msis_by_hand() -> None:
    # level 80 -> alpha = 0.2, 2/alpha = 10; scale (m=1) of [1,2,4,7] = 2.
    # step 1: y=5 in [4,6]:  width 2                     = 2
    # step 2: y=10 > 6:      width 2 + 10*(10-6)         = 42
    # step 3: y=0 < 2:       width 1 + 10*(2-0)          = 21
    # mean = 65/3; MSIS = 65/3/2 = 10.8333...
    got = msis([5.0, 10.0, 0.0], [4.0, 4.0, 2.0], [6.0, 6.0, 3.0], [1.0, 2.0, 4.0, 7.0], 1, 80)
    assert got == pytest.approx(65 / 3 / 2)


def test_owa_by_hand() -> None:
    # 0.5 * (12/16 + 1.5/2) = 0.5 * (0.75 + 0.75) = 0.75
    assert owa(12.0, 1.5, 16.0, 2.0) == pytest.approx(0.75)
    with pytest.raises(InvalidParameterError, match="smape_naive2"):
        owa(1.0, 1.0, 0.0, 1.0)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: smape([1.0, 2.0], [1.0]), InvalidInputError),
        (lambda: smape([1.0, np.nan], [1.0, 1.0]), InvalidInputError),
        (lambda: mae([], []), InvalidInputError),
        (lambda: coverage([1.0], [2.0], [1.0]), InvalidInputError),
        (lambda: msis([1.0], [0.0], [2.0], [1.0, 2.0, 3.0], 1, 100), InvalidParameterError),
        (lambda: mase([1.0], [1.0], [1.0, 2.0, 3.0], 0), InvalidParameterError),
    ],
)
def test_array_metrics_reject_bad_input(call, error) -> None:
    with pytest.raises(error):
        call()


# ----------------------------------------------------------------------------- evaluate()


def _tiny_frames() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    train = pl.DataFrame(
        {
            "unique_id": ["a"] * 4 + ["b"] * 3,
            "ds": [1, 2, 3, 4, 1, 2, 3],
            "y": [1.0, 2.0, 4.0, 7.0, 10.0, 10.0, 12.0],
        }
    )
    actuals = pl.DataFrame({"unique_id": ["a", "a", "b"], "ds": [5, 6, 4], "y": [5.0, 7.0, 10.0]})
    forecasts = pl.DataFrame(
        {
            "unique_id": ["a", "a", "b"],
            "ds": [5, 6, 4],
            "good": [6.0, 6.0, 10.0],
            "good-lo-80": [5.5, 5.5, 9.0],
            "good-hi-80": [6.5, 6.5, 11.0],
            "naive2": [7.0, 7.0, 12.0],
        }
    )
    return forecasts, actuals, train


def test_evaluate_by_hand() -> None:
    forecasts, actuals, train = _tiny_frames()
    out = evaluate(
        forecasts, actuals, train, models=["good", "naive2"], season_length=1, level=[80], naive2_column="naive2"
    )
    assert out.columns == ["model", "smape", "mase", "owa", "mae", "rmse", "coverage_80", "msis_80", "wql", "sql"]
    good, n2 = out.row(0, named=True), out.row(1, named=True)
    # series a: scale mean(1,2,3)=2; good errors 1,1; naive2 errors 2,0
    # series b: scale mean(0,2)=1;   good error 0;    naive2 error 2
    smape_a = (200 * 1 / 11 + 200 * 1 / 13) / 2
    assert good["smape"] == pytest.approx((smape_a + 0.0) / 2)
    assert good["mase"] == pytest.approx((1 / 2 + 0 / 1) / 2)
    assert good["mae"] == pytest.approx((1.0 + 0.0) / 2)
    assert good["rmse"] == pytest.approx((1.0 + 0.0) / 2)
    smape_n2_a = (200 * 2 / 12 + 0.0) / 2
    smape_n2_b = 200 * 2 / 22
    assert n2["smape"] == pytest.approx((smape_n2_a + smape_n2_b) / 2)
    assert n2["mase"] == pytest.approx((1 / 2 + 2 / 1) / 2)
    assert n2["owa"] == pytest.approx(1.0)
    assert good["owa"] == pytest.approx(0.5 * (good["smape"] / n2["smape"] + good["mase"] / n2["mase"]))
    # coverage: a: 5 not in [5.5,6.5], 7 not in [5.5,6.5] -> 0; b: 10 in [9,11] -> 1; mean 0.5
    assert good["coverage_80"] == pytest.approx(0.5)
    # msis (alpha .2, 2/a = 10): a: (1 + 10*0.5) and (1 + 10*0.5) -> mean 6, /2 = 3; b: 2/1 = 2
    assert good["msis_80"] == pytest.approx((3.0 + 2.0) / 2)
    assert n2["coverage_80"] is None and n2["msis_80"] is None


def test_evaluate_owa_null_without_naive2() -> None:
    forecasts, actuals, train = _tiny_frames()
    out = evaluate(forecasts, actuals, train, models=["good"], season_length=1)
    assert out["owa"].to_list() == [None]


def test_evaluate_matches_array_metrics() -> None:
    forecasts, actuals, train = _tiny_frames()
    out = evaluate(forecasts.filter(pl.col("unique_id") == "a"), actuals.filter(pl.col("unique_id") == "a"),
                   train, models=["good"], season_length=1)
    assert out["mase"][0] == pytest.approx(mase([5.0, 7.0], [6.0, 6.0], [1.0, 2.0, 4.0, 7.0], 1))
    assert out["smape"][0] == pytest.approx(smape([5.0, 7.0], [6.0, 6.0]))


def test_evaluate_mismatched_rows_names_series() -> None:
    forecasts, actuals, train = _tiny_frames()
    shifted = forecasts.with_columns(pl.when(pl.col("unique_id") == "b").then(99).otherwise(pl.col("ds")).alias("ds"))
    with pytest.raises(InvalidInputError, match="'b'") as info:
        evaluate(shifted, actuals, train, models=["good"], season_length=1)
    assert info.value.details["series"] == ["b"]


def test_evaluate_missing_series_names_series() -> None:
    forecasts, actuals, train = _tiny_frames()
    with pytest.raises(InvalidInputError, match="'b'"):
        evaluate(forecasts.filter(pl.col("unique_id") == "a"), actuals, train, models=["good"], season_length=1)


def test_evaluate_nan_forecast_names_model_and_series() -> None:
    forecasts, actuals, train = _tiny_frames()
    bad = forecasts.with_columns(pl.when(pl.col("unique_id") == "b").then(float("nan")).otherwise(pl.col("good")).alias("good"))
    with pytest.raises(InvalidInputError, match=r"'good'.*'b'"):
        evaluate(bad, actuals, train, models=["good"], season_length=1)


def test_evaluate_zero_scale_names_series() -> None:
    forecasts, actuals, train = _tiny_frames()
    flat = train.with_columns(pl.when(pl.col("unique_id") == "b").then(3.0).otherwise(pl.col("y")).alias("y"))
    with pytest.raises(InvalidInputError, match=r"scale.*'b'"):
        evaluate(forecasts, actuals, flat, models=["good"], season_length=1)


def test_evaluate_unscaled_null_leaves_series_without_scale_out_of_mase_and_msis() -> None:
    """Training jobs' hold-out: a flat series still counts in sMAPE, not in MASE/MSIS (and OWA is null)."""
    forecasts, actuals, train = _tiny_frames()
    flat = train.with_columns(pl.when(pl.col("unique_id") == "b").then(3.0).otherwise(pl.col("y")).alias("y"))
    out = evaluate(forecasts, actuals, flat, models=["good", "naive2"], season_length=1, level=[80],
                   naive2_column="naive2", unscaled="null")
    good = out.row(0, named=True)
    assert good["mase"] == pytest.approx(1 / 2)  # series a only (scale 2, errors 1, 1)
    assert good["msis_80"] == pytest.approx(3.0)  # series a only
    assert good["smape"] == pytest.approx(((200 * 1 / 11 + 200 * 1 / 13) / 2 + 0.0) / 2)  # both series
    assert good["coverage_80"] == pytest.approx(0.5)  # both series
    only_flat = evaluate(forecasts.filter(pl.col("unique_id") == "b"), actuals.filter(pl.col("unique_id") == "b"),
                         flat, models=["good"], season_length=1, naive2_column="naive2", unscaled="null")
    assert only_flat["mase"].to_list() == [None] and only_flat["owa"].to_list() == [None]
    with pytest.raises(InvalidParameterError, match="unscaled"):
        evaluate(forecasts, actuals, train, models=["good"], season_length=1, unscaled="skip")  # type: ignore[arg-type]


def test_evaluate_rejects_missing_column_and_empty_models() -> None:
    forecasts, actuals, train = _tiny_frames()
    with pytest.raises(InvalidInputError, match="nope"):
        evaluate(forecasts, actuals, train, models=["nope"], season_length=1)
    with pytest.raises(InvalidParameterError, match="models"):
        evaluate(forecasts, actuals, train, models=[], season_length=1)
    with pytest.raises(InvalidInputError, match="duplicated"):
        evaluate(pl.concat([forecasts, forecasts]), actuals, train, models=["good"], season_length=1)


# ----------------------------------------------------------------------------- M4 Hourly pins

# The M4 organisers' published scores on M4 Hourly (Makridakis, Spiliotis & Assimakopoulos
# 2020, IJF 36(1); Benchmarks and Evaluation.R in Mcompetitions/M4-methods). They pin the
# metric code (sNaive) and the decomposition + seasonality test (Naive2).
M4_HOURLY_PINS = {
    "seasonal_naive": {"smape": 13.912, "mase": 1.193},
    "naive2": {"smape": 18.383, "mase": 2.395},
}
H, M = 48, 24


@pytest.fixture(scope="module")
def m4_hourly_scored(data_dir) -> tuple[pl.DataFrame, pl.DataFrame]:
    from forecasting.datasets import load_m4_hourly

    train, test = load_m4_hourly(download=False)
    rows = []
    for (uid,), part in train.group_by("unique_id", maintain_order=True):
        y = part["y"].to_numpy()
        n = y.size
        n2 = naive2_forecast(y, H, M)
        lo, hi = naive2_intervals(y, H, M, level=[95])[95]
        rows.append(
            pl.DataFrame(
                {
                    "unique_id": [uid] * H,
                    "ds": np.arange(n + 1, n + H + 1, dtype=np.int64),
                    "seasonal_naive": np.resize(y[-M:], H),
                    "naive2": n2.mean,
                    "naive2-lo-95": lo,
                    "naive2-hi-95": hi,
                }
            )
        )
    forecasts = pl.concat(rows)
    scores = evaluate(
        forecasts, test, train, models=["seasonal_naive", "naive2"], season_length=M, level=[95],
        naive2_column="naive2",
    )
    return scores, forecasts


@pytest.mark.parametrize("model", ["seasonal_naive", "naive2"])
@pytest.mark.parametrize("metric", ["smape", "mase"])
def test_m4_hourly_published_scores(m4_hourly_scored, model: str, metric: str) -> None:
    scores, _ = m4_hourly_scored
    got = scores.filter(pl.col("model") == model)[metric].item()
    assert got == pytest.approx(M4_HOURLY_PINS[model][metric], abs=0.005)


def test_m4_hourly_owa(m4_hourly_scored) -> None:
    scores, _ = m4_hourly_scored
    by_model = {r["model"]: r for r in scores.iter_rows(named=True)}
    assert by_model["naive2"]["owa"] == pytest.approx(1.0)
    # 0.5 * (13.912/18.383 + 1.193/2.395) = 0.6274 from the published figures
    assert by_model["seasonal_naive"]["owa"] == pytest.approx(0.5 * (13.912 / 18.383 + 1.193 / 2.395), abs=0.001)
    cov = by_model["naive2"]["coverage_95"]
    assert 0.0 < cov <= 1.0 and by_model["naive2"]["msis_95"] > 0


def test_m4_hourly_array_path_matches_evaluate(m4_hourly_scored, data_dir) -> None:
    from forecasting.datasets import load_m4_hourly

    scores, forecasts = m4_hourly_scored
    train, test = load_m4_hourly(download=False)
    uid = "H1"
    y_train = train.filter(pl.col("unique_id") == uid)["y"].to_numpy()
    y_test = test.filter(pl.col("unique_id") == uid)["y"].to_numpy()
    f = forecasts.filter(pl.col("unique_id") == uid)["seasonal_naive"].to_numpy()
    one = evaluate(
        forecasts.filter(pl.col("unique_id") == uid), test.filter(pl.col("unique_id") == uid), train,
        models=["seasonal_naive"], season_length=M,
    ).row(0, named=True)
    assert one["smape"] == pytest.approx(smape(y_test, f))
    assert one["mase"] == pytest.approx(mase(y_test, f, y_train, M))
