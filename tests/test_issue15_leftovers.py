"""Issue 15 leftovers: network calendar inputs by name, the leaderboard's reference row always
there, reports templated without HTML built in Python, shap's own plots in the report."""

from __future__ import annotations

import numpy as np
import polars as pl

from forecasting.explanation import Explanation, calendar_categories


def test_network_calendar_inputs_are_named_like_the_tree_features():
    names = ["y_lag_1", "month_lag_1", "month_lag_12", "month_step_2", "dayofweek_lag_3", "monthly_sales_lag_1"]
    cats = calendar_categories(names)
    assert cats is not None and sorted(cats) == ["dayofweek_lag_3", "month_lag_1", "month_lag_12", "month_step_2"]
    assert cats["month_lag_1"][12] == "Dec" and cats["dayofweek_lag_3"][6] == "Sun"
    # one forecast of January 1961 from a window ending in December 1960 (AirPassengers, as NHITS sees it)
    e = Explanation(values=np.array([[1.0, -2.0, 0.5, 0.25, 0.0, 0.0]]), base_values=np.array([100.0]),
                    feature_names=names, data=np.array([[432.0, 12.0, 1.0, 2.0, 0.0, 7.0]]),
                    output=np.array([99.75]), rows=pl.DataFrame({"unique_id": ["AirPassengers"], "step": [1]}),
                    method="example", categories=cats)
    labels = dict(e.to_frame().select("feature", "value_label").iter_rows())
    assert labels == {"month_lag_1": "Dec", "month_step_2": "Feb", "month_lag_12": "Jan", "y_lag_1": None,
                      "dayofweek_lag_3": "Mon", "monthly_sales_lag_1": None}


def test_leaderboard_always_has_the_reference_and_its_skill(tmp_path):
    from forecasting.benchmarks.harness import run_benchmark, write_results

    listed = run_benchmark("air_passengers", ["naive", "seasonal_naive"], windows=2)
    alone = run_benchmark("air_passengers", ["naive"], windows=2)
    assert listed.reference is None and listed.provenance["reference_added"] is False
    # the harness scored seasonal naive itself, with the scores of the run that listed it; metrics are the user's
    assert alone.metrics["model"].to_list() == ["naive"] and alone.provenance["reference_added"] is True
    ref = listed.metrics.filter(pl.col("model") == "seasonal_naive")
    for col in ("smape", "mase", "owa", "mae", "rmse"):
        assert alone.reference[col][0] == ref[col][0], col
    mase = dict(zip(listed.metrics["model"], listed.metrics["mase"], strict=True))
    md = write_results(alone, tmp_path)["leaderboard"].read_text()
    naive_row = next(line for line in md.splitlines() if line.startswith("| naive |"))
    assert naive_row.split(" | ")[3] == f"{1 - mase['naive'] / mase['seasonal_naive']:.4f}"
    assert "| seasonal_naive (reference) |" in md
    assert "- reference: seasonal_naive, season length 12: scored by the harness on every window" in md
    page = (tmp_path / "leaderboard.html").read_text()
    assert '<tr class="reference" data-reference="true"><td class="">seasonal_naive (reference)</td>' in page
