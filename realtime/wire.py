"""The message format between live workers: a JSON header plus raw array buffers.

A message is a ZeroMQ multipart: ``[header, buffer_0, buffer_1, ...]``. The header is UTF-8 JSON
``{"schema": 1, "kind": ..., "seq": int, "stamps": {stage: seconds}, "arrays": [{"name", "dtype",
"shape"}], "meta": {...}}``; each buffer holds one C-contiguous array, sent without copying.
Nothing is pickled. ``decode`` checks everything a peer controls (schema, kind, dtypes, sizes) and
raises ``WireError``; receivers drop and count such messages, never crash on them.

This module is numpy-only, so the GUI can read results without importing torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCHEMA = 1
KINDS = ("frame", "audio", "result", "heartbeat", "status")
DTYPES = ("uint8", "int16", "int32", "int64", "float16", "float32", "float64", "bool")
MAX_HEADER_BYTES = 64 * 1024
MAX_ARRAYS = 8
MAX_ARRAY_BYTES = 64 * 1024 * 1024  # a 4K RGB frame is 25 MB


class WireError(ValueError):
    """A message that does not follow the schema; receivers drop and count it."""


@dataclass
class Message:
    kind: str
    seq: int = 0
    stamps: dict[str, float] = field(default_factory=dict)  # stage -> monotonic seconds
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def encode(msg: Message) -> list[bytes | memoryview]:
    """Message -> multipart frames (the array buffers are views, not copies)."""
    if msg.kind not in KINDS:
        raise WireError(f"unknown message kind {msg.kind!r}")
    specs, buffers = [], []
    for name, array in msg.arrays.items():
        array = np.ascontiguousarray(array)
        if array.dtype.name not in DTYPES:
            raise WireError(f"array {name!r} has dtype {array.dtype}, not one of {DTYPES}")
        specs.append({"name": name, "dtype": array.dtype.name, "shape": list(array.shape)})
        buffers.append(memoryview(array).cast("B"))
    header = {
        "schema": SCHEMA,
        "kind": msg.kind,
        "seq": int(msg.seq),
        "stamps": {k: float(v) for k, v in msg.stamps.items()},
        "arrays": specs,
        "meta": msg.meta,
    }
    return [json.dumps(header, separators=(",", ":")).encode(), *buffers]


def _check(cond: bool, why: str) -> None:
    if not cond:
        raise WireError(why)


def decode(frames: list[bytes | memoryview]) -> Message:
    """Multipart frames -> Message, validating everything; raises WireError."""
    _check(len(frames) >= 1, "empty message")
    raw = bytes(frames[0])
    _check(len(raw) <= MAX_HEADER_BYTES, f"header of {len(raw)} bytes is too large")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"header is not JSON ({exc})") from exc
    _check(isinstance(header, dict), "header is not a JSON object")
    _check(
        header.get("schema") == SCHEMA,
        f"schema {header.get('schema')!r} is not {SCHEMA}: update both ends",
    )
    kind = header.get("kind")
    _check(kind in KINDS, f"unknown message kind {kind!r}")
    seq = header.get("seq", 0)
    _check(isinstance(seq, int) and not isinstance(seq, bool), "seq is not an integer")
    stamps = header.get("stamps", {})
    _check(
        isinstance(stamps, dict)
        and all(isinstance(k, str) and isinstance(v, (int, float)) for k, v in stamps.items()),
        "bad stamps",
    )
    meta = header.get("meta", {})
    _check(isinstance(meta, dict), "meta is not an object")
    specs = header.get("arrays", [])
    _check(isinstance(specs, list) and len(specs) <= MAX_ARRAYS, "bad array list")
    _check(
        len(specs) == len(frames) - 1,
        f"header names {len(specs)} arrays but {len(frames) - 1} buffers came",
    )
    arrays = {}
    for spec, buf in zip(specs, frames[1:], strict=True):
        _check(isinstance(spec, dict), "array spec is not an object")
        name, dtype, shape = spec.get("name"), spec.get("dtype"), spec.get("shape")
        _check(isinstance(name, str) and name not in arrays, f"bad array name {name!r}")
        _check(dtype in DTYPES, f"array {name!r}: dtype {dtype!r} is not allowed")
        _check(
            isinstance(shape, list)
            and len(shape) <= 6
            and all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31 for d in shape
            ),
            f"array {name!r}: bad shape {shape!r}",
        )
        nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        _check(nbytes <= MAX_ARRAY_BYTES, f"array {name!r} of {nbytes} bytes is too large")
        view = memoryview(buf)
        _check(
            view.nbytes == nbytes,
            f"array {name!r}: {view.nbytes} bytes for shape {shape} {dtype} ({nbytes})",
        )
        arrays[name] = np.frombuffer(view, dtype=dtype).reshape(shape)
    return Message(kind, seq, {k: float(v) for k, v in stamps.items()}, arrays, meta)
