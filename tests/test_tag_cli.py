"""`soundsearch tag` and `soundsearch models` through the real CLI, on real recordings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from soundsearch.cli import app

from .conftest import shared_path

runner = CliRunner()

BARKS = "audio/sfx_debian/gcompris/gcompris/src/activities/memory-sound/resource"


def run(home: Path, *args: str):
    return runner.invoke(app, [*args], env={"SOUNDSEARCH_HOME": str(home), "SOUNDSEARCH_THREADS": "2"})


def tags_of(doc: list[dict], name: str) -> list[str]:
    entry = next(d for d in doc if Path(d["path"]).name == name)
    return [t["label"] for t in entry["tags"]]


def test_typing_clip_is_tagged_keyboard_typing(models_home: Path) -> None:
    result = run(models_home, "tag", str(shared_path("audio", "tagged_samples", "typing.wav")), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    top = tags_of(doc, "typing.wav")[:2]
    assert set(top) == {"Computer keyboard", "Typing"}
    scores = [t["score"] for t in doc[0]["tags"]]
    assert scores == sorted(scores, reverse=True)


def test_bark_files_are_dog_bark(models_home: Path) -> None:
    barks = sorted(shared_path(*BARKS.split("/")).glob("LRBark_*.ogg"))
    assert len(barks) == 2
    result = run(models_home, "tag", *map(str, barks), "--json", "-k", "3")
    assert result.exit_code == 0, result.output
    for doc in json.loads(result.stdout):
        assert {"Dog", "Bark"} & set(t["label"] for t in doc["tags"][:2]), doc


def test_bad_files_are_reported_and_the_rest_tagged(models_home: Path, tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "readme.ogg").write_text("not audio at all\n" * 10)
    good = shared_path("audio", "tagged_samples", "speech.wav")
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:40])
    args = [str(tmp_path / "empty.wav"), str(good), str(tmp_path / "readme.ogg"), str(truncated)]
    result = run(models_home, "tag", *args, "--json")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3
    assert any("empty.wav" in e and "empty file" in e for e in errors)
    assert any("readme.ogg" in e for e in errors) and any("truncated.wav" in e for e in errors)
    doc = json.loads(result.stdout)
    assert [Path(d["path"]).name for d in doc] == ["speech.wav"]
    assert tags_of(doc, "speech.wav")[0] == "Speech"


def test_segments_and_folder_scan(models_home: Path, tmp_path: Path) -> None:
    folder = shared_path("audio", "tagged_samples")
    result = run(models_home, "tag", str(folder), "--segments", "--json", "-k", "2")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert sorted(Path(d["path"]).name for d in doc) == ["music.wav", "speech.wav", "typing.wav"]
    for d in doc:
        assert d["segments"] and d["segments"][0]["start"] == 0.0
        assert d["segments"][-1]["end"] == pytest.approx(d["duration"], abs=0.01)
    table = run(models_home, "tag", str(folder / "music.wav"), "--segments")
    assert table.exit_code == 0 and "Music" in table.stdout


def test_missing_model_is_one_clear_line(tmp_path: Path) -> None:
    result = run(tmp_path, "tag", str(shared_path("audio", "tagged_samples", "typing.wav")))
    assert result.exit_code == 2
    assert "soundsearch models pull" in result.stderr and "soundsearch models import" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_model_lists_known_ones(models_home: Path) -> None:
    result = run(models_home, "tag", "--model", "Cnn99", str(shared_path("audio", "tagged_samples", "typing.wav")))
    assert result.exit_code == 2 and "mn04" in result.stderr


def test_models_import_list_verify(tmp_path: Path) -> None:
    result = run(tmp_path, "models", "import", str(shared_path("models")))
    assert result.exit_code == 0, result.output
    assert "efficientat/mn04_as_mAP_432.pt: imported" in result.stdout
    listing = run(tmp_path, "models", "list")
    assert listing.exit_code == 0
    row = next(line for line in listing.stdout.splitlines() if "mn04" in line)
    assert " ok " in row and "0.432" in row
    assert run(tmp_path, "models", "verify").exit_code == 0
    store_file = tmp_path / "models" / "audioset" / "ontology.json"
    store_file.write_text("{}")
    bad = run(tmp_path, "models", "verify")
    assert bad.exit_code == 1 and "ontology.json: checksum mismatch" in bad.stdout


def test_pull_offline_fails_cleanly(tmp_path: Path) -> None:
    result = run(tmp_path, "models", "pull", "definitely-not-a-model")
    assert result.exit_code == 2 and "unknown model" in result.output
