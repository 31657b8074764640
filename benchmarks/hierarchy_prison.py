"""Base versus reconciled forecasts at each level of the Australian prison population (fpp3 ch. 11.7).

The grouped structure of fpp3: Total; state (8); gender (2); legal status (2); their crossings
(state x gender 16, state x legal 16, gender x legal 4, state x gender x legal 32); the 64 bottom
series (indigenous status inside the bottom level): 145 series, quarterly 2005 Q1 - 2016 Q4.
The last 8 quarters are held out; each model is fitted on all 145 series, reconciled by every
method that applies (top-down and middle-out need a nested hierarchy, so not here) and scored at
each level (MASE with the seasonal lag 4, RMSE; means over the level's series) by
:func:`forecasting.benchmarks.harness.run_hierarchy_benchmark`.

Measured (2026-12-01, 2 cores shared with 6 other engineers' work, so the times are inflated),
``auto_ets``, level ``all`` (the mean over the 145 series): base MASE 2.140 / RMSE 184.2,
bottom_up 2.139 / 191.8, ols 2.219 / 180.5, wls_struct 2.047 / 182.9, wls_var 2.119 / 184.9,
mint_shrink 2.073 / 176.9; at the top, MASE base 1.642, bottom_up 1.879, mint_shrink 1.446.
The whole table is in the module's run output (``python -m forecasting.benchmarks.hierarchy_prison``).

Needs ``$FORECASTING_DATA_DIR/prison/prison_population.csv`` (see its ``SOURCE.md``)::

    python -m forecasting.benchmarks.hierarchy_prison [--models auto_ets naive] [--h 8]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import polars as pl

#: the grouping columns of fpp3's prison example (crossed)
PRISON_GROUP = ("state", "gender", "legal")


def prison_path(data_dir: str | Path | None = None) -> Path:
    """``<data_dir>/prison/prison_population.csv`` (default ``$FORECASTING_DATA_DIR``)."""
    root = Path(data_dir) if data_dir is not None else Path(os.environ.get("FORECASTING_DATA_DIR", "datasets"))
    return root / "prison" / "prison_population.csv"


def load_prison(data_dir: str | Path | None = None) -> pl.DataFrame:
    """The 64 bottom series: ``unique_id`` (``state-gender-legal-indigenous``), ``ds`` (date), ``y``, and
    the columns ``state, gender, legal, indigenous``; 3,072 rows.

    Raises
    ------
    FileNotFoundError
        The CSV is not in the data folder.
    """
    frame = pl.read_csv(prison_path(data_dir), try_parse_dates=True)
    return frame.select(
        pl.concat_str(["state", "gender", "legal", "indigenous"], separator="-").alias("unique_id"),
        pl.col("date").alias("ds"), pl.col("count").cast(pl.Float64).alias("y"),
        "state", "gender", "legal", "indigenous").sort("unique_id", "ds")


def main(argv: list[str] | None = None) -> int:
    """Print the per-level table (markdown) of each model."""
    from forecasting.benchmarks.harness import run_hierarchy_benchmark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["auto_ets"])
    parser.add_argument("--h", type=int, default=8)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n-jobs", type=int, default=-1)
    args = parser.parse_args(argv)
    table = run_hierarchy_benchmark(load_prison(args.data_dir), models=args.models, h=args.h,
                                    group=list(PRISON_GROUP), n_jobs=args.n_jobs)
    with pl.Config(tbl_rows=-1, tbl_formatting="MARKDOWN", tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True, float_precision=3):
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
