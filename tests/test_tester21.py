"""The session-21 tester's findings (T1): each test names the case it came from; the report lists the commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from litestar.testing import TestClient
from test_issue16_api import client  # noqa: F401 - the fixture: model 'm' (naive on 's', max_h 4)
from test_issue16_monitoring import _register, _seasonal, _store

from forecasting.errors import InvalidParameterError
from forecasting.service.monitoring import Monitoring, RetrainPolicy, crontab_trigger

T = "default"

WEDNESDAY = datetime(2026, 12, 2, 0, 5, tzinfo=UTC)


def _next(cron: str, now: datetime = WEDNESDAY) -> str:
    fire = crontab_trigger(cron).get_next_fire_time(None, now)
    return "never" if fire is None else fire.strftime("%Y-%m-%d %H:%M %a")


# --------------------------------------------------------------------------- 1. crontab weekdays
@pytest.mark.parametrize(("cron", "expected"), [
    # '0 0 * * 1' (crontab: Mondays) fired on Tuesdays: APScheduler 3's from_crontab counts weekdays from Monday
    ("0 0 * * 1", "2026-12-07 00:00 Mon"),
    ("0 0 * * 0", "2026-12-06 00:00 Sun"),
    ("0 0 * * 7", "2026-12-06 00:00 Sun"),  # was refused: crontab's second Sunday
    ("0 0 * * 1-5", "2026-12-03 00:00 Thu"),
    ("0 0 * * 5-7", "2026-12-04 00:00 Fri"),
    ("0 0 * * 6", "2026-12-05 00:00 Sat"),
    ("0 0 * * */3", "2026-12-05 00:00 Sat"),  # 0, 3, 6: Sunday, Wednesday (passed at 00:05), Saturday
    ("30 6 * * sat", "2026-12-05 06:30 Sat"),
    # both day fields restricted: crontab fires on either (the 13th OR a Friday); APScheduler needed both
    ("0 0 13 * 5", "2026-12-04 00:00 Fri"),
    ("0 0 30 2 1", "2027-02-01 00:00 Mon"),  # 30 February never, but every Monday of February does
    ("0 0 29 2 *", "2028-02-29 00:00 Tue"),  # the next 29 February
    ("0 0 30 2 *", "never"),
])
def test_cron_fires_when_crontab_would(cron: str, expected: str) -> None:
    assert _next(cron) == expected


def test_cron_checks_still_refuse_naming_the_field() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        RetrainPolicy(cron="0 0 * * 8").check()
    assert (caught.value.field, caught.value.message) == (
        "cron", "cron: '0 0 * * 8' is not a crontab expression (minute hour day month weekday): weekday '8' is "
                "not within 0-7 (0 and 7: Sunday) in increasing order with a step >= 1")
    with pytest.raises(InvalidParameterError, match="never fires"):
        RetrainPolicy(cron="0 0 31 4 *").check()
    RetrainPolicy(cron="0 0 30 2 1").check()  # fires on Mondays of February: accepted


# --------------------------------------------------------------------------- 2. a deleted version's staged data
def test_deleting_a_version_before_its_training_data_merged_keeps_monitoring_working(tmp_path: Path) -> None:
    """Train m1@2, forecast from it, delete it (force), then observe: every monitoring route of m1 answered
    404 "model 'm1' has no version 2" for good (the job's staged data looked its version up on each call)."""
    store = _store(tmp_path)
    mon = Monitoring(store)
    _register(store, mon, _seasonal(), "naive", name="m1", h=4)
    _register(store, mon, _seasonal(), "seasonal_naive", name="m1", h=4)  # version 2
    job = store.create_job(tenant=T, kind="train", request={"name": "m1"})
    store.update_job(job.id, state="succeeded", result_model="m1", result_version=2)
    late = pl.DataFrame({"unique_id": ["s"], "ds": [25], "y": [1.0]})
    mon.stage_training(T, "m1", job, pl.concat([_seasonal(), late]))
    store.delete_version("m1", 2, T, force=True)
    result = mon.observe(T, "m1", {"unique_id": ["s"], "ds": [26], "y": [5.0]})
    assert (result.rows, result.series) == (1, ["s"])
    stored = mon.observations(T, "m1")
    assert stored["ds"].to_list() == [*range(1, 25), 26]  # the deleted version's extra row (ds 25) is not kept
    assert not list((store.artifacts_dir / T / "m1" / "_staged").glob("*.parquet"))
    store.close()


# --------------------------------------------------------------------------- 3. aware datetimes as Python objects
def test_python_datetimes_at_a_fixed_offset_keep_it_and_several_zones_are_named() -> None:
    """ds as Python datetimes (an object column, a mapping of lists): one fixed offset (+05:30) was converted to
    UTC with the note "ds converted from UTC to UTC", while the same instants as a pandas tz column or as JSON
    text kept +05:30; a pandas concat of a +05:30 and a Europe/Paris panel said the same "UTC to UTC"."""
    import numpy as np
    import pandas as pd

    import forecasting as fc

    ist = timezone(timedelta(hours=5, minutes=30))
    df = pd.DataFrame({"unique_id": "k", "ds": [datetime(2024, 1, 1, i, tzinfo=ist) for i in range(24)],
                       "y": np.arange(24.0)}).astype({"ds": object})
    result = fc.forecast(df, h=2, model="naive")
    assert [t.isoformat() for t in result.forecasts["ds"]] == ["2024-01-02T00:00:00+05:30",
                                                                "2024-01-02T01:00:00+05:30"]
    assert result.notes == ["ds converted from UTC offset +05:30 to UTC; forecasts are returned at that offset"]
    paris = pd.DataFrame({"unique_id": "p", "ds": pd.date_range("2024-03-30", periods=72, freq="h",
                                                               tz="Europe/Paris"), "y": np.arange(72.0)})
    mixed = fc.forecast(pd.concat([df, paris]), h=1, model="naive")
    assert [t.isoformat() for t in mixed.forecasts["ds"]] == ["2024-01-01T18:30:00+00:00",
                                                               "2024-04-01T23:00:00+00:00"]
    assert mixed.notes == ["ds has several UTC offsets (+01:00, +02:00, +05:30); forecasts are returned in UTC"]


# --------------------------------------------------------------------------- 4. the document's operator limits
def test_every_door_that_enforces_the_operators_limits_documents_them(tmp_path: Path) -> None:
    """With FORECASTING_MAX_H=50 and MAX_ROWS=2000, POST /v1/anomalies and .../observations refused 2,016 rows
    and GET .../report refused h=51 (422s) while the document gave no bound for them."""
    from litestar.testing import TestClient

    from forecasting.api.app import create_app
    from forecasting.api.settings import Settings

    with TestClient(create_app(Settings(state_dir=tmp_path, max_h=50, max_rows=2000))) as c:
        doc = c.get("/schema/openapi.json").json()
        anomalies = doc["components"]["schemas"]["AnomalyRequest"]["properties"]["data"]
        observe = doc["paths"]["/v1/models/{name}/observations"]["post"]["requestBody"]["content"]
        report = doc["paths"]["/v1/models/{ref}/report"]["get"]["parameters"]
        assert (anomalies["minItems"], anomalies["maxItems"]) == (1, 2000)
        data = observe["application/json"]["schema"]["properties"]["data"]
        assert (data["minItems"], data["maxItems"]) == (1, 2000)
        assert [p["schema"] for p in report if p["name"] == "h"] == [{"type": "integer", "minimum": 1, "maximum": 50}]
        rows = {"unique_id": ["a"] * 2001, "ds": list(range(2001)), "y": [1.0] * 2001}
        refused = c.post("/v1/anomalies", json={"data": rows, "model": "naive"}).json()
        assert (refused["status"], refused["field"], refused["detail"]) == (
            422, "data", "data has 2001 rows; the limit is 2000")


# --------------------------------------------------------------------------- 5. a weighted ensemble without a window
def test_a_weighted_ensemble_that_cannot_validate_says_its_weights_are_equal() -> None:
    """method 'weighted' with validation_h=60 on 48 observations answered the plain mean (182.5 = (194 + 171) / 2)
    with no note: the caller asked for validation weights and could not tell they were not used."""
    import forecasting as fc

    y = [112.0, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104, 118] * 3 + [
        171.0, 180, 193, 181, 183, 218, 230, 242, 209, 191, 172, 194]
    df = pl.DataFrame({"unique_id": ["a"] * 48, "ds": list(range(48)), "y": y})
    result = fc.forecast(df, h=1, model={"name": "ensemble", "params": {
        "members": ["naive", "seasonal_naive"], "method": "weighted", "validation_h": 60, "season_length": 12}})
    assert result.forecasts["Ensemble"].to_list() == [(194.0 + 171.0) / 2]
    assert result.notes == ["weighted: equal weights: no series has the 73 observations a validation window of "
                            "validation_h=60 steps needs (the longest has 48); lower validation_h or use method "
                            "'median'"]


# --------------------------------------------------------------------------- 6. fixed offsets beyond forecast
def test_cross_validation_and_anomalies_answer_at_the_callers_fixed_offset(tmp_path: Path) -> None:
    """+05:30 data: fc.forecast's pandas frame and POST /v1/forecast kept +05:30, while fc.cross_validation,
    fc.detect_anomalies and POST /v1/anomalies answered the same instants in UTC."""
    import numpy as np
    import pandas as pd
    from litestar.testing import TestClient

    import forecasting as fc
    from forecasting.api.app import create_app
    from forecasting.api.settings import Settings

    idx = pd.date_range("2024-01-01", periods=48, freq="h", tz="+05:30")
    df = pd.DataFrame({"unique_id": "k", "ds": idx, "y": np.arange(48.0) % 7})
    cv = fc.cross_validation(df, model="naive", h=2, n_windows=1)
    assert [t.isoformat() for t in cv["ds"]] == ["2024-01-02T22:00:00+05:30", "2024-01-02T23:00:00+05:30"]
    assert [t.isoformat() for t in cv["cutoff"]] == ["2024-01-02T21:00:00+05:30"] * 2
    assert cv["Naive"].to_list() == [3.0, 3.0]
    points = fc.detect_anomalies(df, model="naive")
    assert points["ds"].iloc[0].isoformat() == "2024-01-01T00:00:00+05:30"
    spike = df.assign(y=df["y"].where(df.index != 30, 100.0))
    rows = {"unique_id": ["k"] * 48, "ds": [t.isoformat() for t in idx], "y": spike["y"].to_list()}
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        answer = c.post("/v1/anomalies", json={"data": rows, "model": "naive", "level": 95}).json()
    assert [a["ds"] for a in answer["anomalies"]][:1] == ["2024-01-02T06:00:00+05:30"]


def test_the_cross_validation_route_gives_cutoffs_at_the_callers_fixed_offset(tmp_path: Path) -> None:
    """POST /v1/cross_validation on +05:30 data answered cutoff '2024-01-02T15:30:00Z' (UTC)."""
    from litestar.testing import TestClient

    from forecasting.api.app import create_app
    from forecasting.api.settings import Settings

    rows = [{"unique_id": "k", "ds": f"2024-01-0{1 + i // 24}T{i % 24:02d}:00:00+05:30", "y": float(i % 7)}
            for i in range(48)]
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        answer = c.post("/v1/cross_validation", json={"data": rows, "h": 2, "models": ["naive"]}).json()
    assert [(m["cutoff"], m["mae"]) for m in answer["metrics"]] == [("2024-01-02T21:00:00+05:30", 1.5)]


# --------------------------------------------------------------------------- 7. h beyond a version's max_h
def test_a_registered_forecast_beyond_the_versions_validated_horizon_says_so(client: TestClient) -> None:  # noqa: F811
    """The document said h is "at most the version's max_h too", yet xg@1 (max_h 3) answered h=50 with no word:
    the answer stands (a global model forecasts any h) and now carries a note; the document says so."""
    assert client.get("/v1/models/m").json()["versions"][0]["max_h"] == 4
    history = {"unique_id": ["s"] * 24, "ds": list(range(1, 25)), "y": _seasonal()["y"].to_list()}
    within = client.post("/v1/models/m/forecast", json={"h": 4, "history": history}).json()
    beyond = client.post("/v1/models/m/forecast", json={"h": 5, "history": history}).json()
    assert [r["Naive"] for r in beyond["forecasts"]] == [5.0] * 5
    assert not [n for n in within["notes"] if "validated for" in n]
    assert [n for n in beyond["notes"] if "validated for" in n] == [
        "h=5 is beyond the 4 steps version m@1 was validated for (its metrics' window): the steps after 4 were not "
        "measured"]


# --------------------------------------------------------------------------- 8. rows named on the caller's clock
def test_refusals_name_timestamps_on_the_callers_clock() -> None:
    """+05:30 data: a duplicate, a gap and a null y were named at the internal UTC time without a zone
    ('2023-12-31 23:30:00' for the caller's 2024-01-01T05:00:00+05:30), while the |y| > 1e150 refusal used the
    caller's own; a Europe/Paris gap pointed at a local time that exists (05:00 UTC shown as '05:00')."""
    import pandas as pd

    from forecasting.data import validate_panel
    from forecasting.errors import InvalidInputError

    idx = pd.date_range("2024-01-01", periods=48, freq="h", tz="+05:30")
    rows = [{"unique_id": "k", "ds": t.isoformat(), "y": float(i % 7)} for i, t in enumerate(idx)]
    null = [dict(r) for r in rows]
    null[5]["y"] = None
    paris = pd.DataFrame({"unique_id": "p", "ds": pd.date_range("2024-03-30", periods=72, freq="h",
                                                               tz="Europe/Paris"), "y": 1.0}).drop(index=30)
    expected = {
        "dup": "duplicate (unique_id, ds) rows in 1 series: series 'k': 2 duplicate timestamps "
               "(2024-01-01T05:00:00+05:30 x2)",
        "gap": "gaps against freq '1h' in 1 series: series 'k': 1 missing timestamps (2024-01-01T10:00:00+05:30); "
               "pass fill_gaps with a fill_missing policy to fill them",
        "null": "y must be finite numbers; 1 rows are not: series 'k': 1 null y values at ds "
                "2024-01-01T05:00:00+05:30; pass fill_missing ('zero', 'forward' or 'interpolate') to fill them",
        "paris": "gaps against freq '1h' in 1 series: series 'p': 1 missing timestamps (2024-03-31T07:00:00+02:00); "
                 "pass fill_gaps with a fill_missing policy to fill them",
    }
    for case, data in (("dup", rows + rows[5:6]), ("gap", rows[:10] + rows[11:]), ("null", null), ("paris", paris)):
        with pytest.raises(InvalidInputError) as caught:
            validate_panel(data)
        assert caught.value.message == expected[case]


# --------------------------------------------------------------------------- 9. the CLI's CSV at a fixed offset
def test_the_cli_reads_and_writes_a_csv_at_the_callers_fixed_offset(tmp_path: Path) -> None:
    """`forecasting forecast -i in.csv` with ds like 2024-01-01T00:00:00+05:30: polars parsed the offset away
    (note "ds converted from UTC to UTC") and the CSV written was in UTC, while POST /v1/forecast answered
    at +05:30; a UTC ('Z') file stays in UTC."""
    from typer.testing import CliRunner

    from forecasting.cli import app

    rows = ["unique_id,ds,y"] + [f"k,2024-01-01T{i:02d}:00:00+05:30,{i % 3}" for i in range(6)]
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "z.csv").write_text("unique_id,ds,y\nk,2024-01-01T00:00:00Z,1\nk,2024-01-01T01:00:00Z,2\n")
    out = CliRunner().invoke(app, ["forecast", "-i", str(tmp_path / "in.csv"), "-m", "naive", "--h", "2",
                                   "-o", str(tmp_path / "out.csv")])
    assert out.exit_code == 0, out.output
    assert "ds converted from UTC offset +05:30 to UTC; forecasts are returned at that offset" in out.output
    assert (tmp_path / "out.csv").read_text().splitlines() == [
        "unique_id,ds,Naive", "k,2024-01-01T06:00:00+05:30,2.0", "k,2024-01-01T07:00:00+05:30,2.0"]
    out = CliRunner().invoke(app, ["forecast", "-i", str(tmp_path / "z.csv"), "-m", "naive", "--h", "1",
                                   "-o", str(tmp_path / "z_out.csv")])
    assert out.exit_code == 0 and "UTC to UTC" not in out.output
    assert (tmp_path / "z_out.csv").read_text().splitlines()[1] == "k,2024-01-01T02:00:00.000000+0000,2.0"


def test_utc_timestamps_are_not_said_to_be_converted_from_utc_to_utc() -> None:
    import pandas as pd

    import forecasting as fc

    df = pd.DataFrame({"unique_id": "k", "ds": pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC"),
                       "y": [1.0, 2.0, 3.0, 4.0]})
    assert fc.forecast(df, h=1, model="naive").notes == ["ds is in UTC; forecasts are returned in UTC"]
