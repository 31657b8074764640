"""Self-contained HTML reports of a model's forecasts and why it made them.

:func:`build_report` returns one HTML document (inline CSS, plots embedded as
``data:image/png;base64`` images, no scripts, nothing fetched from the network) for a
model and a dataset:

* **Model card**: the model's spec (name and parameters), the data (series, rows,
  frequency, date range), validation metrics from holding out the last ``h`` points of
  each series (sMAPE and MASE, M4 definitions; interval coverage per level) and the
  library versions.
* For models with SHAP explanations (``explain``: ``xgboost``): shap's own plots of
  :meth:`forecasting.explanation.Explanation.to_shap` (``shap.plots.bar``: global
  importance; ``beeswarm``; ``scatter``: dependence plots of the top three features;
  ``waterfall``: selected forecasts from the model's one base value, lag values that
  came from the model's own earlier forecasts named "(from forecast)"), each waterfall
  beside the table of its rows.
* For statistical models: their decomposition (trend / seasonal / remainder), headed
  "Decomposition (not SHAP)": MSTL's own components for ``mstl``, a classical
  moving-average decomposition (R's ``decompose``, the one Naive2 uses) otherwise.
* The forecast plot with its intervals for every selected series.

The page is the Jinja2 template ``report.html.j2`` (autoescaped; no HTML is built here:
each section is passed as data). Plots are drawn on :class:`matplotlib.figure.Figure`
objects with the Agg canvas; shap's plots, which draw on pyplot's current figure, get one
under a lock and it is closed (detached from pyplot) before it is saved. No two texts of a
plot overlap (:func:`text_overlaps`; the report's tests check every plot).

Sources: Lundberg & Lee, NeurIPS 2017 (SHAP); Lundberg et al., Nature Machine
Intelligence 2, 2020 (TreeSHAP, beeswarm and dependence plots); Makridakis, Spiliotis &
Assimakopoulos, IJF 36(1) 2020 (sMAPE, MASE); Bandara, Hyndman & Bergmeir 2021 (MSTL).
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import math
import os
import platform
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from forecasting.data import Panel, validate_h, validate_levels, validate_panel
from forecasting.decomposition import components
from forecasting.errors import CapabilityError, ForecastingError, InvalidInputError, InvalidParameterError
from forecasting.models.base import BaseForecaster, capabilities_of

__all__ = ["SELECTIONS", "WrittenReport", "build_report", "new_figure", "png_base64", "render", "season_length_of", "text_overlaps",
           "write_report"]

#: Rules for picking the forecasts shown in waterfall and forecast plots.
SELECTIONS = ("largest", "smallest", "most_uncertain")

_TOP_FEATURES = 12  # bars in the importance chart / rows in the beeswarm
_WATERFALL_ROWS = 10  # contributions shown one by one; the rest are summed in one row
_BEESWARM_MAX_ROWS = 3000
_IN_Y = ("lag_", "rolling_", "seasonal_rolling_", "expanding_")  # features whose values are in units of y
_PYPLOT = threading.Lock()  # shap's plots draw on pyplot's current figure
_VERSIONS = ("polars", "numpy", "xgboost", "statsforecast", "shap", "matplotlib", "scipy")


@dataclass(frozen=True)
class WrittenReport:
    """What :func:`write_report` wrote.

    Attributes
    ----------
    path : Path
        The HTML file.
    sections : list of (id, title)
        The report's sections, in order.
    notes : list of str
        Things the report could not show, and why (also written in the report).
    """

    path: Path
    sections: list[tuple[str, str]]
    notes: list[str] = field(default_factory=list)


@dataclass
class _Doc:
    title: str
    sections: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # id, title, the template's data
    notes: list[str] = field(default_factory=list)
    n_plots: int = 0
    overlaps: list[tuple[str, str, str]] = field(default_factory=list)  # plot id, text, text

    def plot(self, fig: Any, *, name: str, alt: str, caption: str | None = None) -> dict[str, Any]:
        """The figure for the templates' ``figure`` macro (an embedded PNG with an id and alt text)."""
        self.n_plots += 1
        figure = figure_context(fig, pid=f"plot-{self.n_plots}-{_slug(name)}", alt=alt, caption=caption)
        self.overlaps += [(figure["id"], a, b) for a, b in figure["overlaps"]]
        return figure

    def render(self) -> str:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return render("report.html.j2", title=self.title, subtitle=f"generated {stamp} by forecasting.reports",
                      sections=self.sections, notes=self.notes)


def render(template: str, **context: Any) -> str:
    """Render one of the package's Jinja2 templates (``forecasting/templates``; autoescaped).

    ``base.html.j2`` is the page the documents share (header, navigation, sections, notes);
    ``report.html.j2`` the model report, ``leaderboard.html.j2`` the benchmark leaderboard,
    ``_macros.html.j2`` their figures and tables. Sections are passed as ``(id, title, data)``:
    the report's and the leaderboard's templates draw each section from its data (their block
    ``section_body``); a template that does not override it inserts ``data`` as HTML (the
    hierarchy report's macro output).

    Raises
    ------
    jinja2.UndefinedError
        A template variable missing from ``context`` (``StrictUndefined``).
    """
    return _environment().get_template(template).render(**context)


