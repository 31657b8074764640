"""Dataset catalogue, verified file fetching and loaders into the long-format data contract.

The catalogue (``datasets/catalogue.json`` at the repository root) names each dataset's
files with their official URL (pinned to a commit) and sha256, and the standard setup
(``freq``, ``h``, ``season_length``). :func:`fetch` finds a file, in this order:

1. bundled with the project (files the catalogue marks ``"bundled": true``, kept beside it);
2. ``$FORECASTING_DATA_DIR/<folder>/<file>`` (a read-only shared folder; never written);
3. ``$FORECASTING_CACHE_DIR/<folder>/<file>`` (default ``~/.cache/forecasting``);
4. a download from the official URL into the cache (temp file, sha256 check, rename).

Every file is checked against its sha256 before it is used, wherever it came from; a
mismatch is a :class:`~forecasting.errors.DatasetError` naming both hashes.

The catalogue is found relative to this file (``<repo>/datasets``), which works for a
source checkout and an editable install; a wheel does not carry it yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import polars as pl

from forecasting.errors import CapabilityError, DatasetError, InvalidParameterError

__all__ = [
    "CATALOGUE_DIR",
    "catalogue",
    "dataset_info",
    "fetch",
    "load",
    "load_air_passengers",
    "load_bike_sharing",
    "load_california_housing",
    "load_ett_h1",
    "load_m3",
    "load_m4_hourly",
    "suite",
]

def _catalogue_dir() -> Path:
    """``forecasting/_data`` in an installed wheel (package data), ``datasets/`` in a checkout."""
    here = Path(__file__).resolve().parent
    installed = here / "_data"
    return installed if (installed / "catalogue.json").is_file() else here.parent / "datasets"


#: Folder holding ``catalogue.json`` and the bundled files (``air_passengers.csv``).
CATALOGUE_DIR = _catalogue_dir()

DATA_DIR_ENV = "FORECASTING_DATA_DIR"
CACHE_DIR_ENV = "FORECASTING_CACHE_DIR"
_DOWNLOAD_TIMEOUT_S = 60
_CHUNK = 1 << 20


def _read_catalogue() -> dict[str, Any]:
    path = CATALOGUE_DIR / "catalogue.json"
    try:
        with path.open(encoding="utf-8") as fh:
            loaded: dict[str, Any] = json.load(fh)
    except FileNotFoundError as exc:
        msg = (
            f"dataset catalogue not found at {path}; it ships with the package as forecasting/_data "
            "(reinstall the project)"
        )
        raise DatasetError(msg) from exc
    except json.JSONDecodeError as exc:
        msg = f"dataset catalogue {path} is not valid: {exc}"
        raise DatasetError(msg) from exc
    return loaded


def catalogue() -> dict[str, dict[str, Any]]:
    """Every dataset the project knows, as ``{name: info}`` (a fresh copy on each call).

    Returns
    -------
    dict
        ``info`` holds ``title``, ``folder``, ``files`` (``{file: {"url", "sha256", ...}}``),
        ``freq``, ``season_length``, ``h`` where standard, ``source`` and ``citation``.

    Raises
    ------
    DatasetError
        If ``datasets/catalogue.json`` is missing or is not valid JSON.
    """
    raw = _read_catalogue()
    if "datasets" not in raw:
        msg = f"dataset catalogue {CATALOGUE_DIR / 'catalogue.json'} is not valid: no 'datasets' key"
        raise DatasetError(msg)
    datasets: dict[str, dict[str, Any]] = raw["datasets"]
    return datasets


def suite(name: str) -> dict[str, Any]:
    """A named benchmark suite of the catalogue: its datasets and their setup.

    Parameters
    ----------
    name : str
        Suite name, e.g. ``"dev"`` (the development suite of issue 13: M3 yearly, quarterly,
        monthly and other, M4 Hourly, ETTh1 at h = 96, AirPassengers).

    Returns
    -------
    dict
        ``description``, ``reference`` (the model every skill score is relative to,
        ``"seasonal_naive"``), ``windows`` (rolling origins per dataset) and ``datasets``: a
        list of ``{"dataset": name, "h": ..., "name": ..., "note": ...}`` in run order, where
        ``h`` (when present) overrides the catalogue's standard horizon and ``name`` labels the
        entry in the results (default the dataset's name; one dataset may then appear twice).

    Raises
    ------
    DatasetError
        If the catalogue has no suite ``name`` (the message lists the known suites), or a
        suite names a dataset the catalogue does not have.
    """
    suites: dict[str, dict[str, Any]] = _read_catalogue().get("suites", {})
    if name not in suites:
        msg = f"unknown suite {name!r}; known suites: {', '.join(sorted(suites)) or 'none'}"
        raise DatasetError(msg, field="suite", details={"known": sorted(suites)})
    entry = suites[name]
    known = catalogue()
    missing = [d["dataset"] for d in entry["datasets"] if d["dataset"] not in known]
    if missing:
        msg = f"suite {name!r} names datasets the catalogue does not have: {', '.join(missing)}"
        raise DatasetError(msg, field="suite")
    return entry


def dataset_info(name: str) -> dict[str, Any]:
    """The catalogue entry of one dataset.

    Parameters
    ----------
    name : str
        Catalogue name, e.g. ``"m4_hourly"``.

    Raises
    ------
    DatasetError
        If ``name`` is not in the catalogue; the message lists the known names.
    """
    entries = catalogue()
    if name not in entries:
        msg = f"unknown dataset {name!r}; known datasets: {', '.join(sorted(entries))}"
        raise DatasetError(msg, field="dataset", details={"known": sorted(entries)},)
    return entries[name]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, expected: str, name: str, file: str, *, advice: str) -> Path:
    actual = _sha256(path)
    if actual != expected:
        msg = (
            f"dataset {name!r} file {file!r} at {path} fails its checksum: sha256 expected {expected}, "
            f"got {actual}. {advice}"
        )
        raise DatasetError(msg, details={"path": str(path), "expected_sha256": expected, "actual_sha256": actual},)
    return path


def _default_cache_dir() -> Path:
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env) if env else Path.home() / ".cache" / "forecasting"


def _default_data_dir() -> Path | None:
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else None


def fetch(
    name: str,
    file: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Path:
    """Path to a verified local copy of one catalogue file, downloading it if needed.

    Parameters
    ----------
    name : str
        Catalogue name, e.g. ``"m4_hourly"``.
    file : str
        File name within the dataset, e.g. ``"Hourly-train.csv"``.
    data_dir : path, optional
        Read-only data folder with ``<folder>/<file>`` inside; default ``$FORECASTING_DATA_DIR``
        (unset: not used). Nothing is ever written there.
    cache_dir : path, optional
        Writable cache with the same layout; default ``$FORECASTING_CACHE_DIR``, else
        ``~/.cache/forecasting``.
    download : bool, default True
        Whether to download from the official URL when no local copy exists.

    Returns
    -------
    pathlib.Path
        A file whose sha256 matches the catalogue.

    Raises
    ------
    DatasetError
        If the dataset or file is unknown; a local copy fails its checksum (naming both
        hashes; it is refused, not replaced); the download fails or is disabled (the message
        says where to put the file and gives the official URL); or the downloaded bytes fail
        the checksum (nothing is kept).
    """
    info = dataset_info(name)
    files = info["files"]
    if file not in files:
        msg = f"dataset {name!r} has no file {file!r}; its files: {', '.join(files)}"
        raise DatasetError(msg, field="file", details={"known": list(files)},)
    spec = files[file]
    expected = spec["sha256"]
    folder = info["folder"]

    if spec.get("bundled"):
        path = CATALOGUE_DIR / file
        if not path.is_file():
            msg = f"bundled file {file!r} of dataset {name!r} is missing from {CATALOGUE_DIR}"
            raise DatasetError(msg)
        return _verify(path, expected, name, file, advice="The bundled copy was modified; restore it from git.")

    data_root = Path(data_dir) if data_dir is not None else _default_data_dir()
    if data_root is not None:
        path = data_root / folder / file
        if path.is_file():
            return _verify(
                path, expected, name, file,
                advice=f"Replace it with the official file from {spec['url']}.",
            )

    cache_root = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    cached = cache_root / folder / file
    if cached.is_file():
        return _verify(
            cached, expected, name, file,
            advice=f"Delete it to download it again from {spec['url']}.",
        )

    where = (
        f"put the file at $FORECASTING_DATA_DIR/{folder}/{file} (e.g. FORECASTING_DATA_DIR=/path with "
        f"/path/{folder}/{file})"
        + (f"; FORECASTING_DATA_DIR is {data_root}, so {data_root / folder / file}" if data_root is not None else "")
        + f", or at {cached}. Official URL: {spec['url']} (sha256 {expected})"
    )
    if not download or not spec.get("url"):
        msg = f"dataset {name!r} file {file!r} is not available locally and downloading is disabled: {where}"
        raise DatasetError(msg, details={"url": spec.get("url"), "expected_path": f"{folder}/{file}"},)
    return _download(spec["url"], cached, expected, name, file, where)


def _download(url: str, target: Path, expected: str, name: str, file: str, where: str) -> Path:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"cannot create cache folder {target.parent}: {exc}; {where}"
        raise DatasetError(msg) from exc
    fd, tmp_name = tempfile.mkstemp(prefix=f".{file}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as resp:
                while chunk := resp.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError) as exc:
            msg = f"dataset {name!r} file {file!r} is not available locally and the download failed ({exc}): {where}"
            raise DatasetError(msg, details={"url": url},) from exc
        actual = digest.hexdigest()
        if actual != expected:
            msg = (
                f"dataset {name!r} file {file!r} downloaded from {url} fails its checksum: sha256 expected "
                f"{expected}, got {actual}; nothing was kept"
            )
            raise DatasetError(msg, details={"url": url, "expected_sha256": expected, "actual_sha256": actual},)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


# --------------------------------------------------------------------------- loaders


def _read_m4_wide(path: Path) -> pl.DataFrame:
    """Wide M4 CSV -> long ``unique_id, step (1-based), y``, in file order, padding dropped."""
    wide = pl.read_csv(path, infer_schema_length=0)  # every column as text; ids and values
    id_col = wide.columns[0]
    value_cols = wide.columns[1:]
    return (
        wide.with_row_index("_order")
        .unpivot(index=["_order", id_col], on=value_cols, variable_name="_col", value_name="y")
        .filter(pl.col("y").is_not_null() & (pl.col("y") != ""))
        .with_columns(
            pl.col(id_col).alias("unique_id"),
            (pl.col("_col").str.slice(1).cast(pl.Int64) - 1).alias("ds"),  # "V2" is the first value
            pl.col("y").cast(pl.Float64),
        )
        .sort("_order", "ds")
        .select("unique_id", "ds", "y")
    )


def load_m4_hourly(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The M4 Hourly panel: 414 series, training part and the 48-step test part.

    Parameters
    ----------
    data_dir, cache_dir, download
        As :func:`fetch`.

    Returns
    -------
    (train, test) : tuple of pl.DataFrame
        Long format ``unique_id`` (Utf8, ``"H1"``...), ``ds`` (Int64 step index, 1-based per
        series: M4 gives no start dates), ``y`` (Float64); series in file order, then by
        ``ds``. The test continues each series' index (``n_train + 1 .. n_train + 48``).
        353,500 training values (lengths 700 or 960) and 19,872 test values.

    Raises
    ------
    DatasetError
        As :func:`fetch`, or if the test and train files do not list the same series.

    Notes
    -----
    Source: Makridakis, Spiliotis & Assimakopoulos (2020), IJF 36(1); files from
    https://github.com/Mcompetitions/M4-methods (``Dataset/Train``, ``Dataset/Test``).
    """
    train, test = (_read_m4_wide(fetch("m4_hourly", f"Hourly-{part}.csv", data_dir=data_dir, cache_dir=cache_dir,
                                       download=download)) for part in ("train", "test"))
    lengths = train.group_by("unique_id", maintain_order=True).agg(pl.len().cast(pl.Int64).alias("_n"))
    test_ids = test["unique_id"].unique(maintain_order=True)
    if test_ids.to_list() != lengths["unique_id"].to_list():
        msg = "M4 Hourly: the test file does not list the same series, in the same order, as the train file"
        raise DatasetError(msg)
    test = test.join(lengths, on="unique_id", how="left", maintain_order="left").select(
        "unique_id", (pl.col("ds") + pl.col("_n")).alias("ds"), "y"
    )
    return train, test


#: Catalogue name -> sheet of ``M3C.xls`` and the months between observations (0: no calendar).
_M3_SHEETS = {"m3_yearly": ("M3Year", 12), "m3_quarterly": ("M3Quart", 3), "m3_monthly": ("M3Month", 1),
              "m3_other": ("M3Other", 0)}
#: Year the M3 monthly series without a calendar (Starting Year 0) are dated from: a placeholder.
M3_UNDATED_YEAR = 1800


def _m3_start_month(row: list[Any], step: int) -> int:
    """Months since year 0 of a series' first observation; series without a calendar start at 1800-01.

    Starting Quarter/Month beyond the year (N1071: quarter 9) rolls into the following years, as R's ``ts``.
    """
    year = int(row[4])
    period = int(row[5]) if step != 12 else 1  # the yearly sheet's sixth column is unnamed, not a period
    if year == 0:
        return M3_UNDATED_YEAR * 12
    return year * 12 + (period - 1) * step


def load_m3(
    name: str = "m3_monthly",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One category of the M3 competition: training parts and the official test parts.

    Parameters
    ----------
    name : {"m3_yearly", "m3_quarterly", "m3_monthly", "m3_other"}, default "m3_monthly"
        Catalogue name of the category (its sheet of ``M3C.xls``).
    data_dir, cache_dir, download
        As :func:`fetch`.

    Returns
    -------
    (train, test) : tuple of pl.DataFrame
        Long format ``unique_id`` (Utf8, ``"N1"``... with the file's padding spaces removed),
        ``ds``, ``y`` (Float64), series in file order, then by ``ds``. ``train`` holds the first
        ``N - NF`` values of each series, ``test`` the last ``NF`` (the competition's horizon:
        yearly 6, quarterly 8, monthly 18, other 8). ``ds`` is Datetime("us") at the first day of
        each year / quarter / month from the sheet's starting year and period (the 29 monthly
        series N2801-N2829 give none and are dated from 1800-01, a placeholder), and Int64
        ``1..N`` for ``m3_other``, whose sheet has no calendar. Series counts: 645, 756,
        1,428 and 174.

    Raises
    ------
    InvalidParameterError
        If ``name`` is not an M3 category.
    DatasetError
        As :func:`fetch`; or if a row's value count differs from its ``N``.
    CapabilityError
        If no ``.xls`` reader is installed (``python-calamine``, a core dependency).

    Notes
    -----
    Source: Makridakis & Hibon (2000), "The M3-Competition: results, conclusions and
    implications", IJF 16(4), 451-476; the organisers' ``M3C.xls`` (see the catalogue).
    """
    if name not in _M3_SHEETS:
        msg = f"M3 category must be one of {', '.join(_M3_SHEETS)}, got {name!r}"
        raise InvalidParameterError(msg, field="dataset")
    sheet, step = _M3_SHEETS[name]
    path = fetch(name, "M3C.xls", data_dir=data_dir, cache_dir=cache_dir, download=download)
    try:
        from python_calamine import CalamineWorkbook
    except ImportError as exc:  # pragma: no cover - a core dependency
        msg = "reading M3C.xls needs python-calamine (a core dependency): pip install python-calamine"
        raise CapabilityError(msg, field="dataset") from exc
    rows: list[list[Any]] = CalamineWorkbook.from_path(str(path)).get_sheet_by_name(sheet).to_python()[1:]
    ids, ds, ys, is_test = [], [], [], []
    for row in rows:
        if not row or row[0] in ("", None):
            continue
        uid, n, nf = str(row[0]).replace(" ", ""), int(row[1]), int(row[2])
        values = [float(v) for v in row[6:] if v not in ("", None)]
        if len(values) != n:
            msg = f"M3 sheet {sheet}: series {uid} has {len(values)} values where its N column says {n}"
            raise DatasetError(msg, details={"series": uid})
        ids += [uid] * n
        ys += values
        is_test += [False] * (n - nf) + [True] * nf
        if step:
            start = _m3_start_month(row, step)
            ds += [start + k * step for k in range(n)]
        else:
            ds += list(range(1, n + 1))
    frame = pl.DataFrame({"unique_id": ids, "ds": ds, "y": ys, "_test": is_test},
                         schema={"unique_id": pl.Utf8, "ds": pl.Int64, "y": pl.Float64, "_test": pl.Boolean})
    if step:  # months since year 0 -> the first day of that month
        frame = frame.with_columns(pl.datetime(pl.col("ds") // 12, pl.col("ds") % 12 + 1, 1, time_unit="us")
                                   .alias("ds"))
    train = frame.filter(~pl.col("_test")).drop("_test")
    test = frame.filter(pl.col("_test")).drop("_test")
    return train, test


def load_air_passengers() -> pl.DataFrame:
    """Box & Jenkins' monthly international airline passengers, 1949-01 to 1960-12.

    Returns
    -------
    pl.DataFrame
        144 rows: ``unique_id`` (Utf8, ``"AirPassengers"``), ``ds`` (Datetime("us"), first of
        each month), ``y`` (Float64, thousands of passengers). ``freq="1mo"``, usually
        ``h=12``, ``season_length=12``.

    Raises
    ------
    DatasetError
        If the bundled file is missing or fails its checksum.

    Notes
    -----
    Source: Box, G. E. P. & Jenkins, G. M. (1976), *Time Series Analysis: Forecasting and
    Control*, Series G; R's ``datasets::AirPassengers``. The values equal
    ``statsforecast.utils.AirPassengers``.

    Examples
    --------
    >>> frame = load_air_passengers()  # bundled with the package: no download
    >>> frame.shape, frame.row(0)
    ((144, 3), ('AirPassengers', datetime.datetime(1949, 1, 1, 0, 0), 112.0))
    """
    path = fetch("air_passengers", "air_passengers.csv")
    return pl.read_csv(path, schema={"unique_id": pl.Utf8, "ds": pl.Date, "y": pl.Float64}).with_columns(
        pl.col("ds").cast(pl.Datetime("us"))
    )


def load_ett_h1(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> pl.DataFrame:
    """ETTh1: hourly oil temperature of one transformer, with six load series as exogenous columns.

    Parameters
    ----------
    data_dir, cache_dir, download
        As :func:`fetch`.

    Returns
    -------
    pl.DataFrame
        17,420 rows: ``unique_id`` (Utf8, ``"ETTh1"``), ``ds`` (Datetime("us"), hourly from
        2016-07-01 00:00), ``y`` (Float64, oil temperature ``OT``), then the exogenous load
        columns ``HUFL, HULL, MUFL, MULL, LUFL, LULL`` (Float64).

    Raises
    ------
    DatasetError
        As :func:`fetch`.

    Notes
    -----
    Source: Zhou et al. (2021), "Informer", AAAI; https://github.com/zhouhaoyi/ETDataset
    (CC BY-ND 4.0).
    """
    path = fetch("ett_h1", "ETTh1.csv", data_dir=data_dir, cache_dir=cache_dir, download=download)
    raw = pl.read_csv(path)
    exog = [c for c in raw.columns if c not in ("date", "OT")]
    return raw.select(
        pl.lit("ETTh1").alias("unique_id"),
        pl.col("date").str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us").alias("ds"),
        pl.col("OT").cast(pl.Float64).alias("y"),
        *[pl.col(c).cast(pl.Float64) for c in exog],
    )


def load_california_housing(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> pl.DataFrame:
    """California Housing (1990 census block groups), Géron's ``housing.csv`` variant.

    A plain table (no time axis) for tabular regression; target ``median_house_value``.

    Parameters
    ----------
    data_dir, cache_dir, download
        As :func:`fetch`.

    Returns
    -------
    pl.DataFrame
        20,640 rows, in file order: ``longitude, latitude, housing_median_age, total_rooms,
        total_bedrooms, population, households, median_income`` (Float64; ``median_income`` in
        tens of thousands of USD; ``total_bedrooms`` is null in 207 rows), ``median_house_value``
        (Float64, USD, censored at 500,001), ``ocean_proximity`` (Utf8, 5 categories), and
        ``median_house_value_100k`` (Float64) = ``median_house_value / 100_000``, the unit of
        scikit-learn's ``fetch_california_housing`` and of the usual RMSE references (tuned
        XGBoost about 0.433). Use one of the two target columns and drop the other from the
        features.

    Raises
    ------
    DatasetError
        As :func:`fetch`.

    Notes
    -----
    Source: Pace & Barry (1997), "Sparse Spatial Autoregressions", Statistics and Probability
    Letters 33; file from https://github.com/ageron/handson-ml2 (``datasets/housing``), where
    Géron removed 207 ``total_bedrooms`` values and added ``ocean_proximity``.
    """
    path = fetch("california_housing", "housing.csv", data_dir=data_dir, cache_dir=cache_dir, download=download)
    numeric = ["longitude", "latitude", "housing_median_age", "total_rooms", "total_bedrooms",
               "population", "households", "median_income", "median_house_value"]
    schema = {c: pl.Float64 for c in numeric} | {"ocean_proximity": pl.Utf8}
    return pl.read_csv(path, schema=schema).with_columns(
        (pl.col("median_house_value") / 100_000).alias("median_house_value_100k")
    )


def load_bike_sharing(
    kind: str = "hour",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> pl.DataFrame:
    """UCI Bike Sharing (Capital Bikeshare, Washington D.C., 2011-2012): rentals with weather.

    Parameters
    ----------
    kind : {"hour", "day"}, default "hour"
        ``hour.csv`` (17,379 rows, hourly; 165 hours of the 2-year grid have no record) or
        ``day.csv`` (731 rows, daily, gap-free).
    data_dir, cache_dir, download
        As :func:`fetch`.

    Returns
    -------
    pl.DataFrame
        The file's columns in file order (``instant``, ``dteday`` (Utf8, YYYY-MM-DD),
        ``season, yr, mnth, hr`` (hour only), ``holiday, weekday, workingday, weathersit``
        (Int64), ``temp, atemp, hum, windspeed`` (Float64, normalised), ``casual, registered,
        cnt`` (Int64 counts; ``cnt = casual + registered``)), then ``ds`` (Datetime("us")):
        ``dteday`` + ``hr`` hours, or ``dteday`` at midnight for ``kind="day"``. The files'
        CRLF line endings are handled (no stray ``\\r`` in the last column). When ``cnt`` is
        the target, leave ``casual`` and ``registered`` out of the features (they sum to it).

    Raises
    ------
    InvalidParameterError
        If ``kind`` is not ``"hour"`` or ``"day"``.
    DatasetError
        As :func:`fetch`.

    Notes
    -----
    Source: Fanaee-T & Gama (2013), "Event labeling combining ensemble detectors and
    background knowledge", Progress in Artificial Intelligence; UCI Machine Learning
    Repository; files from https://github.com/udacity/deep-learning-v2-pytorch
    (``project-bikesharing/Bike-Sharing-Dataset``), byte-identical to the UCI zip.
    """
    if kind not in ("hour", "day"):
        msg = f"kind must be 'hour' or 'day', got {kind!r}"
        raise InvalidParameterError(msg, field="kind")
    path = fetch("bike_sharing", f"{kind}.csv", data_dir=data_dir, cache_dir=cache_dir, download=download)
    raw = pl.read_csv(path.read_bytes().replace(b"\r\n", b"\n"))
    ds = pl.col("dteday").str.to_date("%Y-%m-%d").cast(pl.Datetime("us"))
    if kind == "hour":
        ds = ds + pl.duration(hours=pl.col("hr"))
    floats = ["temp", "atemp", "hum", "windspeed"]
    return raw.with_columns(*[pl.col(c).cast(pl.Float64) for c in floats], ds.alias("ds"))


def load(name: str, **kwargs: Any) -> dict[str, Any]:
    """Load a catalogue dataset by name.

    Parameters
    ----------
    name : str
        Catalogue name.
    **kwargs
        ``data_dir``, ``cache_dir``, ``download`` as :func:`fetch` (ignored for bundled data).

    Returns
    -------
    dict
        ``{"train": frame, "test": frame, "info": entry}`` for datasets with an official
        split (``m4_hourly``, ``m3_yearly``, ``m3_quarterly``, ``m3_monthly``, ``m3_other``), else ``{"data": frame, "info": entry}``. The tabular datasets
        (``california_housing``, ``bike_sharing``; ``info["task"]`` says so) give their plain
        table as ``data``, not the long format (``bike_sharing`` also takes ``kind="hour"|"day"``).

    Raises
    ------
    DatasetError
        If the name is unknown, or as the dataset's loader.
    """
    info = dataset_info(name)
    if name == "m4_hourly":
        train, test = load_m4_hourly(**kwargs)
        return {"train": train, "test": test, "info": info}
    if name in _M3_SHEETS:
        train, test = load_m3(name, **kwargs)
        return {"train": train, "test": test, "info": info}
    if name == "air_passengers":
        return {"data": load_air_passengers(), "info": info}
    if name == "ett_h1":
        return {"data": load_ett_h1(**kwargs), "info": info}
    if name == "california_housing":
        return {"data": load_california_housing(**kwargs), "info": info}
    if name == "bike_sharing":
        return {"data": load_bike_sharing(**kwargs), "info": info}
    msg = (
        f"dataset {name!r} is in the catalogue but has no loader yet; use fetch({name!r}, <file>) "
        f"for its files: {', '.join(info['files'])}"
    )
    raise DatasetError(  # pragma: no cover - a catalogue entry without a loader
        msg
    )
