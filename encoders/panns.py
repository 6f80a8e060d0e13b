"""PANNs audio taggers (Kong et al. 2020), CNN family, and the registry of all released architectures.

One configurable class, `PannsCnn`, covers Cnn6, Cnn10, Cnn14 and Cnn14_16k through a table of block
settings; Cnn14_DecisionLevelMax and Wavegram_Logmel_Cnn14 differ only in their head or in an extra
waveform branch and are small subclasses. MobileNets and ResNets live in their own modules.
`PANNS_ARCHITECTURES` maps each released checkpoint's class name to a builder with that checkpoint's
constructor settings; module and parameter names follow the checkpoints so they load strictly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .base import NetOutput, TaggingNet
from .panns_frontend import PANNS_16K, PANNS_32K, FrontendConfig
from .panns_layers import ConvBlock, LogMelTagger
from .panns_mobilenet import PannsMobileNetV1, PannsMobileNetV2
from .panns_resnet import RESNET22_LAYERS, RESNET38_LAYERS, PannsResNet

#: One entry per conv block: (out_channels, pool), pool 2 halving time and frequency, 1 keeping them.
BlockTable = Sequence[tuple[int, int]]

CNN10_BLOCKS: BlockTable = ((64, 2), (128, 2), (256, 2), (512, 2))
# Cnn14's last block keeps its resolution: mel 64 -> 2 bins after five halvings is as far as it goes.
CNN14_BLOCKS: BlockTable = ((64, 2), (128, 2), (256, 2), (512, 2), (1024, 2), (2048, 1))


class PannsCnn(LogMelTagger):
    """VGG-like PANNs CNN: a stack of `ConvBlock`s `conv_block1..N` on the log-mel, then the clip head.

    Args:
        blocks: (out_channels, pool) per conv block; the last block's channels are the embedding size.
        kernel_size: 3 for two 3x3 convolutions per block (Cnn10, Cnn14), 5 for one 5x5 (Cnn6).
        frontend: front-end settings; `PANNS_16K` for Cnn14_16k.
        classes_num: output classes (527 AudioSet classes for the released checkpoints).
    """

    def __init__(
        self,
        blocks: BlockTable = CNN14_BLOCKS,
        kernel_size: int = 3,
        frontend: FrontendConfig = PANNS_32K,
        classes_num: int = 527,
    ) -> None:
        super().__init__(frontend, time_pools=sum(pool == 2 for _, pool in blocks), classes_num=classes_num)
        in_channels = 1
        for index, (out_channels, pool) in enumerate(blocks, start=1):
            block = ConvBlock(in_channels, out_channels, kernel_size, pool=(pool, pool))
            self.add_module(f"conv_block{index}", block)
            in_channels = out_channels
        self.num_blocks = len(blocks)
        self._add_head(in_channels, embedding_dim=in_channels)

    def conv_blocks(self) -> list[ConvBlock]:
        """The conv blocks in order (they are attributes, not a ModuleList, to keep checkpoint keys)."""
        return [getattr(self, f"conv_block{index}") for index in range(1, self.num_blocks + 1)]

    def feature_map(self, waveform: torch.Tensor) -> torch.Tensor:
        x = self.log_mel(waveform)  # (batch, 1, frames, mel_bins)
        for block in self.conv_blocks():
            x = block(x)  # (batch, channels, time, freq), time and freq halved by pooling blocks
        return x


class PannsCnnDecisionLevelMax(PannsCnn):
    """Cnn14 with a frame-level head: tags every segment, and the clip score is the max over time.

    The segment scores (one per 2**time_pools log-mel frames) are repeated back to the log-mel frame
    rate and the frames the pooling dropped at the end take the last segment's value, as the released
    model does, so `framewise` has one row per log-mel frame (`frame_hop_s` apart). The released model
    has no embedding; ours is the max over time of the per-segment `fc1` activations, pooled like the
    clip score.
    """

    def __init__(self, frontend: FrontendConfig = PANNS_32K, classes_num: int = 527) -> None:
        super().__init__(CNN14_BLOCKS, kernel_size=3, frontend=frontend, classes_num=classes_num)
        self.frame_hop_s = frontend.hop_size / frontend.sample_rate

    def head(self, x: torch.Tensor, frames: int) -> NetOutput:
        x = x.mean(dim=3)  # (batch, channels, time)
        # Smooth each segment with its neighbours (zero-padded average, as trained).
        x = F.max_pool1d(x, kernel_size=3, stride=1, padding=1) + F.avg_pool1d(
            x, kernel_size=3, stride=1, padding=1
        )  # (batch, channels, time)
        hidden = F.relu(self.fc1(x.transpose(1, 2)))  # (batch, time, embedding_dim)
        segment_logits = self.fc_audioset(hidden)  # (batch, time, classes)
        segmentwise = torch.sigmoid(segment_logits)  # (batch, time, classes)
        framewise = segmentwise.repeat_interleave(2**self.time_pools, dim=1)  # (batch, time * 32, classes)
        missing = frames - framewise.shape[1]
        tail = framewise[:, -1:, :].expand(-1, missing, -1)  # (batch, missing, classes)
        framewise = torch.cat((framewise, tail), dim=1)  # (batch, frames, classes)
        return NetOutput(
            clipwise=segmentwise.amax(dim=1),  # (batch, classes)
            embedding=hidden.amax(dim=1),  # (batch, embedding_dim)
            framewise=framewise,
            logits=segment_logits.amax(dim=1),  # sigmoid is monotonic: sigmoid(logits) == clipwise
        )


class WaveBlock(nn.Module):
    """1-D conv block of the Wavegram branch: conv, dilated conv (each BN-ReLU), then max pooling by 4."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel_size=3, dilation=2, padding=2, bias=False)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.bn2 = nn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.bn1(self.conv1(x)))  # (batch, out, length)
        x = F.relu_(self.bn2(self.conv2(x)))  # (batch, out, length)
        return F.max_pool1d(x, kernel_size=4)  # (batch, out, length / 4)


