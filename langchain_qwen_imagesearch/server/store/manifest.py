"""The manifest of a source folder: titles and URLs of its images, by relative path."""

from __future__ import annotations

import json
from pathlib import Path

from langchain_qwen_imagesearch.server.store.catalog_files import CatalogError

MANIFEST_NAME = "manifest.json"


def manifest_path(source_dir: Path, manifest: str | Path | None) -> Path | None:
    """The manifest given, else the source folder's ``manifest.json`` if it has one."""
    if manifest is not None:
        return Path(manifest).expanduser()
    default = source_dir / MANIFEST_NAME
    return default if default.is_file() else None


def read_manifest(path: Path | None) -> dict[str, dict[str, str]]:
    """Titles and URLs by relative path (``/``-separated), checked for shape."""
    if path is None:
        return {}
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CatalogError(f"cannot read the manifest {path}: {error}") from error
    if not isinstance(content, dict):
        raise CatalogError(f'manifest {path}: expected {{"<relative path>": {{"title", "url"}}}}')
    descriptions: dict[str, dict[str, str]] = {}
    for relative, description in content.items():
        if not isinstance(description, dict) or not all(
            isinstance(description.get(key, ""), str) for key in ("title", "url")
        ):
            raise CatalogError(f"manifest {path}: {relative!r} needs string title and url")
        url = description.get("url")
        if url and not url.startswith(("http://", "https://")):
            raise CatalogError(f"manifest {path}: the url of {relative!r} is not http(s)")
        key = relative.replace("\\", "/").removeprefix("./")
        descriptions[key] = {
            k: description[k].strip() for k in ("title", "url") if k in description
        }
    return descriptions
