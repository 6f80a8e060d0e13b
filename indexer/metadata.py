"""Descriptive metadata embedded in sound files: a title and a description for the catalogue.

Sound libraries describe their sounds inside the files: Broadcast Wave `bext` descriptions and RIFF `INFO`
lists in WAV, `NAME`/`COMT`/`ANNO` chunks in AIFF, ID3 frames in MP3, Vorbis comments in FLAC and Ogg, atoms
in MP4. These texts are often the best words a sound has, so text search uses them.

Files come from anywhere, so reading them never raises for their content and stays cheap: at most
`READ_BUDGET` bytes of a file are read, a chunk whose size points past the end of the file ends the walk,
and every chunk moves the walk forward by at least its 8-byte header.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import mutagen
from mutagen.id3 import ID3, Encoding, Frame

#: Most characters kept per field.
MAX_CHARS = 2000
#: Most bytes read from one file, whatever it holds.
READ_BUDGET = 512 * 1024
#: Most bytes read for one text chunk: MAX_CHARS characters of UTF-8.
_TEXT_BYTES = 4 * MAX_CHARS
#: The Description field at the start of a `bext` chunk (EBU Tech 3285).
_BEXT_DESCRIPTION_BYTES = 256
_RIFF_IDS = (b"RIFF", b"RF64", b"BW64")
_ID3_CHUNK_IDS = (b"id3 ", b"ID3 ")
#: Keys of each field in Vorbis comments, APEv2, ASF and MP4 tags, compared in lower case, preferred first.
_TITLE_KEYS = ("title", "©nam")
_DESCRIPTION_KEYS = ("description", "desc", "comment", "©cmt")


@dataclass(frozen=True)
class FileMetadata:
    title: str | None = None
    description: str | None = None


def read_metadata(path: Path) -> FileMetadata:
    """Title and description embedded in the file at `path`; empty when it has none or cannot be read."""
    try:
        if not path.is_file():  # also keeps FIFOs and devices from blocking or streaming forever
            return FileMetadata()
        with open(path, "rb") as raw:
            end = os.fstat(raw.fileno()).st_size
            f = _BoundedReader(raw, READ_BUDGET)
            head = f.read(12)
            if head[:4] in _RIFF_IDS and head[8:] == b"WAVE":
                return _read_riff(f, end)
            if head[:4] == b"FORM" and head[8:] in (b"AIFF", b"AIFC"):
                return _read_aiff(f, end)
            f.seek(0)
            return _read_tags(f)
    except OSError:
        return FileMetadata()


class _BoundedReader:
    """A read-only view of a binary file that hands out `budget` bytes in all, then reads as end of file."""

    def __init__(self, raw: BinaryIO, budget: int) -> None:
        self._raw = raw
        self._left = budget
        self.name = raw.name  # mutagen also guesses the format from the file name

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(self._left if size < 0 else min(size, self._left))
        self._left -= len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


def _chunks(
    f: _BoundedReader,
    start: int,
    end: int,
    byteorder: Literal["little", "big"],
    big_sizes: dict[bytes, int] | None = None,
) -> Iterator[tuple[bytes, int, int]]:
    """(id, data offset, size) of the IFF-style chunks in [start, end), up to the first that does not fit.

    `big_sizes` holds the real sizes of RF64 chunks whose 32-bit size is 0xFFFFFFFF; the caller fills it
    from the `ds64` chunk, which comes first.
    """
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            return
        chunk_id, size = header[:4], int.from_bytes(header[4:], byteorder)
        if big_sizes and size == 0xFFFFFFFF:
            size = big_sizes.get(chunk_id, size)
        if pos + 8 + size > end:
            return
        yield chunk_id, pos + 8, size
        pos += 8 + size + (size & 1)


def _read_at(f: _BoundedReader, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def _read_riff(f: _BoundedReader, end: int) -> FileMetadata:
    """WAV, RF64 and BW64: the `bext` description, `LIST`/`INFO` INAM and ICMT, an ID3 chunk."""
    bext = inam = icmt = None
    tags = FileMetadata()
    big_sizes: dict[bytes, int] = {}
    for chunk_id, offset, size in _chunks(f, 12, end, "little", big_sizes):
        if chunk_id == b"ds64" and size >= 16:
            ds64 = _read_at(f, offset, 16)  # RIFF size, then data size, both 64-bit
            if len(ds64) == 16:
                big_sizes[b"data"] = int.from_bytes(ds64[8:], "little")
        elif chunk_id == b"bext":
            bext = bext or _c_string(_read_at(f, offset, min(size, _BEXT_DESCRIPTION_BYTES)))
        elif chunk_id == b"LIST" and _read_at(f, offset, min(size, 4)) == b"INFO":
            for sub_id, sub_offset, sub_size in _chunks(f, offset + 4, offset + size, "little"):
                if sub_id == b"INAM":
                    inam = inam or _text_at(f, sub_offset, sub_size)
                elif sub_id == b"ICMT":
                    icmt = icmt or _text_at(f, sub_offset, sub_size)
        elif chunk_id in _ID3_CHUNK_IDS and tags == FileMetadata():
            tags = _id3_chunk(_read_at(f, offset, size))
    return FileMetadata(title=inam or tags.title, description=bext or icmt or tags.description)


def _read_aiff(f: _BoundedReader, end: int) -> FileMetadata:
    """AIFF and AIFF-C: `NAME`, `COMT` and `ANNO` chunks, an ID3 chunk."""
    name = comments = annotation = None
    tags = FileMetadata()
    for chunk_id, offset, size in _chunks(f, 12, end, "big"):
        if chunk_id == b"NAME":
            name = name or _text_at(f, offset, size)
        elif chunk_id == b"COMT":
            comments = comments or _aiff_comments(_read_at(f, offset, min(size, _TEXT_BYTES)))
        elif chunk_id == b"ANNO":
            annotation = annotation or _text_at(f, offset, size)
        elif chunk_id in _ID3_CHUNK_IDS and tags == FileMetadata():
            tags = _id3_chunk(_read_at(f, offset, size))
    return FileMetadata(title=name or tags.title, description=comments or annotation or tags.description)


def _aiff_comments(data: bytes) -> str | None:
    """The texts of a `COMT` chunk: a 16-bit count, then per comment a 32-bit timestamp, a 16-bit marker id,
    a 16-bit length and the text, padded to even length."""
    texts = []
    pos = 2
    for _ in range(int.from_bytes(data[:2], "big")):
        if pos + 8 > len(data):
            break
        length = int.from_bytes(data[pos + 6 : pos + 8], "big")
        text = _c_string(data[pos + 8 : pos + 8 + length])
        if text:
            texts.append(text)
        pos += 8 + length + (length & 1)
    return _clean("\n".join(texts))


def _text_at(f: _BoundedReader, offset: int, size: int) -> str | None:
    return _c_string(_read_at(f, offset, min(size, _TEXT_BYTES)))


def _c_string(data: bytes) -> str | None:
    """A text field that may be NUL-terminated and NUL-padded: UTF-8 when it decodes as such, else latin-1."""
    data = data.lstrip(b"\0").split(b"\0", 1)[0]  # anything after the terminator is left-over buffer
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return _clean(text)


def _clean(text: str) -> str | None:
    """Without NULs and surrounding whitespace, at most MAX_CHARS characters; None when nothing is left."""
    return text.replace("\0", " ").strip()[:MAX_CHARS].rstrip() or None


def _id3_chunk(data: bytes) -> FileMetadata:
    """An ID3v2 tag held in a WAV or AIFF chunk."""
    try:
        tags = ID3(io.BytesIO(data), load_v1=False)
    except Exception:  # mutagen raises many kinds of errors for damaged tags
        return FileMetadata()
    return _from_id3(tags)


def _from_id3(tags: ID3) -> FileMetadata:
    """TIT2 and the first comment that is not an iTunes technical one (iTunNORM, iTunSMPB, ...)."""
    title = tags.get("TIT2")
    comments = (_id3_text(frame) for frame in tags.getall("COMM") if not frame.desc.startswith("iTun"))
    return FileMetadata(
        title=_id3_text(title) if title is not None else None, description=next(filter(None, comments), None)
    )


def _id3_text(frame: Frame) -> str | None:
    """The first text of a frame. Frames marked latin-1 that hold UTF-8 bytes (libsndfile and many taggers write
    them) are read as UTF-8: latin-1 text that is also valid UTF-8 beyond ASCII is all but unheard of."""
    texts = frame.text
    if frame.encoding == Encoding.LATIN1:
        texts = [_utf8_in_latin1(text) for text in texts]
    return _first(texts)


def _utf8_in_latin1(text: str) -> str:
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


def _read_tags(f: _BoundedReader) -> FileMetadata:
    """MP3, FLAC, Ogg, MP4 and the other formats mutagen knows, through their tags."""
    try:
        audio = mutagen.File(f)
    except Exception:  # mutagen raises many kinds of errors for damaged files
        return FileMetadata()
    tags = audio.tags if audio is not None else None
    if tags is None:
        return FileMetadata()
    if isinstance(tags, ID3):
        return _from_id3(tags)
    keys = {key.lower(): key for key in tags.keys()}  # noqa: SIM118  (Vorbis comments iterate as pairs)

    def field(names: tuple[str, ...]) -> str | None:
        return next(filter(None, (_first(tags[keys[name]]) for name in names if name in keys)), None)

    return FileMetadata(title=field(_TITLE_KEYS), description=field(_DESCRIPTION_KEYS))


def _first(values: object) -> str | None:
    """The first non-empty text of a tag value: a list of values in most formats, a single value in APEv2."""
    for value in values if isinstance(values, list) else [values]:
        text = _clean(value if isinstance(value, str) else str(value))
        if text:
            return text
    return None
