"""Regression tests of the issue 15 tester's findings (explanations tried as a hostile client)."""

from __future__ import annotations

import polars as pl
import pytest

from forecasting import service
from forecasting.errors import CapabilityError


def test_approximate_on_a_network_is_refused_before_fitting() -> None:
    """``approximate`` is a trees-only mode: a network asked for it was a TypeError (HTTP 500) after its fit."""
    pytest.importorskip("neuralforecast")
    data = pl.DataFrame({"unique_id": ["a"] * 48, "ds": list(range(48)), "y": [float(i % 12) for i in range(48)]})
    with pytest.raises(CapabilityError) as caught:
        service.explain(data, model={"name": "nhits", "params": {"max_steps": 1}}, h=3, freq=1, approximate=True)
    assert str(caught.value) == "model 'nhits' has no approximate explanation (trees only): drop approximate"
    assert caught.value.field == "approximate"
