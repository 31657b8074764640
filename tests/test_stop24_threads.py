"""Stop 24: a tree booster is trained on one thread below ``FIT_THREADS_MIN_CELLS`` (rows x features).

Measured at stop 23: an xgboost fit of 3 series x 30 points took 28 s at load 10, its OpenMP threads waiting for
each other at every round on a loaded machine (nthread = every core). At stop 24 (load 16-17, 2 cores): XGBoost,
50 rounds, 1,000 x 30 took 2.2 s on one thread and 71 s on two. The trees are the same on any number of threads
(forecasts of 40 series x 200 points, 100 rounds, at 1 and 2 threads: max abs difference 0.0, both libraries).
"""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from forecasting.data import validate_panel
from forecasting.models.local import resolve_n_jobs
from forecasting.models.registry import make_model
from forecasting.models.trees import FIT_THREADS_MIN_CELLS


def _panel() -> pl.DataFrame:
    t = np.arange(30)
    return pl.concat(pl.DataFrame({"unique_id": u, "ds": t, "y": 10.0 * (k + 1) + np.sin(t / 2)})
                     for k, u in enumerate("abc"))


@pytest.mark.parametrize("name", ["xgboost", "lightgbm"])
def test_a_small_fit_trains_on_one_thread_whatever_n_jobs(name: str) -> None:
    model = make_model({"name": name, "params": {"n_estimators": 5, "conformal_windows": 0}}, freq=1, n_jobs=2)
    model.fit(validate_panel(_panel()))
    booster = model.boosters_[0]
    if name == "xgboost":
        threads = json.loads(booster.save_config())["learner"]["generic_param"]["nthread"]
    else:
        threads = booster.params["num_threads"]
    assert int(threads) == 1


def test_a_large_matrix_gets_n_jobs_threads() -> None:
    model = make_model({"name": "xgboost"}, freq=1, n_jobs=2)
    assert model.train_threads(np.empty((FIT_THREADS_MIN_CELLS // 10, 10), dtype=np.float32)) == 2
    assert model.train_threads(np.empty((FIT_THREADS_MIN_CELLS // 10 - 1, 10), dtype=np.float32)) == 1
    model.n_jobs = -1  # every usable CPU, as the local models count them
    assert model.train_threads(np.empty((FIT_THREADS_MIN_CELLS, 1), dtype=np.float32)) == resolve_n_jobs(-1)
