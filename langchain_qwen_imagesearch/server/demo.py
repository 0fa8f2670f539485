"""The bundled demo catalog, and the demo's query image: an edited copy of one of its photos."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance

from langchain_qwen_imagesearch.server.engine.catalog import Catalog
from langchain_qwen_imagesearch.server.indexer import build_catalog
from langchain_qwen_imagesearch.server.store.cache_folder import default_cache_dir

DEMO_PHOTO_PREFERENCE = ("chelsea", "coffee", "astronaut")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def demo_catalog_dir() -> Path:
    """The bundled demo photos (a source folder for ``build_catalog``)."""
    return Path(__file__).resolve().parent / "demo_catalog"


def open_demo_catalog(cache_dir: Path | None = None) -> Catalog:
    """The bundled demo photos, indexed once into the cache (later runs reuse the index).

    Each installation of the package has its own cached catalog: one catalog indexing the
    demo folders of several installations would list every photo once per installation.
    """
    installation = hashlib.sha256(str(demo_catalog_dir()).encode()).hexdigest()[:12]
    directory = (cache_dir or default_cache_dir()) / f"demo-catalog-{installation}"
    build_catalog(demo_catalog_dir(), directory)
    return Catalog.open(directory)


def demo_photo() -> Path:
    """The bundled photo the demo edits (a preferred one when present)."""
    photos = sorted(p for p in demo_catalog_dir().iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    for name in DEMO_PHOTO_PREFERENCE:
        for photo in photos:
            if name in photo.stem:
                return photo
    return photos[0]


def demo_similar_style_query() -> Path:
    """A portrait that is not in the demo catalog: a search for similar images finds the
    catalog's portrait (a search for copies finds nothing)."""
    return Path(__file__).resolve().parent / "demo_queries" / "portrait_grace_hopper.jpg"


def edited_copy(workdir: Path) -> tuple[Path, Path]:
    """Crop, darken and caption a catalog photo, as someone re-posting it might.

    Returns the original's path and the edited copy's path (a JPEG in ``workdir``).
    """
    original = demo_photo()
    with Image.open(original) as source:
        image = source.convert("RGB")
    width, height = image.size
    image = image.crop((width // 10, height // 10, width - width // 10, height - height // 10))
    image = ImageEnhance.Brightness(image).enhance(0.8)
    ImageDraw.Draw(image).text((10, image.height - 24), "reposted @somewhere", fill=(255, 255, 255))
    edited = workdir / "edited-copy.jpg"
    image.save(edited, format="JPEG", quality=60)
    return original, edited
