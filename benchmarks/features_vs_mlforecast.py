"""Our polars feature pipeline against mlforecast on M4 Hourly: same features, same values?

Builds the training matrix of the M4 Hourly training part (414 series, 353,500 values)
with :class:`forecasting.features.FeaturePipeline` and with mlforecast's
``MLForecast.preprocess`` (Nixtla), for the same features:

* lags 1, 2, 3, 24, 48, ..., 168 of the transformed target;
* rolling mean and std over 24 values ending 1 step back (both sample std, ddof=1);
* optionally (``--seasonal``) the seasonal rolling mean of the 24, 48, ..., 168-step lags;
* target transforms: per-series standard scaling (population std, ddof=0, each
  series' full history), then the seasonal difference ``[24]``.

Reports (1) the largest absolute difference between the two matrices on their common
rows and columns, (2) the median wall time of 3 builds each, (3) the peak resident
memory of a fresh process per library (imports + the panel read from parquet, then one
build; also reported above that baseline) (polars allocates outside Python's allocator,
so tracemalloc would miss most of it), and the ratio ours / mlforecast.

Needs the ``bench`` extra (``pip install -e '.[bench]'``) and the dataset folder::

    FORECASTING_DATA_DIR=/path/to/datasets python -m forecasting.benchmarks.features_vs_mlforecast [--seasonal] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
import polars as pl

LAGS = [1, 2, 3, *[24 * i for i in range(1, 8)]]
WINDOW = 24
SEASON = 24
# our names -> mlforecast's names
NAME_MAP = {**{f"lag_{k}": f"lag{k}" for k in LAGS},
            "rolling_mean_24_lag_1": "rolling_mean_lag1_window_size24",
            "rolling_std_24_lag_1": "rolling_std_lag1_window_size24",
            "seasonal_rolling_mean_24x7_lag_24": "seasonal_rolling_mean_lag24_season_length24_window_size7",
            "_target": "y"}


def load_frame() -> pl.DataFrame:
    """The M4 Hourly training part, validated (sorted by unique_id, ds; Int64 steps)."""
    from forecasting.data import validate_panel
    from forecasting.datasets import load_m4_hourly

    train, _ = load_m4_hourly(download=False)
    return validate_panel(train, freq=1).frame


# --------------------------------------------------------------------------- the two builders
def ours(seasonal: bool) -> Any:
    from forecasting.data import validate_panel
    from forecasting.features import FeaturePipeline, FeatureSpec, RollingSpec

    rolling = [RollingSpec(window=WINDOW, stats=["mean", "std"], lag=1)]
    if seasonal:
        rolling.append(RollingSpec(window=7, stats=["mean"], lag=SEASON, season_length=SEASON))
    spec = FeatureSpec(lags=LAGS, rolling=rolling, differences=[SEASON], scaler="standard")

    def build(frame: pl.DataFrame, pipe: FeaturePipeline) -> tuple[np.ndarray, np.ndarray, pl.DataFrame]:
        tr = pipe.transform(frame, scales=pipe.scale_stats(frame))
        rows = pipe.training_rows(tr)
        return pipe.matrix(rows), rows["_target"].to_numpy(), rows

    def make(frame: pl.DataFrame) -> Any:
        pipe = FeaturePipeline.fit(spec, validate_panel(frame, freq=1))
        return lambda: build(frame, pipe)

    return make


def theirs(seasonal: bool, threads: int) -> Any:
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean, RollingStd, SeasonalRollingMean
    from mlforecast.target_transforms import Differences, LocalStandardScaler

    tfms: dict[int, list[Any]] = {1: [RollingMean(window_size=WINDOW), RollingStd(window_size=WINDOW)]}
    if seasonal:
        tfms[SEASON] = [SeasonalRollingMean(season_length=SEASON, window_size=7)]

    def build(frame: pl.DataFrame, as_numpy: bool) -> Any:
        # a fresh object per build: preprocess keeps state
        fcst = MLForecast(models=[], freq=1, lags=LAGS, lag_transforms=tfms, num_threads=threads,
                          target_transforms=[LocalStandardScaler(), Differences([SEASON])])
        if as_numpy:
            return fcst.preprocess(frame, static_features=[], dropna=True, return_X_y=True, as_numpy=True)
        return fcst.preprocess(frame, static_features=[], dropna=True)

    def make(frame: pl.DataFrame, *, as_numpy: bool = True) -> Any:
        return lambda: build(frame, as_numpy)

    return make


# --------------------------------------------------------------------------- one measurement per process
def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB.

    Linux ``VmHWM`` (per address space); ``ru_maxrss`` is a fallback only: on Linux it
    carries the parent's peak across fork + exec, so a child started by a big parent
    reports the parent's size.
    """
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child(lib: str, mode: str, seasonal: bool, threads: int, data: str) -> None:
    frame = pl.read_parquet(data)  # written by the parent: the child's baseline holds only the panel
    make = ours(seasonal) if lib == "ours" else theirs(seasonal, threads)
    build = make(frame)
    base = peak_rss_kib()
    out: dict[str, Any] = {"baseline_rss_kib": base}
    if mode == "memory":
        t0 = time.perf_counter()
        X, y = build()[:2]
        out["first_s"] = time.perf_counter() - t0
        out["shape"] = list(X.shape)
        out["peak_rss_kib"] = peak_rss_kib()
    else:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            build()
            times.append(time.perf_counter() - t0)
        out["times_s"] = times
    print("RESULT " + json.dumps(out))


