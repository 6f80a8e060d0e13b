"""The shared encoder interface: segmenting, padding, batching and resampling around any network."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from soundsearch.audio import load_audio
from soundsearch.encoders.encoder import segment_bounds

from .conftest import shared_path


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 2_000_000),
    window=st.floats(0.5, 20),
    hop_fraction=st.floats(0.1, 1.0),
)
def test_segments_cover_the_sound_without_slivers(n: int, window: float, hop_fraction: float) -> None:
    rate = 32000
    bounds = segment_bounds(n, rate, window, window * hop_fraction)
    win = round(window * rate)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    for (s0, e0), (s1, _) in itertools.pairwise(bounds):
        assert s1 <= e0, "a gap between windows would skip audio"
        assert s1 > s0
    assert all(e - s == min(win, n) for s, e in bounds), "every window has full length"


def test_ten_minute_recording_gets_timestamped_segments(mn04_encoder) -> None:
    rate = 16000
    rng = np.random.default_rng(1)
    wave = (0.1 * rng.standard_normal(rate * 60 * 10)).astype(np.float32)
    enc = mn04_encoder.encode(wave, rate)
    assert enc.duration == pytest.approx(600.0)
    assert len(enc.starts) == 119  # 0, 5, ..., 590 s with a 10 s window
    np.testing.assert_allclose(enc.ends - enc.starts, 10.0)
    assert enc.embeddings.shape == (119, mn04_encoder.embedding_dim)
    assert enc.tags.shape == (119, 527) and (enc.tags >= 0).all() and (enc.tags <= 1).all()


def test_tiny_sounds_are_padded_and_encoded(mn04_encoder) -> None:
    for n in (1, 50, 1600):
        enc = mn04_encoder.encode(np.full(n, 0.3, dtype=np.float32), 16000)
        assert enc.starts.tolist() == [0.0]
        assert enc.ends[0] == pytest.approx(n / 16000, abs=1e-3)
        assert np.isfinite(enc.embeddings).all()


def test_batching_many_files_equals_one_at_a_time(mn04_encoder) -> None:
    files = sorted(shared_path("audio", "sfx_debian", "wesnoth").rglob("*.ogg"))[:5]
    sounds = [(a.samples, a.sample_rate) for a in (load_audio(f) for f in files)]
    together = mn04_encoder.encode_many(sounds)
    for (wave, rate), batched in zip(sounds, together, strict=True):
        alone = mn04_encoder.encode(wave, rate)
        np.testing.assert_allclose(batched.embeddings, alone.embeddings, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(batched.tags, alone.tags, rtol=1e-4, atol=1e-5)


def test_any_input_rate_gives_the_same_tags(mn04_encoder) -> None:
    audio = load_audio(shared_path("audio", "tagged_samples", "typing.wav"))
    assert audio.sample_rate == 32000
    from soundsearch.audio import resample

    at_44k = resample(audio.samples, 32000, 44100)
    a = mn04_encoder.encode(audio.samples, 32000).clip_tags
    b = mn04_encoder.encode(at_44k, 44100).clip_tags
    assert np.argmax(a) == np.argmax(b)
    assert np.abs(a - b).max() < 0.05


def test_hop_longer_than_window_is_refused(mn04_encoder) -> None:
    from soundsearch.encoders.encoder import Encoder

    with pytest.raises(ValueError, match="hop"):
        Encoder(mn04_encoder.net, "mn04", window_s=2.0, hop_s=3.0)


def test_clips_of_similar_length_share_a_batch(mn04_encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    rate = mn04_encoder.sample_rate
    rng = np.random.default_rng(2)
    sounds = [(0.1 * rng.standard_normal(int(rate * (1.05 + 0.05 * i))).astype(np.float32), rate) for i in range(16)]
    shapes: list[tuple[int, ...]] = []
    forward = mn04_encoder._forward
    monkeypatch.setattr(mn04_encoder, "_forward", lambda batch: shapes.append(batch.shape) or forward(batch))
    mn04_encoder.encode_many(sounds)
    assert shapes == [(8, 2 * rate), (8, 2 * rate)]  # 1.05-1.8 s clips all padded to 2 s
