"""Issue 13, items 1 and 5: M3 in the catalogue, the harness that never stops at a failing model,
the user's season length, spare cores for few tasks, weighted/scaled quantile loss, and the
development suite's aggregate (skill score, win rates, bootstrap intervals)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from forecasting import datasets
from forecasting.benchmarks import harness
from forecasting.benchmarks.harness import load_bench_data
from forecasting.errors import DatasetError




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
