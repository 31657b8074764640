"""The typed results of the use cases: one shape per use case, the same over every door.

Every forecast -- inline spec, saved folder, ONNX export, registered version; library, CLI
or HTTP -- returns a :class:`ForecastResult` with the same fields (forecasts, params, notes,
fallbacks, filled rows); :meth:`ForecastResult.to_dict` is the JSON form the API answers
and the CLI prints from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec
import polars as pl

from forecasting.data import Panel, ValidationReport, at_caller_offset
from forecasting.explanation import Explanation
from forecasting.models.base import Fallback
from forecasting.models.registry import ModelSpec

__all__ = ["CrossValidationResult", "ExplainResult", "ForecastResult", "Registered", "TrainResult"]


@dataclass(frozen=True)
class Registered:
    """Which registered version answered: ``ref`` is ``name@version``."""

    name: str
    version: int

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class ForecastResult:
    """Forecasts and everything that was decided on the caller's behalf.

    Attributes
    ----------
    forecasts : pl.DataFrame
        ``unique_id, ds, <alias>[, <alias>-lo-<L>, <alias>-hi-<L>]``: ``h`` rows per series, ``ds`` in
        the caller's timezone.
    spec : ModelSpec
        The effective spec (derived parameters such as ``season_length`` filled in).
    alias : str
        The forecast column name.
    panel : Panel
        The validated input the forecasts start from.
    h : int
        Steps forecast per series.
    level : tuple of numbers
        Interval levels, percent.
    fallbacks : list of Fallback
        Series forecast by the fallback model, and why.
    notes : list of str
        Everything else the caller should know (derived parameters, conversions, the runtime).
    registered : Registered, optional
        The registered version that answered (``None`` for an inline spec or a saved folder).
    runtime : {"native", "onnxruntime"}
        What computed the forecasts.
    selection : dict, optional
        ``auto`` only: the search report (candidates tried, their validation scores and times, the
        chosen combination, why candidates were dropped); see :class:`forecasting.models.auto.AutoForecaster`.
    """

    forecasts: pl.DataFrame
    spec: ModelSpec
    alias: str
    panel: Panel
    h: int
    level: tuple[float | int, ...]
    fallbacks: list[Fallback] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    registered: Registered | None = None
    runtime: str = "native"
    selection: dict[str, Any] | None = None

    @property
    def report(self) -> ValidationReport:
        """The validation report (filled rows, conversions)."""
        return self.panel.report

    @property
    def filled(self) -> pl.DataFrame:
        """Rows whose ``y`` was filled: ``unique_id, ds, reason, policy``."""
        return self.panel.report.filled

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the fields of every forecast answer (HTTP and CLI)."""
        out: dict[str, Any] = {
            "model": self.spec.name, "alias": self.alias, "params": dict(self.spec.params),
            "freq": self.panel.freq, "h": self.h, "level": list(self.level),
            "forecasts": at_caller_offset(self.forecasts.to_dicts() if isinstance(self.forecasts, pl.DataFrame)
                                          else self.forecasts.to_dict("records"), self.panel),  # pandas: fc.forecast
            "fallbacks": [f.to_dict() for f in self.fallbacks],
            "filled": self.report.to_dict()["filled"], "notes": [*self.notes, *filter(None, [self.report.filled_note])],
            "runtime": self.runtime,
            "ref": None, "name": None, "version": None, "selection": self.selection}
        if self.registered is not None:
            out.update(ref=self.registered.ref, name=self.registered.name, version=self.registered.version)
        return out


@dataclass(frozen=True)
class CrossValidationResult:
    """Rolling-origin backtest scores.

    Attributes
    ----------
    metrics : pl.DataFrame
        One row per (model, cutoff): ``model, cutoff, smape, mase, mae, rmse`` (+ ``coverage_<L>``,
        ``msis_<L>`` per level).
    panel : Panel
        The validated input.
    notes : list of str
    """

    metrics: pl.DataFrame
    panel: Panel
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ExplainResult:
    """An explanation of forecast rows (or of tabular rows).

    Attributes
    ----------
    explanation : Explanation
        One row per explained (series, step) or table row.
    model : str
        Model name.
    registered : Registered, optional
    notes : list of str
    """

    explanation: Explanation
    model: str
    registered: Registered | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrainResult:
    """What training produced, ready to be registered or kept in a folder.

    Attributes
    ----------
    kind : {"forecast", "tabular"}
    spec : dict
        The effective spec (JSON form).
    artifact : str, optional
        Folder of the saved model (``None`` for statistical models: registered as a spec only).
    fingerprint : dict
        Data fingerprint (rows, series, columns, hash).
    metrics : dict
        Hold-out (forecast) or k-fold (tabular) validation metrics.
    exog : list of str
        Exogenous / feature columns the model needs.
    max_h : int, optional
        The horizon validated (forecast models).
    notes : list of str
    """

    kind: str
    spec: dict[str, Any]
    artifact: str | None
    fingerprint: dict[str, Any]
    metrics: dict[str, Any]
    exog: list[str]
    max_h: int | None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what a job worker hands back)."""
        return {"kind": self.kind, "spec": self.spec, "artifact": self.artifact, "fingerprint": self.fingerprint,
                "metrics": self.metrics, "exog": self.exog, "max_h": self.max_h, "notes": self.notes}


def spec_json(spec: ModelSpec) -> dict[str, Any]:
    """A spec as plain JSON types."""
    out: dict[str, Any] = msgspec.to_builtins(spec)
    return out
