"""Shared test fixtures: where the read-only `../shared` assets are, skipping clearly when absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or skip the test naming what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs ../shared/{'/'.join(parts)} (the project's shared assets are not beside this checkout)")
    return path


@pytest.fixture(scope="session")
def models_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data home whose model store holds ../shared/models, imported the way users do offline."""
    from soundsearch.encoders.store import ModelStore

    source = shared_path("models")
    home = tmp_path_factory.mktemp("home")
    results = ModelStore(home / "models").import_dir(source)
    assert all(r.status == "imported" for r in results), results
    return home


@pytest.fixture(scope="session")
def settings(models_home: Path):
    from soundsearch.config import Settings

    return Settings(home=models_home, threads=2)


@pytest.fixture(scope="session")
def mn04_encoder(settings):
    from soundsearch.encoders.load import open_encoder

    return open_encoder(settings, "mn04")


@pytest.fixture(scope="session")
def vocab(settings):
    from soundsearch.encoders.load import open_vocabulary

    return open_vocabulary(settings)
