"""Anomaly detection on M4 Hourly with injected anomalies: precision and recall.

Each series of the M4 Hourly training set (the first ``--series`` of them) gets, at random positions after
its first two days and apart from each other:

* **spikes** -- one point moved by ``k`` scale units, ``k`` in ``--spike-sizes`` (default 3, 5 and 8), the sign
  random; the *scale* is the series' MASE scale (mean absolute seasonal difference at lag 24);
* one **level shift** -- every point from ``t`` on moved by 5 scale units;
* one **dropped seasonality** -- 24 points replaced by their mean (the daily cycle removed for a day).

:func:`forecasting.service.monitoring.detect_anomalies` then flags points outside the in-sample interval at
``--level``. An event is *found* when a flagged point lies in its region (a spike: its point; a level shift:
its first 24 points; dropped seasonality: its 24 points). Recall is per kind (spikes per size); precision is
the share of flagged points that lie in some region (a seasonal model's echo of a spike one season later
counts against it).

Run::

    python -m forecasting.benchmarks.anomalies_m4 --series 50
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
import polars as pl
import typer

app = typer.Typer(add_completion=False, help=__doc__)

SEASON = 24


@dataclass(frozen=True)
class Event:
    """One injected anomaly: its kind, size (scale units; 0 for dropped seasonality), series and region."""

    kind: str
    size: float
    unique_id: str
    start: int
    end: int  # inclusive, in ds


def inject(frame: pl.DataFrame, *, spike_sizes: tuple[float, ...] = (3.0, 5.0, 8.0), shift_size: float = 5.0,
           seed: int = 0) -> tuple[pl.DataFrame, list[Event]]:
    """The panel with anomalies injected per series, and the events (see the module docstring).

    Parameters
    ----------
    frame : pl.DataFrame
        ``unique_id, ds, y`` with integer ``ds`` (M4 Hourly: 1..n per series), sorted.
    spike_sizes : sizes in scale units, one spike each
    shift_size : float
        The level shift, in scale units.
    seed : int

    Returns
    -------
    (pl.DataFrame, list of Event)
    """
    rng = np.random.default_rng(seed)
    parts, events = [], []
    for (uid,), part in frame.group_by("unique_id", maintain_order=True):
        y = part["y"].to_numpy().astype(np.float64).copy()
        ds = part["ds"].to_numpy()
        n = y.size
        scale = float(np.mean(np.abs(y[SEASON:] - y[:-SEASON])))
        # non-overlapping slots of 3 days after the first two days, one per event, in random order
        slots = rng.permutation(np.arange(2 * SEASON, n - 3 * SEASON, 3 * SEASON))
        k = 0
        for size in spike_sizes:
            t = int(slots[k] + rng.integers(0, SEASON))
            k += 1
            y[t] += rng.choice([-1.0, 1.0]) * size * scale
            events.append(Event("spike", size, str(uid), int(ds[t]), int(ds[t])))
        t = int(slots[k]) + int(rng.integers(0, SEASON))
        k += 1
        y[t:] += rng.choice([-1.0, 1.0]) * shift_size * scale
        events.append(Event("level_shift", shift_size, str(uid), int(ds[t]), int(ds[min(t + SEASON - 1, n - 1)])))
        t = int(slots[k])
        y[t:t + SEASON] = y[t:t + SEASON].mean()
        events.append(Event("dropped_seasonality", 0.0, str(uid), int(ds[t]), int(ds[t + SEASON - 1])))
        parts.append(part.with_columns(pl.Series("y", y)))
    return pl.concat(parts), events


def score(flags: pl.DataFrame, events: list[Event]) -> dict[str, Any]:
    """Recall per kind (spikes per size) and point precision of ``flags`` (``unique_id, ds`` flagged)."""
    regions = pl.DataFrame([{"unique_id": e.unique_id, "start": e.start, "end": e.end, "event": i}
                            for i, e in enumerate(events)])
    hits = (flags.join(regions, on="unique_id").filter(pl.col("ds").is_between("start", "end")))
    found = set(hits["event"].to_list())
    in_region = hits.select("unique_id", "ds").unique().height
    out: dict[str, Any] = {"flagged": flags.height,
                           "precision": in_region / flags.height if flags.height else None}
    kinds = sorted({(e.kind, e.size) for e in events})
    for kind, size in kinds:
        ids = [i for i, e in enumerate(events) if e.kind == kind and e.size == size]
        key = f"recall_{kind}" + (f"_{size:g}" if kind == "spike" else "")
        out[key] = sum(i in found for i in ids) / len(ids)
    return out


def run(n_series: int, *, model: Any, level: float, method: str, seed: int = 0,
        data_dir: str | None = None) -> dict[str, Any]:
    """Inject, detect, score; returns the figures (and the time taken)."""
    from forecasting.datasets import load_m4_hourly
    from forecasting.service.monitoring import detect_anomalies

    train, _ = load_m4_hourly(data_dir=data_dir, download=data_dir is None)
    ids = train["unique_id"].unique(maintain_order=True).to_list()[:n_series]
    frame, events = inject(train.filter(pl.col("unique_id").is_in(ids)), seed=seed)
    start = time.perf_counter()
    result = detect_anomalies(frame, model=model, level=level, method=method, freq=1)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    flags = result.points.filter(pl.col("anomaly")).select("unique_id", "ds")
    return {"series": len(ids), "model": result.model, "level": level, "method": method,
            "seconds": round(seconds, 2), **score(flags, events)}


@app.command()
def main(
    series: Annotated[int, typer.Option(help="First N series of M4 Hourly.")] = 50,
    model: Annotated[str, typer.Option(help="Registry name or JSON spec.")] =
    '{"name": "mstl", "params": {"season_length": 24}}',
    level: Annotated[list[float] | None, typer.Option(help="Levels (repeat).")] = None,
    method: Annotated[list[str] | None, typer.Option(help="conformal and/or normal (repeat).")] = None,
    seed: int = 0,
) -> None:
    """Print one JSON line of precision and recall per (method, level)."""
    spec = json.loads(model) if model.strip().startswith("{") else model
    for m in method or ["conformal", "normal"]:
        for lv in level or [99.0]:
            print(json.dumps(run(series, model=spec, level=lv, method=m, seed=seed)))


if __name__ == "__main__":
    app()
