"""The benchmark harness: windows, the task store (resume, cache), user files, the ensemble, Ray = local."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from forecasting.benchmarks import harness
from forecasting.benchmarks.harness import TIMING_COLUMNS, run_benchmark
from forecasting.cli import app
from forecasting.datasets import load_air_passengers
from forecasting.models import make_model

runner = CliRunner()


def _months_back(last: dt.datetime, k: int) -> dt.datetime:
    y, m = divmod(last.year * 12 + last.month - 1 - k, 12)
    return dt.datetime(y, m + 1, 1)


def test_windows_and_step_size_give_the_right_cutoffs() -> None:
    result = run_benchmark("air_passengers", ["naive"], windows=3, step_size=6)
    cutoffs = result.forecasts.group_by("window").agg(pl.col("cutoff").first(), pl.len()).sort("window")
    # window 0 ends at the series' end (1960-12): origins 1959-12, 1959-06, 1958-12
    assert cutoffs["cutoff"].to_list() == [_months_back(dt.datetime(1960, 12, 1), k) for k in (12, 18, 24)]
    assert cutoffs["len"].to_list() == [12, 12, 12]
    w2 = result.forecasts.filter(pl.col("window") == 2).sort("ds")
    y = load_air_passengers()["y"].to_numpy()
    np.testing.assert_array_equal(w2["naive"].to_numpy(), np.full(12, y[-25]))  # last value before 1959-01
    np.testing.assert_array_equal(w2["y"].to_numpy(), y[-24:-12])
    assert result.metrics["windows"].to_list() == [3]
    assert result.window_metrics is not None and result.window_metrics.height == 3


def test_interrupted_run_resumes_and_reruns_are_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    calls: list[tuple[str, int]] = []
    real = harness.run_task

    def counting(task, data, *, fail=False):  # noqa: ANN001, ANN202
        calls.append((task.model, task.window))
        if fail and (task.model, task.window) == ("seasonal_naive", 1):
            raise KeyboardInterrupt  # the run is stopped half-way
        return real(task, data)

    args = dict(windows=2, store=store)
    monkeypatch.setattr(harness, "run_task", lambda t, d, n_jobs=1: counting(t, d, fail=True))
    with pytest.raises(KeyboardInterrupt):
        run_benchmark("air_passengers", ["naive", "seasonal_naive"], **args)
    assert len(list(store.glob("*.parquet"))) == 5  # 2 Naive2 references + 3 model tasks finished
    assert not list(store.glob(".*"))  # no temporary files left

    calls.clear()
    monkeypatch.setattr(harness, "run_task", lambda t, d, n_jobs=1: counting(t, d))
    resumed = run_benchmark("air_passengers", ["naive", "seasonal_naive"], **args)
    assert calls == [("seasonal_naive", 1)]  # only the missing task ran
    assert (resumed.cached, resumed.computed) == (3, 1)

    calls.clear()
    again = run_benchmark("air_passengers", ["naive", "seasonal_naive"], **args)
    assert calls == [] and (again.cached, again.computed) == (4, 0)
    scores = [c for c in again.metrics.columns if c not in TIMING_COLUMNS]
    assert again.metrics.select(scores).equals(resumed.metrics.select(scores))
    # the scores come from the stored forecasts: the same as a fresh run without a store
    fresh = run_benchmark("air_passengers", ["naive", "seasonal_naive"], windows=2)
    from polars.testing import assert_frame_equal
    assert_frame_equal(fresh.metrics.select(scores), again.metrics.select(scores), check_exact=True)


def test_cli_user_file_cache_and_self_contained_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    n = 120
    t = np.arange(n)
    frames = [pl.DataFrame({"unique_id": uid, "ds": [dt.date(2024, 1, 1) + dt.timedelta(days=int(i)) for i in t],
                            "y": 50 + 10 * np.sin(2 * np.pi * t / 7) + rng.normal(0, 1, n) + k * 20})
              for k, uid in enumerate(["a", "b"])]
    src = tmp_path / "sales.csv"
    pl.concat(frames).write_csv(src)
    out = tmp_path / "res"
    monkeypatch.chdir(tmp_path)
    args = ["bench", "--input", str(src), "--freq", "1d", "--h", "7", "--windows", "2", "--models",
            "naive,seasonal_naive", "--level", "80", "--n-jobs", "1", "--output", str(out)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "cached 0 tasks, ran 4" in first.stdout
    metrics = pl.read_csv(out / "metrics.csv")
    assert metrics["model"].to_list() == ["naive", "seasonal_naive"]
    assert set(metrics["dataset"]) == {"sales"}
    for col in ("smape", "mase", "owa", "fit_predict_seconds", "fit_seconds", "predict_seconds", "peak_memory_mb",
                "coverage_80", "msis_80"):
        assert metrics[col].is_finite().all(), col
    assert metrics["windows"].to_list() == [2, 2]
    # season 7 from the daily frequency: seasonal naive is far better on a weekly sine
    assert metrics["mase"][1] < metrics["mase"][0]
    assert (out / "leaderboard.md").read_text().startswith("| model")
    page = (out / "leaderboard.html").read_text()
    assert page.count("data:image/png;base64,") == 3
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "http://" not in page and "https://" not in page

    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "cached 4 tasks, ran 0" in second.stdout
    assert pl.read_csv(out / "metrics.csv").drop(TIMING_COLUMNS).equals(metrics.drop(TIMING_COLUMNS))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res", "sales.csv"]


# --------------------------------------------------------------------------- the ensemble
MEMBERS = ["naive", "seasonal_naive", "auto_theta"]


def test_ensemble_median_is_the_median_of_its_members() -> None:
    air = load_air_passengers()
    ens = make_model({"name": "ensemble", "params": {"members": MEMBERS}}, freq="1mo").fit(air)
    out = ens.predict(12, level=[80])
    singles = [make_model(m, freq="1mo").fit(air).predict(12, level=[80]) for m in MEMBERS]
    aliases = [make_model(m, freq="1mo").alias for m in MEMBERS]
    for suffix in ("", "-lo-80", "-hi-80"):
        by_hand = np.median(np.column_stack([s[a + suffix].to_numpy() for s, a in zip(singles, aliases)]), axis=1)
        np.testing.assert_allclose(out["Ensemble" + suffix].to_numpy(), by_hand, rtol=1e-12)
    assert ens.weights_ is None


def test_ensemble_weights_are_inverse_validation_smape() -> None:
    air = load_air_passengers()
    spec = {"name": "ensemble", "params": {"members": MEMBERS, "method": "weighted", "validation_h": 12}}
    ens = make_model(spec, freq="1mo").fit(air)
    y = air["y"].to_numpy()
    errors = []
    for m in MEMBERS:
        model = make_model(m, freq="1mo")
        f = model.fit(air.head(len(y) - 12)).predict(12)[model.alias].to_numpy()
        errors.append(np.mean(200 * np.abs(y[-12:] - f) / (np.abs(y[-12:]) + np.abs(f))))
    weights = (1 / np.array(errors)) / (1 / np.array(errors)).sum()
    np.testing.assert_allclose(ens.validation_errors_, errors, rtol=1e-10)
    np.testing.assert_allclose(ens.weights_, weights, rtol=1e-10)
    singles = [make_model(m, freq="1mo") for m in MEMBERS]
    stack = np.column_stack([s.fit(air).predict(6)[s.alias].to_numpy() for s in singles])
    np.testing.assert_allclose(ens.predict(6)["Ensemble"].to_numpy(), stack @ weights, rtol=1e-10)


def test_ensemble_is_evaluated_like_any_other_model() -> None:
    spec = '{"name": "ensemble", "params": {"members": ["naive", "seasonal_naive", "auto_theta"]}}'
    result = run_benchmark("air_passengers", ["naive", "seasonal_naive", "auto_theta", spec])
    assert result.metrics["model"].to_list() == ["naive", "seasonal_naive", "auto_theta", "ensemble"]
    fc = result.forecasts
    np.testing.assert_allclose(fc["ensemble"].to_numpy(),
                               np.median(fc.select("naive", "seasonal_naive", "auto_theta").to_numpy(), axis=1))


# --------------------------------------------------------------------------- Ray
def test_ray_engine_gives_the_local_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    monkeypatch.chdir(tmp_path)
    models = ["naive", "seasonal_naive", "auto_theta"]
    local = run_benchmark("air_passengers", models, windows=2, level=[80], n_jobs=1)
    remote = run_benchmark("air_passengers", models, windows=2, level=[80], n_jobs=2, engine="ray",
                           store=tmp_path / "store")
    assert remote.computed == 6
    assert local.window_metrics is not None and remote.window_metrics is not None
    from polars.testing import assert_frame_equal

    # forecasts and scores are identical (evaluate sums in a fixed order)
    assert remote.forecasts.equals(local.forecasts)
    assert_frame_equal(remote.window_metrics.drop(TIMING_COLUMNS), local.window_metrics.drop(TIMING_COLUMNS),
                       check_exact=True)
    assert_frame_equal(remote.metrics.drop(TIMING_COLUMNS), local.metrics.drop(TIMING_COLUMNS), check_exact=True)
    import ray

    assert not ray.is_initialized()  # shut down after the run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # nothing else written in the working directory


def test_leaderboard_does_not_import_the_harness() -> None:
    """Issue 12: no import circle between the harness and the leaderboard (the leaderboard takes frames)."""
    import subprocess
    import sys

    code = ("import sys; import forecasting.benchmarks.leaderboard; "
            "assert 'forecasting.benchmarks.harness' not in sys.modules, 'leaderboard imported the harness'")
    subprocess.run([sys.executable, "-c", code], check=True)
