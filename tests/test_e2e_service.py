"""End to end against the real server: ``forecasting serve`` (uvicorn) on a free loopback port.

Train XGBoost on a few M4 Hourly series through ``POST /v1/models``, follow the job, forecast
with new history, explain, restart the server on the same state folder and check the model
still forecasts the same numbers. Skipped without the dataset folder.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from conftest import wait_job

BIN = Path(sys.executable).parent
KEY = "e2e-secret"
AUTH = {"Authorization": f"Bearer {KEY}"}
SPEC = {"name": "xgboost", "params": {"n_estimators": 30, "max_depth": 4, "season_length": 24,
                                      "conformal_windows": 0}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One ``forecasting serve`` process on a state folder."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.proc: subprocess.Popen[str] | None = None
        self.base = ""

    def start(self) -> str:
        port = _free_port()
        env = {**os.environ, "FORECASTING_STATE_DIR": str(self.state), "FORECASTING_API_KEYS": f"e2e:{KEY}",
               "FORECASTING_MAX_TRAIN_SECONDS": "300"}
        self.proc = subprocess.Popen([str(BIN / "forecasting"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.base = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 60
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stdout.read() if self.proc.stdout else ''}")
            try:
                if httpx.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return self.base
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("server was not ready within 60 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path / "state")
    s.start()
    try:
        yield s
    finally:
        s.stop()


def _columns(frame: pl.DataFrame) -> dict[str, list[Any]]:
    return {c: frame[c].to_list() for c in ("unique_id", "ds", "y")}


def test_train_forecast_explain_restart(server: Server, data_dir: Path) -> None:
    from forecasting.datasets import load_m4_hourly

    train, test = load_m4_hourly(data_dir=data_dir, download=False)
    ids = train["unique_id"].unique(maintain_order=True).to_list()[:4]
    train, test = train.filter(pl.col("unique_id").is_in(ids)), test.filter(pl.col("unique_id").is_in(ids))

    with httpx.Client(base_url=server.base, headers=AUTH, timeout=120) as c:
        r = c.post("/v1/models", json={"name": "m4h", "model": SPEC, "data": _columns(train), "h": 48})
        assert r.status_code == 202, r.text
        location = r.headers["location"]
        job = wait_job(c, location, timeout=240)
        assert job["state"] == "succeeded", job
        assert job["version"] == 1

        stored = c.post("/v1/models/m4h/forecast", json={"h": 48})
        assert stored.status_code == 200, stored.text
        history = pl.concat([train, test]).sort("unique_id", "ds")
        fresh = c.post("/v1/models/m4h@1/forecast", json={"h": 48, "history": _columns(history)})
        assert fresh.status_code == 200, fresh.text
        rows = fresh.json()["forecasts"]
        assert len(rows) == 4 * 48
        last = dict(history.group_by("unique_id").agg(pl.col("ds").max()).iter_rows())
        assert rows[0]["ds"] == last[rows[0]["unique_id"]] + 1  # forecasts start after the new history

        explained = c.post("/v1/models/m4h/explain", json={"h": 48, "history": _columns(history),
                                                           "series": [ids[0]], "steps": [1, 24, 48], "k": 5})
        assert explained.status_code == 200, explained.text
        exp = explained.json()
        assert [r["step"] for r in exp["rows"]] == [1, 24, 48]
        assert exp["additivity_error_relative"] < 1e-4

        # download the ONNX export: from now on this version is served by onnxruntime, forecasting the same
        onnx = c.get("/v1/models/m4h/onnx")
        assert onnx.status_code == 200, onnx.text
        assert onnx.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(onnx.content)) as zf:
            names = zf.namelist()
            manifest = json.loads(zf.read("m4h-v1.onnx/manifest.json"))
        assert "m4h-v1.onnx/booster_0.onnx" in names and manifest["kind"] == "xgboost"
        assert manifest["parity"]["booster_0.onnx"]["batch_many"]["max_rel_diff"] < 1e-4
        served = c.post("/v1/models/m4h@1/forecast", json={"h": 48, "history": _columns(history)}).json()
        assert "served by onnxruntime from the model's ONNX export" in served["notes"]
        _close(served["forecasts"], rows)
        assert c.get("/v1/models/nothing/onnx").status_code == 404

    server.stop()
    server.start()
    with httpx.Client(base_url=server.base, headers=AUTH, timeout=120) as c:
        assert [m["name"] for m in c.get("/v1/models").json()] == ["m4h"]
        again = c.post("/v1/models/m4h/forecast", json={"h": 48})
        _close(again.json()["forecasts"], stored.json()["forecasts"])
        again_fresh = c.post("/v1/models/m4h@1/forecast", json={"h": 48, "history": _columns(history)})
        _close(again_fresh.json()["forecasts"], rows)
        assert c.get(location).json()["state"] == "succeeded"


def _close(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    """Same rows and keys; values equal to 1e-4 relative (the ONNX graph computes in float32)."""
    assert [(r["unique_id"], r["ds"]) for r in a] == [(r["unique_id"], r["ds"]) for r in b]
    for ra, rb in zip(a, b, strict=True):
        for k, v in rb.items():
            if isinstance(v, float):
                assert abs(ra[k] - v) <= 1e-4 * max(abs(v), 1.0), (k, ra[k], v)


# --------------------------------------------------------------------------- schemathesis: no 5xx anywhere
def _fuzz_app(tmp: Path) -> Any:
    from forecasting.api.app import create_app
    from forecasting.api.settings import Settings

    return create_app(Settings(state_dir=tmp, max_train_seconds=20, max_rows=5_000, max_seconds=10))


def test_openapi_fuzzing_finds_no_server_error(tmp_path: Path) -> None:
    """Bounded schemathesis run (a few examples per operation, < 60 s) over every documented operation."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    app = _fuzz_app(tmp_path)
    failures: list[str] = []
    # schemathesis runs the app's lifespan (startup: job recovery) itself and ends it after the test
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    start = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=40, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call()
            if response.status_code >= 500:
                failures.append(f"{case.operation.label}: {response.status_code} {response.text[:300]} "
                                f"for body {str(case.body)[:200]} query {case.query}")

        check()
        assert time.monotonic() - start < 60, "fuzzing took over 60 s"
    assert not failures, "\n".join(failures)



def test_openapi_fuzzing_with_keys_answers_match_their_documented_schemas(tmp_path: Path) -> None:
    """With API keys configured (the key sent as the document's security scheme says): no 5xx, and every answer's
    body matches the schema documented for its status (schemathesis' response_schema_conformance)."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import response_schema_conformance

    from forecasting.api.app import create_app
    from forecasting.api.settings import Settings, parse_api_keys

    app = create_app(Settings(state_dir=tmp_path, max_train_seconds=20, max_rows=5_000, max_seconds=10,
                              api_keys=parse_api_keys("fuzz:fuzz-key", source="test")))
    failures: list[str] = []
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    start = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=5, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call(headers={"Authorization": "Bearer fuzz-key"})
            if response.status_code >= 500:
                failures.append(f"{case.operation.label}: {response.status_code} {response.text[:300]}")
                return
            try:
                case.validate_response(response, checks=[response_schema_conformance])
            except Exception as exc:  # noqa: BLE001 - collected and reported together
                failures.append(f"{case.operation.label}: {response.status_code} {str(exc)[:300]}")

        check()
        assert time.monotonic() - start < 60, "fuzzing took over 60 s"
    assert not failures, "\n".join(failures[:20])
