"""Search by similar style and kind: precision of the first hits on a labelled image set.

Every picture of ``tests/benchmarks/style_set/`` (43 artworks, photos and game art from
Debian and PyPI packages, 10 categories; sources and licences in its LICENSES.md) is the
query in turn, against a catalog of all of them. A hit is right when it has the query's
category. Printed, per method:

- P@1: the share of queries whose first hit other than themselves is right;
- P@5: the share of right hits among the first five others (a missing hit counts as wrong;
  half the categories have only 2 others, so the best possible P@5 is below 1: printed too);
- hits: the median number of hits other than the query that the method returns.

Methods: a colour-histogram baseline (a floor), each descriptor ranked on its own (and two
variants of the meaning descriptor: not centred on the catalog's mean, and fed the centre
crop ImageNet classifiers usually take instead of the whole picture), and the engine as it
ships (``Catalog.search``: the appearance rule alone for a catalog without
meaning descriptors, as before, and with them). The last line is a JSON object of the
figures.

    python tests/benchmarks/bench_similar_style.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from langchain_qwen_imagesearch.server import Catalog, build_catalog
from langchain_qwen_imagesearch.server.engine.appearance import (
    APPEARANCE_DIM,
    APPEARANCE_VERSION,
    appearance_descriptor,
)
from langchain_qwen_imagesearch.server.engine.meaning.encoder import (
    MEANING_DIM,
    MEANING_MODEL,
    shared_encoder,
)
from langchain_qwen_imagesearch.server.engine.meaning.space import centred_on_mean
from langchain_qwen_imagesearch.server.store.catalog_files import read_catalog

STYLE_SET = Path(__file__).resolve().parent / "style_set"
TOP = 5
Ranking = Callable[[int], Sequence[int]]
"""For a query (its position), the other pictures' positions, best first (maybe fewer)."""


def load_set() -> tuple[list[Path], list[str]]:
    labels = json.loads((STYLE_SET / "labels.json").read_text())
    files = sorted(STYLE_SET / name for name in labels)
    return files, [labels[file.name]["category"] for file in files]


def colour_histograms(images: Sequence[Image.Image]) -> NDArray[np.float32]:
    """8 hue x 4 saturation x 4 value bins, each histogram summing to 1."""
    rows = []
    for image in images:
        hsv = np.asarray(image.convert("RGB").resize((128, 128)).convert("HSV"), np.int64)
        bins = (hsv[..., 0] * 8 // 256) * 16 + (hsv[..., 1] * 4 // 256) * 4 + hsv[..., 2] * 4 // 256
        histogram = np.bincount(bins.ravel(), minlength=128).astype(np.float32)
        rows.append(histogram / histogram.sum())
    return np.array(rows)


def centre_crop(image: Image.Image) -> Image.Image:
    """ImageNet's usual input instead of the whole picture: the short side resized to 256,
    the centre 224 x 224."""
    scale = 256 / min(image.size)
    resized = image.resize(
        (max(256, round(image.width * scale)), max(256, round(image.height * scale)))
    )
    left, top = (resized.width - 224) // 2, (resized.height - 224) // 2
    return resized.crop((left, top, left + 224, top + 224))


def unit_rows(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    return np.asarray(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), np.float32)


def ranked_by(similarity: NDArray[np.float32]) -> Ranking:
    def rank(query: int) -> list[int]:
        order = np.argsort(-similarity[query], kind="stable")
        return [int(other) for other in order if other != query]

    return rank


def ranked_by_engine(catalog: Catalog, files: Sequence[Path]) -> Ranking:
    position = {file.resolve(): number for number, file in enumerate(files)}

    def rank(query: int) -> list[int]:
        with Image.open(files[query]) as image:
            matches = catalog.search(image)
        found = [position[m.entry.path] for m in matches if m.entry.path is not None]
        return [other for other in found if other != query]

    return rank


def precision(rank: Ranking, categories: Sequence[str]) -> dict[str, float]:
    first, top, returned = [], [], []
    for query, category in enumerate(categories):
        others = list(rank(query))
        right = [categories[other] == category for other in others[:TOP]]
        first.append(bool(right) and right[0])
        top.append(sum(right) / TOP)
        returned.append(len(others))
    return {
        "p_at_1": round(float(np.mean(first)), 3),
        "p_at_5": round(float(np.mean(top)), 3),
        "median_hits": float(statistics.median(returned)),
    }


def best_possible_p_at_5(categories: Sequence[str]) -> float:
    sizes = {category: categories.count(category) for category in categories}
    return float(np.mean([min(sizes[category] - 1, TOP) / TOP for category in categories]))


def main() -> None:
    files, categories = load_set()
    images = [Image.open(file).convert("RGB") for file in files]
    print(f"style set: {len(files)} pictures, {len(set(categories))} categories", flush=True)

    def cosine(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.asarray(vectors @ vectors.T, np.float32)

    histograms = colour_histograms(images)
    intersection = np.minimum(histograms[:, None, :], histograms[None, :, :]).sum(axis=2)
    appearance = np.array([appearance_descriptor(image) for image in images])
    features = shared_encoder().embed(images)
    meaning = centred_on_mean(MEANING_MODEL, features).units.astype(np.float32)
    cropped = shared_encoder().embed([centre_crop(image) for image in images])
    methods: dict[str, Ranking] = {
        "colour histogram (baseline)": ranked_by(intersection),
        "appearance descriptor, ranked": ranked_by(cosine(appearance)),
        "meaning descriptor, ranked": ranked_by(cosine(meaning)),
        "  variant: not centred": ranked_by(cosine(unit_rows(features))),
        "  variant: centre crop input": ranked_by(
            cosine(centred_on_mean(MEANING_MODEL, cropped).units.astype(np.float32))
        ),
    }
    with tempfile.TemporaryDirectory() as workdir:
        catalog_dir = Path(workdir) / "catalog"
        build_catalog(STYLE_SET, catalog_dir)
        with_meaning = Catalog.open(catalog_dir)
        stored = read_catalog(
            catalog_dir.resolve(),
            appearance_version=APPEARANCE_VERSION,
            appearance_dim=APPEARANCE_DIM,
            meaning_model=MEANING_MODEL,
            meaning_dim=MEANING_DIM,
        )
        appearance_only = Catalog(stored.entries, stored.appearance)
        methods["engine, appearance only (before)"] = ranked_by_engine(appearance_only, files)
        methods["engine, appearance + meaning (now)"] = ranked_by_engine(with_meaning, files)
        figures = {name: precision(rank, categories) for name, rank in methods.items()}

    print(f"best possible P@5 on this set: {best_possible_p_at_5(categories):.3f}")
    for name, result in figures.items():
        print(
            f"{name:<38} P@1 {result['p_at_1']:.3f}  P@5 {result['p_at_5']:.3f}  "
            f"median hits {result['median_hits']:g}"
        )
    print(json.dumps({"pictures": len(files), "categories": len(set(categories)), **figures}))


if __name__ == "__main__":
    main()
