"""`soundsearch search`: query the indexed libraries by example, by text, or both."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..audio import AudioDecodeError
from ..encoders.store import ModelMissingError
from ..search.engine import MAX_K, QueryError, SearchEngine, SearchRequest, SearchResponse
from ..search.filters import FilterError, Filters
from .common import DbOption, HomeOption, err, fail, out, settings_for


def search(
    audio: Annotated[Path | None, typer.Option("--audio", "-a", help="A sound file to find similar sounds to.")] = None,
    text: Annotated[str | None, typer.Option("--text", "-t", help='Tags or words, e.g. "dog barking".')] = None,
    like: Annotated[int | None, typer.Option("--like", help="An indexed sound's id: find sounds like it.")] = None,
    k: Annotated[int, typer.Option("--k", "-k", min=1, max=MAX_K, help="Results to show.")] = 10,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many results (paging).")] = 0,
    library: Annotated[
        list[str] | None, typer.Option("--library", "-l", help="Only this library (repeatable).")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Only sounds with this tag (repeatable).")] = None,
    min_duration: Annotated[float | None, typer.Option(min=0, help="Only sounds at least this long (s).")] = None,
    max_duration: Annotated[float | None, typer.Option(min=0, help="Only sounds at most this long (s).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of results, best first.")] = False,
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """Search by example (--audio, --like), by text (--text), or both (fused by reciprocal rank)."""
    settings = settings_for(home, db=db)
    filters = Filters(tuple(library or ()), tuple(tag or ()), min_duration, max_duration)
    request = SearchRequest(text=text, audio=audio, like=like, k=k, offset=offset, filters=filters)
    engine = SearchEngine(settings)
    try:
        response = engine.search(request)
    except (QueryError, FilterError, AudioDecodeError, ModelMissingError) as exc:
        fail(str(exc))
    finally:
        engine.close()
    for note in response.notes:
        err.print(f"note: {note}")
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in response.results], indent=1))
    else:
        _print(response)


def _print(response: SearchResponse) -> None:
    if response.text is not None and response.text.concepts:
        err.print("text: " + ", ".join(c.name for c in response.text.concepts))
    if response.filters:
        err.print("filters: " + "; ".join(response.filters))
    if not response.results:
        out.print("no results")
        return
    table = Table(show_header=True, header_style="bold")
    for name, justify in (("#", "right"), ("score", "right"), ("path", "left"), ("segment", "right"), ("tags", "left")):
        table.add_column(name, justify=justify, overflow="fold")  # a path is never cut short
    for r in response.results:
        tags = ", ".join(f"{t.label} {t.score:.2f}" for t in r.tags[:3])
        table.add_row(str(r.rank), f"{r.score:.3f}", r.path, f"{r.start:.1f}–{r.end:.1f} s", tags)
    out.print(table)
    if response.has_more:
        err.print(f"more results: --offset {response.results[-1].rank}")
