"""Hand-crafted visual features for search by image, computed with Pillow and NumPy only.

Why hand-crafted: the engine must run offline on a CPU, and no model weights may be downloaded.
The descriptor keeps what an edited copy of a picture still shares with the original (after a
crop, resize, re-compression, brightness change, mirror, small rotation or a caption) and what
tells unrelated pictures apart:

- layout: a blurred 8x8 map of intensity, standardised so that brightness and contrast changes
  cancel, and a 4x4 map of chromaticity (colour divided by brightness); coarse maps move little
  under crops, small rotations and compression;
- edges: gradient-orientation histograms over a 4x4 grid of cells (as in HOG/GIST), describing
  shape; a uniform brightness change scales every gradient alike and so cancels out;
- colour: a global hue/saturation histogram, unchanged by crops, rotations and captions;
- texture: at three scales, the dominant gradient orientations, the distribution of gradient
  strengths and how edge energy changes between scales; these still describe a texture (brick,
  gravel, grass) when a crop has moved every detail of it.

Pictures are resampled to at most 128 pixels a side, keeping their aspect ratio so that
orientations are true angles. Black or white fill along the borders (the corners of a rotated
copy, padding) is painted in the picture's mean colour, and the grids weigh their centre more
than their corners, where crops cut. Mirror invariance is left to the search:
``appearance_with_mirror`` gives both orientations and the catalog keeps the better score.
Every vector is L2-normalised, so the dot product of two descriptors is their cosine similarity.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

FloatArray = NDArray[np.float32]

APPEARANCE_VERSION = 1
"""Bumped whenever descriptors change; catalogs built with another version are re-indexed."""

WORKING_SIZE = 128
"""Longest side of the working image every picture is resampled to."""

MAX_WORKING_ASPECT = 4.0
"""Wider (or taller) pictures are squeezed to this aspect ratio in the working image."""

FILL_TOLERANCE = 0.04
"""Distance from pure black or white (0 to 1) within which a border pixel may be fill."""

_SIDE_STEP = 16
"""Working image sides are multiples of this, so that every grid divides them evenly."""

INTENSITY_GRID = 8
CHROMA_GRID = 4
EDGE_GRID = 4
ORIENTATIONS = 8
HUE_BINS = 12
SATURATION_BINS = 3
TEXTURE_SCALES = 3
STRENGTH_BINS = 8

APPEARANCE_DIM = (
    INTENSITY_GRID**2
    + 2 * CHROMA_GRID**2
    + EDGE_GRID**2 * ORIENTATIONS
    + HUE_BINS * SATURATION_BINS
    + TEXTURE_SCALES * (ORIENTATIONS + STRENGTH_BINS)
    + (TEXTURE_SCALES - 1)
)

# Weights of the parts, tuned on edited copies of the demo photos against distractors
# (tests/benchmarks/bench_search_engine.py measures the result). The layout parts keep their
# natural scale, which is small for pictures without clear composition (textures), so those
# are matched mostly on texture.
INTENSITY_WEIGHT = 5.0
CHROMA_WEIGHT = 8.0
EDGE_WEIGHT = 1.0
COLOUR_WEIGHT = 1.0
TEXTURE_WEIGHT = 1.2

ORIENTATION_SPREAD = 0.2
"""Share of an orientation bin given to each neighbouring bin (bins are 22.5 degrees wide)."""

CENTRE_SIGMA = 0.6
"""Width of the Gaussian centre weighting, in half-widths of the picture: cells on the middle
of an edge weigh about a third, corner cells about an eighth."""

GRADIENT_CLAMP = 4.0
"""Gradients above this many times the mean are clipped, so a few hard edges (a caption, the
border of a rotated copy) cannot dominate the orientation histograms."""

FLAT_GRADIENT = 0.01
"""Mean gradient (intensity from 0 to 1, per pixel of the working image) below which the edge
and texture parts fade out; a smooth ramp from black to white across the picture is 0.008."""

TYPICAL_STRENGTH_SHARE = 0.3
"""Typical square-rooted share of a gradient-strength bin in photos; subtracted so that the
histogram describes how a picture differs from the usual, not what all photos share."""

_EPS = 1e-6
_EXIF_ORIENTATION = 0x0112


def appearance_descriptor(image: Image.Image) -> FloatArray:
    """The L2-normalised descriptor of ``image``: float32, ``APPEARANCE_DIM`` values."""
    return _describe(_working_rgb(image))


def appearance_with_mirror(image: Image.Image) -> FloatArray:
    """Descriptors of ``image`` and of its horizontal mirror, as a ``(2, APPEARANCE_DIM)`` matrix.

    Searching with both and keeping the better score of each entry finds mirrored copies.
    Mirroring only moves values around in the descriptor (cells swap sides, orientations
    reflect), so the mirror's descriptor is a permutation of the original's: no second pass.
    """
    vector = appearance_descriptor(image)
    return np.stack([vector, vector[_MIRROR_PERMUTATION]])


def _mirror_permutation() -> NDArray[np.intp]:
    """Where each value of a mirrored picture's descriptor comes from in the original's."""

    def mirrored_grid(grid: int) -> NDArray[np.intp]:
        return np.arange(grid * grid).reshape(grid, grid)[:, ::-1].ravel()

    # An orientation theta becomes pi - theta: bin j (soft-binned) becomes bin -j mod n.
    reflected_bins = -np.arange(ORIENTATIONS) % ORIENTATIONS
    texture_scale = np.concatenate([reflected_bins, ORIENTATIONS + np.arange(STRENGTH_BINS)])
    texture = [scale * texture_scale.size + texture_scale for scale in range(TEXTURE_SCALES)]
    texture.append(TEXTURE_SCALES * texture_scale.size + np.arange(TEXTURE_SCALES - 1))
    parts = [
        mirrored_grid(INTENSITY_GRID),
        np.concatenate([mirrored_grid(CHROMA_GRID), CHROMA_GRID**2 + mirrored_grid(CHROMA_GRID)]),
        (mirrored_grid(EDGE_GRID)[:, None] * ORIENTATIONS + reflected_bins).ravel(),
        np.arange(HUE_BINS * SATURATION_BINS),
        np.concatenate(texture),
    ]
    # Parts are in the order _describe concatenates them; indices shift by the parts before.
    offsets = np.cumsum([0] + [part.size for part in parts[:-1]])
    return np.concatenate([offset + part for offset, part in zip(offsets, parts, strict=True)])


_MIRROR_PERMUTATION = _mirror_permutation()


def _working_rgb(image: Image.Image) -> FloatArray:
    """Upright RGB pixels in [0, 1], resampled to at most ``WORKING_SIZE`` pixels a side.

    The aspect ratio is kept (up to ``MAX_WORKING_ASPECT``) so that pixels stay square and
    gradient orientations are the picture's true angles; grids are laid over the picture in
    relative coordinates, so their cells are as wide and as tall as the picture is.
    """
    if image.getexif().get(_EXIF_ORIENTATION, 1) != 1:
        image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Viewers show transparent pixels on a light page: describe what people see.
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    small = image.convert("RGB").resize(
        _working_size(image.width, image.height), Image.Resampling.BILINEAR, reducing_gap=2.0
    )
    return _neutralise_fill(np.asarray(small, dtype=np.float32) / 255.0)


def _neutralise_fill(rgb: FloatArray) -> FloatArray:
    """Paint empty borders in the picture's mean colour.

    Empty borders are black or white fill reaching the edge in straight runs, as rotating,
    padding or letterboxing leaves. They are not part of the picture: left in, the corners
    of a rotated copy would read as dark content to every part of the descriptor.
    """
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    brightest = np.maximum(np.maximum(red, green), blue)
    darkest = np.minimum(np.minimum(red, green), blue)
    candidate = (brightest <= FILL_TOLERANCE) | (darkest >= 1 - FILL_TOLERANCE)
    run = np.logical_and.accumulate
    fill = (
        run(candidate, axis=1)
        | run(candidate[:, ::-1], axis=1)[:, ::-1]
        | run(candidate, axis=0)
        | run(candidate[::-1], axis=0)[::-1]
    )
    if fill.all() or not fill.any():
        return rgb
    neutralised: FloatArray = rgb.copy()
    neutralised[fill] = rgb[~fill].mean(axis=0)
    return neutralised


def _working_size(width: int, height: int) -> tuple[int, int]:
    """Width and height of the working image: longest side ``WORKING_SIZE``, aspect kept."""
    aspect = min(max(width / height, 1 / MAX_WORKING_ASPECT), MAX_WORKING_ASPECT)
    short = max(_SIDE_STEP, round(WORKING_SIZE / max(aspect, 1 / aspect) / _SIDE_STEP) * _SIDE_STEP)
    return (WORKING_SIZE, short) if aspect >= 1 else (short, WORKING_SIZE)


def _describe(rgb: FloatArray) -> FloatArray:
    intensity = rgb.mean(axis=2)
    gradient_y, gradient_x = np.gradient(intensity)
    # Edge and texture parts are normalised shares: on a (nearly) flat picture they would
    # blow compression noise up into a pattern, so they fade out as the picture gets flat.
    detail = min(1.0, float(np.hypot(gradient_x, gradient_y).mean()) / FLAT_GRADIENT)
    vector = np.concatenate(
        [
            INTENSITY_WEIGHT * _intensity_layout(intensity),
            CHROMA_WEIGHT * _chroma_layout(rgb),
            EDGE_WEIGHT * detail * _edge_layout(intensity),
            COLOUR_WEIGHT * _colour_histogram(rgb),
            TEXTURE_WEIGHT * detail * _texture(intensity),
        ]
    )
    return _unit(vector)


def _intensity_layout(intensity: FloatArray) -> FloatArray:
    """Blurred block means, centred and divided by the pixel spread.

    Its norm is the share of the picture's contrast that lives at the scale of the layout:
    large for a composed photo, small for a texture.
    """
    blocks = _blurred_blocks(intensity, INTENSITY_GRID)
    standardised = (blocks - blocks.mean()) / (intensity.std() + 0.02)
    weighted = standardised * _centre_weights(INTENSITY_GRID) / INTENSITY_GRID
    return np.asarray(weighted.ravel(), dtype=np.float32)


def _chroma_layout(rgb: FloatArray) -> FloatArray:
    """Opponent colours over brightness per block: zero for grey, unchanged by brightness."""
    blocks = _block_means(rgb, CHROMA_GRID)
    red, green, blue = blocks[..., 0], blocks[..., 1], blocks[..., 2]
    brightness = red + green + blue + 0.1
    weights = _centre_weights(CHROMA_GRID)
    red_green = (red - green) / brightness * weights
    yellow_blue = (red + green - 2 * blue) / brightness * weights
    layout = np.concatenate([red_green.ravel(), yellow_blue.ravel()]) / CHROMA_GRID
    return np.asarray(layout, dtype=np.float32)


def _edge_layout(intensity: FloatArray) -> FloatArray:
    """Per cell: which orientations dominate (square-rooted shares minus their mean)."""
    gradient_x, gradient_y = _clamped_gradients(intensity)
    cells = np.sqrt(_orientation_histograms(gradient_x, gradient_y, EDGE_GRID))
    anisotropy = cells - cells.mean(axis=1, keepdims=True)
    weighted = anisotropy * _centre_weights(EDGE_GRID).reshape(-1, 1)
    return _unit(weighted.ravel())


def _colour_histogram(rgb: FloatArray) -> FloatArray:
    """Hue x saturation histogram, scaled down for nearly grey pictures so tints don't count."""
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # Element-wise over the three planes: much faster than reducing along a length-3 axis.
    brightest = np.maximum(np.maximum(red, green), blue)
    saturation = (brightest - np.minimum(np.minimum(red, green), blue)) / (brightest + _EPS)
    hue = np.arctan2(np.sqrt(3.0) * (green - blue), 2 * red - green - blue) % (2 * np.pi)
    hue_bin = (hue * (HUE_BINS / (2 * np.pi))).astype(np.intp) % HUE_BINS
    saturation_bin = np.minimum((saturation * SATURATION_BINS).astype(np.intp), SATURATION_BINS - 1)
    histogram = np.bincount(
        (hue_bin * SATURATION_BINS + saturation_bin).ravel(),
        weights=saturation.ravel(),
        minlength=HUE_BINS * SATURATION_BINS,
    )
    colourfulness = histogram.sum() / saturation.size
    shares = np.sqrt(histogram / (histogram.sum() + _EPS))
    return np.asarray(shares * min(1.0, colourfulness / 0.15), dtype=np.float32)


