"""Warm-start retrains against full retrains of XGBoost/LightGBM on M4 Hourly: hold-out MASE and seconds.

The retraining policy's ``warm_start`` (:class:`forecasting.service.monitoring.RetrainPolicy`) continues the
champion's boosters on all the data (:meth:`forecasting.models.trees.TreeForecaster.warm_start_from`: XGBoost
``xgb_model=``, LightGBM ``init_model=``) instead of training from scratch. This script measures what that
costs and gains, on the first ``--series`` series of M4 Hourly:

1. the **champion** is fitted on each series' training part without its last ``--new`` points (the data it
   was registered on);
2. the ``--new`` points arrive; a challenger is trained on the whole training part, three ways:
   **full** (from scratch, with its conformal calibration, as a retrain does), **full, no calibration**
   (``conformal_windows=0``: the boosting alone) and **warm** (``--rounds`` rounds continued from the
   champion, which keeps its conformal scores);
3. each model forecasts M4's 48-step test part; MASE (seasonal naive scale at lag 24) and sMAPE as M4 defines
   them (:func:`forecasting.evaluation.evaluate`); the champion is scored too (no retrain: it forecasts from
   the whole training part without refitting).

Seconds are the wall time of each fit on this machine (the ``--threads`` given to the library).

Run::

    python -m forecasting.benchmarks.warm_start --series 40 --family xgboost
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import polars as pl
import typer

app = typer.Typer(add_completion=False, help=__doc__)

SEASON = 24
HORIZON = 48


def _fit(spec: dict[str, Any], frame: pl.DataFrame, *, threads: int, warm_from: Any = None,
         rounds: int = 0) -> tuple[Any, float]:
    from forecasting.data import validate_panel
    from forecasting.models.registry import make_model, parse_spec
    from forecasting.service import resolve

    panel = validate_panel(frame, freq=1)
    effective, _ = resolve(parse_spec(spec), panel)
    model = make_model(effective, freq=1, n_jobs=threads)
    if warm_from is not None:
        model.warm_start_from(warm_from, rounds)  # type: ignore[attr-defined]
    start = time.perf_counter()
    model.fit(panel)
    return model, time.perf_counter() - start


def _scores(model: Any, train: pl.DataFrame, test: pl.DataFrame) -> dict[str, float]:
    from forecasting.evaluation import evaluate

    fc = model.predict(HORIZON, history=train).with_columns(pl.col("unique_id").cast(pl.String))
    alias = next(c for c in fc.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c)
    row = evaluate(fc.select("unique_id", "ds", alias), test, train, models=[alias],
                   season_length=SEASON).row(0, named=True)
    return {"mase": round(float(row["mase"]), 4), "smape": round(float(row["smape"]), 4)}


def run(n_series: int, *, family: str = "xgboost", new: int = 168, n_estimators: int = 300,
        rounds: int | None = None, threads: int = 1, data_dir: str | None = None) -> dict[str, Any]:
    """Champion, full and warm retrains on the first ``n_series`` of M4 Hourly (see the module docstring).

    Parameters
    ----------
    n_series : int
        First N series (file order).
    family : {"xgboost", "lightgbm"}
    new : int
        Points per series that arrive after the champion was fitted (168: a week).
    n_estimators : int
        Boosting rounds of the champion and of a full retrain.
    rounds : int, optional
        Rounds a warm start adds (default: a quarter of ``n_estimators``, as the retraining policy).
    threads : int
        The library's threads per fit.
    data_dir : str, optional
        Folder holding the M4 files (default: ``FORECASTING_DATA_DIR`` or a download).

    Returns
    -------
    dict
        Per model: hold-out ``mase``, ``smape`` and the fit's ``seconds``; the settings.
    """
    from forecasting.datasets import load_m4_hourly

    train, test = load_m4_hourly(data_dir=data_dir, download=data_dir is None)
    ids = train["unique_id"].unique(maintain_order=True).to_list()[:n_series]
    train = train.filter(pl.col("unique_id").is_in(ids))
    test = test.filter(pl.col("unique_id").is_in(ids))
    before = train.filter(pl.int_range(pl.len()).over("unique_id") < pl.len().over("unique_id") - new)
    rounds = rounds or max(1, n_estimators // 4)
    params: dict[str, Any] = {"season_length": SEASON, "n_estimators": n_estimators}
    spec: dict[str, Any] = {"name": family, "params": params}
    out: dict[str, Any] = {"series": len(ids), "family": family, "new_points_per_series": new,
                           "n_estimators": n_estimators, "warm_rounds": rounds, "threads": threads}
    _fit({"name": family, "params": {"season_length": SEASON, "n_estimators": 1, "conformal_windows": 0}},
         before.filter(pl.col("unique_id") == ids[0]), threads=threads)  # the library's import, not timed below
    champion, seconds = _fit(spec, before, threads=threads)
    out["champion (no retrain)"] = {**_scores(champion, train, test), "seconds": round(seconds, 2)}
    full, seconds = _fit(spec, train, threads=threads)
    out["full retrain"] = {**_scores(full, train, test), "seconds": round(seconds, 2)}
    plain = {**spec, "params": {**params, "conformal_windows": 0}}
    boosted, seconds = _fit(plain, train, threads=threads)
    out["full retrain, no calibration"] = {**_scores(boosted, train, test), "seconds": round(seconds, 2)}
    warm, seconds = _fit(spec, train, threads=threads, warm_from=champion, rounds=rounds)
    out["warm start"] = {**_scores(warm, train, test), "seconds": round(seconds, 2)}
    return out


@app.command()
def main(
    series: Annotated[int, typer.Option(help="First N series of M4 Hourly.")] = 40,
    family: Annotated[str, typer.Option(help="xgboost or lightgbm.")] = "xgboost",
    new: Annotated[int, typer.Option(help="Points per series arriving after the champion's fit.")] = 168,
    n_estimators: Annotated[int, typer.Option(help="Rounds of the champion and of a full retrain.")] = 300,
    rounds: Annotated[int | None, typer.Option(help="Rounds a warm start adds (default n_estimators // 4).")] = None,
    threads: Annotated[int, typer.Option(help="Library threads per fit.")] = 1,
) -> None:
    """Print one JSON object per family: hold-out MASE/sMAPE and fit seconds of each model."""
    for name in family.split(","):
        print(json.dumps(run(series, family=name.strip(), new=new, n_estimators=n_estimators, rounds=rounds,
                             threads=threads)))


if __name__ == "__main__":
    app()
