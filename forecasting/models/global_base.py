"""The base of the global models (one model over every series): trees and networks.

What every global adapter shares, so that each family implements only its training,
its model call and its folder format:

* the declared capabilities of a trained global model (intervals, exogenous and static
  inputs, save/load, ONNX export, explanations, time limits);
* the default block horizon (two seasons, at least 14 steps without a season);
* the prediction preamble (fitted state, ``h``, ``level``) and the checks of a new
  ``history`` against the training data (frequency, ``ds`` kind and timezone, exogenous
  columns, each series' length);
* exogenous-value checks and the calendar inputs of a frequency;
* the forecasts of the series handed to the ``fallback`` model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from forecasting.data import FLOAT32_MAX, Panel, first_pairs, refuse_beyond, validate_h, validate_levels
from forecasting.errors import InsufficientHistoryError, InvalidInputError, InvalidParameterError
from forecasting.features import _CALENDAR_BY_UNIT, FeaturePipeline
from forecasting.models.base import P, BaseForecaster, Capabilities, as_panel

__all__ = ["GLOBAL_CAPABILITIES", "GlobalForecaster", "calendar_inputs", "check_exog_values"]

#: What a trained global model does (a family narrows it where it must).
GLOBAL_CAPABILITIES = Capabilities(
    supports_intervals=True, supports_exog=True, is_global=True, can_explain=True, has_global_importance=False,
    can_save=True, can_export=True, reports_progress=False, honours_time_limit=True)


def check_exog_values(frame: pl.DataFrame, columns: list[str], *, where: str) -> None:
    """Exogenous columns must be numeric (or boolean) and finite; nulls/NaN are missing values.

    Raises
    ------
    InvalidInputError
        Naming the column, the rule and the first offending ``(unique_id, ds)`` pairs.
    """
    for col in columns:
        dtype = frame.schema[col]
        if not (dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null):
            msg = (
                f"{where}: exogenous column '{col}' must be numeric, got {dtype}; encode "
                f"categories as numbers"
            )
            raise InvalidInputError(msg, field=f"{where}.{col}")
        if dtype.is_float():
            bad = frame.filter(pl.col(col).is_infinite())
            if bad.height:
                pairs = first_pairs(bad)
                msg = (
                    f"{where}: exogenous column '{col}' has {bad.height} infinite values "
                    f"(unique_id, ds): {pairs}; use null for a missing value"
                )
                raise InvalidInputError(msg,
                                        field=f"{where}.{col}")
            # the engines (XGBoost, LightGBM, ONNX, torch) read inputs as float32: a larger magnitude becomes
            # infinite there (XGBoost: "Input data contains inf"; the forecast would be silently clipped)
            refuse_beyond(frame, [col], FLOAT32_MAX, where=where, kind="exogenous column",
                          rule=f"float32's range (|x| > {FLOAT32_MAX:.7g}, the models' input type)")


def calendar_inputs(panel: Panel, calendar: Sequence[str] | None) -> list[str]:
    """The calendar inputs of a model: ``calendar`` as given, else the frequency's default (hourly:
    ``hour, dayofweek``); none for integer ``ds``.

    Raises
    ------
    InvalidParameterError
        Calendar inputs asked for on integer ``ds`` (there is no calendar).
    """
    if calendar is not None:
        if calendar and panel.ds_kind == "int":
            msg = (
                f"calendar inputs {list(calendar)} need datetime ds; this data has integer "
                f"steps"
            )
            raise InvalidParameterError(msg, field="model.params.calendar")
        return list(calendar)
    if panel.ds_kind == "int" or not isinstance(panel.freq, str):
        return []
    unit = re.match(r"^\d+(\w+)$", panel.freq)
    return list(_CALENDAR_BY_UNIT.get(unit.group(1), [])) if unit else []


class GlobalForecaster(BaseForecaster[P]):
    """Base of the global adapters (:class:`~forecasting.models.trees.TreeForecaster`,
    :class:`~forecasting.models.neural.NeuralForecaster`).

    Subclasses set ``fitted_attribute`` (the trained state), ``pipeline_`` and
    ``panel_`` in ``fit``, and implement :attr:`season_length` and :attr:`horizon_param`
    from their parameter struct.
    """

    capabilities: ClassVar[Capabilities] = GLOBAL_CAPABILITIES
    pipeline_: FeaturePipeline
    panel_: Panel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: what the model derived from the data and how its bands are made (for the user; the last fit's)
        self.notes_: list[str] = []

    def _note(self, text: str) -> None:
        """Add ``text`` to :attr:`notes_` once."""
        if text not in self.notes_:
            self.notes_.append(text)

    @property
    def season_length(self) -> int:
        """Steps per season (1 when the parameters leave it unset)."""
        raise NotImplementedError

    @property
    def horizon_param(self) -> int | None:
        """The ``horizon`` parameter as given (None: the default)."""
        raise NotImplementedError

    @property
    def trained_horizon(self) -> int:
        """Steps the model is built for at once (direct models, calibrated intervals, network output):
        ``horizon``, default two seasons (M4 Hourly: 48), at least 14 for non-seasonal data."""
        return self.horizon_param or max(2 * self.season_length, 14 if self.season_length == 1 else 0)

    # ------------------------------------------------------------------ preamble
    def _prepare(self, h: int, level: Sequence[float], *, before: str = "predict(h)") -> tuple[int, tuple[Any, ...]]:
        """Fitted state, ``h`` and ``level`` checked: ``(h, levels)``.

        Raises
        ------
        NotFittedError, InvalidParameterError
        """
        self.check_is_fitted(before)
        return validate_h(h), validate_levels(level)

    def _history(self, history: Any) -> Panel:
        """The panel to forecast from: the training series, or ``history`` checked against the training data.

        Raises
        ------
        InvalidInputError
            A different frequency, ``ds`` kind or timezone, missing or non-numeric exogenous
            columns (each family adds its own checks in :meth:`_check_history`).
        """
        if history is None:
            return self.panel_
        pipe = self.pipeline_
        panel = as_panel(history, freq=pipe.freq)
        if panel.freq != pipe.freq:
            msg = f"history freq '{panel.freq}' differs from the training freq '{pipe.freq}'"
            raise InvalidInputError(msg,
                                    field="history")
        if (panel.ds_kind == "int") != (pipe.ds_kind == "int") or panel.tz != pipe.tz:
            msg = (
                f"history ds must be like the training data's ({pipe.ds_kind}, timezone "
                f"{pipe.tz or 'none'}); got {panel.ds_kind}, timezone {panel.tz or 'none'}"
            )
            raise InvalidInputError(msg,
                                    field="history")
        need = self._history_exog()
        missing = [c for c in need if c not in panel.frame.columns]
        if missing:
            msg = f"history lacks the exogenous columns {missing} the model was trained with"
            raise InvalidInputError(msg,
                                    field="history")
        self._check_history(panel)
        pipe.check_panel(panel)
        return panel

    def cold_start_note(self, panel: Panel, exclude: set[str] | frozenset[str] = frozenset()) -> str | None:
        """A note naming the series of ``panel`` this model was not trained on (a cold start), None when none.

        A global model forecasts such a series from its own history with what it learnt from the training
        series (per-series scales are the new history's): nothing of that series itself was learnt, and its
        intervals were calibrated on other series. Up to five ids are named; the count is exact.

        Parameters
        ----------
        panel : Panel
            The series to forecast from (a ``history`` given to :meth:`predict`).
        exclude : set of str
            Series this model does not forecast (handed to a fallback model, which reports them).
        """
        seen = self.panel_.lengths
        unseen = [u for u in panel.ids if u not in seen and u not in exclude]
        if not unseen:
            return None
        shown = ", ".join(f"'{u}'" for u in unseen[:5]) + (f" and {len(unseen) - 5} more" if len(unseen) > 5 else "")
        return (f"cold start: model '{self.name}' was not trained on {len(unseen)} series ({shown}); they are "
                f"forecast from their own history with what it learnt from its {len(seen)} training series (its "
                f"intervals were calibrated on those)")

    def _history_exog(self) -> list[str]:
        """Exogenous columns a history must carry."""
        return [*self.pipeline_.spec.future_exog, *self.pipeline_.spec.hist_exog]

    def _check_history(self, panel: Panel) -> None:
        """Family-specific checks of a new history's values (exogenous columns by default)."""
        check_exog_values(panel.frame, list(panel.exog), where="history")

    def _refuse_short(self, panel: Panel, minimum: int, where: str, what: str = "") -> None:
        """Refuse series of ``panel`` shorter than ``minimum`` (a forecast reads that many observations).

        Raises
        ------
        InsufficientHistoryError
            ``N series in <where> too short for model 'name' (needs at least M observations<what>)``,
            naming up to five series; the details list every one.
        """
        short = {u: n for u, n in panel.lengths.items() if n < minimum}
        if short:
            raise InsufficientHistoryError(
                f"{len(short)} series in {where} too short for model '{self.name}' (needs at least {minimum} "
                f"observations{what}): "
                + "; ".join(f"series '{u}': {n} observations" for u, n in list(short.items())[:5]),
                field=where, details={"minimum": minimum,
                                      "series": {u: {"length": n, "minimum": minimum} for u, n in short.items()}})

    # ------------------------------------------------------------------ model folder
    def _panel_meta(self) -> dict[str, Any]:
        """What ``model.json`` records of the training panel (its rows are kept in ``history.parquet``)."""
        p = self.panel_
        return {"freq": p.freq, "tz": p.tz, "ds_kind": p.ds_kind, "exog": list(p.exog), "lengths": p.lengths,
                "month_end": p.month_end}

    @staticmethod
    def _stored_panel(folder: Path, p: dict[str, Any]) -> Panel:
        """The training panel kept in a model folder: ``history.parquet`` and the ``panel`` entry of ``model.json``."""
        return Panel(frame=pl.read_parquet(folder / "history.parquet"), freq=p["freq"],
                     lengths={k: int(v) for k, v in p["lengths"].items()}, tz=p["tz"], ds_kind=p["ds_kind"],
                     exog=tuple(p["exog"]), month_end=bool(p.get("month_end")))

    def _with_fallback_forecasts(self, out: pl.DataFrame, h: int, levels: tuple[Any, ...],
                                 history: Any) -> pl.DataFrame:
        """``out`` plus the fallback model's forecasts of the series it took at fit time (renamed to the alias)."""
        if history is not None or not self.fallbacks_ or self.fallback is None:
            return out
        fb = self.fallback.predict(h, level=levels)
        fb = fb.rename({c: c.replace(self.fallback.alias, self.alias, 1) for c in fb.columns})
        return pl.concat([out, fb.select(out.columns)], how="vertical_relaxed").sort("unique_id", "ds")
