"""Issue 17, item 1: hierarchical and grouped reconciliation over every door.

Coherence of every method (within 1e-6 relative), OLS checked by hand, columns versus an explicit
summing matrix, bad structures as typed errors / 422s naming the rows, the prison per-level
table from the harness (fpp3 ch. 11.7), the CLI and the HTTP ``hierarchy`` field.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting import hierarchy as hh
from forecasting.errors import CapabilityError, InvalidInputError, InvalidParameterError
from forecasting.service.hierarchy import backtest_hierarchy, forecast_hierarchy


def tourism_like(n: int = 16) -> pl.DataFrame:
    """8 bottom series: 2 states x 2 regions (nested) x 2 purposes (crossed), trend + noise, integer ds."""
    rng = np.random.default_rng(0)
    rows = []
    for state in ("N", "V"):
        for region in ("r1", "r2"):
            for purpose in ("biz", "hol"):
                base = 50 + 10 * len(rows)
                y = base + np.cumsum(rng.normal(1.0, 3.0, n))
                rows.append(pl.DataFrame({"unique_id": f"{state}-{region}-{purpose}", "ds": np.arange(n),
                                          "y": y, "state": state, "region": region, "purpose": purpose}))
    return pl.concat(rows)


def test_columns_build_the_levels_and_the_summing_matrix() -> None:
    st = hh.from_columns(tourism_like(), hierarchy="state/region", group="purpose")
    assert {k: len(v) for k, v in st.tags.items()} == {
        "total": 1, "state": 2, "purpose": 2, "state/region": 4, "state/purpose": 4, "bottom": 8}
    assert st.S.shape == (21, 8) and not st.strict
    row = st.S[st.ids.index("V/hol")]
    assert [b for b, v in zip(st.bottom, row, strict=True) if v] == ["V-r1-hol", "V-r2-hol"]
    nested = hh.from_columns(tourism_like(), hierarchy=["state", "region"])
    assert nested.strict and list(nested.tags) == ["total", "state", "state/region", "bottom"]


def test_ols_by_hand() -> None:
    """Total = a + b; base 33, 10, 20: OLS gives b~ = (S'S)^-1 S' y^ = (11, 21), total 32 (fpp3 11.4)."""
    st = hh.from_columns(pl.DataFrame({"unique_id": ["a", "b"], "g": ["x", "x"]}), hierarchy="g")
    # the single-value level 'g' duplicates the total: S rows Total, x, a, b
    base = pl.DataFrame({"unique_id": ["Total", "x", "a", "b"], "ds": [1] * 4, "M": [33.0, 33.0, 10.0, 20.0]})
    out, _ = hh.reconcile(base, st, alias="M", methods=["ols", "bottom_up"])
    got = dict(zip(out["unique_id"], out["M/ols"], strict=True))
    # S'S = [[3, 2], [2, 3]], S'y^ = (76, 86): b~ = (3*76 - 2*86, 3*86 - 2*76) / 5 = (11.2, 21.2)
    assert got["a"] == pytest.approx(11.2) and got["b"] == pytest.approx(21.2)
    assert got["Total"] == pytest.approx(32.4) and got["x"] == pytest.approx(32.4)
    assert dict(zip(out["unique_id"], out["M/bottom_up"], strict=True))["Total"] == pytest.approx(30.0)


@pytest.mark.parametrize(("structure", "methods"), [
    ({"hierarchy": "state/region"}, list(hh.METHODS)),
    ({"hierarchy": "state/region", "group": "purpose"}, ["bottom_up", "ols", "wls_struct", "wls_var", "mint_shrink"]),
])
def test_every_method_is_coherent(structure: dict[str, str], methods: list[str]) -> None:
    result = forecast_hierarchy(tourism_like(), model="auto_ets", h=4, methods=methods, level=[80], n_jobs=1,
                                **structure)
    assert set(result.coherence) == {"AutoETS", *[f"AutoETS/{m}" for m in methods]}
    for m in methods:
        assert result.coherence[f"AutoETS/{m}"] < 1e-6, m
        # the same check by hand on one aggregate: the total is the sum of the bottom series
        f = result.forecasts
        total = f.filter(pl.col("unique_id") == "Total")[f"AutoETS/{m}"].to_numpy()
        bottom = f.filter(pl.col("level") == "bottom").group_by("ds").agg(pl.col(f"AutoETS/{m}").sum()).sort("ds")
        np.testing.assert_allclose(total, bottom[f"AutoETS/{m}"].to_numpy(), rtol=1e-6)
    assert result.coherence["AutoETS"] > 1e-3  # the base forecasts were not coherent
    assert {"AutoETS/bottom_up-lo-80", "AutoETS/mint_shrink-hi-80"} <= set(result.forecasts.columns)
    assert result.forecasts.height == len(result.structure.ids) * 4


def test_columns_and_summing_matrix_give_the_same_result() -> None:
    data = tourism_like()
    st = hh.from_columns(data, hierarchy="state/region", group="purpose")
    kw = {"model": "naive", "h": 3, "methods": ["bottom_up", "ols", "wls_struct", "mint_shrink"], "n_jobs": 1}
    by_columns = forecast_hierarchy(data, hierarchy="state/region", group="purpose", **kw)
    by_matrix = forecast_hierarchy(data.select("unique_id", "ds", "y"), S=st.S_frame(), tags=st.tags, **kw)
    assert by_matrix.structure.ids == by_columns.structure.ids
    cols = [c for c in by_columns.forecasts.columns if c != "level"]
    assert by_matrix.forecasts.select(cols).equals(by_columns.forecasts.select(cols))
    untagged = forecast_hierarchy(data.select("unique_id", "ds", "y"), S=st.S_frame().sample(fraction=1.0, seed=1,
                                                                                             shuffle=True), **kw)
    np.testing.assert_allclose(untagged.forecasts.sort("unique_id", "ds")["Naive/mint_shrink"].to_numpy(),
                               by_columns.forecasts.sort("unique_id", "ds")["Naive/mint_shrink"].to_numpy(), rtol=1e-9)


def test_bottom_series_in_two_parents_is_refused_naming_the_rows() -> None:
    data = tourism_like().with_row_index("i").with_columns(
        pl.when(pl.col("i") == 20).then(pl.lit("V")).otherwise(pl.col("state")).alias("state")).drop("i")
    with pytest.raises(InvalidInputError) as err:
        hh.from_columns(data, hierarchy="state/region")
    assert str(err.value).startswith("data: bottom series 'N-r1-hol' is in two parents of 'state': 'N' (row 16), "
                                     "'V' (row 20)")


def test_missing_level_and_unknown_column_are_refused() -> None:
    data = tourism_like().with_row_index("i").with_columns(
        pl.when(pl.col("i") == 3).then(None).otherwise(pl.col("region")).alias("region")).drop("i")
    with pytest.raises(InvalidInputError, match=r"column 'region' is empty in 1 rows \(rows \[3\], series "
                                                r"\['N-r1-biz'\]\)"):
        hh.from_columns(data, hierarchy="state/region")
    with pytest.raises(InvalidInputError, match="group: column 'purpos' is not in the data") as err:
        hh.from_columns(tourism_like(), hierarchy="state", group="purpos")
    assert err.value.field == "group"
    with pytest.raises(InvalidParameterError, match="both in hierarchy and in group"):
        hh.from_columns(tourism_like(), hierarchy="state", group="state")


def test_bad_summing_matrices() -> None:
    S = pl.DataFrame({"unique_id": ["T", "A", "B", "a", "b", "c"], "a": [1, 1, 1, 1, 0, 0], "b": [1, 1, 0, 0, 1, 0],
                      "c": [1, 0, 1, 0, 0, 1]})
    with pytest.raises(InvalidInputError, match=r"S: bottom series 'a' is in two parents of level 'mid': rows "
                                                r"\['A', 'B'\]"):
        hh.from_matrix(S, tags={"total": ["T"], "mid": ["A", "B"], "bottom": ["a", "b", "c"]})
    good = S.with_columns(pl.Series("a", [1, 1, 0, 1, 0, 0]))
    with pytest.raises(InvalidInputError, match=r"S: level 'mid' misses bottom series \['c'\]"):
        hh.from_matrix(good, tags={"total": ["T"], "mid": ["A"], "bottom": ["a", "b", "c"]})
    with pytest.raises(InvalidInputError, match=r"S: bottom series \['c'\] have no row of their own"):
        hh.from_matrix(good.filter(pl.col("unique_id") != "c"))
    assert hh.from_matrix(good, tags={"total": ["T"], "mid": ["A", "B"], "bottom": ["a", "b", "c"]}).strict


def test_methods_the_structure_or_model_cannot_do() -> None:
    data = tourism_like()
    with pytest.raises(CapabilityError, match="'top_down' needs a strictly nested hierarchy"):
        forecast_hierarchy(data, hierarchy="state", group="purpose", model="naive", h=2, methods=["top_down"],
                           n_jobs=1)
    with pytest.raises(CapabilityError, match="model 'xgboost' cannot give in-sample fitted values"):
        forecast_hierarchy(data, hierarchy="state", model="xgboost", h=2, methods=["mint_shrink"], n_jobs=1)
    with pytest.raises(InvalidParameterError, match="methods: unknown reconciliation method 'mint'"):
        forecast_hierarchy(data, hierarchy="state", model="naive", h=2, methods=["mint"])


def test_http_hierarchy_field_and_422s(tmp_path: Path) -> None:
    from litestar.testing import TestClient

    from forecasting.api.app import create_app
    from forecasting.api.settings import Settings

    data = tourism_like(8).with_columns(pl.col("ds").cast(pl.Int64))
    body = {"data": data.to_dict(as_series=False), "h": 2, "model": "naive",
            "hierarchy": {"nested": "state/region", "methods": ["bottom_up", "ols", "top_down"]}}
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        r = c.post("/v1/forecast", json=body)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["hierarchy"]["methods"] == ["bottom_up", "ols", "top_down"]
        assert max(out["hierarchy"]["coherence"][f"Naive/{m}"] for m in ("bottom_up", "ols", "top_down")) < 1e-6
        assert len(out["forecasts"]) == 15 * 2 and out["forecasts"][0]["unique_id"] == "Total"
        bad = {**body, "hierarchy": {"nested": "state/regio"}}
        r = c.post("/v1/forecast", json=bad)
        assert r.status_code == 422 and r.json()["field"] == "hierarchy"
        assert "column 'regio' is not in the data" in r.json()["detail"]
        two = data.with_row_index("i").with_columns(pl.when(pl.col("i") == 5).then(pl.lit("V"))
                                                    .otherwise(pl.col("state")).alias("state")).drop("i")
        r = c.post("/v1/forecast", json={**body, "data": two.to_dict(as_series=False)})
        assert r.status_code == 422 and "bottom series 'N-r1-biz' is in two parents of 'state'" in r.json()["detail"]
        assert "(row 5)" in r.json()["detail"]


def test_cli_hierarchy(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from forecasting.cli import app

    path = tmp_path / "bottom.csv"
    tourism_like(10).write_csv(path)
    out = tmp_path / "rec.csv"
    res = CliRunner().invoke(app, ["hierarchy", "--input", str(path), "--hierarchy", "state/region", "--group", "purpose",
                                   "--model", "naive", "--h", "2", "--methods", "bottom_up,ols",
                                   "--output", str(out)])
    assert res.exit_code == 0, res.output
    frame = pl.read_csv(out)
    assert frame.height == 21 * 2 and {"Naive/bottom_up", "Naive/ols", "level"} <= set(frame.columns)
    assert "coherence" in res.output
    bad = CliRunner().invoke(app, ["hierarchy", "--input", str(path), "--group", "purpos", "--model", "naive", "--h", "2"])
    assert bad.exit_code != 0 and "column 'purpos' is not in the data" in bad.output


PRISON = Path(os.environ.get("FORECASTING_DATA_DIR", "datasets")) / "prison" / "prison_population.csv"


@pytest.mark.skipif(not PRISON.exists(), reason=f"prison data absent ({PRISON})")
def test_prison_per_level_table_from_the_harness() -> None:
    from forecasting.benchmarks.harness import run_hierarchy_benchmark
    from forecasting.benchmarks.hierarchy_prison import PRISON_GROUP, load_prison

    data = load_prison(PRISON.parent.parent)
    table = run_hierarchy_benchmark(data, models=["naive"], h=8, group=list(PRISON_GROUP),
                                    methods=["bottom_up", "ols", "mint_shrink"])
    assert table["level"].unique(maintain_order=True).to_list() == [
        "total", "state", "gender", "legal", "state/gender", "state/legal", "gender/legal", "state/gender/legal",
        "bottom", "all"]
    assert table.height == 10 * 4
    # naive forecasts of the aggregates are the sums of the bottom ones (coherent already): every method leaves them
    top = table.filter(pl.col("level") == "total")
    assert top["rmse"].to_list() == pytest.approx([top["rmse"][0]] * 4)
    bt = backtest_hierarchy(data, group=list(PRISON_GROUP), model="naive", h=8, methods=["bottom_up"], n_jobs=1)
    # the total's naive forecast is its 2014 Q4 value: 33,986 prisoners... check against the data itself
    total_last = data.filter(pl.col("ds") == pl.date(2014, 12, 1))["y"].sum()
    f = bt.result.forecasts.filter(pl.col("unique_id") == "Total")
    assert f["Naive"].to_list() == [total_last] * 8
    assert len(bt.result.structure.ids) == 145


def test_library_door_keeps_the_callers_names_and_frame_kind() -> None:
    import forecasting as fc

    df = tourism_like().rename({"unique_id": "sid", "ds": "t", "y": "v"}).to_pandas()
    result = fc.forecast_hierarchy(df, hierarchy="state/region", model="naive", h=2, id_col="sid", time_col="t",
                                   target_col="v", methods=["bottom_up", "top_down", "middle_out"], n_jobs=1)
    assert list(result.forecasts.columns) == ["sid", "level", "t", "Naive", "Naive/bottom_up", "Naive/top_down",
                                              "Naive/middle_out"]
    assert max(result.coherence[f"Naive/{m}"] for m in ("bottom_up", "top_down", "middle_out")) < 1e-6
    # naive's last values are coherent: top-down proportions give back the bottom series' own last values
    last = tourism_like().filter(pl.col("ds") == 15)
    got = result.forecasts[result.forecasts["sid"] == "V-r2-hol"]["Naive/top_down"].to_numpy()
    np.testing.assert_allclose(got, [last.filter(pl.col("unique_id") == "V-r2-hol")["y"][0]] * 2, rtol=1e-9)
