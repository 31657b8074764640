"""Issue 17 leftovers: the HTML report of a hierarchical forecast (coherence check, per-level accuracy table).

The table's numbers are checked against hand-computed MASE/RMSE (naive forecasts of a two-series total) and
against an independent hold-out of the same structure; the library (``report=``) and the CLI (``--report``)
write it.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting.service.hierarchy import backtest_hierarchy


def _accuracy(html: str) -> dict[tuple[str, str, str], float | None]:
    """(level, metric, method) -> the full-precision value of each cell of the accuracy table."""
    table = html.split('<table id="accuracy-table">', 1)[1].split("</table>", 1)[0]
    out: dict[tuple[str, str, str], float | None] = {}
    for level, row in re.findall(r'<tr data-level="([^"]+)">(.*?)</tr>', table, flags=re.S):
        for metric, method, value in re.findall(
                r'data-metric="(\w+)" data-method="(\w+)" data-value="([^"]*)"', row):
            out[(level, metric, method)] = float(value) if value else None
    return out


def _coherence(html: str) -> dict[str, tuple[list[float], str]]:
    """method -> (the gaps shown: forecast, hold-out), the 'coherent' cell."""
    table = html.split('<table id="coherence-table">', 1)[1].split("</table>", 1)[0]
    out = {}
    for method, row in re.findall(r'<tr data-method="(\w+)">(.*?)</tr>', table, flags=re.S):
        gaps = [float(v) for v in re.findall(r'data-value="([^"]+)"', row)]
        out[method] = (gaps, re.findall(r"<td>(yes|no)</td>", row)[0])
    return out


def two_series() -> tuple[pl.DataFrame, pl.DataFrame]:
    """a = 1..6, b = 2, 2, 2, 2, 2, 4 and their total, as a summing matrix."""
    data = pl.DataFrame({"unique_id": ["a"] * 6 + ["b"] * 6, "ds": list(range(6)) * 2,
                         "y": [1.0, 2, 3, 4, 5, 6, 2, 2, 2, 2, 2, 4]})
    S = pl.DataFrame({"unique_id": ["Total", "a", "b"], "a": [1.0, 1, 0], "b": [1.0, 0, 1]})
    return data, S


def test_report_table_is_the_hand_computed_backtest(tmp_path: Path) -> None:
    """Naive forecasts of the last 2 steps; MASE scaled by the in-sample naive errors (lag 1).

    Total = 3, 4, 5, 6 | 7, 10: forecast 6, 6, errors 1, 4: RMSE sqrt(8.5), MASE 2.5 / 1 = 2.5.
    a = 1, 2, 3, 4 | 5, 6: errors 1, 2: RMSE sqrt(2.5), MASE 1.5. b = 2, 2, 2, 2 | 2, 4: errors 0, 2: RMSE
    sqrt(2); its in-sample naive errors are all 0, so it is left out of MASE (bottom: a's 1.5 alone).
    Naive forecasts are linear in the data, hence already coherent: every method equals the base.
    """
    data, S = two_series()
    path = tmp_path / "h.html"
    bt = backtest_hierarchy(data, S=S, model="naive", h=2, methods=["bottom_up", "ols"], season_length=1,
                            n_jobs=1, report=path)
    assert bt.report is not None and bt.report.path == path
    assert [s for s, _ in bt.report.sections] == ["structure", "coherence", "accuracy", "forecasts"]
    html = path.read_text()
    cells = _accuracy(html)
    expected = {("total", "rmse"): math.sqrt(8.5), ("total", "mase"): 2.5,
                ("bottom", "rmse"): (math.sqrt(2.5) + math.sqrt(2)) / 2, ("bottom", "mase"): 1.5,
                ("all", "rmse"): (math.sqrt(8.5) + math.sqrt(2.5) + math.sqrt(2)) / 3, ("all", "mase"): 2.0}
    for (level, metric), value in expected.items():
        for method in ("base", "bottom_up", "ols"):
            assert cells[(level, metric, method)] == pytest.approx(value, rel=1e-9), (level, metric, method)
    # every cell is the backtest's own number, at full precision
    for row in bt.table.iter_rows(named=True):
        for metric in ("mase", "rmse"):
            assert cells[(row["level"], metric, row["method"])] == row[metric]
    assert len(cells) == bt.table.height * 2
    assert "<b>2.500</b>" in html and "(training ends at 3)" in html  # shown to 3 decimals; ds 0..3 trained on
    assert _coherence(html) == {m: ([0.0, 0.0], "yes") for m in ("base", "bottom_up", "ols")}
    assert html.count("data:image/png;base64,") == 1 and "http://" not in html and "https://" not in html


def test_library_report_agrees_with_an_independent_backtest(tmp_path: Path) -> None:
    """fc.forecast_hierarchy(report=...): the accuracy table equals a separate backtest_hierarchy call's; the
    base forecasts are incoherent ('no'), every reconciled column coherent below 1e-6 ('yes')."""
    import forecasting as fc
    from test_issue17_hierarchy import tourism_like

    data = tourism_like(20)
    path = tmp_path / "tourism.html"
    result = fc.forecast_hierarchy(data, hierarchy="state/region", group="purpose", model="auto_ets", h=4,
                                   methods=["bottom_up", "ols", "mint_shrink"], level=[80], n_jobs=1, report=path)
    assert result.report.path == path and path.exists()
    html = path.read_text()
    bt = backtest_hierarchy(data, hierarchy="state/region", group="purpose", model="auto_ets", h=4,
                            methods=["bottom_up", "ols", "mint_shrink"], n_jobs=1)
    cells = _accuracy(html)
    assert len(cells) == bt.table.height * 2 == 7 * 4 * 2  # 6 levels and 'all', 4 columns, 2 metrics
    for row in bt.table.iter_rows(named=True):
        for metric in ("mase", "rmse"):
            assert cells[(row["level"], metric, row["method"])] == pytest.approx(row[metric], rel=1e-9)
    # bottom-up leaves the bottom series as they are: its bottom row is the base's
    assert cells[("bottom", "mase", "bottom_up")] == cells[("bottom", "mase", "base")]
    coherence = _coherence(html)
    base_gaps, base_ok = coherence.pop("base")
    assert base_ok == "no" and base_gaps[0] == result.coherence["AutoETS"] > 1e-3
    assert set(coherence) == {"bottom_up", "ols", "mint_shrink"}
    for method, (gaps, ok) in coherence.items():
        assert ok == "yes" and len(gaps) == 2 and max(gaps) < 1e-6, method
        assert gaps[0] == result.coherence[f"AutoETS/{method}"]
    levels = dict(re.findall(r'<tr><th>([\w/]+)</th><td class="num">(\d+)</td>',
                             html.split('<table id="levels-table">')[1].split("</table>")[0]))
    assert levels == {"total": "1", "state": "2", "purpose": "2", "state/region": "4", "state/purpose": "4",
                      "bottom": "8"}
    assert 'alt="Forecast plot of the top series Total' in html
    assert not [n for n in result.report.notes if n.startswith("plot:")]  # no overlapping labels


def test_cli_report(tmp_path: Path) -> None:
    """forecasting hierarchy --report writes the report (with --backtest too) and says where."""
    from typer.testing import CliRunner

    from forecasting.cli import app

    data, S = two_series()
    data.write_csv(tmp_path / "bottom.csv")
    S.write_csv(tmp_path / "S.csv")
    for extra, name in (([], "f.html"), (["--backtest"], "b.html")):
        out = tmp_path / name
        res = CliRunner().invoke(app, ["hierarchy", "--input", str(tmp_path / "bottom.csv"), "--summing-matrix",
                                       str(tmp_path / "S.csv"), "--model", "naive", "--h", "2", "--methods", "ols",
                                       "--n-jobs", "1", "--report", str(out), *extra])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout.strip().splitlines()[-1])["report"] == str(out)
        cells = _accuracy(out.read_text())
        assert cells[("total", "rmse", "ols")] == pytest.approx(math.sqrt(8.5))
        # the hold-out's default MASE lag for integer ds is 1, as above
        assert cells[("total", "mase", "base")] == pytest.approx(2.5)
    assert np.isclose(_coherence(out.read_text())["ols"][0][0], 0.0)


def test_registered_models_train_with_a_hierarchy_and_refuse_one_at_forecast(tmp_path: Path) -> None:
    """Training (JSON and multipart, the hierarchy as JSON text) with a summing matrix is queued (issue 17:
    tests/test_issue17_registered.py has the forecasts); a registered forecast request with a ``hierarchy`` is a
    422 naming it (a version's structure is fixed at training)."""
    from litestar.testing import TestClient

    from forecasting.api.app import create_app
    from forecasting.api.settings import Settings

    data, S = two_series()
    hierarchy = {"S": S.to_dict(as_series=False), "methods": ["ols"]}
    with TestClient(create_app(Settings(state_dir=tmp_path))) as c:
        queued = [c.post("/v1/models", json={"name": "h", "model": "naive", "h": 2, "hierarchy": hierarchy,
                                             "data": data.to_dict(as_series=False)}),
                  c.post("/v1/models", data={"name": "h", "model": "naive", "hierarchy": json.dumps(hierarchy)},
                         files={"file": ("d.csv", data.write_csv().encode(), "text/csv")})]
        for r in queued:
            assert r.status_code == 202, r.text
        answer = c.post("/v1/models/h/forecast", json={"h": 2, "hierarchy": hierarchy,
                                                       "history": data.to_dict(as_series=False)})
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["field"] == "hierarchy"
    assert problem["detail"].startswith("hierarchy: a registered version's structure and reconciliation methods are "
                                        "fixed at training")
