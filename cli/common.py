"""What every command shares: settings from options/environment, and one-line errors on stderr."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from ..config import Settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="Data home (models, database, indexes); default $SOUNDSEARCH_HOME or ~/.soundsearch."),
]
DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (e.g. postgresql://user:pw@host/db); default $SOUNDSEARCH_DB or SQLite in the data home.",
    ),
]
ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Encoder model (see `soundsearch models list`).")
]


def settings_for(home: Path | None = None, **overrides: object) -> Settings:
    """Settings from the environment, with command-line values on top."""
    values = {k: v for k, v in overrides.items() if v is not None}
    if home is not None:
        values["home"] = home
    return Settings(**values)


def report_error(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear line and exit non-zero."""
    report_error(message)
    raise typer.Exit(code)
