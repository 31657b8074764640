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
the XGBoost recursion (48 pipeline passes); the model calls themselves are what differ,
so the table also times the model call alone ("call" rows: the booster or network on
ready inputs, one row and every series' row). "Native" NHITS here is the project's own
lean torch path (one forward over raw windows), not neuralforecast's ``predict``, which
builds a dataset and a Lightning trainer per call: its time for one series is the
"neuralforecast.predict" row.

Run: ``python -m forecasting.benchmarks.onnx_latency [--nhits-steps 100] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _model_calls(name: str, model: Any, runtime: Any, batch: pl.DataFrame, repeats: int) -> list[dict[str, object]]:
    """The model call alone (no feature pipeline, no window building): one row and 1,000 rows."""
    out = []
    if name == "xgboost":
        pipe = model.pipeline_
        panel = model._history(batch)
        _, steps = model._paths(panel, 1, None, scales=pipe.scale_stats(panel.frame), collect=True)
        X = steps[0].X
        booster, sess = model.boosters_[0], runtime.boosters_[0]
        calls = {"native": lambda x: booster.inplace_predict(x, validate_features=False),
                 "onnx": lambda x: sess.run(None, {"input": x})[0]}
    else:
        import torch

        panel = model._history(batch)
        _, temporal, static = model._windows(panel, model.trained_horizon, None)
        X = np.ascontiguousarray(temporal, dtype=np.float32)
        core, sess = model._core().eval(), runtime.net_
        st = np.zeros((len(X), 0), dtype=np.float32)

        def native(x: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return core(torch.from_numpy(x), torch.from_numpy(st[:len(x)])).numpy()

        def onnx(x: np.ndarray) -> np.ndarray:
            feeds = {"temporal": x}
            if "static" in {i.name for i in sess.get_inputs()}:
                feeds["static"] = st[:len(x)]
            return sess.run(None, feeds)[0]

        calls = {"native": native, "onnx": onnx}
    for label, x in (("call, 1 row", X[:1]), (f"call, {len(X)} rows", X)):
        t_native, _ = _timed(functools.partial(calls["native"], x), repeats * 4)
        t_onnx, _ = _timed(functools.partial(calls["onnx"], x), repeats * 4)
        out.append({"model": name, "case": label, "native_ms": t_native * 1e3, "onnx_ms": t_onnx * 1e3,
                    "speedup": t_native / t_onnx, "max_rel_diff": float("nan"), "fit_s": float("nan")})
    return out


def _neuralforecast_predict(model: Any, one: pl.DataFrame, repeats: int) -> dict[str, object]:
    """The reference path: neuralforecast's own ``NeuralForecast.predict(df=...)`` for one series, with a network of
    the same architecture (trained a few steps: latency does not depend on the weights)."""
    import logging

    from neuralforecast import NeuralForecast

    from forecasting.models.network_core import quiet as _quiet

    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    with _quiet():
        net = model._build_net([], [], [], {"logger": False, "enable_progress_bar": False,
                                            "enable_checkpointing": False, "enable_model_summary": False,
                                            "accelerator": "cpu"})
        net.max_steps = 2
        nf = NeuralForecast(models=[net], freq=1)
        df = one.select("unique_id", "ds", "y").to_pandas()
        nf.fit(df)
        t, _ = _timed(lambda: nf.predict(df=df), repeats)
    return {"model": "nhits", "case": "neuralforecast.predict", "native_ms": t * 1e3, "onnx_ms": float("nan"),
            "speedup": float("nan"), "max_rel_diff": float("nan"), "fit_s": float("nan")}


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
                native_s, a = _timed(functools.partial(model.predict, 48, history=hist), args.repeats)
                onnx_s, b = _timed(functools.partial(runtime.predict, 48, history=hist), args.repeats)
                col = model.alias
                diff = np.abs(a[col].to_numpy() - b[col].to_numpy()).max() / np.abs(a[col].to_numpy()).max()
                rows.append({"model": name, "case": label, "native_ms": native_s * 1e3, "onnx_ms": onnx_s * 1e3,
                             "speedup": native_s / onnx_s, "max_rel_diff": float(diff), "fit_s": fit_s})
            rows += _model_calls(name, model, runtime, batch, args.repeats)
            if name == "nhits":
                rows.append(_neuralforecast_predict(model, one, args.repeats))
    print(f"{'model':8} {'case':20} {'native ms':>10} {'onnx ms':>10} {'speedup':>8} {'max rel diff':>13}")
    for r in rows:
        print(f"{r['model']:8} {r['case']:20} {r['native_ms']:10.2f} {r['onnx_ms']:10.2f} {r['speedup']:8.2f} "
              f"{r['max_rel_diff']:13.2e}")
    return rows


if __name__ == "__main__":
    main()
