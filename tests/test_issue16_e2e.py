"""Issue 16 end to end on M4 Hourly through the real server (``forecasting serve``), surviving a restart.

Register ``naive`` on the first part of three series, schedule retraining every few seconds with a
``seasonal_naive`` challenger, then day by day: forecast from ``production`` with intervals, post the next
day as observations and check the served forecasts are scored; restart the server in the middle; check every
decision is listed with its numbers and the alias moved only when the challenger's score was better; bad
observation batches are 422 naming the rows, with nothing stored. Skipped without the dataset folder.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from conftest import wait_job, wait_until
from test_e2e_service import AUTH, Server, server  # noqa: F401 - the server fixture, one per test

SEASONAL = {"name": "seasonal_naive", "params": {"season_length": 24}}


def _columns(frame: pl.DataFrame) -> dict[str, list[Any]]:
    return {c: frame[c].to_list() for c in ("unique_id", "ds", "y")}


def _day(test: pl.DataFrame, day: int) -> pl.DataFrame:
    first = pl.col("ds").min().over("unique_id")
    return test.filter((pl.col("ds") >= first + 24 * day) & (pl.col("ds") < first + 24 * (day + 1)))


def test_observe_score_retrain_restart(server: Server, data_dir: Path) -> None:  # noqa: F811 - the fixture
    if not (data_dir / "m4_hourly").is_dir():
        pytest.skip("m4_hourly not in the data folder")
    from forecasting.datasets import load_m4_hourly

    train, _ = load_m4_hourly(data_dir=data_dir, download=False)
    ids = ["H1", "H2", "H3"]
    full = train.filter(pl.col("unique_id").is_in(ids))
    first = full.filter(pl.col("ds") <= 600)
    later = full.filter(pl.col("ds") > 600)

    with httpx.Client(base_url=server.base, headers=AUTH, timeout=120) as c:
        r = c.post("/v1/models", json={"name": "m4h", "model": "naive", "data": _columns(first), "h": 24, "freq": 1})
        assert r.status_code == 202, r.text
        job = wait_job(c, r.headers["location"], timeout=90)
        assert job["state"] == "succeeded", job
        stored = c.get("/v1/models/m4h/observations", params={"series": ["H1"], "start": "590"}).json()
        assert stored["rows"] == 11 and stored["data"]["ds"][0] == 590  # the training data is kept

        r = c.put("/v1/models/m4h/retraining", json={"interval_s": 2, "model": SEASONAL, "h": 24})
        assert r.status_code == 200, r.text
        assert r.json()["next_run"] is not None
        # the first scheduled retrain: seasonal naive beats naive on hourly data, production moves to it
        decisions = wait_until(lambda: c.get("/v1/models/m4h/decisions").json(), 90, "a first decision")
        assert decisions[-1]["champion_version"] == 1 and decisions[-1]["trigger"] == "schedule"

        for day in range(4):
            if day == 2:  # restart in the middle: schedules, observations, served forecasts survive
                n_before = len(c.get("/v1/models/m4h/decisions").json())
                server.stop()
                server.start()
                c.base_url = httpx.URL(server.base)
                wait_until(lambda n=n_before: len(c.get("/v1/models/m4h/decisions").json()) > n, 90,
                           "a decision after the restart")
            history = c.get("/v1/models/m4h/observations").json()["data"]
            fc = c.post("/v1/models/m4h@production/forecast", json={"h": 24, "level": [80, 95], "history": history})
            assert fc.status_code == 200, fc.text
            new = _day(later, day)
            r = c.post("/v1/models/m4h/observations", json={"data": _columns(new)})
            assert r.status_code == 200, r.text
            assert r.json()["rows"] == 72 and r.json()["gaps"] == []

        acc = c.get("/v1/models/m4h/accuracy").json()
        assert sum(row["points"] for row in acc["rows"]) == 4 * 72  # every served point has its actual
        assert acc["levels"] == [80.0, 95.0]
        for row in acc["rows"]:
            assert 0 < row["smape"] < 200 and row["mase"] > 0 and 0 <= row["coverage_80"] <= row["coverage_95"] <= 1
        steps = c.get("/v1/models/m4h/accuracy", params={"by": "step"}).json()["rows"]
        assert sorted({row["step"] for row in steps}) == list(range(1, 25))

        c.put("/v1/models/m4h/retraining", json={})  # stop the schedule before reading the decisions
        time.sleep(1)
        decisions = c.get("/v1/models/m4h/decisions").json()
        assert len(decisions) >= 2  # one before the restart, one after it at least
        detail = c.get("/v1/models/m4h").json()
        alias_version = next(v["version"] for v in detail["versions"] if "production" in v["aliases"])
        promoted = [d for d in decisions if d["promoted"]]
        assert promoted, decisions
        assert alias_version == promoted[0]["challenger_version"]  # newest first
        for d in decisions:
            if d["detail"].get("no_change"):  # a tick before new observations: the same spec on the same data
                assert d["challenger_version"] is None and not d["promoted"]
                continue
            assert d["champion_score"] is not None and d["challenger_score"] is not None
            assert d["promoted"] == (d["challenger_score"] < d["champion_score"]), d
            assert d["detail"]["window"]["h"] == 24
        assert decisions[-1]["promoted"] and decisions[-1]["challenger_score"] < decisions[-1]["champion_score"]

        # bad batches: 422 naming the rows, nothing stored
        n_rows = c.get("/v1/models/m4h/observations").json()["rows"]
        nxt = _day(later, 4)  # the last 4 points of each series (they end at 700)
        bad = {
            "unknown series": nxt.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("H999"))
                                               .otherwise(pl.col("unique_id")).alias("unique_id")),
            "before": pl.concat([nxt, _day(later, 0).head(1).with_columns(pl.lit(0, dtype=pl.Int64).alias("ds"))]),
            "nan": nxt.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(float("nan")).otherwise(pl.col("y"))
                                    .alias("y")),
            "frequency": nxt.with_columns(pl.col("ds") * 2),
        }
        expected = {"unknown series": "rows 3", "before": f"rows {nxt.height}", "nan": "rows 5", "frequency": "rows 0"}
        for what, frame in bad.items():
            data = _columns(frame)
            if what == "nan":
                data["y"] = [None if v != v else v for v in data["y"]]
            r = c.post("/v1/models/m4h/observations", json={"data": data})
            assert r.status_code == 422, (what, r.text)
            assert expected[what] in r.json()["detail"], (what, r.json()["detail"])
        assert c.get("/v1/models/m4h/observations").json()["rows"] == n_rows

        anomalies = c.get("/v1/models/m4h/anomalies", params={"level": 80})
        assert anomalies.status_code == 200 and anomalies.json()["points"] == 4 * 72
