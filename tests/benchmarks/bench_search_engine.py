"""Benchmark of the embedded search engine: quality, score calibration, throughput, latency.

Run ``python tests/benchmarks/bench_search_engine.py`` (about a minute on 2 cores). It prints:

1. top-1 recall of edited copies of the demo photos, per edit, in a catalog of the demo photos
   plus distractors (synthetic pictures, and scikit-image's other sample pictures when
   scikit-image is installed), and how often the hit rule keeps the original: with both
   descriptors, and with appearance only (a catalog built before meaning descriptors);
2. the score distributions that calibrate the hit rule (edited copies vs unrelated pictures,
   by appearance and by meaning);
3. indexing throughput (images/s) for the demo photos and for synthetic JPEGs, against the
   limit of decoding and describing them on every core;
4. search latency percentiles at 1k, 10k and 100k entries.

Not collected by pytest (the file name does not start with ``test_``).
"""

from __future__ import annotations

import functools
import io
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from langchain_qwen_imagesearch.protocol import MAX_HITS_PER_SEARCH
from langchain_qwen_imagesearch.server import (
    Catalog,
    CatalogEntry,
    HitRule,
    build_catalog,
    demo_catalog_dir,
)
from langchain_qwen_imagesearch.server.engine.appearance import (
    APPEARANCE_DIM,
    WORKING_SIZE,
    appearance_descriptor,
    appearance_with_mirror,
)
from langchain_qwen_imagesearch.server.engine.hit_rule import DEFAULT_HIT_RULE
from langchain_qwen_imagesearch.server.engine.meaning.encoder import (
    MEANING_DIM,
    MEANING_MODEL,
    shared_encoder,
)
from langchain_qwen_imagesearch.server.engine.meaning.space import centred_on_mean, centred_query
from langchain_qwen_imagesearch.server.indexer import INDEXING_THREADS
from langchain_qwen_imagesearch.server.store.catalog_files import StoredMeaning

Edit = Callable[[Image.Image], list[Image.Image]]
_Query = TypeVar("_Query")
SYNTHETIC_DISTRACTORS = 2000
SYNTHETIC_INDEX_IMAGES = 200
LARGE_INDEX_IMAGES = 20
LATENCY_SIZES = (1_000, 10_000, 100_000)
LATENCY_QUERIES = 200
EMBEDDING_BATCH = 32
DEMO_KINDS = {
    "brick_wall": "texture",
    "grass_close_up": "texture",
    "gravel_close_up": "texture",
    "retina_fundus_photograph": "retina",
    "retina_detail_with_microaneurysms": "retina",
    "cell_in_saline_phase_image": "microscopy",
    "immunohistochemistry_colonic_glands": "microscopy",
}
"""The demo photos that show the same kind of thing; every other one is its own kind."""


# --- Edits -----------------------------------------------------------------------------------


def crop_area(image: Image.Image, area: float, x_anchor: float, y_anchor: float) -> Image.Image:
    """Keep ``area`` of the picture (same aspect ratio), placed by anchors in [0, 1]."""
    side = math.sqrt(area)
    width, height = round(image.width * side), round(image.height * side)
    left = round((image.width - width) * x_anchor)
    top = round((image.height - height) * y_anchor)
    return image.crop((left, top, left + width, top + height))