def run_child(lib: str, mode: str, args: argparse.Namespace, data: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "forecasting.benchmarks.features_vs_mlforecast", "--child", lib, "--mode", mode,
           "--threads", str(args.threads), "--data", data] + (["--seasonal"] if args.seasonal else [])
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=os.environ.copy())
    if res.returncode != 0:
        msg = f"{lib} {mode} failed:\n{res.stderr[-3000:]}"
        raise RuntimeError(msg)
    line = next(ln for ln in res.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def compare(frame: pl.DataFrame, seasonal: bool, threads: int) -> dict[str, Any]:
    """Largest absolute difference on the common (unique_id, ds) rows, per column."""
    rows = ours(seasonal)(frame)()[2]
    theirs_df = theirs(seasonal, threads)(frame, as_numpy=False)()
    if not isinstance(theirs_df, pl.DataFrame):
        theirs_df = pl.from_pandas(theirs_df)
    cols = [c for c in NAME_MAP if c in rows.columns]
    a = rows.select("unique_id", "ds", *cols)
    b = theirs_df.select("unique_id", "ds", *[pl.col(NAME_MAP[c]).alias(c + "__ml") for c in cols])
    joined = a.join(b, on=["unique_id", "ds"], how="inner")
    diffs = {c: float(joined.select((pl.col(c) - pl.col(c + "__ml")).abs().max()).item()) for c in cols}
    # where the rolling std differs most, the sample std of the same 24 values by numpy (two-pass)
    d = (pl.col("rolling_std_24_lag_1") - pl.col("rolling_std_24_lag_1__ml")).abs()
    uid, ds, ours_std, ml_std = joined.sort(d, descending=True).select(
        "unique_id", "ds", "rolling_std_24_lag_1", "rolling_std_24_lag_1__ml").row(0)
    window = joined.filter(pl.col("unique_id") == uid, pl.col("ds").is_between(ds - WINDOW + 1, ds))["lag_1"]
    worst_std = {"unique_id": uid, "ds": ds, "ours": ours_std, "mlforecast": ml_std,
                 "numpy": float(np.std(window.to_numpy(), ddof=1)) if window.len() == WINDOW else None}
    return {"worst_std": worst_std, "rows_ours": a.height, "rows_mlforecast": b.height, "rows_common": joined.height,
            "columns": len(cols), "max_abs_diff": diffs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seasonal", action="store_true", help="also the seasonal rolling mean 24x7 at lag 24")
    parser.add_argument("--threads", type=int, default=1, help="mlforecast num_threads (polars uses every core)")
    parser.add_argument("--child", choices=["ours", "mlforecast"], help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["time", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.mode, args.seasonal, args.threads, args.data)
        return

    frame = load_frame()
    eq = compare(frame, args.seasonal, args.threads)
    print(f"M4 Hourly train, features: lags {LAGS}, rolling mean/std 24 at lag 1"
          f"{', seasonal rolling mean 24x7 at lag 24' if args.seasonal else ''}; "
          f"standard scaler then Differences([24]); polars threads {pl.thread_pool_size()}, "
          f"mlforecast num_threads {args.threads}")
    print(f"\nrows: ours {eq['rows_ours']}, mlforecast {eq['rows_mlforecast']}, common {eq['rows_common']}; "
          f"{eq['columns']} columns compared (features + transformed target)")
    worst = max(eq["max_abs_diff"].values())
    for c, d in eq["max_abs_diff"].items():
        print(f"  {c:<36} max |ours - mlforecast| = {d:.3g}")
    print(f"  equal within 1e-8: {worst <= 1e-8} (worst {worst:.3g})")
    w = eq["worst_std"]
    print(f"  largest rolling std gap: series {w['unique_id']} ds {w['ds']}: ours {w['ours']:.3g}, "
          f"mlforecast {w['mlforecast']:.3g}, numpy (ddof=1) {w['numpy']:.3g}")

    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "m4_hourly_train.parquet")
        frame.write_parquet(data)
        res = {lib: {"time": run_child(lib, "time", args, data), "memory": run_child(lib, "memory", args, data)}
               for lib in ("ours", "mlforecast")}
    med = {lib: statistics.median(r["time"]["times_s"]) for lib, r in res.items()}
    peak = {lib: r["memory"]["peak_rss_kib"] / 1024 for lib, r in res.items()}
    delta = {lib: (r["memory"]["peak_rss_kib"] - r["memory"]["baseline_rss_kib"]) / 1024 for lib, r in res.items()}
    print(f"\n{'':<34}{'ours':>12}{'mlforecast':>12}{'ours/mlf':>10}")
    print(f"{'build time, median of 3 (s)':<34}{med['ours']:>12.3f}{med['mlforecast']:>12.3f}"
          f"{med['ours'] / med['mlforecast']:>10.2f}")
    print(f"{'  (3 runs)':<34}{' '.join(f'{t:.3f}' for t in res['ours']['time']['times_s']):>12}  "
          f"{' '.join(f'{t:.3f}' for t in res['mlforecast']['time']['times_s'])}")
    first = {lib: r["memory"]["first_s"] for lib, r in res.items()}
    print(f"{'first build in a fresh process (s)':<34}{first['ours']:>12.3f}{first['mlforecast']:>12.3f}"
          f"{first['ours'] / first['mlforecast']:>10.2f}")
    print(f"{'peak RSS of the process (MiB)':<34}{peak['ours']:>12.0f}{peak['mlforecast']:>12.0f}"
          f"{peak['ours'] / peak['mlforecast']:>10.2f}")
    print(f"{'peak RSS above loaded data (MiB)':<34}{delta['ours']:>12.0f}{delta['mlforecast']:>12.0f}"
          f"{delta['ours'] / max(delta['mlforecast'], 1e-9):>10.2f}")
    print(f"{'matrix shape':<34}{str(tuple(res['ours']['memory']['shape'])):>12}"
          f"{str(tuple(res['mlforecast']['memory']['shape'])):>12}")


if __name__ == "__main__":
    main()
