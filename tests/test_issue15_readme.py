"""The README's "Explain a forecast" block runs as written and prints what the README shows."""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_readme_explain_a_forecast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    section = README.split("### Explain a forecast", 1)[1].split("\n### ", 1)[0]
    code, printed = re.findall(r"```(?:python)?\n(.*?)```", section, flags=re.S)[:2]
    (tmp_path / "datasets").mkdir()
    shutil.copy(REPO / "datasets" / "air_passengers.csv", tmp_path / "datasets")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    scope: dict[str, object] = {}
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    assert out.getvalue().split() == printed.split()  # the same numbers, the same table
    e = scope["explanation"]
    assert len(set(e.base_values.tolist())) == 1  # type: ignore[attr-defined]
    assert e.additivity_error_relative < 1e-6  # type: ignore[attr-defined]