def reencode(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def caption(image: Image.Image, text: str = "Look at this! #photo") -> Image.Image:
    """White text with a black outline, a tenth of the picture high, over the lower part."""
    captioned = image.copy()
    font = ImageFont.load_default(size=max(12, image.height // 10))
    ImageDraw.Draw(captioned).text(
        (image.width // 20, image.height - image.height // 6),
        text,
        font=font,
        fill=(255, 255, 255),
        stroke_width=2,
        stroke_fill=(0, 0, 0),
    )
    return captioned


def rotations(*degrees: float, expand: bool = False) -> Edit:
    return lambda image: [
        image.rotate(angle, Image.Resampling.BICUBIC, expand=expand) for angle in degrees
    ]


CORNERS = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]

REQUIRED_EDITS: dict[str, Edit] = {
    "crop 80% area, centred": lambda im: [crop_area(im, 0.8, 0.5, 0.5)],
    "crop 80% area, each corner": lambda im: [crop_area(im, 0.8, x, y) for x, y in CORNERS],
    "resize to 50%": lambda im: [
        im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)
    ],
    "JPEG quality 30": lambda im: [reencode(im, 30)],
    "brightness +30%": lambda im: [ImageEnhance.Brightness(im).enhance(1.3)],
    "brightness -30%": lambda im: [ImageEnhance.Brightness(im).enhance(0.7)],
    "horizontal mirror": lambda im: [im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)],
    "rotate +-5 deg": rotations(5, -5),
    "rotate +-10 deg": rotations(10, -10),
    "caption text": lambda im: [caption(im)],
}
EXTRA_EDITS: dict[str, Edit] = {
    "demo edit: crop 64%, -20%, caption, q60": lambda im: [
        reencode(caption(ImageEnhance.Brightness(crop_area(im, 0.64, 0.5, 0.5)).enhance(0.8)), 60)
    ],
    "crop 50% area, centred": lambda im: [crop_area(im, 0.5, 0.5, 0.5)],
    "rotate +-10 deg, canvas enlarged": rotations(10, -10, expand=True),
}


# --- Pictures --------------------------------------------------------------------------------


def demo_photos() -> list[tuple[str, Image.Image]]:
    paths = sorted(demo_catalog_dir().glob("*.jpg"))
    return [(path.name, Image.open(path).convert("RGB")) for path in paths]


def smooth_field(rng: np.random.Generator, size: int, slope: float) -> NDArray[np.float64]:
    """Random field with a 1/f^slope spectrum scaled to [0, 1], like clouds or terrain."""
    frequencies = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size)))
    spectrum = rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))
    field = np.fft.ifft2(spectrum / np.maximum(frequencies, 1 / size) ** slope).real
    return np.asarray((field - field.min()) / (np.ptp(field) + 1e-9))


def synthetic_picture(seed: int, width: int = 480, height: int = 360) -> Image.Image:
    """A photo-like synthetic picture: a coloured 1/f field with a few shapes on it."""
    rng = np.random.default_rng(seed)
    channels = [smooth_field(rng, 128, rng.uniform(1.2, 2.4)) for _ in range(3)]
    mix = rng.dirichlet(np.ones(3), size=3) * rng.uniform(0.6, 1.0)
    rgb = np.stack([sum(w * c for w, c in zip(row, channels, strict=True)) for row in mix], -1)
    picture = Image.fromarray((rgb.clip(0, 1) * 255).astype(np.uint8)).resize((width, height))
    draw = ImageDraw.Draw(picture)
    for _ in range(int(rng.integers(0, 6))):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = int(rng.integers(20, width // 2)), int(rng.integers(20, height // 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x, y, x + w, y + h), fill=colour)
    return picture


def scikit_image_distractors() -> list[Image.Image]:
    """scikit-image's sample pictures that are not in the demo catalog, with tiles of them."""
    try:
        import skimage
    except ImportError:
        return []
    data = Path(skimage.__file__).parent / "data"
    names = ["moon.png", "motorcycle_left.png", "page.png", "horse.png", "color.png"]
    names += ["logo.png", "phantom.png", "chessboard_RGB.png"]
    pictures = []
    for name in names:
        with Image.open(data / name) as opened:
            picture = opened.convert("RGB")
        pictures.append(picture)
        if min(picture.size) >= 300:
            pictures.extend(crop_area(picture, 0.3, x, y) for x, y in CORNERS)
    faces = np.load(data / "lfw_subset.npy")[:100]
    pictures.extend(
        Image.fromarray((face * 255).astype(np.uint8)).convert("RGB").resize((100, 100))
        for face in faces
    )
    return pictures


def noise_and_flat_pictures() -> dict[str, Image.Image]:
    rng = np.random.default_rng(7)
    return {
        "colour noise": Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)),
        "grey noise": Image.fromarray(rng.integers(0, 256, (300, 400), dtype=np.uint8)),
        "flat red": Image.new("RGB", (400, 300), (200, 30, 30)),
        "flat grey": Image.new("RGB", (400, 300), (128, 128, 128)),
        "black": Image.new("RGB", (400, 300)),
        "horizontal gradient": Image.linear_gradient("L").rotate(90).resize((400, 300)),
    }


