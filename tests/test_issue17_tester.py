"""Regression tests for what a tester found in issues 14 and 17 (hierarchy, batch, logs, messages, schema)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from forecasting.cli import app as cli
from forecasting.errors import InsufficientHistoryError, InvalidInputError, InvalidParameterError, NotFoundError
from forecasting.hierarchy import METHODS, from_columns, from_matrix
from forecasting.service.batch import batch_forecast
from forecasting.service.core import Limits
from forecasting.service.hierarchy import backtest_hierarchy, forecast_hierarchy

N = 12
BOTTOM = pl.DataFrame({"unique_id": np.repeat(["a", "b", "c"], N).tolist(), "ds": list(range(N)) * 3,
                       "y": [float(i % 4 + 1) for i in range(3 * N)]})
S_ROWS = {"unique_id": ["T", "ab", "a", "b", "c"], "a": [1, 1, 1, 0, 0], "b": [1, 1, 0, 1, 0], "c": [1, 0, 0, 0, 1]}
ONE_LEVEL_HINT = ("each series belongs to exactly one level: to show a series at a level above its own, give it "
                  "another row of S under a new id (the same 1s) and list that id in the upper level")


def _client(tmp_path: Path) -> Any:
    from litestar.testing import TestClient

    from forecasting.api.app import create_app
    from forecasting.api.settings import Settings

    return TestClient(create_app(Settings(state_dir=tmp_path)))


# --------------------------------------------------------------------------- 1. each id in exactly one level
def test_middle_out_with_a_bottom_series_in_the_middle_level_is_refused_naming_it() -> None:
    tags = {"total": ["T"], "mid": ["ab", "c"], "bottom": ["a", "b", "c"]}
    with pytest.raises(InvalidInputError) as err:  # was an IndexError in hierarchicalforecast's _get_child_nodes
        forecast_hierarchy(BOTTOM, S=S_ROWS, tags=tags, model="naive", h=2, methods=["middle_out"],
                           middle_level="mid", n_jobs=1)
    assert err.value.field == "tags" and err.value.details["ids"] == ["c"]
    assert str(err.value) == f"tags: series in more than one level: 'c' in ['mid', 'bottom'] (1 ids); {ONE_LEVEL_HINT}"


def test_the_suggested_fix_of_a_series_shown_at_two_levels_reconciles_middle_out_coherently() -> None:
    S = {"unique_id": ["T", "ab", "c_mid", "a", "b", "c"],  # c_mid: a copy of c's row, shown in the middle level
         "a": [1, 1, 0, 1, 0, 0], "b": [1, 1, 0, 0, 1, 0], "c": [1, 0, 1, 0, 0, 1]}
    tags = {"total": ["T"], "mid": ["ab", "c_mid"], "bottom": ["a", "b", "c"]}
    result = forecast_hierarchy(BOTTOM, S=S, tags=tags, model="naive", h=2, methods=["middle_out"],
                                middle_level="mid", n_jobs=1)
    assert result.coherence["Naive/middle_out"] < 1e-6
    last = result.forecasts.filter(pl.col("ds") == N)
    values = dict(zip(last["unique_id"], last["Naive/middle_out"], strict=True))
    assert values["T"] == pytest.approx(values["a"] + values["b"] + values["c"])
    assert values["c_mid"] == pytest.approx(values["c"])


def test_an_extra_level_repeating_the_total_is_refused_over_http(tmp_path: Path) -> None:
    body = {"data": BOTTOM.to_dict(as_series=False), "h": 2, "model": "naive",
            "hierarchy": {"S": S_ROWS, "tags": {"total": ["T"], "x": ["T"], "mid": ["ab", "c"], "bottom": ["a", "b", "c"]},
                          "methods": ["bottom_up"]}}
    with _client(tmp_path) as c:
        r = c.post("/v1/forecast", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "tags"
    assert r.json()["detail"].startswith("tags: series in more than one level: 'T' in ['total', 'x']; 'c' in "
                                         "['mid', 'bottom'] (2 ids)")


# --------------------------------------------------------------------------- 2. S holds 0/1 only
@pytest.mark.parametrize(("value", "what"), [
    (0.5, "values other than 0 and 1 at row 'ab' column 'a' = 0.5"),
    (-1, "values other than 0 and 1 at row 'ab' column 'a' = -1"),
    (2, "values other than 0 and 1 at row 'ab' column 'a' = 2"),  # was "in two parents"
    (None, "empty entries (null) at row 'ab' column 'a'"),  # was a data.y NaN error
])
def test_summing_matrix_entries_other_than_0_and_1_are_named(value: Any, what: str) -> None:
    S = {**S_ROWS, "a": [1, value, 1, 0, 0]}
    with pytest.raises(InvalidInputError) as err:
        from_matrix(S)
    assert str(err.value) == (f"S: {what} (1 entries in rows ['ab'], columns ['a']); a summing matrix holds only 0 "
                              f"and 1 (1: the bottom series of the column adds into the row's series)")
    assert err.value.field == "S" and err.value.details == {"rows": ["ab"], "columns": ["a"]}


def test_an_all_zero_aggregate_row_is_refused(tmp_path: Path) -> None:
    S = {**S_ROWS, "unique_id": ["T", "z", "a", "b", "c"], "a": [1, 0, 1, 0, 0], "b": [1, 0, 0, 1, 0]}
    body = {"data": BOTTOM.to_dict(as_series=False), "h": 2, "model": "naive", "hierarchy": {"S": S}}
    with _client(tmp_path) as c:
        r = c.post("/v1/forecast", json=body)
    assert r.status_code == 422 and r.json()["field"] == "S"
    assert r.json()["detail"].startswith("S: aggregate rows ['z'] sum no bottom series (all zeros)")


# --------------------------------------------------------------------------- 3. size counted before building
def test_crossed_groups_over_many_series_are_refused_before_the_summing_matrix_is_built() -> None:
    rng = np.random.default_rng(0)
    n, T = 300, 10
    frame = {"unique_id": np.repeat([f"s{i}" for i in range(n)], T), "ds": np.tile(np.arange(T), n),
             "y": rng.random(n * T), **{f"g{k}": np.repeat(np.char.add(f"g{k}=", rng.integers(0, 3, n).astype(str)), T) for k in range(10)}}
    data = pl.DataFrame(frame)
    groups = [f"g{k}" for k in range(10)]
    with pytest.raises(InvalidInputError) as err:  # the server went to 2.4 GB before its 422 on rows
        forecast_hierarchy(data, group=groups, model="naive", h=2, limits=Limits(max_series=10_000))
    assert str(err.value) == ("data: the structure (1024 aggregation levels over 300 bottom series) would build at "
                              "least 10050 series (100500 rows over 10 timestamps); the limit is 10000 series: give "
                              "fewer hierarchy/group columns or fewer series")
    with pytest.raises(InvalidInputError, match=r"make 1024 aggregation levels, more than the limit of 500 series"):
        from_columns(data, group=groups, max_series=500)
    with pytest.raises(InvalidInputError, match=r"at least 300 series \(3000 rows over 10 timestamps\); the limit "
                                                r"is 2000 rows"):
        from_columns(data, group=groups[:2], max_rows=2000)
    assert len(from_columns(data, group=groups[:2], max_series=10_000, max_rows=100_000).ids) == 300 + 1 + 3 + 3 + 9


# --------------------------------------------------------------------------- 6. messages
def test_a_crossed_value_equal_to_a_nested_value_names_both_levels() -> None:
    frame = pl.DataFrame({"unique_id": ["a", "b", "c"], "state": ["NSW", "NSW", "VIC"],
                          "purpose": ["NSW", "Biz", "Biz"]})
    with pytest.raises(InvalidInputError) as err:  # was "duplicate (unique_id, ds) rows in series 'NSW'"
        from_columns(frame, hierarchy="state", group="purpose")
    assert str(err.value) == ("data: series in more than one level: 'NSW' in ['state', 'purpose'] (1 ids); two levels "
                              "produce the same aggregate id: rename the values so that they differ between the "
                              "columns (for example prefix them with the column name, 'purpose:NSW')")


def test_a_backtest_longer_than_the_series_says_they_are_too_short_for_the_hold_out() -> None:
    data = BOTTOM.with_columns(grp=pl.lit("G"))
    with pytest.raises(InsufficientHistoryError) as err:  # was "-6 observations"
        backtest_hierarchy(data, group="grp", model="naive", h=30, n_jobs=1)
    assert err.value.field == "h" and err.value.details["minimum"] == 31
    assert str(err.value) == ("5 series too short for a hold-out of h=30: the last h steps are held out and at least "
                              "one observation must be left to train on, so every series needs more than 30 "
                              "observations (series 'G': 12 observations; series 'Total': 12 observations; series "
                              "'a': 12 observations; series 'b': 12 observations; series 'c': 12 observations); give "
                              "a smaller h")


def test_cli_names_the_summing_matrix_option(tmp_path: Path) -> None:
    path = tmp_path / "bottom.csv"
    BOTTOM.write_csv(path)
    run = CliRunner().invoke(cli, ["hierarchy", "-i", str(path), "--h", "2", "--summing-matrix",
                                   str(tmp_path / "nope.csv"), "--model", "naive"])
    assert run.exit_code == 2
    assert "error [--summing-matrix]: --summing-matrix file '" in run.output and "nope.csv' does not exist" in " ".join(
        run.output.split())


def test_tsmixer_too_short_states_the_minimum_and_that_input_size_was_derived() -> None:
    pytest.importorskip("neuralforecast")
    from forecasting.data import validate_panel
    from forecasting.models.registry import make_model, parse_spec

    panel = validate_panel(BOTTOM.filter(pl.col("unique_id") == "a").head(5))
    model = make_model(parse_spec({"name": "tsmixer", "params": {"horizon": 3, "max_steps": 1}}), freq=panel.freq)
    with pytest.raises(InsufficientHistoryError) as err:
        model.fit(panel)
    assert str(err.value) == ("1 series too short for model 'tsmixer' (needs at least 7 observations: input_size 4 + "
                              "horizon 3 (the smallest input_size derived: a longer shortest series gets a longer "
                              "input_size)): series 'a': 5 observations")


# --------------------------------------------------------------------------- 4. batch
@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    BOTTOM.write_parquet(src / "p0.parquet")
    return src


def test_batch_output_in_or_around_the_input_folder_is_refused(folder: Path) -> None:
    for out in (folder, folder / "out"):
        with pytest.raises(InvalidParameterError) as err:
            batch_forecast(folder, model="naive", h=2, output=out)
        assert err.value.field == "output" and "is the input folder or lies inside it" in str(err.value)
    with pytest.raises(InvalidParameterError, match="holds input files"):
        batch_forecast(folder / "p0.parquet", model="naive", h=2, output=folder.parent)
    assert sorted(p.name for p in folder.iterdir()) == ["p0.parquet"]


def test_batch_registered_without_a_registry_creates_nothing(folder: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("FORECASTING_STATE_DIR", "FORECASTING_DATABASE_URL", "FORECASTING_ARTIFACTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    run = CliRunner().invoke(cli, ["batch", str(folder), "--h", "2", "--registered", "nosuch@1"])
    assert run.exit_code == 2, run.output
    assert "error [registered]: registered: model 'nosuch@1' not found: there is no registry database" in run.output
    assert not (tmp_path / "var").exists()
    from forecasting.service.batch import registered_source

    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(NotFoundError, match="cannot be read as a model registry"):
        registered_source("m@1", tenant="default", database_url=f"sqlite:///{empty}", artifacts_dir=tmp_path)


def test_batch_cli_refuses_model_with_registered_bad_n_jobs_and_an_unwritable_output(folder: Path) -> None:
    runner = CliRunner()
    both = runner.invoke(cli, ["batch", str(folder), "--h", "2", "--model", "naive", "--registered", "m@1"])
    assert both.exit_code == 2 and "error [registered]: give --model or --registered, not both" in both.output
    for n in ("0", "-2"):
        bad = runner.invoke(cli, ["batch", str(folder), "--h", "2", "--model", "naive", "--n-jobs", n])
        assert bad.exit_code == 2 and f"n_jobs must be -1 (every CPU) or an integer >= 1, got {n}" in bad.output
    proc = runner.invoke(cli, ["batch", str(folder), "--h", "2", "--model", "naive", "--output", "/proc/forbidden"])
    assert proc.exit_code == 2 and "error [output]: output folder '/proc/forbidden' cannot be written" in proc.output
    assert "Traceback" not in proc.output


def test_batch_files_with_different_y_types_are_named_at_planning(folder: Path, tmp_path: Path) -> None:
    BOTTOM.with_columns(pl.col("y").cast(pl.Int64), pl.col("unique_id") + "2").write_parquet(folder / "p1.parquet")
    with pytest.raises(InvalidInputError) as err:
        batch_forecast(folder, model="naive", h=2, output=tmp_path / "out")
    assert str(err.value).startswith(f"batch input: column 'y' has different types across files: Float64 in "
                                     f"'{folder / 'p0.parquet'}', Int64 in '{folder / 'p1.parquet'}'")
    assert not (tmp_path / "out").exists()


def test_batch_empty_parquet_is_the_data_contracts_empty_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.parquet"
    BOTTOM.head(0).write_parquet(path)
    with pytest.raises(InvalidInputError, match="^data is empty: at least one row with unique_id, ds and y is needed$"):
        batch_forecast(path, model="naive", h=2, output=tmp_path / "out")


def test_batch_null_y_points_at_the_batch_options_and_fill_missing_fills(tmp_path: Path) -> None:
    path = tmp_path / "nulls.parquet"
    BOTTOM.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("y")).alias("y")) \
        .write_parquet(path)
    with pytest.raises(InvalidInputError, match=r"\(batch: --fill-missing / --fill-gaps on the command line, "
                                                r"fill_missing= / fill_gaps= in batch_forecast\)$"):
        batch_forecast(path, model="naive", h=2, output=tmp_path / "o1")
    with pytest.raises(InvalidParameterError, match="fill_missing must be one of"):
        batch_forecast(path, model="naive", h=2, output=tmp_path / "o2", fill_missing="mean")
    run = CliRunner().invoke(cli, ["batch", str(path), "--h", "2", "--model", "naive", "--fill-missing", "zero",
                                   "--output", str(tmp_path / "o3")])
    assert run.exit_code == 0, run.output
    out = pl.read_parquet(json.loads(run.stdout.strip().splitlines()[-1])["output"])
    assert out.height == 6 and out.filter(pl.col("unique_id") == "a")["Naive"].to_list() == [4.0, 4.0]


# --------------------------------------------------------------------------- 5. logs
def test_unknown_paths_and_wrong_methods_carry_a_request_id_and_an_access_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with _client(tmp_path) as c, caplog.at_level(logging.INFO, logger="forecasting.api.access"):
        missing = c.get("/nope", headers={"X-Request-ID": "r-404"})
        wrong = c.delete("/healthz", headers={"X-Request-ID": "r-405"})
    assert (missing.status_code, missing.headers["x-request-id"]) == (404, "r-404")
    assert (wrong.status_code, wrong.headers["x-request-id"]) == (405, "r-405")
    lines = {r.request_id: r for r in caplog.records if getattr(r, "event", None) == "request"}  # type: ignore[attr-defined]
    assert (lines["r-404"].status, lines["r-404"].path, lines["r-404"].route) == (404, "/nope", "unmatched")  # type: ignore[attr-defined]
    assert (lines["r-405"].status, lines["r-405"].method) == (405, "DELETE")  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- 7. schema
def test_openapi_hierarchy_methods_is_an_enum_of_the_reconciliation_methods(tmp_path: Path) -> None:
    with _client(tmp_path) as c:
        schema = c.get("/schema/openapi.json").json()
        r = c.post("/v1/forecast", json={"data": BOTTOM.to_dict(as_series=False), "h": 2, "model": "naive",
                                         "hierarchy": {"nested": "x", "methods": ["mint"]}})
    methods = schema["components"]["schemas"]["HierarchyIn"]["properties"]["methods"]
    assert methods["items"]["enum"] == list(METHODS) == ["bottom_up", "top_down", "middle_out", "ols", "wls_struct",
                                                         "wls_var", "mint_shrink"]
    assert r.status_code in (400, 422) and "methods" in r.text


# --------------------------------------------------------------------------- 7. README: Prophet against auto_ets
def test_readme_prophet_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README.md's Prophet block runs as written and its figures are the ones it prints."""
    import re
    import shutil

    pytest.importorskip("prophet")
    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text()
    (block,) = re.findall(r"<!-- run by tests/test_issue17_tester.py::test_readme_prophet_example -->\n```python\n"
                          r"(.*?)```", readme, flags=re.S)
    (tmp_path / "datasets").mkdir()
    shutil.copy(repo / "datasets" / "air_passengers.csv", tmp_path / "datasets" / "air_passengers.csv")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    assert {k: round(v, 1) for k, v in scope["mae"].items()} == {"prophet": 33.4, "auto_ets": 35.6}
    assert "{'prophet': 33.4, 'auto_ets': 35.6}" in block