def _texture(intensity: FloatArray) -> FloatArray:
    """Orientation and gradient-strength statistics at three scales, and their energy ratios."""
    parts: list[FloatArray] = []
    energies: list[float] = []
    level = intensity
    for _ in range(TEXTURE_SCALES):
        gradient_x, gradient_y = _clamped_gradients(level)
        orientations = np.sqrt(_orientation_histograms(gradient_x, gradient_y, 1)[0])
        parts.append(orientations - orientations.mean())
        strength = np.hypot(gradient_x, gradient_y)
        mean_strength = float(strength.mean())
        # Strength relative to the mean, on a log scale from 1/16 to 4 times the mean.
        relative = np.log2(strength / (mean_strength + _EPS) + 1 / 16)
        strength_bin = np.clip(((relative + 4) * (STRENGTH_BINS / 6)).astype(np.intp), 0, None)
        shares = np.bincount(
            np.minimum(strength_bin, STRENGTH_BINS - 1).ravel(), minlength=STRENGTH_BINS
        )
        parts.append(
            (np.sqrt(shares / strength_bin.size) - TYPICAL_STRENGTH_SHARE).astype(np.float32)
        )
        energies.append(mean_strength + 1e-3)
        level = _halved(level)
    # How edge energy grows from fine to coarse scales: noise falls, photos of objects rise.
    parts.append((0.3 * np.diff(np.log2(energies))).astype(np.float32))
    return _unit(np.concatenate(parts).astype(np.float32))


