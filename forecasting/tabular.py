"""Tabular models: plain tables (no time axis), regression and binary classification.

One small class, :class:`TabularModel`, fits XGBoost or a scikit-learn baseline
(histogram gradient boosting, or a ridge / logistic linear model) on the columns of a
polars (or pandas) table, predicts, explains with SHAP in the shared
:class:`~forecasting.explanation.Explanation` shape, and saves to safe formats only.
:func:`cross_validate` scores a model spec with k-fold cross-validation.

Columns
-------
- numeric (integer, float, boolean) columns are features as they are; null and NaN are
  "missing", which XGBoost and histogram gradient boosting handle natively (learned
  default directions) and the linear model imputes with the training mean; infinities
  (``inf``/``-inf``) are refused, in features (fit, predict, explain) and in the target, with
  an :class:`~forecasting.errors.InvalidInputError` naming the column and the rows; a feature
  column with no value at all (every value null/NaN) is refused at fit time;
- string, ``Categorical`` and ``Enum`` columns are categorical: their categories are the
  sorted distinct training values, recorded with the model, and the models see integer
  codes (XGBoost and histogram gradient boosting split on them natively, as categories;
  the linear model one-hot encodes them). A category the training data did not have is
  refused at predict time (``handle_unknown="error"``, the default: an
  :class:`~forecasting.errors.InvalidInputError` naming the column and the values) or
  treated as missing (``handle_unknown="missing"``);
- any other column (datetime, date, list, struct, object) is refused at fit time: derive
  numeric features from it (hour, weekday...) or leave it out with ``features=``.

Explanations
------------
- ``xgboost``: exact TreeSHAP by XGBoost's own ``pred_contribs`` (Lundberg et al. 2020,
  Nature Machine Intelligence); classification explains the margin (log-odds).
- ``linear``: exact linear SHAP, ``w_j (z_j - mean_train(z_j))`` summed over each feature's
  design columns (one-hot columns of a categorical feature), interventional with the
  training mean as the background (Lundberg & Lee 2017, NeurIPS).
- ``hist_gradient_boosting``: shap's ``TreeExplainer`` (exact TreeSHAP) when the model has no
  categorical features; with categorical features shap's TreeExplainer returns wrong values
  for scikit-learn's categorical splits (measured: additivity off by 0.88 on a toy model),
  so shap's ``PermutationExplainer`` (sampled Shapley values over a background sample;
  additive by construction, values approximate) is used instead, and ``method`` says so.

Saving
------
XGBoost: the booster in UBJSON (``model.ubj``) + ``metadata.json`` (features, categories,
classes, target, kind, params, the booster's sha256, checked on load). Linear: everything
(imputation means, scales, categories, coefficients) in ``metadata.json``. Histogram
gradient boosting cannot be saved safely (scikit-learn offers only pickle): ``save`` raises
:class:`~forecasting.errors.CapabilityError`. Nothing is ever pickled.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypedDict

import numpy as np
import polars as pl

from forecasting import artifacts
from forecasting.data import FLOAT32_MAX, find_float32_inexact, float32_note
from forecasting.devices import resolve_device
from forecasting.errors import (
    ArtifactIntegrityError,
    CapabilityError,
    InvalidInputError,
    InvalidParameterError,
    NotFittedError,
)
from forecasting.explanation import Explanation

if TYPE_CHECKING:  # neither is imported at run time unless used
    import pandas as pd
    import xgboost as xgb

__all__ = ["ALGORITHMS", "KINDS", "TabularModel", "cross_validate", "resolve_device"]

KINDS = ("regression", "classification")
ALGORITHMS: tuple[Algorithm, ...] = ("xgboost", "hist_gradient_boosting", "linear")
_HANDLE_UNKNOWN = ("error", "missing")
_FORMAT_VERSION = 1
_META_FILE = "metadata.json"
_XGB_FILE = "model.ubj"

#: xgboost parameters accepted in ``params`` (native names and their aliases) besides ``n_estimators``.
_XGB_PARAMS = frozenset({
    "n_estimators", "num_boost_round", "learning_rate", "eta", "max_depth", "max_leaves", "min_child_weight",
    "subsample", "sampling_method", "colsample_bytree", "colsample_bylevel", "colsample_bynode",
    "reg_lambda", "lambda", "reg_alpha", "alpha", "gamma", "min_split_loss", "max_delta_step", "max_bin",
    "grow_policy", "scale_pos_weight", "max_cat_to_onehot", "max_cat_threshold", "num_parallel_tree",
    "monotone_constraints", "interaction_constraints", "base_score", "huber_slope", "quantile_alpha",
    "objective", "tree_method", "verbosity", "max_cached_hist_node",
})
#: xgboost parameters that a TabularModel argument sets.
_XGB_REDIRECT = {"seed": "seed", "random_state": "seed", "device": "device", "nthread": "n_jobs", "n_jobs": "n_jobs"}
#: Objectives whose margin is the prediction (regression) or the log-odds (classification); first is the default.
_XGB_OBJECTIVES = {
    "regression": ("reg:squarederror", "reg:squaredlogerror", "reg:pseudohubererror", "reg:absoluteerror",
                   "reg:quantileerror"),
    "classification": ("binary:logistic", "binary:logitraw"),
}

#: Default hyperparameters per algorithm (``params`` entries override them).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    # xgboost native names; n_estimators is the number of boosting rounds
    "xgboost": {"n_estimators": 600, "learning_rate": 0.05, "max_depth": 8, "min_child_weight": 1.0,
                "subsample": 0.8, "colsample_bytree": 0.8, "reg_lambda": 1.0},
    "hist_gradient_boosting": {"max_iter": 500, "learning_rate": 0.1, "max_leaf_nodes": 31,
                               "min_samples_leaf": 20, "early_stopping": False},
    "linear": {},  # Ridge(alpha=1.0) / LogisticRegression(C=1.0, max_iter=1000)
}

Kind = Literal["regression", "classification"]
Algorithm = Literal["xgboost", "hist_gradient_boosting", "linear"]
#: A table of examples: polars, or pandas (converted; pandas is imported only when given one)
TableLike: TypeAlias = "pl.DataFrame | pd.DataFrame"


# --------------------------------------------------------------------------- columns


def _to_polars(table: TableLike, what: str = "table") -> pl.DataFrame:
    if isinstance(table, pl.DataFrame):
        return table
    if type(table).__module__.split(".")[0] == "pandas" and hasattr(table, "columns"):
        try:
            return pl.from_pandas(table)
        except Exception as exc:  # pandas/pyarrow raise many types; re-raised as InvalidInputError
            msg = f"{what}: cannot convert the pandas frame to polars: {exc}"
            raise InvalidInputError(msg, field="data") from exc
    msg = f"{what} must be a polars or pandas DataFrame, got {type(table).__name__}"
    raise InvalidInputError(msg, field="data")


def _is_categorical(dtype: pl.DataType) -> bool:
    return dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum))


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean


def _close(name: str, options: Sequence[str]) -> str:
    by_lower: dict[str, str] = {}
    for option in options:  # case-insensitive: 'Y' suggests 'y'
        by_lower.setdefault(option.lower(), option)
    close = [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)]
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _row_list(idx: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return shown + (f", ... ({len(idx)} rows)" if len(idx) > limit else "")


def _all_missing(s: pl.Series) -> bool:
    if s.dtype == pl.Null or s.null_count() == s.len():
        return True
    return bool(s.dtype.is_float() and (s.is_nan() | s.is_null()).all())


def _check_target(frame: pl.DataFrame, target: str) -> pl.Series:
    if not isinstance(target, str) or target not in frame.columns:
        msg = (
            f"target column {target!r} is not in the table{_close(str(target), frame.columns)} "
            f"(columns: {', '.join(frame.columns)})"
        )
        raise InvalidInputError(msg, field="target", details={"columns": frame.columns},)
    y = frame[target]
    missing = y.is_null()
    if y.dtype.is_float():
        missing = missing | y.is_nan().fill_null(True)
    bad = np.flatnonzero(missing.to_numpy())
    if bad.size:
        msg = f"target {target!r} is missing (null/NaN) in {bad.size} rows: {_row_list(bad)}; drop those rows first"
        raise InvalidInputError(msg, field="target", details={"rows": bad[:100].tolist(), "n_rows": int(bad.size)},)
    if y.dtype.is_float():
        inf = np.flatnonzero(y.is_infinite().to_numpy())
        if inf.size:
            msg = (
                f"target {target!r} is infinite (inf/-inf) in {inf.size} rows: {_row_list(inf)}; "
                "only finite values are allowed: drop or fix those rows"
            )
            raise InvalidInputError(
                msg,
                field="target", details={"column": target, "rows": inf[:100].tolist(), "n_rows": int(inf.size)},
            )
    return y


def _check_finite(name: str, values: np.ndarray) -> None:
    """Refuse inf/-inf in a numeric feature (NaN is allowed: it means missing)."""
    inf = np.flatnonzero(np.isinf(values))
    if inf.size:
        msg = (
            f"feature {name!r} is infinite (inf/-inf) in {inf.size} rows: {_row_list(inf)}; only finite values "
            "are allowed (null/NaN means missing): replace the infinities or drop those rows"
        )
        raise InvalidInputError(
            msg,
            field="data", details={"column": name, "rows": inf[:100].tolist(), "n_rows": int(inf.size)},
        )
    # XGBoost and ONNX Runtime read features as float32: larger magnitudes would become inf there
    huge = np.flatnonzero(np.abs(np.nan_to_num(values)) > FLOAT32_MAX)
    if huge.size:
        msg = (
            f"feature {name!r} exceeds the float32 range (|x| > 3.4e38) in {huge.size} rows: {_row_list(huge)}; "
            f"{_FLOAT32_WHO}: rescale the column"
        )
        raise InvalidInputError(
            msg,
            field="data", details={"column": name, "rows": huge[:100].tolist(), "n_rows": int(huge.size)},
        )


#: Why a value beyond :data:`forecasting.data.FLOAT32_MAX` is refused for every algorithm (the linear model's ONNX graph too)
_FLOAT32_WHO = "XGBoost and the ONNX export compute in float32"


def _check_target_range(target: str, y: np.ndarray) -> None:
    """Refuse a regression target beyond float32's range: XGBoost read ``1e300`` as inf and its error blamed the
    parameters ("xgboost rejected the parameters {...}")."""
    huge = np.flatnonzero(np.abs(y) > FLOAT32_MAX)
    if huge.size:
        msg = (f"target {target!r} exceeds the float32 range (|y| > 3.4e38) in {huge.size} rows: {_row_list(huge)}; "
               f"{_FLOAT32_WHO}: rescale the target")
        raise InvalidInputError(msg, field="target",
                                details={"column": target, "rows": huge[:100].tolist(), "n_rows": int(huge.size)})


# --------------------------------------------------------------------------- the model


class _LinearState(TypedDict, total=False):
    """The fitted linear model as saved in the folder's meta (``meta["linear"]``)."""

    mean: dict[str, float]  # training mean of each numeric feature (imputes missing values)
    scale: dict[str, float]  # training standard deviation of each numeric feature (1.0 when constant)
    coef: list[float]  # one per design column (standardised numeric features, then one-hot categories)
    intercept: float
    design_mean: list[float]  # training mean of each design column (the SHAP background)


