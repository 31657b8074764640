"""Forecast combination: the median or a validation-weighted mean of member models.

Combining forecasts is one of the most reliable ways to improve accuracy (Bates &
Granger 1969; Makridakis, Spiliotis & Assimakopoulos 2020, the M4 competition, where 12
of the 17 most accurate methods were combinations). Two rules:

``median``
    Per step, the median of the members' point forecasts (Stock & Watson 2004; robust
    to one member going astray). No validation fit.
``weighted``
    Per step, ``sum_i w_i * f_i`` with ``w_i`` proportional to ``1 / e_i``, where
    ``e_i`` is member ``i``'s sMAPE (or MASE) on a held-out window: each member is
    fitted on every series minus its last ``validation_h`` observations, forecasts
    those ``validation_h`` steps, and is scored (mean over the series long enough for
    every member), then refitted on the full history. One weight per member, shared by
    all series (per-series weights from one window are too noisy). Costs two fits per
    member.

Intervals are a heuristic: the median (``median``) or the same weighted mean
(``weighted``, weights renormalised) of the members' bounds, level by level, over the
members that can give intervals for these series (xgboost cannot when no series is long
enough to calibrate its conformal intervals; ``interval_members_`` lists those used),
then widened where needed so that lo <= point <= hi and nested (lo-95 <= lo-80 <= point <=
hi-80 <= hi-95); they carry no coverage guarantee; check coverage with ``forecasting bench
--level``. The rules are :mod:`forecasting.models.combination`'s, shared with ``auto``.

Members fit the data. Without ``members`` they are chosen from the data (:func:`default_members`):
intraday data long enough for the seasonal tree features (M4 Hourly) gets the two different global
XGBoost models and MSTL (OWA 0.423 there); other data gets XGBoost, the dynamic optimised Theta and
AutoETS (the recent-lag XGBoost would repeat the plain one, and MSTL needs a season and two cycles
of it). Whatever the list, a member that cannot apply is left out and ``notes_`` says why: MSTL
without a season, a member identical to an earlier one on this data (the recent-lag XGBoost when
the features are recent lags already), and, with chosen members, one that needs longer series
than the panel has; a member that fails to fit is dropped too while another remains. Fewer than
two left are topped up from the chosen members.

Short series follow the members: without a ``fallback`` a series shorter than the
longest member minimum is an ``InsufficientHistoryError``; with one, every member hands
its too-short (or failed) series to that fallback, and the series are listed in
``fallbacks_``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar, Self, cast

import msgspec
import numpy as np
import polars as pl

from forecasting.data import Panel, check_min_length
from forecasting.errors import CapabilityError, ForecastingError, InvalidParameterError, TimeLimitError
from forecasting.models.base import BaseForecaster, Capabilities, Fallback, Forecaster, as_panel
from forecasting.models.combination import finish_bands, median, member_forecasts, member_values, weighted_mean
from forecasting.models.local import LOCAL_CAPABILITIES
from forecasting.models.registry import DEFAULT_ENSEMBLE_MEMBERS, EnsembleParams, ModelSpec

__all__ = ["DEFAULT_MEMBERS", "EnsembleForecaster", "default_members"]

DEFAULT_MEMBERS = DEFAULT_ENSEMBLE_MEMBERS
#: the members for data without intraday seasonal tree features, in order of preference
GENERAL_MEMBERS: tuple[str | dict[str, Any], ...] = ("xgboost", "dynamic_optimized_theta", "auto_ets")
#: the fewest observations a chosen-member ensemble asks of every series (AutoETS's 7; xgboost's smallest
#: features need 4 and the dynamic optimised Theta 4)
CHOSEN_MIN_LENGTH = 7


def default_members(seasons: Sequence[int], panel: Panel | None = None) -> list[str | dict[str, Any]]:
    """The candidate members for data with ``seasons``, in order of preference (the first usable 3 are taken).

    Intraday seasons (the first >= 24) whose panel is long enough for the seasonal tree features
    (:func:`forecasting.features.default_features`): :data:`DEFAULT_ENSEMBLE_MEMBERS` (two
    different global XGBoost models and MSTL; M4 Hourly OWA 0.423 against 0.441 for the best
    member alone), then the general ones; otherwise :data:`GENERAL_MEMBERS` then MSTL.
    """
    from forecasting.features import seasonal_set_applies

    m = seasons[0] if seasons else 1
    if seasonal_set_applies(m, panel.lengths if panel is not None else None):
        return [*DEFAULT_ENSEMBLE_MEMBERS, *GENERAL_MEMBERS[1:]]
    return [*GENERAL_MEMBERS, "mstl"]


def _drop_last(panel: Panel, k: int, keep: Sequence[str]) -> Panel:
    """The panel restricted to ``keep`` without each series' last ``k`` observations."""
    sub = panel.subset(keep)
    idx = pl.int_range(pl.len()).over("unique_id")
    frame = sub.frame.filter(idx < pl.len().over("unique_id").cast(pl.Int64) - k)
    return Panel(frame=frame, freq=sub.freq, lengths={u: n - k for u, n in sub.lengths.items()}, tz=sub.tz,
                 ds_kind=sub.ds_kind, exog=sub.exog, month_end=sub.month_end, report=sub.report)


