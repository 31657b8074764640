"""Shared pytest setup.

- ``FORECASTING_DATA_DIR``: the read-only dataset folder (``<folder>/<file>`` layout). When
  unset, ``../shared/datasets`` beside the repository is used if it exists.
- ``FORECASTING_CACHE_DIR``: always a fresh temporary folder for the session, so tests never
  write into a user's cache (nor, since the data folder is only read, into the shared one).
- Tests never touch the network; a missing dataset skips the tests that need it.
- ``wait_until`` and ``wait_job``: the one polling helper (a condition, a job of the runner), imported by the
  test modules as ``from conftest import wait_until, wait_job`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: the states a job of the runner ends in
FINISHED = ("succeeded", "failed", "cancelled")

V = TypeVar("V")


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


def wait_until(check: Callable[[], V], timeout: float, what: str, *, every: float = 0.1) -> V:
    """Call ``check`` every ``every`` seconds until it returns a truthy value, and return that value.

    Parameters
    ----------
    check : callable
        The condition; its truthy answer is returned (``lambda: (j := get()) ["state"] == "x" and j`` gives ``j``).
    timeout : float
        Seconds (monotonic clock) before the test fails.
    what : str
        What is awaited, for the failure message.
    every : float
        Seconds between calls.

    Raises
    ------
    pytest.fail.Exception
        "timed out after {timeout} s waiting for {what}" when ``check`` stays falsy.
    """
    end = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)
    return value


class _Getter(Protocol):
    def get(self, url: str, *, headers: dict[str, str] | None = None) -> Any: ...  # TestClient, httpx.Client


def wait_job(client: _Getter, job: str, *, states: tuple[str, ...] = FINISHED, timeout: float = 120.0,
             headers: dict[str, str] | None = None, every: float = 0.1) -> dict[str, Any]:
    """Poll ``GET /v1/jobs/{job}`` (or ``job`` itself when it is a path, e.g. a ``Location`` header) with
    ``headers`` until the job's ``state`` is one of ``states``; returns the job's JSON.

    Raises
    ------
    AssertionError
        When a poll is not answered 200 (the answer's body in the message).
    pytest.fail.Exception
        As :func:`wait_until`, after ``timeout`` seconds.
    """
    url = job if job.startswith("/") else f"/v1/jobs/{job}"

    def finished() -> dict[str, Any] | None:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.text
        return r.json() if r.json()["state"] in states else None

    return wait_until(finished, timeout, f"job {url} in {states}", every=every)
