"""A benchmark suite: many datasets, each with its own setup, and one aggregate (``forecasting bench --suite``).

:func:`run_suite` runs :func:`~forecasting.benchmarks.harness.run_benchmark` once per dataset
of a catalogue suite (:func:`forecasting.datasets.suite`; ``dev``: M3 yearly, quarterly,
monthly and other, M4 Hourly, ETTh1 at h = 96, AirPassengers), each with its own horizon,
season length and frequency, always with the suite's reference model (``seasonal_naive``)
in the list, and :func:`aggregate` summarises the per-dataset scores as fev-bench does:

* **relative MASE** of a model on a dataset: ``MASE(model) / MASE(reference)``, clipped to
  ``[0.01, 100]``; a model that failed the dataset is scored as the reference (relative
  MASE 1) and flagged (``failed``);
* **skill score**: ``1 - geometric mean`` of the relative MASE over datasets (0: as good as
  seasonal naive; higher is better);
* **win rates**: for each pair of models the share of datasets where the first has the
  lower MASE (ties count half), and each model's average over its opponents;
* **bootstrap 95% intervals** of the skill score and the average win rate: percentile
  intervals over ``n_resamples`` resamples (fixed ``seed``) that draw datasets with
  replacement and, within each drawn dataset, its series with replacement (a two-level
  bootstrap; ``series_level=False`` resamples datasets only, as fev-bench);
* time (fit + predict seconds, summed over datasets) and peak memory (the maximum) per model.

Source: Shchur et al. (2025), "fev-bench: A Realistic Benchmark for Time Series Forecasting"
(``fev.analysis.leaderboard``: relative errors to ``seasonal_naive`` clipped to [1e-2, 100],
failures imputed with the baseline, ``1 - gmean``, pairwise win rates with ties as half,
percentile bootstrap over tasks); GIFT-Eval (Aksu et al. 2024) aggregates with the same
geometric mean of errors relative to seasonal naive.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from forecasting import datasets
from forecasting.benchmarks.harness import BenchResult, code_version, run_benchmark, write_results
from forecasting.errors import DatasetError, InvalidParameterError
from forecasting.models import parse_spec

__all__ = ["SuiteResult", "aggregate", "run_suite", "write_suite"]

#: fev-bench's clipping of relative errors.
MIN_RELATIVE, MAX_RELATIVE = 1e-2, 100.0


@dataclass(frozen=True)
class SuiteResult:
    """The aggregate of a suite run.

    ``summary``: one row per model (best skill first): ``model, skill, skill_lo, skill_hi,
    gmean_relative_mase, win_rate, win_rate_lo, win_rate_hi, datasets, failures,
    fit_predict_seconds, peak_memory_mb``. ``per_dataset``: one row per (dataset, model):
    the harness's metrics plus ``relative_mase`` (as aggregated: failures at 1) and
    ``failed``. ``win_rates``: ``model`` then one column per opponent (share of datasets won).
    ``metadata``: what was run (datasets with their h, season, freq, series and windows;
    models; reference; date; code version; bootstrap settings; wall time).
    """

    summary: pl.DataFrame
    per_dataset: pl.DataFrame
    win_rates: pl.DataFrame
    metadata: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    results: dict[str, BenchResult] = field(default_factory=dict)


def _with_reference(models: Sequence[str], reference: str) -> list[str]:
    """The model list with the reference appended when no model is named like it."""
    names = []
    for m in models:
        spec = parse_spec(m)
        names.append(spec.params.get("alias") or spec.name)
    return [*models] if reference in names else [*models, reference]


def run_suite(
    models: Sequence[str],
    *,
    suite: str = "dev",
    series_limit: int | None = None,
    windows: int | None = None,
    level: Sequence[float] = (),
    n_jobs: int = -1,
    store: str | Path | None = None,
    n_resamples: int = 1000,
    seed: int = 123,
    series_level: bool = True,
    output: str | Path | None = None,
    on_dataset: Callable[[str, int, int], None] | None = None,
    on_task_done: Callable[[Any, bool], None] | None = None,
) -> SuiteResult:
    """Run models over every dataset of a suite and aggregate them (skill score, win rates, intervals).

    Parameters
    ----------
    models : sequence of str
        Model specs; the suite's reference (``seasonal_naive``) is added when absent.
    suite : str, default "dev"
        Catalogue suite (:func:`forecasting.datasets.suite`).
    series_limit : int, optional
        At most this many series per dataset (quick runs).
    windows : int, optional
        Rolling windows per dataset (default the suite's, 1: the official test parts).
    level : numbers in (0, 100)
        Interval levels (coverage, MSIS, WQL, SQL per dataset).
    n_jobs : int, default -1
        Cores for each dataset's tasks (see :func:`~forecasting.benchmarks.harness.run_benchmark`).
    store : path, optional
        Task store shared by the datasets (resume and cache).
    n_resamples, seed, series_level
        Bootstrap settings (see :func:`aggregate`).
    output : path, optional
        When given, each dataset's harness results go to ``output/<dataset>/`` as they finish.
    on_dataset(name, index, total), on_task_done(task, cached)
        Progress callbacks.

    Returns
    -------
    SuiteResult

    Raises
    ------
    DatasetError
        Unknown suite. A dataset whose files are missing is skipped with a note, not raised.
    InvalidParameterError
        Bad options (no model, a bad level...), or no dataset of the suite could be run.
    """
    entry = datasets.suite(suite)
    reference = entry["reference"]
    run_models = _with_reference(models, reference)
    n_windows = windows or int(entry.get("windows", 1))
    started = time.perf_counter()
    results: dict[str, BenchResult] = {}
    notes: list[str] = []
    meta_datasets = []
    for i, item in enumerate(entry["datasets"]):
        name = item.get("name", item["dataset"])  # a label: one dataset may appear twice (two horizons)
        if on_dataset:
            on_dataset(name, i, len(entry["datasets"]))
        try:
            result = run_benchmark(item["dataset"], run_models, h=item.get("h"), level=level, n_jobs=n_jobs,
                                   series_limit=series_limit, windows=n_windows, store=store,
                                   on_task_done=on_task_done)
        except DatasetError as exc:
            notes.append(f"{name} skipped: {exc.message}")
            continue
        label = pl.lit(name).alias("dataset")
        result = replace(result, metrics=result.metrics.with_columns(label),
                         series_metrics=None if result.series_metrics is None
                         else result.series_metrics.with_columns(label))
        results[name] = result
        notes += [f"{name}: {n}" for n in result.notes]
        assert result.bench is not None
        bench = result.bench
        meta_datasets.append({"dataset": name, "source": item["dataset"], "h": bench.h, "season_length": bench.season_length,
                              "freq": bench.calendar_freq, "n_series": bench.data["unique_id"].n_unique(),
                              "windows": n_windows, **({"note": item["note"]} if "note" in item else {})})
        if output is not None:
            write_results(result, Path(output) / name)
    if not results:
        msg = f"no dataset of suite {suite!r} could be run: " + "; ".join(notes)
        raise InvalidParameterError(msg, field="suite")
    per_dataset = pl.concat([r.metrics for r in results.values()], how="diagonal_relaxed")
    series = pl.concat([r.series_metrics for r in results.values()
                        if r.series_metrics is not None and r.series_metrics.height], how="diagonal_relaxed")
    summary, per_dataset, win_rates, agg_notes = aggregate(per_dataset, series, reference=reference,
                                                           n_resamples=n_resamples, seed=seed,
                                                           series_level=series_level)
    metadata = {"suite": suite, "description": entry.get("description", ""), "reference": reference,
                "models": list(run_models), "datasets": meta_datasets, "series_limit": series_limit,
                "level": list(level), "n_resamples": n_resamples, "seed": seed, "series_level_bootstrap": series_level,
                "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "code_version": code_version(),
                "wall_seconds": round(time.perf_counter() - started, 1)}
    return SuiteResult(summary=summary, per_dataset=per_dataset, win_rates=win_rates, metadata=metadata,
                       notes=notes + agg_notes, results=results)


# --------------------------------------------------------------------------- aggregation
def aggregate(per_dataset: pl.DataFrame, series: pl.DataFrame | None = None, *, reference: str = "seasonal_naive",
              n_resamples: int = 1000, seed: int = 123,
              series_level: bool = True) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list[str]]:
    """Skill scores, win rates and bootstrap intervals from per-dataset MASEs (fev-bench's aggregation).

    Parameters
    ----------
    per_dataset : pl.DataFrame
        One row per (dataset, model): ``dataset, model, mase`` and optionally ``error`` (non-null:
        the model failed the dataset), ``fit_predict_seconds``, ``peak_memory_mb`` (the harness's
        ``metrics``, concatenated).
    series : pl.DataFrame, optional
        ``dataset, model, unique_id, window, mase`` (the harness's ``series_metrics``): each
        dataset's MASE is the mean of its rows, and the bootstrap resamples them within datasets.
        Without it (or with ``series_level=False``) only datasets are resampled.
    reference : str, default "seasonal_naive"
        The model every relative MASE divides by. Datasets where it has no MASE are left out
        (with a note).
    n_resamples : int, default 1000
        Bootstrap resamples; 0 gives no intervals (null bounds).
    seed : int, default 123
        Seed of the bootstrap's generator (``numpy.random.default_rng``).
    series_level : bool, default True
        Resample series within each drawn dataset too.

    Returns
    -------
    (summary, per_dataset, win_rates, notes)
        As :class:`SuiteResult` (``summary`` sorted by skill, best first).

    Raises
    ------
    InvalidParameterError
        If the reference is not among the models, no dataset has a reference MASE, or
        ``n_resamples`` < 0.
    """
    if n_resamples < 0:
        msg = f"n_resamples must be >= 0, got {n_resamples}"
        raise InvalidParameterError(msg, field="n_resamples")
    models = per_dataset["model"].unique(maintain_order=True).to_list()
    if reference not in models:
        msg = f"the reference model {reference!r} is not among the models {models}"
        raise InvalidParameterError(msg, field="models")
    frame = per_dataset if "error" in per_dataset.columns else per_dataset.with_columns(pl.lit(None, pl.Utf8)
                                                                                          .alias("error"))
    notes: list[str] = []
    ref = frame.filter(pl.col("model") == reference).select("dataset", pl.col("mase").alias("_ref"))
    usable = ref.filter(pl.col("_ref").is_not_null() & (pl.col("_ref") > 0))["dataset"].to_list()
    for name in ref.filter(~pl.col("dataset").is_in(usable))["dataset"].to_list():
        notes.append(f"{name} left out of the aggregate: the reference {reference!r} has no MASE there")
    if not usable:
        msg = f"no dataset has a MASE for the reference {reference!r}: nothing to aggregate"
        raise InvalidParameterError(msg, field="models")
    failed = pl.col("error").is_not_null() | pl.col("mase").is_null()
    frame = (frame.join(ref, on="dataset", how="left", maintain_order="left")
             .with_columns(failed.alias("failed"))
             .with_columns(pl.when(pl.col("failed")).then(1.0).otherwise(pl.col("mase") / pl.col("_ref"))
                           .clip(MIN_RELATIVE, MAX_RELATIVE).alias("relative_mase"))
             .drop("_ref"))
    data = frame.filter(pl.col("dataset").is_in(usable))
    names = list(dict.fromkeys(data["dataset"].to_list()))
    rel = np.array([[_cell(data, d, m, "relative_mase") for m in models] for d in names])  # [datasets, models]
    fails = np.array([[bool(_cell(data, d, m, "failed")) for m in models] for d in names])
    boot = _bootstrap(rel, fails, names, models, series if series_level else None, reference, n_resamples, seed)
    skill = 1.0 - _gmean(rel[None])[0]
    win = _avg_win_rate(rel[None])[0]
    pair = _pairwise_wins(rel)
    timing = data.group_by("model", maintain_order=True).agg(
        *[pl.col(c).sum() for c in ("fit_predict_seconds",) if c in data.columns],
        *[pl.col(c).max() for c in ("peak_memory_mb",) if c in data.columns])
    summary = pl.DataFrame({
        "model": models, "skill": skill,
        "skill_lo": None if boot is None else 1.0 - np.quantile(_gmean(boot), 0.975, axis=0),
        "skill_hi": None if boot is None else 1.0 - np.quantile(_gmean(boot), 0.025, axis=0),
        "gmean_relative_mase": 1.0 - skill, "win_rate": win,
        "win_rate_lo": None if boot is None else np.quantile(_avg_win_rate(boot), 0.025, axis=0),
        "win_rate_hi": None if boot is None else np.quantile(_avg_win_rate(boot), 0.975, axis=0),
        "datasets": [len(names)] * len(models), "failures": fails.sum(axis=0).astype(np.int64),
    }, schema_overrides={c: pl.Float64 for c in ("skill_lo", "skill_hi", "win_rate_lo", "win_rate_hi")})
    summary = summary.join(timing, on="model", how="left", maintain_order="left").sort("skill", descending=True)
    win_rates = pl.DataFrame({"model": models, **{f"vs_{b}": pair[:, j] for j, b in enumerate(models)}})
    return summary, frame, win_rates, notes


def _cell(frame: pl.DataFrame, dataset: str, model: str, col: str) -> Any:
    hit = frame.filter((pl.col("dataset") == dataset) & (pl.col("model") == model))
    return hit[col][0] if hit.height else (True if col == "failed" else 1.0)


def _gmean(rel: np.ndarray) -> np.ndarray:
    """Geometric mean over datasets: ``rel`` of shape [resamples, datasets, models] -> [resamples, models]."""
    return np.exp(np.mean(np.log(rel), axis=1))


def _pairwise_wins(rel: np.ndarray) -> np.ndarray:
    """``[i, j]``: share of datasets where model i has the lower error than model j (ties half); diagonal nan."""
    a, b = rel[:, :, None], rel[:, None, :]
    wins = (a < b).mean(axis=0) + 0.5 * (a == b).mean(axis=0)
    np.fill_diagonal(wins, np.nan)
    return wins


def _avg_win_rate(rel: np.ndarray) -> np.ndarray:
    """Each model's win rate averaged over its opponents: [resamples, datasets, models] -> [resamples, models]."""
    a, b = rel[:, :, :, None], rel[:, :, None, :]
    wins = (a < b).mean(axis=1) + 0.5 * (a == b).mean(axis=1)  # [resamples, models, models]
    n = rel.shape[2]
    if n < 2:
        return np.full((rel.shape[0], n), np.nan)
    wins[:, np.arange(n), np.arange(n)] = 0.0
    return wins.sum(axis=2) / (n - 1)


def _bootstrap(rel: np.ndarray, fails: np.ndarray, names: list[str], models: list[str], series: pl.DataFrame | None,
               reference: str, n_resamples: int, seed: int) -> np.ndarray | None:
    """Resampled relative MASEs, shape [resamples, datasets, models]: datasets drawn with replacement and, with
    ``series``, each drawn dataset's (series, window) rows drawn with replacement (failed models stay at 1)."""
    if n_resamples == 0:
        return None
    rng = np.random.default_rng(seed)
    n_data = len(names)
    per_data = np.broadcast_to(rel, (n_resamples, *rel.shape)).copy()
    if series is not None and series.height:
        for d, name in enumerate(names):
            mat = _series_matrix(series.filter(pl.col("dataset") == name), models)
            if mat is None:
                continue
            idx = rng.integers(0, mat.shape[0], size=(n_resamples, mat.shape[0]))
            with warnings.catch_warnings():  # a failed model's column is all nan: imputed below
                warnings.simplefilter("ignore", RuntimeWarning)
                means = np.nanmean(mat[idx], axis=1)  # [resamples, models]
            ref = means[:, models.index(reference)][:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                resampled = np.clip(means / ref, MIN_RELATIVE, MAX_RELATIVE)
            resampled = np.where(np.isfinite(resampled), resampled, 1.0)
            per_data[:, d, :] = np.where(fails[d][None, :], 1.0, resampled)
    pick = rng.integers(0, n_data, size=(n_resamples, n_data))
    return np.take_along_axis(per_data, pick[:, :, None], axis=1)


def _series_matrix(rows: pl.DataFrame, models: list[str]) -> np.ndarray | None:
    """Per-series MASE as [series x windows, models]; a model without rows (failed) gets the reference's."""
    if not rows.height:
        return None
    wide = rows.pivot(on="model", index=["unique_id", "window"], values="mase").sort("unique_id", "window")
    cols = [wide[m].to_numpy().astype(np.float64) if m in wide.columns else None for m in models]
    ref = next((c for c in cols if c is not None), None)
    if ref is None:
        return None
    return np.column_stack([c if c is not None else np.full_like(ref, np.nan) for c in cols])


# --------------------------------------------------------------------------- output
def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if np.isnan(v) else f"{v:.3f}"
    return str(v)


def _md(frame: pl.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines) + "\n"


def relative_table(per_dataset: pl.DataFrame) -> pl.DataFrame:
    """Relative MASE as ``dataset`` x model (a failed model shows 1.0, flagged in ``per_dataset.failed``)."""
    return per_dataset.pivot(on="model", index="dataset", values="relative_mase", maintain_order=True)


def write_suite(result: SuiteResult, output: str | Path) -> dict[str, Path]:
    """Write ``suite.csv`` (the summary), ``suite.md`` (metadata, summary, relative MASE per dataset, win
    rates, notes), ``suite_per_dataset.csv``, ``suite_win_rates.csv`` and ``suite.json`` (the metadata)."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"summary": out / "suite.csv", "markdown": out / "suite.md", "per_dataset": out / "suite_per_dataset.csv",
             "win_rates": out / "suite_win_rates.csv", "metadata": out / "suite.json"}
    result.summary.write_csv(paths["summary"])
    result.per_dataset.write_csv(paths["per_dataset"])
    result.win_rates.write_csv(paths["win_rates"])
    paths["metadata"].write_text(json.dumps(result.metadata, indent=2, default=str) + "\n")
    meta = result.metadata
    sets = "\n".join(f"- {d['dataset']}: {d['n_series']} series, h={d['h']}, season {d['season_length']}, "
                     f"freq {d['freq']}, {d['windows']} window(s)" for d in meta["datasets"])
    detail = result.per_dataset.select("dataset", "model", "smape", "mase", "relative_mase", "failed",
                                       *[c for c in ("fit_predict_seconds", "peak_memory_mb", "error")
                                         if c in result.per_dataset.columns])
    text = (f"# Suite `{meta['suite']}`\n\n"
            f"Models {', '.join(meta['models'])}; reference `{meta['reference']}`; {meta['date']}; code "
            f"{meta['code_version']}; wall {meta['wall_seconds']} s; series limit {meta['series_limit']}; bootstrap "
            f"{meta['n_resamples']} resamples (seed {meta['seed']}, series within datasets: "
            f"{meta['series_level_bootstrap']}).\n\n{sets}\n\n"
            "## Aggregate (skill = 1 - geometric mean of MASE relative to the reference; higher is better)\n\n"
            f"{_md(result.summary)}\n## Relative MASE per dataset\n\n{_md(relative_table(result.per_dataset))}\n"
            f"## Per dataset\n\n{_md(detail)}\n## Win rates (row beats column)\n\n{_md(result.win_rates)}")
    if result.notes:
        text += "\n## Notes\n\n" + "\n".join(f"- {n}" for n in result.notes) + "\n"
    paths["markdown"].write_text(text)
    return paths