def synthetic_entries(count: int, prefix: str) -> list[CatalogEntry]:
    return [
        CatalogEntry(
            id=f"{prefix}-{i:06d}",
            title=f"{prefix} {i}",
            path=None,
            source_url=f"https://example.com/{prefix}/{i}.jpg",
            sha256=f"{i:064x}",
        )
        for i in range(count)
    ]


def photo_entries(photos: list[tuple[str, Image.Image]]) -> list[CatalogEntry]:
    return [
        replace(entry, title=name)
        for entry, (name, _) in zip(synthetic_entries(len(photos), "photo"), photos, strict=True)
    ]


# --- Reports ---------------------------------------------------------------------------------


def describe(values: list[float]) -> str:
    p1, p5, p50, p95, p99 = np.percentile(np.asarray(values), [1, 5, 50, 95, 99])
    return (
        f"min {min(values):.3f}  p1 {p1:.3f}  p5 {p5:.3f}  median {p50:.3f}  "
        f"p95 {p95:.3f}  p99 {p99:.3f}  max {max(values):.3f}"
    )


@dataclass
class Query:
    photo: int
    edit: str
    required: bool
    vectors: NDArray[np.float32]
    meaning: NDArray[np.float32]
    """The encoder's features (not yet centred in a catalog's space)."""


def meaning_features(pictures: Sequence[Image.Image]) -> NDArray[np.float32]:
    encoder = shared_encoder()
    batches = [
        encoder.embed(pictures[start : start + EMBEDDING_BATCH])
        for start in range(0, len(pictures), EMBEDDING_BATCH)
    ]
    return np.concatenate(batches) if batches else np.zeros((0, MEANING_DIM), np.float32)


def edited_queries(photos: list[tuple[str, Image.Image]]) -> list[Query]:
    edited: list[tuple[int, str, bool, Image.Image]] = []
    for edits, required in ((REQUIRED_EDITS, True), (EXTRA_EDITS, False)):
        for name, edit in edits.items():
            for position, (_, photo) in enumerate(photos):
                edited.extend((position, name, required, picture) for picture in edit(photo))
    features = meaning_features([picture for *_, picture in edited])
    return [
        Query(position, name, required, appearance_with_mirror(picture), meaning)
        for (position, name, required, picture), meaning in zip(edited, features, strict=True)
    ]


def report_quality(photos: list[tuple[str, Image.Image]], distractors: list[Image.Image]) -> None:
    pictures = [p for _, p in photos] + distractors
    vectors = np.stack([appearance_descriptor(picture) for picture in pictures])
    features = meaning_features(pictures)
    meaning = centred_on_mean(MEANING_MODEL, features)
    entries = photo_entries(photos) + synthetic_entries(len(distractors), "distractor")
    queries = edited_queries(photos)
    print(f"Catalog: {len(photos)} demo photos + {len(distractors)} distractors")
    for label, catalog in (
        ("appearance + meaning (now)", Catalog(entries, vectors, meaning)),
        ("appearance only (before, and catalogs built before meaning)", Catalog(entries, vectors)),
    ):
        print(f"-- {label}")
        report_recall(catalog, entries, vectors, meaning, queries)
    print("top-1: the original is the first hit; kept: the hit rule returns the original;")
    print("near-dup: the original is returned as the same picture; min score: appearance")
    report_calibration(photos, distractors, vectors, queries)
    report_meaning_calibration(photos, features[: len(photos)], meaning, queries)
    report_noise(Catalog(entries, vectors, meaning))


