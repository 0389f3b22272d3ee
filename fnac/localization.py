"""From a raw h x w similarity map to where the sound is drawn: the heat at a frame's size, the
hot region's box and its centre (the peak). numpy and OpenCV, no torch: the live app, the window
and ``fnac eval``'s measure of the box threshold all use these."""

from __future__ import annotations

import functools

import numpy as np


def _cv2():
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return cv2


# Peak and box are found on the heat drawn at most this many pixels on its long side and scaled
# to the frame: within one such pixel of the full-size answer (2 frame pixels at 640x480), for a
# quarter of the work there.
ANALYSIS_SIDE = 320
PEAK_LEVEL = 0.6  # the live app's defaults (realtime.results.ConfidenceSettings)
BOX_LEVEL = 0.5
FLAT = 1e-5  # a map whose upsampled range is below this fraction of its values has no hot spot


def hot_region(
    heat: np.ndarray, hottest: tuple[int, int], level: float
) -> tuple[tuple[int, int, int, int], tuple[float, float]]:
    """Bounding box (x0, y0, x1, y1) and centroid (x, y) of the connected region of
    ``heat >= level`` that holds the ``hottest`` pixel."""
    cv2 = _cv2()
    mask = (heat >= level).astype(np.uint8)
    _, labels, stats, centres = cv2.connectedComponentsWithStats(mask, connectivity=8)
    region = labels[hottest[1], hottest[0]]
    x0, y0, w, h = stats[region, :4]
    cx, cy = centres[region]
    return (int(x0), int(y0), int(x0 + w), int(y0 + h)), (float(cx), float(cy))


@functools.lru_cache(maxsize=32)
def cubic_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in): OpenCV's bicubic resize of n_in samples to n_out, as a matrix. The resize is
    linear and works one axis at a time, so its columns are the resized unit impulses."""
    cv2 = _cv2()
    eye = np.eye(n_in, dtype=np.float32)
    return cv2.resize(eye, (n_in, n_out), interpolation=cv2.INTER_CUBIC).reshape(n_out, n_in)


def upsample_heat(raw_map: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """Raw map (h, w) -> (H, W) heat in [0, 1] at the frame's (height, width): bicubic, then
    min-max normalised, as the evaluation protocol draws it. OpenCV's resize as two small matrix
    products (the same numbers, a fraction of the time for a 7x7 map)."""
    height, width = frame_size
    raw = np.asarray(raw_map, np.float32)
    up = cubic_weights(raw.shape[0], height) @ raw @ cubic_weights(raw.shape[1], width).T
    lo, hi = float(up.min()), float(up.max())
    if hi - lo <= FLAT * max(abs(lo), abs(hi)):  # a flat map, up to the products' rounding
        return np.zeros_like(up)
    up -= lo  # in place: fresh arrays of a frame's size cost more than the arithmetic
    up *= np.float32(1.0 / (hi - lo))
    return up


def analysis_size(frame_size: tuple[int, int]) -> tuple[int, int]:
    """The (height, width) at which peak and box are found for a frame of ``frame_size``."""
    height, width = frame_size
    scale = min(1.0, ANALYSIS_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def locate(
    raw: np.ndarray, frame_size: tuple[int, int], box_level: float, peak_level: float
) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """Peak (x, y) and box (x0, y0, x1, y1) in frame pixels of a raw map: the box around the
    hottest region of heat >= ``box_level``, the peak at the centre of the hottest region of
    heat >= ``peak_level`` (two levels: a tight box need not move the peak).

    The peak is the centre of the hot region, not the hottest pixel: a 4x4 or 7x7 map has most
    of its cells on the border, and bicubic upsampling carries a border cell's maximum out to the
    frame's edge. On the demo's synthetic stream the hottest pixel lies in the sounding object's
    box in 0.38 of the frames, the hot region's centre in 0.72."""
    height, width = frame_size
    grid = analysis_size(frame_size)
    heat = upsample_heat(raw, grid)
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    (x0, y0, x1, y1), _ = hot_region(heat, (int(x), int(y)), box_level)
    if peak_level >= box_level:  # the peak's region lies inside the box's: labelled in it only
        _, (cx, cy) = hot_region(heat[y0:y1, x0:x1], (int(x) - x0, int(y) - y0), peak_level)
        cx, cy = x0 + cx, y0 + cy
    else:  # a box tighter than the peak's region: that region is found on the whole map
        _, (cx, cy) = hot_region(heat, (int(x), int(y)), peak_level)
    sx, sy = width / grid[1], height / grid[0]  # frame pixels per analysis pixel
    peak = (
        min(width - 1, max(0, round((cx + 0.5) * sx - 0.5))),
        min(height - 1, max(0, round((cy + 0.5) * sy - 0.5))),
    )
    box = (
        round(x0 * sx),
        round(y0 * sy),
        min(width, round(x1 * sx)),
        min(height, round(y1 * sy)),
    )
    return peak, box


BOX_LEVELS = tuple(round(0.3 + 0.05 * i, 2) for i in range(13))  # 0.30, 0.35, ..., 0.90


def live_figures(
    raw_maps: np.ndarray,
    boxes: list[list[tuple[float, float, float, float]]],
    size: tuple[int, int],
    peak_level: float = PEAK_LEVEL,
) -> dict:
    """How the live app's peak and box score against ground-truth boxes, for every box level of
    ``BOX_LEVELS``: ``pointing`` (the share of samples whose peak lies in one of their boxes) and
    ``box_iou`` (the mean of each predicted box's best IoU with them), and the level whose boxes
    fit best. ``raw_maps`` (N, h, w), ``boxes`` N lists of pixel boxes at ``size`` (height,
    width)."""
    from fnac.metrics import box_iou, point_in_box

    by_level = {}
    for level in BOX_LEVELS:
        hits, ious = 0, []
        for raw, truth in zip(raw_maps, boxes, strict=True):
            peak, box = locate(raw, size, level, peak_level)
            hits += any(point_in_box(peak, want) for want in truth)
            ious.append(max(box_iou(box, want) for want in truth))
        by_level[f"{level:.2f}"] = {
            "pointing": round(hits / len(boxes), 4),
            "box_iou": round(float(np.mean(ious)), 4),
        }
    best = max(by_level, key=lambda k: by_level[k]["box_iou"])
    return {"peak_level": peak_level, "by_box_level": by_level, "best_box_level": float(best)}
