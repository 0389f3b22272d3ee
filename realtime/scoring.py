"""How well a live run localizes, from the ground truth the synthetic source carries per frame.

Only frames in which something sounds count, in two views. A frame's map comes from the last 3 s
of sound: just after the sounding object changes, that window still holds mostly the previous
object's sound, and the map follows the new object only as the window fills with it. So
``pointing_accuracy`` counts the frames whose audio window heard the sounding object alone (it had
been sounding, without a gap, since before the window began): the fraction of them whose peak
lies in its box; ``mean_box_iou``: the mean IoU of their predicted boxes with it. The same over
every frame in which an object sounds, those just after a change included, are
``pointing_accuracy_all`` and ``mean_box_iou_all``. Speed figures (fps, latency percentiles) come
with them, so one summary says both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fnac.metrics import box_iou, point_in_box
from realtime.messages import LiveResult
from realtime.stats import percentiles_ms


def sounding_object(truth: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The ground truth of the object that sounds in this frame (class, box, and its outline
    where the source draws one), None in a silent gap or without truth."""
    for obj in truth or []:
        if obj.get("sounding"):
            return obj
    return None


def sounding_box(truth: list[dict[str, Any]] | None) -> list[float] | None:
    """The box of the object that sounds in this frame, None in a silent gap or without truth."""
    target = sounding_object(truth)
    return None if target is None else target["box"]


@dataclass
class Pointing:
    """Pointing and box IoU of a run's frames, over every sounding frame and over those whose
    audio window heard the sounding object alone (see the module). Frames must come in order."""

    hits: int = 0
    scored: int = 0  # frames with a sounding object
    ious: list[float] = field(default_factory=list)
    heard_hits: int = 0
    heard: int = 0  # ... whose audio window heard it alone
    heard_ious: list[float] = field(default_factory=list)
    current: int | None = None  # the object sounding in the newest frame
    since: float = math.inf  # the time from which it has been sounding without a gap

    def add(self, truth, peak, box, pts: float, window_start: float | None) -> bool | None:
        """Score one frame (``window_start``: where its audio window began, on the frames'
        clock); whether its peak hit the sounding object, None when nothing sounds in it."""
        want = sounding_object(truth)
        # which object: its place in the frame's list (the source lists them in a fixed order)
        key = None if want is None else next(i for i, o in enumerate(truth) if o is want)
        if key != self.current:
            self.current, self.since = key, pts
        if want is None:
            return None
        hit = point_in_box(peak, want["box"])
        iou = box_iou(box, want["box"])
        self.scored += 1
        self.hits += hit
        self.ious.append(iou)
        if window_start is not None and self.since <= window_start:
            self.heard += 1
            self.heard_hits += hit
            self.heard_ious.append(iou)
        return hit

    def figures(self) -> dict[str, Any]:
        def share(n: int, of: int):
            return round(n / of, 4) if of else None

        def mean(values: list[float]):
            return round(float(np.mean(values)), 4) if values else None

        return {
            "scored_frames": self.heard,
            "pointing_accuracy": share(self.heard_hits, self.heard),
            "mean_box_iou": mean(self.heard_ious),
            "scored_frames_all": self.scored,
            "pointing_accuracy_all": share(self.hits, self.scored),
            "mean_box_iou_all": mean(self.ious),
        }


@dataclass
class RunScore:
    latencies_s: list[float] = field(default_factory=list)
    frames: int = 0
    dropped: int = 0
    late: int = 0  # processed before all their audio had come
    pointing: Pointing = field(default_factory=Pointing)

    def add(self, result: LiveResult, latency_s: float) -> None:
        self.frames += 1
        self.dropped = result.dropped
        self.late = result.late
        self.latencies_s.append(latency_s)
        start = result.audio.start if result.audio is not None else None
        self.pointing.add(result.truth, result.peak, result.box, result.pts, start)

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "seconds": round(seconds, 2),
            "frames": self.frames,
            "fps": round(self.frames / seconds, 2) if seconds > 0 else 0.0,
            "dropped": self.dropped,
            "late": self.late,
            "latency_ms": percentiles_ms(self.latencies_s),
            **self.pointing.figures(),
        }
