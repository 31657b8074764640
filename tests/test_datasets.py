"""Catalogue, verified fetching and loaders. No test touches the network."""

from __future__ import annotations

import hashlib
from datetime import timedelta
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting import datasets
from forecasting.errors import DatasetError


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every urlopen fail as if offline; records the URLs asked for."""
    asked: list[str] = []

    def offline(url, *args, **kwargs):
        asked.append(str(url))
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return asked


def test_catalogue_entries() -> None:
    cat = datasets.catalogue()
    assert {"m4_hourly", "air_passengers", "ett_h1"} <= set(cat)
    m4 = cat["m4_hourly"]
    assert (m4["h"], m4["season_length"], m4["freq"], m4["folder"]) == (48, 24, 1, "m4_hourly")
    assert m4["files"]["Hourly-train.csv"]["sha256"] == "ea59b7783573c49077a835ab6465c7d66f1474783360f310988a9a737fbca62f"
    for entry in cat.values():
        for spec in entry["files"].values():
            assert len(spec["sha256"]) == 64
            assert spec.get("bundled") or spec["url"].startswith("https://")


def test_bundled_air_passengers_checksum_matches_catalogue() -> None:
    spec = datasets.dataset_info("air_passengers")["files"]["air_passengers.csv"]
    digest = hashlib.sha256((datasets.CATALOGUE_DIR / "air_passengers.csv").read_bytes()).hexdigest()
    assert digest == spec["sha256"]


def test_unknown_dataset_lists_known_names() -> None:
    with pytest.raises(DatasetError, match="m4_hourly"):
        datasets.dataset_info("m5_daily")
    with pytest.raises(DatasetError, match="Hourly-train.csv"):
        datasets.fetch("m4_hourly", "Hourly-valid.csv")


def test_air_passengers_equals_statsforecast() -> None:
    from statsforecast.utils import AirPassengers

    df = datasets.load_air_passengers()
    assert df.schema == pl.Schema({"unique_id": pl.Utf8, "ds": pl.Datetime("us"), "y": pl.Float64})
    assert df.height == 144
    np.testing.assert_array_equal(df["y"].to_numpy(), AirPassengers)
    assert df["unique_id"].unique().to_list() == ["AirPassengers"]
    assert str(df["ds"][0]) == "1949-01-01 00:00:00" and str(df["ds"][-1]) == "1960-12-01 00:00:00"
    loaded = datasets.load("air_passengers")
    assert loaded["data"].equals(df) and loaded["info"]["season_length"] == 12


def test_m4_hourly_shapes(data_dir: Path, no_network: list[str]) -> None:
    train, test = datasets.load_m4_hourly()
    assert no_network == []
    assert train.schema == pl.Schema({"unique_id": pl.Utf8, "ds": pl.Int64, "y": pl.Float64})
    assert test.schema == train.schema
    assert train.height == 353_500 and test.height == 19_872
    lengths = train.group_by("unique_id", maintain_order=True).len()
    assert lengths.height == 414
    assert set(lengths["len"].to_list()) == {700, 960}
    assert lengths["unique_id"][:3].to_list() == ["H1", "H2", "H3"]  # file order
    assert test.group_by("unique_id").len()["len"].unique().to_list() == [48]
    # ds: 1..n per series; the test continues the index
    h1_train = train.filter(pl.col("unique_id") == "H1")
    h1_test = test.filter(pl.col("unique_id") == "H1")
    assert h1_train["ds"].to_list() == list(range(1, h1_train.height + 1))
    assert h1_test["ds"].to_list() == list(range(h1_train.height + 1, h1_train.height + 49))
    assert h1_train["y"][:3].to_list() == [605.0, 586.0, 586.0]
    assert h1_test["y"][:2].to_list() == [619.0, 565.0]
    assert train["y"].null_count() == 0 and train["y"].min() > 0


def test_fetch_uses_data_dir_without_writing(data_dir: Path, tmp_path: Path, no_network: list[str]) -> None:
    cache = tmp_path / "cache"
    path = datasets.fetch("m4_hourly", "Hourly-test.csv", data_dir=data_dir, cache_dir=cache)
    assert path == data_dir / "m4_hourly" / "Hourly-test.csv"
    assert not cache.exists() and no_network == []


def test_tampered_local_copy_is_refused(data_dir: Path, tmp_path: Path, no_network: list[str]) -> None:
    fake = tmp_path / "data"
    (fake / "m4_hourly").mkdir(parents=True)
    target = fake / "m4_hourly" / "Hourly-test.csv"
    shutil.copyfile(data_dir / "m4_hourly" / "Hourly-test.csv", target)
    with target.open("ab") as fh:
        fh.write(b"\n")
    actual = hashlib.sha256(target.read_bytes()).hexdigest()
    with pytest.raises(DatasetError) as info:
        datasets.fetch("m4_hourly", "Hourly-test.csv", data_dir=fake, cache_dir=tmp_path / "cache")
    message = str(info.value)
    assert "71a57fccb15e534d973626ada4fb87febf789e9317715b7cc6dd3b5f90db6f42" in message
    assert actual in message and str(target) in message
    assert no_network == []


def test_tampered_copy_refused_via_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network) -> None:
    fake = tmp_path / "data"
    (fake / "m4_hourly").mkdir(parents=True)
    (fake / "m4_hourly" / "Hourly-train.csv").write_text('"V1","V2"\n"H1","1"\n')
    monkeypatch.setenv("FORECASTING_DATA_DIR", str(fake))
    with pytest.raises(DatasetError, match="ea59b7783573c49077a835ab6465c7d66f1474783360f310988a9a737fbca62f"):
        datasets.load_m4_hourly()


def test_offline_missing_file_says_where_and_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    cache = tmp_path / "cache"
    monkeypatch.setenv("FORECASTING_DATA_DIR", str(empty))
    monkeypatch.setenv("FORECASTING_CACHE_DIR", str(cache))
    url = datasets.dataset_info("m4_hourly")["files"]["Hourly-train.csv"]["url"]
    with pytest.raises(DatasetError) as info:
        datasets.fetch("m4_hourly", "Hourly-train.csv")
    message = str(info.value)
    assert "FORECASTING_DATA_DIR" in message
    assert "m4_hourly/Hourly-train.csv" in message
    assert str(empty / "m4_hourly" / "Hourly-train.csv") in message
    assert url in message
    assert no_network == [url]  # it tried the official URL, through the patched urlopen
    # nothing left behind in the cache (no partial download)
    assert not any(p.is_file() for p in cache.rglob("*"))


def test_download_disabled_says_where(tmp_path: Path, no_network) -> None:
    with pytest.raises(DatasetError, match="downloading is disabled.*raw.githubusercontent.com"):
        datasets.fetch("ett_h1", "ETTh1.csv", data_dir=tmp_path, cache_dir=tmp_path / "c", download=False)
    assert no_network == []


class _FakeResponse:
    def __init__(self, payload: bytes) -> None:
        self._payload = [payload, b""]

    def read(self, _n: int) -> bytes:
        return self._payload.pop(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def test_download_is_verified_then_renamed(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = (data_dir / "m4_hourly" / "Hourly-test.csv").read_bytes()
    cache = tmp_path / "cache"
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: _FakeResponse(b"corrupted"))
    with pytest.raises(DatasetError, match="fails its checksum"):
        datasets.fetch("m4_hourly", "Hourly-test.csv", data_dir=tmp_path / "none", cache_dir=cache)
    assert not any(p.is_file() for p in cache.rglob("*"))
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: _FakeResponse(good))
    path = datasets.fetch("m4_hourly", "Hourly-test.csv", data_dir=tmp_path / "none", cache_dir=cache)
    assert path == cache / "m4_hourly" / "Hourly-test.csv"
    assert path.read_bytes() == good
    assert [p.name for p in cache.rglob("*") if p.is_file()] == ["Hourly-test.csv"]


def test_ett_h1_loader(data_dir: Path, no_network) -> None:
    df = datasets.load("ett_h1")["data"]
    assert df.height == 17_420
    assert df.columns[:3] == ["unique_id", "ds", "y"]
    assert df["ds"].dtype == pl.Datetime("us")
    assert df["ds"].diff().drop_nulls().unique().to_list() == [timedelta(hours=1)]
