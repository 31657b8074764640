"""The benchmark harness behind ``forecasting bench``.

A benchmark is a set of **tasks**: (dataset, model spec, window). Each task fits one model
on every series of the dataset cut at the window's origin and forecasts ``h`` steps
(:func:`run_task`); it returns the forecasts with the fit time, the predict time and the
peak memory of the process that ran it. Windows are rolling origins ``step_size`` steps
apart; window 0 is the last one, whose test part is each series' last ``h`` observations
(for M4, whose official test part continues the training series, window 0 is exactly the
official train/test split), window 1 ends ``step_size`` steps earlier, and so on. The windows
are cut by :func:`forecasting.backtest.rolling_origins`, the splitter behind
:func:`forecasting.backtest.cross_validation`: the same data, ``h``, windows and step give
the same cutoffs and the same training and test rows.

Tasks run in-process (``n_jobs=1``), in worker processes (``engine="local"``, a
``ProcessPoolExecutor`` of ``min(n_jobs, tasks)`` spawned workers; when there are fewer tasks
than ``n_jobs`` each task's model gets the spare cores, ``n_jobs // workers`` of them, so the
total stays at ``n_jobs``), or on a Ray cluster (``engine="ray"``; a local instance when no
address is given; one CPU per task). The same :func:`run_task` runs everywhere, so the results
are the same.

The harness never stops at a model that fails: a task whose model raises becomes a
:class:`TaskFailure` (the error's type and message, and the seconds until it failed), and the
model's row in ``metrics`` has null scores and the message in ``error``; the other models are
scored (failures are not stored, so a rerun tries again). A model that fails on some series
only: series forecast by the spec's ``fallback`` model are counted in ``fallback_series`` (and
named in the notes); series without a finite forecast (missing rows, NaN or inf) are scored
with the seasonal naive forecast of the same training data, counted in ``failed_series`` and
named in the notes. A series whose MASE scale is undefined (constant seasonal differences, or
too short) gets a null MASE/MSIS/SQL and is left out of those means (a note says how many).

Each finished task is written to ``store/`` as one Parquet file, atomically (temporary
file + rename), named by a hash of (dataset fingerprint, canonical model spec, window
origin, h, levels, series limit, code version). An interrupted run resumes where it
stopped and a rerun loads what is there instead of recomputing it. The code version is
``forecasting.__version__`` plus the git commit when the code lives in a git checkout.

Scores are computed from the stored forecasts (:mod:`forecasting.evaluation`, M4
definitions): sMAPE, MASE, OWA against Naive2 (always computed: a Naive2 task is added
per window whether or not ``naive2`` is in the model list; a ``naive2`` in the list shares
its task), MAE, RMSE, and coverage and MSIS for each requested level with WQL and SQL
(fev-bench's weighted and scaled quantile losses); per window, then averaged over windows
(OWA too: the mean of the per-window OWAs). ``series_metrics`` keeps each series' sMAPE and
MASE per window (what :mod:`forecasting.benchmarks.suite` bootstraps).

Memory: ``peak_memory_mb`` is the peak resident set size of the process running the task
during fit + predict, sampled every 5 ms from ``/proc/self/statm`` (elsewhere: the
process's ``ru_maxrss``). It includes the interpreter and the imported libraries (about
200-300 MB); ``memory_delta_mb`` is that peak minus the resident size when the task
started, the memory the task itself needed. In-process runs (``n_jobs=1``) share the
process with the caller, so the peak there includes the caller's data.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from datetime import UTC, datetime
from typing import Any

import polars as pl

from forecasting import datasets
from forecasting.backtest import Window, origin_step, rolling_origins
from forecasting.benchmarks.leaderboard import REFERENCE, markdown_table, write_html
from forecasting.data import validate_levels, validate_panel
from forecasting.engines import Engine, run_tasks, task_cores  # noqa: F401 - task_cores: the harness's name kept
from forecasting.errors import CapabilityError, ForecastingError, InvalidParameterError
from forecasting.evaluation import evaluate, series_scores
from forecasting.models import ModelSpec, default_season_length, make_model, parse_spec, resolve_spec

__all__ = ["BenchData", "BenchResult", "Task", "TaskFailure", "code_version", "load_bench_data", "plan_tasks",
           "run_benchmark", "run_task", "write_results"]

NAIVE2 = "__naive2"
TIMING_COLUMNS = ("fit_seconds", "predict_seconds", "fit_predict_seconds", "peak_memory_mb", "memory_delta_mb")
#: Columns of a task's output that describe the run, not the forecasts (besides the timing).
FALLBACK_COLUMNS = ("fallback_series", "fallback_ids")
#: a task's notes on its forecast (how its bands were made, or why it has none), repeated on every row
NOTE_COLUMN = "forecast_notes"
#: Columns of ``metrics`` that say how a model's row was scored.
STATUS_COLUMNS = ("fallback_series", "failed_series", "error")


@dataclass(frozen=True)
class BenchResult:
    """Scores per model (``metrics``, averaged over windows; ``window_metrics``, per window),
    the forecasts they were computed from, and notes.

    ``cached`` and ``computed`` count the tasks loaded from the store and run.
    """

    metrics: pl.DataFrame
    forecasts: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    window_metrics: pl.DataFrame | None = None
    history: pl.DataFrame | None = None
    cached: int = 0
    computed: int = 0
    series_metrics: pl.DataFrame | None = None
    bench: BenchData | None = None
    #: what the run was (dataset, series and limit, h, windows, levels, date, code version, specs): the leaderboard's
    #: provenance (:func:`forecasting.benchmarks.leaderboard.provenance_rows`)
    provenance: dict[str, Any] = field(default_factory=dict)
    #: the reference's scores (``seasonal_naive`` at the data's season length, one row shaped like ``metrics``'
    #: without its timings) when it was not among the models: the harness scores it on every window for the
    #: leaderboard's skill column, as the suite runs it; None when a model is named ``seasonal_naive``
    reference: pl.DataFrame | None = None


@dataclass(frozen=True)
class TaskFailure:
    """A task whose model raised: what it raised and after how many seconds (picklable, sent back by workers)."""

    error: str  # "<ErrorType>: <message>"
    seconds: float


@dataclass(frozen=True)
class BenchData:
    """A dataset ready to benchmark: every series in full, and how to read it."""

    name: str
    fingerprint: str  # what identifies the data in the store keys
    data: pl.DataFrame  # unique_id, ds, y; the test part (if any) appended
    freq: str | int
    calendar_freq: str | int
    h: int
    season_length: int
    series_total: int | None = None  # series in the dataset before any series_limit


@dataclass(frozen=True)
class Task:
    """One model on one window of one dataset."""

    dataset: str
    fingerprint: str
    model: str  # output name (column) of the model in the results
    spec: str  # canonical JSON of the effective spec (season lengths filled in)
    window: int  # 0 = the last window
    offset: int  # observations after the window's origin, counted from each series' end (Window.offset)
    h: int
    levels: tuple[float, ...]
    freq: str | int
    series_limit: int | None
    version: str

    @property
    def key(self) -> str:
        """Store key: a hash of everything the task's output depends on (not its output name)."""
        ident = {k: v for k, v in asdict(self).items() if k not in ("model", "window", "dataset")}
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- data
def load_bench_data(dataset: str | None = None, *, input: str | Path | None = None, freq: str | int | None = None,
                    h: int | None = None, season_length: int | None = None,
                    series_limit: int | None = None) -> BenchData:
    """A catalogue dataset (``dataset``) or the user's file (``input`` with ``freq`` and ``h``).

    Raises
    ------
    InvalidParameterError
        Neither or both of ``dataset`` and ``input``; no horizon; a bad ``h``.
    DatasetError, InvalidInputError
        From the catalogue or the file's validation.
    """
    if (dataset is None) == (input is None):
        msg = "give a catalogue dataset (--dataset) or a file (--input), not both or neither"
        raise InvalidParameterError(msg, field="dataset")
    if h is not None and (isinstance(h, bool) or not isinstance(h, int) or h < 1):
        msg = f"h must be an integer >= 1, got {h!r}"
        raise InvalidParameterError(msg, field="h")
    if input is not None:
        from forecasting.service import read_table

        path = Path(input)
        if h is None:
            msg = "a benchmark on your own file needs the horizon: pass --h N"
            raise InvalidParameterError(msg, field="h")
        panel = validate_panel(read_table(path), freq=freq)
        frame = panel.frame.select("unique_id", "ds", "y")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        name, fingerprint, cal = path.stem, f"file:{digest}:{panel.freq}", panel.freq
        m = season_length or default_season_length(panel.freq)
        assert isinstance(m, int)
        the_freq: str | int = panel.freq
    else:
        assert dataset is not None
        loaded = datasets.load(dataset)
        info = loaded["info"]
        if h is None and "h" not in info:
            msg = f"dataset '{dataset}' has no standard horizon; pass h (--h N)"
            raise InvalidParameterError(msg, field="h")
        h = int(h or info["h"])
        frame = loaded["data"] if "data" in loaded else pl.concat([loaded["train"], loaded["test"]])
        frame = frame.select("unique_id", "ds", "y").sort("unique_id", "ds")
        name, fingerprint = dataset, f"catalogue:{dataset}"
        the_freq, cal = info["freq"], info.get("calendar_freq", info["freq"])
        m = int(season_length or info["season_length"])
    total = frame["unique_id"].n_unique()
    if series_limit:
        keep = frame["unique_id"].unique(maintain_order=True).head(series_limit).to_list()
        frame = frame.filter(pl.col("unique_id").is_in(keep))
    return BenchData(name=name, fingerprint=fingerprint, data=frame, freq=the_freq, calendar_freq=cal, h=int(h),
                     season_length=m, series_total=total)


