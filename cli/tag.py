"""`soundsearch tag FILE...`: AudioSet tags for sound files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..audio import AudioDecodeError
from ..encoders.audioset import LabelFileError
from ..encoders.base import CheckpointError
from ..encoders.load import open_encoder, open_vocabulary
from ..encoders.registry import UnknownModelError
from ..encoders.store import ModelMissingError
from ..encoders.tagger import FileTags, Tagger
from ..indexer.scan import expand_paths
from .common import HomeOption, ModelOption, fail, out, report_error, settings_for


def tag(
    files: Annotated[list[Path], typer.Argument(help="Sound files, or folders to scan for them.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=527, help="Tags per file.")] = 5,
    segments: Annotated[bool, typer.Option("--segments", help="Also show tags per segment.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    model: ModelOption = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for the model.")] = None,
    home: HomeOption = None,
) -> None:
    """Print the top AudioSet tags of each file. Files that cannot be read are reported and skipped."""
    settings = settings_for(home, model=model, threads=threads)
    try:
        tagger = Tagger(open_encoder(settings), open_vocabulary(settings))
    except (ModelMissingError, UnknownModelError, CheckpointError, LabelFileError) as exc:
        fail(str(exc))
    results: list[FileTags] = []
    failures = 0
    for path in expand_paths(files):
        try:
            result = tagger.tag_file(path, top_k)
        except AudioDecodeError as exc:
            failures += 1
            report_error(str(exc))
            continue
        results.append(result)
        if not as_json:
            _print_file(result, segments)
    if as_json:
        typer.echo(json.dumps([r.to_dict(segments) for r in results], indent=1))
    if failures:
        raise typer.Exit(1)


def _print_file(result: FileTags, segments: bool) -> None:
    table = Table(title=f"{result.path}  ({result.duration:.2f} s)", title_justify="left", show_header=True)
    table.add_column("tag")
    table.add_column("score", justify="right")
    for t in result.tags:
        table.add_row(t.label, f"{t.score:.3f}")
    out.print(table)
    if segments:
        for seg in result.segments:
            tags = ", ".join(f"{t.label} {t.score:.2f}" for t in seg.tags)
            out.print(f"  {seg.start:8.2f}-{seg.end:8.2f} s  {tags}")
