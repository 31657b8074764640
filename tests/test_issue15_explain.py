"""Issue 15: explanations an analyst can act on, one shape over every door.

AirPassengers (the bundled sample, 144 monthly points) and xgboost: one base value for the model,
the series' level / anchor / scale as named terms, lag features in units of y (the actual value
at that lag), months by name, additivity against the contributions' scale; the same explanation
from the library, the CLI, POST /v1/explain and a registered version; statistical models
explained over HTTP by their labelled decomposition.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import wait_job
from litestar.testing import TestClient
from typer.testing import CliRunner

import forecasting as fc
from forecasting import service
from forecasting.api.app import create_app
from forecasting.api.settings import Settings
from forecasting.cli import app as cli
from forecasting.data import validate_panel
from forecasting.explanation import Explanation
from forecasting.models import make_model

AIR = Path(__file__).resolve().parents[1] / "datasets" / "air_passengers.csv"
SPEC = {"name": "xgboost", "params": {"n_estimators": 40, "max_depth": 4, "conformal_windows": 0, "seed": 0}}
H = 12


@pytest.fixture(scope="module")
def air() -> pl.DataFrame:
    return pl.read_csv(AIR, try_parse_dates=True)


@pytest.fixture(scope="module")
def explained(air: pl.DataFrame) -> Explanation:
    return service.explain(air, model=SPEC, h=H).explanation


def test_one_base_value_for_every_row_and_named_series_terms(explained: Explanation, air: pl.DataFrame):
    # the base value is the model's (mean level of its training series), the same for all 12 rows
    assert np.unique(explained.base_values).tolist() == [pytest.approx(float(air["y"].mean()))]
    series = [n for n, k in zip(explained.feature_names, explained.feature_kinds, strict=True) if k == "series"]
    assert series == ["series level (mean of its history)", "anchor: value 1 step earlier, minus the level",
                      "average change per step (model bias × series scale)"]
    # the anchor of step 1 is the last observation (Dec 1960: 432), of step 2 the step-1 forecast
    j = explained.feature_names.index("anchor: value 1 step earlier, minus the level")
    assert explained.data[0, j] == 432.0
    assert explained.data[1, j] == pytest.approx(explained.output[0])
    assert explained.is_forecast_value is not None
    assert explained.is_forecast_value[:, j].tolist() == [False] + [True] * (H - 1)


def test_lag_values_are_the_actual_y_at_that_lag(explained: Explanation, air: pl.DataFrame):
    y = air["y"].to_numpy().astype(float)
    j = explained.feature_names.index("lag_12")
    for k in range(1, H + 1):  # lag_12 of step k is the observation 12 months earlier
        assert explained.data[k - 1, j] == y[len(y) - 12 + k - 1]
    assert explained.data[6, j] == 622.0  # July 1961 reads July 1960
    # the model's own (scaled, differenced) value is beside it
    assert explained.data_transformed is not None
    assert explained.data_transformed[6, j] == pytest.approx((622 - 535) / float(np.std(y)), rel=1e-5)


def test_months_by_name_and_to_frame_columns(explained: Explanation):
    frame = explained.to_frame().filter((pl.col("step") == 7) & (pl.col("feature") == "month"))
    assert frame["value"].to_list() == [7.0]
    assert frame["value_label"].to_list() == ["Jul"]
    assert frame["kind"].to_list() == ["feature"]


def test_additivity_is_exact_against_the_contributions_scale(explained: Explanation):
    assert explained.additivity_error_relative < 1e-6
    assert explained.additivity_error_relative == pytest.approx(
        explained.additivity_error / np.abs(explained.values).max())


def test_relative_additivity_divides_by_the_largest_contribution_not_the_output():
    # issue 14: an error of 18% of the largest contribution was reported as 0.0018 (divided by the output)
    e = Explanation(values=np.array([[10.0, -2.0]]), base_values=np.array([990.0]), feature_names=["a", "b"],
                    data=np.array([[1.0, 2.0]]), output=np.array([999.8]), rows=pl.DataFrame({"row": [0]}),
                    method="example")
    assert e.additivity_error == pytest.approx(1.8)
    assert e.additivity_error_relative == pytest.approx(0.18)


def test_to_shap_gives_shaps_own_explanation(explained: Explanation):
    import shap

    s = explained.to_shap()
    assert isinstance(s, shap.Explanation)
    np.testing.assert_array_equal(s.values, explained.values)
    np.testing.assert_array_equal(s.base_values, explained.base_values)
    assert s.feature_names == explained.feature_names
    j = explained.feature_names.index("month")
    assert s.display_data[6, j] == "Jul"


def test_batched_contributions_equal_one_call_per_step(air: pl.DataFrame):
    # one pred_contribs call for all steps gives the values of one call per step (TreeSHAP is per row)
    panel = validate_panel(air)
    from forecasting.models.registry import parse_spec
    from forecasting.service.core import resolve

    spec, _ = resolve(parse_spec(SPEC), panel, h=H)
    model = make_model(spec, freq=panel.freq).fit(panel)
    e = model.explain(H, units="model")
    _, steps = model._paths(panel, H, None, scales=model.scales_, collect=True)
    per_step = np.concatenate([model._predict_booster(model.boosters_[0], st.X, pred_contribs=True)[:, :-1]
                               for st in steps])
    np.testing.assert_allclose(e.values, per_step, rtol=0, atol=1e-6)


def test_approximate_mode_says_so_and_stays_additive(air: pl.DataFrame):
    e = service.explain(air, model=SPEC, h=H, approximate=True).explanation
    assert e.method.startswith("approximate Saabas path attributions")
    assert e.additivity_error_relative < 1e-6
    assert np.unique(e.base_values).size == 1


# ---------------------------------------------------------------------------- every door


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(Settings(state_dir=tmp_path_factory.mktemp("state"), max_train_seconds=120))
    with TestClient(app) as c:
        yield c


def _body(air: pl.DataFrame) -> dict[str, Any]:
    return {"unique_id": air["unique_id"].to_list(), "ds": [str(d) for d in air["ds"].to_list()],
            "y": air["y"].cast(pl.Float64).to_list()}


def _register(client: TestClient, name: str, model: Any, air: pl.DataFrame) -> None:
    """Train a registered version through POST /v1/models and wait for its job."""
    r = client.post("/v1/models", json={"name": name, "model": model, "data": _body(air), "h": H})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"])
    assert job["state"] == "succeeded", job


def _by_row(rows: list[dict[str, Any]]) -> dict[int, dict[str, float]]:
    return {r["step"]: {c["feature"]: c["shap"] for c in r["contributions"]} for r in rows}


def test_inline_registered_cli_and_library_agree(client: TestClient, air: pl.DataFrame, explained: Explanation,
                                                 tmp_path: Path):
    k = len(explained.feature_names)
    lib = {int(s): dict(zip(explained.feature_names, explained.values[i].tolist(), strict=True))
           for i, s in enumerate(explained.rows["step"].to_list())}
    # POST /v1/explain (inline)
    r = client.post("/v1/explain", json={"data": _body(air), "model": SPEC, "h": H, "k": k})
    assert r.status_code == 200, r.text
    inline = r.json()
    assert inline["rows"][0]["base_value"] == pytest.approx(explained.base_values[0])
    for step, contribs in _by_row(inline["rows"]).items():
        assert contribs == pytest.approx(lib[step], abs=1e-6)
    lag12 = next(c for c in inline["rows"][6]["contributions"] if c["feature"] == "lag_12")
    assert lag12["value"] == 622.0 and lag12["value_transformed"] is not None and lag12["kind"] == "feature"
    # a registered version of the same spec on the same data
    _register(client, "air", SPEC, air)
    r = client.post("/v1/models/air/explain", json={"h": H, "k": k})
    assert r.status_code == 200, r.text
    for step, contribs in _by_row(r.json()["rows"]).items():
        assert contribs == pytest.approx(lib[step], abs=1e-6)
    # the CLI with the same spec
    out = tmp_path / "shap.csv"
    res = CliRunner().invoke(cli, ["explain", "--model", json.dumps(SPEC), "--input", str(AIR), "--h", str(H),
                                   "--output", str(out)], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert res.exit_code == 0, res.output
    assert "(the same for every row)" in res.stdout
    long = pl.read_csv(out).filter(pl.col("step") == 7)
    assert dict(zip(long["feature"], long["shap"], strict=True)) == pytest.approx(lib[7], abs=1e-6)
    # the library's public function
    pub = fc.explain(air.to_pandas(), model=SPEC, h=H)
    np.testing.assert_allclose(pub.values, explained.values, atol=1e-9)


def test_statistical_model_over_http_is_its_labelled_decomposition(client: TestClient, air: pl.DataFrame):
    r = client.post("/v1/explain", json={"data": _body(air), "model": "mstl", "h": H, "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"].startswith("labelled decomposition (not SHAP) of the MSTL forecast")
    assert body["additivity_error"] < 1e-9
    july = body["rows"][6]
    names = {c["feature"] for c in july["contributions"]}
    assert names == {"level (trend at the last observation, minus the series mean)",
                     "trend (seasonally adjusted forecast, minus that level)", "seasonal"}
    assert july["base_value"] == pytest.approx(float(air["y"].mean()))
    total = july["base_value"] + sum(c["shap"] for c in july["contributions"])
    assert total == pytest.approx(july["output"], abs=1e-9)
    seasonal = next(c for c in july["contributions"] if c["feature"] == "seasonal")
    assert seasonal["shap"] > 50  # July is a peak month: the seasonal term lifts the forecast


def test_explain_bench_prints_the_ratio(data_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]):
    """benchmarks/explain_bench.py runs (5 series, 20 trees) and prints the ratio to one TreeSHAP call."""
    import re
    import sys

    from forecasting.benchmarks import explain_bench

    monkeypatch.setattr(sys, "argv", ["explain_bench", "--n-estimators", "20", "--series-limit", "5", "--repeat", "1",
                                      "--n-jobs", "1"])
    explain_bench.main()
    out = capsys.readouterr().out
    ratio = re.search(r"\| ratio \(issue 15: <= 1\.2\) \| ([0-9.]+) \|", out)
    assert ratio and float(ratio.group(1)) > 0
    assert "| explain 48 steps of one series |" in out and "| approximate explanation (Saabas), 48 steps |" in out


def test_registered_statistical_version_is_explained_by_its_decomposition(client: TestClient, air: pl.DataFrame):
    _register(client, "air-snaive", "seasonal_naive", air)
    r = client.post("/v1/models/air-snaive/explain", json={"h": H, "history": _body(air), "k": 3})
    assert r.status_code == 200, r.text
    july = r.json()["rows"][6]
    assert r.json()["method"].startswith("labelled decomposition (not SHAP) of the SeasonalNaive forecast")
    assert july["output"] == 622.0  # July 1960 repeated
    assert july["base_value"] + sum(c["shap"] for c in july["contributions"]) == pytest.approx(622.0)
    # a spec-only version keeps no history: a 422 naming the field, not a 500
    r = client.post("/v1/models/air-snaive/explain", json={"h": H, "k": 3})
    assert r.status_code == 422 and r.json()["field"] == "history", r.text


def test_ets_forecast_is_explained_by_its_own_states(air: pl.DataFrame):
    from forecasting.models.registry import parse_spec
    from forecasting.service.core import resolve

    panel = validate_panel(air)
    spec, _ = resolve(parse_spec("auto_ets"), panel, h=H)
    model = make_model(spec, freq=panel.freq).fit(panel)
    e = service.explain(None, model=model, h=H).explanation
    assert e.feature_names == ["level (ETS level at the last observation, minus the series mean)",
                               "trend (ETS trend carried forward)", "seasonal (ETS seasonal component)"]
    fitted = model.states_["AirPassengers"].model_
    assert str(fitted["components"]) == "MNMN"  # multiplicative error and season, no trend (AirPassengers)
    level = float(fitted["states"][-1][0])
    assert e.data[:, 0].tolist() == [level] * H and e.values[6, 1] == 0.0
    # July: the forecast is the level times July's seasonal index, the seasonal term what the index adds
    assert e.values[6, 2] == pytest.approx(e.output[6] - level)
    assert e.additivity_error < 1e-9
