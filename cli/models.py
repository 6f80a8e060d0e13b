"""`soundsearch models list | pull | import | verify`: the model store from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from ..encoders.assets import ALL_ASSETS, LABELS, ONTOLOGY, Asset
from ..encoders.load import open_store
from ..encoders.registry import MODELS, UnknownModelError, get_entry
from ..encoders.store import ChecksumError, FileState
from .common import HomeOption, err, fail, out, settings_for

models_app = typer.Typer(help="List, download, import and verify models.", no_args_is_help=True)


@models_app.command("list")
def list_models(home: HomeOption = None, files: bool = typer.Option(False, help="List every store file.")) -> None:
    """Models soundsearch can run, and whether each is installed."""
    store = open_store(settings_for(home))
    table = Table(title=f"Models in {store.root}")
    for col in ("name", "family", "AudioSet mAP", "embedding", "rate", "size", "state", "licence"):
        table.add_column(col)
    for e in MODELS.values():
        table.add_row(
            e.name, e.family, f"{e.audioset_map:.3f}", str(e.embedding_dim), f"{e.sample_rate // 1000} kHz",
            f"{e.asset.size_mb:g} MB", store.state(e.asset).value, e.licence,
        )  # fmt: skip
    out.print(table)
    if files:
        ft = Table(title="Store files")
        for col in ("file", "size", "state", "url"):
            ft.add_column(col)
        for a in ALL_ASSETS.values():
            ft.add_row(a.name, f"{a.size_mb:g} MB", store.state(a).value, a.url)
        out.print(ft)


def _resolve(name: str) -> list[Asset]:
    """A model name pulls its checkpoint plus the label files; a store file name pulls that file."""
    if name in ALL_ASSETS:
        return [ALL_ASSETS[name]]
    try:
        return [get_entry(name).asset, LABELS, ONTOLOGY]
    except UnknownModelError as exc:
        raise typer.BadParameter(f"{exc}; or a store file from `soundsearch models list --files`") from exc


@models_app.command()
def pull(
    names: Annotated[list[str], typer.Argument(help="Model names (mn04, Cnn14, ...) or store file names.")],
    home: HomeOption = None,
) -> None:
    """Download models from their official homes (resumable, checksummed)."""
    store = open_store(settings_for(home))
    wanted = list(dict.fromkeys(a for n in names for a in _resolve(n)))
    failed = 0
    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=err,
    ) as progress:  # fmt: skip
        for asset in wanted:
            if store.state(asset) is FileState.OK:
                out.print(f"{asset.name}: already installed")
                continue
            task = progress.add_task(asset.filename, total=asset.size_bytes)
            try:
                store.pull(asset, lambda done, total, t=task: progress.update(t, completed=done, total=total))
                out.print(f"{asset.name}: installed")
            except (httpx.HTTPError, ChecksumError, OSError) as exc:
                failed += 1
                err.print(
                    f"error: {asset.name}: download failed ({exc}); offline machines: `soundsearch models import DIR`"
                )
    if failed:
        raise typer.Exit(1)


@models_app.command("import")
def import_models(
    folder: Annotated[Path, typer.Argument(help="Folder holding official model/label files (searched recursively).")],
    home: HomeOption = None,
) -> None:
    """Install model files from a local folder (for machines without internet)."""
    if not folder.is_dir():
        fail(f"{folder}: not a folder")
    results = open_store(settings_for(home)).import_dir(folder)
    if not results:
        fail(f"{folder}: no known model or label files found (see `soundsearch models list --files`)")
    for r in results:
        out.print(f"{r.asset.name if r.asset else r.source}: {r.status}  ({r.source})")
    if any(r.status.startswith("refused") for r in results):
        raise typer.Exit(1)


@models_app.command()
def verify(home: HomeOption = None) -> None:
    """Check every installed file against its checksum."""
    store = open_store(settings_for(home))
    installed = list(store.installed())
    if not installed:
        fail(f"no model files installed in {store.root}; run `soundsearch models pull mn04`", code=1)
    bad = 0
    for asset in installed:
        state = store.state(asset)
        bad += state is not FileState.OK
        out.print(f"{asset.name}: {state.value}")
    if bad:
        fail(f"{bad} file(s) failed verification; `soundsearch models pull NAME` fetches them again", code=1)
