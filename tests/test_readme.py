"""The README's examples are tests: its CLI and curl commands run as written.

The curl example runs against a real server (``forecasting serve`` under uvicorn on a
free loopback port), the CLI example in a scratch folder beside a copy of the bundled
dataset path.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
BIN = Path(sys.executable).parent


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def _python_blocks() -> list[tuple[str | None, str]]:
    """Each ```python block of the README with the test that runs it: ``tests/x.py::test_y`` from the
    ``<!-- run by tests/x.py::test_y -->`` line right above the block (None: no such line)."""
    return [(m.group(1), m.group(2)) for m in re.finditer(
        r"(?:<!-- run by (\S+) -->\n)?```python\n(.*?)```", README, flags=re.S)]


def _blocks_run_by(test: str) -> list[str]:
    return [code for owner, code in _python_blocks() if owner == f"tests/test_readme.py::{test}"]


def _commands(prefix: str) -> list[str]:
    """Commands in ```bash blocks that start with ``prefix`` (continuation lines joined)."""
    out = []
    for block in _bash_blocks():
        joined = re.sub(r"\\\n", " ", block)
        current: list[str] = []
        for line in joined.splitlines(keepends=True):
            if line.startswith(prefix) and not current:
                current = [line]
            elif current:
                current.append(line)
            if current and _balanced("".join(current)):
                out.append("".join(current).strip())
                current = []
    return out


def _balanced(text: str) -> bool:
    try:
        shlex.split(text)
        return True
    except ValueError:
        return False


def _scratch_with_air_passengers(folder: Path) -> None:
    """A scratch folder laid out like the checkout for the README's `datasets/air_passengers.csv` paths."""
    (folder / "datasets").mkdir()
    shutil.copy(REPO / "datasets" / "air_passengers.csv", folder / "datasets" / "air_passengers.csv")


