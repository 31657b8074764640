"""The README's section on models that keep learning runs as written: its Python block, its retraining policy
and its CLI commands (against a state folder holding a model named ``demand``)."""

from __future__ import annotations

import json
import re
import shlex
from datetime import datetime
from pathlib import Path

import msgspec
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from forecasting.service.monitoring import Monitoring, RetrainPolicy
from forecasting.service.training import train
from forecasting.store import Store, default_locations

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
SECTION = README[README.index("### Models that keep learning"):README.index("### Settings")]


def test_readme_anomaly_block() -> None:
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", SECTION, flags=re.S)]
    scope: dict[str, object] = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    flagged = scope["flagged"]
    first = flagged.row(0, named=True)  # type: ignore[attr-defined]
    assert first["ds"] == datetime(2024, 1, 9, 8) and round(first["score"], 1) == 4.5
    assert flagged["anomaly"].all()  # type: ignore[index]


def _demand(state: Path) -> None:
    """A model ``demand`` (seasonal naive on two weeks of hourly integer steps) in ``state``."""
    y = 100 + 20 * np.sin(2 * np.pi * np.arange(336) / 24)
    frame = pl.DataFrame({"unique_id": "d1", "ds": np.arange(1, 337), "y": y})
    with Store(*default_locations(state)) as store:
        result = train(frame, kind="forecast", spec={"name": "seasonal_naive", "params": {"season_length": 24}},
                       workdir=state / "work", h=24, freq=1)
        info = store.register_version("demand", tenant="default", spec=result.spec, kind="forecast",
                                      artifact_src_dir=result.artifact, fingerprint=result.fingerprint,
                                      metrics=result.metrics, exog=result.exog, max_h=result.max_h)
        Monitoring(store).keep_training_data(info, frame)


def test_readme_policy_and_cli_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from forecasting.cli import app

    (policy_text,) = re.findall(r"```json\n(.*?)```", SECTION, flags=re.S)
    policy = msgspec.json.decode(policy_text, type=RetrainPolicy).check()
    assert policy.interval_s == 86400 and policy.margin == 0.02

    state = tmp_path / "var"
    _demand(state)
    new = pl.DataFrame({"unique_id": "d1", "ds": np.arange(337, 361),
                        "y": 100 + 20 * np.sin(2 * np.pi * np.arange(336, 360) / 24)})
    new.write_csv(tmp_path / "new_actuals.csv")
    history = new.with_columns(pl.when(pl.col("ds") == 350).then(300.0).otherwise(pl.col("y")).alias("y"))
    history.write_csv(tmp_path / "history.csv")
    (block,) = [b for b in re.findall(r"```bash\n(.*?)```", SECTION, flags=re.S)]
    monkeypatch.setenv("FORECASTING_STATE_DIR", str(state))
    monkeypatch.chdir(tmp_path)
    outputs = []
    for line in block.strip().splitlines():
        program, *args = shlex.split(line)
        assert program == "forecasting"
        done = CliRunner().invoke(app, args)  # in this process: the same command as the console script
        assert done.exit_code == 0, (line, done.output)
        outputs.append(done.output)
    assert json.loads(outputs[0])["rows"] == 24
    assert "accuracy of demand by step" in outputs[1]  # nothing served yet: an empty table
    decision = json.loads(outputs[2])
    assert decision["champion_version"] == 1 and decision["challenger_version"] == 2
    assert decision["promoted"] is False  # the same spec on the same data: a tie keeps the champion
    # history.csv has a spike of 300 at step 350 (the series lives in 80..120): the one point flagged
    assert re.search(r"│ d1 +│ 350 │ 300 │", outputs[3]) and outputs[3].count("│ d1 ") == 1
