"""The monitoring commands of ``forecasting``: ``observe``, ``retrain``, ``accuracy``, ``anomalies``.

Each is one call to :mod:`forecasting.service.monitoring` and a table or JSON on the terminal. The registered
models are those of the API's state folder (``FORECASTING_STATE_DIR``, or ``FORECASTING_DATABASE_URL`` and
``FORECASTING_ARTIFACTS_DIR``), read through the API's settings. :func:`register` adds the commands to the
``forecasting`` app (``forecasting.cli``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from forecasting.errors import ForecastingError

if TYPE_CHECKING:
    import polars as pl

    from forecasting.service.monitoring import Monitoring

__all__ = ["register"]


@contextmanager
def _monitoring() -> Iterator[Monitoring]:
    """The state folder's store (as the API opens it) and its monitoring use cases; errors exit with status 2."""
    from forecasting.api.settings import Settings
    from forecasting.cli_output import _fail
    from forecasting.service import Limits
    from forecasting.service.monitoring import Monitoring
    from forecasting.store import Store

    try:
        settings = Settings.from_env()
        database_url, artifacts_dir = settings.registry_locations
        with Store(database_url, artifacts_dir) as store:
            yield Monitoring(store, Limits(max_h=settings.max_h, max_series=settings.max_series,
                                           max_rows=settings.max_rows, max_seconds=settings.max_seconds,
                                           seconds_setting="FORECASTING_MAX_SECONDS"))
    except ForecastingError as exc:
        raise _fail(exc) from None


def _print_frame(frame: pl.DataFrame, *, as_json: bool, title: str) -> None:
    from rich.table import Table

    from forecasting.cli_output import console

    if as_json:
        console.print_json(json.dumps(frame.to_dicts(), default=str))
        return
    table = Table(title=title)
    for col in frame.columns:
        table.add_column(col, justify="left" if frame.schema[col].is_numeric() is False else "right")
    for row in frame.iter_rows():
        table.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)


def _tenant(value: str) -> str:
    """A ``--tenant`` as the server names tenants (API keys ``tenant:key``): non-empty text, no path separator,
    no ``..`` and no control character (it names a folder of the artifact store)."""
    if not value or value in (".", "..") or any(c in value for c in "/\\") or any(ord(c) < 32 for c in value):
        msg = f"--tenant must be a tenant name (no '/', '\\', control character or '..'), got {value!r}"
        raise typer.BadParameter(msg)
    return value


#: the tenant of the server's models (the API key's tenant; ``default`` without API keys)
Tenant = Annotated[str, typer.Option("--tenant", help="The tenant whose model it is (the API key's tenant; "
                                     "'default' without keys).", callback=_tenant)]


def _json(value: Any) -> None:
    from forecasting.cli_output import console

    console.print_json(json.dumps(value, default=str))


def observe(
    model: Annotated[str, typer.Option("--model", "-m", help="The registered model's name.")],
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV or Parquet file with unique_id, ds, y.")],
    replace: Annotated[bool, typer.Option(help="Overwrite points already stored.")] = False,
    tenant: Tenant = "default",
) -> None:
    """Append observations (actuals) of a registered model's series; prints what was stored and the gaps."""
    from forecasting.service.tables import read_table

    with _monitoring() as monitoring:
        try:
            result = monitoring.observe(tenant, model, read_table(input, field="input"), replace=replace)
        except ForecastingError as exc:
            from forecasting.cli_output import _fail

            raise _fail(exc) from None
        _json({"model": result.model, "rows": result.rows, "replaced": result.replaced, "series": result.series,
               "gaps": result.gaps, "retrain": result.retrain, "notes": result.notes})


def retrain(
    model: Annotated[str, typer.Option("--model", "-m", help="The registered model's name.")],
    tenant: Tenant = "default",
) -> None:
    """Train a challenger on all the data, compare it with the champion on the latest hold-out window and move
    `production` when it wins by the policy's margin; prints the decision."""
    with _monitoring() as monitoring:
        try:
            decision = monitoring.retrain(tenant, model, trigger="manual")
        except ForecastingError as exc:
            from forecasting.cli_output import _fail

            raise _fail(exc) from None
        _json(decision.to_dict())


def accuracy(
    model: Annotated[str, typer.Option("--model", "-m", help="The registered model's name.")],
    by: Annotated[str, typer.Option(help="version, step (horizon step) or series.")] = "version",
    version: Annotated[Optional[int], typer.Option(help="Only this version.")] = None,
    start: Annotated[Optional[str], typer.Option(help="First ds scored (ISO 8601 or integer step).")] = None,
    end: Annotated[Optional[str], typer.Option(help="Last ds scored.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False,
    tenant: Tenant = "default",
) -> None:
    """Realised accuracy of the forecasts served for a registered model: sMAPE, MASE, coverage per level."""
    with _monitoring() as monitoring:
        try:
            result = monitoring.accuracy(tenant, model, by=by, version=version, start=start,  # type: ignore[arg-type]
                                         end=end)
        except ForecastingError as exc:
            from forecasting.cli_output import _fail

            raise _fail(exc) from None
        _print_frame(result.rows, as_json=as_json, title=f"accuracy of {model} by {by}")


def anomalies(
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="CSV or Parquet file with unique_id, ds, "
                                                  "y: scan it with the model's in-sample interval.")] = None,
    registered: Annotated[Optional[str], typer.Option(help="A registered model's name: its observations outside "
                                                      "the intervals of the forecasts served.")] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Registry name or JSON spec (with --input).")] = "mstl",
    level: Annotated[float, typer.Option(help="Interval level, percent.")] = 99.0,
    method: Annotated[str, typer.Option(help="normal or conformal (with --input).")] = "normal",
    freq: Annotated[Optional[str], typer.Option(help="Frequency (with --input); inferred when omitted.")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write every scored point here "
                                                   "(.csv or .parquet).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON rows.")] = False,
    tenant: Tenant = "default",
) -> None:
    """Points outside an interval at --level, with a score (half-widths from the centre; above 1 is flagged)."""
    from forecasting.cli_output import _fail
    from forecasting.service.tables import read_table, write_table

    if (input is None) == (registered is None):
        raise _fail(ForecastingError("give either --input (a file) or --registered (a model's observations)",
                                     field="input"))
    try:
        if input is not None:
            from forecasting.service.monitoring import detect_anomalies

            spec: Any = json.loads(model) if model.strip().startswith("{") else model
            result = detect_anomalies(read_table(input, field="input"), model=spec, level=level,
                                      method=method, freq=int(freq) if freq and freq.isdigit() else freq)  # type: ignore[arg-type]
            title = f"anomalies of {input.name} ({result.model}, {level:g}%, {method})"
        else:
            with _monitoring() as monitoring:
                result = monitoring.observation_anomalies(tenant, str(registered), level=level)
            title = f"observations of {registered} outside the served {level:g}% intervals"
        if output is not None:
            write_table(result.points, output, utc_offset=None if result.panel is None else result.panel.utc_offset)
    except ForecastingError as exc:
        raise _fail(exc) from None
    _print_frame(result.anomalies, as_json=as_json, title=title)
    for note in result.notes:
        from forecasting.cli_output import console

        console.print(note, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``observe``, ``retrain``, ``accuracy`` and ``anomalies`` to the ``forecasting`` command."""
    for command in (observe, retrain, accuracy, anomalies):
        app.command()(command)
