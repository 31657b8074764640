"""Issue 17, item 4: batch forecasts of a Parquet panel by partition, on local processes and on Ray, resumable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from forecasting.benchmarks.batch_scale import synthetic_panel
from forecasting.cli import app
from forecasting.errors import InvalidInputError, InvalidParameterError
from forecasting.service.batch import batch_forecast

N_SERIES = 20_000
LENGTH = 14  # two weeks: seasonal naive (season 7) needs one


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthetic_panel(N_SERIES, tmp_path_factory.mktemp("panel") / "panel", length=LENGTH)


@pytest.fixture(scope="module")
def ray_session() -> Any:
    """One local Ray for the module (it takes seconds to start)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _expected(panel: Path) -> pl.DataFrame:
    """Seasonal naive by hand: step j repeats the value 7 days before the corresponding last-week day."""
    data = pl.read_parquet(panel).sort("unique_id", "ds")
    last_week = data.group_by("unique_id", maintain_order=True).tail(7)
    return last_week.with_columns((pl.col("ds") + pl.duration(days=7)).alias("ds")).rename(
        {"y": "SeasonalNaive"}).select("unique_id", "ds", "SeasonalNaive")


def test_local_processes_and_ray_give_identical_forecasts(panel: Path, ray_session: Any, tmp_path: Path) -> None:
    local = batch_forecast(panel, model="seasonal_naive", h=7, freq="1d", output=tmp_path / "local",
                           n_partitions=4, engine="local", n_jobs=2)
    on_ray = batch_forecast(panel, model="seasonal_naive", h=7, freq="1d", output=tmp_path / "ray",
                            n_partitions=4, engine="ray")
    assert local.series == on_ray.series == N_SERIES and local.rows == on_ray.rows == 7 * N_SERIES
    assert local.computed == on_ray.computed == [0, 1, 2, 3] and local.skipped == on_ray.skipped == []
    a = pl.read_parquet(local.output).sort("unique_id", "ds")
    b = pl.read_parquet(on_ray.output).sort("unique_id", "ds")
    assert a.equals(b)
    assert a.equals(_expected(panel))
    # every series in exactly one partition; the staged input is removed once the result is collected
    parts = [pl.read_parquet(p)["unique_id"].unique() for p in sorted((tmp_path / "ray" / "parts").glob("*.parquet"))]
    assert sum(len(p) for p in parts) == N_SERIES
    assert not (tmp_path / "ray" / "input").exists()
    assert "4 computed by engine 'ray'" in on_ray.notes[-1]


class Interrupted(Exception):
    pass


def test_an_interrupted_run_resumes_without_recomputing_finished_partitions(panel: Path, tmp_path: Path) -> None:
    out = tmp_path / "job"
    seen: list[str] = []

    def stop_after_two(fraction: float, message: str) -> None:
        seen.append(message)
        if len(seen) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        batch_forecast(panel, model="seasonal_naive", h=7, freq="1d", output=out, n_partitions=5,
                       progress=stop_after_two)
    finished = sorted(int(p.stem.split("-")[1]) for p in (out / "parts").glob("part-*.json"))
    assert finished == [0, 1]
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "parts").glob("part-*")}
    assert not (out / "forecasts.parquet").exists()

    resumed = batch_forecast(panel, model="seasonal_naive", h=7, freq="1d", output=out, n_partitions=5)
    assert resumed.skipped == [0, 1] and resumed.computed == [2, 3, 4]
    assert {n: (out / "parts" / n).stat().st_mtime_ns for n in stamps} == stamps  # finished parts untouched
    assert resumed.series == N_SERIES
    assert resumed.computed_series == N_SERIES - sum(
        json.loads((out / "parts" / f"part-{k:05d}.json").read_text())["series"] for k in (0, 1))
    assert pl.read_parquet(resumed.output).sort("unique_id", "ds").equals(_expected(panel))

    again = batch_forecast(panel, model="seasonal_naive", h=7, freq="1d", output=out, n_partitions=5)
    assert again.computed == [] and again.skipped == [0, 1, 2, 3, 4] and again.series == N_SERIES


def test_another_job_in_the_same_folder_is_refused(panel: Path, tmp_path: Path) -> None:
    small = tmp_path / "small.parquet"
    pl.read_parquet(panel).filter(pl.col("unique_id") < "s0000050").write_parquet(small)
    batch_forecast(small, model="naive", h=3, output=tmp_path / "job", n_partitions=2)
    with pytest.raises(InvalidParameterError, match=r"holds a different batch job \(differs in: h, model\)"):
        batch_forecast(small, model="seasonal_naive", h=7, output=tmp_path / "job", n_partitions=2)


