"""NHITS and TFT adapters: parity with neuralforecast, exogenous inputs, save/load, explanations.

Networks here are tiny and trained for a few steps: these tests check the plumbing
(windows, scaling, recursion, files), not forecast quality (benchmarks/ measures that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from forecasting.datasets import load_air_passengers, load_ett_h1
from forecasting.errors import CapabilityError, InsufficientHistoryError, InvalidInputError, InvalidParameterError
from forecasting.models import make_model
from forecasting.models.network_core import SCALE_COLUMN, guard_scaler, rearrange_quantiles
from forecasting.models.neural import NeuralForecaster

TINY_NHITS = {"max_steps": 5, "windows_batch_size": 16, "batch_size": 2, "mlp_units": 16, "device": "cpu"}
TINY_TFT = {"max_steps": 5, "windows_batch_size": 16, "batch_size": 2, "hidden_size": 8, "device": "cpu"}
#: what neuralforecast alone is given in the parity tests: no target transform, no validation split
PLAIN = {"target_transform": None, "early_stop_patience_steps": -1}


def _scaled(model: NeuralForecaster, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with y in units of each series' reference scale: what the adapter's network learns from."""
    return frame.join(model.scales_, on="unique_id", maintain_order="left").with_columns(
        pl.col("y") / pl.col(SCALE_COLUMN)).drop(SCALE_COLUMN)


def _unscale(model: NeuralForecaster, frame: Any, cols: list[str]) -> pl.DataFrame:
    """neuralforecast's forecasts (pandas or polars, as it was fed) back in units of y."""
    frame = frame if isinstance(frame, pl.DataFrame) else pl.from_pandas(frame)
    return frame.join(model.scales_, on="unique_id", maintain_order="left").with_columns(
        pl.col(c) * pl.col(SCALE_COLUMN) for c in cols).drop(SCALE_COLUMN)


@pytest.fixture(scope="module")
def ett() -> pl.DataFrame:
    """Two hourly series (ETTh1's first 600 hours and a scaled copy) with two load columns."""
    df = load_ett_h1().head(600).select("unique_id", "ds", "y", "HUFL", "HULL")
    return pl.concat([df, df.with_columns(pl.lit("B").alias("unique_id"), pl.col("y") * 2 + 5)])


