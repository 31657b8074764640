"""Leaderboards of a benchmark run: a Markdown table and a self-contained HTML page.

The HTML page needs no network: its plots are matplotlib PNGs embedded as base64
``data:`` URIs and its style is inline. Plots: one bar chart per metric (sMAPE, MASE,
OWA) by model, forecasts against actuals for a few series of the last window, and
accuracy against fit + predict time.

The functions take the harness's frames (``metrics``, ``forecasts``, ``history``), not its
result type, so this module does not import the harness.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

__all__ = ["markdown_table", "write_html"]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _ranked(metrics: pl.DataFrame) -> pl.DataFrame:
    key = "owa" if metrics["owa"].null_count() < metrics.height else "mase"
    return metrics.sort(key, nulls_last=True)


def markdown_table(metrics: pl.DataFrame) -> str:
    """Models ranked by OWA (by MASE when OWA is not available), every column but ``dataset``."""
    m = _ranked(metrics)
    cols = [c for c in m.columns if c != "dataset"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in m.select(cols).iter_rows():
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(metrics: pl.DataFrame, forecasts: pl.DataFrame, history: pl.DataFrame | None,
           n_series: int) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    m = _ranked(metrics)
    models = m["model"].to_list()
    out: list[tuple[str, str]] = []
    shown_metrics = [c for c in ("smape", "mase", "owa") if m[c].null_count() < m.height]
    fig, axes = plt.subplots(1, len(shown_metrics), figsize=(4.2 * len(shown_metrics), 0.35 * len(models) + 1.6),
                             squeeze=False)
    for ax, col in zip(axes[0], shown_metrics, strict=True):
        vals = [v if v is not None else 0.0 for v in m[col].to_list()]
        ax.barh(models[::-1], vals[::-1], color="#4477aa")
        ax.set_title(col.upper() if col != "smape" else "sMAPE")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Accuracy by model (lower is better)")
    out.append(("Accuracy by model", _png(fig)))

    last = forecasts.filter(pl.col("window") == 0)
    ids = last["unique_id"].unique(maintain_order=True).head(n_series).to_list()
    if ids:
        fig, axes = plt.subplots(len(ids), 1, figsize=(10, 2.6 * len(ids)), squeeze=False)
        shown = models[: min(4, len(models))]
        for ax, uid in zip(axes[:, 0], ids, strict=True):
            part = last.filter(pl.col("unique_id") == uid).sort("ds")
            if history is not None:
                hist = history.filter(pl.col("unique_id") == uid).sort("ds")
                ax.plot(hist["ds"].to_list(), hist["y"].to_list(), color="#333333", lw=1, label="history")
            ax.plot(part["ds"].to_list(), part["y"].to_list(), color="black", lw=1.6, label="actual")
            for name in shown:
                if name in part.columns:
                    ax.plot(part["ds"].to_list(), part[name].to_list(), lw=1.2, label=name)
            ax.set_title(f"series {uid}", fontsize=10)
            ax.grid(alpha=0.3)
        axes[0, 0].legend(fontsize=8, ncol=min(6, len(shown) + 2))
        fig.suptitle("Forecast vs actual (last window, best models)")
        out.append(("Forecast vs actual", _png(fig)))

    key = "owa" if "owa" in shown_metrics else "mase"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    secs = m["fit_predict_seconds"].to_list()
    acc = m[key].to_list()
    for name, x, y in zip(models, secs, acc, strict=True):
        if y is None:
            continue
        ax.scatter(max(x, 1e-3), y, color="#cc6677")
        ax.annotate(name, (max(x, 1e-3), y), fontsize=8, xytext=(4, 2), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("fit + predict seconds (all windows, log scale)")
    ax.set_ylabel(key.upper())
    ax.set_title("Time vs accuracy")
    ax.grid(alpha=0.3)
    out.append(("Time vs accuracy", _png(fig)))
    return out


def write_html(metrics: pl.DataFrame, path: str | Path, *, forecasts: pl.DataFrame,
               history: pl.DataFrame | None = None, notes: Sequence[str] = (), n_series: int = 3) -> Path:
    """Write the HTML leaderboard (table + plots, no external resources) to ``path``.

    Parameters
    ----------
    metrics : pl.DataFrame
        One row per model: ``dataset, model, smape, mase, owa, ..., fit_predict_seconds``
        (``BenchResult.metrics``).
    path : path
        The HTML file written.
    forecasts : pl.DataFrame
        ``unique_id, ds, window, cutoff, y, <model>...`` (``BenchResult.forecasts``); the
        first ``n_series`` series of window 0 are plotted.
    history : pl.DataFrame, optional
        ``unique_id, ds, y`` before window 0, drawn before the forecasts.
    notes : sequence of str
        Listed under the table.
    n_series : int, default 3
        Series plotted.

    Returns
    -------
    Path
        ``path``.
    """
    m = _ranked(metrics)
    dataset = ", ".join(sorted(set(m["dataset"].to_list())))
    cols = [c for c in m.columns if c != "dataset"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
                   for row in m.select(cols).iter_rows())
    figures = "".join(f"<h2>{html.escape(title)}</h2><img alt=\"{html.escape(title)}\" src=\"{uri}\">"
                      for title, uri in _plots(metrics, forecasts, history, n_series))
    listed = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Leaderboard: {html.escape(dataset)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
img{{max-width:100%}}</style></head><body>
<h1>Leaderboard: {html.escape(dataset)}</h1>
<p>Ranked by OWA (MASE when Naive2 does not apply); lower is better. Seconds are summed over windows,
memory is the peak resident size of the process that ran the task.</p>
<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>
{f"<ul>{listed}</ul>" if listed else ""}
{figures}
</body></html>
"""
    out = Path(path)
    out.write_text(page)
    return out
