"""The model registry: every entry builds, and its declared facts match the network."""

from __future__ import annotations

import pytest

from soundsearch.encoders.assets import ALL_ASSETS, PANNS_FILES
from soundsearch.encoders.registry import MODELS, UnknownModelError, build_net, get_entry


@pytest.mark.parametrize("name", list(MODELS))
def test_entry_matches_its_network(name: str) -> None:
    entry = MODELS[name]
    net = build_net(entry)
    assert net.sample_rate == entry.sample_rate
    assert net.embedding_dim == entry.embedding_dim
    assert net.classes_num == 527
    assert entry.asset.name in ALL_ASSETS


def test_names_are_case_insensitive_and_unknown_names_refused() -> None:
    assert get_entry("cnn14").name == "Cnn14"
    with pytest.raises(UnknownModelError, match="known models: mn04"):
        get_entry("Cnn15")


def test_every_panns_checkpoint_of_the_record_is_listed() -> None:
    names = {a.filename for a in PANNS_FILES}
    assert {"Cnn14_mAP=0.431.pth", "Cnn14_16k_mAP=0.438.pth", "MobileNetV1_mAP=0.389.pth"} <= names
    assert all(a.url.startswith("https://zenodo.org/record/3987831/files/") for a in PANNS_FILES)
    assert all("%3D" in a.url for a in PANNS_FILES)
