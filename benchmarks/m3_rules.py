"""Combination rules for ``auto`` replayed on stored candidate forecasts (validation windows and the test split).

``auto`` (:mod:`forecasting.models.auto`) scores its candidates on rolling-origin validation windows and combines
them (trimmed pool, then greedy ensemble selection). Trying another rule (median or mean of the trimmed pool,
sMAPE instead of MASE, another trimming factor, more or overlapping windows, extra candidates) on the full search
costs a whole run per rule; here every candidate is fitted once per window and once on the full training part,
its forecasts are stored, and any rule is replayed in seconds.

Two steps::

    python -m forecasting.benchmarks.m3_rules rebuild --dataset m3_quarterly --out DIR [--candidates ...]
    python -m forecasting.benchmarks.m3_rules replay --out DIR [--windows 0,8,16 --windows 0,4,8,12,16]

``rebuild`` writes ``DIR/truth.npz`` (per validation offset ``o``: the ids, actuals and MASE scales of the series
with at least ``o + h + max(2m, 8)`` training points, as ``auto``'s windows keep; the test split's) and one
``DIR/<label>.npz`` per candidate (its point forecasts per offset and on the test split). The window of offset
``o`` ends ``o`` steps before the training part's end; ``auto``'s default three windows ``h`` apart are the
offsets ``0, h, 2h``. Candidates are fitted per window (global models too: ``auto`` validates those from one
fit on the earliest window since d111488, so their validation scores here are a little better than in ``auto``).

``replay`` learns each rule on the chosen windows (the series long enough for all of them, as ``auto``) and
prints, per rule, the leave-one-window-out validation error (learnt on the other windows, scored on the one left
out, mean over windows; MASE and sMAPE) and the test split's sMAPE and MASE. A rule is to be chosen by its
validation error only; the test figures are there to report, never to choose.

Measured (2026-12-02, 2 cores shared, load 9-21; the stored figures reproduce ``auto``'s own: candidates'
validation MASE to 6 decimals, the greedy combination's test sMAPE 9.086 as ``forecasting bench`` with every
candidate finished). M3 Quarterly, the default pool (global models validated from one fit, as ``auto``),
windows 0/8/16: leave-one-window-out MASE greedy 1.2449, mean 1.2446, median 1.2304; test sMAPE 9.086, 9.002,
8.973 (Theta, the competition's best: 8.96). Adding one member lowers the median's test sMAPE to 8.944-8.949
(naive2, AutoTheta STM or damped AutoETS) but not its validation error (1.2395, 1.2414, 1.2298): not a rule
the validation supports. M3 Other, windows 0/8/16: greedy 2.0825, mean 2.1361, median 2.1792; test 4.201,
4.285, 4.384.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

#: candidates beside ``auto``'s default pool (registry specs), by label
EXTRA: dict[str, dict[str, Any]] = {
    "naive2": {"name": "naive2"},
    "theta_stm": {"name": "auto_theta", "params": {"model": "STM"}},
    "theta_otm": {"name": "auto_theta", "params": {"model": "OTM"}},
    "theta_dstm": {"name": "auto_theta", "params": {"model": "DSTM"}},
    "theta_dotm": {"name": "auto_theta", "params": {"model": "DOTM"}},
    "ets_damped": {"name": "auto_ets", "params": {"damped": True}},
}
RULES = ("greedy", "mean", "median", "best")


def rebuild(dataset: str, out: Path, labels: Sequence[str] | None = None, offsets: Sequence[int] = (0, 8, 16, 24),
            ) -> dict[str, float]:
    """Fit each candidate on every validation window and on the full training part; store the forecasts.

    Parameters
    ----------
    dataset : str
        Catalogue name (``m3_quarterly``...); the test split is the last ``h`` points of each series.
    out : Path
        Folder for ``truth.npz`` and ``<label>.npz`` (created).
    labels : sequence of str, optional
        Candidates: ``auto``'s default pool for the data (:func:`forecasting.models.auto.candidate_pool`, by
        registry name) and/or labels of :data:`EXTRA`. Default: the default pool.
    offsets : sequence of int
        Validation offsets (steps between a window's end and the training part's end).

    Returns
    -------
    dict
        CPU seconds per candidate (all its fits).

    Raises
    ------
    KeyError
        A label that is neither in the default pool nor in :data:`EXTRA`.
    """
    from forecasting.backtest import Window
    from forecasting.benchmarks.harness import load_bench_data
    from forecasting.data import validate_panel
    from forecasting.models.auto import candidate_pool
    from forecasting.models.combination import member_forecast
    from forecasting.models.registry import ModelSpec, make_model, resolve_spec

    out.mkdir(parents=True, exist_ok=True)
    bench = load_bench_data(dataset)
    h, m = bench.h, bench.season_length
    split = Window(window=0, offset=h, h=h, frame=bench.data)
    panel = validate_panel(split.train, freq=bench.calendar_freq)
    test = split.test.sort("unique_id", "ds")
    default, _ = candidate_pool(panel, [m], deep=False)
    specs: dict[str, dict[str, Any]] = {s.name: {"name": s.name, "params": s.params} for s in default}
    specs.update(EXTRA)
    need = max(2 * m if m > 1 else 0, 8)
    truth: dict[str, Any] = {"test_ids": test["unique_id"].to_numpy().astype(str),
                             "test_y": test["y"].to_numpy().astype(float),
                             "test_scale": _mase_scale(panel.frame, test, m),
                             "default": json.dumps([s.name for s in default]), "offsets": np.asarray(offsets)}
    for o in offsets:
        ids = [u for u, n in panel.lengths.items() if n >= o + h + need]
        w = Window(window=0, offset=o + h, h=h, frame=panel.frame)
        part = w.test.filter(pl.col("unique_id").is_in(ids)).sort("unique_id", "ds")
        truth[f"ids_{o}"] = part["unique_id"].to_numpy().astype(str)
        truth[f"y_{o}"] = part["y"].to_numpy().astype(float)
        truth[f"scale_{o}"] = _mase_scale(w.train.filter(pl.col("unique_id").is_in(ids)), part, m)
    np.savez(out / "truth.npz", **truth)
    cpu: dict[str, float] = {}
    for label in labels or list(specs):
        resolved, _ = resolve_spec(specs[label], freq=panel.freq, season_length=m)
        spec = ModelSpec(name=resolved.name, params=resolved.params,
                         fallback=resolved.fallback or (None if resolved.name == "naive" else "naive"))
        rec: dict[str, Any] = {"spec": json.dumps({"name": spec.name, "params": spec.params})}
        c0 = time.process_time()
        for key in [*(str(o) for o in offsets), "test"]:
            train = panel
            if key != "test":
                ids = [u for u, n in panel.lengths.items() if n >= int(key) + h + need]
                train = Window(window=0, offset=int(key) + h, h=h, frame=panel.frame).train_panel(panel, ids)
            model = make_model(spec, freq=panel.freq, n_jobs=1)
            fc = member_forecast(model.fit(train), h, ()).sort("unique_id", "ds")
            rec[f"f_{key}"] = fc[model.alias].to_numpy().astype(float)
        cpu[label] = time.process_time() - c0
        np.savez(out / f"{label}.npz", **rec)
        print(json.dumps({"candidate": label, "cpu_seconds": round(cpu[label], 1)}), flush=True)
    return cpu


def _mase_scale(train: pl.DataFrame, test: pl.DataFrame, m: int) -> np.ndarray:
    """Per test row: its series' in-sample seasonal-naive MAE (lag ``m`` where the series is longer than ``m``,
    else 1; the mean absolute value, then 1, where that is 0), as ``auto`` scales its validation errors."""
    lag = pl.when(pl.len().over("unique_id") > m).then(m).otherwise(1) if m > 1 else pl.lit(1)
    per = train.with_columns(lag.alias("_lag")).group_by("unique_id", maintain_order=True).agg(
        (pl.col("y") - pl.col("y").shift(pl.col("_lag").first())).abs().mean().alias("s"),
        pl.col("y").abs().mean().alias("a"))
    scale = {u: (s if s is not None and s > 0 else (a if a and a > 0 else 1.0)) for u, s, a in per.iter_rows()}
    return np.array([scale[u] for u in test["unique_id"].to_list()], dtype=float)


class Stored:
    """The forecasts :func:`rebuild` wrote to ``root``.

    Raises
    ------
    FileNotFoundError
        No ``truth.npz`` in ``root``.
    """

    def __init__(self, root: Path) -> None:
        self.truth = dict(np.load(root / "truth.npz"))
        self.default: list[str] = json.loads(str(self.truth["default"]))
        self.forecasts = {p.stem: dict(np.load(p)) for p in sorted(root.glob("*.npz")) if p.stem != "truth"}

    def validation(self, labels: Sequence[str], offsets: Sequence[int]) -> tuple[np.ndarray, ...]:
        """``F (k, n), actual (n,), scale (n,), window index (n,)`` over ``offsets``, on the series long enough
        for all of them (``auto``'s rule)."""
        keep = None
        for o in offsets:
            u = np.unique(self.truth[f"ids_{o}"])
            keep = u if keep is None else np.intersect1d(keep, u)
        assert keep is not None, "no validation offsets"
        F, a, s, win = [], [], [], []
        for i, o in enumerate(offsets):
            rows = np.isin(self.truth[f"ids_{o}"], keep)
            F.append(np.stack([self.forecasts[lab][f"f_{o}"][rows] for lab in labels]))
            a.append(self.truth[f"y_{o}"][rows])
            s.append(self.truth[f"scale_{o}"][rows])
            win.append(np.full(int(rows.sum()), i))
        return np.concatenate(F, axis=1), np.concatenate(a), np.concatenate(s), np.concatenate(win)

    def test(self, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``F (k, n), actual (n,), scale (n,)`` of the test split."""
        F = np.stack([self.forecasts[lab]["f_test"] for lab in labels])
        return F, self.truth["test_y"], self.truth["test_scale"]


def errors(actual: np.ndarray, F: np.ndarray, scale: np.ndarray, metric: str) -> np.ndarray:
    """Per row of ``F`` (k, n): MASE (``actual``'s rows scaled by ``scale``) or sMAPE (0-200, M4's; 0 where
    ``actual`` and the forecast are both 0)."""
    err = np.abs(actual[None, :] - F)
    if metric == "smape":
        den = np.abs(actual)[None, :] + np.abs(F)
        return np.where(den > 0, 200.0 * err / np.where(den > 0, den, 1.0), 0.0).mean(axis=1)
    return (err / scale[None, :]).mean(axis=1)


def learn(F: np.ndarray, actual: np.ndarray, scale: np.ndarray, rule: str, metric: str, trim: float) -> np.ndarray:
    """The members' weights (k,) that ``rule`` learns from validation rows.

    The pool is first trimmed to the candidates within ``trim`` times the best validation error (``auto``'s
    ``_TRIM_FACTOR``); then ``greedy``: :func:`forecasting.models.auto.greedy_weights` (25 rounds); ``mean`` and
    ``median``: equal weights over the trimmed pool (``median`` is applied as the median of the members with a
    weight, :func:`combine`); ``best``: the best candidate alone.
    """
    from forecasting.models.auto import greedy_weights

    score = errors(actual, F, scale, metric)
    keep = score <= trim * score.min()
    w = np.zeros(F.shape[0])
    if rule == "greedy":
        w[keep] = greedy_weights(F[keep], actual, scale if metric == "mase" else np.full(actual.size, np.nan),
                                 size=25)
    elif rule in ("mean", "median"):
        w[keep] = 1.0 / keep.sum()
    else:
        w[int(np.argmin(score))] = 1.0
    return w


def combine(F: np.ndarray, w: np.ndarray, rule: str) -> np.ndarray:
    """The combined forecast (n,): the median of the members with a weight (``median``), else ``w @ F``."""
    return np.median(F[w > 0], axis=0) if rule == "median" else w @ F


def replay(stored: Stored, labels: Sequence[str], offsets: Sequence[int], *, rule: str = "greedy",
           metric: str = "mase", trim: float = 1.25) -> dict[str, Any]:
    """One rule learnt on the windows ``offsets``: its leave-one-window-out validation errors and its test scores.

    Returns
    -------
    dict
        ``lowo_mase``, ``lowo_smape`` (nan with one window), ``test_mase``, ``test_smape`` (forecasts clipped at 0
        as ``auto`` clips non-negative data), ``weights`` (label -> weight learnt on all the windows).
    """
    F, a, s, win = stored.validation(labels, offsets)
    lowo_mase, lowo_smape = [], []
    for k in range(len(offsets) if len(offsets) > 1 else 0):
        fit, held = win != k, win == k
        f = combine(F[:, held], learn(F[:, fit], a[fit], s[fit], rule, metric, trim), rule)
        lowo_mase.append(float(errors(a[held], f[None, :], s[held], "mase")[0]))
        lowo_smape.append(float(errors(a[held], f[None, :], s[held], "smape")[0]))
    w = learn(F, a, s, rule, metric, trim)
    Ft, at, st = stored.test(labels)
    ft = np.maximum(combine(Ft, w, rule), 0.0)
    nan = float("nan")
    return {"lowo_mase": float(np.mean(lowo_mase)) if lowo_mase else nan,
            "lowo_smape": float(np.mean(lowo_smape)) if lowo_smape else nan,
            "test_mase": float(errors(at, ft[None, :], st, "mase")[0]),
            "test_smape": float(errors(at, ft[None, :], st, "smape")[0]),
            "weights": {lab: round(float(x), 3) for lab, x in zip(labels, w, strict=True) if x > 0}}


def chosen_rule(stored: Stored, labels: Sequence[str], offsets: Sequence[int], trim: float = 1.25,
                ) -> dict[str, Any]:
    """The rule of the proposed ``auto`` change: the pool trimmed on all the windows (MASE), then greedy, mean or
    median, whichever has the lowest leave-one-window-out MASE within that pool; with every rule's test scores.

    Returns
    -------
    dict
        ``members`` (the trimmed pool), ``lowo`` (rule -> MASE), ``chosen``, ``test_smape`` and ``test_mase``
        (rule -> score; forecasts clipped at 0).
    """
    F, a, s, win = stored.validation(labels, offsets)
    score = errors(a, F, s, "mase")
    keep = score <= trim * score.min()
    F = F[keep]
    members = [lab for lab, k in zip(labels, keep, strict=True) if k]
    lowo: dict[str, list[float]] = {"greedy": [], "mean": [], "median": []}
    for k in range(len(offsets)):
        fit, held = win != k, win == k
        w = learn(F[:, fit], a[fit], s[fit], "greedy", "mase", float("inf"))
        for rule, f in (("greedy", w @ F[:, held]), ("mean", F[:, held].mean(axis=0)),
                        ("median", np.median(F[:, held], axis=0))):
            lowo[rule].append(float(errors(a[held], f[None, :], s[held], "mase")[0]))
    mean_lowo = {rule: float(np.mean(v)) for rule, v in lowo.items()}
    Ft, at, st = stored.test(members)
    w = learn(F, a, s, "greedy", "mase", float("inf"))
    tests = {"greedy": w @ Ft, "mean": Ft.mean(axis=0), "median": np.median(Ft, axis=0)}
    return {"members": members, "lowo": mean_lowo, "chosen": min(mean_lowo, key=lambda r: mean_lowo[r]),
            "test_smape": {r: float(errors(at, np.maximum(f, 0.0)[None, :], st, "smape")[0]) for r, f in tests.items()},
            "test_mase": {r: float(errors(at, np.maximum(f, 0.0)[None, :], st, "mase")[0]) for r, f in tests.items()}}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Command line (module docstring); returns the replayed rules' rows (``replay``) or nothing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    rb = sub.add_parser("rebuild")
    rb.add_argument("--dataset", default="m3_quarterly")
    rb.add_argument("--out", type=Path, required=True)
    rb.add_argument("--candidates", nargs="*")
    rb.add_argument("--offsets", type=int, nargs="+", default=[0, 8, 16, 24])
    rp = sub.add_parser("replay")
    rp.add_argument("--out", type=Path, required=True)
    rp.add_argument("--windows", action="append", help="comma-separated offsets (repeatable); default 0,h,2h")
    rp.add_argument("--extra", nargs="*", default=[], help="labels added to the default pool")
    args = parser.parse_args(argv)
    if args.step == "rebuild":
        os.environ.setdefault("FORECASTING_DATA_DIR", str(Path("datasets").resolve()))
        rebuild(args.dataset, args.out, args.candidates, args.offsets)
        return []
    stored = Stored(args.out)
    pool = [lab for lab in stored.default if lab in stored.forecasts] + list(args.extra)
    offsets = [int(x) for x in stored.truth["offsets"]]
    windows = [[int(x) for x in w.split(",")] for w in args.windows] if args.windows else [offsets[:3]]
    rows = []
    for ws in windows:
        for rule in RULES:
            for metric in ("mase", "smape"):
                row = {"windows": ws, "rule": rule, "metric": metric, **replay(stored, pool, ws, rule=rule, metric=metric)}
                rows.append(row)
                print(json.dumps(row), flush=True)
        row = {"windows": ws, "rule": "chosen by leave-one-window-out", **chosen_rule(stored, pool, ws)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


if __name__ == "__main__":
    main()
