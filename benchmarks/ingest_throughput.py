"""End-to-end ingest of a real library, against the encoder-only ceiling, plus re-run and kill -9 checks.

    .venv/bin/python benchmarks/ingest_throughput.py [--library ../shared/audio/sfx_debian] [--workers 1]

1. `soundsearch index LIBRARY` in a fresh data home, as a subprocess (the way users run it): wall time,
   audio hours, × realtime, and the peak memory of the whole process tree (main + decode workers,
   sampled every 50 ms with psutil).
2. The same command again: nothing changed, so no decoding and no model work; its wall time.
3. Encoder-only ceiling: the same files decoded beforehand (not timed), then only `Encoder.encode_many`
   timed, with the same segmenting and batching: how fast ingest could be if decoding, hashing,
   writing and indexing were free.
4. kill -9 when about 40 % of the files are committed, run again, and compare the catalogue (sounds,
   segments, vectors, index size) with the uninterrupted run's.
Results go to stdout as markdown and to `benchmarks/results/ingest_throughput.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from soundsearch.audio import AudioDecodeError, load_audio
from soundsearch.config import Settings
from soundsearch.encoders.load import open_encoder
from soundsearch.encoders.store import ModelStore
from soundsearch.indexer.scan import scan_folder

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared"
RESULTS = HERE / "results" / "ingest_throughput.json"


def fresh_home(parent: Path, name: str) -> Path:
    home = parent / name
    ModelStore(home / "models").import_dir(SHARED / "models")
    return home


def run_index(home: Path, library: Path, workers: int, threads: int) -> dict:
    """One `soundsearch index` subprocess: wall time, peak RSS of its process tree, the JSON summary."""
    env = {**os.environ, "SOUNDSEARCH_HOME": str(home), "SOUNDSEARCH_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "soundsearch", "index", str(library), "--workers", str(workers), "--json"]
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:  # a file, not a pipe: the summary is larger than a pipe holds
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.DEVNULL, text=True)
        peak = 0
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            peak = max(peak, tree_rss(root))
            time.sleep(0.05)
        wall = time.perf_counter() - started
        out.seek(0)
        (report,) = json.loads(out.read())
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(peak / 2**20), "counts": report["counts"],
            "audio_s": report["audio_s"], "failed": report["failed"]}  # fmt: skip


def tree_rss(proc: psutil.Process) -> int:
    try:
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running())
    except psutil.Error:
        return 0


def encoder_ceiling(library: Path, threads: int) -> dict:
    """Model-only speed on the same audio: decode everything first, then time only the encoder."""
    settings = Settings(home=Path(tempfile.mkdtemp()), threads=threads)
    ModelStore(settings.models_dir).import_dir(SHARED / "models")
    encoder = open_encoder(settings)
    sounds = []
    for path in scan_folder(library):
        try:
            audio = load_audio(path, target_rate=encoder.sample_rate, max_seconds=settings.max_duration_s)
        except AudioDecodeError:
            continue
        sounds.append((audio.samples, audio.sample_rate))
    audio_s = sum(len(s) / r for s, r in sounds)
    started = time.perf_counter()
    for start in range(0, len(sounds), 32):
        encoder.encode_many(sounds[start : start + 32])
    seconds = time.perf_counter() - started
    return {"files": len(sounds), "audio_s": round(audio_s, 1), "seconds": round(seconds, 2),
            "x_realtime": round(audio_s / seconds, 1)}  # fmt: skip


def catalogue_counts(home: Path) -> dict:
    with sqlite3.connect(home / "soundsearch.db") as con:
        counts = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("sounds", "segments", "embeddings")
        }
    manifest = next((home / "indexes").glob("audio-*.json"))
    counts["index_vectors"] = json.loads(manifest.read_text())["count"]
    return counts


def kill_and_resume(parent: Path, library: Path, workers: int, threads: int, total: int) -> dict:
    home = fresh_home(parent, "killed")
    env = {**os.environ, "SOUNDSEARCH_HOME": str(home), "SOUNDSEARCH_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "soundsearch", "index", str(library), "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = int(0.4 * total)
    committed = 0
    while proc.poll() is None and committed < target:
        time.sleep(0.05)
        try:
            with sqlite3.connect(f"file:{home / 'soundsearch.db'}?mode=ro", uri=True, timeout=1) as con:
                committed = con.execute("SELECT count(*) FROM sounds").fetchone()[0]
        except sqlite3.Error:
            committed = 0
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    resumed = run_index(home, library, workers, threads)
    return {"committed_before_kill": committed, "resume": resumed, "catalogue": catalogue_counts(home)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--library", type=Path, default=SHARED / "audio" / "sfx_debian")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-kill", action="store_true")
    parser.add_argument("--keep-home", type=Path, help="Copy the clean run's data home here, to search it afterwards.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        parent = Path(tmp)
        home = fresh_home(parent, "clean")
        first = run_index(home, args.library, args.workers, args.threads)
        rerun = run_index(home, args.library, args.workers, args.threads)
        clean = catalogue_counts(home)
        if args.keep_home:
            shutil.copytree(home, args.keep_home, symlinks=True, dirs_exist_ok=True)
        ceiling = encoder_ceiling(args.library, args.threads)
        total = sum(first["counts"].values())
        killed = None if args.skip_kill else kill_and_resume(parent, args.library, args.workers, args.threads, total)
    x_rt = first["audio_s"] / first["wall_s"]
    report = {"library": str(args.library.name), "workers": args.workers, "threads": args.threads,
              "first": first, "rerun": rerun, "catalogue": clean, "ceiling": ceiling,
              "x_realtime": round(x_rt, 1), "ratio_to_ceiling": round(x_rt / ceiling["x_realtime"], 2),
              "kill": killed}  # fmt: skip
    print("| run | wall s | audio h | × realtime | peak RSS MiB | counts |\n|---|---|---|---|---|---|")
    print(f"| first | {first['wall_s']} | {first['audio_s'] / 3600:.2f} | {x_rt:.0f} | {first['peak_rss_mib']} "
          f"| {first['counts']} |")  # fmt: skip
    print(f"| re-run | {rerun['wall_s']} | 0 | – | {rerun['peak_rss_mib']} | {rerun['counts']} |")
    print(
        f"\nencoder-only ceiling: {ceiling['x_realtime']} × realtime; ingest reaches {report['ratio_to_ceiling']} of it"
    )
    print(f"catalogue after the clean run: {clean}")
    if killed:
        print(f"kill -9 after {killed['committed_before_kill']} sounds, then re-run {killed['resume']['counts']} "
              f"in {killed['resume']['wall_s']} s; catalogue {killed['catalogue']} "
              f"({'same as' if killed['catalogue'] == clean else 'DIFFERENT from'} the clean run)")  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
