"""``forecasting batch``: forecast a Parquet data set of any size by partition (:mod:`forecasting.service.batch`).

Registered in :mod:`forecasting.cli`; the command is one service call plus printing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from forecasting.errors import ForecastingError, InvalidParameterError


def batch(
    source: Annotated[str, typer.Argument(help="Parquet file, folder of Parquet files or glob (unique_id, ds, y).")],
    h: Annotated[int, typer.Option("--h", help="Steps to forecast per series.")],
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Registry name or JSON spec (fitted on "
                                                 "each partition), or a saved model / ONNX export folder "
                                                 "(default auto).")] = None,
    registered: Annotated[Optional[str], typer.Option("--registered", help="A registered version name@version (or "
                                                      "name@alias) instead of --model.")] = None,
    tenant: Annotated[str, typer.Option(help="Tenant of --registered.")] = "default",
    freq: Annotated[Optional[str], typer.Option("--freq", help="Frequency; inferred per partition when "
                                                "omitted.")] = None,
    level: Annotated[Optional[list[float]], typer.Option("--level", help="Interval level, percent (repeat).")] = None,
    fill_missing: Annotated[Optional[str], typer.Option("--fill-missing", help="Fill null y values: zero, forward "
                                                        "or interpolate.")] = None,
    fill_gaps: Annotated[bool, typer.Option("--fill-gaps", help="Insert missing timestamps (then filled by "
                                            "--fill-missing).")] = False,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="The job's folder (default: in the "
                                                   "artifact store, named by the job, so a rerun resumes).")] = None,
    partitions: Annotated[Optional[int], typer.Option("--partitions", help="Partitions (hash of unique_id); "
                                                      "default one per --rows-per-partition rows.")] = None,
    rows_per_partition: Annotated[int, typer.Option("--rows-per-partition")] = 2_000_000,
    engine: Annotated[str, typer.Option("--engine", help="local (processes) or ray.")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Ray cluster address (default: start "
                                                       "a local Ray with --n-jobs CPUs).")] = None,
    n_jobs: Annotated[int, typer.Option("--n-jobs", help="Local worker processes (local engine) or local Ray "
                                        "CPUs; -1: every CPU.")] = 1,
) -> None:
    """Forecast every series of a Parquet data set, partition by partition, resumably.

    Finished partitions are kept: running the same command again after an interruption
    computes only the rest. The result is ``forecasts.parquet`` in the job's folder.

    Example: forecasting batch panel/ --h 7 --model seasonal_naive --engine ray --n-jobs 2
    """
    from forecasting.cli_output import _fail, console, err_console
    from forecasting.service.batch import batch_forecast, registered_source

    def progress(fraction: float, message: str) -> None:
        err_console.print(f"[{fraction:6.1%}] {message}", highlight=False, markup=False)

    try:
        if registered is not None and model is not None:
            msg = "give --model or --registered, not both: --registered forecasts with the version's own model"
            raise InvalidParameterError(msg, field="registered")
        model = model or "auto"
        spec: object = model
        model_path = Path(model) if Path(model).is_dir() else None  # a saved model / ONNX export folder
        if registered is not None:
            from forecasting.api.settings import Settings

            database_url, artifacts_dir = Settings.from_env().registry_locations
            spec, model_path, trained_freq = registered_source(registered, tenant=tenant, database_url=database_url,
                                                               artifacts_dir=artifacts_dir)
            freq = freq or (str(trained_freq) if trained_freq is not None else None)
        result = batch_forecast(source, model=spec, model_path=model_path, h=h, freq=freq, level=level or (),
                                fill_missing=fill_missing, fill_gaps=fill_gaps,
                                output=output, n_partitions=partitions, rows_per_partition=rows_per_partition,
                                engine=engine, n_jobs=n_jobs, ray_address=ray_address,  # type: ignore[arg-type]
                                progress=progress)
    except ForecastingError as exc:
        raise _fail(exc) from None
    for note in result.notes:
        err_console.print(f"note: {note}", highlight=False, markup=False)
    console.print(json.dumps({"output": str(result.output), "series": result.series, "rows": result.rows,
                              "partitions": result.n_partitions, "computed": len(result.computed),
                              "skipped": len(result.skipped), "seconds": round(result.seconds, 2),
                              "series_per_second": round(result.series_per_second, 1)}), highlight=False,
                  soft_wrap=True)