def _clamped_gradients(intensity: FloatArray) -> tuple[FloatArray, FloatArray]:
    gradient_y, gradient_x = np.gradient(intensity)
    strength = np.hypot(gradient_x, gradient_y)
    limit = GRADIENT_CLAMP * strength.mean() + _EPS
    scale = np.minimum(1.0, limit / (strength + _EPS))
    return gradient_x * scale, gradient_y * scale


def _orientation_histograms(
    gradient_x: FloatArray, gradient_y: FloatArray, grid: int
) -> FloatArray:
    """Strength-weighted histograms of unsigned gradient orientation per cell of a grid.

    Returns ``(grid * grid, ORIENTATIONS)`` shares of the total strength of the picture.
    Each gradient is split between its two nearest orientation bins, and each bin then spreads
    some weight to its neighbours, so that a small rotation moves weight gradually.
    """
    strength = np.hypot(gradient_x, gradient_y)
    # Unsigned: an edge is the same edge whichever side is brighter.
    position = (np.arctan2(gradient_y, gradient_x) % np.pi) * (ORIENTATIONS / np.pi)
    lower = np.floor(position)
    upper_share = position - lower
    lower_bin = lower.astype(np.intp) % ORIENTATIONS
    upper_bin = (lower_bin + 1) % ORIENTATIONS
    height, width = gradient_x.shape
    cell_of_row = np.arange(height) * grid // height
    cell_of_column = np.arange(width) * grid // width
    cell = (cell_of_row[:, None] * grid + cell_of_column[None, :]) * ORIENTATIONS
    bins = grid * grid * ORIENTATIONS
    histogram = np.bincount(
        (cell + lower_bin).ravel(), weights=(strength * (1 - upper_share)).ravel(), minlength=bins
    ) + np.bincount(
        (cell + upper_bin).ravel(), weights=(strength * upper_share).ravel(), minlength=bins
    )
    shares = (histogram / (histogram.sum() + _EPS)).reshape(grid * grid, ORIENTATIONS)
    neighbours = np.roll(shares, 1, axis=1) + np.roll(shares, -1, axis=1)
    blurred = (1 - 2 * ORIENTATION_SPREAD) * shares + ORIENTATION_SPREAD * neighbours
    return np.asarray(blurred, dtype=np.float32)


