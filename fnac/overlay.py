"""Heatmap colouring and blending for display, numpy only (shared by the CLI, sinks and GUI)."""

from __future__ import annotations

import numpy as np

# Anchor colours (RGB, 0..1) of each colormap, interpolated linearly into a 256-entry table.
_ANCHORS = {
    "jet": [(0, 0, 0.5), (0, 0, 1), (0, 1, 1), (1, 1, 0), (1, 0, 0), (0.5, 0, 0)],
    "inferno": [
        (0, 0, 0.02),
        (0.34, 0.06, 0.43),
        (0.73, 0.21, 0.33),
        (0.98, 0.55, 0.04),
        (0.99, 1, 0.64),
    ],
    "gray": [(0, 0, 0), (1, 1, 1)],
}
COLORMAPS = tuple(_ANCHORS)


def colormap_table(name: str = "jet") -> np.ndarray:
    """A (256, 3) uint8 RGB lookup table."""
    if name not in _ANCHORS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {COLORMAPS}")
    anchors = np.asarray(_ANCHORS[name], dtype=np.float64)
    pos = np.linspace(0, 1, len(anchors))
    x = np.linspace(0, 1, 256)
    table = np.stack([np.interp(x, pos, anchors[:, c]) for c in range(3)], axis=1)
    return np.round(table * 255).astype(np.uint8)


def colorize(heat: np.ndarray, name: str = "jet") -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 RGB."""
    idx = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)) * 255 + 0.5, 0, 255)
    return colormap_table(name)[idx.astype(np.uint8)]


def blend(rgb: np.ndarray, heat: np.ndarray, opacity: float = 0.5, name: str = "jet") -> np.ndarray:
    """Overlay a [0, 1] heatmap of the frame's size on an (H, W, 3) uint8 frame."""
    if rgb.shape[:2] != heat.shape:
        raise ValueError(f"heatmap {heat.shape} does not match the frame {rgb.shape[:2]}")
    opacity = float(np.clip(opacity, 0.0, 1.0))
    mixed = (1 - opacity) * rgb.astype(np.float32) + opacity * colorize(heat, name)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def draw_box(
    rgb: np.ndarray, box: tuple[int, int, int, int], color=(255, 255, 255), thickness: int = 2
) -> np.ndarray:
    """Draw the outline of [x0, y0, x1, y1] (pixels, x1/y1 exclusive) on a copy of the frame."""
    out = rgb.copy()
    h, w = out.shape[:2]
    x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
    x1, y1 = min(int(box[2]), w), min(int(box[3]), h)
    if x1 <= x0 or y1 <= y0:
        return out
    t = max(1, thickness)
    out[y0 : min(y0 + t, y1), x0:x1] = color
    out[max(y1 - t, y0) : y1, x0:x1] = color
    out[y0:y1, x0 : min(x0 + t, x1)] = color
    out[y0:y1, max(x1 - t, x0) : x1] = color
    return out


def draw_marker(
    rgb: np.ndarray,
    point: tuple[int, int],
    color=(255, 255, 255),
    size: int = 8,
    thickness: int = 2,
) -> np.ndarray:
    """Draw a + centred on ``point`` (x, y in pixels) on a copy of the frame."""
    out = rgb.copy()
    h, w = out.shape[:2]
    x, y = int(point[0]), int(point[1])
    half = max(1, thickness // 2)
    out[max(y - half, 0) : min(y + half + 1, h), max(x - size, 0) : min(x + size + 1, w)] = color
    out[max(y - size, 0) : min(y + size + 1, h), max(x - half, 0) : min(x + half + 1, w)] = color
    return out