# --------------------------------------------------------------------------- specs and tasks
def code_version() -> str:
    """``forecasting.__version__`` plus ``+g<commit>`` when the code is a git checkout."""
    import forecasting

    version = forecasting.__version__
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return f"{version}+g{commit}" if commit else version
    except (OSError, subprocess.SubprocessError):
        return version


def effective_spec(spec: ModelSpec, *, season_length: int, calendar_freq: str | int, h: int | None = None,
                   level: Sequence[float] = ()) -> ModelSpec:
    """The spec with the dataset's season length filled in where the spec leaves it out.

    Multi-season models (``mstl``, ``ensemble``, ``auto``) get every conventional period of the
    calendar frequency (hourly: [24, 168]); models that take the request's horizon and levels
    (``auto``) get the task's ``h`` and ``level``.
    """
    return resolve_spec(spec, freq=calendar_freq, season_length=season_length, h=h, level=list(level))[0]


def canonical(spec: ModelSpec) -> str:
    """JSON of a spec with sorted keys: equal specs give equal strings."""
    return json.dumps({"name": spec.name, "params": spec.params, "fallback": spec.fallback}, sort_keys=True,
                      separators=(",", ":"))


def _names(specs: Sequence[ModelSpec]) -> list[str]:
    names: list[str] = []
    for spec in specs:
        base = spec.params.get("alias") or spec.name
        names.append(base if base not in names else f"{base}_{len(names)}")
    return names


