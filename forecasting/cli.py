"""The ``forecasting`` command (typer + rich).

Commands: ``forecast`` (a file in, forecasts out), ``bench`` (score models on a
catalogue dataset), ``models`` and ``datasets`` (what is available), ``serve`` (the
HTTP API). Library errors are printed as one clear line and exit with status 2;
nothing here calls ``sys.exit`` from library code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

import polars as pl

from forecasting.data import check_fill_policy
from forecasting.cli_output import _fail, _fail_os, console, err_console
from forecasting.errors import CapabilityError, ForecastingError

if TYPE_CHECKING:
    from forecasting.models.base import Forecaster
    from forecasting.service import ForecastResult

app = typer.Typer(
    name="forecasting",
    help="Forecast time series with a zoo of models, benchmark them, and serve them over HTTP.\n\n"
    "Data is long format: columns unique_id, ds, y (CSV or Parquet). Start with `forecasting models` "
    "and `forecasting forecast --help`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from forecasting import __version__

        console.print(f"forecasting {__version__}", highlight=False)
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", callback=_print_version,
                                          is_eager=True)] = False,
) -> None:
    """Forecast time series with a zoo of models, benchmark them, and serve them over HTTP."""


def _levels(level: list[float] | None) -> list[float]:
    return list(level or [])


@app.command()
def forecast(
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet file with unique_id, ds, y columns.")],
    h: Annotated[int, typer.Option("--h", help="Horizon: number of steps of freq to forecast per series.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write forecasts (.csv or .parquet).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Registry name (see `forecasting models`), a JSON "
                                       "spec such as '{\"name\": \"auto_ets\", \"params\": {\"season_length\": 12}}', "
                                       "or a saved model / ONNX export folder (forecasts without retraining). Default 'auto': "
                                       "candidates chosen from the data, cross-validated and combined.")]
    = "auto",
    level: Annotated[Optional[list[float]], typer.Option("--level", "-l", help="Prediction-interval level in percent; "
                                                         "repeat for several (--level 80 --level 95).")] = None,
    freq: Annotated[Optional[str], typer.Option("--freq", help="Frequency (1h, 1d, 1bd for business days, 1mo, "
                                                "a pandas alias such as H, D, B, W-SUN, MS, ME, QS, 15min, or an "
                                                "integer step). Inferred from ds when omitted.")] = None,
    fill_missing: Annotated[Optional[str], typer.Option(help="Fill null/NaN y with: zero, forward, interpolate.")]
    = None,
    fill_gaps: Annotated[bool, typer.Option(help="Insert missing timestamps (needs --fill-missing).")] = False,
    n_jobs: Annotated[int, typer.Option(help="Worker processes (-1: all CPUs, the default).")] = -1,
    fallback: Annotated[Optional[str], typer.Option(help="Model for series too short for --model (or that it fails "
                                                    "on), e.g. naive; every such series is reported.")] = None,
    non_negative: Annotated[Optional[bool], typer.Option("--non-negative/--allow-negative", help="Clip forecasts at 0 "
                                                         "(default: when every observed value is >= 0).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer's fields (model, params, notes, fallbacks, "
                                          "filled rows...) as JSON on stdout, as the HTTP API answers them (the "
                                          "forecasts go to --output).")] = False,
) -> None:
    """Forecast every series of a file and write the forecasts.

    Example: forecasting forecast --input sales.csv --h 12 --level 80 --level 95 --output fc.csv (model 'auto')
    """
    from forecasting import service
    from forecasting.service import read_table, write_table

    try:
        data = read_table(input)
        if Path(model).is_dir():  # a saved model (or ONNX export): forecast the file's series without retraining
            result = service.forecast_fitted(_load_forecaster(model), data, h=h, freq=freq, level=_levels(level),
                                             fill_missing=check_fill_policy(fill_missing), fill_gaps=fill_gaps,
                                             fallback=fallback, non_negative=non_negative)
        else:
            result = service.forecast(data, model=model, h=h, freq=freq, level=_levels(level),
                                      fill_missing=check_fill_policy(fill_missing), fill_gaps=fill_gaps, n_jobs=n_jobs,
                                      fallback=fallback, non_negative=non_negative)
        write_table(result.forecasts, output, utc_offset=result.panel.utc_offset)
    except ForecastingError as exc:
        raise _fail(exc, as_json=as_json) from None
    except OSError as exc:  # unwritable --output (read errors of --input are ForecastingErrors)
        raise _fail_os(exc, "output", as_json=as_json) from None
    if as_json:
        answer = {k: v for k, v in result.to_dict().items() if k != "forecasts"}
        typer.echo(json.dumps({**answer, "output": str(output), "rows": result.forecasts.height}, default=str))
        return
    _print_notes(result)
    console.print(escape(f"wrote {result.forecasts.height} rows ({result.panel.n_series} series x h={h}, model "
                         f"{result.spec.name}, freq {result.panel.freq}) to {output}"), highlight=False, soft_wrap=True)


def _print_notes(result: ForecastResult) -> None:
    """The notes, filled rows and fallbacks of a forecast, on stderr (the same fields every door reports)."""
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    filled = result.filled
    if filled.height:
        policy = filled["policy"][0] if "policy" in filled.columns else ""
        err_console.print(f"[yellow]note:[/] filled {filled.height} rows ({policy}); first: "
                          f"{escape(str(filled.head(3).to_dicts()))}", highlight=False, soft_wrap=True)
    for fb in result.fallbacks:
        what = f"series {fb.unique_id!r} forecast with {fb.model!r}: {fb.reason}"
        err_console.print(f"[yellow]fallback:[/] {escape(what)}", highlight=False, soft_wrap=True)


def _load_forecaster(folder: str | Path) -> Forecaster:
    """A saved forecaster or ONNX export folder (a tabular model folder is a CapabilityError)."""
    from forecasting.loading import load
    from forecasting.tabular import TabularModel

    loaded = load(folder)
    if isinstance(loaded, TabularModel):
        msg = (f"'{folder}' holds a tabular model, which predicts rows rather than forecasting series: use "
               f"`forecasting explain --model {folder} --input rows.csv` or the HTTP predict route")
        raise CapabilityError(msg, field="model")
    return loaded


@app.command()
def bench(
    models: Annotated[str, typer.Option("--models", help="Comma-separated model names or JSON specs, e.g. naive2,"
                                        "seasonal_naive,auto_ets,ensemble.")],
    dataset: Annotated[Optional[str], typer.Option("--dataset", "-d", help="Catalogue dataset (see `forecasting "
                                                   "datasets`).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for metrics.csv, forecasts.parquet, "
                                         "leaderboard.md, leaderboard.html and the task store.")]
    = Path("bench-results"),
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="Your own long-format file (unique_id, ds, "
                                                  "y) instead of --dataset; needs --h.")] = None,
    freq: Annotated[Optional[str], typer.Option("--freq", help="Frequency of --input (inferred when omitted).")]
    = None,
    h: Annotated[Optional[int], typer.Option("--h", help="Horizon (default: the dataset's).")] = None,
    windows: Annotated[int, typer.Option("--windows", help="Rolling-origin windows; window 0 ends at each series' "
                                         "end (M4: the official test part).")] = 1,
    step_size: Annotated[Optional[int], typer.Option("--step-size", help="Steps between window origins (default: "
                                                     "h).")] = None,
    level: Annotated[Optional[list[float]], typer.Option("--level", "-l", help="Interval level for coverage/MSIS "
                                                         "(repeatable).")] = None,
    engine: Annotated[str, typer.Option("--engine", help="Where tasks run: local (processes) or ray.")] = "local",
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Ray cluster address (default: start "
                                                       "a local instance).")] = None,
    n_jobs: Annotated[int, typer.Option(help="Tasks run at once (-1: all CPUs; 1: in this process).")] = -1,
    series_limit: Annotated[Optional[int], typer.Option(help="Use only the first N series (quick runs).")] = None,
    cache: Annotated[bool, typer.Option("--cache/--no-cache", help="Reuse finished tasks from OUTPUT/store (resume "
                                        "and reruns).")] = True,
    season_length: Annotated[Optional[int], typer.Option("--season-length", help="Season of --input (or of the "
                                                         "dataset): the MASE scale, Naive2, and every model that "
                                                         "leaves it out. Default: from the frequency (1 for integer "
                                                         "ds).")] = None,
    suite: Annotated[Optional[str], typer.Option("--suite", help="Run the models over every dataset of a catalogue "
                                                 "suite (dev: M3 x4, M4 Hourly, ETTh1, AirPassengers), each with its "
                                                 "own h and season, and aggregate: skill score against seasonal "
                                                 "naive, win rates, bootstrap 95% intervals.")] = None,
) -> None:
    """Score models on a dataset over rolling windows (sMAPE, MASE, OWA, ...), with times and memory.

    Example: forecasting bench --dataset m4_hourly --models naive2,seasonal_naive,auto_ets --output results/

    Suite: forecasting bench --suite dev --models auto_ets,dynamic_optimized_theta --series-limit 30
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from forecasting.benchmarks.harness import run_benchmark, write_results
    from forecasting.data import validate_h
    from forecasting.errors import InvalidParameterError

    names = [m.strip() for m in _split_models(models) if m.strip()]
    if suite is not None:
        _bench_suite(suite, names, dataset=dataset, input=input, output=output, windows=windows, level=_levels(level),
                     n_jobs=n_jobs, series_limit=series_limit, cache=cache)
        return
    source = dataset or (input.stem if input else "?")
    try:
        # checked here: the harness reads h=0 and --series-limit 0 as "not given" and would silently use defaults
        if h is not None:
            validate_h(h)
        if series_limit is not None and series_limit < 1:
            msg = f"--series-limit must be a positive number of series, got {series_limit}"
            raise InvalidParameterError(msg,
                                        field="series_limit")
        if season_length is not None and season_length < 1:
            msg = f"--season-length must be an integer >= 1, got {season_length}"
            raise InvalidParameterError(msg, field="season_length")
        if engine not in ("local", "ray"):
            msg = f"--engine must be local or ray, got {engine!r}"
            raise InvalidParameterError(msg, field="engine")
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=err_console, transient=False) as progress:
            bar = progress.add_task(f"{source}: planning", total=None)

            def plan(total: int, cached: int) -> None:
                progress.update(bar, total=total, description=f"{source}: {total} tasks ({cached} cached)")

            def done(task: object, cached: bool) -> None:
                what = "cached" if cached else "done"
                progress.update(bar, advance=1, description=f"{source}: {task.model} w{task.window} {what}")  # type: ignore[attr-defined]

            result = run_benchmark(dataset, names, input=input, freq=freq, h=h, level=_levels(level), n_jobs=n_jobs,
                                   series_limit=series_limit, windows=windows, step_size=step_size,
                                   season_length=season_length, engine=engine,  # type: ignore[arg-type]
                                   ray_address=ray_address,
                                   store=output / "store" if cache else None, on_plan=plan, on_task_done=done)
        paths = write_results(result, output)
    except ForecastingError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail_os(exc, "output") from None
    table = Table(title=f"{source} (lower is better; all columns in metrics.csv)")
    headers = {"model": "model", "smape": "sMAPE", "mase": "MASE", "owa": "OWA"}
    headers |= {c: c.replace("coverage_", "cov").replace("msis_", "MSIS") for c in result.metrics.columns
                if c.startswith(("coverage_", "msis_"))}
    headers |= {c: c.upper() for c in ("wql", "sql") if c in result.metrics.columns}
    headers |= {"fit_seconds": "fit s", "predict_seconds": "pred s", "fit_predict_seconds": "secs",
                "peak_memory_mb": "peak MB"}
    headers |= {c: title for c, title in (("fallback_series", "fallback"), ("failed_series", "failed series"))
                if (result.metrics[c].fill_null(0) > 0).any()}
    for c, title in headers.items():
        table.add_column(title, justify="left" if c == "model" else "right", no_wrap=True)
    for row, error in zip(result.metrics.select(list(headers)).iter_rows(), result.metrics["error"], strict=True):
        cells = [("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)) for v in row]
        table.add_row(*([cells[0] + " (failed)"] + cells[1:] if error else cells))
    console.print(table)
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    if cache:
        console.print(escape(f"cached {result.cached} tasks, ran {result.computed} (store: {output / 'store'})"),
                      highlight=False, soft_wrap=True)
    console.print(escape(f"wrote {paths['metrics']}, {paths['forecasts']}, {paths['leaderboard']}, {paths['html']}"),
                  highlight=False, soft_wrap=True)


def _bench_suite(suite: str, names: list[str], *, dataset: str | None, input: Path | None, output: Path,
                 windows: int, level: list[float], n_jobs: int, series_limit: int | None, cache: bool) -> None:
    """``bench --suite``: every dataset of the suite, then the aggregate table (rich) and suite.csv / suite.md."""
    import time

    from forecasting.benchmarks.suite import relative_table, run_suite, write_suite
    from forecasting.errors import InvalidParameterError

    started = time.perf_counter()
    try:
        if dataset is not None or input is not None:
            msg = "--suite runs its own datasets: leave out --dataset and --input"
            raise InvalidParameterError(msg, field="suite")
        if series_limit is not None and series_limit < 1:
            msg = f"--series-limit must be a positive number of series, got {series_limit}"
            raise InvalidParameterError(msg, field="series_limit")

        def on_dataset(name: str, i: int, total: int) -> None:
            err_console.print(f"[dim]{i + 1}/{total}[/] {escape(name)}", highlight=False)

        result = run_suite(names, suite=suite, series_limit=series_limit, windows=windows, level=level, n_jobs=n_jobs,
                           store=output / "store" if cache else None, output=output, on_dataset=on_dataset)
        paths = write_suite(result, output)
    except ForecastingError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail_os(exc, "output") from None
    meta = result.metadata
    table = Table(title=f"suite {suite}: {len(meta['datasets'])} datasets, reference {meta['reference']} (skill = 1 - "
                  "gmean relative MASE; higher is better; 95% bootstrap intervals)")
    for title in ("model", "skill", "skill 95%", "gmean rel. MASE", "win rate", "win 95%", "failures", "secs",
                  "peak MB"):
        table.add_column(title, justify="left" if title == "model" else "right", no_wrap=True)
    for r in result.summary.iter_rows(named=True):
        table.add_row(r["model"], f"{r['skill']:.3f}", _interval(r["skill_lo"], r["skill_hi"]),
                      f"{r['gmean_relative_mase']:.3f}", f"{r['win_rate']:.3f}",
                      _interval(r["win_rate_lo"], r["win_rate_hi"]), str(r["failures"]),
                      f"{r.get('fit_predict_seconds') or 0.0:.1f}", f"{r.get('peak_memory_mb') or 0.0:.0f}")
    console.print(table)
    rel = relative_table(result.per_dataset)
    per = Table(title="MASE relative to the reference, per dataset (1.000 where a model failed: see notes)")
    for c in rel.columns:
        per.add_column(c, justify="left" if c == "dataset" else "right", no_wrap=True)
    for row in rel.iter_rows():
        per.add_row(*[v if isinstance(v, str) else "-" if v is None else f"{v:.3f}" for v in row])
    console.print(per)
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    console.print(escape(f"wrote {paths['summary']}, {paths['markdown']}, {paths['per_dataset']} and each dataset's "
                         f"metrics under {output}/<dataset>/ in {time.perf_counter() - started:.1f} s"),
                  highlight=False, soft_wrap=True)


def _interval(lo: float | None, hi: float | None) -> str:
    return "-" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"


@app.command()
def train(
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet training data (unique_id, ds, y, ...).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the model to (safe formats: "
                                         "XGBoost UBJ or safetensors weights, JSON, Parquet).")],
    model: Annotated[str, typer.Option("--model", "-m", help="A global model spec: xgboost, nhits, tft, tsmixer, or JSON "
                                       "such as '{\"name\": \"nhits\", \"params\": {\"max_steps\": 500}}'.")] = "xgboost",
    freq: Annotated[Optional[str], typer.Option("--freq", help="Frequency; inferred when omitted.")] = None,
    n_jobs: Annotated[int, typer.Option(help="Threads (-1: all CPUs).")] = -1,
    fill_missing: Annotated[Optional[str], typer.Option(help="Fill null/NaN y with: zero, forward, interpolate.")]
    = None,
    fill_gaps: Annotated[bool, typer.Option(help="Insert missing timestamps (needs --fill-missing).")] = False,
) -> None:
    """Train a global model and save it, to forecast or explain later with --model FOLDER.

    Example: forecasting train --input history.csv --model xgboost --output models/demand
    """
    from forecasting import service
    from forecasting.service import read_table

    def progress(done: float, message: str) -> None:  # neural models: training steps on stderr
        err_console.print(f"[dim]{done:4.0%}[/] {escape(message)}", highlight=False)

    try:
        forecaster, path, panel, notes = service.fit_and_save(
            read_table(input), output, model=model, freq=freq, fill_missing=check_fill_policy(fill_missing),
            fill_gaps=fill_gaps, n_jobs=n_jobs, progress=progress)
    except ForecastingError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail_os(exc, "output") from None
    for note in notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    console.print(escape(f"trained {forecaster.name} on {panel.n_series} series ({panel.frame.height} rows); "
                         f"saved to {path}"), highlight=False, soft_wrap=True)


@app.command()
def explain(
    model: Annotated[str, typer.Option("--model", "-m", help="A saved model folder (from `forecasting train`; a "
                                       "tabular model explains the rows of --input) or a spec to fit on --input "
                                       "first (e.g. xgboost).")],
    input: Annotated[Path, typer.Option("--input", "-i", help="History to forecast from, or the rows a tabular model "
                                        "explains (CSV or Parquet).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the SHAP values (.csv or .parquet): "
                                         "one row per (series, step, feature), or per (row, feature) for a tabular "
                                         "model.")],
    h: Annotated[Optional[int], typer.Option("--h", help="Steps to forecast and explain per series (forecast "
                                             "models).")] = None,
    freq: Annotated[Optional[str], typer.Option("--freq", help="Frequency; inferred when omitted.")] = None,
    top: Annotated[int, typer.Option(help="Features to print per forecast step.")] = 3,
    approximate: Annotated[bool, typer.Option("--approximate", help="Trees: fast approximate attributions (Saabas "
                                              "paths, not Shapley values).")] = False,
) -> None:
    """Explain each forecast step in units of y: SHAP (trees), integrated gradients (networks) or the labelled
    decomposition (statistical models), from one base value per global model plus named series terms.

    Example: forecasting explain --model xgboost --input history.csv --h 24 --output shap.csv
    """
    from forecasting import service
    from forecasting.service import read_table, write_table

    try:
        data = read_table(input)
        if Path(model).is_dir():
            from forecasting.loading import load

            result = service.explain(data, model=load(model), h=h, freq=freq, approximate=approximate)
        else:
            if h is None:
                from forecasting.errors import InvalidParameterError

                msg = "--h is required to explain a forecast model"
                raise InvalidParameterError(msg, field="h")
            result = service.explain(data, model=model, h=h, freq=freq, approximate=approximate)
        explanation = result.explanation
        long = explanation.to_frame()
        write_table(long, output)
    except ForecastingError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail_os(exc, "output") from None
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    console.print(escape(f"{explanation.method}; additivity error {explanation.additivity_error:.3g} "
                         f"(relative {explanation.additivity_error_relative:.2g}); wrote {long.height} rows to {output}"),
                  highlight=False, soft_wrap=True)
    if "unique_id" not in explanation.rows.columns:  # a tabular model: rows, not forecast steps
        table = Table(title=f"top {top} features of the first rows")
        for col in ("row", "feature", "value", "shap"):
            table.add_column(col)
        for r in explanation.top(max(1, top)).head(top * 6).iter_rows(named=True):
            table.add_row(str(r.get("row", "")), r["feature"], _num(r["value"]), f"{r['shap']:+.4g}")
        console.print(table)
        return
    bases = sorted(set(explanation.base_values.round(6).tolist()))
    console.print(escape(f"base value {bases[0]:.6g}" + (" (the same for every row)" if len(bases) == 1 else
                                                         f" .. {bases[-1]:.6g} (per series)")), highlight=False)
    table = Table(title=f"top {top} contributions per step (first series; units of y, the model's value in brackets)")
    for col in ("step", "ds", "feature", "value", "shap", "from forecast"):
        table.add_column(col)
    first = explanation.rows["unique_id"][0]
    shown = explanation.top(max(1, top)).filter(pl.col("unique_id") == first).head(top * 6)
    for r in shown.iter_rows(named=True):
        value = r.get("value_label") or _num(r["value"])
        model_value = r.get("value_transformed")
        if isinstance(model_value, float) and model_value == model_value:
            value += f" [{model_value:.4g}]"
        table.add_row(str(r["step"]), str(r["ds"]), r["feature"], value, f"{r['shap']:+.4g}",
                      "yes" if r.get("is_forecast_value") else "")
    console.print(table)


def _num(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


@app.command()
def report(
    model: Annotated[str, typer.Option("--model", "-m", help="A saved model folder (from `forecasting train`) or a "
                                       "spec to fit on --input (e.g. xgboost, mstl, auto_ets).")],
    input: Annotated[Path, typer.Option("--input", "-i", help="History to forecast from (CSV or Parquet).")],
    h: Annotated[int, typer.Option("--h", help="Steps to forecast per series (also held out for validation).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the HTML report.")],
    level: Annotated[Optional[list[float]], typer.Option("--level", "-l", help="Interval level in percent "
                                                         "(repeatable; default 80 and 95).")] = None,
    series: Annotated[Optional[list[str]], typer.Option("--series", "-s", help="Series to show (repeatable); "
                                                        "default: largest, smallest, most uncertain forecasts.")]
    = None,
    freq: Annotated[Optional[str], typer.Option("--freq", help="Frequency; inferred when omitted.")] = None,
    title: Annotated[Optional[str], typer.Option("--title", help="Report heading.")] = None,
    n_jobs: Annotated[int, typer.Option(help="Threads/processes for fitting (-1: all CPUs).")] = 1,
) -> None:
    """Write a self-contained HTML report: model card, SHAP plots (or decomposition), forecasts.

    Example: forecasting report --model xgboost --input history.csv --h 24 --output report.html
    """
    from forecasting import service
    from forecasting.service import read_table

    try:
        chosen = _load_forecaster(model) if Path(model).is_dir() else model
        written = service.report(read_table(input), output, model=chosen, h=h, level=tuple(level) if level else (80, 95),
                                 series=series or None, freq=freq, title=title, data_name=input.name,
                                 n_jobs=n_jobs)
    except ForecastingError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail_os(exc, "output") from None
    for note in written.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    console.print(escape(f"wrote {written.path}: sections " + ", ".join(t for _, t in written.sections)),
                  highlight=False, soft_wrap=True)


@app.command("export")
def export_cmd(
    model: Annotated[Path, typer.Option("--model", "-m", help="A saved model folder (from `forecasting train`: "
                                        "xgboost, nhits, tft or tsmixer).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the ONNX artifact to.")],
    quantize: Annotated[bool, typer.Option(help="Networks: also write an int8 graph and report its accuracy "
                                           "change.")] = False,
    sample: Annotated[Optional[Path], typer.Option(help="Tabular models: a CSV/Parquet table of real rows for the "
                                                   "parity check.")] = None,
) -> None:
    """Export a saved model to ONNX (graphs + pipeline + sha256 manifest), after a parity check.

    Example: forecasting export --model models/demand --output models/demand.onnx
    """
    from forecasting import service
    from forecasting.service import read_table

    try:
        path, manifest = service.export(model, output, quantize=quantize,
                                        sample=read_table(sample, field="sample") if sample is not None else None)
    except ForecastingError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail_os(exc, "output") from None
    for graph, p in manifest["parity"].items():
        console.print(escape(f"{graph}: parity on {p['rows']} rows: max abs diff {p['batch_many']['max_abs_diff']:.3g}, "
                             f"relative {p['batch_many']['max_rel_diff']:.3g} (tolerance {manifest['tolerance']:g})"),
                      highlight=False, soft_wrap=True)
    if manifest.get("quantized"):
        q = manifest["quantized"]
        console.print(escape(f"int8 graph {q['graph']}: median forecast changes by {q['median_mean_abs_pct_change']:.3g} % "
                             f"on average (max relative diff {q['max_rel_diff']:.3g})"), highlight=False, soft_wrap=True)
    console.print(escape(f"exported {manifest['kind']} to {path}"), highlight=False, soft_wrap=True)


def _split_models(text: str) -> list[str]:
    """Split on commas outside JSON braces, so JSON specs may appear in the list."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch == "{"
        depth -= ch == "}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


@app.command()
def models() -> None:
    """List the registered models and their parameters."""
    from forecasting.models import REGISTRY

    table = Table(title="models (use the name with --model; parameters via a JSON spec)")
    table.add_column("name", no_wrap=True)
    for col in ("family", "parameters", "summary"):
        table.add_column(col)
    for entry in REGISTRY.values():
        params = ", ".join(f for f in entry.params.__struct_fields__)
        table.add_row(entry.name, entry.family, params, entry.summary)
    console.print(table)


@app.command("datasets")
def datasets_cmd() -> None:
    """List the dataset catalogue (name, frequency, horizon, season length, source)."""
    from forecasting.datasets import catalogue

    table = Table(title="datasets (set FORECASTING_DATA_DIR to a folder holding local copies)")
    for col in ("name", "freq", "h", "season_length", "files", "source"):  # noqa: B007
        table.add_column(col)
    for name, info in catalogue().items():
        files = ", ".join(info.get("files", {}))
        source = info.get("source", {})
        origin = source.get("repository") or source.get("canonical") or ""
        table.add_row(name, str(info.get("calendar_freq", info.get("freq"))), str(info.get("h", "-")),
                      str(info.get("season_length")), files, origin)
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.", envvar="FORECASTING_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (1-65535).", envvar="FORECASTING_PORT", min=1, max=65535)] = 8000,
    log_format: Annotated[str | None, typer.Option(
        help="Log lines as 'json' (one object per line) or 'text' (default: FORECASTING_LOG_FORMAT, else json).")
    ] = None,
    log_level: Annotated[str | None, typer.Option(
        help="DEBUG, INFO, WARNING or ERROR (default: FORECASTING_LOG_LEVEL, else INFO).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Server processes sharing the port and the store (default: FORECASTING_WORKERS, else 1); one of them "
             "runs the training jobs.", min=1)] = None,
) -> None:
    """Start the HTTP API (OpenAPI docs at /schema; what `make run` calls)."""
    import os

    import uvicorn

    from forecasting.api.app import create_app
    from forecasting.api.logs import configure_logging
    from forecasting.api.settings import Settings

    given = {**({"FORECASTING_LOG_FORMAT": log_format} if log_format else {}),
             **({"FORECASTING_LOG_LEVEL": log_level} if log_level else {}),
             **({"FORECASTING_WORKERS": str(workers)} if workers else {})}
    try:
        settings = Settings.from_env({**os.environ, **given})
    except ValueError as exc:  # a bad FORECASTING_* variable: one line naming it, no traceback
        err_console.print(f"[bold red]error {escape('[settings]')}:[/] {escape(str(exc))}", highlight=False,
                          soft_wrap=True)
        raise typer.Exit(code=2) from None
    configure_logging(fmt="text" if settings.log_format == "text" else "json", level=settings.log_level)
    console.print(f"forecasting API on http://{host}:{port} (docs: http://{host}:{port}/schema, state: "
                  f"{settings.state_dir})", highlight=False)
    if settings.api_keys:
        tenants = sorted({tenant for tenant, _ in settings.api_keys})
        console.print(f"API keys required (Authorization: Bearer <key> or X-API-Key) for tenants: "
                      f"{', '.join(tenants)}", highlight=False)
    else:
        console.print("no API keys configured: no authentication, every request is tenant 'default' (set "
                      "FORECASTING_API_KEYS=tenant:key,... to require keys)", highlight=False)
    try:
        if settings.workers > 1:  # several processes, one job runner (forecasting.api.processes)
            from forecasting.api.processes import run

            console.print(f"{settings.workers} server processes; one runs the training jobs", highlight=False)
            run(settings, host=host, port=port, env=given)
            return
        api = create_app(settings)
    except ForecastingError as exc:  # e.g. an emptied database beside a used artifact store: one line, no traceback
        err_console.print(f"[bold red]error {escape('[startup]')}:[/] {escape(exc.message)}", highlight=False,
                          soft_wrap=True)
        raise typer.Exit(code=2) from None
    # SIGTERM: in-flight requests get a few seconds, then the job runner hands running jobs back (shutdown_grace_s)
    uvicorn.run(api, host=host, port=port, log_config=None, log_level=settings.log_level.lower(),
                access_log=False, timeout_graceful_shutdown=5)  # logging: configure_logging, access lines: RequestLog


@app.command()
def version() -> None:
    """Print the version."""
    from forecasting import __version__

    console.print(json.dumps({"forecasting": __version__}))


from forecasting.cli_batch import batch as _batch  # noqa: E402 - one module per command group

app.command("batch")(_batch)

from forecasting.cli_hierarchy import hierarchy as _hierarchy  # noqa: E402 - issue 17

app.command("hierarchy")(_hierarchy)

from forecasting.cli_monitoring import register as _register_monitoring  # noqa: E402 - issue 16

_register_monitoring(app)  # observe, retrain, accuracy, anomalies


def main() -> None:
    """Entry point of the ``forecasting`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
