"""Issue 14 leftovers (second round): the OpenAPI bounds from the operator's settings, half-hour offsets kept in
the library's frames, progress inside the hold-out fit, one per-request thread limit on every serving path, and
``approximate`` refused for statistical models."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import wait_until
from litestar.testing import TestClient

from forecasting import service
from forecasting.api.app import create_app
from forecasting.api.settings import Settings
from forecasting.errors import CapabilityError
from forecasting.store import Store

SMALL_XGB = {"name": "xgboost", "params": {"n_estimators": 5, "max_depth": 2, "conformal_windows": 0}}


def monthly(n: int = 36, uid: str = "s1") -> dict[str, list[Any]]:
    """``n`` months from 2020-01 of a seasonal series (period 12)."""
    ds = [f"{2020 + i // 12}-{i % 12 + 1:02d}-01" for i in range(n)]
    return {"unique_id": [uid] * n, "ds": ds, "y": [100.0 + 10 * (i % 12) + i for i in range(n)]}


# --------------------------------------------------------------------------- 5. approximate on statistical models
STAT_REFUSAL = ("model 'auto_ets' has no approximate explanation (trees only; a statistical model is explained by its "
                "exact labelled decomposition): drop approximate")


def test_approximate_on_a_statistical_model_is_refused_naming_approximate_in_the_library() -> None:
    with pytest.raises(CapabilityError) as caught:
        service.explain(monthly(), model="auto_ets", h=3, approximate=True)
    assert str(caught.value) == STAT_REFUSAL
    assert caught.value.field == "approximate"
    # without it, the same model is explained by its decomposition
    method = service.explain(monthly(), model="auto_ets", h=3).explanation.method
    assert method.startswith("labelled decomposition (not SHAP) of the AutoETS forecast")


def test_approximate_on_a_statistical_model_is_a_422_naming_approximate_over_http(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        r = c.post("/v1/explain", json={"data": monthly(), "h": 3, "model": "auto_ets", "approximate": True})
    assert r.status_code == 422
    assert r.json()["field"] == "approximate" and r.json()["detail"] == STAT_REFUSAL


# --------------------------------------------------------------------------- 4. one thread limit on every serving path
@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from forecasting.service.core import Limits
    from forecasting.service.registered import RegisteredModels
    from forecasting.service.training import fit_and_save

    root = tmp_path_factory.mktemp("threads")
    fit_and_save(pl.DataFrame(monthly()), root / "saved", model=SMALL_XGB, freq="1mo")
    store = Store(f"sqlite:///{root / 'db.sqlite'}", root / "artifacts", cache_size=4)
    store.register_version("sales", tenant="acme", spec={"name": "xgboost"}, kind="forecast",
                           artifact_src_dir=root / "saved", fingerprint={"freq": "1mo", "series": 1})
    yield RegisteredModels(store=store, runner=None, limits=Limits())  # type: ignore[arg-type]
    store.close()


@pytest.mark.parametrize(("path", "spied"), [("explain", "explain"), ("forecast", "forecast_fitted"),
                                             ("report", "build_report")])
def test_every_serving_path_runs_with_one_torch_thread_and_restores_the_count(
        registered: Any, monkeypatch: pytest.MonkeyPatch, path: str, spied: str) -> None:
    torch = pytest.importorskip("torch")
    import forecasting.reports
    import forecasting.service.registered as module

    seen: list[int] = []
    owner = forecasting.reports if spied == "build_report" else module
    real = getattr(owner, spied)

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, spied, spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        call = getattr(registered, path)
        if path == "report":
            call("acme", "sales", h=3)
        else:
            call("acme", "sales", h=3, history=monthly())
        assert seen == [1]
        assert torch.get_num_threads() == 2  # restored after the request
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- 1. the document says the operator's limits
def steps(n: int) -> dict[str, list[Any]]:
    return {"unique_id": ["a"] * n, "ds": list(range(n)), "y": [float(i % 7) for i in range(n)]}


def test_the_openapi_document_states_the_operators_max_h_and_max_rows_not_the_defaults(tmp_path: Path) -> None:
    env = {"FORECASTING_STATE_DIR": str(tmp_path / "a"), "FORECASTING_MAX_H": "200", "FORECASTING_MAX_ROWS": "500",
           "FORECASTING_MAX_SERIES": "7"}
    with TestClient(create_app(Settings.from_env(env))) as c:
        doc = c.get("/schema/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name in ("ForecastRequest", "CrossValidationRequest", "RegisteredForecastRequest", "InlineExplainRequest",
                 "ExplainRequest"):
        props = schemas[name]["properties"]
        assert (props["h"]["minimum"], props["h"]["maximum"]) == (1, 200), name
        if "data" in props:
            assert (props["data"]["minItems"], props["data"]["maxItems"]) == (1, 500), name
    assert schemas["ExplainRequest"]["properties"]["k"]["maximum"] == 1000  # a fixed bound, not a setting
    train = doc["paths"]["/v1/models"]["post"]["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert (train["h"]["maximum"], train["data"]["maxItems"]) == (200, 500)
    assert doc["info"]["description"].endswith(
        "Limits of this service: h at most 200; at most 500 rows and 7 series per request; bodies up to 20 MiB; "
        "60 s of fitting per forecast request (a 422 or 413 names the limit).")
    # another app of the same process with the default settings still documents the defaults
    with TestClient(create_app(Settings(state_dir=tmp_path / "b"))) as c:
        default = c.get("/schema/openapi.json").json()
    props = default["components"]["schemas"]["ForecastRequest"]["properties"]
    assert (props["h"]["maximum"], props["data"]["maxItems"]) == (1000, 1_000_000)


def test_validation_agrees_with_the_documented_operator_limits(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(state_dir=tmp_path, max_h=200, max_rows=500))) as c:
        at_h = c.post("/v1/forecast", json={"data": steps(8), "h": 200, "model": "naive"})
        past_h = c.post("/v1/forecast", json={"data": steps(8), "h": 201, "model": "naive"})
        at_rows = c.post("/v1/forecast", json={"data": steps(500), "h": 2, "model": "naive"})
        past_rows = c.post("/v1/forecast", json={"data": steps(501), "h": 2, "model": "naive"})
        train = c.post("/v1/models", json={"name": "m", "data": steps(30), "h": 201, "model": "naive"})
        cv = c.post("/v1/cross_validation", json={"data": steps(8), "h": 201, "models": ["naive"]})
    assert at_h.status_code == 200 and len(at_h.json()["forecasts"]) == 200
    assert at_rows.status_code == 200
    for r in (past_h, train, cv):
        assert r.status_code == 422 and r.json()["field"] == "h" and r.json()["detail"] == "h must be at most 200, got 201"
    assert past_rows.status_code == 422 and past_rows.json()["field"] == "data"
    assert past_rows.json()["detail"] == "data has 501 rows; the limit is 500"


# --------------------------------------------------------------------------- 2. half-hour offsets in the library's frames
def test_pandas_forecasts_keep_a_half_hour_offset_given_as_text() -> None:
    import pandas as pd

    import forecasting as fc

    ds = [f"2024-01-{d:02d}T00:00:00+05:30" for d in range(1, 11)]
    result = fc.forecast(pd.DataFrame({"unique_id": "a", "ds": ds, "y": range(10)}), model="naive", h=2)
    assert str(result.forecasts["ds"].dtype) == "datetime64[us, UTC+05:30]"
    assert [t.isoformat() for t in result.forecasts["ds"]] == ["2024-01-11T00:00:00+05:30", "2024-01-12T00:00:00+05:30"]
    # the JSON answer says the same (one conversion, data.at_caller_offset, for both)
    assert [r["ds"].isoformat() for r in result.to_dict()["forecasts"]] == ["2024-01-11T00:00:00+05:30",
                                                                            "2024-01-12T00:00:00+05:30"]


@pytest.mark.parametrize(("offset", "minutes"), [("-03:30", -210), ("+05:45", 345)])
def test_pandas_forecasts_keep_a_fixed_offset_column_with_the_callers_names(offset: str, minutes: int) -> None:
    from datetime import timedelta, timezone

    import pandas as pd

    import forecasting as fc

    zone = timezone(timedelta(minutes=minutes))
    hours = pd.date_range("2024-03-01 22:00", periods=6, freq="h").tz_localize(zone)  # crosses midnight
    frame = pd.DataFrame({"store": "s", "at": hours, "sales": [1.0, 2, 3, 4, 5, 6]})
    result = fc.forecast(frame, model="naive", h=2, id_col="store", time_col="at", target_col="sales")
    assert list(result.forecasts.columns) == ["store", "at", "Naive"]
    assert [t.isoformat() for t in result.forecasts["at"]] == [f"2024-03-02T04:00:00{offset}",
                                                               f"2024-03-02T05:00:00{offset}"]
    assert f"ds converted from UTC offset {offset} to UTC; forecasts are returned at that offset" in result.notes


def test_polars_forecasts_of_a_half_hour_offset_are_in_utc_and_say_so() -> None:
    import forecasting as fc

    ds = [f"2024-01-{d:02d}T00:00:00+05:30" for d in range(1, 11)]
    result = fc.forecast(pl.DataFrame({"unique_id": "a", "ds": ds, "y": range(10)}), model="naive", h=2)
    assert [t.isoformat() for t in result.forecasts["ds"]] == ["2024-01-10T18:30:00+00:00", "2024-01-11T18:30:00+00:00"]
    assert result.notes[-1] == ("polars has no fixed-offset time zones: the forecasts' ds are in UTC (the caller's "
                                "offset +05:30 is kept in pandas frames and JSON answers)")


# --------------------------------------------------------------------------- 3. progress inside the hold-out fit
def test_a_networks_hold_out_fit_reports_its_steps_between_015_and_03(tmp_path: Path) -> None:
    pytest.importorskip("neuralforecast")
    from forecasting.service.training import train

    calls: list[tuple[float, str]] = []
    spec = {"name": "nhits", "params": {"max_steps": 5, "input_size": 12, "mlp_units": 8, "windows_batch_size": 64}}
    train(pl.DataFrame(monthly(72)), kind="forecast", spec=spec, workdir=tmp_path, h=12,
          step=lambda p, m: calls.append((p, m)))
    hold = [(round(p, 6), m.split(",")[0]) for p, m in calls if m.startswith("hold-out fit: window")]
    assert hold == [(round(0.15 + 0.03 * i, 6), f"hold-out fit: window 1 of 1: nhits: step {i}/5") for i in range(1, 6)
                    ] + [(0.3, "hold-out fit: window 1 of 1 fitted")]
    assert [p for p, _ in calls] == sorted(p for p, _ in calls)  # never backwards
    assert (0.3, "validation metrics measured") in calls


def test_a_long_step_without_progress_of_its_own_shows_its_seconds_and_cancel_still_stops_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from forecasting.jobs import JobRunner

    # a model with no progress of its own (the trees report their rounds since H5): seasonal AutoARIMA on
    # 30 hourly series, several seconds per series with m = 24
    slow = {"name": "auto_arima", "params": {"season_length": 24}}
    hours = [f"2024-01-{1 + i // 24:02d}T{i % 24:02d}:00:00" for i in range(24 * 8)]
    data = {"unique_id": [f"s{k}" for k in range(30) for _ in hours], "ds": hours * 30,
            "y": [50.0 + k + 10 * math.sin(i * 2 * math.pi / 24) + ((i * 7919 + k * 31) % 13) / 3
                  for k in range(30) for i in range(len(hours))]}
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "artifacts")
    runner = JobRunner(store, max_workers=1, grace_s=1.0)
    try:
        job_id = runner.submit_training("acme", "slow", slow, data, h=24)
        info = wait_until(lambda: (j := runner.get_job(job_id, "acme")).message.endswith("s so far)") and j, 120,
                          "the heartbeat's 's so far)' message")
        # XGBoost reports its boosting rounds since team 21 (H5): the heartbeat adds the seconds to the last one
        assert info.state == "running" and 0.15 <= info.progress < 0.3
        # statistical models report their series fitted since team 22 (H2): 30 series, so the heartbeat may
        # also add the seconds to "series k/30 fitted"
        assert re.fullmatch(r"hold-out fit: (fitting on all but the last 24 steps to measure validation metrics|"
                            r"window 1 of 1: series \d+/30 fitted) \(\d+ s so far\)",
                            info.message), info.message
        runner.cancel(job_id, "acme")
        assert runner.wait(job_id, "acme", timeout_s=10).state == "cancelled"
    finally:
        runner.shutdown()
        store.close()
