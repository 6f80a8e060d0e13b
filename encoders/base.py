"""What every audio tagging network returns, and how a checkpoint file is loaded into one.

Each model family (PANNs, EfficientAT) implements `TaggingNet`: a deterministic `nn.Module` that maps a
batch of mono waveforms at the model's sample rate to `NetOutput`. Everything above that (resampling,
segmenting, batching, threads, devices) lives in `encoders.encoder` and is shared by all families.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn


@dataclass
class NetOutput:
    """Named outputs of one forward pass (batch first)."""

    clipwise: torch.Tensor  # (batch, classes) probabilities in [0, 1]
    embedding: torch.Tensor  # (batch, embedding_dim)
    framewise: torch.Tensor | None = None  # (batch, frames, classes) probabilities, where the model has them
    logits: torch.Tensor | None = None  # (batch, classes) pre-sigmoid scores, where the model has them


class TaggingNet(nn.Module):
    """Base class of the tagging networks: waveform (batch, samples) -> `NetOutput`."""

    sample_rate: int = 32000
    embedding_dim: int = 0
    classes_num: int = 527
    #: Shortest input (in samples) the network can take; shorter clips are zero-padded up to it.
    min_samples: int = 32000
    #: Seconds between two frames of `NetOutput.framewise`, for models that have it.
    frame_hop_s: float | None = None

    def forward(self, waveform: torch.Tensor) -> NetOutput:  # pragma: no cover - abstract
        raise NotImplementedError


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read or does not fit the architecture."""


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint file as released by its authors.

    PANNs files are `{'model': state_dict, ...}`; EfficientAT files are a bare state_dict. Tensors are
    mapped to the CPU so a checkpoint saved on a GPU loads anywhere.
    """
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: checkpoint holds no state_dict")
    return obj


def load_strict(net: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load weights with every key and shape matching, or fail naming what differs.

    A half-loaded model gives plausible but wrong tags, so a mismatch is always an error.
    """
    own = net.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    wrong_shape = sorted(k for k in set(own) & set(state_dict) if tuple(own[k].shape) != tuple(state_dict[k].shape))
    if missing or unexpected or wrong_shape:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
            if keys:
                shown = ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
                parts.append(f"{label}: {shown}")
        raise CheckpointError(f"{source}: weights do not fit {type(net).__name__} ({'; '.join(parts)})")
    net.load_state_dict(state_dict, strict=True)
