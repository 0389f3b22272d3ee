"""Live sources: synthetic, a file with an audio track, and the OpenCV camera path (on a file)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from realtime.sources import (
    AudioPacket,
    CameraSource,
    FileSource,
    FramePacket,
    SourceError,
    SyntheticSource,
    open_source,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 2 s synthetic stream as mp4 (H.264 + AAC), 160x120 at 10 fps, 16 kHz."""
    from train.synth import write_stream
    from train.synth_stream import StreamScript
    from train.synth_world import World, WorldConfig

    world = World(WorldConfig(classes=8, sample_rate=16000))
    script = StreamScript.draw(world, np.random.default_rng(0), 2.0, fps=10, size=(160, 120))
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_stream(path, script)
    return path


def test_synthetic_source_interleaves_frames_and_audio_in_time_order():
    with SyntheticSource(
        size=(160, 120), fps=10, sample_rate=8000, seconds=1.0, block=400, realtime=False
    ) as source:
        packets = list(source)
    frames = [p for p in packets if isinstance(p, FramePacket)]
    audio = [p for p in packets if isinstance(p, AudioPacket)]
    assert len(frames) == 10 and len(audio) == 20
    assert [p.pts for p in packets] == sorted(p.pts for p in packets)
    assert frames[0].image.shape == (120, 160, 3) and frames[0].truth
    assert sum(o["sounding"] for o in frames[3].truth) <= 1
    assert [a.seq for a in audio] == list(range(20))
    joined = np.concatenate([a.samples for a in audio])
    assert joined.shape == (8000,) and np.abs(joined).max() <= 1


def test_the_sounding_object_carries_its_outline_inside_its_box():
    with SyntheticSource(size=(320, 240), fps=10, seconds=2.0, realtime=False) as source:
        frames = [p for p in source if isinstance(p, FramePacket)]
    outlined = 0
    for frame in frames:
        for obj in frame.truth:
            if not obj["sounding"]:
                assert "outline" not in obj
                continue
            outlined += 1
            points = np.asarray(obj["outline"])
            x0, y0, x1, y1 = obj["box"]
            assert len(points) >= 3
            assert (points[:, 0] >= x0 - 1).all() and (points[:, 0] <= x1).all()
            assert (points[:, 1] >= y0 - 1).all() and (points[:, 1] <= y1).all()
            # the outline spans its box: it is the object's, not a dot in it
            assert np.ptp(points[:, 0]) > 0.8 * (x1 - x0) and np.ptp(points[:, 1]) > 0.8 * (y1 - y0)
    assert outlined > 5


def test_a_written_stream_replays_with_the_truth_it_was_written_with(clip, tmp_path):
    import json
    import shutil

    written = json.loads(clip.with_suffix(".json").read_text())["frames"]
    with FileSource(clip, realtime=False) as source:
        frames = [p for p in source if isinstance(p, FramePacket)]
    assert [f.truth for f in frames] == [w["objects"] for w in written]
    assert any("outline" in o for f in frames for o in f.truth)
    # a video without the file beside it, or beside one of another size: no truth at all
    alone = tmp_path / "alone.mp4"
    shutil.copy(clip, alone)
    with FileSource(alone, realtime=False) as source:
        assert all(p.truth is None for p in source if isinstance(p, FramePacket))
    other = json.loads(clip.with_suffix(".json").read_text())
    alone.with_suffix(".json").write_text(json.dumps({**other, "width": 640}))
    with FileSource(alone, realtime=False) as source:
        assert all(p.truth is None for p in source if isinstance(p, FramePacket))


def test_synthetic_source_is_paced_in_real_time():
    start = time.monotonic()
    with SyntheticSource(size=(64, 48), fps=10, sample_rate=8000, seconds=0.5) as source:
        packets = list(source)
    assert time.monotonic() - start >= max(p.pts for p in packets)  # the last packet is at 0.4 s
    assert all(abs(p.t - (source.start + p.pts)) < 1e-9 for p in packets)


def test_file_source_gives_every_frame_and_the_audio(clip):
    with FileSource(clip, realtime=False) as source:
        packets = list(source)
    frames = [p for p in packets if isinstance(p, FramePacket)]
    audio = [p for p in packets if isinstance(p, AudioPacket)]
    assert len(frames) == 20 and frames[0].image.shape == (120, 160, 3)
    assert all(b.pts > a.pts for a, b in zip(frames, frames[1:], strict=False))
    assert audio and all(a.rate == 16000 for a in audio)
    assert 32000 <= sum(a.samples.size for a in audio) <= 32000 + 2048


def test_file_source_replays_in_real_time(clip):
    start = time.monotonic()
    with FileSource(clip) as source:
        for _ in source:
            pass
    assert time.monotonic() - start >= 1.8  # a 2 s clip


def test_camera_path_through_opencv_keeps_the_newest_frame(clip):
    with CameraSource(str(clip)) as camera:
        seen = []
        for packet in camera:
            seen.append(packet)
            time.sleep(0.05)  # a slow consumer
        grabbed = camera.grabbed
    assert seen and seen[0].image.shape == (120, 160, 3)
    assert grabbed == 20
    assert len(seen) < grabbed  # stale frames were skipped, not queued
    assert [p.index for p in seen] == sorted({p.index for p in seen})


