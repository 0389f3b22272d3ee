"""The annotated video of a run (``fnac run --out``, the headless demo's ``demo.mp4``).

A live run processes the frames it can and drops the others, so a video of the processed frames
alone is shorter than the source, and silent. Where the source can be read again (a video file,
the synthetic world: both give the same frames and sound every time) the video is written after
the run: every frame of the source at its own rate, each drawn with the newest result at or
before it, and the source's sound muxed in. Of a camera, a URL or a capture peer only the
processed frames exist: they are written as they come, each at its capture time (a variable
frame rate, so the video lasts as long as the run), without sound.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from realtime.messages import AudioPacket, FramePacket, LiveResult
from realtime.render import Drawable, Style, annotate
from realtime.sources import Source, quiet_opencv, scaled_truth

log = logging.getLogger(__name__)
NO_IMAGE = np.zeros((0, 0, 3), np.uint8)
DEFAULT_FPS = 30.0  # a replayed source whose rate is not known
NO_SOUND_AFTER = 60  # frames replayed before any sound: the video is written without it


def caption(rgb: np.ndarray, result: Drawable) -> np.ndarray:
    """The sounding confidence written in the top-left corner, in place."""
    cv2 = quiet_opencv()
    cv2.putText(
        rgb,
        f"confidence {result.confidence:.2f}",
        (8, 20),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5,
        (255, 255, 255),
        1,
        cv2.LINE_AA,
    )
    return rgb


def drawn(rgb: np.ndarray, result: Drawable | None, style: Style) -> np.ndarray:
    """One frame of the video: ``rgb`` with ``result``'s overlay (as it is before any result)."""
    if result is None:
        return rgb
    return caption(annotate(rgb, result, style), result)


class Recorder:
    """Collects a run's results and writes its annotated mp4 at ``path``.

    ``replay``: a function that opens the source again, unpaced (None when it cannot be read
    again: the processed frames are then written as they come). ``add`` takes each result;
    ``close`` writes (or finishes) the video and says how many frames it holds."""

    def __init__(
        self,
        path: str | Path,
        replay: Callable[[], Source] | None,
        fps: float | None = None,
        style: Style | None = None,
    ) -> None:
        self.path = Path(path)
        self.replay = replay
        self.fps = fps or DEFAULT_FPS  # the source's frame rate, for a replayed video
        self.style = style or Style()
        self.kept: list[LiveResult] = []  # replay: each result without its image
        self.sizes: list[tuple[int, int]] = []  # ... and the size of the image it localized
        self.writer = None  # the video being written (no replay: as the frames come)
        self.start: float | None = None  # no replay: the first frame's capture time
        self.frames = 0
        # replay, while writing: the processed frames' indices, the sound's rate, the sound that
        # came before the first frame and the frames that came before the first sound
        self.indices: list[int] = []
        self.rate: int | None = None
        self.pending: list[np.ndarray] = []
        self.waiting: list[FramePacket] = []

    def add(self, result: LiveResult) -> None:
        if self.replay is not None:
            self.kept.append(replace(result, image=NO_IMAGE))
            self.sizes.append(result.image.shape[:2])
            return
        from train.media import Mp4Writer

        rgb = np.ascontiguousarray(result.image[:, :, ::-1])
        if self.writer is None:
            h, w = rgb.shape[:2]
            self.writer = Mp4Writer(self.path, w, h, fps=None)
            self.start = result.capture_time  # the run's clock: a restarted source's pts jump
        self.writer.frame(drawn(rgb, result, self.style), t=result.capture_time - self.start)
        self.frames += 1

    def close(self) -> None:
        if self.replay is None:
            if self.writer is not None:
                self.writer.close()
            return
        if not self.kept:
            return
        self._write_replayed()

    def _write_replayed(self) -> None:
        """Read the source again up to the last processed frame and write every frame of it,
        with the sound up to that frame's end."""
        order = sorted(range(len(self.kept)), key=lambda i: self.kept[i].frame)
        self.kept = [self.kept[i] for i in order]
        self.sizes = [self.sizes[i] for i in order]
        self.indices = [r.frame for r in self.kept]
        try:
            with self.replay() as source:
                for packet in source:
                    if not self._take(packet):
                        break
            self._flush_waiting()  # a source without sound
        finally:
            if self.writer is not None:
                self.writer.close()

    def _take(self, packet: FramePacket | AudioPacket) -> bool:
        """Write one replayed packet; False once past the last processed frame."""
        if isinstance(packet, AudioPacket):
            self.rate = self.rate or int(packet.rate)
            if int(packet.rate) == self.rate and (self.writer is None or self.writer.audio):
                self.pending.append(np.asarray(packet.samples, np.float32))
            self._flush_waiting()
            return True
        if packet.index > self.indices[-1]:
            return False  # the sound came up to this frame: the video ends where the run did
        self.waiting.append(packet)
        if self.rate is not None or len(self.waiting) > NO_SOUND_AFTER:
            self._flush_waiting()
        return True

    def _flush_waiting(self) -> None:
        """Write the frames waiting (the sound's rate is known, or none came in time) and the
        sound so far."""
        for packet in self.waiting:
            self._frame(packet)
        self.waiting = []
        if self.writer is not None and self.writer.audio is not None:
            for samples in self.pending:
                self.writer.sound(samples)
            self.pending = []

    def _frame(self, packet: FramePacket) -> None:
        from train.media import Mp4Writer

        at = bisect.bisect_right(self.indices, packet.index) - 1
        result = self.kept[at] if at >= 0 else None
        bgr = packet.image
        if result is not None:
            h, w = self.sizes[at]
            truth = packet.truth  # the truth of this very frame, not the result's
            if bgr.shape[:2] != (h, w):  # the run shrank a very large frame: as it did
                cv2 = quiet_opencv()
                factors = (w / bgr.shape[1], h / bgr.shape[0])
                bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
                truth = truth and [scaled_truth(obj, factors) for obj in truth]
            result = replace(result, truth=truth)
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        if self.writer is None:
            self.writer = Mp4Writer(self.path, rgb.shape[1], rgb.shape[0], self.fps, self.rate)
        self.writer.frame(drawn(rgb, result, self.style))
        self.frames += 1


def replayable(source: str | None) -> bool:
    """Whether ``source`` gives the same frames and sound when opened again: a video file or
    the synthetic world (not a camera, a URL, a microphone or a capture peer)."""
    if source is None or "+" in source:
        return False
    return source == "synthetic" or Path(source).is_file()
