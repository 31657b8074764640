"""Issue 15 leftovers: network calendar inputs by name, the leaderboard's reference row always
there, reports templated without HTML built in Python, shap's own plots in the report."""

from __future__ import annotations

import numpy as np
import polars as pl

from forecasting.explanation import Explanation, calendar_categories


def test_network_calendar_inputs_are_named_like_the_tree_features():
    names = ["y_lag_1", "month_lag_1", "month_lag_12", "month_step_2", "dayofweek_lag_3", "monthly_sales_lag_1"]
    cats = calendar_categories(names)
    assert cats is not None and sorted(cats) == ["dayofweek_lag_3", "month_lag_1", "month_lag_12", "month_step_2"]
    assert cats["month_lag_1"][12] == "Dec" and cats["dayofweek_lag_3"][6] == "Sun"
    # one forecast of January 1961 from a window ending in December 1960 (AirPassengers, as NHITS sees it)
    e = Explanation(values=np.array([[1.0, -2.0, 0.5, 0.25, 0.0, 0.0]]), base_values=np.array([100.0]),
                    feature_names=names, data=np.array([[432.0, 12.0, 1.0, 2.0, 0.0, 7.0]]),
                    output=np.array([99.75]), rows=pl.DataFrame({"unique_id": ["AirPassengers"], "step": [1]}),
                    method="example", categories=cats)
    labels = dict(e.to_frame().select("feature", "value_label").iter_rows())
    assert labels == {"month_lag_1": "Dec", "month_step_2": "Feb", "month_lag_12": "Jan", "y_lag_1": None,
                      "dayofweek_lag_3": "Mon", "monthly_sales_lag_1": None}
