"""The wire format: round trips, and every malformed message rejected with WireError."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.wire import MAX_ARRAY_BYTES, SCHEMA, Message, WireError, decode, encode


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
