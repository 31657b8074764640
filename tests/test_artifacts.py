"""Sealing and verifying artifacts (forecasting.artifacts), and one HTTP status for every server-side integrity
failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import wait_job

from forecasting import artifacts
from forecasting.errors import ArtifactIntegrityError, InvalidInputError


def _written(tmp: Path) -> Path:
    (tmp / "weights.bin").write_bytes(b"\x00\x01\x02")
    (tmp / "sub").mkdir()
    (tmp / "sub" / "table.parquet").write_bytes(b"PAR1")
    return tmp


def test_seal_then_verify_and_each_refusal_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "model"
    out = artifacts.seal(_written(artifacts.temp_folder(target)), target, {"model": "x"})
    assert out == target and not list(tmp_path.glob(f"{artifacts.TEMP_PREFIX}*"))
    meta = json.loads((target / "model.json").read_text())
    assert set(meta["files"]) == {"weights.bin", "sub/table.parquet"}
    assert artifacts.verify(target, required=["weights.bin"])["model"] == "x"
    with pytest.raises(ArtifactIntegrityError, match=r"does not list \['other.bin'\]"):
        artifacts.verify(target, required=["other.bin"])
    (target / "notes.txt").write_text("added")
    with pytest.raises(ArtifactIntegrityError, match=r"unexpected file notes.txt was added") as err:
        artifacts.verify(target)
    assert err.value.details["file"] == "notes.txt"
    (target / "notes.txt").unlink()
    (target / "sub" / "table.parquet").write_bytes(b"PAR2")
    with pytest.raises(ArtifactIntegrityError, match=r"file sub/table.parquet has changed \(sha256 .*\); refusing"):
        artifacts.verify(target)
    (target / "weights.bin").unlink()
    with pytest.raises(ArtifactIntegrityError, match=r"file sub/table.parquet has changed|file weights.bin is missing"):
        artifacts.verify(target)
    assert issubclass(ArtifactIntegrityError, InvalidInputError)  # to the library, a folder handed to load


def test_copy_sealed_records_the_digest_that_verify_digest_checks(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    src = _written(tmp_path / "src")
    digest = artifacts.copy_sealed(src, tmp_path / "store" / "1")
    assert digest == artifacts.digest_folder(src) and digest.size_bytes == 7
    assert digest.sha256 == artifacts.combine(digest.files)
    artifacts.verify_digest(tmp_path / "store" / "1", files=digest.files, sha256=digest.sha256, where="v1")
    (tmp_path / "store" / "1" / "weights.bin").write_bytes(b"\x00")
    with pytest.raises(ArtifactIntegrityError, match=r"^v1: file weights.bin has changed"):
        artifacts.verify_digest(tmp_path / "store" / "1", files=digest.files, sha256=digest.sha256, where="v1")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="is empty"):
        artifacts.copy_sealed(tmp_path / "empty", tmp_path / "store" / "2")


def test_load_refuses_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    from forecasting.loading import load

    with pytest.raises(InvalidInputError, match=r"is not a saved model folder") as err:
        load(tmp_path)
    assert not isinstance(err.value, ArtifactIntegrityError)


# --------------------------------------------------------------------------- over HTTP
KEY = "key-acme-123"
A = {"Authorization": f"Bearer {KEY}"}
XGB = {"name": "xgboost", "params": {"n_estimators": 20, "max_depth": 3, "conformal_windows": 0}}
INTEGRITY = (500, "/problems/artifact-integrity", "Artifact integrity check failed")


def _hourly(n_series: int = 2, n: int = 240) -> dict[str, list[Any]]:
    rng = np.random.default_rng(3)
    out: dict[str, list[Any]] = {"unique_id": [], "ds": [], "y": []}
    for i in range(n_series):
        t = np.arange(n)
        out["unique_id"] += [f"s{i}"] * n
        out["ds"] += [f"2024-01-{1 + k // 24:02d}T{k % 24:02d}:00:00" for k in range(n)]
        out["y"] += [round(float(v), 3) for v in 50 + 10 * i + 8 * np.sin(2 * np.pi * t / 24) + rng.normal(0, .5, n)]
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """An app with one trained xgboost version, 'demand@1' of tenant acme: (client, its artifact folder)."""
    from litestar.testing import TestClient

    from forecasting.api.app import create_app
    from forecasting.api.settings import Settings, parse_api_keys

    state = tmp_path_factory.mktemp("state")
    app = create_app(Settings(state_dir=state, api_keys=parse_api_keys(f"acme:{KEY}", source="test"),
                              max_train_seconds=120))
    with TestClient(app) as client:
        r = client.post("/v1/models", json={"name": "demand", "model": XGB, "data": _hourly(), "h": 24}, headers=A)
        assert r.status_code == 202, r.text
        job = wait_job(client, r.json()["id"], headers=A)
        assert job["state"] == "succeeded", job
        yield client, state / "artifacts" / "acme" / "demand" / "1"


def _integrity_problem(r: Any, file: str) -> tuple[int, str, str]:
    assert r.headers["content-type"].startswith("application/problem+json"), r.text
    body = r.json()
    assert file in body["detail"] and "has changed" in body["detail"] and body["details"]["file"] == file, body
    return r.status_code, body["type"], body["title"]


def test_tampered_registry_artifact_is_one_integrity_problem(served: tuple[Any, Path]) -> None:
    client, folder = served
    original = (folder / "pipeline.json").read_bytes()
    (folder / "pipeline.json").write_bytes(original + b" ")
    try:
        r = client.post("/v1/models/demand@1/forecast", json={"h": 3}, headers=A)
        assert _integrity_problem(r, "pipeline.json") == INTEGRITY
    finally:
        (folder / "pipeline.json").write_bytes(original)
    assert client.post("/v1/models/demand@1/forecast", json={"h": 3}, headers=A).status_code == 200


def test_tampered_onnx_export_is_the_same_integrity_problem(served: tuple[Any, Path]) -> None:
    """A changed export graph was a 422 "invalid input"; it is the registry file's 500 integrity problem now."""
    client, folder = served
    assert client.get("/v1/models/demand@1/onnx", headers=A).status_code == 200  # exported beside the version
    graph = folder.parent / "1.onnx" / "booster_0.onnx"
    graph.write_bytes(graph.read_bytes() + b"\0")
    r = client.post("/v1/models/demand@1/forecast", json={"h": 3}, headers=A)  # served from the export
    assert _integrity_problem(r, "booster_0.onnx") == INTEGRITY
