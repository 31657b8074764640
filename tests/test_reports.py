"""HTML SHAP/forecast reports: self-contained structure, sections per model family, numbers
that match an independent computation, additive waterfalls, and a real headless Chromium
that renders the report with every plot loaded."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from forecasting.backtest import cross_validation
from forecasting.cli import app
from forecasting.datasets import load_m4_hourly
from forecasting.errors import InvalidInputError, InvalidParameterError
from forecasting.evaluation import smape
from forecasting.reports import build_report, write_report

XGB_SPEC = {"name": "xgboost", "params": {"season_length": 24, "n_estimators": 60, "max_depth": 4}}
MSTL_SPEC = {"name": "mstl", "params": {"season_length": 24}}
H_XGB = 48
H_STATS = 24


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the ids of <section> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def of(self, name: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == name]


def _tags(text: str) -> _Tags:
    p = _Tags()
    p.feed(text)
    return p


def _sections(text: str) -> list[str]:
    return [a["id"] for a in _tags(text).of("section")]


@pytest.fixture(scope="module")
def m4_small(data_dir: Path) -> pl.DataFrame:
    train, _ = load_m4_hourly()
    ids = train["unique_id"].unique(maintain_order=True).head(6).to_list()
    return train.filter(pl.col("unique_id").is_in(ids))


@pytest.fixture(scope="module")
def xgb_html(m4_small: pl.DataFrame) -> str:
    return build_report(XGB_SPEC, m4_small, h=H_XGB, freq=1, data_name="m4_hourly (6 series)")


@pytest.fixture(scope="module")
def stats_html(m4_small: pl.DataFrame) -> str:
    return build_report(MSTL_SPEC, m4_small, h=H_STATS, freq=1, title="MSTL <on> M4 & co")


def _assert_self_contained(text: str) -> None:
    tags = _tags(text)
    assert not tags.of("script") and not tags.of("link") and not tags.of("iframe")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "@import" not in text and "url(" not in text
    imgs = tags.of("img")
    assert imgs
    ids = [a.get("id", "") for a in imgs]
    assert all(ids) and len(set(ids)) == len(ids)
    for a in imgs:
        assert a["src"].startswith("data:image/png;base64,"), a["src"][:40]
        assert a.get("alt", "").strip()
        assert base64.b64decode(a["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for a in tags.of("a"):
        assert a["href"].startswith("#")


def test_xgboost_report_is_self_contained_with_shap_sections(xgb_html: str):
    _assert_self_contained(xgb_html)
    sections = _sections(xgb_html)
    assert sections[:7] == ["model-card", "global-importance", "beeswarm", "dependence", "waterfalls", "series",
                            "forecasts"]
    assert "decomposition" not in sections
    imgs = _tags(xgb_html).of("img")
    # importance, beeswarm, dependence, >= 1 waterfall and >= 1 forecast plot
    assert len(imgs) >= 5
    assert any("waterfall" in a["id"] for a in imgs) and any("forecast" in a["id"] for a in imgs)
    assert "Decomposition (not SHAP)" not in xgb_html
    for label in ("largest forecast", "smallest forecast", "most uncertain"):
        assert label in xgb_html


def test_statistical_report_has_labelled_decomposition_and_no_shap(stats_html: str):
    _assert_self_contained(stats_html)
    sections = _sections(stats_html)
    assert sections[:4] == ["model-card", "decomposition", "series", "forecasts"]
    assert not {"global-importance", "beeswarm", "dependence", "waterfalls"} & set(sections)
    assert "Decomposition (not SHAP)" in stats_html
    assert "MSTL&#x27;s own components" in stats_html
    assert "waterfall-table" not in stats_html and "beeswarm" not in stats_html.lower()
    for a in _tags(stats_html).of("img"):
        if "decomposition" in a["id"]:
            assert a["alt"].startswith("Decomposition (not SHAP)")
    # the title is escaped, never markup
    assert "<title>MSTL &lt;on&gt; M4 &amp; co</title>" in stats_html
    assert "<on>" not in stats_html


@pytest.mark.parametrize("which", ["xgboost", "mstl"])
def test_model_card_shows_the_validation_smape(which: str, m4_small: pl.DataFrame, xgb_html: str, stats_html: str):
    spec, h, text = (XGB_SPEC, H_XGB, xgb_html) if which == "xgboost" else (MSTL_SPEC, H_STATS, stats_html)
    cv = cross_validation(m4_small, model=spec, h=h, n_windows=1, freq=1)
    col = next(c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y"))
    per_series = [smape(g["y"].to_numpy(), g[col].to_numpy()) for _, g in cv.group_by("unique_id")]
    expected = float(np.mean(per_series))
    cell = next(a for a in _tags(text).of("td") if a.get("id") == "validation-smape")
    assert float(cell["data-value"]) == pytest.approx(expected, rel=1e-9)
    assert re.search(rf'id="validation-smape"[^>]*>{expected:.3f}</td>', text)
    for needed in ('id="validation-mase"', 'id="validation-coverage-80"', 'id="validation-coverage-95"',
                   f"<td>{m4_small['unique_id'].n_unique()}</td>", "xgboost" if which == "xgboost" else "mstl",
                   "season_length", "statsforecast", "matplotlib"):
        assert needed in text


def test_waterfall_values_add_up(xgb_html: str, m4_small: pl.DataFrame):
    tables = re.findall(r'<table class="waterfall-table".*?</table>', xgb_html, re.S)
    assert len(tables) >= 2
    from forecasting.models import make_model

    forecasts = make_model(XGB_SPEC, freq=1).fit(m4_small).predict(H_XGB)
    for t in tables:
        base = float(re.search(r'data-kind="base" data-value="([^"]+)"', t).group(1))
        output = float(re.search(r'data-kind="output" data-value="([^"]+)"', t).group(1))
        shap = [float(v) for v in re.findall(r'data-shap="([^"]+)"', t)]
        assert len(shap) >= 2
        assert base + sum(shap) == pytest.approx(output, rel=1e-6, abs=1e-3)
        uid = re.search(r'data-series="([^"]+)"', t).group(1)
        step = int(re.search(r'data-step="(\d+)"', t).group(1))
        fc = forecasts.filter(pl.col("unique_id") == uid)["XGBoost"][step - 1]
        assert output == pytest.approx(fc, rel=1e-5)


def test_asked_series_and_forecast_derived_lags_are_labelled(m4_small: pl.DataFrame):
    uid = m4_small["unique_id"][0]
    text = build_report({"name": "xgboost", "params": {"season_length": 24, "n_estimators": 30,
                                                        "features": {"lags": [1, 24]}}},
                        m4_small, h=H_XGB, freq=1, series=[uid], validation=False)
    steps = re.findall(r'<table class="waterfall-table"[^>]*data-series="([^"]+)" data-step="(\d+)"', text)
    assert steps == [(uid, "1"), (uid, str(H_XGB))]
    # at step 48 both lags (1 and 24) are the model's own forecasts, and are shown as such
    last = re.findall(r'<table class="waterfall-table".*?</table>', text, re.S)[-1]
    assert last.count('class="label">from forecast') == 2
    assert 'id="validation-table"' not in text


def test_bad_arguments_are_named(m4_small: pl.DataFrame):
    with pytest.raises(InvalidInputError, match="not in the data"):
        build_report(MSTL_SPEC, m4_small, h=4, freq=1, series=["nope"])
    with pytest.raises(InvalidParameterError, match="select"):
        build_report(MSTL_SPEC, m4_small, h=4, freq=1, select=["biggest"])
    with pytest.raises(InvalidParameterError, match="h must be"):
        build_report(MSTL_SPEC, m4_small, h=0, freq=1)


def test_classical_decomposition_for_other_statistical_models(m4_small: pl.DataFrame, tmp_path: Path):
    already = set(__import__("matplotlib.pyplot").pyplot.get_fignums()) if "matplotlib.pyplot" in sys.modules else None
    out = write_report({"name": "naive2", "params": {"season_length": 24}}, m4_small, tmp_path / "r.html", h=12,
                       freq=1, level=(90,))
    assert out.sections == [("model-card", "Model card"), ("decomposition", "Decomposition (not SHAP)"),
                            ("series", "Selected series"), ("forecasts", "Forecasts with intervals")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # atomic write left no temp file
    text = out.path.read_text(encoding="utf-8")
    _assert_self_contained(text)
    assert "classical multiplicative decomposition" in text and "Naive2&#x27;s 90% autocorrelation test" in text
    # matplotlib's pyplot (global figure state) was never used
    if already is None:
        assert "matplotlib.pyplot" not in sys.modules
    else:
        assert set(sys.modules["matplotlib.pyplot"].get_fignums()) == already


def test_cli_report(m4_small: pl.DataFrame, tmp_path: Path):
    data = tmp_path / "hourly.csv"
    m4_small.filter(pl.col("unique_id").is_in(m4_small["unique_id"].unique(maintain_order=True).head(3).to_list())
                    ).write_csv(data)
    out = tmp_path / "report.html"
    runner = CliRunner()
    res = runner.invoke(app, ["report", "--model", '{"name": "seasonal_naive", "params": {"season_length": 24}}',
                              "--input", str(data), "--h", "24", "--output", str(out), "--level", "80",
                              "--freq", "1"])
    assert res.exit_code == 0, res.output
    assert str(out) in res.output and "Decomposition (not SHAP)" in res.output and "Model card" in res.output
    _assert_self_contained(out.read_text(encoding="utf-8"))
    bad = runner.invoke(app, ["report", "--model", "nope", "--input", str(data), "--h", "24", "--output",
                              str(tmp_path / "x.html")])
    assert bad.exit_code == 2
    assert "unknown model 'nope'" in bad.output and not (tmp_path / "x.html").exists()


def test_cli_report_from_saved_xgboost_folder(m4_small: pl.DataFrame, tmp_path: Path):
    data = tmp_path / "hourly.parquet"
    m4_small.write_parquet(data)
    folder = tmp_path / "model"
    runner = CliRunner()
    spec = '{"name": "xgboost", "params": {"season_length": 24, "n_estimators": 30}}'
    assert runner.invoke(app, ["train", "--input", str(data), "--model", spec, "--output", str(folder),
                               "--freq", "1", "--n-jobs", "1"]).exit_code == 0
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--model", str(folder), "--input", str(data), "--h", "24", "--output",
                              str(out), "--series", m4_small["unique_id"][0]])
    assert res.exit_code == 0, res.output
    assert "SHAP waterfalls of selected forecasts" in res.output
    assert "loaded or given fitted" in out.read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- the browser test

_CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a headless-capable Chromium; installed from the system packages when missing.

    Tries ``apt-get install -y --no-install-recommends chromium`` (and, if that fails
    because the package lists are empty, ``apt-get update`` first), only when running as
    root with apt-get present, within 300 s in all; skips with the reason otherwise.
    """
    found = _find_chromium()
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        pytest.skip("chromium is not on PATH and apt-get is not available to install it")
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("chromium is not on PATH and installing it needs root (apt-get install chromium)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    deadline = time.monotonic() + 300
    install = [apt, "install", "-y", "--no-install-recommends", "chromium"]
    log = []
    for cmd in (install, [apt, "update"], install):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired:
            log.append(f"{' '.join(cmd[1:])}: timed out")
            break
        log.append(f"{' '.join(cmd[1:3])}: exit {res.returncode} {res.stderr.strip()[-200:]}")
        if cmd is install and res.returncode == 0 and _find_chromium():
            return _find_chromium()  # type: ignore[return-value]
    pytest.skip("chromium is not installed and could not be installed within 300 s: " + " | ".join(log))


def _run_chromium(chromium: str, args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([chromium, *_CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


def _read_png(path: Path) -> np.ndarray:
    try:
        from PIL import Image

        return np.asarray(Image.open(path).convert("RGB"))
    except ImportError:  # matplotlib's reader gives floats in [0, 1]
        import matplotlib.image

        return (matplotlib.image.imread(str(path))[..., :3] * 255).astype(np.uint8)


_LOADED_SCRIPT = ("<script>window.addEventListener('load', function () {"
                  "document.querySelectorAll('img').forEach(function (i) {"
                  "i.setAttribute('data-loaded', i.naturalWidth + 'x' + i.naturalHeight); });"
                  "document.body.setAttribute('data-done', '1'); });</script>")


@pytest.mark.parametrize("which", ["xgboost", "mstl"])
def test_report_renders_in_headless_chromium(which: str, chromium: str, xgb_html: str, stats_html: str,
                                             tmp_path: Path):
    text = xgb_html if which == "xgboost" else stats_html
    report = tmp_path / "report.html"
    report.write_text(text, encoding="utf-8")
    n_imgs = len(_tags(text).of("img"))

    # 1. a screenshot of the page: not blank, many colours (the plots are drawn)
    shot = tmp_path / "shot.png"
    _run_chromium(chromium, [f"--screenshot={shot}", "--window-size=1200,4000", report.as_uri()], tmp_path / "p1")
    pixels = _read_png(shot)
    assert pixels.shape[0] >= 3000 and pixels.shape[1] >= 1000
    flat = pixels.reshape(-1, 3)
    colours = np.unique(flat[:: max(1, len(flat) // 400_000)], axis=0)
    assert len(colours) > 200, f"only {len(colours)} colours: the page looks blank"
    non_white = float(np.mean(np.any(flat < 245, axis=1)))
    assert non_white > 0.05, f"only {non_white:.1%} of the screenshot is not white"

    # 2. the DOM after load: every image decoded with a real size (test-only copy with a small script)
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", _LOADED_SCRIPT + "</body>"), encoding="utf-8")
    res = _run_chromium(chromium, ["--dump-dom", "--virtual-time-budget=2000", probe.as_uri()], tmp_path / "p2")
    dom = _tags(res.stdout)
    assert dom.of("body") and dom.of("body")[0].get("data-done") == "1", "the load event did not fire"
    imgs = dom.of("img")
    assert len(imgs) == n_imgs
    for a in imgs:
        w, _, hgt = a.get("data-loaded", "0x0").partition("x")
        assert int(w) > 0 and int(hgt) > 0, f"image {a.get('id')} did not load: {a.get('data-loaded')}"
