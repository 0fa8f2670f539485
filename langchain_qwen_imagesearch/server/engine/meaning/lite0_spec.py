"""The shape of EfficientNet-Lite0, as published: what the graph builder builds and what
its users need to know without building it (its input side, its embedding width)."""

EMBEDDING_DIM = 1280
IMAGE_SIDE = 224
BATCH_NORM_EPS = 1e-3
STEM_CHANNELS = 32

# Per stage: repeats, kernel, stride, expansion, output channels.
LITE0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
