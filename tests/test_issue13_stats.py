"""Issue 13, the statistical zoo: AutoCES and the intermittent-demand models (forecasts computed by hand),
statsforecast's defaults, local fitting in worker processes (identical forecasts, deadline and per-series
failures from the workers), in-sample fitted values, and naive2 on series with zeros."""

from __future__ import annotations

import inspect
import time

import numpy as np
import polars as pl
import pytest

from forecasting.data import validate_panel
from forecasting.datasets import load_air_passengers
from forecasting.decomposition import naive2_decompose, naive2_forecast, seasonality_test
from forecasting.errors import (
    CapabilityError,
    InsufficientHistoryError,
    ModelFitError,
    NotFittedError,
    TimeLimitError,
)
from forecasting.models import REGISTRY, make_model
from forecasting.models.local import ALL_CORES, LocalForecaster, available_cpus, resolve_n_jobs

INTERMITTENT = ["croston_classic", "croston_optimized", "croston_sba", "adida", "imapa", "tsb"]


def _frame(series: dict[str, list[float]]) -> dict[str, list]:
    return {"unique_id": [u for u, y in series.items() for _ in y], "ds": [t for y in series.values()
                                                                           for t in range(len(y))],
            "y": [float(v) for y in series.values() for v in y]}


def _point(name: str, y: list[float], h: int = 2, **params: float) -> list[float]:
    out = make_model({"name": name, "params": params}, freq=1).fit(_frame({"s": y})).predict(h)
    return out[out.columns[-1]].to_list()


def _ses(x: list[float], alpha: float) -> float:
    """Simple exponential smoothing started at the first value: the level after the last (by hand)."""
    level = x[0]
    for v in x[1:]:
        level = alpha * v + (1 - alpha) * level
    return level


# ----------------------------------------------------------------------------- intermittent demand, by hand
Y = [0, 2, 0, 0, 4, 0, 0]  # demands 2, 4; intervals 2, 3 (the first counted from the start)
ALTERNATING = [0, 3, 0, 3, 0, 3, 0, 3]  # demands all 3, intervals all 2


def test_croston_classic_by_hand() -> None:
    # SES(0.1) of the demand sizes 2, 4 -> 2.2; of the intervals 2, 3 -> 2.1; forecast 2.2 / 2.1
    assert _point("croston_classic", Y) == pytest.approx([2.2 / 2.1] * 2, rel=1e-12)


def test_croston_sba_is_croston_times_0_95() -> None:
    assert _point("croston_sba", Y) == pytest.approx([0.95 * 2.2 / 2.1] * 2, rel=1e-12)


def test_croston_optimized_on_constant_demands_and_intervals() -> None:
    # whatever the smoothing constants, SES of constant sizes (3) and intervals (2) is constant: 3 / 2
    assert _point("croston_optimized", ALTERNATING) == pytest.approx([1.5, 1.5], rel=1e-12)


def test_tsb_by_hand() -> None:
    # probability 0,1,0,0,1,0,0 smoothed with 0.1 -> 0.140049; sizes 2, 4 -> 2.2
    p = _ses([float(v != 0) for v in Y], 0.1)
    assert p == pytest.approx(0.140049)
    assert _point("tsb", Y, alpha_d=0.1, alpha_p=0.1) == pytest.approx([p * 2.2] * 2, rel=1e-12)
    assert _point("tsb", Y) == _point("tsb", Y, alpha_d=0.1, alpha_p=0.1)  # the documented defaults
    # with alpha_p = 0.5 the probability decays faster after the last demand
    assert _point("tsb", Y, alpha_p=0.5)[0] == pytest.approx(_ses([float(v != 0) for v in Y], 0.5) * 2.2)


def test_adida_aggregates_at_the_mean_interval() -> None:
    # mean interval 2: sums over pairs are 3, 3, 3, 3; SES of them is 3; spread over the pair: 1.5
    assert _point("adida", ALTERNATING) == pytest.approx([1.5, 1.5], rel=1e-12)


def test_imapa_averages_aggregation_levels() -> None:
    # levels 1 and 2: level 2 gives 1.5 (as ADIDA); level 1 is SES of the series itself with alpha
    # minimising the in-sample squared one-step error in [0.1, 0.3] (here by a grid), then the mean of both
    def sse(alpha: float) -> float:
        level, total = ALTERNATING[0], 0.0
        for v in ALTERNATING[1:]:
            total += (v - level) ** 2
            level = alpha * v + (1 - alpha) * level
        return total

    grid = np.linspace(0.1, 0.3, 20_001)
    alpha = float(grid[np.argmin([sse(a) for a in grid])])
    expected = (_ses([float(v) for v in ALTERNATING], alpha) + 1.5) / 2
    assert _point("imapa", ALTERNATING) == pytest.approx([expected] * 2, rel=1e-5)


