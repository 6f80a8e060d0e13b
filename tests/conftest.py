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


#: A small real library: gcompris barks and farm animals, wesnoth weapons and explosions (sfx_debian).
SFX = "audio/sfx_debian"
GCOMPRIS = f"{SFX}/gcompris/gcompris/src/activities"
WESNOTH = f"{SFX}/wesnoth/data/core/sounds"
LIBRARY_FILES = {
    "animals/LRBark_1_LA_cut.ogg": f"{GCOMPRIS}/memory-sound/resource/LRBark_1_LA_cut.ogg",
    "animals/LRBark_3_LA_cut.ogg": f"{GCOMPRIS}/memory-sound/resource/LRBark_3_LA_cut.ogg",
    "animals/farm/dog.ogg": f"{GCOMPRIS}/explore_farm_animals/resource/animals/dog.ogg",
    "animals/farm/cat.ogg": f"{GCOMPRIS}/explore_farm_animals/resource/animals/cat.ogg",
    "animals/farm/cow.ogg": f"{GCOMPRIS}/explore_farm_animals/resource/animals/cow.ogg",
    "animals/farm/horse.ogg": f"{GCOMPRIS}/explore_farm_animals/resource/animals/horse.ogg",
    "animals/farm/pig.ogg": f"{GCOMPRIS}/explore_farm_animals/resource/animals/pig.ogg",
    "weapons/sword-1.ogg": f"{WESNOTH}/sword-1.ogg",
    "weapons/mace.ogg": f"{WESNOTH}/mace.ogg",
    "weapons/axe.ogg": f"{WESNOTH}/axe.ogg",
    "weapons/explosion.ogg": f"{WESNOTH}/explosion.ogg",
    "weapons/hedgewars-explosion.ogg": f"{SFX}/hedgewars/Sounds/explosion.ogg",
}


def copy_library(dest: Path, files: dict[str, str] | None = None) -> Path:
    """Copy real sounds from ../shared into a library folder the test may change."""
    import shutil

    for rel, src in (files or LIBRARY_FILES).items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(shared_path(*src.split("/")), target)
    return dest


@pytest.fixture
def make_home(models_home: Path, tmp_path: Path):
    """New, empty data homes that share the imported models (linked, not copied)."""
    counter = iter(range(1000))

    def make() -> Path:
        home = tmp_path / f"home{next(counter)}"
        home.mkdir()
        (home / "models").symlink_to(models_home / "models", target_is_directory=True)
        return home

    return make
