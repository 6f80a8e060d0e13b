"""One encoder interface for every model: waveform at any rate -> per-segment embeddings and tags.

Long recordings are cut into overlapping windows (default 10 s every 5 s) so each part of a field
recording gets its own tags, embedding and timestamps; the last window is aligned to the end of the file
instead of leaving a sliver. Sounds shorter than a window are encoded whole, zero-padded up to
`min_clip_s` (and to what the network needs), so a 50 ms click is not stretched into a 10 s clip.
Segments of many files are batched together by length: short clips are zero-padded up to a whole
multiple of `pad_step_s` so clips of similar length share a batch. The padding depends only on the
clip, never on its batch-mates, so results are the same however files are grouped; AudioSet models
were trained on zero-padded clips, so the padding is within what they know.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from ..audio import resample
from .base import TaggingNet


@dataclass
class EncodedAudio:
    """Encoder outputs for one sound: one row per segment."""

    starts: np.ndarray  # (segments,) seconds
    ends: np.ndarray  # (segments,) seconds
    embeddings: np.ndarray  # (segments, embedding_dim) float32, not normalised
    tags: np.ndarray  # (segments, classes) float32 probabilities
    duration: float  # seconds of real audio
    frames: list[np.ndarray] | None = None  # per segment (frames, classes), where the model has them
    frame_hop_s: float | None = None

    @property
    def clip_tags(self) -> np.ndarray:
        """(classes,) a class is as present in the sound as in its most confident segment."""
        return self.tags.max(axis=0)

    @property
    def clip_embedding(self) -> np.ndarray:
        """(embedding_dim,) mean of the segment embeddings."""
        return self.embeddings.mean(axis=0)


def segment_bounds(n_samples: int, rate: int, window_s: float, hop_s: float) -> list[tuple[int, int]]:
    """(start, end) sample bounds of the analysis windows of a sound of `n_samples`."""
    window, hop = round(window_s * rate), max(1, round(hop_s * rate))
    if n_samples <= window:
        return [(0, n_samples)]
    starts = list(range(0, n_samples - window, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return [(s, s + window) for s in starts]


def pick_device(device: str) -> torch.device:
    """'auto' means CUDA when torch sees a GPU, otherwise the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Encoder:
    """A loaded `TaggingNet` plus the policy for turning whole sounds into its inputs."""

    def __init__(
        self,
        net: TaggingNet,
        name: str,
        *,
        window_s: float = 10.0,
        hop_s: float = 5.0,
        min_clip_s: float = 1.0,
        pad_step_s: float = 1.0,
        batch_size: int = 8,
        device: str = "auto",
        threads: int = 0,
    ) -> None:
        if hop_s > window_s:
            raise ValueError(f"hop ({hop_s} s) must not exceed the window ({window_s} s): audio would be skipped")
        self.name = name
        self.window_s, self.hop_s, self.min_clip_s, self.pad_step_s = window_s, hop_s, min_clip_s, pad_step_s
        self.batch_size = batch_size
        self.device = pick_device(device)
        if threads > 0:
            torch.set_num_threads(threads)
        self.net = net.to(self.device).eval()

    @property
    def sample_rate(self) -> int:
        return self.net.sample_rate

    @property
    def embedding_dim(self) -> int:
        return self.net.embedding_dim

    def encode(self, samples: np.ndarray, sample_rate: int) -> EncodedAudio:
        """Encode one mono waveform given at any sample rate."""
        return self.encode_many([(samples, sample_rate)])[0]

    def encode_many(self, sounds: list[tuple[np.ndarray, int]]) -> list[EncodedAudio]:
        """Encode several mono waveforms, batching their segments together."""
        rate = self.sample_rate
        waves = [resample(np.asarray(s, dtype=np.float32), sr, rate) for s, sr in sounds]
        min_len = max(round(self.min_clip_s * rate), self.net.min_samples)
        step = max(1, round(self.pad_step_s * rate))
        # Every segment as (sound index, start, end); grouped by padded length so a batch is one tensor.
        by_length: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        bounds = []
        for i, wave in enumerate(waves):
            if len(wave) == 0:
                raise ValueError(f"sound #{i} has no samples")
            segs = segment_bounds(len(wave), rate, self.window_s, self.hop_s)
            bounds.append(segs)
            for s, e in segs:
                by_length[self._padded_length(e - s, min_len, step)].append((i, s, e))
        results: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
        for length, segs in by_length.items():
            for b in range(0, len(segs), self.batch_size):
                chunk = segs[b : b + self.batch_size]
                batch = np.zeros((len(chunk), length), dtype=np.float32)  # (batch, samples)
                for row, (i, s, e) in enumerate(chunk):
                    batch[row, : e - s] = waves[i][s:e]
                emb, tags, frames = self._forward(batch)
                for row, (i, s, _) in enumerate(chunk):
                    results[(i, s)] = (emb[row], tags[row], None if frames is None else frames[row])
        out = []
        for i, segs in enumerate(bounds):
            rows = [results[(i, s)] for s, _ in segs]
            frames = [r[2] for r in rows] if rows[0][2] is not None else None
            out.append(
                EncodedAudio(
                    starts=np.array([s / rate for s, _ in segs]),
                    ends=np.array([e / rate for _, e in segs]),
                    embeddings=np.stack([r[0] for r in rows]).astype(np.float32),
                    tags=np.stack([r[1] for r in rows]).astype(np.float32),
                    duration=len(waves[i]) / rate,
                    frames=frames,
                    frame_hop_s=self.net.frame_hop_s,
                )
            )
        return out

    def _padded_length(self, n: int, min_len: int, step: int) -> int:
        """Input length for a segment of `n` samples: full windows as they are, short clips rounded up."""
        window = round(self.window_s * self.sample_rate)
        if n >= window:
            return n
        return max(min_len, min(window, -(-n // step) * step))

    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        with torch.inference_mode():
            out = self.net(torch.from_numpy(batch).to(self.device))
        frames = None if out.framewise is None else out.framewise.float().cpu().numpy()
        return out.embedding.float().cpu().numpy(), out.clipwise.float().cpu().numpy(), frames
