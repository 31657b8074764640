"""The data contract: long-format panels, validated once at the edge.

A panel is the field's long format (Nixtla, AutoGluon, TimeGPT): one row per
observation with

* ``unique_id`` -- the series identifier (string; integers are converted),
* ``ds`` -- a timestamp (datetime, date, or an ISO 8601 string) or an integer step
  index (as in the M4 competition, whose series have no dates),
* ``y`` -- the target (float64),

plus any exogenous columns. polars is the native frame; pandas frames, dicts of
columns and lists of records are accepted and converted.

:func:`validate_panel` checks everything downstream code relies on and returns a
:class:`Panel` (frame sorted by ``unique_id, ds`` + ``freq`` + per-series lengths +
a report of what was filled or converted). Each rejection is an
:class:`~forecasting.errors.InvalidInputError` that names the series, the rows and
the rule, e.g. ``series 's1': 2 duplicate timestamps (2024-01-02 x2)``.

The checks are pure functions that return the offending rows (``find_*``), and
:func:`validate_panel` raises on them, so the same check can warn in the CLI and
reject in the API (as mlforecast's ``data_validation``).

Frequencies are polars offsets (``"1h"``, ``"30m"``, ``"1d"``, ``"1w"``, ``"1mo"``,
``"3mo"``, ``"1y"``) for datetime ``ds`` and a positive integer step for integer
``ds``, plus ``"1bd"``: business days, Monday to Friday, for data on weekdays only
(inferred when every step is one business day; the grid and the future timestamps skip
weekends). pandas offset aliases (``"H"``, ``"T"``, ``"D"``, ``"B"``, ``"W-SUN"``, ``"MS"``,
``"ME"``, ``"QS"``, ``"A"``, ``"15min"``...) are translated (:func:`normalize_freq`).

Speed: a panel already sorted by ``unique_id, ds`` and one ``freq`` step apart is
proven so by one scan (no sort, no grid); other orders are sorted on one integer key and
scanned again; the general checks run only where the scan cannot prove the grid
(calendar months, local days in a zone, gaps, off-grid rows). 3.5 million rows validate
faster than the default feature build on them (``benchmarks/validation_speed.py``).

Timezones: timezone-aware ``ds`` are converted to UTC for storage; the caller's
zone is kept in :attr:`Panel.tz`, the calendar grid (gaps, future timestamps) is
computed in that zone, and forecasts are returned in it.
"""

from __future__ import annotations

import calendar
import difflib
import math
import re
from datetime import datetime, timedelta, timezone
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, overload

import numpy as np
import polars as pl

from forecasting.errors import ForecastingError, InsufficientHistoryError, InvalidInputError, InvalidParameterError


#: A polars frame, eager or lazy (helpers that build the same query on either).
FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


def collect_small(query: pl.LazyFrame) -> pl.DataFrame:
    """Run a small per-request query: polars' in-memory engine (polars 2 defaults to its streaming
    engine, several ms slower per call here) without the optimiser passes (a quarter of the time of a
    forecast block's query; they pay off only on large frames). Results are the same either way."""
    return query.collect(engine="in-memory", optimizations=pl.QueryOptFlags.none())


def collect_all_small(queries: list[pl.LazyFrame]) -> list[pl.DataFrame]:
    """:func:`collect_small` for several queries in one call."""
    return pl.collect_all(queries, engine="in-memory", optimizations=pl.QueryOptFlags.none())

__all__ = [
    "FILLED_LISTED",
    "MAX_ABS_Y",
    "MAX_HORIZON",
    "FillPolicy",
    "Panel",
    "ValidationReport",
    "check_min_length",
    "find_duplicates",
    "FLOAT32_MAX",
    "find_float32_inexact",
    "first_pairs",
    "refuse_beyond",
    "find_gaps",
    "find_invalid_y",
    "float32_note",
    "future_frame",
    "infer_freq",
    "is_iso8601",
    "level_columns",
    "normalize_freq",
    "offset_parts",
    "at_caller_offset",
    "check_future_range",
    "to_caller_tz",
    "to_polars",
    "validate_h",
    "validate_levels",
    "validate_panel",
]

#: Largest forecast horizon accepted by :func:`validate_h` (steps of ``freq``).
#: Forecasting further than this from one history is not meaningful for any model in
#: the zoo and would let a single request allocate unbounded memory.
MAX_HORIZON = 10_000

REQUIRED = ("unique_id", "ds", "y")

#: Filled rows listed in a JSON answer (HTTP, ``--json``); the rest are counted in a note: 972,000 gap rows filled
#: from an 81 KB request were a 68 MB answer (:attr:`ValidationReport.filled` keeps every row for the library)
FILLED_LISTED = 1_000
FillPolicy = Literal["zero", "forward", "interpolate"]
#: How ``ds`` was given: integer steps, timestamps or calendar dates.
DsKind = Literal["int", "datetime", "date"]
FILL_POLICIES: tuple[FillPolicy, ...] = ("zero", "forward", "interpolate")
_MAX_EXAMPLES = 5

#: pandas offset aliases (pandas' "Offset aliases" table, in the spellings before and after pandas 2.2)
#: -> the polars offsets used here. "B" (business day, Monday to Friday) is the one offset that polars'
#: duration strings lack; it is "1bd" here (see :func:`business_day_index`).
_PANDAS_ALIASES = {
    "U": "1us", "us": "1us", "L": "1ms", "ms": "1ms", "S": "1s", "s": "1s", "T": "1m", "min": "1m",
    "H": "1h", "h": "1h", "D": "1d", "d": "1d", "B": "1bd", "W": "1w",
    "M": "1mo", "ME": "1mo", "MS": "1mo", "Q": "3mo", "QE": "3mo", "QS": "3mo",
    "A": "1y", "Y": "1y", "YE": "1y", "YS": "1y", "AS": "1y",
}
#: Aliases that take an anchor suffix (``W-SUN``, ``Q-DEC``, ``QS-JAN``, ``A-DEC``, ``YS-JUL``), and the anchors.
#: The grid starts at each series' first ``ds``, so the anchor only has to be a valid name.
_ANCHORED = {"W": "week", **dict.fromkeys(("Q", "QE", "QS", "A", "Y", "YE", "YS", "AS"), "month")}
_ANCHORS = {"week": ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"),
            "month": ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")}
_POLARS_OFFSET = re.compile(r"^(\d+)(ns|us|ms|s|m|h|d|bd|w|mo|q|y)$")
_PANDAS_ALIAS = re.compile(r"^(\d*)([A-Za-z]+)(?:-([A-Za-z]{3}))?$")
_TZ_SUFFIX = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
#: a timestamp at local midnight with an offset: 2024-03-31T00:00:00+01:00 (or 2024-03-31 00:00+01:00)
_LOCAL_MIDNIGHT = re.compile(r"^\s*\d{4}-\d{2}-\d{2}[T ]00:00(:00(\.0+)?)?(Z|[+-]\d{2}:?\d{2})\s*$")
#: a fixed UTC offset that is not a whole number of hours (no zone name spells it)
_FIXED_OFFSET = re.compile(r"[+-]\d{2}:\d{2}")


# --------------------------------------------------------------------------- types
@dataclass(frozen=True)
class ValidationReport:
    """What validation changed, so nothing happens silently.

    Attributes
    ----------
    filled : pl.DataFrame
        Rows whose ``y`` was filled: ``unique_id, ds, reason, policy`` where reason is
        ``"missing"`` (null/NaN/inf ``y``) or ``"gap"`` (row inserted on the grid).
    notes : list of str
        Human-readable notes (timezone conversion, pandas input converted...).
    """

    filled: pl.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def filled_note(self) -> str | None:
        """The note of a JSON answer listing only the first :data:`FILLED_LISTED` filled rows (None: all listed)."""
        if self.filled.height <= FILLED_LISTED:
            return None
        return f"{self.filled.height:,} rows were filled; the first {FILLED_LISTED:,} are listed in filled"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"filled": [{unique_id, ds, reason, policy}...], "notes": [...]}``: at most
        :data:`FILLED_LISTED` rows, and :attr:`filled_note` with the count beyond that."""
        rows = self.filled.head(FILLED_LISTED).with_columns(pl.col("ds").cast(pl.String)).to_dicts()
        return {"filled": rows, "notes": [*self.notes, *filter(None, [self.filled_note])]}


@dataclass(frozen=True)
class Panel:
    """A validated long-format panel.

    Attributes
    ----------
    frame : pl.DataFrame
        ``unique_id`` (String), ``ds`` (Int64, or Datetime("us") naive in UTC when the
        input was timezone-aware, else naive as given), ``y`` (Float64), exogenous
        columns; sorted by ``unique_id, ds``; no nulls, duplicates or gaps in ``y``.
    freq : str or int
        polars offset (``"1h"``; ``"1bd"`` for business days) for datetime ``ds``, positive integer
        step for integer ``ds``.
    lengths : dict of str to int
        Number of observations per series, in order of first appearance.
    tz : str or None
        The caller's timezone when ``ds`` was timezone-aware (``"Europe/Paris"``,
        ``"Etc/GMT-1"`` for a fixed +01:00 offset, ``"UTC"``).
    ds_kind : {"int", "datetime", "date"}
        What ``ds`` was on input; forecasts are returned with the same kind.
    exog : tuple of str
        Exogenous column names (everything beyond ``unique_id, ds, y``).
    month_end : bool
        Monthly/quarterly/yearly ``ds`` anchored at month ends (2024-01-31, 2024-02-29...):
        the grid and future timestamps stay on month ends.
    report : ValidationReport
    grid_checked : bool
        Set by :func:`validate_panel`: every series is sorted and on the ``freq`` grid, so
        models may skip re-checking it (a hand-built Panel is checked again).
    utc_offset : str or None
        The caller's fixed UTC offset when it is not a whole number of hours (``"+05:30"``,
        ``"-03:30"``), which no zone name spells: ``tz`` is then ``"UTC"`` (a fixed offset has no
        daylight saving, so the grid is the same) and answers are shown at this offset
        (:func:`at_caller_offset`).
    """

    frame: pl.DataFrame
    freq: str | int
    lengths: dict[str, int]
    tz: str | None = None
    ds_kind: Literal["int", "datetime", "date"] = "datetime"
    exog: tuple[str, ...] = ()
    month_end: bool = False
    report: ValidationReport = field(default_factory=lambda: ValidationReport(_empty_filled()))
    grid_checked: bool = False
    utc_offset: str | None = None

    @property
    def n_series(self) -> int:
        """Number of series."""
        return len(self.lengths)

    @property
    def ids(self) -> list[str]:
        """Series ids in the frame's (sorted) order."""
        return list(self.lengths)

    def series_values(self) -> list[tuple[str, Any]]:
        """``[(unique_id, y as float64 numpy array of shape (n_i,))...]`` in order."""
        out = []
        for (uid,), part in self.frame.select("unique_id", "y").group_by("unique_id", maintain_order=True):
            out.append((str(uid), part["y"].to_numpy()))
        return out

    def subset(self, ids: Iterable[str]) -> Panel:
        """The panel restricted to the given series (same freq, tz and kind)."""
        keep = list(ids)
        frame = self.frame.filter(pl.col("unique_id").is_in(keep))
        return Panel(frame=frame, freq=self.freq, lengths={k: self.lengths[k] for k in self.lengths if k in set(keep)},
                     tz=self.tz, ds_kind=self.ds_kind, exog=self.exog, month_end=self.month_end, report=self.report,
                     utc_offset=self.utc_offset)


_EMPTY_FILLED = pl.DataFrame(schema={"unique_id": pl.String, "ds": pl.String, "reason": pl.String, "policy": pl.String})


def _empty_filled() -> pl.DataFrame:
    return _EMPTY_FILLED  # polars frames are immutable: one shared empty report


# --------------------------------------------------------------------------- helpers
def _fmt(v: Any) -> str:
    if hasattr(v, "isoformat"):
        s = v.isoformat(sep=" ") if hasattr(v, "hour") else v.isoformat()
        return s.removesuffix(" 00:00:00")
    return str(v)


def _on_caller_clock(values: Sequence[Any], clock: tuple[str | None, str | None]) -> list[Any]:
    """Internal ``ds`` values (naive UTC when the input was aware) as the caller's clock shows them, for messages:
    ISO 8601 at the zone's or the fixed offset (``2024-03-31T07:00:00+02:00``); ``clock`` is ``(tz, utc_offset)``
    of the panel; naive timestamps and integer steps are returned as they are."""
    from zoneinfo import ZoneInfo

    tz, offset = clock
    if tz is None:
        return list(values)
    zone: Any = timezone(_offset_delta(offset)) if offset else ZoneInfo(tz)
    return [v.replace(tzinfo=timezone.utc).astimezone(zone).isoformat() if isinstance(v, datetime) else v
            for v in values]


def _examples(values: Sequence[Any], total: int | None = None) -> str:
    shown = ", ".join(_fmt(v) for v in values[:_MAX_EXAMPLES])
    total = len(values) if total is None else total
    return shown + (f", ... ({total - _MAX_EXAMPLES} more)" if total > _MAX_EXAMPLES else "")


