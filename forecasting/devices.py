"""Where XGBoost trains: a GPU when one is present, the CPU otherwise (one probe per process)."""

from __future__ import annotations

import json
import warnings

import numpy as np

from forecasting.errors import InvalidParameterError

__all__ = ["resolve_device"]

_CUDA_PROBE: dict[str, bool] = {}


def resolve_device(device: str = "auto") -> str:
    """The XGBoost device to train on.

    Parameters
    ----------
    device : str, default "auto"
        ``"auto"``: ``"cuda"`` when the installed xgboost is built with CUDA and a GPU is
        visible (probed once per process by training one round on a 1-row matrix and reading
        the device the booster actually used; xgboost silently falls back to the CPU when it
        finds no GPU), else ``"cpu"``. ``"cpu"``, ``"cuda"`` or ``"cuda:<n>"`` are returned as given.

    Raises
    ------
    InvalidParameterError
        For any other value.

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    >>> resolve_device("gpu")
    Traceback (most recent call last):
    ...
    forecasting.errors.InvalidParameterError: device must be 'auto', 'cpu', 'cuda' or 'cuda:<n>', got 'gpu'
    """
    if device in ("cpu", "cuda") or (isinstance(device, str) and device.startswith("cuda:") and device[5:].isdigit()):
        return device
    if device != "auto":
        msg = f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<n>', got {device!r}"
        raise InvalidParameterError(msg, field="device")
    if "cuda" not in _CUDA_PROBE:
        _CUDA_PROBE["cuda"] = _probe_cuda()
    return "cuda" if _CUDA_PROBE["cuda"] else "cpu"


def _probe_cuda() -> bool:
    import xgboost as xgb

    if not xgb.build_info().get("USE_CUDA", False):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dm = xgb.DMatrix(np.zeros((1, 1)), label=np.zeros(1))
            booster = xgb.train({"device": "cuda", "verbosity": 0}, dm, num_boost_round=1)
        config = json.loads(booster.save_config())
        return str(config["learner"]["generic_param"]["device"]).startswith("cuda")
    except (xgb.core.XGBoostError, KeyError, ValueError):
        return False


