"""ONNX export and the ONNX Runtime forecaster: parity, fresh-process round trips, tampering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting.datasets import load_m4_hourly
from forecasting.errors import ArtifactIntegrityError, CapabilityError, InvalidInputError
from forecasting.export import ExportParityError, export_model
from forecasting.models import make_model
from forecasting.runtime import OnnxForecaster, load_onnx

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def m4() -> pl.DataFrame:
    train, _ = load_m4_hourly()
    ids = train["unique_id"].unique(maintain_order=True)[:12].to_list()
    return train.filter(pl.col("unique_id").is_in(ids))


@pytest.fixture(scope="module")
def xgb_export(m4: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    model = make_model({"name": "xgboost", "params": {"n_estimators": 40, "season_length": 24}}, freq=1).fit(m4)
    return model, export_model(model, tmp_path_factory.mktemp("x") / "xgb.onnx")


@pytest.fixture(scope="module")
def nhits_export(m4: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    params = {"max_steps": 5, "mlp_units": 16, "windows_batch_size": 16, "batch_size": 4, "device": "cpu",
              "season_length": 24}
    model = make_model({"name": "nhits", "params": params}, freq=1).fit(m4)
    return model, export_model(model, tmp_path_factory.mktemp("n") / "nhits.onnx", quantize=True)


def _fresh_process_forecast(folder: Path, h: int, level: list[int]) -> pl.DataFrame:
    """Load and predict in a new interpreter, asserting neither xgboost nor torch gets imported."""
    out = folder.parent / f"{folder.name}.forecast.parquet"
    code = (
        "import sys; from forecasting.runtime import load_onnx; "
        f"m = load_onnx({str(folder)!r}); f = m.predict({h}, level={level!r}); f.write_parquet({str(out)!r}); "
        "bad = [x for x in ('xgboost', 'torch', 'neuralforecast', 'sklearn') if x in sys.modules]; "
        "print('imported:', bad); sys.exit(3 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**os.environ})
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    return pl.read_parquet(out)


def test_xgboost_round_trip_in_a_fresh_process(xgb_export: tuple[object, Path]) -> None:
    model, folder = xgb_export
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "xgboost" and manifest["graphs"] == ["booster_0.onnx"]
    assert set(manifest["files"]) == {"booster_0.onnx", "history.parquet", "model.json", "pipeline.json"}
    assert manifest["inputs"]["input"]["columns"] == model.pipeline_.feature_names
    assert manifest["parity"]["booster_0.onnx"]["batch_many"]["max_rel_diff"] < 1e-4
    native = model.predict(48, level=[80, 95])
    onnx = _fresh_process_forecast(folder, 48, [80, 95])
    assert onnx.columns == native.columns and onnx["ds"].equals(native["ds"])
    for c in native.columns[2:]:
        a, b = native[c].to_numpy(), onnx[c].to_numpy()
        assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max(), c


def test_nhits_round_trip_in_a_fresh_process_and_int8(nhits_export: tuple[object, Path]) -> None:
    model, folder = nhits_export
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "nhits" and "weights.safetensors" not in manifest["files"]
    assert manifest["inputs"]["temporal"]["shape"] == ["batch", 168 + 48, 3]  # y, available_mask, series_scale
    assert "scales.parquet" in manifest["files"]
    assert manifest["parity"]["network.onnx"]["batch_1"]["max_rel_diff"] < 1e-3
    q = manifest["quantized"]
    assert q["graph"] == "network.int8.onnx" and q["size_bytes"]["int8"] < q["size_bytes"]["float32"]
    assert 0 < q["max_abs_diff"] and np.isfinite(q["median_mean_abs_pct_change"])
    native = model.predict(60, level=[80])  # two blocks: the recursion runs on the graph too
    onnx = _fresh_process_forecast(folder, 60, [80])
    for c in native.columns[2:]:
        a, b = native[c].to_numpy(), onnx[c].to_numpy()
        assert np.abs(a - b).max() <= 1e-3 * np.abs(a).max(), c
    int8 = load_onnx(folder, quantized=True).predict(48)["NHITS"].to_numpy()
    ref = model.predict(48)["NHITS"].to_numpy()
    assert np.abs(int8 - ref).max() < 0.05 * np.abs(ref).max()


def test_runtime_forecasts_new_history(xgb_export: tuple[object, Path], m4: pl.DataFrame) -> None:
    model, folder = xgb_export
    runtime = OnnxForecaster.load(folder)
    history = m4.filter(pl.col("unique_id") == "H10").head(500).with_columns(pl.lit("new").alias("unique_id"))
    a, b = model.predict(24, history=history), runtime.predict(24, history=history)
    np.testing.assert_allclose(b["XGBoost"].to_numpy(), a["XGBoost"].to_numpy(), rtol=1e-4)
    with pytest.raises(CapabilityError, match="an ONNX-exported model forecasts only"):
        runtime.fit(m4)
    with pytest.raises(CapabilityError, match="explanations need the native model"):
        runtime.explain(3)


def test_tampered_artifact_is_refused(xgb_export: tuple[object, Path], tmp_path: Path) -> None:
    import shutil

    _, folder = xgb_export
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    raw = bytearray((copy / "booster_0.onnx").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (copy / "booster_0.onnx").write_bytes(bytes(raw))
    with pytest.raises(ArtifactIntegrityError, match=r"booster_0.onnx has changed \(sha256 .*\); refusing to load it"):
        load_onnx(copy)
    (copy / "booster_0.onnx").unlink()
    with pytest.raises(ArtifactIntegrityError, match=r"booster_0.onnx is missing"):
        load_onnx(copy)


def test_statistical_models_are_refit_not_exported(tmp_path: Path, m4: pl.DataFrame) -> None:
    model = make_model("seasonal_naive", freq=1).fit(m4)
    with pytest.raises(CapabilityError, match=r"statistical models are refit from each request's history"):
        export_model(model, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_parity_failure_names_the_differences(monkeypatch: pytest.MonkeyPatch, m4: pl.DataFrame,
                                              tmp_path: Path) -> None:
    import forecasting.export as ex

    real = ex._session

    class Off:
        def __init__(self, s: object) -> None:
            self.s = s

        def run(self, names: object, feeds: dict) -> list:
            return [o + 0.5 for o in self.s.run(names, feeds)]  # type: ignore[attr-defined]

    monkeypatch.setattr(ex, "_session", lambda p: Off(real(p)))
    model = make_model({"name": "xgboost", "params": {"n_estimators": 5, "season_length": 24}}, freq=1).fit(m4)
    with pytest.raises(ExportParityError, match=r"max absolute difference 0.5, relative .* \(tolerance 0.0001\)"):
        export_model(model, tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad*"))


def test_cli_export(tmp_path: Path, m4: pl.DataFrame) -> None:
    data = tmp_path / "train.parquet"
    m4.write_parquet(data)
    env = {**os.environ}
    cli = [sys.executable, "-m", "forecasting.cli"]
    run = subprocess.run([*cli, "train", "-i", str(data), "-o", str(tmp_path / "m"), "--model",
                          '{"name": "xgboost", "params": {"n_estimators": 10, "season_length": 24}}'],
                         capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    run = subprocess.run([*cli, "export", "-m", str(tmp_path / "m"), "-o", str(tmp_path / "m.onnx")],
                         capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "booster_0.onnx: parity on" in run.stdout and "exported xgboost to" in run.stdout
    run = subprocess.run([*cli, "export", "-m", str(tmp_path / "nothing"), "-o", str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert run.returncode != 0 and "is not a saved model folder" in run.stderr + run.stdout


@pytest.mark.parametrize("algorithm", ["xgboost", "hist_gradient_boosting", "linear"])
@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_tabular_round_trip_in_a_fresh_process(algorithm: str, kind: str, tmp_path: Path) -> None:
    from forecasting.datasets import load_california_housing
    from forecasting.tabular import TabularModel

    table = load_california_housing().drop("ocean_proximity").head(3000)
    if kind == "classification":
        table = table.with_columns((pl.col("median_house_value") > 200_000).alias("median_house_value"))
    model = TabularModel(kind=kind, algorithm=algorithm, params={"n_estimators": 30} if algorithm == "xgboost" else
                         ({"max_iter": 30} if algorithm == "hist_gradient_boosting" else {}), n_jobs=1)
    model.fit(table.head(2500), "median_house_value")
    if algorithm == "hist_gradient_boosting":
        # skl2onnx 1.20 cannot read scikit-learn 1.9's HistGradientBoosting trees: refused with the reason
        with pytest.raises(CapabilityError, match=r"skl2onnx cannot convert this HistGradientBoosting.*use algorithm"):
            export_model(model, tmp_path / "t.onnx", sample=table.tail(200))
        assert not (tmp_path / "t.onnx").exists()
        return
    folder = export_model(model, tmp_path / "t.onnx", sample=table.tail(200))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "tabular" and manifest["algorithm"] == algorithm
    rows = table.tail(500)
    rows.write_parquet(tmp_path / "rows.parquet")
    col = "probability" if kind == "classification" else "prediction"
    code = ("import sys, polars as pl; from forecasting.runtime import load_onnx; "
            f"m = load_onnx({str(folder)!r}); "
            f"m.predict(pl.read_parquet({str(tmp_path / 'rows.parquet')!r})).write_parquet({str(tmp_path / 'o.parquet')!r}); "
            "bad = [x for x in ('xgboost', 'torch', 'sklearn') if x in sys.modules]; sys.exit(3 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    a, b = model.predict(rows)[col].to_numpy(), pl.read_parquet(tmp_path / "o.parquet")[col].to_numpy()
    assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max()
    if kind == "classification":
        assert (model.predict(rows)["prediction"] == pl.read_parquet(tmp_path / "o.parquet")["prediction"]).mean() > 0.999


def test_tft_round_trip(tmp_path: Path) -> None:
    """TFT exports too (LSTM encoder, attention, variable selection), dynamic batch included."""
    from forecasting.datasets import load_air_passengers

    df = load_air_passengers()
    df = pl.concat([df, df.with_columns(pl.lit("B").alias("unique_id"), pl.col("y") * 3)])
    model = make_model({"name": "tft", "params": {"max_steps": 5, "hidden_size": 8, "windows_batch_size": 16,
                                                  "batch_size": 2, "device": "cpu"}}, freq="1mo").fit(df)
    folder = export_model(model, tmp_path / "tft.onnx")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["parity"]["network.onnx"]["batch_many"]["max_rel_diff"] < 1e-3
    runtime = load_onnx(folder)
    a, b = model.predict(30, level=[95]), runtime.predict(30, level=[95])  # 30 > horizon 24: recursion
    for c in a.columns[2:]:
        assert np.abs(a[c].to_numpy() - b[c].to_numpy()).max() <= 1e-3 * np.abs(a[c].to_numpy()).max(), c


def test_manifest_edits_are_refused(xgb_export: tuple[object, Path], nhits_export: tuple[object, Path],
                                    tmp_path: Path) -> None:
    """The manifest has no signature, so what it may claim is constrained (found by a hostile pass)."""
    import shutil

    _, folder = nhits_export
    copy = tmp_path / "n"
    shutil.copytree(folder, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["graphs"] = ["network.int8.onnx"]  # serve the int8 graph as the float one
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactIntegrityError, match=r"lists graphs \['network.int8.onnx'\] for a 'nhits' model"):
        load_onnx(copy)
    manifest["graphs"], manifest["kind"] = ["network.onnx"], "tft"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactIntegrityError, match=r"the manifest says 'tft' but model.json holds 'nhits'"):
        load_onnx(copy)
    _, xfolder = xgb_export
    extra = tmp_path / "x"
    shutil.copytree(xfolder, extra)
    (extra / "booster_1.onnx").write_bytes((extra / "booster_0.onnx").read_bytes())
    with pytest.raises(ArtifactIntegrityError, match=r"unexpected file booster_1.onnx was added \(it is not in the manifest\)"):
        load_onnx(extra)


def test_cli_refuses_to_export_over_the_model(tmp_path: Path, m4: pl.DataFrame) -> None:
    model = make_model({"name": "xgboost", "params": {"n_estimators": 5, "season_length": 24}}, freq=1).fit(m4)
    folder = model.save(tmp_path / "m")
    run = subprocess.run([sys.executable, "-m", "forecasting.cli", "export", "-m", str(folder), "-o", str(folder)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode != 0 and "would overwrite the model folder" in run.stdout + run.stderr
    assert (folder / "booster_0.ubj").is_file()
    fc = tmp_path / "fc.csv"
    m4.write_parquet(tmp_path / "h.parquet")
    run = subprocess.run([sys.executable, "-m", "forecasting.cli", "forecast", "-i", str(tmp_path / "h.parquet"),
                          "-m", str(folder), "--h", "6", "-o", str(fc)], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert pl.read_csv(fc).height == 12 * 6


def test_log_target_nhits_exports_with_the_transform_inside_the_graph(tmp_path: Path, m4: pl.DataFrame) -> None:
    params = {"max_steps": 3, "mlp_units": 8, "windows_batch_size": 8, "batch_size": 4, "device": "cpu",
              "season_length": 24, "input_size": 96, "target_transform": "log"}
    model = make_model({"name": "nhits", "params": params}, freq=1).fit(m4)
    folder = export_model(model, tmp_path / "log.onnx")
    runtime = load_onnx(folder)
    native, onnx = model.predict(72, level=[95]), runtime.predict(72, level=[95])
    for c in native.columns[2:]:
        a, b = native[c].to_numpy(), onnx[c].to_numpy()
        assert np.abs(a - b).max() <= 1e-3 * np.abs(a).max(), c
    history = m4.filter(pl.col("unique_id") == "H1").with_columns(pl.col("y") - 1000)  # H1 goes below 0
    with pytest.raises(InvalidInputError, match=r"target_transform='log' needs y > 0"):
        runtime.predict(24, history=history)


def test_tampered_saved_folder_and_onnx_export_raise_the_same_error(xgb_export: tuple[object, Path],
                                                                      tmp_path: Path) -> None:
    """One loader, one verification: a changed byte in a saved model folder and in an ONNX export folder is the
    same ArtifactIntegrityError naming the file (the export used to raise a plain InvalidInputError)."""
    import shutil

    from forecasting.loading import load
    from forecasting.runtime import OnnxForecaster

    model, folder = xgb_export
    saved = model.save(tmp_path / "saved")  # type: ignore[attr-defined]
    assert not isinstance(load(saved), OnnxForecaster) and isinstance(load(folder), OnnxForecaster)
    (saved / "pipeline.json").write_bytes((saved / "pipeline.json").read_bytes() + b" ")
    copy = tmp_path / "export"
    shutil.copytree(folder, copy)
    (copy / "booster_0.onnx").write_bytes((copy / "booster_0.onnx").read_bytes() + b"\0")
    errors = []
    for path, name in ((saved, "pipeline.json"), (copy, "booster_0.onnx")):
        with pytest.raises(ArtifactIntegrityError, match=rf"file {name} has changed \(sha256 .*\); refusing") as err:
            load(path)
        assert err.value.details["file"] == name and err.value.field == "model"
        errors.append(type(err.value))
    assert errors[0] is errors[1] is ArtifactIntegrityError
