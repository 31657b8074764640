"""Batch forecasts of a Parquet data set of any size: partitioned, streamed, resumable, on local processes or Ray.

The one place of the batch use case (``forecasting batch``; :func:`batch_forecast`):

1. **Plan.** The input (a Parquet file, folder or glob with ``unique_id, ds, y``) is read
   lazily: its schema is checked and its row count taken from the Parquet metadata. The
   series are split into ``n_partitions`` by a hash of ``unique_id`` (every row of a series
   in one partition); by default one partition per ``rows_per_partition`` rows.
2. **Stage.** One streaming pass (record batches of the input, :func:`_stage`) writes each
   partition's rows under ``<output>/input/_part=<k>/``; memory stays bounded whatever the
   input's size.
3. **Forecast.** One task per partition (:func:`forecasting.engines.run_tasks`: this
   process, local worker processes, or a Ray cluster) reads its partition, forecasts it
   with the spec (:func:`forecasting.service.forecast`) or the saved model
   (:func:`forecasting.service.forecast_fitted`) and writes ``parts/part-<k>.parquet``,
   then ``parts/part-<k>.json`` (series, rows, seconds, fallbacks, notes), each atomically.
   A partition is finished when its ``.json`` exists.
4. **Resume.** ``<output>/job.json`` records what the job is (input files with sizes and
   modification times, model, ``h``, ``freq``, ``level``, partitions). Running the same job
   again skips the finished partitions and computes the rest (an interrupted run loses
   only the partitions in flight); a different job in the same folder is refused.
5. **Collect.** A streaming pass concatenates the parts into ``<output>/forecasts.parquet``;
   the staged input is then removed.

The default output folder is in the artifact store, ``<FORECASTING_ARTIFACTS_DIR or
var/artifacts>/batch/<job id>/``, where the job id is a digest of ``job.json``: running the
same command again resumes it. With Ray on a cluster, the output folder (and the input and
any saved model) must be on storage every node sees.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from forecasting.data import validate_h, validate_levels
from forecasting.engines import Engine, check_engine, run_tasks
from forecasting.errors import ForecastingError, InvalidInputError, InvalidParameterError
from forecasting.models.registry import parse_spec

__all__ = ["BatchResult", "PartitionOutcome", "batch_forecast", "default_output", "plan_partitions", "registered_source"]

#: default partition size, in input rows (one task reads, fits and forecasts this many rows at once)
ROWS_PER_PARTITION = 2_000_000
#: rows read at once when staging the input by partition (bounds the driver's memory)
STAGE_BATCH_ROWS = 500_000
FORMAT = 1
REQUIRED = ("unique_id", "ds", "y")
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class _Job:
    """What every partition task needs (pickled to the workers)."""

    folder: str
    spec: dict[str, Any] | None
    model_path: str | None
    h: int
    freq: str | int | None
    level: tuple[float, ...]
    fill_missing: str | None = None
    fill_gaps: bool = False


@dataclass(frozen=True)
class PartitionOutcome:
    """One finished partition (also ``parts/part-<k>.json``).

    Attributes
    ----------
    partition : int
    series, rows : int
        Series forecast and forecast rows written.
    seconds : float
        Wall time of the task (read, fit, forecast, write).
    fallbacks : int
        Series forecast by the spec's fallback model.
    notes : list of str
    """

    partition: int
    series: int
    rows: int
    seconds: float
    fallbacks: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BatchResult:
    """What a batch run did.

    Attributes
    ----------
    output : Path
        ``forecasts.parquet``: ``unique_id, ds, <alias>[, <alias>-lo-<L>, <alias>-hi-<L>]``, ``h`` rows per
        series, partition after partition.
    folder : Path
        The job's folder (``job.json``, ``parts/``).
    n_partitions : int
        Partitions of the plan (some may be empty).
    computed, skipped : list of int
        Partitions forecast by this run, and those found finished by an earlier run.
    series, rows : int
        Totals over every partition (``computed_series``: those forecast by this run).
    seconds : float
        Wall time of this run.
    task_seconds : float
        Sum of the partition tasks' wall times (this run's and the earlier runs').
    notes : list of str
        Distinct notes of the partitions, and the engine used.
    """

    output: Path
    folder: Path
    n_partitions: int
    computed: list[int]
    skipped: list[int]
    series: int
    rows: int
    seconds: float
    task_seconds: float
    fallbacks: int = 0
    notes: list[str] = field(default_factory=list)
    computed_series: int = 0

    @property
    def series_per_second(self) -> float:
        """Series forecast by this run (``computed_series``) per second of its wall time (staging and collecting
        included)."""
        return self.computed_series / self.seconds if self.seconds > 0 else 0.0


def _source_files(source: str | os.PathLike[str]) -> list[Path]:
    """The Parquet files of ``source`` (a file, a folder searched recursively, or a glob), sorted.

    Raises
    ------
    InvalidInputError
        Nothing matches.
    """
    text = str(source)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
    elif any(c in text for c in "*?["):
        files = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
    else:
        files = [path] if path.is_file() else []
    if not files:
        msg = f"batch input '{text}': no Parquet file found (give a .parquet file, a folder of them or a glob)"
        raise InvalidInputError(msg, field="data")
    return files


def plan_partitions(files: Sequence[Path], *, n_partitions: int | None = None,
                    rows_per_partition: int = ROWS_PER_PARTITION) -> tuple[int, int]:
    """Check the input's columns and choose the number of partitions; ``(n_partitions, input rows)``.

    The row count comes from the Parquet metadata (no data is read).

    Raises
    ------
    InvalidInputError
        A file that is not Parquet (or files whose columns differ), or a required column (``unique_id``,
        ``ds``, ``y``) missing, naming it and the columns found.
    InvalidParameterError
        ``n_partitions`` or ``rows_per_partition`` below 1.
    """
    _check_schemas(files)
    lf = pl.scan_parquet(list(files))
    try:
        columns = lf.collect_schema().names()
        rows = int(lf.select(pl.len()).collect().item())
    except (pl.exceptions.PolarsError, OSError) as exc:  # not Parquet, truncated, files whose columns differ
        msg = f"batch input: cannot read it as one Parquet data set ({exc})"
        raise InvalidInputError(msg, field="data") from exc
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        msg = f"batch input: column(s) {missing} missing; found {columns} (the batch job reads unique_id, ds, y)"
        raise InvalidInputError(msg, field="data")
    if isinstance(rows_per_partition, bool) or not isinstance(rows_per_partition, int) or rows_per_partition < 1:
        msg = f"rows_per_partition must be an integer >= 1, got {rows_per_partition!r}"
        raise InvalidParameterError(msg, field="rows_per_partition")
    if n_partitions is None:
        return max(1, math.ceil(rows / rows_per_partition)), rows
    if isinstance(n_partitions, bool) or not isinstance(n_partitions, int) or not 1 <= n_partitions <= 100_000:
        msg = f"n_partitions must be an integer in [1, 100000], got {n_partitions!r}"
        raise InvalidParameterError(msg, field="n_partitions")
    return n_partitions, rows


def _check_schemas(files: Sequence[Path]) -> None:
    """Refuse files whose ``unique_id``/``ds``/``y`` types differ (read from each file's Parquet footer only).

    Raises
    ------
    InvalidInputError
        Naming the column, the types and a file of each type.
    """
    first: dict[str, tuple[pl.DataType, Path]] = {}
    for path in files:
        try:
            schema = pl.read_parquet_schema(path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            msg = f"batch input: cannot read it as one Parquet data set ({exc})"
            raise InvalidInputError(msg, field="data", details={"file": str(path)}) from exc
        for col in REQUIRED:
            if col not in schema:
                continue
            seen = first.setdefault(col, (schema[col], path))
            if seen[0] != schema[col]:
                msg = (f"batch input: column {col!r} has different types across files: {seen[0]} in '{seen[1]}', "
                       f"{schema[col]} in '{path}'; write every file with the same type (for example cast {col!r} "
                       f"to {seen[0]})")
                raise InvalidInputError(msg, field="data", details={
                    "column": col, "files": {str(seen[1]): str(seen[0]), str(path): str(schema[col])}})


def _check_output(folder: Path, source: str | os.PathLike[str], files: Sequence[Path]) -> None:
    """Refuse an output folder that is the input folder, lies inside it, or holds input files.

    The job writes ``input/``, ``parts/`` and ``forecasts.parquet`` under the output folder and removes
    ``input/`` at the end: inside the input folder its files would be read back as input on a rerun; around
    the input, the input could be removed.

    Raises
    ------
    InvalidParameterError
        Naming both folders.
    """
    out = folder.resolve()
    src = Path(source)
    roots = [src.resolve()] if src.is_dir() else []
    inside = [r for r in roots if out == r or r in out.parents]
    holds = [p for p in files if out in p.resolve().parents]
    if inside or holds:
        what = (f"is the input folder or lies inside it ('{inside[0]}')" if inside else
                f"holds input files ('{holds[0]}')")
        msg = (f"output folder '{folder}' {what}: the job's own files would be read as input or the input "
               f"removed; give an output folder outside the input")
        raise InvalidParameterError(msg, field="output")


def _check_n_jobs(n_jobs: int) -> int:
    """Worker count from ``n_jobs`` (-1: every CPU; else a count >= 1).

    Raises
    ------
    InvalidParameterError
        0, a negative value other than -1, or not an integer.
    """
    from forecasting.models.local import resolve_n_jobs

    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or (n_jobs < 1 and n_jobs != -1):
        msg = f"n_jobs must be -1 (every CPU) or an integer >= 1, got {n_jobs!r}"
        raise InvalidParameterError(msg, field="n_jobs")
    return resolve_n_jobs(n_jobs)


def default_output(identity: dict[str, Any], artifacts_dir: str | os.PathLike[str] | None = None) -> Path:
    """The job's folder in the artifact store: ``<artifacts_dir>/batch/<job id>``, the job id a digest of
    ``identity``; ``artifacts_dir`` defaults to ``FORECASTING_ARTIFACTS_DIR``, else ``var/artifacts``."""
    from forecasting.store.store import DEFAULT_ARTIFACTS_DIR

    root = Path(artifacts_dir or os.environ.get("FORECASTING_ARTIFACTS_DIR") or DEFAULT_ARTIFACTS_DIR)
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return root / "batch" / digest


def _stage(files: Sequence[Path], folder: Path, n_partitions: int) -> list[int]:
    """Write each partition's rows under ``folder/input/_part=<k>/`` in one streaming pass (once per job);
    the non-empty partitions (also kept in ``partitions.json``).

    The input is read in record batches of at most :data:`STAGE_BATCH_ROWS` rows (pyarrow's
    ``ParquetFile.iter_batches``), each split by partition and written as one file per
    partition, so memory holds one batch whatever the input's size (polars' partitioned sink
    buffered about 0.4 GB more on 28 million rows).
    """
    import pyarrow.parquet as pq

    record = folder / "partitions.json"
    if record.exists():
        return [int(k) for k in json.loads(record.read_text())]
    staged = folder / "input"
    shutil.rmtree(staged, ignore_errors=True)
    part = (pl.col("unique_id").cast(pl.String).hash(seed=0) % n_partitions).alias("_part")
    present: set[int] = set()
    batch_no = 0
    for path in files:
        reader = pq.ParquetFile(path)
        for batch in reader.iter_batches(batch_size=STAGE_BATCH_ROWS):
            frame = pl.DataFrame(pl.from_arrow(batch)).with_columns(part)
            for (k,), rows in frame.partition_by("_part", as_dict=True, include_key=False).items():
                target = staged / f"_part={k}"
                target.mkdir(parents=True, exist_ok=True)
                rows.select(*REQUIRED, pl.exclude(*REQUIRED)).write_parquet(target / f"{batch_no:07d}.parquet")
                present.add(int(k))
            batch_no += 1
    tmp = record.with_name(".partitions.json.tmp")
    tmp.write_text(json.dumps(sorted(present)))
    os.replace(tmp, record)
    return sorted(present)


def _part_paths(folder: Path, k: int) -> tuple[Path, Path]:
    return folder / "parts" / f"part-{k:05d}.parquet", folder / "parts" / f"part-{k:05d}.json"


@functools.lru_cache(maxsize=4)
def _loaded(path: str) -> Any:
    """A saved model folder, loaded once per worker process."""
    from forecasting.loading import load

    return load(path)


def _forecast_partition(k: int, job: _Job, cores: int) -> PartitionOutcome:
    """Forecast partition ``k`` of ``job`` and write its part (a task of :func:`run_tasks`)."""
    from forecasting.service.core import forecast, forecast_fitted

    started = time.perf_counter()
    folder = Path(job.folder)
    frame = pl.read_parquet(folder / "input" / f"_part={k}")
    fill = {"fill_missing": job.fill_missing, "fill_gaps": job.fill_gaps}
    try:
        if job.model_path is not None:
            result = forecast_fitted(_loaded(job.model_path), frame, h=job.h, freq=job.freq, level=job.level,
                                     **fill)  # type: ignore[arg-type]
        else:
            result = forecast(frame, model=job.spec or "auto", h=job.h, freq=job.freq, level=job.level, n_jobs=cores,
                              **fill)  # type: ignore[arg-type]
    except ForecastingError as exc:  # the library's advice names its own parameters: say the batch options
        if "fill_missing" in exc.message or "fill_gaps" in exc.message:
            exc.message = (f"{exc.message} (batch: --fill-missing / --fill-gaps on the command line, "
                           f"fill_missing= / fill_gaps= in batch_forecast)")
            exc.args = (exc.message,)
        raise
    out = result.forecasts
    data_path, meta_path = _part_paths(folder, k)
    tmp = data_path.with_name(f".{data_path.name}.{os.getpid()}.tmp")
    out.write_parquet(tmp)
    os.replace(tmp, data_path)
    outcome = PartitionOutcome(partition=k, series=int(out["unique_id"].n_unique()), rows=out.height,
                               seconds=time.perf_counter() - started, fallbacks=len(result.fallbacks),
                               notes=list(dict.fromkeys(result.notes)))
    tmp = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(outcome)))
    os.replace(tmp, meta_path)
    return outcome


def _finished(folder: Path, k: int) -> PartitionOutcome | None:
    data_path, meta_path = _part_paths(folder, k)
    if not (meta_path.exists() and data_path.exists()):
        return None
    return PartitionOutcome(**json.loads(meta_path.read_text()))


def _claim(folder: Path, identity: dict[str, Any]) -> None:
    """Record the job in ``folder/job.json``, or check that the folder holds this same job.

    Raises
    ------
    InvalidParameterError
        The folder holds a different job (naming what differs), or cannot be created or written.
    """
    record = folder / "job.json"
    if record.exists():
        held = json.loads(record.read_text())
        if held != identity:
            diff = sorted(k for k in set(held) | set(identity) if held.get(k) != identity.get(k))
            msg = (f"output folder '{folder}' holds a different batch job (differs in: {', '.join(diff)}); "
                   f"give another output folder, or delete this one to start afresh")
            raise InvalidParameterError(msg, field="output")
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "parts").mkdir(exist_ok=True)
        tmp = record.with_name(".job.json.tmp")
        tmp.write_text(json.dumps(identity, indent=1, sort_keys=True))
        os.replace(tmp, record)
    except OSError as exc:
        msg = f"output folder '{folder}' cannot be written: {exc.strerror or exc}"
        raise InvalidParameterError(msg, field="output") from exc


def batch_forecast(
    source: str | os.PathLike[str],
    *,
    model: Any = "auto",
    model_path: str | os.PathLike[str] | None = None,
    h: int,
    freq: str | int | None = None,
    level: Sequence[float] = (),
    fill_missing: str | None = None,
    fill_gaps: bool = False,
    output: str | os.PathLike[str] | None = None,
    n_partitions: int | None = None,
    rows_per_partition: int = ROWS_PER_PARTITION,
    engine: Engine = "local",
    n_jobs: int = 1,
    ray_address: str | None = None,
    progress: Progress | None = None,
    artifacts_dir: str | os.PathLike[str] | None = None,
) -> BatchResult:
    """Forecast every series of a Parquet data set, partition by partition (see the module docstring).

    Parameters
    ----------
    source : path
        A Parquet file, a folder of them (recursive) or a glob; long format ``unique_id, ds, y``
        (plus exogenous columns the model uses).
    model : spec
        Registry name or spec, fitted on each partition (e.g. ``"seasonal_naive"``,
        ``{"name": "auto_ets", "params": {...}}``). Ignored when ``model_path`` is given.
    model_path : path, optional
        A saved or exported global model folder (:func:`forecasting.loading.load`; a registered
        version's folder: :func:`registered_source`): it forecasts every series without retraining.
    h : int
        Steps per series.
    freq : str or int, optional
        Inferred per partition when omitted.
    level : numbers in (0, 100)
        Prediction-interval levels, percent.
    fill_missing : {"zero", "forward", "interpolate"}, optional; fill_gaps : bool
        As :func:`forecasting.service.forecast`: fill null ``y`` values, and missing timestamps, in each partition.
    output : path, optional
        The job's folder; default in the artifact store (:func:`default_output`).
    n_partitions : int, optional
        Default ``ceil(rows / rows_per_partition)``.
    rows_per_partition : int
        Input rows per partition when ``n_partitions`` is not given (default 2,000,000).
    engine : {"local", "ray"}; n_jobs : int; ray_address : str, optional
        Where partitions run (:func:`forecasting.engines.run_tasks`): ``local`` with
        ``n_jobs`` worker processes (1: this process; -1: every CPU), or Ray (``n_jobs`` local CPUs, or the
        cluster at ``ray_address``).
    progress : callable, optional
        ``progress(fraction, message)`` after each partition.
    artifacts_dir : path, optional
        The artifact store holding the default output folder (:func:`default_output`).

    Returns
    -------
    BatchResult

    Raises
    ------
    InvalidInputError
        No input file, a required column missing, files whose ``unique_id``/``ds``/``y`` types differ (naming
        them), an input without rows (the data contract's empty-data error); a partition's data invalid (naming
        the series and rows).
    InvalidParameterError
        ``h``, ``level``, ``engine``, ``n_partitions``, ``n_jobs`` (0 or below -1) invalid; the output folder
        holding another job, being (or inside) the input folder, or not writable.
    UnknownModelError, CapabilityError
        An unknown model; Ray not installed.
    """
    started = time.perf_counter()
    h = validate_h(h)
    levels = tuple(validate_levels(level))
    engine = check_engine(engine)
    n_jobs = _check_n_jobs(n_jobs)
    fill_missing = _check_fill(fill_missing)
    files = _source_files(source)
    n_partitions, rows_in = plan_partitions(files, n_partitions=n_partitions, rows_per_partition=rows_per_partition)
    if rows_in == 0:
        from forecasting.data import validate_panel

        validate_panel(pl.read_parquet(files[0], n_rows=0))  # the data contract's empty-data error
    spec = None if model_path is not None else _spec_dict(model)
    fingerprint = [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    saved = None if model_path is None else str(Path(model_path).resolve())
    identity = {"format": FORMAT, "input": fingerprint, "model": spec, "model_path": saved,
                "h": h, "freq": freq, "level": list(levels), "n_partitions": n_partitions,
                **({"fill_missing": fill_missing} if fill_missing else {}), **({"fill_gaps": True} if fill_gaps else {})}
    folder = Path(output) if output is not None else default_output(identity, artifacts_dir)
    _check_output(folder, source, files)
    _claim(folder, identity)
    present = _stage(files, folder, n_partitions)
    done_before = {k: o for k in present if (o := _finished(folder, k)) is not None}
    todo = [(k, _forecast_partition) for k in present if k not in done_before]
    outcomes: dict[int, PartitionOutcome] = dict(done_before)
    job = _Job(folder=str(folder), spec=spec, model_path=saved, h=h, freq=freq, level=levels,
               fill_missing=fill_missing, fill_gaps=bool(fill_gaps))

    def done(k: int, outcome: PartitionOutcome) -> None:
        outcomes[k] = outcome
        if progress is not None:
            series = sum(o.series for o in outcomes.values())
            progress(len(outcomes) / max(1, len(present)),
                     f"partition {k} done ({outcome.series} series in {outcome.seconds:.1f} s); "
                     f"{len(outcomes)}/{len(present)} partitions, {series} series")

    if todo:
        run_tasks(todo, job, done, engine=engine, n_jobs=n_jobs, address=ray_address)
    out = _collect(folder, present)
    notes = list(dict.fromkeys(n for k in sorted(outcomes) for n in outcomes[k].notes))
    notes.append(f"{len(present)} non-empty partitions of {n_partitions} ({rows_in} input rows); "
                 f"{len(todo)} computed by engine '{engine}', {len(done_before)} finished earlier")
    return BatchResult(output=out, folder=folder, n_partitions=n_partitions, computed=sorted(k for k, _ in todo),
                       skipped=sorted(done_before), series=sum(o.series for o in outcomes.values()),
                       rows=sum(o.rows for o in outcomes.values()), seconds=time.perf_counter() - started,
                       task_seconds=sum(o.seconds for o in outcomes.values()),
                       fallbacks=sum(o.fallbacks for o in outcomes.values()), notes=notes,
                       computed_series=sum(o.series for k, o in outcomes.items() if k not in done_before))


def _check_fill(fill_missing: str | None) -> str | None:
    """``fill_missing`` checked against the data contract's policies before any partition runs."""
    from typing import get_args

    from forecasting.data import FillPolicy

    if fill_missing is not None and fill_missing not in get_args(FillPolicy):
        msg = f"fill_missing must be one of {list(get_args(FillPolicy))}, got {fill_missing!r}"
        raise InvalidParameterError(msg, field="fill_missing")
    return fill_missing


def _spec_dict(model: Any) -> dict[str, Any]:
    """The spec as plain data (parsed here: an unknown name fails before any partition runs)."""
    import msgspec

    spec: dict[str, Any] = msgspec.to_builtins(parse_spec(model))
    return spec


def registered_source(ref: str, *, tenant: str, database_url: str,
                      artifacts_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], Path | None, str | int | None]:
    """What a batch job needs of a registered version ``name@version`` (or ``name@alias``): its spec, its
    artifact folder (``None`` for a spec-only version, which refits on each partition) checked against the
    stored digests, and its training ``freq``.

    Raises
    ------
    NotFoundError
        No such model or version; no registry database there (nothing is created) or one that is not a registry.
    ArtifactIntegrityError
        The artifact's files changed since registration.
    CapabilityError
        A tabular model.
    """
    import sqlalchemy

    from forecasting.errors import CapabilityError, NotFoundError
    from forecasting.store import Store

    url = sqlalchemy.engine.make_url(database_url)
    where = f"registry database '{url.database if url.get_backend_name() == 'sqlite' else url.render_as_string()}'"
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:" and \
            not Path(url.database).is_file():  # Store would create an empty database file
        msg = (f"registered: model '{ref}' not found: there is no {where} (set FORECASTING_STATE_DIR or "
               f"FORECASTING_DATABASE_URL to the registry's, or give --model)")
        raise NotFoundError(msg, field="registered", details={"database": str(url.database)})
    store = Store(database_url, artifacts_dir, migrate=False, cache_size=0)
    try:
        try:
            info = store.get(ref, tenant=tenant)
        except sqlalchemy.exc.SQLAlchemyError as exc:  # not a registry (no tables), unreadable
            msg = f"registered: the {where} cannot be read as a model registry ({type(getattr(exc, 'orig', None) or exc).__name__})"
            raise NotFoundError(msg, field="registered", details={"database": str(url.database)}) from exc
        if info.kind != "forecast":
            msg = f"model '{info.ref}' is a tabular model: batch forecasts need a forecasting model"
            raise CapabilityError(msg, field="model")
        folder = store.artifact_path(info) if info.artifact is not None else None
        return dict(info.spec), folder, info.fingerprint.get("freq")
    finally:
        store.close()


def _collect(folder: Path, present: Sequence[int]) -> Path:
    """Concatenate the parts into ``forecasts.parquet`` (streaming) and remove the staged input."""
    target = folder / "forecasts.parquet"
    parts = [str(_part_paths(folder, k)[0]) for k in present]
    tmp = folder / ".forecasts.parquet.tmp"
    if parts:
        pl.scan_parquet(parts).sink_parquet(tmp)
    else:
        pl.DataFrame(schema={"unique_id": pl.String, "ds": pl.Datetime("us")}).write_parquet(tmp)
    os.replace(tmp, target)
    shutil.rmtree(folder / "input", ignore_errors=True)
    return target
