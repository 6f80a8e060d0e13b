"""Log-mel front-end of the EfficientAT taggers, reproduced for inference.

EfficientAT (Schmid, Koutini, Widmer 2023) feeds its MobileNetV3 with 128 Kaldi-style mel bands of a
32 kHz waveform: pre-emphasis, a centred STFT (symmetric Hann window of 800 samples inside a 1024-point
FFT, hop 320, i.e. 100 frames per second), power spectrum, triangular mel filters from 0 Hz to 15 kHz,
`log(x + 1e-5)` and a fixed affine normalisation `(x + 4.5) / 5`.

The authors' module also augments in training mode (random filter-bank edges, frequency and time
masking). This one never does: it has no randomness and behaves the same in `train()` and `eval()`,
so a tag or an embedding depends on the audio alone. Its buffers are derived from the constructor
arguments and are not persistent, which is why the released checkpoints (which hold no front-end
tensors) load strictly into a network that contains it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

#: Constants of the released models' front-end.
SAMPLE_RATE = 32000
N_MELS = 128
N_FFT = 1024
WIN_LENGTH = 800
HOP_LENGTH = 320
F_MIN = 0.0
#: The authors leave `fmax` unset, which resolves to `sr / 2 - fmax_aug_range / 2` = 16000 - 1000.
F_MAX = 15000.0
PREEMPHASIS = 0.97
LOG_OFFSET = 1e-5
NORM_SHIFT = 4.5
NORM_SCALE = 5.0


def kaldi_mel_scale(freq_hz: np.ndarray | float) -> np.ndarray:
    """Kaldi's mel scale (natural log, 1127 * ln(1 + f / 700)), which the filters are spaced on."""
    return 1127.0 * np.log1p(np.asarray(freq_hz, dtype=np.float64) / 700.0)


def kaldi_mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float, f_max: float) -> np.ndarray:
    """Triangular mel filters as Kaldi builds them (no VTLN warp, no area normalisation).

    Filter `m` rises linearly on the mel axis from edge `m` to edge `m + 1` and falls to edge `m + 2`,
    with `n_mels + 2` edges equally spaced in mel between `f_min` and `f_max`. Kaldi evaluates the
    filters on the first `n_fft / 2` FFT bins only; the Nyquist bin gets a zero column so the matrix
    multiplies a full one-sided power spectrum of `n_fft / 2 + 1` bins.

    Returns float64 (n_mels, n_fft // 2 + 1).
    """
    if n_mels < 4:
        raise ValueError("need at least 4 mel bands")
    if not 0.0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"need 0 <= f_min < f_max <= {sample_rate / 2}, got {f_min}, {f_max}")
    n_bins = n_fft // 2
    mel_lo, mel_hi = float(kaldi_mel_scale(f_min)), float(kaldi_mel_scale(f_max))
    step = (mel_hi - mel_lo) / (n_mels + 1)
    edges = mel_lo + step * np.arange(n_mels + 2)  # (n_mels + 2,) band edges in mel
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]  # (n_mels, 1) each
    bin_mel = kaldi_mel_scale(np.arange(n_bins) * (sample_rate / n_fft))[None, :]  # (1, n_bins)
    rising = (bin_mel - left) / (centre - left)  # (n_mels, n_bins)
    falling = (right - bin_mel) / (right - centre)  # (n_mels, n_bins)
    weights = np.maximum(0.0, np.minimum(rising, falling))  # (n_mels, n_bins)
    return np.pad(weights, ((0, 0), (0, 1)))  # (n_mels, n_bins + 1): zero weight on the Nyquist bin


def symmetric_hann(length: int) -> np.ndarray:
    """Hann window whose first and last samples are both zero (MATLAB's `hann`, `periodic=False`)."""
    if length == 1:
        return np.ones(1)
    return 0.5 - 0.5 * np.cos(2.0 * math.pi * np.arange(length) / (length - 1))


class EfficientATMelFrontEnd(nn.Module):
    """Waveform (batch, samples) at 32 kHz -> normalised log-mel (batch, n_mels, frames).

    `frames = 1 + (samples - 1) // hop_length`: pre-emphasis drops one sample and the centred STFT
    adds one frame. Inputs shorter than `min_samples` cannot be reflect-padded by the STFT.
    """

    def __init__(
        self,
        n_mels: int = N_MELS,
        sample_rate: int = SAMPLE_RATE,
        win_length: int = WIN_LENGTH,
        hop_length: int = HOP_LENGTH,
        n_fft: int = N_FFT,
        f_min: float = F_MIN,
        f_max: float = F_MAX,
    ) -> None:
        super().__init__()
        if win_length > n_fft:
            raise ValueError("win_length must not exceed n_fft")
        self.n_mels = n_mels
        self.sample_rate = sample_rate
        self.win_length = win_length
        self.hop_length = hop_length
        self.n_fft = n_fft
        # Non-persistent: rebuilt from the arguments, absent from (and not expected in) checkpoints.
        # y[t] = x[t + 1] - 0.97 x[t], written as a 2-tap cross-correlation kernel.
        self.register_buffer(
            "preemphasis_kernel", torch.tensor([[[-PREEMPHASIS, 1.0]]], dtype=torch.float32), persistent=False
        )  # (out=1, in=1, taps=2)
        self.register_buffer(
            "window", torch.from_numpy(symmetric_hann(win_length)).float(), persistent=False
        )  # (win_length,); torch.stft centres it inside the n_fft frame
        mel = kaldi_mel_filterbank(n_mels, n_fft, sample_rate, f_min, f_max)
        self.register_buffer("mel_filters", torch.from_numpy(mel).float(), persistent=False)  # (n_mels, bins)

    @property
    def min_samples(self) -> int:
        """Shortest waveform accepted: the STFT reflect-pads n_fft / 2 samples, which needs more than that
        many samples left after pre-emphasis."""
        return self.n_fft // 2 + 2

    def num_frames(self, samples: int) -> int:
        """Number of mel frames produced for a waveform of `samples` samples."""
        return 1 + (samples - 1) // self.hop_length

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() != 2:
            raise ValueError(f"expected a (batch, samples) waveform, got shape {tuple(waveform.shape)}")
        if waveform.shape[1] < self.min_samples:
            raise ValueError(f"waveform has {waveform.shape[1]} samples, needs at least {self.min_samples}")
        x = waveform.float()
        x = nn.functional.conv1d(x.unsqueeze(1), self.preemphasis_kernel).squeeze(1)  # (B, N - 1)
        spec = torch.stft(
            x,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )  # (B, n_fft // 2 + 1, frames) complex
        power = torch.view_as_real(spec).pow(2).sum(dim=-1)  # (B, bins, frames): re² + im²
        mel = torch.matmul(self.mel_filters, power)  # (B, n_mels, frames)
        log_mel = torch.log(mel + LOG_OFFSET)  # (B, n_mels, frames)
        return (log_mel + NORM_SHIFT) / NORM_SCALE  # (B, n_mels, frames), roughly zero-mean, unit-scale
