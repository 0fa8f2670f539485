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


def centred_on_mean(model: str, features: NDArray[np.float32]) -> StoredMeaning:
    """``features`` (one row per entry, as the encoder gave them), as the catalog keeps them."""
    centre = features.mean(axis=0, dtype=np.float64).astype(np.float32)
    offsets = features - centre
    norms = np.linalg.norm(offsets, axis=1).astype(np.float32)
    units = offsets / np.maximum(norms, _TINY)[:, None]
    return StoredMeaning(model, centre, units.astype(np.float16), norms)


def rebuilt_features(stored: StoredMeaning) -> NDArray[np.float32]:
    """The features as the encoder gave them (to float16 precision), one row per entry."""
    units = stored.units.astype(np.float32)
    return np.asarray(units * stored.norms[:, None] + stored.centre, dtype=np.float32)


def centred_query(
    centre: NDArray[np.float32], features: NDArray[np.float32]
) -> NDArray[np.float32]:
    """A query's features in the catalog's space, comparable by dot product."""
    offset = features - centre
    return np.asarray(offset / max(float(np.linalg.norm(offset)), _TINY), np.float32)