def _split(df: pl.DataFrame, n_future: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = df.group_by("unique_id").len()["len"].min()
    cut = pl.int_range(pl.len()).over("unique_id") < n - n_future
    return df.filter(cut), df.filter(~cut).drop("y")


@pytest.fixture(scope="module")
def exog_model(ett: pl.DataFrame) -> NeuralForecaster:
    train, _ = _split(ett, 24)
    params = {**TINY_NHITS, **PLAIN, "season_length": 24, "horizon": 24, "input_size": 48, "hist_exog": ["HULL"],
              "level": [80, 95]}
    return make_model({"name": "nhits", "params": params}, freq="1h").fit(train)


def test_forecasts_equal_neuralforecasts_own_predict(ett: pl.DataFrame, exog_model: NeuralForecaster) -> None:
    """Our forecasting path (one torch core over raw windows) equals NeuralForecast.predict exactly (given the same
    series scaling and floor on the window scale)."""
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MQLoss
    from neuralforecast.models import NHITS

    train, future = _split(ett, 24)
    ours = exog_model.predict(24, X_future=future.select("unique_id", "ds", "HUFL"), level=[80])
    # the same network trained by neuralforecast alone (same seed, same inputs)
    assert exog_model.futr_cols_ == ["hour", "dayofweek", "HUFL"]
    net = NHITS(h=24, input_size=48, futr_exog_list=exog_model.futr_cols_, hist_exog_list=["HULL"],
                loss=MQLoss(level=[80, 95]), max_steps=5, windows_batch_size=16, batch_size=2, scaler_type="robust",
                random_seed=1, n_freq_downsample=[12, 6, 1], n_pool_kernel_size=[2, 2, 1], mlp_units=[[16, 16]] * 3,
                logger=False, enable_progress_bar=False, enable_checkpointing=False, accelerator="cpu")
    guard_scaler(net)
    nf = NeuralForecast(models=[net], freq="1h")
    nf.fit(_scaled(exog_model, exog_model._temporal_frame(train)).to_pandas())
    futr = exog_model._temporal_frame(future.with_columns(pl.lit(0.0).alias("y"), pl.lit(0.0).alias("HULL")))
    names = exog_model.output_names_
    theirs = _unscale(exog_model, nf.predict(futr_df=futr.drop("y", "HULL").to_pandas()),
                      [f"NHITS{n}" for n in names])
    # after a few steps the quantile heads still cross: compare after the same rearrangement
    raw = np.stack([theirs[f"NHITS{n}"].to_numpy() for n in names], axis=-1)[:, None, :]
    expected = rearrange_quantiles(raw, names)[:, 0, :]
    np.testing.assert_allclose(ours["NHITS"].to_numpy(), expected[:, names.index("-median")], rtol=1e-6)
    np.testing.assert_allclose(ours["NHITS-lo-80"].to_numpy(), expected[:, names.index("-lo-80")], rtol=1e-6)
    assert ours["ds"].to_list() == future["ds"].to_list()


def test_missing_future_values_are_named(ett: pl.DataFrame, exog_model: NeuralForecaster) -> None:
    _, future = _split(ett, 24)
    holes = future.select("unique_id", "ds", "HUFL").filter(~((pl.col("unique_id") == "B")
                                                              & (pl.int_range(pl.len()).over("unique_id") == 3)))
    with pytest.raises(InvalidInputError, match=r"'HUFL' missing for 1 \(unique_id, ds\) pairs: \(B, 2016-07-25 03:00:00\)"):
        exog_model.predict(24, X_future=holes)
    with pytest.raises(InvalidInputError, match=r"X_future is required.*\['HUFL'\]"):
        exog_model.predict(24)
    nan = future.select("unique_id", "ds", "HUFL").with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(float("nan")).otherwise(pl.col("HUFL")).alias("HUFL"))
    with pytest.raises(InvalidInputError, match=r"'HUFL' missing for 1 \(unique_id, ds\) pairs: \(ETTh1, 2016-07-25\)"):
        exog_model.predict(24, X_future=nan)


def test_blocks_beyond_the_horizon_need_their_future_values(ett: pl.DataFrame) -> None:
    train, future = _split(ett.drop("HULL"), 48)
    model = make_model({"name": "nhits", "params": {**TINY_NHITS, "season_length": 24, "horizon": 24,
                                                    "input_size": 48}}, freq="1h").fit(train)
    X = future.select("unique_id", "ds", "HUFL")
    out = model.predict(30, X_future=X)  # 2 blocks of 24: reads all 48 future rows
    assert out.group_by("unique_id").len()["len"].to_list() == [30, 30]
    first = model.predict(24, X_future=X.filter(pl.int_range(pl.len()).over("unique_id") < 24))
    np.testing.assert_allclose(out.filter(pl.int_range(pl.len()).over("unique_id") < 24)["NHITS"].to_numpy(),
                               first["NHITS"].to_numpy(), rtol=1e-6)
    with pytest.raises(InvalidInputError, match=r"blocks of 24 steps .* cover 48 steps per series for h=30"):
        model.predict(30, X_future=X.filter(pl.int_range(pl.len()).over("unique_id") < 30))


def test_historic_exog_limits_h_and_untrained_levels_refused(ett: pl.DataFrame, exog_model: NeuralForecaster) -> None:
    _, future = _split(ett, 24)
    with pytest.raises(CapabilityError, match=r"historic-only exogenous columns \['HULL'\], h must be <= .* 24"):
        exog_model.predict(25, X_future=future)
    with pytest.raises(CapabilityError, match=r"trained for levels \[80, 95\]; levels \[90\]"):
        exog_model.predict(24, X_future=future.select("unique_id", "ds", "HUFL"), level=[90])


def test_history_shorter_than_input_size_names_the_series(ett: pl.DataFrame, exog_model: NeuralForecaster) -> None:
    _, future = _split(ett, 24)
    short = ett.filter(pl.col("unique_id") == "B").head(40)
    with pytest.raises(InsufficientHistoryError, match=r"series 'B': 40 observations") as err:
        exog_model.predict(24, history=short, X_future=future)
    assert err.value.details["minimum"] == 48