def _series_messages(per_series: dict[str, str], what: str) -> str:
    ids = list(per_series)
    parts = [f"series '{uid}': {per_series[uid]}" for uid in ids[:_MAX_EXAMPLES]]
    more = f"; ... and {len(ids) - _MAX_EXAMPLES} more series" if len(ids) > _MAX_EXAMPLES else ""
    return f"{what}: " + "; ".join(parts) + more


def _from_pandas(data: Any, field_name: str) -> pl.DataFrame:
    """:func:`to_polars` of a pandas frame: object columns value by value, fixed UTC offsets as ISO text; duplicated
    column names and dtypes polars cannot read are :class:`InvalidInputError` naming the column."""
    import pandas as pd

    pdf = data.reset_index(drop=not any(n in REQUIRED for n in data.index.names if n))
    names = [str(n) for n in pdf.columns]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # pdf[name] would be a frame (an AttributeError on .dtype), and one of them silently lost
        msg = (f"{field_name}: column names must be unique; {', '.join(map(repr, twice))} "
               f"{'appears' if len(twice) == 1 else 'appear'} more than once")
        raise InvalidInputError(msg, field=f"{field_name}.{twice[0]}")
    cols: dict[str, pl.Series] = {}
    for name in pdf.columns:
        col = pdf[name]
        if col.dtype == object:
            cols[str(name)] = _series_from_python(str(name), col.tolist(), field_name)
        elif isinstance(col.dtype, pd.DatetimeTZDtype) and _fixed_offset_zone(col.dtype.tz):
            # a fixed UTC offset (datetime.timezone, pytz.FixedOffset) has no zone name polars reads: ISO 8601
            # text with the offset, parsed as such timestamps are (Panel.utc_offset; +01:00 as Etc/GMT-1)
            delta = col.dtype.tz.utcoffset(None) or timedelta(0)
            minutes = int(abs(delta.total_seconds())) // 60
            offset = f"{'-' if delta < timedelta(0) else '+'}{minutes // 60:02d}:{minutes % 60:02d}"
            text = (col.dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + offset).astype(object).where(col.notna(), None)
            cols[str(name)] = pl.Series(str(name), text.tolist(), dtype=pl.String)
        else:
            try:
                cols[str(name)] = pl.from_pandas(col).rename(str(name))
            except Exception as exc:  # noqa: BLE001 - pyarrow/polars raise many types for a dtype they lack
                msg = f"{field_name}: column '{name}' of dtype {col.dtype} cannot be read ({exc})"
                raise InvalidInputError(msg, field=f"{field_name}.{name}") from exc
    return pl.DataFrame(cols)


def to_polars(data: Any, *, field_name: str = "data") -> pl.DataFrame:
    """Convert accepted inputs to a polars frame without changing values.

    Parameters
    ----------
    data : pl.DataFrame, pd.DataFrame, mapping of column -> list, or list of row dicts

    Raises
    ------
    InvalidInputError
        For any other type, or a pandas/dict input whose columns cannot be represented
        (for instance a ``ds`` column mixing integers and strings).
    """
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return _from_pandas(data, field_name)
    if isinstance(data, Mapping):
        lengths = {str(k): len(v) if isinstance(v, Sequence) and not isinstance(v, str) else None for k, v in data.items()}
        if any(n is None for n in lengths.values()):
            bad = [k for k, n in lengths.items() if n is None]
            msg = f"{field_name}: column {', '.join(repr(b) for b in bad)} must be a list of values"
            raise InvalidInputError(msg, field=f"{field_name}.{bad[0]}")
        if len(set(lengths.values())) > 1:
            longest = max(n for n in lengths.values() if n is not None)
            short = {k: n for k, n in lengths.items() if n != longest}
            raise InvalidInputError(
                f"{field_name}: columns must have the same length; " + ", ".join(
                    f"'{k}' has {n} values" for k, n in short.items()) + f" but others have {longest}",
                field=f"{field_name}.{next(iter(short))}", details={"lengths": lengths})
        return pl.DataFrame([_series_from_python(str(k), list(v), field_name) for k, v in data.items()])
    if isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
        names: list[str] = []
        for r in data:
            for k in r:
                if k not in names:
                    names.append(k)
        return pl.DataFrame([_series_from_python(n, [r.get(n) for r in data], field_name) for n in names])
    msg = (
        f"{field_name} must be a polars or pandas DataFrame, a mapping of columns or a list of rows, "
        f"got {type(data).__name__}"
    )
    raise InvalidInputError(msg, field=field_name)


#: Fast paths for the common valid request (see :func:`_series_fast`, :func:`_scan_in_order`). Each one gives
#: exactly what the general code gives, or steps aside for it; tests turn this off to compare the two.
_FAST_PATHS = True
_NONE_TYPE = type(None)
_INT64_MIN, _INT64_END = -(2**63), 2**63


def _series_fast(name: str, values: list[Any]) -> pl.Series | None:
    """The column :func:`_series_from_python` would build, for plain columns only; None otherwise.

    Plain means every value is exactly ``str`` (or None), or exactly ``int``/``float``
    (or None) with every ``int`` within 64 bits. Anything else (bool, numpy scalars,
    datetimes, mixed kinds, huge integers, only None) is left to the general path, which
    owns every error message.
    """
    types = set(map(type, values))  # C speed; the general path classifies value by value
    if not types - {str, _NONE_TYPE}:
        return pl.Series(name, values, strict=False) if str in types else None
    if types - {int, float, _NONE_TYPE} or not types & {int, float}:
        return None
    has_none = _NONE_TYPE in types
    nums = [v for v in values if v is not None] if has_none else values
    if int in types:
        ints = nums if float not in types else [v for v in nums if type(v) is int]
        if min(ints) < _INT64_MIN or max(ints) >= _INT64_END:
            return None  # the general path refuses them (or, for y, reads them as floats)
        if float not in types and name != "y":
            return pl.Series(name, values, dtype=pl.Int64)
    floats = [None if v is None else float(v) for v in values] if has_none else list(map(float, values))
    return pl.Series(name, floats, dtype=pl.Float64)


def _series_from_python(name: str, values: list[Any], field_name: str) -> pl.Series:
    """A column from Python values, refusing silent coercion of mixed types."""
    if _FAST_PATHS:
        fast = _series_fast(name, values)
        if fast is not None:
            return fast
    kinds: dict[str, list[int]] = {}
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        k = ("bool" if isinstance(v, bool) else "number" if isinstance(v, int | float) else
             "string" if isinstance(v, str) else "datetime" if hasattr(v, "year") else type(v).__name__)
        kinds.setdefault(k, []).append(i)
    if len(kinds) > 1:
        desc = "; ".join(f"{k} at rows {_examples(rows)}" for k, rows in kinds.items())
        msg = f"column '{name}' mixes value types ({desc}); use one type per column"
        raise InvalidInputError(msg,
                                field=f"{field_name}.{name}", details={"column": name, "types": {k: v[:50] for k, v in kinds.items()}})
    kind = next(iter(kinds), None)
    if kind == "datetime":
        import pandas as pd

        aware = [i for i, v in enumerate(values) if v is not None and getattr(v, "tzinfo", None) is not None]
        if aware and len(aware) != sum(v is not None for v in values):
            naive = [i for i, v in enumerate(values) if v is not None and getattr(v, "tzinfo", None) is None]
            msg = (
                f"column '{name}' mixes timezone-aware and naive timestamps (aware at rows {_examples(aware)}; "
                f"naive at rows {_examples(naive)}); give every timestamp a zone or none"
            )
            raise InvalidInputError(msg, field=f"{field_name}.{name}")
        if aware:
            utc = pd.Series(pd.to_datetime(values, utc=True), name=name)
            zones = {str(getattr(v.tzinfo, "key", v.tzinfo)) for v in values if v is not None}
            if len(zones) == 1:  # one zone: keep it, so the grid and the forecasts follow the caller's clock
                try:
                    return pl.from_pandas(utc.dt.tz_convert(zones.pop()))
                except Exception:  # noqa: BLE001 - a zone polars cannot name (a fixed offset): as text, below
                    pass
            # a fixed offset or several zones: ISO 8601 text with each value's offset, read as the JSON answer's
            # timestamps are (one offset kept as Panel.utc_offset; several: UTC, with a note naming them)
            return pl.Series(name, [None if v is None else pd.Timestamp(v).isoformat() for v in values],
                             dtype=pl.String)
    if kind == "number":
        too_big = [i for i, v in enumerate(values) if isinstance(v, int) and not -(2**63) <= v < 2**63
                    and (name != "y" or abs(v) > 1.7e308)]
        if too_big:
            msg = (
                f"column '{name}' has numbers too large to represent (rows {_examples(too_big)}; "
                f"{'integers must fit in 64 bits' if name != 'y' else 'beyond the float64 range'})"
            )
            raise InvalidInputError(msg, field=f"{field_name}.{name}")
        if all(isinstance(v, int) for v in values if v is not None) and name != "y":
            return pl.Series(name, values, dtype=pl.Int64)
        return pl.Series(name, [float(v) if v is not None else None for v in values], dtype=pl.Float64)
    try:
        return pl.Series(name, values, strict=False)
    except Exception as exc:  # polars raises several types here; re-raised as InvalidInputError
        msg = f"column '{name}' could not be read: {exc}"
        raise InvalidInputError(msg, field=f"{field_name}.{name}") from exc


# --------------------------------------------------------------------------- frequency
def normalize_freq(freq: str | int | None) -> str | int | None:
    """Translate a frequency to a polars offset (datetime) or a positive int step.

    Parameters
    ----------
    freq : str, int or None
        A polars offset (``"1h"``, ``"15m"``, ``"1d"``, ``"1w"``, ``"1mo"``, ``"3mo"``, ``"1y"``), or
        ``"1bd"`` (business days, Monday to Friday), a pandas offset alias with an optional count
        and anchor (``"H"``, ``"h"``, ``"T"``, ``"min"``, ``"S"``, ``"D"``, ``"B"``, ``"W"``,
        ``"W-SUN"``, ``"M"``, ``"ME"``, ``"MS"``, ``"Q"``, ``"QE"``, ``"QS"``, ``"Q-DEC"``, ``"A"``,
        ``"Y"``, ``"YE"``, ``"YS"``, ``"15min"``, ``"30T"``, ``"2W-MON"``; pandas' "Offset aliases"
        table, spellings before and after pandas 2.2), or a positive integer step (integer ``ds``).
        Month-end (``"ME"``) and month-start (``"MS"``) data both give ``"1mo"``: the anchoring is
        read from the data (:func:`is_month_end_anchored`); an anchor suffix is checked but the grid
        starts at each series' first ``ds``.

    Returns
    -------
    str, int or None
        The polars offset (``"<n><unit>"`` with unit ``us, ms, s, m, h, d, bd, w, mo, y``; quarters
        as ``"3mo"``), the integer step, or None for None.

    Raises
    ------
    InvalidParameterError
        A zero step, a bool, or anything else (the message lists examples). Business-month,
        business-quarter and business-hour aliases (``"BM"``, ``"BQ"``, ``"BH"``...) are not supported.

    Examples
    --------
    >>> normalize_freq("H"), normalize_freq("15min"), normalize_freq("MS"), normalize_freq(7)
    ('1h', '15m', '1mo', 7)
    >>> normalize_freq("B"), normalize_freq("W-SUN"), normalize_freq("QS-JAN"), normalize_freq("30T")
    ('1bd', '1w', '3mo', '30m')
    """
    if freq is None:
        return None
    if isinstance(freq, bool):
        msg = f"freq must be a polars offset like '1h' or a positive integer, got {freq!r}"
        raise InvalidParameterError(msg, field="freq")
    if isinstance(freq, int):
        if freq < 1:
            msg = f"freq must be a positive integer step for integer ds, got {freq}"
            raise InvalidParameterError(msg, field="freq")
        if freq > _INT64_MAX:
            msg = f"freq {freq} is beyond the 64-bit range of integer ds (at most {_INT64_MAX})"
            raise InvalidParameterError(msg, field="freq")
        return freq
    if not isinstance(freq, str) or not freq.strip():
        msg = f"freq must be a string like '1h' or an integer, got {freq!r}"
        raise InvalidParameterError(msg, field="freq")
    f = freq.strip()
    if f.isdigit():
        return normalize_freq(int(f))
    zero = InvalidParameterError(f"freq must be a positive step, got {freq!r} (a zero step has no grid)",
                                 field="freq")
    if m := _POLARS_OFFSET.match(f):
        if int(m.group(1)) == 0:
            raise zero
        return _within_timestamps(freq, "3mo" if f == "1q" else f)
    base = _pandas_base(f)
    if base is None:
        msg = (
            f"freq {freq!r} is not a known frequency; use a polars offset such as '1h', '30m', '1d', '1bd' "
            f"(business days), '1w', '1mo', '3mo', '1y', a pandas alias such as 'H', 'T', 'D', 'B', 'W-SUN', "
            f"'MS', 'ME', 'QS', 'Q', 'YS', 'A', '15min', '30T', or an integer step"
        )
        raise InvalidParameterError(msg, field="freq")
    count, offset = base
    if count == 0:
        raise zero
    num, unit = offset_parts(offset)
    return _within_timestamps(freq, f"{count * num}{unit}")


