"""Decoding real files, and the clear errors for files that are not audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundsearch.audio import AudioDecodeError, load_audio, resample

from .conftest import shared_path


def test_real_ogg_decodes_to_mono_at_target_rate() -> None:
    bark = shared_path("audio", "sfx_debian", "gcompris")
    path = next(iter(sorted(bark.rglob("*.ogg"))))
    info = sf.info(path)
    audio = load_audio(path, target_rate=32000)
    assert audio.samples.ndim == 1 and audio.samples.dtype == np.float32
    assert audio.sample_rate == 32000 and audio.source_rate == info.samplerate
    assert audio.duration == pytest.approx(info.duration, abs=0.01)


def test_stereo_is_mixed_down_and_streamed_resampling_matches_one_shot(tmp_path: Path) -> None:
    rate = 44100
    t = np.arange(int(1.7 * rate)) / rate
    left, right = np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 660 * t)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), rate, subtype="FLOAT")
    audio = load_audio(path, target_rate=32000)
    expected = resample(((left + right) / 2).astype(np.float32), rate, 32000)
    assert audio.channels == 2
    assert len(audio.samples) == len(expected)
    np.testing.assert_allclose(audio.samples, expected, atol=1e-4)


def test_max_seconds_bounds_what_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "long.flac"
    sf.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, 48000 * 5), 48000)
    assert load_audio(path, max_seconds=2.0).duration == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.wav", b"", "empty file (0 bytes)"),
        ("notes.wav", b"this is a text file, renamed\n" * 20, "not a readable audio file"),
        ("noise.ogg", bytes(range(256)) * 40, "not a readable audio file"),
    ],
)
def test_bad_files_raise_naming_file_and_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    assert str(path) in str(info.value) and reason in str(info.value)


def test_truncated_real_ogg_is_reported(tmp_path: Path) -> None:
    source = next(iter(sorted(shared_path("audio", "sfx_debian", "wesnoth").rglob("*.ogg"))))
    data = source.read_bytes()
    path = tmp_path / "cut.ogg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioDecodeError, match=r"cut\.ogg: .*truncated"):
        load_audio(path)


@pytest.mark.parametrize("fmt", ["wav", "flac", "aiff"])
def test_truncated_file_with_intact_header_is_reported(tmp_path: Path, fmt: str) -> None:
    full = tmp_path / f"full.{fmt}"
    sf.write(full, np.random.default_rng(3).uniform(-0.5, 0.5, 48000), 16000)
    path = tmp_path / f"cut.{fmt}"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    assert str(path) in str(info.value) and "truncated" in info.value.reason
    assert load_audio(full).duration == pytest.approx(3.0)  # the intact file is fine


def test_truncated_wav_header_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "header_only.wav"
    sf.write(path, np.zeros(1000), 16000)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(AudioDecodeError, match=r"header_only\.wav"):
        load_audio(path)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match="file not found"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioDecodeError, match="is a directory"):
        load_audio(tmp_path)


def test_one_sample_file_decodes(tmp_path: Path) -> None:
    path = tmp_path / "one.wav"
    sf.write(path, np.array([0.25]), 8000)
    audio = load_audio(path, target_rate=32000)
    assert audio.samples.size >= 1 and audio.source_rate == 8000


def test_errors_name_the_file_once(tmp_path: Path) -> None:
    full = tmp_path / "full.flac"
    sf.write(full, np.random.default_rng(4).uniform(-0.5, 0.5, 48000), 16000)
    path = tmp_path / "cut.flac"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(AudioDecodeError) as info:
        load_audio(path)
    assert str(info.value).count("cut.flac") == 1
