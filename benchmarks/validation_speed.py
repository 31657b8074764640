"""Validation against the feature build on the same rows: is the data contract the bottleneck?

Builds a synthetic panel (default 1,000 hourly series of 3,500 points: 3.5 million rows,
``unique_id`` strings, naive ``ds``, float ``y``) and times, on the same machine and in
turns:

* :func:`forecasting.data.validate_panel` on the panel as it comes, for several row orders
  and input kinds: ``sorted`` (by ``unique_id, ds``, the documented form), ``shuffled``
  (rows in random order), ``time-major`` (sorted by ``ds, unique_id``, as a database export
  often is), ``numeric-ids`` (series contiguous, ids ``"1", "2", ..., "10"``, so not in string
  order), ``pandas`` (the sorted panel as a pandas frame), ``nan-filled`` (1% of ``y`` NaN,
  ``fill_missing="interpolate"``) and ``gaps-filled`` (0.1% of the rows missing, ``fill_gaps=True``); each step of validation is timed too (the functions
  ``validate_panel`` calls, wrapped for the run: conversion, scan, sort, duplicates, frequency,
  grid, gaps, y);
* the same validation with the general code (``forecasting.data._FAST_PATHS = False``, the code
  every fast path must agree with), as the reference;
* the default feature build of the XGBoost model on the validated panel:
  ``features.default_features(24, freq="1h")``, :meth:`FeaturePipeline.fit`, ``scale_stats``,
  ``transform``, ``training_rows`` and the float32 matrix, as
  :class:`~forecasting.models.trees.TreeForecaster` trains.

It prints the best wall time of ``--repeats`` runs of each (the machine is shared: the
best run is the least disturbed), the process CPU time of that run, and the ratio
validation / feature build per case. The target (issue 13): validation no slower than the
feature build on the same rows, every case.

Usage::

    python -m forecasting.benchmarks.validation_speed [--series 1000] [--length 3500] [--repeats 3]
        [--cases sorted,shuffled] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import polars as pl

import forecasting.data as data_module
from forecasting.data import Panel, validate_panel
from forecasting.features import FeaturePipeline, default_features

#: The functions validate_panel calls whose time is reported as a step (a step's time includes
#: the steps it calls: ``_check_grid`` includes ``find_gaps``).
STEPS = ("to_polars", "_coerce_ds", "_scan", "_sort_rows", "_check_duplicates", "_panel_freq", "infer_freq",
         "_on_business_day_grid", "_check_grid_and_y", "_check_grid", "find_oversized_grids", "find_gaps", "_check_y")
CASES = ("sorted", "shuffled", "time-major", "numeric-ids", "pandas", "nan-filled", "gaps-filled")


def make_panel(n_series: int, length: int, seed: int = 0) -> pl.DataFrame:
    """``n_series`` hourly series of ``length`` points from 2020-01-01, sorted by ``unique_id, ds``.

    ``y`` is a daily sine plus noise and a per-series level (float64); ids ``s0000, s0001...``.
    """
    rng = np.random.default_rng(seed)
    width = len(str(n_series - 1))
    ids = np.repeat(np.array([f"s{i:0{width}d}" for i in range(n_series)]), length)
    start = np.datetime64("2020-01-01T00:00", "us")
    ds = np.tile(start + np.arange(length).astype("timedelta64[h]"), n_series)
    hours = np.tile(np.arange(length), n_series)
    level = np.repeat(rng.uniform(10, 100, n_series), length)
    y = level + 5 * np.sin(2 * np.pi * hours / 24) + rng.normal(size=n_series * length)
    return pl.DataFrame({"unique_id": ids, "ds": ds, "y": y})


def case_input(panel: pl.DataFrame, case: str) -> tuple[Any, dict[str, Any]]:
    """The panel in the form of ``case`` and the keyword arguments of :func:`validate_panel`."""
    if case == "sorted":
        return panel, {}
    if case == "shuffled":
        return panel.sample(fraction=1.0, shuffle=True, seed=1), {}
    if case == "time-major":
        return panel.sort("ds", "unique_id"), {}
    if case == "numeric-ids":  # contiguous series, but "10" sorts before "2"
        ids = panel.get_column("unique_id").unique(maintain_order=True)
        mapping = dict(zip(ids.to_list(), [str(i + 1) for i in range(ids.len())], strict=True))
        return panel.with_columns(pl.col("unique_id").replace_strict(mapping)), {}
    if case == "pandas":
        return panel.to_pandas(), {}
    if case == "nan-filled":
        rng = np.random.default_rng(2)
        holes = rng.random(panel.height) < 0.01
        y = panel.get_column("y").to_numpy().copy()
        y[holes] = np.nan
        return panel.with_columns(pl.Series("y", y)), {"fill_missing": "interpolate"}
    if case == "gaps-filled":  # 0.1% of the rows missing (never a series' first or last)
        rng = np.random.default_rng(3)
        position = pl.int_range(pl.len()).over("unique_id")
        edge = (position == 0) | (position == pl.len().over("unique_id") - 1)
        drop = pl.Series(rng.random(panel.height) < 0.001)
        return panel.filter(~(drop & ~edge)), {"fill_missing": "interpolate", "fill_gaps": True}
    msg = f"unknown case {case!r}; choose from {', '.join(CASES)}"
    raise ValueError(msg)


@contextlib.contextmanager
def timed_steps(totals: dict[str, float]) -> Iterator[None]:
    """Wrap the :data:`STEPS` of :mod:`forecasting.data` for the block, adding their wall times to ``totals``."""
    originals = {name: getattr(data_module, name) for name in STEPS if hasattr(data_module, name)}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def inner(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[name] += time.perf_counter() - start
        return inner

    try:
        for name, fn in originals.items():
            setattr(data_module, name, wrap(name, fn))
        yield
    finally:
        for name, fn in originals.items():
            setattr(data_module, name, fn)


def feature_build(panel: Panel) -> np.ndarray:
    """The default XGBoost feature build (hourly, season 24): the training matrix, float32 (rows, features)."""
    pipe = FeaturePipeline.fit(default_features(24, freq="1h"), panel)
    scales = pipe.scale_stats(panel.frame)
    rows = pipe.training_rows(pipe.transform(panel.frame, scales=scales))
    return pipe.matrix(rows)


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """``(best wall seconds, CPU seconds of that run, last result)`` over ``repeats`` runs."""
    best = (float("inf"), float("inf"))
    out = None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        run = (time.perf_counter() - wall, time.process_time() - cpu)
        best = min(best, run)
    return best[0], best[1], out


@contextlib.contextmanager
def general_code() -> Iterator[None]:
    """The general validation code (every fast path off)."""
    previous = data_module._FAST_PATHS
    data_module._FAST_PATHS = False
    try:
        yield
    finally:
        data_module._FAST_PATHS = previous


def run(n_series: int, length: int, repeats: int, cases: list[str], reference: bool = True) -> dict[str, Any]:
    """Time every case; returns ``{"rows", "features": {...}, "cases": {case: {...}}}`` (seconds)."""
    panel = make_panel(n_series, length)
    validated = validate_panel(panel)
    wall, cpu, matrix = best_of(lambda: feature_build(validated), repeats)
    out: dict[str, Any] = {"rows": panel.height, "series": n_series,
                           "features": {"wall_s": wall, "cpu_s": cpu, "matrix": list(matrix.shape)}, "cases": {}}
    for case in cases:
        data, kwargs = case_input(panel, case)
        validate = functools.partial(validate_panel, data, **kwargs)
        v_wall, v_cpu, result = best_of(validate, repeats)
        assert result.frame.height == panel.height and result.freq == "1h"
        steps: dict[str, float] = defaultdict(float)
        with timed_steps(steps):
            validate()
        row = {"wall_s": v_wall, "cpu_s": v_cpu, "ratio": v_wall / wall, "steps_s": dict(steps)}
        if reference:
            with general_code():
                row["general_wall_s"] = best_of(validate, 1)[0]
        out["cases"][case] = row
    return out


def report(result: dict[str, Any]) -> str:
    """The table printed by :func:`main`."""
    f = result["features"]
    lines = [f"{result['rows']:,} rows ({result['series']:,} hourly series); best of the repeats, wall seconds",
             f"feature build (default_features(24, '1h'), matrix {f['matrix'][0]:,} x {f['matrix'][1]}): "
             f"{f['wall_s']:.3f} s (cpu {f['cpu_s']:.3f})",
             f"{'case':<13} {'validate':>9} {'cpu':>7} {'general':>8} {'ratio':>6}  steps"]
    for case, row in result["cases"].items():
        steps = ", ".join(f"{k.lstrip('_')} {v:.2f}" for k, v in row["steps_s"].items() if v >= 0.005)
        general = f"{row['general_wall_s']:8.3f}" if "general_wall_s" in row else f"{'-':>8}"
        lines.append(f"{case:<13} {row['wall_s']:9.3f} {row['cpu_s']:7.3f} {general} {row['ratio']:6.2f}  {steps}")
    lines.append("ratio = validate / feature build (target <= 1); general = every fast path off (the reference code)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry: print the table (and write JSON with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--length", type=int, default=3500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    ap.add_argument("--no-reference", action="store_true", help="skip the general-code reference timings")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)
    result = run(args.series, args.length, args.repeats, [c.strip() for c in args.cases.split(",") if c.strip()],
                 reference=not args.no_reference)
    print(report(result))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
