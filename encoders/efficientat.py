"""EfficientAT MobileNetV3 audio taggers (mn04 ... mn40), written for strict loading of the releases.

Schmid, Koutini and Widmer (2023, "Efficient large-scale audio tagging via Transformer-to-CNN knowledge
distillation", MIT licence, github.com/fschmid56/EfficientAT) trained MobileNetV3 networks on AudioSet
log-mels by distilling transformer ensembles. One architecture, scaled by a width multiplier, covers
0.98 M parameters (mn04, mAP .432) to 68 M (mn40, mAP .484).

The network is the ImageNet MobileNetV3-Large layout on a 1-channel (mel, time) image: a strided stem,
15 inverted-residual blocks (1x1 expand, depthwise KxK, optional channel squeeze-excitation, 1x1
project, identity shortcut where shapes allow), a 1x1 conv to 6x the last block's width, then
global average pooling. The pooled vector is the embedding; a two-layer MLP head gives the 527 logits.

Module names mirror the released state_dicts (`features.<i>.block.<j>...`, `classifier.2`,
`classifier.5`, `...conc_se_layers.0.fc1`) so `load_strict` accepts them with no key mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

from .base import NetOutput, TaggingNet
from .efficientat_frontend import SAMPLE_RATE, EfficientATMelFrontEnd

#: BatchNorm settings of the released models (TensorFlow-style MobileNet defaults).
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01
#: The last 1x1 conv widens the last block's output by this factor; its pooled output is the embedding.
_HEAD_EXPANSION = 6


@dataclass(frozen=True)
class BlockSetting:
    """One inverted-residual block, channel counts at width 1.0 (MobileNetV3-Large, Table 2)."""

    kernel: int
    expanded: int
    out: int
    se: bool
    activation: str  # "relu" or "hardswish"
    stride: int
    dilation: int = 1


#: The 15 blocks of MobileNetV3-Large; strides of 2 halve both mel and time (stem included: /32 overall).
#: A block's input width is the previous block's output (the stem's 16 for the first one).
BLOCKS: tuple[BlockSetting, ...] = (
    # kernel, expanded, out, SE, activation, stride, dilation (channels at width 1.0)
    BlockSetting(3, 16, 16, False, "relu", 1, 1),
    BlockSetting(3, 64, 24, False, "relu", 2, 1),
    BlockSetting(3, 72, 24, False, "relu", 1, 1),
    BlockSetting(5, 72, 40, True, "relu", 2, 1),
    BlockSetting(5, 120, 40, True, "relu", 1, 1),
    BlockSetting(5, 120, 40, True, "relu", 1, 1),
    BlockSetting(3, 240, 80, False, "hardswish", 2, 1),
    BlockSetting(3, 200, 80, False, "hardswish", 1, 1),
    BlockSetting(3, 184, 80, False, "hardswish", 1, 1),
    BlockSetting(3, 184, 80, False, "hardswish", 1, 1),
    BlockSetting(3, 480, 112, True, "hardswish", 1, 1),
    BlockSetting(3, 672, 112, True, "hardswish", 1, 1),
    BlockSetting(5, 672, 160, True, "hardswish", 2, 1),
    BlockSetting(5, 960, 160, True, "hardswish", 1, 1),
    BlockSetting(5, 960, 160, True, "hardswish", 1, 1),
)
STEM_CHANNELS = 16
#: Hidden width of the MLP head at width 1.0.
HEAD_HIDDEN = 1280
#: Squeeze-excitation bottleneck: channels // 4, rounded to a multiple of 8.
SE_REDUCTION = 4


def round_channels(channels: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of `divisor`, never more than 10 % below it.

    The TensorFlow MobileNet rule; the released checkpoints' shapes depend on it exactly.
    """
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return rounded


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hardswish":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation {name!r}")


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) -> BatchNorm -> optional activation; children 0, 1, 2 as in the checkpoints."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        dilation: int = 1,
        activation: str | None = None,
    ) -> None:
        padding = (kernel - 1) // 2 * dilation  # "same" size at stride 1
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(out_channels, eps=_BN_EPS, momentum=_BN_MOMENTUM),
        ]
        if activation is not None:
            layers.append(_activation(activation))
        super().__init__(*layers)


