"""Search on a real indexed library: by text, by example, both, with filters, through the engine and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soundsearch.cli import app
from soundsearch.config import Settings
from soundsearch.indexer.runner import index_paths
from soundsearch.search.engine import QueryError, SearchEngine, SearchRequest
from soundsearch.search.filters import FilterError, Filters

from .conftest import LIBRARY_FILES, copy_library

BARKS = {"animals/LRBark_1_LA_cut.ogg", "animals/LRBark_3_LA_cut.ogg"}
ANIMALS = {rel for rel in LIBRARY_FILES if rel.startswith("animals/")}
WEAPONS = {rel for rel in LIBRARY_FILES if rel.startswith("weapons/")}


@pytest.fixture(scope="module")
def indexed(models_home: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    """The twelve-sound library, indexed once for all tests here."""
    home = tmp_path_factory.mktemp("search-home")
    (home / "models").symlink_to(models_home / "models", target_is_directory=True)
    lib = copy_library(tmp_path_factory.mktemp("search-lib") / "sfx")
    settings = Settings(home=home, threads=2, workers=0)
    (report,) = index_paths(settings, [lib])
    assert len(report.indexed) == len(LIBRARY_FILES)
    return settings, lib


@pytest.fixture(scope="module")
def engine(indexed):
    eng = SearchEngine(indexed[0])
    yield eng
    eng.close()


def rels(response) -> list[str]:
    return [r.rel_path for r in response.results]


def test_text_dog_puts_the_barks_first(engine: SearchEngine) -> None:
    response = engine.search(SearchRequest(text="dog", k=5))
    top = rels(response)
    assert set(top[:3]) >= BARKS, top
    assert set(top[:3]) <= ANIMALS
    assert [r.score for r in response.results] == sorted((r.score for r in response.results), reverse=True)
    assert response.text is not None and any(c.name == "Dog" for c in response.text.concepts)


def test_text_uses_the_ontology_and_plurals(engine: SearchEngine) -> None:
    animal = rels(engine.search(SearchRequest(text="Animals", k=len(ANIMALS))))
    assert set(animal) == ANIMALS, animal  # no Animal tag needed: Dog, Cattle, Horse... are below it
    explosions = rels(engine.search(SearchRequest(text="explosions", k=2)))
    assert set(explosions) == {"weapons/explosion.ogg", "weapons/hedgewars-explosion.ogg"}


def test_text_that_names_no_class_finds_nothing_and_says_so(engine: SearchEngine) -> None:
    response = engine.search(SearchRequest(text="qwxz zzyq"))
    assert response.results == [] and any("names no AudioSet" in n for n in response.notes)


def test_audio_example_ranks_barks_and_animals_above_weapons(engine: SearchEngine, indexed) -> None:
    _, lib = indexed
    response = engine.search(SearchRequest(audio=lib / "animals/LRBark_1_LA_cut.ogg", k=len(LIBRARY_FILES)))
    order = rels(response)
    assert order[0] == "animals/LRBark_1_LA_cut.ogg" and response.results[0].score == pytest.approx(1.0, abs=1e-4)
    assert order[1] == "animals/LRBark_3_LA_cut.ogg"
    worst_animal = max(order.index(a) for a in ANIMALS)
    best_weapon = min(order.index(w) for w in WEAPONS)
    assert worst_animal < best_weapon, order
    first = response.results[0]
    assert 0 <= first.start < first.end <= first.duration + 1e-3
    assert Path(first.path).is_absolute() and Path(first.path).exists()


def test_like_an_indexed_sound_equals_searching_with_its_file(engine: SearchEngine, indexed) -> None:
    _, lib = indexed
    by_file = engine.search(SearchRequest(audio=lib / "weapons/sword-1.ogg", k=5))
    sound_id = by_file.results[0].sound_id
    by_id = engine.search(SearchRequest(like=sound_id, k=5))
    assert rels(by_id) == rels(by_file)
    with pytest.raises(QueryError, match="no indexed sound"):
        engine.search(SearchRequest(like=999_999))


def test_hybrid_fuses_both_kinds(engine: SearchEngine, indexed) -> None:
    _, lib = indexed
    response = engine.search(SearchRequest(text="explosion", audio=lib / "weapons/sword-1.ogg", k=4))
    assert response.kinds == ["audio", "text"]
    top = response.results[0]
    assert set(top.scores) == {"audio", "text"}
    # In lists this short, reciprocal-rank fusion puts what both kinds found before what one kind found.
    both = [
        len(r.scores) == 2
        for r in engine.search(SearchRequest(text="explosion", audio=lib / "weapons/sword-1.ogg", k=12)).results
    ]
    assert both == sorted(both, reverse=True) and both[0] and not both[-1]


def test_filters(engine: SearchEngine, indexed) -> None:
    _, lib = indexed
    example = lib / "animals/LRBark_1_LA_cut.ogg"
    dogs = engine.search(SearchRequest(audio=example, k=20, filters=Filters(tags=("Dog",))))
    assert set(rels(dogs)) >= BARKS and set(rels(dogs)) <= ANIMALS
    assert dogs.filters == ["tagged 'Dog' (p >= 0.1)"]
    dog_text = engine.search(SearchRequest(text="animal", k=20, filters=Filters(tags=("Dog",))))
    assert set(rels(dog_text)) >= BARKS and set(rels(dog_text)) <= ANIMALS  # text and tag filter together
    long = engine.search(SearchRequest(audio=example, k=20, filters=Filters(min_duration=3.0)))
    assert long.results and all(r.duration >= 3.0 for r in long.results)
    short = engine.search(SearchRequest(text="animal", k=20, filters=Filters(max_duration=2.0)))
    assert all(r.duration <= 2.0 for r in short.results)
    only = engine.search(SearchRequest(text="dog", k=20, filters=Filters(libraries=("sfx",))))
    assert only.results
    with pytest.raises(FilterError, match="no library named 'nope'"):
        engine.search(SearchRequest(text="dog", filters=Filters(libraries=("nope",))))
    with pytest.raises(FilterError, match="matches no AudioSet label"):
        engine.search(SearchRequest(text="dog", filters=Filters(tags=("qwxz",))))


def test_paging_is_consistent(engine: SearchEngine, indexed) -> None:
    _, lib = indexed
    example = lib / "weapons/axe.ogg"
    whole = engine.search(SearchRequest(audio=example, k=8))
    first = engine.search(SearchRequest(audio=example, k=4))
    second = engine.search(SearchRequest(audio=example, k=4, offset=4))
    assert rels(first) + rels(second) == rels(whole)
    assert [r.rank for r in second.results] == [5, 6, 7, 8]
    assert first.has_more and not engine.search(SearchRequest(audio=example, k=20)).has_more
    with pytest.raises(QueryError, match="k must be"):
        engine.search(SearchRequest(text="dog", k=0))
    with pytest.raises(QueryError, match="give an audio example"):
        engine.search(SearchRequest())


def test_cli_json_output(indexed) -> None:
    settings, lib = indexed
    result = CliRunner().invoke(
        app, ["search", "--text", "dog", "-k", "3", "--json", "--home", str(settings.home)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert isinstance(doc, list) and len(doc) == 3
    for rank, item in enumerate(doc, start=1):
        assert item["rank"] == rank
        assert Path(item["path"]).is_absolute() and Path(item["path"]).is_file()
        assert {"score", "start", "end", "tags"} <= item.keys()
        assert item["tags"] and {"label", "score"} <= item["tags"][0].keys()
    assert Path(doc[0]["path"]).relative_to(lib).as_posix() in BARKS | {"animals/farm/dog.ogg"}


def test_cli_errors_are_one_line(indexed, tmp_path: Path) -> None:
    settings, _ = indexed
    home = ["--home", str(settings.home)]
    bad = tmp_path / "query.wav"
    bad.write_text("not audio")
    for args, fragment in (
        (["search", "--text", "dog", "--library", "nope"], "no library named"),
        (["search", "--audio", str(bad)], "query.wav"),
        (["search"], "give an audio example"),
    ):
        result = CliRunner().invoke(app, [*args, *home])
        assert result.exit_code == 2 and fragment in result.stderr, result.output


def test_rare_tag_filter_shortcut_ranks_like_the_general_path(
    engine: SearchEngine, indexed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tag kept by few sounds is applied first (its sounds are scored directly); with the shortcut off,
    the over-fetching path must give the same page."""
    from soundsearch.search import filters as filters_module

    _, lib = indexed
    requests = [
        SearchRequest(text="animal", k=5, filters=Filters(tags=("Dog",))),
        SearchRequest(audio=lib / "weapons/axe.ogg", k=5, filters=Filters(tags=("Animal",))),
    ]
    shortcut = [rels(engine.search(r)) for r in requests]
    monkeypatch.setattr(filters_module, "RARE_MAX", 0)
    general = [rels(engine.search(r)) for r in requests]
    assert shortcut == general and all(shortcut)
