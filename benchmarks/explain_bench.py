"""Explanation speed of the XGBoost forecaster on M4 Hourly.

Prints, for a model trained on the 414 M4 Hourly series:

* time per request to explain the 48 forecast steps of one series (``explain(48,
  history=<one series>)``: the recursive forecast plus exact TreeSHAP of each step),
  median of repeated runs;
* throughput of exact TreeSHAP (``pred_contribs``) over 10,000 feature rows, rows/s;
* the additivity error of both.

Run: ``FORECASTING_DATA_DIR=... python -m forecasting.benchmarks.explain_bench [--n-estimators 300] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import polars as pl

from forecasting.datasets import load_m4_hourly
from forecasting.models.base import explain_forecast
from forecasting.models import make_model
from forecasting.models.xgb import XGBoostForecaster


def main() -> None:
    """Train once, then time the two explanation workloads and print a small table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-estimators", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=-1)
    args = parser.parse_args()

    train, _ = load_m4_hourly()
    params = {"season_length": 24, "n_estimators": args.n_estimators, "conformal_windows": 0}
    start = time.perf_counter()
    model = make_model({"name": "xgboost", "params": params}, freq=1, n_jobs=args.n_jobs).fit(train)
    assert isinstance(model, XGBoostForecaster)  # the booster internals below are XGBoost's
    fit_s = time.perf_counter() - start

    one = train.filter(pl.col("unique_id") == "H1")
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        e = explain_forecast(model, 48, history=one)
        times.append(time.perf_counter() - start)
    assert e.n_rows == 48

    pipe = model.pipeline_
    rows = pipe.training_rows(pipe.transform(train, scales=model.scales_))
    rows = rows.sample(n=10_000, seed=0)
    X = pipe.matrix(rows)
    booster = model.boosters_[0]
    start = time.perf_counter()
    contrib = model._predict_booster(booster, X, pred_contribs=True)
    shap_s = time.perf_counter() - start
    pred = model._predict_booster(booster, X)
    additivity = float(abs(contrib.sum(axis=1) - pred).max() / max(abs(pred).max(), 1e-12))

    print(f"model: xgboost, {args.n_estimators} trees, depth {model.params.max_depth}, "
          f"{len(pipe.feature_names)} features; fit on 414 series in {fit_s:.1f} s")
    print("| workload | figure | additivity error (relative) |")
    print("|---|---|---|")
    print(f"| explain 48 steps of one series (median of {args.repeat}) | {statistics.median(times) * 1000:.0f} ms "
          f"per request | {e.additivity_error_relative:.1e} |")
    print(f"| TreeSHAP over 10,000 rows | {10_000 / shap_s:,.0f} rows/s ({shap_s:.2f} s) | {additivity:.1e} |")


if __name__ == "__main__":
    main()
