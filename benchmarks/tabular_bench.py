"""Tabular models on California Housing and UCI Bike Sharing (hourly), next to references.

Run: ``python -m forecasting.benchmarks.tabular_bench [--n-jobs N]`` (data from FORECASTING_DATA_DIR or the cache).

Setup (the same as tests/test_tabular.py):
- California Housing (Géron's housing.csv: ocean_proximity categorical, 207 missing
  total_bedrooms): target ``median_house_value_100k`` (USD / 100,000), every other column
  but ``median_house_value`` as a feature; random split ``train_test_split(test_size=0.2,
  random_state=42)``. Reference: RMSE 0.433 for tuned XGBoost on scikit-learn's version
  (8 features, no missing values), so not the same table.
- Bike Sharing hour.csv: target ``cnt``; features season, yr, mnth, hr, holiday, weekday,
  workingday, weathersit, temp, atemp, hum, windspeed (casual/registered leak the target;
  instant/dteday/ds left out); random split as above (not chronological). Reference: RMSE
  42.7 for tuned models.

Default hyperparameters (``forecasting.tabular.DEFAULT_PARAMS``), no tuning.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from forecasting.datasets import load_bike_sharing, load_california_housing
from forecasting.tabular import ALGORITHMS, TabularModel

BIKE_FEATURES = ["season", "yr", "mnth", "hr", "holiday", "weekday", "workingday", "weathersit",
                 "temp", "atemp", "hum", "windspeed"]
REFERENCES = {"california_housing": 0.433, "bike_sharing_hourly": 42.7}


def _split(n: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(n), test_size=0.2, random_state=42)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=None, help="threads (default: all cores)")
    args = parser.parse_args()
    housing = load_california_housing().drop("median_house_value")
    bike = load_bike_sharing("hour")
    cases = [
        ("california_housing", housing, "median_house_value_100k", None, "$100k"),
        ("bike_sharing_hourly", bike, "cnt", BIKE_FEATURES, "rentals/h"),
    ]
    print(f"{'dataset':<22}{'model':<24}{'RMSE':>10}{'reference':>11}{'fit s':>8}  units")
    for name, table, target, features, units in cases:
        train_idx, test_idx = _split(table.height)
        train, test = table[train_idx], table[test_idx]
        y = test[target].cast(float).to_numpy()
        for algorithm in ALGORITHMS:
            model = TabularModel(algorithm=algorithm, n_jobs=args.n_jobs)
            t0 = time.perf_counter()
            model.fit(train, target, features=features)
            fit_s = time.perf_counter() - t0
            pred = model.predict(test)["prediction"].to_numpy()
            rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
            print(f"{name:<22}{algorithm:<24}{rmse:>10.4f}{REFERENCES[name]:>11}{fit_s:>8.2f}  {units}", flush=True)


if __name__ == "__main__":
    main()
