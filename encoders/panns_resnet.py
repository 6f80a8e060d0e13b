"""PANNs ResNet22 and ResNet38: a conv block, four stages of residual basic blocks, a wide conv block.

As in the rest of PANNs, a stride-2 stage downsamples with 2x2 average pooling before its first
convolution (and in the shortcut) rather than with a strided convolution. Module names (`resnet.layer2.0
.downsample.1.weight`) follow the released checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .panns_frontend import PANNS_32K, FrontendConfig
from .panns_layers import ConvBlock, LogMelTagger

#: Basic blocks per stage; the stages have 64, 128, 256 and 512 channels.
RESNET22_LAYERS: Sequence[int] = (2, 2, 2, 2)
RESNET38_LAYERS: Sequence[int] = (3, 4, 6, 3)
STAGE_CHANNELS: Sequence[int] = (64, 128, 256, 512)


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    """Projection for the residual path when a block changes resolution or width, else None."""
    if stride == 1 and in_channels == out_channels:
        return None
    layers: list[nn.Module] = [nn.AvgPool2d(2)] if stride == 2 else []
    layers += [nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection (pooled first when stride is 2)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = _shortcut(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.avg_pool2d(x, kernel_size=2) if self.stride == 2 else x  # (batch, in, time, freq)
        out = F.relu_(self.bn1(self.conv1(out)))  # (batch, out, time, freq)
        out = self.bn2(self.conv2(out))  # (batch, out, time, freq)
        identity = x if self.downsample is None else self.downsample(x)  # (batch, out, time, freq)
        return F.relu_(out + identity)


class ResNetStages(nn.Module):
    """Four stages `layer1..layer4`; every stage but the first halves time and frequency."""

    def __init__(self, layers: Sequence[int]) -> None:
        super().__init__()
        in_channels = STAGE_CHANNELS[0]
        for index, (channels, blocks) in enumerate(zip(STAGE_CHANNELS, layers, strict=True), start=1):
            stride = 1 if index == 1 else 2
            stage = [BasicBlock(in_channels, channels, stride)]
            stage += [BasicBlock(channels, channels) for _ in range(1, blocks)]
            self.add_module(f"layer{index}", nn.Sequential(*stage))
            in_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.children():
            x = stage(x)  # (batch, channels, time, freq)
        return x


class PannsResNet(LogMelTagger):
    """PANNs ResNet: `conv_block1` (pool 2), residual stages, pool 2, `conv_block_after1` to 2048.

    Args:
        layers: basic blocks per stage, `RESNET22_LAYERS` or `RESNET38_LAYERS`.
        frontend: front-end settings.
        classes_num: output classes.
    """

    def __init__(
        self, layers: Sequence[int] = RESNET38_LAYERS, frontend: FrontendConfig = PANNS_32K, classes_num: int = 527
    ) -> None:
        # conv_block1, three stride-2 stages and the pooling before conv_block_after1.
        super().__init__(frontend, time_pools=5, classes_num=classes_num)
        self.conv_block1 = ConvBlock(1, STAGE_CHANNELS[0], kernel_size=3, pool=(2, 2))
        self.resnet = ResNetStages(layers)
        self.conv_block_after1 = ConvBlock(STAGE_CHANNELS[-1], 2048, kernel_size=3, pool=(1, 1))
        self._add_head(2048, embedding_dim=2048)

    def feature_map(self, waveform: torch.Tensor) -> torch.Tensor:
        x = self.conv_block1(self.log_mel(waveform))  # (batch, 64, frames / 2, mel_bins / 2)
        x = self.resnet(x)  # (batch, 512, frames / 16, mel_bins / 16)
        x = F.avg_pool2d(x, kernel_size=2)  # (batch, 512, frames / 32, mel_bins / 32)
        return self.conv_block_after1(x)  # (batch, 2048, frames / 32, mel_bins / 32)
