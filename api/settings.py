"""Service settings, read once from the environment in the app factory and passed in."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from forecasting.data import MAX_HORIZON

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    """Embedded defaults: nothing else to start; state lives under ``./var/``.

    Attributes
    ----------
    state_dir : Path
        Where the service keeps its state (``FORECASTING_STATE_DIR``, default ``./var``).
    max_body_bytes : int
        Largest request body; larger bodies get 413 naming the limit
        (``FORECASTING_MAX_BODY_BYTES``, default 20 MiB).
    max_h : int
        Largest horizon per request (``FORECASTING_MAX_H``, default 1,000).
    max_series : int
        Most series per request (``FORECASTING_MAX_SERIES``, default 1,000).
    max_rows : int
        Most input rows per request (``FORECASTING_MAX_ROWS``, default 1,000,000).
    max_seconds : int
        Wall time a forecast request may spend fitting (``FORECASTING_MAX_SECONDS``,
        default 60); past it the answer is 422 naming the limit.
    """

    state_dir: Path = Path("var")
    max_body_bytes: int = 20 * 1024 * 1024
    max_h: int = 1_000
    max_series: int = 1_000
    max_rows: int = 1_000_000
    max_seconds: int = 60

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from ``FORECASTING_*`` environment variables (defaults above)."""
        env = dict(os.environ if env is None else env)

        def num(key: str, default: int) -> int:
            raw = env.get(key)
            if raw is None or raw == "":
                return default
            value = int(raw)
            if value < 1:
                raise ValueError(f"{key} must be a positive integer, got {raw}")
            return value

        return cls(
            state_dir=Path(env.get("FORECASTING_STATE_DIR", "var")),
            max_body_bytes=num("FORECASTING_MAX_BODY_BYTES", cls.max_body_bytes),
            max_h=min(num("FORECASTING_MAX_H", cls.max_h), MAX_HORIZON),
            max_series=num("FORECASTING_MAX_SERIES", cls.max_series),
            max_rows=num("FORECASTING_MAX_ROWS", cls.max_rows),
            max_seconds=num("FORECASTING_MAX_SECONDS", cls.max_seconds),
        )