def plan_tasks(bench: BenchData, models: Sequence[str], *, windows: int = 1, step_size: int | None = None,
               level: Sequence[float] = (), series_limit: int | None = None,
               version: str | None = None) -> tuple[list[Task], list[Task]]:
    """The model tasks and the Naive2 reference tasks (one per window), in order.

    Raises
    ------
    InvalidParameterError
        No model, ``windows`` or ``step_size`` < 1, or a series too short for the windows.
    """
    specs = [parse_spec(m) for m in models]
    if not specs:
        msg = "give at least one model"
        raise InvalidParameterError(msg, field="models")
    step = origin_step(h=bench.h, n_windows=windows, step_size=step_size, windows_field="windows")
    levels = tuple(validate_levels(level))
    held = bench.h + (windows - 1) * step
    n = bench.data.group_by("unique_id").len()
    short = n.filter(pl.col("len") <= held)
    if short.height:
        ids = ", ".join(short.sort("len")["unique_id"].head(5).to_list())
        msg = (f"h={bench.h} with {windows} window(s) every {step} steps holds out {held} observations, which leaves no "
               f"training data for series {ids} (lengths <= {held})")
        raise InvalidParameterError(msg, field="h")
    version = version or code_version()
    effective = [effective_spec(s, season_length=bench.season_length, calendar_freq=bench.calendar_freq, h=bench.h,
                                level=levels) for s in specs]
    ref = effective_spec(ModelSpec(name="naive2"), season_length=bench.season_length,
                         calendar_freq=bench.calendar_freq)

    def task(name: str, spec: ModelSpec, win: Window) -> Task:
        return Task(dataset=bench.name, fingerprint=bench.fingerprint, model=name, spec=canonical(spec),
                    window=win.window, offset=win.offset, h=bench.h, levels=levels, freq=bench.freq,
                    series_limit=series_limit, version=version)

    names = _names(specs)
    origins = rolling_origins(bench.data, h=bench.h, n_windows=windows, step_size=step, windows_field="windows")
    tasks = [task(name, spec, win) for win in origins for name, spec in zip(names, effective, strict=True)]
    refs = [task(NAIVE2, ref, win) for win in origins]
    return tasks, refs


# --------------------------------------------------------------------------- one task
def _rss() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class _PeakRSS:
    """Peak resident set size of this process while the block runs (a 5 ms sampling thread)."""

    def __enter__(self) -> _PeakRSS:
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def run_task(task: Task, data: pl.DataFrame, n_jobs: int = 1) -> pl.DataFrame:
    """Fit the task's model on the window's training part and forecast ``h`` steps.

    Parameters
    ----------
    task : Task
    data : pl.DataFrame
        The dataset's ``unique_id, ds, y`` in full (the task's window is cut from it).
    n_jobs : int, default 1
        Cores the model may use (its ``n_jobs``); the harness gives spare cores to few tasks.

    Returns
    -------
    pl.DataFrame
        ``h`` rows per series: ``unique_id, ds, mean[, lo-<L>, hi-<L>]`` and, repeated on
        every row, ``fit_seconds, predict_seconds, peak_memory_mb, memory_delta_mb``,
        ``fallback_series`` (series forecast by the spec's fallback model) and
        ``fallback_ids`` (their ids, comma-separated) and ``forecast_notes`` (:func:`_forecast`).

    Raises
    ------
    ForecastingError
        Whatever the model raises (the task is then not stored).
    """
    panel = validate_panel(_window(task, data).train, freq=task.freq)
    spec = parse_spec(task.spec)
    model = make_model(spec, freq=panel.freq, n_jobs=n_jobs)
    with _PeakRSS() as mem:
        t0 = time.perf_counter()
        model.fit(panel)
        t1 = time.perf_counter()
        out, notes = _forecast(model, task)
        t2 = time.perf_counter()
    mb = 1024.0 * 1024.0
    fallbacks = [fb.unique_id for fb in model.fallbacks_]
    return out.with_columns(pl.lit(t1 - t0).alias("fit_seconds"), pl.lit(t2 - t1).alias("predict_seconds"),
                            pl.lit(mem.peak / mb).alias("peak_memory_mb"),
                            pl.lit(max(mem.peak - mem.start, 0) / mb).alias("memory_delta_mb"),
                            pl.lit(len(fallbacks), dtype=pl.Int64).alias("fallback_series"),
                            pl.lit(",".join(str(u) for u in fallbacks)).alias("fallback_ids"),
                            pl.lit("; ".join(notes)).alias(NOTE_COLUMN))


def _forecast(model: Any, task: Task) -> tuple[pl.DataFrame, list[str]]:
    """The task's forecast (``mean[, lo-<L>, hi-<L>]``) and the notes the model made while forecasting (how its
    bands were made where it could not calibrate them for ``h``). A model that can forecast but give no band at
    ``h`` (``CapabilityError`` on ``level`` or ``h``: no series long enough to calibrate one) is scored on its
    point forecasts, with a note saying so: the row is never failed for its bands."""
    before = len(getattr(model, "notes_", None) or [])
    try:
        out = model.predict(task.h, level=list(task.levels))
        extra: list[str] = []
    except CapabilityError as exc:
        if not task.levels or exc.field not in ("level", "h"):
            raise
        out = model.predict(task.h)
        extra = [f"no bands at h={task.h} ({exc.message}): scored on its point forecasts, coverage left empty"]
    notes = list((getattr(model, "notes_", None) or [])[before:]) + extra
    return _renamed(out, model.alias), notes


