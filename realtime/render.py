"""One processed frame drawn for people: heatmap overlay, peak and box, faded when nothing sounds,
with a colour legend and, where the source knows it, the sounding object's true outline.

Shared by the annotated-mp4 sink and the live window (numpy and OpenCV only, no torch, no Qt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from fnac.localization import upsample_heat
from fnac.metrics import point_in_box
from fnac.overlay import (
    CLEAR_BELOW,
    DEFAULT_COLORMAP,
    OPACITY,
    blend,
    colormap_table,
    draw_box,
    draw_marker,
)
from realtime.scoring import sounding_object
from realtime.sources import quiet_opencv

TRUTH_COLOUR = (60, 255, 120)  # RGB: the true outline, dashed, apart from the white prediction
HIT_COLOUR, MISS_COLOUR = (60, 255, 120), (255, 70, 70)
DASH_PX = 9  # length of a dash and of a gap of the true outline


@dataclass(frozen=True)
class Style:
    colormap: str = DEFAULT_COLORMAP  # fnac.overlay.COLORMAPS
    opacity: float = OPACITY  # of the hottest pixel at full confidence
    faded: float = 0.15  # fraction of ``opacity`` left when the confidence is zero
    clear_below: float | None = CLEAR_BELOW  # heat left clear; None: one opacity everywhere
    heat: bool = True
    box: bool = True  # drawn only when the frame counts as sounding
    peak: bool = True
    legend: bool = True  # the colour scale, in the top-right corner
    truth: bool = True  # the sounding object's true outline and hit / miss, where known


class Drawable(Protocol):
    """What drawing a result reads: a processed frame's ``LiveResult``, or ``fnac localize``'s
    ``realtime.still.StillResult``."""

    @property
    def drawn_map(self) -> np.ndarray: ...

    confidence: float
    sounding: bool
    peak: tuple[int, int]
    box: tuple[int, int, int, int]
    truth: list[dict[str, Any]] | None


def overlay_opacity(confidence: float, style: Style) -> float:
    """The heatmap's opacity: full at confidence 1, a faint ``faded`` trace at 0."""
    weight = style.faded + (1 - style.faded) * float(np.clip(confidence, 0.0, 1.0))
    return style.opacity * weight


def annotate(rgb: np.ndarray, result: Drawable, style: Style) -> np.ndarray:
    """(H, W, 3) uint8 RGB frame + its result (raw map, peak, box, confidence, sounding, truth)
    -> the annotated (H, W, 3) uint8 RGB frame."""
    out = np.ascontiguousarray(rgb)
    if style.heat:
        heat = upsample_heat(result.drawn_map, out.shape[:2])
        opacity = overlay_opacity(result.confidence, style)
        out = blend(out, heat, opacity, style.colormap, style.clear_below)
    if style.truth:
        out = draw_truth(out, result)
    if style.box and result.sounding:
        out = draw_box(out, tuple(result.box))
    if style.peak and result.sounding:
        out = draw_marker(out, tuple(result.peak))
    if style.heat and style.legend:
        out = draw_legend(out, style.colormap)
    return out


def _scale(height: int) -> float:
    """Text and line sizes for a frame ``height`` pixels tall (1 at 480)."""
    return max(0.5, height / 480)


def draw_legend(rgb: np.ndarray, colormap: str) -> np.ndarray:
    """The colour scale as a bar in the top-right corner, "loud" at its hot end and "quiet" at
    its cold one: how much of the heard sound the model places there, relative to the frame."""
    cv2 = quiet_opencv()
    out = rgb.copy()
    h, w = out.shape[:2]
    k = _scale(h)
    bar_w, bar_h, margin = round(10 * k), round(0.3 * h), round(8 * k)
    if bar_h < 8 or w < bar_w + 2 * margin + 40:
        return out  # too small a frame for a legend to be read
    x1, y0 = w - margin, margin
    x0, y1 = x1 - bar_w, y0 + bar_h
    levels = np.linspace(255, 0, bar_h).round().astype(np.int64)
    out[y0:y1, x0:x1] = colormap_table(colormap)[levels][:, None, :]
    cv2.rectangle(out, (x0 - 1, y0 - 1), (x1, y1), (255, 255, 255), 1)
    for text, y in (("loud", y0 + round(10 * k)), ("quiet", y1)):
        _label(out, text, (x0 - round(4 * k), y), k, align_right=True)
    return out


def _label(
    rgb: np.ndarray,
    text: str,
    at: tuple[int, int],
    k: float,
    colour=(255, 255, 255),
    align_right: bool = False,
    size: float = 0.45,
) -> None:
    """Text with a dark outline (readable on any background), drawn in place."""
    cv2 = quiet_opencv()
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, size * k
    thick = max(1, round(k))
    x, y = at
    if align_right:
        x -= cv2.getTextSize(text, font, scale, thick)[0][0]
    cv2.putText(rgb, text, (x, y), font, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(rgb, text, (x, y), font, scale, colour, thick, cv2.LINE_AA)


def dashed_polygon(
    rgb: np.ndarray, points: np.ndarray, colour, thickness: int, dash: int = DASH_PX
) -> None:
    """Draw the closed polygon ``points`` (N, 2) as dashes of ``dash`` pixels, in place."""
    cv2 = quiet_opencv()
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) < 2:
        return
    ring = np.vstack([pts, pts[:1]])
    steps = np.linalg.norm(np.diff(ring, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    total = along[-1]
    if total <= 0:
        return
    for start in np.arange(0.0, total, 2 * dash):
        ts = np.linspace(start, min(start + dash, total), 4)
        xy = np.stack([np.interp(ts, along, ring[:, 0]), np.interp(ts, along, ring[:, 1])], 1)
        cv2.polylines(rgb, [np.round(xy).astype(np.int32)], False, colour, thickness, cv2.LINE_AA)


def draw_truth(rgb: np.ndarray, result: Drawable) -> np.ndarray:
    """The sounding object's true outline (dashed; its box where the source gives no outline) and
    whether the predicted peak fell on its box: "hit" or "miss", the pointing test of the
    scores. Frames without ground truth, or in which nothing sounds, are left as they are."""
    target = sounding_object(result.truth)
    if target is None:
        return rgb
    out = rgb.copy()
    k = _scale(out.shape[0])
    x0, y0, x1, y1 = (float(v) for v in target["box"])
    outline = target.get("outline")
    if outline is None or len(outline) < 3:
        outline = [(x0, y0), (x1 - 1, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)]
    dashed_polygon(out, np.asarray(outline), TRUTH_COLOUR, max(2, round(2 * k)))
    hit = point_in_box(result.peak, target["box"])
    text_y = round(y0 - 6 * k) if y0 > 20 * k else round(y1 + 16 * k)
    _label(
        out, "hit" if hit else "miss", (round(x0), text_y), k, HIT_COLOUR if hit else MISS_COLOUR
    )
    return out
