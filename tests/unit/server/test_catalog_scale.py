"""The catalog at scale: columnar entries, approximate indexes, incremental generations."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from langchain_qwen_imagesearch.server import (
    Catalog,
    CatalogEntry,
    build_catalog,
    demo_catalog_dir,
    next_generation,
)
from langchain_qwen_imagesearch.server.engine.appearance import APPEARANCE_DIM
from langchain_qwen_imagesearch.server.engine.catalog import APPEARANCE_INDEX_FILE
from langchain_qwen_imagesearch.server.engine.meaning.encoder import MEANING_DIM
from langchain_qwen_imagesearch.server.store.catalog_files import StoredMeaning
from langchain_qwen_imagesearch.server.store.entry_table import EntryTable

SYNTHETIC = 400


def entries(count: int, start: int = 0) -> list[CatalogEntry]:
    return [
        CatalogEntry(
            id=f"{number:016x}",
            title=f"Picture {number} — café",
            path=Path(f"/pictures/{number}.jpg") if number % 3 else None,
            source_url=f"https://example.com/{number}.jpg" if number % 2 else None,
            sha256=f"{number:064x}",
            size=number,
            mtime_ns=number * 1000,
        )
        for number in range(start, start + count)
    ]


def unit_rows(rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
    rows = rng.normal(size=(count, 8)) @ rng.normal(size=(8, dim)) + 0.1 * rng.normal(
        size=(count, dim)
    )
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def current_generation(catalog: Path) -> Path:
    return catalog / "generations" / (catalog / "CURRENT").read_text().strip()


def test_an_entry_table_gives_back_every_field_and_finds_ids() -> None:
    given = entries(9)
    table = EntryTable.of_entries(given, np.arange(9, dtype=np.int64) * 3)

    assert list(table) == given
    assert [table.row_of(e.id) for e in given] == list(range(9))
    assert table.row_of("no-such-id") is None and table.row_of("x" * 40) is None
    picked = EntryTable.concat(table.take(np.array([7, 2])), table.take(np.array([0])))
    assert list(picked) == [given[7], given[2], given[0]]
    assert picked.row_of(given[0].id) == 2


def test_a_saved_table_opens_memory_mapped_with_the_same_entries(tmp_path: Path) -> None:
    given = entries(5)
    for name, array in EntryTable.of_entries(given, np.arange(5, dtype=np.int64)).arrays().items():
        np.save(tmp_path / f"{name}.npy", array)

    opened = EntryTable.load(tmp_path)

    assert list(opened) == given and opened.entries_of(np.array([4, 1])) == [given[4], given[1]]


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> int:
    """Approximate indexes from a few entries on, so that tests need no big catalog."""
    monkeypatch.setattr(next_generation, "APPROXIMATE_FROM", 8)
    return 8


def test_a_large_catalog_is_searched_approximately_with_the_exact_scans_hits(
    tmp_path: Path, small_threshold: int
) -> None:
    rng = np.random.default_rng(5)
    appearance = unit_rows(rng, SYNTHETIC, APPEARANCE_DIM)
    meaning = np.abs(rng.normal(size=(SYNTHETIC, MEANING_DIM))).astype(np.float32)
    meaning[: SYNTHETIC // 2] += 3 * np.abs(rng.normal(size=MEANING_DIM)).astype(np.float32)
    next_generation.write_descriptors(tmp_path / "catalog", entries(SYNTHETIC), appearance, meaning)

    approximate = Catalog.open(tmp_path / "catalog")
    stored = approximate.entries()
    exact = Catalog(list(stored), appearance, _stored_meaning(tmp_path / "catalog"))

    assert (current_generation(tmp_path / "catalog") / APPEARANCE_INDEX_FILE).is_file()
    for row in (0, 7, 250):
        looks = appearance[row] + 0.01 * rng.normal(size=APPEARANCE_DIM).astype(np.float32)
        query = approximate.meaning_query(meaning[row])
        found = [(m.entry.id, m.kind) for m in approximate.search_vectors(looks, query)][:10]
        expected = [(m.entry.id, m.kind) for m in exact.search_vectors(looks, query)][:10]
        assert found == expected and found[0] == (f"{row:016x}", "same picture")


def _stored_meaning(catalog: Path) -> StoredMeaning:
    generation = current_generation(catalog)
    return StoredMeaning(
        "synthetic",
        np.load(generation / "meaning_centre.npy"),
        np.load(generation / "meaning.npy"),
        np.load(generation / "meaning_norms.npy"),
    )


def test_index_runs_update_the_approximate_indexes_with_what_changed(
    tmp_path: Path, small_threshold: int
) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(demo_catalog_dir(), photos)
    catalog_dir = tmp_path / "catalog"
    build_catalog(photos, catalog_dir)
    coffee = photos / "cup_of_coffee_on_saucer.jpg"
    with Image.open(coffee) as original:
        mirrored_coffee = original.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    coffee.unlink()
    more = tmp_path / "more"
    more.mkdir()
    with Image.open(demo_catalog_dir() / "brick_wall.jpg") as brick:
        brick.rotate(180).save(more / "brick_upside_down.jpg")

    build_catalog(photos, catalog_dir)
    report = build_catalog(more, catalog_dir)
    catalog = Catalog.open(catalog_dir)

    assert report.total == len(catalog) == 16
    assert (current_generation(catalog_dir) / APPEARANCE_INDEX_FILE).is_file()
    titles = [m.entry.title for m in catalog.search(Image.open(more / "brick_upside_down.jpg"))]
    assert titles[0] == "Brick upside down"
    assert all("coffee" not in m.entry.title.lower() for m in catalog.search(mirrored_coffee))


def test_the_meaning_centre_stays_until_the_catalog_doubles(tmp_path: Path) -> None:
    photos = sorted(demo_catalog_dir().glob("*.jpg"))
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    for photo in photos[:6]:
        shutil.copy(photo, first)
    for photo in photos[6:10]:
        shutil.copy(photo, second)
    catalog_dir = tmp_path / "catalog"

    build_catalog(first, catalog_dir)
    centre_of_six = np.load(current_generation(catalog_dir) / "meaning_centre.npy")
    build_catalog(second, catalog_dir)  # 10 entries: less than twice 6
    centre_of_ten = np.load(current_generation(catalog_dir) / "meaning_centre.npy")
    shutil.copytree(demo_catalog_dir(), tmp_path / "all")
    build_catalog(tmp_path / "all", catalog_dir)  # 26 entries: more than twice 6
    centre_of_all = np.load(current_generation(catalog_dir) / "meaning_centre.npy")

    assert np.array_equal(centre_of_six, centre_of_ten)
    assert not np.allclose(centre_of_ten, centre_of_all)
