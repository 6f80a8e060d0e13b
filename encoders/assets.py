"""The official files the model store can fetch: checkpoints, the AudioSet label list and ontology.

Checksums are the publishers' own where they publish one (Zenodo's md5, the sha256 given with the
EfficientAT release mirror); files without a published checksum are pinned by the sha256 recorded on
first download (see `encoders.store`). Sizes are approximate where the publisher gives none.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

PANNS_RECORD = "https://zenodo.org/record/3987831/files"
EFFICIENTAT_RELEASE = "https://github.com/fschmid56/EfficientAT/releases/download/v0.0.1"
PANNS_LICENCE = "CC BY 4.0 (Kong et al., PANNs)"
EFFICIENTAT_LICENCE = "MIT (Schmid, Koutini, Widmer, EfficientAT)"


@dataclass(frozen=True)
class Asset:
    """One downloadable file."""

    name: str  # store name, e.g. "panns/Cnn14_mAP=0.431.pth"
    url: str
    licence: str
    size_mb: float  # approximate size, for display and disk-space planning
    sha256: str | None = None
    md5: str | None = None
    size_bytes: int | None = None  # exact size where published

    @property
    def filename(self) -> str:
        return self.name.rsplit("/", 1)[-1]


def _panns(filename: str, size_mb: float, md5: str | None = None, size_bytes: int | None = None) -> Asset:
    return Asset(
        name=f"panns/{filename}",
        url=f"{PANNS_RECORD}/{quote(filename)}?download=1",
        licence=PANNS_LICENCE,
        size_mb=size_mb,
        md5=md5,
        size_bytes=size_bytes,
    )


def _efficientat(filename: str, size_mb: float, sha256: str | None = None) -> Asset:
    return Asset(
        name=f"efficientat/{filename}",
        url=f"{EFFICIENTAT_RELEASE}/{filename}",
        licence=EFFICIENTAT_LICENCE,
        size_mb=size_mb,
        sha256=sha256,
    )


LABELS = Asset(
    name="audioset/class_labels_indices.csv",
    url="http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/class_labels_indices.csv",
    licence="CC BY 4.0 (Google, AudioSet)",
    size_mb=0.015,
    sha256="cdd1049833c4b86127c2773ac0d14a2754b6a6d0d1798002ed5c66e699708429",
)
ONTOLOGY = Asset(
    name="audioset/ontology.json",
    url="https://raw.githubusercontent.com/audioset/ontology/master/ontology.json",
    licence="CC BY-SA 4.0 (Google, AudioSet ontology)",
    size_mb=0.34,
    sha256="9c685f4403eecc3ca9be37fd7285cf212feaaea6ff7229d3e7ca89e0d1f2d15d",
)

# Every checkpoint of Zenodo record 3987831 (PANNs v3).
PANNS_FILES: tuple[Asset, ...] = (
    _panns("Cnn6_mAP=0.343.pth", 19),
    _panns("Cnn10_mAP=0.380.pth", 21),
    _panns("Cnn14_mAP=0.431.pth", 327),
    _panns("Cnn14_16k_mAP=0.438.pth", 327),
    _panns("Cnn14_8k_mAP=0.416.pth", 327),
    _panns("Cnn14_DecisionLevelMax_mAP=0.385.pth", 327),
    _panns("Cnn14_DecisionLevelAtt_mAP=0.425.pth", 343),
    _panns("Cnn14_emb512_mAP=0.420.pth", 300),
    _panns("Cnn14_emb128_mAP=0.412.pth", 297),
    _panns("Cnn14_emb32_mAP=0.364.pth", 296),
    _panns("MobileNetV1_mAP=0.389.pth", 23.6, md5="a419303e1c88aa1b9d2ac3811563d371", size_bytes=23_639_473),
    _panns("MobileNetV2_mAP=0.383.pth", 20.8),
    _panns("ResNet22_mAP=0.430.pth", 259),
    _panns("ResNet38_mAP=0.434.pth", 295),
    _panns("ResNet54_mAP=0.429.pth", 419),
    _panns("Wavegram_Cnn14_mAP=0.389.pth", 328),
    _panns("Wavegram_Logmel_Cnn14_mAP=0.439.pth", 329),
    _panns("LeeNet11_mAP=0.266.pth", 4.8),
    _panns("LeeNet24_mAP=0.336.pth", 42),
    _panns("DaiNet19_mAP=0.295.pth", 17),
    _panns("Res1dNet31_mAP=0.365.pth", 322),
    _panns("Res1dNet51_mAP=0.355.pth", 411),
)

# EfficientAT release v0.0.1: the AudioSet MobileNetV3 family and the dynamic MobileNets.
EFFICIENTAT_FILES: tuple[Asset, ...] = (
    _efficientat("mn04_as_mAP_432.pt", 4.1, sha256="899a8c6217063f6941793102a2780b3dd788ab11fce468d9cf5f0577c453321c"),
    _efficientat("mn05_as_mAP_443.pt", 5.6),
    _efficientat("mn10_as_mAP_471.pt", 18),
    _efficientat("mn20_as_mAP_478.pt", 64),
    _efficientat("mn30_as_mAP_482.pt", 140),
    _efficientat("mn40_as_mAP_484.pt", 250),
    _efficientat("mn40_as_ext_mAP_487.pt", 250),
    _efficientat("dymn04_as.pt", 7.6),
    _efficientat("dymn10_as.pt", 42),
    _efficientat("dymn20_as.pt", 160),
)

ALL_ASSETS: dict[str, Asset] = {a.name: a for a in (LABELS, ONTOLOGY, *PANNS_FILES, *EFFICIENTAT_FILES)}


def find_asset(filename: str) -> Asset | None:
    """The asset a local file is, judged by its file name (URL-quoted names are accepted too)."""
    for asset in ALL_ASSETS.values():
        if filename in (asset.filename, quote(asset.filename)):
            return asset
    return None
