"""Issue 17, item 3: Prophet as an optional baseline in the zoo and the harness.

The contract suite (tests/test_models_contract.py) covers ``prophet`` from the registry; here:
the missing-extra message, a linear trend extrapolated, seeded intervals, calendar steps, the
harness row.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import polars as pl
import pytest

from forecasting.errors import CapabilityError
from forecasting.models.registry import REGISTRY

HAS_PROPHET = importlib.util.find_spec("prophet") is not None
needs_prophet = pytest.mark.skipif(not HAS_PROPHET, reason="the optional extra 'prophet' is not installed")


def test_registry_entry_names_the_extra_when_prophet_is_missing() -> None:
    entry = REGISTRY["prophet"]
    assert entry.extra == "prophet" and entry.requires == ("prophet",)
    absent = dataclasses.replace(entry, requires=("prophet_not_installed_here",))
    with pytest.raises(CapabilityError) as err:
        absent.load()
    assert str(err.value) == ("model 'prophet' needs prophet_not_installed_here, from the optional extra 'prophet': "
                              "pip install 'forecasting[prophet]'")


@needs_prophet
def test_linear_trend_and_seeded_intervals() -> None:
    from forecasting import service

    n = 40
    df = pl.DataFrame({"unique_id": ["a"] * n, "ds": list(range(n)), "y": [5.0 + 2.0 * t for t in range(n)]})
    spec = {"name": "prophet", "params": {"season_length": 1}}
    first = service.forecast(df, model=spec, h=3, level=[80], n_jobs=1, non_negative=False).forecasts
    np.testing.assert_allclose(first["Prophet"].to_numpy(), [85.0, 87.0, 89.0], rtol=2e-3)
    assert (first["Prophet-lo-80"] <= first["Prophet"]).all() and (first["Prophet"] <= first["Prophet-hi-80"]).all()
    again = service.forecast(df, model=spec, h=3, level=[80], n_jobs=1, non_negative=False).forecasts
    assert again.equals(first)  # the posterior draws are seeded


@needs_prophet
def test_calendar_ds_steps_by_the_frequency() -> None:
    from forecasting import service

    ds = pl.date_range(pl.date(2018, 1, 1), pl.date(2022, 12, 1), "1mo", eager=True)
    season = [0.0, 1, 3, 6, 9, 10, 9, 6, 3, 1, 0, -1]
    y = [100.0 + 0.5 * i + 5 * season[i % 12] for i in range(len(ds))]
    result = service.forecast(pl.DataFrame({"unique_id": "m", "ds": ds, "y": y}), model="prophet", h=12, n_jobs=1)
    assert [str(d)[:10] for d in result.forecasts["ds"].to_list()[:2]] == ["2023-01-01", "2023-02-01"]
    fc = result.forecasts["Prophet"].to_numpy()
    truth = np.array([100.0 + 0.5 * (60 + k) + 5 * season[k] for k in range(12)])
    assert np.abs(fc - truth).mean() < 2.0  # yearly seasonality found from the dates (amplitude 55)
    assert int(np.argmax(fc)) == 5  # the June peak


@needs_prophet
def test_prophet_in_the_harness(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from forecasting.benchmarks.harness import run_benchmark

    rng = np.random.default_rng(1)
    frame = pl.concat([pl.DataFrame({"unique_id": f"s{i}", "ds": list(range(60)),
                                     "y": 50 + 10 * np.sin(2 * np.pi * np.arange(60) / 12) + rng.normal(0, 1, 60)})
                       for i in range(3)])
    path = tmp_path / "sine.csv"
    frame.write_csv(path)
    result = run_benchmark(None, ["prophet", "naive"], input=path, h=12, freq=1, season_length=12, n_jobs=1,
                           store=tmp_path / "store")
    row = result.metrics.filter(pl.col("model") == "prophet").to_dicts()[0]
    naive = result.metrics.filter(pl.col("model") == "naive")["mase"][0]
    # noise sd 1: the seasonal naive scale is about 1.13 and Prophet's error about the noise's, MASE ~0.86;
    # naive misses the whole sine (MASE ~6)
    assert row["error"] is None and row["mase"] < 1.0 and row["mase"] < naive / 4


@needs_prophet
def test_prophet_with_several_jobs_answers_instead_of_deadlocking_in_forked_workers() -> None:
    import subprocess
    import sys

    script = (
        "import numpy as np, polars as pl, forecasting as fc\n"
        "t = np.arange(60)\n"
        "df = pl.concat([pl.DataFrame({'unique_id': f's{i}', 'ds': t, 'y': (10 + np.sin(t / 3) + i).astype(float)})"
        " for i in range(8)])\n"
        "out = fc.forecast(df, model='prophet', h=2, n_jobs=2)\n"
        "print(out.forecasts.height)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "16"  # 8 series x h=2 (forked workers never answered)
