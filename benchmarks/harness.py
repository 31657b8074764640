"""The benchmark harness behind ``forecasting bench``.

For a catalogue dataset, every model is fitted on the training part and forecasts the
test horizon (the official split where the dataset has one, as M4; otherwise the last
``h`` observations of each series are held out). Forecasts are scored with the M4
definitions (:mod:`forecasting.evaluation`): sMAPE, MASE, OWA against Naive2 (always
computed, whether or not ``naive2`` is in the model list), MAE, RMSE, and coverage and
MSIS when levels are asked. Fit + predict wall time is measured per model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from forecasting import datasets
from forecasting.data import validate_levels, validate_panel
from forecasting.errors import InvalidParameterError, ModelFitError
from forecasting.evaluation import evaluate
from forecasting.models import REGISTRY, ModelSpec, default_season_length, make_model, parse_spec

__all__ = ["BenchResult", "holdout_split", "run_benchmark", "write_results"]


@dataclass(frozen=True)
class BenchResult:
    """Scores per model (``metrics``), the forecasts they were computed from, and notes."""

    metrics: pl.DataFrame
    forecasts: pl.DataFrame
    notes: list[str] = field(default_factory=list)


def holdout_split(frame: pl.DataFrame, h: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split each series into its first ``n - h`` rows (train) and last ``h`` rows (test).

    Raises
    ------
    InvalidParameterError
        When a series has ``h`` or fewer observations (nothing left to train on).
    """
    frame = frame.sort("unique_id", "ds")
    n = frame.group_by("unique_id").len()
    short = n.filter(pl.col("len") <= h)
    if short.height:
        ids = ", ".join(short["unique_id"].head(5).to_list())
        raise InvalidParameterError(f"h={h} leaves no training data for series {ids} (lengths <= h)", field="h")
    idx = pl.int_range(pl.len()).over("unique_id")
    size = pl.len().over("unique_id")
    return frame.filter(idx < size - h), frame.filter(idx >= size - h)


def run_benchmark(
    dataset: str,
    models: Sequence[str],
    *,
    h: int | None = None,
    level: Sequence[float] = (),
    n_jobs: int = 1,
    series_limit: int | None = None,
    on_model_done: Callable[[str, float], None] | None = None,
) -> BenchResult:
    """Fit every model on the dataset's training part and score its test forecasts.

    Parameters
    ----------
    dataset : str
        Catalogue name (``m4_hourly``, ``air_passengers``...).
    models : sequence of str
        Model specs (registry names or JSON specs).
    h : int, optional
        Horizon; defaults to the catalogue's (M4 Hourly: 48).
    level : numbers in (0, 100)
        Interval levels for coverage and MSIS.
    n_jobs : int
        Worker processes per model fit.
    series_limit : int, optional
        Keep only the first N series (quick runs).
    on_model_done : callable(model, seconds), optional
        Progress callback.

    Returns
    -------
    BenchResult
        ``metrics``: ``dataset, model, smape, mase, owa, mae, rmse, [coverage_L, msis_L],
        fit_predict_seconds``, one row per model.
    """
    specs = [parse_spec(m) for m in models]
    if not specs:
        raise InvalidParameterError("give at least one model", field="models")
    levels = validate_levels(level)
    loaded = datasets.load(dataset)
    info = loaded["info"]
    if h is None and "h" not in info:
        raise InvalidParameterError(f"dataset '{dataset}' has no standard horizon; pass h (--h N)", field="h")
    if h is not None and (isinstance(h, bool) or not isinstance(h, int) or h < 1):
        raise InvalidParameterError(f"h must be an integer >= 1, got {h!r}", field="h")
    horizon = int(h or info["h"])
    if "train" in loaded and h in (None, info.get("h")):
        train, test = loaded["train"], loaded["test"]
    else:
        full = loaded["data"] if "data" in loaded else pl.concat([loaded["train"], loaded["test"]])
        train, test = holdout_split(full.select("unique_id", "ds", "y"), horizon)
    if series_limit:
        keep = train["unique_id"].unique(maintain_order=True).head(series_limit).to_list()
        train, test = train.filter(pl.col("unique_id").is_in(keep)), test.filter(pl.col("unique_id").is_in(keep))
    train, test = train.select("unique_id", "ds", "y"), test.select("unique_id", "ds", "y")
    season_length = int(info["season_length"])
    freq = info["freq"]
    calendar = info.get("calendar_freq", freq)
    panel = validate_panel(train, freq=freq)

    def fit_predict(spec: ModelSpec) -> tuple[pl.DataFrame, float, str]:
        entry = REGISTRY[spec.name]
        params = dict(spec.params)
        if "season_length" in entry.params.__struct_fields__ and "season_length" not in params:
            params["season_length"] = (default_season_length(calendar, multiple=True) if entry.multi_season
                                       else season_length)
        model = make_model(ModelSpec(name=spec.name, params=params, fallback=spec.fallback), freq=panel.freq,
                           n_jobs=n_jobs)
        start = time.perf_counter()
        out = model.fit(panel).predict(horizon, level=levels)
        return out, time.perf_counter() - start, model.alias

    columns: list[str] = []
    seconds: dict[str, float] = {}
    frames: list[pl.DataFrame] = []
    names: list[str] = []
    for spec in specs:
        out, secs, alias = fit_predict(spec)
        name = spec.name if spec.name not in names else f"{spec.name}_{len(names)}"
        renamed = out.rename({c: c.replace(alias, name, 1) for c in out.columns if c.startswith(alias)})
        frames.append(renamed.drop("unique_id", "ds"))
        columns.append(name)
        names.append(name)
        seconds[name] = secs
        if on_model_done:
            on_model_done(name, secs)
    base = out.select("unique_id", "ds")
    naive2_col = "naive2" if "naive2" in columns else None
    notes: list[str] = []
    if naive2_col is None:
        try:
            ref, _, alias = fit_predict(ModelSpec(name="naive2"))
            frames.append(ref.select(pl.col(alias).alias("__naive2")))
            naive2_col = "__naive2"
        except ModelFitError as exc:  # e.g. multiplicative decomposition of non-positive series
            notes.append(f"OWA not computed: the Naive2 benchmark failed ({exc.message})")
    forecasts = pl.concat([base, *frames], how="horizontal")
    test = test.with_columns(pl.col("ds").cast(forecasts.schema["ds"]))
    scores = evaluate(forecasts, test, train, models=columns, season_length=season_length, level=levels,
                      naive2_column=naive2_col)
    metrics = scores.with_columns(
        pl.lit(dataset).alias("dataset"),
        pl.col("model").replace_strict(seconds, return_dtype=pl.Float64).alias("fit_predict_seconds"),
    )
    metrics = metrics.select("dataset", "model", *[c for c in metrics.columns if c not in ("dataset", "model")])
    return BenchResult(metrics=metrics, forecasts=forecasts.drop("__naive2", strict=False), notes=notes)


def write_results(result: BenchResult, output: str | Path) -> dict[str, Path]:
    """Write ``metrics.csv``, ``forecasts.parquet`` and ``leaderboard.md`` into ``output``."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out / "metrics.csv", "forecasts": out / "forecasts.parquet", "leaderboard": out / "leaderboard.md"}
    result.metrics.write_csv(paths["metrics"])
    result.forecasts.write_parquet(paths["forecasts"])
    m = result.metrics.sort("owa", nulls_last=True)
    cols = [c for c in m.columns if c != "dataset"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in m.select(cols).iter_rows():
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |")
    paths["leaderboard"].write_text("\n".join(lines) + "\n")
    return paths
