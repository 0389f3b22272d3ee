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
    from train.synth_world import World, WorldConfig

    world = World(WorldConfig(classes=8, sample_rate=16000))
    script = world.stream(np.random.default_rng(0), 2.0, fps=10, size=(160, 120))
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_stream(path, script, world.class_names)
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
