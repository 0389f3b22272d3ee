"""The message format between live workers: a JSON header plus raw array buffers.

A message is a ZeroMQ multipart: ``[header, buffer_0, buffer_1, ...]``. The header is UTF-8 JSON
``{"schema": 1, "kind": ..., "seq": int, "stamps": {stage: seconds}, "arrays": [{"name", "dtype",
"shape"}], "meta": {...}}``; each buffer holds one C-contiguous array, sent without copying.
Nothing is pickled. ``decode`` checks everything a peer controls (schema, kind, dtypes, sizes,
nesting, number ranges) and raises ``WireError`` and nothing else; receivers drop and count such
messages, never crash on them.

This module is numpy-only, so the GUI can read results without importing torch.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCHEMA = 1
KINDS = ("frame", "audio", "result", "heartbeat", "status")
DTYPES = ("uint8", "int16", "int32", "int64", "float16", "float32", "float64", "bool")
MAX_HEADER_BYTES = 64 * 1024
MAX_NESTING = 32  # lists and objects in each other, the header counted; meta needs a few
MAX_ARRAYS = 8
MAX_DIMS = 6
MAX_DIM = 2**31 - 1  # per dimension; the product is bounded by MAX_ARRAY_BYTES below
MAX_ARRAY_BYTES = 64 * 1024 * 1024  # a 4K RGB frame is 25 MB
# The largest multipart part ``decode`` can accept: receivers refuse bigger parts before
# allocating them (ZeroMQ's MAXMSGSIZE, which bounds each part, not the whole multipart).
MAX_PART_BYTES = max(MAX_HEADER_BYTES, MAX_ARRAY_BYTES)


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


def _nesting(value: Any) -> int:
    """How deeply lists and objects nest in parsed JSON, counted without recursion: a peer's meta
    nested hundreds deep still parses, then would raise RecursionError in whatever walks it next
    (repr in an error message, json.dumps when a result is forwarded)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        value, depth = todo.pop()
        if isinstance(value, (dict, list)):
            deepest = max(deepest, depth)
            children = value.values() if isinstance(value, dict) else value
            todo.extend((child, depth + 1) for child in children)
    return deepest


def is_seconds(value: Any) -> bool:
    """A stamp is finite seconds. JSON integers are unbounded and ``float(10**400)`` raises
    OverflowError, so the range is checked by comparison (exact between int and float), which
    also refuses NaN and infinities, and booleans are not numbers here."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and abs(value) <= sys.float_info.max
    )


def decode(frames: list[bytes | memoryview]) -> Message:
    """Multipart frames -> Message, validating everything; raises WireError."""
    _check(len(frames) >= 1, "empty message")
    raw = bytes(frames[0])
    _check(len(raw) <= MAX_HEADER_BYTES, f"header of {len(raw)} bytes is too large")
    try:
        header = json.loads(raw.decode("utf-8"))
    except RecursionError as exc:  # the parser recurses once per level of nesting
        raise WireError(f"header nests deeper than the parser allows ({exc})") from exc
    except ValueError as exc:  # not UTF-8, not JSON, or an integer literal of >4300 digits
        raise WireError(f"header is not JSON ({exc})") from exc
    _check(isinstance(header, dict), "header is not a JSON object")
    _check(_nesting(header) <= MAX_NESTING, f"header nests deeper than {MAX_NESTING} levels")
    _check(
        header.get("schema") == SCHEMA,
        f"schema {header.get('schema')!r} is not {SCHEMA}: update both ends",
    )
    kind = header.get("kind")
    _check(kind in KINDS, f"unknown message kind {kind!r}")
    seq = header.get("seq", 0)
    _check(isinstance(seq, int) and not isinstance(seq, bool), "seq is not an integer")
    stamps = header.get("stamps", {})
    _check(isinstance(stamps, dict), "stamps is not an object")
    for stage, value in stamps.items():
        _check(is_seconds(value), f"stamp {stage!r} is not a finite number of seconds")
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
            and len(shape) <= MAX_DIMS
            and all(
                isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= MAX_DIM for d in shape
            ),
            f"array {name!r}: bad shape {shape!r}",
        )
        # Sizes in Python ints: np.prod in int64 wraps ([2**30] * 6 is 2**180, which wrapped to 0,
        # matched an empty buffer, then failed in reshape). The bound counts empty dimensions as 1,
        # as numpy refuses a shape whose other dimensions overflow even when it holds nothing.
        itemsize = np.dtype(dtype).itemsize
        _check(
            math.prod(max(d, 1) for d in shape) * itemsize <= MAX_ARRAY_BYTES,
            f"array {name!r}: shape {shape} {dtype} is too large (over {MAX_ARRAY_BYTES} bytes)",
        )
        nbytes = math.prod(shape) * itemsize
        view = memoryview(buf)
        _check(
            view.nbytes == nbytes,
            f"array {name!r}: {view.nbytes} bytes for shape {shape} {dtype} ({nbytes})",
        )
        arrays[name] = np.frombuffer(view, dtype=dtype).reshape(shape)
    return Message(kind, seq, {k: float(v) for k, v in stamps.items()}, arrays, meta)
