"""Regression tests for the seams found before the one-use-case-layer restructuring, named after what they pin.

(The same data through every forecast door: tests/test_every_door.py; one splitter and one hold-out
scorer: tests/test_backtest.py; one artifact check: tests/test_registry.py and tests/test_export.py;
the model contract: tests/test_models_contract.py; the wheel: tests/test_wheel.py.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from conftest import wait_job
from litestar.testing import TestClient
from typer.testing import CliRunner

import forecasting as fc
from forecasting.api.app import create_app
from forecasting.api.settings import Settings
from forecasting.cli import app as cli


def _cli(*args: str | Path) -> Any:
    return CliRunner().invoke(cli, [str(a) for a in args], env={"COLUMNS": "200", "NO_COLOR": "1"})


def _hourly(n: int = 24 * 12, ids: tuple[str, ...] = ("a", "b")) -> pl.DataFrame:
    rng = np.random.default_rng(3)
    frames = []
    for i, uid in enumerate(ids):
        t = np.arange(n)
        frames.append(pl.DataFrame({
            "unique_id": [uid] * n,
            "ds": pl.datetime_range(pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 1) + pl.duration(hours=n - 1), "1h",
                                    eager=True),
            "y": 40 + 10 * i + 6 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, n)}))
    return pl.concat(frames)


XGB = {"name": "xgboost", "params": {"n_estimators": 10, "max_depth": 3, "season_length": 24, "conformal_windows": 0}}


# --------------------------------------------------------------------------- the HTTP contract
def test_every_route_has_a_typed_response_schema(tmp_path: Path) -> None:
    """Was: the registry routes' responses (10 operations) were untyped ``object``."""
    with TestClient(create_app(Settings(state_dir=tmp_path))) as client:
        doc = client.get("/schema/openapi.json").json()
    untyped = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for code, resp in op["responses"].items():
                if not code.startswith("2") or code == "204":
                    continue
                for media, body in (resp.get("content") or {}).items():
                    schema = body.get("schema") or {}
                    typed = "$ref" in schema or schema.get("type") == "string" or "$ref" in schema.get("items", {})
                    if not typed:
                        untyped.append(f"{method.upper()} {path} {code} {media}: {schema}")
    assert untyped == []
    assert len([1 for ops in doc["paths"].values() for _ in ops]) >= 20


# --------------------------------------------------------------------------- the CLI with saved folders
def test_cli_forecast_with_a_saved_folder_honours_fill_missing(tmp_path: Path) -> None:
    """Was: ``forecasting forecast --model <saved folder> --fill-missing forward`` ignored the flag, then asked for it."""
    data = _hourly()
    data.write_csv(tmp_path / "train.csv")
    assert _cli("train", "--input", tmp_path / "train.csv", "--model", json.dumps(XGB), "--output",
                tmp_path / "model").exit_code == 0
    holed = data.with_columns(pl.when(pl.int_range(pl.len()) == 30).then(None).otherwise(pl.col("y")).alias("y"))
    holed.write_csv(tmp_path / "history.csv")
    refused = _cli("forecast", "--input", tmp_path / "history.csv", "--model", tmp_path / "model", "--h", "4",
                   "--output", tmp_path / "fc.csv")
    assert refused.exit_code == 2 and "fill_missing" in refused.output
    done = _cli("forecast", "--input", tmp_path / "history.csv", "--model", tmp_path / "model", "--h", "4",
                "--fill-missing", "forward", "--output", tmp_path / "fc.csv", "--json")
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert answer["filled"] == [{"unique_id": "a", "ds": "2024-01-02 06:00:00.000000", "reason": "missing",
                                 "policy": "forward"}] or [f["unique_id"] for f in answer["filled"]] == ["a"]
    assert answer["model"] == "xgboost" and answer["rows"] == 8 and answer["fallbacks"] == []


