"""The `soundsearch` command: one typer app, one module per command group, logic in the packages."""

from __future__ import annotations

import typer

from .. import __version__
from .index import index, reindex_command
from .models import models_app
from .search import search
from .tag import tag

app = typer.Typer(
    name="soundsearch",
    help="Query-by-example search for sound libraries.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(models_app, name="models")
app.command()(tag)
app.command()(index)
app.command()(search)
app.command("reindex")(reindex_command)


@app.command()
def version() -> None:
    """Print the soundsearch version."""
    typer.echo(__version__)