class TabularModel:
    """A regression or binary classification model over the columns of a plain table.

    Parameters
    ----------
    kind : {"regression", "classification"}, default "regression"
        Classification is binary: the target must have exactly two distinct values; the
        second in sorted order is the positive class (``classes_[1]``).
    algorithm : {"xgboost", "hist_gradient_boosting", "linear"}, default "xgboost"
        ``xgboost`` (``xgboost.train``, hist trees, native categorical splits);
        ``hist_gradient_boosting`` (scikit-learn's HistGradientBoostingRegressor/Classifier);
        ``linear`` (scikit-learn Ridge / LogisticRegression on mean-imputed, standardised
        numeric columns and one-hot categorical columns).
    params : dict, optional
        Hyperparameters, merged over :data:`DEFAULT_PARAMS`: xgboost native parameters plus
        ``n_estimators`` (boosting rounds; unknown names are refused, listing the accepted
        ones, and ``seed``/``device``/``nthread`` are the constructor's arguments); HistGradientBoosting* keyword arguments; Ridge's
        ``alpha`` or LogisticRegression's ``C``/``max_iter``. JSON-serialisable.
    device : str, default "auto"
        XGBoost only: see :func:`resolve_device`. A model trained on a GPU predicts on a CPU.
    seed : int, default 0
        Random seed (row/column subsampling, permutation SHAP).
    handle_unknown : {"error", "missing"}, default "error"
        A category not seen in training, at predict/explain time: refuse
        (:class:`InvalidInputError` naming column and values) or treat as missing.
    n_jobs : int, optional
        Threads for training and prediction (xgboost ``nthread``; OpenMP threads of
        scikit-learn). Default: all cores. On a machine shared with other busy processes
        use 1: OpenMP oversubscription made a 100-round XGBoost fit 35x slower (0.66 s
        with 1 thread, 22.5 s with 2, on 2 cores at load 5).

    Attributes
    ----------
    feature_names_ : list of str
        Feature columns, in model order.
    categories_ : dict of str to list of str
        Training categories of each categorical feature (code = position in the list).
    classes_ : list
        Classification only: the two target values; ``classes_[1]`` is the positive class.
    target_ : str
        The target column.
    device_ : str
        The device XGBoost trained on (``"cpu"`` for the scikit-learn algorithms).

    Examples
    --------
    >>> import polars as pl
    >>> t = pl.DataFrame({"x": [0.0, 1.0, 2.0, 3.0] * 10, "c": ["a", "b", "a", "b"] * 10,
    ...                   "y": [0.0, 1.0, 2.0, 3.0] * 10})
    >>> m = TabularModel(algorithm="linear").fit(t, "y")
    >>> m.predict(t.head(2)).columns
    ['prediction']
    >>> m.explain(t.head(2)).additivity_error < 1e-9
    True
    """

    def __init__(
        self,
        kind: Kind = "regression",
        algorithm: Algorithm = "xgboost",
        params: Mapping[str, Any] | None = None,
        *,
        device: str = "auto",
        seed: int = 0,
        handle_unknown: Literal["error", "missing"] = "error",
        n_jobs: int | None = None,
    ) -> None:
        self.kind = kind
        self.algorithm = algorithm
        self.params = dict(params or {})
        self.device = device
        self.seed = seed
        self.handle_unknown = handle_unknown
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ parameters

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable); ``TabularModel(**m.get_params())`` is an unfitted copy."""
        return {"kind": self.kind, "algorithm": self.algorithm, "params": dict(self.params),
                "device": self.device, "seed": self.seed, "handle_unknown": self.handle_unknown,
                "n_jobs": self.n_jobs}

    def __repr__(self) -> str:
        return (f"TabularModel(kind={self.kind!r}, algorithm={self.algorithm!r}, params={self.params!r}, "
                f"device={self.device!r}, seed={self.seed!r}, handle_unknown={self.handle_unknown!r}, "
                f"n_jobs={self.n_jobs!r})")

    def _validate_params(self) -> None:
        if self.kind not in KINDS:
            msg = f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}"
            raise InvalidParameterError(msg, field="kind")
        if self.algorithm not in ALGORITHMS:
            msg = (
                f"algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}"
                f"{_close(str(self.algorithm), ALGORITHMS)}"
            )
            raise InvalidParameterError(msg, field="algorithm")
        if self.handle_unknown not in _HANDLE_UNKNOWN:
            msg = f"handle_unknown must be 'error' or 'missing', got {self.handle_unknown!r}"
            raise InvalidParameterError(msg, field="handle_unknown")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            msg = f"seed must be an integer >= 0, got {self.seed!r}"
            raise InvalidParameterError(msg, field="seed")
        if self.n_jobs is not None and (isinstance(self.n_jobs, bool) or not isinstance(self.n_jobs, int)
                                        or self.n_jobs < 1):
            msg = f"n_jobs must be None or an integer >= 1, got {self.n_jobs!r}"
            raise InvalidParameterError(msg, field="n_jobs")
        try:
            json.dumps(self.params)
        except (TypeError, ValueError) as exc:
            msg = f"params must be JSON-serialisable: {exc}"
            raise InvalidParameterError(msg, field="params") from exc

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`load`) has run."""
        return hasattr(self, "feature_names_")

    def _threads(self) -> contextlib.AbstractContextManager[object]:
        """Context limiting OpenMP/BLAS threads to ``n_jobs`` (no limit when None)."""
        if self.n_jobs is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=self.n_jobs)

    def _check_fitted(self, what: str) -> None:
        if not self.is_fitted:
            msg = f"TabularModel({self.algorithm}) must be fitted before {what}; call fit(table, target)"
            raise NotFittedError(msg)

    # ------------------------------------------------------------------ encoding

    def _encode(self, frame: pl.DataFrame) -> np.ndarray:
        """Features of ``frame`` as float64 (n_rows, n_features): numeric as is, categories as codes, NaN missing."""
        missing = [c for c in self.feature_names_ if c not in frame.columns]
        if missing:
            msg = f"the table lacks {len(missing)} feature column(s) the model was trained on: {', '.join(missing)}"
            raise InvalidInputError(msg, field="data", details={"missing_columns": missing},)
        out = np.empty((frame.height, len(self.feature_names_)), dtype=np.float64)
        for j, name in enumerate(self.feature_names_):
            s = frame[name]
            if name in self.categories_:
                if not (_is_categorical(s.dtype) or s.dtype == pl.Null):
                    msg = f"feature {name!r} was categorical (text) in training but is {s.dtype} here"
                    raise InvalidInputError(msg, field="data")
                cats = self.categories_[name]
                text = s.cast(pl.Utf8)
                unknown = text.is_not_null() & ~text.is_in(cats)
                if unknown.any():
                    values = text.filter(unknown).unique(maintain_order=True).to_list()
                    if self.handle_unknown == "error":
                        shown = ", ".join(repr(v) for v in values[:10]) + (" ..." if len(values) > 10 else "")
                        msg = (
                            f"feature {name!r} has {len(values)} categor{'y' if len(values) == 1 else 'ies'} not seen "
                            f"in training: {shown} (known: {', '.join(repr(c) for c in cats[:20])}); pass "
                            "handle_unknown='missing' to treat them as missing"
                        )
                        raise InvalidInputError(msg, field="data", details={"column": name, "unknown": values[:100]},)
                codes = text.replace_strict(cats, list(range(len(cats))), default=None, return_dtype=pl.Float64)
                out[:, j] = codes.fill_null(float("nan")).to_numpy()
            else:
                if not (_is_numeric(s.dtype) or s.dtype == pl.Null):
                    msg = f"feature {name!r} was numeric in training but is {s.dtype} here"
                    raise InvalidInputError(msg, field="data")
                out[:, j] = s.cast(pl.Float64).fill_null(float("nan")).to_numpy()
                _check_finite(name, out[:, j])
        return out

    def _linear_design(self, x: np.ndarray) -> np.ndarray:
        """Mean-impute and standardise numeric columns, one-hot categorical codes (missing: all zero)."""
        lin = self._linear_
        blocks = []
        for j, name in enumerate(self.feature_names_):
            col = x[:, j]
            if name in self.categories_:
                k = len(self.categories_[name])
                onehot = np.zeros((x.shape[0], k))
                ok = ~np.isnan(col)
                onehot[np.flatnonzero(ok), col[ok].astype(np.int64)] = 1.0
                blocks.append(onehot)
            else:
                filled = np.where(np.isnan(col), lin["mean"][name], col)
                blocks.append(((filled - lin["mean"][name]) / lin["scale"][name])[:, None])
        return np.hstack(blocks) if blocks else np.zeros((x.shape[0], 0))

    def _design_groups(self) -> list[int]:
        """Design column -> feature index."""
        groups: list[int] = []
        for j, name in enumerate(self.feature_names_):
            groups += [j] * (len(self.categories_[name]) if name in self.categories_ else 1)
        return groups

    # ------------------------------------------------------------------ fit

    def fit(self, table: TableLike, target: str, *, features: Sequence[str] | None = None) -> TabularModel:
        """Fit on a table.

        XGBoost holds values as float32: a feature or target beyond |x| > 2^24 is named in :attr:`notes_` and in a
        ``UserWarning`` (:func:`forecasting.data.float32_note`); nothing is rescaled.

        Parameters
        ----------
        table : pl.DataFrame or pandas.DataFrame
            One row per example.
        target : str
            Target column: numeric for regression, exactly two distinct values for
            classification. No nulls/NaN.
        features : sequence of str, optional
            Feature columns; default every column except ``target``.

        Returns
        -------
        self

        Raises
        ------
        InvalidParameterError
            If a constructor argument is out of its domain.
        InvalidInputError
            If ``target`` is not a column (close matches are suggested) or has missing values
            (the rows are named); a feature column is absent, or neither numeric nor
            text/categorical (named with its dtype), or entirely missing (all null/NaN); a
            feature or the target holds inf/-inf (column and rows named); there are no rows or
            no features; a regression target is not numeric; a classification target has other
            than two values.
        """
        self._validate_params()
        frame = _to_polars(table)
        y_series = _check_target(frame, target)
        features = _check_features(frame, target, features)

        categories: dict[str, list[str]] = {}
        for c in features:
            if _is_categorical(frame.schema[c]):
                categories[c] = sorted(frame[c].cast(pl.Utf8).drop_nulls().unique().to_list())
        if self.algorithm == "hist_gradient_boosting":
            wide = [c for c, cats in categories.items() if len(cats) > 255]
            if wide:
                msg = (
                    f"hist_gradient_boosting supports at most 255 categories per feature; "
                    f"{', '.join(f'{c!r} has {len(categories[c])}' for c in wide)}; use algorithm='xgboost'"
                )
                raise InvalidInputError(msg, field="features")

        if self.kind == "regression":
            if not _is_numeric(y_series.dtype):
                msg = f"regression target {target!r} must be numeric, got {y_series.dtype}"
                raise InvalidInputError(msg, field="target")
            y = y_series.cast(pl.Float64).to_numpy()
            _check_target_range(target, y)
            classes: list[Any] = []
        else:
            classes = sorted(y_series.unique().to_list())
            if len(classes) != 2:
                shown = ", ".join(repr(c) for c in classes[:10])
                msg = (
                    f"classification target {target!r} must have exactly 2 distinct values (binary), "
                    f"got {len(classes)}: {shown}"
                )
                raise InvalidInputError(msg, field="target", details={"n_classes": len(classes)})
            y = (y_series == classes[1]).cast(pl.Float64).to_numpy()

        self.feature_names_ = features
        self.categories_ = categories
        self.target_ = target
        self.classes_ = classes
        self.device_ = "cpu"
        x = self._encode(frame)
        #: warnings on the training data (inputs beyond float32's exact range for XGBoost), also raised as UserWarning
        self.notes_: list[str] = []
        beyond = find_float32_inexact(frame, [*features, target]) if self.algorithm == "xgboost" else {}
        if beyond:
            self.notes_.append(float32_note(beyond, model=f"tabular {self.algorithm}"))
            warnings.warn(self.notes_[-1], UserWarning, stacklevel=2)
        fit = {"xgboost": self._fit_xgboost, "hist_gradient_boosting": self._fit_hgb, "linear": self._fit_linear}
        try:
            with self._threads():
                fit[self.algorithm](x, y)
        except BaseException:
            del self.feature_names_
            raise
        return self

    def _xgb_params(self) -> tuple[dict[str, Any], int]:
        user = dict(self.params)
        for name, arg in _XGB_REDIRECT.items():
            if name in user:
                msg = f"xgboost parameter {name!r} is set by the TabularModel argument {arg}=, not in params"
                raise InvalidParameterError(msg, field="params", details={"parameter": name})
        unknown = sorted(k for k in user if k not in _XGB_PARAMS)
        if unknown:
            hints = "".join(_close(str(k), sorted(_XGB_PARAMS)) for k in unknown[:3])
            msg = (
                f"unknown xgboost parameter(s): {', '.join(repr(k) for k in unknown)}{hints}; "
                f"accepted: {', '.join(sorted(_XGB_PARAMS))}"
            )
            raise InvalidParameterError(
                msg,
                field="params", details={"unknown": unknown, "accepted": sorted(_XGB_PARAMS)})
        if "n_estimators" in user and "num_boost_round" in user:
            msg = "give n_estimators or num_boost_round (the same thing), not both"
            raise InvalidParameterError(msg, field="params")
        allowed = _XGB_OBJECTIVES[self.kind]
        if "objective" in user and user["objective"] not in allowed:
            msg = (
                f"xgboost objective for {self.kind} must be one of {', '.join(allowed)} (objectives whose margin is "
                f"the prediction / the log-odds), got {user['objective']!r}"
            )
            raise InvalidParameterError(msg, field="params")
        if "num_boost_round" in user:
            user["n_estimators"] = user.pop("num_boost_round")
        params = {**DEFAULT_PARAMS["xgboost"], **user}
        rounds = params.pop("n_estimators")
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            msg = f"n_estimators must be an integer >= 1, got {rounds!r}"
            raise InvalidParameterError(msg, field="params")
        objective = allowed[0]
        base = {"objective": objective, "tree_method": "hist", "seed": self.seed, "verbosity": 1,
                "max_cat_to_onehot": 1}
        return {**base, **params}, rounds

    def _dmatrix(self, x: np.ndarray, y: np.ndarray | None = None) -> xgb.DMatrix:
        import xgboost as xgb

        types = ["c" if n in self.categories_ else "q" for n in self.feature_names_]
        return xgb.DMatrix(x, label=y, missing=np.nan, feature_names=[f"f{i}" for i in range(x.shape[1])],
                           feature_types=types, enable_categorical=True)

    def _fit_xgboost(self, x: np.ndarray, y: np.ndarray) -> None:
        import xgboost as xgb

        params, rounds = self._xgb_params()
        device = resolve_device(self.device)
        params["device"] = device
        if self.n_jobs is not None:
            params["nthread"] = self.n_jobs
        try:
            self._booster_ = xgb.train(params, self._dmatrix(x, y), num_boost_round=rounds)
        except xgb.core.XGBoostError as exc:
            msg = f"xgboost rejected the parameters {params}: {exc}"
            raise InvalidParameterError(msg, field="params") from exc
        self.device_ = device

    def _fit_hgb(self, x: np.ndarray, y: np.ndarray) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        cls = HistGradientBoostingRegressor if self.kind == "regression" else HistGradientBoostingClassifier
        mask = np.array([n in self.categories_ for n in self.feature_names_])
        kwargs = {**DEFAULT_PARAMS["hist_gradient_boosting"], **self.params}
        try:
            model = cls(categorical_features=mask if mask.any() else None, random_state=self.seed, **kwargs)
        except TypeError as exc:
            msg = f"{cls.__name__} rejected params {self.params}: {exc}"
            raise InvalidParameterError(msg, field="params") from exc
        self._sk_ = _sk_fit(model, x, y, self.params)
        rng = np.random.default_rng(self.seed)
        self._background_ = x[rng.choice(x.shape[0], size=min(100, x.shape[0]), replace=False)]

    def _fit_linear(self, x: np.ndarray, y: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression, Ridge

        mean: dict[str, float] = {}
        scale: dict[str, float] = {}
        for j, name in enumerate(self.feature_names_):
            if name in self.categories_:
                continue
            col = x[:, j]
            ok = col[~np.isnan(col)]
            mean[name] = float(ok.mean()) if ok.size else 0.0
            sd = float(ok.std()) if ok.size else 0.0
            scale[name] = sd if sd > 0 and math.isfinite(sd) else 1.0
        self._linear_: _LinearState = {"mean": mean, "scale": scale}
        z = self._linear_design(x)
        if self.kind == "regression":
            kwargs = {"alpha": 1.0, **self.params}
            cls: Any = Ridge
        else:
            kwargs = {"C": 1.0, "max_iter": 1000, **self.params}
            cls = LogisticRegression
        try:
            model = cls(**kwargs)
        except TypeError as exc:
            msg = f"{cls.__name__} rejected params {self.params}: {exc}"
            raise InvalidParameterError(msg, field="params") from exc
        _sk_fit(model, z, y, self.params)
        self._linear_["coef"] = np.asarray(model.coef_, dtype=np.float64).reshape(-1).tolist()
        self._linear_["intercept"] = float(np.asarray(model.intercept_).reshape(-1)[0])
        self._linear_["design_mean"] = z.mean(axis=0).tolist()

    # ------------------------------------------------------------------ predict

    def _margin(self, x: np.ndarray) -> np.ndarray:
        """Raw model output: the prediction (regression) or the log-odds (classification)."""
        if x.shape[0] == 0:  # every algorithm answers an empty table with an empty prediction
            return np.empty(0, dtype=np.float64)
        if self.algorithm == "xgboost":
            return self._booster_.predict(self._dmatrix(x), output_margin=True).astype(np.float64)
        if self.algorithm == "linear":
            lin = self._linear_
            return self._linear_design(x) @ np.asarray(lin["coef"]) + lin["intercept"]
        if self.kind == "regression":
            return self._sk_.predict(x).astype(np.float64)
        return np.asarray(self._sk_.decision_function(x), dtype=np.float64).reshape(-1)

    def predict(self, table: TableLike) -> pl.DataFrame:
        """Predict each row of a table.

        Parameters
        ----------
        table : pl.DataFrame or pandas.DataFrame
            Must hold every feature column the model was trained on (extra columns, the
            target included, are ignored).

        Returns
        -------
        pl.DataFrame
            One row per input row, in order (an empty table gives an empty frame with the same
            columns, for every algorithm). Regression: ``prediction`` (Float64, target
            units). Classification: ``prediction`` (the predicted class, the target's type:
            ``classes_[1]`` when ``probability >= 0.5``) and ``probability`` (Float64,
            probability of ``classes_[1]``).

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        InvalidInputError
            If feature columns are missing (all named), have another type than in training,
            hold inf/-inf (column and rows named), or (``handle_unknown="error"``) hold
            categories not seen in training.
        """
        self._check_fitted("predict")
        x = self._encode(_to_polars(table))
        with self._threads():
            margin = self._margin(x)
        if self.kind == "regression":
            return pl.DataFrame({"prediction": margin}, schema={"prediction": pl.Float64})
        prob = 1.0 / (1.0 + np.exp(-margin))
        labels = pl.Series("prediction", self.classes_)
        return pl.DataFrame({
            "prediction": labels.gather((prob >= 0.5).astype(np.int64)),
            "probability": pl.Series("probability", prob, dtype=pl.Float64),
        })

    # ------------------------------------------------------------------ explain

    def explain(self, table: TableLike, *, background_size: int = 100) -> Explanation:
        """SHAP values of the model's output for each row of a table.

        Parameters
        ----------
        table : pl.DataFrame or pandas.DataFrame
            Rows to explain (as :meth:`predict`).
        background_size : int, default 100
            Only for ``hist_gradient_boosting`` with categorical features (permutation SHAP):
            training rows used as the background distribution (at most 100 are kept).

        Returns
        -------
        Explanation
            ``values`` (n_rows, n_features) in the output's units, ``output`` the prediction
            (regression) or the margin in log-odds of ``classes_[1]`` (classification), rows
            keyed by ``row`` (position in ``table``); ``data`` holds category codes for
            categorical features (``categories_[name][code]``). See the module docstring for
            the method per algorithm.

        Raises
        ------
        NotFittedError, InvalidInputError
            As :meth:`predict`.
        """
        with self._threads():
            return self._explain(table, background_size=background_size)

    def _explain(self, table: TableLike, *, background_size: int) -> Explanation:
        self._check_fitted("explain")
        x = self._encode(_to_polars(table))
        n = x.shape[0]
        target = "the prediction" if self.kind == "regression" else f"the margin (log-odds of {self.classes_[1]!r})"
        if n == 0:
            f = len(self.feature_names_)
            return Explanation(values=np.zeros((0, f)), base_values=np.zeros(0), feature_names=list(self.feature_names_),
                               data=x, output=np.zeros(0), rows=pl.DataFrame({"row": np.zeros(0, dtype=np.int64)}),
                               method=f"no rows to explain ({self.algorithm}, {target})")
        if self.algorithm == "xgboost":
            contribs = self._booster_.predict(self._dmatrix(x), pred_contribs=True).astype(np.float64)
            values, base = contribs[:, :-1], contribs[:, -1]
            method = f"tree_shap (xgboost pred_contribs, exact) of {target}"
        elif self.algorithm == "linear":
            lin = self._linear_
            z = self._linear_design(x)
            coef = np.asarray(lin["coef"])
            zbar = np.asarray(lin["design_mean"])
            per_col = (z - zbar) * coef
            values = np.zeros((n, len(self.feature_names_)))
            np.add.at(values.T, np.asarray(self._design_groups()), per_col.T)
            base = np.full(n, lin["intercept"] + float(coef @ zbar))
            method = f"exact linear SHAP (interventional, training mean as background) of {target}"
        else:
            values, base, method = self._explain_hgb(x, target, background_size)
        return Explanation(
            values=values, base_values=base, feature_names=list(self.feature_names_), data=x,
            output=self._margin(x), rows=pl.DataFrame({"row": np.arange(n, dtype=np.int64)}), method=method,
            categories={k: dict(enumerate(v)) for k, v in self.categories_.items()} or None,  # codes -> names
        )

    def _explain_hgb(self, x: np.ndarray, target: str, background_size: int) -> tuple[np.ndarray, np.ndarray, str]:
        import shap

        n = x.shape[0]
        if not self.categories_:
            explainer = shap.TreeExplainer(self._sk_)
            values = np.asarray(explainer.shap_values(x, check_additivity=False), dtype=np.float64)
            if values.ndim == 3:  # some shap versions give (n, f, 1) for binary
                values = values[..., -1]
            base = np.full(n, float(np.asarray(explainer.expected_value).reshape(-1)[-1]))
            return values, base, f"tree_shap (shap TreeExplainer, exact) of {target}"
        if isinstance(background_size, bool) or not isinstance(background_size, int) or background_size < 1:
            msg = f"background_size must be an integer >= 1, got {background_size!r}"
            raise InvalidParameterError(msg, field="background_size")
        background = self._background_[:background_size]
        masker = shap.maskers.Independent(background, max_samples=background.shape[0])
        explainer = shap.explainers.Permutation(self._margin, masker, seed=self.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = explainer(x, max_evals=max(2 * x.shape[1] + 1, 10 * x.shape[1]), silent=True)
        values = np.asarray(result.values, dtype=np.float64)
        base = np.asarray(result.base_values, dtype=np.float64).reshape(-1)
        return values, base, (
            f"permutation SHAP (shap PermutationExplainer, sampled, {background.shape[0]}-row training background) "
            f"of {target}; approximate: shap's TreeExplainer mishandles scikit-learn categorical splits"
        )

    # ------------------------------------------------------------------ save / load

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the fitted model into a folder (created if needed), in safe formats only.

        Files: ``metadata.json`` (always) and ``model.ubj`` (xgboost booster, UBJSON; its
        sha256 is recorded in the metadata). Each file is written atomically (temp file +
        rename).

        Returns
        -------
        pathlib.Path
            The folder.

        Raises
        ------
        NotFittedError
            Before :meth:`fit`.
        CapabilityError
            For ``hist_gradient_boosting``: scikit-learn offers only pickle, which cannot be
            loaded safely; use ``xgboost`` or ``linear`` to keep a model.
        """
        self._check_fitted("save")
        if self.algorithm == "hist_gradient_boosting":
            msg = (
                "hist_gradient_boosting models cannot be saved safely (scikit-learn offers only pickle, which the "
                "project never uses); use algorithm='xgboost' or 'linear' to keep a model"
            )
            raise CapabilityError(msg, field="algorithm")
        folder = Path(path)
        from forecasting.artifacts import check_output

        check_output(folder)  # a folder of other files is never written into
        folder.mkdir(parents=True, exist_ok=True)
        meta = self._metadata()
        if self.algorithm == "xgboost":
            raw = bytes(self._booster_.save_raw(raw_format="ubj"))
            _atomic_write(folder / _XGB_FILE, raw)
            meta["artifact"] = {"file": _XGB_FILE, "sha256": hashlib.sha256(raw).hexdigest()}
        else:
            meta["linear"] = self._linear_
        _atomic_write(folder / _META_FILE, json.dumps(meta, indent=2).encode("utf-8"))
        return folder

    def _metadata(self) -> dict[str, Any]:
        """What describes a fitted model besides its weights (JSON-ready)."""
        return {
            "format": "forecasting.tabular", "format_version": _FORMAT_VERSION, **self.get_params(),
            "target": self.target_, "features": self.feature_names_, "categories": self.categories_,
            "classes": self.classes_, "device_trained": self.device_, "versions": _versions(self.algorithm),
        }

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "auto") -> TabularModel:
        """Load a model written by :meth:`save`; predictions equal the saved model's.

        Parameters
        ----------
        path : path
            The folder given to :meth:`save`.
        device : str, default "auto"
            XGBoost device to predict on (:func:`resolve_device`); a GPU-trained model
            loads and predicts on a CPU.

        Raises
        ------
        InvalidInputError
            ``model folder '...' is damaged or incomplete: <reason>`` for any folder that
            cannot be loaded as saved: a file missing or unreadable, metadata that is not this
            format or not of the expected shape (keys, types, lengths consistent with the
            features and categories), a booster that cannot be read or does not match the
            metadata's features.
        ArtifactIntegrityError
            The booster's bytes differ from the sha256 recorded in ``metadata.json``
            (:func:`forecasting.artifacts.verify_bytes`), naming the file.
        InvalidParameterError
            If ``device`` is invalid.
        """
        if device != "auto":
            resolve_device(device)  # the caller's argument: refused as such, before reading the folder
        folder = Path(path)
        try:
            return cls._load_folder(folder, device)
        except ArtifactIntegrityError:
            raise
        except _Damaged as exc:
            reason = str(exc)
            cause: BaseException = exc
        except Exception as exc:  # noqa: BLE001 - any failure reading a folder means it is damaged
            reason = f"{type(exc).__name__}: {exc}"
            cause = exc
        msg = f"model folder '{folder}' is damaged or incomplete: {reason}"
        raise InvalidInputError(msg, field="path") from cause

    @classmethod
    def _load_folder(cls, folder: Path, device: str) -> TabularModel:
        meta_path = folder / _META_FILE
        if not meta_path.is_file():
            msg = f"{_META_FILE} is missing (no saved tabular model there)"
            raise _Damaged(msg)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            msg = f"{_META_FILE} is not valid JSON: {exc}"
            raise _Damaged(msg) from exc
        _check_meta(meta)
        model = cls(kind=meta["kind"], algorithm=meta["algorithm"], params=meta["params"], device=device,
                    seed=meta["seed"], handle_unknown=meta["handle_unknown"], n_jobs=meta.get("n_jobs"))
        try:
            model._validate_params()
        except InvalidParameterError as exc:
            msg = f"{_META_FILE}: {exc}"
            raise _Damaged(msg) from exc
        model.feature_names_ = list(meta["features"])
        model.categories_ = {k: list(v) for k, v in meta["categories"].items()}
        model.target_ = meta["target"]
        model.classes_ = list(meta["classes"])
        if model.algorithm == "xgboost":
            import xgboost as xgb

            art = meta["artifact"]
            booster_path = folder / art["file"]
            if not booster_path.is_file():
                msg = f"the booster file {art['file']} is missing"
                raise _Damaged(msg)
            raw = booster_path.read_bytes()
            artifacts.verify_bytes(raw, art["sha256"], where=f"model folder '{folder}'", folder=folder,
                                   file=art["file"])  # ArtifactIntegrityError, as every sealed artifact
            booster = xgb.Booster()
            try:
                booster.load_model(bytearray(raw))
            except xgb.core.XGBoostError as exc:
                msg = f"xgboost cannot read the booster {art['file']}: {str(exc)[:200]}"
                raise _Damaged(msg) from exc
            n = len(model.feature_names_)
            if booster.num_features() != n:
                msg = f"the booster has {booster.num_features()} features but {_META_FILE} lists {n}"
                raise _Damaged(msg)
            types = ["c" if f in model.categories_ else "q" for f in model.feature_names_]
            if booster.feature_types is not None and list(booster.feature_types) != types:
                msg = (
                    f"the booster's feature types {list(booster.feature_types)} do not match the "
                    f"categorical features in {_META_FILE} ({types})"
                )
                raise _Damaged(msg)
            model.device_ = resolve_device(device)
            booster.set_param({"device": model.device_})
            if model.n_jobs is not None:
                booster.set_param({"nthread": model.n_jobs})
            model._booster_ = booster
        else:
            model._linear_ = meta["linear"]
            model.device_ = "cpu"
        return model


class _Damaged(Exception):
    """Why a saved model folder cannot be loaded (wrapped into InvalidInputError by ``load``)."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_meta(meta: Any) -> None:
    """Check the shape of a saved model's metadata; raise :class:`_Damaged` naming the first problem."""
    if not isinstance(meta, dict):
        msg = f"{_META_FILE} is not a JSON object"
        raise _Damaged(msg)
    if meta.get("format") != "forecasting.tabular" or meta.get("format_version") != _FORMAT_VERSION:
        msg = (
            f"{_META_FILE} is not a forecasting.tabular model of format version {_FORMAT_VERSION} "
            f"(format {meta.get('format')!r}, version {meta.get('format_version')!r})"
        )
        raise _Damaged(msg)
    required = ["kind", "algorithm", "params", "seed", "handle_unknown", "target", "features", "categories",
                "classes"]
    algorithm = meta.get("algorithm")
    if meta.get("kind") not in KINDS:
        msg = f"'kind' must be one of {', '.join(KINDS)}, got {meta.get('kind')!r}"
        raise _Damaged(msg)
    if algorithm not in ALGORITHMS:
        msg = f"'algorithm' must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}"
        raise _Damaged(msg)
    if algorithm == "xgboost":
        required.append("artifact")
    elif algorithm == "linear":
        required.append("linear")
    else:
        msg = f"algorithm {algorithm!r} has no safe saved form"
        raise _Damaged(msg)
    absent = [k for k in required if k not in meta]
    if absent:
        msg = f"{_META_FILE} lacks key(s): {', '.join(absent)}"
        raise _Damaged(msg)
    if not isinstance(meta["params"], dict):
        msg = "'params' must be an object"
        raise _Damaged(msg)
    _check_meta_columns(meta)
    if algorithm == "xgboost":
        _check_meta_artifact(meta["artifact"])
    else:
        _check_meta_linear(meta["linear"], meta["features"], meta["categories"])


def _check_meta_columns(meta: dict[str, Any]) -> None:
    """The target, features, categories and classes of a saved model's metadata."""
    target, features, categories = meta["target"], meta["features"], meta["categories"]
    if not isinstance(target, str):
        msg = "'target' must be a string"
        raise _Damaged(msg)
    if (not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features)
            or len(set(features)) != len(features) or target in features):
        msg = "'features' must be a non-empty list of distinct column names, without the target"
        raise _Damaged(msg)
    if not isinstance(categories, dict) or not set(categories) <= set(features):
        msg = "'categories' must be an object keyed by feature names"
        raise _Damaged(msg)
    for name, cats in categories.items():
        if (not isinstance(cats, list) or not all(isinstance(c, str) for c in cats)
                or len(set(cats)) != len(cats)):
            msg = f"'categories'[{name!r}] must be a list of distinct strings"
            raise _Damaged(msg)
    classes = meta["classes"]
    want = 2 if meta["kind"] == "classification" else 0
    if (not isinstance(classes, list) or len(classes) != want
            or not all(isinstance(c, (str, int, float, bool)) for c in classes) or len(set(classes)) != want):
        msg = f"'classes' must list {want} distinct values for kind {meta['kind']!r}"
        raise _Damaged(msg)


def _check_meta_artifact(art: Any) -> None:
    """The booster file entry of a saved XGBoost model: a plain file name in the folder and its digest."""
    if (not isinstance(art, dict) or not isinstance(art.get("file"), str) or not isinstance(art.get("sha256"), str)
            or art["file"] in ("", ".", "..") or Path(art["file"]).name != art["file"] or "\\" in art["file"]):
        msg = "'artifact' must be an object with a plain 'file' name and its 'sha256'"
        raise _Damaged(msg)


def _check_meta_linear(lin: Any, features: list[str], categories: dict[str, list[str]]) -> None:
    """The fitted linear model of a saved model's metadata (:class:`_LinearState`)."""
    if not isinstance(lin, dict):
        msg = "'linear' must be an object"
        raise _Damaged(msg)
    absent = [k for k in ("mean", "scale", "coef", "intercept", "design_mean") if k not in lin]
    if absent:
        msg = f"'linear' lacks key(s): {', '.join(absent)}"
        raise _Damaged(msg)
    numeric = {f for f in features if f not in categories}
    for key in ("mean", "scale"):
        part = lin[key]
        if not isinstance(part, dict) or set(part) != numeric or not all(_is_number(v) for v in part.values()):
            msg = f"'linear'[{key!r}] must map each numeric feature to a finite number"
            raise _Damaged(msg)
    if any(v <= 0 for v in lin["scale"].values()):
        msg = "'linear'['scale'] must be positive"
        raise _Damaged(msg)
    width = sum(len(categories[f]) if f in categories else 1 for f in features)
    for key in ("coef", "design_mean"):
        part = lin[key]
        if not isinstance(part, list) or len(part) != width or not all(_is_number(v) for v in part):
            msg = f"'linear'[{key!r}] must be a list of {width} finite numbers (one per design column)"
            raise _Damaged(msg)
    if not _is_number(lin["intercept"]):
        msg = "'linear'['intercept'] must be a finite number"
        raise _Damaged(msg)


def _check_features(frame: pl.DataFrame, target: str, features: Sequence[str] | None) -> list[str]:
    """The feature columns to fit on (``features``, default every column but ``target``), checked:
    present, not the target, at least one, at least 2 rows, none entirely missing, each numeric,
    boolean, text or categorical. Raises InvalidInputError naming the columns."""
    if features is None:
        names = [c for c in frame.columns if c != target]
    else:
        names = list(features)
        absent = [c for c in names if c not in frame.columns]
        if absent:
            hints = "".join(_close(c, frame.columns) for c in absent[:3])
            msg = f"feature column(s) not in the table: {', '.join(absent)}{hints}"
            raise InvalidInputError(msg, field="features", details={"missing_columns": absent})
        if target in names:
            msg = f"target {target!r} is also listed as a feature"
            raise InvalidInputError(msg, field="features")
    if not names:
        msg = "no feature columns: the table has only the target"
        raise InvalidInputError(msg, field="features")
    if frame.height < 2:
        msg = f"need at least 2 rows to fit, got {frame.height}"
        raise InvalidInputError(msg, field="data")
    empty = [c for c in names if _all_missing(frame[c])]
    if empty:
        msg = (
            f"feature column(s) entirely missing (every value null/NaN) in the {frame.height} training rows: "
            f"{', '.join(repr(c) for c in empty)}; a model cannot learn from them: drop them (features=) "
            "or fill them"
        )
        raise InvalidInputError(msg, field="features", details={"columns": empty})
    bad = [(c, frame.schema[c]) for c in names
           if not (_is_numeric(frame.schema[c]) or _is_categorical(frame.schema[c]))]
    if bad:
        raise InvalidInputError(
            "feature columns must be numeric, boolean, text or categorical; unsupported: "
            + ", ".join(f"{c!r} ({d})" for c, d in bad)
            + ". Derive numeric features from them (e.g. hour, weekday) or leave them out with features=",
            field="features", details={"columns": [c for c, _ in bad]},
        )
    return names


def _sk_fit(model: Any, x: np.ndarray, y: np.ndarray, params: Mapping[str, Any]) -> Any:
    """``model.fit(x, y)``, turning scikit-learn's parameter-value errors into InvalidParameterError."""
    from sklearn.utils._param_validation import InvalidParameterError as SkInvalidParameterError

    try:
        return model.fit(x, y)
    except SkInvalidParameterError as exc:
        msg = f"{type(model).__name__} rejected params {dict(params)}: {exc}"
        raise InvalidParameterError(msg, field="params") from exc


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _versions(algorithm: str) -> dict[str, str]:
    import sklearn

    out = {"scikit-learn": sklearn.__version__, "numpy": np.__version__}
    if algorithm == "xgboost":
        import xgboost

        out["xgboost"] = xgboost.__version__
    return out


# --------------------------------------------------------------------------- cross-validation

ModelSpec = TabularModel | Mapping[str, Any] | Callable[[], TabularModel]


def _make(spec: ModelSpec) -> TabularModel:
    if isinstance(spec, TabularModel):
        return TabularModel(**spec.get_params())
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"kind", "algorithm", "params", "device", "seed", "handle_unknown", "n_jobs"}
        if unknown:
            msg = f"unknown model spec keys: {', '.join(sorted(unknown))}"
            raise InvalidParameterError(msg, field="model")
        return TabularModel(**spec)
    if callable(spec):
        model = spec()
        if not isinstance(model, TabularModel):
            msg = f"the model factory returned {type(model).__name__}, not a TabularModel"
            raise InvalidParameterError(msg, field="model")
        return model
    msg = f"model must be a TabularModel, a spec dict or a factory, got {type(spec).__name__}"
    raise InvalidParameterError(msg, field="model")


