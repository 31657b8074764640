"""Issue 14 audit (session 24, helper A): findings of a hostile client beyond the issue's list, pinned.

* Two requests creating the same alias at the same moment: the second INSERT broke the alias table's unique
  constraint and answered HTTP 500 (``PUT /v1/models/{name}/aliases/{alias}``, 10 concurrent requests).
* ``/readyz`` is an open route: with API keys configured it named every failing artifact's tenant, model,
  file and the server's state folder to anyone; now only an admin key (or a server without keys) sees them.
* A registered forecast from the stored history (no ``history``) was never recorded for monitoring, and lost
  every forecast of its model in the same writer batch (an out-of-bounds origin gather, logged).
* A ``freq`` step beyond the 64-bit timestamp range (``'1000000000d'``) answered HTTP 500.
* ``GET /v1/jobs``: the document did not state the ``state`` enum and ``limit``'s 1..1000 that validation enforces.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from litestar.testing import TestClient

from forecasting.api.app import create_app
from forecasting.api.settings import Settings, parse_api_keys
from forecasting.store import Store
from test_issue14_ops import hourly

SMALL_XGB = {"name": "xgboost", "params": {"n_estimators": 5, "max_depth": 2, "conformal_windows": 0}}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "artifacts")
    for _ in range(2):
        s.register_version("pax", tenant="acme", spec={"name": "naive"}, kind="forecast", artifact_src_dir=None,
                           fingerprint={"freq": 1})
    yield s
    s.close()


def test_the_same_new_alias_set_by_eight_threads_at_once_ends_on_one_version_without_an_error(store: Store) -> None:
    for round_ in range(5):  # the race needs two first-time INSERTs to interleave: several new aliases
        alias = f"prod{round_}"
        barrier = threading.Barrier(8)
        errors: list[BaseException] = []
        results: list[int] = []

        def set_it(i: int, alias: str = alias, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                results.append(store.set_alias("pax", alias, 1 + i % 2, "acme").version)
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=set_it, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert sorted(results) == [1, 1, 1, 1, 2, 2, 2, 2]
        assert store.get(f"pax@{alias}", tenant="acme").version in (1, 2)
        assert [v.aliases.count(alias) for v in store.versions("pax", tenant="acme")].count(1) == 1


@pytest.fixture
def tampered(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    """An app with keys (tenant acme, admin root) whose version pax@1 had a file changed after it was served."""
    from forecasting.service.training import fit_and_save

    settings = Settings(state_dir=tmp_path / "state",
                        api_keys=parse_api_keys("acme:k-acme,admin:k-root", source="test"))
    with TestClient(create_app(settings)) as client:
        fit_and_save(pl.DataFrame(hourly()), tmp_path / "saved", model=SMALL_XGB, freq="1h")
        store = Store(f"sqlite:///{settings.state_dir / 'forecasting.db'}", settings.state_dir / "artifacts")
        store.register_version("pax", tenant="acme", spec=SMALL_XGB, kind="forecast",
                               artifact_src_dir=tmp_path / "saved", fingerprint={"freq": "1h", "series": 2})
        store.close()
        assert client.post("/v1/models/pax/forecast", json={"h": 2}, headers={"X-API-Key": "k-acme"}).status_code == 200
        folder = settings.state_dir / "artifacts" / "acme" / "pax" / "1"
        (folder / "pipeline.json").write_bytes((folder / "pipeline.json").read_bytes() + b" ")
        yield client, settings.state_dir


def test_readyz_names_a_failing_artifact_only_to_an_admin_key(tampered: tuple[TestClient, Path]) -> None:
    client, state = tampered
    anonymous: Any = client.get("/readyz")
    assert anonymous.status_code == 503
    assert anonymous.json()["detail"] == ("artifact integrity failure in 1 loaded artifact(s) (an admin key's /readyz "
                                          "names them)")
    tenant = client.get("/readyz", headers={"X-API-Key": "k-acme"}).json()["detail"]
    wrong = client.get("/readyz", headers={"X-API-Key": "not-a-key"})
    assert wrong.status_code == 503 and wrong.json()["detail"] == tenant == anonymous.json()["detail"]
    admin = client.get("/readyz", headers={"Authorization": "Bearer k-root"})
    assert admin.status_code == 503
    detail = admin.json()["detail"]
    assert detail.startswith("artifact integrity failure: acme/pax/1: artifact of model 'pax@1' (acme/pax/1): file "
                             "pipeline.json has changed (sha256 "), detail
    assert str(state) not in anonymous.json()["detail"]


def test_a_forecast_served_from_the_stored_history_is_recorded_with_its_origin(tmp_path: Path) -> None:
    """A saved global model keeps each series' tail (33 of 96 rows here) but its panel's lengths count the whole
    training series: the served-forecast writer gathered the origin at row 95 of 33 ('gather indices are out of
    bounds', logged), and every forecast of that model in the same writer batch went unrecorded."""
    from forecasting.service.core import Limits
    from forecasting.service.monitoring import Monitoring
    from forecasting.service.registered import RegisteredModels
    from forecasting.service.training import fit_and_save

    data = hourly(n=96)
    fit_and_save(pl.DataFrame(data), tmp_path / "saved", model=SMALL_XGB, freq="1h")
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "artifacts")
    try:
        store.register_version("pax", tenant="acme", spec=SMALL_XGB, kind="forecast",
                               artifact_src_dir=tmp_path / "saved", fingerprint={"freq": "1h", "series": 1})
        monitoring = Monitoring(store, Limits())
        services = RegisteredModels(store=store, runner=None, limits=Limits(),  # type: ignore[arg-type]
                                    on_served=monitoring.record_served)
        result = services.forecast("acme", "pax", h=3)  # from the stored history
        assert result.panel.frame.height < result.panel.lengths["s0"] == 96
        served = monitoring.parts.scan("acme", "pax", "served")
        assert served is not None
        rows = served.collect().sort("step")
        assert rows.get_column("step").to_list() == [1, 2, 3]
        assert {str(o) for o in rows.get_column("origin").to_list()} == {"2024-01-04 23:00:00"}
    finally:
        store.close()


