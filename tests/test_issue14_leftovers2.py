"""Issue 14 leftovers (second round): the OpenAPI bounds from the operator's settings, half-hour offsets kept in
the library's frames, progress inside the hold-out fit, one per-request thread limit on every serving path, and
``approximate`` refused for statistical models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from litestar.testing import TestClient

from forecasting import service
from forecasting.api.app import create_app
from forecasting.api.settings import Settings
from forecasting.errors import CapabilityError
from forecasting.store import Store

SMALL_XGB = {"name": "xgboost", "params": {"n_estimators": 5, "max_depth": 2, "conformal_windows": 0}}


def monthly(n: int = 36, uid: str = "s1") -> dict[str, list[Any]]:
    """``n`` months from 2020-01 of a seasonal series (period 12)."""
    ds = [f"{2020 + i // 12}-{i % 12 + 1:02d}-01" for i in range(n)]
    return {"unique_id": [uid] * n, "ds": ds, "y": [100.0 + 10 * (i % 12) + i for i in range(n)]}


# --------------------------------------------------------------------------- 5. approximate on statistical models
STAT_REFUSAL = ("model 'auto_ets' has no approximate explanation (trees only; a statistical model is explained by its "
                "exact labelled decomposition): drop approximate")


def test_approximate_on_a_statistical_model_is_refused_naming_approximate_in_the_library() -> None:
    with pytest.raises(CapabilityError) as caught:
        service.explain(monthly(), model="auto_ets", h=3, approximate=True)
    assert str(caught.value) == STAT_REFUSAL
    assert caught.value.field == "approximate"
    # without it, the same model is explained by its decomposition
    method = service.explain(monthly(), model="auto_ets", h=3).explanation.method
    assert method.startswith("labelled decomposition (not SHAP) of the AutoETS forecast")


def test_approximate_on_a_statistical_model_is_a_422_naming_approximate_over_http(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        r = c.post("/v1/explain", json={"data": monthly(), "h": 3, "model": "auto_ets", "approximate": True})
    assert r.status_code == 422
    assert r.json()["field"] == "approximate" and r.json()["detail"] == STAT_REFUSAL


# --------------------------------------------------------------------------- 4. one thread limit on every serving path
@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from forecasting.service.core import Limits
    from forecasting.service.registered import RegisteredModels
    from forecasting.service.training import fit_and_save

    root = tmp_path_factory.mktemp("threads")
    fit_and_save(pl.DataFrame(monthly()), root / "saved", model=SMALL_XGB, freq="1mo")
    store = Store(f"sqlite:///{root / 'db.sqlite'}", root / "artifacts", cache_size=4)
    store.register_version("sales", tenant="acme", spec={"name": "xgboost"}, kind="forecast",
                           artifact_src_dir=root / "saved", fingerprint={"freq": "1mo", "series": 1})
    yield RegisteredModels(store=store, runner=None, limits=Limits())  # type: ignore[arg-type]
    store.close()


@pytest.mark.parametrize(("path", "spied"), [("explain", "explain"), ("forecast", "forecast_fitted"),
                                             ("report", "build_report")])
def test_every_serving_path_runs_with_one_torch_thread_and_restores_the_count(
        registered: Any, monkeypatch: pytest.MonkeyPatch, path: str, spied: str) -> None:
    torch = pytest.importorskip("torch")
    import forecasting.reports
    import forecasting.service.registered as module

    seen: list[int] = []
    owner = forecasting.reports if spied == "build_report" else module
    real = getattr(owner, spied)

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, spied, spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        call = getattr(registered, path)
        if path == "report":
            call("acme", "sales", h=3)
        else:
            call("acme", "sales", h=3, history=monthly())
        assert seen == [1]
        assert torch.get_num_threads() == 2  # restored after the request
    finally:
        torch.set_num_threads(before)
