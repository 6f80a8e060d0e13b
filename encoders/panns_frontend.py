"""The PANNs log-mel front-end: waveform -> power spectrogram -> log-mel, deterministic at inference.

The released checkpoints store the front-end tensors (a DFT basis used as a strided convolution and the
mel filter bank) under `spectrogram_extractor.stft.conv_real.weight`, `...conv_imag.weight` and
`logmel_extractor.melW`, so the modules here keep those names and hold the tensors as persistent buffers:
they load strictly from a checkpoint, yet a freshly built model computes them itself and works untrained.
Training-time augmentation (SpecAugment, mixup) is deliberately absent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Floor of the power before the log, as in the released models (10 * log10(1e-10) = -100 dB).
AMIN = 1e-10


@dataclass(frozen=True)
class FrontendConfig:
    """Front-end settings; they decide the buffer shapes and must match the checkpoint."""

    sample_rate: int = 32000
    window_size: int = 1024  # n_fft and Hann window length
    hop_size: int = 320
    mel_bins: int = 64
    fmin: float = 50.0
    fmax: float = 14000.0

    @property
    def freq_bins(self) -> int:
        return self.window_size // 2 + 1

    def frames(self, samples: int) -> int:
        """Spectrogram frames of a clip of `samples` (centred STFT: one frame per hop, plus one)."""
        return samples // self.hop_size + 1


#: The 32 kHz setting of every released PANNs model except Cnn14_16k.
PANNS_32K = FrontendConfig()
#: Cnn14_16k: 16 kHz audio, 512-point window, 10 ms hop, mel bands up to 8 kHz.
PANNS_16K = FrontendConfig(sample_rate=16000, window_size=512, hop_size=160, fmax=8000.0)


def dft_kernels(n_fft: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary parts of the one-sided DFT times a periodic Hann window.

    Returns two float32 tensors (n_fft // 2 + 1, 1, n_fft): convolving a waveform with them at the hop
    stride gives the real and imaginary STFT.
    """
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)  # periodic Hann, (n_fft,)
    # Reduce n*k modulo n_fft before the trigonometry so large products lose no precision.
    phase = 2.0 * np.pi * (np.outer(k, n) % n_fft) / n_fft  # (freq_bins, n_fft)
    real = np.cos(phase) * window
    imag = -np.sin(phase) * window
    return (
        torch.from_numpy(real[:, None, :].astype(np.float32)),
        torch.from_numpy(imag[:, None, :].astype(np.float32)),
    )


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa's default, htk=False)."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3.0)
    log_step = math.log(6.4) / 27.0
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-12) / 1000.0) / log_step
    return np.where(hz >= 1000.0, logarithmic, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3.0)
    log_step = math.log(6.4) / 27.0
    logarithmic = 1000.0 * np.exp(log_step * (mel - 15.0))
    return np.where(mel >= 15.0, logarithmic, linear)


def mel_filterbank(sample_rate: int, n_fft: int, mel_bins: int, fmin: float, fmax: float) -> torch.Tensor:
    """Slaney-normalised triangular mel filters, (n_fft // 2 + 1, mel_bins) float32.

    Same definition as `librosa.filters.mel(...).T` (Slaney scale and area normalisation), which is what
    the checkpoints were trained with; computed here in float64 to avoid importing librosa.
    """
    fft_hz = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)  # (freq_bins,)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), mel_bins + 2))  # (mel_bins + 2,)
    widths = np.diff(edges_hz)  # (mel_bins + 1,)
    offsets = edges_hz[:, None] - fft_hz[None, :]  # (mel_bins + 2, freq_bins)
    rising = -offsets[:-2] / widths[:-1, None]
    falling = offsets[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))  # (mel_bins, freq_bins)
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]  # equal area per filter
    return torch.from_numpy(np.ascontiguousarray(weights.T).astype(np.float32))


class _Kernel(nn.Module):
    """Holds one fixed convolution kernel as a buffer named `weight` (the checkpoint's key)."""

    weight: torch.Tensor

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight)


class _DFTConv(nn.Module):
    """The STFT as two strided 1-D convolutions (real and imaginary parts)."""

    def __init__(self, n_fft: int) -> None:
        super().__init__()
        real, imag = dft_kernels(n_fft)
        self.conv_real = _Kernel(real)
        self.conv_imag = _Kernel(imag)


class PowerSpectrogram(nn.Module):
    """Waveform (batch, samples) -> power spectrogram (batch, 1, frames, freq_bins).

    Centred frames: the waveform is reflect-padded by n_fft // 2 on both sides, so a clip gives
    samples // hop + 1 frames and must be longer than n_fft // 2 samples.
    """

    def __init__(self, n_fft: int, hop_size: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_size = hop_size
        self.stft = _DFTConv(n_fft)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        pad = self.n_fft // 2
        x = F.pad(waveform[:, None, :], (pad, pad), mode="reflect")  # (batch, 1, samples + n_fft)
        real = F.conv1d(x, self.stft.conv_real.weight, stride=self.hop_size)  # (batch, freq_bins, frames)
        imag = F.conv1d(x, self.stft.conv_imag.weight, stride=self.hop_size)  # (batch, freq_bins, frames)
        power = real**2 + imag**2  # (batch, freq_bins, frames)
        return power[:, None].transpose(2, 3)  # (batch, 1, frames, freq_bins)


class LogMelFilterBank(nn.Module):
    """Power spectrogram (batch, 1, frames, freq_bins) -> log-mel in dB (batch, 1, frames, mel_bins).

    dB relative to 1.0 with a floor at `AMIN` and no top_db clipping, as in the released models.
    """

    melW: torch.Tensor

    def __init__(self, sample_rate: int, n_fft: int, mel_bins: int, fmin: float, fmax: float) -> None:
        super().__init__()
        self.register_buffer("melW", mel_filterbank(sample_rate, n_fft, mel_bins, fmin, fmax))

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(power, self.melW)  # (batch, 1, frames, mel_bins)
        return 10.0 * torch.log10(torch.clamp(mel, min=AMIN))


def build_frontend(config: FrontendConfig) -> tuple[PowerSpectrogram, LogMelFilterBank]:
    """The two front-end modules, to be assigned to `spectrogram_extractor` and `logmel_extractor`."""
    return (
        PowerSpectrogram(config.window_size, config.hop_size),
        LogMelFilterBank(config.sample_rate, config.window_size, config.mel_bins, config.fmin, config.fmax),
    )
