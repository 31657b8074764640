"""``auto``'s candidates on a catalogue dataset, stored once and replayed offline: validation and test forecasts.

``auto`` (:mod:`forecasting.models.auto`) validates each candidate on rolling origins, trims those far from the
best and combines the rest greedily. Trying another rule on a real dataset that way costs a whole search. This
script stores what every rule needs, once, and replays the rules in seconds:

``collect`` builds the search's candidate pool, windows and truth exactly as ``auto`` does (its own
``_seasons``, ``_pool``, ``_windows``, ``_scale``), then for each candidate stores

- ``refit``: its forecasts of every validation window, fitted on each window's training part;
- ``onefit`` (global models): fitted once on the earliest window's training part, each later window forecast
  from its own history (``predict(h, history=...)``: what ``auto`` does since issue 13, stop 24);
- ``test``: fitted on the whole training part, forecasting the dataset's test part;
- ``test_onefit`` (global models): the ``onefit`` model forecasting the test part from the whole training part's
  history, without a final refit;

with the CPU seconds of each (``time.process_time``, so a loaded machine's figures stay comparable) into a
folder (``train.parquet``, ``test.parquet`` and ``run.json``, the arrays as lists: no pickle, so a folder from
elsewhere is only ever parsed). ``--skip-refit`` leaves out the per-window
fits of global models (their ``onefit`` is what ``auto`` uses), ``--only`` names candidates by label.

``replay`` merges one or more such files and prints each candidate's validation OWA (``auto``'s default metric;
MASE for a folder collected before it) (refit / onefit), its
test sMAPE, MASE and OWA (against Naive2, as the harness: :func:`forecasting.evaluation.evaluate`), then the
trimmed greedy combination (``_TRIM_FACTOR``, :func:`forecasting.models.auto.greedy_weights`, 25 rounds) learnt
on each kind of validation forecast, scored on the test part.

Run::

    python -m forecasting.benchmarks.auto_candidates collect m4_hourly /tmp/m4h
    python -m forecasting.benchmarks.auto_candidates replay /tmp/m4h
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import polars as pl
import typer

app = typer.Typer(add_completion=False, help=__doc__)


def _point(model: Any, h: int, history: Any = None) -> np.ndarray:
    """A fitted model's point forecast, rows sorted by ``unique_id, ds``."""
    out = model.predict(h) if history is None else model.predict(h, history=history)
    return out.sort("unique_id", "ds")[model.alias].to_numpy().astype(float)


@app.command()
def collect(
    dataset: Annotated[str, typer.Argument(help="Catalogue dataset (its test part is the last h points).")],
    output: Annotated[Path, typer.Argument(help="Folder written after each candidate.")],
    series_limit: Annotated[int | None, typer.Option(help="First N series.")] = None,
    only: Annotated[str | None, typer.Option(help="Comma-separated candidate labels.")] = None,
    skip_refit: Annotated[bool, typer.Option(help="No per-window fits of global models.")] = False,
    deep: Annotated[bool, typer.Option(help="Include NHITS in the pool.")] = True,
) -> None:
    """Store every candidate's validation and test forecasts (module docstring)."""
    from forecasting.benchmarks.harness import load_bench_data
    from forecasting.data import validate_panel
    from forecasting.errors import ForecastingError
    from forecasting.models.global_base import GlobalForecaster
    from forecasting.models.registry import ModelSpec, make_model

    bench = load_bench_data(dataset, series_limit=series_limit)
    h = bench.h
    full = bench.data.sort("unique_id", "ds")
    position = pl.int_range(pl.len()).over("unique_id")
    train = full.filter(position < pl.len().over("unique_id") - h)
    test = full.filter(position >= pl.len().over("unique_id") - h)
    panel = validate_panel(train, freq=bench.freq)
    auto: Any = make_model(ModelSpec(name="auto", params={"deep": deep, "horizon": h}), freq=panel.freq, n_jobs=1)
    auto.notes_ = []
    auto.metric_ = auto._metric(panel)
    seasons, _ = auto._seasons(panel)
    m = seasons[0]
    candidates, _ = auto._pool(panel, seasons, h)
    windows, ids = auto._windows(panel, h, m)
    trains = [w.train_panel(panel, ids) for w in windows]
    truth = auto._truth(windows, ids, h, m)  # the OWA reference too (auto's default metric)
    truth = {k: truth[k] for k in ("actual", "scale", "ref")}  # arrays of numbers only (stored as JSON lists)
    naive2 = make_model(ModelSpec(name="naive2", params={"season_length": m}), freq=panel.freq).fit(panel)
    result: dict[str, Any] = {"dataset": dataset, "h": h, "m": m, "truth": truth, "train": train,
                              "test": test, "naive2": _point(naive2, h), "candidates": {}}
    wanted = None if only is None else {s.strip() for s in only.split(",")}
    for c in candidates:
        if wanted is not None and c.label not in wanted:
            continue
        rec: dict[str, Any] = {}
        try:
            rec["global"] = isinstance(make_model(c.spec, freq=panel.freq), GlobalForecaster)
            if not (skip_refit and rec["global"]):
                t0 = time.process_time()
                rec["refit"] = [_point(make_model(c.spec, freq=panel.freq, n_jobs=1).fit(tr), h) for tr in trains]
                rec["refit_cpu"] = time.process_time() - t0
            if rec["global"]:
                t0 = time.process_time()
                once = make_model(c.spec, freq=panel.freq, n_jobs=1).fit(trains[-1])
                rec["onefit"] = [_point(once, h, None if k == len(trains) - 1 else tr) for k, tr in enumerate(trains)]
                rec["onefit_cpu"] = time.process_time() - t0
                rec["test_onefit"] = _point(once, h, panel)  # no final refit: the earliest fit, whole history
            t0 = time.process_time()
            rec["test"] = _point(make_model(c.spec, freq=panel.freq, n_jobs=1).fit(panel), h)
            rec["test_cpu"] = time.process_time() - t0
        except ForecastingError as exc:  # a candidate that fails is a row of the replay, never the end of the run
            rec["error"] = repr(exc)[:500]
        result["candidates"][c.label] = rec
        _save(result, output)
        print(c.label, {k: round(v, 1) for k, v in rec.items() if k.endswith("_cpu")}, rec.get("error", ""),
              flush=True)


