"""GPU check: NHITS and XGBoost trained on the GPU, saved, reloaded on the CPU, same forecasts?

On M4 Hourly (414 series, h = 48; Makridakis, Spiliotis & Assimakopoulos, IJF 36(1), 2020):

1. trains NHITS (our adapter, ``device="cuda"`` when torch sees a GPU, else ``"cpu"``) and
   the XGBoost forecaster (``device="cuda"`` when the installed xgboost can train on a GPU,
   else ``"cpu"``) and times each fit;
2. with ``--skip-cpu-train`` left off and a GPU present, trains both again on the CPU for
   the time comparison (on a CPU-only machine step 1 already ran on the CPU, so this is
   skipped);
3. saves each model with ``.save(folder)``, reloads it on the CPU
   (``NeuralForecaster.load(folder, device="cpu")``, ``XGBoostForecaster.load(folder,
   device="cpu")``), forecasts 48 steps with the trained model and with the reloaded one,
   and prints the largest absolute and relative difference between the two forecasts;
4. scores every forecast against the M4 test part: sMAPE, MASE and OWA against Naive2
   (``forecasting.evaluation.evaluate`` with ``naive2_column``).

On a GPU the GPU-trained and CPU-reloaded forecasts differ by float rounding only (GPU and
CPU kernels sum in different orders: expect ~1e-5 relative for NHITS, and 0 or ~1e-6 for
XGBoost, whose CPU and GPU tree traversals agree up to float32 rounding); on a CPU-only
machine both are on the CPU and the difference should be exactly 0.

Run on a fresh GPU machine (about 10 minutes including the installation; the CUDA build of
torch comes from PyPI's default index; with no internet, add ``--no-index --find-links
<wheelhouse>`` to pip, and put the M4 files under ``$FORECASTING_DATA_DIR/m4_hourly/``)::

    python3 -m venv .venv && .venv/bin/pip install -q -e '.[deep]' && nvidia-smi -L && FORECASTING_DATA_DIR=/path/to/datasets timeout 600 .venv/bin/python -m forecasting.benchmarks.gpu_check --max-steps 500 --output gpu_check_out

Small CPU run (end-to-end proof, a minute): ``python -m forecasting.benchmarks.gpu_check --series 20
--max-steps 20 --n-estimators 50``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

H = 48
SEASON = 24


def _diff(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Largest absolute difference and largest relative one (``|a - b| / max(|a|, 1e-12)``)."""
    d = np.abs(a - b)
    return float(d.max()), float((d / np.maximum(np.abs(a), 1e-12)).max())


def _timed_fit(spec: dict[str, Any], train: pl.DataFrame) -> tuple[Any, float]:
    from forecasting.models import make_model

    model = make_model(spec, freq=1)
    t0 = time.perf_counter()
    model.fit(train)
    return model, time.perf_counter() - t0


def _forecast(model: Any, name: str) -> pl.DataFrame:
    fc = model.predict(H)
    return fc.select("unique_id", "ds", pl.col(model.alias).alias(name))


