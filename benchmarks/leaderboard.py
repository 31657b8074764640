"""Leaderboards of a benchmark run: a Markdown table and a self-contained HTML page, with their provenance.

Both say what they were run on (dataset, series count and the ``--series-limit`` when one was
given, horizon, windows, levels, date, code version and each model's full spec), so a quick run
is never mistaken for the official board. Metrics have readable headers, are sorted (OWA, else
MASE; lower is better) and carry the skill against seasonal naive (``1 - MASE / MASE of
seasonal_naive``; fev-bench's skill score on one dataset). The harness scores seasonal naive as
the reference when it was not among the models (``BenchResult.reference``); its row is marked
``seasonal_naive (reference)`` either way.

The HTML page (Jinja2 template ``forecasting/templates/leaderboard.html.j2``; no HTML is built
here, the template gets the rows and figures) needs no network:
its plots are matplotlib PNGs embedded as ``data:`` URIs. Plots: one bar chart per metric by
model, forecasts against actuals for the best, median and worst series of the leading model
(by MASE, window 0), and accuracy against fit + predict time; every axis labelled, and no two
texts of a plot overlap (:func:`forecasting.reports.text_overlaps`; measured, listed in the notes).

The functions take the harness's frames (``metrics``, ``forecasts``, ``history``), not its
result type, so this module does not import the harness.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

__all__ = ["HEADERS", "markdown_table", "provenance_rows", "ranked", "write_html"]

#: Readable column headers (anything else: underscores become spaces).
HEADERS = {"model": "model", "smape": "sMAPE", "mase": "MASE", "owa": "OWA", "mae": "MAE", "rmse": "RMSE",
           "skill": "skill vs seasonal naive (MASE)", "wql": "WQL", "sql": "SQL", "fit_seconds": "fit (s)",
           "predict_seconds": "predict (s)", "fit_predict_seconds": "fit + predict (s)",
           "peak_memory_mb": "peak memory (MB)", "memory_delta_mb": "memory added (MB)", "windows": "windows",
           "fallback_series": "series on fallback", "failed_series": "failed series", "error": "error"}
#: the model the skill column is measured against (the suite's reference too)
REFERENCE = "seasonal_naive"
REFERENCE_LABEL = f"{REFERENCE} (reference)"


def _header(col: str) -> str:
    if col in HEADERS:
        return HEADERS[col]
    for prefix, label in (("coverage_", "coverage {}% interval"), ("msis_", "MSIS {}%")):
        if col.startswith(prefix):
            return label.format(col[len(prefix):])
    return col.replace("_", " ")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if not np.isfinite(v) else f"{v:.4f}"
    return str(v)


def ranked(metrics: pl.DataFrame, reference: pl.DataFrame | None = None) -> pl.DataFrame:
    """Models sorted by OWA (by MASE when no OWA), lower first, with ``skill`` against seasonal naive after ``mase``.

    Parameters
    ----------
    metrics : pl.DataFrame
        One row per model (``BenchResult.metrics``).
    reference : pl.DataFrame, optional
        The reference's row when it was not among the models (``BenchResult.reference``): appended.

    Returns
    -------
    pl.DataFrame
        The rows sorted, ``skill`` after ``mase``: ``1 - mase / mase(seasonal_naive)`` (0: as good as
        it, 1: perfect, negative: worse; null when no seasonal naive row has a MASE). The reference's
        ``model`` reads ``seasonal_naive (reference)``.
    """
    if reference is not None and REFERENCE not in metrics["model"].to_list():
        metrics = pl.concat([metrics, reference.select([c for c in reference.columns if c in metrics.columns])],
                            how="diagonal_relaxed")
    key = "owa" if "owa" in metrics.columns and metrics["owa"].null_count() < metrics.height else "mase"
    ref = metrics.filter(pl.col("model") == REFERENCE)["mase"] if "mase" in metrics.columns else pl.Series([])
    ref_mase = ref.item() if ref.len() == 1 and ref.item() else None
    skill = (1 - pl.col("mase") / ref_mase) if ref_mase else pl.lit(None, dtype=pl.Float64)
    out = metrics.with_columns(skill.alias("skill"), pl.col("model").replace(REFERENCE, REFERENCE_LABEL)).sort(
        key, nulls_last=True)
    cols = list(out.columns)
    cols.remove("skill")
    cols.insert(cols.index("mase") + 1 if "mase" in cols else len(cols), "skill")
    return out.select(cols)


def provenance_rows(provenance: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the run was, as (label, text) rows: dataset, series (and limit), h, windows, levels, date, code, specs."""
    p = dict(provenance)
    if not p:
        return [("provenance", "not recorded (a leaderboard written without the harness's run record)")]
    series = f"{p.get('series')}"
    if p.get("series_limit"):
        series += f" (limited by --series-limit {p['series_limit']}; the dataset has {p.get('series_total')})"
    elif p.get("series_total") is not None:
        series += " (all)"
    levels = ", ".join(f"{lv:g}%" for lv in p.get("levels") or []) or "none"
    ref = ("scored by the harness on every window for the skill column (not among the models asked)"
           if p.get("reference_added") else "among the models asked")
    rows = [("dataset", str(p.get("dataset"))), ("series", series), ("horizon h", str(p.get("h"))),
            ("windows", f"{p.get('windows')} rolling origin(s), {p.get('step_size')} steps apart"),
            ("interval levels", levels), ("season length", str(p.get("season_length"))),
            ("frequency", str(p.get("freq"))), ("date", str(p.get("date"))),
            ("code version", str(p.get("code_version"))),
            ("reference", f"{p.get('reference', REFERENCE)}, season length {p.get('season_length')}: {ref}")]
    rows += [(f"spec: {name}", json.dumps(spec, sort_keys=True)) for name, spec in (p.get("specs") or {}).items()]
    return rows


