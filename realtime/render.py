"""One processed frame drawn for people: heatmap overlay, peak and box, faded when nothing sounds.

Shared by the annotated-mp4 sink and the live window (numpy and OpenCV only, no torch, no Qt).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fnac.overlay import blend, draw_box, draw_marker
from realtime.messages import LiveResult
from realtime.results import upsample_heat


@dataclass(frozen=True)
class Style:
    colormap: str = "jet"  # fnac.overlay.COLORMAPS
    opacity: float = 0.5  # of the heatmap at full confidence
    faded: float = 0.15  # fraction of ``opacity`` left when the confidence is zero
    heat: bool = True
    box: bool = True  # drawn only when the frame counts as sounding
    peak: bool = True


def overlay_opacity(confidence: float, style: Style) -> float:
    """The heatmap's opacity: full at confidence 1, a faint ``faded`` trace at 0."""
    weight = style.faded + (1 - style.faded) * float(np.clip(confidence, 0.0, 1.0))
    return style.opacity * weight


def annotate(rgb: np.ndarray, result: LiveResult, style: Style) -> np.ndarray:
    """(H, W, 3) uint8 RGB frame + its result (raw map, peak, box, confidence, sounding) -> the
    annotated (H, W, 3) uint8 RGB frame."""
    out = np.ascontiguousarray(rgb)
    if style.heat:
        heat = upsample_heat(result.raw_map, out.shape[:2])
        out = blend(out, heat, overlay_opacity(result.confidence, style), style.colormap)
    if style.box and result.sounding:
        out = draw_box(out, tuple(result.box))
    if style.peak and result.sounding:
        out = draw_marker(out, tuple(result.peak))
    return out
