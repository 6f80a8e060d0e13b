"""The model store: offline import, checksums, resumable downloads from a real (local) HTTP server."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from soundsearch.encoders.assets import LABELS, ONTOLOGY, Asset, find_asset
from soundsearch.encoders.store import ChecksumError, FileState, ModelMissingError, ModelStore

from .conftest import shared_path


class RangeServer(BaseHTTPRequestHandler):
    """Serves `files` with HTTP Range support and records the Range headers it saw."""

    files: ClassVar[dict[str, bytes]] = {}
    ranges: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        self.ranges.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        if start >= len(body):
            self.send_response(416)
            self.end_headers()
            return
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        self.wfile.write(body[start:])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeServer)
    RangeServer.files, RangeServer.ranges = {}, []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _asset_for(payload: bytes, base: str, name: str = "test/blob.bin", pinned: bool = True) -> Asset:
    sha = hashlib.sha256(payload).hexdigest() if pinned else None
    return Asset(name=name, url=f"{base}/{name}", licence="test", size_mb=0.0, sha256=sha)


def test_import_shared_models_and_verify(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    results = store.import_dir(shared_path("models"))
    imported = {r.asset.name for r in results if r.status == "imported"}
    assert {LABELS.name, ONTOLOGY.name, "efficientat/mn04_as_mAP_432.pt"} <= imported
    assert all(store.state(a) is FileState.OK for a in store.installed())
    # importing again changes nothing
    assert {r.status for r in store.import_dir(shared_path("models"))} == {"already present"}


def test_tampered_file_fails_verification_and_wrong_import_is_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    store.import_dir(shared_path("models", "audioset"))
    path = store.path(LABELS)
    path.write_bytes(path.read_bytes().replace(b"Speech", b"Speeck"))
    assert store.state(LABELS) is FileState.MISMATCH
    foreign = tmp_path / "elsewhere" / LABELS.filename
    foreign.parent.mkdir()
    foreign.write_text("index,mid,display_name\n0,/m/x,Nothing\n")
    (result,) = store.import_dir(foreign.parent)
    assert result.status.startswith("refused") and "sha256" in result.status


def test_missing_model_names_the_fixing_command(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match=r"soundsearch models pull efficientat/mn04_as_mAP_432.pt"):
        ModelStore(tmp_path).require(find_asset("mn04_as_mAP_432.pt"))


def test_download_resumes_from_partial_file(tmp_path: Path, server: str) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    asset = _asset_for(payload, server)
    RangeServer.files = {"/test/blob.bin": payload}
    store = ModelStore(tmp_path)
    part = store.path(asset).with_name("blob.bin.part")
    part.parent.mkdir(parents=True)
    part.write_bytes(payload[:300_000])
    seen: list[tuple[int, int | None]] = []
    path = store.pull(asset, progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == payload and not part.exists()
    assert RangeServer.ranges == ["bytes=300000-"]
    assert seen[-1] == (len(payload), len(payload))
    # an intact installed file is not downloaded again
    store.pull(asset)
    assert len(RangeServer.ranges) == 1


def test_corrupt_download_is_discarded(tmp_path: Path, server: str) -> None:
    payload = b"x" * 5000
    asset = _asset_for(payload, server)
    RangeServer.files = {"/test/blob.bin": b"y" * 5000}
    store = ModelStore(tmp_path)
    with pytest.raises(ChecksumError):
        store.pull(asset)
    assert not store.path(asset).exists()
    assert not store.path(asset).with_name("blob.bin.part").exists()


def test_unpublished_checksum_is_pinned_on_first_download(tmp_path: Path, server: str) -> None:
    payload = b"weights v1" * 100
    asset = _asset_for(payload, server, pinned=False)
    RangeServer.files = {"/test/blob.bin": payload}
    store = ModelStore(tmp_path)
    store.pull(asset)
    assert store.state(asset) is FileState.OK
    store.path(asset).write_bytes(b"weights v2" * 100)  # same size, other content
    assert store.state(asset) is FileState.MISMATCH


def test_published_size_is_checked(tmp_path: Path) -> None:
    asset = replace(LABELS, size_bytes=10)
    src = tmp_path / "in" / LABELS.filename
    src.parent.mkdir()
    src.write_bytes(shared_path("models", "audioset", LABELS.filename).read_bytes())
    with pytest.raises(ChecksumError, match="expected 10"):
        ModelStore(tmp_path / "models").check_file(asset, src)