def _renamed(out: pl.DataFrame, alias: str) -> pl.DataFrame:
    """A model's forecast columns (``<alias>``, ``<alias>-lo-80``...) as ``mean``, ``lo-80``..."""
    return out.rename({c: "mean" if c == alias else c[len(alias) + 1:] for c in out.columns if c.startswith(alias)})


def _window(task: Task, data: pl.DataFrame) -> Window:
    """The task's rolling origin of ``data`` (the tasks are planned by :func:`rolling_origins`)."""
    return Window(window=task.window, offset=task.offset, h=task.h, frame=data)


def _guarded(task: Task, data: pl.DataFrame, n_jobs: int = 1) -> pl.DataFrame | TaskFailure:
    """:func:`run_task`, with the model's failure returned as a :class:`TaskFailure` instead of raised.

    Any exception of the model counts (a library's ValueError as well as a ForecastingError):
    the harness never stops at a model that fails. KeyboardInterrupt and SystemExit still stop it.
    """
    t0 = time.perf_counter()
    try:
        return run_task(task, data, n_jobs=n_jobs)
    except Exception as exc:  # noqa: BLE001 - a failing model is a row of the results, whatever it raised
        message = exc.message if isinstance(exc, ForecastingError) else str(exc)
        return TaskFailure(error=f"{type(exc).__name__}: {message}", seconds=time.perf_counter() - t0)


