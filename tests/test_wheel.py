"""The installable package: a wheel built from the repository works outside the checkout.

The wheel is installed (without dependencies) into an empty virtual environment that sees the
project's dependencies through a ``.pth`` line to this environment's site-packages (so nothing
is downloaded), and used from a folder outside the checkout: the catalogue and the sample
ship as package data, only the ``forecasting`` namespace is installed (``import api`` and
``import benchmarks`` fail), and the CLI, the public API and the service work.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("build")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                        "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=600, check=False,
                       env={**os.environ, "PIP_NO_INDEX": "1", "TMPDIR": str(build)})
    assert r.returncode == 0, r.stderr[-3000:]
    (found,) = out.glob("forecasting-*.whl")
    return found


@pytest.fixture(scope="module")
def env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    home = tmp_path_factory.mktemp("wheel-venv")
    venv.EnvBuilder(with_pip=False).create(home / "venv")
    py = home / "venv" / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=home,
                     env=dict(os.environ)).stdout.strip())
    # the wheel goes in with this environment's pip; the dependencies are seen through a .pth line
    r = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target", str(site),
              str(wheel)], cwd=home, env=dict(os.environ))
    assert r.returncode == 0, r.stderr[-3000:]
    (site / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path_factory.mktemp("elsewhere")  # not the checkout: nothing importable from the working dir
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    clean["PATH"] = f"{home / 'venv' / 'bin'}:{clean.get('PATH', '')}"
    clean["FORECASTING_CACHE_DIR"] = str(work / "cache")
    return py, clean, work


def test_wheel_holds_one_namespace_and_the_package_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"forecasting"}
    assert "forecasting/_data/catalogue.json" in names and "forecasting/_data/air_passengers.csv" in names
    assert "forecasting/api/app.py" in names and "forecasting/benchmarks/harness.py" in names
    assert "forecasting/py.typed" in names
    for init in (ROOT / "forecasting").rglob("__init__.py"):  # every package folder ships
        assert str(init.relative_to(ROOT)) in names, f"{init.parent} is not in the wheel: list it in pyproject.toml"


def test_installed_wheel_works_outside_the_checkout(env: tuple[Path, dict[str, str], Path]) -> None:
    py, environ, work = env
    where = _run([str(py), "-c", "import forecasting, sys; print(forecasting.__file__)"], cwd=work, env=environ)
    assert where.returncode == 0 and str(ROOT) not in where.stdout, where.stdout + where.stderr
    for name in ("api", "benchmarks"):
        r = _run([str(py), "-c", f"import {name}"], cwd=work, env=environ)
        assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr, (name, r.stdout, r.stderr)

    cli = [str(py), "-m", "forecasting.cli"]
    listed = _run([*cli, "datasets"], cwd=work, env=environ)
    assert listed.returncode == 0 and "m4_hourly" in listed.stdout and "air_passengers" in listed.stdout, listed.stderr

    code = ("from forecasting.datasets import load_air_passengers; "
            "load_air_passengers().write_csv('air.csv')")
    assert _run([str(py), "-c", code], cwd=work, env=environ).returncode == 0
    r = _run([*cli, "forecast", "--input", "air.csv", "--model", "seasonal_naive", "--h", "12", "--output",
              "fc.csv"], cwd=work, env=environ)
    assert r.returncode == 0, r.stderr
    lines = (work / "fc.csv").read_text().splitlines()
    # seasonal naive: 1961's forecasts repeat 1960 (Jan 1960: 417, Dec 1960: 432)
    assert lines[0] == "unique_id,ds,SeasonalNaive" and lines[1].endswith(",417.0") and lines[-1].endswith(",432.0")

    code = ("import forecasting as fc, pandas as pd; "
            "df = pd.read_csv('air.csv', parse_dates=['ds']); "
            "r = fc.forecast(df, model='naive', h=3); "
            "print(type(r.forecasts).__module__.split('.')[0], r.forecasts['Naive'].tolist())")
    r = _run([str(py), "-c", code], cwd=work, env=environ)
    assert r.returncode == 0 and r.stdout.split() == ["pandas", "[432.0,", "432.0,", "432.0]"], r.stdout + r.stderr


def test_installed_wheel_serves_healthz(env: tuple[Path, dict[str, str], Path]) -> None:
    py, environ, work = env
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(py), "-m", "forecasting.cli", "serve", "--port", str(port)], cwd=work,
                            env={**environ, "FORECASTING_STATE_DIR": str(work / "var")},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = None
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    body = resp.read().decode()
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
        assert body is not None and '"status":"ok"' in body, proc.stderr.read() if proc.poll() is not None else body
    finally:
        proc.terminate()
        proc.wait(timeout=30)
