"""A catalog's meaning space: features centred on the catalog's mean, then unit length.

The network's features are all positive (they come out of ReLU6), so what every picture
shares hides what tells them apart. Subtracting the catalog's mean removes it: cosines then
say how alike two pictures are compared with the catalog as a whole. The catalog keeps, per
entry, the centred unit vector (what searches compare) and its length before scaling, so
that the features as computed can be rebuilt and centred again when the catalog, and so its
mean, changes.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from langchain_qwen_imagesearch.server.store.catalog_files import StoredMeaning

_TINY = 1e-6


_CHUNK = 65_536
"""Rows converted at a time: a million rows at once would take gigabytes of float32 copies."""


def centred_on_mean(model: str, features: NDArray[np.floating]) -> StoredMeaning:
    """``features`` (one row per entry, as the encoder gave them), as the catalog keeps them."""
    total = np.zeros(features.shape[1], np.float64)
    for start in range(0, len(features), _CHUNK):
        total += np.asarray(features[start : start + _CHUNK], np.float64).sum(axis=0)
    centre = (total / max(len(features), 1)).astype(np.float32)
    units, norms = centred_on(centre, features)
    return StoredMeaning(model, centre, units, norms)


def centred_on(
    centre: NDArray[np.float32], features: NDArray[np.floating]
) -> tuple[NDArray[np.float16], NDArray[np.float32]]:
    """``features`` centred on ``centre`` and scaled to unit length, and their lengths."""
    units = np.empty(features.shape, np.float16)
    norms = np.empty(len(features), np.float32)
    for start in range(0, len(features), _CHUNK):
        offsets = np.asarray(features[start : start + _CHUNK], np.float32) - centre
        lengths = np.linalg.norm(offsets, axis=1)
        norms[start : start + len(offsets)] = lengths
        units[start : start + len(offsets)] = offsets / np.maximum(lengths, _TINY)[:, None]
    return units, norms


def rebuilt_features(
    stored: StoredMeaning, rows: NDArray[np.intp] | None = None
) -> NDArray[np.float32]:
    """The features as the encoder gave them (to float16 precision), one row per entry (of
    ``rows`` only, if given)."""
    units = stored.units if rows is None else stored.units[rows]
    norms = stored.norms if rows is None else stored.norms[rows]
    return np.asarray(units.astype(np.float32) * norms[:, None] + stored.centre, np.float32)


def centred_query(
    centre: NDArray[np.float32], features: NDArray[np.float32]
) -> NDArray[np.float32]:
    """A query's features in the catalog's space, comparable by dot product."""
    offset = features - centre
    return np.asarray(offset / max(float(np.linalg.norm(offset)), _TINY), np.float32)
