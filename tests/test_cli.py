"""The ``forecasting`` command: forecasts written right, benchmarks scored right, mistakes one line + exit 2."""

from __future__ import annotations

import csv
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from forecasting.cli import app

REPO_ROOT = Path(__file__).resolve().parents[1]
AIR = REPO_ROOT / "datasets" / "air_passengers.csv"

runner = CliRunner()


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1"})


def assert_one_line_error(result, code: int = 2, *needles: str) -> str:
    """Exit ``code`` with one clear ``error [...]: ...`` line and no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    text = result.stderr if result.stderr else result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error"), lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.fixture()
def panel_csv(tmp_path: Path) -> Path:
    """Two daily series: 'a' counts 1..14 with a weekly pattern, 'b' is constant 5."""
    week = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
    frame = pl.DataFrame({
        "unique_id": ["a"] * 14 + ["b"] * 10,
        "ds": [f"2024-01-{d:02d}" for d in range(1, 15)] + [f"2024-01-{d:02d}" for d in range(1, 11)],
        "y": [v + k for k in (0, 1) for v in week] + [5.0] * 10,
    })
    path = tmp_path / "panel.csv"
    frame.write_csv(path)
    return path


# --------------------------------------------------------------------------- forecast
def test_forecast_csv_naive(panel_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "fc.csv"
    result = invoke("forecast", "--input", panel_csv, "--model", "naive", "--h", "3", "--output", out)
    assert result.exit_code == 0, result.output
    assert "wrote 6 rows" in result.stdout
    fc = pl.read_csv(out, try_parse_dates=True)
    assert fc.columns == ["unique_id", "ds", "Naive"]
    assert fc.group_by("unique_id").len().sort("unique_id")["len"].to_list() == [3, 3]
    a = fc.filter(pl.col("unique_id") == "a")
    assert [str(d) for d in a["ds"]] == ["2024-01-15", "2024-01-16", "2024-01-17"]
    assert a["Naive"].to_list() == [71.0] * 3
    assert fc.filter(pl.col("unique_id") == "b")["Naive"].to_list() == [5.0] * 3


def test_forecast_parquet_seasonal_naive_with_levels(panel_csv: Path, tmp_path: Path) -> None:
    src = tmp_path / "panel.parquet"
    pl.read_csv(panel_csv, try_parse_dates=True).write_parquet(src)
    out = tmp_path / "deep" / "fc.parquet"
    result = invoke("forecast", "-i", src, "-m", '{"name": "seasonal_naive", "params": {"season_length": 7}}',
                    "--h", "7", "--level", "95", "--level", "80", "-o", out)
    assert result.exit_code == 0, result.output
    fc = pl.read_parquet(out)
    assert fc.columns == ["unique_id", "ds", "SeasonalNaive", "SeasonalNaive-lo-80", "SeasonalNaive-hi-80",
                          "SeasonalNaive-lo-95", "SeasonalNaive-hi-95"]
    assert fc.height == 14
    a = fc.filter(pl.col("unique_id") == "a")
    assert a["SeasonalNaive"].to_list() == [11.0, 21.0, 31.0, 41.0, 51.0, 61.0, 71.0]  # the last week
    for row in fc.iter_rows(named=True):
        vals = [row["SeasonalNaive-lo-95"], row["SeasonalNaive-lo-80"], row["SeasonalNaive"],
                row["SeasonalNaive-hi-80"], row["SeasonalNaive-hi-95"]]
        assert all(math.isfinite(v) for v in vals) and vals == sorted(vals)


def test_forecast_air_passengers_reports_derived_season_length(tmp_path: Path) -> None:
    out = tmp_path / "air.csv"
    result = invoke("forecast", "--input", AIR, "--model", "seasonal_naive", "--h", "12", "--output", out)
    assert result.exit_code == 0, result.output
    assert "season_length=12" in result.stderr
    fc = pl.read_csv(out)
    y = pl.read_csv(AIR)["y"].to_list()
    assert fc["SeasonalNaive"].to_list() == [float(v) for v in y[-12:]]
    assert fc["ds"].to_list()[0] == "1961-01-01" and fc["ds"].to_list()[-1] == "1961-12-01"


def test_forecast_reports_filled_rows_and_fallbacks(tmp_path: Path) -> None:
    src = tmp_path / "holes.csv"
    src.write_text("unique_id,ds,y\n" + "".join(f"long,{i},{i}\n" for i in range(1, 21))
                   + "short,1,1\nshort,2,\nshort,3,3\n")
    out = tmp_path / "fc.csv"
    result = invoke("forecast", "--input", src, "--model", '{"name": "auto_ets", "fallback": "naive"}', "--h", "2",
                    "--fill-missing", "interpolate", "--output", out)
    assert result.exit_code == 0, result.output
    assert "filled 1 rows (interpolate)" in result.stderr
    assert "fallback:" in result.stderr and "'short'" in result.stderr and "'naive'" in result.stderr
    fc = pl.read_csv(out)
    assert fc.filter(pl.col("unique_id") == "short")["AutoETS"].to_list() == [3.0, 3.0]


@pytest.mark.parametrize(("args", "needles"), [
    (["--input", "{tmp}/missing.csv"], ("[input]", "does not exist")),
    (["--input", "{tmp}/data.txt"], ("[input]", ".csv or .parquet", "data.txt")),
    (["--input", "{tmp}/noy.csv"], ("missing required column 'y'", "value")),
    (["--input", "{ok}", "--h", "0"], ("[h]", "h must be an integer >= 1, got 0")),
    (["--input", "{ok}", "--model", "fbprophet"], ("[model.name]", "unknown model 'fbprophet'", "auto_ets")),
    (["--input", "{ok}", "--model", "{bad json"], ("[model]", "not valid JSON")),
    (["--input", "{ok}", "--model", '{"name": "mstl", "params": {"season_length": [0]}}'], ("season_length", "[0]")),
    (["--input", "{ok}", "--level", "150"], ("[level]", "150")),
    (["--input", "{ok}", "--freq", "fortnightly"], ("[freq]", "fortnightly")),
    (["--input", "{ok}", "--fill-missing", "mean"], ("[fill_missing]", "mean")),
    (["--input", "{ok}", "--output", "{tmp}/fc.txt"], ("[output]", "fc.txt")),
    (["--input", "{ok}", "--output", "/proc/no/such/dir/fc.csv"], ("[output]", "cannot write")),
    (["--input", "{tmp}/nan.csv"], ("[y]", "series 'a'", "NaN", "fill_missing")),
    (["--input", "{tmp}/dup.csv"], ("duplicate", "series 'a'")),
    (["--input", "{tmp}/empty.csv"], ("[input]", "empty.csv")),
    (["--input", "{tmp}/bad.parquet"], ("[input]", "parquet")),
])
def test_forecast_bad_input_is_one_line_exit_2(tmp_path: Path, panel_csv: Path, args: list[str],
                                               needles: tuple[str, ...]) -> None:
    (tmp_path / "data.txt").write_text("unique_id,ds,y\n")
    (tmp_path / "noy.csv").write_text("unique_id,ds,value\na,2024-01-01,1\na,2024-01-02,2\n")
    (tmp_path / "nan.csv").write_text("unique_id,ds,y\na,1,1\na,2,NaN\na,3,3\n")
    (tmp_path / "dup.csv").write_text("unique_id,ds,y\na,1,1\na,2,2\na,2,3\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    full = [a.replace("{tmp}", str(tmp_path)).replace("{ok}", str(panel_csv)) for a in args]
    if "--h" not in full:
        full += ["--h", "2"]
    if "--output" not in full:
        full += ["--output", str(tmp_path / "fc.csv")]
    if "--model" not in full:
        full += ["--model", "naive"]
    assert_one_line_error(invoke("forecast", *full), 2, *needles)


def test_forecast_usage_errors_exit_2(panel_csv: Path, tmp_path: Path) -> None:
    result = invoke("forecast", "--input", panel_csv, "--h", "x", "--output", tmp_path / "o.csv")
    assert result.exit_code == 2 and "--h" in result.output and "Traceback" not in result.output
    result = invoke("forecast", "--input", panel_csv, "--output", tmp_path / "o.csv")
    assert result.exit_code == 2 and "--h" in result.output


@pytest.mark.parametrize("content", [
    "unique_id,ds,y\na,foo,1\na,bar,2\n",  # no value is a timestamp
    "unique_id,ds,y\na,100000000000000000000,1\na,100000000000000000001,2\n",  # ds beyond int64
], ids=["ds-not-timestamps", "ds-beyond-int64"])
def test_forecast_unparseable_ds_is_one_line_exit_2(tmp_path: Path, content: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text(content)
    assert_one_line_error(invoke("forecast", "--input", src, "--h", "2", "--output", tmp_path / "o.csv",
                                 "--model", "naive"), 2, "ds")


# --------------------------------------------------------------------------- bench
def test_bench_air_passengers_scores_by_hand(tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = invoke("bench", "--dataset", "air_passengers", "--models", "naive2,seasonal_naive,auto_ets",
                    "--output", out, "--n-jobs", "1")
    assert result.exit_code == 0, result.output
    metrics = pl.read_csv(out / "metrics.csv")
    assert {"dataset", "model", "smape", "mase", "owa", "fit_predict_seconds"} <= set(metrics.columns)
    assert metrics["model"].to_list() == ["naive2", "seasonal_naive", "auto_ets"]
    assert set(metrics["dataset"].to_list()) == {"air_passengers"}
    assert (out / "forecasts.parquet").is_file() and (out / "leaderboard.md").is_file()
    for col in ("smape", "mase", "owa", "fit_predict_seconds"):
        assert all(math.isfinite(v) and v >= 0 for v in metrics[col].to_list()), col

    # holdout of the last 12 months; seasonal naive forecasts 1960 with the 1959 values
    y = pl.read_csv(AIR)["y"].to_numpy().astype(float)
    train, test = y[:-12], y[-12:]
    forecast = train[-12:]
    smape = 200 * np.mean(np.abs(test - forecast) / (np.abs(test) + np.abs(forecast)))
    mase = np.mean(np.abs(test - forecast)) / np.mean(np.abs(train[12:] - train[:-12]))
    row = metrics.filter(pl.col("model") == "seasonal_naive").row(0, named=True)
    assert row["smape"] == pytest.approx(smape, rel=1e-9)
    assert row["mase"] == pytest.approx(mase, rel=1e-9)
    naive2 = metrics.filter(pl.col("model") == "naive2").row(0, named=True)
    assert naive2["owa"] == pytest.approx(1.0)
    assert row["owa"] == pytest.approx((row["smape"] / naive2["smape"] + row["mase"] / naive2["mase"]) / 2)
    assert "seasonal_naive" in result.stdout and "metrics.csv" in result.stdout


def test_bench_m4_hourly_quick(data_dir: Path, tmp_path: Path) -> None:
    if not (data_dir / "m4_hourly").is_dir():
        pytest.skip("m4_hourly not in the data folder")
    out = tmp_path / "m4"
    result = invoke("bench", "--dataset", "m4_hourly", "--models", "naive2,seasonal_naive", "--series-limit", "5",
                    "--output", out, "--n-jobs", "1")
    assert result.exit_code == 0, result.output
    metrics = pl.read_csv(out / "metrics.csv")
    assert metrics["model"].to_list() == ["naive2", "seasonal_naive"]
    assert metrics.filter(pl.col("model") == "naive2")["owa"].item() == pytest.approx(1.0)
    assert all(math.isfinite(v) and 0 <= v <= 200 for v in metrics["smape"].to_list())
    fc = pl.read_parquet(out / "forecasts.parquet")
    assert fc["unique_id"].n_unique() == 5


@pytest.mark.parametrize(("args", "needles"), [
    (["--dataset", "nope", "--models", "naive"], ("[dataset]", "unknown dataset 'nope'", "air_passengers")),
    (["--dataset", "air_passengers", "--models", "fbprophet"], ("[model.name]", "unknown model 'fbprophet'")),
    (["--dataset", "air_passengers", "--models", ","], ("[models]", "at least one model")),
    (["--dataset", "air_passengers", "--models", "naive", "--h", "0"], ("[h]", "got 0")),
    (["--dataset", "air_passengers", "--models", "naive", "--h", "500"], ("[h]", "500")),
    (["--dataset", "air_passengers", "--models", "naive", "--series-limit", "0"], ("[series_limit]", "got 0")),
    (["--dataset", "air_passengers", "--models", "naive", "--level", "100"], ("[level]", "100")),
])
def test_bench_bad_input_is_one_line_exit_2(tmp_path: Path, args: list[str], needles: tuple[str, ...]) -> None:
    result = invoke("bench", *args, "--output", tmp_path / "out")
    assert result.exit_code == 2, result.output
    text = result.stderr
    assert "Traceback" not in result.output
    errors = [ln for ln in text.splitlines() if ln.startswith("error")]
    assert len(errors) == 1, text
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert not (tmp_path / "out" / "metrics.csv").exists()


# --------------------------------------------------------------------------- listings and help
def test_models_lists_every_model_and_its_parameters() -> None:
    result = invoke("models")
    assert result.exit_code == 0
    for name in ("naive", "naive2", "seasonal_naive", "auto_ets", "auto_arima", "auto_theta", "mstl"):
        assert name in result.stdout
    assert "season_length" in result.stdout


def test_datasets_lists_the_catalogue() -> None:
    result = invoke("datasets")
    assert result.exit_code == 0
    assert "m4_hourly" in result.stdout and "air_passengers" in result.stdout
    assert "FORECASTING_DATA_DIR" in result.stdout


def test_version() -> None:
    result = invoke("version")
    assert result.exit_code == 0
    assert "forecasting" in json.loads(result.stdout)


@pytest.mark.parametrize(("command", "options"), [
    ([], ["forecast", "bench", "models", "datasets", "serve"]),
    (["forecast"], ["--input", "--h", "--output", "--model", "--level", "--freq", "--fill-missing", "--fill-gaps"]),
    (["bench"], ["--dataset", "--models", "--output", "--h", "--level", "--series-limit", "--n-jobs"]),
    (["serve"], ["--host", "--port"]),
    (["models"], ["--help"]),
    (["datasets"], ["--help"]),
])
def test_help_mentions_the_key_options(command: list[str], options: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    for opt in options:
        assert opt in result.stdout, (opt, result.stdout)


def test_no_arguments_shows_help() -> None:
    result = invoke()
    assert "forecast" in result.output and "bench" in result.output


def test_installed_entry_point() -> None:
    exe = shutil.which("forecasting") or str(Path(__import__("sys").executable).parent / "forecasting")
    if not Path(exe).exists():
        pytest.skip("the forecasting console script is not installed")
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120,
                          env={"COLUMNS": "200", "PATH": str(Path(exe).parent) + ":/usr/bin:/bin", "NO_COLOR": "1"})
    assert proc.returncode == 0, proc.stderr
    for name in ("forecast", "bench", "models", "datasets"):
        assert name in proc.stdout


def test_bench_dataset_without_standard_horizon_asks_for_h(tmp_path: Path, data_dir: Path) -> None:
    """Regression: `bench --dataset ett_h1` used to crash with KeyError 'h'."""
    result = invoke("bench", "--dataset", "ett_h1", "--models", "naive", "--output", tmp_path / "r")
    assert result.exit_code == 2
    assert "dataset 'ett_h1' has no standard horizon; pass h (--h N)" in result.output


def test_bench_reports_when_naive2_cannot_be_computed(tmp_path: Path, data_dir: Path) -> None:
    """ETTh1's oil temperature goes below zero: Naive2's multiplicative seasonal adjustment is undefined there, so
    Naive2 is plain naive on that series (the M4 rule for series that fail the seasonality test) and the OWA of
    `naive` is exactly 1."""
    result = invoke("bench", "--dataset", "ett_h1", "--models", "naive", "--h", "24", "--output", tmp_path / "r")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(tmp_path / "r" / "metrics.csv")))
    assert rows[0]["model"] == "naive" and float(rows[0]["owa"]) == 1.0


def test_forecast_json_reports_an_error_as_one_json_object(tmp_path: Path) -> None:
    data = tmp_path / "short.csv"
    data.write_text("unique_id,ds,y\na,1,1.0\na,2,2.0\na,3,oops\n")
    result = runner.invoke(app, ["forecast", "--input", str(data), "--h", "2", "--model", "naive", "--json",
                                 "--output", str(tmp_path / "fc.csv")])
    assert result.exit_code == 2
    problem = json.loads(result.stderr.strip().splitlines()[-1])
    assert problem["error"] == "InvalidInputError" and problem["field"] == "y"
    assert "'oops'" in problem["detail"] or "oops" in json.dumps(problem["details"])
