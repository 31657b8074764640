"""The ``forecasting`` command (typer + rich).

Commands: ``forecast`` (a file in, forecasts out), ``bench`` (score models on a
catalogue dataset), ``models`` and ``datasets`` (what is available), ``serve`` (the
HTTP API). Library errors are printed as one clear line and exit with status 2;
nothing here calls ``sys.exit`` from library code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import polars as pl

from forecasting.errors import CapabilityError, ForecastingError

app = typer.Typer(
    name="forecasting",
    help="Forecast time series with a zoo of models, benchmark them, and serve them over HTTP.\n\n"
    "Data is long format: columns unique_id, ds, y (CSV or Parquet). Start with `forecasting models` "
    "and `forecasting forecast --help`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# when piped or captured, rich assumes 80 columns and cuts tables; use a wider page there
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _fail(exc: ForecastingError) -> typer.Exit:
    # escape: messages quote user data and lists ("[24, 168]") that rich would read as markup and drop
    where = escape(f" [{exc.field}]") if exc.field else ""
    err_console.print(f"[bold red]error{where}:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _fail_os(exc: OSError, what: str) -> typer.Exit:
    reason = exc.strerror or str(exc)
    target = f" '{exc.filename}'" if exc.filename else ""
    err_console.print(f"[bold red]error {escape(f'[{what}]')}:[/] cannot write{escape(target)}: {escape(reason)}",
                      highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _levels(level: list[float] | None) -> list[float]:
    return list(level or [])


@app.command()
def forecast(
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet file with unique_id, ds, y columns.")],
    h: Annotated[int, typer.Option("--h", help="Horizon: number of steps of freq to forecast per series.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write forecasts (.csv or .parquet).")],
    model: Annotated[str, typer.Option("--model", "-m", help="Registry name (see `forecasting models`) or a JSON "
                                       "spec such as '{\"name\": \"auto_ets\", \"params\": {\"season_length\": 12}}'.")]
    = "auto_ets",
    level: Annotated[Optional[list[float]], typer.Option("--level", "-l", help="Prediction-interval level in percent; "
                                                         "repeat for several (--level 80 --level 95).")] = None,
    freq: Annotated[Optional[str], typer.Option("--freq", help="Frequency (1h, 1d, 1mo, or an integer step). "
                                                "Inferred from ds when omitted.")] = None,
    fill_missing: Annotated[Optional[str], typer.Option(help="Fill null/NaN y with: zero, forward, interpolate.")]
    = None,
    fill_gaps: Annotated[bool, typer.Option(help="Insert missing timestamps (needs --fill-missing).")] = False,
    n_jobs: Annotated[int, typer.Option(help="Worker processes (-1: all CPUs).")] = 1,
) -> None:
    """Forecast every series of a file and write the forecasts.

    Example: forecasting forecast --input sales.csv --model auto_ets --h 12 --level 80 --level 95 --output fc.csv
    """
    from forecasting.service import forecast as run_forecast
    from forecasting.service import read_table, write_table

    try:
        data = read_table(input)
        result = run_forecast(data, model=model, h=h, freq=freq, level=_levels(level),
                              fill_missing=fill_missing, fill_gaps=fill_gaps, n_jobs=n_jobs)  # type: ignore[arg-type]
        write_table(result.forecasts, output)
    except ForecastingError as exc:
        raise _fail(exc) from None
    except OSError as exc:  # unwritable --output (read errors of --input are ForecastingErrors)
        raise _fail_os(exc, "output") from None
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    filled = result.report.filled
    if filled.height:
        err_console.print(f"[yellow]note:[/] filled {filled.height} rows ({fill_missing}); first: "
                          f"{escape(str(filled.head(3).to_dicts()))}", highlight=False, soft_wrap=True)
    for fb in result.fallbacks:
        what = f"series {fb.unique_id!r} forecast with {fb.model!r}: {fb.reason}"
        err_console.print(f"[yellow]fallback:[/] {escape(what)}", highlight=False, soft_wrap=True)
    console.print(escape(f"wrote {result.forecasts.height} rows ({result.panel.n_series} series x h={h}, model "
                         f"{result.spec.name}, freq {result.panel.freq}) to {output}"), highlight=False, soft_wrap=True)


@app.command()
def bench(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Catalogue dataset (see `forecasting datasets`).")],
    models: Annotated[str, typer.Option("--models", help="Comma-separated model names, e.g. naive2,seasonal_naive,"
                                        "auto_ets.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for metrics.csv, forecasts.parquet and "
                                         "leaderboard.md.")] = Path("bench-results"),
    h: Annotated[Optional[int], typer.Option("--h", help="Horizon (default: the dataset's).")] = None,
    level: Annotated[Optional[list[float]], typer.Option("--level", "-l", help="Interval level for coverage/MSIS "
                                                         "(repeatable).")] = None,
    n_jobs: Annotated[int, typer.Option(help="Worker processes per model (-1: all CPUs).")] = -1,
    series_limit: Annotated[Optional[int], typer.Option(help="Use only the first N series (quick runs).")] = None,
) -> None:
    """Fit each model on a dataset's training part, score its test forecasts (sMAPE, MASE, OWA).

    Example: forecasting bench --dataset m4_hourly --models naive2,seasonal_naive,auto_ets --output results/
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from benchmarks.harness import run_benchmark, write_results
    from forecasting.data import validate_h
    from forecasting.errors import InvalidParameterError

    names = [m.strip() for m in _split_models(models) if m.strip()]
    try:
        # checked here: the harness reads h=0 and --series-limit 0 as "not given" and would silently use defaults
        if h is not None:
            validate_h(h)
        if series_limit is not None and series_limit < 1:
            raise InvalidParameterError(f"--series-limit must be a positive number of series, got {series_limit}",
                                        field="series_limit")
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=err_console, transient=False) as progress:
            task = progress.add_task(f"{dataset}: fitting {len(names)} models", total=len(names))

            def done(name: str, secs: float) -> None:
                progress.update(task, advance=1, description=f"{dataset}: {name} done in {secs:.1f}s")

            result = run_benchmark(dataset, names, h=h, level=_levels(level), n_jobs=n_jobs,
                                   series_limit=series_limit, on_model_done=done)
        paths = write_results(result, output)
    except ForecastingError as exc:
        raise _fail(exc) from None
    except OSError as exc:
        raise _fail_os(exc, "output") from None
    table = Table(title=f"{dataset} (lower is better; all columns in metrics.csv)")
    headers = {"model": "model", "smape": "sMAPE", "mase": "MASE", "owa": "OWA"}
    headers |= {c: c.replace("coverage_", "cov").replace("msis_", "MSIS") for c in result.metrics.columns
                if c.startswith(("coverage_", "msis_"))}
    headers["fit_predict_seconds"] = "secs"
    for c, title in headers.items():
        table.add_column(title, justify="left" if c == "model" else "right", no_wrap=True)
    for row in result.metrics.select(list(headers)).iter_rows():
        table.add_row(*[("-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)) for v in row])
    console.print(table)
    for note in result.notes:
        err_console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    console.print(escape(f"wrote {paths['metrics']}, {paths['forecasts']}, {paths['leaderboard']}"), highlight=False,
                  soft_wrap=True)


@app.command()
def train(
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet training data (unique_id, ds, y, ...).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write the model to (safe formats: "
                                         "XGBoost UBJ + JSON + Parquet).")],
    model: Annotated[str, typer.Option("--model", "-m", help="A global model spec, e.g. xgboost or "
                                       "'{\"name\": \"xgboost\", \"params\": {\"season_length\": 24}}'.")] = "xgboost",
    freq: Annotated[Optional[str], typer.Option("--freq", help="Frequency; inferred when omitted.")] = None,
    n_jobs: Annotated[int, typer.Option(help="Threads (-1: all CPUs).")] = -1,
) -> None:
    """Train a global model and save it, to forecast or explain later with --model FOLDER.

    Example: forecasting train --input history.csv --model xgboost --output models/demand
    """
    from forecasting.data import validate_panel
    from forecasting.models import make_model
    from forecasting.service import read_table

    try:
        panel = validate_panel(read_table(input), freq=freq)
        forecaster = make_model(model, freq=panel.freq, n_jobs=n_jobs)
        if not hasattr(forecaster, "save"):
            raise CapabilityError(f"model '{forecaster.name}' is refitted from history each time and is not saved; "
                                  f"use `forecasting forecast`", field="model")
        forecaster.fit(panel)
        path = forecaster.save(output)
    except ForecastingError as exc:
        raise _fail(exc) from None
    console.print(escape(f"trained {forecaster.name} on {panel.n_series} series ({panel.frame.height} rows); "
                         f"saved to {path}"), highlight=False, soft_wrap=True)


@app.command()
def explain(
    model: Annotated[str, typer.Option("--model", "-m", help="A saved model folder (from `forecasting train`) or a "
                                       "spec to fit on --input first (e.g. xgboost).")],
    input: Annotated[Path, typer.Option("--input", "-i", help="History to forecast from (CSV or Parquet).")],
    h: Annotated[int, typer.Option("--h", help="Steps to forecast and explain per series.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the SHAP values (.csv or .parquet): "
                                         "one row per (series, step, feature).")],
    freq: Annotated[Optional[str], typer.Option("--freq", help="Frequency; inferred when omitted.")] = None,
    top: Annotated[int, typer.Option(help="Features to print per forecast step.")] = 3,
) -> None:
    """Explain each forecast step with exact SHAP values (TreeSHAP for XGBoost), in units of y.

    Example: forecasting explain --model xgboost --input history.csv --h 24 --output shap.csv
    """
    from forecasting.data import validate_panel
    from forecasting.explain import explain_forecast
    from forecasting.models import make_model
    from forecasting.service import read_table, write_table

    try:
        data = read_table(input)
        folder = Path(model)
        if folder.is_dir():
            from forecasting.models.xgb import XGBoostForecaster

            forecaster = XGBoostForecaster.load(folder)
            explanation = explain_forecast(forecaster, h, history=validate_panel(data, freq=freq or forecaster.pipeline_.freq))
        else:
            panel = validate_panel(data, freq=freq)
            forecaster = make_model(model, freq=panel.freq, n_jobs=-1)
            if not hasattr(forecaster, "explain"):
                explain_forecast(forecaster, h)  # raises the CapabilityError that says why
            forecaster.fit(panel)
            explanation = explain_forecast(forecaster, h)
        long = explanation.to_frame()
        write_table(long, output)
    except ForecastingError as exc:
        raise _fail(exc) from None
    console.print(escape(f"{explanation.method}; additivity error {explanation.additivity_error:.3g} "
                         f"(relative {explanation.additivity_error_relative:.2g}); wrote {long.height} rows to {output}"),
                  highlight=False, soft_wrap=True)
    table = Table(title=f"top {top} features per step (first series)")
    for col in ("step", "ds", "feature", "value", "shap", "from forecast"):
        table.add_column(col)
    first = explanation.rows["unique_id"][0]
    shown = explanation.top(max(1, top)).filter(pl.col("unique_id") == first).head(top * 6)
    for r in shown.iter_rows(named=True):
        table.add_row(str(r["step"]), str(r["ds"]), r["feature"], f"{r['value']:.4g}", f"{r['shap']:+.4g}",
                      "yes" if r.get("is_forecast_value") else "")
    console.print(table)


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
    port: Annotated[int, typer.Option(help="TCP port.", envvar="FORECASTING_PORT")] = 8000,
) -> None:
    """Start the HTTP API (OpenAPI docs at /schema; what `make run` calls)."""
    import logging

    import uvicorn

    from api.app import create_app

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from api.settings import Settings

    settings = Settings.from_env()
    console.print(f"forecasting API on http://{host}:{port} (docs: http://{host}:{port}/schema, state: "
                  f"{settings.state_dir})", highlight=False)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@app.command()
def version() -> None:
    """Print the version."""
    from forecasting import __version__

    console.print(json.dumps({"forecasting": __version__}))


def main() -> None:
    """Entry point of the ``forecasting`` console script."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
