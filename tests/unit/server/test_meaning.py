"""Search by meaning: the encoder rebuilt from its weights, and what it finds."""

from __future__ import annotations

import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from langchain_qwen_imagesearch.server import (
    Catalog,
    build_catalog,
    demo_catalog_dir,
    demo_similar_style_query,
)
from langchain_qwen_imagesearch.server.engine.meaning.checkpoint import (
    LEGACY_MAGIC,
    LEGACY_PROTOCOL,
    CheckpointError,
    load_state_dict,
)
from langchain_qwen_imagesearch.server.engine.meaning.encoder import (
    MEANING_DIM,
    converted_model,
    shared_encoder,
    weights_path,
)
from langchain_qwen_imagesearch.server.engine.meaning.lite0_graph import lite0_model

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


def demo_photo(stem: str) -> Image.Image:
    return Image.open(demo_catalog_dir() / f"{stem}.jpg")


def probabilities(logits: np.ndarray) -> np.ndarray:
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(exponentials / exponentials.sum(axis=1, keepdims=True))


def test_the_rebuilt_network_still_knows_a_cat_and_an_espresso() -> None:
    """The weights were read and the graph built right: ImageNet's own head agrees."""
    logits = shared_encoder().imagenet_logits(
        [demo_photo("tabby_cat_chelsea"), demo_photo("cup_of_coffee_on_saucer")]
    )
    cat, coffee = probabilities(logits)

    assert int(cat.argmax()) in CAT_CLASSES and cat[list(CAT_CLASSES)].sum() > 0.8
    assert int(coffee.argmax()) == ESPRESSO and coffee[ESPRESSO] > 0.8


def test_the_conversion_is_deterministic() -> None:
    weights = load_state_dict(weights_path())

    first, second = (lite0_model(weights).SerializeToString() for _ in range(2))

    assert first == second


def test_meaning_descriptors_have_one_row_per_picture() -> None:
    features = shared_encoder().embed([demo_photo("brick_wall"), Image.new("RGB", (30, 900))])

    assert features.shape == (2, MEANING_DIM) and features.dtype == np.float32
    assert np.isfinite(features).all()


class _RunsACommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_weights_file_that_names_other_code_is_refused_and_never_runs_it(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "ran"
    hostile = tmp_path / "weights.pth"
    with hostile.open("wb") as stream:
        for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
            pickle.dump(header, stream, protocol=2)
        pickle.dump({"_conv_stem.weight": _RunsACommand(marker)}, stream, protocol=2)
        pickle.dump([], stream, protocol=2)
        stream.write(struct.pack("<q", 0))

    with pytest.raises(CheckpointError, match="is not allowed"):
        load_state_dict(hostile)
    assert not marker.exists()


def test_a_file_that_is_no_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    not_weights = tmp_path / "weights.pth"
    not_weights.write_bytes(b"PK\x03\x04 a zip, or anything else")

    with pytest.raises(CheckpointError, match="cannot be read as weights"):
        load_state_dict(not_weights)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    catalog_dir = tmp_path_factory.mktemp("meaning") / "catalog"
    build_catalog(demo_catalog_dir(), catalog_dir)
    return Catalog.open(catalog_dir)


def test_a_portrait_not_in_the_catalog_finds_the_catalogs_portrait_as_similar(
    demo: Catalog,
) -> None:
    with Image.open(demo_similar_style_query()) as portrait:
        matches = demo.search(portrait)

    assert matches and "Astronaut" in matches[0].entry.title
    assert matches[0].kind == "similar" and not matches[0].near_duplicate


def test_a_catalog_photo_finds_itself_as_the_same_picture_then_its_kind(demo: Catalog) -> None:
    matches = demo.search(demo_photo("grass_close_up"))

    assert [(m.entry.title, m.kind) for m in matches] == [
        ("Grass, close-up texture", "same picture"),
        ("Gravel, close-up texture", "similar"),
    ]


def test_an_edited_copy_is_still_the_same_picture(demo: Catalog) -> None:
    photo = demo_photo("tabby_cat_chelsea").convert("RGB")
    edited = photo.crop((30, 20, photo.width - 30, photo.height - 20)).rotate(5)

    matches = demo.search(edited)

    assert matches[0].entry.title == "Tabby cat Chelsea" and matches[0].kind == "same picture"


def test_the_converted_model_is_cached_and_reused(tmp_path: Path) -> None:
    first = converted_model(tmp_path)
    (cached,) = (tmp_path / "models").iterdir()

    assert cached.read_bytes() == first == converted_model(tmp_path)
    assert first == lite0_model(load_state_dict(weights_path())).SerializeToString()
