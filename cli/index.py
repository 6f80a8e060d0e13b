"""`soundsearch index` and `soundsearch reindex`: build and maintain the catalogue and its indexes."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..encoders.base import CheckpointError
from ..encoders.registry import UnknownModelError
from ..encoders.store import ModelMissingError
from ..indexer.db import SpaceMismatchError
from ..indexer.ingest import IngestOptions, IngestReport
from ..indexer.lock import BusyError
from ..indexer.runner import index_paths, reindex
from .common import DbOption, HomeOption, ModelOption, err, fail, out, settings_for

#: Failures listed in the text summary; `--json` lists all of them.
SHOWN_FAILURES = 40
_EXPECTED = (
    ModelMissingError,
    UnknownModelError,
    CheckpointError,
    SpaceMismatchError,
    BusyError,
    ValueError,
    LookupError,
)


class RichIngestProgress:
    """Files, audio hours and speed (× realtime) while a library is indexed, on stderr."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files  {task.fields[hours]:.2f} h audio  {task.fields[speed]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        )
        self._task: int | None = None
        self._audio_s = 0.0
        self._started = 0.0

    def __enter__(self) -> RichIngestProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start(self, library: str, files: int) -> None:
        self._audio_s, self._started = 0.0, time.monotonic()
        self._task = self.progress.add_task(library, total=files, hours=0.0, speed="")

    def advance(self, files: int, audio_s: float) -> None:
        if self._task is None:
            return
        self._audio_s += audio_s
        elapsed = max(time.monotonic() - self._started, 1e-6)
        speed = f"{self._audio_s / elapsed:.0f}× realtime" if self._audio_s else ""
        self.progress.update(self._task, advance=files, hours=self._audio_s / 3600, speed=speed)

    def note(self, message: str) -> None:
        self.progress.console.print(message)


def index(
    paths: Annotated[list[Path], typer.Argument(help="Library folders to index (scanned recursively).")],
    library: Annotated[
        str | None, typer.Option("--library", "-l", help="Library name (default: the folder's name).")
    ] = None,
    workers: Annotated[int | None, typer.Option(min=0, max=64, help="Decoding processes (0: inline).")] = None,
    model: ModelOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="Retry files that failed before even if they did not change.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    threads: Annotated[int | None, typer.Option(help="CPU threads for the model.")] = None,
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """Index sound library folders: new and changed files are encoded, gone files removed, unchanged
    files cost nothing. Safe to interrupt; run it again to finish."""
    settings = settings_for(home, db=db, threads=threads, workers=workers)
    options = IngestOptions(workers=settings.workers, retry_failed=retry_failed, dry_run=dry_run)
    try:
        with RichIngestProgress() as progress:
            reports = index_paths(settings, paths, library, model, options, progress, progress.note)
    except _EXPECTED as exc:
        fail(str(exc))
    _print_reports(reports, as_json)
    if any(r.error or r.failed for r in reports):
        raise typer.Exit(1)


def reindex_command(
    model: ModelOption = None,
    workers: Annotated[int | None, typer.Option(min=0, max=64, help="Decoding processes when re-encoding.")] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for the model.")] = None,
    db: DbOption = None,
    home: HomeOption = None,
) -> None:
    """Rebuild the FAISS index from the vectors stored in the database. With --model (another model
    than the index holds), re-encode every library with that model first."""
    settings = settings_for(home, db=db, threads=threads, workers=workers)
    try:
        with RichIngestProgress() as progress:
            result = reindex(settings, model, None, progress, progress.note)
    except _EXPECTED as exc:
        fail(str(exc))
    if result.reencoded:
        _print_reports(result.reencoded, False)
    out.print(
        f"{result.space} index rebuilt: {result.vectors} vectors of {result.model} in {result.seconds:.1f} s",
    )


def _print_reports(reports: list[IngestReport], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([{**asdict(r), "counts": r.counts()} for r in reports], indent=1))
        return
    for r in reports:
        if r.error:
            err.print(f"[bold red]error:[/] {escape(r.root)}: {escape(r.error)}")
            continue
        counts = ", ".join(f"{n} {name}" for name, n in r.counts().items())
        audio = f"{r.audio_s / 3600:.2f} h" if r.audio_s >= 360 else f"{r.audio_s / 60:.1f} min"
        speed = f" ({r.audio_s / r.wall_s:.0f}× realtime)" if r.audio_s and r.wall_s else ""
        dry = "  (dry run: nothing written)" if r.dry_run else ""
        out.print(f"[bold]{escape(r.library)}[/] ({escape(r.root)}){dry}\n  {counts}")
        out.print(f"  {audio} of audio encoded in {r.wall_s:.1f} s{speed}")
        for note in r.notes:
            out.print(f"  note: {escape(note)}")
        for rel, reason in r.failed[:SHOWN_FAILURES]:
            err.print(f"  [red]failed:[/] {escape(str(Path(r.root) / rel))}: {escape(reason)}")
        if len(r.failed) > SHOWN_FAILURES:
            err.print(f"  ... and {len(r.failed) - SHOWN_FAILURES} more failed files (all of them with --json)")