def device_info() -> dict[str, Any]:
    """What torch and xgboost see."""
    import torch
    import xgboost as xgb

    from forecasting.devices import resolve_device

    info: dict[str, Any] = {"torch": torch.__version__, "torch_cuda": torch.version.cuda,
                            "torch_cuda_available": torch.cuda.is_available(), "xgboost": xgb.__version__,
                            "xgboost_cuda_build": bool(xgb.build_info().get("USE_CUDA", False)),
                            "xgboost_device": resolve_device("auto")}
    info["nhits_device"] = "cuda" if info["torch_cuda_available"] else "cpu"
    info["gpu_name"] = torch.cuda.get_device_name(0) if info["torch_cuda_available"] else None
    return info


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the check, print the report; returns the figures (for tests)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=500, help="NHITS training steps (default 500)")
    parser.add_argument("--n-estimators", type=int, default=300, help="XGBoost trees (default 300)")
    parser.add_argument("--series", type=int, default=None, help="use only the first N series (default all 414)")
    parser.add_argument("--skip-cpu-train", action="store_true", help="do not also train on the CPU for timing")
    parser.add_argument("--mlp-units", type=int, default=None, help="NHITS block width (default 512)")
    parser.add_argument("--windows-batch-size", type=int, default=1024)
    parser.add_argument("--output", default=None, help="folder for the saved models and results.json "
                                                       "(default: a temporary folder, removed)")
    args = parser.parse_args(argv)

    from forecasting.datasets import load_m4_hourly
    from forecasting.evaluation import evaluate
    from forecasting.models import make_model
    from forecasting.models.neural import NeuralForecaster
    from forecasting.models.xgb import XGBoostForecaster

    info = device_info()
    gpu = info["torch_cuda_available"]
    print(f"torch {info['torch']} (CUDA {info['torch_cuda']}), GPU visible to torch: {gpu}"
          + (f" ({info['gpu_name']})" if gpu else "") + f"; xgboost {info['xgboost']} "
          f"(CUDA build: {info['xgboost_cuda_build']}, trains on: {info['xgboost_device']})")
    if not gpu:
        print("NO GPU: everything runs on the CPU (slower); the 'GPU' columns below are CPU runs and the "
              "trained-vs-reloaded difference should be exactly 0.")

    train, test = load_m4_hourly()
    if args.series is not None:
        ids = train["unique_id"].unique(maintain_order=True).head(args.series)
        train, test = (f.filter(pl.col("unique_id").is_in(ids.implode())) for f in (train, test))
    n_series = train["unique_id"].n_unique()
    print(f"M4 Hourly: {n_series} series, {train.height:,} training values, h={H}")

    nhits_params: dict[str, Any] = {"season_length": SEASON, "horizon": H, "max_steps": args.max_steps,
                                    "windows_batch_size": args.windows_batch_size, "level": [80, 95]}
    if args.mlp_units:
        nhits_params["mlp_units"] = args.mlp_units
    xgb_params: dict[str, Any] = {"season_length": SEASON, "n_estimators": args.n_estimators}
    devices = {"nhits": info["nhits_device"], "xgboost": info["xgboost_device"]}
    specs = {"nhits": lambda dev: {"name": "nhits", "params": {**nhits_params, "device": dev}},
             "xgboost": lambda dev: {"name": "xgboost", "params": {**xgb_params, "device": dev}}}
    loaders = {"nhits": NeuralForecaster.load, "xgboost": XGBoostForecaster.load}

    tmp = None
    if args.output:
        root = Path(args.output)
        root.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="gpu-check-")
        root = Path(tmp.name)

    fit_s: dict[str, dict[str, float | None]] = {}
    diffs: dict[str, tuple[float, float]] = {}
    frames = []
    for name in ("nhits", "xgboost"):
        dev = devices[name]
        model, secs = _timed_fit(specs[name](dev), train)
        fit_s[name] = {dev: secs}
        print(f"{name}: trained on {dev} in {secs:.1f} s", flush=True)
        folder = model.save(root / f"{name}_{dev.replace(':', '')}")
        reloaded = loaders[name](folder, device="cpu")
        a, b = _forecast(model, f"{name}@{dev}"), _forecast(reloaded, f"{name}@{dev}->cpu")
        both = a.join(b, on=["unique_id", "ds"], how="full", validate="1:1")
        if both.height != a.height or both.null_count().sum_horizontal().item():
            msg = f"{name}: the reloaded model forecasts other (unique_id, ds) rows"
            raise SystemExit(msg)
        diffs[name] = _diff(both[f"{name}@{dev}"].to_numpy(), both[f"{name}@{dev}->cpu"].to_numpy())
        frames += [a, b]
        if gpu or dev != "cpu":
            if args.skip_cpu_train:
                fit_s[name]["cpu"] = None
            else:
                cpu_model, cpu_secs = _timed_fit(specs[name]("cpu"), train)
                fit_s[name]["cpu"] = cpu_secs
                print(f"{name}: trained on cpu in {cpu_secs:.1f} s", flush=True)
                frames.append(_forecast(cpu_model, f"{name}@cpu-trained"))

    naive2 = make_model({"name": "naive2", "params": {"season_length": SEASON}}, freq=1).fit(train)
    frames.append(_forecast(naive2, "Naive2"))
    forecasts = frames[0]
    for f in frames[1:]:
        forecasts = forecasts.join(f, on=["unique_id", "ds"], how="inner", validate="1:1")
    if forecasts.height != test.height:
        msg = f"forecast rows {forecasts.height} != test rows {test.height}"
        raise SystemExit(msg)
    cols = [c for c in forecasts.columns if c not in ("unique_id", "ds", "Naive2")]
    scores = evaluate(forecasts, test, train, models=[*cols, "Naive2"], season_length=SEASON, naive2_column="Naive2")

    print("\n| model | trained on | fit s | fit s on the CPU | max abs diff, trained vs reloaded on CPU "
          "| max rel diff |")
    print("|---|---|---|---|---|---|")
    for name in ("nhits", "xgboost"):
        dev = devices[name]
        cpu_s = fit_s[name].get("cpu") if dev != "cpu" else fit_s[name][dev]
        cpu_txt = "skipped" if cpu_s is None else f"{cpu_s:.1f}"
        print(f"| {name} | {dev} | {fit_s[name][dev]:.1f} | {cpu_txt} | {diffs[name][0]:.3g} | {diffs[name][1]:.3g} |")
    print("\n| forecast | sMAPE | MASE | OWA |")
    print("|---|---|---|---|")
    for r in scores.iter_rows(named=True):
        print(f"| {r['model']} | {r['smape']:.3f} | {r['mase']:.3f} | {r['owa']:.3f} |")

    result = {"device_info": info, "n_series": n_series, "fit_s": fit_s,
              "max_abs_diff": {k: v[0] for k, v in diffs.items()},
              "max_rel_diff": {k: v[1] for k, v in diffs.items()},
              "scores": scores.to_dicts(), "settings": vars(args)}
    if args.output:
        (root / "results.json").write_text(json.dumps(result, indent=2))
        print(f"\nmodels and results.json under {root}")
    if tmp is not None:
        tmp.cleanup()
    return result


if __name__ == "__main__":
    main()
