"""``forecasting hierarchy``: forecast every level of a hierarchical or grouped structure and reconcile.

Registered in :mod:`forecasting.cli`; the command is one service call
(:func:`forecasting.service.hierarchy.forecast_hierarchy`, or
:func:`~forecasting.service.hierarchy.backtest_hierarchy` with ``--backtest``) plus printing;
``--report out.html`` passes ``report=`` (the HTML report with the coherence check and the
per-level accuracy table).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from forecasting.errors import ForecastingError


def hierarchy(
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet file: the bottom series (unique_id, "
                                        "ds, y) and the structure columns.")],
    h: Annotated[int, typer.Option("--h", help="Steps to forecast (or to hold out, with --backtest).")],
    nested: Annotated[Optional[str], typer.Option("--hierarchy", help="Nested columns, top first: state/region.")]
    = None,
    group: Annotated[Optional[str], typer.Option("--group", help="Crossed columns: purpose or state,gender.")] = None,
    summing_matrix: Annotated[Optional[Path], typer.Option("--summing-matrix", help="Instead of columns: a CSV or "
                                                           "Parquet summing matrix (unique_id, then one 0/1 column per "
                                                           "bottom series).")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Registry name or JSON spec for the base "
                                       "forecasts of every series.")] = "auto",
    methods: Annotated[str, typer.Option("--methods", help="Comma-separated: bottom_up, top_down, middle_out, ols, "
                                         "wls_struct, wls_var, mint_shrink.")] = "bottom_up,ols,wls_struct",
    middle_level: Annotated[Optional[str], typer.Option("--middle-level", help="middle_out's level.")] = None,
    level: Annotated[Optional[list[float]], typer.Option("--level", "-l", help="Interval level, percent (repeat).")]
    = None,
    freq: Annotated[Optional[str], typer.Option("--freq", help="Frequency; inferred when omitted.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Where to write the forecasts (or the "
                                                   "per-level table with --backtest): .csv or .parquet.")] = None,
    backtest: Annotated[bool, typer.Option("--backtest", help="Hold out the last h steps and print MASE and RMSE "
                                           "of base and reconciled forecasts at each level.")] = False,
    n_jobs: Annotated[int, typer.Option("--n-jobs", help="Worker processes (-1: all CPUs).")] = -1,
    report: Annotated[Optional[Path], typer.Option("--report", help="Also write the HTML report there: structure, "
                                                   "coherence check, MASE and RMSE per level and method on the "
                                                   "last h steps held out, the top series' forecasts.")] = None,
) -> None:
    """Forecast every aggregate of a structure with one model and reconcile (hierarchicalforecast).

    Example: forecasting hierarchy -i tourism.csv --hierarchy state/region --group purpose --h 8 --model auto_ets
    --methods bottom_up,mint_shrink -o reconciled.csv --report reconciled.html
    """
    from forecasting.cli_output import _fail, console, err_console
    from forecasting.service import read_table, write_table
    from forecasting.service.hierarchy import backtest_hierarchy, forecast_hierarchy

    names = [m.strip() for m in methods.split(",") if m.strip()]
    try:
        data = read_table(input)
        S = read_table(summing_matrix, field="--summing-matrix") if summing_matrix is not None else None
        if backtest:
            bt = backtest_hierarchy(data, hierarchy=nested, group=group, S=S, model=model, h=h, methods=names,
                                    middle_level=middle_level, freq=freq, n_jobs=n_jobs, report=report,
                                    level=level or ())
            table = bt.table
            notes = bt.result.notes
            coherence = bt.result.coherence
        else:
            result = forecast_hierarchy(data, hierarchy=nested, group=group, S=S, model=model, h=h, methods=names,
                                        middle_level=middle_level, level=level or (), freq=freq, n_jobs=n_jobs,
                                        report=report)
            table = result.forecasts
            notes = result.notes
            coherence = result.coherence
        if output is not None:
            write_table(table, output)
    except ForecastingError as exc:
        raise _fail(exc) from None
    for note in notes:
        err_console.print(f"note: {note}", highlight=False, markup=False)
    if backtest:
        import polars as pl

        with pl.Config(tbl_rows=-1):
            console.print(table, highlight=False)
    console.print(json.dumps({"coherence": coherence, "rows": table.height,
                              "output": None if output is None else str(output),
                              "report": None if report is None else str(report)}), highlight=False, soft_wrap=True)
