"""The session-22 tester's findings (T1): each test names the case it came from; the report lists the commands."""

from __future__ import annotations

import polars as pl


def test_a_benchmark_whose_every_model_fails_writes_its_leaderboard(tmp_path) -> None:
    """`forecasting bench --input short.csv --models naive,seasonal_naive --h 3` (series of 4 and 8 days): both
    models failed (too short), and writing the leaderboard ended the run with polars' ColumnNotFoundError "mase"
    (then matplotlib's "Number of rows must be a positive integer, not 0"), exit 1 and a traceback. Now each
    model is a row with null scores and its error, and the files are written."""
    from forecasting.benchmarks.harness import run_benchmark, write_results

    days = ["2024-01-0%d" % d for d in range(1, 9)]
    pl.DataFrame({"unique_id": ["a"] * 4 + ["b"] * 8, "ds": days[:4] + days,
                  "y": [1.0, 2, 3, 4, 1, 2, 3, 4, 4, 4, 4, 4]}).write_csv(tmp_path / "short.csv")
    result = run_benchmark(None, ["naive", "seasonal_naive"], input=tmp_path / "short.csv", h=3, n_jobs=1)
    paths = write_results(result, tmp_path / "out")
    metrics = pl.read_csv(paths["metrics"])
    assert metrics["model"].to_list() == ["naive", "seasonal_naive"]
    assert metrics.select("smape", "mase", "owa", "mae", "rmse").null_count().row(0) == (2, 2, 2, 2, 2)
    assert metrics["error"].to_list()[0] == ("InsufficientHistoryError: 1 series too short: series 'a': 1 "
                                             "observations, model 'naive' needs at least 2 (or ask for a fallback "
                                             "model)")
    assert "| seasonal_naive (reference) | - | - |" in paths["leaderboard"].read_text()
    assert paths["html"].read_text().count("InsufficientHistoryError") >= 2