def test_new_series_forecast_without_retraining(ett: pl.DataFrame, exog_model: NeuralForecaster) -> None:
    train, future = _split(ett, 24)
    new = train.filter(pl.col("unique_id") == "B").with_columns(pl.lit("C").alias("unique_id"))
    X = future.filter(pl.col("unique_id") == "B").with_columns(pl.lit("C").alias("unique_id"))
    a = exog_model.predict(24, history=new, X_future=X.select("unique_id", "ds", "HUFL"))
    b = exog_model.predict(24, X_future=future.select("unique_id", "ds", "HUFL")).filter(pl.col("unique_id") == "B")
    np.testing.assert_allclose(a["NHITS"].to_numpy(), b["NHITS"].to_numpy(), rtol=1e-6)


def test_save_load_identity_and_no_pickle(tmp_path: Path, ett: pl.DataFrame, exog_model: NeuralForecaster) -> None:
    _, future = _split(ett, 24)
    X = future.select("unique_id", "ds", "HUFL")
    folder = exog_model.save(tmp_path / "m")
    assert sorted(p.name for p in folder.iterdir()) == ["history.parquet", "model.json", "pipeline.json",
                                                        "scales.parquet", "weights.safetensors"]
    loaded = NeuralForecaster.load(folder)
    a, b = exog_model.predict(24, X_future=X, level=[95]), loaded.predict(24, X_future=X, level=[95])
    assert a.equals(b)
    # a model trained on a GPU: the weights are device-free safetensors, mapped to the CPU on load
    meta = json.loads((folder / "model.json").read_text())
    meta["device_trained"] = "cuda:0"
    (folder / "model.json").write_text(json.dumps(meta))
    moved = NeuralForecaster.load(folder, device="cpu")
    assert {p.device.type for p in moved.net_.parameters()} == {"cpu"}
    assert moved.predict(24, X_future=X).equals(exog_model.predict(24, X_future=X))


def test_weights_saved_from_another_device_load_on_the_cpu(tmp_path: Path, exog_model: NeuralForecaster) -> None:
    """Simulates a GPU-trained state dict: tensors loaded with torch's map_location, rewritten as safetensors."""
    import io

    import torch
    from safetensors.torch import save_file

    folder = exog_model.save(tmp_path / "m")
    buf = io.BytesIO()
    torch.save(exog_model.net_.state_dict(), buf)  # in-process only: what a GPU run would hand to save()
    buf.seek(0)
    state = torch.load(buf, map_location="meta", weights_only=True)
    assert {t.device.type for t in state.values()} == {"meta"}  # not CPU tensors
    state = {k: torch.empty(v.shape, dtype=v.dtype).copy_(exog_model.net_.state_dict()[k]) for k, v in state.items()}
    save_file(state, str(folder / "weights.safetensors"))
    meta = json.loads((folder / "model.json").read_text())
    from forecasting.artifacts import sha256_file

    meta["files"]["weights.safetensors"] = sha256_file(folder / "weights.safetensors")
    (folder / "model.json").write_text(json.dumps(meta))
    loaded = NeuralForecaster.load(folder, device="cpu")
    for k, v in exog_model.net_.state_dict().items():
        assert torch.equal(loaded.net_.state_dict()[k], v.cpu())


def test_tampered_weights_are_refused(tmp_path: Path, exog_model: NeuralForecaster) -> None:
    folder = exog_model.save(tmp_path / "m")
    raw = bytearray((folder / "weights.safetensors").read_bytes())
    raw[-3] ^= 0xFF
    (folder / "weights.safetensors").write_bytes(bytes(raw))
    with pytest.raises(InvalidInputError, match=r"weights.safetensors has changed .* refusing to load it"):
        NeuralForecaster.load(folder)


