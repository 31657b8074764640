"""Issue 17 leftover: registered models trained over a hierarchy answer reconciled forecasts.

A version trained with ``hierarchy`` (the same object as POST /v1/forecast's field) keeps its structure
and methods; its forecast from bottom series equals the inline ``forecast_hierarchy`` of the same model
and data, coherent within 1e-6; a series not in the structure is a 422 naming it; methods that need
in-sample fitted values on a model without them are refused at training, naming the method.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import polars as pl
import pytest
from conftest import wait_job
from litestar.testing import TestClient
from polars.testing import assert_frame_equal

from forecasting.api.app import create_app
from forecasting.api.settings import Settings
from forecasting.errors import CapabilityError, InvalidInputError, InvalidParameterError
from forecasting.service.core import Limits
from forecasting.service.hierarchy import HierarchyResult, forecast_hierarchy, training_request
from forecasting.service.registered import RegisteredModels
from forecasting.service.training import train
from forecasting.store import Store

T = "default"
METHODS = ["bottom_up", "ols", "wls_struct", "mint_shrink"]


def _bottom() -> pl.DataFrame:
    """Four bottom series (states A and B, two regions each), 24 monthly points, seasonal with noise."""
    rng = np.random.default_rng(17)
    rows = []
    for k, (state, region) in enumerate([("A", "a1"), ("A", "a2"), ("B", "b1"), ("B", "b2")]):
        y = 10 + 3 * k + 2 * np.sin(np.arange(24) * 2 * np.pi / 12) + rng.normal(0, 0.5, 24)
        rows.append(pl.DataFrame({"state": state, "region": region,
                                  "ds": pl.date_range(pl.date(2020, 1, 1), pl.date(2021, 12, 1), "1mo", eager=True),
                                  "y": y}))
    return pl.concat(rows)


def _register(store: Store, frame: pl.DataFrame, hierarchy: dict[str, Any], model: Any, *, name: str) -> None:
    """What a training job does (training_request now, train in the worker, register)."""
    data, spec = training_request(frame, hierarchy, model)
    result = train(data, kind="forecast", spec=msgspec.to_builtins(spec), workdir=store.artifacts_dir.parent / name,
                   h=4)
    store.register_version(name, tenant=T, spec=result.spec, kind="forecast", artifact_src_dir=result.artifact,
                           fingerprint=result.fingerprint, metrics=result.metrics, exog=result.exog,
                           max_h=result.max_h)


@pytest.fixture()
def services(tmp_path: Path) -> Iterator[RegisteredModels]:
    store = Store(f"sqlite:///{(tmp_path / 'forecasting.db').as_posix()}", tmp_path / "artifacts")
    yield RegisteredModels(store=store, runner=None, limits=Limits())  # type: ignore[arg-type]
    store.close()


def _coherent(result: HierarchyResult) -> None:
    for method in result.methods:
        assert result.coherence[f"{result.alias}/{method}"] < 1e-6
        f = result.forecasts
        col = f"{result.alias}/{method}"
        total = f.filter(pl.col("unique_id") == "Total")[col].to_numpy()
        bottom = f.filter(pl.col("level") == "bottom").group_by("ds").agg(pl.col(col).sum()).sort("ds")[col]
        np.testing.assert_allclose(total, bottom.to_numpy(), rtol=1e-6)


def test_registered_forecast_equals_the_inline_reconciled_forecast(services: RegisteredModels) -> None:
    frame = _bottom()
    _register(services.store, frame, {"nested": "state/region", "methods": METHODS}, "auto_ets", name="m")
    info = services.store.get("m", tenant=T)
    stored = info.metrics["hierarchy"]
    assert stored["methods"] == METHODS
    assert stored["structure"]["ids"] == ["Total", "A", "B", "A/a1", "A/a2", "B/b1", "B/b2"]
    assert stored["structure"]["members"] == [[0, 1, 2, 3], [0, 1], [2, 3]]
    assert info.fingerprint["series"] == 7  # trained on every series, aggregates included

    history = frame.with_columns(pl.concat_str("state", "region", separator="/").alias("unique_id"))
    got = services.forecast(T, "m", h=4, level=[80], history=history.select("unique_id", "ds", "y"))
    assert isinstance(got, HierarchyResult)
    assert got.registered is not None and got.registered.ref == "m@1"
    inline = forecast_hierarchy(frame, hierarchy="state/region", model=info.spec, h=4, level=[80],
                                methods=METHODS)
    assert_frame_equal(got.forecasts, inline.forecasts)
    assert got.forecasts.height == 7 * 4
    _coherent(got)
    assert got.coherence[got.alias] > 1e-6  # the base forecasts of auto_ets per series do not add up


def test_bad_history_is_refused_naming_the_series(services: RegisteredModels) -> None:
    frame = _bottom()
    _register(services.store, frame, {"nested": ["state", "region"], "methods": ["bottom_up"]}, "naive", name="m")
    history = frame.with_columns(pl.concat_str("state", "region", separator="/").alias("unique_id")).select(
        "unique_id", "ds", "y")
    stray = history.filter(pl.col("unique_id") == "A/a1").with_columns(pl.lit("C/c9").alias("unique_id"))
    with pytest.raises(InvalidInputError, match="series 'C/c9' not in the version's hierarchy") as err:
        services.forecast(T, "m", h=2, history=pl.concat([history, stray]))
    assert err.value.field == "history"
    with pytest.raises(InvalidInputError, match="missing: 'B/b2'"):
        services.forecast(T, "m", h=2, history=history.filter(pl.col("unique_id") != "B/b2"))
    with pytest.raises(InvalidInputError, match="history .the bottom series of its hierarchy. is required"):
        services.forecast(T, "m", h=2)
    with pytest.raises(CapabilityError, match="fixed at training") as err:
        services.forecast(T, "m", h=2, history=history, hierarchy={"nested": "state"})
    assert err.value.field == "hierarchy"


def test_training_refuses_what_cannot_work(services: RegisteredModels) -> None:
    frame = _bottom()
    with pytest.raises(CapabilityError, match=r"\['mint_shrink'\] need the base model's in-sample fitted values "
                                              r"and model 'xgboost' keeps none") as err:
        services.submit_training(T, name="m", model="xgboost", data=frame,
                                 hierarchy={"nested": "state/region", "methods": ["ols", "mint_shrink"]})
    assert err.value.field == "hierarchy.methods"
    with pytest.raises(InvalidParameterError, match="unknown hierarchy field 'levels'"):
        services.submit_training(T, name="m", model="naive", data=frame, hierarchy={"levels": ["state"]})
    with pytest.raises(InvalidInputError, match="nope"):
        services.submit_training(T, name="m", model="naive", data=frame, hierarchy='{"nested": "nope"}')
    with pytest.raises(CapabilityError, match="needs a strictly nested hierarchy"):
        services.submit_training(T, name="m", model="naive", data=frame,
                                 hierarchy={"group": ["state", "region"], "methods": ["top_down"]})


def test_a_saved_global_model_reconciles_from_its_stored_history(services: RegisteredModels) -> None:
    frame = _bottom()
    _register(services.store, frame, {"nested": "state/region", "methods": ["bottom_up", "ols"]},
              {"name": "xgboost", "params": {"n_estimators": 20}}, name="g")
    info = services.store.get("g", tenant=T)
    assert info.artifact is not None
    got = services.forecast(T, "g", h=3)
    assert isinstance(got, HierarchyResult)
    assert got.forecasts["unique_id"].unique(maintain_order=True).to_list() == [
        "Total", "A", "B", "A/a1", "A/a2", "B/b1", "B/b2"]
    _coherent(got)
    # bottom-up keeps the bottom series' base forecasts
    bottom = got.forecasts.filter(pl.col("level") == "bottom")
    np.testing.assert_allclose(bottom[f"{got.alias}/bottom_up"].to_numpy(), bottom[got.alias].to_numpy())


# --------------------------------------------------------------------------- over HTTP
@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(Settings(state_dir=tmp_path_factory.mktemp("state"), max_train_seconds=120))
    with TestClient(app) as c:
        yield c


def test_http_train_with_a_hierarchy_then_forecast_reconciled(client: TestClient) -> None:
    frame = _bottom()
    data = {c: [str(v) for v in frame[c].to_list()] if c != "y" else frame[c].to_list() for c in frame.columns}
    hierarchy = {"nested": "state/region", "methods": ["bottom_up", "mint_shrink"]}
    r = client.post("/v1/models", json={"name": "prisonish", "model": "auto_ets", "data": data, "h": 4,
                                        "hierarchy": hierarchy})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"])
    assert job["state"] == "succeeded", job

    history = {"unique_id": [f"{s}/{g}" for s, g in zip(data["state"], data["region"], strict=True)],
               "ds": data["ds"], "y": data["y"]}
    r = client.post("/v1/models/prisonish/forecast", json={"h": 4, "history": history})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ref"] == "prisonish@1"
    assert body["hierarchy"]["methods"] == ["bottom_up", "mint_shrink"]
    assert body["hierarchy"]["coherence"]["AutoETS/mint_shrink"] < 1e-6
    inline = client.post("/v1/forecast", json={"model": "auto_ets", "data": data, "h": 4, "hierarchy": hierarchy})
    assert inline.status_code == 200, inline.text
    assert body["forecasts"] == inline.json()["forecasts"]

    history["unique_id"][0] = "Z/z1"
    r = client.post("/v1/models/prisonish/forecast", json={"h": 4, "history": history})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "history" and "'Z/z1'" in r.json()["detail"]

    r = client.post("/v1/models", json={"name": "bad", "model": "xgboost", "data": data,
                                        "hierarchy": {"nested": "state/region", "methods": ["wls_var"]}})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "hierarchy.methods" and "wls_var" in r.json()["detail"]
