"""What every `escr` subcommand module shares: the Typer apps, consoles, options and error handling.

Kept apart from `escr.cli.main` so subcommand modules import this, never the entry point.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from escr.errors import EscrError
from escr.record.events import Actor
from escr.services import Services, open_services
from escr.settings import Settings, load_settings

app = typer.Typer(help="escr: scanned paper into a child's social care record.", no_args_is_help=True)
qc_app = typer.Typer(help="Human QC and verification (four-eyes).", no_args_is_help=True)
children_app = typer.Typer(help="The child index.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Files that could not be filed.", no_args_is_help=True)
app.add_typer(qc_app, name="qc")
app.add_typer(children_app, name="children")
app.add_typer(quarantine_app, name="quarantine")

out = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
UserOpt = Annotated[str | None, typer.Option("--user", help="Who is acting (default: ESCR_USER or login name).")]


def _settings() -> Settings:
    return load_settings()


def _services() -> Services:
    return open_services(_settings())


def _user(settings: Settings, user: str | None) -> str:
    return user or settings.user or getpass.getuser()


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def handles_errors(func: F) -> F:
    """Turn an EscrError into one readable line and its class's exit code (2 for a conflict)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except EscrError as exc:
            if kwargs.get("as_json"):
                _print_json({"error": {"code": exc.code, "message": exc.message}})
            else:
                err.print(f"[red]error[/red] ({exc.code}): {exc.message}")
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _actor(services: Services, user: str | None) -> Actor:
    return Actor(kind="user", name=_user(services.settings, user))


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"not a date (YYYY-MM-DD): {value}") from None