# --------------------------------------------------------------------------- store
class Store:
    """``DIR/<key>.parquet``, one file per finished task, written atomically."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root is not None else None
        if self.root is not None:
            self.root.mkdir(parents=True, exist_ok=True)

    def path(self, task: Task) -> Path | None:
        return None if self.root is None else self.root / f"{task.key}.parquet"

    def load(self, task: Task) -> pl.DataFrame | None:
        path = self.path(task)
        if path is None or not path.is_file():
            return None
        try:
            return (pl.read_parquet(path).drop("key", "dataset", "model", "spec", "window", "version", strict=False)
                    .rechunk())
        except (OSError, pl.exceptions.ComputeError):  # a damaged file: recompute the task
            return None

    def save(self, task: Task, frame: pl.DataFrame) -> None:
        path = self.path(task)
        if path is None:
            return
        tagged = frame.with_columns(pl.lit(task.key).alias("key"), pl.lit(task.dataset).alias("dataset"),
                                    pl.lit(task.model).alias("model"), pl.lit(task.spec).alias("spec"),
                                    pl.lit(task.window).alias("window"), pl.lit(task.version).alias("version"))
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp")
        tagged.write_parquet(tmp)
        os.replace(tmp, path)


# --------------------------------------------------------------------------- engines
Result = pl.DataFrame | TaskFailure
Done = Callable[[Task, Result], None]
Todo = list[tuple[Task, Callable[..., Any]]]


def _run_local(todo: Todo, data: pl.DataFrame, n_jobs: int, done: Done) -> None:
    run_tasks(todo, data, done, engine="local", n_jobs=n_jobs)


def _run_ray(todo: Todo, data: pl.DataFrame, n_jobs: int, address: str | None, done: Done) -> None:
    run_tasks(todo, data, done, engine="ray", n_jobs=n_jobs, address=address)


# --------------------------------------------------------------------------- scoring
def _model_columns(task: Task, out: pl.DataFrame, ds_type: pl.DataType) -> pl.DataFrame:
    """A task's forecasts as ``unique_id, ds, <model>[, <model>-lo-<L>...]`` with ``ds`` of the test's type."""
    cols = [c for c in out.columns if c not in ("unique_id", "ds", *TIMING_COLUMNS, *FALLBACK_COLUMNS, NOTE_COLUMN)]
    return out.select(pl.col("unique_id").cast(pl.Utf8), pl.col("ds").cast(ds_type),
                      *[pl.col(c).alias(task.model if c == "mean" else f"{task.model}-{c}") for c in cols])


def _patch_failed_series(base: pl.DataFrame, models: list[str], train: pl.DataFrame, bench: BenchData,
                         levels: Sequence[float], w: int, notes: list[str],
                         snaive: pl.DataFrame | None = None) -> tuple[pl.DataFrame, dict[str, int]]:
    """Replace each model's forecasts of the series it left missing or non-finite by the seasonal naive ones.

    ``snaive``: the window's seasonal naive forecasts when already made (:func:`_seasonal_naive`).
    Returns the patched frame and, per model, the number of series patched (a note names them).
    """
    counts: dict[str, int] = {}
    for model in models:
        cols = [c for c in base.columns if c == model or c.startswith(f"{model}-lo-") or c.startswith(f"{model}-hi-")]
        bad_row = pl.any_horizontal([pl.col(c).is_null() | ~pl.col(c).is_finite() for c in cols])
        bad = base.filter(bad_row)["unique_id"].unique(maintain_order=True)
        counts[model] = bad.len()
        if not bad.len():
            continue
        if snaive is None:
            snaive = _seasonal_naive(train, bench, levels, base.schema["ds"])
        fill = snaive.select("unique_id", "ds", *[pl.col(c.replace(model, "mean", 1)).alias(f"__{c}") for c in cols])
        base = base.join(fill, on=["unique_id", "ds"], how="left", maintain_order="left").with_columns(
            *[pl.when(pl.col("unique_id").is_in(bad.implode())).then(pl.col(f"__{c}")).otherwise(pl.col(c)).alias(c)
              for c in cols]).drop([f"__{c}" for c in cols])
        shown = ", ".join(bad.head(10).to_list()) + (f" and {bad.len() - 10} more" if bad.len() > 10 else "")
        notes.append(f"{model} (window {w}): {bad.len()} series without a finite forecast were scored with the "
                     f"seasonal naive forecast (season {bench.season_length}): {shown}")
    return base, counts


def _seasonal_naive(train: pl.DataFrame, bench: BenchData, levels: Sequence[float], ds_type: pl.DataType) -> pl.DataFrame:
    """The seasonal naive forecasts (and intervals) of the window's training data, as ``mean``, ``lo-<L>``...

    A series with at most a season of training values gets the naive forecast (the spec's ``fallback``: it has
    no seasonal naive one). The reference and the patch of a model's failed series are scores beside the models:
    a series too short for them never ends the run."""
    spec = ModelSpec(name="seasonal_naive", params={"season_length": bench.season_length}, fallback="naive")
    model = make_model(spec, freq=bench.freq).fit(validate_panel(train, freq=bench.freq))
    out = _renamed(model.predict(bench.h, level=list(levels)), model.alias)
    return out.with_columns(pl.col("unique_id").cast(pl.Utf8), pl.col("ds").cast(ds_type))


def _unscaled_note(train: pl.DataFrame, m: int, notes: list[str]) -> None:
    """Note the series without a MASE scale (scored with null MASE/MSIS/SQL, left out of those means)."""
    scale = train.group_by("unique_id").agg(pl.len().alias("n"), (pl.col("y") - pl.col("y").shift(m)).abs().mean()
                                            .alias("scale"))
    bad = scale.filter((pl.col("n") <= m) | (pl.col("scale") == 0))["unique_id"].sort()
    if bad.len():
        note = (f"{bad.len()} series have no MASE scale (constant lag-{m} differences or at most {m} training values; "
                f"e.g. {', '.join(bad.head(5).cast(pl.Utf8).to_list())}): their MASE, MSIS and SQL are null and left "
                "out of those means")
        if note not in notes:
            notes.append(note)


def _score_window(w: int, results: dict[Task, Result], tasks: list[Task], ref: Task, bench: BenchData,
                  levels: Sequence[float], notes: list[str]
                  ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame | None]:
    """One window's scores (one row per model, failures included), forecasts, per-series scores and the
    reference's scores (seasonal naive; None when it is one of the models)."""
    win = _window(ref, bench.data)
    train, test = win.train.rechunk(), win.test.rechunk()
    ds_type = test.schema["ds"]
    scored = [t for t in tasks if isinstance(results[t], pl.DataFrame)]
    failed = [t for t in tasks if isinstance(results[t], TaskFailure)]
    base = test.select(pl.col("unique_id").cast(pl.Utf8), "ds")
    for task in scored:
        base = base.join(_model_columns(task, results[task], ds_type), on=["unique_id", "ds"],  # type: ignore[arg-type]
                         how="left", maintain_order="left")
    models = [t.model for t in scored]
    # the reference (seasonal naive) is scored beside the models when none of them is it: the skill column
    added = REFERENCE not in {t.model for t in tasks}
    snaive = _seasonal_naive(train, bench, levels, ds_type) if added else None
    base, patched = _patch_failed_series(base, models, train, bench, levels, w, notes, snaive)
    if snaive is not None:
        base = base.join(snaive.select("unique_id", "ds", *[
            pl.col(c).alias(REFERENCE if c == "mean" else f"{REFERENCE}-{c}") for c in snaive.columns
            if c not in ("unique_id", "ds")]), on=["unique_id", "ds"], how="left", maintain_order="left")
    naive2_col: str | None = NAIVE2
    ref_out = results[ref]
    if isinstance(ref_out, TaskFailure):
        naive2_col = None
        note = f"OWA not computed: the Naive2 benchmark failed ({ref_out.error})"
        if note not in notes:
            notes.append(note)
    else:
        base = base.join(_model_columns(ref, ref_out, ds_type).select("unique_id", "ds", NAIVE2),
                         on=["unique_id", "ds"], how="left", maintain_order="left")
        if base[NAIVE2].is_null().any() or not base[NAIVE2].is_finite().all():
            naive2_col = None
            base = base.drop(NAIVE2)
            note = "OWA not computed: the Naive2 benchmark has no finite forecast for some series"
            if note not in notes:
                notes.append(note)
    base = base.rechunk()
    _unscaled_note(train, bench.season_length, notes)
    frames = []
    per_series = None
    reference = None
    if added:
        reference = evaluate(base, test, train, models=[REFERENCE], season_length=bench.season_length, level=levels,
                             naive2_column=naive2_col, unscaled="null").with_columns(pl.lit(w).alias("window"))
        base = base.drop([c for c in base.columns if c == REFERENCE or c.startswith(f"{REFERENCE}-")])
    if models:
        frames.append(evaluate(base, test, train, models=models, season_length=bench.season_length, level=levels,
                               naive2_column=naive2_col, unscaled="null"))
        per_series = series_scores(base, test, train, models=models, season_length=bench.season_length,
                                   unscaled="null").with_columns(pl.lit(w).alias("window"))
    if failed:  # null scores; the point scores' columns are there even when no model was scored
        frames.append(pl.DataFrame({"model": [t.model for t in failed]}).with_columns(
            pl.lit(None, dtype=pl.Float64).alias(c) for c in ("smape", "mase", "owa", "mae", "rmse")))
    scores = pl.concat(frames, how="diagonal_relaxed")
    forecasts = (test.with_columns(pl.col("unique_id").cast(pl.Utf8)).join(win.cutoff.with_columns(
        pl.col("unique_id").cast(pl.Utf8)), on="unique_id").join(base.drop(NAIVE2, strict=False), on=["unique_id", "ds"])
        .with_columns(pl.lit(w).alias("window")))
    forecasts = forecasts.select("unique_id", "ds", "window", "cutoff", "y",
                                 *[c for c in forecasts.columns if c not in ("unique_id", "ds", "window", "cutoff", "y")])
    status = pl.DataFrame([_task_status(t, results[t], patched.get(t.model, 0)) for t in tasks],
                          schema={"model": pl.Utf8, **dict.fromkeys(TIMING_COLUMNS[:2], pl.Float64),
                                  **dict.fromkeys(TIMING_COLUMNS[3:], pl.Float64), "fallback_series": pl.Int64,
                                  "failed_series": pl.Int64, "error": pl.Utf8, "fit_predict_seconds": pl.Float64})
    for t in scored:
        out = results[t]
        assert isinstance(out, pl.DataFrame)
        if "fallback_series" in out.columns and out["fallback_series"][0]:
            ids = out["fallback_ids"][0].split(",")
            shown = ", ".join(ids[:10]) + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
            note = f"{t.model} (window {w}): {len(ids)} series forecast by its fallback model: {shown}"
            if note not in notes:
                notes.append(note)
        if NOTE_COLUMN in out.columns and out[NOTE_COLUMN][0]:  # tasks stored before the column have none
            note = f"{t.model} (window {w}): {out[NOTE_COLUMN][0]}"
            if note not in notes:
                notes.append(note)
    order = pl.DataFrame({"model": [t.model for t in tasks]})
    scores = order.join(scores, on="model", how="left", maintain_order="left").join(
        status, on="model", maintain_order="left").with_columns(pl.lit(w).alias("window"))
    return scores, forecasts, per_series if per_series is not None else pl.DataFrame(), reference