def report_recall(
    catalog: Catalog,
    entries: list[CatalogEntry],
    vectors: NDArray[np.float32],
    meaning: StoredMeaning,
    queries: list[Query],
) -> None:
    print(f"{'edit':44} {'queries':>7} {'top-1':>7} {'kept':>7} {'near-dup':>8} {'min score':>9}")
    for name in [*REQUIRED_EDITS, *EXTRA_EDITS, "overall, required edits"]:
        chosen = [
            q for q in queries if q.edit == name or (name.startswith("overall") and q.required)
        ]
        top1 = kept = near = 0
        scores = []
        for query in chosen:
            original = entries[query.photo]
            matches = catalog.search_vectors(
                query.vectors, centred_query(meaning.centre, query.meaning)
            )
            top1 += bool(matches) and matches[0].entry == original
            kept += any(m.entry == original for m in matches)
            near += any(m.entry == original and m.near_duplicate for m in matches)
            scores.append(float(np.max(query.vectors @ vectors[query.photo])))
        label = name if name in REQUIRED_EDITS or name.startswith("overall") else f"{name} (extra)"
        total = len(chosen)
        print(
            f"{label:44} {total:7d} {top1 / total:7.1%} {kept / total:7.1%} "
            f"{near / total:8.1%} {min(scores):9.3f}"
        )


def report_meaning_calibration(
    photos: list[tuple[str, Image.Image]],
    photo_features: NDArray[np.float32],
    meaning: StoredMeaning,
    queries: list[Query],
) -> None:
    """Meaning scores of edited copies (for ``same_picture_meaning``), and of demo photos of
    different kinds in a catalog of the demo photos alone (for ``similar_score``)."""
    units = meaning.units.astype(np.float32)
    copies = [float(centred_query(meaning.centre, q.meaning) @ units[q.photo]) for q in queries]
    kinds = [DEMO_KINDS.get(Path(name).stem, name) for name, _ in photos]
    demo_units = centred_on_mean(MEANING_MODEL, photo_features).units.astype(np.float32)
    pairs = demo_units @ demo_units.T
    other_kind = [
        float(pairs[i, j])
        for i in range(len(photos))
        for j in range(i + 1, len(photos))
        if kinds[i] != kinds[j]
    ]
    same_kind = [
        float(pairs[i, j])
        for i in range(len(photos))
        for j in range(i + 1, len(photos))
        if kinds[i] == kinds[j]
    ]
    best_photo_for_distractor = (units[len(photos) :] @ units[: len(photos)].T).max(axis=1)
    print()
    print("Calibration: meaning scores (centred on the catalog's mean)")
    print(f"  edited copy vs its original (all edits):       {describe(copies)}")
    print("  in a catalog of the 16 demo photos alone:")
    print(f"  two demo photos of different kinds:            {describe(other_kind)}")
    print(f"  two demo photos of the same kind:              {describe(same_kind)}")
    print("  in the catalog above (demo photos + distractors):")
    print(
        "  best demo photo for a distractor:              "
        f"{describe([float(s) for s in best_photo_for_distractor])}"
    )
    print(
        f"  hit rule: same picture needs meaning >= {DEFAULT_HIT_RULE.same_picture_meaning}; "
        f"similar needs meaning >= {DEFAULT_HIT_RULE.similar_score}"
    )


