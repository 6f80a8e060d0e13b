"""Opening models and vocabularies from the store, as every command and service does."""

from __future__ import annotations

from ..config import Settings
from .audioset import AudioSetVocabulary
from .encoder import Encoder
from .registry import get_entry, load_net
from .store import ModelStore


def open_store(settings: Settings) -> ModelStore:
    return ModelStore(settings.models_dir)


def open_encoder(settings: Settings, model: str | None = None) -> Encoder:
    """The named (or default) model, loaded from the store with the settings' segmenting policy."""
    entry = get_entry(model or settings.model)
    checkpoint = open_store(settings).require(entry.asset)
    return Encoder(
        load_net(entry, checkpoint),
        entry.name,
        window_s=settings.window_s,
        hop_s=settings.hop_s,
        min_clip_s=settings.min_clip_s,
        pad_step_s=settings.pad_step_s,
        batch_size=settings.batch_size,
        device=settings.device,
        threads=settings.threads,
    )


def model_version(settings: Settings, model: str | None = None) -> str:
    """What identifies the vectors a model makes: its name and the first 16 hex digits of its
    checkpoint's sha256 (a re-released checkpoint under the same name is another version)."""
    entry = get_entry(model or settings.model)
    return f"{entry.name}@{open_store(settings).sha256(entry.asset)[:16]}"


def open_vocabulary(settings: Settings) -> AudioSetVocabulary:
    """AudioSet labels (and the ontology when installed) from the store."""
    labels, ontology = open_store(settings).labels_paths()
    return AudioSetVocabulary.from_files(labels, ontology)
