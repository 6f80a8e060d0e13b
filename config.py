"""One settings object for the whole product.

Every field has a default that a `SOUNDSEARCH_*` environment variable overrides (nested groups use a
double underscore). Code takes a `Settings` argument and never reads `os.environ` itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    """The data home when `SOUNDSEARCH_HOME` is unset: a folder in the user's home directory."""
    return Path.home() / ".soundsearch"


class Settings(BaseSettings):
    """Where soundsearch keeps its files and how it runs models."""

    model_config = SettingsConfigDict(env_prefix="SOUNDSEARCH_", env_nested_delimiter="__")

    home: Path = Field(default_factory=default_home, description="Data home: models, database, indexes.")
    db: str | None = Field(
        None, description="Database URL (e.g. postgresql+psycopg://user:pw@host/db); default SQLite in the data home."
    )
    model: str = Field("mn04", description="Default encoder for tagging and indexing.")
    threads: int = Field(0, ge=0, description="Torch CPU threads (0: torch's default).")
    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu' or 'cuda[:N]'.")
    batch_size: int = Field(8, ge=1, le=256, description="Segments per forward pass.")
    window_s: float = Field(10.0, gt=0, description="Segment length for long files (seconds).")
    hop_s: float = Field(5.0, gt=0, description="Step between segment starts (seconds).")
    min_clip_s: float = Field(1.0, gt=0, description="Shorter sounds are zero-padded to this length.")
    pad_step_s: float = Field(
        1.0, gt=0, description="Short clips are zero-padded to a multiple of this, so similar lengths share a batch."
    )
    workers: int = Field(
        default_factory=lambda: max(1, min(4, os.cpu_count() or 1)),
        ge=0,
        le=64,
        description="Decoding processes during ingest (0: decode in the main process); default one per core, "
        "at most 4. The model gets the cores left over (at least one thread).",
    )
    example_tag_weight: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Query by example: weight of 'what it is' (ontology-propagated tags) against 'how it sounds' "
        "(the embedding); see encoders/example_vector.py.",
    )
    max_duration_s: float = Field(
        3 * 3600.0, gt=0, description="Longer files are indexed up to this length (bounds memory per file)."
    )

    @property
    def models_dir(self) -> Path:
        """Downloaded or imported model files and label assets."""
        return self.home / "models"
