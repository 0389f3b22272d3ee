"""Heatmap colouring and blending for display, numpy only (shared by the CLI, sinks and GUI)."""

from __future__ import annotations

import numpy as np

# Anchor colours (RGB, 0..1) of each colormap, interpolated linearly into a 256-entry table. The
# perceptual ones (inferno, viridis, magma) are matplotlib's at 17 evenly spaced points, turbo is
# Google's; jet and gray are kept for figures that compare with older papers.
_ANCHORS = {
    "inferno": [
        (0.001, 0.0, 0.014),
        (0.042, 0.028, 0.141),
        (0.129, 0.047, 0.291),
        (0.238, 0.037, 0.396),
        (0.342, 0.062, 0.429),
        (0.441, 0.099, 0.432),
        (0.541, 0.135, 0.415),
        (0.64, 0.171, 0.381),
        (0.736, 0.216, 0.33),
        (0.822, 0.275, 0.266),
        (0.894, 0.353, 0.194),
        (0.947, 0.449, 0.115),
        (0.978, 0.558, 0.035),
        (0.988, 0.675, 0.065),
        (0.975, 0.798, 0.206),
        (0.948, 0.917, 0.411),
        (0.988, 0.998, 0.645),
    ],
    "viridis": [
        (0.267, 0.005, 0.329),
        (0.282, 0.095, 0.417),
        (0.279, 0.175, 0.483),
        (0.259, 0.252, 0.525),
        (0.23, 0.322, 0.546),
        (0.199, 0.388, 0.555),
        (0.173, 0.449, 0.558),
        (0.149, 0.508, 0.557),
        (0.128, 0.567, 0.551),
        (0.121, 0.626, 0.533),
        (0.158, 0.684, 0.502),
        (0.246, 0.739, 0.452),
        (0.369, 0.789, 0.383),
        (0.516, 0.831, 0.294),
        (0.678, 0.864, 0.19),
        (0.846, 0.887, 0.1),
        (0.993, 0.906, 0.144),
    ],
    "magma": [
        (0.001, 0.0, 0.014),
        (0.04, 0.031, 0.134),
        (0.113, 0.065, 0.277),
        (0.212, 0.062, 0.419),
        (0.317, 0.072, 0.485),
        (0.415, 0.11, 0.505),
        (0.513, 0.148, 0.508),
        (0.614, 0.182, 0.499),
        (0.716, 0.215, 0.475),
        (0.817, 0.256, 0.436),
        (0.904, 0.32, 0.388),
        (0.961, 0.418, 0.36),
        (0.987, 0.536, 0.382),
        (0.996, 0.654, 0.446),
        (0.997, 0.77, 0.535),
        (0.992, 0.884, 0.64),
        (0.987, 0.991, 0.75),
    ],
    "turbo": [
        (0.19, 0.072, 0.232),
        (0.251, 0.252, 0.634),
        (0.276, 0.421, 0.891),
        (0.259, 0.58, 0.999),
        (0.158, 0.736, 0.923),
        (0.093, 0.866, 0.762),
        (0.197, 0.949, 0.595),
        (0.428, 0.994, 0.386),
        (0.644, 0.99, 0.234),
        (0.805, 0.925, 0.205),
        (0.933, 0.812, 0.227),
        (0.993, 0.674, 0.203),
        (0.984, 0.493, 0.128),
        (0.921, 0.315, 0.055),
        (0.816, 0.185, 0.018),
        (0.664, 0.084, 0.004),
        (0.48, 0.016, 0.011),
    ],
    "jet": [(0, 0, 0.5), (0, 0, 1), (0, 1, 1), (1, 1, 0), (1, 0, 0), (0.5, 0, 0)],
    "gray": [(0, 0, 0), (1, 1, 1)],
}
COLORMAPS = tuple(_ANCHORS)
DEFAULT_COLORMAP = "inferno"  # perceptually uniform: equal steps of heat look like equal steps
# Heat below this share of the map's range is left clear (the frame shows through), and the
# overlay's opacity rises linearly from there to the hottest pixel.
CLEAR_BELOW = 0.4
OPACITY = 0.75  # of the hottest pixel of a drawn map at full confidence


def colormap_table(name: str = DEFAULT_COLORMAP) -> np.ndarray:
    """A (256, 3) uint8 RGB lookup table."""
    if name not in _ANCHORS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {COLORMAPS}")
    anchors = np.asarray(_ANCHORS[name], dtype=np.float64)
    pos = np.linspace(0, 1, len(anchors))
    x = np.linspace(0, 1, 256)
    table = np.stack([np.interp(x, pos, anchors[:, c]) for c in range(3)], axis=1)
    return np.round(table * 255).astype(np.uint8)


def colorize(heat: np.ndarray, name: str = DEFAULT_COLORMAP) -> np.ndarray:
    """(H, W) values in [0, 1] -> (H, W, 3) uint8 RGB."""
    idx = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)) * 255 + 0.5, 0, 255)
    return colormap_table(name)[idx.astype(np.uint8)]


def heat_alpha(heat: np.ndarray, opacity: float, clear_below: float | None) -> np.ndarray:
    """Per-pixel opacity of the overlay: ``opacity`` everywhere when ``clear_below`` is None, else
    0 up to ``clear_below`` and rising linearly to ``opacity`` at heat 1 (cold regions stay clear,
    so the hot region stands out on the frame)."""
    opacity = float(np.clip(opacity, 0.0, 1.0))
    if clear_below is None:
        return np.full(heat.shape, opacity, np.float32)
    floor = float(np.clip(clear_below, 0.0, 0.99))
    ramp = (np.asarray(heat, np.float32) - floor) * np.float32(1.0 / (1.0 - floor))
    np.clip(ramp, 0.0, 1.0, out=ramp)
    ramp *= np.float32(opacity)
    return ramp


def blend(
    rgb: np.ndarray,
    heat: np.ndarray,
    opacity: float = 0.5,
    name: str = DEFAULT_COLORMAP,
    clear_below: float | None = CLEAR_BELOW,
) -> np.ndarray:
    """Overlay a [0, 1] heatmap of the frame's size on an (H, W, 3) uint8 frame: its colours at
    ``opacity`` where the map is hottest, fading to clear at ``clear_below`` (``heat_alpha``)."""
    if rgb.shape[:2] != heat.shape:
        raise ValueError(f"heatmap {heat.shape} does not match the frame {rgb.shape[:2]}")
    alpha = heat_alpha(heat, opacity, clear_below)[..., None]
    frame = rgb.astype(np.float32)
    mixed = frame + alpha * (colorize(heat, name).astype(np.float32) - frame)
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


def draw_outline(
    rgb: np.ndarray, mask: np.ndarray, color=(255, 255, 255), thickness: int = 2
) -> np.ndarray:
    """Draw the outline of a binary (H, W) mask of the frame's size (its foreground pixels within
    ``thickness`` of the background or the frame's border) on a copy of the frame."""
    mask = np.asarray(mask) > 0
    if rgb.shape[:2] != mask.shape:
        raise ValueError(f"mask {mask.shape} does not match the frame {rgb.shape[:2]}")
    inner = mask.copy()
    for _ in range(max(1, thickness)):  # erode by one pixel, 4-neighbourhood, border outside
        padded = np.pad(inner, 1, constant_values=False)
        inner = inner & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    out = rgb.copy()
    out[mask & ~inner] = color
    return out
