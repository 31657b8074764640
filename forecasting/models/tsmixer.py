"""TSMixer through neuralforecast (registry name ``tsmixer``): ``TSMixer``, or ``TSMixerx`` with exogenous inputs.

Chen, Li, Arik, Yoder & Pfister, "TSMixer: An All-MLP Architecture for Time Series
Forecasting", Transactions on Machine Learning Research, 2023. Training, forecasting,
explanations, the model folder and the ONNX export are
:class:`~forecasting.models.neural.NeuralForecaster`'s; this file builds the network.

neuralforecast's TSMixer and TSMixerx are *multivariate*: one sample holds every series of
the data set as channels (``n_series`` fixed at construction), so a model could neither
forecast a series it was not trained on nor train on a panel of thousands. The paper's
channel-independent variant (its section 4, "TMix-Only" applied per series) is the same
network with one channel: here the network is built with ``n_series=1`` and declared
univariate to neuralforecast, so each series' windows are samples, as for NHITS and TFT.
With exogenous inputs (the calendar columns included) it is ``TSMixerx`` (the paper's
TSMixer with auxiliary information, section 3.2), whose forward pass is adapted to
neuralforecast's univariate window shapes (:func:`_univariate_tsmixerx`).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from forecasting.models.neural import NeuralForecaster
from forecasting.models.registry import TSMixerParams

__all__ = ["TSMixerForecaster"]

#: architecture defaults (the paper's tuned ranges: 1-8 blocks, hidden 64-1024, dropout 0.1-0.9)
DEFAULT_N_BLOCK = 2
DEFAULT_FF_DIM = 64
DEFAULT_DROPOUT = 0.1


class TSMixerForecaster(NeuralForecaster[TSMixerParams]):
    """TSMixer (registry name ``tsmixer``; Chen et al., TMLR 2023) through neuralforecast, channel-independent.

    ``TSMixer`` when the model has no exogenous input, ``TSMixerx`` when it has any
    (future-known or historic columns, calendar inputs, static columns); see the module
    docstring for why each series is one channel.

    Architecture parameters (neuralforecast's names): ``n_block`` (mixing layers, default
    2), ``ff_dim`` (width of the feature-mixing MLP, default 64), ``dropout`` (default 0.1;
    neuralforecast's 0.9 is the top of the paper's search range), ``revin`` (the network's
    own reversible instance normalisation, default off: the window scaler,
    ``scaler_type``, already normalises each window). See :class:`NeuralForecaster` for the
    training settings, derived defaults, ``time_limit`` and devices.
    """

    name: ClassVar[str] = "tsmixer"
    default_alias: ClassVar[str] = "TSMixer"

    def _build_net(self, futr: list[str], hist: list[str], stat: list[str], trainer: dict[str, Any]) -> Any:
        p = self._p
        arch = {"n_block": int(p.n_block or DEFAULT_N_BLOCK), "ff_dim": int(p.ff_dim or DEFAULT_FF_DIM),
                "dropout": float(p.dropout if p.dropout is not None else DEFAULT_DROPOUT), "revin": bool(p.revin)}
        common = {"h": self.trained_horizon, "input_size": self.window, "n_series": 1, "loss": self._loss(),
                  **arch, **self._training_settings(), **trainer}
        if futr or hist or stat:
            return _univariate_tsmixerx()(futr_exog_list=futr or None, hist_exog_list=hist or None,
                                          stat_exog_list=stat or None, **common)
        return _univariate_tsmixer()(**common)


@functools.cache
def _univariate_tsmixer() -> type[Any]:
    """neuralforecast's ``TSMixer`` declared univariate (one channel; each series' windows are samples)."""
    from neuralforecast.models import TSMixer

    class UnivariateTSMixer(TSMixer):
        MULTIVARIATE = False

    return UnivariateTSMixer


@functools.cache
def _univariate_tsmixerx() -> type[Any]:
    """neuralforecast's ``TSMixerx`` declared univariate, its forward pass taking the univariate window shapes.

    neuralforecast hands a univariate model ``insample_y`` ``(B, L, 1)``, ``hist_exog``
    ``(B, L, X)``, ``futr_exog`` ``(B, L + h, F)`` and ``stat_exog`` ``(B, S)`` (one row per
    window); the multivariate TSMixerx expects ``(B, X, L, N)``, ``(B, F, L + h, N)`` and
    ``(N, S)`` shared by the batch. The layers are neuralforecast's; only the reshaping differs.
    """
    import torch
    from neuralforecast.models import TSMixerx

    class UnivariateTSMixerx(TSMixerx):
        MULTIVARIATE = False

        def forward(self, windows_batch: dict[str, Any]) -> Any:
            x = windows_batch["insample_y"]  # (B, L, 1)
            hist, futr, stat = windows_batch["hist_exog"], windows_batch["futr_exog"], windows_batch["stat_exog"]
            batch_size, input_size = x.shape[0], x.shape[1]
            if self.revin:
                x = self.norm(x, mode="norm")
            x = x.unsqueeze(1)  # (B, 1, L, 1)
            if self.hist_exog_size > 0:
                x = torch.cat((x, hist.permute(0, 2, 1).unsqueeze(-1)), dim=1)  # (B, 1 + X, L, 1)
            if self.futr_exog_size > 0:
                futr = futr.permute(0, 2, 1).unsqueeze(-1)  # (B, F, L + h, 1)
                x = torch.cat((x, futr[:, :, :input_size]), dim=1)
            x = self.temporal_projection(x.permute(0, 1, 3, 2))  # (B, C, 1, h)
            x = self.feature_mixer_hist(x.permute(0, 3, 1, 2).reshape(batch_size, self.h, -1))  # (B, h, ff_dim)
            if self.futr_exog_size > 0:
                x_futr = futr[:, :, input_size:].permute(0, 2, 1, 3).reshape(batch_size, self.h, -1)
                x = torch.cat((x, self.feature_mixer_futr(x_futr)), dim=2)
            stat_h = None
            if self.stat_exog_size > 0:
                stat_h = stat.unsqueeze(1).expand(-1, self.h, -1)  # (B, h, S): each window its own series' values
                x = torch.cat((x, self.feature_mixer_stat(stat_h)), dim=2)
            x = self.first_mixing(x)
            x = self.mixing_block((x, stat_h))[0] if stat_h is not None else self.mixing_block(x)
            forecast = self.out(x)  # (B, h, n_outputs)
            if self.revin:
                forecast = self.norm(forecast.reshape(batch_size, self.h * self.loss.outputsize_multiplier, -1),
                                     "denorm").reshape(batch_size, self.h, -1)
            return forecast

    return UnivariateTSMixerx