def _title(metrics: pl.DataFrame, provenance: Mapping[str, Any]) -> str:
    dataset = ", ".join(sorted(set(metrics["dataset"].to_list()))) if "dataset" in metrics.columns else "?"
    if not provenance:
        return f"Leaderboard: {dataset}"
    quick = f", first {provenance['series']} of {provenance.get('series_total')} series (quick run)" \
        if provenance.get("series_limit") else f", {provenance.get('series')} series"
    return f"Leaderboard: {dataset}{quick}, h = {provenance.get('h')}, {provenance.get('windows')} window(s)"


def markdown_table(metrics: pl.DataFrame, provenance: Mapping[str, Any] | None = None,
                   reference: pl.DataFrame | None = None) -> str:
    """The ranked metrics (:func:`ranked`, ``reference`` appended) as a Markdown table, then its title and the
    run's provenance."""
    m = ranked(metrics, reference)
    cols = [c for c in m.columns if c != "dataset"]
    lines = ["| " + " | ".join(_header(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in m.select(cols).iter_rows():
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    lines += ["", f"{_title(metrics, provenance or {})}:", ""]
    lines += [f"- {k}: {v}" for k, v in provenance_rows(provenance or {})]
    return "\n".join(lines) + "\n"


def _plots(m: pl.DataFrame, forecasts: pl.DataFrame, history: pl.DataFrame | None,
           series_metrics: pl.DataFrame | None, n_series: int) -> list[tuple[str, str, str, Any]]:
    """(id, title, alt text, figure) of each plot."""
    from forecasting.reports import new_figure

    models = m["model"].to_list()
    out: list[tuple[str, str, str, Any]] = []
    shown_metrics = [c for c in ("smape", "mase", "owa") if c in m.columns and m[c].null_count() < m.height]
    if not shown_metrics:  # no model scored a series: the table's error column says why, there is nothing to draw
        return out
    fig = new_figure(9, (0.32 * len(models) + 1.2) * len(shown_metrics))
    axes = fig.subplots(len(shown_metrics), 1, squeeze=False)[:, 0]
    for ax, col in zip(axes, shown_metrics, strict=True):
        vals = [v if v is not None else 0.0 for v in m[col].to_list()]
        ax.barh(models[::-1], vals[::-1], color="#4477aa")
        ax.set_xlabel(f"{_header(col)} (lower is better)")
        ax.set_ylabel("model")
        ax.grid(axis="x", alpha=0.3)
    out.append(("accuracy", "Accuracy by model", "Bar charts of " + ", ".join(_header(c) for c in shown_metrics)
                + " by model", fig))

    last = forecasts.filter(pl.col("window") == 0)
    run = [_raw(x) for x in models if _raw(x) in last.columns]  # the models forecast (not a reference scored aside)
    leader = run[0] if run else _raw(models[0])
    picks: list[tuple[str, str]] = []
    if series_metrics is not None and series_metrics.height:
        sm = series_metrics.filter((pl.col("model") == leader) & (pl.col("window") == 0))
        key = "mase" if "mase" in sm.columns and sm["mase"].null_count() < sm.height else "smape"
        sm = sm.filter(pl.col(key).is_not_null()).sort(key)
        if sm.height:
            idx = {"best": 0, "median": sm.height // 2, "worst": sm.height - 1}
            picks = [(str(sm["unique_id"][i]), f"{what} series for {leader} ({_header(key)} {sm[key][i]:.3f})")
                     for what, i in idx.items()]
    if not picks:
        picks = [(u, f"series {u}") for u in last["unique_id"].unique(maintain_order=True).head(n_series).to_list()]
    picks = list(dict(picks).items())
    if picks:
        fig = new_figure(10, 2.9 * len(picks))
        axes = fig.subplots(len(picks), 1, squeeze=False)[:, 0]
        shown = run[:2]
        for ax, (uid, why) in zip(axes, picks, strict=True):
            part = last.filter(pl.col("unique_id") == uid).sort("ds")
            if history is not None:
                hist = history.filter(pl.col("unique_id") == uid).sort("ds")
                ax.plot(hist["ds"].to_list(), hist["y"].to_list(), color="#777777", lw=1, label="history")
            ax.plot(part["ds"].to_list(), part["y"].to_list(), color="black", lw=1.6, label="actual")
            for name in shown:
                ax.plot(part["ds"].to_list(), part[name].to_list(), lw=1.2, label=f"forecast: {name}")
            ax.set_title(f"{why}: {uid}", fontsize=9)
            ax.set_xlabel("ds")
            ax.set_ylabel("y")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="upper left")
        out.append(("forecasts", "Forecast vs actual (window 0)", "Forecast against actual for the best, median "
                    f"and worst series of {leader}", fig))

    key = "owa" if "owa" in shown_metrics else "mase"
    fig = new_figure(8, 4.8)
    ax = fig.add_subplot()
    for name, x, y in zip(models, m["fit_predict_seconds"].to_list(), m[key].to_list(), strict=True):
        if y is not None and x is not None:
            ax.scatter(max(x, 1e-3), y, s=30, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("fit + predict seconds (all windows, log scale)")
    ax.set_ylabel(f"{_header(key)} (lower is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    out.append(("time", "Accuracy against time", f"{_header(key)} against fit + predict seconds per model", fig))
    return out


def _raw(model: str) -> str:
    return REFERENCE if model == REFERENCE_LABEL else model


def write_html(metrics: pl.DataFrame, path: str | Path, *, forecasts: pl.DataFrame,
               history: pl.DataFrame | None = None, notes: Sequence[str] = (), n_series: int = 3,
               provenance: Mapping[str, Any] | None = None, series_metrics: pl.DataFrame | None = None,
               reference: pl.DataFrame | None = None) -> Path:
    """Write the HTML leaderboard (provenance, ranked table, plots; no external resources) to ``path``.

    Parameters
    ----------
    metrics : pl.DataFrame
        One row per model: ``dataset, model, smape, mase, owa, ..., fit_predict_seconds``
        (``BenchResult.metrics``).
    path : path
        The HTML file written.
    forecasts : pl.DataFrame
        ``unique_id, ds, window, cutoff, y, <model>...`` (``BenchResult.forecasts``).
    history : pl.DataFrame, optional
        ``unique_id, ds, y`` before window 0, drawn before the forecasts.
    notes : sequence of str
        Listed at the end.
    n_series : int, default 3
        Series plotted when ``series_metrics`` cannot say which are best, median and worst.
    provenance : mapping, optional
        ``BenchResult.provenance`` (see :func:`provenance_rows`).
    series_metrics : pl.DataFrame, optional
        ``BenchResult.series_metrics``: picks the best, median and worst series of the leading model.
    reference : pl.DataFrame, optional
        ``BenchResult.reference``: the reference's row when it was not among the models.

    Returns
    -------
    Path
        ``path``.
    """
    from forecasting.reports import figure_context, render

    m = ranked(metrics, reference)
    cols = [c for c in m.columns if c != "dataset"]
    rows = [{"reference": row["model"] == REFERENCE_LABEL,
             "cells": [{"text": _fmt(row[c]), "num": isinstance(row[c], (int, float))} for c in cols]}
            for row in m.select(cols).iter_rows(named=True)]
    sections: list[tuple[str, str, dict[str, Any]]] = [("metrics", "Metrics", {
        "key": "OWA" if "owa" in m.columns and m["owa"].null_count() < m.height else "MASE",
        "reference": REFERENCE_LABEL, "headers": [_header(c) for c in cols], "rows": rows})]
    all_notes = list(notes)
    for pid, title, alt, fig in _plots(m, forecasts, history, series_metrics, n_series):
        figure = figure_context(fig, pid=f"plot-{pid}", alt=alt)
        if figure["overlaps"]:
            all_notes.append(f"plot '{title}': {len(figure['overlaps'])} overlapping labels, e.g. {figure['overlaps'][0]}")
        sections.append((pid, title, {"figure": figure}))
    page = render("leaderboard.html.j2", title=_title(metrics, provenance or {}),
                  subtitle="written by forecasting.benchmarks.leaderboard", sections=sections, notes=all_notes,
                  provenance=provenance_rows(provenance or {}))
    out = Path(path)
    out.write_text(page)
    return out
