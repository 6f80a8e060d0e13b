"""EfficientAT MobileNetV3: the released mn04 checkpoint must reproduce the authors' outputs.

The reference numbers in ../shared/fixtures/efficientat_parity were made with the authors' own code
(front-end + `get_model(width_mult=0.4, head_type="mlp")`, eval mode) on the real `mn04_as_mAP_432.pt`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from soundsearch.encoders.base import CheckpointError, load_strict, read_state_dict
from soundsearch.encoders.efficientat import (
    EFFICIENTAT_ARCHITECTURES,
    EFFICIENTAT_RELEASE_FILES,
    EfficientATMobileNet,
)
from soundsearch.encoders.efficientat_frontend import (
    EfficientATMelFrontEnd,
    kaldi_mel_filterbank,
    symmetric_hann,
)

from .conftest import shared_path

FIXTURES = ("efficientat_parity",)
CLIPS = ("music", "speech", "typing")
MAX_REL_ERROR = 1e-4
#: Parameter counts (millions, as printed, truncated or rounded, in the authors' README) of the releases.
PUBLISHED_PARAMS_M = {"mn04": 0.983, "mn05": 1.43, "mn10": 4.88, "mn20": 17.91, "mn30": 39.09, "mn40": 68.43}
#: Embedding width = 6 x the last block's (rounded) width.
EMBEDDING_DIMS = {"mn04": 384, "mn05": 480, "mn10": 960, "mn20": 1920, "mn30": 2880, "mn40": 3840}


def rel_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


@pytest.fixture(scope="module")
def checkpoint_path() -> Path:
    return shared_path("models", "efficientat", "mn04_as_mAP_432.pt")


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(shared_path("fixtures", *FIXTURES, "mn04_as_reference_outputs.npz")) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def mn04(checkpoint_path: Path) -> EfficientATMobileNet:
    net = EFFICIENTAT_ARCHITECTURES["mn04"]()
    load_strict(net, read_state_dict(checkpoint_path), str(checkpoint_path))
    return net.eval()


@pytest.fixture(scope="module")
def labels() -> list[str]:
    with shared_path("models", "audioset", "class_labels_indices.csv").open(newline="") as f:
        return [row["display_name"] for row in csv.DictReader(f)]


def test_state_dict_matches_manifest_and_checkpoint_loads_strictly(checkpoint_path: Path) -> None:
    manifest = json.loads(shared_path("fixtures", *FIXTURES, "mn04_as_state_dict_manifest.json").read_text())
    net = EFFICIENTAT_ARCHITECTURES["mn04"]()
    assert {k: list(v.shape) for k, v in net.state_dict().items()} == manifest
    state = read_state_dict(checkpoint_path)
    assert {k: list(v.shape) for k, v in state.items()} == manifest
    load_strict(net, state, str(checkpoint_path))
    assert checkpoint_path.name == EFFICIENTAT_RELEASE_FILES["mn04"]


@pytest.mark.parametrize("clip", CLIPS)
def test_waveform_outputs_match_reference(
    mn04: EfficientATMobileNet, reference: dict[str, np.ndarray], clip: str
) -> None:
    waveform = torch.from_numpy(reference[f"{clip}_waveform_32k"])[None]  # (1, 320000)
    with torch.no_grad():
        out = mn04(waveform)
    assert out.logits is not None
    assert out.embedding.shape == (1, 384)
    assert rel_error(out.logits.numpy(), reference[f"{clip}_logits"]) <= MAX_REL_ERROR
    assert rel_error(out.embedding.numpy(), reference[f"{clip}_embedding"]) <= MAX_REL_ERROR
    torch.testing.assert_close(out.clipwise, torch.sigmoid(out.logits))


def test_mel_input_outputs_match_reference(mn04: EfficientATMobileNet, reference: dict[str, np.ndarray]) -> None:
    with torch.no_grad():
        out = mn04.forward_mel(torch.from_numpy(reference["synthetic_mel"]))  # (2, 128, 330)
    assert out.logits is not None
    assert rel_error(out.logits.numpy(), reference["synthetic_logits"]) <= MAX_REL_ERROR
    assert rel_error(out.embedding.numpy(), reference["synthetic_embedding"]) <= MAX_REL_ERROR


def test_top_tags_on_real_clips(
    mn04: EfficientATMobileNet, reference: dict[str, np.ndarray], labels: list[str]
) -> None:
    expected = {
        "music": [("Music", 0.60)],
        "speech": [("Speech", 0.82)],
        "typing": [("Computer keyboard", 0.89), ("Typing", 0.87)],
    }
    assert len(labels) == 527
    for clip, tags in expected.items():
        with torch.no_grad():
            probs = mn04(torch.from_numpy(reference[f"{clip}_waveform_32k"])[None]).clipwise[0]
        top = torch.argsort(probs, descending=True)[: len(tags)].tolist()
        assert [labels[i] for i in top] == [name for name, _ in tags], clip
        for i, (_, p) in zip(top, tags, strict=True):
            assert probs[i].item() == pytest.approx(p, abs=0.01)


def _numpy_log_mel(waveform: np.ndarray) -> np.ndarray:
    """Independent float64 front-end: explicit framing and rfft instead of torch.stft."""
    x = waveform.astype(np.float64)
    x = x[1:] - 0.97 * x[:-1]  # pre-emphasis
    x = np.pad(x, 512, mode="reflect")  # centred frames
    window = np.zeros(1024)
    window[112:912] = symmetric_hann(800)  # 800-sample window centred in the 1024 FFT frame
    frames = 1 + (len(x) - 1024) // 320
    index = np.arange(1024)[None, :] + 320 * np.arange(frames)[:, None]
    power = np.abs(np.fft.rfft(x[index] * window, axis=1)) ** 2  # (frames, 513)
    mel = kaldi_mel_filterbank(128, 1024, 32000, 0.0, 15000.0) @ power.T  # (128, frames)
    return (np.log(mel + 1e-5) + 4.5) / 5.0


def test_frontend_matches_independent_reference_and_is_deterministic(reference: dict[str, np.ndarray]) -> None:
    frontend = EfficientATMelFrontEnd()
    assert not frontend.state_dict()  # nothing to load: checkpoints hold no front-end tensors
    for clip in CLIPS:
        waveform = reference[f"{clip}_waveform_32k"]
        mel = frontend.eval()(torch.from_numpy(waveform)[None])
        assert mel.shape == (1, 128, 1000)
        np.testing.assert_allclose(mel[0].numpy(), _numpy_log_mel(waveform), rtol=0, atol=1e-4)
        # The authors' module augments in training mode; ours never does.
        assert torch.equal(frontend.train()(torch.from_numpy(waveform)[None]), mel)


def test_mel_filterbank_shape() -> None:
    bank = kaldi_mel_filterbank(128, 1024, 32000, 0.0, 15000.0)
    assert bank.shape == (128, 513)
    assert np.all(bank[:, -1] == 0) and np.all(bank >= 0) and np.all(bank.max(axis=1) > 0)
    assert np.all(bank[:, 480:] == 0)  # nothing above 15 kHz (bin 480 is 15 kHz at 31.25 Hz per bin)


@pytest.mark.parametrize("name", sorted(EFFICIENTAT_ARCHITECTURES))
def test_every_width_builds_and_runs(name: str) -> None:
    torch.manual_seed(0)
    net = EFFICIENTAT_ARCHITECTURES[name]().eval()
    assert isinstance(net, EfficientATMobileNet)
    assert net.sample_rate == 32000
    assert net.embedding_dim == EMBEDDING_DIMS[name]
    params_m = sum(p.numel() for p in net.parameters()) / 1e6
    assert params_m == pytest.approx(PUBLISHED_PARAMS_M[name], abs=0.005)
    with torch.no_grad():
        out = net(0.1 * torch.randn(1, 32000))
        shortest = net(torch.zeros(1, net.min_samples))
    for o in (out, shortest):
        assert o.clipwise.shape == (1, 527) and o.embedding.shape == (1, net.embedding_dim)
        assert torch.isfinite(o.embedding).all()
        assert o.logits is not None and torch.all((o.clipwise >= 0) & (o.clipwise <= 1))


def test_shorter_than_min_samples_is_refused() -> None:
    net = EFFICIENTAT_ARCHITECTURES["mn04"]().eval()
    with pytest.raises(ValueError, match="at least"):
        net(torch.zeros(1, net.min_samples - 1))


def test_misshaped_checkpoint_is_refused(checkpoint_path: Path, tmp_path: Path) -> None:
    state = read_state_dict(checkpoint_path)
    # Right keys, wrong widths: the mn04 weights do not fit mn05.
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_strict(EFFICIENTAT_ARCHITECTURES["mn05"](), state, "mn04 into mn05")
    # One tensor re-shaped, saved and read back through the file path.
    broken = dict(state)
    broken["classifier.5.weight"] = torch.zeros(10, 512)
    path = tmp_path / "broken.pt"
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match=r"wrong shape: classifier\.5\.weight"):
        load_strict(EFFICIENTAT_ARCHITECTURES["mn04"](), read_state_dict(path), str(path))
    # A missing key.
    partial = {k: v for k, v in state.items() if k != "features.16.1.running_var"}
    with pytest.raises(CheckpointError, match="missing"):
        load_strict(EFFICIENTAT_ARCHITECTURES["mn04"](), partial, "partial")
