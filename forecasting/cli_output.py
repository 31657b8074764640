"""What every ``forecasting`` command prints with: the consoles and the one-line (or JSON) error report.

Its own module so that the command modules (:mod:`forecasting.cli` and the command groups beside it:
``cli_batch``, ``cli_hierarchy``, ``cli_monitoring``) share it without importing one another.
"""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.markup import escape

from forecasting.errors import ForecastingError

__all__ = ["_fail", "_fail_os", "console", "err_console"]

# when piped or captured, rich assumes 80 columns and cuts tables; use a wider page there
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _fail(exc: ForecastingError, *, as_json: bool = False) -> typer.Exit:
    """Report a library error on stderr (exit code 2): one line, or with ``--json`` one JSON object
    ``{"error", "field", "detail", "details"}`` (the error class, the field, the message, its details)."""
    if as_json:
        typer.echo(json.dumps({"error": type(exc).__name__, "field": exc.field, "detail": exc.message,
                               "details": exc.details}, default=str), err=True)
        return typer.Exit(code=2)
    # escape: messages quote user data and lists ("[24, 168]") that rich would read as markup and drop
    where = escape(f" [{exc.field}]") if exc.field else ""
    err_console.print(f"[bold red]error{where}:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _fail_os(exc: OSError, what: str, *, as_json: bool = False) -> typer.Exit:
    reason = exc.strerror or str(exc)
    target = f" '{exc.filename}'" if exc.filename else ""
    if as_json:
        typer.echo(json.dumps({"error": "OSError", "field": what, "detail": f"cannot write{target}: {reason}",
                               "details": {}}), err=True)
        return typer.Exit(code=2)
    err_console.print(f"[bold red]error {escape(f'[{what}]')}:[/] cannot write{escape(target)}: {escape(reason)}",
                      highlight=False, soft_wrap=True)
    return typer.Exit(code=2)