@pytest.mark.parametrize("name", INTERMITTENT)
def test_intermittent_conformal_intervals(name: str) -> None:
    y = [0, 2, 0, 0, 4, 0, 1, 0, 0, 3, 0, 0, 2, 0, 5, 0, 0, 1, 0, 2, 0, 0, 3, 0]
    model = make_model(name, freq=1).fit(_frame({"s": y}))
    a = model.alias
    out = model.predict(3, level=[80, 95])
    assert out.columns == ["unique_id", "ds", a, f"{a}-lo-80", f"{a}-hi-80", f"{a}-lo-95", f"{a}-hi-95"]
    assert out[a].to_list() == model.predict(3)[a].to_list()
    assert (out[f"{a}-lo-95"] <= out[f"{a}-lo-80"]).all() and (out[f"{a}-hi-80"] <= out[f"{a}-hi-95"]).all()
    assert (out[f"{a}-lo-80"] < out[a]).all() and (out[a] < out[f"{a}-hi-80"]).all()
    # two conformal windows of h plus one observation: 24 observations allow h = 11, not 12
    assert model.predict(11, level=[80]).height == 11
    with pytest.raises(InsufficientHistoryError) as err:
        model.predict(12, level=[80])
    assert err.value.message == (
        f"model '{name}': conformal prediction intervals at h=12 need at least 25 observations per series (two "
        f"windows of h plus one); series 's': 24 (ask without level, or for a shorter h)")
    assert err.value.field == "level"


def test_negative_demand_is_refused_per_series_and_can_fall_back() -> None:
    data = _frame({"ok": Y, "neg": [0, 2, 0, -1, 4, 0, 0]})
    with pytest.raises(ModelFitError) as err:
        make_model("croston_classic", freq=1).fit(data)
    assert err.value.details["series"] == {
        "neg": "ValueError: intermittent-demand models need non-negative values (demand); 1 value(s) < 0, first at "
               "position 3"}
    model = make_model({"name": "croston_classic", "fallback": "naive"}, freq=1).fit(data)
    assert [(f.unique_id, f.model) for f in model.fallbacks_] == [("neg", "naive")]
    out = model.predict(1)
    assert dict(zip(out["unique_id"], out["CrostonClassic"], strict=True)) == pytest.approx({"neg": 0.0,
                                                                                             "ok": 2.2 / 2.1})


def test_intermittent_models_are_statistical_with_documented_sources() -> None:
    from forecasting.models import stats

    for name in [*INTERMITTENT, "auto_ces"]:
        entry = REGISTRY[name]
        assert entry.family == "statistical"
        cls = entry.load()
        assert cls.capabilities.supports_intervals and cls.capabilities.has_fitted_values
        assert "Source:" in (cls.__doc__ or "")
        assert cls.__module__ == stats.__name__


