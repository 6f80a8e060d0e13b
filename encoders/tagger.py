"""AudioSet tagging of files: top-k labels per file and, on request, per segment."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..audio import load_audio
from .audioset import AudioSetVocabulary
from .encoder import EncodedAudio, Encoder


@dataclass
class TagScore:
    label: str
    score: float


@dataclass
class SegmentTags:
    start: float
    end: float
    tags: list[TagScore]


@dataclass
class FileTags:
    path: str
    duration: float
    tags: list[TagScore]
    segments: list[SegmentTags] = field(default_factory=list)

    def to_dict(self, with_segments: bool) -> dict:
        d = asdict(self)
        if not with_segments:
            d.pop("segments")
        return d


def top_tags(probs: np.ndarray, vocab: AudioSetVocabulary, k: int) -> list[TagScore]:
    """The k most probable labels, highest first."""
    order = np.argsort(-probs, kind="stable")[:k]
    return [TagScore(vocab.names[i], round(float(probs[i]), 4)) for i in order]


class Tagger:
    """An encoder plus the label names of its outputs."""

    def __init__(self, encoder: Encoder, vocab: AudioSetVocabulary) -> None:
        if len(vocab) != encoder.net.classes_num:
            raise ValueError(f"label list has {len(vocab)} names, model {encoder.name} has {encoder.net.classes_num}")
        self.encoder = encoder
        self.vocab = vocab

    def tag_encoded(self, path: str, enc: EncodedAudio, top_k: int) -> FileTags:
        segments = [
            SegmentTags(round(float(s), 3), round(float(e), 3), top_tags(t, self.vocab, top_k))
            for s, e, t in zip(enc.starts, enc.ends, enc.tags, strict=True)
        ]
        return FileTags(path, round(enc.duration, 3), top_tags(enc.clip_tags, self.vocab, top_k), segments)

    def tag_file(self, path: Path, top_k: int = 5) -> FileTags:
        """Decode and tag one file; decoding errors propagate as `AudioDecodeError`."""
        audio = load_audio(path, target_rate=self.encoder.sample_rate)
        enc = self.encoder.encode(audio.samples, audio.sample_rate)
        return self.tag_encoded(str(path), enc, top_k)
