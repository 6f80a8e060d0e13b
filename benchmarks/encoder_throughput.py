"""Encoder throughput in x realtime: model only on 10 s clips, and end to end on real files.

    .venv/bin/python benchmarks/encoder_throughput.py [--repeats 7] [--files 300] [--reference]

- model only: batches of 8 random 10 s clips at 32 kHz through each network (untrained weights: the
  speed does not depend on their values), 2 threads, median of `--repeats` timed runs after a warm-up;
- end to end: real files from ../shared/audio/sfx_debian decoded, mixed down and resampled (soxr) and
  encoded through `Encoder.encode_many` (segmenting, padding, batches of 8), the path ingest will use;
- with `--reference`: the same Cnn14 weights in the authors' packaged implementation
  (`pip install -e '.[bench]'`: panns_inference + torchlibrosa), timed side by side on the same input.
x realtime = seconds of audio processed per second of wall time.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from soundsearch.audio import load_audio
from soundsearch.encoders.encoder import Encoder
from soundsearch.encoders.registry import build_net, get_entry

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CLIP_S, BATCH, RATE = 10.0, 8, 32000


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (allocations, lazy init)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def model_only(name: str, repeats: int) -> tuple[float, torch.nn.Module]:
    net = build_net(get_entry(name)).eval()
    batch = torch.from_numpy(np.random.default_rng(0).uniform(-0.3, 0.3, (BATCH, int(CLIP_S * RATE))).astype("f4"))

    def run() -> None:
        with torch.inference_mode():
            net(batch)

    return BATCH * CLIP_S / median_time(run, repeats), net


def end_to_end(name: str, files: list[Path], repeats: int) -> tuple[float, float, float]:
    """(x realtime for decode+resample+encode, x realtime for decode+resample alone, audio seconds)."""
    encoder = Encoder(build_net(get_entry(name)), name, batch_size=BATCH, device="cpu")
    audio_s = sum(load_audio(f, target_rate=RATE).duration for f in files)

    def decode() -> list:
        return [load_audio(f, target_rate=RATE) for f in files]

    def full() -> None:
        decoded = decode()
        encoder.encode_many([(a.samples, a.sample_rate) for a in decoded])

    reps = max(1, repeats // 3)
    return audio_s / median_time(full, reps), audio_s / median_time(decode, reps), audio_s


def reference_cnn14(ours: torch.nn.Module, repeats: int) -> tuple[float, float]:
    """(ours, reference) x realtime for Cnn14 with the same weights, timed in alternation.

    The reference is the authors' packaged Cnn14 (panns_inference). Alternating the two runs keeps
    background load from favouring either side.
    """
    with tempfile.TemporaryDirectory() as home:
        # panns_inference reads (or wgets) its label CSV at import: give it the store's copy offline.
        labels = SHARED / "models" / "audioset" / "class_labels_indices.csv"
        (Path(home) / "panns_data").mkdir()
        shutil.copy(labels, Path(home) / "panns_data" / labels.name)
        os.environ["HOME"] = home
        from panns_inference.models import Cnn14

        ref = Cnn14(sample_rate=RATE, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000, classes_num=527)
    ref.load_state_dict(ours.state_dict(), strict=True)
    ref.eval()
    batch = torch.from_numpy(np.random.default_rng(0).uniform(-0.3, 0.3, (BATCH, int(CLIP_S * RATE))).astype("f4"))
    times: dict[str, list[float]] = {"ours": [], "reference": []}
    with torch.inference_mode():
        diff = (ref(batch)["embedding"] - ours(batch).embedding).abs().max().item()
        print(f"  reference Cnn14 vs ours, same weights: max |embedding difference| = {diff:.2e}")
        for _ in range(repeats):
            for label, net in (("ours", ours), ("reference", ref)):
                t0 = time.perf_counter()
                net(batch)
                times[label].append(time.perf_counter() - t0)
    return BATCH * CLIP_S / statistics.median(times["ours"]), BATCH * CLIP_S / statistics.median(times["reference"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["mn04", "MobileNetV1", "Cnn14"])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--files", type=int, default=300, help="real files for the end-to-end run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference", action="store_true", help="also time the authors' Cnn14 (bench extra)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lib = SHARED / "audio" / "sfx_debian"
    if not lib.is_dir():
        sys.exit(f"needs {lib} (the project's shared audio)")
    files = sorted(p for p in lib.rglob("*") if p.suffix.lower() in {".ogg", ".wav"})
    files = [files[i] for i in np.linspace(0, len(files) - 1, min(args.files, len(files))).astype(int)]
    print(f"# torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}")
    print(f"# {len(files)} real files for end to end; batch {BATCH}; model-only clips {CLIP_S:g} s at {RATE} Hz")
    rows = []
    for name in args.models:
        x_model, net = model_only(name, args.repeats)
        x_e2e, x_decode, audio_s = end_to_end(name, files, args.repeats)
        rows.append((name, x_model, x_e2e, x_decode, audio_s))
        print(f"{name}: model only {x_model:.1f}x, end to end {x_e2e:.1f}x (decode+resample alone {x_decode:.0f}x)")
        if args.reference and name == "Cnn14":
            x_ours, x_ref = reference_cnn14(net, args.repeats)
            print(f"  alternating: ours {x_ours:.1f}x, panns_inference {x_ref:.1f}x, ratio {x_ours / x_ref:.2f}")
    print("\n| model | model only, 10 s clips (x realtime) | end to end, real files (x realtime) | audio (s) |")
    print("|---|---|---|---|")
    for name, x_model, x_e2e, _, audio_s in rows:
        print(f"| {name} | {x_model:.1f} | {x_e2e:.1f} | {audio_s:.0f} |")


if __name__ == "__main__":
    main()
