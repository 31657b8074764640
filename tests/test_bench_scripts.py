"""Smoke tests of two benchmark scripts: ETTh1 long horizon (quick mode) and the GPU check.

Tiny networks, a couple of training steps: these check the plumbing (windows, scaling,
save/reload, scoring), not the figures the scripts exist to measure.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("neuralforecast")


def test_etth1_quick_mode(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from forecasting.benchmarks import etth1_long_horizon as bench

    rows = bench.main(["--quick", "--device", "cpu", "--output", str(tmp_path)])
    assert len(rows) == 1
    r = rows[0]
    assert r["h"] == 96 and r["windows"] == 7 * (2880 - 96 + 1)
    assert math.isfinite(r["mse"]) and r["mse"] > 0 and math.isfinite(r["mae"]) and r["mae"] > 0
    assert r["parity"] < 1e-4  # batched core path == the adapter's predict on the first test window
    assert (tmp_path / "results.json").is_file() and (tmp_path / "results.csv").is_file()
    assert "| 96 |" in capsys.readouterr().out


def test_gpu_check_small(data_dir: Path) -> None:
    import torch

    from forecasting.benchmarks import gpu_check

    out = gpu_check.main(["--series", "3", "--max-steps", "2", "--n-estimators", "5", "--mlp-units", "16",
                          "--windows-batch-size", "32", "--skip-cpu-train"])
    assert out["n_series"] == 3
    for model in ("nhits", "xgboost"):
        assert math.isfinite(out["max_abs_diff"][model])
        if not torch.cuda.is_available():
            assert out["max_abs_diff"][model] == 0.0
    scores = {s["model"]: s for s in out["scores"]}
    assert scores["Naive2"]["owa"] == pytest.approx(1.0)
    assert all(math.isfinite(s["smape"]) and math.isfinite(s["owa"]) for s in scores.values())