def _block_means(values: FloatArray, grid: int) -> FloatArray:
    """Means of ``values`` (optionally with channels) over a grid x grid partition."""
    height, width = values.shape[:2]
    blocks = values.reshape(grid, height // grid, grid, width // grid, *values.shape[2:])
    return np.asarray(blocks.mean(axis=(1, 3)), dtype=np.float32)


def _halved(values: FloatArray) -> FloatArray:
    """``values`` at half the resolution (means of 2 x 2 pixels)."""
    height, width = values.shape[:2]
    pairs = values.reshape(height // 2, 2, width // 2, 2, *values.shape[2:])
    return np.asarray(pairs.mean(axis=(1, 3)), dtype=np.float32)


def _blurred_blocks(values: FloatArray, grid: int) -> FloatArray:
    """Block means at twice the resolution, binomially blurred, then averaged in pairs.

    The blur spreads each block over its neighbours, so a crop that shifts the content by part
    of a block changes the map gradually.
    """
    fine = _block_means(values, 2 * grid)
    for axis in (0, 1):
        fine = _binomial_blur(fine, axis)
    return _block_means(fine, grid)


def _binomial_blur(values: FloatArray, axis: int) -> FloatArray:
    """Blur along ``axis`` with the kernel (1, 4, 6, 4, 1) / 16, repeating the edge values."""
    padding = [(2, 2) if dimension == axis else (0, 0) for dimension in range(values.ndim)]
    padded = np.pad(values, padding, mode="edge")
    length = values.shape[axis]
    blurred = np.zeros_like(values)
    for offset, weight in enumerate((1, 4, 6, 4, 1)):
        blurred += weight / 16 * np.take(padded, np.arange(offset, offset + length), axis=axis)
    return blurred


def _centre_weights(grid: int) -> FloatArray:
    """Gaussian weights of the cells of a grid, 1 near the centre, lowest in the corners."""
    centres = (np.arange(grid) + 0.5) / grid * 2 - 1
    squared_radius = centres[:, None] ** 2 + centres[None, :] ** 2
    return np.exp(-squared_radius / (2 * CENTRE_SIGMA**2)).astype(np.float32)


def _unit(vector: FloatArray) -> FloatArray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > _EPS else vector).astype(np.float32)
