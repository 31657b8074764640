"""The model contract: the ``Forecaster`` protocol, declared capabilities and the common base.

Every model in the zoo, local or global, answers the same calls::

    fit(panel, *, static=None) -> self
    predict(h, *, history=None, X_future=None, level=()) -> pl.DataFrame
    explain(h, ...) -> Explanation          # or CapabilityError
    save(path) -> Path / cls.load(path)     # or CapabilityError

and *declares* what it can do in a class-level :class:`Capabilities` (as darts'
``ForecastingModel`` declares ``supports_probabilistic_prediction``,
``supports_past_covariates``...). Callers read ``model.capabilities`` or call
:func:`require`, which raises :class:`~forecasting.errors.CapabilityError` naming the
model, the capability and the reason; nothing is discovered with ``hasattr``.

Each model is built from its parameter struct (a ``msgspec.Struct`` declared once in
:mod:`forecasting.models.registry`, on :class:`BaseParams` here): the constructor converts keyword
parameters with :func:`convert_params`, the one validation of a model's hyperparameters, stores the
struct (scikit-learn's rule, ``BaseEstimator``) and ``get_params`` returns it as JSON-ready values.

The forecast frame is ``unique_id, ds, <alias>`` plus ``<alias>-lo-<L>`` and
``<alias>-hi-<L>`` for each requested level (Nixtla's naming, so utilsforecast and
existing user code read it directly), with ``ds`` in the caller's form (timezone,
date or integer steps).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Generic,
    Literal,
    Protocol,
    Self,
    TypeVar,
    cast,
    get_args,
    runtime_checkable,
)

import msgspec
import numpy as np
import polars as pl

from forecasting.data import Panel, validate_h, validate_levels, validate_panel
from forecasting.errors import CapabilityError, InsufficientHistoryError, InvalidParameterError, NotFittedError

if TYPE_CHECKING:
    from forecasting.explanation import Explanation

__all__ = [
    "BaseForecaster",
    "BaseParams",
    "arm",
    "explain_forecast",
    "global_importance",
    "Capabilities",
    "Capability",
    "clip_non_negative",
    "convert_params",
    "Fallback",
    "Forecaster",
    "Progress",
    "as_panel",
    "capabilities_of",
    "require",
    "split_short",
]

#: A capability a model may declare (the keys :func:`require` accepts).
Capability = Literal["intervals", "exog", "explain", "global_importance", "save", "export", "progress", "time_limit",
                     "fitted_values"]

#: Training-progress callback: (fraction done in [0, 1], message).
Progress = Callable[[float, str], None]

_FLAG: dict[str, str] = {"intervals": "supports_intervals", "exog": "supports_exog", "explain": "can_explain",
                         "global_importance": "has_global_importance", "save": "can_save", "export": "can_export",
                         "progress": "reports_progress", "time_limit": "honours_time_limit",
                         "fitted_values": "has_fitted_values"}
_VERB: dict[str, str] = {"intervals": "give prediction intervals", "exog": "use exogenous columns",
                         "explain": "explain its forecasts", "global_importance": "give a global feature importance",
                         "save": "be saved to a folder and loaded back", "export": "be exported to ONNX",
                         "progress": "report training progress", "time_limit": "stop at a time limit",
                         "fitted_values": "give in-sample fitted values"}
_ADVICE: dict[str, str] = {"intervals": "ask without level"}


@dataclass(frozen=True)
class Capabilities:
    """What a model class can do, declared once on the class (``capabilities: ClassVar[Capabilities]``).

    Attributes
    ----------
    supports_intervals : bool
        ``predict(level=...)`` gives prediction intervals.
    supports_exog : bool
        Uses exogenous columns of the panel (and ``X_future``) and static features.
    is_global : bool
        One model over every series (forecasts series it never saw from their history).
    can_explain : bool
        ``explain(h, ...)`` returns a :class:`~forecasting.explanation.Explanation`.
    has_global_importance : bool
        ``global_importance(data)`` returns mean |attribution| per feature.
    can_save : bool
        ``save(path)`` writes a folder that ``cls.load(path)`` reads back to identical forecasts.
    can_export : bool
        :func:`forecasting.export.export_model` writes an ONNX artifact of it.
    reports_progress : bool
        Calls ``model.progress(fraction, message)`` during training.
    honours_time_limit : bool
        Stops training with ``TimeLimitError`` once ``model.deadline`` (epoch seconds) passes.
    has_fitted_values : bool
        ``fitted_values()`` returns the in-sample one-step fitted values of the training rows.
    why_not : mapping of capability to str
        Why an absent capability is absent, with advice (used in the error message).
    """

    supports_intervals: bool = True
    supports_exog: bool = False
    is_global: bool = False
    can_explain: bool = False
    has_global_importance: bool = False
    can_save: bool = False
    can_export: bool = False
    reports_progress: bool = False
    honours_time_limit: bool = True
    has_fitted_values: bool = False
    why_not: Mapping[str, str] = field(default_factory=dict, compare=False)

    def has(self, capability: Capability) -> bool:
        """Whether the capability is declared.

        Raises
        ------
        ValueError
            An unknown capability name (a programming error, not a user's).
        """
        if capability not in _FLAG:
            msg = f"unknown capability {capability!r}; known: {', '.join(_FLAG)}"
            raise ValueError(msg)
        return bool(getattr(self, _FLAG[capability]))


#: What an object that is not a forecaster of this library can do: nothing.
NO_CAPABILITIES = Capabilities(supports_intervals=False, honours_time_limit=False)


@runtime_checkable
class Forecaster(Protocol):
    """What every model in the zoo provides.

    Attributes
    ----------
    name : str
        Registry name (``"auto_ets"``).
    alias : str
        Output column name (``"AutoETS"``, the library's class name by default).
    capabilities : Capabilities
        What the model can do (class-level declaration).
    runtime : {"native", "onnxruntime"}
        What computes its forecasts (class-level: the ONNX-served models say ``"onnxruntime"``).
    fallback : Forecaster or None
        Model used for series too short for this one (or that it fails on).
    deadline : float or None
        Epoch seconds after which training stops with ``TimeLimitError``.
    deadline_source : str or None
        The limit ``deadline`` comes from, as messages name it (:func:`arm`).
    progress : callable or None
        Training-progress callback (models that declare ``reports_progress``).
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    runtime: ClassVar[str]
    alias: str
    fallback: Forecaster | None
    deadline: float | None
    deadline_source: str | None
    progress: Progress | None

    @property
    def min_train_length(self) -> int:
        """Fewest observations a series needs for this model."""
        ...

    @property
    def fallbacks_(self) -> list[Fallback]:
        """Series forecast by the fallback model in the last fit, and why."""
        ...

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters, JSON-ready (a spec's ``params`` that rebuilds this model)."""
        ...

    def fit(self, panel: Panel | Any, *, static: pl.DataFrame | None = None) -> Self:
        """Fit on a validated panel (raw frames are validated first). Returns ``self``."""
        ...

    def predict(
        self,
        h: int,
        *,
        history: Panel | Any | None = None,
        X_future: pl.DataFrame | None = None,
        level: Sequence[float] = (),
    ) -> pl.DataFrame:
        """Forecast ``h`` steps after each series' end: ``unique_id, ds, <alias>[, intervals]``."""
        ...

    def explain(self, h: int, *, history: Any = None, X_future: Any = None, units: str = "y") -> Explanation:
        """Attributions of each forecast step (``CapabilityError`` unless ``can_explain``)."""
        ...

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to a folder (``CapabilityError`` unless ``can_save``)."""
        ...


def capabilities_of(model: object) -> Capabilities:
    """The declared capabilities of a model or model class (:data:`NO_CAPABILITIES` for anything else)."""
    caps = getattr(model if isinstance(model, type) else type(model), "capabilities", None)
    return caps if isinstance(caps, Capabilities) else NO_CAPABILITIES


def model_name(model: object) -> str:
    """The registry name of a model or model class (the class name for anything else)."""
    cls = model if isinstance(model, type) else type(model)
    name = getattr(cls, "name", None)
    return name if isinstance(name, str) and name else cls.__name__


def require(model: object, capability: Capability, *, field: str = "model") -> None:
    """Raise unless ``model`` declares ``capability``.

    Parameters
    ----------
    model : object
        A forecaster or forecaster class (anything else has no capabilities).
    capability : {"intervals", "exog", "explain", "global_importance", "save", "export", "progress", "time_limit",
                  "fitted_values"}
    field : str
        The request field the error names.

    Raises
    ------
    CapabilityError
        ``model 'auto_ets' cannot explain its forecasts: <why>``, naming the model, the
        capability and the reason the class declares (with advice), and carrying
        ``details={"model", "capability"}``.
    """
    caps = capabilities_of(model)
    if caps.has(capability):
        return
    name = model_name(model)
    why = caps.why_not.get(capability, _ADVICE.get(capability))
    raise CapabilityError(f"model '{name}' cannot {_VERB[capability]}" + (f": {why}" if why else ""), field=field,
                          details={"model": name, "capability": capability})


@dataclass(frozen=True)
class Fallback:
    """A series forecast by the fallback model instead of the requested one, and why."""

    unique_id: str
    model: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"unique_id": self.unique_id, "model": self.model, "reason": self.reason}


def as_panel(data: Panel | Any, *, freq: str | int | None = None) -> Panel:
    """Return ``data`` if it is a :class:`Panel`, else validate it."""
    return data if isinstance(data, Panel) else validate_panel(data, freq=freq)


#: An output column name (``alias``).
Alias = Annotated[str, msgspec.Meta(
    pattern=r"^(?!(unique_id|ds|y|cutoff)$)[A-Za-z_][A-Za-z0-9_.]{0,63}$",
    description="Output column name: letters, digits, '_' or '.', not unique_id, ds, y or cutoff.")]


class BaseParams(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What every model's parameters include: ``alias``, the output column name.

    Each model's own struct subclasses it in :mod:`forecasting.models.registry`.
    """

    alias: Alias | None = None


S = TypeVar("S", bound=msgspec.Struct)


def convert_params(model: str, struct: type[S], params: Mapping[str, Any]) -> S:
    """``params`` converted to ``struct``: the one validation of a model's hyperparameters.

    Raises
    ------
    InvalidParameterError
        Naming the model, the parameter, the rule, the allowed values of an
        enumeration and the model's parameters (field ``model.params.<name>``).
    """
    try:
        return msgspec.convert(dict(params), struct)
    except msgspec.ValidationError as exc:
        msg = str(exc)
        m = re.search(r"at `\$\.(\w+)", msg)
        unknown = re.search(r"unknown field `(\w+)`", msg)
        name = (m and m.group(1)) or (unknown and unknown.group(1))
        known = ", ".join(f for f in struct.__struct_fields__)
        choices = _choices(struct, name) if name and "Invalid enum value" in msg else []
        allowed = f"; allowed: {', '.join(repr(c) for c in choices)}" if choices else ""
        msg_0 = (
            f"model '{model}': invalid parameter{f' {name!r}' if name else ''}: {msg}{allowed} "
            f"(parameters: {known})"
        )
        raise InvalidParameterError(
            msg_0, field=f"model.params.{name}" if name else "model.params") from exc


def _choices(params: type[msgspec.Struct], name: str) -> list[Any]:
    """The literal values a parameter accepts (``[]`` when it is not an enumeration)."""
    import msgspec.inspect as mi

    info = mi.type_info(params)
    field = next((f for f in getattr(info, "fields", ()) if f.name == name), None)
    if field is None:
        return []
    types = field.type.types if isinstance(field.type, mi.UnionType) else (field.type,)
    values: list[Any] = [v for t in types if isinstance(t, mi.LiteralType) for v in t.values]
    if values and any(isinstance(t, mi.NoneType) for t in types):
        values.append(None)
    return values


P = TypeVar("P", bound=msgspec.Struct)


class BaseForecaster(Generic[P]):
    """What every adapter shares: construction from its parameter struct, fitted-state checks, refusals.

    Parameters
    ----------
    params : the model's parameter struct, optional
        An instance of the struct registered for :attr:`name` (e.g. ``XGBoostParams``).
        Without it, keyword arguments are validated through that struct, so
        ``XGBoostForecaster(season_length=24, n_estimators=50)`` and
        ``XGBoostForecaster(XGBoostParams(season_length=24, n_estimators=50))`` are the same.
    fallback : Forecaster, optional
        Model used for series that are too short for this one or on which it fails;
        every such series is listed in ``fallbacks_``. Without a fallback they raise.
    n_jobs : int, default 1
        Worker processes (local models) or threads (global models); -1: one per CPU.
    **kwargs
        Parameters, when ``params`` is not given.

    Raises
    ------
    InvalidParameterError
        A parameter of the wrong type or range, or an unknown one, named.
    """

    name: ClassVar[str] = ""
    default_alias: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    runtime: ClassVar[str] = "native"
    #: the parameter struct, taken from the generic base (``class X(BaseForecaster[XParams])``): declared once
    params_type: ClassVar[type[msgspec.Struct]] = BaseParams
    #: attribute set by ``fit`` (and ``load``): its absence means "not fitted"
    fitted_attribute: ClassVar[str] = "panel_"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__dict__.get("__orig_bases__", ()):
            args = get_args(base)
            if args and isinstance(args[0], type) and issubclass(args[0], msgspec.Struct):
                cls.params_type = args[0]

    def __init__(self, params: P | None = None, /, *, fallback: Forecaster | None = None, n_jobs: int = 1,
                 **kwargs: Any) -> None:
        if params is None:  # params_type is P's runtime class (__init_subclass__), which mypy cannot see
            params = cast(P, convert_params(self.name, self.params_type, kwargs))
        elif kwargs:
            msg = f"{type(self).__name__}: give the parameter struct or keyword parameters, not both"
            raise TypeError(msg)
        elif not isinstance(params, self.params_type):
            msg = f"{type(self).__name__} takes {self.params_type.__name__}, got {type(params).__name__}"
            raise TypeError(msg)
        self.params: P = params
        alias = getattr(params, "alias", None)
        self.alias: str = alias or self.default_alias
        self.fallback = fallback
        self.n_jobs = n_jobs
        self.deadline: float | None = None  # epoch seconds after which fitting stops with TimeLimitError
        self.deadline_source: str | None = None  # who set the deadline, for messages (e.g. 'FORECASTING_MAX_SECONDS=60 s')
        self.progress: Progress | None = None  # (fraction done, message) during training, where declared
        self.fallbacks_: list[Fallback] = []  # series handed to the fallback by the last fit (none before one)

    # -- parameters ----------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as JSON-ready values: the parameter struct without ``alias``."""
        out = msgspec.to_builtins(self.params)
        out.pop("alias", None)
        return out

    @property
    def min_train_length(self) -> int:
        """Fewest observations a series needs (1 unless the subclass says more)."""
        return 1

    # -- fitted state --------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or ``load``) has run."""
        return self.fitted_attribute in self.__dict__

    def check_is_fitted(self, before: str = "predict(h)") -> None:
        """Raise unless fitted (scikit-learn's ``check_is_fitted``).

        Raises
        ------
        NotFittedError
            ``model 'name' is not fitted: call fit(panel) before <before>``.
        """
        if not self.is_fitted:
            msg = f"model '{self.name}' is not fitted: call fit(panel) before {before}"
            raise NotFittedError(msg)

    # -- the predict preamble of models refitted from each request's history (local, ensemble, auto) ----
    #: the panel the last fit saw (set by ``fit`` of the models that use the preamble below)
    panel_: Panel

    def _refit_predict(self, h: int, history: Panel | Any, *, X_future: pl.DataFrame | None,
                       level: Sequence[float]) -> pl.DataFrame:
        """Refit on ``history`` and forecast ``h`` steps from its end (a model refitted per request).

        ``history`` is read with the fitted panel's ``freq`` when there is one (else inferred).

        Raises
        ------
        ForecastingError
            Whatever :meth:`fit` or :meth:`predict` raise on it.
        """
        return self.fit(as_panel(history, freq=self.panel_.freq if self.is_fitted else None)).predict(
            h, X_future=X_future, level=level)

    def _prepare_local(self, h: int, level: Sequence[float], X_future: pl.DataFrame | None
                       ) -> tuple[int, tuple[float | int, ...]]:
        """Fitted state, ``h`` and ``level`` checked, ``X_future`` refused: ``(h, levels)``.

        For models without exogenous inputs that forecast from the fitted panel (``history=None``).

        Raises
        ------
        NotFittedError
            Not fitted.
        InvalidParameterError
            ``h`` or ``level`` out of range (:func:`forecasting.data.validate_h`, ``validate_levels``).
        CapabilityError
            ``level`` on a model without intervals (field ``level``); any ``X_future`` (field ``X_future``).
        """
        self.check_is_fitted()
        h = validate_h(h)
        levels = validate_levels(level)
        if levels:
            require(self, "intervals", field="level")
        if X_future is not None:
            msg = f"model '{self.name}' does not use exogenous columns, so X_future is not accepted"
            raise CapabilityError(msg, field="X_future")
        return h, levels

    # -- the protocol (every family implements these) ------------------------------
    def fit(self, panel: Panel | Any, *, static: pl.DataFrame | None = None) -> Self:
        """Fit on a validated panel (raw frames are validated first). Returns ``self``."""
        raise NotImplementedError

    def predict(self, h: int, *, history: Panel | Any | None = None, X_future: pl.DataFrame | None = None,
                level: Sequence[float] = ()) -> pl.DataFrame:
        """Forecast ``h`` steps after each series' end: ``unique_id, ds, <alias>[, intervals]``."""
        raise NotImplementedError

    # -- what the class may not do (each raises the CapabilityError that says why) ---
    def explain(self, h: int, *, history: Any = None, X_future: Any = None, units: str = "y") -> Explanation:
        """Attributions of each forecast step to the model's inputs.

        Raises
        ------
        CapabilityError
            Unless the class declares ``can_explain`` (and overrides this method).
        """
        require(self, "explain")
        raise NotImplementedError  # pragma: no cover - a class that declares can_explain overrides this

    def global_importance(self, data: Panel | Any | None = None, *, max_rows: int = 10_000,
                          seed: int = 0) -> pl.DataFrame:
        """Mean |attribution| per feature over ``data``.

        Raises
        ------
        CapabilityError
            Unless the class declares ``has_global_importance``.
        """
        require(self, "global_importance")
        raise NotImplementedError  # pragma: no cover

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to a folder.

        Raises
        ------
        CapabilityError
            Unless the class declares ``can_save``.
        """
        require(self, "save")
        raise NotImplementedError  # pragma: no cover

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "cpu") -> Self:
        """Read a folder written by :meth:`save`.

        Raises
        ------
        CapabilityError
            Unless the class declares ``can_save``.
        """
        require(cls, "save")
        raise NotImplementedError  # pragma: no cover

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"


def split_short(model: BaseForecaster[Any], panel: Panel, minimum: int, why: str) -> Panel:
    """Hand series shorter than ``minimum`` to ``model.fallback`` and return the others (global models).

    Sets ``model.fallbacks_`` (one :class:`Fallback` per short series, after fitting the
    fallback on them).

    Raises
    ------
    InsufficientHistoryError
        Without a fallback: ``N series too short for model 'name' (needs at least
        minimum observations: why)``, naming up to five series and their lengths; the
        details list every one.
    """
    short = {u: n for u, n in panel.lengths.items() if n < minimum}
    model.fallbacks_ = []
    if not short:
        return panel
    if model.fallback is None:
        raise InsufficientHistoryError(
            f"{len(short)} series too short for model '{model.name}' (needs at least {minimum} observations: {why}): "
            + "; ".join(f"series '{u}': {n} observations" for u, n in list(short.items())[:5]),
            field="data", details={"minimum": minimum,
                                   "series": {u: {"length": n, "minimum": minimum} for u, n in short.items()}})
    model.fallback.fit(panel.subset(short))
    model.fallbacks_ = [Fallback(u, model.fallback.name, f"{n} observations, model '{model.name}' needs at least "
                                                         f"{minimum}") for u, n in short.items()]
    return panel.subset([u for u in panel.lengths if u not in short])


#: seconds past the deadline a fit running in this process is waited for before it is abandoned (see
#: :func:`abandonable`)
ABANDON_GRACE_S = 0.5

_T = TypeVar("_T")



def abandonable(work: Callable[[threading.Event], _T], deadline: float | None) -> _T | None:
    """``work(stop)`` run so that the caller can leave it at ``deadline``: ``None`` when it had not finished
    :data:`ABANDON_GRACE_S` after the deadline.

    Without a deadline ``work`` runs in this thread. With one it runs in a daemon thread, waited for until the
    deadline: one series' fit cannot be interrupted (statsforecast's AutoARIMA on one 701-point daily series took
    73 s of a 60 s limit, checked only between series), nor one boosting round of a tree model (an XGBoost round
    over a large panel: seconds), so the caller is not held; ``stop`` is set and the work ends after the series or
    round in progress (a tree's training callback raises at the deadline), whose result is dropped (the thread
    keeps its core until then). Exceptions of ``work`` (a progress callback stopping the fit) are raised here.
    Used by local models (``forecasting.models.local``, per series) and the tree base (per booster).
    """
    stop = threading.Event()
    if deadline is None:
        return work(stop)
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["out"] = work(stop)
        except BaseException as exc:  # handed to the caller  # noqa: BLE001
            box["exc"] = exc

    thread = threading.Thread(target=run, name="forecasting-fit", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.time()) + ABANDON_GRACE_S)
    if thread.is_alive():
        stop.set()
        return None
    if "exc" in box:
        raise box["exc"]
    return box["out"]


def arm(model: Forecaster, *, deadline: float | None = None, progress: Progress | None = None,
        source: str | None = None) -> None:
    """Give a model (and its fallback) a deadline and a progress callback, as far as it declares it takes them.

    Parameters
    ----------
    deadline : float, optional
        Epoch seconds after which training stops with ``TimeLimitError`` (models that declare
        ``honours_time_limit``; their fallback too).
    source : str, optional
        The limit the deadline comes from, as messages name it (``'FORECASTING_MAX_SECONDS=60 s'``).
    progress : callable(fraction, message), optional
        Training progress (models that declare ``reports_progress``).
    """
    if deadline is not None:
        model.deadline, model.deadline_source = deadline, source
        if model.fallback is not None:
            model.fallback.deadline, model.fallback.deadline_source = deadline, source
    if progress is not None and model.capabilities.reports_progress:
        model.progress = progress


def clip_non_negative(frame: pl.DataFrame, alias: str, history: Panel, policy: bool | None = None
                      ) -> tuple[pl.DataFrame, str | None]:
    """Forecasts clipped at zero where the data cannot be negative, and the note that says so.

    Parameters
    ----------
    frame : pl.DataFrame
        A forecast frame (``unique_id, ds, <alias>[, <alias>-lo-<L>, <alias>-hi-<L>]``).
    alias : str
        The model's column name.
    history : Panel
        The series the forecasts continue.
    policy : bool, optional
        ``True``: clip; ``False``: never; ``None`` (default): clip when every observed ``y`` is >= 0
        (counts, sales, demand: a negative forecast is never right there).

    Returns
    -------
    (pl.DataFrame, str or None)
        The frame (values < 0 set to 0 in the point and interval columns) and, when any value was
        clipped, a note with the count.

    Raises
    ------
    InvalidParameterError
        ``policy`` is not a bool or ``None`` (field ``non_negative``).
    """
    if policy is not None and not isinstance(policy, bool | np.bool_):
        msg = f"non_negative must be true, false or left out (null), got {policy!r}"
        raise InvalidParameterError(msg, field="non_negative")
    if policy is not None:
        policy = bool(policy)
    if policy is False or (policy is None and bool((history.frame["y"] < 0).any())):
        return frame, None
    cols = [c for c in frame.columns if c == alias or c.startswith(f"{alias}-lo-") or c.startswith(f"{alias}-hi-")]
    negative = int(frame.select((pl.col(alias) < 0).sum()).item()) if alias in frame.columns else 0
    lows = int(frame.select(pl.sum_horizontal([(pl.col(c) < 0).sum() for c in cols])).item()) if cols else 0
    if not lows:
        return frame, None
    clipped = frame.with_columns([pl.col(c).clip(lower_bound=0.0) for c in cols])
    why = "non_negative=true" if policy else "every observed value is >= 0 (non_negative=false keeps them)"
    return clipped, f"{negative} point forecasts and {lows - negative} interval bounds below 0 set to 0: {why}"


def explain_forecast(model: Any, h: int, *, history: Any = None, X_future: Any = None, units: str = "y") -> Explanation:
    """SHAP values of each forecast step of a fitted forecaster.

    Parameters
    ----------
    model : fitted forecaster
        A model with an ``explain`` method (``xgboost``).
    h : int
        Steps to forecast and explain.
    history, X_future
        As the model's ``predict``.
    units : {"y", "model"}
        Units of the values (see :meth:`forecasting.models.xgb.XGBoostForecaster.explain`).

    Returns
    -------
    Explanation
        One row per (series, step), keys ``unique_id, ds, step``.

    Raises
    ------
    CapabilityError
        For models without SHAP explanations (the statistical zoo), naming the model.
    """
    require(model, "explain")
    return model.explain(h, history=history, X_future=X_future, units=units)


def global_importance(model: Any, data: Any = None, *, max_rows: int = 10_000, seed: int = 0) -> pl.DataFrame:
    """Mean |SHAP| per feature over a dataset (the model's training data by default).

    Returns
    -------
    pl.DataFrame
        ``feature, mean_abs_shap``, largest first.

    Raises
    ------
    CapabilityError
        For models without SHAP explanations.
    """
    require(model, "global_importance")
    return model.global_importance(data, max_rows=max_rows, seed=seed)
