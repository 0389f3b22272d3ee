"""From a raw h x w map to what the live app shows: heatmap, peak, box and sounding confidence.

The min-max normalised map always has a hot spot, even when nothing sounds, so the app must not
trust it alone: ``confidence`` combines the audio level (silence cannot be localized) with the
raw similarity score (the mean of the top quarter of the map, in cosine units, which is high only
when the sound matches something in view). The overlay fades with it; ``sounding`` is
``confidence >= threshold``. The defaults below are starting points; calibrate them on a test set
with silent pairs (``fnac eval`` reports the confidence's AP and max-F1 there).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from fnac.metrics import sounding_confidence
from realtime.sources import quiet_opencv


@dataclass(frozen=True)
class ConfidenceSettings:
    level_floor_db: float = -55.0  # RMS dBFS at or below which the audio counts as silence
    level_full_db: float = -30.0  # RMS dBFS from which loudness no longer limits confidence
    # Calibrated on the demo checkpoint's silent pairs (the world's test set: sounding pairs score
    # 0.30-0.38, frames with another class's sound 0.08-0.24, 5th-95th percentiles; max-F1 at
    # 0.28). `fnac eval` reports any checkpoint's `score_at_max_f1`.
    score_mid: float = 0.26  # cosine score at which the similarity term is one half
    score_width: float = 0.03  # how sharply the similarity term rises around score_mid
    threshold: float = 0.5  # sounding when confidence >= threshold
    peak_level: float = 0.6  # the peak is the centre of the hottest region of heat >= peak_level
    box_level: float = 0.5  # the box surrounds the hottest region of heat >= box_level
    recent_s: float = 1.0  # loudness is measured over the newest recent_s of the window

    @classmethod
    def for_checkpoint(cls, calibration: dict) -> ConfidenceSettings:
        """The defaults, with the checkpoint's own ``score_mid`` when it carries one
        (``fnac eval --calibrate``)."""
        return cls(score_mid=calibration["score_mid"]) if "score_mid" in calibration else cls()


# Peak and box are found on the heat drawn at most this many pixels on its long side and scaled
# to the frame: within one such pixel of the full-size answer (2 frame pixels at 640x480), for a
# quarter of the work there.
ANALYSIS_SIDE = 320
FLAT = 1e-5  # a map whose upsampled range is below this fraction of its values has no hot spot


@dataclass(frozen=True)
class Localization:
    peak: tuple[int, int]  # x, y in frame pixels: the centre of the hottest region
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels (x1, y1 exclusive)
    score: float  # mean of the top quarter of the raw map, times tau (cosine units)
    level_db: float  # RMS of the newest audio, dBFS
    confidence: float  # 0..1
    sounding: bool


def level_db(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return 20.0 * np.log10(max(rms, 1e-10))


def confidence(score: float, level: float, settings: ConfidenceSettings) -> float:
    span = settings.level_full_db - settings.level_floor_db
    loud = float(np.clip((level - settings.level_floor_db) / span, 0.0, 1.0))
    similar = 1.0 / (1.0 + np.exp(-(score - settings.score_mid) / settings.score_width))
    return loud * float(similar)


def hot_region(
    heat: np.ndarray, hottest: tuple[int, int], level: float
) -> tuple[tuple[int, int, int, int], tuple[float, float]]:
    """Bounding box (x0, y0, x1, y1) and centroid (x, y) of the connected region of
    ``heat >= level`` that holds the ``hottest`` pixel."""
    cv2 = quiet_opencv()
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
    cv2 = quiet_opencv()
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


def spectrum_db(samples: np.ndarray, n_fft: int = 256) -> np.ndarray:
    """Hann-windowed magnitude spectrum of the newest ``n_fft`` samples, in dB (n_fft/2 + 1,):
    one column of the live window's scrolling spectrogram."""
    block = np.zeros(n_fft, np.float32)
    tail = np.asarray(samples, np.float32)[-n_fft:]
    block[n_fft - tail.size :] = tail
    magnitude = np.abs(np.fft.rfft(block * np.hanning(n_fft))) / (n_fft / 4)
    return (20 * np.log10(np.maximum(magnitude, 1e-6))).astype(np.float32)


def analyze(
    raw_map: np.ndarray,
    frame_size: tuple[int, int],
    audio: np.ndarray,
    sample_rate: int,
    tau: float,
    settings: ConfidenceSettings | None = None,
) -> Localization:
    """Raw map (h, w), the frame's (height, width), the audio window -> Localization."""
    settings = settings or ConfidenceSettings()
    raw = np.asarray(raw_map, dtype=np.float32)
    peak, box = locate(raw, frame_size, settings)
    score = sounding_confidence(raw) * tau  # top quarter of the map, in cosine units
    recent = audio[-int(settings.recent_s * sample_rate) :] if audio.size else audio
    level = level_db(recent)
    conf = confidence(score, level, settings)
    return Localization(peak, box, score, level, conf, conf >= settings.threshold)


def analysis_size(frame_size: tuple[int, int]) -> tuple[int, int]:
    """The (height, width) at which peak and box are found for a frame of ``frame_size``."""
    height, width = frame_size
    scale = min(1.0, ANALYSIS_SIDE / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def locate(
    raw: np.ndarray, frame_size: tuple[int, int], settings: ConfidenceSettings
) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
    """Peak (x, y) and box (x0, y0, x1, y1) in frame pixels of a raw map.

    The peak is the centre of the hot region, not the hottest pixel: a 4x4 or 7x7 map has most
    of its cells on the border, and bicubic upsampling carries a border cell's maximum out to the
    frame's edge. On the demo's synthetic stream the hottest pixel lies in the sounding object's
    box in 0.38 of the frames, the hot region's centre in 0.72."""
    height, width = frame_size
    grid = analysis_size(frame_size)
    heat = upsample_heat(raw, grid)
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    (x0, y0, x1, y1), _ = hot_region(heat, (int(x), int(y)), settings.box_level)
    # the peak's region (a higher level) lies inside the box's: labelled within the box only
    _, (cx, cy) = hot_region(heat[y0:y1, x0:x1], (int(x) - x0, int(y) - y0), settings.peak_level)
    sx, sy = width / grid[1], height / grid[0]  # frame pixels per analysis pixel
    peak = (
        min(width - 1, max(0, round((x0 + cx + 0.5) * sx - 0.5))),
        min(height - 1, max(0, round((y0 + cy + 0.5) * sy - 0.5))),
    )
    box = (
        round(x0 * sx),
        round(y0 * sy),
        min(width, round(x1 * sx)),
        min(height, round(y1 * sy)),
    )
    return peak, box
