"""Issue 13, items 1 and 5: M3 in the catalogue, the harness that never stops at a failing model,
the user's season length, spare cores for few tasks, weighted/scaled quantile loss, and the
development suite's aggregate (skill score, win rates, bootstrap intervals)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from forecasting import datasets
from forecasting.benchmarks import harness
from forecasting.benchmarks.harness import load_bench_data, run_benchmark
from forecasting.cli import app
from forecasting.errors import DatasetError, ModelFitError

runner = CliRunner()




# --------------------------------------------------------------------------- M3
def test_m3_catalogue_entries() -> None:
    cat = datasets.catalogue()
    setup = {n: (cat[n]["h"], cat[n]["season_length"], cat[n]["freq"], cat[n]["n_series"])
             for n in ("m3_yearly", "m3_quarterly", "m3_monthly", "m3_other")}
    assert setup == {"m3_yearly": (6, 1, "1y", 645), "m3_quarterly": (8, 4, "3mo", 756),
                     "m3_monthly": (18, 12, "1mo", 1428), "m3_other": (8, 1, 1, 174)}
    theta = {n: cat[n]["reference_scores"]["theta"]["smape"] for n in setup}
    assert theta == {"m3_yearly": 16.90, "m3_quarterly": 8.96, "m3_monthly": 13.85, "m3_other": 4.41}
    assert cat["m3_monthly"]["files"]["M3C.xls"]["sha256"] == (
        "f3b24bb49816b47483d6de05a6f67860a98f2e7a088b7d2ec7f008027f0c3523")


def test_dev_suite_lists_its_datasets() -> None:
    dev = datasets.suite("dev")
    assert [d["dataset"] for d in dev["datasets"]] == ["m3_yearly", "m3_quarterly", "m3_monthly", "m3_other",
                                                         "m4_hourly", "ett_h1", "air_passengers"]
    assert dev["reference"] == "seasonal_naive"
    assert [d.get("h") for d in dev["datasets"] if d["dataset"] == "ett_h1"] == [96]
    with pytest.raises(DatasetError, match="unknown suite 'nope'; known suites: dev"):
        datasets.suite("nope")


def test_m3_loader_counts_and_series_n1(data_dir: Path) -> None:
    counts = {}
    for name in ("m3_yearly", "m3_quarterly", "m3_monthly", "m3_other"):
        train, test = datasets.load_m3(name, download=False)
        counts[name] = (train["unique_id"].n_unique(), train.height + test.height)
        h = datasets.dataset_info(name)["h"]
        assert (test.group_by("unique_id").len()["len"] == h).all()
    # series counts and values of the SOURCE.md table
    assert counts == {"m3_yearly": (645, 18_319), "m3_quarterly": (756, 37_004), "m3_monthly": (1428, 167_562),
                      "m3_other": (174, 13_325)}
    train, test = datasets.load_m3("m3_yearly", download=False)
    n1 = train.filter(pl.col("unique_id") == "N1")
    # N1: N=20, NF=6, starts 1975 (MICRO); its first values and its test part, read from the sheet by hand
    assert n1.height == 14
    assert n1.row(0) == ("N1", dt.datetime(1975, 1, 1), 940.66)
    assert n1["y"].head(3).to_list() == [940.66, 1084.86, 1244.98]
    assert test.filter(pl.col("unique_id") == "N1").row(0) == ("N1", dt.datetime(1989, 1, 1), 5379.75)
    other, _ = datasets.load_m3("m3_other", download=False)
    assert other.schema["ds"] == pl.Int64 and other.row(0) == ("N2830", 1, 3060.42)


def test_harness_window_0_is_the_m3_split(data_dir: Path) -> None:
    bench = load_bench_data("m3_quarterly", series_limit=3)
    train, test = datasets.load_m3("m3_quarterly", download=False)
    ids = bench.data["unique_id"].unique().to_list()
    assert len(ids) == 3
    keep = pl.col("unique_id").is_in(ids)
    tasks, refs = harness.plan_tasks(bench, ["naive"], version="t")
    win = harness._window(refs[0], bench.data)
    assert win.train.sort("unique_id", "ds").equals(train.filter(keep).sort("unique_id", "ds"))
    assert win.test.select("unique_id", "ds", "y").sort("unique_id", "ds").equals(
        test.filter(keep).sort("unique_id", "ds"))


# --------------------------------------------------------------------------- WQL / SQL
def test_wql_and_sql_by_hand() -> None:
    from forecasting.evaluation import evaluate, interval_quantiles, sql, wql

    train = pl.DataFrame({"unique_id": ["a"] * 4 + ["b"] * 3, "ds": [1, 2, 3, 4, 1, 2, 3],
                          "y": [1.0, 2.0, 4.0, 7.0, 10.0, 10.0, 12.0]})
    actuals = pl.DataFrame({"unique_id": ["a", "a", "b"], "ds": [5, 6, 4], "y": [5.0, 7.0, 10.0]})
    forecasts = pl.DataFrame({"unique_id": ["a", "a", "b"], "ds": [5, 6, 4], "good": [6.0, 6.0, 10.0],
                              "good-lo-80": [5.5, 5.5, 9.0], "good-hi-80": [6.5, 6.5, 11.0],
                              "plain": [6.0, 6.0, 10.0]})
    out = evaluate(forecasts, actuals, train, models=["good", "plain"], season_length=1, level=[80])
    good, plain = out.row(0, named=True), out.row(1, named=True)
    assert interval_quantiles(80) == (0.1, 0.9)
    # QL_q = 2|(y - f)(1[y <= f] - q)|, averaged over q in {0.1, 0.5, 0.9}:
    # a, y=5 (f 5.5, 6, 6.5): 0.9, 1.0, 0.3 -> 2.2/3; a, y=7: 0.3, 1.0, 0.9 -> 2.2/3; b, y=10 (9, 10, 11): 0.2, 0, 0.2
    # WQL = (2.2/3 + 2.2/3 + 0.4/3) / (5 + 7 + 10) = 1.6 / 22
    assert good["wql"] == pytest.approx(1.6 / 22)
    # SQL: per series mean loss over the MASE scale (a: 2, b: 1), then the mean over series
    assert good["sql"] == pytest.approx(((2.2 / 3) / 2 + (0.4 / 3 / 1)) / 2)
    assert plain["wql"] is None and plain["sql"] is None  # no intervals
    # the array functions agree, one series at a time
    assert wql([5.0, 7.0], {0.1: [5.5, 5.5], 0.5: [6.0, 6.0], 0.9: [6.5, 6.5]}) == pytest.approx(4.4 / 3 / 12)
    assert sql([10.0], {0.1: [9.0], 0.5: [10.0], 0.9: [11.0]}, [10.0, 10.0, 12.0], 1) == pytest.approx(0.4 / 3)


# --------------------------------------------------------------------------- the harness never stops
def _zeros_file(tmp_path: Path) -> Path:
    """4 integer-ds series of 40 values; s2 has zeros (Naive2's multiplicative decomposition refuses it)."""
    rows = []
    for s in range(4):
        y = 10.0 + (np.arange(40) % 4) + 0.1 * np.arange(40) + s
        if s == 2:
            y[::4] = 0.0
        rows += [{"unique_id": f"s{s}", "ds": t + 1, "y": float(v)} for t, v in enumerate(y)]
    path = tmp_path / "zeros.csv"
    pl.DataFrame(rows).write_csv(path)
    return path


def test_failing_naive2_in_the_model_list_is_a_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # before: AssertionError (the user's naive2 and the Naive2 reference share a store key and a failed result)
    real = harness.run_task

    def failing_naive2(task, data, n_jobs=1):  # noqa: ANN001, ANN202
        if '"naive2"' in task.spec:
            raise ModelFitError("model 'naive2' failed on 1 series: series 's2': boom")
        return real(task, data, n_jobs)

    monkeypatch.setattr(harness, "run_task", failing_naive2)
    result = run_benchmark(None, ["naive2", "naive", "seasonal_naive"], input=_zeros_file(tmp_path), h=4,
                           season_length=4)
    rows = {r["model"]: r for r in result.metrics.iter_rows(named=True)}
    assert list(rows) == ["naive2", "naive", "seasonal_naive"]
    assert rows["naive2"]["mase"] is None and rows["naive2"]["smape"] is None
    assert rows["naive2"]["error"] == "ModelFitError: model 'naive2' failed on 1 series: series 's2': boom"
    assert rows["naive2"]["fit_predict_seconds"] >= 0 and rows["naive2"]["peak_memory_mb"] is None
    for other in ("naive", "seasonal_naive"):
        assert rows[other]["error"] is None and rows[other]["mase"] > 0 and rows[other]["owa"] is None
    assert "OWA not computed: the Naive2 benchmark failed (ModelFitError: model 'naive2' failed on 1 series: " \
           "series 's2': boom)" in result.notes
    assert "naive2 failed on zeros (window 0): ModelFitError: model 'naive2' failed on 1 series: series 's2': " \
           "boom" in result.notes


def test_fallback_series_are_counted_and_named(tmp_path: Path) -> None:
    # multiplicative ETS refuses the series with zeros (s2): its fallback forecasts it
    spec = json.dumps({"name": "auto_ets", "params": {"model": "MMN"}, "fallback": "naive"})
    result = run_benchmark(None, [spec], input=_zeros_file(tmp_path), h=4, season_length=4)
    row = result.metrics.row(0, named=True)
    assert (row["error"], row["fallback_series"], row["failed_series"]) == (None, 1, 0)
    assert "auto_ets (window 0): 1 series forecast by its fallback model: s2" in result.notes


def test_series_without_a_forecast_are_scored_with_seasonal_naive(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    real = harness.run_task

    def holes(task, data, n_jobs=1):  # noqa: ANN001, ANN202 - 'naive' loses series s1 (NaN) and s3 (missing)
        out = real(task, data, n_jobs)
        if '"naive"' in task.spec:
            out = out.filter(pl.col("unique_id") != "s3").with_columns(
                pl.when(pl.col("unique_id") == "s1").then(float("nan")).otherwise(pl.col("mean")).alias("mean"))
        return out

    monkeypatch.setattr(harness, "run_task", holes)
    result = run_benchmark(None, ["naive", "seasonal_naive"], input=_zeros_file(tmp_path), h=4, season_length=4)
    assert result.metrics["failed_series"].to_list() == [2, 0]
    assert ("naive (window 0): 2 series without a finite forecast were scored with the seasonal naive forecast "
            "(season 4): s1, s3") in result.notes
    per = result.series_metrics
    assert per is not None
    by = {(r["model"], r["unique_id"]): r["mase"] for r in per.iter_rows(named=True)}
    assert by[("naive", "s1")] == by[("seasonal_naive", "s1")] and by[("naive", "s3")] == by[("seasonal_naive", "s3")]
    assert by[("naive", "s0")] != by[("seasonal_naive", "s0")]


def test_a_lone_task_gets_every_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = harness.run_task

    def spy(task, data, n_jobs=1):  # noqa: ANN001, ANN202
        seen.append(n_jobs)
        return real(task, data, n_jobs)

    monkeypatch.setattr(harness, "run_task", spy)
    run_benchmark("air_passengers", ["naive2"], n_jobs=3)  # one task: the reference is the model
    assert seen == [3]
    assert harness.task_cores(2, 7) == (2, 1) and harness.task_cores(8, 3) == (3, 2)


def test_cli_season_length_for_a_user_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(60)
    y = 50 + 10 * np.sin(2 * np.pi * t / 5) + rng.normal(0, 0.5, 60)
    src = tmp_path / "shop.csv"
    pl.DataFrame({"unique_id": "a", "ds": t + 1, "y": y}).write_csv(src)
    out = tmp_path / "res"
    res = runner.invoke(app, ["bench", "--input", str(src), "--h", "5", "--models", "seasonal_naive",
                              "--season-length", "5", "--n-jobs", "1", "--no-cache", "--output", str(out)])
    assert res.exit_code == 0, res.output
    fc = pl.read_parquet(out / "forecasts.parquet").sort("ds")
    np.testing.assert_allclose(fc["seasonal_naive"].to_numpy(), y[50:55])  # the last season, not the last value
    # MASE scaled by the lag-5 differences of the training part
    scale = np.mean(np.abs(y[5:55] - y[:50]))
    mase = pl.read_csv(out / "metrics.csv")["mase"][0]
    assert mase == pytest.approx(np.mean(np.abs(y[55:] - y[50:55])) / scale)
    bad = runner.invoke(app, ["bench", "--input", str(src), "--h", "5", "--models", "naive", "--season-length", "0",
                              "--output", str(out)])
    assert bad.exit_code == 2 and "--season-length must be an integer >= 1, got 0" in bad.output


# --------------------------------------------------------------------------- the suite's aggregate
def _per_dataset() -> pl.DataFrame:
    # relative MASE: a = [0.5, 0.5, 2.0]; b = [0.25, failed, 1.0]
    return pl.DataFrame({
        "dataset": ["d1"] * 3 + ["d2"] * 3 + ["d3"] * 3,
        "model": ["a", "seasonal_naive", "b"] * 3,
        "mase": [1.0, 2.0, 0.5, 0.5, 1.0, None, 4.0, 2.0, 2.0],
        "error": [None, None, None, None, None, "ModelFitError: boom", None, None, None],
        "fit_predict_seconds": [1.0, 0.1, 2.0, 1.0, 0.1, 3.0, 1.0, 0.1, 2.0],
        "peak_memory_mb": [300.0, 200.0, 400.0, 310.0, 200.0, 500.0, 320.0, 200.0, 450.0],
    })


def test_skill_score_and_win_rates_by_hand() -> None:
    from forecasting.benchmarks.suite import aggregate

    summary, per, wins, notes = aggregate(_per_dataset(), reference="seasonal_naive", n_resamples=0)
    rows = {r["model"]: r for r in summary.iter_rows(named=True)}
    assert summary["model"].to_list() == ["b", "a", "seasonal_naive"]  # best skill first
    assert rows["a"]["skill"] == pytest.approx(1 - 2 ** (-1 / 3))  # gmean(0.5, 0.5, 2) = 2^(-1/3)
    assert rows["b"]["skill"] == pytest.approx(1 - 0.25 ** (1 / 3))  # the failure counts as the reference (1)
    assert rows["seasonal_naive"]["skill"] == 0.0
    assert (rows["b"]["failures"], rows["a"]["failures"]) == (1, 0)
    assert per.filter((pl.col("dataset") == "d2") & (pl.col("model") == "b"))["failed"].to_list() == [True]
    # a beats the reference on d1, d2; b beats a on d1, d3; b ties the reference on d2 (imputed) and d3
    assert rows["a"]["win_rate"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert rows["b"]["win_rate"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert rows["seasonal_naive"]["win_rate"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    pair = {r["model"]: r for r in wins.iter_rows(named=True)}
    assert pair["a"]["vs_seasonal_naive"] == pytest.approx(2 / 3) and pair["b"]["vs_a"] == pytest.approx(2 / 3)
    assert (rows["b"]["fit_predict_seconds"], rows["b"]["peak_memory_mb"]) == (7.0, 500.0)
    assert rows["a"]["skill_lo"] is None and not notes


def test_bootstrap_intervals_are_reproducible_and_bracket_the_skill() -> None:
    from forecasting.benchmarks.suite import aggregate

    first = aggregate(_per_dataset(), n_resamples=500, seed=7)[0]
    again = aggregate(_per_dataset(), n_resamples=500, seed=7)[0]
    assert first.equals(again)
    for r in first.iter_rows(named=True):
        assert r["skill_lo"] <= r["skill"] + 1e-12 and r["skill"] <= r["skill_hi"] + 1e-12
        assert 0.0 <= r["win_rate_lo"] <= r["win_rate_hi"] <= 1.0
    ref = first.filter(pl.col("model") == "seasonal_naive").row(0, named=True)
    assert (ref["skill_lo"], ref["skill_hi"]) == (0.0, 0.0)


def test_cli_suite_runs_every_dataset_and_scores_a_failure_as_the_reference(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tiny = {"description": "test", "reference": "seasonal_naive", "windows": 1,
            "datasets": [{"dataset": "air_passengers"}, {"dataset": "air_passengers", "h": 6, "name": "air6"}]}
    monkeypatch.setattr(datasets, "suite", lambda name: tiny)
    real = harness.run_task

    def boom(task, data, n_jobs=1):  # noqa: ANN001, ANN202 - 'naive' fails at h=6
        if '"naive"' in task.spec and task.h == 6:
            raise ValueError("boom")
        return real(task, data, n_jobs)

    monkeypatch.setattr(harness, "run_task", boom)
    out = tmp_path / "suite"
    res = runner.invoke(app, ["bench", "--suite", "tiny", "--models", "naive", "--n-jobs", "1", "--output", str(out)])
    assert res.exit_code == 0, res.output
    summary = pl.read_csv(out / "suite.csv")
    assert summary["model"].to_list() == ["seasonal_naive", "naive"]
    naive = summary.row(1, named=True)
    assert naive["failures"] == 1 and naive["datasets"] == 2
    per = pl.read_csv(out / "suite_per_dataset.csv")
    failed = per.filter(pl.col("failed"))
    assert failed["model"].to_list() == ["naive"] and failed["relative_mase"].to_list() == [1.0]
    assert failed["error"].to_list() == ["ValueError: boom"]
    first = per.filter((pl.col("model") == "naive") & ~pl.col("failed")).row(0, named=True)
    ref = per.filter(pl.col("model") == "seasonal_naive").row(0, named=True)
    assert first["relative_mase"] == pytest.approx(first["mase"] / ref["mase"])
    # skill = 1 - gmean(relative MASE at h=12, 1 for the failure)
    assert naive["skill"] == pytest.approx(1 - first["relative_mase"] ** 0.5)
    meta = json.loads((out / "suite.json").read_text())
    assert meta["models"] == ["naive", "seasonal_naive"] and [d["h"] for d in meta["datasets"]] == [12, 6]
    assert [d["dataset"] for d in meta["datasets"]] == ["air_passengers", "air6"]
    assert meta["datasets"][0]["n_series"] == 1 and meta["code_version"]
    assert "## Win rates" in (out / "suite.md").read_text()
    assert "suite tiny: 2 datasets" in res.output
