"""Issue 13, item 6: the data contract's business days and pandas frequency aliases.

Business-day data (Monday to Friday) is a regular series of freq ``"1bd"`` (pandas ``"B"``):
inferred when every step is one business day, checked on the business-day grid, forecast on
business days, season length 5. Pandas offset aliases are accepted wherever a freq is given
(library, API, CLI all call :func:`forecasting.data.normalize_freq`). The speed of validation is
measured by ``benchmarks/validation_speed.py``; the fast paths it relies on are checked against
the general code in ``tests/test_data.py`` (``_FAST_CASES``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest

from forecasting.data import Panel, future_frame, infer_freq, normalize_freq, to_caller_tz, validate_panel
from forecasting.errors import InvalidInputError, InvalidParameterError
from forecasting.features import FeaturePipeline, FeatureSpec, default_features
from forecasting.models.registry import default_season_length
from forecasting.service import forecast

# --------------------------------------------------------------------------- pandas aliases
ALIASES = {
    "H": "1h", "h": "1h", "D": "1d", "W": "1w", "W-SUN": "1w", "W-MON": "1w", "2W-FRI": "2w", "MS": "1mo",
    "ME": "1mo", "M": "1mo", "QS": "3mo", "QS-JAN": "3mo", "Q": "3mo", "Q-DEC": "3mo", "QE": "3mo", "2QS": "6mo",
    "A": "1y", "A-DEC": "1y", "Y": "1y", "YE": "1y", "YS": "1y", "AS": "1y", "T": "1m", "min": "1m", "S": "1s",
    "s": "1s", "L": "1ms", "ms": "1ms", "U": "1us", "us": "1us", "B": "1bd", "2B": "2bd", "15min": "15m",
    "30T": "30m", "4H": "4h", "12h": "12h", "7D": "7d", "3MS": "3mo", "1bd": "1bd", "1q": "3mo", "30m": "30m",
}


@pytest.mark.parametrize(("alias", "expected"), list(ALIASES.items()))
def test_pandas_alias_normalized(alias: str, expected: str) -> None:
    assert normalize_freq(alias) == expected


@pytest.mark.parametrize("alias", ["BM", "BQ", "BH", "SM", "W-XYZ", "Q-MON", "H-DEC", "m", "mo", "N", "fortnightly"])
def test_unknown_alias_named_with_examples(alias: str) -> None:
    with pytest.raises(InvalidParameterError) as err:
        normalize_freq(alias)
    assert err.value.field == "freq"
    assert err.value.message == (
        f"freq '{alias}' is not a known frequency; use a polars offset such as '1h', '30m', '1d', '1bd' "
        f"(business days), '1w', '1mo', '3mo', '1y', a pandas alias such as 'H', 'T', 'D', 'B', 'W-SUN', "
        f"'MS', 'ME', 'QS', 'Q', 'YS', 'A', '15min', '30T', or an integer step")


@pytest.mark.parametrize(("alias", "dates", "expected"), [
    ("H", pd.date_range("2024-01-01", periods=4, freq="h"), "1h"),
    ("30T", pd.date_range("2024-01-01", periods=4, freq="30min"), "30m"),
    ("W-SUN", pd.date_range("2024-01-07", periods=4, freq="W-SUN"), "1w"),
    ("ME", pd.date_range("2024-01-31", periods=4, freq="ME"), "1mo"),
    ("QS", pd.date_range("2024-01-01", periods=4, freq="QS"), "3mo"),
    ("YS", pd.date_range("2020-01-01", periods=4, freq="YS"), "1y"),
    ("B", pd.date_range("2024-01-04", periods=4, freq="B"), "1bd"),
])
def test_alias_validates_the_data_it_names(alias: str, dates: pd.DatetimeIndex, expected: str) -> None:
    panel = validate_panel(pd.DataFrame({"unique_id": "a", "ds": dates, "y": [1.0, 2.0, 3.0, 4.0]}), freq=alias)
    assert panel.freq == expected
    assert panel.month_end == (alias == "ME")


# --------------------------------------------------------------------------- business days
#: Thursday 2024-01-04 to Wednesday 2024-01-17: ten business days (two weekends skipped).
BDAYS = ["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09", "2024-01-10", "2024-01-11", "2024-01-12",
         "2024-01-15", "2024-01-16", "2024-01-17"]


def _bpanel(values: list[float], uid: str = "a", dates: list[str] = BDAYS) -> dict[str, list[Any]]:
    return {"unique_id": [uid] * len(values), "ds": dates[:len(values)], "y": values}


def test_business_days_inferred() -> None:
    panel = validate_panel(_bpanel([float(i) for i in range(10)]))
    assert (panel.freq, panel.ds_kind, panel.lengths) == ("1bd", "date", {"a": 10})


def test_weekdays_without_a_weekend_step_stay_daily() -> None:
    # Monday to Friday of one week: every step is one day, so nothing says "business days"
    assert validate_panel(_bpanel([1.0] * 5, dates=BDAYS[2:7])).freq == "1d"


def test_daily_data_with_weekends_is_not_business_days() -> None:
    ds = [dt.datetime(2024, 1, 1) + dt.timedelta(days=k) for k in range(10)]
    frame = pl.DataFrame({"unique_id": ["a"] * 10, "ds": ds}).with_columns(pl.col("ds").dt.cast_time_unit("us"))
    assert infer_freq(frame) == "1d"


def test_business_day_data_given_as_daily_is_told_to_pass_b() -> None:
    with pytest.raises(InvalidInputError) as err:
        validate_panel(_bpanel([1.0] * 10), freq="D")
    assert err.value.message == (
        "gaps against freq '1d' in 1 series: series 'a': 4 missing timestamps (2024-01-06, 2024-01-07, 2024-01-13, "
        "2024-01-14); every missing timestamp is a Saturday or Sunday: for business days pass freq 'B'; pass "
        "fill_gaps with a fill_missing policy to fill them")
    with pytest.raises(InvalidInputError) as err:  # a weekday missing too: no hint
        validate_panel(_bpanel([1.0] * 9, dates=[d for d in BDAYS if d != "2024-01-10"]), freq="D")
    assert "Saturday" not in err.value.message


def test_business_day_gap_and_weekend_row_named() -> None:
    dates = [d for d in BDAYS if d != "2024-01-10"]
    with pytest.raises(InvalidInputError, match=r"gaps against freq '1bd' in 1 series: series 'a': 1 missing "
                                                r"timestamps \(2024-01-10\)"):
        validate_panel(_bpanel([1.0] * 9, dates=dates), freq="B")
    with pytest.raises(InvalidInputError, match=r"series 'a': 1 timestamps off the 1bd grid \(2024-01-06\); check freq"):
        validate_panel(_bpanel([1.0] * 4, dates=["2024-01-04", "2024-01-05", "2024-01-06", "2024-01-08"]), freq="B")


def test_business_day_gap_filled_on_the_grid() -> None:
    dates = [d for d in BDAYS if d not in ("2024-01-05", "2024-01-08")]  # Friday and Monday missing
    panel = validate_panel(_bpanel([1.0, 4.0, 5, 6, 7, 8, 9, 10], dates=dates), freq="B", fill_gaps=True,
                           fill_missing="interpolate")
    assert panel.report.filled.rows() == [("a", "2024-01-05", "gap", "interpolate"),
                                          ("a", "2024-01-08", "gap", "interpolate")]
    assert panel.frame["y"].to_list()[:4] == [1.0, 2.0, 3.0, 4.0]


def test_business_day_future_skips_weekends() -> None:
    panel = validate_panel(_bpanel([1.0] * 7))  # ends Friday 2024-01-12
    got = to_caller_tz(future_frame(panel, 7), panel)["ds"].to_list()
    assert got == [dt.date(2024, 1, d) for d in (15, 16, 17, 18, 19, 22, 23)]


def test_two_business_day_steps() -> None:
    panel = validate_panel(_bpanel([1.0] * 3, dates=["2024-01-04", "2024-01-08", "2024-01-10"]), freq="2B")
    assert panel.freq == "2bd"
    assert to_caller_tz(future_frame(panel, 3), panel)["ds"].to_list() == [
        dt.date(2024, 1, 12), dt.date(2024, 1, 16), dt.date(2024, 1, 18)]


def test_business_days_at_a_local_hour_across_dst() -> None:
    # 09:30 in New York on business days across the switch to summer time (Sunday 2024-03-10)
    days = pd.bdate_range("2024-03-06", periods=6)
    ds = pd.DatetimeIndex([d + pd.Timedelta(hours=9, minutes=30) for d in days]).tz_localize("America/New_York")
    panel = validate_panel(pd.DataFrame({"unique_id": "a", "ds": ds, "y": range(6)}))
    assert (panel.freq, panel.tz) == ("1bd", "America/New_York")
    got = to_caller_tz(future_frame(panel, 3), panel)["ds"].to_list()
    assert [(t.date(), t.hour, t.minute) for t in got] == [
        (dt.date(2024, 3, 14), 9, 30), (dt.date(2024, 3, 15), 9, 30), (dt.date(2024, 3, 18), 9, 30)]


def test_business_day_season_length_is_a_week_and_calendar_is_day_of_week() -> None:
    assert default_season_length("1bd") == 5
    assert default_season_length(normalize_freq("B"), multiple=True) == 5
    assert default_features(5, freq="1bd").calendar == ["dayofweek", "month"]


def test_feature_grid_check_knows_business_days() -> None:
    valid = validate_panel(_bpanel([1.0] * 10))
    pipe = FeaturePipeline(spec=FeatureSpec(lags=[1]), freq="1bd")
    pipe.check_regular(valid.frame)  # Friday -> Monday is one step
    frame = valid.frame.filter(pl.col("ds") != dt.datetime(2024, 1, 15))
    with pytest.raises(InvalidInputError, match=r"not on the '1bd' grid .*series 'a' at 2024-01-16"):
        pipe.check_regular(frame)
    # a hand-built Panel (not marked checked) goes through the same check
    pipe.check_panel(Panel(frame=valid.frame, freq="1bd", lengths=valid.lengths, ds_kind="date"))


# --------------------------------------------------------------------------- models on business days
#: Two series over three business weeks (Monday 2024-01-01 to Friday 2024-01-19); 'a' repeats 1..5 plus
#: 10 per week, 'b' is 100 minus the day of the week.
WEEKS = [d.date().isoformat() for d in pd.bdate_range("2024-01-01", "2024-01-19")]
BPANEL = {"unique_id": ["a"] * 15 + ["b"] * 15, "ds": WEEKS * 2,
          "y": [float(10 * w + d) for w in range(3) for d in range(1, 6)] + [100.0 - d for _ in range(3) for d in range(5)]}
NEXT_WEEKS = [dt.date(2024, 1, d) for d in (22, 23, 24, 25, 26, 29, 30)]


def test_seasonal_naive_on_business_days_by_hand() -> None:
    result = forecast(BPANEL, model="seasonal_naive", h=7)
    assert result.panel.freq == "1bd" and result.spec.params["season_length"] == 5
    assert "season_length=5 derived from freq '1bd'" in result.notes
    fc = result.forecasts
    a = fc.filter(pl.col("unique_id") == "a")
    assert a["ds"].to_list() == NEXT_WEEKS
    # the last week (21..25) repeated: Monday 22.01 <- Monday 15.01 (21), ..., Monday 29.01 <- 21 again
    assert a["SeasonalNaive"].to_list() == [21.0, 22.0, 23.0, 24.0, 25.0, 21.0, 22.0]
    assert fc.filter(pl.col("unique_id") == "b")["SeasonalNaive"].to_list() == [100.0, 99.0, 98.0, 97.0, 96.0,
                                                                              100.0, 99.0]


@pytest.mark.parametrize("model", ["auto_ets", "xgboost"])
def test_models_forecast_business_days_only(model: str) -> None:
    weeks = [d.date().isoformat() for d in pd.bdate_range("2024-01-01", periods=60)]
    values = [float(10 + (k % 5) + 0.1 * k) for k in range(60)]
    data = {"unique_id": ["a"] * 60 + ["b"] * 60, "ds": weeks * 2, "y": values + [2 * v for v in values]}
    spec: Any = model if model == "auto_ets" else {"name": "xgboost", "params": {"n_estimators": 20}}
    result = forecast(data, model=spec, h=6)
    fc = result.forecasts
    assert result.panel.freq == "1bd"
    assert fc.height == 12 and fc.filter(pl.col("unique_id") == "a")["ds"].to_list() == [
        dt.date(2024, 3, d) for d in (25, 26, 27, 28, 29)] + [dt.date(2024, 4, 1)]
    assert all(d.weekday() < 5 for d in fc["ds"].to_list())
    values_col = fc.columns[2]
    assert fc[values_col].is_finite().all()


# --------------------------------------------------------------------------- every door takes the aliases
def test_api_takes_a_pandas_alias(tmp_path: Path) -> None:
    from litestar.testing import TestClient

    from forecasting.api.app import create_app
    from forecasting.api.settings import Settings

    body = {"data": BPANEL, "model": "seasonal_naive", "h": 2, "freq": "B"}
    with TestClient(create_app(Settings(state_dir=tmp_path))) as client:
        r = client.post("/v1/forecast", json=body)
    assert r.status_code == 200, r.text
    rows = [row for row in r.json()["forecasts"] if row["unique_id"] == "a"]
    assert [row["ds"] for row in rows] == ["2024-01-22", "2024-01-23"]
    assert [row["SeasonalNaive"] for row in rows] == [21.0, 22.0]


def test_cli_takes_a_pandas_alias(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from forecasting.cli import app

    src, out = tmp_path / "b.csv", tmp_path / "fc.csv"
    pl.DataFrame(BPANEL).write_csv(src)
    result = CliRunner().invoke(app, ["forecast", "--input", str(src), "--model", "seasonal_naive", "--h", "2",
                                      "--freq", "B", "--output", str(out)], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    fc = pl.read_csv(out, try_parse_dates=True).filter(pl.col("unique_id") == "a")
    assert [str(d) for d in fc["ds"]] == ["2024-01-22", "2024-01-23"]


def test_library_takes_a_pandas_alias() -> None:
    import forecasting as fc

    hourly = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=48, freq="h"),
                           "y": [float(h % 24) for h in range(48)]})
    result = fc.forecast(hourly, model="seasonal_naive", h=3, freq="H")
    assert result.panel.freq == "1h"
    out = result.forecasts
    assert isinstance(out, pd.DataFrame)
    assert out["ds"].tolist() == list(pd.date_range("2024-01-03", periods=3, freq="h"))
    assert out["SeasonalNaive"].tolist() == [0.0, 1.0, 2.0]


def test_validation_speed_benchmark_runs_every_case() -> None:
    from forecasting.benchmarks import validation_speed as bench

    out = bench.run(n_series=12, length=300, repeats=1, cases=list(bench.CASES), reference=False)
    assert out["rows"] == 3600 and out["features"]["matrix"][1] == 12
    assert set(out["cases"]) == set(bench.CASES)
    assert all(row["wall_s"] > 0 and row["ratio"] > 0 for row in out["cases"].values())
    assert "_sort_rows" in out["cases"]["shuffled"]["steps_s"] and "_sort_rows" not in out["cases"]["sorted"]["steps_s"]
    assert "find_gaps" in out["cases"]["gaps-filled"]["steps_s"]
    assert "ratio = validate / feature build" in bench.report(out)


def test_weekly_anchor_that_contradicts_the_data_is_refused_naming_the_rows():
    import datetime as dt

    from forecasting.data import validate_panel
    from forecasting.errors import InvalidInputError

    sundays = [dt.date(2024, 1, 7) + dt.timedelta(weeks=i) for i in range(6)]
    df = pl.DataFrame({"unique_id": "a", "ds": sundays, "y": [1.0, 2, 3, 4, 5, 6]})
    with pytest.raises(InvalidInputError) as err:
        validate_panel(df, freq="W-MON")
    assert str(err.value).startswith("freq 'W-MON' anchors weeks on Monday, but 6 ds are on another weekday: "
                                     "series 'a' at 2024-01-07 (Sun), series 'a' at 2024-01-14 (Sun)")
    assert "pass the data's own anchor (e.g. 'W-SUN') or '1w'" in str(err.value)
    assert validate_panel(df, freq="W-SUN").freq == "1w"  # the right anchor, and plain weekly, are accepted
    assert validate_panel(df, freq="W").freq == "1w"


def test_business_days_with_one_missing_weekday_are_inferred_as_business_days_with_a_gap():
    import datetime as dt

    from forecasting.data import validate_panel
    from forecasting.errors import InvalidInputError

    days = [d for d in (dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(28)) if d.weekday() < 5]
    del days[10]  # Monday 2024-01-15
    df = pl.DataFrame({"unique_id": "a", "ds": days, "y": [float(i) for i in range(len(days))]})
    with pytest.raises(InvalidInputError, match=r"gaps against freq '1bd' in 1 series: series 'a': 1 missing "
                                                r"timestamps \(2024-01-15\)"):
        validate_panel(df)
    filled = validate_panel(df, fill_missing="interpolate", fill_gaps=True)
    assert filled.freq == "1bd" and filled.report.filled.rows() == [("a", "2024-01-15", "gap", "interpolate")]
