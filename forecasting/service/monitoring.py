"""Models that keep learning: observations, served-forecast accuracy, retraining (champion/challenger), anomalies.

The one place for these use cases (the API's ``forecasting.api.monitoring`` routes and the CLI's
``observe``/``retrain``/``accuracy``/``anomalies`` commands are a call here plus a mapping):

* **observations** (:meth:`Monitoring.observe`, :meth:`Monitoring.observations`): actuals of a registered
  model's series, validated by the data contract (:func:`forecasting.data.validate_panel` at the version's
  frequency), refused as a whole when a row is bad (unknown series, a timestamp at or before the stored ones,
  null/NaN/inf ``y``, off the frequency), gaps reported; kept append-only (:mod:`forecasting.store.monitoring`).
  The training data of each registered version is kept the same way (:meth:`Monitoring.stage_training` when
  the job is queued, moved in by :meth:`Monitoring.merge_staged` once it succeeded), so a model's series are known and a retrain trains on all the data;
* **accuracy** (:meth:`Monitoring.record_served`, :meth:`Monitoring.accuracy`): every forecast served for a
  registered version is kept with its version, origin and horizon step, and scored once its actuals arrive:
  sMAPE and MASE (M4 definitions, :func:`forecasting.evaluation.evaluate`) and the coverage of each level, by
  version, horizon step or series, over a time range;
* **retraining** (:class:`RetrainPolicy`, :meth:`Monitoring.retrain`, :class:`RetrainScheduler`): per model a
  schedule (cron or interval; APScheduler 3 with its SQLAlchemy job store in the registry database, so
  schedules survive restarts, with ``max_instances=1`` and ``coalesce``), a trigger on N new observations and
  one on accuracy drift. A retrain trains a challenger on all the data, scores champion and challenger on the
  latest hold-out window (:func:`forecasting.backtest.holdout_scores`; a saved champion forecasts the window
  from the data before it without refitting), registers the challenger and moves ``production`` only when it
  wins by the policy's margin; every decision is recorded with both scores. A database lock keeps one retrain
  per model at a time, across processes;
* **anomalies** (:func:`detect_anomalies` on inline data, :meth:`Monitoring.observation_anomalies` on a model's
  new observations): points outside an interval at ``level``, with a score (:mod:`forecasting.anomalies`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec
import numpy as np
import polars as pl

from forecasting.anomalies import Method, insample_intervals, score_points
from forecasting.data import (
    MAX_HORIZON,
    Panel,
    _check_columns,
    _examples,
    find_gaps,
    find_invalid_y,
    infer_freq,
    normalize_freq,
    to_polars,
    validate_h,
    validate_levels,
    validate_panel,
)
from forecasting.errors import (
    CapabilityError,
    InvalidInputError,
    InvalidParameterError,
    NotFoundError,
)
from forecasting.service.core import Limits, check_limits, resolve
from forecasting.store import Store, VersionInfo
from forecasting.store.monitoring import DecisionInfo, MonitoringStore


class RetrainQueue(Protocol):
    """Where a scheduled retrain is queued: :class:`forecasting.jobs.JobRunner` (its ``submit_retrain``). A
    protocol, so the scheduler here does not import the runner that imports :class:`Monitoring`."""

    def submit_retrain(self, tenant: str, name: str, *, trigger: str = "schedule",
                       if_pending: Literal["skip", "refuse"] = "skip") -> str | None:
        """Queue a retrain of model ``name`` for ``tenant``; the job id, or None when one is already queued
        (``if_pending="refuse"``: a ``ConflictError`` naming it instead)."""
        ...


__all__ = [
    "AccuracyResult",
    "AnomalyResult",
    "Monitoring",
    "ObservationResult",
    "RetrainPolicy",
    "RetrainScheduler",
    "detect_anomalies",
]

log = logging.getLogger("forecasting.monitoring")

_KEYS = ["unique_id", "ds"]
#: the input row number carried through validation (messages name rows by it)
_ROW = "_input_row"
AccuracyBy = Literal["version", "step", "series"]
Trigger = Literal["schedule", "observations", "drift", "manual"]
#: the default level of anomaly intervals, percent
DEFAULT_ANOMALY_LEVEL = 99.0
#: a retraining schedule's longest interval_s, seconds (beyond it APScheduler overflows)
MAX_INTERVAL_S = 10 * 365 * 86400


# --------------------------------------------------------------------------- results and the policy
@dataclass(frozen=True)
class ObservationResult:
    """What :meth:`Monitoring.observe` stored.

    Attributes
    ----------
    model : str
    rows : int
        Rows stored (replacements included).
    replaced : int
        Rows that overwrote stored points (``replace=True``).
    series : list of str
        Series of the batch.
    gaps : list of dict
        Per series with missing timestamps (between the stored ones and the batch, or inside it):
        ``{"unique_id", "missing", "examples"}``; the points are stored all the same.
    retrain : str or None
        The retrain trigger this batch fired (``"observations"`` or ``"drift"``), if any.
    notes : list of str
    """

    model: str
    rows: int
    replaced: int
    series: list[str]
    gaps: list[dict[str, Any]]
    retrain: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AccuracyResult:
    """Realised accuracy of the served forecasts of a model (:meth:`Monitoring.accuracy`).

    Attributes
    ----------
    model : str
    by : {"version", "step", "series"}
    rows : pl.DataFrame
        One row per ``version`` (and ``step`` or ``unique_id``): ``points`` (forecast points with an actual),
        ``series``, ``smape`` (0-200), ``mase`` (null without a MASE scale), ``coverage_<L>`` per level served
        (fraction in [0, 1], null where no point had that level).
    levels : list of float
    """

    model: str
    by: str
    rows: pl.DataFrame
    levels: list[float]


@dataclass(frozen=True)
class AnomalyResult:
    """Points outside their interval (:func:`detect_anomalies`, :meth:`Monitoring.observation_anomalies`).

    Attributes
    ----------
    points : pl.DataFrame
        ``unique_id, ds, y, center, lo, hi, score, anomaly`` for every scored point (``center``: the fitted value
        or the served forecast).
    level : float
    method : str
        ``"conformal"``, ``"normal"`` or ``"served"`` (the served forecast's interval).
    model : str
        The model whose interval was used.
    notes : list of str
    panel : Panel, optional
        The validated inline data (:func:`detect_anomalies`): its ``utc_offset`` is the caller's, at which the
        answers show ``ds`` (:func:`forecasting.data.at_caller_offset`); None for a model's observations.
    """

    points: pl.DataFrame
    level: float
    method: str
    model: str
    notes: list[str] = field(default_factory=list)
    panel: Panel | None = None

    @property
    def anomalies(self) -> pl.DataFrame:
        """The rows flagged, highest score first."""
        return self.points.filter(pl.col("anomaly")).sort("score", descending=True)


class RetrainPolicy(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """When and how a model is retrained (``PUT /v1/models/{name}/retraining``).

    Attributes
    ----------
    cron : str, optional
        A crontab expression (5 fields, UTC), e.g. ``"0 3 * * *"``.
    interval_s : int, optional
        Seconds between scheduled retrains (1 to MAX_INTERVAL_S, 10 years); not with ``cron`` (a schedule is one
        or the other).
    every_n_observations : int, optional
        Retrain once this many observations arrived since the last retrain.
    drift_factor : float, optional
        Retrain when the champion's realised MASE over its last ``drift_window`` scored points exceeds its
        hold-out MASE times this factor (> 1).
    drift_window : int
        Points of that window (default 48).
    margin : float
        Relative improvement the challenger needs to take ``production`` (0.05: a score 5 % lower), in [0, 1).
    metric : {"mase", "smape"}
        The score compared (lower wins); sMAPE when no series has a MASE scale.
    h : int, optional
        The hold-out window (default: the champion's validated horizon), at most the server's
        ``FORECASTING_MAX_H``.
    model : str or dict, optional
        The challenger's spec (default: the champion's).
    warm_start : bool, default False
        The challenger continues boosting from the champion's boosters on all the data instead of training
        from scratch (XGBoost ``xgb_model=``, LightGBM ``init_model=``;
        :meth:`forecasting.models.trees.TreeForecaster.warm_start_from`), keeping the champion's conformal
        scores; its hold-out score continues from the champion on the data before the window. XGBoost and
        LightGBM champions only (the networks' continued training is not offered); not with ``model``.
    warm_rounds : int, optional
        Boosting rounds a warm start adds (default: a quarter of the champion's ``n_estimators``, at least 1).
    """

    cron: str | None = None
    interval_s: int | None = None
    every_n_observations: int | None = None
    drift_factor: float | None = None
    drift_window: int = 48
    margin: float = 0.0
    metric: Literal["mase", "smape"] = "mase"
    h: int | None = None
    model: str | dict[str, Any] | None = None
    warm_start: bool = False
    warm_rounds: int | None = None

    def check(self, *, max_h: int = MAX_HORIZON) -> RetrainPolicy:
        """Validate the fields (returns ``self``).

        Parameters
        ----------
        max_h : int
            The largest ``h`` (the server's ``FORECASTING_MAX_H``, :class:`~forecasting.service.core.Limits`).

        Raises
        ------
        InvalidParameterError
            A malformed cron expression or one that never fires (APScheduler's
            ``CronTrigger.get_next_fire_time`` finds no time: ``0 0 31 2 *``), ``cron`` together with
            ``interval_s``, a count or window below 1, an interval above ``MAX_INTERVAL_S``, ``h`` above
            ``max_h``, a factor <= 1, a margin outside [0, 1), a bad parameter of ``model``, naming the field.
        UnknownModelError
            ``model`` names no registered model (field ``model.name``).
        """
        if self.cron is not None:
            self._check_cron(self.cron)
            if self.interval_s is not None:
                msg = (f"cron ({self.cron!r}) and interval_s ({self.interval_s}) are both set: a schedule is one or "
                       f"the other, so one of them would be ignored; drop one")
                raise InvalidParameterError(msg, field="interval_s", details={"fields": ["cron", "interval_s"]})
        if self.h is not None:
            validate_h(self.h, max_h=max_h)
        if self.model is not None:  # an unknown model or parameter now, not at the retrain
            from forecasting.models.registry import parse_spec

            parse_spec(self.model)
        if self.interval_s is not None and self.interval_s > MAX_INTERVAL_S:  # beyond it APScheduler overflows
            msg = f"interval_s must be at most {MAX_INTERVAL_S} (10 years), got {self.interval_s}"
            raise InvalidParameterError(msg, field="interval_s")
        if self.warm_start and self.model is not None:
            msg = "warm_start continues the champion's own model: leave model unset (or set warm_start to false)"
            raise InvalidParameterError(msg, field="warm_start")
        for name in ("interval_s", "every_n_observations", "h", "warm_rounds"):
            value = getattr(self, name)
            if value is not None and value < 1:
                msg = f"{name} must be an integer >= 1, got {value}"
                raise InvalidParameterError(msg, field=name)
        if self.drift_window < 1:
            msg = f"drift_window must be an integer >= 1, got {self.drift_window}"
            raise InvalidParameterError(msg, field="drift_window")
        if self.drift_factor is not None and not self.drift_factor > 1:
            msg = f"drift_factor must be > 1 (realised MASE over hold-out MASE), got {self.drift_factor}"
            raise InvalidParameterError(msg, field="drift_factor")
        if not 0 <= self.margin < 1:
            msg = f"margin must be in [0, 1) (relative improvement), got {self.margin}"
            raise InvalidParameterError(msg, field="margin")
        return self

    @staticmethod
    def _check_cron(cron: str) -> None:
        """A crontab expression that fires at least once from now on (refused naming ``cron``)."""
        try:
            trigger = crontab_trigger(cron)
        except ValueError as exc:
            msg = f"cron: {cron!r} is not a crontab expression (minute hour day month weekday): {exc}"
            raise InvalidParameterError(msg, field="cron") from None
        if trigger.get_next_fire_time(None, datetime.now(UTC)) is None:
            msg = (f"cron: {cron!r} never fires (no such date, e.g. 31 February): the model would never be "
                   f"retrained; give a date that exists")
            raise InvalidParameterError(msg, field="cron")


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab(5)'s numbering: 0 (and 7) is Sunday


def _crontab_days(field: str) -> set[int]:
    """The days (0 = Sunday ... 6) of a crontab weekday field: numbers 0-7, names, ranges, lists, steps."""
    days: set[int] = set()
    for item in field.lower().split(","):
        base, _, step_text = item.partition("/")
        if not step_text.isdigit() and step_text:
            msg = f"weekday step {step_text!r} is not a positive integer"
            raise ValueError(msg)
        step = int(step_text or 1)
        ends = ["0", "7"] if base == "*" else base.split("-")
        try:
            first, last = (_CRON_DAYS.index(e) if e in _CRON_DAYS else int(e) for e in (ends[0], ends[-1]))
            if len(ends) > 2:
                raise ValueError
        except ValueError:
            msg = f"weekday {item!r} is not a day number 0-7 (0 and 7: Sunday), a name (sun-sat), a range or a step"
            raise ValueError(msg) from None
        if step_text and len(ends) == 1:
            last = 7  # 'a/n': from a to the end of the week, as cron(8)
        if not (0 <= first <= 7 and 0 <= last <= 7 and first <= last and step >= 1):
            msg = f"weekday {item!r} is not within 0-7 (0 and 7: Sunday) in increasing order with a step >= 1"
            raise ValueError(msg)
        days.update(day % 7 for day in range(first, last + 1, step))
    return days


def crontab_trigger(cron: str) -> Any:
    """The APScheduler trigger that fires when crontab(5) would for ``cron`` (UTC).

    APScheduler 3's ``CronTrigger.from_crontab`` numbers weekdays from Monday (``1`` is Tuesday there), refuses
    ``7`` and fires only when the day of month *and* the weekday match; crontab(5) (Vixie cron, POSIX ``crontab``)
    numbers them from Sunday (0 or 7) and, when both fields are restricted (neither starts with ``*``), fires when
    *either* matches. This translates: weekdays become names, and two restricted day fields an ``OrTrigger``.

    Parameters
    ----------
    cron : str
        Five fields: minute hour day-of-month month day-of-week.

    Returns
    -------
    apscheduler.triggers.cron.CronTrigger or apscheduler.triggers.combining.OrTrigger

    Raises
    ------
    ValueError
        Not five fields, or a field APScheduler or the weekday rules above refuse (the message says which).

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> crontab_trigger("0 3 * * 1").get_next_fire_time(None, datetime(2026, 12, 2, tzinfo=UTC)).strftime("%A")
    'Monday'
    """
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger

    fields = cron.split()
    if len(fields) != 5:
        msg = f"Wrong number of fields; got {len(fields)}, expected 5"
        raise ValueError(msg)
    minute, hour, day, month, weekday = fields
    days = _crontab_days(weekday)
    names = "*" if len(days) == 7 else ",".join(_CRON_DAYS[d] for d in sorted(days))

    def at(day_field: str, weekday_field: str) -> Any:
        return CronTrigger(minute=minute, hour=hour, day=day_field, month=month, day_of_week=weekday_field,
                           timezone=UTC)

    if day.startswith("*") or weekday.startswith("*"):
        return at(day, names)
    return OrTrigger([at(day, "*"), at("*", names)])


def _season(spec: dict[str, Any]) -> int:
    season = (spec.get("params") or {}).get("season_length")
    return int(max(season) if isinstance(season, list) else (season or 1))


def _rows_text(rows: Sequence[int]) -> str:
    listed = ", ".join(str(r) for r in rows[:5])
    return listed + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def _internal_ds(frame: pl.DataFrame) -> pl.DataFrame:
    """``ds`` as the store keeps it: dates as datetimes, aware timestamps as naive UTC (as a validated panel)."""
    dtype = frame.schema["ds"]
    if dtype == pl.Date:
        return frame.with_columns(pl.col("ds").cast(pl.Datetime("us")))
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return frame.with_columns(pl.col("ds").dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    return frame


def _bound(value: Any, dtype: pl.DataType, name: str) -> Any:
    """A ``start``/``end`` query value in the type of the stored ``ds``."""
    integer = dtype == pl.Int64
    if value is None or (isinstance(value, datetime) and not integer) or (
            isinstance(value, int) and not isinstance(value, bool) and integer):
        return value
    if isinstance(value, bool | int | datetime):
        msg = (f"{name} must be {'an integer step' if integer else 'a timestamp (ISO 8601)'} like the stored ds, "
               f"got {value!r}")
        raise InvalidParameterError(msg, field=name)
    try:
        if dtype == pl.Int64:
            return int(value)
        parsed = pl.Series([str(value)]).str.to_datetime(time_unit="us")
        if parsed.dtype.time_zone is not None:  # type: ignore[attr-defined]
            parsed = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return parsed.item()
    except (ValueError, pl.exceptions.PolarsError):
        msg = f"{name} must be a timestamp (ISO 8601) or an integer step like the stored ds, got {value!r}"
        raise InvalidParameterError(msg, field=name) from None


def _range(start: Any, end: Any, dtype: pl.DataType) -> tuple[Any, Any]:
    """``start`` and ``end`` in the type of the stored ``ds`` (:func:`_bound`), refused when ``start`` is after
    ``end`` (an empty range is a mistake, not an empty answer)."""
    lo, hi = _bound(start, dtype, "start"), _bound(end, dtype, "end")
    if lo is not None and hi is not None and lo > hi:
        msg = f"start ({start}) is after end ({end}): the range holds no point"
        raise InvalidParameterError(msg, field="start")
    return lo, hi


# --------------------------------------------------------------------------- served forecasts, batched
#: results queued before the writer writes them at once (one Parquet part per model)
SERVED_BATCH = 256
#: seconds a served forecast waits at most in the queue (what a crash can lose)
SERVED_FLUSH_S = 1.0


@dataclass(frozen=True)
class _ServedRecord:
    """A served forecast as the request leaves it: the result (its forecast frame, alias, levels and the panel
    it started from) and when it was served; turned into rows by :func:`_served_frame` off the request."""

    tenant: str
    info: VersionInfo
    result: Any
    served_at: datetime


def _served_frame(records: Sequence[_ServedRecord], next_batch: Callable[[], int]) -> pl.DataFrame:
    """The rows kept for served forecasts of one model: ``unique_id, ds, y_hat, lo-L, hi-L..., step, version,
    served_at, origin, batch``, one row per forecast point.

    Built column by column for the whole batch: each record only contributes its columns (renamed; a level
    it does not have is nulls) and its version, served time and ``batch`` number (one increasing number per
    record, ``next_batch()``, so the later record wins for the same point), repeated with numpy; the step
    (1..h within a record's series) is one window over the batch and the origin (the last ``ds`` of each
    series' history: the validated panel is sorted by ``unique_id, ds``, so the row before each series' end)
    one join. No per-forecast query (the per-forecast ``group_by``/``over``/join cost ~0.7 ms each).
    """
    columns: dict[str, list[pl.Series | None]] = {"unique_id": [], "ds": [], "y_hat": []}
    heights, ids, items, ds_parts, end_parts = [], [], [], [], []
    for i, record in enumerate(records):
        result = record.result
        fc = _internal_ds(result.forecasts)
        names = {f"{result.alias}-{side}-{lv}": f"{side}-{float(lv):g}" for lv in result.level for side in ("lo", "hi")}
        names = {result.alias: "y_hat", **names}
        for target in names.values():  # a level first served in this batch: nulls for the records before
            columns.setdefault(target, [None] * i)
        got = {"unique_id": fc.get_column("unique_id").cast(pl.String), "ds": fc.get_column("ds")}
        got.update({target: fc.get_column(src) for src, target in names.items() if src in fc.columns})
        for target, parts in columns.items():
            parts.append(got.get(target))
        heights.append(fc.height)
        panel = result.panel
        ends = np.cumsum(np.fromiter(panel.lengths.values(), dtype=np.int64, count=len(panel.lengths))) - 1
        if ends.size and ends[-1] != panel.frame.height - 1:  # the frame keeps each series' tail (a saved model's
            uid = panel.frame.get_column("unique_id")         # stored history): its own series ends
            ends = (uid != uid.shift(-1)).fill_null(True).arg_true().to_numpy().astype(np.int64)
            ids.extend(uid.gather(ends).cast(pl.String).to_list())
        else:
            ids.extend(panel.lengths)
        ds_parts.append(panel.frame.get_column("ds"))
        end_parts.append(ends)
        items.append(np.full(len(ends), i, dtype=np.int64))
    counts = np.asarray(heights, dtype=np.int64)

    def whole(name: str, parts: list[pl.Series | None]) -> pl.Series:
        dtype = next(p.dtype for p in parts if p is not None)
        return pl.concat([pl.Series(name, [None] * n, dtype=dtype) if p is None else p.alias(name)
                          for p, n in zip(parts, heights, strict=True)], rechunk=True)

    served_at = np.array([r.served_at.astimezone(UTC).replace(tzinfo=None) for r in records], dtype="datetime64[us]")
    frame = pl.DataFrame([whole(name, parts) for name, parts in columns.items()
                          if any(p is not None for p in parts)]).with_columns(
        pl.Series("_item", np.repeat(np.arange(len(records), dtype=np.int64), counts)))
    if len({d.dtype for d in ds_parts}) == 1:  # one gather for the batch (a gather is a query: ~0.3 ms a record)
        starts = np.cumsum([0, *(len(d) for d in ds_parts[:-1])])
        origin = pl.concat(ds_parts).gather(np.concatenate([e + a for e, a in zip(end_parts, starts, strict=True)]))
    else:
        origin = pl.concat([d.gather(e) for d, e in zip(ds_parts, end_parts, strict=True)])
    origins = pl.DataFrame({"_item": np.concatenate(items), "unique_id": pl.Series(ids, dtype=pl.String),
                            "origin": origin})
    return (frame.with_columns(
                (pl.int_range(pl.len()).over("_item", "unique_id") + 1).alias("step"),
                pl.Series("version", np.repeat(np.array([r.info.version for r in records]), counts), dtype=pl.Int32),
                pl.Series("served_at", np.repeat(served_at, counts)).dt.replace_time_zone("UTC"))
            .join(origins, on=["_item", "unique_id"], how="left", maintain_order="left")
            .with_columns(pl.Series("batch", np.repeat(np.array([next_batch() for _ in records], dtype=np.int64),
                                                       counts)))
            .drop("_item"))


class _ServedWriter:
    """One daemon thread writing queued served forecasts in batches (:meth:`Monitoring.record_served`).

    ``put`` only appends to a list under a lock; the thread takes everything queued when
    :data:`SERVED_BATCH` records wait, :data:`SERVED_FLUSH_S` after the first one arrived, on ``drain`` (a
    reader) or on ``close``, and hands it to ``write`` (which must not raise: failures are its to log).
    """

    def __init__(self, write: Callable[[list[_ServedRecord]], None], *, max_items: int | None = None,
                 interval_s: float | None = None) -> None:
        self._write = write
        self.max_items = SERVED_BATCH if max_items is None else max_items
        self.interval_s = SERVED_FLUSH_S if interval_s is None else interval_s
        self._cond = threading.Condition()
        self._queue: list[_ServedRecord] = []
        self._queued = self._written = self._flush_to = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="served-forecasts", daemon=True)
        self._thread.start()

    def put(self, record: _ServedRecord) -> None:
        """Queue one record (constant time; the writer is woken by the first record and by a full batch). A
        record that arrives after :meth:`close` (a request finishing during shutdown) is written at once."""
        with self._cond:
            late = self._closed
            if not late:
                self._queue.append(record)
                self._queued += 1
                if len(self._queue) == 1 or len(self._queue) >= self.max_items:
                    self._cond.notify_all()
        if late:
            self._write([record])

    def drain(self) -> None:
        """Have everything queued so far written now, and wait until it is."""
        with self._cond:
            target = self._queued
            self._flush_to = max(self._flush_to, target)
            self._cond.notify_all()
            while self._written < target and self._thread.is_alive():
                self._cond.wait(0.5)

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                deadline = time.monotonic() + self.interval_s
                while (not self._closed and len(self._queue) < self.max_items and self._flush_to <= self._written
                       and (left := deadline - time.monotonic()) > 0):
                    self._cond.wait(left)
                records, self._queue = self._queue, []
                closed = self._closed
            if records:
                try:
                    self._write(records)
                except Exception:  # noqa: BLE001 - the writer thread must outlive a bad batch
                    log.warning("could not record %d served forecast(s)", len(records), exc_info=True)
            with self._cond:
                self._written += len(records)
                self._cond.notify_all()
                if closed and not self._queue:
                    return


# --------------------------------------------------------------------------- the use cases
@dataclass
class Monitoring:
    """Observations, accuracy, retraining and anomalies of one app's registered models.

    Parameters
    ----------
    store : Store
    limits : Limits
        Request-size limits (observation batches and inline anomaly data are held to them).
    trigger : callable, optional
        ``trigger(tenant, name, reason)`` runs a retrain off the request path (the app's
        :class:`RetrainScheduler` sets it); without one a trigger is only reported.
    background : bool, default False
        Refresh the accuracy summary (the gauges) after each batch in a background thread (the app) instead of
        before :meth:`observe` returns: scoring every served forecast is the costly part of a batch (about
        5 s for 1,000 series with three days of hourly forecasts on a loaded 2-core machine).
    """

    store: Store
    limits: Limits = dataclasses.field(default_factory=Limits)
    trigger: Callable[[str, str, str], None] | None = None
    background: bool = False

    def __post_init__(self) -> None:
        self.parts = MonitoringStore(self.store)
        self._pending: set[tuple[str, str]] = set()
        self._summaries: ThreadPoolExecutor | None = None
        self._recorder: _ServedWriter | None = None
        self._locks: dict[tuple[str, str], threading.RLock] = {}
        self._locks_guard = threading.Lock()

    # ------------------------------------------------------------------ observations
    def _forecast_info(self, tenant: str, name: str) -> VersionInfo:
        info = self.store.get(name, tenant=tenant)
        if info.kind != "forecast":
            msg = f"model '{name}' is a tabular model: observations and retraining are for forecast models"
            raise CapabilityError(msg, field="model")
        return info

    def stage_training(self, tenant: str, name: str, job: Any, frame: pl.DataFrame) -> None:
        """Keep a queued training job's data until the job ends (:class:`RegisteredModels` calls this): once it
        succeeded, the rows become the model's first observations (:meth:`merge_staged`)."""
        cols = [c for c in ("unique_id", "ds", "y") if c in frame.columns]
        if len(cols) < 3:
            return
        folder = self.parts.store.artifacts_dir / tenant / name / "_staged"
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".tmp-{job.id}.parquet"
        frame.select(cols).write_parquet(tmp)
        tmp.replace(folder / f"{job.id}.parquet")

    def merge_staged(self, tenant: str, name: str) -> None:
        """Move the data of finished training jobs into the model's observations (succeeded) or drop it."""
        folder = self.parts.store.artifacts_dir / tenant / name / "_staged"
        if not folder.is_dir():
            return
        with self._model_lock(tenant, name):
            self._merge_staged(tenant, name, folder)

    def _merge_staged(self, tenant: str, name: str, folder: Path) -> None:
        for path in sorted(folder.glob("*.parquet")):
            if path.name.startswith(".tmp-"):
                continue
            try:
                job = self.store.get_job(path.stem, tenant)
            except NotFoundError:
                path.unlink(missing_ok=True)
                continue
            if job.state == "succeeded" and job.version is not None:
                try:
                    info = self.store.get(f"{name}@{job.version}", tenant=tenant)
                except NotFoundError:  # the version was deleted before its data was merged: nothing to keep
                    info = None
                if info is not None:
                    self.keep_training_data(info, pl.read_parquet(path))
            if job.state in ("succeeded", "failed", "cancelled"):
                path.unlink(missing_ok=True)

    def keep_training_data(self, info: VersionInfo, frame: pl.DataFrame) -> None:
        """Keep the rows of a newly registered version's training data that the model's store lacks
        (the job runner calls this; tabular versions and failures are skipped, logged)."""
        if info.kind != "forecast":
            return
        try:
            panel = validate_panel(frame.select("unique_id", "ds", "y"), freq=info.fingerprint.get("freq"))
            new = panel.frame
            stored = self.parts.scan(info.tenant, info.name, "observations")
            if stored is not None:
                new = new.join(stored.select(_KEYS).collect(), on=_KEYS, how="anti")
            if new.height:
                self.parts.append(info.tenant, info.name, "observations", new.select("unique_id", "ds", "y"))
        except Exception:  # noqa: BLE001 - keeping the data must never fail a registration
            log.warning("could not keep the training data of %s", info.ref, exc_info=True)

    def observe(self, tenant: str, name: str, data: Any, *, replace: bool = False) -> ObservationResult:
        """Append actuals of a registered model's series.

        Parameters
        ----------
        tenant, name : str
        data : frame, mapping of columns or list of rows
            ``unique_id, ds, y`` (no other columns), at the model's frequency.
        replace : bool, default False
            Overwrite points already stored instead of refusing them.

        Returns
        -------
        ObservationResult

        Raises
        ------
        NotFoundError
            No such model.
        InvalidInputError
            Naming the rows (0-based, in the order sent): other columns, null/NaN/inf ``y``, series the model does
            not have, points already stored (without ``replace``), timestamps before the stored ones, a frequency
            other than the model's, duplicates. Nothing of a refused batch is stored.
        """
        info = self._forecast_info(tenant, name)
        freq = normalize_freq(info.fingerprint.get("freq"))
        batch = self._validated_batch(data, freq)
        with self._model_lock(tenant, name):  # checked against the stored points and appended as one step
            stored_result = self._append_observations(tenant, name, batch, freq, replace=replace)
        count = self.parts.count_observations(name, tenant, batch.height)
        retrain = self._due(tenant, name, count)
        self._refresh_summary(tenant, name)
        if retrain is not None and self.trigger is not None:
            self.trigger(tenant, name, retrain)
        return dataclasses.replace(stored_result, retrain=retrain)

    def _model_lock(self, tenant: str, name: str) -> threading.RLock:
        with self._locks_guard:
            return self._locks.setdefault((tenant, name), threading.RLock())

    def _append_observations(self, tenant: str, name: str, batch: pl.DataFrame, freq: str | int | None, *,
                             replace: bool) -> ObservationResult:
        self.merge_staged(tenant, name)
        stored = self.parts.scan(tenant, name, "observations")
        notes: list[str] = []
        replaced = 0
        last = None
        if stored is None:
            notes.append(f"model '{name}' had no stored observations or training data: the series of this batch "
                         f"are now its series")
        else:
            # only what the checks need: the known series, and the batch's series from its first ds on
            ids = batch["unique_id"].unique().implode()
            known, last, keys = pl.collect_all([
                stored.select(pl.col("unique_id").unique()),
                stored.filter(pl.col("unique_id").is_in(ids)).group_by("unique_id").agg(pl.col("ds").max()),
                stored.filter(pl.col("unique_id").is_in(ids) & (pl.col("ds") >= batch["ds"].min()))
                .select(_KEYS).unique()])
            replaced = self._check_against_stored(batch, known["unique_id"], keys, last, replace=replace, name=name)
            last = pl.concat([last.select(_KEYS), keys])  # with the stored points in the batch's range: no false gap
        gaps = self._gaps(batch, last, freq)
        self.parts.append(tenant, name, "observations", batch.select("unique_id", "ds", "y"))
        return ObservationResult(model=name, rows=batch.height, replaced=replaced,
                                 series=batch["unique_id"].unique(maintain_order=True).to_list(), gaps=gaps,
                                 notes=notes)

    def _validated_batch(self, data: Any, freq: str | int | None) -> pl.DataFrame:
        """The batch after the data contract, with ``row`` (the input row number); raises naming rows."""
        frame = to_polars(data, field_name="data")
        extra = [c for c in frame.columns if c not in ("unique_id", "ds", "y")]
        if extra:
            msg = f"observations have the columns unique_id, ds, y only; got also {extra[:5]}"
            raise InvalidInputError(msg, field="data", details={"columns": extra})
        check_limits_rows = frame.height
        if self.limits.max_rows is not None and check_limits_rows > self.limits.max_rows:
            msg = f"data has {check_limits_rows} rows; the limit is {self.limits.max_rows}"
            raise InvalidInputError(msg, field="data", details={"limit": self.limits.max_rows})
        if "y" in frame.columns and (frame.schema["y"].is_numeric() or frame.schema["y"] == pl.Null):  # all null
            bad = find_invalid_y(frame.with_columns(pl.col("y").cast(pl.Float64)))
            if bad.height:
                rows = bad["row"].to_list()
                msg = (f"observations: y is null, NaN or infinite in rows {_rows_text(rows)} (series "
                       f"{_examples(bad['unique_id'].unique(maintain_order=True).to_list())}); nothing was stored")
                raise InvalidInputError(msg, field="data.y", details={"rows": rows[:100]})
        _check_columns(frame, "data")  # before the row number is added: the message lists the user's columns
        frame = frame.with_row_index(_ROW)
        # gaps are reported, not refused: validate with them filled, then drop the filled rows
        panel = validate_panel(frame, freq=freq, fill_missing="zero", fill_gaps=True)
        batch = panel.frame.filter(pl.col(_ROW).is_not_null())
        if freq is not None:
            steps = batch.group_by("unique_id").len().filter(pl.col("len") > 2)
            if steps.height:
                seen = infer_freq(batch.filter(pl.col("unique_id").is_in(steps["unique_id"].implode()))
                                  .select(_KEYS))
                if normalize_freq(seen) != freq:
                    msg = (f"observations are at frequency '{seen}' but the model was trained at '{freq}' "
                           f"(rows {_rows_text(batch[_ROW].to_list())}); nothing was stored")
                    raise InvalidInputError(msg, field="data.ds", details={"freq": str(seen), "expected": str(freq)})
        return batch

    @staticmethod
    def _check_against_stored(batch: pl.DataFrame, known: pl.Series, keys: pl.DataFrame, last: pl.DataFrame, *,
                              replace: bool, name: str) -> int:
        """Refuse unknown series, stored points (unless ``replace``) and timestamps before the stored ones;
        returns the number of points replaced. ``keys``: the stored points of the batch's series from its first
        ``ds`` on; ``last``: their last stored ``ds``."""
        unknown = batch.filter(~pl.col("unique_id").is_in(known.implode()))
        if unknown.height:
            series = unknown["unique_id"].unique(maintain_order=True).to_list()
            msg = (f"observations for series model '{name}' does not have: {_examples(series)} (rows "
                   f"{_rows_text(unknown[_ROW].to_list())}); nothing was stored")
            raise InvalidInputError(msg, field="data.unique_id", details={"series": series[:100],
                                                                          "rows": unknown[_ROW].to_list()[:100]})
        dup = batch.join(keys, on=_KEYS, how="semi")
        if dup.height and not replace:
            msg = (f"rows {_rows_text(dup[_ROW].to_list())} are already stored (series "
                   f"{_examples(dup['unique_id'].unique(maintain_order=True).to_list())}, ds "
                   f"{_examples(dup['ds'].to_list())}): pass replace=true to overwrite them; nothing was stored")
            raise InvalidInputError(msg, field="data.ds", details={"rows": dup[_ROW].to_list()[:100]})
        last = last.rename({"ds": "last"})
        early = (batch.join(keys, on=_KEYS, how="anti").join(last, on="unique_id")
                 .filter(pl.col("ds") <= pl.col("last")))
        if early.height:
            msg = (f"rows {_rows_text(early[_ROW].to_list())} are at or before the last stored timestamp of their "
                   f"series ({', '.join(f'{u!r}: {v}' for u, v in early.select('unique_id', 'last').unique(maintain_order=True).rows()[:5])}); "
                   f"observations are appended in time order; nothing was stored")
            raise InvalidInputError(msg, field="data.ds", details={"rows": early[_ROW].to_list()[:100]})
        return dup.height

    @staticmethod
    def _gaps(batch: pl.DataFrame, last: pl.DataFrame | None, freq: str | int | None) -> list[dict[str, Any]]:
        keys = batch.select(_KEYS)
        if last is not None:
            keys = pl.concat([last.filter(pl.col("unique_id").is_in(keys["unique_id"].implode())).select(_KEYS),
                              keys.cast(last.select(_KEYS).schema)]).unique().sort(_KEYS)
        if freq is None:
            return []
        missing, off = find_gaps(keys, freq)
        if off.height:
            per = off.group_by("unique_id", maintain_order=True).agg(pl.col("ds"))
            listed = "; ".join(f"series '{u}': {_examples(d)}" for u, d in per.rows()[:5])
            msg = (f"timestamps off the model's '{freq}' grid (continuing the stored ones): {listed}; check the "
                   f"frequency; nothing was stored")
            raise InvalidInputError(msg, field="data.ds")
        return [{"unique_id": u, "missing": len(d), "examples": [str(v) for v in d[:5]]}
                for u, d in missing.group_by("unique_id", maintain_order=True).agg(pl.col("ds")).rows()]

    def observations(self, tenant: str, name: str, *, series: Sequence[str] | None = None, start: Any = None,
                     end: Any = None) -> pl.DataFrame:
        """The stored observations (training data included), the latest value of each point.

        Parameters
        ----------
        series : list of str, optional
        start, end : timestamp or integer step, optional
            Inclusive bounds on ``ds`` (ISO 8601 text is parsed).

        Returns
        -------
        pl.DataFrame
            ``unique_id, ds, y`` sorted by both.

        Raises
        ------
        NotFoundError
            No such model, or a ``series`` it does not have (``field="series"``, naming them).
        InvalidParameterError
            A bound that is not a timestamp or an integer step like the stored ``ds``; ``start`` after ``end``.
        """
        self.store.versions(name, tenant)  # NotFoundError for an unknown model
        self.merge_staged(tenant, name)
        scan = self.parts.scan(tenant, name, "observations")
        lo, hi = _range(start, end, self._ds_dtype(tenant, name, scan))
        if series:
            known = set() if scan is None else set(scan.select(pl.col("unique_id").unique()).collect()["unique_id"])
            unknown = [s for s in dict.fromkeys(series) if s not in known]
            if unknown:
                msg = (f"model '{name}' has no series {_examples([repr(s) for s in unknown])} (its stored "
                       f"observations and training data have {len(known)} series)")
                raise NotFoundError(msg, field="series", details={"series": unknown[:100]})
        if scan is None:
            return pl.DataFrame(schema={"unique_id": pl.String, "ds": pl.Int64, "y": pl.Float64})
        if series:
            scan = scan.filter(pl.col("unique_id").is_in(list(series)))
        if lo is not None:
            scan = scan.filter(pl.col("ds") >= lo)
        if hi is not None:
            scan = scan.filter(pl.col("ds") <= hi)
        return (scan.sort("batch").unique(_KEYS, keep="last").sort(_KEYS).select("unique_id", "ds", "y")
                .collect())

    def _ds_dtype(self, tenant: str, name: str, scan: pl.LazyFrame | None = None) -> pl.DataType:
        """The type of the model's stored ``ds``: its observations', else its frequency's (an integer step:
        ``Int64``; else a timestamp), so bounds are checked even before anything is stored or served."""
        if scan is None:
            scan = self.parts.scan(tenant, name, "observations")
        if scan is not None:
            return scan.collect_schema()["ds"]
        versions = self.store.versions(name, tenant)
        freq = versions[-1].fingerprint.get("freq") if versions else None
        integer = isinstance(freq, int) or (isinstance(freq, str) and freq.lstrip("-").isdigit())
        return pl.Int64() if integer else pl.Datetime("us")

    # ------------------------------------------------------------------ served forecasts and accuracy
    def record_served(self, tenant: str, info: VersionInfo, result: Any) -> None:
        """Keep a forecast served by a registered version: per point its version, origin (the last ``ds`` of
        the history it started from), horizon step, point forecast and interval bounds. Failures are logged,
        never raised (serving goes on).

        With ``background`` (the app) the request only queues the result (:class:`_ServedRecord`, no frame
        work): one writer thread builds one frame from everything queued and writes it as ONE Parquet part
        (fsynced once) when :data:`SERVED_BATCH` results are queued, :data:`SERVED_FLUSH_S` after the first
        one, before any read of the served forecasts (:meth:`_drain_served`) and on :meth:`close`. A crash
        loses at most the last ~second of records (issue 14: the per-forecast frame and fsync were a quarter
        of the server's CPU). Without ``background`` the record is written before returning.
        """
        record = _ServedRecord(tenant=tenant, info=info, result=result, served_at=datetime.now(UTC))
        if not self.background:
            self._write_served([record])
            return
        with self._locks_guard:
            if self._recorder is None:
                self._recorder = _ServedWriter(self._write_served)
            recorder = self._recorder
        recorder.put(record)

    def _drain_served(self) -> None:
        """Write every served forecast queued so far now and wait for it (readers call this first)."""
        recorder = self._recorder
        if recorder is not None:
            recorder.drain()

    def _write_served(self, records: list[_ServedRecord]) -> None:
        """One Parquet part per model for ``records`` (in the order served; each forecast keeps its own
        ``batch`` number, so a later one wins over an earlier one for the same point as before)."""
        groups: dict[tuple[str, str], list[_ServedRecord]] = {}
        for record in records:
            groups.setdefault((record.tenant, record.info.name), []).append(record)
        for (tenant, name), group in groups.items():
            try:
                self.parts.append(tenant, name, "served", _served_frame(group, self.parts.next_batch))
            except Exception:  # noqa: BLE001 - recording must never fail a forecast that was served
                log.warning("could not record %d forecast(s) served by %s", len(group),
                            ", ".join(sorted({r.info.ref for r in group})), exc_info=True)

    def _scored(self, tenant: str, name: str) -> tuple[pl.DataFrame, pl.DataFrame, list[float]]:
        """Served points that have an actual (``unique_id, ds, y, y_hat, lo-L, hi-L, step, version, origin``),
        all observations, and the levels served."""
        self._drain_served()
        served = self.parts.scan(tenant, name, "served")
        if served is None:
            return pl.DataFrame(), pl.DataFrame(), []
        obs = self.observations(tenant, name)
        if obs.is_empty():
            return pl.DataFrame(), obs, []
        frame = (served.sort("batch").unique(["unique_id", "ds", "version", "origin"], keep="last").collect())
        frame = frame.with_columns(pl.col("ds").cast(obs.schema["ds"]), pl.col("origin").cast(obs.schema["ds"]))
        levels = sorted(float(c[3:]) for c in frame.columns if c.startswith("lo-"))
        return frame.join(obs, on=_KEYS, how="inner"), obs, levels

    def accuracy(self, tenant: str, name: str, *, by: AccuracyBy = "version", version: int | None = None,
                 start: Any = None, end: Any = None) -> AccuracyResult:
        """Realised accuracy of the forecasts served for ``name`` whose actuals have arrived.

        Each forecast (one series from one origin) is scored as M4 does (:func:`forecasting.evaluation.evaluate`:
        sMAPE; MASE scaled by the in-sample seasonal naive of the observations up to the origin, with the
        version's ``season_length``; coverage per level), then the scores are averaged over forecasts.

        Parameters
        ----------
        by : {"version", "step", "series"}
            Rows per version, per (version, horizon step) or per (version, series).
        version : int, optional
            Only this version.
        start, end : optional
            Inclusive bounds on the forecast points' ``ds``.

        Returns
        -------
        AccuracyResult

        Raises
        ------
        NotFoundError
            No such model, or no such ``version`` of it (``field="version"``).
        InvalidParameterError
            ``by``, a bound that is not a timestamp or an integer step like the stored ``ds``, ``start`` after
            ``end``: checked even before anything was served.
        """
        if by not in ("version", "step", "series"):
            msg = f"by must be one of version, step, series, got {by!r}"
            raise InvalidParameterError(msg, field="by")
        versions = {v.version: v for v in self.store.versions(name, tenant)}
        if version is not None and version not in versions:
            msg = (f"model '{name}' has no version {version} (versions: "
                   f"{_examples([str(v) for v in versions], len(versions))})")
            raise NotFoundError(msg, field="version")
        lo, hi = _range(start, end, self._ds_dtype(tenant, name))
        joined, obs, levels = self._scored(tenant, name)
        empty = pl.DataFrame(schema={"version": pl.Int64, "points": pl.Int64, "series": pl.Int64,
                                     "smape": pl.Float64, "mase": pl.Float64})
        if joined.is_empty():
            return AccuracyResult(model=name, by=by, rows=empty, levels=levels)
        if version is not None:
            joined = joined.filter(pl.col("version") == version)
        if lo is not None:
            joined = joined.filter(pl.col("ds") >= lo)
        if hi is not None:
            joined = joined.filter(pl.col("ds") <= hi)
        keys = ["version"] + ({"step": ["step"], "series": ["series"]}.get(by, []))
        forecasts, history = _forecasts_and_history(joined, obs)
        rows = []
        for key, part in forecasts.group_by(keys, maintain_order=True):
            info = versions.get(int(key[0]))
            season = _season(info.spec) if info is not None else 1
            names = ["unique_id" if k == "series" else k for k in keys]
            rows.append({**dict(zip(names, key, strict=True)), **_score(part, history, season, levels)})
        out = pl.DataFrame(rows).sort(["unique_id" if k == "series" else k for k in keys]) if rows else empty
        return AccuracyResult(model=name, by=by, rows=out, levels=levels)

    def _refresh_summary(self, tenant: str, name: str) -> None:
        if not self.background:
            self.write_summary(tenant, name)
            return
        with self._locks_guard:
            if (tenant, name) in self._pending:  # one refresh queued per model is enough
                return
            self._pending.add((tenant, name))
            if self._summaries is None:
                self._summaries = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forecasting-accuracy")

        def refresh() -> None:
            with self._locks_guard:
                self._pending.discard((tenant, name))
            self.write_summary(tenant, name)

        self._summaries.submit(refresh)

    def close(self) -> None:
        """Write the queued served forecasts and finish the queued summary refreshes."""
        with self._locks_guard:
            recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.close()
        if self._summaries is not None:
            self._summaries.shutdown(wait=True)
            self._summaries = None

    def write_summary(self, tenant: str, name: str) -> dict[str, Any]:
        """Score every version's served forecasts and keep the summary beside the observations (the metrics
        gauges read it: ``{"<version>": {"smape", "mase", "points", "coverage_<L>"...}}``)."""
        try:
            rows = self.accuracy(tenant, name).rows.to_dicts()
        except Exception:  # noqa: BLE001 - a summary must never fail the observations that were stored
            log.warning("could not score the forecasts of %s", name, exc_info=True)
            return {}
        summary = {str(r.pop("version")): r for r in rows}
        folder = self.parts.folder(tenant, name, "observations")
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".accuracy.json.tmp"
        tmp.write_text(json.dumps(summary), encoding="utf-8")
        tmp.replace(folder / "accuracy.json")
        return summary

    def gauges(self) -> list[tuple[str, str, str, str, float]]:
        """``(tenant, model, version, metric, value)`` of every model's accuracy summary (for Prometheus)."""
        out = []
        for path in sorted(self.store.artifacts_dir.glob("*/*/_observations/accuracy.json")):
            tenant, model = path.parts[-4], path.parts[-3]
            try:
                summary = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for version, scores in summary.items():
                for metric, value in scores.items():
                    if isinstance(value, int | float) and value is not None and math.isfinite(value):
                        out.append((tenant, model, version, metric, float(value)))
        return out

    # ------------------------------------------------------------------ retraining
    def set_policy(self, tenant: str, name: str, policy: RetrainPolicy | dict[str, Any]) -> RetrainPolicy:
        """Validate and keep the model's retraining policy (the scheduler picks it up)."""
        info = self._forecast_info(tenant, name)
        if isinstance(policy, dict):
            try:
                policy = msgspec.convert(policy, RetrainPolicy)
            except msgspec.ValidationError as exc:
                msg = f"retraining policy: {exc}"
                raise InvalidParameterError(msg, field="policy") from None
        policy.check(max_h=self.limits.max_h)
        if msgspec.to_builtins(policy):  # a policy that retrains (an empty one only stops retraining)
            from forecasting.service.hierarchy import refuse_over_hierarchy

            for version in (self._champion(tenant, name), info):
                refuse_over_hierarchy(version, "retrain")
        if policy.warm_start:
            _warm_family(self._champion(tenant, name).spec.get("name"))
        self.parts.set_policy(name, tenant, msgspec.to_builtins(policy))
        return policy

    def policy(self, tenant: str, name: str) -> RetrainPolicy | None:
        """The model's policy, None when it has none."""
        raw, _ = self.parts.get_policy(name, tenant)
        return None if not raw else msgspec.convert(raw, RetrainPolicy)

    def _due(self, tenant: str, name: str, count: int) -> str | None:
        policy = self.policy(tenant, name)
        if policy is None:
            return None
        if policy.every_n_observations is not None and count >= policy.every_n_observations:
            return "observations"
        if policy.drift_factor is not None and self._drifted(tenant, name, policy):
            return "drift"
        return None

    def _drifted(self, tenant: str, name: str, policy: RetrainPolicy) -> bool:
        champion = self._champion(tenant, name)
        holdout = champion.metrics.get("mase")
        if not isinstance(holdout, int | float) or policy.drift_factor is None:
            return False
        joined, obs, _ = self._scored(tenant, name)
        if joined.is_empty():
            return False
        recent = joined.filter(pl.col("version") == champion.version).sort("ds").tail(policy.drift_window)
        if recent.height < policy.drift_window:
            return False
        realised = _score(*_forecasts_and_history(recent, obs), _season(champion.spec), [])["mase"]
        return realised is not None and realised > policy.drift_factor * float(holdout)

    def _champion(self, tenant: str, name: str) -> VersionInfo:
        try:
            return self.store.get(f"{name}@production", tenant=tenant)
        except NotFoundError:
            return self._forecast_info(tenant, name)

    def decisions(self, tenant: str, name: str, *, limit: int = 100) -> list[DecisionInfo]:
        """The model's retraining decisions, newest first."""
        if isinstance(limit, bool) or not 1 <= limit <= 1000:
            msg = f"limit must be in 1..1000, got {limit}"
            raise InvalidParameterError(msg, field="limit")
        return self.parts.decisions(name, tenant, limit=limit)

    def retrain(self, tenant: str, name: str, *, trigger: Trigger = "manual", deadline: float | None = None,
                step: Callable[[float, str], None] | None = None) -> DecisionInfo:
        """Train a challenger on all the data, compare it with the champion on the latest hold-out window,
        register it, and move ``production`` to it only when it wins by the policy's margin.

        The champion is the version ``production`` points to (the latest version when there is no such alias;
        the first decision then points ``production`` at the winner). Both are scored on each series' last ``h``
        points: the challenger (its spec, the policy's ``model`` or the champion's) refitted on the points
        before them (:func:`forecasting.backtest.holdout_scores`), the champion likewise when it is a spec
        (statistical models refit at forecast time), or forecasting the window from the points before it
        without refitting when it is a saved model. The challenger is then trained on all the data and
        registered (:func:`forecasting.service.training.train`, which records the challenger's hold-out scores
        measured here as its validation metrics: one hold-out fit, not two).

        A champion that is a spec (a statistical model refitted at each forecast) whose challenger would be the
        same spec on the same data (the data's sha256 in the champion's fingerprint) would score exactly as it:
        the decision "no change" is recorded (``detail["no_change"]``, no scores, ``challenger_version`` None)
        and nothing is trained or registered.

        Scheduled, triggered and asked-for retrains (``POST /v1/models/{name}/retrain``: :meth:`queue_retrain`)
        run this as a job of kind ``retrain`` in the job runner (:meth:`forecasting.jobs.JobRunner.submit_retrain`;
        the command line's ``forecasting retrain`` calls it directly), which passes ``deadline`` (epoch seconds: fitting
        stops with ``TimeLimitError`` past it) and ``step(progress, message)`` (0.05 data read, 0.1-0.4 the
        challenger's hold-out fit, 0.4-0.8 its training, 0.8-0.85 the champion scored, then registered; it may
        raise to stop the retrain: a cancel).

        Returns
        -------
        DecisionInfo
            Recorded (``GET /v1/models/{name}/decisions``).

        Raises
        ------
        ConflictError
            A retrain of the model is already running.
        CapabilityError
            The champion was trained over a hierarchy
            (:func:`~forecasting.service.hierarchy.refuse_over_hierarchy`).
        NotFoundError, InvalidInputError (no stored data), InsufficientHistoryError, ModelFitError.
        """
        champion = self._retrainable(tenant, name)
        policy = self.policy(tenant, name) or RetrainPolicy()
        self.parts.acquire(name, tenant)
        ran = False
        try:
            decision = self._retrain(tenant, name, champion, policy, trigger, deadline=deadline,
                                     step=step or (lambda progress, message: None))
            ran = True
            return decision
        finally:
            self.parts.release(name, tenant, reset_count=ran)

    def queue_retrain(self, tenant: str, name: str, queue: RetrainQueue, *, trigger: Trigger = "manual") -> str:
        """Queue a retrain of model ``name`` as a job of kind ``retrain`` (``POST /v1/models/{name}/retrain``):
        what can be refused at once is refused here, the rest is :meth:`retrain` run by the job's worker.

        The same job as a scheduled tick's (:meth:`forecasting.jobs.JobRunner.submit_retrain`): the tenant's fair
        queue and cap, progress, cancel and the time limit; the decision is recorded with ``trigger``.

        Parameters
        ----------
        queue : RetrainQueue
            The job runner.
        trigger : str, default "manual"

        Returns
        -------
        str
            The job id (``GET /v1/jobs/{id}``).

        Raises
        ------
        NotFoundError
            No such model.
        CapabilityError
            A tabular model; a champion trained over a hierarchy.
        InvalidInputError
            The model has no stored data to retrain on.
        ConflictError
            A retrain job of the model is already queued or running (``details["job_id"]``).
        TooManyJobsError
            The tenant's cap of unfinished jobs.
        """
        self._retrainable(tenant, name)
        self.merge_staged(tenant, name)
        if self.parts.scan(tenant, name, "observations") is None:
            raise _no_stored_data(name)
        job_id = queue.submit_retrain(tenant, name, trigger=trigger, if_pending="refuse")
        assert job_id is not None  # "refuse" raises instead
        return job_id

    def _retrainable(self, tenant: str, name: str) -> VersionInfo:
        """The champion, or the refusal of a retrain that can be told at once (no such model, a tabular model,
        a champion trained over a hierarchy: :func:`~forecasting.service.hierarchy.refuse_over_hierarchy`)."""
        from forecasting.service.hierarchy import refuse_over_hierarchy

        champion = self._champion(tenant, name)
        refuse_over_hierarchy(champion, "retrain")
        return champion

    def _retrain(self, tenant: str, name: str, champion: VersionInfo, policy: RetrainPolicy,
                 trigger: str, *, deadline: float | None, step: Callable[[float, str], None]) -> DecisionInfo:
        from forecasting.backtest import holdout_scores
        from forecasting.models.registry import parse_spec
        from forecasting.service.training import data_fingerprint, default_validation_h, train

        data = self.observations(tenant, name)
        if data.is_empty():
            raise _no_stored_data(name)
        freq = champion.fingerprint.get("freq")
        panel = validate_panel(data, freq=freq, fill_missing="interpolate", fill_gaps=True)
        step(0.05, f"retrain: {panel.frame.height} observations of {panel.n_series} series read")
        spec = policy.model if policy.model is not None else champion.spec
        h = policy.h or champion.max_h or default_validation_h(_season(champion.spec))
        effective = None if policy.warm_start else msgspec.to_builtins(resolve(parse_spec(spec), panel)[0])
        digest = data_fingerprint(panel.frame, freq=panel.freq)["sha256"]
        if champion.artifact is None and effective == champion.spec and digest == champion.fingerprint.get("sha256"):
            return self._no_change(tenant, name, champion, policy, trigger, digest=digest, rows=panel.frame.height)
        with tempfile.TemporaryDirectory(prefix="forecasting-retrain-") as tmp:
            # both scored before the challenger is registered (a failure leaves no version without a decision),
            # on one MASE scale: the longer of the two models' seasons; the challenger's scores once, recorded as
            # its version's validation metrics too
            if policy.warm_start:
                season = _season(champion.spec)
                result, challenger_scores = self._warm_challenger(champion, panel, policy, h=h, season=season,
                                                                  workdir=Path(tmp))
            else:
                season = max(_season(champion.spec), _season(effective or {}))
                step(0.1, f"challenger hold-out fit: fitting on all but the last {h} steps")
                challenger_scores = holdout_scores(
                    panel, model=effective or spec, h=h, season_length=season, unscaled="null", deadline=deadline,
                    progress=lambda done, message: step(0.1 + 0.3 * done, f"challenger hold-out fit: {message}"))
                result = train(panel.frame, kind="forecast", spec=spec, workdir=Path(tmp), h=h, freq=panel.freq,
                               holdout=challenger_scores, deadline=deadline,
                               step=lambda done, message: step(0.4 + 0.4 * done, f"challenger: {message}"))
            step(0.8, "scoring the champion on the window")
            champion_scores = self._champion_scores(champion, panel, h=h, season=season)
            step(0.85, "champion scored; registering the challenger")
            challenger = self.store.register_version(
                name, tenant=tenant, spec=result.spec, kind="forecast", artifact_src_dir=result.artifact,
                fingerprint=result.fingerprint, metrics=result.metrics, exog=result.exog, max_h=result.max_h)
        metric = policy.metric
        old = champion_scores.get(metric)
        new = getattr(challenger_scores, metric)
        if metric == "mase" and (old is None or new is None):  # no series has a MASE scale (repeats every season)
            metric, old, new = "smape", champion_scores.get("smape"), challenger_scores.smape
        wins = new is not None and (old is None or new < old * (1.0 - policy.margin))
        has_alias = "production" in champion.aliases
        promoted = wins or not has_alias
        if promoted:
            self.store.set_alias(name, "production", challenger.version if wins else champion.version, tenant)
        reason = (f"challenger {metric} {_num(new)} vs champion {_num(old)}: "
                  + ("the challenger wins" if wins else "the champion stays")
                  + (f" (margin {policy.margin:g})" if policy.margin else ""))
        seen = champion.fingerprint.get("ds_max") if champion.artifact is not None else None  # specs refit
        overlap = 0 if seen is None else challenger_scores.forecasts.filter(
            pl.col("ds") <= _bound(seen, panel.frame.schema["ds"], "ds_max")).height
        if overlap:
            reason += (f"; {overlap} points of the window are in the champion's training data (an advantage to "
                       f"it: post observations beyond them first)")
        detail = {"reason": reason, "window": {"h": h, "cutoff": str(challenger_scores.cutoff),
                                               "n_series": challenger_scores.n_series},
                  "window_in_champion_training": overlap,
                  "champion": champion_scores, "challenger": challenger_scores.metrics,
                  "challenger_spec": result.spec, "rows": panel.frame.height,
                  **({"warm_start": result.metrics["warm_start"]} if "warm_start" in result.metrics else {}),
                  "filled": panel.report.filled.height}
        return self.parts.record_decision(
            name, tenant, trigger=trigger, champion_version=champion.version, challenger_version=challenger.version,
            metric=metric, champion_score=old, challenger_score=new, margin=policy.margin, promoted=wins,
            detail=detail)

    def _no_change(self, tenant: str, name: str, champion: VersionInfo, policy: RetrainPolicy, trigger: str, *,
                   digest: str, rows: int) -> DecisionInfo:
        """Record that a retrain changes nothing: the champion is a spec (refitted at each forecast) and the
        challenger would be the same spec on the same data (the same sha256), so it would score exactly as the
        champion. Nothing is trained or registered; ``production`` points at the champion."""
        if "production" not in champion.aliases:
            self.store.set_alias(name, "production", champion.version, tenant)
        reason = (f"no change: the challenger would be version {champion.version} itself (the same spec, refitted "
                  f"on the same data, sha256 {digest[:12]}); nothing was trained or registered: post observations "
                  f"or set the policy's model for another challenger")
        return self.parts.record_decision(
            name, tenant, trigger=trigger, champion_version=champion.version, challenger_version=None,
            metric=policy.metric, champion_score=None, challenger_score=None, margin=policy.margin, promoted=False,
            detail={"reason": reason, "no_change": True, "challenger_spec": champion.spec, "rows": rows,
                    "data_sha256": digest})

    def _champion_scores(self, champion: VersionInfo, panel: Panel, *, h: int, season: int) -> dict[str, Any]:
        from forecasting.backtest import holdout_scores
        from forecasting.loading import load_version

        if champion.artifact is None:
            return dict(holdout_scores(panel, model=champion.spec, h=h, season_length=season,
                                       unscaled="null").metrics)
        return self._window_scores(load_version(self.store, champion), panel, h=h, season=season,
                                   fallback=champion.spec.get("fallback"))[0]

    def _window_scores(self, model: Any, panel: Panel, *, h: int, season: int, fallback: Any = None,
                       fit: Callable[[Panel], Any] | None = None) -> tuple[dict[str, Any], pl.DataFrame, Any]:
        """A fitted model's M4 scores on each series' last ``h`` points, forecast from the points before them
        without refitting (``fit``: fitted first on them by that call); returns (scores, the forecast
        window ``unique_id, ds, <alias>``, the last training ``ds``)."""
        from forecasting.backtest import rolling_origins
        from forecasting.evaluation import evaluate
        from forecasting.service.core import forecast_fitted

        window = rolling_origins(panel.frame, h=h)[0]
        if fit is not None:
            model = fit(validate_panel(window.train, freq=panel.freq))
        result = forecast_fitted(model, window.train, h=h, freq=panel.freq, limits=self.limits, fallback=fallback)
        fc = result.forecasts.with_columns(pl.col("unique_id").cast(pl.String))
        test = window.test.select(_KEYS + ["y"]).join(fc.select(_KEYS), on=_KEYS, how="semi")
        row = evaluate(fc.select(*_KEYS, result.alias), test, window.train.select(*_KEYS, "y"), models=[result.alias],
                       season_length=season, unscaled="null").row(0, named=True)
        scores = {k: v for k, v in row.items() if k not in ("model", "owa")}
        return scores, fc.select(*_KEYS, result.alias), window.train["ds"].max()

    def _warm_challenger(self, champion: VersionInfo, panel: Panel, policy: RetrainPolicy, *, h: int, season: int,
                         workdir: Path) -> tuple[Any, Any]:
        """A challenger that continues boosting from the champion's boosters (``policy.warm_start``): scored
        continuing from the champion on the data before the window, then continued on all the data and saved.
        Returns (a :class:`~forecasting.service.training.TrainResult`, a
        :class:`~forecasting.backtest.HoldoutScores`)."""
        from forecasting.backtest import HoldoutScores
        from forecasting.loading import load_version
        from forecasting.models.registry import ModelSpec, make_model, parse_spec
        from forecasting.service.results import TrainResult
        from forecasting.service.training import data_fingerprint

        _warm_family(champion.spec.get("name"))
        if champion.artifact is None:
            msg = f"warm_start: champion version {champion.version} has no saved boosters to continue from"
            raise CapabilityError(msg, field="warm_start")
        base: Any = load_version(self.store, champion)
        rounds = policy.warm_rounds or max(1, int(base.params.n_estimators) // 4)
        spec = parse_spec(champion.spec)

        def fit(data: Panel) -> Any:
            model = make_model(ModelSpec(name=spec.name, params=spec.params), freq=panel.freq)
            return model.warm_start_from(base, rounds).fit(data)  # type: ignore[attr-defined]

        scores, window, cutoff = self._window_scores(None, panel, h=h, season=season, fit=fit)
        holdout = HoldoutScores(h=h, season_length=season, cutoff=cutoff, n_series=window["unique_id"].n_unique(),
                                smape=scores["smape"], mase=scores["mase"], metrics=scores, forecasts=window)
        model = fit(panel)
        artifact = model.save(workdir / "artifact")
        warm = {"from_version": champion.version, "rounds": rounds}
        notes = [*panel.report.notes, *model.notes_]
        return TrainResult(kind="forecast", spec=champion.spec, artifact=str(artifact),
                           fingerprint=data_fingerprint(panel.frame, freq=panel.freq),
                           metrics={**scores, "warm_start": warm, "notes": notes}, exog=list(panel.exog), max_h=h,
                           notes=notes), holdout

    # ------------------------------------------------------------------ the report's live sections
    def report_sections(self, tenant: str, name: str, *, level: float = 95.0, max_series: int = 4) -> str:
        """HTML sections for the model's report: the realised accuracy of its served forecasts (per version and
        per horizon step) and a plot of its latest observations against the served intervals at ``level`` with
        the anomalies marked (its first ``max_series`` series). Empty when nothing was served and observed.
        Self-contained (embedded PNG; no script), in the report's section markup."""
        from html import escape

        from forecasting.reports import new_figure, png_base64

        by_version = self.accuracy(tenant, name).rows
        if by_version.is_empty():
            return ""

        def table(frame: pl.DataFrame) -> str:
            head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
            body = "".join("<tr>" + "".join(f'<td class="num">{v:.4g}</td>' if isinstance(v, float)
                                            else f"<td>{escape(str(v))}</td>" for v in row) + "</tr>"
                           for row in frame.iter_rows())
            return f'<div class="table-wrap"><table><tr>{head}</tr>{body}</table></div>'

        accuracy = (f"<p>Forecasts served for <code>{escape(name)}</code> scored against the observations that "
                    f"arrived since (sMAPE 0-200, MASE, coverage per level).</p>" + table(by_version)
                    + "<h3>By horizon step</h3>" + table(self.accuracy(tenant, name, by="step").rows))
        out = [f'<section id="served-accuracy" data-title="Served forecasts: accuracy"><h2>Served forecasts: '
               f"accuracy</h2>{accuracy}</section>"]
        points = self.observation_anomalies(tenant, name, level=level).points
        if points.height:
            ids = points["unique_id"].unique(maintain_order=True).to_list()[:max_series]
            fig = new_figure(9, 2.2 * len(ids))
            for i, uid in enumerate(ids):
                ax = fig.add_subplot(len(ids), 1, i + 1)
                part = points.filter(pl.col("unique_id") == uid).sort("ds")
                x = part["ds"].to_list()
                ax.fill_between(x, part["lo"].to_numpy(), part["hi"].to_numpy(), alpha=0.25,
                                label=f"served {level:g}% interval")
                ax.plot(x, part["center"].to_numpy(), lw=1, label="served forecast")
                ax.plot(x, part["y"].to_numpy(), "k.", ms=3, label="observed")
                flagged = part.filter(pl.col("anomaly"))
                ax.plot(flagged["ds"].to_list(), flagged["y"].to_numpy(), "o", mfc="none", color="red", ms=7,
                        label="outside the interval")
                ax.set_title(str(uid), fontsize=9, loc="left")
            fig.axes[0].legend(fontsize=7, loc="upper right", ncols=4)
            n = int(points["anomaly"].sum())
            out.append(f'<section id="observation-anomalies" data-title="Observations outside the served intervals">'
                       f"<h2>Observations outside the served intervals</h2><p>{n} of {points.height} observed points "
                       f"lie outside the served {level:g}% interval.</p><figure><img alt=\"observations against the "
                       f"served intervals\" src=\"data:image/png;base64,{png_base64(fig)}\"></figure></section>")
        return "\n".join(out)

    # ------------------------------------------------------------------ anomalies of observations
    def observation_anomalies(self, tenant: str, name: str, *, level: float = 95.0, start: Any = None,
                              end: Any = None) -> AnomalyResult:
        """New observations outside the interval at ``level`` of the forecast served for them (the latest
        forecast served for each point, from its latest origin).

        Raises
        ------
        NotFoundError, InvalidParameterError (a level that is not in (0, 100)).
        """
        (lv,) = validate_levels([level])
        a, b = _range(start, end, self._ds_dtype(tenant, name))
        joined, _, levels = self._scored(tenant, name)
        lo, hi = f"lo-{float(lv):g}", f"hi-{float(lv):g}"
        schema = {"unique_id": pl.String, "ds": pl.Int64, "y": pl.Float64, "center": pl.Float64, "lo": pl.Float64,
                  "hi": pl.Float64, "score": pl.Float64, "anomaly": pl.Boolean, "version": pl.Int64,
                  "step": pl.Int64}
        if joined.is_empty() or lo not in joined.columns:
            note = (f"no served forecast of model '{name}' with a {lv}% interval has its actual yet "
                    f"(levels served: {levels or 'none'})")
            return AnomalyResult(points=pl.DataFrame(schema=schema), level=float(lv), method="served", model=name,
                                 notes=[note])
        points = joined.filter(pl.col(lo).is_not_null())
        if a is not None:
            points = points.filter(pl.col("ds") >= a)
        if b is not None:
            points = points.filter(pl.col("ds") <= b)
        points = (points.sort("origin", "batch").unique(_KEYS, keep="last").sort(_KEYS)
                  .select(*_KEYS, "y", pl.col("y_hat").alias("center"), pl.col(lo).alias("lo"),
                          pl.col(hi).alias("hi"), "version", "step"))
        scored = score_points(points, center="center")
        return AnomalyResult(points=scored.select(*_KEYS, "y", "center", "lo", "hi", "score", "anomaly", "version",
                                                  "step"), level=float(lv), method="served", model=name)


#: model families whose challenger can continue from the champion (``RetrainPolicy.warm_start``)
WARM_START_FAMILIES = ("xgboost", "lightgbm")


def _no_stored_data(name: str) -> InvalidInputError:
    msg = f"model '{name}' has no stored data to retrain on: post observations first"
    return InvalidInputError(msg, field="model")


def _warm_family(family: Any) -> None:
    """Refuse a warm start of a family that cannot continue from the champion's weights."""
    if family not in WARM_START_FAMILIES:
        nets = " (continued training of the networks, NHITS/TFT/TSMixer, is not offered)" if family in (
            "nhits", "tft", "tsmixer") else ""
        msg = (f"warm_start: model '{family}' cannot continue from the champion{nets}; warm starts are for "
               f"{' and '.join(WARM_START_FAMILIES)} boosters: set warm_start to false for a full retrain")
        raise CapabilityError(msg, field="warm_start")


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _forecasts_and_history(joined: pl.DataFrame, obs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Served points keyed by forecast (``unique_id`` becomes ``<series>@<origin>``, the series kept in
    ``series``) and each forecast's history: the series' observations up to its origin (its MASE scale)."""
    key = pl.concat_str(pl.col("unique_id"), pl.lit("@"), pl.col("origin").cast(pl.String)).alias("unique_id")
    rows = joined.with_columns(pl.col("unique_id").alias("series"), key)
    origins = rows.select("unique_id", "series", "origin").unique()
    history = (origins.join(obs.rename({"unique_id": "series"}), on="series")
               .filter(pl.col("ds") <= pl.col("origin")).select("unique_id", "ds", "y"))
    return rows.join(history.select("unique_id").unique(), on="unique_id", how="semi"), history


def _score(rows: pl.DataFrame, history: pl.DataFrame, season: int, levels: Sequence[float]) -> dict[str, Any]:
    """M4 scores of served points with actuals (keyed by forecast, :func:`_forecasts_and_history`), per forecast
    then averaged over forecasts (:func:`forecasting.evaluation.evaluate`): sMAPE, MASE, coverage per level
    (over the points served with that level)."""
    from forecasting.evaluation import evaluate

    out: dict[str, Any] = {"points": rows.height, "series": rows["series"].n_unique(), "smape": None, "mase": None}
    if rows.is_empty():
        return out
    train = history.join(rows.select("unique_id").unique(), on="unique_id", how="semi")
    complete = [lv for lv in levels if f"lo-{lv:g}" in rows.columns and rows[f"lo-{lv:g}"].null_count() == 0]
    parts = [(rows, complete)] + [(rows.filter(pl.col(f"lo-{lv:g}").is_not_null()), [lv]) for lv in levels
                                  if lv not in complete and f"lo-{lv:g}" in rows.columns]
    for i, (sub, lvs) in enumerate(parts):
        if sub.is_empty():
            continue
        fc = sub.select("unique_id", "ds", "y_hat", *[pl.col(f"{side}-{lv:g}").alias(f"y_hat-{side}-{lv:g}")
                                                        for lv in lvs for side in ("lo", "hi")])
        sub_train = train if i == 0 else train.join(sub.select("unique_id").unique(), on="unique_id", how="semi")
        scored = evaluate(fc, sub.select("unique_id", "ds", "y"), sub_train, models=["y_hat"], season_length=season,
                          level=lvs, unscaled="null").row(0, named=True)
        if i == 0:
            out.update(smape=scored["smape"], mase=scored["mase"])
        out.update({f"coverage_{lv:g}": scored.get(f"coverage_{lv:g}") for lv in lvs})
    for lv in levels:
        out.setdefault(f"coverage_{lv:g}", None)
    return out


# --------------------------------------------------------------------------- anomalies on inline data
def detect_anomalies(data: Any, *, model: Any = "mstl", level: float = DEFAULT_ANOMALY_LEVEL,
                     method: Method = "normal", freq: str | int | None = None,
                     limits: Limits | None = None) -> AnomalyResult:
    """Points of ``data`` outside the model's in-sample prediction interval at ``level``, with a score.

    The model is fitted on each series (:func:`forecasting.service.resolve` fills its ``season_length`` from
    the frequency); its in-sample one-step fitted values are the centre, the interval is conformal or normal
    (:func:`forecasting.anomalies.insample_intervals`) and each point's score is its distance from the centre
    in half-widths (:func:`forecasting.anomalies.score_points`: above 1 is an anomaly).

    Parameters
    ----------
    data : frame, mapping of columns or list of rows
        ``unique_id, ds, y``.
    model : spec, default "mstl"
        A model that gives in-sample fitted values (the statistical models).
    level : float, default 99
        Percent, in (0, 100).
    method : {"conformal", "normal"}
    freq : optional
        Inferred when omitted.
    limits : Limits, optional
        Request-size limits (none by default).

    Returns
    -------
    AnomalyResult

    Raises
    ------
    InvalidInputError, InvalidParameterError
        The data contract, a bad level or method.
    CapabilityError
        A model without in-sample fitted values (global models).

    Examples
    --------
    A spike of 100 in a flat-ish series is the one point flagged:

    >>> import numpy as np
    >>> y = 10 + np.sin(np.arange(96) * 2 * np.pi / 24)
    >>> y[60] += 100
    >>> out = detect_anomalies({"unique_id": ["a"] * 96, "ds": list(range(96)), "y": y.tolist()},
    ...                        model={"name": "seasonal_naive", "params": {"season_length": 24}})
    >>> out.anomalies["ds"].to_list()[:1]
    [60]
    """
    from forecasting.models.base import require
    from forecasting.models.registry import make_model, parse_spec

    (lv,) = validate_levels([level])
    panel = validate_panel(data, freq=freq)
    check_limits(panel, limits or Limits())
    spec, notes = resolve(parse_spec(model), panel)
    forecaster = make_model(spec, freq=panel.freq)
    require(forecaster, "fitted_values")
    forecaster.fit(panel)
    fitted = forecaster.fitted_values()  # type: ignore[attr-defined]
    bands = insample_intervals(fitted, level=float(lv), method=method, fitted_col=forecaster.alias, notes=notes)
    points = score_points(bands, center="fitted").rename({"fitted": "center"})
    return AnomalyResult(points=points, level=float(lv), method=method, model=spec.name, notes=notes, panel=panel)


# --------------------------------------------------------------------------- the scheduler
_ACTIVE: dict[str, RetrainScheduler] = {}


def run_scheduled(key: str, tenant: str, name: str, trigger: str = "schedule") -> None:
    """What a scheduled job runs (a module-level function, so APScheduler can keep a reference to it): the
    retrain of the scheduler registered under ``key`` (:meth:`RetrainScheduler.run`). Errors are logged."""
    scheduler = _ACTIVE.get(key)
    if scheduler is None:
        log.warning("retrain of %s/%s skipped: no scheduler %s in this process", tenant, name, key)
        return
    try:
        scheduler.run(tenant, name, trigger)
    except Exception:  # noqa: BLE001 - a scheduled run must log and let the scheduler go on
        log.warning("scheduled retrain of %s/%s failed", tenant, name, exc_info=True)


class RetrainScheduler:
    """Runs the retraining policies: schedules (cron or interval) and triggered retrains, off the request path.

    APScheduler 3's ``BackgroundScheduler`` with its ``SQLAlchemyJobStore`` on the registry's database (table
    ``scheduler_jobs``): schedules survive restarts; ``max_instances=1`` and ``coalesce=True`` run one retrain
    of a model at a time and one catch-up run after downtime; :meth:`MonitoringStore.acquire` keeps that true
    across processes too.

    Several server processes on one store (``forecasting serve --workers N``): each has a scheduler on the
    same job store, but only the one whose ``leads()`` is true (the app passes its
    :class:`~forecasting.jobs.JobRunner`'s ``is_leader``: the process holding the runner lock) runs jobs;
    the others are started paused (APScheduler's ``start(paused=True)``): they still write schedules and
    triggered retrains into the shared job store, which the leader reads every ``poll_s``. A follower's
    scheduler resumes within ``poll_s`` of its runner taking over, so a scheduled retrain runs once per tick
    whatever the number of processes.

    Parameters
    ----------
    monitoring : Monitoring
        Its ``trigger`` is set to :meth:`run_now`.
    leads : callable, optional
        ``leads() -> bool``: whether this process runs the jobs (default: always; one process).
    poll_s : float, default 1.0
        With ``leads``: how often the leader looks for jobs written by other processes, and a follower
        checks whether it now leads, seconds.
    runner : RetrainQueue (a JobRunner), optional
        Where each tick's retrain runs (the app passes its runner): a job of kind ``retrain`` in the model's
        tenant's queue (:meth:`~forecasting.jobs.JobRunner.submit_retrain`), with the jobs' time limit, cancel
        and progress (``GET /v1/jobs``); a tick while the model's retrain job is still queued or running adds
        none. Without one (the library) the retrain runs in the scheduler's thread.
    """

    def __init__(self, monitoring: Monitoring, *, leads: Callable[[], bool] | None = None,
                 poll_s: float = 1.0, runner: RetrainQueue | None = None) -> None:
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        self.monitoring = monitoring
        self.key = monitoring.store.database_url  # the jobs of this database run with this process's monitoring
        store = SQLAlchemyJobStore(engine=monitoring.store.engine, tablename="scheduler_jobs")
        self.scheduler = BackgroundScheduler(
            jobstores={"default": store}, timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
        monitoring.trigger = self.run_now
        self._lock = threading.Lock()
        self._leads = leads
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None
        self.runner = runner

    def run(self, tenant: str, name: str, trigger: str) -> None:
        """One tick's (or trigger's) retrain: queued as a ``retrain`` job in :attr:`runner`, else run here."""
        if self.runner is not None:
            self.runner.submit_retrain(tenant, name, trigger=trigger)
        else:
            self.monitoring.retrain(tenant, name, trigger=trigger)  # type: ignore[arg-type]

    @property
    def leading(self) -> bool:
        """Whether this scheduler runs the jobs (started and not paused)."""
        from apscheduler.schedulers.base import STATE_RUNNING

        return bool(self.scheduler.state == STATE_RUNNING)

    def start(self) -> None:
        """Start running the stored schedules (paused in a process that does not lead) and bring them in line
        with the stored policies."""
        leads = self._leads is None or self._leads()
        self.scheduler.start(paused=not leads)
        if leads:
            _ACTIVE[self.key] = self
        for tenant, name, raw in self.monitoring.parts.policies():
            self.apply(tenant, name, msgspec.convert(raw, RetrainPolicy) if raw else None)
        if self._leads is not None:
            self._watch = threading.Thread(target=self._follow, name="retrain-scheduler-watch", daemon=True)
            self._watch.start()

    def _follow(self) -> None:
        """Every ``poll_s``: a follower resumes once it leads; the leader wakes its scheduler to read the jobs
        other processes wrote into the shared store (APScheduler 3 sleeps until its own next run time)."""
        assert self._leads is not None
        while not self._stop.wait(self._poll_s):
            try:
                if self.leading:
                    self.scheduler.wakeup()
                elif self._leads():
                    _ACTIVE[self.key] = self
                    self.scheduler.resume()
                    log.info("retrain scheduler: this process runs the schedules",
                             extra={"event": "monitoring.scheduler_leader"})
            except Exception:  # noqa: BLE001 - a busy database now is retried at the next poll
                log.debug("retrain scheduler poll failed; retried", exc_info=True)

    def shutdown(self) -> None:
        """Stop (running retrains finish in their thread)."""
        self._stop.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if _ACTIVE.get(self.key) is self:
            _ACTIVE.pop(self.key, None)

    def apply(self, tenant: str, name: str, policy: RetrainPolicy | None) -> None:
        """Add, replace or remove the model's scheduled job to match ``policy``."""
        from apscheduler.triggers.interval import IntervalTrigger

        job_id = f"retrain:{tenant}:{name}"
        trigger: Any = None
        if policy is not None and policy.cron is not None:
            trigger = crontab_trigger(policy.cron)
        elif policy is not None and policy.interval_s is not None:
            trigger = IntervalTrigger(seconds=policy.interval_s, timezone=UTC)
        with self._lock:
            current = self.scheduler.get_job(job_id)
            if trigger is None:
                if current is not None:
                    self.scheduler.remove_job(job_id)
                return
            if current is not None and str(current.trigger) == str(trigger):
                return  # unchanged: keep its next run time
            self.scheduler.add_job(run_scheduled, trigger=trigger, id=job_id, replace_existing=True,
                                   args=(self.key, tenant, name, "schedule"))

    def run_now(self, tenant: str, name: str, reason: str) -> None:
        """Run a retrain now, in the leading scheduler's threads (one per model at a time; from a process that
        does not lead, through the shared job store: within ``poll_s``)."""
        self.scheduler.add_job(run_scheduled, trigger="date", id=f"now:{tenant}:{name}", replace_existing=True,
                               args=(self.key, tenant, name, reason))

    def next_run(self, tenant: str, name: str) -> datetime | None:
        """When the model's schedule runs next (None without one)."""
        job = self.scheduler.get_job(f"retrain:{tenant}:{name}")
        return None if job is None else job.next_run_time