class ChannelGate(nn.Module):
    """Squeeze-excitation over channels: average over (mel, time) -> ReLU bottleneck -> sigmoid scale."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeeze)
        self.fc2 = nn.Linear(squeeze, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))  # (B, C)
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(pooled))))  # (B, C)
        return x * scale[:, :, None, None]  # (B, C, F, T)


class SqueezeExcitation(nn.Module):
    """Wrapper that only gives the channel gate the checkpoint's name, `conc_se_layers.0`.

    The authors allow several concurrent gates (channel, frequency, time) fused by a max; every released
    mn model uses the channel gate alone, for which that fusion is the identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeeze = round_channels(channels // SE_REDUCTION)
        self.conc_se_layers = nn.ModuleList([ChannelGate(channels, squeeze)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conc_se_layers[0](x)  # (B, C, F, T)


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 bottleneck: 1x1 expand, depthwise KxK, [SE], 1x1 linear project, [+ input]."""

    def __init__(self, in_channels: int, expanded: int, out_channels: int, setting: BlockSetting) -> None:
        super().__init__()
        if setting.stride not in (1, 2):
            raise ValueError("stride must be 1 or 2")
        self.use_shortcut = setting.stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expanded != in_channels:  # blocks that do not widen skip the expansion conv (and its key)
            layers.append(ConvBNAct(in_channels, expanded, 1, activation=setting.activation))
        # A dilated block keeps the resolution instead of striding (as in torchvision's MobileNetV3).
        stride = 1 if setting.dilation > 1 else setting.stride
        layers.append(
            ConvBNAct(
                expanded,
                expanded,
                setting.kernel,
                stride=stride,
                groups=expanded,
                dilation=setting.dilation,
                activation=setting.activation,
            )
        )
        if setting.se:
            layers.append(SqueezeExcitation(expanded))
        layers.append(ConvBNAct(expanded, out_channels, 1, activation=None))  # linear bottleneck
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)  # (B, out, F', T')
        return out + x if self.use_shortcut else out


class EfficientATMobileNet(TaggingNet):
    """EfficientAT MobileNetV3 tagger: waveform (batch, samples) at 32 kHz -> `NetOutput`.

    `embedding` is the globally averaged output of the last conv (6 x the last block's width: 384 for
    mn04, 960 for mn10, 3840 for mn40); `logits` come from the MLP head and `clipwise` is their sigmoid.
    The whole module is deterministic: no augmentation in the front-end and no dropout in the head
    (its slot is kept as an identity so the head's layer indices match the checkpoints).
    """

    sample_rate = SAMPLE_RATE
    classes_num = 527

    def __init__(self, width_mult: float = 1.0, classes_num: int = 527) -> None:
        super().__init__()
        self.width_mult = width_mult
        self.classes_num = classes_num
        self.frontend = EfficientATMelFrontEnd()
        self.min_samples = self.frontend.min_samples

        def scaled(channels: int) -> int:
            return round_channels(channels * width_mult)

        stem = scaled(STEM_CHANNELS)
        layers: list[nn.Module] = [ConvBNAct(1, stem, 3, stride=2, activation="hardswish")]
        channels = stem
        for setting in BLOCKS:
            out = scaled(setting.out)
            layers.append(InvertedResidual(channels, scaled(setting.expanded), out, setting))
            channels = out
        self.embedding_dim = _HEAD_EXPANSION * channels
        layers.append(ConvBNAct(channels, self.embedding_dim, 1, activation="hardswish"))
        self.features = nn.Sequential(*layers)

        hidden = scaled(HEAD_HIDDEN)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),  # (B, E, 1, 1)
            nn.Flatten(start_dim=1),  # (B, E)
            nn.Linear(self.embedding_dim, hidden),  # classifier.2
            nn.Hardswish(inplace=True),
            nn.Identity(),  # dropout during the authors' training; nothing at inference
            nn.Linear(hidden, classes_num),  # classifier.5
        )

    def forward_mel(self, mel: torch.Tensor) -> NetOutput:
        """Run the network body on a front-end output (batch, n_mels, frames) or (batch, 1, n_mels, frames)."""
        if mel.dim() == 3:
            mel = mel.unsqueeze(1)  # (B, 1, n_mels, frames)
        if mel.dim() != 4 or mel.shape[1] != 1:
            raise ValueError(f"expected a (batch, [1,] n_mels, frames) mel, got shape {tuple(mel.shape)}")
        fmap = self.features(mel)  # (B, E, n_mels / 32, frames / 32), sizes rounded up
        embedding = F.adaptive_avg_pool2d(fmap, 1).flatten(1)  # (B, E)
        logits = self.classifier(fmap)  # (B, classes)
        return NetOutput(clipwise=torch.sigmoid(logits), embedding=embedding, logits=logits)

    def forward(self, waveform: torch.Tensor) -> NetOutput:
        return self.forward_mel(self.frontend(waveform))  # front-end: (B, samples) -> (B, n_mels, frames)


#: Width multiplier of each released MobileNet ("mn<width x 10>").
EFFICIENTAT_WIDTHS: dict[str, float] = {
    "mn04": 0.4,
    "mn05": 0.5,
    "mn10": 1.0,
    "mn20": 2.0,
    "mn30": 3.0,
    "mn40": 4.0,
}

#: Builders of untrained networks, one per released width; load weights with `load_strict`.
EFFICIENTAT_ARCHITECTURES: dict[str, Callable[[], TaggingNet]] = {
    name: partial(EfficientATMobileNet, width_mult=width) for name, width in EFFICIENTAT_WIDTHS.items()
}

#: AudioSet checkpoint file of each width in the authors' GitHub release v0.0.1
#: (https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1/<file>); bare state_dicts.
EFFICIENTAT_RELEASE_FILES: dict[str, str] = {
    "mn04": "mn04_as_mAP_432.pt",
    "mn05": "mn05_as_mAP_443.pt",
    "mn10": "mn10_as_mAP_471.pt",
    "mn20": "mn20_as_mAP_478.pt",
    "mn30": "mn30_as_mAP_482.pt",
    "mn40": "mn40_as_mAP_484.pt",
}
