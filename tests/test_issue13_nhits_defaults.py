"""Issue 13, item 4: the default training of ``nhits`` (steps, windows per step) derived at fit, with its note.

The defaults are checked through ``_derive`` and ``_build_net`` (nothing trained); one tiny
network is trained twice to check that copying only the sampled windows changes no weight.
The accuracy and time the defaults were chosen by (M4 Hourly, 2 CPU cores) are in the README.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from forecasting.data import validate_panel
from forecasting.models import make_model


def _hourly(lengths: dict[str, int], *, calendar: bool) -> pl.DataFrame:
    """Positive series with a daily cycle: hourly timestamps (``calendar``) or an integer step index (M4's)."""
    parts = []
    for uid, n in lengths.items():
        t = np.arange(n)
        ds = (pl.datetime_range(pl.datetime(2000, 1, 1), pl.datetime(2000, 1, 1) + pl.duration(hours=n - 1), "1h",
                                eager=True) if calendar else pl.Series(t + 1))
        parts.append(pl.DataFrame({"unique_id": uid, "ds": ds, "y": 20 + 5 * np.sin(2 * np.pi * t / 24)}))
    return pl.concat(parts)


def test_nhits_trains_3000_steps_of_256_windows_by_default_and_says_so() -> None:
    """M4 Hourly as the harness gives it (integer ds, season 24, h 48, 700-960 observations): a week of input,
    [24, 12, 1] downsampling, 3,000 steps of 256 windows; the learning rate halves every 1,000 steps."""
    panel = validate_panel(_hourly({"a": 700, "b": 960}, calendar=False))
    model = make_model({"name": "nhits", "params": {"season_length": 24, "horizon": 48}}, freq=panel.freq)
    settings, notes = model._derive(panel)
    assert (settings.input_size, settings.n_freq_downsample, settings.max_steps, settings.windows_batch_size,
            settings.early_stop_patience_steps) == (168, [24, 12, 1], 3000, 256, 5)
    assert notes == ["nhits: input_size=168, max_steps=3000, windows_batch_size=256, target_transform=log, "
                     "n_freq_downsample=[24, 12, 1], early stopping on the last 48 steps of each series (patience 5 "
                     "checks of 100 steps) (derived from the data: horizon 48, season 24, shortest series 700 "
                     "observations)"]
    model.settings_ = settings
    net = model._build_net([], [], [], {"accelerator": "cpu", "logger": False, "enable_checkpointing": False})
    assert (net.max_steps, net.windows_batch_size, net.lr_decay_steps, net.batch_size) == (3000, 256, 1000, 32)


def test_given_training_settings_are_kept_and_other_networks_keep_neuralforecasts() -> None:
    panel = validate_panel(_hourly({"a": 700}, calendar=True))
    given = make_model({"name": "nhits", "params": {"max_steps": 1000, "windows_batch_size": 1024}}, freq="1h")
    settings, notes = given._derive(panel)
    assert (settings.max_steps, settings.windows_batch_size) == (1000, 1024)
    assert "max_steps" not in notes[0] and "windows_batch_size" not in notes[0]
    tft, _ = make_model({"name": "tft"}, freq="1h")._derive(panel)
    assert (tft.max_steps, tft.windows_batch_size) == (1000, 1024)


def test_training_copies_only_the_sampled_windows_and_learns_the_same_weights(monkeypatch) -> None:
    """gather_sampled_windows: every step indexes the windows once, with windows_batch_size numbers, and the
    trained weights equal neuralforecast's own windowing to the last bit (same windows, same draws), with
    series of unequal lengths (padded, so some windows are unavailable) and a static column."""
    import forecasting.models.neural as neural

    frame = _hourly({"a": 90, "b": 120, "c": 150}, calendar=False)
    frame = frame.with_columns(pl.col("y") + pl.col("unique_id").replace_strict({"a": 0.0, "b": 3.0, "c": 7.0}))
    static = pl.DataFrame({"unique_id": ["a", "b", "c"], "size": [1.0, 2.0, 3.0]})
    panel = validate_panel(frame)
    spec = {"name": "nhits", "params": {"season_length": 24, "horizon": 12, "input_size": 24, "max_steps": 6,
                                        "windows_batch_size": 16, "batch_size": 2, "mlp_units": 8, "device": "cpu",
                                        "val_check_steps": 3}}
    drawn: list[int] = []
    gather = neural._WindowsOnDemand.__getitem__
    monkeypatch.setattr(neural._WindowsOnDemand, "__getitem__", lambda self, idx: (drawn.append(len(idx)),
                                                                                 gather(self, idx))[1])
    ours = make_model(spec, freq=panel.freq).fit(panel, static=static)
    assert drawn == [16] * 6
    monkeypatch.setattr(neural, "gather_sampled_windows", lambda net: None)
    library = make_model(spec, freq=panel.freq).fit(panel, static=static)
    assert len(drawn) == 6
    a, b = ours.net_.state_dict(), library.net_.state_dict()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) == 0.0
