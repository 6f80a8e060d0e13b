"""PANNs networks against the authors' code: checkpoint layout, outputs, front-end, loading, short clips.

The reference data in ../shared/fixtures/panns_parity was recorded with the authors' `pytorch/models.py`
and torchlibrosa (eval mode, 32 kHz settings) on deterministic non-trained weights; see shared/README.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from soundsearch.encoders.base import CheckpointError, TaggingNet, load_strict, read_state_dict
from soundsearch.encoders.panns import PANNS_ARCHITECTURES
from soundsearch.encoders.panns_frontend import (
    PANNS_16K,
    PANNS_32K,
    FrontendConfig,
    PowerSpectrogram,
    mel_filterbank,
)

from .conftest import shared_path

MANIFEST_MODELS = (
    "Cnn6", "Cnn10", "Cnn14", "MobileNetV1", "MobileNetV2",
    "Wavegram_Logmel_Cnn14", "ResNet22", "Cnn14_DecisionLevelMax",
)  # fmt: skip
PARITY_MODELS = ("Cnn6", "Cnn10", "Cnn14", "MobileNetV1", "MobileNetV2")
INPUTS = (("", "input_waveform_32k.npy"), ("short_", "input_short_32k.npy"))
MAX_RELATIVE_ERROR = 1e-4


def fixture_file(name: str) -> Path:
    return shared_path("fixtures", "panns_parity", name)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute difference relative to the largest reference magnitude (scale-aware, and
    well defined where single reference values are zero, e.g. ReLU embeddings)."""
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-12))


class _LazyNets(dict[str, TaggingNet]):
    def __missing__(self, name: str) -> TaggingNet:
        net = self[name] = PANNS_ARCHITECTURES[name]().eval()
        return net


@pytest.fixture(scope="module")
def nets() -> Iterator[dict[str, TaggingNet]]:
    """Fresh nets in eval mode, built on first use and shared by this module (big ones take ~1 s)."""
    cache = _LazyNets()
    yield cache
    cache.clear()


def test_registry_has_every_released_architecture() -> None:
    assert set(PANNS_ARCHITECTURES) == {
        "Cnn6", "Cnn10", "Cnn14", "Cnn14_16k", "Cnn14_DecisionLevelMax", "Wavegram_Logmel_Cnn14",
        "MobileNetV1", "MobileNetV2", "ResNet22", "ResNet38",
    }  # fmt: skip


# (a) checkpoint layout ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", MANIFEST_MODELS)
def test_state_dict_keys_and_shapes_match_official(name: str) -> None:
    manifest = json.loads(fixture_file("state_dict_manifest.json").read_text())
    assert set(manifest) == set(MANIFEST_MODELS)
    # Shapes only: weights on the meta device skip allocating and initialising ~80 M parameters.
    with torch.device("meta"):
        net = PANNS_ARCHITECTURES[name]()
    ours = {key: list(value.shape) for key, value in net.state_dict().items()}
    assert ours == manifest[name]["keys"]


def test_cnn14_16k_is_cnn14_with_a_16k_front_end() -> None:
    """No manifest for Cnn14_16k: its released file is Cnn14's layout with 512-point front-end tensors."""
    expected = json.loads(fixture_file("state_dict_manifest.json").read_text())["Cnn14"]["keys"]
    expected |= {
        "spectrogram_extractor.stft.conv_real.weight": [257, 1, 512],
        "spectrogram_extractor.stft.conv_imag.weight": [257, 1, 512],
        "logmel_extractor.melW": [257, 64],
    }
    with torch.device("meta"):
        net = PANNS_ARCHITECTURES["Cnn14_16k"]()
    assert {key: list(value.shape) for key, value in net.state_dict().items()} == expected
    assert net.sample_rate == 16000


# (b) outputs through the real checkpoint-loading path ----------------------------------------------


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_outputs_match_reference(name: str, tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    weights = np.load(fixture_file(f"{name}_ternary_state_dict.npz"))
    checkpoint = tmp_path / f"{name}.pth"
    torch.save({"model": {key: torch.from_numpy(weights[key]) for key in weights.files}}, checkpoint)
    net = PANNS_ARCHITECTURES[name]()
    load_strict(net, read_state_dict(checkpoint), str(checkpoint))
    net.eval()
    reference = np.load(fixture_file(f"{name}_outputs.npz"))
    for prefix, input_name in INPUTS:
        waveform = torch.from_numpy(np.load(fixture_file(input_name)))
        with torch.inference_mode():
            out = net(waveform)
        for key, actual in (("clipwise_output", out.clipwise), ("embedding", out.embedding)):
            expected = reference[prefix + key]
            assert tuple(actual.shape) == expected.shape
            error = relative_error(actual.numpy(), expected)
            record_property(f"{prefix}{key}_max_rel_err", error)
            print(f"{name} {prefix or 'long_'}{key}: max relative error {error:.2e}")
            assert error <= MAX_RELATIVE_ERROR, f"{name} {prefix}{key}: relative error {error:.2e}"


# (c) front-end buffers of a fresh model ------------------------------------------------------------


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_fresh_mel_filterbank_equals_checkpoint(name: str, nets: dict[str, TaggingNet]) -> None:
    key = "logmel_extractor.melW"
    expected = np.load(fixture_file(f"{name}_ternary_state_dict.npz"))[key]
    ours = nets[name].state_dict()[key].numpy()
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)


