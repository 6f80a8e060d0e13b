"""Ingest against hostile folders and hard kills: every bad file is named, nothing else is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from soundsearch.indexer.db import IngestRun, RunStatus, Sound
from soundsearch.indexer.runner import Catalog, index_paths

from .conftest import LIBRARY_FILES, copy_library, shared_path
from .test_ingest import catalogue, settings_for

GOOD = {k: LIBRARY_FILES[k] for k in ("animals/LRBark_1_LA_cut.ogg", "animals/farm/cow.ogg")}


class DeleteWhenDecodingStarts:
    """A progress sink that removes a file after the scan listed it and before it is decoded."""

    def __init__(self, victim: Path) -> None:
        self.victim = victim

    def start(self, library: str, files: int) -> None:
        self.victim.unlink()

    def advance(self, files: int, audio_s: float) -> None:
        pass

    def note(self, message: str) -> None:
        pass


def build_bad_folder(root: Path) -> dict[str, str]:
    """Real sounds plus every kind of trouble; returns {relative path: expected failure reason fragment}."""
    copy_library(root, GOOD)
    real_ogg = shared_path(*LIBRARY_FILES["weapons/sword-1.ogg"].split("/")).read_bytes()
    (root / "bad").mkdir()
    (root / "bad/truncated.ogg").write_bytes(real_ogg[: len(real_ogg) // 2])
    rng = np.random.default_rng(0)
    sf.write(root / "bad/full.wav", rng.uniform(-0.5, 0.5, 44100).astype(np.float32), 44100, subtype="PCM_16")
    wav = (root / "bad/full.wav").read_bytes()
    (root / "bad/full.wav").unlink()
    (root / "bad/truncated.wav").write_bytes(wav[: len(wav) // 2])
    (root / "bad/empty.wav").write_bytes(b"")
    (root / "bad/notes.wav").write_text("this is a text file that someone renamed to .wav\n" * 20)
    # Unusual but valid: these must be indexed.
    (root / "odd").mkdir()
    sf.write(root / "odd/one-sample.wav", np.array([0.25], dtype=np.float32), 44100)
    sf.write(root / "odd/hires-6ch.wav", rng.uniform(-0.3, 0.3, (96000 * 2, 6)).astype(np.float32), 96000)
    with sf.SoundFile(root / "odd/hour-long.flac", "w", 8000, 1, subtype="PCM_16") as f:
        t = np.arange(8000 * 60) / 8000
        minute = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for _ in range(60):
            f.write(minute)
    # Links: a folder loop (must not be followed) and a file loop (must be reported).
    (root / "odd/loop").symlink_to("..", target_is_directory=True)
    (root / "bad/a.wav").symlink_to("b.wav")
    (root / "bad/b.wav").symlink_to("a.wav")
    sf.write(root / "bad/vanishing.wav", rng.uniform(-0.5, 0.5, 44100).astype(np.float32), 44100)
    return {
        "bad/truncated.ogg": "truncated",
        "bad/truncated.wav": "truncated",
        "bad/empty.wav": "empty file",
        "bad/notes.wav": "not a readable audio file",
        "bad/a.wav": "symbolic link loop",
        "bad/b.wav": "symbolic link loop",
        "bad/vanishing.wav": "vanished",
    }


def test_bad_input_folder_reports_each_bad_file_and_indexes_the_rest(make_home, tmp_path: Path) -> None:
    lib = tmp_path / "hostile"
    lib.mkdir()
    expected = build_bad_folder(lib)
    # Worker processes decode here (workers=1); the hour-long file gets 10 s windows without overlap.
    settings = settings_for(make_home(), workers=1, hop_s=10.0)
    (report,) = index_paths(settings, [lib], progress=DeleteWhenDecodingStarts(lib / "bad/vanishing.wav"))

    failed = dict(report.failed)
    assert set(failed) == set(expected), failed
    for rel, fragment in expected.items():
        assert fragment in failed[rel], (rel, failed[rel])
    assert sorted(report.indexed) == sorted([*GOOD, "odd/one-sample.wav", "odd/hires-6ch.wav", "odd/hour-long.flac"])
    catalog = Catalog.open(settings)
    with catalog.sessions() as session:
        sounds = {s.rel_path: s for s in session.scalars(select(Sound))}
    catalog.close()
    assert sounds["odd/hires-6ch.wav"].channels == 6 and sounds["odd/hires-6ch.wav"].sample_rate == 96000
    assert sounds["odd/hour-long.flac"].duration_s == pytest.approx(3600, abs=0.01)
    assert set(catalogue(settings)) == set(report.indexed)

    # The known bad files are reported again without being decoded, and retried once they change.
    (again,) = index_paths(settings, [lib])
    assert {rel for rel, _ in again.failed} == set(expected) - {"bad/vanishing.wav"}
    assert all("unchanged since the last attempt" in r for rel, r in again.failed if rel.startswith("bad/t"))
    assert again.unchanged == len(report.indexed)
    sf.write(lib / "bad/notes.wav", np.zeros(16000, dtype=np.float32), 16000)
    (fixed,) = index_paths(settings, [lib])
    assert fixed.indexed == ["bad/notes.wav"]


WESNOTH = "audio/sfx_debian/wesnoth/data/core/sounds"


def test_kill_9_mid_run_then_rerun_matches_an_uninterrupted_run(make_home, tmp_path: Path) -> None:
    sounds = sorted(p for p in shared_path(*WESNOTH.split("/")).glob("*.ogg"))[:40]
    lib = copy_library(tmp_path / "lib", {p.name: f"{WESNOTH}/{p.name}" for p in sounds})
    reference = settings_for(make_home())
    (uninterrupted,) = index_paths(reference, [lib])
    assert len(uninterrupted.indexed) == len(sounds)

    home = make_home()
    env = {
        **os.environ,
        "SOUNDSEARCH_HOME": str(home),
        "SOUNDSEARCH_THREADS": "1",
        "SOUNDSEARCH_BATCH_SIZE": "1",
        "SOUNDSEARCH_WORKERS": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "soundsearch", "index", str(lib)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    committed = _wait_for_rows(home / "soundsearch.db", 5, proc)
    workers = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 5 <= committed < len(sounds), f"the kill came too late to test anything ({committed} rows)"
    _wait_until_gone(workers)  # orphaned decode workers exit by themselves

    settings = settings_for(home)
    (finish,) = index_paths(settings, [lib])
    assert finish.unchanged >= committed  # what was committed before the kill was kept, not redone
    assert len(finish.indexed) + finish.unchanged == len(sounds) and not finish.failed
    killed, resumed = catalogue(settings), catalogue(reference)
    assert sorted(killed) == sorted(resumed)
    assert sorted(len(segs) for _, segs in killed.values()) == sorted(len(segs) for _, segs in resumed.values())
    catalog = Catalog.open(settings)
    with catalog.sessions() as session:
        statuses = [r.status for r in session.scalars(select(IngestRun).order_by(IngestRun.id))]
    catalog.close()
    assert statuses == [RunStatus.interrupted, RunStatus.finished]


def _wait_for_rows(db: Path, at_least: int, proc: subprocess.Popen, timeout: float = 120.0) -> int:
    """Poll the SQLite file (read-only) until `at_least` sounds are committed; returns the count."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the indexer exited ({proc.returncode}) before it could be killed")
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
                    count = con.execute("SELECT count(*) FROM sounds").fetchone()[0]
            except sqlite3.OperationalError:
                count = 0
            if count >= at_least:
                return count
        time.sleep(0.01)
    pytest.fail("no sound was committed in time")


def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (from /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def _wait_until_gone(pids: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]
        time.sleep(0.1)
    assert not alive, f"worker processes {alive} outlived the killed indexer"


def _state(pid: int) -> str:
    try:
        return next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State"))
    except (OSError, StopIteration):
        return "Z"
