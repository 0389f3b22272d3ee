"""The wire format: round trips, and every malformed message rejected with WireError."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.wire import (
    DTYPES,
    KINDS,
    MAX_ARRAY_BYTES,
    MAX_HEADER_BYTES,
    MAX_NESTING,
    SCHEMA,
    Message,
    WireError,
    decode,
    encode,
)


def test_round_trip_keeps_arrays_stamps_and_meta():
    frame = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    heat = np.linspace(0, 1, 49, dtype=np.float32).reshape(7, 7)
    msg = Message(
        "result",
        42,
        {"capture": 1.5, "infer": 1.6},
        {"frame": frame, "map": heat},
        {"peak": [3, 4], "sounding": True},
    )
    got = decode(encode(msg))
    assert got.kind == "result" and got.seq == 42 and got.stamps == msg.stamps
    assert got.meta == msg.meta
    assert np.array_equal(got.arrays["frame"], frame) and got.arrays["map"].dtype == np.float32
    assert np.array_equal(got.arrays["map"], heat)


def test_encode_does_not_copy_contiguous_arrays():
    big = np.zeros((480, 640, 3), np.uint8)
    frames = encode(Message("frame", arrays={"image": big}))
    assert isinstance(frames[1], memoryview) and frames[1].obj is big


def header(**over):
    base = {"schema": SCHEMA, "kind": "frame", "seq": 1, "stamps": {}, "arrays": [], "meta": {}}
    base.update(over)
    return json.dumps(base).encode()


@pytest.mark.parametrize(
    "frames, why",
    [
        ([], "empty"),
        ([b"\xff\xfe"], "not JSON"),
        ([b"[1, 2]"], "not a JSON object"),
        ([header(schema=99)], "schema"),
        ([header(kind="exec")], "unknown message kind"),
        ([header(seq="1")], "seq"),
        ([header(arrays=[{"name": "a", "dtype": "float32", "shape": [2]}])], "0 buffers"),
        ([header(arrays=[{"name": "a", "dtype": "object", "shape": [1]}]), b"x" * 8], "dtype"),
        ([header(arrays=[{"name": "a", "dtype": "float32", "shape": [3]}]), b"x" * 8], "bytes"),
        ([header(arrays=[{"name": "a", "dtype": "uint8", "shape": [-1]}]), b""], "bad shape"),
        (
            [header(arrays=[{"name": "a", "dtype": "uint8", "shape": [MAX_ARRAY_BYTES + 1]}]), b""],
            "too large",
        ),
        ([b" " * (70 * 1024)], "too large"),
        ([header(arrays=[{"name": "a", "dtype": "uint8", "shape": [2**70]}]), b""], "bad shape"),
    ],
)
def test_malformed_messages_raise_wire_error(frames, why):
    with pytest.raises(WireError, match=why):
        decode(frames)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), min_size=0, max_size=4))
def test_decoder_never_raises_anything_but_wire_error(frames):
    try:
        decode(frames)
    except WireError:
        pass


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.integers(), st.text(max_size=5), st.none(), st.lists(st.integers())),
        max_size=6,
    )
)
def test_decoder_survives_arbitrary_json_headers(fields):
    try:
        decode([json.dumps(fields).encode()])
    except WireError:
        pass


# Regressions: headers that passed the schema and kind checks, then escaped as errors other than
# WireError, which Channel.recv did not catch, so the receiving worker died.


@pytest.mark.parametrize(
    "stamp",
    [10**400, -(10**400), float("nan"), float("inf"), True, "1.5"],
    ids=["1e400 int", "-1e400 int", "nan", "inf", "true", "string"],
)
def test_stamps_that_are_not_finite_seconds_are_wire_errors(stamp):
    # 10**400: float() raised OverflowError
    with pytest.raises(WireError, match="stamp 'capture'"):
        decode([header(stamps={"capture": stamp})])


def deep(depth: int) -> bytes:
    """A header whose meta nests ``depth`` lists deep: text, as json.dumps cannot write it."""
    return header()[:-1] + b', "meta": {"deep": ' + b"[" * depth + b"]" * depth + b"}}"


@pytest.mark.parametrize("depth", [20_000, MAX_NESTING - 1])
def test_deeply_nested_meta_is_a_wire_error(depth):
    # 20,000 levels: json.loads raised RecursionError; one past the limit parsed, and was left for
    # whatever walked it next (repr, json.dumps) to recurse through
    raw = deep(depth)
    assert len(raw) <= MAX_HEADER_BYTES
    with pytest.raises(WireError, match="nests deeper"):
        decode([raw])


def test_meta_nested_up_to_the_limit_still_decodes():
    raw = deep(MAX_NESTING - 2)  # the header and meta are the first two levels
    assert decode([raw]).meta == json.loads(raw)["meta"]


@pytest.mark.parametrize("shape", [[2**30] * 6, [0, 2**16, 2**30, 2**30]])
def test_shape_whose_size_overflows_int64_is_a_wire_error(shape):
    # np.prod in int64: 2**180 wrapped to 0 bytes, matched the empty buffer, then reshape raised
    # ValueError; an empty array too, as numpy refuses dimensions whose product overflows
    spec = {"name": "a", "dtype": "uint8", "shape": shape}
    with pytest.raises(WireError, match="too large"):
        decode([header(arrays=[spec]), b""])


def test_integer_literal_too_long_to_parse_is_a_wire_error():
    # json.loads raises a plain ValueError past Python's 4300-digit limit
    with pytest.raises(WireError, match="not JSON"):
        decode([header()[:-1] + b', "seq": 1' + b"0" * 5000 + b"}"])


# A fuzz that gets past the schema and kind checks: the random-bytes and random-JSON fuzzes above
# almost never do, which is how the regressions above went unnoticed. Each example makes a few of
# its fields hostile and keeps the others sane, so that every check is reached often.

HUGE = st.integers(min_value=-(10**400), max_value=10**400)  # JSON, but beyond any float
NUMBERS = st.one_of(st.integers(), HUGE, st.floats(allow_nan=True, allow_infinity=True))
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=6)),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)
# allowed dimensions, among them sizes that pass 64 bits together ([2**30] * 3, [2**16] * 4)
SANE_DIMS = st.integers(0, 5) | st.sampled_from([2**16, 2**30])
EDGE_DIMS = st.sampled_from([2**31 - 1, 2**31, 2**64, -1]) | HUGE | JSON


@st.composite
def json_text(draw) -> str:
    """JSON text that json.dumps cannot write: nested up to 25,000 deep, or an integer literal
    longer than Python parses (4300 digits)."""
    if draw(st.booleans()):
        return "1" + "0" * draw(st.integers(4000, 6000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    depth = draw(st.integers(0, 25_000))
    return opener * depth + "0" + closer * depth


FIELDS = {  # name: (sane, hostile)
    "seq": (st.integers(0, 2**63), HUGE | JSON),
    "stamps": (
        st.dictionaries(st.text(max_size=6), st.floats(0, 1e9), max_size=3),
        st.dictionaries(st.text(max_size=6), NUMBERS | JSON, min_size=1, max_size=3),
    ),
    "meta": (
        st.dictionaries(st.text(max_size=4), JSON.map(json.dumps), max_size=3),
        st.dictionaries(st.text(max_size=4), json_text(), min_size=1, max_size=2),
    ),
    "shape": (
        st.lists(SANE_DIMS, max_size=6),
        st.lists(SANE_DIMS | EDGE_DIMS, min_size=1, max_size=7) | JSON,
    ),
    "dtype": (st.sampled_from(DTYPES), st.sampled_from(["object", "float128", "<f4"]) | JSON),
}


@st.composite
def messages(draw) -> list[bytes]:
    """A valid schema and kind, everything else random: seq, stamps, meta, array specs, buffers."""
    hostile = draw(st.sets(st.sampled_from([*FIELDS, "buffer count"]), max_size=2))

    def field(name):
        return FIELDS[name][name in hostile]

    specs = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.sampled_from(["a", "b", "map"]),
                    "dtype": field("dtype"),
                    "shape": field("shape"),
                }
            ),
            max_size=3,
        )
    )
    fields = {
        "schema": SCHEMA,
        "kind": draw(st.sampled_from(KINDS)),
        "seq": draw(field("seq")),
        "stamps": draw(field("stamps")),
        "arrays": specs,
    }
    meta = draw(field("meta"))  # JSON text, written in by hand: json.dumps cannot write it all
    raw = json.dumps(fields)[:-1] + ', "meta": {'
    raw += ", ".join(f"{json.dumps(k)}: {v}" for k, v in meta.items()) + "}}"
    buffers = []
    for spec in specs:
        shape, size = spec["shape"], None
        if isinstance(shape, list) and all(type(d) is int and 0 <= d for d in shape):
            itemsize = np.dtype(spec["dtype"]).itemsize if spec["dtype"] in DTYPES else 1
            size = math.prod(shape) * itemsize
        if size is not None and size <= 4096 and draw(st.booleans()):
            buffers.append(draw(st.binary(min_size=size, max_size=size)))  # the right length
        else:
            buffers.append(draw(st.just(b"") | st.binary(max_size=64)))  # empty: as if size 0
    if "buffer count" in hostile:  # one too few or too many
        buffers = buffers[:-1] if buffers and draw(st.booleans()) else [*buffers, b""]
    return [raw.encode(), *buffers]


@settings(max_examples=300, deadline=None)
@given(messages())
def test_decoder_of_schema_valid_headers_returns_a_message_or_raises_wire_error(frames):
    try:
        msg = decode(frames)
    except WireError:
        return
    assert msg.kind in KINDS and all(math.isfinite(v) for v in msg.stamps.values())
    specs = json.loads(frames[0])["arrays"]
    assert [list(a.shape) for a in msg.arrays.values()] == [spec["shape"] for spec in specs]
