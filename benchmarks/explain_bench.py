"""Explanation speed of the XGBoost forecaster on M4 Hourly (issue 15: within 1.2x of one TreeSHAP call).

Prints, for a model trained on the M4 Hourly series (``--series-limit`` for a quick run):

* the time to explain the 48 forecast steps of one series (``explain(48, history=<one series>)``:
  the recursive forecast, one batched TreeSHAP call, the series terms and the feature values in
  units of ``y``), median of repeated runs;
* the time of one TreeSHAP call (``pred_contribs``) on the same 48 feature rows, and the
  **ratio** of the two (the issue's bound: 1.2; before, 6.4: one booster call per step);
* the approximate mode (Saabas path attributions) on the same request, and the plain forecast;
* throughput of exact TreeSHAP over 10,000 training rows, and the additivity errors (relative to
  the largest contribution).

Run: ``FORECASTING_DATA_DIR=... python -m forecasting.benchmarks.explain_bench [--n-estimators 300]
[--repeat 5] [--series-limit 414]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from forecasting.datasets import load_m4_hourly
from forecasting.models import make_model
from forecasting.models.xgb import XGBoostForecaster


def _median_ms(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    """Train once, then time the explanation workloads and print a small table with the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-estimators", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=-1)
    parser.add_argument("--series-limit", type=int, default=None)
    args = parser.parse_args()

    train, _ = load_m4_hourly()
    if args.series_limit:
        keep = train["unique_id"].unique(maintain_order=True).head(args.series_limit)
        train = train.filter(pl.col("unique_id").is_in(keep.to_list()))
    params = {"season_length": 24, "n_estimators": args.n_estimators, "conformal_windows": 0}
    start = time.perf_counter()
    model = make_model({"name": "xgboost", "params": params}, freq=1, n_jobs=args.n_jobs).fit(train)
    assert isinstance(model, XGBoostForecaster)  # the booster internals below are XGBoost's
    fit_s = time.perf_counter() - start

    one = train.filter(pl.col("unique_id") == train["unique_id"][0])
    e = model.explain(48, history=one)
    assert e.n_rows == 48
    panel = model._history(one)
    scales, _ = model._scales(panel, one)
    _, steps = model._paths(panel, 48, None, scales=scales, collect=True)
    X48 = np.concatenate([st.X for st in steps])  # the 48 rows the explanation attributes
    booster = model.boosters_[0]
    explain_ms = _median_ms(lambda: model.explain(48, history=one), args.repeat)
    shap48_ms = _median_ms(lambda: model._predict_booster(booster, X48, pred_contribs=True), args.repeat)
    approx_ms = _median_ms(lambda: model.explain(48, history=one, approximate=True), args.repeat)
    predict_ms = _median_ms(lambda: model.predict(48, history=one), args.repeat)

    pipe = model.pipeline_
    rows = pipe.training_rows(pipe.transform(train, scales=model.scales_))
    rows = rows.sample(n=min(10_000, rows.height), seed=0)
    X = pipe.matrix(rows)
    start = time.perf_counter()
    contrib = model._predict_booster(booster, X, pred_contribs=True)
    shap_s = time.perf_counter() - start
    pred = model._predict_booster(booster, X)
    additivity = float(abs(contrib.sum(axis=1) - pred).max() / max(abs(contrib[:, :-1]).max(), 1e-12))

    print(f"model: xgboost, {args.n_estimators} trees, depth {model.params.max_depth}, "
          f"{len(pipe.feature_names)} features; fit on {train['unique_id'].n_unique()} series in {fit_s:.1f} s; "
          f"median of {args.repeat}")
    print("| workload | figure | additivity error (relative to the largest contribution) |")
    print("|---|---|---|")
    print(f"| explain 48 steps of one series | {explain_ms:.0f} ms | {e.additivity_error_relative:.1e} |")
    print(f"| one TreeSHAP call on the same 48 rows | {shap48_ms:.0f} ms | |")
    print(f"| ratio (issue 15: <= 1.2) | {explain_ms / shap48_ms:.2f} | |")
    print(f"| approximate explanation (Saabas), 48 steps | {approx_ms:.0f} ms | |")
    print(f"| forecast only, 48 steps | {predict_ms:.0f} ms | |")
    print(f"| TreeSHAP over {len(X):,} rows | {len(X) / shap_s:,.0f} rows/s ({shap_s:.2f} s) | {additivity:.1e} |")


if __name__ == "__main__":
    main()
