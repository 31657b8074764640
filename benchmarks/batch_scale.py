"""Batch forecasts at scale: a synthetic panel of up to millions of series through ``forecasting batch``.

Generates a synthetic Parquet panel (:func:`synthetic_panel`: daily series with a weekly
season, level and noise, written in chunks so memory stays flat however many series), then
runs :func:`forecasting.service.batch.batch_forecast` on it with a fast model
(``seasonal_naive`` by default) on local Ray with 1 and 2 workers, and reports series per
second, the scaling ratio and the driver's peak memory (its own RSS high-water mark, the
workers excluded).

Run::

    python -m forecasting.benchmarks.batch_scale generate --series 1000000 --out /tmp/panel-1m
    python -m forecasting.benchmarks.batch_scale run --data /tmp/panel-1m --workers 1 --workers 2

Each ``run`` is one process per measurement (a fresh driver, so its peak RSS is its own).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import polars as pl
import typer

app = typer.Typer(add_completion=False, help=__doc__)

#: series per written file (bounds the generator's memory)
CHUNK = 50_000


def synthetic_panel(n_series: int, out: str | Path, *, length: int = 28, seed: int = 0) -> Path:
    """Write ``n_series`` daily series of ``length`` days as Parquet files under ``out`` (one per 50,000 series).

    ``y = level * (1 + 0.3 * weekly pattern) + noise`` with a per-series level in [10, 1000]
    and weekly pattern, all from ``numpy.random.default_rng(seed)``; ids ``s0000000``...,
    ``ds`` from 2024-01-01. Memory: one chunk at a time.

    Returns
    -------
    Path
        The folder ``out``.
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    days = pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 1) + pl.duration(days=length - 1),
                             "1d", eager=True)
    for start in range(0, n_series, CHUNK):
        n = min(CHUNK, n_series - start)
        level = rng.uniform(10, 1000, size=(n, 1))
        weekly = rng.normal(size=(n, 7))[:, np.arange(length) % 7]
        y = level * (1 + 0.3 * np.tanh(weekly)) + rng.normal(scale=0.05, size=(n, length)) * level
        ids = np.char.add("s", np.char.zfill(np.arange(start, start + n).astype(str), 7))
        frame = pl.DataFrame({"unique_id": np.repeat(ids, length), "ds": np.tile(days.to_numpy(), n),
                              "y": y.reshape(-1)})
        frame.write_parquet(folder / f"chunk-{start // CHUNK:05d}.parquet")
    return folder


@app.command()
def generate(series: Annotated[int, typer.Option(help="Series to write.")] = 1_000_000,
             out: Annotated[Path, typer.Option(help="Folder to write.")] = Path("panel"),
             length: Annotated[int, typer.Option(help="Days per series.")] = 28) -> None:
    """Write the synthetic panel."""
    started = time.perf_counter()
    synthetic_panel(series, out, length=length)
    typer.echo(f"{series} series x {length} days in {out} ({time.perf_counter() - started:.1f} s)")


@app.command("one")
def one(data: Path, workers: int, model: str = "seasonal_naive", h: int = 7, partitions: int = 0,
        engine: str = "ray") -> None:
    """One measured run in this process (called by ``run``): prints a JSON line."""
    from forecasting.service.batch import batch_forecast

    with tempfile.TemporaryDirectory() as out:
        if engine == "ray":
            import ray

            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        started = time.perf_counter()
        result = batch_forecast(data, model=model, h=h, freq="1d", output=out, engine=engine,  # type: ignore[arg-type]
                                n_jobs=workers, n_partitions=partitions or None)
        wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    typer.echo(json.dumps({"workers": workers, "engine": engine, "series": result.series, "rows": result.rows,
                           "partitions": result.n_partitions, "seconds": round(wall, 2),
                           "series_per_second": round(result.series / wall, 1),
                           "task_seconds": round(result.task_seconds, 2), "driver_peak_rss_mb": round(peak_mb, 1)}))


@app.command()
def run(data: Annotated[Path, typer.Option(help="The panel folder (generate).")],
        workers: Annotated[list[int], typer.Option(help="Ray workers per measurement.")] = [1, 2],  # noqa: B006
        model: str = "seasonal_naive", h: int = 7, partitions: int = 0, engine: str = "ray") -> None:
    """Measure series per second and the driver's peak memory for each worker count (a fresh process each)."""
    rows = []
    for w in workers:
        cmd = [sys.executable, "-m", "forecasting.benchmarks.batch_scale", "one", str(data), str(w), "--model", model,
               "--h", str(h), "--partitions", str(partitions), "--engine", engine]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        typer.echo(json.dumps(rows[-1]))
    if len(rows) >= 2:
        typer.echo(f"scaling ratio ({rows[-1]['workers']} vs {rows[0]['workers']} workers): "
                   f"{rows[-1]['series_per_second'] / rows[0]['series_per_second']:.2f}")


if __name__ == "__main__":
    app()
