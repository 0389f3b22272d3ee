"""The annotated video of a run: the mp4 writer's clocks, and a camera's frames at their times."""

from __future__ import annotations

import av
import numpy as np
from conftest import live_result

from realtime.recording import Recorder
from train.media import Mp4Writer


def decoded_times(path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(container.streams.video[0])]


def test_a_variable_rate_video_keeps_each_frame_at_its_own_time(tmp_path):
    path = tmp_path / "vfr.mp4"
    writer = Mp4Writer(path, 64, 48, fps=None)
    times = [i / 60 for i in range(12)] + [0.5, 0.51, 1.0]  # a 60 fps camera, then irregular
    for t in times:
        writer.frame(np.full((48, 64, 3), 100, np.uint8), t=t)
    writer.close()
    assert np.allclose(decoded_times(path), times, atol=0.0011)


def test_a_fixed_rate_video_with_its_sound(tmp_path):
    path = tmp_path / "cfr.mp4"
    writer = Mp4Writer(path, 65, 49, fps=15, sample_rate=8000)  # odd sizes: even in the file
    for _ in range(15):
        writer.frame(np.zeros((49, 65, 3), np.uint8))
    writer.sound(np.sin(np.linspace(0, 400, 8000)).astype(np.float32))
    writer.close()
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert (video.width, video.height, float(video.average_rate)) == (64, 48, 15.0)
        assert container.streams.audio[0].rate == 8000
    assert len(decoded_times(path)) == 15


def test_a_source_that_cannot_be_replayed_is_written_at_its_capture_times(tmp_path):
    path = tmp_path / "camera.mp4"
    recorder = Recorder(path, replay=None)
    image = np.zeros((48, 64, 3), np.uint8)
    for i, capture in enumerate((10.0, 10.1, 10.3, 10.35)):
        pts = 0.05 if i == 3 else i / 10  # a camera that restarted: its pts jump back
        recorder.add(live_result(image=image, pts=pts, stamps={"capture": capture}))
    recorder.close()
    assert np.allclose(decoded_times(path), [0.0, 0.1, 0.3, 0.35], atol=0.0011)