#: the largest 64-bit integer: integer ``ds`` and its step, and a timestamp's microseconds, stay within it
_INT64_MAX = 2**63 - 1
#: the longest a calendar unit can be, in microseconds (a month of 31 days, a year of 366)
_UNIT_MAX_US = {"ns": 1e-3, "bd": 86_400e6, "mo": 31 * 86_400e6, "q": 92 * 86_400e6, "y": 366 * 86_400e6}


def _within_timestamps(given: str, offset: str) -> str:
    """``offset`` when one step of it fits the 64-bit microsecond timestamps (about 292,000 years either side of
    1970), else an :class:`InvalidParameterError` naming ``freq`` (was: HTTP 500 from polars' i128 -> i64
    conversion of '1000000000d' when the grid was checked)."""
    count, unit = offset_parts(offset)
    step_us = count * _UNIT_MAX_US.get(unit, _FIXED_UNITS_US.get(unit, 1))
    if step_us > _INT64_MAX:
        msg = (f"freq {given!r} is a step of about {step_us / (365.25 * 86_400e6):.3g} years, beyond the 64-bit "
               f"timestamps' range (about 292,000 years either side of 1970): not one step of it can be represented")
        raise InvalidParameterError(msg, field="freq")
    return offset


def _week_anchor(freq: object) -> int | None:
    """The ISO weekday (1 = Monday) a weekly pandas alias is anchored on (``"W-MON"`` -> 1; ``"W"`` is
    ``"W-SUN"``, pandas' default, but states no anchor and gives None), else None."""
    if not isinstance(freq, str) or (m := _PANDAS_ALIAS.match(freq.strip())) is None:
        return None
    if m.group(2) != "W" or m.group(3) is None or m.group(3).upper() not in _ANCHORS["week"]:
        return None
    return _ANCHORS["week"].index(m.group(3).upper()) + 1


def _check_week_anchor(frame: pl.DataFrame, tz: str | None, weekday: int) -> None:
    """Every ``ds`` (on the caller's clock) on the anchored weekday, else an :class:`InvalidInputError` naming
    the series and the first rows off it (pandas' ``W-<DAY>`` weeks end on that day)."""
    local = _local(frame.select("unique_id", "ds"), tz)
    off = local.filter(pl.col("ds").dt.weekday() != weekday)
    if off.height:
        day = _ANCHORS["week"][weekday - 1]
        first = off.head(5)
        shown = ", ".join(f"series {u!r} at {d.strftime('%Y-%m-%d')} ({d.strftime('%a')})" for u, d in first.iter_rows())
        more = f" ... ({off.height - 5} more)" if off.height > 5 else ""
        name = calendar.day_name[weekday - 1]
        msg = (f"freq 'W-{day}' anchors weeks on {name}, but {off.height} ds are on another weekday: "
               f"{shown}{more}; pass the data's own anchor (e.g. 'W-{_ANCHORS['week'][first['ds'][0].weekday()]}') or "
               f"'1w'")
        raise InvalidInputError(msg, field="ds", details={"series": sorted(set(off["unique_id"].to_list()))[:20]})


def _pandas_base(f: str) -> tuple[int, str] | None:
    """``(count, polars offset of one unit)`` of a pandas alias (``"15min"`` -> ``(15, "1m")``), else None."""
    m = _PANDAS_ALIAS.match(f)
    if m is None:
        return None
    count, unit, anchor = (int(m.group(1)) if m.group(1) else 1), m.group(2), m.group(3)
    base = _PANDAS_ALIASES.get(unit)
    if base is None and m.group(1) and _POLARS_OFFSET.match(f"1{unit}"):
        base = f"1{unit}"  # a count with a polars unit in capitals or with an anchor is not a polars offset
    if base is None or (anchor is not None and anchor.upper() not in _ANCHORS.get(_ANCHORED.get(unit, ""), ())):
        return None
    return count, base


_FIXED_UNITS_US = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000,
                   "w": 7 * 86_400_000_000}


def infer_freq(frame: pl.DataFrame) -> str | int:
    """Infer the frequency from the most common step between consecutive ``ds``.

    Parameters
    ----------
    frame : pl.DataFrame
        ``unique_id, ds`` sorted by both, ``ds`` Int64 or naive Datetime (local clock).

    Returns
    -------
    str or int
        A polars offset for datetime ``ds`` (calendar months and years are recognised
        from the day of month; ``"1bd"`` when every ``ds`` is a weekday and every step is
        one business day, Friday to Monday included), an integer step for integer ``ds``.

    Raises
    ------
    InvalidInputError
        If no series has two observations, or steps are too irregular to name one
        frequency (message gives the steps seen, and says to pass ``freq``).

    Examples
    --------
    >>> from datetime import datetime
    >>> frame = pl.DataFrame({"unique_id": ["a", "a", "a"], "ds": [datetime(2024, 1, 1, h) for h in (0, 1, 3)]})
    >>> infer_freq(frame)  # the most common step; the gap is found later, by validate_panel
    '1h'
    """
    diffs = frame.select(pl.col("ds").diff().over("unique_id").alias("d")).drop_nulls()
    if diffs.height == 0:
        msg = "cannot infer the frequency: every series has a single observation; pass freq"
        raise InvalidInputError(msg, field="freq")
    if frame.schema["ds"].is_integer():
        step = int(diffs["d"].mode().sort()[0])
        if step < 1:
            msg = "cannot infer the frequency from integer ds steps; pass freq"
            raise InvalidInputError(msg, field="freq")
        return step
    d_us = diffs.select(pl.col("d").dt.total_microseconds())["d"]
    counts = d_us.value_counts(sort=True)
    top = int(counts[0, 0])
    share = counts[0, 1] / d_us.len()
    day = _FIXED_UNITS_US["d"]
    if _month_like(top):
        months = frame.select(
            (pl.col("ds").dt.year() * 12 + pl.col("ds").dt.month()).diff().over("unique_id").alias("m")).drop_nulls()["m"]
        step = int(months.mode().sort()[0])
        if step >= 1 and 2 * int((months == step).sum()) >= months.len():  # on the step at least half the time
            return f"{step // 12}y" if step % 12 == 0 else f"{step}mo"
    if top == day and share < 1 and _on_business_day_grid(frame, mostly=True):  # Friday -> Monday is one step
        return "1bd"
    if share < 0.5:
        seen = ", ".join(f"{_us_to_offset(int(v))} x{int(c)}" for v, c in counts.head(3).iter_rows())
        msg = f"cannot infer the frequency: steps between timestamps vary ({seen}); pass freq"
        raise InvalidInputError(msg, field="freq")
    return _us_to_offset(top)


def _month_like(step_us: int) -> bool:
    """A step (microseconds) that may be calendar months, a quarter or a year (read from the calendar)."""
    day = _FIXED_UNITS_US["d"]
    return (step_us % day == 0 and 28 * day <= step_us <= 31 * day or 89 * day <= step_us <= 92 * day
            or 365 * day <= step_us <= 366 * day)


def offset_parts(freq: str) -> tuple[int, str]:
    """Count and unit of a polars offset (as :func:`normalize_freq` returns them).

    Parameters
    ----------
    freq : str
        A polars offset such as ``"15m"``, ``"1h"`` or ``"3mo"``.

    Returns
    -------
    tuple of (int, str)
        The number of units and the unit (``ns, us, ms, s, m, h, d, bd, w, mo, q, y``; ``bd``:
        business days, Monday to Friday).

    Raises
    ------
    InvalidParameterError
        If ``freq`` is not a polars offset (a pandas alias must go through :func:`normalize_freq` first).

    Examples
    --------
    >>> offset_parts("15m")
    (15, 'm')
    >>> offset_parts(normalize_freq("MS"))
    (1, 'mo')
    """
    m = _POLARS_OFFSET.match(freq)
    if m is None:
        msg = f"freq must be a polars offset such as '1h' or '1mo', got {freq!r}"
        raise InvalidParameterError(msg, field="freq")
    return int(m.group(1)), m.group(2)


def _us_to_offset(us: int) -> str:
    for unit in ("w", "d", "h", "m", "s", "ms", "us"):
        size = _FIXED_UNITS_US[unit]
        if us % size == 0:
            return f"{us // size}{unit}"
    return f"{us}us"  # pragma: no cover


# --------------------------------------------------------------------------- business days
_DAY_US = _FIXED_UNITS_US["d"]


