"""Hierarchical and grouped structures: building, validating, aggregating and reconciling.

A structure is the summing matrix ``S`` of shape ``(n_series, n_bottom)`` (row ``i`` says which
bottom series add up to series ``i``; the last ``n_bottom`` rows are the identity) plus the
*levels* (``tags``): each level names the series that partition the bottom ones (``total``,
``state``, ``state/gender``, ..., ``bottom``). It comes from the bottom frame's columns --
nested (``hierarchy=["state", "region"]``: regions within states) and crossed
(``group=["purpose"]``: every combination with the nested levels) -- or from an explicit
summing matrix. Reconciliation is Nixtla's ``hierarchicalforecast`` (Olivares et al. 2022,
"HierarchicalForecast: A reference framework for hierarchical forecasting in Python"); the
methods are those of Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed.,
ch. 11: bottom-up, top-down with forecast proportions, middle-out, and the trace minimisation
family of Wickramasuriya, Athanasopoulos & Hyndman (2019, JASA): OLS, WLS with structural or
variance scaling, MinT with a shrunk covariance.

This module is the one place that knows the structure; :mod:`forecasting.service.hierarchy` is
the use case every door calls.

Examples
--------
>>> import polars as pl
>>> frame = pl.DataFrame({"unique_id": ["a", "b", "c"], "state": ["N", "N", "V"]})
>>> h = from_columns(frame, hierarchy=["state"])
>>> h.ids
('Total', 'N', 'V', 'a', 'b', 'c')
>>> h.S.tolist()
[[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
>>> list(h.tags)
['total', 'state', 'bottom']
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import polars as pl

from forecasting.errors import CapabilityError, InvalidInputError, InvalidParameterError

__all__ = [
    "INSAMPLE_METHODS",
    "METHODS",
    "Method",
    "STRICT_METHODS",
    "Hierarchy",
    "coherence_error",
    "from_columns",
    "from_matrix",
    "level_scores",
    "parse_structure",
    "reconcile",
]

#: A reconciliation method's name (the HTTP schema's enum).
Method = Literal["bottom_up", "top_down", "middle_out", "ols", "wls_struct", "wls_var", "mint_shrink"]
#: Reconciliation methods, in the order the tables show them.
METHODS: tuple[str, ...] = get_args(Method)
#: Methods that need the base model's in-sample fitted values (residual variances / covariance).
INSAMPLE_METHODS: frozenset[str] = frozenset({"wls_var", "mint_shrink"})
#: Methods defined only for strictly nested hierarchies (every series has one parent per level).
STRICT_METHODS: frozenset[str] = frozenset({"top_down", "middle_out"})
TOTAL = "Total"
_SEP = "/"
_SHOW = 5  # rows or series named in an error message


@dataclass(frozen=True)
class Hierarchy:
    """A hierarchical or grouped structure over ``n_bottom`` bottom series.

    Attributes
    ----------
    S : np.ndarray of shape (n_series, n_bottom)
        Summing matrix of 0/1 floats; rows in the order of ``ids``, the last ``n_bottom`` rows
        the identity.
    ids : tuple of str
        Every series, aggregates first (top level first), bottom series last.
    bottom : tuple of str
        The bottom series (the columns of ``S``).
    tags : dict of str to tuple of str
        Level name to its series, top level first, ``"bottom"`` last. Each level's series
        partition the bottom ones.
    strict : bool
        Strictly hierarchical (nested): each level's series sit inside one series of every
        level above. Top-down and middle-out need it.
    """

    S: np.ndarray
    ids: tuple[str, ...]
    bottom: tuple[str, ...]
    tags: dict[str, tuple[str, ...]]
    strict: bool

    @property
    def level_of(self) -> dict[str, str]:
        """Series id to the name of its level."""
        return {uid: name for name, ids in self.tags.items() for uid in ids}

    def S_frame(self) -> pl.DataFrame:
        """The summing matrix as hierarchicalforecast's ``S_df``: ``unique_id`` then one column per bottom series."""
        return pl.DataFrame({"unique_id": list(self.ids),
                             **{b: self.S[:, j] for j, b in enumerate(self.bottom)}})

    def aggregate(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Every series of the structure from the bottom series: ``S @ y_bottom`` at each timestamp.

        Parameters
        ----------
        frame : pl.DataFrame
            ``unique_id, ds, y`` of the bottom series, each observed at the same timestamps.

        Returns
        -------
        pl.DataFrame
            ``unique_id, ds, y`` for every series in the order of ``ids``, ``ds`` sorted.

        Raises
        ------
        InvalidInputError
            The frame's series differ from the structure's bottom series (naming them), or the bottom
            series do not share their timestamps (aggregates would silently miss terms).
        """
        check_bottom_ids(frame, self)
        wide = frame.select("unique_id", "ds", pl.col("y").cast(pl.Float64)).pivot(
            on="unique_id", index="ds", values="y").sort("ds")
        ragged = [b for b in self.bottom if wide[b].null_count()]
        if ragged:
            msg = (f"data: bottom series {ragged[:_SHOW]} are not observed at every timestamp the others are "
                   f"({len(ragged)} series); aggregates need the same timestamps for every bottom series: "
                   f"fill or trim them (fill_missing)")
            raise InvalidInputError(msg, field="data", details={"series": ragged[:50]})
        values = wide.select(list(self.bottom)).to_numpy() @ self.S.T  # (T, n_series)
        ds = wide["ds"]
        return pl.DataFrame({
            "unique_id": np.repeat(np.asarray(self.ids, dtype=object), len(ds)).tolist(),
            "ds": pl.concat([ds] * len(self.ids)) if len(self.ids) else ds.clear(),
            "y": values.T.reshape(-1)})


# --------------------------------------------------------------------------- parsing and building
def parse_structure(value: str | Sequence[str] | None, *, field: str) -> list[str]:
    """Column names from ``"state/region"``, ``"state,region"`` or a list (an empty list for ``None``).

    Raises
    ------
    InvalidParameterError
        An empty name or one given twice.
    """
    if value is None:
        return []
    parts = [p.strip() for p in value.replace(",", _SEP).split(_SEP)] if isinstance(value, str) else \
        [str(p).strip() for p in value]
    if any(not p for p in parts):
        msg = f"{field}: an empty column name in {value!r}"
        raise InvalidParameterError(msg, field=field)
    dup = [p for p in dict.fromkeys(parts) if parts.count(p) > 1]
    if dup:
        msg = f"{field}: column {dup[0]!r} is given twice"
        raise InvalidParameterError(msg, field=field)
    return parts


def _levels(hierarchy: list[str], group: list[str]) -> list[tuple[str, ...]]:
    """Aggregation levels: each prefix of the nested columns crossed with each subset of the grouping ones."""
    prefixes = [tuple(hierarchy[:k]) for k in range(len(hierarchy) + 1)]
    subsets = [c for r in range(len(group) + 1) for c in itertools.combinations(group, r)]
    levels = sorted({p + s for p in prefixes for s in subsets}, key=lambda lv: (len(lv), [
        (hierarchy + group).index(c) for c in lv]))
    return levels


def _check_columns(frame: pl.DataFrame, columns: list[str], hierarchy: list[str]) -> None:
    for col in columns:
        if col in ("unique_id", "ds", "y"):
            field = "hierarchy" if col in hierarchy else "group"
            msg = f"{field}: column {col!r} is the series id, time or target, not a structure column"
            raise InvalidParameterError(msg, field=field, details={"column": col})
        if col not in frame.columns:
            field = "hierarchy" if col in hierarchy else "group"
            msg = f"{field}: column {col!r} is not in the data; columns: {frame.columns[:20]}"
            raise InvalidInputError(msg, field=field, details={"column": col})
    keyed = frame.with_row_index("_row")
    for col in columns:
        text = keyed[col].cast(pl.String)
        bad = keyed.filter(text.is_null() | (text.str.strip_chars() == ""))
        if bad.height:
            rows = bad["_row"].to_list()
            msg = (f"data: column {col!r} is empty in {bad.height} rows (rows {rows[:_SHOW]}, series "
                   f"{bad['unique_id'].unique(maintain_order=True).to_list()[:_SHOW]}): every bottom series needs a "
                   f"value at every level of the structure")
            raise InvalidInputError(msg, field="data", details={"column": col, "rows": rows[:50]})


def _one_parent(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """One row per bottom series with its value of each column; refuses a series under two values."""
    keyed = frame.with_row_index("_row")
    for col in columns:
        counts = keyed.group_by("unique_id", maintain_order=True).agg(pl.col(col).n_unique().alias("n"))
        two = counts.filter(pl.col("n") > 1)["unique_id"].to_list()
        if two:
            uid = two[0]
            rows = keyed.filter(pl.col("unique_id") == uid).group_by(col, maintain_order=True).agg(
                pl.col("_row").first())
            parents = ", ".join(f"{v!r} (row {r})" for v, r in zip(rows[col].to_list(), rows["_row"].to_list(),
                                                                      strict=True))
            msg = (f"data: bottom series {uid!r} is in two parents of {col!r}: {parents}; a bottom series belongs "
                   f"to one node of each level ({len(two)} series so: {two[:_SHOW]})")
            raise InvalidInputError(msg, field="data", details={"series": two[:50], "column": col})
    return keyed.group_by("unique_id", maintain_order=True).agg(
        [pl.col(c).first().cast(pl.String) for c in columns])


def _check_size(keys: pl.DataFrame, levels: list[tuple[str, ...]], *, n_times: int, max_series: int | None,
                max_rows: int | None) -> None:
    """Refuse a structure whose series (or rows, ``series x n_times``) would pass the limits, before building it.

    The number of aggregate series of a level is the number of distinct combinations of its columns among the
    bottom series; the count stops as soon as it passes the limit.
    """
    cap = min(max_series if max_series is not None else np.inf,
              (max_rows // max(n_times, 1)) if max_rows is not None else np.inf)
    if cap == np.inf:
        return
    n_bottom = keys.height
    count = n_bottom + (len(levels) if len(levels) > cap else 0)  # each level has at least one series
    for level in levels if count <= cap else ():
        count += 1 if not level else keys.select(level).n_unique()
        if count > cap:
            break
    if count <= cap:
        return
    limit = (f"the limit is {max_series} series" if max_series is not None and count > max_series
             else f"the limit is {max_rows} rows")
    msg = (f"data: the structure ({len(levels)} aggregation levels over {n_bottom} bottom series) would build at "
           f"least {count} series ({count * n_times} rows over {n_times} timestamps); {limit}: give fewer "
           f"hierarchy/group columns or fewer series")
    raise InvalidInputError(msg, field="data", details={"series": int(count), "levels": len(levels)})


def from_columns(frame: Any, *, hierarchy: str | Sequence[str] | None = None,
                 group: str | Sequence[str] | None = None, max_series: int | None = None,
                 max_rows: int | None = None) -> Hierarchy:
    """The structure given by the bottom frame's columns (fpp3 ch. 11; hierarchicalforecast's ``aggregate`` spec).

    Parameters
    ----------
    frame : pl.DataFrame
        The bottom series in long form with ``unique_id`` and the structure columns (other columns
        are ignored); without ``unique_id`` the bottom series are the combinations of the columns.
    hierarchy : str or list of str, optional
        Nested columns, top first (``"state/region"``): a region is counted within its state.
    group : str or list of str, optional
        Crossed columns (``"purpose"`` or ``"state,gender,legal"``): every combination of them with
        every nested level is a level.

    max_series, max_rows : int, optional
        Limits on the number of series (bottom and aggregates) and of rows (series x distinct ``ds``), checked
        by counting each level's distinct combinations before anything is built (a service's request limits).

    Returns
    -------
    Hierarchy
        Levels ordered by depth (``total`` first, ``bottom`` last); aggregate ids are the level's values
        joined by ``/`` (``"NSW/Female"``), the top one ``"Total"``.

    Raises
    ------
    InvalidParameterError
        No column given, a column both nested and crossed, or ``unique_id``/``ds``/``y`` given as one.
    InvalidInputError
        A column not in the frame, a row without a value for a column (a missing level), a bottom
        series under two values of a column (two parents), a bottom id equal to an aggregate id, two levels
        giving the same aggregate id (a crossed value equal to a nested one), values containing ``/`` that join
        to the same aggregate id, or more series/rows than ``max_series``/``max_rows``; each naming the rows or
        series.
    """
    from forecasting.data import to_polars

    nested = parse_structure(hierarchy, field="hierarchy")
    crossed = parse_structure(group, field="group")
    both = sorted(set(nested) & set(crossed))
    if both:
        msg = f"column {both[0]!r} is both in hierarchy and in group: give it once"
        raise InvalidParameterError(msg, field="group")
    columns = nested + crossed
    if not columns:
        msg = "give the structure: hierarchy (nested columns, 'state/region') or group (crossed columns)"
        raise InvalidParameterError(msg, field="hierarchy")
    table = frame if isinstance(frame, pl.DataFrame) else to_polars(frame, field_name="data")
    if "unique_id" not in table.columns:
        missing = [c for c in columns if c not in table.columns]
        table = table.with_columns(pl.concat_str([pl.col(c).cast(pl.String) for c in columns], separator=_SEP)
                                   .alias("unique_id")) if not missing else table.with_columns(
            pl.lit("").alias("unique_id"))
    table = table.with_columns(pl.col("unique_id").cast(pl.String))
    _check_columns(table, columns, nested)
    keys = _one_parent(table, columns)
    n_levels = (len(nested) + 1) * 2 ** len(crossed)
    if max_series is not None and n_levels > max_series:
        msg = (f"group: {len(crossed)} crossed columns with {len(nested)} nested ones make {n_levels} aggregation "
               f"levels, more than the limit of {max_series} series; give fewer group columns")
        raise InvalidInputError(msg, field="group", details={"levels": n_levels, "limit": max_series})
    levels = _levels(nested, crossed)
    n_times = table["ds"].n_unique() if "ds" in table.columns else 1
    _check_size(keys, levels, n_times=n_times, max_series=max_series, max_rows=max_rows)
    bottom = tuple(keys["unique_id"].to_list())
    rows: list[np.ndarray] = []
    ids: list[str] = []
    tags: dict[str, tuple[str, ...]] = {}
    for level in levels:
        if not level:
            rows.append(np.ones(len(bottom)))
            ids.append(TOTAL)
            tags["total"] = (TOTAL,)
            continue
        label = keys.select(pl.concat_str([pl.col(c) for c in level], separator=_SEP).alias("k"))["k"]
        nodes = label.unique(maintain_order=True).sort().to_list()
        joined = keys.select(*level, k=label).unique().filter(pl.col("k").is_duplicated())["k"].unique().sort()
        if joined.len():  # 'A' + 'B/C' and 'A/B' + 'C' would both be the aggregate 'A/B/C'
            msg = (f"data: values of {list(level)} contain '{_SEP}', so different combinations join to the same "
                   f"aggregate id {joined.to_list()[:_SHOW]}; remove '{_SEP}' from the values")
            raise InvalidInputError(msg, field="data", details={"columns": list(level), "ids": joined.to_list()[:50]})
        if len(level) == len(columns) and len(nodes) == len(bottom):
            continue  # the full combination is the bottom level itself
        values = label.to_numpy()
        rows.extend((values == node).astype(np.float64) for node in nodes)
        ids.extend(nodes)
        tags[_SEP.join(level)] = tuple(nodes)
    _one_level(tags, field="data")
    clash = sorted(set(ids) & set(bottom))
    if clash:
        msg = (f"data: bottom series {clash[:_SHOW]} have the id of an aggregate series; rename them "
               f"(aggregate ids are the level values joined by '/', the top one 'Total')")
        raise InvalidInputError(msg, field="data", details={"series": clash[:50]})
    tags["bottom"] = bottom
    S = np.vstack([*rows, np.eye(len(bottom))])
    return Hierarchy(S=S, ids=(*ids, *bottom), bottom=bottom, tags=tags, strict=not crossed)


def from_matrix(S: Any, *, tags: Mapping[str, Sequence[str]] | None = None) -> Hierarchy:
    """The structure given by an explicit summing matrix (hierarchicalforecast's ``S_df`` layout).

    Parameters
    ----------
    S : frame or mapping of columns
        ``unique_id`` (every series) then one 0/1 column per bottom series; each bottom series has its own
        row (its id, a single 1 in its column).
    tags : mapping of level name to series ids, optional
        The levels, top first; each must partition the bottom series. Without them the levels are
        ``total`` (a row of ones, if any), ``aggregate`` (the other aggregate rows) and ``bottom``, and only
        the methods that need no levels apply (bottom-up, OLS, WLS, MinT).

    Returns
    -------
    Hierarchy

    Raises
    ------
    InvalidInputError
        No ``unique_id`` column, a value other than 0/1, a duplicate row id, a bottom series without its
        own row, a level naming an unknown row, a bottom series in two rows of one level (two parents) or in
        none (a missing level): each naming the rows.
    """
    from forecasting.data import to_polars

    table = S if isinstance(S, pl.DataFrame) else to_polars(S, field_name="S")
    if "unique_id" not in table.columns or table.width < 2:
        msg = f"S: needs a unique_id column and one column per bottom series; columns: {table.columns[:20]}"
        raise InvalidInputError(msg, field="S")
    ids = [str(u) for u in table["unique_id"].to_list()]
    dup = sorted({u for u in ids if ids.count(u) > 1})
    if dup:
        msg = f"S: rows {dup[:_SHOW]} appear more than once"
        raise InvalidInputError(msg, field="S", details={"rows": dup[:50]})
    bottom = tuple(c for c in table.columns if c != "unique_id")
    try:
        matrix = table.select(bottom).cast(pl.Float64).to_numpy()
    except pl.exceptions.PolarsError as exc:
        msg = f"S: the bottom columns must be numbers 0 or 1 ({exc})"
        raise InvalidInputError(msg, field="S") from exc
    _check_entries(matrix, ids, bottom)
    row_of = {u: i for i, u in enumerate(ids)}
    own = [b for j, b in enumerate(bottom) if b not in row_of or not np.array_equal(
        matrix[row_of[b]], np.eye(len(bottom))[j])]
    if own:
        msg = f"S: bottom series {own[:_SHOW]} have no row of their own (id = column name, a single 1 in that column)"
        raise InvalidInputError(msg, field="S", details={"series": own[:50]})
    aggregates = [u for u in ids if u not in set(bottom)]
    empty = [u for u in aggregates if not matrix[row_of[u]].any()]
    if empty:
        msg = (f"S: aggregate rows {empty[:_SHOW]} sum no bottom series (all zeros); each aggregate row needs a 1 "
               f"in the column of at least one bottom series ({len(empty)} rows so)")
        raise InvalidInputError(msg, field="S", details={"rows": empty[:50]})
    order = [*aggregates, *bottom]
    matrix = matrix[[row_of[u] for u in order]]
    levels = _matrix_levels(matrix, order, bottom, tags)
    return Hierarchy(S=matrix, ids=tuple(order), bottom=bottom, tags=levels,
                     strict=tags is not None and _is_nested(matrix, order, levels))


def _check_entries(matrix: np.ndarray, ids: list[str], bottom: tuple[str, ...]) -> None:
    """Refuse empty entries and weights other than 0/1 in ``S``, naming the rows and columns."""
    for what, mask in (("empty entries (null)", np.isnan(matrix)),
                       ("values other than 0 and 1", ~np.isnan(matrix) & ~np.isin(matrix, (0.0, 1.0)))):
        rows, cols = np.nonzero(mask)
        if rows.size:
            where = [f"row {ids[i]!r} column {bottom[j]!r}" + ("" if np.isnan(matrix[i, j]) else f" = {matrix[i, j]:g}")
                     for i, j in zip(rows[:_SHOW], cols[:_SHOW], strict=True)]
            bad_rows = list(dict.fromkeys(ids[i] for i in rows))
            bad_cols = list(dict.fromkeys(bottom[j] for j in cols))
            msg = (f"S: {what} at {', '.join(where)} ({rows.size} entries in rows {bad_rows[:_SHOW]}, columns "
                   f"{bad_cols[:_SHOW]}); a summing matrix holds only 0 and 1 (1: the bottom series of the column "
                   f"adds into the row's series)")
            raise InvalidInputError(msg, field="S", details={"rows": bad_rows[:50], "columns": bad_cols[:50]})


def _matrix_levels(matrix: np.ndarray, ids: list[str], bottom: tuple[str, ...],
                   tags: Mapping[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    row_of = {u: i for i, u in enumerate(ids)}
    if tags is None:
        full = [u for u in ids[: len(ids) - len(bottom)] if matrix[row_of[u]].all()]
        rest = tuple(u for u in ids[: len(ids) - len(bottom)] if u not in full)
        return {**({"total": tuple(full)} if full else {}), **({"aggregate": rest} if rest else {}), "bottom": bottom}
    levels: dict[str, tuple[str, ...]] = {}
    for name, members in tags.items():
        members = tuple(str(m) for m in members)
        unknown = [m for m in members if m not in row_of]
        if unknown:
            msg = f"tags: level {name!r} names rows {unknown[:_SHOW]} that are not in S"
            raise InvalidInputError(msg, field="tags", details={"level": name, "rows": unknown[:50]})
        cover = matrix[[row_of[m] for m in members]].sum(axis=0) if members else np.zeros(len(bottom))
        twice = [b for j, b in enumerate(bottom) if cover[j] > 1]
        if twice:
            rows = [m for m in members if matrix[row_of[m], bottom.index(twice[0])]]
            msg = (f"S: bottom series {twice[0]!r} is in two parents of level {name!r}: rows {rows} "
                   f"({len(twice)} series so: {twice[:_SHOW]})")
            raise InvalidInputError(msg, field="S", details={"level": name, "rows": rows, "series": twice[:50]})
        none = [b for j, b in enumerate(bottom) if cover[j] == 0]
        if none:
            msg = (f"S: level {name!r} misses bottom series {none[:_SHOW]} ({len(none)}): every level must "
                   f"cover every bottom series once")
            raise InvalidInputError(msg, field="S", details={"level": name, "series": none[:50]})
        levels[str(name)] = members
    if tuple(levels.get("bottom", ())) != bottom:
        levels.pop("bottom", None)
        levels["bottom"] = bottom
    _one_level(levels, field="tags")
    untagged = [u for u in ids if u not in {m for ms in levels.values() for m in ms}]
    if untagged:
        msg = f"tags: rows {untagged[:_SHOW]} of S are in no level"
        raise InvalidInputError(msg, field="tags", details={"rows": untagged[:50]})
    return levels


def _one_level(levels: Mapping[str, Sequence[str]], *, field: str) -> None:
    """Refuse an id listed in two levels (hierarchicalforecast's tags partition the series)."""
    seen: dict[str, list[str]] = {}
    for name, members in levels.items():
        for m in dict.fromkeys(members):
            seen.setdefault(m, []).append(name)
    twice = {m: names for m, names in seen.items() if len(names) > 1}
    if not twice:
        return
    shown = "; ".join(f"{m!r} in {names}" for m, names in list(twice.items())[:_SHOW])
    if field == "tags":
        hint = ("each series belongs to exactly one level: to show a series at a level above its own, give it "
                "another row of S under a new id (the same 1s) and list that id in the upper level")
    else:
        hint = ("two levels produce the same aggregate id: rename the values so that they differ between the "
                "columns (for example prefix them with the column name, 'purpose:NSW')")
    msg = f"{field}: series in more than one level: {shown} ({len(twice)} ids); {hint}"
    raise InvalidInputError(msg, field=field, details={"ids": list(twice)[:50],
                                                       "levels": {m: n for m, n in list(twice.items())[:50]}})


def _is_nested(matrix: np.ndarray, ids: list[str], tags: Mapping[str, Sequence[str]]) -> bool:
    """Every series of a level lies inside one series of the level above (levels top first)."""
    row_of = {u: i for i, u in enumerate(ids)}
    names = list(tags)
    for upper, lower in itertools.pairwise(names):
        up = matrix[[row_of[u] for u in tags[upper]]]
        for child in tags[lower]:
            row = matrix[row_of[child]].astype(bool)
            if not any(np.array_equal(row & p.astype(bool), row) for p in up):
                return False
    return True


def check_bottom_ids(frame: pl.DataFrame, structure: Hierarchy) -> None:
    """Refuse a frame whose series are not exactly the structure's bottom series.

    Raises
    ------
    InvalidInputError
        Naming the series missing from the data and those the structure does not have.
    """
    have = set(frame["unique_id"].cast(pl.String).unique().to_list())
    missing = [b for b in structure.bottom if b not in have]
    extra = sorted(have - set(structure.bottom))
    if missing or extra:
        msg = (f"data: the series differ from the structure's bottom series: missing from the data "
               f"{missing[:_SHOW]}, not in the structure {extra[:_SHOW]}")
        raise InvalidInputError(msg, field="data", details={"missing": missing[:50], "extra": extra[:50]})


# --------------------------------------------------------------------------- reconciliation
def _reconciler(method: str, structure: Hierarchy, middle_level: str | None) -> Any:
    from hierarchicalforecast.methods import BottomUp, MiddleOut, MinTrace, TopDown

    if method in STRICT_METHODS and not structure.strict:
        msg = (f"method {method!r} needs a strictly nested hierarchy (each series has one parent per level); "
               f"this structure is grouped (crossed columns or a summing matrix without nested tags): use "
               f"bottom_up, ols, wls_struct, wls_var or mint_shrink")
        raise CapabilityError(msg, field="methods", details={"method": method})
    if method == "bottom_up":
        return BottomUp()
    if method == "top_down":
        return TopDown(method="forecast_proportions")
    if method == "middle_out":
        middle = middle_level or next((t for t in list(structure.tags)[1:-1]), None)
        if middle is None or middle not in structure.tags or middle in (list(structure.tags)[0], "bottom"):
            msg = (f"middle_out: middle_level must be a level between the top and the bottom, one of "
                   f"{list(structure.tags)[1:-1]}; got {middle_level!r}")
            raise InvalidParameterError(msg, field="middle_level")
        return MiddleOut(middle_level=middle, top_down_method="forecast_proportions")
    return MinTrace(method=method)


def validate_methods(methods: Sequence[str]) -> list[str]:
    """The method names, checked against :data:`METHODS`.

    Raises
    ------
    InvalidParameterError
        An unknown name (listing the known ones) or none.
    """
    names = [str(m) for m in methods]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        what = f"unknown reconciliation method {unknown[0]!r}" if unknown else "give at least one"
        msg = f"methods: {what}; known: {list(METHODS)}"
        raise InvalidParameterError(msg, field="methods")
    return list(dict.fromkeys(names))


def reconcile(base: pl.DataFrame, structure: Hierarchy, *, alias: str, methods: Sequence[str],
              level: Sequence[float] = (), fitted: pl.DataFrame | None = None,
              middle_level: str | None = None) -> tuple[pl.DataFrame, list[str]]:
    """Reconcile base forecasts of every series with hierarchicalforecast's ``HierarchicalReconciliation``.

    Parameters
    ----------
    base : pl.DataFrame
        ``unique_id, ds, <alias>[, <alias>-lo-<L>, <alias>-hi-<L>]``: ``h`` rows for each series of
        ``structure.ids``.
    structure : Hierarchy
    alias : str
        The base forecast column.
    methods : names from :data:`METHODS`
    level : numbers in (0, 100), percent
        Interval levels: reconciled intervals by the normal approximation (hierarchicalforecast's
        ``intervals_method="normality"``, Panagiotelis et al. 2023) for the methods that support it
        (bottom-up and the MinT family); top-down and middle-out give points only (noted).
    fitted : pl.DataFrame, optional
        ``unique_id, ds, y, <alias>``: in-sample fitted values of every series; required by ``wls_var`` and
        ``mint_shrink`` (their residual variances / covariance).
    middle_level : str, optional
        ``middle_out``'s level (default: the first level below the top).

    Returns
    -------
    (pl.DataFrame, list of str)
        ``unique_id, ds, <alias>`` then, per method, ``<alias>/<method>`` (and its ``-lo-<L>``/``-hi-<L>``
        columns where supported); and notes.

    Raises
    ------
    InvalidParameterError
        Unknown method or middle level.
    CapabilityError
        Top-down or middle-out on a grouped structure; ``wls_var``/``mint_shrink`` without fitted values.
    """
    from hierarchicalforecast.core import HierarchicalReconciliation

    names = validate_methods(methods)
    if fitted is None and INSAMPLE_METHODS & set(names):
        msg = (f"methods {sorted(INSAMPLE_METHODS & set(names))} need the base model's in-sample fitted values; "
               f"its forecasts come without them: use a statistical model such as 'auto_ets', or other methods")
        raise CapabilityError(msg, field="methods")
    reconcilers = [_reconciler(m, structure, middle_level) for m in names]
    tags = {k: np.asarray(v, dtype=object) for k, v in structure.tags.items()}
    S_df = structure.S_frame().to_pandas()
    hat = base.to_pandas()
    insample = None
    if fitted is not None:
        insample = fitted.select("unique_id", "ds", "y", pl.col(alias).fill_null(pl.col("y"))).to_pandas()
    notes: list[str] = []
    with_intervals = [m for m in names if m not in STRICT_METHODS] if level else []
    frames = []
    for group, levels in ((with_intervals, list(level)), ([m for m in names if m not in with_intervals], None)):
        if not group:
            continue
        rec = HierarchicalReconciliation([reconcilers[names.index(m)] for m in group])
        cols = [alias] if levels is None else [c for c in base.columns if c.startswith(alias)]
        out = rec.reconcile(Y_hat_df=hat[["unique_id", "ds", *cols]], tags=tags, S_df=S_df, Y_df=insample,
                            level=levels, intervals_method="normality")
        frames.append(_rename(pl.from_pandas(out), alias, group, [reconcilers[names.index(m)] for m in group]))
    if level and any(m in STRICT_METHODS for m in names):
        notes.append(f"top-down and middle-out give reconciled points only: no intervals for "
                     f"{[m for m in names if m in STRICT_METHODS]}")
    result = base.select("unique_id", "ds", *[c for c in base.columns if c.startswith(alias)])
    for f in frames:
        result = result.join(f, on=["unique_id", "ds"], how="left")
    ordered = [alias, *[c for c in result.columns if c.startswith(alias + "-")]]
    for m in names:
        ordered.extend(c for c in result.columns if c == f"{alias}/{m}" or c.startswith(f"{alias}/{m}-"))
    return result.select("unique_id", "ds", *ordered), notes


def _rename(frame: pl.DataFrame, alias: str, group: list[str], reconcilers: list[Any]) -> pl.DataFrame:
    """hierarchicalforecast's ``<alias>/<reconciler name>...`` columns to ``<alias>/<method>...``."""
    from hierarchicalforecast.core import _build_fn_name  # the library's own column naming

    mapping: dict[str, str] = {}
    for m, rec in zip(group, reconcilers, strict=True):
        prefix = f"{alias}/{_build_fn_name(rec)}"
        for c in frame.columns:
            if c == prefix or c.startswith(f"{prefix}-"):
                mapping[c] = f"{alias}/{m}" + c[len(prefix):]
    return frame.select("unique_id", "ds", *mapping).rename(mapping)


# --------------------------------------------------------------------------- checks and scores
def coherence_error(frame: pl.DataFrame, structure: Hierarchy, column: str) -> float:
    """Largest relative gap between each aggregate forecast and the sum of its bottom forecasts.

    ``max |y_agg - S_agg @ y_bottom| / max(1, |y_agg|)`` over every aggregate series and step.

    Parameters
    ----------
    frame : pl.DataFrame
        ``unique_id, ds, <column>`` for every series of the structure.

    Returns
    -------
    float
        0 for perfectly coherent forecasts (reconciled forecasts: below 1e-6).
    """
    wide = frame.select("unique_id", "ds", column).pivot(on="unique_id", index="ds", values=column).sort("ds")
    values = wide.select(list(structure.ids)).to_numpy()  # (h, n_series)
    bottom = values[:, -len(structure.bottom):]
    implied = bottom @ structure.S.T
    gap = np.abs(values - implied) / np.maximum(1.0, np.abs(values))
    return float(gap.max()) if gap.size else 0.0


def level_scores(forecasts: pl.DataFrame, actuals: pl.DataFrame, train: pl.DataFrame, structure: Hierarchy, *,
                 columns: Sequence[str], season_length: int) -> pl.DataFrame:
    """MASE and RMSE of each forecast column at each level (series means within a level), fpp3 ch. 11.

    Parameters
    ----------
    forecasts : pl.DataFrame
        ``unique_id, ds, <columns...>`` for every series of the structure.
    actuals, train : pl.DataFrame
        ``unique_id, ds, y``: the held-out and the training rows of every series.
    columns : forecast columns to score (the base ``alias`` and ``alias/<method>``)
    season_length : int
        MASE's scaling lag (4 for quarterly data).

    Returns
    -------
    pl.DataFrame
        ``level, method, mase, rmse``: one row per (level, column), levels top first, then ``all``; a
        series whose training part is exactly periodic (MASE scale 0) is left out of MASE only.
    """
    from forecasting.evaluation import series_scores

    scores = series_scores(forecasts, actuals, train, models=list(columns), season_length=season_length,
                           unscaled="null")
    levels = pl.DataFrame({"unique_id": list(structure.level_of), "level": list(structure.level_of.values())})
    joined = scores.join(levels, on="unique_id", how="left")
    order = {name: i for i, name in enumerate([*structure.tags, "all"])}
    per_level = joined.group_by("level", "model").agg(pl.col("mase").mean(), pl.col("rmse").mean())
    overall = joined.group_by("model").agg(pl.col("mase").mean(), pl.col("rmse").mean()).with_columns(
        pl.lit("all").alias("level"))
    table = pl.concat([per_level, overall.select(per_level.columns)])
    method_order = {c: i for i, c in enumerate(columns)}
    return (table.with_columns(pl.col("level").replace_strict(order).alias("_l"),
                               pl.col("model").replace_strict(method_order).alias("_m"))
            .sort("_l", "_m").drop("_l", "_m").rename({"model": "method"}).select("level", "method", "mase", "rmse"))
