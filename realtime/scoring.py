"""How well a live run localizes, from the ground truth the synthetic source carries per frame.

Only frames in which something sounds count. ``pointing_accuracy``: the fraction of them whose
peak lies in the sounding object's box; ``mean_box_iou``: the mean IoU of the predicted box with
that box. Speed figures (fps, latency percentiles) come with them, so one summary says both.
"""

from __future__ import annotations

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
class RunScore:
    hits: int = 0
    scored: int = 0  # frames with a sounding object
    ious: list[float] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    frames: int = 0
    dropped: int = 0
    late: int = 0  # processed before all their audio had come

    def add(self, result: LiveResult, latency_s: float) -> None:
        self.frames += 1
        self.dropped = result.dropped
        self.late = result.late
        self.latencies_s.append(latency_s)
        self.score(result.truth, result.peak, result.box)

    def score(self, truth: list[dict[str, Any]] | None, peak, box) -> None:
        """Count one frame's localization against its ground truth (silent frames do not count)."""
        want = sounding_box(truth)
        if want is None:
            return
        self.scored += 1
        self.hits += point_in_box(peak, want)
        self.ious.append(box_iou(box, want))

    def summary(self, seconds: float) -> dict[str, Any]:
        return {
            "seconds": round(seconds, 2),
            "frames": self.frames,
            "fps": round(self.frames / seconds, 2) if seconds > 0 else 0.0,
            "dropped": self.dropped,
            "late": self.late,
            "latency_ms": percentiles_ms(self.latencies_s),
            "scored_frames": self.scored,
            "pointing_accuracy": round(self.hits / self.scored, 4) if self.scored else None,
            "mean_box_iou": round(float(np.mean(self.ious)), 4) if self.ious else None,
        }