def report_calibration(
    photos: list[tuple[str, Image.Image]],
    distractors: list[Image.Image],
    vectors: NDArray[np.float32],
    queries: list[Query],
) -> None:
    """Scores of edited copies vs unrelated pictures, and what other hit rules would do."""
    required = [q for q in queries if q.required]
    originals = [float(np.max(q.vectors @ vectors[q.photo])) for q in required]
    # Searched where the original is absent: among the distractors only.
    absent = [np.sort((q.vectors @ vectors[len(photos) :].T).max(axis=0))[::-1] for q in required]
    unrelated_queries = [appearance_with_mirror(picture) for picture in distractors]
    photo_vectors = vectors[: len(photos)]
    among_photos = [np.sort((q @ photo_vectors.T).max(axis=0))[::-1] for q in unrelated_queries]
    pairs = photo_vectors @ photo_vectors.T
    different_photos = list(pairs[np.triu_indices(len(photos), 1)])
    print()
    print("Calibration: cosine scores")
    print(f"  edited copy vs its original (required edits):  {describe(originals)}")
    print(f"  best distractor for an edited copy:            {describe([a[0] for a in absent])}")
    print(
        f"  best demo photo for a distractor:              {describe([a[0] for a in among_photos])}"
    )
    print(f"  two different demo photos:                     {describe(different_photos)}")
    print()
    print("Calibration: other hit rules (edited copies: how often the original is the first hit;")
    print("edited copies searched without their original among the distractors, and distractors")
    print("searched among the demo photos: how often there is no hit, mean hits)")
    columns = ("min score", "margin", "original first", "copy, no original", "distractor")
    print("  {:>9} {:>6}  {:>14}  {:>17}  {:>14}".format(*columns))
    rules = [replace(DEFAULT_HIT_RULE, min_score=floor) for floor in (0.5, 0.55, 0.6, 0.65, 0.7)]
    rules += [replace(DEFAULT_HIT_RULE, relative_margin=margin) for margin in (0.1, 0.2, 0.3)]
    for rule in rules:
        first = sum(
            float(np.max(q.vectors @ vectors[q.photo])) >= rule.min_score
            and int(np.argmax((q.vectors @ vectors.T).max(axis=0))) == q.photo
            for q in required
        )
        print(
            f"  {rule.min_score:9.2f} {rule.relative_margin:6.2f}  {first / len(required):14.1%}  "
            f"{hit_summary(rule, absent):>17}  {hit_summary(rule, among_photos):>14}"
        )


def report_noise(catalog: Catalog) -> None:
    print()
    print("Noise and flat pictures searched in demo photos + distractors:")
    for name, picture in noise_and_flat_pictures().items():
        matches = catalog.search(picture)
        best = f" (best {matches[0].score:.3f}: {matches[0].entry.title})" if matches else ""
        print(f"  {name:20} {len(matches)} hit(s){best}")


def hit_summary(rule: HitRule, ranked_scores: list[NDArray[np.float32]]) -> str:
    counts = [min(MAX_HITS_PER_SEARCH, rule.select(scores)) for scores in ranked_scores]
    return f"{counts.count(0) / len(counts):.0%}, {statistics.mean(counts):.2f}"


def describing_limit(folder: Path) -> float:
    """Images/s if every core only read, decoded and described images (both descriptors), as
    the indexer does, one image at a time on one core, times the cores used."""
    files = sorted(folder.glob("*.jpg"))
    encoder = shared_encoder()
    started = time.perf_counter()
    for file in files:
        with Image.open(io.BytesIO(file.read_bytes())) as image:
            image.draft(None, (2 * WORKING_SIZE, 2 * WORKING_SIZE))
            appearance_descriptor(image)
            encoder.embed([image])
    return INDEXING_THREADS * len(files) / (time.perf_counter() - started)


def report_throughput() -> None:
    with tempfile.TemporaryDirectory() as workdir:
        root = Path(workdir)
        report = build_catalog(demo_catalog_dir(), root / "demo")
        rerun = build_catalog(demo_catalog_dir(), root / "demo")
        print(
            f"demo photos: {report.total} images in {report.seconds:.2f} s = "
            f"{report.total / report.seconds:.0f} images/s; "
            f"unchanged re-run {rerun.seconds * 1000:.0f} ms"
        )
        for label, count, size in (
            ("synthetic 480x360 JPEGs", SYNTHETIC_INDEX_IMAGES, (480, 360)),
            ("synthetic 4000x3000 JPEGs", LARGE_INDEX_IMAGES, (4000, 3000)),
        ):
            source = root / label.split()[1]
            source.mkdir()
            for seed in range(count):
                picture = synthetic_picture(100_000 + seed, *size)
                picture.save(source / f"picture_{seed:04d}.jpg", quality=90)
            report = build_catalog(source, root / f"{label.split()[1]}-catalog")
            rate = report.total / report.seconds
            limit = describing_limit(source)
            print(
                f"{label}: {report.total} images in {report.seconds:.2f} s = {rate:.0f} images/s "
                f"(decode + hash + both descriptors + write); limit of decode + descriptors on "
                f"{INDEXING_THREADS} cores {limit:.0f} images/s: {rate / limit:.2f}x"
            )