# ----------------------------------------------------------------------------- AutoCES and statsforecast defaults
def test_auto_ces_matches_statsforecast_on_air_passengers() -> None:
    from statsforecast.models import AutoCES

    air = load_air_passengers()
    ours = make_model("auto_ces", freq="1mo").fit(air).predict(12, level=[95])
    ref = AutoCES(season_length=12).forecast(air["y"].to_numpy(), 12, level=[95])
    np.testing.assert_allclose(ours["CES"].to_numpy(), ref["mean"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours["CES-hi-95"].to_numpy(), ref["hi-95"], rtol=0, atol=1e-9)
    assert 400 < ours["CES"].mean() < 600  # AirPassengers' 1961 level


#: our registry name -> (statsforecast class, the constructor arguments our adapter passes from its params)
PASSED = {"auto_ets": ("AutoETS", ["model", "damped"]),
          "auto_arima": ("AutoARIMA", ["d", "D", "max_p", "max_q", "stepwise", "approximation"]),
          "auto_theta": ("AutoTheta", ["decomposition_type", "model"]),
          "dynamic_optimized_theta": ("DynamicOptimizedTheta", ["decomposition_type"]),
          "auto_ces": ("AutoCES", ["model"])}


@pytest.mark.parametrize("name", sorted(PASSED))
def test_our_defaults_are_statsforecasts(name: str) -> None:
    import statsforecast.models as sfm

    cls_name, passed = PASSED[name]
    theirs = inspect.signature(getattr(sfm, cls_name)).parameters
    made = make_model(name, freq="1mo")._make()  # what the adapter gives statsforecast from our default params
    for param in passed:
        assert getattr(made, param) == theirs[param].default, f"{name}.{param}"
    assert REGISTRY["auto_arima"].params().approximation is False  # was None (R's rule), 0.871 vs 0.868 OWA


# ----------------------------------------------------------------------------- worker processes
def test_resolve_n_jobs() -> None:
    cpus = available_cpus()
    assert resolve_n_jobs(ALL_CORES) == cpus
    assert resolve_n_jobs(-2) == max(1, cpus - 1)
    assert resolve_n_jobs(0) == resolve_n_jobs(1) == 1
    assert resolve_n_jobs(3) == 3


def _panel(k: int) -> pl.DataFrame:
    air = load_air_passengers()
    return pl.concat([air.with_columns(pl.lit(f"s{i}").alias("unique_id"), pl.col("y") * (1 + i / 10))
                      for i in range(k)])


def test_worker_processes_give_identical_forecasts_and_fitted_values() -> None:
    panel = _panel(5)
    spec = {"name": "auto_ets", "params": {"model": "ZZN"}}  # fast: no seasonal component to search
    one = make_model(spec, freq="1mo", n_jobs=1).fit(panel)
    two = make_model(spec, freq="1mo", n_jobs=2).fit(panel)
    assert one.predict(6, level=[80]).equals(two.predict(6, level=[80]))
    assert one.fitted_values().equals(two.fitted_values())


def test_per_series_failures_are_reported_from_the_workers() -> None:
    data = _frame({f"s{i}": [0, 2, 0, -1 if i in (1, 4) else 1, 4, 0, 0] for i in range(6)})
    with pytest.raises(ModelFitError) as err:
        make_model("croston_classic", freq=1, n_jobs=2).fit(data)
    assert sorted(err.value.details["series"]) == ["s1", "s4"]
    model = make_model({"name": "croston_classic", "fallback": "naive"}, freq=1, n_jobs=2).fit(data)
    assert [f.unique_id for f in model.fallbacks_] == ["s1", "s4"]


def test_deadline_holds_in_the_workers() -> None:
    model = make_model("naive", freq="1mo", n_jobs=2)
    model.deadline = time.time() - 1
    with pytest.raises(TimeLimitError) as err:
        model.fit(_panel(6))
    assert err.value.message.startswith("fitting stopped after 0 of 6 series: the time limit was reached")
    assert err.value.details == {"fitted": 0, "series": 6}


# ----------------------------------------------------------------------------- fitted values
def test_naive_fitted_values_are_y_shifted_by_one() -> None:
    data = _frame({"a": [3, 5, 4, 6], "b": [1, 2]})
    out = make_model("naive", freq=1).fit(data).fitted_values()
    assert out.columns == ["unique_id", "ds", "y", "Naive"]
    assert out.rows() == [("a", 0, 3.0, None), ("a", 1, 5.0, 3.0), ("a", 2, 4.0, 5.0), ("a", 3, 6.0, 4.0),
                          ("b", 0, 1.0, None), ("b", 1, 2.0, 1.0)]


def test_seasonal_naive_fitted_values_and_dates_in_the_callers_form() -> None:
    air = load_air_passengers()
    out = make_model("seasonal_naive", freq="1mo").fit(air).fitted_values()
    assert out["ds"].to_list() == air["ds"].to_list()
    assert out["SeasonalNaive"].to_list() == [None] * 12 + air["y"].head(132).to_list()


def test_croston_fitted_values_by_hand() -> None:
    out = make_model("croston_classic", freq=1).fit(_frame({"s": Y})).fitted_values()["CrostonClassic"].to_list()
    # before the first demand: no estimate; then 2/2 until the second demand; then 2.2/2.1
    assert out[0] is None
    assert out[-1] == pytest.approx(2.2 / 2.1)


def test_fallback_series_get_the_fallbacks_fitted_values() -> None:
    data = _frame({"long": [3, 5, 4, 6, 5, 7, 6, 8], "short": [1, 2, 4]})
    model = make_model({"name": "auto_ets", "fallback": "naive"}, freq=1).fit(data)
    out = model.fitted_values().filter(pl.col("unique_id") == "short")
    assert out["AutoETS"].to_list() == [None, 1.0, 2.0]


class _NoFit(LocalForecaster):
    name = "no_fit"
    default_alias = "NoFit"

    def _fit_one(self, y: np.ndarray) -> float:
        return float(y[-1])


def test_fitted_values_refused_without_a_fit_or_the_capability() -> None:
    with pytest.raises(NotFittedError, match=r"call fit\(panel\) before fitted_values\(\)"):
        make_model("naive", freq=1).fitted_values()
    with pytest.raises(CapabilityError, match="model 'no_fit' cannot give in-sample fitted values: this model keeps"):
        _NoFit().fit(_frame({"a": [1, 2, 3]})).fitted_values()


# ----------------------------------------------------------------------------- naive2 on zeros
def _seasonal_with_zero() -> np.ndarray:
    y = load_air_passengers()["y"].to_numpy().copy()
    y[100] = 0.0
    assert seasonality_test(y, 12)
    return y


def test_naive2_on_a_seasonal_series_with_a_zero_is_plain_naive_and_says_so() -> None:
    y = _seasonal_with_zero()
    dec = naive2_decompose(y, 12)
    assert dec.note == ("seasonal at lag 12 by Naive2's 90% autocorrelation test, but 1 value(s) <= 0 (first at "
                        "position 100) leave its multiplicative seasonal indices undefined: plain naive used")
    assert naive2_forecast(y, 3, 12).mean.tolist() == [y[-1]] * 3
    data = _frame({"zero": y.tolist(), "air": load_air_passengers()["y"].to_list()})
    model = make_model({"name": "naive2", "params": {"season_length": 12}}, freq=1).fit(data)
    out = model.predict(3, level=[80])
    assert out.filter(pl.col("unique_id") == "zero")["Naive2"].to_list() == [y[-1]] * 3
    assert out.filter(pl.col("unique_id") == "air")["Naive2"].to_list() != [432.0] * 3  # still seasonal
    assert [(f.unique_id, f.model, f.reason) for f in model.fallbacks_] == [("zero", "naive", dec.note)]


def test_naive2_on_quarterly_data_with_zeros_and_negatives_never_fails() -> None:
    rng = np.random.default_rng(0)
    quarter = np.tile([0.0, 5.0, 10.0, 3.0], 10) + rng.integers(0, 2, 40)
    series = {"zeros": quarter.tolist(), "negative": (quarter - 4).tolist(), "flat": [0.0] * 40}
    panel = validate_panel(_frame(series), freq=1)
    model = make_model({"name": "naive2", "params": {"season_length": 4}}, freq=1).fit(panel)
    out = model.predict(8, level=[95])
    assert out.height == 24 and all(out[c].is_finite().all() for c in out.columns[2:])
    assert {f.unique_id for f in model.fallbacks_} <= {"zeros", "negative"}
    assert model.fitted_values().height == 120


def test_the_parallel_benchmark_compares_like_with_like() -> None:
    """benchmarks/local_parallel.py's comparison on a small panel: both sides run, forecasts identical."""
    from forecasting.benchmarks.local_parallel import compare

    frame = _panel(4).with_columns(pl.int_range(1, pl.len() + 1).over("unique_id").cast(pl.Int64).alias("ds"))
    row = compare("auto_theta", frame, season=12, h=6, n_jobs=2, repeats=1)
    assert row["series"] == 4 and row["rows_missing"] == 0 and row["identical"], row
    assert row["ratio"] == pytest.approx(row["wall_ours_s"] / row["wall_statsforecast_s"], rel=0.01)


def _stuck_fit(fit_one, items, deadline=None):  # a worker stuck inside one series' fit
    time.sleep(120)
    return [], False


def test_worker_stuck_inside_a_fit_is_killed_after_the_deadline(monkeypatch) -> None:
    from forecasting.errors import TimeLimitError
    from forecasting.models import local
    from forecasting.models.registry import make_model

    monkeypatch.setattr(local, "_run_fit", _stuck_fit)
    monkeypatch.setattr(local, "_POOL_GRACE_S", 1.0)
    monkeypatch.setattr(local, "_PROBE_S", 0.0)  # straight to the workers, whatever the estimate
    monkeypatch.setattr(local, "_POOL_MIN_S", {"fork": 0.0, "spawn": 0.0, "forkserver": 0.0})
    t = np.arange(40)
    df = pl.concat([pl.DataFrame({"unique_id": f"s{i}", "ds": t, "y": (5.0 + i + np.sin(t)).astype(float)})
                    for i in range(8)])
    model = make_model("naive", n_jobs=2)
    model.deadline = time.time() + 1.0
    t0 = time.perf_counter()
    with pytest.raises(TimeLimitError, match=r"fitting did not finish 1 s after the time limit: its worker "
                                             r"processes were stopped"):
        model.fit(validate_panel(df))
    assert time.perf_counter() - t0 < 15  # not the 120 s the stuck workers would take
