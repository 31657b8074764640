"""Native vs ONNX Runtime predict latency, side by side in one run.

For XGBoost and NHITS trained on M4 Hourly (414 series), the time of ``predict(48,
history=...)`` for one series and for 1,000 series (M4 series repeated under new ids),
native (XGBoost / torch) against the exported graph run by onnxruntime
(:mod:`forecasting.runtime`), median of ``--repeats`` calls after one warm-up call, and the
max relative difference of the two forecasts.

Reference (issue 5): a user reports neuralforecast's predict at 100 ms or more against
about 1 ms for an ONNX-exported NHITS on a CPU. Targets: ONNX at least 10x faster than
native for one NHITS series, and no slower for XGBoost batches.

Note: both paths share the polars feature pipeline and window building, which dominate
the XGBoost recursion (48 pipeline passes); the model calls themselves are what differ.

Run: ``python -m benchmarks.onnx_latency [--nhits-steps 100] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl


def _timed(fn, repeats: int) -> tuple[float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    from forecasting.datasets import load_m4_hourly
    from forecasting.export import export_model
    from forecasting.models import make_model
    from forecasting.runtime import load_onnx

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nhits-steps", type=int, default=100, help="NHITS training steps (latency does not depend on it)")
    ap.add_argument("--xgb-trees", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=1000, help="series in the batch case")
    args = ap.parse_args(argv)

    train, _ = load_m4_hourly()
    one = train.filter(pl.col("unique_id") == "H1")
    reps = []
    ids = train["unique_id"].unique(maintain_order=True).to_list()
    for i in range(args.batch):
        uid = ids[i % len(ids)]
        reps.append(train.filter(pl.col("unique_id") == uid).tail(700).with_columns(pl.lit(f"S{i}").alias("unique_id")))
    batch = pl.concat(reps)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        specs = {"xgboost": {"n_estimators": args.xgb_trees, "season_length": 24},
                 "nhits": {"max_steps": args.nhits_steps, "season_length": 24, "device": "cpu"}}
        for name, params in specs.items():
            t = time.perf_counter()
            model = make_model({"name": name, "params": params}, freq=1).fit(train)
            fit_s = time.perf_counter() - t
            folder = export_model(model, Path(tmp) / name)
            runtime = load_onnx(folder)
            for label, hist in (("1 series", one), (f"{args.batch} series", batch)):
                native_s, a = _timed(lambda m=model, hh=hist: m.predict(48, history=hh), args.repeats)
                onnx_s, b = _timed(lambda m=runtime, hh=hist: m.predict(48, history=hh), args.repeats)
                col = model.alias
                diff = np.abs(a[col].to_numpy() - b[col].to_numpy()).max() / np.abs(a[col].to_numpy()).max()
                rows.append({"model": name, "case": label, "native_ms": native_s * 1e3, "onnx_ms": onnx_s * 1e3,
                             "speedup": native_s / onnx_s, "max_rel_diff": float(diff), "fit_s": fit_s})
    print(f"{'model':8} {'case':14} {'native ms':>10} {'onnx ms':>10} {'speedup':>8} {'max rel diff':>13}")
    for r in rows:
        print(f"{r['model']:8} {r['case']:14} {r['native_ms']:10.1f} {r['onnx_ms']:10.1f} {r['speedup']:8.2f} "
              f"{r['max_rel_diff']:13.2e}")
    return rows


if __name__ == "__main__":
    main()