@functools.cache
def _environment() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(loader=PackageLoader("forecasting", "templates"), autoescape=True, undefined=StrictUndefined,
                       keep_trailing_newline=True, finalize=_escaped)


def _escaped(value: Any) -> Any:
    """Every ``{{ value }}`` escaped with :func:`html.escape` (``'`` as ``&#x27;``), as the reports always were;
    markup (macro output) as it is."""
    from markupsafe import Markup

    return value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))


def figure_context(fig: Any, *, pid: str, alt: str, caption: str | None = None) -> dict[str, Any]:
    """A drawn figure as the templates' ``figure`` macro takes it (``_macros.html.j2``).

    Returns
    -------
    dict
        ``id``, ``alt``, ``caption`` (or None), ``png`` (base64 PNG at 100 dpi, :func:`png_base64`)
        and ``overlaps`` (:func:`text_overlaps`: pairs of overlapping texts, empty when none).
    """
    return {"id": pid, "alt": alt, "caption": caption, "overlaps": text_overlaps(fig), "png": png_base64(fig)}


def text_overlaps(fig: Any, *, tolerance: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of visible texts of a drawn matplotlib figure whose boxes overlap (matplotlib's own extents).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    tolerance : float
        Pixels each box is shrunk by before testing (touching boxes do not count).

    Returns
    -------
    list of (str, str)
        The overlapping texts (empty when no two texts overlap).

    Notes
    -----
    Tick labels of ticks outside their axis' view are not drawn and not tested. A box covers
    the text's inked lines only: blank lines (shap's ``"\nE[f(X)]"`` tick
    labels, pushed down a line) are left out. A text drawn over the end of another to colour
    it (shap's waterfall and bar plots draw ``"622 = lag_12"`` in grey, then ``"lag_12"`` in
    black over its end; the same string drawn twice) is one label, not an overlap: same
    right edge and baseline, and one string ends with the other.
    """
    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    undrawn = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            eps = 1e-9 * max(abs(lo), abs(hi), 1.0)
            for tick in [*axis.get_major_ticks(), *axis.get_minor_ticks()]:
                if not lo - eps <= tick.get_loc() <= hi + eps:
                    undrawn |= {id(tick.label1), id(tick.label2)}
    boxes = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip() or t.get_alpha() == 0 or id(t) in undrawn:
            continue
        bb = t.get_window_extent(renderer)
        if bb.width <= 0 or bb.height <= 0:
            continue
        text = t.get_text()
        lines = text.split("\n")
        inked = [k for k, line in enumerate(lines) if line.strip()]
        step = bb.height / len(lines)  # lines are stacked from the top
        y1 = bb.y1 - step * inked[0]
        y0 = bb.y1 - step * (inked[-1] + 1)
        boxes.append((text, bb.x0 + tolerance, y0 + tolerance, bb.x1 - tolerance, y1 - tolerance))
    out = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            if not (a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]):
                continue
            sa, sb = a[0].strip(), b[0].strip()
            recoloured = (abs(a[3] - b[3]) < 2 and abs(a[2] - b[2]) < 2 and (sa.endswith(sb) or sb.endswith(sa)))
            if not recoloured:
                out.append((a[0], b[0]))
    return out


# ---------------------------------------------------------------------------- public API


def build_report(
    model: Any,
    panel_or_frame: Panel | Any,
    *,
    h: int,
    level: Sequence[float] = (80, 95),
    series: Sequence[str] | None = None,
    select: Sequence[str] = SELECTIONS,
    validation: bool | Mapping[str, float] | pl.DataFrame | None = None,
    title: str | None = None,
    data_name: str | None = None,
    freq: str | int | None = None,
    n_jobs: int = 1,
) -> str:
    """One self-contained HTML report of a model's forecasts on a dataset.

    Parameters
    ----------
    model : forecaster or spec
        A forecaster (fitted or not; an unfitted one is fitted on the data) or a model
        spec (registry name, JSON string, dict or ``ModelSpec``), fitted on the data.
    panel_or_frame : Panel or long-format frame
        ``unique_id, ds, y``: the history forecast from (and fitted on, when the model is
        not fitted yet).
    h : int
        Steps forecast per series (and held out for the validation metrics).
    level : numbers in (0, 100)
        Interval levels, percent.
    series : sequence of str, optional
        Series to show (waterfalls of their first and last steps, forecast plots); when
        given, they replace the ``select`` rules.
    select : subset of ``("largest", "smallest", "most_uncertain")``
        Which forecasts to show: the largest and smallest point forecast over all
        (series, step), and the widest interval relative to its forecast
        (``(hi - lo) / |forecast|`` at the widest level).
    validation : None, False, mapping or frame
        ``None``: hold out the last ``h`` points of each series, refit the model's spec
        and score the forecasts (:func:`forecasting.backtest.cross_validation` with one
        window; sMAPE, MASE and coverage per series, then averaged as in M4).
        ``False``: skip. A mapping (``{"smape": ..., ...}``) or a one-row frame (as
        :func:`forecasting.evaluation.evaluate` returns): shown as given.
    title : str, optional
        Heading; default ``"<model> on <data>"``.
    data_name : str, optional
        The dataset's name in the model card (default ``"data"``).
    freq : str or int, optional
        Frequency of ``panel_or_frame`` when it is a frame (inferred otherwise).
    n_jobs : int
        Worker processes for fitting (-1: all CPUs).

    Returns
    -------
    str
        The HTML document (UTF-8 text).

    Raises
    ------
    InvalidParameterError
        ``h`` or a level out of range; an unknown ``select`` rule.
    InvalidInputError
        A series in ``series`` that is not in the data (naming it).
    UnknownModelError, InsufficientHistoryError, CapabilityError, NotFittedError
        From building, fitting or running the model.
    """
    return _build(model, panel_or_frame, h=h, level=level, series=series, select=select, validation=validation,
                  title=title, data_name=data_name, freq=freq, n_jobs=n_jobs).render()


def write_report(model: Any, panel_or_frame: Panel | Any, path: str | os.PathLike[str], *, h: int,
                 **kwargs: Any) -> WrittenReport:
    """Build the report (arguments as :func:`build_report`) and write it to ``path`` atomically.

    The HTML is written to a temporary file in the target folder and renamed into place,
    so a reader never sees a half-written report.

    Returns
    -------
    WrittenReport
        The path, the sections written and the report's notes.

    Raises
    ------
    As :func:`build_report`; ``OSError`` if the folder cannot be written.
    """
    doc = _build(model, panel_or_frame, h=h, **kwargs)
    text = doc.render()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return WrittenReport(path=target, sections=[(sid, t) for sid, t, _ in doc.sections], notes=list(doc.notes))


# ---------------------------------------------------------------------------- assembly


def _build(model: Any, panel_or_frame: Any, *, h: int, level: Sequence[float] = (80, 95),
           series: Sequence[str] | None = None, select: Sequence[str] = SELECTIONS,
           validation: Any = None, title: str | None = None, data_name: str | None = None,
           freq: str | int | None = None, n_jobs: int = 1) -> _Doc:
    from forecasting.models.registry import ModelSpec, make_model, parse_spec

    h = validate_h(h)
    levels = validate_levels(level)
    rules = _check_select(select)
    if isinstance(model, (str, dict, ModelSpec)):
        spec = parse_spec(model)
        panel = panel_or_frame if isinstance(panel_or_frame, Panel) else validate_panel(panel_or_frame, freq=freq)
        forecaster = make_model(spec, freq=panel.freq, n_jobs=n_jobs)
    else:
        forecaster = model
        spec = None
        if isinstance(panel_or_frame, Panel):
            panel = panel_or_frame
        else:
            pipe = getattr(forecaster, "pipeline_", None)
            panel = validate_panel(panel_or_frame, freq=freq if freq is not None else getattr(pipe, "freq", None))
    asked = list(series) if series is not None else None
    if asked is not None:
        missing = [s for s in asked if s not in panel.lengths]
        if missing:
            msg = (
                f"series {missing[:5]} not in the data ({panel.n_series} series, e.g. "
                f"{panel.ids[:3]})"
            )
            raise InvalidInputError(msg, field="series")
        if not asked:
            msg = "series must name at least one series when given"
            raise InvalidParameterError(msg, field="series")

    fitted_here = not _is_fitted(forecaster)
    if fitted_here:
        forecaster.fit(panel)
    name = getattr(forecaster, "name", type(forecaster).__name__)
    alias = getattr(forecaster, "alias", name)
    doc = _Doc(title=title or f"{name} on {data_name or 'data'}")

    history = None if fitted_here else panel
    fc, levels_used = _forecast(forecaster, h, history, levels, doc)
    fc = fc.sort("unique_id", "ds").with_columns((pl.int_range(pl.len()).over("unique_id") + 1).alias("step"))
    chosen = _choose(fc, alias, levels_used, rules, asked, h, doc)

    season = season_length_of(forecaster, panel)
    spec_dict = _spec_of(forecaster, spec)
    metrics = _validation(spec_dict, panel, h, levels, season, validation, alias, n_jobs, doc)
    doc.sections.append(("model-card", "Model card", _model_card(forecaster, spec_dict, panel, data_name, h,
                                                                 levels_used, season, metrics, fitted_here)))
    if capabilities_of(forecaster).can_explain:
        exp = _shap_sections(doc, forecaster, panel, history, h, chosen)
    else:
        _decomposition_section(doc, forecaster, panel, chosen, season)
        from forecasting.decomposition import forecast_components

        exp = forecast_components(forecaster, panel.series_values(), fc.select("unique_id", "ds", alias), alias,
                                  season)
    _series_section(doc, panel, fc, alias, levels_used, chosen, season, exp, forecaster)
    _forecast_section(doc, panel, fc, alias, levels_used, chosen, h, season)
    return doc


def _check_select(select: Sequence[str]) -> list[str]:
    rules = [select] if isinstance(select, str) else list(select)
    bad = [r for r in rules if r not in SELECTIONS]
    if bad:
        msg = f"select must be a subset of {list(SELECTIONS)}, got {bad}"
        raise InvalidParameterError(msg, field="select")
    return list(dict.fromkeys(rules))


def _is_fitted(model: Any) -> bool:
    return isinstance(model, BaseForecaster) and model.is_fitted


def _forecast(model: Any, h: int, history: Any, levels: tuple[float | int, ...],
              doc: _Doc) -> tuple[pl.DataFrame, tuple[float | int, ...]]:
    if levels and not capabilities_of(model).supports_intervals:
        doc.notes.append(f"model '{model.name}' gives no prediction intervals: forecasts are shown without them")
        levels = ()
    try:
        return model.predict(h, history=history, level=levels), levels
    except CapabilityError as exc:
        if not levels:
            raise
        doc.notes.append(f"no prediction intervals: {exc.message}")
        return model.predict(h, history=history), ()


def season_length_of(model: Any, panel: Panel) -> int:
    """The model's season length (its ``season_length`` parameter, else the frequency's default; the shortest of several)."""
    from forecasting.models.registry import default_season_length

    m = model.get_params().get("season_length") if isinstance(model, BaseForecaster) else None
    if m is None:
        m = default_season_length(panel.freq)
    if isinstance(m, (list, tuple)):
        m = min(m)
    return max(1, int(m))


def _spec_of(model: Any, spec: Any) -> dict[str, Any]:
    if spec is not None:
        import msgspec

        out: dict[str, Any] = msgspec.to_builtins(spec)
        params = dict(out.get("params") or {})
        # the parameters the model was built with (defaults and derived season_length included)
        params.update({k: v for k, v in model.get_params().items() if k not in params})
        # a season derived at fit, for the models that have the parameter (naive's refit would refuse it)
        if "season_length" in params and params["season_length"] is None and \
                getattr(model, "season_length", None) is not None:
            params["season_length"] = model.season_length
        out["params"] = params
        return out
    params = dict(model.get_params()) if hasattr(model, "get_params") else {}
    out = {"name": getattr(model, "name", type(model).__name__), "params": params}
    fb = getattr(model, "fallback", None)
    if fb is not None and getattr(fb, "name", None):
        out["fallback"] = fb.name
    return out


def _choose(fc: pl.DataFrame, alias: str, levels: tuple[float | int, ...], rules: list[str],
            asked: list[str] | None, h: int, doc: _Doc) -> list[dict[str, Any]]:
    """Selected forecasts: ``[{unique_id, step, ds, value, why: [...]}]`` (deduplicated, in rule order)."""
    picks: dict[tuple[str, int], dict[str, Any]] = {}

    def add(row: dict[str, Any], why: str) -> None:
        key = (row["unique_id"], int(row["step"]))
        if key not in picks:
            picks[key] = {"unique_id": row["unique_id"], "step": int(row["step"]), "ds": row["ds"],
                          "value": float(row[alias]), "why": []}
        picks[key]["why"].append(why)

    if asked is not None:
        for uid in asked:
            part = fc.filter(pl.col("unique_id") == uid)
            if part.height == 0:
                doc.notes.append(f"series '{uid}' has no forecast")
                continue
            add(part.row(0, named=True), "asked (first step)")
            if part.height > 1:
                add(part.row(part.height - 1, named=True), f"asked (step {part.height})")
        return list(picks.values())
    for rule in rules:
        if rule == "largest" and (top := fc[alias].arg_max()) is not None:  # None: no forecast value at all
            add(fc.row(top, named=True), "largest forecast")
        elif rule == "smallest" and (bottom := fc[alias].arg_min()) is not None:
            add(fc.row(bottom, named=True), "smallest forecast")
        elif rule == "most_uncertain":
            if not levels:
                doc.notes.append("'most_uncertain' needs prediction intervals; none were computed")
                continue
            lv = max(levels)
            rel = ((pl.col(f"{alias}-hi-{lv}") - pl.col(f"{alias}-lo-{lv}"))
                   / pl.max_horizontal(pl.col(alias).abs(), pl.lit(1e-12)))
            widths = fc.select(rel.alias("w"))["w"]
            if (widest := widths.arg_max()) is not None:
                add(fc.row(widest, named=True), f"most uncertain (widest {_lv(lv)}% interval relative "
                                                f"to the forecast: {widths[widest]:.3g})")
    return list(picks.values())


# ---------------------------------------------------------------------------- model card


def _validation(spec: dict[str, Any], panel: Panel, h: int, levels: tuple[float | int, ...], season: int,
                validation: Any, alias: str, n_jobs: int, doc: _Doc) -> dict[str, Any] | None:
    if validation is False:
        return None
    if isinstance(validation, pl.DataFrame):
        if validation.height != 1:
            msg = f"validation frame must have one row, got {validation.height}"
            raise InvalidInputError(msg, field="validation")
        return {"source": "given", "metrics": validation.row(0, named=True)}
    if isinstance(validation, Mapping):
        return {"source": "given", "metrics": dict(validation)}
    if validation is not None and validation is not True:
        msg = (
            f"validation must be None, False, a mapping or a one-row frame, got "
            f"{type(validation).__name__}"
        )
        raise InvalidParameterError(msg, field="validation")
    from forecasting.backtest import holdout_scores

    try:
        try:
            scores = holdout_scores(panel, model=spec, h=h, season_length=season, level=levels, n_jobs=n_jobs)
        except CapabilityError as exc:
            if not levels:
                raise
            doc.notes.append(f"validation without interval coverage: {exc.message}")
            levels = ()
            scores = holdout_scores(panel, model=spec, h=h, season_length=season, n_jobs=n_jobs)
    except ForecastingError as exc:
        doc.notes.append(f"validation metrics not computed: {exc.message}")
        return None
    row = scores.metrics
    keep = {"smape": row["smape"], "mase": row["mase"]}
    for lv in levels:
        keep[f"coverage_{_lv(lv)}"] = row.get(f"coverage_{_lv(lv)}", row.get(f"coverage_{lv}"))
    return {"source": f"last {h} points of each series held out; the spec refitted on the rest "
                      f"(cross_validation, n_windows=1); MASE with season_length {season}; per series, then averaged "
                      f"over {panel.n_series} series", "metrics": keep}


def _model_card(model: Any, spec: dict[str, Any], panel: Panel, data_name: str | None, h: int,
                levels: tuple[float | int, ...], season: int, metrics: dict[str, Any] | None,
                fitted_here: bool) -> dict[str, Any]:
    """The model card's data (``report.html.j2``, section ``model-card``)."""
    rows = [("model", spec.get("name", "")), ("output column", getattr(model, "alias", "")),
            ("family", "global (one model over all series)" if capabilities_of(model).is_global
             else "local (one model per series)"),
            ("explanations", "exact TreeSHAP" if capabilities_of(model).can_explain else "decomposition (no SHAP values)"),
            ("fitted", "on this data" if fitted_here else "before the report (loaded or given fitted)"),
            ("horizon h", str(h)), ("interval levels", ", ".join(f"{_lv(v)}%" for v in levels) or "none")]
    if spec.get("fallback"):
        rows.append(("fallback", spec["fallback"]))
    fbs = getattr(model, "fallbacks_", None) or []
    validation = None
    if metrics is not None:
        names = {"smape": "sMAPE (0-200)", "mase": "MASE"}
        validation = {"source": metrics["source"], "rows": [
            {"label": names.get(k, k.replace("coverage_", "coverage ") + ("% interval" if k.startswith("coverage_")
                                                                          else "")),
             "id": f"validation-{_slug(k)}", "value": repr(_num(v)), "text": _fmt(_num(v), 3)}
            for k, v in metrics["metrics"].items()]}
    return {"spec": rows, "params": [(k, _param_text(v)) for k, v in (spec.get("params") or {}).items()],
            "data": _data_rows(panel, data_name), "validation": validation, "versions": _versions(),
            "fallbacks": {"n": len(fbs), "text": "; ".join(f"{f.unique_id}: {f.reason}" for f in fbs[:10])} if fbs
            else None}