@pytest.mark.parametrize("freq", ["1000000000d", "99999999999999999999h", "1000000000000mo"])
def test_a_frequency_step_beyond_the_64_bit_timestamp_range_is_a_422_naming_freq(freq: str, tmp_path: Path) -> None:
    """POST /v1/forecast with freq '1000000000d' (8.64e19 microseconds a step) answered HTTP 500: polars'
    'conversion from i128 to i64 failed' in data._step_gaps; '100000000d' is a 422 (off the grid)."""
    data = {"unique_id": ["a"] * 48, "ds": [f"2024-01-{1 + i // 24:02d}T{i % 24:02d}:00:00" for i in range(48)],
            "y": [float(i % 24) for i in range(48)]}
    with TestClient(create_app(Settings(state_dir=tmp_path))) as client:
        r = client.post("/v1/forecast", json={"data": data, "h": 2, "model": "naive", "freq": freq})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "freq"


def test_get_jobs_documents_the_state_enum_and_the_limit_bounds_validation_enforces(tmp_path: Path) -> None:
    """Schema-valid generated requests (schemathesis, positive mode) to GET /v1/jobs were 422s: the document said
    'any string' and 'any integer' while validation takes a job state and 1..1000."""
    with TestClient(create_app(Settings(state_dir=tmp_path))) as client:
        params = {p["name"]: p["schema"] for p in
                  client.get("/schema/openapi.json").json()["paths"]["/v1/jobs"]["get"]["parameters"]}
        assert params["state"]["enum"] == ["queued", "running", "succeeded", "failed", "cancelled"]
        assert (params["limit"]["minimum"], params["limit"]["maximum"]) == (1, 1000)
        assert client.get("/v1/jobs?limit=1001").json()["detail"] == "limit must be in 1..1000, got 1001"
        assert client.get("/v1/jobs?state=done").json()["field"] == "state"
        assert client.get("/v1/jobs?state=cancelled&limit=1000").json() == []


def test_request_bodies_that_refuse_unknown_fields_document_additional_properties_false(tmp_path: Path) -> None:
    """'Object contains unknown field' was the most common 400 of schema-valid generated requests (schemathesis
    positive mode: 7 to 15 of 60 per operation): the document allowed any extra field."""
    with TestClient(create_app(Settings(state_dir=tmp_path))) as client:
        doc = client.get("/schema/openapi.json").json()
        schemas = doc["components"]["schemas"]
        for name in ("ForecastRequest", "RegisteredForecastRequest", "AliasRequest", "ModelSpec", "HierarchyIn",
                     "PredictRequest", "AnomalyRequest", "RetrainPolicyBody"):
            assert schemas[name]["additionalProperties"] is False, name
        train = doc["paths"]["/v1/models"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert train["additionalProperties"] is False
        assert "additionalProperties" not in schemas["ForecastResponse"]  # answers may grow fields
        r = client.put("/v1/models/pax/aliases/prod", json={"version": 1, "extra": 1})
        assert (r.status_code, r.json()["field"]) == (400, "extra")


def test_path_parameters_document_the_name_alias_and_reference_rules(tmp_path: Path) -> None:
    """Schema-valid generated paths were 422s naming model or alias (19 of 60 on PUT .../aliases/{alias}): the
    document said 'any string' for {name}, {alias} and {ref}."""
    import re

    with TestClient(create_app(Settings(state_dir=tmp_path))) as client:
        paths = client.get("/schema/openapi.json").json()["paths"]

        def pattern(path: str, method: str, param: str) -> str:
            return next(p["schema"]["pattern"] for p in paths[path][method]["parameters"] if p["name"] == param)

        alias = pattern("/v1/models/{name}/aliases/{alias}", "put", "alias")
        ref = pattern("/v1/models/{ref}/forecast", "post", "ref")
        name = pattern("/v1/models/{name}/observations", "post", "name")
        assert [bool(re.match(alias, a)) for a in ("prod", "latest", "123", "v2", "Prod")] == [
            True, False, False, True, False]
        assert [bool(re.match(ref, r)) for r in ("pax", "pax@3", "pax@0", "pax@prod", "pax@@1", "pax@-1", "Pax")] == [
            True, True, False, True, False, False, False]
        assert [bool(re.match(name, n)) for n in ("pax", "a" * 63, "a" * 64, "_pax", "pax/x")] == [
            True, True, False, False, False]
        # documented only: a path outside them is still the service's 422 naming the field
        r = client.put("/v1/models/pax/aliases/123", json={"version": 1})
        assert (r.status_code, r.json()["field"]) == (422, "alias")
