"""Issue 16, the hostile tester's findings left at stop 20: extreme y, X_future checked before fitting, retraining
policies (h, a cron that never fires, cron with an interval), conformal bands on short series, the missing-y
message, CSV ``nan`` at the CLI and over HTTP, unknown series/versions, identical spec-only retrains and the
challenger's hold-out computed once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from litestar.testing import TestClient
from test_issue16_api import client  # noqa: F401 - the fixture: an app with model 'm' (naive on 's', ds 1..24)
from test_issue16_monitoring import _register, _seasonal

from forecasting.data import validate_panel
from forecasting.errors import InvalidInputError
from forecasting.service.monitoring import Monitoring, detect_anomalies
from forecasting.store import Store, default_locations

T = "default"


# --------------------------------------------------------------------------- 1. extreme y
def test_y_beyond_1e150_is_refused_by_the_data_contract_naming_series_and_rows(client: TestClient) -> None:  # noqa: F811 - the fixture
    """y=1e308 is finite but its square is inf: it was stored, then accuracy was null and a retrain a 422 on
    ``metrics``. The data contract (validate_panel, the one place) now refuses |y| > 1e150 at every door."""
    data = {"unique_id": ["a", "a", "a", "b", "b", "b"], "ds": [1, 2, 3, 1, 2, 3],
            "y": [1.0, 1e308, 3.0, 1.0, 2.0, -2e150]}
    message = ("y must be at most 1e+150 in magnitude (so that its squares and sums stay finite in float64); 2 rows "
               "are beyond it: series 'a': rows 1 (ds 2, y 1e+308); series 'b': rows 5 (ds 3, y -2e+150); rescale "
               "the series (e.g. in units of 1e100)")
    with pytest.raises(InvalidInputError) as caught:
        validate_panel(data)
    assert (caught.value.field, caught.value.message, caught.value.details["rows"]) == ("y", message, [1, 5])
    assert validate_panel({"unique_id": ["a"] * 2, "ds": [1, 2], "y": [1e150, -1e150]}).frame["y"].to_list() == [
        1e150, -1e150]  # the bound itself is accepted
    r = client.post("/v1/forecast", json={"data": data, "model": "naive", "h": 2})
    assert r.status_code == 422 and (r.json()["field"], r.json()["detail"]) == ("data.y", message)
    r = client.post("/v1/models/m/observations", json={"data": {"unique_id": ["s", "s"], "ds": [25, 26],
                                                                 "y": [1.0, 1e308]}})
    assert r.status_code == 422 and r.json()["field"] == "data.y"
    assert "series 's': rows 1 (ds 26, y 1e+308)" in r.json()["detail"]
    assert client.get("/v1/models/m/observations", params={"start": "25"}).json()["rows"] == 0  # nothing stored


# --------------------------------------------------------------------------- 2. X_future before fitting
def test_a_bad_x_future_is_refused_before_the_tree_is_fitted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explaining xgboost with an X_future that does not cover the horizon fitted for 40 s, then refused: the
    X_future check (validate_future) now runs before fitting, for inline explain and forecast."""
    pytest.importorskip("xgboost")
    from forecasting.models.trees import TreeForecaster
    from forecasting.service.core import explain, forecast

    def no_fit(self: Any, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("fitted before X_future was checked")

    monkeypatch.setattr(TreeForecaster, "fit", no_fit)
    t = np.arange(60)
    data = pl.DataFrame({"unique_id": "a", "ds": t + 1, "y": 10 + np.sin(t / 4), "promo": (t % 7 == 0) * 1.0})
    bad = pl.DataFrame({"unique_id": ["a"] * 3, "ds": [61, 62, 63], "promo": [0.0, 1.0, None]})
    spec = {"name": "xgboost", "params": {"n_estimators": 5, "season_length": 12}}
    for use_case in (explain, forecast):
        with pytest.raises(InvalidInputError) as caught:
            use_case(data, model=spec, h=3, X_future=bad)
        assert caught.value.field == "X_future"
        assert caught.value.message == ("X_future does not cover the forecast horizon: 'promo' missing for 1 "
                                        "(unique_id, ds) pairs: (a, 63)")
    with pytest.raises(InvalidInputError, match=r"^X_future is required: the model uses future exogenous columns "
                                                r"\['promo'\]"):
        explain(data, model=spec, h=3)


# --------------------------------------------------------------------------- 3. retraining policies
def test_policy_h_a_cron_that_never_fires_and_cron_with_interval_are_422(client: TestClient) -> None:  # noqa: F811 - the fixture
    r = client.put("/v1/models/m/retraining", json={"h": 5000})  # FORECASTING_MAX_H is 1000 by default
    assert r.status_code == 422 and (r.json()["field"], r.json()["detail"]) == ("h", "h must be at most 1000, got 5000")
    r = client.put("/v1/models/m/retraining", json={"cron": "0 0 31 2 *"})  # APScheduler: no next fire time
    assert r.status_code == 422 and r.json()["field"] == "cron"
    assert r.json()["detail"] == ("cron: '0 0 31 2 *' never fires (no such date, e.g. 31 February): the model would "
                                  "never be retrained; give a date that exists")
    r = client.put("/v1/models/m/retraining", json={"cron": "0 3 * * *", "interval_s": 3600})
    assert r.status_code == 422 and r.json()["field"] == "interval_s"
    assert r.json()["detail"] == ("cron ('0 3 * * *') and interval_s (3600) are both set: a schedule is one or the "
                                  "other, so one of them would be ignored; drop one")
    assert client.get("/v1/models/m/retraining").json()["policy"] is None  # nothing was kept
    r = client.put("/v1/models/m/retraining", json={"cron": "0 0 29 2 *", "h": 1000})  # leap days exist
    assert r.status_code == 200 and r.json()["next_run"].startswith("2028-02-29T00:00:00")


# --------------------------------------------------------------------------- 4. conformal bands on short series
def test_a_conformal_band_on_too_few_residuals_falls_back_to_the_normal_band_with_a_note() -> None:
    """With n residuals the 99% conformal quantile is the ceil(0.99 (n + 1))-th smallest: for n < 199 it is the
    largest, set by the spike itself, which then cannot be flagged. Such series get the normal band and a note."""
    from forecasting.anomalies import conformal_min_residuals

    assert [conformal_min_residuals(lv) for lv in (99, 95, 80, 50)] == [199, 39, 9, 3]
    y = 10 + np.sin(np.arange(96) * 2 * np.pi / 24)
    y[60] += 100
    spec = {"name": "seasonal_naive", "params": {"season_length": 24}}
    short = detect_anomalies({"unique_id": ["a"] * 96, "ds": list(range(96)), "y": y.tolist()}, model=spec,
                             method="conformal")
    assert short.anomalies["ds"].to_list()[:1] == [60]  # found: the normal band of the 72 residuals
    assert ("conformal band: 1 series have fewer than 199 in-sample residuals ('a' (72)), the fewest with which a 99% "
            "conformal band can leave a point outside it (with fewer, it is the largest residual, set by the spike "
            "itself): they got the normal band") in short.notes
    y = 10 + np.sin(np.arange(480) * 2 * np.pi / 24) + np.random.default_rng(0).normal(0, 0.1, 480)
    y[200] += 100  # 456 residuals: the 99% band is the 453rd smallest, below the spike's two (at 200 and 224)
    long = detect_anomalies({"unique_id": ["a"] * 480, "ds": list(range(480)), "y": y.tolist()}, model=spec,
                            method="conformal")
    assert long.anomalies["ds"].to_list()[:1] == [200] and not any("conformal band" in n for n in long.notes)


# --------------------------------------------------------------------------- 5. the missing-y message
def test_the_missing_y_message_lists_only_the_users_columns(client: TestClient) -> None:  # noqa: F811 - the fixture
    r = client.post("/v1/models/m/observations", json={"data": {"unique_id": ["s"], "ds": [25]}})
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == ("missing required column 'y'; the long format needs unique_id, ds, y (columns "
                                  "present: unique_id, ds)")


# --------------------------------------------------------------------------- 6. CSV nan at both doors
def test_a_csv_nan_is_a_missing_value_at_the_cli_and_over_http(client: TestClient, tmp_path: Path,  # noqa: F811
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Both doors read through forecasting.service.tables.read_table, where polars read ``NaN`` as a number but a
    column holding ``nan`` (or ``NA``) as text: "y must be numeric", which fill_missing cannot fill. ``nan`` is now
    NaN and ``NA`` null, missing values at the CLI and over HTTP alike."""
    from typer.testing import CliRunner

    from forecasting.cli import app
    from forecasting.service.tables import read_table

    other = tmp_path / "other.csv"
    other.write_text("unique_id,ds,y,kind\ns,25,1.5,x\ns,26,nan,NA\ns,27, NA ,y\ns,28,NaN,z\n")
    frame = read_table(other)
    assert frame["y"].cast(pl.String).to_list() == ["1.5", "NaN", None, "NaN"]  # nan as NaN is; NA is null
    assert frame["kind"].to_list() == ["x", "NA", "y", "z"]  # a text column stays text
    text = "unique_id,ds,y\ns,25,1.5\ns,26,nan\ns,27, NA \n"
    csv = tmp_path / "new.csv"
    csv.write_text(text)
    expected = "observations: y is null, NaN or infinite in rows 1, 2 (series s); nothing was stored"
    r = client.post("/v1/models/m/observations", files={"file": ("new.csv", text.encode(), "text/csv")})
    assert r.status_code == 422 and (r.json()["field"], r.json()["detail"]) == ("data.y", expected)
    monkeypatch.setenv("FORECASTING_STATE_DIR", str(tmp_path))
    done = CliRunner().invoke(app, ["observe", "--model", "m", "--input", str(csv)])
    assert done.exit_code == 2 and f"error [data.y]: {expected}" in done.output
    filled = validate_panel(read_table(csv), fill_missing="interpolate")
    assert filled.frame["y"].to_list() == [1.5, 1.5, 1.5]  # fill_missing fills it like any missing value


# --------------------------------------------------------------------------- 7. unknown series and versions
def test_an_unknown_series_or_version_is_404_naming_it(client: TestClient) -> None:  # noqa: F811 - the fixture
    r = client.get("/v1/models/m/observations", params={"series": ["s", "nope"]})
    assert r.status_code == 404 and r.json()["field"] == "series"
    assert r.json()["detail"] == "model 'm' has no series 'nope' (its stored observations and training data have 1 series)"
    r = client.get("/v1/models/m/accuracy", params={"version": 7})
    assert r.status_code == 404 and (r.json()["field"], r.json()["detail"]) == (
        "version", "model 'm' has no version 7 (versions: 1)")
    assert client.get("/v1/models/m/observations", params={"series": ["s"]}).json()["rows"] == 24
    assert client.get("/v1/models/m/accuracy", params={"version": 1}).status_code == 200


# --------------------------------------------------------------------------- 8 and 9. retrains
def _mon(tmp_path: Path) -> tuple[Store, Monitoring]:
    store = Store(*default_locations(tmp_path))
    mon = Monitoring(store)
    _register(store, mon, _seasonal(), "naive", h=4)
    return store, mon


def test_an_identical_spec_only_retrain_records_no_change_and_registers_nothing(tmp_path: Path) -> None:
    store, mon = _mon(tmp_path)
    try:
        decision = mon.retrain(T, "m")  # naive (a spec) on the data it was registered with
        assert (decision.champion_version, decision.challenger_version, decision.promoted) == (1, None, False)
        assert decision.detail["no_change"] is True and decision.champion_score is None
        assert decision.detail["reason"].startswith("no change: the challenger would be version 1 itself (the same "
                                                    "spec, refitted on the same data, sha256 ")
        assert [v.version for v in store.versions("m", T)] == [1]
        assert store.get("m@production", tenant=T).version == 1  # the first decision names the champion
        mon.observe(T, "m", pl.DataFrame({"unique_id": ["s"], "ds": [25], "y": [1.0]}))
        after = mon.retrain(T, "m")  # new data: a challenger is trained and scored
        assert after.challenger_version == 2 and "no_change" not in after.detail
    finally:
        store.close()


def test_the_challengers_holdout_is_fitted_once_and_recorded_with_its_version(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import forecasting.backtest as backtest

    store, mon = _mon(tmp_path)
    calls: list[str] = []
    real = backtest.holdout_scores

    def counted(panel: Any, *, model: Any, **kwargs: Any) -> Any:
        calls.append(model["name"] if isinstance(model, dict) else str(model))
        return real(panel, model=model, **kwargs)

    monkeypatch.setattr(backtest, "holdout_scores", counted)
    try:
        mon.set_policy(T, "m", {"model": {"name": "seasonal_naive", "params": {"season_length": 4}}, "h": 4})
        decision = mon.retrain(T, "m")
        assert sorted(calls) == ["naive", "seasonal_naive"]  # the challenger once (it was twice), the champion once
        recorded = store.get("m@2", tenant=T).metrics
        assert recorded["smape"] == decision.challenger_score == 0.0 and recorded["window"]["h"] == 4
    finally:
        store.close()
