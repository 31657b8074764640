"""Issue 15: reports and leaderboards that stand on their own.

Each document (the xgboost report, the MSTL report, a leaderboard) is rendered by Chromium
(``/usr/bin/chromium``, headless; skipped with the reason when absent): every image must have
loaded, no two text boxes of the page may overlap (measured from the DOM), the page may not
overflow sideways, and no two texts of any plot may overlap (matplotlib's own text extents).
The leaderboard says what it was run on; a registered version's report is cached with it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
from conftest import wait_job

from forecasting.reports import _build, new_figure, text_overlaps

AIR = Path(__file__).resolve().parents[1] / "datasets" / "air_passengers.csv"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
XGB = {"name": "xgboost", "params": {"n_estimators": 40, "max_depth": 4, "conformal_windows": 2, "seed": 0}}

# Appended to a copy of the page: after load, every text node's boxes (DOM ranges) are tested pairwise,
# the images' load state read, and the result written into the DOM for --dump-dom.
CHECK = """<script>
window.addEventListener('load', () => {
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const n = walker.currentNode;
    if (!n.textContent.trim() || n.parentElement.closest('script,style,pre#layout-check')) continue;
    const r = document.createRange(); r.selectNodeContents(n);
    for (const b of r.getClientRects()) {
      if (b.width > 0 && b.height > 0) boxes.push([n.textContent.trim().slice(0, 40), b.left, b.top, b.right, b.bottom]);
    }
  }
  const bad = [];
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], c = boxes[j];
    if (a[1] < c[3] - 1 && c[1] < a[3] - 1 && a[2] < c[4] - 1 && c[2] < a[4] - 1) bad.push([a[0], c[0]]);
  }
  const imgs = [...document.images].map(im => [im.id || im.alt, im.complete && im.naturalWidth > 0]);
  const out = document.createElement('pre'); out.id = 'layout-check';
  out.textContent = JSON.stringify({bad: bad, imgs: imgs, texts: boxes.length,
                                    overflow: document.documentElement.scrollWidth > window.innerWidth});
  document.body.appendChild(out);
});
</script>"""


def _chromium_check(page: str, tmp_path: Path) -> dict:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (/usr/bin/chromium): the screenshot test needs it")
    src = tmp_path / "page.html"
    src.write_text(page.replace("</body>", CHECK + "</body>"))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
             "--virtual-time-budget=10000"]
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", src.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    dom = subprocess.run([*flags, "--dump-dom", src.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, re.S)
    assert found, "the layout check did not run"
    import html

    return json.loads(html.unescape(found.group(1)))


def _assert_clean(result: dict, n_images: int) -> None:
    assert result["texts"] > 50
    assert result["bad"] == []
    assert len(result["imgs"]) == n_images
    assert all(ok for _, ok in result["imgs"]), result["imgs"]
    assert result["overflow"] is False


@pytest.fixture(scope="module")
def air() -> pl.DataFrame:
    return pl.read_csv(AIR, try_parse_dates=True)


def test_xgboost_report_renders_without_overlaps(air: pl.DataFrame, tmp_path: Path):
    doc = _build(XGB, air, h=12, validation=False)
    assert doc.overlaps == []  # matplotlib's own text extents, every plot
    page = doc.render()
    # the waterfall starts at the model's one base value (AirPassengers' mean, 280.3) and names the series terms
    assert 'data-kind="base" data-value="280.298' in page
    assert "anchor: value 1 step earlier, minus the level" in page
    assert re.search(r"lag_12 = [1-9][0-9]{2}<", page)  # lags in units of y (the value 12 months earlier)
    assert '<section id="series" data-title="Selected series">' in page
    _assert_clean(_chromium_check(page, tmp_path), doc.n_plots)


def test_mstl_report_renders_without_overlaps(air: pl.DataFrame, tmp_path: Path):
    doc = _build("mstl", air, h=12, validation=False)
    assert doc.overlaps == []
    page = doc.render()
    assert "Decomposition (not SHAP)" in page and "seasonality strength (season length 12)" in page
    _assert_clean(_chromium_check(page, tmp_path), doc.n_plots)


def test_leaderboard_carries_its_provenance_and_renders_without_overlaps(tmp_path: Path):
    from forecasting.benchmarks.harness import run_benchmark, write_results

    result = run_benchmark("air_passengers", ["naive", "seasonal_naive", "auto_ets"], windows=2, level=[80])
    paths = write_results(result, tmp_path / "bench")
    page = paths["html"].read_text()
    assert "<title>Leaderboard: air_passengers, 1 series, h = 12, 2 window(s)</title>" in page
    for label in ("dataset", "series", "horizon h", "windows", "interval levels", "date", "code version",
                  "spec: auto_ets"):
        assert f"<th>{label}</th>" in page, label
    assert "<th>sMAPE</th>" in page and "<th>skill vs seasonal naive (MASE)</th>" in page
    assert "<th>fit + predict (s)</th>" in page and "smape</th>" not in page
    md = paths["leaderboard"].read_text()
    assert md.startswith("| model | sMAPE | MASE | skill vs seasonal naive (MASE) |")
    # sorted: the first row is the best OWA; seasonal naive's skill against itself is 0
    m = result.metrics.sort("owa")
    assert md.splitlines()[2].startswith(f"| {m['model'][0]} |")
    # the reference row is marked; its skill against itself is 0
    assert re.search(r"\| seasonal_naive \(reference\) \| [0-9.]+ \| [0-9.]+ \| 0\.0000 \|", md)
    assert "- reference: seasonal_naive, season length 12: among the models asked" in md
    result_quick = run_benchmark("air_passengers", ["naive"], series_limit=1)
    assert result_quick.provenance["series_limit"] == 1
    _assert_clean(_chromium_check(page, tmp_path), 3)


def test_text_overlaps_finds_overlapping_labels():
    fig = new_figure(3, 2)
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, "first label")
    ax.text(0.5, 0.5, "second label")
    assert ("first label", "second label") in text_overlaps(fig)


def test_registered_report_is_cached_with_the_version(tmp_path: Path, air: pl.DataFrame):
    from litestar.testing import TestClient

    from forecasting.api.app import create_app
    from forecasting.api.settings import Settings

    body = {"unique_id": air["unique_id"].to_list(), "ds": [str(d) for d in air["ds"].to_list()],
            "y": air["y"].cast(pl.Float64).to_list()}
    with TestClient(create_app(Settings(state_dir=tmp_path / "state", max_train_seconds=120))) as client:
        r = client.post("/v1/models", json={"name": "air", "model": XGB, "data": body, "h": 12})
        assert r.status_code == 202, r.text
        job = wait_job(client, r.json()["id"])
        assert job["state"] == "succeeded", job
        start = time.perf_counter()
        first = client.get("/v1/models/air/report", params={"h": 12})
        cold = time.perf_counter() - start
        start = time.perf_counter()
        second = client.get("/v1/models/air/report", params={"h": 12})
        warm = time.perf_counter() - start
        assert first.status_code == second.status_code == 200
        assert first.text == second.text  # the same document, read back (its generation stamp included)
        assert warm < cold / 5, (cold, warm)
        cached = list((tmp_path / "state").rglob("_reports/1-*-h12.html"))
        assert len(cached) == 1
