"""Pieces shared by every PANNs network: the conv block, and the log-mel tagger skeleton.

Every released PANNs model is front-end -> per-mel-bin batch norm (`bn0`) -> a 2-D CNN body -> global
pooling -> `fc1` -> `fc_audioset`. `LogMelTagger` holds the shared ends so the model files only
describe their bodies. Module names follow the released checkpoints so they load with strict keys.
Dropout from the training recipe is left out: it is the identity in eval mode, and these nets are for
inference only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import NetOutput, TaggingNet
from .panns_frontend import FrontendConfig, build_frontend

#: (time, frequency) kernel of an average pooling; (1, 1) means no pooling.
Pool = tuple[int, int]


class ConvBlock(nn.Module):
    """Conv-BN-ReLU, once (Cnn6's 5x5 kernels) or twice (3x3 kernels), then average pooling.

    Two stacked 3x3 convolutions see as far as one 5x5 with fewer weights; the pooling halves time
    and frequency between the stages of the CNN.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, pool: Pool = (2, 2)) -> None:
        super().__init__()
        self.pool = pool
        padding = kernel_size // 2
        double = kernel_size == 3
        # Registration order conv1, conv2, bn1, bn2 reproduces the checkpoints' key order.
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size, padding=padding, bias=False) if double else None
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels) if double else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.bn1(self.conv1(x)))  # (batch, out, time, freq)
        if self.conv2 is not None and self.bn2 is not None:
            x = F.relu_(self.bn2(self.conv2(x)))  # (batch, out, time, freq)
        if self.pool != (1, 1):
            x = F.avg_pool2d(x, kernel_size=self.pool)  # (batch, out, time / pt, freq / pf)
        return x


class LogMelTagger(TaggingNet):
    """Skeleton of a PANNs tagger; subclasses build their body and implement `feature_map`.

    `time_pools` is how many times the body halves the time axis: the log-mel needs at least
    2**time_pools frames, which sets `min_samples`.
    """

    fc1: nn.Linear
    fc_audioset: nn.Linear

    def __init__(self, frontend: FrontendConfig, time_pools: int, classes_num: int = 527) -> None:
        super().__init__()
        self.frontend = frontend
        self.time_pools = time_pools
        self.sample_rate = frontend.sample_rate
        self.classes_num = classes_num
        # frames = samples // hop + 1 >= 2**time_pools
        self.min_samples = (2**time_pools - 1) * frontend.hop_size
        self.spectrogram_extractor, self.logmel_extractor = build_frontend(frontend)
        self.bn0 = nn.BatchNorm2d(frontend.mel_bins)

    def _add_head(self, in_features: int, embedding_dim: int) -> None:
        """Create `fc1` (the embedding layer) and `fc_audioset` (the classifier); called last."""
        self.embedding_dim = embedding_dim
        self.fc1 = nn.Linear(in_features, embedding_dim)
        self.fc_audioset = nn.Linear(embedding_dim, self.classes_num)

    def log_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """Waveform (batch, samples) -> log-mel normalised per mel bin, (batch, 1, frames, mel_bins)."""
        x = self.logmel_extractor(self.spectrogram_extractor(waveform))  # (batch, 1, frames, mel_bins)
        # bn0 normalises each mel bin, so the mel axis goes to the channel position and back.
        return self.bn0(x.transpose(1, 3)).transpose(1, 3)  # (batch, 1, frames, mel_bins)

    def feature_map(self, waveform: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """Waveform (batch, samples) -> body output (batch, channels, time, freq)."""
        raise NotImplementedError

    def head(self, x: torch.Tensor, frames: int) -> NetOutput:
        """Clip-level head: mean over frequency, max + mean over time, then the two linear layers."""
        x = x.mean(dim=3)  # (batch, channels, time)
        x = x.amax(dim=2) + x.mean(dim=2)  # (batch, channels)
        embedding = F.relu(self.fc1(x))  # (batch, embedding_dim)
        logits = self.fc_audioset(embedding)  # (batch, classes)
        return NetOutput(clipwise=torch.sigmoid(logits), embedding=embedding, logits=logits)

    def forward(self, waveform: torch.Tensor) -> NetOutput:
        if waveform.dim() != 2:
            raise ValueError(f"expected a waveform batch (batch, samples), got shape {tuple(waveform.shape)}")
        if waveform.shape[-1] < self.min_samples:
            raise ValueError(
                f"{type(self).__name__} needs at least {self.min_samples} samples, got {waveform.shape[-1]}"
                " (zero-pad short clips)"
            )
        x = self.feature_map(waveform)  # (batch, channels, time, freq)
        return self.head(x, frames=self.frontend.frames(waveform.shape[-1]))