def _save(result: dict[str, Any], folder: Path) -> None:
    """``result`` as ``train.parquet``, ``test.parquet`` and ``run.json`` (numpy arrays as ``{"array": [...]}``)."""
    folder.mkdir(parents=True, exist_ok=True)
    result["train"].write_parquet(folder / "train.parquet")
    result["test"].write_parquet(folder / "test.parquet")
    rest = {k: v for k, v in result.items() if k not in ("train", "test")}
    text = json.dumps(rest, default=lambda a: {"array": np.asarray(a, dtype=float).tolist()})
    (folder / "run.json").write_text(text)


def _load(folder: Path) -> dict[str, Any]:
    """What :func:`_save` wrote (parsed, never unpickled)."""
    def arrays(obj: dict[str, Any]) -> Any:
        return np.asarray(obj["array"], dtype=float) if set(obj) == {"array"} else obj

    result: dict[str, Any] = json.loads((folder / "run.json").read_text(), object_hook=arrays)
    result["train"] = pl.read_parquet(folder / "train.parquet")
    result["test"] = pl.read_parquet(folder / "test.parquet")
    return result


@app.command()
def replay(files: Annotated[list[Path], typer.Argument(help="Folders written by collect (merged).")]) -> None:
    """Print each candidate's validation and test scores and the trimmed greedy combination's (module docstring)."""
    from forecasting.evaluation import evaluate
    from forecasting.models.auto import _TRIM_FACTOR, _loss, _reference_rows, greedy_weights

    runs = [_load(f) for f in files]
    base = runs[0]
    cands = {k: v for r in runs for k, v in r["candidates"].items() if "test" in v}
    actual, scale = np.concatenate(base["truth"]["actual"]), np.concatenate(base["truth"]["scale"])
    ref = _reference_rows(base["truth"])  # None for a folder collected before the OWA metric: MASE
    test = base["test"].select("unique_id", "ds", "y")
    frame = test.with_columns([pl.Series(k, c["test"]) for k, c in cands.items()] + [pl.Series("naive2", base["naive2"])])

    def scores(fr: pl.DataFrame, names: list[str]) -> pl.DataFrame:
        return evaluate(fr, test, base["train"], models=names, season_length=base["m"], naive2_column="naive2",
                        unscaled="null")

    table = scores(frame, list(cands))
    for k, c in cands.items():
        row = table.filter(pl.col("model") == k).row(0, named=True)
        val = {mode: round(_loss(actual, np.concatenate(c[mode]), scale, ref), 4) for mode in ("refit", "onefit")
               if mode in c}
        print(f"{k:26s} validation {'OWA' if ref is not None else 'MASE'} {val}  test sMAPE {row['smape']:.3f} MASE {row['mase']:.3f} "
              f"OWA {row['owa']:.4f}  CPU s {({x: round(c[x]) for x in c if x.endswith('_cpu')})}")
    for mode in ("refit", "onefit"):
        names = list(cands)
        F = np.stack([np.concatenate(cands[k].get(mode) or cands[k].get("refit") or cands[k]["onefit"]) for k in names])
        errors = np.array([_loss(actual, f, scale, ref) for f in F])
        keep = errors <= _TRIM_FACTOR * errors.min()
        w = np.zeros(len(names))
        w[keep] = greedy_weights(F[keep], actual, scale, size=25, ref=ref)
        combined = np.sum([w[i] * cands[k]["test"] for i, k in enumerate(names)], axis=0)
        row = scores(frame.with_columns(pl.Series("combined", combined)), ["combined"]).row(0, named=True)
        members = ", ".join(f"{k} {w[i]:.2f}" for i, k in enumerate(names) if w[i] > 0)
        print(f"greedy on {mode} validation: {members}; validation {'OWA' if ref is not None else 'MASE'} "
              f"{_loss(actual, w @ F, scale, ref):.4f}; test sMAPE "
              f"{row['smape']:.3f} MASE {row['mase']:.3f} OWA {row['owa']:.4f}")


if __name__ == "__main__":
    app()
