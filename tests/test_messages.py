"""The typed messages between the live processes: each one through its wire form and back, and
what a reader does with a message that is not what it claims to be."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import live_result

from realtime.messages import (
    AudioPacket,
    CaptureSpec,
    EndOfStream,
    FramePacket,
    Heartbeat,
    LiveResult,
    Ready,
    StandbyReady,
    WorkerError,
    packet_from_wire,
    result_from_wire,
    status_from_wire,
)
from realtime.wire import WireError, decode, encode


def through_the_wire(message):
    return decode(encode(message.to_wire()))  # the bytes a socket carries, parsed again


def test_packets_cross_as_they_were_sent():
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    frame = FramePacket(7, 12.5, 0.25, image, [{"box": [0, 0, 2, 2], "sounding": True}])
    back = packet_from_wire(through_the_wire(frame))
    assert isinstance(back, FramePacket)
    assert (back.index, back.t, back.pts, back.truth) == (7, 12.5, 0.25, frame.truth)
    assert np.array_equal(back.image, image)
    samples = np.linspace(-1, 1, 160, dtype=np.float32)
    audio = packet_from_wire(through_the_wire(AudioPacket(3, 1.0, 0.5, samples, 16000)))
    assert isinstance(audio, AudioPacket) and (audio.seq, audio.rate, audio.pts) == (3, 16000, 0.5)
    assert np.array_equal(audio.samples, samples)
    end = packet_from_wire(through_the_wire(EndOfStream(90, unsent=4)))
    assert end == EndOfStream(90, 4)


def test_a_peers_packet_with_missing_parts_is_handed_on_for_the_stage_to_refuse():
    from realtime.stage import BadPacket, checked_frame
    from realtime.wire import Message

    back = packet_from_wire(decode(encode(Message("frame", 1, {"capture": 1.0}))))
    assert isinstance(back, FramePacket) and back.image is None
    with pytest.raises(BadPacket):
        checked_frame(back)


def test_a_result_crosses_with_every_field():
    sent = live_result(
        np.arange(49, dtype=np.float32).reshape(7, 7),
        frame=12,
        pts=0.4,
        peak=(10, 20),
        box=(1, 2, 30, 40),
        confidence=0.75,
        sounding=True,
        score=0.31,
        level_db=-20.5,
        gap=True,
        dropped=3,
        rejected=1,
        processed=9,
        truth=[{"box": [0, 0, 5, 5], "sounding": True}],
        stamps={"capture": 1.0, "infer": 1.5, "publish": 1.6},
    )
    back = result_from_wire(through_the_wire(sent))
    assert isinstance(back, LiveResult)
    for name in LiveResult.__dataclass_fields__:
        got, want = getattr(back, name), getattr(sent, name)
        if isinstance(want, np.ndarray):
            assert np.array_equal(got, want) and got.dtype == want.dtype, name
        else:
            assert got == want, name
    assert back.capture_time == 1.0


@pytest.mark.parametrize(
    "status",
    [
        Ready("cpu (fp32)", 41, 16000, 224, 0.03, 0.26, False),
        StandbyReady("inference", 42),
        WorkerError("capture", "cannot open source x.mp4"),
        Heartbeat("inference", 100, 5.0, dropped=2, rejected=1),
        EndOfStream(5),
    ],
)
def test_status_messages_cross_as_themselves(status):
    assert status_from_wire(through_the_wire(status)) == status


def test_a_result_missing_a_field_or_mistyped_is_a_wire_error():
    msg = through_the_wire(live_result())
    del msg.meta["confidence"]
    with pytest.raises(WireError, match="confidence"):
        result_from_wire(msg)
    msg = through_the_wire(live_result())
    msg.meta["sounding"] = 1  # a number where a yes / no belongs
    with pytest.raises(WireError, match="sounding"):
        result_from_wire(msg)
    msg = through_the_wire(live_result())
    msg.meta["box"] = [1, 2, 3]
    with pytest.raises(WireError, match="box"):
        result_from_wire(msg)
    with pytest.raises(WireError):
        status_from_wire(through_the_wire(live_result()))


def test_the_capture_spec_gives_options_to_the_synthetic_source_only():
    synthetic = CaptureSpec("synthetic", "ipc://x", sample_rate=8000, seconds=3.0)
    assert synthetic.source_options() == {"sample_rate": 8000, "seconds": 3.0}
    assert CaptureSpec("clip.mp4", "ipc://x", sample_rate=8000).source_options() == {}


@pytest.mark.parametrize(
    "span",
    [
        {"start": 10**400, "end": 1.0, "zero_filled": 0},  # beyond float: not an OverflowError
        {"start": 0.0, "end": float("nan"), "zero_filled": 0},
        {"start": 0.0, "end": 3.0, "zero_filled": -1},
        {"start": 0.0, "end": 3.0},
        [0.0, 3.0, 0],
    ],
)
def test_a_malformed_audio_span_is_a_wire_error(span):
    from realtime.messages import AudioSpan, result_from_wire
    from realtime.wire import WireError

    msg = live_result(audio=AudioSpan(0.0, 3.0, 0)).to_wire()
    assert result_from_wire(msg).audio == AudioSpan(0.0, 3.0, 0)
    msg.meta["audio"] = span
    with pytest.raises(WireError):
        result_from_wire(msg)


def test_a_smoothed_map_crosses_beside_the_raw_one_and_only_when_there_is_one():
    raw = np.arange(49, dtype=np.float32).reshape(7, 7)
    plain = result_from_wire(through_the_wire(live_result(raw)))
    assert plain.shown_map is None and np.array_equal(plain.drawn_map, raw)
    shown = np.full((7, 7), 2.5, np.float32)
    smoothed = result_from_wire(through_the_wire(live_result(raw, shown_map=shown)))
    assert np.array_equal(smoothed.raw_map, raw) and np.array_equal(smoothed.shown_map, shown)
    assert np.array_equal(smoothed.drawn_map, shown)
