"""The embedded search engine: features, index, catalog on disk, and search by image."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from langchain_qwen_imagesearch.protocol import MAX_HITS_PER_SEARCH
from langchain_qwen_imagesearch.server import (
    Catalog,
    CatalogEntry,
    CatalogError,
    HitRule,
    IndexReport,
    build_catalog,
    demo_catalog_dir,
)
from langchain_qwen_imagesearch.server.engine.appearance import (
    APPEARANCE_DIM,
    appearance_descriptor,
    appearance_with_mirror,
)
from langchain_qwen_imagesearch.server.engine.vector_index import VectorIndex
from langchain_qwen_imagesearch.server.indexer import title_from_file_name

DEMO_PHOTOS = sorted(demo_catalog_dir().glob("*.jpg"))


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[IndexReport, Catalog]:
    """The bundled demo photos indexed once for this module, and the report of that run."""
    folder = tmp_path_factory.mktemp("demo-catalog")
    report = build_catalog(demo_catalog_dir(), folder)
    return report, Catalog.open(folder)


@pytest.fixture(scope="module")
def demo(demo_build: tuple[IndexReport, Catalog]) -> Catalog:
    return demo_build[1]


def photo(name: str) -> Image.Image:
    (path,) = [p for p in DEMO_PHOTOS if name in p.name]
    with Image.open(path) as opened:
        picture: Image.Image = opened.convert("RGB")
    return picture


def entry_of(catalog: Catalog, name: str) -> CatalogEntry:
    (entry,) = [e for e in catalog.entries() if e.path is not None and name in e.path.name]
    return entry


def crop_area(image: Image.Image, area: float, x_anchor: float, y_anchor: float) -> Image.Image:
    side = math.sqrt(area)
    width, height = round(image.width * side), round(image.height * side)
    left, top = round((image.width - width) * x_anchor), round((image.height - height) * y_anchor)
    return image.crop((left, top, left + width, top + height))


def reencoded(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def captioned(image: Image.Image) -> Image.Image:
    copy = image.copy()
    font = ImageFont.load_default(size=max(12, image.height // 10))
    ImageDraw.Draw(copy).text(
        (image.width // 20, image.height * 5 // 6),
        "so cute!! #repost",
        font=font,
        fill="white",
        stroke_width=2,
        stroke_fill="black",
    )
    return copy


EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "central crop keeping 80% of the area": lambda im: crop_area(im, 0.8, 0.5, 0.5),
    "top-left crop keeping 80% of the area": lambda im: crop_area(im, 0.8, 0.0, 0.0),
    "resized to 50%": lambda im: im.resize((im.width // 2, im.height // 2)),
    "JPEG quality 30": lambda im: reencoded(im, 30),
    "30% brighter": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "30% darker": lambda im: ImageEnhance.Brightness(im).enhance(0.7),
    "mirrored": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
    "rotated 8 degrees": lambda im: im.rotate(8, Image.Resampling.BICUBIC),
    "captioned": captioned,
}


def test_demo_catalog_is_indexed_with_manifest_titles(
    demo_build: tuple[IndexReport, Catalog],
) -> None:
    report, catalog = demo_build
    assert len(DEMO_PHOTOS) >= 15
    assert (report.added, report.total, report.skipped) == (len(DEMO_PHOTOS), len(DEMO_PHOTOS), [])
    assert len(catalog) == len(DEMO_PHOTOS)
    assert entry_of(catalog, "chelsea").title == "Tabby cat Chelsea"
    for entry in catalog.entries():
        assert entry.path is not None and entry.path.is_absolute() and entry.path.is_file()
        assert entry.id.isalnum() and len(entry.id) == 16
        assert catalog.get(entry.id) == entry
    assert catalog.get("no-such-id") is None


@pytest.mark.parametrize("path", DEMO_PHOTOS, ids=lambda p: p.stem)
def test_a_catalog_photo_finds_itself_first_as_a_near_duplicate(demo: Catalog, path: Path) -> None:
    with Image.open(path) as image:
        matches = demo.search(image)
    assert matches[0].entry.path == path.resolve()
    assert matches[0].near_duplicate
    assert matches[0].score > 0.99


@pytest.mark.parametrize("edit", EDITS)
def test_an_edited_copy_finds_its_original_first(demo: Catalog, edit: str) -> None:
    for path in DEMO_PHOTOS:
        with Image.open(path) as image:
            copy = EDITS[edit](image.convert("RGB"))
        matches = demo.search(copy)
        assert matches, f"{edit} {path.name}: no hits"
        assert matches[0].entry.path == path.resolve(), f"{edit} {path.name}"


def test_the_demo_edit_finds_the_original_as_a_near_duplicate(demo: Catalog) -> None:
    edited = crop_area(photo("chelsea"), 0.64, 0.5, 0.5)
    edited = reencoded(captioned(ImageEnhance.Brightness(edited).enhance(0.8)), 60)
    best = demo.search(edited)[0]
    assert best.entry == entry_of(demo, "chelsea")
    assert best.near_duplicate


def test_an_upright_phone_photo_matches_despite_its_exif_orientation(demo: Catalog) -> None:
    # Stored on its side with an EXIF tag saying "rotate 90 degrees clockwise to display".
    sideways = photo("coffee").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    sideways.save(buffer, format="JPEG", quality=90, exif=exif)
    with Image.open(io.BytesIO(buffer.getvalue())) as image:
        assert demo.search(image)[0].entry == entry_of(demo, "coffee")


@pytest.mark.parametrize(
    "picture",
    [
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 400, 3), np.uint8)),
        Image.new("RGB", (400, 300), (128, 128, 128)),
        Image.new("RGB", (400, 300), (20, 160, 40)),
        Image.new("RGBA", (400, 300), (0, 0, 0, 0)),
    ],
    ids=["noise", "flat grey", "flat green", "fully transparent"],
)
def test_an_unrelated_picture_gets_few_or_no_hits(demo: Catalog, picture: Image.Image) -> None:
    """No copies, and only a few pictures of a similar look (noise looks like gravel)."""
    matches = demo.search(picture)
    assert len(matches) <= 5
    assert all(match.kind == "similar" for match in matches)


def test_hits_are_best_first_within_the_limit(demo: Catalog) -> None:
    query = crop_area(photo("gravel"), 0.8, 0.5, 0.5)
    matches = demo.search(query)
    scores = [match.score for match in matches]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= score <= 1.0 for score in scores)
    assert len(demo.search(query, limit=1)) == 1
    for limit in (0, MAX_HITS_PER_SEARCH + 1):
        with pytest.raises(ValueError, match="limit"):
            demo.search(query, limit=limit)


def test_the_hit_rule_drops_entries_far_below_the_best() -> None:
    rule = HitRule(min_score=0.5, relative_margin=0.1)
    assert rule.select(np.array([0.95, 0.9, 0.84, 0.6], dtype=np.float32)) == 2
    assert rule.select(np.array([0.55, 0.52, 0.49], dtype=np.float32)) == 2
    assert rule.select(np.array([0.4], dtype=np.float32)) == 0


def test_a_mirrored_picture_has_the_mirrored_descriptor() -> None:
    image = photo("astronaut")
    original, mirrored = appearance_with_mirror(image)
    direct = appearance_descriptor(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    assert original.shape == (APPEARANCE_DIM,) and original.dtype == np.float32
    assert float(np.linalg.norm(original)) == pytest.approx(1.0, abs=1e-5)
    assert float(mirrored @ direct) > 0.999


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I", "F", "1"])
def test_any_image_mode_is_described(mode: str) -> None:
    image = photo("coffee").convert(mode)
    vector = appearance_descriptor(image)
    assert vector.shape == (APPEARANCE_DIM,)
    assert np.isfinite(vector).all()


def copy_photos(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (path,) = [p for p in DEMO_PHOTOS if name in p.name]
        shutil.copy2(path, folder / path.name)


def test_reindexing_only_reports_what_changed(tmp_path: Path) -> None:
    source, catalog_dir = tmp_path / "photos", tmp_path / "catalog"
    copy_photos(source, "chelsea", "coffee", "rocket")
    first = build_catalog(source, catalog_dir)
    assert (first.added, first.unchanged, first.total) == (3, 0, 3)

    again = build_catalog(source, catalog_dir)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 3, 0)

    coffee = next(source.glob("*coffee*"))
    os.utime(coffee, ns=(0, 1_000_000_000))  # touched: same content
    photo("brick").save(next(source.glob("*rocket*")))  # replaced by another picture
    next(source.glob("*chelsea*")).unlink()
    copy_photos(source / "more", "hubble")
    changed = build_catalog(source, catalog_dir)
    assert (changed.added, changed.updated, changed.unchanged, changed.removed) == (1, 1, 1, 1)

    catalog = Catalog.open(catalog_dir)
    assert len(catalog) == 3
    rocket_file = next(source.glob("*rocket*")).resolve()
    assert catalog.search(photo("brick"))[0].entry.path == rocket_file
    assert catalog.search(photo("hubble"))[0].entry.title == "Hubble extreme deep field"


def test_unreadable_files_are_skipped_and_reported(tmp_path: Path) -> None:
    source = tmp_path / "photos"
    copy_photos(source, "chelsea")
    (source / "notes.jpg").write_text("not a picture")
    (source / "empty.png").write_bytes(b"")
    (source / "readme.txt").write_text("not indexed: not an image file name")
    report = build_catalog(source, tmp_path / "catalog")
    assert report.total == 1
    assert sorted(path for path, _ in report.skipped) == ["empty.png", "notes.jpg"]
    # The reason is for people: no Python object reprs.
    assert all(reason == "not an image format Pillow can read" for _, reason in report.skipped)
    assert len(Catalog.open(tmp_path / "catalog")) == 1


def test_two_files_of_the_same_content_are_both_kept_and_reported(tmp_path: Path) -> None:
    source = tmp_path / "photos"
    copy_photos(source, "chelsea")
    shutil.copy(next(source.glob("*chelsea*")), source / "again.jpg")
    manifest = {
        "again.jpg": {"title": "Chelsea again", "url": "https://a.example/cat.jpg"},
        "tabby_cat_chelsea.jpg": {"title": "Chelsea", "url": "https://b.example/cat.jpg"},
    }
    (source / "manifest.json").write_text(json.dumps(manifest))

    report = build_catalog(source, tmp_path / "catalog")

    assert report.total == 2 and report.skipped == []
    assert report.duplicates == [("tabby_cat_chelsea.jpg", "again.jpg")]
    catalog = Catalog.open(tmp_path / "catalog")
    found = {(e.title, e.source_url) for e in catalog.entries()}
    assert found == {(d["title"], d["url"]) for d in manifest.values()}
    assert len({e.id for e in catalog.entries()}) == 2


def test_titles_and_urls_come_from_the_manifest(tmp_path: Path) -> None:
    source = tmp_path / "photos"
    copy_photos(source / "pets", "chelsea")
    copy_photos(source, "coffee")
    manifest = {
        "pets/tabby_cat_chelsea.jpg": {"title": "Chelsea", "url": "https://example.com/c.jpg"}
    }
    (source / "manifest.json").write_text(json.dumps(manifest))
    build_catalog(source, tmp_path / "catalog")
    catalog = Catalog.open(tmp_path / "catalog")
    chelsea, coffee = entry_of(catalog, "chelsea"), entry_of(catalog, "coffee")
    assert (chelsea.title, chelsea.source_url) == ("Chelsea", "https://example.com/c.jpg")
    assert (coffee.title, coffee.source_url) == ("Cup of coffee on saucer", None)

    elsewhere = tmp_path / "titles.json"
    elsewhere.write_text(json.dumps({"cup_of_coffee_on_saucer.jpg": {"title": "Espresso"}}))
    build_catalog(source, tmp_path / "catalog", manifest=elsewhere)
    assert entry_of(Catalog.open(tmp_path / "catalog"), "coffee").title == "Espresso"


@pytest.mark.parametrize(
    "content",
    ["[1, 2]", '{"a.jpg": "just a title"}', '{"a.jpg": {"url": "ftp://x"}}', "{not json"],
)
def test_a_malformed_manifest_is_a_clear_error(tmp_path: Path, content: str) -> None:
    copy_photos(tmp_path / "photos", "chelsea")
    (tmp_path / "photos" / "manifest.json").write_text(content)
    with pytest.raises(CatalogError, match="manifest"):
        build_catalog(tmp_path / "photos", tmp_path / "catalog")


def test_file_names_make_readable_titles() -> None:
    assert title_from_file_name("red_running_shoe.jpg") == "Red running shoe"
    assert title_from_file_name("IMG-2041  final.PNG") == "IMG 2041 final"


def test_opening_a_folder_without_a_catalog_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as raised:
        Catalog.open(tmp_path)
    assert isinstance(raised.value, ValueError)
    assert f"qwen-imagesearch index SRC --catalog {tmp_path.resolve()}" in str(raised.value)


def test_opening_a_damaged_catalog_says_how_to_rebuild_it(tmp_path: Path) -> None:
    source = tmp_path / "photos"
    copy_photos(source, "chelsea", "coffee")
    build_catalog(source, tmp_path / "catalog")
    current = (tmp_path / "catalog" / "CURRENT").read_text()
    (tmp_path / "catalog" / "generations" / current / "vectors.npy").write_bytes(b"garbage")
    with pytest.raises(CatalogError, match=r"qwen-imagesearch index \S+photos --catalog"):
        Catalog.open(tmp_path / "catalog")
    # Rebuilding repairs it.
    assert build_catalog(source, tmp_path / "catalog").added == 2
    assert len(Catalog.open(tmp_path / "catalog")) == 2


def test_a_missing_source_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not a folder"):
        build_catalog(tmp_path / "nowhere", tmp_path / "catalog")


def test_progress_stays_quiet_when_output_goes_to_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy_photos(tmp_path / "photos", "chelsea")
    build_catalog(tmp_path / "photos", tmp_path / "catalog", progress=True)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_a_catalog_from_ready_vectors_is_searchable() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(1000, APPEARANCE_DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    entries = [
        CatalogEntry(id=f"e{i}", title=f"Entry {i}", path=None, source_url=None, sha256="0" * 64)
        for i in range(1000)
    ]
    catalog = Catalog(entries, vectors)
    matches = catalog.search_vectors(vectors[123])
    assert [match.entry.id for match in matches] == ["e123"]
    with pytest.raises(ValueError, match="entries"):
        Catalog(entries[:10], vectors)


def test_the_index_returns_the_best_rows_above_a_floor() -> None:
    index = VectorIndex(np.eye(4, dtype=np.float32))
    query = np.array([0.8, 0.6, 0.0, 0.0], dtype=np.float32)
    best = index.search(query, k=3, min_score=0.1)
    assert best.rows.tolist() == [0, 1]
    assert best.scores.tolist() == pytest.approx([0.8, 0.6])
    assert index.search(query, k=1).rows.tolist() == [0]
    assert len(VectorIndex(np.zeros((0, 4))).search(query, k=5).rows) == 0
