"""Read the weights of a PyTorch checkpoint into NumPy arrays, without torch and without
running any code from the file.

The file is in torch's legacy serialization (torch < 1.6): a stream of pickles (magic
number, protocol version, system info, the ``state_dict``, the list of storage keys), then
each storage's raw bytes, each preceded by its element count as an int64. A pickle can name
any Python callable, so unpickling is restricted: only the few globals that describe
tensors resolve, to local stand-ins that record shapes and offsets; any other global is
refused with ``pickle.UnpicklingError``.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
}


class CheckpointError(ValueError):
    """The weights file is not a checkpoint this module can read."""


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype[Any]


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: np.dtype[Any]
    numel: int


@dataclass(frozen=True)
class _Tensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: _Storage,
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *_training_state: object,
) -> _Tensor:
    return _Tensor(storage, offset, tuple(size), tuple(stride))


_ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed") from None

    def persistent_load(self, pid: Any) -> _Storage:
        # ('storage', storage type, key, device, element count, view or None)
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.80}")
        storage_type, key, _device, numel, view = pid[1:]
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or view:
            raise pickle.UnpicklingError(f"unsupported storage record {pid!r:.80}")
        return self.storages.setdefault(str(key), _Storage(str(key), storage_type.dtype, numel))


def load_state_dict(path: Path) -> dict[str, NDArray[Any]]:
    """The checkpoint's ``{parameter name: array}``."""
    stream = io.BytesIO(path.read_bytes())
    try:
        if _RestrictedUnpickler(stream).load() != LEGACY_MAGIC:
            raise CheckpointError(f"{path} is not a legacy torch checkpoint (bad magic number)")
        if _RestrictedUnpickler(stream).load() != LEGACY_PROTOCOL:
            raise CheckpointError(f"{path}: unsupported torch serialization protocol")
        system = _RestrictedUnpickler(stream).load()
        if isinstance(system, dict) and not system.get("little_endian", True):
            raise CheckpointError(f"{path} was written on a big-endian machine")
        tensors = _RestrictedUnpickler(stream)
        state = tensors.load()
        keys = _RestrictedUnpickler(stream).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise CheckpointError(f"{path} cannot be read as weights: {error}") from error
    if not isinstance(state, dict) or set(keys) != set(tensors.storages):
        raise CheckpointError(f"{path} does not hold a state_dict of tensors")
    data = {key: _storage_bytes(stream, tensors.storages[key]) for key in keys}
    return {
        str(name): _array(tensor, data)
        for name, tensor in state.items()
        if isinstance(tensor, _Tensor)
    }


def _storage_bytes(stream: IO[bytes], storage: _Storage) -> bytes:
    (numel,) = struct.unpack("<q", stream.read(8).rjust(8, b"\0"))
    if numel != storage.numel:
        raise CheckpointError(f"storage {storage.key}: {numel} elements, {storage.numel} expected")
    data = stream.read(numel * storage.dtype.itemsize)
    if len(data) != numel * storage.dtype.itemsize:
        raise CheckpointError(f"storage {storage.key} is truncated")
    return data


def _array(tensor: _Tensor, data: dict[str, bytes]) -> NDArray[Any]:
    storage = tensor.storage
    flat = np.frombuffer(data[storage.key], dtype=storage.dtype)
    if not tensor.size:
        return flat[tensor.offset : tensor.offset + 1].reshape(()).copy()
    span = 1 + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride, strict=True))
    if tensor.offset + span > flat.size:
        raise CheckpointError(f"a tensor overruns storage {storage.key}")
    strides = tuple(s * storage.dtype.itemsize for s in tensor.stride)
    view = np.lib.stride_tricks.as_strided(flat[tensor.offset :], tensor.size, strides)
    return np.array(view, dtype=storage.dtype.newbyteorder("="))