def cross_validate(
    model: ModelSpec,
    table: TableLike,
    target: str,
    *,
    k: int = 5,
    seed: int = 0,
    features: Sequence[str] | None = None,
) -> pl.DataFrame:
    """k-fold cross-validation of a tabular model.

    Folds are scikit-learn's ``KFold(k, shuffle=True, random_state=seed)`` for regression and
    ``StratifiedKFold`` (same arguments) for classification. A fresh model is fitted per fold.

    Parameters
    ----------
    model : TabularModel, dict or callable
        An (unfitted or fitted) model whose parameters are copied, a spec
        ``{"kind", "algorithm", "params", ...}``, or a factory returning a new TabularModel.
    table, target, features
        As :meth:`TabularModel.fit`.
    k : int, default 5
        Number of folds, 2 <= k <= number of rows.
    seed : int, default 0
        Shuffling seed.

    Returns
    -------
    pl.DataFrame
        One row per fold: ``fold`` (1..k), ``n_train``, ``n_test``, then ``rmse``, ``mae``,
        ``r2`` (regression, target units) or ``accuracy``, ``log_loss``, ``roc_auc``
        (classification; probabilities of ``classes_[1]``), and ``fit_seconds``.

    Raises
    ------
    InvalidParameterError
        If ``k`` is out of range or the model spec is invalid.
    InvalidInputError
        As :meth:`TabularModel.fit` (checked once, before splitting).
    """
    from sklearn.metrics import log_loss, mean_absolute_error, r2_score, roc_auc_score
    from sklearn.model_selection import KFold, StratifiedKFold

    frame = _to_polars(table)
    template = _make(model)
    template._validate_params()
    y_series = _check_target(frame, target)
    if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= frame.height:
        msg = f"k must be an integer in [2, {frame.height}] (the number of rows), got {k!r}"
        raise InvalidParameterError(msg, field="k")
    if template.kind == "classification":
        splitter: Any = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        labels = y_series.cast(pl.Utf8).to_numpy()
        splits = splitter.split(np.zeros(frame.height), labels)
    else:
        splits = KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(frame.height))
    records = []
    for fold, (train_idx, test_idx) in enumerate(splits, start=1):
        fold_model = TabularModel(**template.get_params())
        train, test = frame[train_idx], frame[test_idx]
        t0 = time.perf_counter()
        fold_model.fit(train, target, features=features)
        elapsed = time.perf_counter() - t0
        pred = fold_model.predict(test)
        rec: dict[str, Any] = {"fold": fold, "n_train": len(train_idx), "n_test": len(test_idx)}
        if fold_model.kind == "regression":
            y = test[target].cast(pl.Float64).to_numpy()
            p = pred["prediction"].to_numpy()
            rec |= {"rmse": float(np.sqrt(np.mean((y - p) ** 2))), "mae": float(mean_absolute_error(y, p)),
                    "r2": float(r2_score(y, p))}
        else:
            y = (test[target] == fold_model.classes_[1]).to_numpy().astype(np.int64)
            prob = pred["probability"].to_numpy()
            rec |= {"accuracy": float(np.mean((prob >= 0.5) == y)),
                    "log_loss": float(log_loss(y, prob, labels=[0, 1])),
                    "roc_auc": float(roc_auc_score(y, prob)) if 0 < y.sum() < len(y) else float("nan")}
        rec["fit_seconds"] = elapsed
        records.append(rec)
    return pl.DataFrame(records)
