"""The one shape of a model explanation, shared by every model family.

:class:`Explanation` holds SHAP values (Shapley additive explanations; Lundberg & Lee,
"A Unified Approach to Interpreting Model Predictions", NeurIPS 2017) or, for families
that have no SHAP, a clearly labelled substitute (``method`` says which). For trees the
values are exact TreeSHAP (Lundberg et al., "From local explanations to global
understanding with explainable AI for trees", Nature Machine Intelligence 2, 2020).

Additivity (``base_values + values.sum(axis=1) == output``) is measured and reported
(:attr:`Explanation.additivity_error`, and relative to the largest contribution,
:attr:`Explanation.additivity_error_relative`), never assumed.

Global forecasting models explain every forecast from **one base value per model** (the same
for every row): what is specific to a series (its level, the anchor a differenced target is
added back to, its scale) is not hidden in a per-row base value but reported as named
*series terms* (``kinds == "series"``) beside the feature contributions, in units of ``y``
(:func:`rebase` builds them; the issue that asked for it: "Why is July 675?" was answered
"658.5 + 16"). Feature values are reported in units of ``y`` (``data``: the lagged value
itself, the rolling mean of ``y``) with the model's transformed value beside them
(``data_transformed``), and categories by name (``categories``).

The values are computed by the models (XGBoost forecaster and tabular XGBoost: exact TreeSHAP
through XGBoost's own ``pred_contribs``, on the GPU when the booster is on one; networks:
integrated gradients); :func:`forecasting.models.base.explain_forecast` and
:func:`~forecasting.models.base.global_importance` ask a fitted model for them, or raise the
``CapabilityError`` that says why it has none (statistical models are explained by their
decomposition, in the reports).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl

from forecasting.errors import InvalidInputError, InvalidParameterError

__all__ = ["Explanation", "MONTHS", "WEEKDAYS", "calendar_categories", "rebase"]

#: Calendar features' categories by name (codes as the feature pipeline computes them).
MONTHS = {i + 1: m for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                          "Dec"])}
WEEKDAYS = {i: d for i, d in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])}
_CALENDAR = {"month": MONTHS, "dayofweek": WEEKDAYS}
#: a calendar feature (trees) or a network's calendar input over its window (``month_lag_3``, ``month_step_2``)
_CALENDAR_NAME = re.compile(r"(month|dayofweek)(?:_(?:lag|step)_\d+)?")


@dataclass(frozen=True, eq=False)
class Explanation:
    """SHAP values of a set of predictions, one row per prediction explained.

    Attributes
    ----------
    values : ndarray of shape (n_rows, n_features), float
        SHAP value of each feature for each row, in the units of ``output`` (the target's
        units for regression; log-odds when a classifier's margin is explained).
    base_values : ndarray of shape (n_rows,), float
        The expected output the values are measured from (TreeSHAP: the training data's
        mean output as the trees see it; linear SHAP: the output at the background mean).
    feature_names : list of str, length n_features
        Feature of each column of ``values`` and ``data``.
    data : ndarray of shape (n_rows, n_features), float
        The feature values the model saw; NaN = missing. Categorical features hold their
        integer category code (the model's metadata maps codes to labels).
    output : ndarray of shape (n_rows,), float
        The model output being explained (the prediction, or the margin / log-odds).
    rows : pl.DataFrame with n_rows rows
        Which prediction each row explains: ``unique_id, ds, step`` for forecasts, a
        ``row`` index (position in the input table) for tables.
    method : str
        How the values were computed, e.g. ``"tree_shap (xgboost pred_contribs)"``,
        ``"exact linear SHAP"``; says when the margin (log-odds) is explained and when the
        values are an approximation (sampling) rather than exact.
    is_forecast_value : ndarray of shape (n_rows, n_features), bool, optional
        True where the feature value came from the model's own earlier forecast (recursive
        forecasting: a lag beyond the last observation); None for tables.
    kinds : list of str, length n_features, optional
        ``"feature"`` (a model input) or ``"series"`` (a series term: the series' level, anchor
        or scale, see :func:`rebase`); None = all features.
    data_transformed : ndarray of shape (n_rows, n_features), float, optional
        The value the model itself saw where it differs from ``data`` (target-derived features
        of a scaled or differenced target); NaN where ``data`` is what the model saw.
    categories : dict of str to dict of int to str, optional
        Category names of categorical features by code (``month``: 7 -> "Jul").
    weights : dict of str to pl.DataFrame, optional
        What the model attends to, beside the attributions, where it has it: TFT's
        variable-selection weights (``past``, ``future``, ``static``; Lim et al. 2021). Not
        attributions: they do not add up to the forecast.

    Raises
    ------
    InvalidInputError
        On construction, if the shapes disagree (the message gives them).

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> e = Explanation(values=np.array([[1.0, -0.5]]), base_values=np.array([2.0]),
    ...                 feature_names=["a", "b"], data=np.array([[3.0, np.nan]]),
    ...                 output=np.array([2.5]), rows=pl.DataFrame({"row": [0]}), method="example")
    >>> e.additivity_error
    0.0
    >>> e.top(1)["feature"].to_list()
    ['a']
    """

    values: np.ndarray
    base_values: np.ndarray
    feature_names: list[str]
    data: np.ndarray
    output: np.ndarray
    rows: pl.DataFrame
    method: str
    is_forecast_value: np.ndarray | None = None
    kinds: list[str] | None = None
    data_transformed: np.ndarray | None = None
    categories: dict[str, dict[int, str]] | None = None
    weights: dict[str, pl.DataFrame] | None = None

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=np.float64)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "base_values", np.asarray(self.base_values, dtype=np.float64).reshape(-1))
        object.__setattr__(self, "data", np.asarray(self.data, dtype=np.float64))
        object.__setattr__(self, "output", np.asarray(self.output, dtype=np.float64).reshape(-1))
        object.__setattr__(self, "feature_names", [str(f) for f in self.feature_names])
        if values.ndim != 2:
            msg = f"Explanation values must be 2-D (n_rows, n_features), got shape {values.shape}"
            raise InvalidInputError(msg)
        n, f = values.shape
        problems = []
        if len(self.feature_names) != f:
            problems.append(f"feature_names has {len(self.feature_names)} names for {f} features")
        if self.data.shape != (n, f):
            problems.append(f"data has shape {self.data.shape}, expected {(n, f)}")
        if self.base_values.shape != (n,):
            problems.append(f"base_values has shape {self.base_values.shape}, expected {(n,)}")
        if self.output.shape != (n,):
            problems.append(f"output has shape {self.output.shape}, expected {(n,)}")
        if self.rows.height != n:
            problems.append(f"rows has {self.rows.height} rows, expected {n}")
        if self.is_forecast_value is not None:
            flags = np.asarray(self.is_forecast_value, dtype=bool)
            object.__setattr__(self, "is_forecast_value", flags)
            if flags.shape != (n, f):
                problems.append(f"is_forecast_value has shape {flags.shape}, expected {(n, f)}")
        if self.kinds is not None:
            object.__setattr__(self, "kinds", [str(k) for k in self.kinds])
            if len(self.kinds) != f or not set(self.kinds) <= {"feature", "series"}:
                problems.append(f"kinds must be {f} of 'feature'/'series', got {self.kinds}")
        if self.data_transformed is not None:
            dt = np.asarray(self.data_transformed, dtype=np.float64)
            object.__setattr__(self, "data_transformed", dt)
            if dt.shape != (n, f):
                problems.append(f"data_transformed has shape {dt.shape}, expected {(n, f)}")
        if problems:
            raise InvalidInputError("inconsistent Explanation: " + "; ".join(problems))

    # ------------------------------------------------------------------ additivity

    @property
    def n_rows(self) -> int:
        """Number of predictions explained."""
        return int(self.values.shape[0])

    @property
    def additivity_residual(self) -> np.ndarray:
        """``base_values + values.sum(axis=1) - output``, shape (n_rows,), in output units."""
        return self.base_values + self.values.sum(axis=1) - self.output

    @property
    def additivity_error(self) -> float:
        """Largest ``|base_values + sum(values) - output|`` over rows, in output units (0.0 if no rows)."""
        if self.n_rows == 0:
            return 0.0
        return float(np.max(np.abs(self.additivity_residual)))

    @property
    def additivity_error_relative(self) -> float:
        """:attr:`additivity_error` divided by the largest ``|value|`` (the contributions' scale; floored at 1e-12).

        Measured against the contributions, not the output: an error of 18% of the largest
        contribution is 0.18 here, where dividing by a large output would hide it (issue 14).
        """
        if self.n_rows == 0:
            return 0.0
        scale = max(float(np.max(np.abs(self.values))) if self.values.size else 0.0, 1e-12)
        return self.additivity_error / scale

    @property
    def feature_kinds(self) -> list[str]:
        """:attr:`kinds`, or ``"feature"`` for every column when unset."""
        return list(self.kinds) if self.kinds is not None else ["feature"] * len(self.feature_names)

    def label(self, feature: str, value: float) -> str | None:
        """The category name of ``value`` for a categorical ``feature`` (None when not categorical or unknown)."""
        cats = (self.categories or {}).get(feature)
        if cats is None or not math.isfinite(value):
            return None
        return cats.get(round(value))

    def to_shap(self) -> Any:
        """This explanation as a ``shap.Explanation``, for shap's own plots (``shap.plots.waterfall(e.to_shap()[6])``).

        ``values``, ``base_values``, ``data`` (units of ``y``) and ``feature_names`` as here;
        ``display_data`` holds category names where a feature is categorical. Requires the
        ``shap`` package (Lundberg & Lee 2017).
        """
        import shap

        display = None
        if self.categories:
            display = self.data.astype(object)
            for j, name in enumerate(self.feature_names):
                if name in self.categories:
                    display[:, j] = [self.label(name, v) or v for v in self.data[:, j]]
        return shap.Explanation(values=self.values.copy(), base_values=self.base_values.copy(), data=self.data.copy(),
                                display_data=display, feature_names=list(self.feature_names))

    # ------------------------------------------------------------------ views

    def subset(self, mask: np.ndarray) -> Explanation:
        """The explanation of the rows where ``mask`` (bool array of shape (n_rows,)) is True."""
        return Explanation(values=self.values[mask], base_values=self.base_values[mask],
                           feature_names=self.feature_names, data=self.data[mask], output=self.output[mask],
                           rows=self.rows.filter(pl.Series(mask)), method=self.method,
                           is_forecast_value=None if self.is_forecast_value is None else self.is_forecast_value[mask],
                           kinds=self.kinds, categories=self.categories, weights=self.weights,
                           data_transformed=None if self.data_transformed is None else self.data_transformed[mask])

    def to_frame(self) -> pl.DataFrame:
        """Long format: one row per (prediction, feature).

        Returns
        -------
        pl.DataFrame
            The columns of :attr:`rows` (the row keys), then ``feature`` (Utf8), ``value``
            (Float64, units of ``y``, NaN = missing), ``value_label`` (Utf8: the category's name,
            null unless categorical), ``value_transformed`` (Float64: what the model saw, where it
            differs; NaN otherwise), ``kind`` (``feature`` or ``series``), ``shap`` (Float64) and
            ``is_forecast_value`` (Boolean, only when set); predictions in their order, features
            by ``|shap|`` descending within each prediction. ``n_rows * n_features`` rows.
        """
        n, f = self.values.shape
        labels = np.full((n, f), None, dtype=object)
        for j, name in enumerate(self.feature_names):  # only the categorical columns are looked up
            if name in (self.categories or {}):
                labels[:, j] = [self.label(name, float(v)) for v in self.data[:, j]]
        cols: dict[str, Any] = {
            "_i": np.repeat(np.arange(n, dtype=np.int64), f),
            "feature": np.tile(np.asarray(self.feature_names, dtype=object), n).tolist() if n else [],
            "value": self.data.reshape(-1),
            "value_label": labels.reshape(-1).tolist(),
            "value_transformed": (np.full(n * f, np.nan) if self.data_transformed is None
                                  else self.data_transformed.reshape(-1)),
            "kind": self.feature_kinds * n,
            "shap": self.values.reshape(-1),
        }
        if self.is_forecast_value is not None:
            cols["is_forecast_value"] = self.is_forecast_value.reshape(-1)
        long = pl.DataFrame(cols, schema_overrides={"feature": pl.Utf8, "value_label": pl.Utf8, "kind": pl.Utf8})
        keys = self.rows.with_row_index("_i").with_columns(pl.col("_i").cast(pl.Int64))
        long = (
            long.with_columns(pl.col("shap").abs().alias("_abs"))
            .sort(["_i", "_abs"], descending=[False, True], maintain_order=True)
            .join(keys, on="_i", how="left", maintain_order="left")
        )
        return long.select(*self.rows.columns, *[c for c in cols if c != "_i"])

    def top(self, k: int = 5) -> pl.DataFrame:
        """The ``k`` features with the largest ``|shap|`` of each prediction (long format, as :meth:`to_frame`).

        Raises
        ------
        InvalidParameterError
            If ``k`` is not an integer >= 1.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            msg = f"k must be an integer >= 1, got {k!r}"
            raise InvalidParameterError(msg, field="k")
        f = self.values.shape[1]
        frame = self.to_frame()
        rank = np.tile(np.arange(f), self.n_rows)
        return frame.filter(pl.Series(rank < k))

    def global_importance(self) -> pl.DataFrame:
        """Mean ``|shap|`` per feature over the rows explained.

        Returns
        -------
        pl.DataFrame
            ``feature`` (Utf8), ``mean_abs_shap`` (Float64, output units), largest first.
        """
        mean_abs = np.abs(self.values).mean(axis=0) if self.n_rows else np.zeros(len(self.feature_names))
        return pl.DataFrame(
            {"feature": self.feature_names, "mean_abs_shap": mean_abs},
            schema={"feature": pl.Utf8, "mean_abs_shap": pl.Float64},
        ).sort("mean_abs_shap", descending=True, maintain_order=True)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (plain lists and numbers; NaN -> None; datetimes as ISO 8601 strings).

        Keys: ``method``, ``feature_names``, ``kinds``, ``rows`` (list of records), ``values``,
        ``base_values``, ``data``, ``data_transformed`` (or None), ``categories`` (or None),
        ``output``, ``is_forecast_value`` (or None), ``weights`` (or None: part -> records),
        ``additivity_error``, ``additivity_error_relative``.
        """
        return {
            "method": self.method,
            "feature_names": list(self.feature_names),
            "rows": [{k: _json_scalar(v) for k, v in rec.items()} for rec in self.rows.to_dicts()],
            "values": _json_array(self.values),
            "base_values": _json_array(self.base_values),
            "data": _json_array(self.data),
            "output": _json_array(self.output),
            "is_forecast_value": None if self.is_forecast_value is None else self.is_forecast_value.tolist(),
            "kinds": self.feature_kinds,
            "data_transformed": None if self.data_transformed is None else _json_array(self.data_transformed),
            "categories": None if self.categories is None else {
                k: {str(c): lab for c, lab in v.items()} for k, v in self.categories.items()},
            "weights": None if self.weights is None else {
                k: [{c: _json_scalar(v) for c, v in r.items()} for r in f.to_dicts()] for k, f in self.weights.items()},
            "additivity_error": self.additivity_error,
            "additivity_error_relative": self.additivity_error_relative,
        }


def calendar_categories(feature_names: list[str]) -> dict[str, dict[int, str]] | None:
    """Category names of the calendar features among ``feature_names``, or None.

    A tree model's calendar features are named ``month`` and ``dayofweek``; a network's are
    inputs over its window, ``month_lag_<k>`` (``k`` steps before the forecast origin) and
    ``month_step_<j>`` (the ``j``-th forecast step), with the same codes (months 1-12,
    weekdays 0 = Monday, as the feature pipeline computes them).

    Parameters
    ----------
    feature_names : list of str

    Returns
    -------
    dict or None
        ``{feature: {code: name}}`` for each calendar feature found; None when there is none.

    >>> calendar_categories(["lag_1", "month"])["month"][7]
    'Jul'
    >>> calendar_categories(["y_lag_1", "dayofweek_lag_2", "month_step_3"])["dayofweek_lag_2"][0]
    'Mon'
    """
    found = {n: dict(known) for n in feature_names
             if (m := _CALENDAR_NAME.fullmatch(n)) and (known := _CALENDAR.get(m.group(1))) is not None}
    return found or None


def rebase(e: Explanation, base_value: float, terms: list[tuple[str, np.ndarray, np.ndarray]], *,
           last: tuple[str, np.ndarray]) -> Explanation:
    """``e`` explained from one base value, its per-row base values split into named series terms.

    A global model's per-row base value ``b_i`` (TreeSHAP's expected output mapped back to one
    series' units; integrated gradients' baseline forecast) mixes the model's constant with what
    is specific to the series. This writes ``b_i = base_value + sum(terms_i) + last_i`` and
    appends the terms as columns of kind ``"series"`` (largest contributions of their own), so
    the base value is the same for every row and additivity is kept exactly (``last`` takes
    the remainder).

    Parameters
    ----------
    e : Explanation
    base_value : float
        The model's one base value, units of ``y``.
    terms : list of (name, values, data)
        Named terms: contributions (shape (n_rows,), units of ``y``) and the value shown for the
        term (shape (n_rows,): the series' level, the anchor value...).
    last : (name, data)
        The term that takes ``b_i - base_value - sum(terms_i)`` and the value shown for it.

    Returns
    -------
    Explanation
        ``len(terms) + 1`` more columns (after the features), ``base_values`` all ``base_value``.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> e = Explanation(values=np.array([[1.0], [2.0]]), base_values=np.array([10.0, 20.0]), feature_names=["lag_1"],
    ...                 data=np.array([[3.0], [4.0]]), output=np.array([11.0, 22.0]), rows=pl.DataFrame({"row": [0, 1]}),
    ...                 method="example")
    >>> r = rebase(e, 15.0, [("series level", np.array([-4.0, 4.0]), np.array([11.0, 19.0]))],
    ...            last=("series scale", np.array([1.0, 1.0])))
    >>> r.base_values.tolist(), r.values[:, 2].tolist(), r.additivity_error
    ([15.0, 15.0], [-1.0, 1.0], 0.0)
    """
    n = e.n_rows
    cols = [np.asarray(v, dtype=np.float64).reshape(n) for _, v, _ in terms]
    rest = e.base_values - base_value - (np.sum(cols, axis=0) if cols else 0.0)
    names = [t[0] for t in terms] + [last[0]]
    vals = np.column_stack([*cols, rest]) if n else np.zeros((0, len(names)))
    data = np.column_stack([*[np.asarray(d, dtype=np.float64).reshape(n) for _, _, d in terms],
                            np.asarray(last[1], dtype=np.float64).reshape(n)]) if n else np.zeros((0, len(names)))
    dt = None if e.data_transformed is None else np.column_stack([e.data_transformed, np.full(vals.shape, np.nan)])
    flags = None if e.is_forecast_value is None else np.column_stack(
        [e.is_forecast_value, np.zeros(vals.shape, dtype=bool)])
    return Explanation(values=np.column_stack([e.values, vals]), base_values=np.full(n, float(base_value)),
                       feature_names=[*e.feature_names, *names], data=np.column_stack([e.data, data]),
                       output=e.output, rows=e.rows, method=e.method, is_forecast_value=flags,
                       kinds=[*e.feature_kinds, *["series"] * len(names)], data_transformed=dt,
                       categories=e.categories, weights=e.weights)


def _json_scalar(v: Any) -> Any:
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.generic):
        return _json_scalar(v.item())
    return v


def _json_array(a: np.ndarray) -> list[Any]:
    obj = a.astype(object)
    obj[~np.isfinite(a)] = None
    return obj.tolist()