def test_fresh_stft_kernels_give_the_hann_windowed_power_spectrogram(nets: dict[str, TaggingNet]) -> None:
    """The fixtures' STFT kernels are ternary stand-ins (the recorder treated them like any conv weight),
    so the computed DFT x periodic-Hann kernels are checked against torch.stft instead."""
    for name, config in (("Cnn10", PANNS_32K), ("Cnn14_16k", PANNS_16K)):
        state = nets[name].state_dict()
        real = state["spectrogram_extractor.stft.conv_real.weight"]
        assert tuple(real.shape) == (config.freq_bins, 1, config.window_size)
        extractor = PowerSpectrogram(config.window_size, config.hop_size)
        extractor.stft.conv_real.weight = real
        extractor.stft.conv_imag.weight = state["spectrogram_extractor.stft.conv_imag.weight"]
        waveform = torch.randn(2, 7 * config.hop_size + 123, generator=torch.Generator().manual_seed(0))
        window = torch.hann_window(config.window_size, periodic=True, dtype=torch.float64)
        spectrum = torch.stft(
            waveform.double(), config.window_size, config.hop_size, window=window,
            center=True, pad_mode="reflect", return_complex=True,
        )  # fmt: skip
        expected = (spectrum.abs() ** 2).transpose(1, 2)  # (batch, frames, freq_bins)
        ours = extractor(waveform)[:, 0].double()  # (batch, frames, freq_bins)
        assert ours.shape == expected.shape
        assert relative_error(ours.numpy(), expected.numpy()) < 1e-5


@pytest.mark.parametrize("config", [PANNS_32K, PANNS_16K], ids=["32k", "16k"])
def test_mel_filterbank_equals_librosa(config: FrontendConfig) -> None:
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(
        sr=config.sample_rate, n_fft=config.window_size, n_mels=config.mel_bins, fmin=config.fmin, fmax=config.fmax
    ).T
    ours = mel_filterbank(config.sample_rate, config.window_size, config.mel_bins, config.fmin, config.fmax)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=1e-6)


# (d) checkpoints that do not fit are refused, naming the key ----------------------------------------


def _save(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save({"model": state}, path)
    return path


def test_checkpoint_missing_a_key_is_refused(tmp_path: Path, nets: dict[str, TaggingNet]) -> None:
    net = nets["Cnn6"]
    state = dict(net.state_dict())
    del state["conv_block3.bn1.running_var"]
    path = _save(state, tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=r"missing: conv_block3\.bn1\.running_var"):
        load_strict(net, read_state_dict(path), str(path))


def test_checkpoint_with_a_mis_shaped_key_is_refused(tmp_path: Path, nets: dict[str, TaggingNet]) -> None:
    net = nets["Cnn6"]
    state = dict(net.state_dict())
    state["fc_audioset.weight"] = torch.zeros(10, 512)
    path = _save(state, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"wrong shape: fc_audioset\.weight"):
        load_strict(net, read_state_dict(path), str(path))


def test_checkpoint_for_another_sample_rate_is_refused(tmp_path: Path, nets: dict[str, TaggingNet]) -> None:
    """A 16 kHz front-end (257 frequency bins) in a 32 kHz net is a shape error, not a silent mix-up."""
    net = nets["Cnn6"]
    state = dict(net.state_dict())
    for key, value in nets["Cnn14_16k"].state_dict().items():
        if key.startswith(("spectrogram_extractor.", "logmel_extractor.")):
            state[key] = value
    path = _save(state, tmp_path / "16k.pth")
    with pytest.raises(CheckpointError, match=r"spectrogram_extractor\.stft\.conv_imag\.weight"):
        load_strict(net, read_state_dict(path), str(path))


# (e) short clips zero-padded to min_samples run on every architecture --------------------------------


@pytest.mark.parametrize("name", sorted(PANNS_ARCHITECTURES))
def test_short_clip_padded_to_min_samples_runs(name: str, nets: dict[str, TaggingNet]) -> None:
    net = nets[name]
    clip = 0.1 * torch.randn(2, 400, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="zero-pad"):
        net(clip)
    padded = F.pad(clip, (0, net.min_samples - clip.shape[1]))
    with torch.inference_mode():
        out = net(padded)
    assert out.clipwise.shape == (2, 527)
    assert out.embedding.shape == (2, net.embedding_dim)
    assert bool(torch.isfinite(out.embedding).all())
    assert bool(((out.clipwise >= 0) & (out.clipwise <= 1)).all())
    assert out.logits is not None
    torch.testing.assert_close(torch.sigmoid(out.logits), out.clipwise)
    if name == "Cnn14_DecisionLevelMax":
        assert out.framewise is not None
        assert out.framewise.shape == (2, net.min_samples // 320 + 1, 527)
    else:
        assert out.framewise is None


def test_decision_level_max_framewise_covers_every_input_frame(nets: dict[str, TaggingNet]) -> None:
    net = nets["Cnn14_DecisionLevelMax"]
    samples = 32000 + 123  # 101 log-mel frames: 3 segments of 32 frames plus 5 left over by the pooling
    with torch.inference_mode():
        out = net(0.1 * torch.randn(1, samples, generator=torch.Generator().manual_seed(2)))
    assert out.framewise is not None
    assert out.framewise.shape == (1, samples // 320 + 1, 527)
    assert net.frame_hop_s == pytest.approx(0.01)
    torch.testing.assert_close(out.framewise.amax(dim=1), out.clipwise)
    torch.testing.assert_close(out.framewise[:, -6:], out.framewise[:, -6:-5].expand(-1, 6, -1))


def test_wavegram_runs_where_the_two_branches_round_differently(nets: dict[str, TaggingNet]) -> None:
    """With samples // 320 odd the log-mel branch has one more step than the Wavegram (the released
    code fails there); both are cut to the shorter."""
    net = nets["Wavegram_Logmel_Cnn14"]
    with torch.inference_mode():
        out = net(0.1 * torch.randn(1, 33 * 320, generator=torch.Generator().manual_seed(3)))
    assert out.clipwise.shape == (1, 527)