def _data_rows(panel: Panel, data_name: str | None) -> dict[str, list[str]]:
    lengths = list(panel.lengths.values())
    first, last = panel.frame.select(pl.col("ds").min().alias("first"), pl.col("ds").max().alias("last")).row(0)
    tz = f" ({panel.tz})" if panel.tz else ""
    cells = [data_name or "data", str(panel.n_series), str(panel.frame.height), str(panel.freq),
             f"{first} to {last}{tz}", f"{min(lengths)} to {max(lengths)}",
             ", ".join(panel.exog) or "none"]
    return {"head": ["dataset", "series", "rows", "freq", "ds range", "series length", "exogenous"], "cells": cells}


def _versions() -> list[tuple[str, str]]:
    from importlib.metadata import PackageNotFoundError, version

    from forecasting import __version__

    out = [("python", platform.python_version()), ("forecasting", __version__)]
    for pkg in _VERSIONS:
        try:
            out.append((pkg, version(pkg)))
        except PackageNotFoundError:
            continue
    return out


# ---------------------------------------------------------------------------- SHAP sections (shap's own plots)


def _shap_sections(doc: _Doc, model: Any, panel: Panel, history: Any, h: int, chosen: list[dict[str, Any]]) -> Any:
    """Importance, beeswarm, dependence and waterfalls, drawn by shap's own plots on ``Explanation.to_shap()``."""
    import shap

    exp = model.explain(h, history=history)
    sx = exp.to_shap()
    where = f"{exp.n_rows} forecasts explained ({panel.n_series} series x {h} steps)"
    top = exp.global_importance().head(_TOP_FEATURES)
    # importance over history rows (as the model saw in training), for comparison
    hist_imp: dict[str, float] = {}
    if capabilities_of(model).has_global_importance:
        try:
            gi = model.global_importance(panel, max_rows=5000, seed=0)
            hist_imp = dict(zip(gi["feature"].to_list(), gi["mean_abs_shap"].to_list(), strict=True))
        except ForecastingError as exc:
            doc.notes.append(f"importance over the history not computed: {exc.message}")
    n_bars = min(_TOP_FEATURES, len(exp.feature_names))
    fig = _shap_figure(lambda f: shap.plots.bar(sx, max_display=n_bars, ax=f.add_subplot(), show=False),
                       10, 0.4 * n_bars + 1.5)
    fig.axes[0].set_xlabel("mean |SHAP value| over the forecasts (units of y)")
    feats = top["feature"].to_list()
    doc.sections.append(("global-importance", "Global importance (SHAP)", {
        "method": exp.method, "where": where,
        "figure": doc.plot(fig, name="importance", alt=f"Bar chart of mean absolute SHAP value for the top "
                           f"{top.height} features; the largest is {feats[0]}"),
        "rows": [(f, _fmt(v), _fmt(hist_imp.get(f))) for f, v in top.iter_rows()],
        "additivity": _fmt(exp.additivity_error), "additivity_relative": _fmt(exp.additivity_error_relative)}))

    rng = np.random.default_rng(0)
    rows = np.arange(exp.n_rows)
    if len(rows) > _BEESWARM_MAX_ROWS:
        rows = np.sort(rng.choice(rows, _BEESWARM_MAX_ROWS, replace=False))
    fig = _shap_figure(lambda f: shap.plots.beeswarm(sx[rows], max_display=n_bars, ax=f.add_subplot(), show=False,
                                                     plot_size=None, color_bar_label="feature value"),
                       10, 0.45 * n_bars + 1.5)
    fig.axes[0].set_xlabel("SHAP value (units of y): effect on the forecast")
    doc.sections.append(("beeswarm", "SHAP beeswarm", {
        "where": where, "sampled": f" (a seeded sample of {len(rows)})" if len(rows) < exp.n_rows else "",
        "figure": doc.plot(fig, name="beeswarm", alt=f"Beeswarm plot of SHAP values for the top {n_bars} features, "
                                                      "coloured by feature value")}))

    kinds = dict(zip(exp.feature_names, exp.feature_kinds, strict=True))
    dep = [f for f in feats if kinds[f] == "feature"][:3]
    figure = None
    if dep:
        def scatter(f: Any) -> None:
            for ax, name in zip(f.subplots(len(dep), 1, squeeze=False)[:, 0], dep, strict=True):
                shap.plots.scatter(sx[:, name], ax=ax, show=False)
                ax.set_xlabel(f"{name}: value" + (" (units of y)" if name.startswith(_IN_Y) else ""))
                ax.set_ylabel(f"SHAP value of {name}\n(units of y)")

        figure = doc.plot(_shap_figure(scatter, 10, 2.9 * len(dep)), name="dependence",
                          alt="Dependence plots (feature value against SHAP value) for " + ", ".join(dep))
    doc.sections.append(("dependence", "SHAP dependence plots", {"figure": figure}))
    doc.sections.append(("waterfalls", "SHAP waterfalls of selected forecasts",
                         {"rows": _WATERFALL_ROWS, "items": _waterfalls(doc, exp, sx, chosen)}))
    return exp