def _task_status(task: Task, out: Result, failed_series: int) -> dict[str, Any]:
    """Timing, memory and how a task's row was scored (fallbacks, patched series, the error of a failure)."""
    if isinstance(out, TaskFailure):
        return {"model": task.model, "error": out.error, "fit_predict_seconds": out.seconds}
    row: dict[str, Any] = {c: float(out[c][0]) for c in TIMING_COLUMNS if c != "fit_predict_seconds"}
    row["fit_predict_seconds"] = row["fit_seconds"] + row["predict_seconds"]
    fallback = int(out["fallback_series"][0]) if "fallback_series" in out.columns else 0
    return {"model": task.model, **row, "fallback_series": fallback, "failed_series": failed_series, "error": None}


def _check_run_options(*, series_limit: int | None, engine: str) -> None:
    if series_limit is not None and series_limit < 1:
        msg = f"series_limit must be a positive number of series, got {series_limit}"
        raise InvalidParameterError(msg, field="series_limit")
    if engine not in ("local", "ray"):
        msg = f"engine must be 'local' or 'ray', got {engine!r}"
        raise InvalidParameterError(msg, field="engine")


def _cached_and_todo(st: Store, tasks: list[Task]) -> tuple[dict[Task, Result], Todo]:
    """The tasks' stored results, and the tasks left to run (one per store key: a ``naive2`` in the model list
    and the Naive2 reference share one task)."""
    results: dict[Task, Result] = {}
    todo: Todo = []
    unique: dict[str, Task] = {}
    for task in tasks:
        cached = st.load(task)
        if cached is not None:
            results[task] = cached
        elif task.key not in unique:
            unique[task.key] = task
            todo.append((task, _guarded))
    return results, todo


