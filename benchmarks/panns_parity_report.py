"""Print how closely our PANNs networks reproduce the authors' outputs, model by model.

Usage: `.venv/bin/python benchmarks/panns_parity_report.py [--shared ../shared]`

For each model with reference data in `shared/fixtures/panns_parity`, the recorded state_dict is written
as an official checkpoint file (`{'model': state_dict}`), loaded through the product's path
(`read_state_dict` + `load_strict`), run in eval mode on both reference inputs, and compared with the
outputs recorded from the authors' code. Relative error = max |ours - reference| / max |reference|.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from soundsearch.encoders.base import load_strict, read_state_dict
from soundsearch.encoders.panns import PANNS_ARCHITECTURES

MODELS = ("Cnn6", "Cnn10", "Cnn14", "MobileNetV1", "MobileNetV2")
INPUTS = (("long", "", "input_waveform_32k.npy"), ("short", "short_", "input_short_32k.npy"))
DEFAULT_SHARED = Path(__file__).resolve().parents[2] / "shared"


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-12))


def model_rows(name: str, fixtures: Path, workdir: Path) -> list[tuple[str, str, str, float, float]]:
    """(model, input, samples, clipwise error, embedding error) for both reference inputs."""
    weights = np.load(fixtures / f"{name}_ternary_state_dict.npz")
    checkpoint = workdir / f"{name}.pth"
    torch.save({"model": {key: torch.from_numpy(weights[key]) for key in weights.files}}, checkpoint)
    net = PANNS_ARCHITECTURES[name]()
    load_strict(net, read_state_dict(checkpoint), str(checkpoint))
    net.eval()
    checkpoint.unlink()
    reference = np.load(fixtures / f"{name}_outputs.npz")
    rows = []
    for label, prefix, input_file in INPUTS:
        waveform = torch.from_numpy(np.load(fixtures / input_file))
        with torch.inference_mode():
            out = net(waveform)
        clip_error = relative_error(out.clipwise.numpy(), reference[prefix + "clipwise_output"])
        embedding_error = relative_error(out.embedding.numpy(), reference[prefix + "embedding"])
        shape = "x".join(str(size) for size in waveform.shape)
        rows.append((name, label, shape, clip_error, embedding_error))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared assets folder")
    args = parser.parse_args(argv)
    fixtures = args.shared / "fixtures" / "panns_parity"
    if not fixtures.is_dir():
        print(f"no reference data at {fixtures}", file=sys.stderr)
        return 1
    torch.manual_seed(0)
    header = ("model", "input", "samples", "clipwise max rel err", "embedding max rel err")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            for model, label, shape, clip_error, embedding_error in model_rows(name, fixtures, Path(tmp)):
                worst = max(worst, clip_error, embedding_error)
                print(f"{model} | {label} | {shape} | {clip_error:.2e} | {embedding_error:.2e}")
    print(f"worst relative error: {worst:.2e} (tolerance 1e-4)")
    return 0 if worst <= 1e-4 else 2


if __name__ == "__main__":
    sys.exit(main())
