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


def sounding_box(truth: list[dict[str, Any]] | None) -> list[float] | None:
    """The box of the object that sounds in this frame, None in a silent gap or without truth."""
    for obj in truth or []:
        if obj.get("sounding"):
            return obj["box"]
    return None


@dataclass
class RunScore:
    hits: int = 0
    scored: int = 0  # frames with a sounding object
    ious: list[float] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    frames: int = 0
    dropped: int = 0

    def add(self, meta: dict[str, Any], latency_s: float) -> None:
        self.frames += 1
        self.dropped = int(meta.get("dropped", self.dropped))
        self.latencies_s.append(latency_s)
        box = sounding_box(meta.get("truth"))
        if box is None:
            return
        self.scored += 1
        self.hits += point_in_box(meta["peak"], box)
        self.ious.append(box_iou(meta["box"], box))

    def summary(self, seconds: float) -> dict[str, Any]:
        lat = np.asarray(self.latencies_s) * 1000 if self.latencies_s else np.zeros(1)
        return {
            "seconds": round(seconds, 2),
            "frames": self.frames,
            "fps": round(self.frames / seconds, 2) if seconds > 0 else 0.0,
            "dropped": self.dropped,
            "latency_ms": {f"p{q}": round(float(np.percentile(lat, q)), 1) for q in (50, 95, 99)},
            "scored_frames": self.scored,
            "pointing_accuracy": round(self.hits / self.scored, 4) if self.scored else None,
            "mean_box_iou": round(float(np.mean(self.ious)), 4) if self.ious else None,
        }