def report_latency(photos: list[tuple[str, Image.Image]], distractors: list[Image.Image]) -> None:
    """Latency of Catalog.search on catalogs grown with perturbed copies of real descriptors."""
    rng = np.random.default_rng(0)
    seeds = np.stack(
        [appearance_descriptor(picture) for picture in [p for _, p in photos] + distractors]
    )
    queries = [photo for _, photo in photos]
    query_vectors = [appearance_with_mirror(photo) for photo in queries]
    query_features = meaning_features(queries)
    by_vectors, by_image = "search_vectors p50 / p95 / p99", "search(image) p50 / p95 / p99"
    print(f"{'entries':>8}  {by_vectors:>30}  {by_image:>30}")
    for size in LATENCY_SIZES:
        noise = rng.normal(size=(size, APPEARANCE_DIM)).astype(np.float32) / math.sqrt(
            APPEARANCE_DIM
        )
        mixes = seeds[rng.integers(0, len(seeds), size)] + 0.6 * noise
        vectors = mixes / np.linalg.norm(mixes, axis=1, keepdims=True)
        features = rng.normal(size=(size, MEANING_DIM)).astype(np.float32)
        meaning = centred_on_mean(MEANING_MODEL, np.abs(features) + query_features.mean(axis=0))
        catalog = Catalog(synthetic_entries(size, "x"), vectors, meaning)
        both = [
            (appearance, centred_query(meaning.centre, feature))
            for appearance, feature in zip(query_vectors, query_features, strict=True)
        ]
        by_vectors = timed(functools.partial(search_pair, catalog), both)
        by_image = timed(catalog.search, queries)
        print(f"{size:8d}  {by_vectors:>30}  {by_image:>30}")
    print("search_vectors: scan + hit rule; search(image): plus the query's descriptors")
    largest, dim = LATENCY_SIZES[-1], APPEARANCE_DIM + MEANING_DIM
    print(
        f"memory at {largest} entries: {largest * dim * 4 / 1e6:.0f} MB of float32 "
        f"vectors ({largest * dim * 2 / 1e6:.0f} MB on disk as float16)"
    )


def search_pair(catalog: Catalog, pair: tuple[NDArray[np.float32], NDArray[np.float32]]) -> object:
    return catalog.search_vectors(*pair)


def timed(search: Callable[[_Query], object], queries: Sequence[_Query]) -> str:
    """p50, p95 and p99 in milliseconds of ``search`` over ``queries`` in turn, after a warm-up."""
    for query in queries[:5]:
        search(query)
    durations = []
    for i in range(LATENCY_QUERIES):
        started = time.perf_counter()
        search(queries[i % len(queries)])
        durations.append((time.perf_counter() - started) * 1000)
    p50, p95, p99 = np.percentile(durations, [50, 95, 99])
    return f"{p50:.2f} / {p95:.2f} / {p99:.2f} ms"


def main() -> None:
    started = time.perf_counter()
    print(
        f"Hit rule: {DEFAULT_HIT_RULE}; descriptors: appearance {APPEARANCE_DIM} values, "
        f"meaning {MEANING_DIM}"
    )
    photos = demo_photos()
    distractors = scikit_image_distractors()
    distractors += [synthetic_picture(seed) for seed in range(SYNTHETIC_DISTRACTORS)]
    print("\n== Quality: edited copies of the demo photos")
    report_quality(photos, distractors)
    print("\n== Index throughput")
    report_throughput()
    print("\n== Search latency")
    report_latency(photos, distractors)
    print(f"\nBenchmark took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