def _shap_figure(draw: Callable[[Any], Any], w: float, h: float) -> Any:
    """A figure drawn by one of shap's plots, sized ``w`` x ``h`` inches, detached from pyplot (an Agg canvas).

    shap's plots draw on pyplot's current figure (the waterfall sets its own size, replaced
    here); a lock keeps two reports in one process from drawing on the same figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    with _PYPLOT:
        fig = plt.figure(figsize=(w, h), dpi=100, layout="constrained")
        try:
            draw(fig)
        finally:
            plt.close(fig)
    fig.set_size_inches(w, max(h, 1.5))
    FigureCanvasAgg(fig)
    return fig


def _series_section(doc: _Doc, panel: Panel, fc: pl.DataFrame, alias: str, levels: tuple[float | int, ...],
                    chosen: list[dict[str, Any]], season: int, exp: Any, model: Any) -> None:
    """One table per selected series: its level, seasonality, biggest drivers and interval width."""
    ids = list(dict.fromkeys(p["unique_id"] for p in chosen)) or panel.ids[:1]
    values = dict(panel.series_values())
    items = []
    for uid in ids:
        y = values[uid]
        comps, _ = components(model, uid, y, season)
        seas = [np.asarray(v, dtype=np.float64) for k, v in comps.items() if k.startswith("seasonal")]
        rem = next((np.asarray(v, dtype=np.float64) for k, v in comps.items() if k.startswith("remainder")), None)
        strength = "-"
        if seas and rem is not None:
            sr = (np.log(seas[0]) + np.log(rem)) if "index" in next(k for k in comps if k.startswith("seasonal")) \
                else seas[0] + rem
            r = np.log(rem) if "ratio" in next(k for k in comps if k.startswith("remainder")) else rem
            ok = np.isfinite(sr) & np.isfinite(r)
            if ok.sum() > 2 and np.var(sr[ok]) > 0:
                strength = _fmt(max(0.0, 1 - np.var(r[ok]) / np.var(sr[ok])), 2)
        mask = (exp.rows["unique_id"].cast(pl.Utf8) == uid).to_numpy()
        drivers = "-"
        if mask.any():
            mean_abs = np.abs(exp.values[mask]).mean(axis=0)
            top = np.argsort(-mean_abs, kind="stable")[:3]
            drivers = "; ".join(f"{exp.feature_names[j]} ({_fmt(mean_abs[j])})" for j in top)
        part = fc.filter(pl.col("unique_id") == uid)
        width = "no intervals"
        if levels:
            lv = max(levels)
            w = (part[f"{alias}-hi-{lv}"] - part[f"{alias}-lo-{lv}"]).to_numpy()
            width = f"{_fmt(float(np.mean(w)))} on average at {_lv(lv)}% (step 1: {_fmt(float(w[0]))}, step {len(w)}: " \
                    f"{_fmt(float(w[-1]))}), units of y"
        rows = [("level (mean of the history, units of y)", _fmt(float(np.mean(y)))),
                ("last observation (units of y)", _fmt(float(y[-1]))),
                (f"seasonality strength (season length {season})", strength),
                ("biggest drivers of the forecast", drivers), ("interval width", width)]
        items.append({"uid": uid, "id": f"series-{_slug(uid)}-table", "rows": rows})
    doc.sections.append(("series", "Selected series", {"items": items}))


def _waterfalls(doc: _Doc, exp: Any, sx: Any, chosen: list[dict[str, Any]]) -> list[dict[str, Any]]:
    index = {(str(u), int(s)): i for i, (u, s) in enumerate(exp.rows.select("unique_id", "step").iter_rows())}
    out = []
    for k, pick in enumerate(chosen, start=1):
        i = index.get((pick["unique_id"], pick["step"]))
        if i is None:
            doc.notes.append(f"no SHAP explanation for series '{pick['unique_id']}' step {pick['step']} (a fallback "
                             f"model forecast it)")
            continue
        out.append(_waterfall(doc, exp, sx, i, pick, k))
    return out


def _waterfall(doc: _Doc, exp: Any, sx: Any, i: int, pick: dict[str, Any], k: int) -> dict[str, Any]:
    """One forecast's waterfall: shap's plot (forecast-derived lags named so) and the table of its rows."""
    import shap

    vals, data = exp.values[i], exp.data[i]
    flags = exp.is_forecast_value[i] if exp.is_forecast_value is not None else np.zeros(len(vals), bool)
    base, output = float(exp.base_values[i]), float(exp.output[i])
    order = np.argsort(-np.abs(vals), kind="stable")
    shown, rest = order[:_WATERFALL_ROWS], order[_WATERFALL_ROWS:]
    rows = [{"kind": "contribution", "shap": repr(float(vals[j])), "text": f"{exp.feature_names[j]} = "
             f"{exp.label(exp.feature_names[j], float(data[j])) or _fmt(data[j])}", "from_forecast": bool(flags[j]),
             "shap_text": f"{float(vals[j]):+.6g}"} for j in shown]
    if len(rest):
        other = float(vals[rest].sum())
        rows.append({"kind": "other", "shap": repr(other), "text": f"{len(rest)} other features", "from_forecast": False,
                     "shap_text": f"{other:+.6g}"})
    names = [f"{n} (from forecast)" if f else n for n, f in zip(exp.feature_names, flags, strict=True)]
    one = shap.Explanation(values=sx.values[i], base_values=base, data=sx.data[i], feature_names=names,
                           display_data=None if sx.display_data is None else sx.display_data[i])
    fig = _shap_figure(lambda f: shap.plots.waterfall(one, max_display=_WATERFALL_ROWS + 1, show=False),
                       12, 0.5 * (len(rows) + 1) + 1.6)
    ax = fig.axes[0]
    ax.set_xlabel(f"forecast value (units of y): base value {_fmt(base)} to forecast {_fmt(output)}", labelpad=26)
    _room_left(fig, ax)
    return {"uid": pick["unique_id"], "step": pick["step"], "ds": str(pick["ds"]), "why": "; ".join(pick["why"]),
            "id": f"waterfall-{k}-table", "base": repr(base), "base_text": _fmt(base), "output": repr(output),
            "output_text": _fmt(output), "rows": rows,
            "figure": doc.plot(fig, name=f"waterfall-{k}", alt=f"Waterfall of SHAP values for series "
                               f"{pick['unique_id']} step {pick['step']}: base value {_fmt(base)}, forecast "
                               f"{_fmt(output)}")}


def _room_left(fig: Any, ax: Any, pad: float = 6.0) -> None:
    """Widen ``ax``'s x range to the left until its texts start ``pad`` pixels inside it.

    shap's waterfall writes a negative bar's value left of the bar, into the row labels when
    the bar starts at the axis' edge. Its twin axes (the E[f(X)] and f(x) ticks) get the same range.
    """
    renderer = fig.canvas.get_renderer()
    for _ in range(4):  # the scale changes with the range: a few rounds
        fig.canvas.draw()
        box = ax.get_window_extent(renderer)
        left = min((t.get_window_extent(renderer).x0 for t in ax.texts if t.get_text().strip()), default=box.x1)
        if left >= box.x0 + pad:
            return
        lo, hi = ax.get_xlim()
        new_lo = lo - (box.x0 + pad - left) * (hi - lo) / box.width * 1.2
        for a in fig.axes:
            a.set_xlim(new_lo, hi)


# ---------------------------------------------------------------------------- decomposition


def _decomposition_section(doc: _Doc, model: Any, panel: Panel, chosen: list[dict[str, Any]], season: int) -> None:
    from matplotlib.ticker import MaxNLocator

    ids = list(dict.fromkeys(p["unique_id"] for p in chosen)) or panel.ids[:1]
    values = dict(panel.series_values())
    items = []
    for k, uid in enumerate(ids, start=1):
        y = values[uid]
        comps, method = components(model, uid, y, season)
        tail = min(len(y), max(8 * season, 200))
        fig = new_figure(10, 1.7 * len(comps) + 0.8)
        axes = fig.subplots(len(comps), 1, sharex=True, squeeze=False)[:, 0]
        x = panel.frame.filter(pl.col("unique_id") == uid)["ds"].to_numpy()[-tail:]
        for ax, (cname, arr) in zip(axes, comps.items(), strict=True):
            ax.plot(x, np.asarray(arr)[-tail:], lw=1, color="#1f77b4" if not cname.startswith("remainder") else "#7f7f7f")
            ax.set_ylabel(cname if "index" in cname or "ratio" in cname else f"{cname} (y)", fontsize=8)
            ax.yaxis.set_major_locator(MaxNLocator(4, prune="both"))  # no edge labels touching the next panel
        axes[0].set_title(f"Decomposition (not SHAP): series {uid}", fontsize=10)  # the method: in the caption
        axes[-1].set_xlabel("ds")
        items.append({"uid": uid, "method": method, "tail": tail, "n": len(y), "figure": doc.plot(
            fig, name=f"decomposition-{k}", alt=f"Decomposition (not SHAP) of series {uid} into " + ", ".join(comps),
            caption=f"Decomposition (not SHAP): {method}")})
    doc.sections.append(("decomposition", "Decomposition (not SHAP)", {"items": items}))


# ---------------------------------------------------------------------------- forecasts


def _forecast_section(doc: _Doc, panel: Panel, fc: pl.DataFrame, alias: str, levels: tuple[float | int, ...],
                      chosen: list[dict[str, Any]], h: int, season: int) -> None:
    from matplotlib import colormaps

    ids = list(dict.fromkeys(p["unique_id"] for p in chosen)) or panel.ids[:1]
    blues = colormaps["Blues"]
    tail = max(3 * h, 2 * season, 48)
    items = []
    for k, uid in enumerate(ids, start=1):
        hist = panel.frame.filter(pl.col("unique_id") == uid).tail(tail)
        part = fc.filter(pl.col("unique_id") == uid)
        fig = new_figure(10, 3.6)
        ax = fig.add_subplot()
        hx = hist["ds"].to_numpy()
        if panel.tz and hist.schema["ds"] != part.schema["ds"]:  # forecasts come back in the caller's zone
            hx = hist.with_columns(pl.col("ds").dt.replace_time_zone("UTC").dt.convert_time_zone(panel.tz)
                                   .dt.replace_time_zone(None))["ds"].to_numpy()
        fx = part["ds"].to_numpy()
        if part.schema["ds"] == pl.Datetime or isinstance(part.schema["ds"], pl.Datetime):
            fx = part["ds"].dt.replace_time_zone(None).to_numpy()
        ax.plot(hx, hist["y"].to_numpy(), color="#333", lw=1, label="history")
        for j, lv in enumerate(sorted(levels, reverse=True)):
            ax.fill_between(fx, part[f"{alias}-lo-{lv}"].to_numpy(), part[f"{alias}-hi-{lv}"].to_numpy(),
                            color=blues(0.3 + 0.25 * j), alpha=0.6, linewidth=0, label=f"{_lv(lv)}% interval")
        ax.plot(fx, part[alias].to_numpy(), color="#1f4e9c", lw=1.5, label=f"forecast ({alias})")
        marks = [p for p in chosen if p["unique_id"] == uid]
        for p in marks:
            xi = fx[p["step"] - 1]
            ax.plot([xi], [p["value"]], marker="o", color="#d62728", ms=6)
            ax.annotate(f"step {p['step']}", (xi, p["value"]), xytext=(4, 6), textcoords="offset points", fontsize=7)
        ax.set_title(f"series {uid}: forecast with intervals", fontsize=10)
        ax.set_xlabel("ds")
        ax.set_ylabel("y")
        ax.legend(fontsize=7, loc="upper left")
        items.append({"uid": uid, "why": "; ".join(dict.fromkeys(w for p in marks for w in p["why"])) or "first series",
                      "figure": doc.plot(fig, name=f"forecast-{k}", alt=f"Forecast plot of series {uid}: last "
                                         f"{hist.height} observations, {h}-step forecast"
                                         + (" with prediction intervals" if levels else ""))})
    doc.sections.append(("forecasts", "Forecasts with intervals", {
        "h": h, "levels": ", ".join(_lv(v) + "%" for v in levels), "items": items}))


# ---------------------------------------------------------------------------- helpers


def new_figure(w: float, h: float) -> Any:
    """A standalone Agg figure (no pyplot, no global figure registry)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, max(h, 1.5)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_base64(fig: Any) -> str:
    """The figure as a base64 PNG (100 dpi), for a ``data:image/png;base64,`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(text).lower()).strip("-") or "x"


def _lv(lv: float | int) -> str:
    return str(int(lv)) if float(lv).is_integer() else str(lv)


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt(v: Any, digits: int | None = None) -> str:
    f = _num(v)
    if f is None:
        return "-" if v is None or isinstance(v, (int, float, np.floating)) else str(v)
    if digits is not None:
        return f"{f:.{digits}f}"
    return f"{f:.4g}"


def _param_text(v: Any) -> str:
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=str)
    return "null" if v is None else str(v)

