"""Issue 13 (found by T1): the statistical adapters' forecasts do not depend on the series' scale.

statsforecast's optimisers use absolute tolerances, so the same series times 1e-12 gave ``auto_ets`` an 80%
band of [5.889, 5.999] (scaled back) against [5.051, 7.01] at scale 1, ``auto_arima`` and the Theta models
moved at 1e-6 and 1e6, and the Theta models returned non-finite forecasts around 1e140. Every adapter now fits
``y`` brought to ``max |y| = 10,000`` and scales back (``forecasting.models.stats.series_scale``, ``ScaledState``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting.decomposition import forecast_components
from forecasting.models.registry import make_model
from forecasting.models.stats import FIT_MAGNITUDE, ScaledState, series_scale

N = 48
SEASONAL = ("seasonal_naive", "auto_ets", "auto_arima", "auto_theta", "dynamic_optimized_theta", "auto_ces", "mstl")
INTERMITTENT = ("croston_classic", "croston_optimized", "croston_sba", "adida", "imapa", "tsb")
MODELS = (*SEASONAL, "naive", *INTERMITTENT)
SCALES = (1e-12, 1e-6, 1e6, 1e12)


def _series(name: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if name in INTERMITTENT:
        return np.where(rng.random(N) < 0.4, rng.integers(1, 6, N), 0).astype(np.float64)
    t = np.arange(N)
    return 6 + 0.02 * t + 0.4 * np.sin(2 * np.pi * t / 4) + rng.normal(0, 0.15, N)


def _model(name: str):  # noqa: ANN202 - a forecaster
    return make_model({"name": name, "params": {"season_length": 4}} if name in SEASONAL else name, freq=1)


def _forecast(name: str, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(h, 3) mean and 80% band, and the fitted values, of a fresh model on ``y``."""
    model = _model(name).fit(pl.DataFrame({"unique_id": ["a"] * y.size, "ds": list(range(y.size)), "y": y}))
    out = model.predict(8, level=[80])
    alias = out.columns[2]
    bands = out.select(alias, f"{alias}-lo-80", f"{alias}-hi-80").to_numpy()
    return bands, model.fitted_values()[alias].to_numpy()


@pytest.mark.parametrize("name", MODELS)
def test_forecasts_bands_and_fitted_values_are_scale_equivariant(name: str) -> None:
    y = _series(name)
    ref, ref_fitted = _forecast(name, y)
    assert np.isfinite(ref).all()
    for a in SCALES:
        got, fitted = _forecast(name, a * y)
        np.testing.assert_allclose(got / a, ref, rtol=1e-6, atol=1e-9 * np.abs(ref).max(), err_msg=f"{name} x {a}")
        np.testing.assert_allclose(fitted / a, ref_fitted, rtol=1e-6, atol=1e-9 * np.abs(y).max(),
                                   err_msg=f"{name} fitted x {a}")


def test_auto_ets_band_at_1e_minus_12_is_the_band_at_scale_1() -> None:
    """T1's case: the band was about 20 times narrower at 1e-12 (0.110 wide against 1.959)."""
    y = _series("auto_ets")
    ref, _ = _forecast("auto_ets", y)
    got, _ = _forecast("auto_ets", 1e-12 * y)
    width_ref, width_got = ref[:, 2] - ref[:, 1], (got[:, 2] - got[:, 1]) / 1e-12
    assert width_ref.min() > 0.3
    np.testing.assert_allclose(width_got, width_ref, rtol=1e-6)


@pytest.mark.parametrize("name", ["auto_theta", "dynamic_optimized_theta"])
def test_theta_on_values_around_1e140_is_finite_and_scaled(name: str) -> None:
    y = _series(name)
    ref, _ = _forecast(name, y)
    got, _ = _forecast(name, 1e140 * y)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got / 1e140, ref, rtol=1e-6)


def test_series_scale_brings_the_largest_magnitude_to_10000_or_is_one() -> None:
    assert FIT_MAGNITUDE == 10_000.0
    assert series_scale(np.array([3.0, -8.0, 5.0])) == 8.0 / 10_000.0
    assert series_scale(np.array([0.0, 0.0])) == 1.0
    assert series_scale(np.array([], dtype=np.float64)) == 1.0
    assert series_scale(np.array([1e300, -1.5e300])) == 1.5e300 / 10_000.0
    assert series_scale(np.array([1e-306])) == 1.0  # the scale would not be a normal float


def test_multiplicative_rule_still_names_the_rows_after_scaling() -> None:
    y = _series("auto_ets")
    y[5] = -1.0
    frame = pl.DataFrame({"unique_id": ["a"] * N, "ds": list(range(N)), "y": y * 1e-9})
    with pytest.raises(Exception, match=r"model 'auto_ets' with model='MAM'.*every y > 0"):
        make_model({"name": "auto_ets", "params": {"season_length": 4, "model": "MAM"}}, freq=1).fit(frame)


def test_ets_states_and_decomposition_are_in_units_of_y() -> None:
    """The decomposition reads ETS's own states: they come back times the scale (multiplicative season: ratios)."""
    y = _series("auto_ets") * 1000.0
    frame = pl.DataFrame({"unique_id": ["a"] * N, "ds": list(range(N)), "y": y})
    model = make_model({"name": "auto_ets", "params": {"season_length": 4, "model": "MAM"}}, freq=1).fit(frame)
    state = model.states_["a"]
    assert isinstance(state, ScaledState)
    assert state.scale == float(np.abs(y).max()) / 10_000.0
    states = state.model_["states"]
    inner = state.fit.model_["states"]
    np.testing.assert_allclose(states[:, 0], inner[:, 0] * state.scale)  # level: units of y
    np.testing.assert_allclose(states[:, 1], inner[:, 1] * state.scale)  # additive trend: units of y
    np.testing.assert_array_equal(states[:, 2:], inner[:, 2:])  # multiplicative seasonal indices: ratios
    assert 5000 < states[-1, 0] < 8000  # the level near the series' last values (about 6,900)
    fc = model.predict(4)
    expl = forecast_components(model, [("a", y)], fc, "AutoETS", 4)
    names = list(expl.feature_names)
    level = expl.values[:, names.index("level (ETS level at the last observation, minus the series mean)")]
    np.testing.assert_allclose(level, states[-1, 0] - y.mean())  # the model's own level, in units of y
    np.testing.assert_allclose(expl.base_values + expl.values.sum(axis=1), fc["AutoETS"].to_numpy())


# --------------------------------------------------------------------------- found alongside (T1): the API route
def test_delete_version_that_is_not_an_integer_is_a_400_naming_version_and_the_schema_keeps_its_bounds(
        tmp_path: Path) -> None:
    """``DELETE /v1/models/m/versions/abc`` answered a generic 404 with no ``field`` (the route did not match)."""
    from litestar.testing import TestClient

    from forecasting.api.app import create_app
    from forecasting.api.settings import Settings

    with TestClient(create_app(Settings(state_dir=tmp_path))) as client:
        r = client.delete("/v1/models/m/versions/abc")
        assert r.status_code == 400
        assert (r.json()["field"], r.json()["detail"]) == ("version", "version: Expected `int`, got `str`")
        assert client.delete("/v1/models/m/versions/0").json()["detail"] == "version: Expected `int` >= 1"
        assert client.delete("/v1/models/m/versions/5").status_code == 404  # a well-formed version: no such model
        params = client.get("/schema/openapi.json").json()["paths"]["/v1/models/{name}/versions/{version}"][
            "delete"]["parameters"]
    schema = next(p for p in params if p["name"] == "version")["schema"]
    assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 1, 2**31 - 1)
