"""NHITS through neuralforecast (registry name ``nhits``).

Challu, Olivares, Oreshkin, Garza, Mergenthaler-Canseco & Dubrawski, "N-HiTS: Neural
Hierarchical Interpolation for Time Series Forecasting", AAAI 2023. Training, forecasting,
explanations and the model folder are :class:`~forecasting.models.neural.NeuralForecaster`'s.
"""

from __future__ import annotations

from typing import Any, ClassVar

from forecasting.data import Panel
from forecasting.models.neural import NeuralForecaster
from forecasting.models.registry import NHITSParams

__all__ = ["NHITSForecaster"]


class NHITSForecaster(NeuralForecaster[NHITSParams]):
    """NHITS (registry name ``nhits``; Challu et al., AAAI 2023) through neuralforecast.

    Architecture parameters (neuralforecast's names): ``n_pool_kernel_size``,
    ``n_freq_downsample`` (default from the seasons: ``[longest season, season, 1]`` when
    the data have two seasons and the input covers two of the longest (hourly: ``[168, 24,
    1]``, the README's M4 Hourly spec), else ``[min(m, h/2), min(m, h/2)/2, 1]`` (non-seasonal:
    ``[h/4, h/8, 1]``)), ``mlp_units`` (width of the two layers of each block, default 512),
    ``dropout_prob_theta``. See :class:`NeuralForecaster` for the rest.

    Training defaults: 3,000 steps (a ceiling: early stopping is on where every series has
    room for a validation block) of 256 windows each, where neuralforecast's are 1,000 of
    1,024. A step costs in proportion to its windows, so this is three times the updates
    (and learning-rate decays three times further apart) for about the same compute;
    neuralforecast's own ``AutoNHITS`` searches ``windows_batch_size`` over 128-1,024, and
    smaller batches with more updates generalise at least as well for the same number of
    samples (Masters & Luschi, "Revisiting Small Batch Training for Deep Neural Networks",
    2018). Measured on M4 Hourly (2 CPU cores): see the README.
    """

    name: ClassVar[str] = "nhits"
    default_alias: ClassVar[str] = "NHITS"
    default_max_steps: ClassVar[int] = 3000
    default_windows_batch_size: ClassVar[int] = 256

    def _derive_architecture(self, settings: NHITSParams, panel: Panel) -> dict[str, Any]:
        """``n_freq_downsample`` from the seasons when unset (see the class docstring)."""
        if settings.n_freq_downsample is not None:
            return {}
        H, m, longest = self.trained_horizon, self.season_length, self._longest_season(panel)
        if longest > m and (settings.input_size or 0) >= 2 * longest:
            down = [longest, m, 1]
        elif m > 1:
            down = [max(1, min(m, H // 2)), max(1, min(m, H // 2) // 2), 1]
        else:
            down = [max(1, H // 4), max(1, H // 8), 1]
        return {"n_freq_downsample": down}

    def _build_net(self, futr: list[str], hist: list[str], stat: list[str], trainer: dict[str, Any]) -> Any:
        from neuralforecast.models import NHITS

        H = self.trained_horizon
        p = self._p
        freq_down = p.n_freq_downsample or [1, 1, 1]  # always derived by fit (or stored with the model)
        width = int(p.mlp_units or 512)
        return NHITS(h=H, input_size=self.window, futr_exog_list=futr or None, hist_exog_list=hist or None,
                     stat_exog_list=stat or None, loss=self._loss(), **self._training_settings(),
                     n_pool_kernel_size=list(p.n_pool_kernel_size or [2, 2, 1]),
                     n_freq_downsample=list(freq_down), mlp_units=[[width, width]] * 3,
                     dropout_prob_theta=float(p.dropout_prob_theta or 0.0), **trainer)
