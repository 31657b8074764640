"""Issue 17, item 2: TSMixer (neuralforecast TSMixer / TSMixerx, channel-independent) as a third network.

The contract suite (tests/test_models_contract.py) covers it from the registry; here: which
network is built, save/load, integrated-gradient explanations, ONNX parity (float32 and int8),
the derived defaults and time_limit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

pytest.importorskip("neuralforecast")

from forecasting.datasets import load_air_passengers  # noqa: E402
from forecasting.export import export_model  # noqa: E402
from forecasting.models import make_model  # noqa: E402
from forecasting.models.tsmixer import TSMixerForecaster  # noqa: E402
from forecasting.runtime import load_onnx  # noqa: E402

H = 12
SMALL = {"max_steps": 5, "windows_batch_size": 16, "batch_size": 2, "ff_dim": 8}


@pytest.fixture(scope="module")
def air() -> pl.DataFrame:
    return load_air_passengers()


@pytest.fixture(scope="module")
def plain(air: pl.DataFrame) -> Any:
    """No exogenous input at all (calendar off): neuralforecast's TSMixer."""
    return make_model({"name": "tsmixer", "params": {**SMALL, "calendar": []}}, freq="1mo").fit(air)


@pytest.fixture(scope="module")
def with_calendar(air: pl.DataFrame) -> Any:
    """The monthly default calendar input (month): TSMixerx."""
    return make_model({"name": "tsmixer", "params": SMALL}, freq="1mo").fit(air)


def test_tsmixer_without_inputs_tsmixerx_with_them(plain: Any, with_calendar: Any) -> None:
    from neuralforecast.models import TSMixer, TSMixerx

    assert isinstance(plain, TSMixerForecaster) and plain.alias == "TSMixer"
    assert isinstance(plain.net_, TSMixer) and not isinstance(plain.net_, TSMixerx)
    assert isinstance(with_calendar.net_, TSMixerx) and with_calendar.futr_cols_ == ["month"]
    # one channel: each series' windows are samples, so any number of series trains and forecasts
    assert plain.net_.n_series == 1 and with_calendar.net_.n_series == 1
    assert not type(plain.net_).MULTIVARIATE and not type(with_calendar.net_).MULTIVARIATE


def test_derived_defaults_and_note(plain: Any) -> None:
    # AirPassengers: 144 months, h 24 (two seasons), input max(2*24, 7*12) = 84 with room for validation
    s = plain.settings_
    assert (plain.trained_horizon, s.input_size, s.early_stop_patience_steps, s.max_steps) == (24, 84, 5, 5)
    assert s.target_transform == "log"
    assert plain.notes_[0].startswith("tsmixer: input_size=84, target_transform=log, early stopping on the last 24")


def test_architecture_parameters_reach_the_network(air: pl.DataFrame) -> None:
    m = make_model({"name": "tsmixer", "params": {**SMALL, "calendar": [], "n_block": 3, "dropout": 0.2,
                                                  "revin": True}}, freq="1mo").fit(air)
    assert len(m.net_.mixing_layers) == 3 and m.net_.revin
    assert m.net_.mixing_layers[0].temporal_mixer.temporal_drop.p == 0.2
    assert m.net_.mixing_layers[0].feature_mixer.feature_lin_1.out_features == 8


def test_forecasts_have_levels_in_order(with_calendar: Any) -> None:
    out = with_calendar.predict(H, level=[80, 95])
    assert out.columns == ["unique_id", "ds", "TSMixer", "TSMixer-lo-80", "TSMixer-hi-80", "TSMixer-lo-95",
                           "TSMixer-hi-95"]
    assert out.height == H
    v = out.select(pl.exclude("unique_id", "ds")).to_numpy()
    assert np.all(v[:, 3] <= v[:, 1]) and np.all(v[:, 1] <= v[:, 0]) and np.all(v[:, 0] <= v[:, 2])
    assert np.all(v[:, 2] <= v[:, 4]) and np.all(v > 0)  # log transform: positive quantiles


@pytest.mark.parametrize("which", ["plain", "with_calendar"])
def test_save_load_gives_identical_forecasts(which: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    model = request.getfixturevalue(which)
    before = model.predict(H, level=[80])
    loaded = TSMixerForecaster.load(model.save(tmp_path / "m"))
    assert type(loaded.net_).__name__ == type(model.net_).__name__
    assert loaded.predict(H, level=[80]).equals(before)


@pytest.mark.parametrize("which", ["plain", "with_calendar"])
def test_integrated_gradients_add_up(which: str, request: pytest.FixtureRequest) -> None:
    model = request.getfixturevalue(which)
    e = model.explain(h=3)
    L = model.window
    assert e.values.shape[0] == 3
    assert e.feature_names[:2] == ["y_lag_1", "y_lag_2"]
    assert sum(n.startswith("y_lag_") for n in e.feature_names) == L
    months = sum(n.startswith("month_") for n in e.feature_names)
    assert months == (0 if which == "plain" else L + model.trained_horizon)  # lags and steps of the calendar
    # the explained output is the point forecast
    assert np.allclose(e.output, model.predict(3)["TSMixer"].to_numpy(), rtol=1e-5)
    spread = np.abs(e.output - e.base_values).max()
    assert e.additivity_error < 2e-3 * max(spread, 1.0)


def test_onnx_export_parity_and_int8(with_calendar: Any, tmp_path: Path) -> None:
    # TSMixerx with its future-known input (the plain network is exported by the contract suite)
    model = with_calendar
    folder = export_model(model, tmp_path / "x", quantize=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["parity"]["network.onnx"]["batch_many"]["max_rel_diff"] < 1e-4
    assert manifest["quantized"]["graph"] == "network.int8.onnx"
    native = model.predict(H, level=[80, 95])
    runtime = load_onnx(folder).predict(H, level=[80, 95])
    assert runtime.columns == native.columns
    a, b = runtime.select(pl.exclude("unique_id", "ds")).to_numpy(), native.select(pl.exclude("unique_id", "ds")).to_numpy()
    assert np.allclose(a, b, rtol=1e-4)
    int8 = load_onnx(folder, quantized=True).predict(H)["TSMixer"].to_numpy()
    assert np.abs(int8 / native["TSMixer"].to_numpy() - 1).max() < 0.05


def test_time_limit_keeps_the_network_trained_so_far(air: pl.DataFrame) -> None:
    m = make_model({"name": "tsmixer", "params": {**SMALL, "calendar": [], "max_steps": 100_000,
                                                  "time_limit": 1.0}}, freq="1mo").fit(air)
    assert any(n.startswith("tsmixer: training stopped at step") and "time_limit of 1 s" in n for n in m.notes_)
    assert m.predict(H).height == H


def test_readme_tsmixer_example() -> None:
    """The README's tsmixer block runs as written."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "tsmixer" in b]
    scope: dict[str, Any] = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    from neuralforecast.models import TSMixerx

    assert isinstance(scope["tsmixer"].net_, TSMixerx)
    assert scope["forecasts"].columns == ["unique_id", "ds", "TSMixer", "TSMixer-lo-80", "TSMixer-hi-80"]
    assert scope["forecasts"].height == 12 and scope["attributions"].values.shape[0] == 3