def test_explanation_adds_up_on_a_small_model(ett: pl.DataFrame, exog_model: NeuralForecaster) -> None:
    _, future = _split(ett, 24)
    e = exog_model.explain(6, X_future=future.select("unique_id", "ds", "HUFL"), n_steps=64)
    L, H = 48, 24
    # y lags, calendar (hour, dayofweek) and HUFL over the window and the block, HULL over the window only, then
    # the two series terms (issue 15: one base value for the model, each series' level and flat-window forecast)
    assert len(e.feature_names) == L + 3 * (L + H) + L + 2
    assert e.feature_names[-2:] == ["series level (mean of its input window)",
                                    "forecast from the flat window, minus the level"]
    assert len(set(e.base_values.tolist())) == 1 and e.base_values[0] == pytest.approx(exog_model.base_value())
    assert e.additivity_error_relative < 1e-3  # against the largest contribution (issue 15's bound for networks)
    assert e.feature_names[:2] == ["y_lag_1", "y_lag_2"] and "HUFL_step_24" in e.feature_names
    assert "HULL_step_1" not in e.feature_names
    assert e.values.shape == (2 * 6, len(e.feature_names))
    assert e.rows["step"].to_list() == [1, 2, 3, 4, 5, 6] * 2
    forecast = exog_model.predict(6, X_future=future.select("unique_id", "ds", "HUFL"))
    np.testing.assert_allclose(e.output, forecast["NHITS"].to_numpy(), rtol=1e-5)
    # completeness of integrated gradients: base + sum(values) = output up to the quadrature error
    spread = np.abs(e.output - e.base_values).max()
    assert e.additivity_error < 1e-4 * max(spread, 1.0)  # measured 6e-6 (float32 rounding)
    train, _ = _split(ett, 24)
    last3 = train.filter(pl.col("unique_id") == e.rows["unique_id"][0])["y"].to_numpy()[-3:][::-1]
    np.testing.assert_allclose(e.data[0, :3], last3, rtol=1e-6)  # y_lag_1 is the last observation


def test_tft_variable_selection_weights() -> None:
    df = load_air_passengers()
    model = make_model({"name": "tft", "params": {**TINY_TFT, "horizon": 12, "input_size": 24}}, freq="1mo").fit(df)
    parts = model.variable_importance()
    assert set(parts) == {"past", "future"}
    past = parts["past"].drop("position", "kind")
    assert past.height == 24
    np.testing.assert_allclose(past.sum_horizontal().to_numpy(), 1.0, rtol=1e-5)
    assert parts["future"].columns == ["position", "month", "kind"]
    assert parts["past"]["kind"][0] == "tft_variable_selection_weight"
    # issue 15: the explanation carries them beside its attributions (and over HTTP, in to_dict)
    e = model.explain(2, n_steps=8)
    assert e.weights is not None and set(e.weights) == {"past", "future"}
    assert e.weights["past"].equals(parts["past"])
    assert e.to_dict()["weights"]["future"][0]["kind"] == "tft_variable_selection_weight"


def test_seeded_cpu_training_is_deterministic_and_writes_no_logs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    df = load_air_passengers()
    seen: list[tuple[float, str]] = []
    a = make_model({"name": "nhits", "params": TINY_NHITS}, freq="1mo")
    a.progress = lambda f, m: seen.append((f, m))
    out_a = a.fit(df).predict(12)
    out_b = make_model({"name": "nhits", "params": TINY_NHITS}, freq="1mo").fit(df).predict(12)
    assert out_a.equals(out_b)
    assert os.listdir(tmp_path) == []  # no lightning_logs, checkpoints or other stray folders
    assert seen[-1][0] == 1.0 and seen[-1][1].startswith("nhits: step 5/5, loss ")


def test_parameters_are_validated() -> None:
    with pytest.raises(InvalidParameterError, match=r"model 'nhits': invalid parameter 'max_steps'"):
        make_model({"name": "nhits", "params": {"max_steps": 0}})
    with pytest.raises(InvalidParameterError, match=r"'scaler_type'"):
        make_model({"name": "tft", "params": {"scaler_type": "zscore"}})
    with pytest.raises(InvalidParameterError, match=r"'hidden_size'"):
        make_model({"name": "nhits", "params": {"hidden_size": 8}})
    df = load_air_passengers()
    with pytest.raises(InvalidInputError, match=r"hist_exog columns \['price'\] are not in the data"):
        make_model({"name": "nhits", "params": {**TINY_NHITS, "hist_exog": ["price"]}}, freq="1mo").fit(df)