def test_bad_inputs_are_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.parquet"
    pl.DataFrame({"unique_id": ["a"], "ds": [1], "value": [1.0]}).write_parquet(bad)
    with pytest.raises(InvalidInputError, match=r"column\(s\) \['y'\] missing; found \['unique_id', 'ds', 'value'\]"):
        batch_forecast(bad, model="naive", h=2, output=tmp_path / "o")
    with pytest.raises(InvalidInputError, match="no Parquet file found"):
        batch_forecast(tmp_path / "nothing-*.parquet", model="naive", h=2, output=tmp_path / "o")
    with pytest.raises(InvalidParameterError, match="engine must be 'local' or 'ray', got 'spark'"):
        batch_forecast(bad, model="naive", h=2, engine="spark", output=tmp_path / "o")  # type: ignore[arg-type]


def test_default_output_is_in_the_artifact_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "d.parquet"
    pl.DataFrame({"unique_id": ["a"] * 4 + ["b"] * 4, "ds": list(range(4)) * 2,
                  "y": [1.0, 2, 3, 4, 10, 20, 30, 40]}).write_parquet(data)
    monkeypatch.setenv("FORECASTING_ARTIFACTS_DIR", str(tmp_path / "store"))
    first = batch_forecast(data, model="naive", h=2, n_partitions=2)
    assert first.folder.parent == tmp_path / "store" / "batch" and len(first.folder.name) == 16
    again = batch_forecast(data, model="naive", h=2, n_partitions=2)  # the same job: same folder, nothing recomputed
    assert again.folder == first.folder and again.computed == []
    out = pl.read_parquet(again.output).sort("unique_id", "ds")
    assert out["Naive"].to_list() == [4.0, 4.0, 40.0, 40.0] and out["ds"].to_list() == [4, 5, 4, 5]


def test_cli_batch(panel: Path, tmp_path: Path) -> None:
    small = tmp_path / "small.parquet"
    pl.read_parquet(panel).filter(pl.col("unique_id") < "s0000100").write_parquet(small)
    run = CliRunner().invoke(app, ["batch", str(small), "--h", "7", "--model", "seasonal_naive", "--freq", "1d",
                                   "--partitions", "2", "--output", str(tmp_path / "job")])
    assert run.exit_code == 0, run.output
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["series"] == 100 and summary["rows"] == 700 and summary["computed"] + summary["skipped"] == 2
    got = pl.read_parquet(summary["output"]).sort("unique_id", "ds")
    assert np.allclose(got["SeasonalNaive"].to_numpy(), _expected(small)["SeasonalNaive"].to_numpy())


def test_readme_batch_example(tmp_path: Path) -> None:
    """The README's batch block runs as written (in a scratch folder); a rerun computes nothing."""
    import re
    import shlex
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```bash\n(.*?)```", readme, flags=re.S) if "forecasting batch" in b]
    bindir = Path(sys.executable).parent
    lines = block.strip().splitlines()
    summaries = []
    for line in [*lines, lines[-1]]:  # then the batch command again
        args = shlex.split(line)
        args[0] = str(bindir / args[0])
        run = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        if args[1] == "batch":
            summaries.append(json.loads(run.stdout.strip().splitlines()[-1]))
    first, summary = summaries
    assert first["series"] == summary["series"] == 2000 and first["rows"] == 14000
    assert first["output"] == "batch-job/forecasts.parquet" and first["computed"] == 4
    assert summary["computed"] == 0 and summary["skipped"] == 4  # the rerun: every partition kept
    got = pl.read_parquet(tmp_path / summary["output"]).sort("unique_id", "ds")
    assert got.equals(_expected(tmp_path / "panel"))


def test_a_saved_model_forecasts_every_partition_without_retraining(panel: Path, tmp_path: Path) -> None:
    from forecasting.loading import load
    from forecasting.service import fit_and_save, forecast_fitted

    small = tmp_path / "small.parquet"
    data = pl.read_parquet(panel).filter(pl.col("unique_id") < "s0000060")
    data.write_parquet(small)
    _, folder, _, _ = fit_and_save(data, tmp_path / "model", model={"name": "xgboost", "params": {"n_estimators": 5}},
                                   freq="1d", n_jobs=1)
    result = batch_forecast(small, model_path=folder, h=3, freq="1d", output=tmp_path / "job", n_partitions=3)
    got = pl.read_parquet(result.output).sort("unique_id", "ds")
    direct = forecast_fitted(load(folder), data, h=3, freq="1d").forecasts.sort("unique_id", "ds")
    assert result.series == 60 and got.equals(direct)
