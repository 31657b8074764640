"""The session-21 tester's findings (T1): each test names the case it came from; the report lists the commands."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
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