def _run(args: list[str], cwd: Path, *, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run a README command as a user would: the installed `forecasting` on PATH, in ``cwd``."""
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    state = tmp_path_factory.mktemp("state")
    env = {**os.environ, "FORECASTING_STATE_DIR": str(state)}
    proc = subprocess.Popen([str(BIN / "forecasting"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise AssertionError("server did not answer /healthz within 60 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_readme_gives_the_two_setup_commands():
    setup = _bash_blocks()[0]
    assert "make run" in setup and "make test" in setup
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_readme_curl_example_against_a_real_server(server: str):
    commands = _commands("curl ")
    assert len(commands) == 1
    cmd = commands[0].replace("http://127.0.0.1:8000", server)
    out = subprocess.run(["bash", "-c", cmd + " -w '\\n%{http_code}'"], capture_output=True, text=True, timeout=120)
    body, _, status = out.stdout.rpartition("\n")
    assert status == "200", out.stdout + out.stderr
    answer = json.loads(body)
    assert answer["model"] == "auto_ets" and answer["alias"] == "AutoETS"
    assert answer["params"]["season_length"] == 7  # derived from the daily frequency, as the README says
    assert any("season_length=7" in n for n in answer["notes"])
    rows = answer["forecasts"]
    assert [r["ds"] for r in rows] == [f"2024-03-{d}" for d in range(18, 25)]
    assert set(rows[0]) == {"unique_id", "ds", "AutoETS", "AutoETS-lo-80", "AutoETS-hi-80"}
    for r in rows:
        assert r["AutoETS-lo-80"] < r["AutoETS"] < r["AutoETS-hi-80"]
        assert 90 < r["AutoETS"] < 170  # the series lives between 110 and 150


def test_readme_error_example(server: str):
    """"h": 0 gets a problem whose field is "h", as the README says."""
    r = httpx.post(server + "/v1/forecast", json={"data": {"unique_id": ["a"] * 3, "ds": [1, 2, 3], "y": [1, 2, 3]},
                                                  "h": 0, "model": "naive"})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == "h" and r.json()["detail"] == "h must be an integer >= 1, got 0"


def test_readme_openapi_pages(server: str):
    doc = httpx.get(server + "/schema/openapi.json").json()
    assert "/v1/forecast" in doc["paths"]
    assert httpx.get(server + "/schema/swagger").status_code == 200


def test_readme_cli_example(tmp_path: Path):
    commands = _commands("forecasting forecast")
    assert len(commands) == 1
    _scratch_with_air_passengers(tmp_path)
    out = _run(shlex.split(commands[0]), tmp_path)
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "air_forecast.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["ds"] for r in rows] == [f"1961-{m:02d}-01" for m in range(1, 13)]
    assert list(rows[0]) == ["unique_id", "ds", "AutoETS", "AutoETS-lo-80", "AutoETS-hi-80", "AutoETS-lo-95",
                             "AutoETS-hi-95"]
    for r in rows:
        v = {k: float(x) for k, x in r.items() if k.startswith("AutoETS")}
        assert v["AutoETS-lo-95"] < v["AutoETS-lo-80"] < v["AutoETS"] < v["AutoETS-hi-80"] < v["AutoETS-hi-95"]
    # July carries the yearly peak, as in every year of the data
    july = float(rows[6]["AutoETS"])
    assert july == max(float(r["AutoETS"]) for r in rows)


def test_readme_bench_example_quick(tmp_path: Path, data_dir: Path):
    """The README's bench command, on 5 series to stay fast (the full run is in the issue note)."""
    commands = _commands("forecasting bench")
    assert len(commands) == 1
    args = shlex.split(commands[0]) + ["--series-limit", "5"]
    out = _run(args, tmp_path, timeout=600)
    assert out.returncode == 0, out.stderr
    with open(tmp_path / "bench-results" / "metrics.csv") as fh:
        rows = {r["model"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"naive2", "seasonal_naive", "auto_ets"}
    assert float(rows["naive2"]["owa"]) == pytest.approx(1.0)
    assert (tmp_path / "bench-results" / "leaderboard.md").read_text().startswith("| model")


@pytest.fixture(scope="module")
def trained_air(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch folder where the README's ``forecasting train`` ran (models/air), once for the tests that use it
    (explain, export: they read the folder and write beside it, each its own file)."""
    train_cmd = _commands("forecasting train")
    assert len(train_cmd) == 1
    folder = tmp_path_factory.mktemp("readme-train")
    _scratch_with_air_passengers(folder)
    out = _run(shlex.split(train_cmd[0]), folder)
    assert out.returncode == 0, out.stderr + out.stdout
    return folder


def test_readme_train_and_explain_examples(trained_air: Path):
    explain_cmd = _commands("forecasting explain")
    assert len(explain_cmd) == 1
    out = _run(shlex.split(explain_cmd[0]), trained_air)
    assert out.returncode == 0, out.stderr + out.stdout
    assert "additivity error" in out.stdout
    with open(trained_air / "air_shap.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {"unique_id", "ds", "step", "feature", "value", "shap", "is_forecast_value"} <= set(rows[0])
    assert {int(r["step"]) for r in rows} == set(range(1, 25))
    # the seasonal lag_12 of step 13 onwards is a value the model forecast itself; not before
    flagged = {int(r["step"]) for r in rows if r["feature"] == "lag_12" and r["is_forecast_value"] == "true"}
    assert flagged == set(range(13, 25))


def test_readme_report_example(tmp_path: Path):
    commands = _commands("forecasting report")
    assert len(commands) == 1
    _scratch_with_air_passengers(tmp_path)
    out = _run(shlex.split(commands[0]), tmp_path)
    assert out.returncode == 0, out.stderr
    html = (tmp_path / "air_report.html").read_text()
    for section in ("Model card", "Global importance (SHAP)", "SHAP beeswarm", "SHAP dependence plots",
                    "SHAP waterfalls of selected forecasts", "Forecasts with intervals"):
        assert section in html
    assert "http://" not in html and "https://" not in html and html.count("data:image/png;base64,") >= 5


def test_readme_export_example(trained_air: Path):
    """Trained as the README says (the shared fixture), then export: a verified ONNX folder whose parity the
    command prints."""
    (export_cmd,) = _commands("forecasting export")
    out = _run(shlex.split(export_cmd), trained_air)
    assert out.returncode == 0, out.stderr
    assert "booster_0.onnx: parity on" in out.stdout
    manifest = json.loads((trained_air / "models" / "air.onnx" / "manifest.json").read_text())
    assert manifest["kind"] == "xgboost" and manifest["parity"]["booster_0.onnx"]["batch_1"]["max_rel_diff"] < 1e-4


def test_readme_python_blocks_each_name_the_test_that_runs_them():
    """Every ```python block is marked with exactly one test (``<!-- run by tests/x.py::test_y -->``) and that test
    exists and reads the README; the blocks of this file's tests are the ones they run."""
    blocks = _python_blocks()
    unmarked = [code.splitlines()[0] for owner, code in blocks if owner is None]
    assert not unmarked, (f"README python blocks without a '<!-- run by tests/x.py::test_y -->' line above them "
                          f"(first lines): {unmarked}")
    for owner, _ in blocks:
        path, _, name = str(owner).partition("::")
        source = (REPO / path).read_text()
        assert re.search(rf"^def {name}\(", source, flags=re.M), f"{owner}: no such test"
        assert "README.md" in source, f"{path} does not read the README"
    assert len(_blocks_run_by("test_readme_python_example")) == 2  # the quickstart, then auto's (reusing its df)
    assert len(_blocks_run_by("test_readme_hierarchy_example")) == 1


def test_readme_python_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The README's Python block runs as written (in a scratch folder holding datasets/air_passengers.csv)."""
    blocks = _blocks_run_by("test_readme_python_example")
    assert len(blocks) == 2  # the quickstart, then auto's (which reuses its df)
    _scratch_with_air_passengers(tmp_path)
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    import pandas as pd

    result = scope["result"]
    assert isinstance(result.forecasts, pd.DataFrame) and len(result.forecasts) == 12  # type: ignore[attr-defined]
    assert list(result.forecasts.columns) == ["unique_id", "ds", "AutoETS", "AutoETS-lo-80", "AutoETS-hi-80"]  # type: ignore[attr-defined]
    assert result.spec.params == {"season_length": 12}  # type: ignore[attr-defined]
    assert any("season_length=12" in n for n in result.notes)  # type: ignore[attr-defined]
    backtest = scope["backtest"]
    assert list(backtest.columns) == ["unique_id", "ds", "cutoff", "y", "SeasonalNaive"] and len(backtest) == 24  # type: ignore[attr-defined]
    # seasonal naive on the last window: 1960's forecasts repeat 1959 (Jan 1959: 360)
    assert float(backtest["SeasonalNaive"].iloc[12]) == 360.0  # type: ignore[attr-defined]

    shap = scope["shap"]
    assert shap.n_rows == 12 and shap.additivity_error < 1e-3  # type: ignore[attr-defined]
    same = scope["same"]
    import numpy as np

    direct = scope["fc"].forecast(scope["df"], model=scope["model"], h=12).forecasts  # type: ignore[attr-defined]
    np.testing.assert_allclose(same.forecasts["XGBoost"], direct["XGBoost"], rtol=1e-6)  # type: ignore[attr-defined]
    exec(compile(blocks[1], "README.md", "exec"), scope)  # noqa: S102 - auto's example, in the same session
    auto = scope["result"]
    assert auto.spec.name == "auto" and auto.selection["members"]  # type: ignore[attr-defined]
    assert list(auto.forecasts.columns) == ["unique_id", "ds", "Auto", "Auto-lo-80", "Auto-hi-80", "Auto-lo-95",  # type: ignore[attr-defined]
                                            "Auto-hi-95"]


def test_readme_hierarchy_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hierarchy block runs as written: every reconciled column coherent, the levels as described, the report
    written with its coherence check and per-level accuracy table."""
    (block,) = _blocks_run_by("test_readme_hierarchy_example")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    result = scope["result"]
    assert result.forecasts.height == 21 * 4  # type: ignore[attr-defined]  # 1 + 2 + 2 + 4 + 4 + 8 series
    assert result.forecasts["unique_id"][0] == "Total" and "NSW/business" in result.forecasts["unique_id"]  # type: ignore[attr-defined]
    assert all(result.coherence[f"AutoETS/{m}"] < 1e-6 for m in ("bottom_up", "ols", "mint_shrink"))  # type: ignore[attr-defined]
    html = (tmp_path / "tourism_report.html").read_text()
    assert result.report.path.name == "tourism_report.html"  # type: ignore[attr-defined]
    assert '<table id="coherence-table">' in html and html.count('<tr data-level="') == 7  # 6 levels and 'all'