class PannsWavegramLogmelCnn14(PannsCnn):
    """Cnn14 fed with both the log-mel and a learnt "Wavegram" computed from the raw waveform.

    The Wavegram branch downsamples the waveform by 320 (one step per log-mel hop) to 128 channels,
    regroups them as 4 channels x 32 pseudo-frequency bins, and after `pre_block4` is concatenated with
    the log-mel branch's first conv block along the channel axis.
    """

    def __init__(self, frontend: FrontendConfig = PANNS_32K, classes_num: int = 527) -> None:
        super().__init__(CNN14_BLOCKS, kernel_size=3, frontend=frontend, classes_num=classes_num)
        self.pre_conv0 = nn.Conv1d(1, 64, kernel_size=11, stride=5, padding=5, bias=False)
        self.pre_bn0 = nn.BatchNorm1d(64)
        self.pre_block1 = WaveBlock(64, 64)
        self.pre_block2 = WaveBlock(64, 128)
        self.pre_block3 = WaveBlock(128, 128)
        self.pre_block4 = ConvBlock(4, 64, kernel_size=3, pool=(2, 1))
        # conv_block2 sees the 64 log-mel channels and the 64 Wavegram channels.
        self.conv_block2 = ConvBlock(128, 128, kernel_size=3, pool=(2, 2))
        # The Wavegram has ceil(samples / 5) // 64 frames and needs 2 * 16 of them (pre_block4 and four
        # more halvings), which takes more samples than the log-mel branch needs.
        self.min_samples = max(self.min_samples, 5 * (64 * 2**self.time_pools - 1) + 1)

    def wavegram(self, waveform: torch.Tensor) -> torch.Tensor:
        """Waveform (batch, samples) -> Wavegram features (batch, 64, frames / 2, 32)."""
        x = F.relu_(self.pre_bn0(self.pre_conv0(waveform[:, None, :])))  # (batch, 64, samples / 5)
        x = self.pre_block1(x)  # (batch, 64, samples / 20)
        x = self.pre_block2(x)  # (batch, 128, samples / 80)
        x = self.pre_block3(x)  # (batch, 128, samples / 320)
        x = x.reshape(x.shape[0], -1, 32, x.shape[-1]).transpose(2, 3)  # (batch, 4, samples / 320, 32)
        return self.pre_block4(x)  # (batch, 64, samples / 640, 32)

    def feature_map(self, waveform: torch.Tensor) -> torch.Tensor:
        wave = self.wavegram(waveform)  # (batch, 64, frames / 2, 32)
        blocks = self.conv_blocks()
        x = blocks[0](self.log_mel(waveform))  # (batch, 64, frames / 2, mel_bins / 2)
        # The two branches round differently (samples // 320 + 1 log-mel frames against
        # ceil(samples / 5) // 64 Wavegram frames) and can differ by one step when samples // 320 is
        # odd, where the released code fails; both are cut to the shorter one.
        steps = min(x.shape[2], wave.shape[2])
        x = torch.cat((x[:, :, :steps], wave[:, :, :steps]), dim=1)  # (batch, 128, frames / 2, 32)
        for block in blocks[1:]:
            x = block(x)  # (batch, channels, time, freq)
        return x


#: Builders for every released PANNs checkpoint, keyed by the official class name, with the constructor
#: settings each checkpoint was trained with (32 kHz front-end unless the name says 16k).
PANNS_ARCHITECTURES: dict[str, Callable[[], TaggingNet]] = {
    "Cnn6": partial(PannsCnn, CNN10_BLOCKS, kernel_size=5),
    "Cnn10": partial(PannsCnn, CNN10_BLOCKS, kernel_size=3),
    "Cnn14": partial(PannsCnn, CNN14_BLOCKS, kernel_size=3),
    "Cnn14_16k": partial(PannsCnn, CNN14_BLOCKS, kernel_size=3, frontend=PANNS_16K),
    "Cnn14_DecisionLevelMax": PannsCnnDecisionLevelMax,
    "Wavegram_Logmel_Cnn14": PannsWavegramLogmelCnn14,
    "MobileNetV1": PannsMobileNetV1,
    "MobileNetV2": PannsMobileNetV2,
    "ResNet22": partial(PannsResNet, RESNET22_LAYERS),
    "ResNet38": partial(PannsResNet, RESNET38_LAYERS),
}