def _over_windows(per_window: list[pl.DataFrame], dataset: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``window_metrics`` (the windows' scores, with the dataset) and ``metrics`` (scores averaged over windows,
    seconds summed, memory the maximum, ``windows`` counted), one row per model in the order given. A model that
    failed in any window has null scores and that window's error."""
    window_metrics = pl.concat(per_window, how="diagonal_relaxed").with_columns(pl.lit(dataset).alias("dataset"))
    status = [c for c in STATUS_COLUMNS if c in window_metrics.columns]
    window_metrics = window_metrics.select(
        "dataset", "model", "window",
        *[c for c in window_metrics.columns if c not in ("dataset", "model", "window", *TIMING_COLUMNS, *status)],
        *TIMING_COLUMNS, *status)
    score_cols = [c for c in window_metrics.columns if c not in ("dataset", "model", "window", *TIMING_COLUMNS,
                                                                 *status)]
    metrics = (window_metrics.group_by("dataset", "model", maintain_order=True)
               .agg(*[pl.col(c).mean() for c in score_cols],
                    *[pl.when(pl.col(c).is_not_null().any()).then(pl.col(c).sum()).alias(c)
                      for c in ("fit_seconds", "predict_seconds", "fit_predict_seconds")],
                    *[pl.col(c).max() for c in ("peak_memory_mb", "memory_delta_mb")],
                    pl.len().alias("windows"),
                    pl.col("fallback_series").max(), pl.col("failed_series").max(),
                    pl.col("error").drop_nulls().first()))
    failed = pl.col("error").is_not_null()
    metrics = metrics.with_columns(*[pl.when(failed).then(None).otherwise(pl.col(c)).alias(c) for c in score_cols])
    return window_metrics, metrics


def run_benchmark(
    dataset: str | None,
    models: Sequence[str],
    *,
    h: int | None = None,
    level: Sequence[float] = (),
    n_jobs: int = 1,
    series_limit: int | None = None,
    windows: int = 1,
    step_size: int | None = None,
    input: str | Path | None = None,
    freq: str | int | None = None,
    season_length: int | None = None,
    engine: Engine = "local",
    ray_address: str | None = None,
    store: str | Path | None = None,
    on_plan: Callable[[int, int], None] | None = None,
    on_task_done: Callable[[Task, bool], None] | None = None,
    on_model_done: Callable[[str, float], None] | None = None,
) -> BenchResult:
    """Run every (model, window) task on a dataset and score the forecasts.

    Parameters
    ----------
    dataset : str, optional
        Catalogue name (``m4_hourly``, ``m3_monthly``, ``air_passengers``...); or give ``input``.
    models : sequence of str
        Model specs (registry names or JSON specs), ``ensemble`` included.
    h : int, optional
        Horizon; defaults to the catalogue's (M4 Hourly: 48). Required with ``input``.
    level : numbers in (0, 100)
        Interval levels for coverage, MSIS, WQL and SQL.
    n_jobs : int
        Cores (-1: one per CPU): tasks run at once, and spare cores go to the models when there
        are fewer tasks than cores. 1 runs them in this process.
    series_limit : int, optional
        Keep only the first N series (quick runs).
    windows, step_size : int
        Rolling origins and the steps between them (default ``h``). Window 0 ends at
        each series' end (M4, M3: the official test part).
    input, freq : optional
        The user's own long-format file instead of a catalogue dataset.
    season_length : int, optional
        The data's season (MASE scale, Naive2, and every model that leaves it out); default the
        catalogue's, or for ``input`` the conventional one of its frequency (1 for integer ``ds``).
    engine : {"local", "ray"}; ray_address : str, optional
        Where tasks run; ``ray`` without an address starts a local Ray instance with
        ``n_jobs`` CPUs and shuts it down afterwards.
    store : path, optional
        Folder of finished tasks (resume and cache). None: nothing is stored.
    on_plan(total, cached), on_task_done(task, cached), on_model_done(model, seconds)
        Progress callbacks.

    Returns
    -------
    BenchResult
        ``metrics``: ``dataset, model, smape, mase, owa, mae, rmse, [coverage_L, msis_L, wql, sql],
        fit_seconds, predict_seconds, fit_predict_seconds, peak_memory_mb, memory_delta_mb,
        windows, fallback_series, failed_series, error``; one row per model, in the order
        given (seconds summed over windows, memory the maximum; a failed model has null scores
        and its error). ``window_metrics``: the same per window. ``series_metrics``: ``model,
        unique_id, smape, mase, mae, rmse, window`` for the scored models.

    Raises
    ------
    InvalidParameterError, DatasetError, InvalidInputError
        Bad options or data (before any model runs). A failing model does not raise.
    """
    _check_run_options(series_limit=series_limit, engine=engine)
    levels = validate_levels(level)
    bench = load_bench_data(dataset, input=input, freq=freq, h=h, season_length=season_length,
                            series_limit=series_limit)
    tasks, refs = plan_tasks(bench, models, windows=windows, step_size=step_size, level=levels,
                             series_limit=series_limit)
    n_jobs = (os.cpu_count() or 1) if n_jobs == -1 else max(1, n_jobs)
    st = Store(store)
    results, todo = _cached_and_todo(st, [*refs, *tasks])
    cached_n = sum(1 for t in tasks if t in results)
    if on_plan:
        on_plan(len(tasks), cached_n)
    if on_task_done:
        for t in tasks:
            if t in results:
                on_task_done(t, True)

    by_key: dict[str, list[Task]] = {}
    for t in [*refs, *tasks]:
        by_key.setdefault(t.key, []).append(t)

    def done(task: Task, out: Result) -> None:
        if isinstance(out, pl.DataFrame):
            # one memory layout whatever the source (this process, a worker, Ray, the store): polars' float sums
            # depend on chunking, and scores must be the same to the last bit
            out = out.rechunk()
            st.save(task, out)
        for same in by_key[task.key]:
            results[same] = out
            if same.model != NAIVE2:
                if on_task_done:
                    on_task_done(same, False)
                if on_model_done:
                    seconds = (out.seconds if isinstance(out, TaskFailure)
                               else float(out["fit_seconds"][0] + out["predict_seconds"][0]))
                    on_model_done(same.model, seconds)

    if todo:
        if engine == "ray":
            _run_ray(todo, bench.data, n_jobs, ray_address, done)
        else:
            _run_local(todo, bench.data, n_jobs, done)

    result = _scored(results, tasks, refs, bench, levels, cached=cached_n)
    specs = {t.model: json.loads(t.spec) for t in tasks}
    return replace(result, provenance={"dataset": bench.name, "series": bench.data["unique_id"].n_unique(),
                         "series_total": bench.series_total, "series_limit": series_limit, "h": bench.h,
                         "windows": windows, "step_size": step_size or bench.h, "levels": list(levels),
                         "season_length": bench.season_length, "freq": bench.freq,
                         "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "code_version": code_version(),
                         "specs": specs, "reference": REFERENCE, "reference_added": result.reference is not None})


def _scored(results: dict[Task, Result], tasks: list[Task], refs: list[Task], bench: BenchData,
            levels: Sequence[float], *, cached: int) -> BenchResult:
    """Every window scored, then the scores over windows (the run's :class:`BenchResult`)."""
    notes: list[str] = []
    per_window, frames, series, reference = [], [], [], []
    for w, ref in enumerate(refs):
        scores, fc, per_series, ref_scores = _score_window(w, results, [t for t in tasks if t.window == w], ref, bench,
                                                           levels, notes)
        if ref_scores is not None:
            reference.append(ref_scores)
        per_window.append(scores)
        frames.append(fc)
        series.append(per_series)
    for t in tasks:
        out = results[t]
        if isinstance(out, TaskFailure):
            notes.append(f"{t.model} failed on {bench.name} (window {t.window}): {out.error}")
    window_metrics, metrics = _over_windows(per_window, bench.name)
    history = _window(refs[0], bench.data).train.group_by("unique_id", maintain_order=True).tail(3 * bench.h)
    return BenchResult(metrics=metrics, forecasts=pl.concat(frames, how="diagonal_relaxed"), notes=notes,
                       window_metrics=window_metrics, history=history, cached=cached,
                       computed=len(tasks) - cached, series_metrics=pl.concat(series, how="diagonal_relaxed"),
                       bench=bench, reference=_reference_over_windows(reference, bench.name))


def _reference_over_windows(per_window: list[pl.DataFrame], dataset: str) -> pl.DataFrame | None:
    """The reference's scores averaged over windows (as ``metrics``), or None when it was one of the models."""
    if not per_window:
        return None
    frame = pl.concat(per_window, how="diagonal_relaxed")
    scores = [c for c in frame.columns if c not in ("model", "window")]
    return frame.group_by("model", maintain_order=True).agg(*[pl.col(c).mean() for c in scores],
                                                            pl.len().alias("windows")).select(
        pl.lit(dataset).alias("dataset"), pl.all())


# --------------------------------------------------------------------------- output
def write_results(result: BenchResult, output: str | Path) -> dict[str, Path]:
    """Write ``metrics.csv``, ``metrics_by_window.csv``, ``forecasts.parquet``, ``leaderboard.md`` and
    ``leaderboard.html`` (self-contained: plots embedded as PNG data) into ``output``."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out / "metrics.csv", "forecasts": out / "forecasts.parquet", "leaderboard": out / "leaderboard.md",
             "html": out / "leaderboard.html", "window_metrics": out / "metrics_by_window.csv"}
    result.metrics.write_csv(paths["metrics"])
    if result.window_metrics is not None:
        result.window_metrics.write_csv(paths["window_metrics"])
    result.forecasts.write_parquet(paths["forecasts"])
    paths["leaderboard"].write_text(markdown_table(result.metrics, result.provenance, reference=result.reference))
    write_html(result.metrics, paths["html"], forecasts=result.forecasts, history=result.history, notes=result.notes,
               provenance=result.provenance, series_metrics=result.series_metrics, reference=result.reference)
    return paths


# --------------------------------------------------------------------------- hierarchical structures (issue 17)
def run_hierarchy_benchmark(
    data: pl.DataFrame,
    *,
    models: Sequence[str],
    h: int,
    hierarchy: str | Sequence[str] | None = None,
    group: str | Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    season_length: int | None = None,
    n_jobs: int = 1,
) -> pl.DataFrame:
    """Per-level accuracy of base and reconciled forecasts of each model on a hierarchical/grouped frame.

    Each model is fitted on every series of the structure (aggregates built from the bottom frame) up to the
    last ``h`` steps, reconciled by each method and scored at each level (MASE, RMSE: means over the level's
    series), as fpp3 ch. 11.7 does for the prison data (:func:`forecasting.service.hierarchy.backtest_hierarchy`).

    Parameters
    ----------
    data : pl.DataFrame
        Bottom series ``unique_id, ds, y`` plus the structure columns.
    models : registry names or specs
    h : int
        Held-out steps per series.
    hierarchy, group : columns
        Nested and crossed structure columns.
    methods : reconciliation methods (default: every method the structure and each model support)
    season_length : int, optional
        MASE's lag (default: the frequency's season).

    Returns
    -------
    pl.DataFrame
        ``model, level, method, mase, rmse, seconds`` (``method`` ``base`` or a reconciliation method;
        ``seconds``: the model's fit + forecast + reconcile wall time).
    """
    from forecasting.hierarchy import INSAMPLE_METHODS, METHODS, STRICT_METHODS, from_columns
    from forecasting.models.registry import make_model
    from forecasting.service.hierarchy import backtest_hierarchy

    strict = from_columns(data, hierarchy=hierarchy, group=group).strict
    tables = []
    for model in models:
        chosen = list(methods) if methods is not None else [
            m for m in METHODS if (strict or m not in STRICT_METHODS)
            and (m not in INSAMPLE_METHODS or make_model(model).capabilities.has_fitted_values)]
        bt = backtest_hierarchy(data, hierarchy=hierarchy, group=group, model=model, h=h, methods=chosen,
                                season_length=season_length, n_jobs=n_jobs)
        tables.append(bt.table.select(pl.lit(bt.result.spec.name).alias("model"), pl.all(),
                                      pl.lit(round(bt.seconds, 2)).alias("seconds")))
    return pl.concat(tables)
