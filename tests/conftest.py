"""Shared pytest setup.

- ``FORECASTING_DATA_DIR``: the read-only dataset folder (``<folder>/<file>`` layout). When
  unset, ``../shared/datasets`` beside the repository is used if it exists.
- ``FORECASTING_CACHE_DIR``: always a fresh temporary folder for the session, so tests never
  write into a user's cache (nor, since the data folder is only read, into the shared one).
- Tests never touch the network; a missing dataset skips the tests that need it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _find_data_dir() -> Path | None:
    env = os.environ.get("FORECASTING_DATA_DIR")
    if env:
        return Path(env) if Path(env).is_dir() else None
    candidate = (REPO_ROOT.parent / "shared" / "datasets").resolve()
    return candidate if candidate.is_dir() else None


_DATA_DIR = _find_data_dir()
if _DATA_DIR is not None and not os.environ.get("FORECASTING_DATA_DIR"):
    os.environ["FORECASTING_DATA_DIR"] = str(_DATA_DIR)


@pytest.fixture(scope="session", autouse=True)
def _session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point FORECASTING_CACHE_DIR at a per-session temporary folder."""
    cache = tmp_path_factory.mktemp("forecasting-cache")
    previous = os.environ.get("FORECASTING_CACHE_DIR")
    os.environ["FORECASTING_CACHE_DIR"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("FORECASTING_CACHE_DIR", None)
    else:
        os.environ["FORECASTING_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The dataset folder (FORECASTING_DATA_DIR or ../shared/datasets); skips when absent."""
    if _DATA_DIR is None:
        pytest.skip("no dataset folder: set FORECASTING_DATA_DIR (layout <folder>/<file>)")
    return _DATA_DIR