def _last(panel: Panel, k: int, keep: Sequence[str]) -> pl.DataFrame:
    sub = panel.frame.filter(pl.col("unique_id").is_in(list(keep)))
    idx = pl.int_range(pl.len()).over("unique_id")
    return sub.filter(idx >= pl.len().over("unique_id").cast(pl.Int64) - k).select("unique_id", "ds", "y")


def validation_error(actual: np.ndarray, forecast: np.ndarray, ids: np.ndarray, *, metric: str = "smape",
                     scale: dict[str, float] | None = None) -> float:
    """Mean over series of the per-series sMAPE (0-200) or MASE of aligned arrays of shape (n,)."""
    frame = pl.DataFrame({"unique_id": ids, "y": actual, "f": forecast})
    err = (pl.col("y") - pl.col("f")).abs()
    if metric == "smape":
        den = pl.col("y").abs() + pl.col("f").abs()
        per = frame.group_by("unique_id").agg(pl.when(den > 0).then(200.0 * err / den).otherwise(0.0).mean().alias("e"))
    else:
        assert scale is not None
        per = frame.group_by("unique_id").agg(err.mean().alias("e"))
        per = per.with_columns(pl.col("e") / pl.col("unique_id").replace_strict(scale, return_dtype=pl.Float64))
    return float(cast(float, per["e"].mean()))


