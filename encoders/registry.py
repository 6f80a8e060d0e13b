"""Model names -> architecture + checkpoint asset. The one place that maps a user's `--model` to code.

Unknown names are refused with the list of known ones; nothing is picked by evaluating a string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import assets
from .base import TaggingNet, load_strict, read_state_dict


@dataclass(frozen=True)
class ModelEntry:
    """A model soundsearch can run."""

    name: str  # what users type: "mn04", "Cnn14", ...
    family: str  # "efficientat" or "panns"
    architecture: str  # key in the family's architecture table
    asset: assets.Asset  # its official checkpoint
    sample_rate: int
    embedding_dim: int
    audioset_map: float  # mAP on the AudioSet evaluation set, as published

    @property
    def licence(self) -> str:
        return self.asset.licence


def _asset(name: str) -> assets.Asset:
    return assets.ALL_ASSETS[name]


_ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry("mn04", "efficientat", "mn04", _asset("efficientat/mn04_as_mAP_432.pt"), 32000, 384, 0.432),
    ModelEntry("mn05", "efficientat", "mn05", _asset("efficientat/mn05_as_mAP_443.pt"), 32000, 480, 0.443),
    ModelEntry("mn10", "efficientat", "mn10", _asset("efficientat/mn10_as_mAP_471.pt"), 32000, 960, 0.471),
    ModelEntry("mn20", "efficientat", "mn20", _asset("efficientat/mn20_as_mAP_478.pt"), 32000, 1920, 0.478),
    ModelEntry("mn30", "efficientat", "mn30", _asset("efficientat/mn30_as_mAP_482.pt"), 32000, 2880, 0.482),
    ModelEntry("mn40", "efficientat", "mn40", _asset("efficientat/mn40_as_mAP_484.pt"), 32000, 3840, 0.484),
    ModelEntry("Cnn6", "panns", "Cnn6", _asset("panns/Cnn6_mAP=0.343.pth"), 32000, 512, 0.343),
    ModelEntry("Cnn10", "panns", "Cnn10", _asset("panns/Cnn10_mAP=0.380.pth"), 32000, 512, 0.380),
    ModelEntry("Cnn14", "panns", "Cnn14", _asset("panns/Cnn14_mAP=0.431.pth"), 32000, 2048, 0.431),
    ModelEntry("Cnn14_16k", "panns", "Cnn14_16k", _asset("panns/Cnn14_16k_mAP=0.438.pth"), 16000, 2048, 0.438),
    ModelEntry(
        "Cnn14_DecisionLevelMax",
        "panns",
        "Cnn14_DecisionLevelMax",
        _asset("panns/Cnn14_DecisionLevelMax_mAP=0.385.pth"),
        32000,
        2048,
        0.385,
    ),
    ModelEntry("MobileNetV1", "panns", "MobileNetV1", _asset("panns/MobileNetV1_mAP=0.389.pth"), 32000, 1024, 0.389),
    ModelEntry("MobileNetV2", "panns", "MobileNetV2", _asset("panns/MobileNetV2_mAP=0.383.pth"), 32000, 1024, 0.383),
    ModelEntry("ResNet22", "panns", "ResNet22", _asset("panns/ResNet22_mAP=0.430.pth"), 32000, 2048, 0.430),
    ModelEntry("ResNet38", "panns", "ResNet38", _asset("panns/ResNet38_mAP=0.434.pth"), 32000, 2048, 0.434),
    ModelEntry(
        "Wavegram_Logmel_Cnn14",
        "panns",
        "Wavegram_Logmel_Cnn14",
        _asset("panns/Wavegram_Logmel_Cnn14_mAP=0.439.pth"),
        32000,
        2048,
        0.439,
    ),
)

MODELS: dict[str, ModelEntry] = {e.name: e for e in _ENTRIES}
DEFAULT_MODEL = "mn04"


class UnknownModelError(KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:
        return f"unknown model {self.args[0]!r}; known models: {', '.join(MODELS)}"


def get_entry(name: str) -> ModelEntry:
    """The registry entry for a name (case-insensitive), or `UnknownModelError`."""
    if name in MODELS:
        return MODELS[name]
    folded = {k.casefold(): v for k, v in MODELS.items()}
    if name.casefold() in folded:
        return folded[name.casefold()]
    raise UnknownModelError(name)


def _architectures(family: str) -> dict[str, Callable[[], TaggingNet]]:
    # Imported lazily: listing models must not build (or even import) the networks.
    if family == "panns":
        from .panns import PANNS_ARCHITECTURES

        return PANNS_ARCHITECTURES
    from .efficientat import EFFICIENTAT_ARCHITECTURES

    return EFFICIENTAT_ARCHITECTURES


def build_net(entry: ModelEntry) -> TaggingNet:
    """A network of the entry's architecture with freshly initialised (untrained) weights."""
    return _architectures(entry.family)[entry.architecture]()


def load_net(entry: ModelEntry, checkpoint: Path) -> TaggingNet:
    """The entry's network with its checkpoint loaded strictly, in eval mode."""
    net = build_net(entry)
    load_strict(net, read_state_dict(checkpoint), str(checkpoint))
    return net.eval()
