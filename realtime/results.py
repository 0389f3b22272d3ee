"""From a raw h x w map to what the live app shows: heatmap, peak, box and sounding confidence.

The min-max normalised map always has a hot spot, even when nothing sounds, so the app must not
trust it alone: ``confidence`` combines the audio level (silence cannot be localized) with the
raw similarity score (the mean of the top quarter of the map, in cosine units, which is high only
when the sound matches something in view). The overlay fades with it; ``sounding`` is
``confidence >= threshold``. The defaults below are starting points; calibrate them on a test set
with silent pairs (``fnac eval`` reports the confidence's AP and max-F1 there).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fnac.localization import BOX_LEVEL, PEAK_LEVEL, locate
from fnac.metrics import sounding_confidence


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
    # the peak is the centre of the hottest region of heat >= peak_level
    peak_level: float = PEAK_LEVEL
    # the box surrounds the hottest region of heat >= box_level; `fnac eval` measures the level
    # that fits a test set's boxes best (`live.best_box_level`) and --calibrate keeps it
    box_level: float = BOX_LEVEL
    recent_s: float = 1.0  # loudness is measured over the newest recent_s of the window

    @classmethod
    def for_checkpoint(cls, calibration: dict) -> ConfidenceSettings:
        """The defaults, with the checkpoint's own ``score_mid`` and ``box_level`` where it
        carries them (``fnac eval --calibrate``)."""
        known = {k: calibration[k] for k in ("score_mid", "box_level") if k in calibration}
        return replace(cls(), **known)


@dataclass(frozen=True)
class Localization:
    peak: tuple[int, int]  # x, y in frame pixels: the centre of the hottest region
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels (x1, y1 exclusive)
    score: float  # mean of the top quarter of the raw map, times tau (cosine units)
    level_db: float  # RMS of the newest audio, dBFS
    confidence: float  # 0..1
    sounding: bool

    def fields(self) -> dict[str, Any]:
        """Its figures as plain Python values (ints, floats, a bool), as results carry them."""
        return {
            "peak": tuple(int(v) for v in self.peak),
            "box": tuple(int(v) for v in self.box),
            "confidence": float(self.confidence),
            "sounding": bool(self.sounding),
            "score": float(self.score),
            "level_db": float(self.level_db),
        }


def level_db(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return 20.0 * np.log10(max(rms, 1e-10))


def confidence(score: float, level: float, settings: ConfidenceSettings) -> float:
    span = settings.level_full_db - settings.level_floor_db
    loud = float(np.clip((level - settings.level_floor_db) / span, 0.0, 1.0))
    similar = 1.0 / (1.0 + np.exp(-(score - settings.score_mid) / settings.score_width))
    return loud * float(similar)


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
    shown: np.ndarray | None = None,
) -> Localization:
    """Raw map (h, w), the frame's (height, width), the audio window -> Localization. With a
    ``shown`` map (smoothed), peak and box come from it; the confidence from the raw map."""
    settings = settings or ConfidenceSettings()
    raw = np.asarray(raw_map, dtype=np.float32)
    where = raw if shown is None else np.asarray(shown, dtype=np.float32)
    peak, box = locate(where, frame_size, settings.box_level, settings.peak_level)
    score = sounding_confidence(raw) * tau  # top quarter of the map, in cosine units
    recent = audio[-int(settings.recent_s * sample_rate) :] if audio.size else audio
    level = level_db(recent)
    conf = confidence(score, level, settings)
    return Localization(peak, box, score, level, conf, conf >= settings.threshold)
