"""Print how closely soundsearch's EfficientAT mn04 reproduces the authors' reference outputs.

Usage: python benchmarks/efficientat_parity_report.py [--shared ../shared]

For each fixture input (three real 10 s clips from their waveforms, one synthetic mel) it prints the
max relative error (max |ours - reference| / max |reference|) of the 527 logits and the 384-d
embedding, our top-3 AudioSet tags with their probabilities (first row only for the synthetic
batch) and the best-of-three forward time on this machine's CPU.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np
import torch

from soundsearch.encoders.base import load_strict, read_state_dict
from soundsearch.encoders.efficientat import EFFICIENTAT_ARCHITECTURES, EFFICIENTAT_RELEASE_FILES

REPO = Path(__file__).resolve().parents[1]


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared assets folder")
    args = parser.parse_args(argv)

    checkpoint = args.shared / "models" / "efficientat" / EFFICIENTAT_RELEASE_FILES["mn04"]
    fixture = args.shared / "fixtures" / "efficientat_parity" / "mn04_as_reference_outputs.npz"
    labels_csv = args.shared / "models" / "audioset" / "class_labels_indices.csv"
    for path in (checkpoint, fixture, labels_csv):
        if not path.exists():
            print(f"missing {path}", file=sys.stderr)
            return 1

    with labels_csv.open(newline="") as f:
        labels = [row["display_name"] for row in csv.DictReader(f)]
    net = EFFICIENTAT_ARCHITECTURES["mn04"]()
    load_strict(net, read_state_dict(checkpoint), str(checkpoint))
    net.eval()
    ref = dict(np.load(fixture))

    print(f"EfficientAT mn04 ({checkpoint.name}) vs the authors' code, torch {torch.__version__}, float32 CPU")
    header = f"{'input':<22} {'logits rel.err':>14} {'emb. rel.err':>12} {'ms':>6}  top-3 tags"
    print(header)
    print("-" * len(header) + "-" * 50)
    inputs = [(f"{c} (waveform 10 s)", c, f"{c}_waveform_32k") for c in ("music", "speech", "typing")]
    inputs.append(("synthetic (mel, 2 rows)", "synthetic", "synthetic_mel"))
    for title, name, key in inputs:
        x = torch.from_numpy(ref[key])
        timings = []
        for _ in range(3):  # best of three: the first call pays for allocations
            start = time.perf_counter()
            with torch.no_grad():
                out = net.forward_mel(x) if key.endswith("_mel") else net(x[None])
            timings.append(1000 * (time.perf_counter() - start))
        ms = min(timings)
        assert out.logits is not None
        err_logits = rel_error(out.logits.numpy(), ref[f"{name}_logits"])
        err_emb = rel_error(out.embedding.numpy(), ref[f"{name}_embedding"])
        probs = out.clipwise[0]
        top = torch.argsort(probs, descending=True)[:3].tolist()
        tags = ", ".join(f"{labels[i]} {probs[i].item():.2f}" for i in top)
        print(f"{title:<22} {err_logits:>14.2e} {err_emb:>12.2e} {ms:>6.0f}  {tags}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
