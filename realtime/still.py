"""One picture and one sound, localized and drawn as the live app draws a processed frame
(``fnac localize``).

The picture is an image file or a frame of a video (its middle, or the one shown at a given time);
the sound is any file the live sources read (WAV, FLAC, OGG / Opus, MP3, M4A) or a video's own
track. The map is the published model's for the published clip rule (the sound's centred 3 s; a
video's own track: the 3 s centred on the chosen frame); peak, box and the sounding confidence
are the live app's (``realtime.results.analyze``, with the checkpoint's calibration), and the
overlay is the one ``fnac run --out`` draws (``realtime.recording.drawn``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.media import VIDEO_SUFFIXES, centred_window, load_audio, video_frame


@dataclass(frozen=True)
class StillResult:
    """What the live app makes of one frame, for one picture and one sound."""

    raw_map: np.ndarray  # (h, w) similarity / tau
    peak: tuple[int, int]  # x, y in picture pixels
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in picture pixels
    confidence: float  # 0..1
    sounding: bool
    score: float  # top-quarter mean of the raw map, cosine units
    level_db: float  # RMS of the sound heard, dBFS
    truth: None = None  # a still picture carries no ground truth

    @property
    def drawn_map(self) -> np.ndarray:
        return self.raw_map

    def to_json(self) -> dict[str, Any]:
        return {
            "map": np.round(self.raw_map.astype(np.float64), 5).tolist(),
            "peak": list(self.peak),
            "box": list(self.box),
            "confidence": round(self.confidence, 4),
            "sounding": self.sounding,
            "score": round(self.score, 4),
            "level_db": round(self.level_db, 2),
        }


@dataclass(frozen=True)
class Inputs:
    """The picture and the sound as read, and where they came from."""

    picture: np.ndarray  # (H, W, 3) uint8 RGB
    frame_time: float | None  # the frame's time in its video (None: an image file)
    sound: np.ndarray  # (C, N) float32: the whole track
    rate: int
    own_track: bool = False  # the sound is the picture's video's: heard around its frame


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def read_inputs(picture: str | Path, sound: str | Path | None, at: float | None = None) -> Inputs:
    """Read and check both files (cheap: call it before loading a model). ``sound`` None: the
    picture's own track, which it must be a video to have. ``at``: the video frame's time."""
    from fnac.image import load_image

    if is_video(picture):
        rgb, frame_time = video_frame(picture, at)
    elif at is not None:
        raise ValueError(f"--at picks a frame of a video; {picture} is an image: leave --at out")
    else:
        rgb, frame_time = np.asarray(load_image(picture)), None
    if sound is None:
        if frame_time is None:
            raise ValueError(f"{picture} is an image, which has no sound: give --audio FILE")
        sound = picture
    samples, rate = load_audio(sound)
    own = frame_time is not None and Path(sound).resolve() == Path(picture).resolve()
    return Inputs(np.ascontiguousarray(rgb), frame_time, samples, rate, own)


def localize_still(model, inputs: Inputs, settings=None) -> StillResult:
    """The model's map for ``inputs`` and the live app's reading of it (``settings``: a
    ``ConfidenceSettings``; default: the checkpoint's calibration, else the live defaults)."""
    from fnac.audio import center_clip
    from fnac.predict import configs_of, localize_arrays
    from realtime.results import ConfidenceSettings, analyze

    if settings is None:
        calibration = getattr(getattr(model, "info", None), "calibration", None) or {}
        settings = ConfidenceSettings.for_checkpoint(calibration)
    window_s = configs_of(model)[0].window_s
    sound = inputs.sound
    if inputs.own_track:  # the video's own track: the window around its frame, as heard live
        sound = centred_window(sound, inputs.rate, inputs.frame_time, window_s)
    raw, _ = localize_arrays(model, inputs.picture, sound, inputs.rate)
    heard = center_clip(sound, inputs.rate, window_s).numpy()  # what the model heard, mono
    found = analyze(
        raw, inputs.picture.shape[:2], heard, inputs.rate, float(model.config.tau), settings
    )
    return StillResult(raw_map=raw.astype(np.float32), **found.fields())
