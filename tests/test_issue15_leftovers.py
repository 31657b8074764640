"""Issue 15 leftovers: network calendar inputs by name, the leaderboard's reference row always
there, reports templated without HTML built in Python, shap's own plots in the report."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

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


# ---------------------------------------------------------------------------- reports: templates and shap's plots

SOURCES = [Path(__file__).resolve().parents[1] / p for p in ("forecasting/reports.py", "benchmarks/leaderboard.py")]
AIR = Path(__file__).resolve().parents[1] / "datasets" / "air_passengers.csv"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_no_html_is_built_in_python(source: Path):
    tags = re.findall(r"</?(?:table|tr|td|th|p|h[1-6]|figure|figcaption|img|div|span|section|code|b|ul|li)\b",
                      source.read_text())
    assert tags == []


def test_leaderboard_cells_are_escaped_by_the_template(tmp_path: Path):
    from forecasting.benchmarks.leaderboard import write_html

    metrics = pl.DataFrame({"dataset": ["d"], "model": ["<i>m</i> & co"], "smape": [10.0], "mase": [1.0],
                            "fit_predict_seconds": [0.5]})
    forecasts = pl.DataFrame({"unique_id": ["a", "a"], "ds": [1, 2], "window": [0, 0], "cutoff": [0, 0],
                              "y": [1.0, 2.0], "<i>m</i> & co": [1.5, 2.5]})
    page = write_html(metrics, tmp_path / "x.html", forecasts=forecasts).read_text()
    assert '<td class="">&lt;i&gt;m&lt;/i&gt; &amp; co</td><td class="num">10.0000</td>' in page
    assert "<i>m</i>" not in page


def test_report_draws_with_shaps_own_plots(monkeypatch: pytest.MonkeyPatch):
    import shap

    from forecasting.reports import _build

    calls: dict[str, list] = {}
    for name in ("bar", "beeswarm", "scatter", "waterfall"):
        real = getattr(shap.plots, name)

        def record(e, *args, _real=real, _name=name, **kwargs):
            calls.setdefault(_name, []).append(e)
            return _real(e, *args, **kwargs)

        monkeypatch.setattr(shap.plots, name, record)
    air = pl.read_csv(AIR, try_parse_dates=True)
    spec = {"name": "xgboost", "params": {"n_estimators": 30, "max_depth": 3, "conformal_windows": 2, "seed": 0}}
    doc = _build(spec, air, h=12, validation=False, select=["largest", "smallest"])
    assert doc.overlaps == []
    assert {k: len(v) for k, v in calls.items()} == {"bar": 1, "beeswarm": 1, "scatter": 3, "waterfall": 2}
    page = doc.render()
    # each waterfall plot is shap's, on the same rows as its table: the base value, the forecast, and the lag
    # values that came from the model's own forecasts named so
    tables = re.findall(r'<table class="waterfall-table".*?</table>', page, re.S)
    for one, table in zip(calls["waterfall"], tables, strict=True):
        base = float(re.search(r'data-kind="base" data-value="([^"]+)"', table).group(1))
        out = float(re.search(r'data-kind="output" data-value="([^"]+)"', table).group(1))
        assert one.base_values == base and one.values.sum() + base == pytest.approx(out, rel=1e-6)
        flagged = table.count('class="label">from forecast')
        top = np.argsort(-np.abs(one.values), kind="stable")[:10]
        assert sum(one.feature_names[j].endswith(" (from forecast)") for j in top) == flagged
    step12 = next(e for e in calls["waterfall"] if e.feature_names[0].endswith("(from forecast)"))
    assert step12.feature_names[0] == "lag_1 (from forecast)"  # 12 steps ahead, the last month is a forecast


def test_text_overlaps_ignores_recoloured_labels_and_undrawn_ticks():
    from forecasting.reports import new_figure, text_overlaps

    fig = new_figure(4, 2)
    ax = fig.add_subplot()
    ax.set_xlim(0.5, 9.5)
    ax.set_xticks([0, 5, 10], ["0", "5", "10"])  # 0 and 10 lie outside the view: not drawn
    ax.text(0.9, 0.5, "622 = lag_12", ha="right", transform=ax.transAxes, color="grey")
    ax.text(0.9, 0.5, "lag_12", ha="right", transform=ax.transAxes)  # shap's waterfall colours a label's end
    ax.text(0.1, 0.9, "\nbelow", va="top", transform=ax.transAxes)
    ax.text(0.1, 0.93, "above", va="top", transform=ax.transAxes)  # on the blank first line of "\nbelow"
    assert text_overlaps(fig) == []
    ax.text(0.85, 0.5, "other", transform=ax.transAxes)
    assert text_overlaps(fig) == [("622 = lag_12", "other"), ("lag_12", "other")]