class EnsembleForecaster(BaseForecaster[EnsembleParams]):
    """Median or validation-weighted combination of registry models.

    Parameters
    ----------
    members : list of specs, optional
        Registry names or spec dicts (at least 2). A member without ``season_length``
        gets the ensemble's (the first period for single-season models, all of them for
        ``mstl``). Default: chosen from the data (see the module docstring).
    method : {"median", "weighted"}
    validation_h : int, optional
        Held-out steps per series for the weights (``weighted`` only); default two
        seasons (48 for hourly data, the M4 Hourly horizon), at least 6.
    validation_metric : {"smape", "mase"}
    season_length : int or list of int
        Steps per season, passed down to members.
    """

    name: ClassVar[str] = "ensemble"
    default_alias: ClassVar[str] = "Ensemble"
    #: refit from each request's history, as its statistical members are
    capabilities: ClassVar[Capabilities] = replace(LOCAL_CAPABILITIES, honours_time_limit=False, why_not={
        **LOCAL_CAPABILITIES.why_not,
        "explain": "an ensemble combines its members' forecasts; explain a member such as 'xgboost' instead",
        "save": "an ensemble is refitted from history each time and is not saved; use `forecasting forecast`",
        "export": "an ensemble is refit from each request's history (nothing is trained ahead to export); export a "
                  "member such as xgboost",
        "time_limit": "its members are fitted without a deadline"})
    fitted_attribute: ClassVar[str] = "members_"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: members left out or added, and why (the last fit's)
        self.notes_: list[str] = []

    @property
    def seasons(self) -> list[int]:
        """The season length(s) passed down to members, as a list ([1] when unset)."""
        m = self.params.season_length or 1
        return list(m) if isinstance(m, list) else [m]

    # ------------------------------------------------------------------ members
    def _member_specs(self, members: Sequence[str | dict[str, Any]] | None = None) -> list[ModelSpec]:
        from forecasting.models.registry import parse_spec, resolve_spec

        chosen = members is not None or self.params.members is None
        members = members if members is not None else (self.params.members or default_members(self.seasons))
        if len(members) < 2 and not chosen:
            msg = f"an ensemble needs at least 2 members, got {len(members)}"
            raise InvalidParameterError(msg,
                                        field="model.params.members")
        specs = []
        for m in members:
            spec = parse_spec(m)
            if spec.name == "ensemble":
                msg = "an ensemble member cannot itself be an ensemble"
                raise InvalidParameterError(msg,
                                            field="model.params.members")
            spec, _ = resolve_spec(spec, freq=None, season_length=self.seasons)
            fallback = spec.fallback
            if fallback is None and self.fallback is not None and self.fallback.name != spec.name:
                fallback = self.fallback.name
            specs.append(ModelSpec(name=spec.name, params=spec.params, fallback=fallback))
        if not chosen:
            _refuse_repeated(members, specs)
        return specs

    def _build(self, specs: Sequence[ModelSpec] | None = None) -> list[Forecaster]:
        from forecasting.models.registry import make_model

        return [make_model(s, n_jobs=self.n_jobs) for s in (self._member_specs() if specs is None else specs)]

    @property
    def min_train_length(self) -> int:
        """The longest minimum among the members (MSTL without a season left out); with members chosen from
        the data, :data:`CHOSEN_MIN_LENGTH` (the chosen ones need no more)."""
        if self.params.members is None:
            return CHOSEN_MIN_LENGTH
        return max(m.min_train_length for s, m in zip(self._member_specs(), self._build(), strict=True)
                   if not self._seasonless_mstl(s))

    def _seasonless_mstl(self, spec: ModelSpec) -> bool:
        season = spec.params.get("season_length") or 1
        return spec.name == "mstl" and max(season if isinstance(season, list) else [season]) <= 1

    def _identity(self, spec: ModelSpec, model: Forecaster, panel: Panel) -> str:
        """What makes a member's forecasts: its name and parameters, for a global tree model its parameters
        but ``recent_lags`` and ``features`` plus the feature spec it would use on ``panel``."""
        from forecasting.models.trees import TreeForecaster

        params = dict(spec.params)
        params.pop("alias", None)
        if isinstance(model, TreeForecaster):
            params.pop("recent_lags", None)
            params["features"] = msgspec.to_builtins(model.feature_spec_for(panel))
        return json.dumps({"name": spec.name, "params": params, "fallback": spec.fallback}, sort_keys=True, default=str)

    def _choose(self, panel: Panel) -> list[ModelSpec]:
        """The member specs for ``panel``: the listed (or chosen) members that can apply, each note in ``notes_``."""
        chosen = self.params.members is None
        candidates = default_members(self.seasons, panel) if chosen else list(self.params.members or [])
        specs = self._member_specs(candidates)
        if not chosen:  # the caller's own list: a repeated member is a mistake, not one to drop silently
            _refuse_repeated(candidates, specs)
        models = self._build(specs)
        shortest = min(panel.lengths.values()) if panel.lengths else 0
        kept: list[ModelSpec] = []
        seen: dict[str, str] = {}
        for spec, model in zip(specs, models, strict=True):
            label = _label(spec)
            if len(kept) == 3 and chosen:
                break
            if self._seasonless_mstl(spec):
                self.notes_.append(f"member '{label}' left out: MSTL needs a season (season_length > 1; this data "
                                   f"has {self.seasons})")
                continue
            if chosen and model.min_train_length > shortest and spec.fallback is None and self.fallback is None:
                self.notes_.append(f"member '{label}' left out: it needs {model.min_train_length} observations per "
                                   f"series and the shortest has {shortest}")
                continue
            key = self._identity(spec, model, panel)
            if key in seen:
                self.notes_.append(f"member '{label}' left out: on this data it is identical to member '{seen[key]}'")
                continue
            seen[key] = label
            kept.append(spec)
        if len(kept) < 2:
            spare = [s for s in self._member_specs(default_members(self.seasons, panel)) if not self._seasonless_mstl(s)]
            for spec, model in zip(spare, self._build(spare), strict=True):
                key = self._identity(spec, model, panel)
                names = {k.name for k in kept}  # a different model, not another setting of a kept one
                if len(kept) < 2 and key not in seen and spec.name not in names and model.min_train_length <= shortest:
                    seen[key] = _label(spec)
                    kept.append(spec)
                    self.notes_.append(f"member '{_label(spec)}' added: fewer than two members could apply")
        return kept

    @property
    def resolved_validation_h(self) -> int:
        """Held-out steps used for the weights."""
        if self.params.validation_h is not None:
            return self.params.validation_h
        return max(2 * self.seasons[0], 6)

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters (JSON-serialisable)."""
        out = super().get_params()
        if self.params.members is not None:
            out["members"] = [m if isinstance(m, str) else json.loads(json.dumps(m, default=str))
                              for m in self.params.members]
        return out

    # ------------------------------------------------------------------ fit
    def fit(self, panel: Panel | Any, *, static: pl.DataFrame | None = None) -> Self:
        """Fit every member (and, for ``weighted``, score each on a held-out window first).

        Raises
        ------
        InsufficientHistoryError
            Series shorter than the longest member minimum (without a ``fallback``).
        CapabilityError
            Exogenous columns or static features (the combination uses none).
        ModelFitError
            A member failed (without a ``fallback``).
        """
        panel = as_panel(panel)
        if panel.exog:
            msg = (
                f"model '{self.name}' does not use exogenous columns; drop {', '.join(panel.exog)} or choose a model "
                f"that supports them"
            )
            raise CapabilityError(
                msg, field="data")
        if static is not None:
            msg = f"model '{self.name}' does not use static features"
            raise CapabilityError(msg, field="static")
        if self.params.method not in ("median", "weighted"):
            msg = f"method must be 'median' or 'weighted', got {self.params.method!r}"
            raise InvalidParameterError(msg,
                                        field="model.params.method")
        self.notes_ = []
        check_min_length(panel, self.min_train_length, model=self.name,
                         fallback=self.fallback.name if self.fallback else None)
        specs = self._choose(panel)
        members = self._build(specs)
        minimum = max(m.min_train_length for m in members)
        check_min_length(panel, minimum, model=self.name, fallback=self.fallback.name if self.fallback else None)
        self.validation_errors_: list[float] | None = None
        if self.params.method == "weighted":
            self.validation_errors_ = self._validation_errors(panel, minimum, specs)
        fitted, errors = [], []
        for spec, member in zip(specs, members, strict=True):
            try:
                fitted.append((spec, member.fit(panel)))
            except TimeLimitError:
                raise
            except ForecastingError as exc:  # dropped while another member remains (see the end)
                errors.append(exc)
                self.notes_.append(f"member '{_label(spec)}' left out: it failed to fit: {exc.message}"[:400])
        if not fitted:
            raise errors[0]
        self.member_specs_ = [s for s, _ in fitted]
        self.members_ = [m for _, m in fitted]
        if self.validation_errors_ is not None:
            kept = [e for s, e in zip(specs, self.validation_errors_, strict=True) if s in self.member_specs_]
            self.validation_errors_ = kept
            inv = np.array([1.0 / max(e, 1e-12) if np.isfinite(e) else 0.0 for e in kept])
            self.weights_ = (inv / inv.sum()) if inv.sum() > 0 else np.full(len(kept), 1.0 / len(kept))
        else:
            self.weights_ = None
        seen: dict[str, Fallback] = {}
        for m in self.members_:
            for fb in m.fallbacks_:
                seen.setdefault(fb.unique_id, fb)
        self.fallbacks_ = list(seen.values())
        self.panel_ = panel
        return self

    def _validation_errors(self, panel: Panel, minimum: int, specs: Sequence[ModelSpec]) -> list[float]:
        k = self.resolved_validation_h
        keep = [u for u, n in panel.lengths.items() if n >= k + minimum]
        if not keep:  # no series long enough to score on: equal weights, said
            longest = max(panel.lengths.values())
            self.notes_.append(f"weighted: equal weights: no series has the {k + minimum} observations a validation "
                               f"window of validation_h={k} steps needs (the longest has {longest}); lower "
                               f"validation_h or use method 'median'")
            return [1.0] * len(specs)
        train = _drop_last(panel, k, keep)
        actual = _last(panel, k, keep).sort("unique_id", "ds")
        scale = None
        if self.params.validation_metric == "mase":
            m = self.seasons[0]
            lag = m if all(n > m for n in train.lengths.values()) else 1
            scale = {r[0]: r[1] for r in train.frame.group_by("unique_id").agg(
                (pl.col("y") - pl.col("y").shift(lag)).abs().mean().fill_null(0.0)).iter_rows()}
            scale = {u: (s if s and s > 0 else 1.0) for u, s in scale.items()}
        errors = []
        for spec, member in zip(specs, self._build(specs), strict=True):
            try:
                fc = member.fit(train).predict(k)
            except TimeLimitError:
                raise
            except ForecastingError as exc:  # no weight for a member that cannot forecast the held-out window
                self.notes_.append(f"member '{_label(spec)}' gets no weight: it failed on the validation window: "
                                   f"{exc.message}"[:400])
                errors.append(float("inf"))
                continue
            joined = actual.join(fc.rename({member.alias: "__f"}).select("unique_id", "__f",
                                                                          pl.col("ds").cast(actual.schema["ds"])),
                                 on=["unique_id", "ds"], how="left")
            errors.append(validation_error(joined["y"].to_numpy(), joined["__f"].to_numpy(),
                                           joined["unique_id"].to_numpy(), metric=self.params.validation_metric,
                                           scale=scale))
        return errors

    # ------------------------------------------------------------------ predict
    def predict(self, h: int, *, history: Panel | Any | None = None, X_future: pl.DataFrame | None = None,
                level: Sequence[float] = ()) -> pl.DataFrame:
        """Combine the members' forecasts by the method's rule (median or validation-weighted mean).

        Parameters
        ----------
        h : int
            Steps after each series' end (1 <= h <= ``MAX_HORIZON``).
        history : Panel or frame, optional
            Refits every member on it (as the local models do) and forecasts from its end.
        X_future : None
            Not used (``CapabilityError`` if given).
        level : sequence of numbers in (0, 100)
            Interval levels, percent: the same rule over the members that give bands here
            (``interval_members_``), then lo <= point <= hi, nested across levels.

        Returns
        -------
        pl.DataFrame
            The combination, sorted by series then time: ``unique_id, ds, <alias>`` and, per level,
            ``<alias>-lo-<L>, <alias>-hi-<L>``.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        InvalidParameterError
            ``h`` or ``level`` out of range.
        CapabilityError
            ``X_future`` given; ``level`` when no member gives intervals here.
        """
        if history is not None:
            return self._refit_predict(h, history, X_future=X_future, level=level)
        h, levels = self._prepare_local(h, level, X_future)
        keys, outs = member_forecasts(self.members_, h, levels, name=self.name)
        self.interval_members_ = [m.name for m, o in zip(self.members_, outs, strict=True)
                                  if not levels or f"{m.alias}-lo-{levels[0]}" in o.columns]
        point = self._combine(member_values(outs, self.members_))
        bands = {lev: (self._combine(member_values(outs, self.members_, f"-lo-{lev}")),
                       self._combine(member_values(outs, self.members_, f"-hi-{lev}"))) for lev in levels}
        columns = {self.alias: point, **finish_bands(point, bands, self.alias)}
        return keys.with_columns([pl.Series(k, v, dtype=pl.Float64) for k, v in columns.items()])

    def _combine(self, arrays: list[np.ndarray | None]) -> np.ndarray:
        """The method's rule over the members that have values: median, or the validation-weighted mean."""
        if self.weights_ is None:
            return median(arrays)
        return weighted_mean(arrays, self.weights_)


def _label(spec: ModelSpec) -> str:
    """A member's name for notes: its registry name, with its non-default parameters when it has any."""
    shown = {k: v for k, v in spec.params.items() if k != "season_length"}
    return spec.name + (f" {json.dumps(shown, sort_keys=True, default=str)}" if shown else "")


def _refuse_repeated(members: Sequence[str | dict[str, Any]], specs: Sequence[ModelSpec]) -> None:
    """Refuse members listed by the caller that are the same model: name, parameters (``alias`` aside; with the
    ensemble's season filled in) and fallback equal. They would give identical forecasts, one of which the fit
    would drop and top up with a default member the caller did not ask for.

    Raises
    ------
    InvalidParameterError
        Naming both positions (0-based) and the member, field ``model.params.members``.
    """
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        params = {k: v for k, v in spec.params.items() if k != "alias"}
        key = json.dumps({"name": spec.name, "params": params, "fallback": spec.fallback}, sort_keys=True, default=str)
        if key in seen:
            msg = (f"ensemble members {seen[key]} and {i} are the same model ({json.dumps(members[i], default=str)}): "
                   f"they would give identical forecasts; list each member once, or give it other parameters")
            raise InvalidParameterError(msg, field="model.params.members")
        seen[key] = i
