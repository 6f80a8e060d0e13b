"""The model store: official files under `<data home>/models`, downloaded or imported, always checksummed.

A file is only ever moved into place after its checksum matched, so a half-written or corrupt file is
never taken for a model. Downloads resume from a `.part` file. Files whose publisher gives no checksum
are pinned on first arrival: their sha256 is recorded in `checksums.json` and checked from then on.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import httpx

from .assets import ALL_ASSETS, LABELS, ONTOLOGY, Asset, find_asset

#: progress(done_bytes, total_bytes or None)
Progress = Callable[[int, "int | None"], None]


class ModelMissingError(FileNotFoundError):
    """A model file that is not in the store; the message names the command that fixes it."""

    def __init__(self, asset: Asset, path: Path) -> None:
        super().__init__(
            f"{asset.filename} is not installed (expected at {path}); run `soundsearch models pull "
            f"{asset.name}` or, offline, `soundsearch models import DIR` with a folder that holds it"
        )
        self.asset = asset


class ChecksumError(ValueError):
    """A file whose content does not match its published or pinned checksum."""


class FileState(str, Enum):
    OK = "ok"
    MISSING = "missing"
    MISMATCH = "checksum mismatch"


@dataclass
class ImportResult:
    source: Path
    asset: Asset | None
    status: str  # "imported", "already present", or the reason it was refused


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in chunks (checkpoints are hundreds of MB)."""
    h = hashlib.new(algorithm)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ModelStore:
    """Files of `ALL_ASSETS` under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    # -- where things are -------------------------------------------------------------------------
    def path(self, asset: Asset) -> Path:
        return self.root / asset.name

    @property
    def _pins_path(self) -> Path:
        return self.root / "checksums.json"

    def _pins(self) -> dict[str, str]:
        try:
            return json.loads(self._pins_path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _pin(self, asset: Asset, sha256: str) -> None:
        pins = self._pins()
        pins[asset.name] = sha256
        self._atomic_write(self._pins_path, json.dumps(pins, indent=1, sort_keys=True).encode())

    def require(self, asset: Asset) -> Path:
        """The installed file, or `ModelMissingError` naming the fix."""
        path = self.path(asset)
        if not path.is_file():
            raise ModelMissingError(asset, path)
        return path

    def labels_paths(self) -> tuple[Path, Path | None]:
        """The label CSV (required) and the ontology (optional) for the tagger."""
        ontology = self.path(ONTOLOGY)
        return self.require(LABELS), ontology if ontology.is_file() else None

    def sha256(self, asset: Asset) -> str:
        """The installed file's sha256: published or pinned when known, otherwise computed."""
        return asset.sha256 or self._pins().get(asset.name) or file_digest(self.require(asset), "sha256")

    # -- checking ---------------------------------------------------------------------------------
    def check_file(self, asset: Asset, path: Path) -> None:
        """Raise `ChecksumError` unless `path` is the asset's content (size, then published checksum)."""
        if asset.size_bytes is not None and path.stat().st_size != asset.size_bytes:
            raise ChecksumError(
                f"{path.name}: size {path.stat().st_size} bytes, expected {asset.size_bytes} for {asset.name}"
            )
        expected = asset.sha256 or self._pins().get(asset.name)
        if expected:
            actual = file_digest(path, "sha256")
            if actual != expected:
                raise ChecksumError(f"{path.name}: sha256 {actual} does not match {asset.name} ({expected})")
        if asset.md5:
            actual = file_digest(path, "md5")
            if actual != asset.md5:
                raise ChecksumError(f"{path.name}: md5 {actual} does not match {asset.name} ({asset.md5})")

    def state(self, asset: Asset) -> FileState:
        path = self.path(asset)
        if not path.is_file():
            return FileState.MISSING
        try:
            self.check_file(asset, path)
        except ChecksumError:
            return FileState.MISMATCH
        return FileState.OK

    def installed(self) -> Iterator[Asset]:
        return (a for a in ALL_ASSETS.values() if self.path(a).is_file())

    # -- getting files ----------------------------------------------------------------------------
    def _install(self, asset: Asset, src: Path, *, move: bool) -> Path:
        """Check `src`, then put it in place atomically; pin its sha256 when nothing is published."""
        self.check_file(asset, src)
        dest = self.path(asset)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if move:
            os.replace(src, dest)
        else:
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
            os.close(fd)
            try:
                shutil.copyfile(src, tmp)
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        if not asset.sha256 and asset.name not in self._pins():
            self._pin(asset, file_digest(dest, "sha256"))
        return dest

    def pull(self, asset: Asset, progress: Progress | None = None, client: httpx.Client | None = None) -> Path:
        """Download `asset` (resuming a partial download) unless it is already installed and intact."""
        if self.state(asset) is FileState.OK:
            return self.path(asset)
        part = self.path(asset).with_name(self.path(asset).name + ".part")
        part.parent.mkdir(parents=True, exist_ok=True)
        own_client = client is None
        client = client or httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0, read=120.0))
        try:
            self._download(client, asset.url, part, progress)
        finally:
            if own_client:
                client.close()
        try:
            return self._install(asset, part, move=True)
        except ChecksumError:
            part.unlink(missing_ok=True)  # a corrupt download must not be resumed
            raise

    @staticmethod
    def _download(client: httpx.Client, url: str, part: Path, progress: Progress | None) -> None:
        have = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with client.stream("GET", url, headers=headers) as resp:
            if resp.status_code == 416:  # the part file is already complete
                return
            resp.raise_for_status()
            if resp.status_code != 206:  # server ignored the range: start over
                have = 0
            length = resp.headers.get("content-length")
            total = have + int(length) if length else None
            with part.open("ab" if have else "wb") as fh:
                done = have
                for chunk in resp.iter_bytes(1 << 20):
                    fh.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)

    def import_dir(self, folder: Path) -> list[ImportResult]:
        """Install every known asset found (recursively) in a local folder, e.g. for offline machines."""
        results: list[ImportResult] = []
        for src in sorted(p for p in folder.rglob("*") if p.is_file()):
            asset = find_asset(src.name)
            if asset is None:
                continue
            if self.state(asset) is FileState.OK and file_digest(src, "sha256") == file_digest(
                self.path(asset), "sha256"
            ):
                results.append(ImportResult(src, asset, "already present"))
                continue
            try:
                self._install(asset, src, move=False)
                results.append(ImportResult(src, asset, "imported"))
            except (ChecksumError, OSError) as exc:
                results.append(ImportResult(src, asset, f"refused: {exc}"))
        return results

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