def test_cli_explain_with_a_saved_tabular_folder_explains_its_rows(tmp_path: Path) -> None:
    """Was: ``forecasting explain --model <saved tabular folder>`` died with an AttributeError traceback."""
    from forecasting.tabular import TabularModel

    rng = np.random.default_rng(0)
    table = pl.DataFrame({"x1": rng.normal(size=200), "x2": rng.normal(size=200)})
    table = table.with_columns((3 * pl.col("x1") - pl.col("x2")).alias("target"))
    TabularModel(algorithm="linear").fit(table, "target").save(tmp_path / "tab")
    table.drop("target").head(5).write_csv(tmp_path / "rows.csv")
    result = _cli("explain", "--model", tmp_path / "tab", "--input", tmp_path / "rows.csv", "--output",
                  tmp_path / "shap.csv")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Traceback" not in result.output
    shap = pl.read_csv(tmp_path / "shap.csv")
    assert shap.height == 5 * 2 and set(shap["feature"]) == {"x1", "x2"}
    # a linear model's SHAP value is coef * (x - background mean): the x1 values move with slope 3 (the target's)
    x1 = shap.filter(pl.col("feature") == "x1")
    slope, _ = np.polyfit(table["x1"].head(5).to_numpy(), x1["shap"].to_numpy(), 1)
    assert slope == pytest.approx(3.0, rel=0.02)


def test_cli_forecast_with_a_tabular_folder_is_one_clear_error(tmp_path: Path) -> None:
    from forecasting.tabular import TabularModel

    table = pl.DataFrame({"x": [float(i) for i in range(40)], "target": [2.0 * i for i in range(40)]})
    TabularModel(algorithm="linear").fit(table, "target").save(tmp_path / "tab")
    _hourly().write_csv(tmp_path / "h.csv")
    result = _cli("forecast", "--input", tmp_path / "h.csv", "--model", tmp_path / "tab", "--h", "3", "--output",
                  tmp_path / "fc.csv")
    assert result.exit_code == 2 and "tabular model" in result.output and "Traceback" not in result.output