def _bd_parts(ds: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """``(index, time_of_day, weekend)`` of a naive datetime (on the local clock).

    ``index`` counts business days (Monday to Friday, no holidays, as pandas' ``"B"`` and polars'
    ``add_business_days``) from Monday 1969-12-29; a Saturday or Sunday gets the following
    Monday's index (``weekend`` is then true). ``time_of_day`` is in microseconds.
    """
    us = ds.cast(pl.Int64)
    days = us // _DAY_US + 3  # days since Monday 1969-12-29 (1970-01-01 was a Thursday); floor division
    weekday = days % 7  # 0 = Monday
    return (days // 7) * 5 + weekday.clip(upper_bound=5), us % _DAY_US, weekday >= 5


def _bd_datetime(index: pl.Expr, time_of_day: pl.Expr) -> pl.Expr:
    """The naive datetime of a business-day ``index`` at ``time_of_day`` (inverse of :func:`_bd_parts`)."""
    days = (index // 5) * 7 + index % 5 - 3
    return (days * _DAY_US + time_of_day).cast(pl.Datetime("us"))


def _on_business_day_grid(frame: pl.DataFrame, n: int = 1, *, mostly: bool = False) -> bool:
    """Every ``ds`` a weekday and every step within a series exactly ``n`` business days at the same time
    of day (``unique_id, ds`` sorted, ``ds`` naive on the local clock). ``mostly``: at least half of the
    steps are (as :func:`infer_freq` asks of any step), the others are gaps reported against the grid."""
    index, tod, weekend = _bd_parts(pl.col("ds"))
    clock = index * _DAY_US + tod  # a clock without weekends: one business day is one day on it
    step = clock - clock.shift(1)
    same = pl.col("unique_id") == pl.col("unique_id").shift(1)
    on = step.filter(same) == n * _DAY_US
    return bool(frame.select(weekend.not_().all() & (on.mean() >= 0.5 if mostly else on.all())).item())


# --------------------------------------------------------------------------- checks
def find_missing_columns(frame: pl.DataFrame) -> dict[str, str | None]:
    """Required columns that are absent, each with the closest present name (or None)."""
    present = frame.columns
    out: dict[str, str | None] = {}
    lower = {c.lower().strip(): c for c in present}
    for col in REQUIRED:
        if col in present:
            continue
        guess = lower.get(col)
        if guess is None:
            close = difflib.get_close_matches(col, present, n=1, cutoff=0.6)
            guess = close[0] if close else None
        if guess is None:
            guess = next((lower[s] for s in _SYNONYMS[col] if s in lower and lower[s] not in REQUIRED), None)
        out[col] = guess
    return out


#: Names other tools use for the required columns, offered as "did you mean" hints.
_SYNONYMS = {
    "unique_id": ("id", "series", "series_id", "item_id", "uid", "key", "store", "sku"),
    "ds": ("date", "datetime", "timestamp", "time", "period", "index", "t", "step"),
    "y": ("value", "target", "sales", "demand", "count", "cnt", "values", "observation"),
}


def find_invalid_y(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows whose ``y`` is null, NaN or infinite: ``unique_id, ds, y, row`` (input row number)."""
    y = pl.col("y")
    bad = y.is_null() | y.is_nan() | y.is_infinite()
    return frame.with_row_index("row").filter(bad).select("unique_id", "ds", "y", "row")


def first_pairs(frame: pl.DataFrame, n: int = 5) -> str:
    """``"(unique_id, ds), ..."`` of the first ``n`` rows of ``frame``: how an error names offending rows."""
    return ", ".join(f"({u}, {d})" for u, d in frame.select("unique_id", "ds").head(n).iter_rows())


#: float32's largest finite value (IEEE 754 binary32): the tree engines, ONNX Runtime and the networks read inputs as
#: float32, where a larger magnitude becomes infinite; inputs beyond it are refused
FLOAT32_MAX = 3.4028234663852886e38

def refuse_beyond(frame: pl.DataFrame, columns: Sequence[str], bound: float, *, rule: str, where: str,
                  kind: str = "column", advice: str = "rescale the column", field_of_y: str | None = None) -> None:
    """Refuse values of ``columns`` beyond ``bound`` in magnitude (an infinite one included), naming the column,
    the count, the first ``(unique_id, ds)`` rows (:func:`first_pairs`) and the rule.

    The one range check of model inputs: exogenous values beyond float32's range (:data:`FLOAT32_MAX`,
    :func:`forecasting.models.global_base.check_exog_values`) and the networks' inputs beyond
    :data:`forecasting.models.network_core.MAX_ABS_VALUE` (1e30, ``check_range``). Null and NaN are missing values,
    not out of range (polars orders NaN above every number, so ``NaN > bound`` holds: they are left out here);
    columns absent from ``frame`` or not numeric are skipped.

    Parameters
    ----------
    frame : pl.DataFrame
        ``unique_id``, ``ds`` and the columns.
    columns : sequence of str
    bound : float
        The largest magnitude accepted (itself accepted).
    rule : str
        What the bound is, as the message says it after "beyond" (``"+/-1e+30 (...)"``).
    where : str
        The request field (``"data"``, ``"history"``, ``"X_future"``): the message's prefix, and the error's
        ``field`` is ``"{where}.{column}"``, or ``field_of_y`` for column ``y`` when given.
    kind : str, default "column"
        How the message names a column (``"exogenous column"``).
    advice : str, default "rescale the column"
        What to do, ending the message.

    Raises
    ------
    InvalidInputError
        ``"{where}: {kind} '{column}' has {n} values beyond {rule} at (unique_id, ds): (a, 3), ...; {advice}"``.

    Examples
    --------
    >>> frame = pl.DataFrame({"unique_id": ["a", "a"], "ds": [1, 2], "price": [1.0, -2e39]})
    >>> refuse_beyond(frame, ["price"], FLOAT32_MAX, rule="float32's range", where="data")
    Traceback (most recent call last):
    ...
    forecasting.errors.InvalidInputError: data: column 'price' has 1 values beyond float32's range at (unique_id, ds): (a, 2); rescale the column
    """
    for col in columns:
        if col not in frame.columns or not frame.schema[col].is_numeric():
            continue
        x = pl.col(col).cast(pl.Float64)
        bad = frame.filter((x.abs() > bound) & ~x.is_nan())
        if bad.height:
            msg = (f"{where}: {kind} '{col}' has {bad.height} values beyond {rule} at (unique_id, ds): "
                   f"{first_pairs(bad)}; {advice}")
            raise InvalidInputError(msg, field=field_of_y if col == "y" and field_of_y is not None else f"{where}.{col}")


#: Largest magnitude below which float32 (24-bit significand, IEEE 754 binary32) holds every integer exactly;
#: above it neighbouring values collapse (2^24 + 1 reads as 2^24). XGBoost (DMatrix) and LightGBM (labels,
#: feature values before binning) hold data as float32.
FLOAT32_EXACT_LIMIT = 2**24


def find_float32_inexact(frame: pl.DataFrame, columns: Sequence[str]) -> dict[str, float]:
    """Numeric ``columns`` of ``frame`` with a finite value beyond :data:`FLOAT32_EXACT_LIMIT` in magnitude.

    Returns
    -------
    dict of str to float
        Column -> its largest absolute finite value, for the offending columns only (in the order given).
    """
    out: dict[str, float] = {}
    for col in columns:
        if col not in frame.columns or not frame.schema[col].is_numeric():
            continue
        big = frame.select(pl.col(col).cast(pl.Float64).abs().filter(pl.col(col).cast(pl.Float64).abs().is_finite())
                           .max()).item()
        if big is not None and big > FLOAT32_EXACT_LIMIT:
            out[col] = float(big)
    return out


def float32_note(found: dict[str, float], *, model: str) -> str:
    """The warning note for :func:`find_float32_inexact`'s columns: each named with its largest value, the rule."""
    cols = ", ".join(f"'{c}' (|x| up to {v:.6g})" for c, v in found.items())
    return (f"float32 range: model '{model}' works in float32, which holds values exactly only up to |x| <= 2^24 "
            f"(16,777,216); {cols} exceed it, so nearby values may be read as equal and give identical predictions: "
            f"rescale or difference them (e.g. in thousands) before fitting")


def find_duplicates(frame: pl.DataFrame) -> pl.DataFrame:
    """Duplicated ``(unique_id, ds)`` pairs: ``unique_id, ds, count``."""
    return (frame.group_by("unique_id", "ds", maintain_order=True).len("count")
            .filter(pl.col("count") > 1))


def _local(frame: FrameT, tz: str | None) -> FrameT:
    if tz is None:
        return frame
    return frame.with_columns(pl.col("ds").dt.replace_time_zone("UTC").dt.convert_time_zone(tz))


def _from_local(frame: FrameT, tz: str | None) -> FrameT:
    if tz is None:
        return frame
    return frame.with_columns(pl.col("ds").dt.convert_time_zone("UTC").dt.replace_time_zone(None))


def find_oversized_grids(frame: pl.DataFrame, freq: str | int) -> pl.DataFrame:
    """Series whose first-to-last ``ds`` span implies far more grid steps than rows.

    A typo in one timestamp (year 2030 among 2000s, an integer step of 10**15) or a
    wrong ``freq`` ("1ns" for daily data) would make the gap check lay out billions of
    grid points. Such series are returned (``unique_id, rows, steps, lo, hi``) and
    rejected instead: a gap that large is never meant to be filled.

    The limit is ``10 * rows + 10_000`` steps per series.
    """
    if isinstance(freq, int):
        span = (pl.col("ds").max() - pl.col("ds").min()) // freq
    else:
        n, unit = offset_parts(freq)
        if unit in ("mo", "q", "y"):
            months = n * {"mo": 1, "q": 3, "y": 12}[unit]
            ym = pl.col("ds").dt.year().cast(pl.Int64) * 12 + pl.col("ds").dt.month().cast(pl.Int64)
            span = (ym.max() - ym.min()) // months
        elif unit == "bd":
            index = _bd_parts(pl.col("ds"))[0]
            span = (index.max() - index.min()) // n
        else:
            step_ns = n * {"ns": 1, "us": 1_000, "ms": 1_000_000}.get(unit, _FIXED_UNITS_US.get(unit, 0) * 1_000)
            span = (pl.col("ds").max() - pl.col("ds").min()).dt.total_nanoseconds() // step_ns
    sizes = frame.group_by("unique_id", maintain_order=True).agg(
        pl.len().alias("rows"), (span + 1).alias("steps"), pl.col("ds").min().alias("lo"), pl.col("ds").max().alias("hi"))
    return sizes.filter(pl.col("steps") > 10 * pl.col("rows") + 10_000)


def is_month_end_anchored(frame: pl.DataFrame, freq: str | int) -> bool:
    """True when ``freq`` counts calendar months and every ``ds`` is the last day of its month
    (and not every one is also the first, i.e. not daily-looking data)."""
    if isinstance(freq, int) or not re.match(r"^\d+(mo|q|y)$", freq) or frame.schema["ds"] == pl.Int64:
        return False
    ds = pl.col("ds")
    return bool(frame.select(((ds.dt.month_end().dt.day() == ds.dt.day()).all() & (ds.dt.day() != 1).any())).item())


def find_gaps(frame: pl.DataFrame, freq: str | int, *, tz: str | None = None,
              month_end: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Missing grid points and off-grid timestamps, per series.

    Parameters
    ----------
    frame : pl.DataFrame
        ``unique_id, ds`` sorted, no duplicates.
    freq : str or int
        Normalised frequency.
    tz : str, optional
        The caller's zone; the grid is laid out on its local clock (so ``"1d"`` steps
        stay at local midnight across daylight-saving changes).
    month_end : bool
        Lay a monthly grid on month ends (see :func:`is_month_end_anchored`).

    Returns
    -------
    (missing, off_grid) : two frames ``unique_id, ds``
        ``missing`` are timestamps on the grid from each series' first to last ``ds``
        that have no row; ``off_grid`` are rows that are not on that grid.
    """
    keys = frame.select("unique_id", "ds")
    if _FAST_PATHS and not month_end and (fast := _step_gaps(keys, freq, tz)) is not None:
        return fast
    if isinstance(freq, int):
        bounds = keys.group_by("unique_id", maintain_order=True).agg(pl.col("ds").min().alias("lo"), pl.col("ds").max().alias("hi"))
        off = keys.join(bounds, on="unique_id").filter((pl.col("ds") - pl.col("lo")) % freq != 0).select("unique_id", "ds")
        grid = bounds.select("unique_id", pl.int_ranges("lo", pl.col("hi") + 1, freq).alias("ds")).explode("ds")
    elif freq.endswith("bd"):
        missing, off = _business_day_gaps(keys, offset_parts(freq)[0], tz)
        return missing, off
    else:
        local = _local(keys, tz)
        if month_end:
            local = local.with_columns(pl.col("ds").dt.month_start())
        bounds = local.group_by("unique_id", maintain_order=True).agg(pl.col("ds").min().alias("lo"), pl.col("ds").max().alias("hi"))
        grid = bounds.select("unique_id", pl.datetime_ranges("lo", "hi", interval=freq).alias("ds")).explode("ds")
        if month_end:
            grid = grid.with_columns(pl.col("ds").dt.month_end())
        grid = _from_local(grid, tz)
        if tz is None:
            grid = grid.with_columns(pl.col("ds").cast(keys.schema["ds"]))
        off = keys.join(grid, on=["unique_id", "ds"], how="anti")
    missing = grid.join(keys, on=["unique_id", "ds"], how="anti")
    return missing, off


def _step_gaps(keys: pl.DataFrame, freq: str | int, tz: str | None) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """:func:`find_gaps` from consecutive steps, for an integer step or an absolute fixed offset (hours
    and shorter in a zone): the missing rows lie between neighbours more than one step apart, without
    laying out the whole grid. None when that does not apply (calendar or local steps, a span near the
    64-bit limit, or a row off the grid: the general code finds and names those)."""
    if isinstance(freq, int):
        step = freq
    else:
        n, unit = offset_parts(freq)
        if unit not in _FIXED_UNITS_US or (tz is not None and unit in ("d", "w")):
            return None
        step = n * _FIXED_UNITS_US[unit]
    t = pl.col("ds").cast(pl.Int64)
    lo, hi = keys.select(t.min().alias("lo"), t.max().alias("hi")).row(0)
    if lo is None or hi - lo >= 2**62:
        return None
    rows = keys.with_columns(t.alias("_t"), (pl.col("unique_id") == pl.col("unique_id").shift(1)).alias("_same"))
    if rows.select(((pl.col("_t") - pl.col("_t").first().over("unique_id")) % step != 0).any()).item():
        return None
    prev = pl.col("_t").shift(1)
    runs = rows.with_columns(prev.alias("_p")).filter(pl.col("_same") & (pl.col("_t") - pl.col("_p") > step))
    missing = (runs.select("unique_id", pl.int_ranges(pl.col("_p") + step, "_t", step).alias("ds")).explode("ds")
               .with_columns(pl.col("ds").cast(keys.schema["ds"])))
    return missing, keys.clear()


def _business_day_gaps(keys: pl.DataFrame, n: int, tz: str | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`find_gaps` on a grid of ``n`` business days: from each series' first ``ds`` (a weekend
    start rolls to Monday), at its time of day, up to its last ``ds``; weekend rows are off the grid."""
    local = pl.col("ds") if tz is None else (
        pl.col("ds").dt.replace_time_zone("UTC").dt.convert_time_zone(tz).dt.replace_time_zone(None))
    index, tod, weekend = _bd_parts(pl.col("_l"))
    rows = keys.with_columns(local.alias("_l")).with_columns(index.alias("_i"), tod.alias("_t"), weekend.alias("_w"))
    bounds = rows.group_by("unique_id", maintain_order=True).agg(
        pl.col("_i").first().alias("lo"), pl.col("_t").first().alias("t0"), pl.col("_i").last().alias("_hi_i"),
        pl.col("_t").last().alias("_hi_t"), pl.col("_w").last().alias("_hi_w"))
    # the last grid point at or before the last ds: Friday for a weekend end, the day before for an earlier time
    hi = pl.col("_hi_i") - (pl.col("_hi_w") | (pl.col("_hi_t") < pl.col("t0"))).cast(pl.Int64)
    grid = (bounds.select("unique_id", "t0", pl.int_ranges("lo", hi + 1, n).alias("_i")).explode("_i")
            .drop_nulls("_i").select("unique_id", _bd_datetime(pl.col("_i"), pl.col("t0")).alias("_l")))
    on_grid = ~pl.col("_w") & (pl.col("_t") == pl.col("t0")) & ((pl.col("_i") - pl.col("lo")) % n == 0)
    off = (rows.join(bounds.select("unique_id", "lo", "t0"), on="unique_id", maintain_order="left")
           .filter(~on_grid).select("unique_id", "ds"))
    missing = grid.join(rows.select("unique_id", "_l"), on=["unique_id", "_l"], how="anti", maintain_order="left")
    ds = pl.col("_l") if tz is None else (pl.col("_l").dt.replace_time_zone(tz, ambiguous="earliest")
                                          .dt.convert_time_zone("UTC").dt.replace_time_zone(None))
    return missing.select("unique_id", ds.alias("ds")), off


def check_min_length(panel: Panel, minimum: int, *, model: str, fallback: str | None = None) -> list[str]:
    """Series shorter than ``minimum`` observations.

    Returns the short series ids when ``fallback`` is given (the caller forecasts them
    with the fallback model and reports it); otherwise raises.

    Raises
    ------
    InsufficientHistoryError
        Naming each short series with its length and the minimum.
    """
    short = {uid: n for uid, n in panel.lengths.items() if n < minimum}
    if not short or fallback is not None:
        return list(short)
    per = {uid: f"{n} observations, model '{model}' needs at least {minimum}" for uid, n in short.items()}
    raise InsufficientHistoryError(
        _series_messages(per, f"{len(short)} series too short") + " (or ask for a fallback model)", field="data",
        details={"model": model, "minimum": minimum, "series": {u: {"length": n, "minimum": minimum} for u, n in short.items()}})


# --------------------------------------------------------------------------- ds coercion
def _coerce_ds(frame: pl.DataFrame) -> tuple[pl.DataFrame, str | None, DsKind, list[str]]:
    notes: list[str] = []
    dtype = frame.schema["ds"]
    ds = pl.col("ds")
    if dtype.is_integer():
        if _FAST_PATHS and dtype == pl.Int64:  # nothing to cast, nothing that can fail to
            return frame, None, "int", notes
        cast = frame.with_row_index("row").select("row", ds.cast(pl.Int64, strict=False).alias("c"), ds.alias("o"))
        bad = cast.filter(pl.col("c").is_null() & pl.col("o").is_not_null())
        if bad.height:
            msg = f"ds has integers too large for 64 bits (rows {_examples(bad['row'].to_list())})"
            raise InvalidInputError(msg, field="ds")
        return frame.with_columns(ds.cast(pl.Int64)), None, "int", notes
    if dtype.is_float():
        bad = frame.with_row_index("row").filter(ds.is_not_null() & (ds != ds.floor()))
        if bad.height:
            msg = (
                f"ds must be integer steps or timestamps; {bad.height} rows have fractional values "
                f"(rows {_examples(bad['row'].to_list())})"
            )
            raise InvalidInputError(msg, field="ds")
        return frame.with_columns(ds.cast(pl.Int64)), None, "int", notes
    if dtype == pl.Date:
        return frame.with_columns(ds.cast(pl.Datetime("us"))), None, "date", notes
    if isinstance(dtype, pl.Datetime):
        tz = dtype.time_zone
        frame = frame.with_columns(ds.dt.cast_time_unit("us"))
        if tz is not None:
            frame = frame.with_columns(pl.col("ds").dt.convert_time_zone("UTC").dt.replace_time_zone(None))
            notes.append("ds is in UTC; forecasts are returned in UTC" if tz == "UTC" else
                         f"ds converted from {tz} to UTC; forecasts are returned in {tz}")
        return frame, tz, "datetime", notes
    if dtype == pl.String:
        return _parse_ds_strings(frame, notes)
    msg = f"ds must be datetimes, dates, ISO 8601 strings or integer steps, got {dtype}"
    raise InvalidInputError(msg, field="ds")


def _parse_ds_strings(frame: pl.DataFrame, notes: list[str]) -> tuple[pl.DataFrame, str | None, DsKind, list[str]]:
    s = frame["ds"]
    nonnull = s.drop_nulls()
    is_int = nonnull.str.contains(r"^\s*-?\d+\s*$")
    if nonnull.len() and bool(is_int.all()):
        return frame.with_columns(pl.col("ds").str.strip_chars().cast(pl.Int64)), None, "int", notes
    if bool(is_int.any()):
        rows = frame.with_row_index("row").filter(pl.col("ds").str.contains(r"^\s*-?\d+\s*$"))["row"].to_list()
        msg = f"ds mixes integer steps and timestamps (integers at rows {_examples(rows)})"
        raise InvalidInputError(msg, field="ds")
    _refuse_sub_microsecond(frame, s)
    aware = s.str.contains(_TZ_SUFFIX.pattern)
    n_aware = int(aware.sum() or 0)
    if 0 < n_aware < nonnull.len():
        idx = frame.with_row_index("row").with_columns(aware.alias("_a"))
        a_rows = idx.filter(pl.col("_a"))["row"].to_list()
        n_rows = idx.filter(~pl.col("_a") & pl.col("ds").is_not_null())["row"].to_list()
        msg = (
            f"ds mixes timezone-aware and naive timestamps (aware at rows {_examples(a_rows)}; naive at rows "
            f"{_examples(n_rows)}); give every timestamp an offset or none"
        )
        raise InvalidInputError(msg, field="ds")
    tz = None
    if n_aware:
        offsets = nonnull.str.extract(_TZ_SUFFIX.pattern, 1).unique().to_list()
        if len(offsets) > 1 and bool(nonnull.str.contains(_LOCAL_MIDNIGHT.pattern).all()):
            # daily (or longer) data stamped at local midnight across a daylight-saving change: the offsets differ
            # by the change only; the calendar dates are what the caller means
            notes.append(f"ds has several UTC offsets ({', '.join(sorted(offsets)[:4])}), every one at local "
                         f"midnight (a daylight-saving change): read as local calendar dates; forecasts are "
                         f"returned as dates")
            stripped = frame.with_columns(pl.col("ds").str.replace(_TZ_SUFFIX.pattern, "").str.slice(0, 10))
            out, _, _, notes = _parse_ds_strings(stripped, notes)
            return out, None, "date", notes
        parsed = _parse_iso(s.str.replace(r"Z$", "+00:00"), aware=True)
        if len(offsets) == 1:
            off = offsets[0]
            tz = "UTC" if off in ("Z", "+00:00", "+0000") else _offset_zone(off)
        else:
            tz = "UTC"
            notes.append(f"ds has several UTC offsets ({', '.join(sorted(offsets)[:4])}); forecasts are returned in UTC")
        parsed = parsed.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        if tz != "UTC":
            notes.append(f"ds converted from UTC offset {offsets[0]} to UTC; forecasts are returned at that offset")
    else:
        parsed = _parse_iso(s, aware=False)
    # parsed is null wherever ds is: equal null counts mean nothing failed
    failed = None if _FAST_PATHS and parsed.null_count() == s.null_count() else (
        frame.with_row_index("row").with_columns(parsed.alias("_p")).filter(
            pl.col("ds").is_not_null() & pl.col("_p").is_null()))
    if failed is not None and failed.height:
        msg = (
            f"ds has {failed.height} values that are not ISO 8601 timestamps (rows {_examples(failed['row'].to_list())}: "
            f"{_examples([repr(v) for v in failed['ds'].to_list()])})"
        )
        raise InvalidInputError(msg, field="ds")
    kind: Literal["datetime", "date"] = "date" if bool(nonnull.str.len_chars().max() == 10) and not n_aware else "datetime"
    return frame.with_columns(parsed.alias("ds")), tz, kind, notes


def _refuse_sub_microsecond(frame: pl.DataFrame, s: pl.Series) -> None:
    """Timestamps are kept to the microsecond: text with a non-zero digit below it ('...00.000000001') was cut there,
    so three distinct nanosecond stamps were refused as "3 duplicate timestamps (2024-01-01 x3)"."""
    fine = s.str.contains(r"\.\d{6}\d*[1-9]")
    if bool(fine.any()):
        rows = frame.with_row_index("row").filter(fine)
        msg = (f"ds has {rows.height} timestamps with digits below a microsecond (rows {_examples(rows['row'].to_list())}: "
               f"{_examples([repr(v) for v in rows['ds'].to_list()])}); timestamps are kept to the microsecond: round "
               f"them, or number the steps with integer ds")
        raise InvalidInputError(msg, field="ds")


_ISO_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")


def is_iso8601(s: pl.Series) -> bool:
    """Whether every non-null value of the text series ``s`` is a timestamp the data contract reads: an ISO 8601
    date or date-time (``YYYY-MM-DD``, ``YYYY-MM-DDTHH:MM[:SS[.f]]``, a space for the ``T``), with or without a
    UTC offset.

    The CSV reader keeps any other text as text (``forecasting.service.tables.read_table``), so that
    ``'01/02/2024'`` is refused by :func:`validate_panel` naming the rows, as from JSON, instead of being read
    day-first by polars' date inference (1 February, not 2 January).

    >>> is_iso8601(pl.Series(["2024-01-02", None, "2024-01-03T10:00:00+05:30"]))
    True
    >>> is_iso8601(pl.Series(["01/02/2024"]))
    False
    """
    text = s.cast(pl.String).str.strip_chars().str.replace(_TZ_SUFFIX.pattern, "")
    return _parse_iso(text, aware=False).null_count() == s.null_count()


def _parse_iso(s: pl.Series, *, aware: bool) -> pl.Series:
    """Parse ISO 8601 strings value by value (never inferring one format from the first value,
    so '01/02/2024' is refused rather than making every ISO value fail)."""
    formats = [f + "%z" for f in _ISO_FORMATS[:-1]] if aware else list(_ISO_FORMATS)
    if _FAST_PATHS:  # the same coalesce, format by format, stopping once every value parsed
        stripped = s.str.strip_chars()
        out = stripped.str.to_datetime(formats[0], strict=False, time_unit="us")
        for f in formats[1:]:
            if out.null_count() == s.null_count():  # later formats could only fill nulls of s itself
                break
            out = out.fill_null(stripped.str.to_datetime(f, strict=False, time_unit="us"))
        return out.alias("ds")
    parts = [s.str.strip_chars().str.to_datetime(f, strict=False, time_unit="us") for f in formats]
    return pl.select(pl.coalesce(parts)).to_series().alias("ds")


def _offset_zone(off: str) -> str:
    """A zone name for a fixed UTC offset such as ``+01:00`` (``Etc/GMT-1``); a non-whole-hour offset has no zone
    name and is returned as ``+HH:MM`` (see :attr:`Panel.utc_offset`)."""
    sign = 1 if off[0] == "+" else -1
    hh, mm = int(off[1:3]), int(off[-2:])
    if mm:
        return f"{off[0]}{hh:02d}:{mm:02d}"
    return "UTC" if hh == 0 else f"Etc/GMT{'-' if sign > 0 else '+'}{hh}"


def _split_fixed_offset(tz: str | None) -> tuple[str | None, str | None]:
    """``(tz, utc_offset)``: a ``+HH:MM`` offset is kept as ``Panel.utc_offset`` over a UTC clock."""
    if tz is not None and _FIXED_OFFSET.fullmatch(tz):
        return "UTC", tz
    return tz, None


def _offset_delta(offset: str) -> timedelta:
    sign = 1 if offset[0] == "+" else -1
    return sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[-2:]))


def _fixed_offset_zone(tz: Any) -> bool:
    """Whether a pandas column's ``tz`` is a fixed UTC offset other than UTC (``datetime.timezone``,
    ``pytz.FixedOffset``), which polars cannot hold, rather than a zone name (``Europe/Paris``, ``UTC``)."""
    if isinstance(tz, timezone):
        return tz != timezone.utc
    return type(tz).__name__ == "FixedOffset"  # pytz


def at_caller_offset(records: Any, panel: Panel, *, key: str = "ds") -> Any:
    """Show ``key`` of answer rows at the caller's fixed UTC offset (:attr:`Panel.utc_offset`).

    polars has no fixed-offset zones, so a ``+05:30`` caller's forecasts are computed on a
    UTC clock and shifted here, at the edge: the JSON answer (records) and the library's pandas
    frame (:func:`forecasting.forecast`); a polars frame cannot hold the offset and stays in UTC.

    Parameters
    ----------
    records : list of dict or pandas.DataFrame
        Rows whose ``key`` holds timezone-aware ``datetime`` values (UTC), or a pandas frame whose
        ``key`` column is timezone-aware.
    panel : Panel
        The validated input; nothing changes unless ``panel.utc_offset`` is set.

    Returns
    -------
    list of dict or pandas.DataFrame
        The same rows (edited in place), ``key`` as ``datetime`` at the offset; a pandas frame: a copy
        whose ``key`` column is at the offset (dtype ``datetime64[us, UTC+05:30]``).

    Examples
    --------
    >>> p = validate_panel({"unique_id": ["a"] * 3, "ds": [f"2024-01-0{d}T00:00:00+05:30" for d in (1, 2, 3)],
    ...                     "y": [1.0, 2.0, 3.0]})
    >>> p.tz, p.utc_offset
    ('UTC', '+05:30')
    >>> at_caller_offset([{"ds": datetime(2024, 1, 3, 18, 30, tzinfo=timezone.utc)}], p)[0]["ds"].isoformat()
    '2024-01-04T00:00:00+05:30'
    """
    if panel.utc_offset is None:
        return records
    zone = timezone(_offset_delta(panel.utc_offset))
    if not isinstance(records, list):  # a pandas frame
        return records.assign(**{key: records[key].dt.tz_convert(zone)})
    for r in records:
        v = r.get(key)
        if isinstance(v, datetime):
            r[key] = (v if v.tzinfo is not None else v.replace(tzinfo=timezone.utc)).astimezone(zone)
    return records


# --------------------------------------------------------------------------- main entry
def check_fill_policy(fill_missing: object) -> FillPolicy | None:
    """``fill_missing`` as a :data:`FillPolicy` (``None`` stays ``None``).

    Raises
    ------
    InvalidParameterError
        Any other value, listing the policies.
    """
    for policy in FILL_POLICIES:
        if fill_missing == policy:
            return policy
    if fill_missing is None:
        return None
    msg = f"fill_missing must be one of {', '.join(FILL_POLICIES)}, got {fill_missing!r}"
    raise InvalidParameterError(msg, field="fill_missing")


def validate_panel(
    data: Any,
    *,
    freq: str | int | None = None,
    fill_missing: FillPolicy | None = None,
    fill_gaps: bool = False,
    field_name: str = "data",
) -> Panel:
    """Validate a long-format panel and return it typed.

    Parameters
    ----------
    data : polars/pandas DataFrame, mapping of columns, or list of row dicts
        Columns ``unique_id, ds, y`` plus optional exogenous columns.
    freq : str or int, optional
        The series' frequency (see :func:`normalize_freq`); inferred when omitted.
    fill_missing : {"zero", "forward", "interpolate"}, optional
        Fill null/NaN/infinite ``y`` instead of rejecting them (``forward`` and
        ``interpolate`` work within each series; a series that starts with a missing
        value is still rejected by ``forward``, while ``interpolate`` is linear inside
        the series and carries the nearest value to a missing first or last row).
        Filled rows are listed in ``panel.report.filled``.
    fill_gaps : bool, default False
        Insert the missing grid rows (``y`` then filled by ``fill_missing``, which is
        required). Inserted rows are reported with reason ``"gap"``.

    Returns
    -------
    Panel

    Raises
    ------
    InvalidInputError
        Empty frame; missing/misspelled columns; non-numeric ``y``; finite ``y`` beyond
        :data:`MAX_ABS_Y` (1e150) in magnitude, naming the series and rows; null/NaN/infinite
        ``y`` without a fill policy; duplicate ``(unique_id, ds)``; mixed ``ds`` types
        or aware/naive timestamps; gaps or off-grid timestamps without ``fill_gaps``;
        a frequency that cannot be inferred. Messages name series, rows and the rule.
    InvalidParameterError
        Unknown ``freq`` or fill policy, or ``fill_gaps`` without ``fill_missing``.

    Examples
    --------
    >>> panel = validate_panel({"unique_id": ["a", "a", "a", "b", "b"],
    ...                         "ds": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-01", "2024-01-02"],
    ...                         "y": [1.0, 2.0, 3.0, 10.0, 11.0]})
    >>> panel.freq, panel.lengths
    ('1d', {'a': 3, 'b': 2})

    A gap is refused, naming the series and the missing timestamp, unless it is filled:

    >>> data = {"unique_id": ["a", "a", "a"], "ds": [1, 2, 4], "y": [1.0, 2.0, 3.0]}
    >>> validate_panel(data)
    Traceback (most recent call last):
    ...
    forecasting.errors.InvalidInputError: gaps against freq '1' in 1 series: series 'a': 1 missing timestamps (3);
    pass fill_gaps with a fill_missing policy to fill them
    >>> filled = validate_panel(data, fill_missing="interpolate", fill_gaps=True)
    >>> filled.frame["y"].to_list()
    [1.0, 2.0, 2.5, 3.0]
    >>> filled.report.filled.rows()
    [('a', '3', 'gap', 'interpolate')]
    """
    try:
        return _checked_panel(data, freq=freq, fill_missing=fill_missing, fill_gaps=fill_gaps, field_name=field_name)
    except ForecastingError as exc:
        if field_name != "data" and exc.field in REQUIRED:  # a column of that input: "history.ds", not "ds"
            exc.field = f"{field_name}.{exc.field}"
        raise


def _checked_panel(data: Any, *, freq: str | int | None, fill_missing: FillPolicy | None, fill_gaps: bool,
                   field_name: str) -> Panel:
    """:func:`validate_panel`'s checks; their errors name a column as ``"ds"``, ``"y"`` or ``"unique_id"``."""
    check_fill_policy(fill_missing)
    if fill_gaps and fill_missing is None:
        msg = (
            "fill_gaps=True inserts rows without y; choose fill_missing ('zero', 'forward' or "
            "'interpolate') to fill them"
        )
        raise InvalidParameterError(msg, field="fill_missing")
    weekday = _week_anchor(freq)
    freq = normalize_freq(freq)
    frame = to_polars(data, field_name=field_name)
    notes: list[str] = []
    _check_columns(frame, field_name)
    frame = _check_unique_id(frame)
    frame = _check_y_numeric(frame)
    _check_ds_present(frame)
    frame, tz, ds_kind, ds_notes = _coerce_ds(frame)
    tz, utc_offset = _split_fixed_offset(tz)
    notes += ds_notes
    scan = _scan(frame) if _FAST_PATHS else None
    clock = (tz, utc_offset)
    if scan is not None and not scan.in_order:
        frame, scan = _sort_rows(frame, clock)
    if scan is None:
        _check_duplicates(frame, clock)
        frame = frame.sort("unique_id", "ds", maintain_order=True)
    freq = _panel_freq(frame, freq, tz, ds_kind, scan)
    if weekday is not None and ds_kind != "int":
        _check_week_anchor(frame, tz, weekday)

    regular = scan is not None and scan.regular(frame, freq, tz)
    if regular and scan is not None and scan.y_finite:
        # one freq step apart in every series and y finite: the grid and y checks would find nothing
        month_end = False
        filled_parts: list[pl.DataFrame] = []
    else:
        frame, month_end, filled_parts = _check_grid_and_y(frame, freq, tz, ds_kind, fill_missing, fill_gaps,
                                                           regular=regular, clock=clock)

    # report ds on the caller's clock (internal ds is naive UTC when the input was aware)
    filled = (_local(pl.concat(filled_parts), tz)
              .with_columns(_ds_text(ds_kind, tz), pl.lit(fill_missing).alias("policy"))
              .select("unique_id", "ds", "reason", "policy")) if filled_parts else _empty_filled()
    lengths = _run_lengths(frame.get_column("unique_id"))  # the frame is sorted by unique_id: one run per series
    exog = tuple(c for c in frame.columns if c not in REQUIRED)
    if not (_FAST_PATHS and tuple(frame.columns) == (*REQUIRED, *exog)):
        frame = frame.select(*REQUIRED, *exog)
    return Panel(frame=frame, freq=freq, lengths=lengths, tz=tz, ds_kind=ds_kind, exog=exog,
                 month_end=month_end,
                 report=ValidationReport(filled, notes), grid_checked=True, utc_offset=utc_offset)


def _check_columns(frame: pl.DataFrame, field_name: str) -> None:
    """At least one row, and the columns ``unique_id, ds, y`` (a close name is suggested)."""
    if frame.height == 0:
        msg = f"{field_name} is empty: at least one row with unique_id, ds and y is needed"
        raise InvalidInputError(msg, field=field_name)
    missing = find_missing_columns(frame)
    if missing:
        parts = [f"'{c}'" + (f" (found '{g}': rename it to '{c}')" if g else "") for c, g in missing.items()]
        msg = (
            f"missing required column{'s' if len(missing) > 1 else ''} {', '.join(parts)}; "
            f"the long format needs unique_id, ds, y (columns present: {', '.join(frame.columns)})"
        )
        raise InvalidInputError(msg, field=field_name, details={"missing": list(missing), "present": frame.columns})


def _check_unique_id(frame: pl.DataFrame) -> pl.DataFrame:
    """``unique_id`` as non-null strings (integers and categoricals converted)."""
    uid_dtype = frame.schema["unique_id"]
    if not (uid_dtype == pl.String or uid_dtype.is_integer() or uid_dtype == pl.Categorical or uid_dtype == pl.Enum):
        msg = f"unique_id must be strings or integers, got {uid_dtype}"
        raise InvalidInputError(msg, field="unique_id")
    if not (_FAST_PATHS and uid_dtype == pl.String):
        frame = frame.with_columns(pl.col("unique_id").cast(pl.String))
    null_ids = frame.with_row_index("row").filter(pl.col("unique_id").is_null()) if not (
        _FAST_PATHS and frame["unique_id"].null_count() == 0) else None
    if null_ids is not None and null_ids.height:
        msg = f"unique_id is null in {null_ids.height} rows (rows {_examples(null_ids['row'].to_list())})"
        raise InvalidInputError(msg, field="unique_id")
    return frame


def _check_y_numeric(frame: pl.DataFrame) -> pl.DataFrame:
    """``y`` as Float64; non-numeric values are refused naming the rows (null/NaN are checked later)."""
    y_dtype = frame.schema["y"]
    if y_dtype.is_nested() or isinstance(y_dtype, pl.Object):  # lists/objects cannot be cast to numbers
        rows = frame.with_row_index("row").filter(pl.col("y").is_not_null())["row"].to_list()
        msg = f"y must be one number per row, got nested values ({y_dtype}) at rows {_examples(rows)}"
        raise InvalidInputError(msg, field="y", details={"rows": rows[:100]})
    if y_dtype == pl.Boolean or not (y_dtype.is_numeric() or y_dtype == pl.Null):
        bad = frame.with_row_index("row").filter(
            pl.col("y").is_not_null() & pl.col("y").cast(pl.Float64, strict=False).is_null())
        detail = (f"; rows {_examples(bad['row'].to_list())} are not numbers "
                  f"({_examples([repr(v) for v in bad['y'].to_list()])})") if bad.height else ""
        msg = f"y must be numeric, got {y_dtype}{detail}"
        raise InvalidInputError(msg, field="y", details={"rows": bad["row"].to_list()[:100] if bad.height else []})
    if not (_FAST_PATHS and y_dtype == pl.Float64):
        frame = frame.with_columns(pl.col("y").cast(pl.Float64))
    _check_y_magnitude(frame)
    return frame


#: The largest ``|y|`` the data contract accepts (:func:`_check_y_magnitude`): its square, 1e300, is below
#: float64's largest value (about 1.8e308, IEEE 754 binary64) by a factor above 1e8, so sums of squares and
#: products of a series' values (variances, MASE scales, least squares) stay finite up to 10^8 rows.
MAX_ABS_Y = 1e150


def _check_y_magnitude(frame: pl.DataFrame) -> None:
    """Refuse finite ``y`` beyond :data:`MAX_ABS_Y` in magnitude (``y=1e308``: its square overflows to inf, so
    scores and fits came back null or failed later), naming the series, the rows (0-based, in the order given)
    and the ds. Null, NaN and infinite ``y`` are left to the missing-value check.

    Raises
    ------
    InvalidInputError
        ``field="y"``; ``details``: ``rows`` (up to 100) and ``limit``.
    """
    y = pl.col("y")
    if not (np.abs(frame.get_column("y").to_numpy()) > MAX_ABS_Y).any():  # no query; inf counted below, NaN is missing
        return
    huge = frame.with_row_index("row").filter((y.abs() > MAX_ABS_Y) & y.is_finite())
    if not huge.height:
        return
    per = {}
    for (uid,), part in huge.group_by("unique_id", maintain_order=True):
        per[uid] = (f"rows {_examples(part['row'].to_list())} (ds {_examples(part['ds'].to_list())}, "
                    f"y {_examples(part['y'].to_list())})")
    msg = (_series_messages(per, f"y must be at most {MAX_ABS_Y:g} in magnitude (so that its squares and sums "
                                 f"stay finite in float64); {huge.height} rows are beyond it")
           + "; rescale the series (e.g. in units of 1e100)")
    raise InvalidInputError(msg, field="y", details={"rows": huge["row"].to_list()[:100], "limit": MAX_ABS_Y})


def _check_ds_present(frame: pl.DataFrame) -> None:
    """Every row has a ``ds`` (refused naming the series and rows)."""
    null_ds = frame.with_row_index("row").filter(pl.col("ds").is_null()) if not (
        _FAST_PATHS and frame["ds"].null_count() == 0) else None
    if null_ds is not None and null_ds.height:
        per = {}
        for (uid,), part in null_ds.group_by("unique_id", maintain_order=True):
            per[uid] = f"ds is null at rows {_examples(part['row'].to_list())}"
        raise InvalidInputError(_series_messages(per, f"{null_ds.height} rows without ds"), field="ds")


def _check_duplicates(frame: pl.DataFrame, clock: tuple[str | None, str | None] = (None, None)) -> None:
    """No two rows share ``(unique_id, ds)`` (refused naming the series and the timestamps on the caller's
    ``clock``: :func:`_on_caller_clock`)."""
    dups = find_duplicates(frame)
    if dups.height:
        per = {}
        for (uid,), part in dups.group_by("unique_id", maintain_order=True):
            vals = [f"{_fmt(d)} x{c}" for d, c in zip(_on_caller_clock(part["ds"].to_list(), clock),
                                                      part["count"].to_list(), strict=True)]
            per[uid] = f"{part['count'].sum()} duplicate timestamps ({_examples(vals, len(vals))})"
        raise InvalidInputError(_series_messages(per, f"duplicate (unique_id, ds) rows in {len(per)} series"),
                                field="ds", details={"duplicates": {u: v for u, v in per.items()}})


def _panel_freq(frame: pl.DataFrame, freq: str | int | None, tz: str | None, ds_kind: DsKind,
                scan: _Scan | None = None) -> str | int:
    """The given (normalised) ``freq``, or the inferred one, checked against the kind of ``ds``."""
    if freq is None and scan is not None and tz is None:
        freq = scan.single_step()  # every step the same: what infer_freq would say, without its query
    if freq is None:
        local = _local(frame.select("unique_id", "ds"), tz)
        if tz is not None:
            local = local.with_columns(pl.col("ds").dt.replace_time_zone(None))
        freq = infer_freq(local)
    if ds_kind == "int" and not isinstance(freq, int):
        msg = f"ds holds integer steps, so freq must be a positive integer, got {freq!r}"
        raise InvalidParameterError(msg, field="freq")
    if ds_kind != "int" and isinstance(freq, int):
        msg = f"ds holds timestamps, so freq must be an offset like '1h' or '1d', got {freq!r}"
        raise InvalidParameterError(msg, field="freq")
    return freq


@dataclass(frozen=True)
class _Scan:
    """One pass over a coerced frame (:func:`_scan`)."""

    in_order: bool  # (unique_id, ds) strictly increasing: series contiguous, sorted, no duplicates
    ds_int: bool  # ds is Int64 (else naive Datetime("us"), steps in microseconds)
    y_finite: bool  # no null, NaN or infinite y
    step_lo: int | None  # smallest and largest ds step within a series; None when no series has two rows
    step_hi: int | None

    def regular(self, frame: pl.DataFrame, freq: str | int, tz: str | None) -> bool:
        """True when every series of the (scanned, in order) ``frame`` steps exactly one ``freq`` at a
        time, so the oversized-grid, gap and off-grid checks provably find nothing. For an integer
        step, a fixed-length offset (on any clock for hours and shorter, which are absolute in every
        zone; on a naive clock for days and weeks) and business days on a naive clock; False for the
        rest (calendar months, local days), which the general checks handle."""
        if not self.in_order or isinstance(freq, int) != self.ds_int:
            return False
        if isinstance(freq, int):
            step = freq
        else:
            n, unit = offset_parts(freq)
            if unit == "bd":
                return tz is None and _on_business_day_grid(frame, n)
            if unit not in _FIXED_UNITS_US or (tz is not None and unit in ("d", "w")):
                return False
            step = n * _FIXED_UNITS_US[unit]
        return step >= 1 and (self.step_lo is None or self.step_lo == self.step_hi == step)

    def single_step(self) -> str | int | None:
        """The frequency :func:`infer_freq` infers when every step is the same (None otherwise, or when
        that step may be a calendar month or year, which infer_freq reads from the calendar)."""
        if not self.in_order or self.step_lo is None or self.step_lo != self.step_hi:
            return None
        if self.ds_int:
            return self.step_lo
        return None if _month_like(self.step_lo) else _us_to_offset(self.step_lo)


#: Frames up to this many rows are scanned and measured in numpy (:func:`_scan_numpy`, :func:`_run_lengths`): a
#: polars query's fixed cost was most of a one-series request's validation (issue 14).
_NUMPY_ROWS = 50_000


def _scan(frame: pl.DataFrame) -> _Scan | None:
    """Order, steps and y finiteness of ``unique_id`` (String, no nulls), ``ds`` (no nulls) and ``y``
    (Float64) in a single query (in numpy for small frames); None when ``ds`` is neither Int64 nor naive
    Datetime("us")."""
    dtype = frame.schema["ds"]
    ds_int = dtype == pl.Int64
    if not ds_int and not (isinstance(dtype, pl.Datetime) and dtype.time_unit == "us" and dtype.time_zone is None):
        return None
    if frame.height <= _NUMPY_ROWS:
        return _scan_numpy(frame, ds_int=ds_int)
    uid, t, y = pl.col("unique_id"), pl.col("ds").cast(pl.Int64), pl.col("y")
    same = uid == uid.shift(1)
    step = (t - t.shift(1)).filter(same)  # may wrap on overflow, but then it is not one positive step
    in_order = ((same & (t > t.shift(1))) | (uid > uid.shift(1))).slice(1).all()
    row = collect_small(frame.lazy().select(in_order.alias("o"), (y.null_count() == 0).alias("n"),
                                            y.is_finite().all().alias("f"), step.min().alias("lo"),
                                            step.max().alias("hi"))).row(0)
    return _Scan(in_order=bool(row[0]), ds_int=ds_int, y_finite=bool(row[1] and row[2]), step_lo=row[3], step_hi=row[4])


def _scan_numpy(frame: pl.DataFrame, *, ds_int: bool) -> _Scan:
    """:func:`_scan`'s query in numpy (the same answers): ``unique_id`` compared as Python strings (code-point
    order, which is polars' byte order of UTF-8), ``ds`` as int64 (a step may wrap on overflow, as there)."""
    uid = frame.get_column("unique_id").to_numpy()
    t = frame.get_column("ds").to_physical().to_numpy()
    y = frame.get_column("y")
    same = uid[1:] == uid[:-1]
    later = t[1:] > t[:-1]
    in_order = bool(((same & later) | (uid[1:] > uid[:-1])).all())
    with np.errstate(over="ignore"):
        steps = (t[1:] - t[:-1])[same]
    finite = y.null_count() == 0 and bool(np.isfinite(y.to_numpy()).all())
    lo, hi = (int(steps.min()), int(steps.max())) if steps.size else (None, None)
    return _Scan(in_order=in_order, ds_int=ds_int, y_finite=finite, step_lo=lo, step_hi=hi)


def _run_lengths(uid: pl.Series) -> dict[str, int]:
    """``{unique_id: rows}`` of a column sorted by ``unique_id`` (one run per series), in order."""
    if len(uid) > _NUMPY_ROWS:
        runs = uid.rle()
        return dict(zip(runs.struct.field("value").to_list(), runs.struct.field("len").to_list(), strict=True))
    values = uid.to_numpy()
    starts = np.concatenate([[0], np.flatnonzero(values[1:] != values[:-1]) + 1]) if len(values) else np.zeros(0, int)
    sizes = np.diff(np.append(starts, len(values)))
    return {str(values[a]): int(n) for a, n in zip(starts, sizes, strict=True)}


def _sort_rows(frame: pl.DataFrame, clock: tuple[str | None, str | None] = (None, None)
               ) -> tuple[pl.DataFrame, _Scan | None]:
    """``frame`` sorted by ``unique_id, ds`` and its scan; duplicates raise (:func:`_check_duplicates`).

    Sorting by a string column is slow (3 s for 3.5 million rows here): the rows are sorted by one
    integer key instead, the series' rank among the sorted ids times the ``ds`` span plus ``ds``
    (two integer columns when that key would overflow). Without duplicates ``(unique_id, ds)`` is a
    total order, so this is the order of a stable sort. Returns a None scan (the general path) if the
    scan found a repeat that the general duplicate check did not.
    """
    out = _key_sorted(frame)
    scan = _scan(out)
    if scan is None or not scan.in_order:  # a repeated (unique_id, ds): named from the rows as given
        _check_duplicates(frame, clock)
        return frame, None
    return out, scan


def _key_sorted(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (``ds`` Int64 or Datetime) sorted by ``unique_id, ds`` through one integer key (see :func:`_sort_rows`)."""
    ids = frame.get_column("unique_id").unique().sort()
    rank = pl.col("unique_id").replace_strict(ids, pl.int_range(ids.len(), dtype=pl.Int64, eager=True))
    t = pl.col("ds").cast(pl.Int64)
    lo, hi = frame.select(t.min().alias("lo"), t.max().alias("hi")).row(0)
    span = hi - lo + 1  # Python integers: exact
    return frame.sort(rank * span + (t - lo)) if ids.len() * span < 2**62 else frame.sort(rank, t)


def _check_grid_and_y(frame: pl.DataFrame, freq: str | int, tz: str | None, ds_kind: str,
                      fill_missing: FillPolicy | None, fill_gaps: bool, regular: bool = False,
                      clock: tuple[str | None, str | None] = (None, None)
                      ) -> tuple[pl.DataFrame, bool, list[pl.DataFrame]]:
    """Oversized grids, gaps, off-grid timestamps and invalid y of a sorted, duplicate-free frame:
    raise, or fill as asked. Returns ``(frame, month_end, filled_parts)``. ``regular``: the frame is
    known to step one ``freq`` at a time (:meth:`_Scan.regular`), so only y is checked."""
    filled_parts: list[pl.DataFrame] = []
    month_end = ds_kind != "int" and is_month_end_anchored(_local(frame.select("ds"), tz), freq)
    if not regular:
        frame = _check_grid(frame, freq, tz, month_end, fill_gaps, filled_parts, clock)
    # y values
    return _check_y(frame, fill_missing, filled_parts, clock), month_end, filled_parts


def _check_grid(frame: pl.DataFrame, freq: str | int, tz: str | None, month_end: bool, fill_gaps: bool,
                filled_parts: list[pl.DataFrame], clock: tuple[str | None, str | None] = (None, None)) -> pl.DataFrame:
    """Oversized grids, off-grid timestamps and gaps: raise, or insert the missing rows (``y`` null)
    when ``fill_gaps``, appending them to ``filled_parts``."""
    huge = find_oversized_grids(frame, freq)
    if huge.height:
        per = {u: f"ds runs from {_examples(_on_caller_clock([lo], clock))} to "
                  f"{_examples(_on_caller_clock([hi], clock))}, {steps:,} steps of '{freq}', but the series has {rows} rows"
               for u, rows, steps, lo, hi in huge.iter_rows()}
        raise InvalidInputError(
            _series_messages(per, "ds spans far more steps than there are observations")
            + "; check ds for a mistyped value or pass the right freq", field="ds",
            details={"series": list(per)[:100]})
    gaps, off = find_gaps(frame, freq, tz=tz, month_end=month_end)
    if off.height:
        per = {}
        for (uid,), part in off.group_by("unique_id", maintain_order=True):
            per[uid] = (f"{part.height} timestamps off the {freq} grid "
                        f"({_examples(_on_caller_clock(part['ds'].to_list(), clock))})")
        raise InvalidInputError(_series_messages(per, f"timestamps not on the frequency grid '{freq}'")
                                + "; check freq", field="ds")
    if gaps.height:
        if not fill_gaps:
            per = {}
            for (uid,), part in gaps.group_by("unique_id", maintain_order=True):
                per[uid] = f"{part.height} missing timestamps ({_examples(_on_caller_clock(part['ds'].to_list(), clock))})"
            weekends = freq == "1d" and bool(_local(gaps.select("ds"), tz).select(
                (pl.col("ds").dt.weekday() >= 6).all()).item())  # business-day data given as daily
            hint = "; every missing timestamp is a Saturday or Sunday: for business days pass freq 'B'" if weekends else ""
            raise InvalidInputError(
                _series_messages(per, f"gaps against freq '{freq}' in {len(per)} series") + hint
                + "; pass fill_gaps with a fill_missing policy to fill them", field="ds",
                details={"gaps": {u: v for u, v in per.items()}})
        filler = gaps.with_columns(pl.lit(None, dtype=pl.Float64).alias("y"))
        frame = pl.concat([frame, filler], how="diagonal_relaxed")
        frame = _key_sorted(frame) if _FAST_PATHS else frame.sort("unique_id", "ds")
        filled_parts.append(gaps.with_columns(pl.lit("gap").alias("reason")))
    return frame


def _check_y(frame: pl.DataFrame, fill_missing: FillPolicy | None, filled_parts: list[pl.DataFrame],
             clock: tuple[str | None, str | None] = (None, None)) -> pl.DataFrame:
    """Null, NaN and infinite ``y`` (gap rows excepted): raise, or fill with the policy, appending the
    filled rows to ``filled_parts``."""
    invalid = find_invalid_y(frame)
    gap_keys = pl.concat(filled_parts).select("unique_id", "ds") if filled_parts else None
    reported = invalid if gap_keys is None else invalid.join(gap_keys, on=["unique_id", "ds"], how="anti")
    if reported.height and fill_missing is None:
        per = {}
        for (uid,), part in reported.group_by("unique_id", maintain_order=True):
            kinds = sorted({"null" if v is None else "NaN" if math.isnan(v) else "infinite" for v in part["y"].to_list()})
            per[uid] = (f"{part.height} {'/'.join(kinds)} y values at ds "
                        f"{_examples(_on_caller_clock(part['ds'].to_list(), clock))}")
        raise InvalidInputError(
            _series_messages(per, f"y must be finite numbers; {reported.height} rows are not")
            + "; pass fill_missing ('zero', 'forward' or 'interpolate') to fill them", field="y",
            details={"series": {u: v for u, v in per.items()}})
    if invalid.height:
        frame = frame.with_columns(
            pl.when(pl.col("y").is_nan() | pl.col("y").is_infinite()).then(None).otherwise(pl.col("y")).alias("y"))
        # rows without y reach here only with a policy: a missing policy raised above for invalid y,
        # and validate_panel refuses fill_gaps without one
        assert fill_missing is not None
        frame = _fill(frame, fill_missing)
        still = frame.filter(pl.col("y").is_null())
        if still.height:
            per = {}
            for (uid,), part in still.group_by("unique_id", maintain_order=True):
                per[uid] = (f"cannot fill y at ds {_examples(_on_caller_clock(part['ds'].to_list(), clock))} "
                            f"(no earlier value)")
            raise InvalidInputError(_series_messages(per, f"fill_missing='{fill_missing}' left {still.height} rows empty"),
                                    field="y")
        if reported.height:
            filled_parts.append(reported.select("unique_id", "ds").with_columns(pl.lit("missing").alias("reason")))
    return frame


def _ds_text(kind: str, tz: str | None) -> pl.Expr:
    """``ds`` as the caller wrote it: integer steps, ``YYYY-MM-DD`` or ISO 8601 (with offset when aware)."""
    ds = pl.col("ds")
    if kind == "int":
        return ds.cast(pl.String)
    if kind == "date":
        return ds.dt.to_string("%Y-%m-%d")
    return ds.dt.to_string("%Y-%m-%dT%H:%M:%S%:z" if tz else "%Y-%m-%dT%H:%M:%S")


def _fill(frame: pl.DataFrame, policy: FillPolicy) -> pl.DataFrame:
    y = pl.col("y")
    if policy == "zero":
        expr = y.fill_null(0.0)
    elif policy == "forward":
        expr = y.forward_fill().over("unique_id")
    else:
        expr = y.interpolate().forward_fill().backward_fill().over("unique_id")
    return frame.with_columns(expr.alias("y"))


# --------------------------------------------------------------------------- h, level, output
def validate_h(h: Any, *, max_h: int = MAX_HORIZON) -> int:
    """Check a forecast horizon.

    Parameters
    ----------
    h : int
        Number of steps of ``freq`` to forecast; ``1 <= h <= max_h``.
    max_h : int, default :data:`MAX_HORIZON`

    Raises
    ------
    InvalidParameterError
        ``"h must be an integer >= 1, got 0"`` and the like.

    Examples
    --------
    >>> validate_h(12)
    12
    >>> validate_h(0)
    Traceback (most recent call last):
    ...
    forecasting.errors.InvalidParameterError: h must be an integer >= 1, got 0
    """
    h = h.item() if isinstance(h, np.generic) else h  # a numpy integer or float: its Python number
    if isinstance(h, bool) or not isinstance(h, int):
        if isinstance(h, float) and h.is_integer():
            h = int(h)
        else:
            msg = f"h must be an integer >= 1, got {h!r}"
            raise InvalidParameterError(msg, field="h")
    if h < 1:
        msg = f"h must be an integer >= 1, got {h}"
        raise InvalidParameterError(msg, field="h")
    if h > max_h:
        msg = f"h must be at most {max_h}, got {h}"
        raise InvalidParameterError(msg, field="h", details={"max_h": max_h})
    return h


def validate_levels(level: Any) -> tuple[float | int, ...]:
    """Check prediction-interval levels.

    Parameters
    ----------
    level : number or sequence of numbers in (0, 100), percent

    Returns
    -------
    tuple
        Sorted unique levels; integral values as ``int`` (so columns read ``lo-95``).

    Raises
    ------
    InvalidParameterError
        A level outside (0, 100), not a number, or NaN.

    Examples
    --------
    >>> validate_levels([95, 80.0])
    (80, 95)
    """
    if level is None:
        return ()
    if isinstance(level, int | float | str | np.generic) and not isinstance(level, bool):
        level = [level]  # a string is one (invalid) value, not a sequence of characters
    out = set()
    for lv in level:
        lv = lv.item() if isinstance(lv, np.generic) else lv  # numpy scalars (an array of levels): Python numbers
        if isinstance(lv, bool) or not isinstance(lv, int | float) or math.isnan(lv) or not 0 < lv < 100:
            msg = f"level must be numbers strictly between 0 and 100 (percent), got {lv!r}"
            raise InvalidParameterError(msg, field="level")
        out.add(int(lv) if float(lv).is_integer() else float(lv))
    return tuple(sorted(out))


def level_columns(model: str, levels: Iterable[float | int]) -> list[str]:
    """Nixtla's interval column names: ``<model>-lo-<L>``, ``<model>-hi-<L>`` for each level."""
    cols = []
    for lv in levels:
        cols += [f"{model}-lo-{lv}", f"{model}-hi-{lv}"]
    return cols


@overload
def future_frame(panel: Panel, h: int, *, ids: Sequence[str] | None = None,
                 lazy: Literal[False] = False) -> pl.DataFrame: ...


@overload
def future_frame(panel: Panel, h: int, *, ids: Sequence[str] | None = None, lazy: Literal[True]) -> pl.LazyFrame: ...


def future_frame(panel: Panel, h: int, *, ids: Sequence[str] | None = None,
                 lazy: bool = False) -> pl.DataFrame | pl.LazyFrame:
    """The ``h`` timestamps after each series' last ``ds``: ``unique_id, ds`` (internal UTC form).

    Steps are laid on the caller's local clock when the panel has a timezone (a
    ``"1d"`` step stays at local midnight across daylight-saving changes); business-day
    steps (``"1bd"``) skip Saturdays and Sundays. One query
    (this runs on every forecast request); ``lazy=True`` returns it uncollected
    (a ``pl.LazyFrame``), else a ``pl.DataFrame``.
    """
    check_future_range(panel, h)
    if isinstance(panel.freq, int) and ids is None and panel.frame.height <= _NUMPY_ROWS:  # a small request: numpy
        out_frame = _future_steps(panel.frame, h, panel.freq)
        return out_frame.lazy() if lazy else out_frame
    last = panel.frame.lazy().group_by("unique_id", maintain_order=True).agg(pl.col("ds").last())
    if ids is not None:
        last = last.filter(pl.col("unique_id").is_in(list(ids)))
    rows = last.join(pl.LazyFrame({"k": pl.int_range(1, h + 1, eager=True)}), how="cross", maintain_order="left_right")
    if isinstance(panel.freq, int):
        out = rows.select("unique_id", (pl.col("ds") + pl.col("k") * panel.freq).alias("ds"))
    else:
        local = _local(rows, panel.tz)
        num, unit = offset_parts(panel.freq)
        if panel.month_end:  # step from the month start, land on the month end (2024-02-29 -> 2024-03-31)
            local = local.with_columns(pl.col("ds").dt.month_start().dt.offset_by(
                pl.format("{}" + unit, pl.col("k") * num)).dt.month_end())
        elif unit == "bd":  # k * num business days on, at the same time of day (the last ds is a weekday)
            index, tod, _ = _bd_parts(pl.col("ds") if panel.tz is None else pl.col("ds").dt.replace_time_zone(None))
            step = _bd_datetime(index + pl.col("k") * num, tod)
            local = local.with_columns(
                step if panel.tz is None else step.dt.replace_time_zone(panel.tz, ambiguous="earliest"))
        else:
            local = local.with_columns(pl.col("ds").dt.offset_by(pl.format("{}" + unit, pl.col("k") * num)))
        out = _from_local(local, panel.tz).select("unique_id", "ds")
    return out if lazy else collect_small(out)


def _future_steps(frame: pl.DataFrame, h: int, freq: int) -> pl.DataFrame:
    """:func:`future_frame` of integer ``ds`` in numpy (the query's rows, issue 14): each series' last ``ds``
    (series in order of first appearance) plus ``k * freq`` for ``k = 1..h``."""
    values = frame.get_column("unique_id").to_numpy()
    if len(values) == 0:
        return pl.DataFrame(schema={"unique_id": pl.String, "ds": pl.Int64})
    _, first = np.unique(values, return_index=True)
    reversed_ids, from_end = np.unique(values[::-1], return_index=True)
    last_row = dict(zip(reversed_ids.tolist(), (len(values) - 1 - from_end).tolist(), strict=True))
    order = [values[i] for i in np.sort(first)]
    last = frame.get_column("ds").to_numpy()[[last_row[u] for u in order]]
    steps = np.arange(1, h + 1, dtype=np.int64) * freq
    return pl.DataFrame([pl.Series("unique_id", np.repeat(np.array(order, dtype=object), h), dtype=pl.String),
                         pl.Series("ds", (last[:, None] + steps[None, :]).ravel(), dtype=pl.Int64)])


#: days in one unit of a polars offset (months and years at their longest)
_UNIT_DAYS = {"ns": 1e-9 / 86400, "us": 1e-6 / 86400, "ms": 1e-3 / 86400, "s": 1 / 86400, "m": 1 / 1440,
              "h": 1 / 24, "d": 1, "w": 7, "mo": 31, "q": 92, "y": 366}
#: the last timestamp an answer can carry (ISO 8601 years have four digits; Python's datetime ends there too)
_LAST_TIMESTAMP = datetime(9999, 12, 30)


def check_future_range(panel: Panel, h: int) -> None:
    """Refuse a horizon whose timestamps leave the representable range.

    Integer ``ds`` must stay within 64 bits (``last + h * freq <= 2**63 - 1``, else the
    steps would wrap to negative numbers); timestamps must stay before year 10,000 (ISO
    8601's four-digit years, the range of Python's ``datetime``), with a day's margin for
    the caller's timezone.

    Parameters
    ----------
    panel : Panel
    h : int
        Horizon, steps of ``panel.freq``.

    Raises
    ------
    InvalidParameterError
        ``field="h"``, naming the series that ends last, its last ``ds`` and the limit.
    """
    if panel.frame.height == 0:
        return
    ds = panel.frame["ds"]
    i = int(ds.arg_max() or 0)
    last, uid = ds[i], panel.frame["unique_id"][i]
    if isinstance(panel.freq, int):
        if int(last) + h * panel.freq > 2**63 - 1:
            msg = (f"h={h} steps of {panel.freq} after series '{uid}' (last ds {last}) pass the largest 64-bit "
                   f"integer ds ({2**63 - 1}); use a smaller h or renumber ds")
            raise InvalidParameterError(msg, field="h", details={"unique_id": uid, "last_ds": int(last)})
        return
    num, unit = offset_parts(panel.freq)
    if unit == "bd":  # h business days span at most 7/5 * h days: checked as 2 * h days
        num, unit = 2 * num, "d"
    days = h * num * _UNIT_DAYS[unit]
    room = (_LAST_TIMESTAMP - last).days
    # far beyond: refused without computing (an offset of millions of years would overflow); near: exactly
    if days > room + 400 or pl.select(
            pl.lit(last).dt.offset_by(f"{h * num}{unit}") > pl.lit(_LAST_TIMESTAMP)).item():
        msg = (f"h={h} steps of {panel.freq} after series '{uid}' (last ds {last}) pass the last representable "
               f"timestamp ({_LAST_TIMESTAMP.date()}); use a smaller h")
        raise InvalidParameterError(msg, field="h", details={"unique_id": uid, "last_ds": str(last)})


def to_caller_tz(frame: pl.DataFrame, panel: Panel) -> pl.DataFrame:
    """Return ``ds`` in the caller's form: their timezone, ``Date`` for date input, Int64 steps."""
    if panel.ds_kind == "int":
        return frame
    if panel.ds_kind == "date":
        return frame.with_columns(pl.col("ds").cast(pl.Date))
    if panel.tz is not None:
        return frame.with_columns(pl.col("ds").dt.replace_time_zone("UTC").dt.convert_time_zone(panel.tz))
    return frame


def validate_future(X_future: Any, panel: Panel, h: int, columns: Sequence[str]) -> pl.DataFrame:
    """Check future exogenous values and align them to the forecast grid.

    Parameters
    ----------
    X_future : frame (polars, pandas, mapping or rows)
        ``unique_id, ds`` and the exogenous ``columns`` for (at least) the ``h`` steps
        after each series' end; ``ds`` in the same form as the history's.
    panel : Panel
        The history being forecast.
    h : int
        Horizon.
    columns : sequence of str
        Exogenous columns the model needs.

    Returns
    -------
    pl.DataFrame
        ``unique_id, ds`` (internal form, as :func:`future_frame`) and ``columns``, ``h``
        rows per series in order.

    Raises
    ------
    InvalidInputError
        ``X_future`` absent, missing columns, ``ds`` of another kind, or missing/null
        values: the message lists the exact ``(unique_id, ds)`` pairs and columns.
    """
    needed = list(columns)
    grid = future_frame(panel, h)
    if not needed:
        return grid
    if X_future is None:
        msg = (
            f"X_future is required: the model uses future exogenous columns {needed}; give unique_id, ds and those "
            f"columns for the {h} steps after each series' end"
        )
        raise InvalidInputError(msg, field="X_future")
    fut = to_polars(X_future, field_name="X_future")
    absent = [c for c in ["unique_id", "ds", *needed] if c not in fut.columns]
    if absent:
        msg = f"X_future lacks columns {absent} (has {', '.join(fut.columns)})"
        raise InvalidInputError(msg, field="X_future")
    fut = fut.select("unique_id", "ds", *needed).with_columns(pl.col("unique_id").cast(pl.String))
    fut, tz, kind, _ = _coerce_ds(fut)
    tz, _ = _split_fixed_offset(tz)
    if (kind == "int") != (panel.ds_kind == "int"):
        msg = (
            f"X_future ds must be {'integer steps' if panel.ds_kind == 'int' else 'timestamps'} "
            f"like the history's"
        )
        raise InvalidInputError(msg, field="X_future.ds")
    if kind != "int" and (tz is None) != (panel.tz is None):
        msg = "X_future ds must be timezone-aware exactly when the history's is"
        raise InvalidInputError(msg, field="X_future.ds")
    dups = find_duplicates(fut)
    if dups.height:
        msg = (
            f"X_future has duplicate (unique_id, ds) rows: "
            f"{_examples([f'({u}, {_fmt(d)})' for u, d, _ in dups.iter_rows()])}"
        )
        raise InvalidInputError(msg, field="X_future")
    if kind != "int":
        fut = fut.with_columns(pl.col("ds").cast(grid.schema["ds"]))
    aligned = grid.join(fut, on=["unique_id", "ds"], how="left", maintain_order="left")
    problems: list[str] = []
    for col in needed:
        miss = aligned.filter(pl.col(col).is_null() | (pl.col(col).is_nan() if aligned.schema[col].is_float()
                                                       else pl.lit(False)))
        if miss.height:
            shown = to_caller_tz(miss.select("unique_id", "ds"), panel)
            pairs = [f"({u}, {_fmt(d)})" for u, d in shown.iter_rows()]
            problems.append(f"'{col}' missing for {miss.height} (unique_id, ds) pairs: {_examples(pairs)}")
    if problems:
        raise InvalidInputError("X_future does not cover the forecast horizon: " + "; ".join(problems), field="X_future",
                                details={"missing": problems})
    return aligned
