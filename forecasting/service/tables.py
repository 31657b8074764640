"""Reading and writing the user's tables (CSV or Parquet): read as data only, never executed or unpickled."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from forecasting.errors import InvalidInputError, InvalidParameterError

__all__ = ["read_table", "read_upload", "write_table"]

_READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def read_table(path: str | Path, *, field: str = "input") -> pl.DataFrame:
    """Read a CSV or Parquet file as data.

    CSV dates are parsed when they look like ISO 8601 (timestamps with a UTC offset are kept as text, so that the
    data contract reads the caller's offset as it does in JSON); ``unique_id`` is read as text; a column of numbers with
    ``nan`` cells (any case) is read as numbers with NaN there, and with ``NA``, ``null`` or empty cells
    (:data:`MISSING_MARKERS`) with nulls there: missing values for the data contract, from a file here or an
    HTTP upload (:func:`read_upload` reads through here) alike.

    Raises
    ------
    InvalidParameterError
        Unknown extension.
    InvalidInputError
        Missing file, or a file that is not valid CSV/Parquet.
    """
    p = Path(path)
    kind = _READERS.get(p.suffix.lower())
    if kind is None:
        msg = f"{field} file must end in .csv or .parquet, got '{p.name}'"
        raise InvalidParameterError(msg, field=field)
    if not p.is_file():
        msg = f"{field} file '{p}' does not exist"
        raise InvalidInputError(msg, field=field)
    try:
        if kind == "csv":
            frame = pl.read_csv(p, try_parse_dates=True, schema_overrides={"unique_id": pl.String},
                                infer_schema_length=10_000)
            return _numbers_with_missing(_dates_as_contract_reads(p, frame))
        return pl.read_parquet(p)
    except (pl.exceptions.PolarsError, OSError, ValueError) as exc:
        msg = f"could not read '{p}' as {kind}: {exc}"
        raise InvalidInputError(msg, field=field) from exc


def _dates_as_contract_reads(path: Path, frame: pl.DataFrame) -> pl.DataFrame:
    """The columns polars parsed as dates put back to their text where the data contract must read the text:
    timestamps with a UTC offset (polars parses '+05:30' into UTC; the text keeps the caller's offset, as JSON's
    does) and dates that are not ISO 8601 (polars infers '01/02/2024' day-first, 1 February, where the caller may
    mean 2 January: as text, :func:`forecasting.data.validate_panel` refuses them naming the rows, as from JSON;
    :func:`forecasting.data.is_iso8601` is the rule)."""
    from forecasting.data import is_iso8601

    parsed = [c for c, t in frame.schema.items() if isinstance(t, pl.Date | pl.Datetime)]
    if not parsed:
        return frame
    text = pl.read_csv(path, columns=parsed, infer_schema=False)
    keep = [text[c] for c in parsed if getattr(frame.schema[c], "time_zone", None) or not is_iso8601(text[c])]
    return frame.with_columns(keep) if keep else frame


#: CSV cells read as null in a column of numbers, compared without case and surrounding spaces (pandas'
#: ``read_csv`` reads these as missing too); ``nan`` in any case is NaN, as polars reads ``NaN``
MISSING_MARKERS = ("", "na", "n/a", "null", "none")


def _numbers_with_missing(frame: pl.DataFrame) -> pl.DataFrame:
    """Text columns (``unique_id`` excepted) whose cells are all numbers or :data:`MISSING_MARKERS` as ``Float64``
    (the markers null): polars infers ``NaN`` as a number but reads a column holding ``nan`` or ``NA`` as text, so
    such a ``y`` was "not numeric" instead of the missing values the data contract names and ``fill_missing``
    fills (as JSON ``null``). Other text columns are kept."""
    casts = []
    for col, dtype in frame.schema.items():
        if col == "unique_id" or dtype != pl.String:
            continue
        text = pl.col(col).str.strip_chars()
        missing = text.str.to_lowercase().is_in(MISSING_MARKERS) | text.is_null()
        number = pl.when(missing).then(None).otherwise(text).cast(pl.Float64, strict=False)
        if frame.select((number.is_null() == missing).all()).item():
            casts.append(number.alias(col))
    return frame.with_columns(casts) if casts else frame


def read_upload(filename: str, content: bytes, *, field: str = "file") -> pl.DataFrame:
    """Read an uploaded CSV or Parquet file (its bytes) as data, as :func:`read_table`.

    Raises
    ------
    InvalidParameterError
        The file name does not end in .csv or .parquet.
    InvalidInputError
        Not valid CSV/Parquet (the message names the uploaded file).
    """
    import tempfile

    suffix = Path(filename or "").suffix.lower()
    if suffix not in _READERS:
        msg = f"the uploaded file must end in .csv or .parquet, got '{filename}'"
        raise InvalidParameterError(msg, field=field)
    with tempfile.TemporaryDirectory(prefix="forecasting-upload-") as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(content)
        try:
            return read_table(path, field=field)
        except InvalidInputError as exc:
            raise InvalidInputError(exc.message.replace(str(path), filename), field=field) from exc


def write_table(frame: pl.DataFrame, path: str | Path, *, utc_offset: str | None = None) -> Path:
    """Write a frame as CSV or Parquet (by extension), creating parent folders.

    ``utc_offset`` (the input's fixed offset, :attr:`forecasting.data.Panel.utc_offset`, e.g. ``"+05:30"``): a
    CSV's timezone-aware columns are written as ISO 8601 text at that offset, as the JSON answers show them
    (Parquet keeps UTC: polars has no fixed-offset zones).

    Raises
    ------
    InvalidParameterError
        Unknown extension.
    """
    p = Path(path)
    kind = _READERS.get(p.suffix.lower())
    if kind is None:
        msg = f"output file must end in .csv or .parquet, got '{p.name}'"
        raise InvalidParameterError(msg, field="output")
    p.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        if utc_offset is not None:
            from forecasting.data import _offset_delta

            shift = _offset_delta(utc_offset)
            frame = frame.with_columns(
                ((pl.col(c).dt.replace_time_zone(None) + shift).dt.strftime("%Y-%m-%dT%H:%M:%S") + utc_offset)
                .alias(c) for c, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone)
        frame.write_csv(p)
    else:
        frame.write_parquet(p)
    return p