# --------------------------------------------------------------------------- layering
def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}; import sys, json; print(json.dumps(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_cli_module_imports_no_application_and_no_model_library() -> None:
    """Was: ``forecasting/cli.py`` (inside the library) imported ``api`` and ``benchmarks`` at the top."""
    loaded = _modules_after("import forecasting.cli")
    assert not {m for m in loaded if m.startswith(("forecasting.api", "forecasting.benchmarks", "litestar"))}
    assert not {m for m in loaded if m.split(".")[0] in ("xgboost", "torch", "statsforecast", "neuralforecast")}


def test_import_forecasting_is_light_and_exports_the_public_api() -> None:
    """Was: ``import forecasting`` exported only ``__version__``."""
    loaded = _modules_after("import forecasting")
    assert not {m for m in loaded if m.split(".")[0] in ("polars", "xgboost", "torch", "statsforecast", "litestar")}
    for name in ("forecast", "cross_validation", "explain", "load", "make_model", "validate_panel", "Panel",
                 "ForecastingError", "InvalidInputError", "CapabilityError", "InsufficientHistoryError"):
        assert name in fc.__all__ and getattr(fc, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = fc.nope  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- the public API
def test_pandas_in_gives_pandas_out_and_polars_in_gives_polars_out() -> None:
    """Was: results were always polars, even for pandas input."""
    frame = pl.DataFrame({"unique_id": ["s"] * 8, "ds": list(range(8)), "y": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]})
    out_pl = fc.forecast(frame, model="naive", h=2).forecasts
    out_pd = fc.forecast(frame.to_pandas(), model="naive", h=2).forecasts
    assert isinstance(out_pl, pl.DataFrame) and isinstance(out_pd, pd.DataFrame)
    assert out_pd["Naive"].tolist() == out_pl["Naive"].to_list() == [8.0, 8.0]
    cv = fc.cross_validation(frame.to_pandas(), model="naive", h=2, n_windows=2)
    assert isinstance(cv, pd.DataFrame) and list(cv.columns[:4]) == ["unique_id", "ds", "cutoff", "y"]
    # origins at steps 3 and 5: naive forecasts the value at the cutoff
    assert cv["Naive"].tolist() == [4.0, 4.0, 6.0, 6.0] and cv["y"].tolist() == [5.0, 6.0, 7.0, 8.0]


def test_column_names_are_the_callers() -> None:
    sales = pd.DataFrame({"store": ["x"] * 6 + ["y"] * 6, "week": list(range(6)) * 2,
                          "units": [1.0, 2, 3, 4, 5, 6, 10, 10, 10, 10, 10, 11]})
    out = fc.forecast(sales, model="naive", h=2, id_col="store", time_col="week", target_col="units").forecasts
    assert list(out.columns) == ["store", "week", "Naive"]
    assert out.to_dict("list") == {"store": ["x", "x", "y", "y"], "week": [6, 7, 6, 7], "Naive": [6.0, 6.0, 11.0, 11.0]}
    with pytest.raises(fc.InvalidInputError, match="column 'shop' .*not found"):
        fc.forecast(sales, model="naive", h=2, id_col="shop", time_col="week", target_col="units")


def test_load_gives_a_model_that_forecasts_like_the_trained_one(tmp_path: Path) -> None:
    data = _hourly()
    model = fc.make_model(XGB, freq="1h").fit(data)
    model.save(tmp_path / "m")
    again = fc.load(tmp_path / "m")
    a = fc.forecast(data, model=model, h=5).forecasts
    b = fc.forecast(data, model=again, h=5).forecasts
    np.testing.assert_allclose(a["XGBoost"].to_numpy(), b["XGBoost"].to_numpy(), rtol=1e-6)


# --------------------------------------------------------------------------- validated once
def test_a_registered_forecast_validates_the_history_once(tmp_path: Path) -> None:
    """Was: on the registered path the history was validated twice, h three times, the parameters five times."""
    import collections

    import forecasting.data as data_module
    import forecasting.models.registry as registry_module
    from forecasting import service
    from forecasting.service.registered import RegisteredModels
    from forecasting.store import Store

    history = _hourly()
    with TestClient(create_app(Settings(state_dir=tmp_path))) as client:
        job = client.post("/v1/models", json={"name": "m", "model": XGB,
                                               "data": history.with_columns(pl.col("ds").cast(pl.String)).to_dict(
                                                   as_series=False)}).json()
        assert wait_job(client, job["id"])["state"] == "succeeded"
    store = Store(f"sqlite:///{tmp_path}/forecasting.db", tmp_path / "artifacts")
    models = RegisteredModels(store=store, runner=None, limits=service.Limits())  # type: ignore[arg-type]
    watched = {data_module.validate_panel.__code__: "validate_panel", registry_module.parse_spec.__code__: "parse_spec"}
    counts: collections.Counter[str] = collections.Counter()

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in watched:
            counts[watched[frame.f_code]] += 1

    models.forecast("default", "m", h=6, history=history)  # loads (and caches) the model
    sys.setprofile(profile)
    try:
        result = models.forecast("default", "m", h=6, history=history)
    finally:
        sys.setprofile(None)
        store.close()
    assert result.forecasts.height == 12
    assert counts["validate_panel"] == 1 and counts["parse_spec"] == 1


# --------------------------------------------------------------------------- found by the new-user pass
def test_saving_never_replaces_a_folder_of_other_files(tmp_path: Path) -> None:
    """Was: ``train --output``, ``export --output`` and ``model.save()`` wiped whatever the path held."""
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "notes.txt").write_text("important")
    _hourly().write_csv(victim / "data.csv")
    result = _cli("train", "--input", victim / "data.csv", "--model", json.dumps(XGB), "--output", victim)
    assert result.exit_code == 2 and "folder of other files (data.csv, notes.txt, sub)" in result.output
    model = fc.make_model(XGB, freq="1h").fit(_hourly())
    with pytest.raises(fc.InvalidParameterError, match="not a saved model or an ONNX export"):
        model.save(victim)
    with pytest.raises(fc.InvalidParameterError, match="is a file"):
        model.save(victim / "notes.txt")
    assert sorted(p.name for p in victim.iterdir()) == ["data.csv", "notes.txt", "sub"]  # nothing touched
    assert (victim / "notes.txt").read_text() == "important"
    model.save(tmp_path / "m")
    model.save(tmp_path / "m")  # a saved model folder may be replaced by a new one
    exported = _cli("export", "--model", tmp_path / "m", "--output", victim)
    assert exported.exit_code == 2 and "not a saved model or an ONNX export" in exported.output


def test_huge_y_is_a_clear_error_not_a_library_crash() -> None:
    """Was: y near 1e308 made xgboost fail with its own error (a 500 over HTTP, a traceback in the CLI). Since
    the data contract bounds y (``MAX_ABS_Y``), it is refused before any model sees it, naming the series and rows."""
    data = {"unique_id": ["a"] * 40, "ds": list(range(40)), "y": [1e308] * 20 + [1.0] * 20}
    with pytest.raises(fc.InvalidInputError, match=r"y must be at most 1e\+150 in magnitude .* 20 rows are beyond "
                                                   r"it: series 'a': rows 0, 1, 2") as err:
        fc.forecast(data, model={"name": "xgboost", "params": {"n_estimators": 5}}, h=2)
    assert err.value.field == "y"


def test_a_loaded_model_takes_a_fallback_and_says_what_computed_it(tmp_path: Path) -> None:
    """Was: a saved folder forgot the spec's fallback (Python had no way to give one) and an ONNX export's
    forecasts were labelled ``runtime: native``."""
    data = pl.concat([_hourly(), _hourly(n=10, ids=("short",))])
    model = fc.make_model(XGB, freq="1h").fit(_hourly())
    with pytest.raises(fc.InsufficientHistoryError, match="short"):
        fc.forecast(data, model=model, h=3)
    result = fc.forecast(data, model=model, h=3, fallback="naive")
    assert [(f.unique_id, f.model) for f in result.fallbacks] == [("short", "naive")]
    short = result.forecasts.filter(pl.col("unique_id") == "short")["XGBoost"].to_list()
    assert short == [float(data["y"][-1])] * 3  # naive: the last value
    assert result.runtime == "native"
    model.save(tmp_path / "m")
    from forecasting import service

    service.export(tmp_path / "m", tmp_path / "m.onnx")
    onnx = fc.forecast(_hourly(), model=fc.load(tmp_path / "m.onnx"), h=3)
    assert onnx.runtime == "onnxruntime" and "served by onnxruntime from the model's ONNX export" in onnx.notes


def test_bad_server_settings_are_one_line_naming_the_variable(tmp_path: Path) -> None:
    """Was: ``FORECASTING_MAX_H=abc forecasting serve`` ended in a traceback."""
    result = CliRunner().invoke(cli, ["serve", "--port", "1"], env={"FORECASTING_MAX_H": "abc",
                                                                    "FORECASTING_STATE_DIR": str(tmp_path)})
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "FORECASTING_MAX_H must be a positive integer, got 'abc'" in result.output


def test_the_core_works_without_the_optional_extras(tmp_path: Path) -> None:
    """The statistical and XGBoost models, the service and the CLI need none of the extras (deep, onnx, distributed):
    run with those libraries made unimportable."""
    code = """
import importlib.abc, sys
BLOCKED = ("torch", "neuralforecast", "onnx", "onnxruntime", "onnxmltools", "skl2onnx", "onnxscript", "ray", "captum",
           "safetensors")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: an optional extra)")
        return None
sys.meta_path.insert(0, Block())
import pathlib, polars as pl, forecasting as fc
from forecasting.datasets import load_air_passengers
air = load_air_passengers()
assert fc.forecast(air, model="auto_ets", h=3).forecasts.height == 3
model = fc.make_model({"name": "xgboost", "params": {"n_estimators": 10}}, freq="1mo").fit(air)
model.save(sys.argv[1] + "/m")
assert fc.forecast(air, model=fc.load(sys.argv[1] + "/m"), h=3).forecasts.height == 3
assert fc.explain(air, model=model, h=3).n_rows == 3
from litestar.testing import TestClient
from forecasting.api.app import create_app
from forecasting.api.settings import Settings
with TestClient(create_app(Settings(state_dir=pathlib.Path(sys.argv[1]) / "var"))) as c:
    assert c.get("/healthz").status_code == 200
    r = c.post("/v1/forecast", json={"data": {"unique_id": ["a"] * 8, "ds": list(range(8)), "y": [1.0] * 8},
                                     "h": 2, "model": "naive"})
    assert r.status_code == 200, r.text
try:
    fc.forecast(air, model="nhits", h=3)
except fc.CapabilityError as exc:  # not a bare ModuleNotFoundError: the message names the extra
    assert "optional extra 'deep'" in exc.message and "forecasting[deep]" in exc.message, exc.message
    print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok"), out.stdout
