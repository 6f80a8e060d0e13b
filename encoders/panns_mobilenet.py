"""PANNs MobileNetV1 and MobileNetV2: the light taggers (about 4.8 M and 4.1 M weights).

They follow the ImageNet designs with two PANNs twists kept here for checkpoint compatibility:
downsampling is an average pooling after a stride-1 convolution (not a strided convolution), and the
stride-2 stages sit where PANNs put them. Layers are `nn.Sequential` indices (`features.3.4.weight`),
so every pooling slot keeps its index, with `nn.Identity` where a stage does not downsample.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .panns_frontend import PANNS_32K, FrontendConfig
from .panns_layers import LogMelTagger

#: MobileNetV1 depthwise-separable blocks after the stem: (out_channels, pool).
MOBILENET_V1_BLOCKS: Sequence[tuple[int, int]] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)  # fmt: skip

#: MobileNetV2 inverted-residual stages: (expansion, out_channels, repeats, pool of the first block).
#: PANNs downsamples at the 96-channel stage and keeps the 160-channel one (ImageNet does the reverse).
MOBILENET_V2_STAGES: Sequence[tuple[int, int, int, int]] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 2), (6, 160, 3, 1), (6, 320, 1, 1),
)  # fmt: skip


def _pool(pool: int) -> nn.Module:
    """Average pooling by `pool` in time and frequency, or a placeholder that keeps the layer index."""
    return nn.AvgPool2d(pool) if pool > 1 else nn.Identity()


def _stem(out_channels: int, activation: type[nn.ReLU] | type[nn.ReLU6]) -> nn.Sequential:
    """3x3 conv on the 1-channel log-mel, pooled by 2, BN, activation."""
    return nn.Sequential(
        nn.Conv2d(1, out_channels, 3, padding=1, bias=False),
        _pool(2),
        nn.BatchNorm2d(out_channels),
        activation(inplace=True),
    )


def _depthwise_pointwise(
    in_channels: int, out_channels: int, pool: int, activation: type[nn.ReLU] | type[nn.ReLU6]
) -> list[nn.Module]:
    """Depthwise 3x3 (then pooling), BN, activation, pointwise 1x1, BN: the core both MobileNets share.

    Returned as a list so each block can place it among its own layers and keep the checkpoints' indices.
    """
    return [
        nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
        _pool(pool),
        nn.BatchNorm2d(in_channels),
        activation(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
    ]


def _depthwise_separable(in_channels: int, out_channels: int, pool: int) -> nn.Sequential:
    """MobileNetV1 block: depthwise 3x3 (then pooling) and pointwise 1x1, each BN-ReLU."""
    return nn.Sequential(*_depthwise_pointwise(in_channels, out_channels, pool, nn.ReLU), nn.ReLU(inplace=True))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion, depthwise 3x3 (then pooling), linear 1x1 projection.

    The residual connection applies when the block keeps both the resolution and the channel count.
    With expansion 1 the expanding convolution is skipped.
    """

    def __init__(self, in_channels: int, out_channels: int, pool: int, expansion: int) -> None:
        super().__init__()
        hidden = round(in_channels * expansion)
        self.use_residual = pool == 1 and in_channels == out_channels
        expand: list[nn.Module] = []
        if expansion != 1:
            expand = [nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        self.conv = nn.Sequential(*expand, *_depthwise_pointwise(hidden, out_channels, pool, nn.ReLU6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)  # (batch, out, time / pool, freq / pool)
        return x + out if self.use_residual else out


class PannsMobileNetV1(LogMelTagger):
    """PANNs MobileNetV1: stem + 13 depthwise-separable blocks, 1024-d embedding."""

    def __init__(self, frontend: FrontendConfig = PANNS_32K, classes_num: int = 527) -> None:
        pools = 1 + sum(pool == 2 for _, pool in MOBILENET_V1_BLOCKS)
        super().__init__(frontend, time_pools=pools, classes_num=classes_num)
        layers: list[nn.Module] = [_stem(32, nn.ReLU)]
        in_channels = 32
        for out_channels, pool in MOBILENET_V1_BLOCKS:
            layers.append(_depthwise_separable(in_channels, out_channels, pool))
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self._add_head(in_channels, embedding_dim=1024)

    def feature_map(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.features(self.log_mel(waveform))  # (batch, 1024, frames / 32, mel_bins / 32)


class PannsMobileNetV2(LogMelTagger):
    """PANNs MobileNetV2: stem + 17 inverted residual blocks + 1x1 conv to 1280, 1024-d embedding."""

    def __init__(self, frontend: FrontendConfig = PANNS_32K, classes_num: int = 527) -> None:
        pools = 1 + sum(pool == 2 for *_, pool in MOBILENET_V2_STAGES)
        super().__init__(frontend, time_pools=pools, classes_num=classes_num)
        layers: list[nn.Module] = [_stem(32, nn.ReLU6)]
        in_channels = 32
        for expansion, out_channels, repeats, pool in MOBILENET_V2_STAGES:
            for index in range(repeats):
                layers.append(InvertedResidual(in_channels, out_channels, pool if index == 0 else 1, expansion))
                in_channels = out_channels
        last_channels = 1280
        layers.append(
            nn.Sequential(
                nn.Conv2d(in_channels, last_channels, 1, bias=False),
                nn.BatchNorm2d(last_channels),
                nn.ReLU6(inplace=True),
            )
        )
        self.features = nn.Sequential(*layers)
        self._add_head(last_channels, embedding_dim=1024)

    def feature_map(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.features(self.log_mel(waveform))  # (batch, 1280, frames / 32, mel_bins / 32)