def test_static_inputs(ett: pl.DataFrame) -> None:
    train, future = _split(ett.drop("HULL", "HUFL"), 24)
    static = pl.DataFrame({"unique_id": ["ETTh1", "B"], "size": [1.0, 2.0]})
    model = make_model({"name": "tft", "params": {**TINY_TFT, "season_length": 24, "horizon": 24,
                                                  "input_size": 48}}, freq="1h").fit(train, static=static)
    assert model.predict(24).height == 48
    assert set(model.variable_importance()) == {"past", "future", "static"}
    with pytest.raises(InvalidInputError, match=r"the static frame has no row for series \['B'\]"):
        make_model({"name": "tft", "params": TINY_TFT}, freq="1h").fit(train, static=static.head(1))


def test_quantile_rearrangement_orders_crossed_outputs() -> None:
    names = ["-median", "-lo-95", "-lo-80", "-hi-80", "-hi-95"]
    q = np.array([[[5.0, 4.0, 3.0, 6.0, 7.0]]])  # lo-95 (4) above lo-80 (3): crossed
    out = rearrange_quantiles(q, names)
    assert out[0, 0].tolist() == [5.0, 3.0, 4.0, 6.0, 7.0]


def test_cli_and_api_start_without_torch() -> None:
    code = ("import sys, forecasting.cli, forecasting.api.app; from forecasting.models import make_model; "
            "make_model('nhits'); make_model('tft'); "
            "bad = [m for m in ('torch', 'neuralforecast', 'pytorch_lightning', 'ray') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_recursion_beyond_the_horizon_equals_neuralforecasts() -> None:
    """Blocks after the first read the fed-back medians as available history, as neuralforecast's recursion."""
    from neuralforecast import NeuralForecast
    from neuralforecast.losses.pytorch import MQLoss
    from neuralforecast.models import NHITS

    df = load_air_passengers()
    params = {**TINY_NHITS, **PLAIN, "horizon": 6, "input_size": 12, "calendar": [], "level": [80]}
    ours = make_model({"name": "nhits", "params": params}, freq="1mo").fit(df)
    net = NHITS(h=6, input_size=12, loss=MQLoss(level=[80]), max_steps=5, windows_batch_size=16, batch_size=2,
                scaler_type="robust", random_seed=1, n_freq_downsample=[3, 1, 1], n_pool_kernel_size=[2, 2, 1],
                mlp_units=[[16, 16]] * 3, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                accelerator="cpu")
    assert ours.net_.hparams["n_freq_downsample"] == [3, 1, 1]
    guard_scaler(net)
    nf = NeuralForecast(models=[net], freq="1mo")
    nf.fit(_scaled(ours, df.with_columns(pl.col("ds").dt.month_start())))
    theirs = _unscale(ours, nf.predict(h=18), [f"NHITS{n}" for n in ours.output_names_])
    names = ours.output_names_
    raw = np.stack([theirs[f"NHITS{n}"].to_numpy() for n in names], axis=-1)[:, None, :]
    expected = rearrange_quantiles(raw, names)[:, 0, names.index("-median")]
    np.testing.assert_allclose(ours.predict(18)["NHITS"].to_numpy(), expected, rtol=1e-5)


def test_training_stops_at_the_deadline_with_a_time_limit_error() -> None:
    import time

    from forecasting.errors import TimeLimitError

    model = make_model({"name": "nhits", "params": {**TINY_NHITS, "max_steps": 100_000}}, freq="1mo")
    model.deadline = time.time() - 1  # already past: training is not started (checked before nf.fit)
    with pytest.raises(TimeLimitError, match=r"training of 'nhits' not started: the time limit was reached"):
        model.fit(load_air_passengers())
    assert not hasattr(model, "net_")


@pytest.mark.parametrize("scale", [1e-12, 1.0])
def test_tiny_and_constant_series_are_forecast_on_their_own_scale(scale: float) -> None:
    """The network's scaler adds an absolute 1e-6: tiny windows are brought to unit magnitude around it, and a
    window with no variation forecasts its constant (found by a hostile pass: 1e-4 constants came back as +-0.1)."""
    y = np.sin(np.arange(96) / 3) + 2
    sine = pl.DataFrame({"unique_id": ["a"] * 96, "ds": list(range(96)), "y": y * scale})
    flat = pl.DataFrame({"unique_id": ["b"] * 96, "ds": list(range(96)), "y": [1e-4 * scale] * 96})
    model = make_model({"name": "nhits", "params": TINY_NHITS}).fit(pl.concat([sine, flat]))
    out = model.predict(3, level=[80])
    b = out.filter(pl.col("unique_id") == "b")
    assert b["NHITS"].to_list() == pytest.approx([1e-4 * scale] * 3, rel=1e-6)
    assert b["NHITS-lo-80"].to_list() == pytest.approx([1e-4 * scale] * 3, rel=1e-6)
    a = out.filter(pl.col("unique_id") == "a")["NHITS"].to_numpy()
    assert np.all((a > 0.5 * scale) & (a < 4 * scale))  # on the series' scale, the right sign


def test_values_beyond_float32_are_refused_and_units_checked() -> None:
    df = pl.DataFrame({"unique_id": ["a"] * 96, "ds": list(range(96)), "y": [1e40] * 96})
    with pytest.raises(InvalidInputError, match=r"column 'y' has 96 values beyond \+/-1e\+30 .* float32"):
        make_model({"name": "nhits", "params": TINY_NHITS}).fit(df)
    model = make_model({"name": "nhits", "params": TINY_NHITS}, freq="1mo").fit(load_air_passengers())
    with pytest.raises(InvalidInputError, match=r"units must be 'y' for model 'nhits'"):
        model.explain(3, units="model")
    assert model.explain(3, units="y").values.shape[0] == 3


def test_log_target_is_the_network_of_log_y_exponentiated(tmp_path: Path) -> None:
    """target_transform='log': the same seeded network trained on log(y) by hand, with exp on its quantiles."""
    df = load_air_passengers()
    params = {**TINY_NHITS, "horizon": 12, "input_size": 24}
    logged = make_model({"name": "nhits", "params": {**params, "target_transform": "log"}}, freq="1mo").fit(df)
    by_hand = make_model({"name": "nhits", "params": {**params, "target_transform": None}},
                         freq="1mo").fit(df.with_columns(pl.col("y").log()))
    ours, theirs = logged.predict(24, level=[80]), by_hand.predict(24, level=[80])  # 2 blocks: recursion in y units
    for col in ["NHITS", "NHITS-lo-80", "NHITS-hi-80"]:
        np.testing.assert_allclose(ours[col].to_numpy()[:12], np.exp(theirs[col].to_numpy()[:12]), rtol=1e-5)
    assert (ours["NHITS-lo-80"] > 0).all()
    # the second block reads the first block's median as history: in y units for one, log units for the other
    np.testing.assert_allclose(ours["NHITS"].to_numpy()[12:], np.exp(theirs["NHITS"].to_numpy()[12:]), rtol=1e-4)
    loaded = NeuralForecaster.load(logged.save(tmp_path / "m"))
    assert loaded.params.target_transform == "log" and loaded.predict(24, level=[80]).equals(ours)


def test_log_target_refuses_non_positive_values() -> None:
    df = load_air_passengers()
    bad = df.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(0.0).otherwise(pl.col("y")).alias("y"))
    model = make_model({"name": "nhits", "params": {**TINY_NHITS, "target_transform": "log"}}, freq="1mo")
    with pytest.raises(InvalidInputError, match=r"data: target_transform='log' needs y > 0, but 1 rows of 1 series "
                                                r"have y <= 0 \(unique_id, ds, y\): \(AirPassengers, 1949-06-01 "
                                                r"00:00:00, 0\); use target_transform 'log1p'"):
        model.fit(bad)
    model.fit(df)
    with pytest.raises(InvalidInputError, match=r"history: target_transform='log' needs y > 0"):
        model.predict(12, history=df.with_columns(pl.col("y") - 200))
    # float32 windows: a positive value far below 1e-30 would be clamped, so it is refused, not forecast as 0
    with pytest.raises(InvalidInputError, match=r"history: target_transform='log' needs y >= 1e-30 \(the networks "
                                                r"compute in float32\), but 144 rows of 1 series have y below 1e-30"):
        model.predict(12, history=df.with_columns(pl.col("y") * 1e-38))
    with pytest.raises(InvalidParameterError, match=r"Invalid enum value 'sqrt' - at `\$.target_transform`; allowed: "
                                                    r"'auto', 'log', 'log1p', None"):
        make_model({"name": "nhits", "params": {"target_transform": "sqrt"}})
