"""Regressions found by trying the new work as a hostile client (tester T1, issues 14 and 17)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from forecasting.errors import InvalidInputError, InvalidParameterError
from forecasting.hierarchy import from_columns


def _frame(rows: list[tuple[str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame({"unique_id": [u for u, _, _ in rows], "state": [s for _, s, _ in rows],
                         "region": [r for _, _, r in rows], "ds": [0] * len(rows), "y": [1.0] * len(rows)})


def test_values_with_the_separator_that_join_to_one_aggregate_id_are_refused() -> None:
    # state 'A' + region 'B/C' and state 'A/B' + region 'C' were silently merged into one aggregate 'A/B/C'
    frame = _frame([("u1", "A", "B/C"), ("u2", "A/B", "C"), ("u3", "A", "D")])
    with pytest.raises(InvalidInputError) as err:
        from_columns(frame, hierarchy="state/region")
    assert str(err.value) == ("data: values of ['state', 'region'] contain '/', so different combinations join "
                              "to the same aggregate id ['A/B/C']; remove '/' from the values")
    assert err.value.field == "data"


def test_a_slash_in_values_that_joins_to_distinct_ids_is_kept() -> None:
    frame = _frame([("u1", "A", "B/C"), ("u2", "A", "B/C"), ("u3", "A", "D"), ("u4", "E", "F")])
    structure = from_columns(frame, hierarchy="state/region")
    assert structure.tags["state/region"] == ("A/B/C", "A/D", "E/F")


@pytest.mark.parametrize("column", ["unique_id", "ds", "y"])
def test_the_id_time_or_target_column_is_not_a_structure_column(column: str) -> None:
    # hierarchy 'unique_id' was a 500 (polars DuplicateError); 'ds' and 'y' a misleading "two parents"
    frame = _frame([("u1", "A", "B"), ("u2", "A", "C")])
    with pytest.raises(InvalidParameterError) as err:
        from_columns(frame, hierarchy=column)
    assert str(err.value) == f"hierarchy: column {column!r} is the series id, time or target, not a structure column"
    assert err.value.field == "hierarchy"


def test_a_batch_input_that_is_not_parquet_is_an_input_error(tmp_path: Path) -> None:
    # a corrupt or 0-byte file was a polars ComputeError traceback from `forecasting batch`
    from forecasting.service.batch import plan_partitions

    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"")
    with pytest.raises(InvalidInputError) as err:
        plan_partitions([bad])
    assert str(err.value) == ("batch input: cannot read it as one Parquet data set (parquet: File out of "
                              "specification: A Parquet file must contain a header and footer with at least 12 bytes)")
    assert err.value.field == "data"


def test_prophet_fits_print_no_cmdstanpy_lines() -> None:
    # the first fit printed "cmdstanpy - INFO - Chain [1] start processing" (non-JSON lines in the server's log):
    # cmdstanpy's get_logger() set its logger back to DEBUG with its own handler after _quiet() had silenced it
    pytest.importorskip("prophet")
    import logging

    from forecasting.models import make_model

    logger = logging.getLogger("cmdstanpy")
    saved = (logger.level, logger.propagate, list(logger.handlers))
    logger.propagate, logger.handlers[:] = False, []  # as in a process whose root logger has no handler
    try:
        frame = pl.DataFrame({"unique_id": ["a"] * 10, "ds": list(range(10)), "y": [float(i) for i in range(10)]})
        make_model("prophet", freq=1).fit(frame)
        assert logger.level == logging.CRITICAL
    finally:
        logger.level, logger.propagate, logger.handlers[:] = saved[0], saved[1], saved[2]