def test_dispatcher_and_clear_errors(tmp_path, clip):
    assert isinstance(open_source("synthetic", realtime=False, seconds=0.1), SyntheticSource)
    source = open_source(str(clip), realtime=False)
    assert isinstance(source, FileSource)
    source.close()
    with pytest.raises(SourceError, match="cannot open source"):
        open_source("nowhere.mp4")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(SourceError, match="not a video file"):
        open_source(str(tmp_path / "notes.txt"))
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 64)
    with pytest.raises(SourceError, match="cannot be opened"):
        open_source(str(tmp_path / "broken.mp4"))
    with pytest.raises(SourceError, match="cannot open camera 57"):
        open_source("57")


def stalling_mjpeg_server(frames: int) -> str:
    """An HTTP MJPEG stream (what IP cameras serve) that sends ``frames`` frames and then
    holds the connection open without a byte more; 0 frames: not even an answer."""
    import socket
    import threading

    import cv2

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(4096)
        if frames:
            conn.sendall(
                b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary=frame\r\n\r\n"
            )
        for i in range(frames):
            jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 8 * i, np.uint8))[1].tobytes()
            head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
            conn.sendall(head % len(jpeg) + jpeg + b"\r\n")
        time.sleep(60)  # open, silent; the daemon thread dies with the test process

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}/video.mjpg"


def test_a_url_that_never_answers_fails_within_the_open_timeout():
    start = time.monotonic()
    with pytest.raises(SourceError, match="cannot open http://127.0.0.1"):
        CameraSource(stalling_mjpeg_server(0), open_timeout_s=1.0)
    assert time.monotonic() - start < 6  # FFmpeg alone waits 30 s


def test_a_stream_that_stalls_is_an_error_within_seconds():
    start = time.monotonic()
    got = []
    with pytest.raises(SourceError, match="delivered no frame for"):  # noqa: PT012
        with CameraSource(stalling_mjpeg_server(10), read_timeout_s=1.0, stall_s=2.0) as camera:
            for packet in camera:
                got.append(packet)
    assert got and got[0].image.shape == (120, 160, 3)
    assert time.monotonic() - start < 10


def write_media(path: Path, video: bool = True, rate: int = 96000, layout: str = "5.1") -> Path:
    """2 s of a 440 Hz tone in every channel (AAC at ``rate``, ``layout``), with 20 frames of
    160x120 MPEG-4 video unless ``video`` is False."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=rate, layout=layout)  # every stream before the first packet
        if video:
            v = out.add_stream("mpeg4", rate=10)
            v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
            for i in range(20):
                image = np.full((120, 160, 3), 10 * i, np.uint8)
                for packet in v.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    out.mux(packet)
            for packet in v.encode():
                out.mux(packet)
        channels = len(av.AudioLayout(layout).channels)
        tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * rate) / rate)
        data = np.repeat(tone[None].astype(np.float32), channels, axis=0)
        for start in range(0, data.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(data[:, start : start + 1024]), format="fltp", layout=layout
            )
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in a.encode(frame):
                out.mux(packet)
        for packet in a.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize("suffix", [".mkv", ".mp4"])
def test_six_channel_96khz_audio_comes_out_as_mono_at_its_own_rate(tmp_path, suffix):
    path = write_media(tmp_path / f"surround{suffix}")
    with open_source(str(path), realtime=False) as source:
        packets = list(source)
    audio = [p for p in packets if isinstance(p, AudioPacket)]
    assert sum(isinstance(p, FramePacket) for p in packets) == 20
    assert {p.rate for p in audio} == {96000} and all(p.samples.ndim == 1 for p in audio)
    samples = np.concatenate([p.samples for p in audio])
    assert abs(samples.size - 2 * 96000) <= 2048
    spectrum = np.abs(np.fft.rfft(samples[96000 // 2 : 96000 // 2 + 96000]))
    assert int(np.argmax(spectrum)) == 440  # the tone, downmixed, not summed out of range
    assert 0.2 < np.abs(samples[96000 // 2 :]).max() < 0.4


def test_broken_and_partial_files_in_the_live_file_source(tmp_path):
    whole = write_media(tmp_path / "whole.mp4", layout="stereo", rate=44100).read_bytes()
    cut = tmp_path / "cut.mp4"  # mp4 keeps its index at the end: half a file cannot be opened
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SourceError, match="cut.mp4 cannot be opened as a video"):
        open_source(str(cut))
    mkv = write_media(tmp_path / "whole.mkv", layout="stereo", rate=44100).read_bytes()
    partial = tmp_path / "partial.mkv"  # a stream format plays up to the cut, then ends
    partial.write_bytes(mkv[: len(mkv) // 2])
    with open_source(str(partial), realtime=False) as source:
        frames = sum(isinstance(p, FramePacket) for p in source)
    assert 3 <= frames < 20
    sound_only = write_media(tmp_path / "sound.mp4", video=False, layout="stereo", rate=44100)
    with pytest.raises(SourceError, match="sound.mp4 has no video track"):
        open_source(str(sound_only))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.mkv"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    for bad in (empty, noise):
        with pytest.raises(SourceError, match=f"{bad.name} cannot be opened as a video"):
            open_source(str(bad))
    text = tmp_path / "sound.wav"
    text.write_text("not audio at all")
    with pytest.raises(SourceError, match="sound.wav is not a video file"):
        open_source(str(text))
