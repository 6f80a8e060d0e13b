"""Embedded titles and descriptions: BWF/INFO/ID3 chunks in WAV, AIFF chunks, ID3, Vorbis comments; and files
that must yield nothing without raising."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import mutagen
import numpy as np
import pytest
import soundfile as sf
from mutagen.id3 import COMM, ID3, TIT2

from soundsearch.indexer.metadata import MAX_CHARS, READ_BUDGET, FileMetadata, read_metadata

RATE = 8000


def _tone() -> np.ndarray:
    return (0.1 * np.sin(np.arange(RATE // 10) / 5)).astype(np.float32)


def _chunk(chunk_id: bytes, payload: bytes, byteorder: str = "little") -> bytes:
    pad = b"\0" if len(payload) % 2 else b""
    return chunk_id + len(payload).to_bytes(4, byteorder) + payload + pad


def _info(**fields: bytes) -> bytes:
    return _chunk(b"LIST", b"INFO" + b"".join(_chunk(key.encode(), value) for key, value in fields.items()))


def _bext(description: bytes) -> bytes:
    """A version-0 bext chunk: Description[256], then the originator/date/time/UMID... fields, zeroed."""
    return _chunk(b"bext", description.ljust(256, b"\0") + bytes(346))


def _audio_chunks(fmt: str) -> bytes:
    """The chunks after the 12-byte FORM/RIFF header of a real file written by libsndfile."""
    buffer = io.BytesIO()
    sf.write(buffer, _tone(), RATE, format=fmt, subtype="PCM_16")
    return buffer.getvalue()[12:]


def _wav(path: Path, before: Sequence[bytes] = (), after: Sequence[bytes] = ()) -> Path:
    chunks = b"".join(before) + _audio_chunks("WAV") + b"".join(after)
    path.write_bytes(b"RIFF" + (4 + len(chunks)).to_bytes(4, "little") + b"WAVE" + chunks)
    return path


def _aiff(path: Path, chunks: Sequence[bytes]) -> Path:
    body = _audio_chunks("AIFF") + b"".join(chunks)
    path.write_bytes(b"FORM" + (4 + len(body)).to_bytes(4, "big") + b"AIFF" + body)
    return path


def test_wav_bext_description_and_info_title(tmp_path: Path) -> None:
    path = _wav(
        tmp_path / "bwf.wav",
        before=[_bext("Porte claquée, bois lourd\0left-over buffer".encode())],
        after=[_info(INAM=b"Door Slam", ICMT=b"the INFO comment loses to bext")],
    )
    assert sf.info(path).frames == RATE // 10  # still a valid WAV with the chunks in it
    assert read_metadata(path) == FileMetadata(title="Door Slam", description="Porte claquée, bois lourd")


def test_wav_info_only(tmp_path: Path) -> None:
    # An odd-length INAM (padded to even) before ICMT; ICMT in latin-1.
    path = _wav(tmp_path / "info.wav", after=[_info(INAM=b"Thunder", ICMT="Café ambience, rain  ".encode("latin-1"))])
    assert read_metadata(path) == FileMetadata(title="Thunder", description="Café ambience, rain")


def test_wav_zero_size_chunks_are_walked_over(tmp_path: Path) -> None:
    path = _wav(tmp_path / "junk.wav", before=[b"JUNK\0\0\0\0" * 10], after=[_info(INAM=b"Wind")])
    assert read_metadata(path).title == "Wind"


@pytest.mark.parametrize(
    ("name", "fmt", "title", "comment"),
    [
        ("sndfile.wav", "WAV", "Birds at dawn", "Forest, spring, many species"),
        # libsndfile writes UTF-8 into ID3 frames marked latin-1.
        ("sndfile.mp3", "MP3", "Clé qui tombe", "Trousseau, carrelage"),
    ],
)
def test_files_tagged_by_libsndfile(tmp_path: Path, name: str, fmt: str, title: str, comment: str) -> None:
    path = tmp_path / name
    with sf.SoundFile(path, "w", RATE, 1, format=fmt) as f:
        f.title, f.comment = title, comment
        f.write(_tone())
    assert read_metadata(path) == FileMetadata(title=title, description=comment)


def test_wav_id3_chunk_and_info_preference(tmp_path: Path) -> None:
    path = _wav(tmp_path / "id3.wav")
    wave = mutagen.File(path)
    wave.add_tags()
    wave.tags.add(TIT2(encoding=3, text="ID3 title"))
    wave.tags.add(COMM(encoding=3, lang="eng", desc="", text="ID3 comment"))
    wave.save()
    assert read_metadata(path) == FileMetadata(title="ID3 title", description="ID3 comment")

    data = path.read_bytes() + _info(INAM=b"INFO title")
    path.write_bytes(b"RIFF" + (len(data) - 8).to_bytes(4, "little") + data[8:])
    assert read_metadata(path) == FileMetadata(title="INFO title", description="ID3 comment")


def test_rf64_data_size_comes_from_ds64(tmp_path: Path) -> None:
    """RF64 writes 0xFFFFFFFF as the data size; the INFO chunk after the data is only found through ds64."""
    chunks = _audio_chunks("WAV")
    fmt_end = 8 + int.from_bytes(chunks[4:8], "little")
    fmt, data = chunks[:fmt_end], chunks[fmt_end:]
    assert data[:4] == b"data"
    data_size = int.from_bytes(data[4:8], "little")
    ds64 = _chunk(b"ds64", bytes(8) + data_size.to_bytes(8, "little") + bytes(12))
    body = ds64 + fmt + b"data\xff\xff\xff\xff" + data[8:] + _info(INAM=b"Engine idle")
    path = tmp_path / "long.wav"
    path.write_bytes(b"RF64\xff\xff\xff\xffWAVE" + body)
    assert read_metadata(path).title == "Engine idle"


def test_truncated_wav_keeps_what_came_before_the_cut(tmp_path: Path) -> None:
    path = _wav(tmp_path / "cut.wav", before=[_bext(b"Crowd cheering")], after=[_info(INAM=b"Crowd")])
    data = path.read_bytes()
    start = data.index(b"data")
    # The data chunk claims a gigabyte, as in a recording cut short: the INFO chunk after it is out of reach.
    path.write_bytes(data[: start + 4] + (1 << 30).to_bytes(4, "little") + data[start + 8 :])
    assert read_metadata(path) == FileMetadata(description="Crowd cheering")


def test_mp3_id3v2_title_and_comment(tmp_path: Path) -> None:
    path = tmp_path / "tagged.mp3"
    sf.write(path, _tone(), RATE, format="MP3")
    tags = ID3()
    tags.add(TIT2(encoding=3, text="Glass shatter"))
    tags.add(COMM(encoding=0, lang="eng", desc="iTunNORM", text=" 00000A2B 00000C11"))
    tags.save(path)
    assert sf.info(path).frames > 0
    assert read_metadata(path) == FileMetadata(title="Glass shatter")  # iTunes' technical comments are no text
    tags.add(COMM(encoding=3, lang="eng", desc="", text="Window pane, close mic"))
    tags.save(path)
    assert read_metadata(path) == FileMetadata(title="Glass shatter", description="Window pane, close mic")


def test_mp3_id3v1_only(tmp_path: Path) -> None:
    path = tmp_path / "v1.mp3"
    sf.write(path, _tone(), RATE, format="MP3")
    v1 = b"TAG" + b"Horse gallop".ljust(30, b"\0") + bytes(30 + 30 + 4) + b"Dirt road".ljust(30, b"\0") + b"\xff"
    path.write_bytes(path.read_bytes() + v1)
    assert read_metadata(path) == FileMetadata(title="Horse gallop", description="Dirt road")


def test_flac_vorbis_comments(tmp_path: Path) -> None:
    path = tmp_path / "tagged.flac"
    sf.write(path, _tone(), RATE, format="FLAC")
    audio = mutagen.File(path)
    audio["TITLE"] = "Creek"
    audio["DESCRIPTION"] = "Small stream over pebbles"
    audio["COMMENT"] = "loses to DESCRIPTION"
    audio.save()
    assert read_metadata(path) == FileMetadata(title="Creek", description="Small stream over pebbles")


@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_ogg_vorbis_comments(tmp_path: Path, subtype: str) -> None:
    path = tmp_path / f"tagged-{subtype}.ogg"
    with sf.SoundFile(path, "w", 48000, 1, format="OGG", subtype=subtype) as f:
        f.title = "Owl hoot"
        f.write(np.tile(_tone(), 6))
    assert read_metadata(path) == FileMetadata(title="Owl hoot")
    audio = mutagen.File(path)
    audio["comment"] = "Tawny owl, distant"
    audio.save()
    assert read_metadata(path) == FileMetadata(title="Owl hoot", description="Tawny owl, distant")


def test_aiff_name_and_annotation(tmp_path: Path) -> None:
    path = _aiff(tmp_path / "named.aiff", [_chunk(b"NAME", b"Ship horn", "big"), _chunk(b"ANNO", b"Harbour", "big")])
    assert sf.info(path).frames == RATE // 10
    assert read_metadata(path) == FileMetadata(title="Ship horn", description="Harbour")


def test_aiff_comments_chunk_wins_over_annotation(tmp_path: Path) -> None:
    def comment(text: bytes) -> bytes:
        pad = b"\0" if len(text) % 2 else b""
        return bytes(4) + bytes(2) + len(text).to_bytes(2, "big") + text + pad

    comt = _chunk(b"COMT", (2).to_bytes(2, "big") + comment(b"Foghorn") + comment(b"two blasts"), "big")
    path = _aiff(tmp_path / "comt.aif", [_chunk(b"ANNO", b"annotation", "big"), comt])
    assert read_metadata(path) == FileMetadata(description="Foghorn\ntwo blasts")


def test_aiff_id3_chunk(tmp_path: Path) -> None:
    path = _aiff(tmp_path / "id3.aiff", [])
    aiff = mutagen.File(path)
    aiff.add_tags()
    aiff.tags.add(TIT2(encoding=3, text="Cello pizzicato"))
    aiff.save()
    assert read_metadata(path) == FileMetadata(title="Cello pizzicato")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.wav", b""),
        ("notes.wav", b"These are my notes about the session, not audio at all.\n" * 20),
        # A chunk whose size points far past the end of the file, holding a title that must not be trusted.
        ("huge-chunk.wav", b"RIFF\x00\x01\x00\x00WAVE" + b"LIST\xf0\xff\xff\x7f" + b"INFO" + _chunk(b"INAM", b"x")),
        ("huge-chunk.aiff", b"FORM\x00\x01\x00\x00AIFF" + b"NAME\x7f\xff\xff\xf0" + b"Ship horn"),
        # Zero-size chunks by the hundred thousand: the walk gives up at the read budget, never loops.
        ("zero-chunks.wav", b"RIFF\xff\xff\xff\xffWAVE" + b"JUNK\0\0\0\0" * 200_000 + _info(INAM=b"too far")),
        ("riff-only.wav", b"RIFF\x04\x00\x00\x00WAVE"),
        ("short.wav", b"RIF"),
        ("bad-ds64.wav", b"RF64\xff\xff\xff\xffWAVE" + b"ds64\x04\x00\x00\x00abcd" + b"data\xff\xff\xff\xff"),
        ("bad-comt.aiff", b"FORM\x00\x00\x00\x14AIFF" + _chunk(b"COMT", b"\xff\xff" + bytes(6), "big")),
        ("bad-id3-chunk.wav", b"RIFF\x00\x00\x00\x00WAVE" + _chunk(b"id3 ", b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f")),
        ("huge-id3.mp3", b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + b"TIT2\x00\x00\x00\x05\x00\x00\x03abcd"),
        ("not-flac.flac", b"fLaC\xff\xff\xff\xff"),
    ],
)
def test_broken_files_yield_nothing(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert read_metadata(path) == FileMetadata()


@pytest.mark.parametrize("prefix", [b"", b"ID3\x03\x00\x00", b"fLaC", b"OggS\x00\x02", b"\x00\x00\x00\x20ftypM4A "])
@pytest.mark.parametrize("suffix", [".mp3", ".flac", ".ogg", ".m4a", ".wav"])
def test_random_bytes_yield_nothing(tmp_path: Path, prefix: bytes, suffix: str) -> None:
    rng = np.random.default_rng(len(prefix) * 31 + len(suffix))
    for i in range(5):
        path = tmp_path / f"noise{i}{suffix}"
        path.write_bytes(prefix + rng.bytes(int(rng.integers(1, 20_000))))
        assert read_metadata(path) == FileMetadata()


def test_missing_path_and_folder_yield_nothing(tmp_path: Path) -> None:
    assert read_metadata(tmp_path / "nowhere.wav") == FileMetadata()
    (tmp_path / "folder.wav").mkdir()
    assert read_metadata(tmp_path / "folder.wav") == FileMetadata()


def test_damaged_tagged_files_never_raise(tmp_path: Path) -> None:
    """Every prefix-cut and a scattering of byte flips of tagged files of each kind: results stay well formed."""
    sources = [
        _wav(tmp_path / "src.wav", before=[_bext(b"Rain on tin roof")], after=[_info(INAM=b"Rain", ICMT=b"Tin")]),
        _aiff(tmp_path / "src.aiff", [_chunk(b"NAME", b"Ship horn", "big")]),
    ]
    for fmt, subtype in [("MP3", "MPEG_LAYER_III"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")]:
        path = tmp_path / f"src.{fmt.lower()}"
        with sf.SoundFile(path, "w", 48000, 1, format=fmt, subtype=subtype) as f:
            f.title, f.comment = "Title", "Comment"
            f.write(_tone())
        sources.append(path)
    rng = np.random.default_rng(0)
    damaged = tmp_path / "damaged"
    results = []
    for source in sources:
        assert read_metadata(source).title is not None
        data = source.read_bytes()
        variants = [data[:cut] for cut in range(0, len(data), 7)]
        for _ in range(40):
            flipped = bytearray(data)
            for at in rng.integers(0, len(data), 4):
                flipped[at] = int(rng.integers(0, 256))
            variants.append(bytes(flipped))
        for variant in variants:
            damaged.with_suffix(source.suffix).write_bytes(variant)
            results.append(read_metadata(damaged.with_suffix(source.suffix)))
    for result in results:
        for value in (result.title, result.description):
            assert value is None or (isinstance(value, str) and 0 < len(value) <= MAX_CHARS and "\0" not in value)


def test_long_texts_are_capped(tmp_path: Path) -> None:
    long_text = "Long description of a field recording. " * 130
    assert len(long_text) > 5000
    # bext's Description field is 256 bytes: the rest of a longer text is other fields' room.
    bext = _wav(tmp_path / "bext.wav", before=[_chunk(b"bext", long_text.encode() + bytes(346))])
    assert read_metadata(bext).description == long_text[:256].rstrip()
    info = _wav(tmp_path / "info.wav", after=[_info(ICMT=long_text.encode())])
    assert read_metadata(info).description == long_text[:MAX_CHARS].rstrip()
    mp3 = tmp_path / "long.mp3"
    sf.write(mp3, _tone(), RATE, format="MP3")
    tags = ID3()
    tags.add(TIT2(encoding=3, text="  " + long_text))
    tags.save(mp3)
    assert read_metadata(mp3).title == long_text[:MAX_CHARS].rstrip()


def _bytes_read() -> int:
    """Bytes this process has read through read(2) and friends (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io to count bytes read")
def test_reads_stay_bounded_in_big_files(tmp_path: Path) -> None:
    """A 256 MB WAV whose INFO sits after the data, and an MP3 whose ID3 tag claims 256 MB (both sparse)."""
    big = 256 << 20
    wav = tmp_path / "big.wav"
    chunks = _audio_chunks("WAV")
    fmt = chunks[: chunks.index(b"data")]
    with wav.open("wb") as f:
        f.write(b"RIFF\xff\xff\xff\xffWAVE" + fmt + b"data" + big.to_bytes(4, "little"))
        f.seek(big, io.SEEK_CUR)
        f.write(_info(INAM=b"Long drone"))
    mp3 = tmp_path / "big.mp3"
    with mp3.open("wb") as f:
        f.write(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + b"TIT2\x00\x00\x00\x07\x00\x00\x03Hidden")
        f.truncate(big)

    before = _bytes_read()
    assert read_metadata(wav).title == "Long drone"
    assert _bytes_read() - before < 64 * 1024
    before = _bytes_read()
    assert isinstance(read_metadata(mp3), FileMetadata)
    assert _bytes_read() - before < 2 * READ_BUDGET
