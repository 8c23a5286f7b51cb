"""What every `escr` subcommand module shares: the Typer apps, consoles, options and error handling.

Kept apart from `escr.cli.main` so subcommand modules import this, never the entry point.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from escr.app import identity
from escr.app.access import Principal
from escr.app.labels import local_time, uk_date
from escr.app.operations import Operations
from escr.errors import EscrError
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
VersionOpt = Annotated[int | None, typer.Option(
    "--version", help="The document version you checked (`escr show`): if someone changed it since, a conflict.")]
UserOpt = Annotated[str | None, typer.Option(
    "--user", help="Your escr user name for the password prompt on a terminal (no effect with ESCR_TOKEN).")]


def _settings() -> Settings:
    return load_settings()


def _services() -> Services:
    return open_services(_settings())


def _login() -> str:
    try:
        return getpass.getuser()
    except OSError:
        return "unknown"


def signed_in(services: Services, command: str, user: str | None = None) -> Principal:
    """The escr account this command acts as: an API token in ESCR_TOKEN, or a user name and
    password asked for on a terminal. Nobody becomes a person by naming them."""
    token = os.environ.get("ESCR_TOKEN", "").strip()
    if token:
        return identity.principal_for_token(services, token, command=command)
    if sys.stdin.isatty():
        username = user or typer.prompt("escr user name", default=services.settings.user or _login())
        password = getpass.getpass(f"password for {username}: ")
        return identity.principal_for_password(services, username, password, command=command)
    raise identity.not_signed_in(command)


def operations(command: str, user: str | None = None) -> Operations:
    """The application layer bound to the signed-in person, for a command that reads or changes the record."""
    services = _services()
    return Operations(services, signed_in(services, command, user))


def host_operator(command: str) -> Principal:
    """The principal of a set-up or maintenance command run on the server (no access to record content)."""
    return identity.as_host_operator(_login(), command=command)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def handles_errors(func: F) -> F:
    """Turn an EscrError into one readable line and its class's exit code (escr.errors: 2 for a
    conflict such as a four-eyes refusal, 75 for an outage to retry later, else 1)."""

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


def _date(value: str | None) -> date | None:
    """A date typed as a UK reader writes it (14/06/2025) or as ISO 8601 (2025-06-14)."""
    if value is None:
        return None
    try:
        if "/" in value:
            return datetime.strptime(value.strip(), "%d/%m/%Y").date()
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"not a date (DD/MM/YYYY): {value}") from None


def day(value: date | datetime | str | None, empty: str = "-") -> str:
    """A date in a table or line of output, as the web app shows it (14/06/2025)."""
    return uk_date(value, short=True, empty=empty)


def moment(ops: Operations, value: datetime | str | None, empty: str = "-") -> str:
    """A stored (UTC) time in the service's local time, as the web app shows it (14/06/2025 15:04 BST)."""
    return local_time(value, ops.services.settings.web.timezone, short=True, empty=empty)


@contextmanager
def stage_progress(what: str, *, show: bool) -> Iterator[Callable[..., None] | None]:
    """A bar over a long command's stages on stderr, with its counts so far (events, documents,
    objects checked); nothing at all when the output is not a terminal or --json was asked for,
    so scripts read only the answer."""
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stage]}"),
                  TextColumn("[dim]{task.fields[counts]}"), TimeElapsedColumn(), console=err) as bar:
        task = bar.add_task(what, total=None, stage="starting", counts="")

        def update(done: int, total: int, stage: str, tally: Any) -> None:
            counts = (f"{tally.events_checked} events, {tally.documents_checked} documents, "
                      f"{tally.objects_checked} objects" if tally is not None else "")
            bar.update(task, completed=done, total=total, stage=stage, counts=counts)

        yield update
