"""Reading sound files into mono float32 at a chosen rate, shared by tagging, ingest and queries.

Files are read block by block, mixed down and resampled (soxr) as they stream, so a long multichannel
recording never sits in memory at its original width. Every failure is an `AudioDecodeError` that
names the file and says why, so a batch can report it and go on.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

BLOCK_FRAMES = 1 << 18
#: Extensions libsndfile reads.
SOUNDFILE_EXTENSIONS = frozenset(
    {".wav", ".wave", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".aifc", ".au", ".caf"}
)
#: Extensions that libsndfile cannot read and that go through ffmpeg when it is installed.
FFMPEG_EXTENSIONS = frozenset({".m4a", ".aac", ".mp4", ".wma", ".opus", ".webm"})
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS | FFMPEG_EXTENSIONS


class AudioDecodeError(ValueError):
    """A file that cannot be turned into audio; the message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass
class Audio:
    """Decoded mono audio plus what the file said about itself."""

    samples: np.ndarray  # (n,) float32 in [-1, 1] (not clipped)
    sample_rate: int
    source_rate: int
    channels: int
    format: str
    subtype: str | None = None

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Mono float32 `samples` from `rate` to `target` Hz (soxr, high quality)."""
    if rate == target or len(samples) == 0:
        return np.ascontiguousarray(samples, dtype=np.float32)
    return soxr.resample(np.asarray(samples, dtype=np.float32), rate, target, quality="HQ").astype(np.float32)


def load_audio(path: Path | str, target_rate: int | None = None, max_seconds: float | None = None) -> Audio:
    """Decode `path` to mono float32, resampled to `target_rate` when given.

    `max_seconds` bounds how much audio is kept (the rest of a longer file is ignored), which caps
    memory for pathological inputs.
    """
    path = Path(path)
    if not path.exists():
        raise AudioDecodeError(path, "file not found")
    if path.is_dir():
        raise AudioDecodeError(path, "is a directory, not a sound file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioDecodeError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if size == 0:
        raise AudioDecodeError(path, "empty file (0 bytes)")
    if path.suffix.lower() in FFMPEG_EXTENSIONS:
        return _load_with_ffmpeg(path, target_rate, max_seconds)
    truncation = container_truncation(path, size)
    if truncation:
        raise AudioDecodeError(path, f"truncated file ({truncation})")
    try:
        return _load_with_soundfile(path, target_rate, max_seconds)
    except AudioDecodeError:
        raise
    except sf.LibsndfileError as exc:
        reason = str(exc).split(":", 1)[-1].strip() if ":" in str(exc) else str(exc)
        raise AudioDecodeError(path, f"not a readable audio file ({reason})") from exc
    except (RuntimeError, ValueError, OSError) as exc:
        # libsndfile reports truncated or corrupt streams mid-read as plain runtime errors.
        raise AudioDecodeError(path, f"corrupt or truncated audio ({exc})") from exc


def container_truncation(path: Path, size: int) -> str | None:
    """Why the file's container says it is incomplete, or None.

    libsndfile quietly decodes whatever part of a cut file is left, so a truncated download would be
    indexed as a shorter sound. RIFF/WAV and AIFF headers state the container's length; an Ogg stream's
    last page carries an end-of-stream flag.
    """
    with path.open("rb") as fh:
        head = fh.read(12)
        if head[:4] in (b"RIFF", b"FORM") and len(head) >= 8:
            declared = int.from_bytes(head[4:8], "little" if head[:4] == b"RIFF" else "big")
            # 0 and 0xFFFFFFFF mean "unknown" (streamed or RF64); a missing odd pad byte is tolerated.
            if 0 < declared < 0xFFFFFFFF and declared + 8 > size + 1:
                return f"header declares {declared + 8} bytes, file has {size}"
        elif head[:4] == b"OggS":
            fh.seek(max(0, size - 65536))
            tail = fh.read()
            last = tail.rfind(b"OggS")
            if last >= 0 and len(tail) > last + 5 and not tail[last + 5] & 0x04:
                return "the Ogg stream has no end-of-stream page"
    return None


def _load_with_soundfile(path: Path, target_rate: int | None, max_seconds: float | None) -> Audio:
    with sf.SoundFile(path) as f:
        rate, channels = f.samplerate, f.channels
        out_rate = target_rate or rate
        limit = None if max_seconds is None else int(max_seconds * rate)
        stream = soxr.ResampleStream(rate, out_rate, 1, dtype="float32", quality="HQ") if out_rate != rate else None
        parts: list[np.ndarray] = []
        read = 0
        while limit is None or read < limit:
            want = BLOCK_FRAMES if limit is None else min(BLOCK_FRAMES, limit - read)
            try:
                block = f.read(want, dtype="float32", always_2d=True)
            except sf.LibsndfileError as exc:  # the header was fine, the data is not
                raise AudioDecodeError(path, f"corrupt or truncated audio data ({exc.error_string})") from exc
            if len(block) == 0:
                break
            read += len(block)
            mono = block.mean(axis=1) if channels > 1 else block[:, 0]
            parts.append(stream.resample_chunk(mono) if stream else mono.copy())
        if stream:
            parts.append(stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        declared = f.frames if f.frames > 0 else None
        if declared is not None and read < (declared if limit is None else min(declared, limit)):
            raise AudioDecodeError(path, f"truncated file ({read} of {declared} frames readable)")
        fmt, subtype = f.format, f.subtype
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return _finish(path, samples, out_rate, rate, channels, fmt, subtype)


def _load_with_ffmpeg(path: Path, target_rate: int | None, max_seconds: float | None) -> Audio:
    """Formats libsndfile lacks (AAC/M4A...), decoded by an installed ffmpeg to raw float32 mono."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise AudioDecodeError(path, f"{path.suffix} files need ffmpeg, which is not installed")
    rate = target_rate or 44100
    cmd = [ffmpeg, "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar", str(rate)]
    if max_seconds is not None:
        cmd += ["-t", str(max_seconds)]
    cmd += ["-f", "f32le", "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AudioDecodeError(path, f"ffmpeg could not decode it ({detail[-1] if detail else 'no output'})")
    samples = np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)
    return _finish(path, samples, rate, rate, 1, path.suffix.lstrip(".").upper(), None)


def _finish(
    path: Path, samples: np.ndarray, rate: int, source_rate: int, channels: int, fmt: str, subtype: str | None
) -> Audio:
    if samples.size == 0:
        raise AudioDecodeError(path, "no audio samples in file")
    if not np.isfinite(samples).all():
        samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return Audio(samples.astype(np.float32, copy=False), rate, source_rate, channels, fmt, subtype)
