"""Issue 14, "contract and observability": one regression test per finding (the names say what they pin).

Client mistakes that were answered 500 or silently wrong, a schema that says what validation
enforces, 405s with ``Allow``, request ids and JSON access lines, the metrics an operator
needs, ``forecasting --version``, and the docs pages rendered from the package's own files in
headless Chromium with the network blocked.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from forecasting.api.app import create_app
from forecasting.api.logs import JsonFormatter, configure_logging
from forecasting.api.settings import Settings, parse_api_keys

BIN = Path(sys.executable).parent
KEY = "contract-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(Settings(state_dir=tmp_path_factory.mktemp("state")))
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(state_dir=tmp_path_factory.mktemp("state"),
                        api_keys=parse_api_keys(f"acme:{KEY},admin:root", source="test"))
    with TestClient(create_app(settings)) as c:
        yield c


def forecast(client: TestClient, data: dict[str, Any], h: int, model: Any = "naive") -> Any:
    return client.post("/v1/forecast", json={"data": data, "h": h, "model": model})


def series(ds: list[Any], y: list[float] | None = None) -> dict[str, list[Any]]:
    return {"unique_id": ["a"] * len(ds), "ds": ds, "y": y if y is not None else [float(i % 5) for i in range(len(ds))]}


# --------------------------------------------------------------------------- client mistakes
def test_daily_series_ending_near_year_9999_with_a_horizon_past_it_is_a_422_naming_h(client: TestClient) -> None:
    r = forecast(client, series([f"9999-12-{d:02d}" for d in range(20, 32)]), h=5)
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["field"] == "h"
    assert body["detail"] == ("h=5 steps of 1d after series 'a' (last ds 9999-12-31 00:00:00) pass the last "
                              "representable timestamp (9999-12-30); use a smaller h")


def test_y_given_as_nested_lists_is_a_422_naming_the_rows(client: TestClient) -> None:
    r = forecast(client, {"unique_id": ["a"] * 3, "ds": [1, 2, 3], "y": [[1], [2], [3]]}, h=1)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "data.y"
    assert r.json()["detail"] == "y must be one number per row, got nested values (List(Int64)) at rows 0, 1, 2"


def test_integer_ds_near_the_int64_maximum_is_refused_instead_of_wrapping(client: TestClient) -> None:
    top = 2**63 - 1
    r = forecast(client, series([top - 6 + i for i in range(5)]), h=5)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "h"
    assert "pass the largest 64-bit integer ds (9223372036854775807)" in r.json()["detail"]
    # up to the maximum itself is fine: the last step is exactly 2**63 - 1
    ok = forecast(client, series([top - 6 + i for i in range(5)]), h=2)
    assert ok.status_code == 200, ok.text
    assert [f["ds"] for f in ok.json()["forecasts"]] == [top - 1, top]


def test_version_beyond_64_bits_is_a_4xx_naming_the_field(client: TestClient) -> None:
    huge = 10**23
    r = client.post(f"/v1/models/demand@{huge}/forecast", json={"h": 1})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "model"
    assert "version must be an integer from 1 to 2147483647" in r.json()["detail"]
    r = client.put("/v1/models/demand/aliases/prod", json={"version": huge})
    assert (r.status_code, r.json()["field"]) == (400, "version")
    assert "<= 2147483647" in r.json()["detail"]
    r = client.delete(f"/v1/models/demand/versions/{huge}")
    assert r.status_code == 400, r.text
    assert "<= 2147483647" in r.text


@pytest.mark.parametrize("offset", ["+05:30", "+05:45", "-03:30"])
def test_half_hour_and_45_minute_offsets_come_back_in_the_callers_offset(client: TestClient, offset: str) -> None:
    r = forecast(client, series([f"2024-01-{d:02d}T00:00:00{offset}" for d in range(1, 15)]), h=2)
    assert r.status_code == 200, r.text
    assert [f["ds"] for f in r.json()["forecasts"]] == [f"2024-01-15T00:00:00{offset}",
                                                       f"2024-01-16T00:00:00{offset}"]
    assert f"ds converted from UTC offset {offset} to UTC; forecasts are returned at that offset" in r.json()["notes"]


def test_daily_data_at_local_midnight_across_a_dst_change_is_accepted(client: TestClient) -> None:
    ds = [f"2024-03-{d:02d}T00:00:00+01:00" for d in range(20, 31)] + \
         ["2024-03-31T00:00:00+01:00"] + [f"2024-04-0{d}T00:00:00+02:00" for d in range(1, 4)]
    r = forecast(client, series(ds), h=2)
    assert r.status_code == 200, r.text
    assert [f["ds"] for f in r.json()["forecasts"]] == ["2024-04-04", "2024-04-05"]
    assert any("local midnight" in n for n in r.json()["notes"])


def test_strings_are_not_coerced_to_numbers(client: TestClient) -> None:
    r = client.post("/v1/forecast", json={"data": series(list(range(10))), "h": "3", "model": "naive"})
    assert r.status_code == 400, r.text
    assert (r.json()["field"], r.json()["detail"]) == ("h", "h: Expected `int`, got `str`")
    r = client.post("/v1/forecast", json={"data": series(list(range(10))), "h": 3, "fill_gaps": "true"})
    assert (r.status_code, r.json()["field"]) == (400, "fill_gaps")


def test_405_carries_allow(client: TestClient) -> None:
    r = client.put("/v1/forecast", json={})
    assert r.status_code == 405
    assert r.headers["allow"] == "POST, OPTIONS"
    assert r.headers["content-type"].startswith("application/problem+json")


# --------------------------------------------------------------------------- the document
def test_openapi_declares_the_api_key_schemes_and_open_routes(keyed: TestClient) -> None:
    doc = keyed.get("/schema/openapi.json").json()
    assert doc["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer",
                       "description": "Authorization: Bearer <key> (FORECASTING_API_KEYS)."},
        "apiKeyHeader": {"type": "apiKey", "name": "X-API-Key", "in": "header",
                         "description": "X-API-Key: <key> (the same keys)."}}
    assert doc["security"] == [{"bearerAuth": []}, {"apiKeyHeader": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == [{}]


def test_openapi_states_the_bounds_validation_enforces(client: TestClient) -> None:
    schemas = client.get("/schema/openapi.json").json()["components"]["schemas"]
    version = schemas["AliasRequest"]["properties"]["version"]
    assert (version["minimum"], version["maximum"]) == (1, 2**31 - 1)
    params = client.get("/schema/openapi.json").json()["paths"][
        "/v1/models/{name}/versions/{version}"]["delete"]["parameters"]
    v = next(p for p in params if p["name"] == "version")["schema"]
    assert (v["minimum"], v["maximum"]) == (1, 2**31 - 1)


def test_docs_pages_load_only_the_packages_own_files(client: TestClient) -> None:
    for page in ("/schema/swagger", "/schema/redoc"):
        html = client.get(page).text
        assert "cdn." not in html and "googleapis" not in html and "https://" not in html.split("<body>")[0]
    js = client.get("/schema/assets/swagger-ui/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert client.get("/schema/assets/redoc/redoc.standalone.js").status_code == 200


# --------------------------------------------------------------------------- logs and request ids
def test_request_id_is_echoed_and_a_json_access_line_is_written(client: TestClient,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="forecasting.api.access"):
        r = client.post("/v1/forecast", json={"data": series(list(range(10))), "h": 0}, headers={"X-Request-ID": "r-42"})
        bad = client.get("/healthz", headers={"X-Request-ID": "not sane\tid"})
    assert r.headers["x-request-id"] == "r-42"
    assert len(bad.headers["x-request-id"]) == 32 and bad.headers["x-request-id"] != "not sane\tid"
    record = next(rec for rec in caplog.records if getattr(rec, "request_id", None) == "r-42")
    line = json.loads(JsonFormatter().format(record))
    assert {k: line[k] for k in ("method", "route", "status", "tenant", "request_id", "problem", "event")} == {
        "method": "POST", "route": "/v1/forecast", "status": 422, "tenant": "default", "request_id": "r-42",
        "problem": "/problems/invalid-parameter", "event": "request"}
    assert line["duration_ms"] > 0 and line["level"] == "info"


def test_configure_logging_refuses_unknown_format_and_level() -> None:
    with pytest.raises(ValueError, match="log format must be 'json' or 'text', got 'xml'"):
        configure_logging(fmt="xml", level="INFO")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="log level must be one of DEBUG, INFO, WARNING, ERROR, got 'loud'"):
        configure_logging(fmt="json", level="loud")


def test_log_settings_from_the_environment() -> None:
    s = Settings.from_env({"FORECASTING_LOG_FORMAT": "text", "FORECASTING_LOG_LEVEL": "debug"})
    assert (s.log_format, s.log_level) == ("text", "DEBUG")
    with pytest.raises(ValueError, match="FORECASTING_LOG_FORMAT must be one of json, text, got 'xml'"):
        Settings.from_env({"FORECASTING_LOG_FORMAT": "xml"})


# --------------------------------------------------------------------------- metrics, version
def test_metrics_have_process_collectors_and_per_model_counts(keyed: TestClient) -> None:
    admin = {"Authorization": "Bearer root"}
    data = {"unique_id": ["a"] * 10 + ["b"] * 10, "ds": list(range(10)) * 2, "y": [float(i) for i in range(20)]}
    assert keyed.post("/v1/forecast", json={"data": data, "h": 2, "model": "naive"}, headers=AUTH).status_code == 200
    text = keyed.get("/metrics", headers=admin).text
    assert "process_cpu_seconds_total" in text and "python_gc_objects_collected_total" in text
    assert 'forecasting_forecasts_total{family="statistical",model="naive"} 1.0' in text
    assert 'forecasting_forecast_series_total{family="statistical",model="naive"} 2.0' in text
    assert 'forecasting_forecast_rows_total{family="statistical",model="naive"} 20.0' in text
    assert 'forecasting_forecast_duration_seconds_count{family="statistical"} 1.0' in text


def test_forecasting_version_flag() -> None:
    from forecasting import __version__

    out = subprocess.run([str(BIN / "forecasting"), "--version"], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.strip()) == (0, f"forecasting {__version__}")


# --------------------------------------------------------------------------- offline docs in a browser
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(shutil.which("chromium") is None and not Path("/usr/bin/chromium").exists(),
                    reason="headless Chromium (/usr/bin/chromium) is not installed; .ci/run installs it")
def test_swagger_page_renders_operations_with_the_network_blocked(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "FORECASTING_STATE_DIR": str(tmp_path / "state"), "FORECASTING_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([str(BIN / "forecasting"), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        dom = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={tmp_path / 'profile'}",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # no name resolves: no CDN could load
             "--virtual-time-budget=15000", "--dump-dom", f"{base}/schema/swagger"],
            capture_output=True, text=True, timeout=120).stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "opblock" in dom, dom[:2000]  # Swagger UI rendered operation blocks
    assert "/v1/forecast" in dom and "Forecast inline series" in dom


def test_every_setting_read_from_the_environment_is_in_the_readme_table() -> None:
    import re

    root = Path(__file__).resolve().parents[1]
    code = "".join(p.read_text(encoding="utf-8") for folder in ("forecasting", "api")
                   for p in (root / folder).rglob("*.py"))
    used = set(re.findall(r"[\"'](FORECASTING_[A-Z0-9_]+)[\"']", code))
    readme = (root / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("### Settings"):]
    table = table[:table.index("\n\n", table.index("| variable |"))]
    assert used - {"FORECASTING_"} <= set(re.findall(r"`(FORECASTING_[A-Z0-9_]+)`", table))
