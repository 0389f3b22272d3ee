"""Audio to the model's rate: one resampler for every path, live and offline.

libsoxr (python-soxr, its "HQ" quality: a linear-phase filter, delay compensated, so output sample
m lies at the time of input sample m * orig / new) in its two forms: ``resample`` for a whole
signal (a file's clip, a dataset's WAV) and ``StreamResampler`` for blocks as a microphone or a
file source delivers them. The blocks' outputs, put end to end, are the whole signal's output
sample for sample (``tests/test_resample.py``): the same source gives the live ring and an offline
reader the same samples, whatever the block sizes. The stream holds back its newest output until
the filter has seen enough input after it (a few tens of milliseconds); ``flush`` releases it at
the end of a stream.

numpy and soxr only: the capture side and the GUI use it without torch.
"""

from __future__ import annotations

import numpy as np
import soxr

QUALITY = "HQ"  # libsoxr's high quality: -130 dB stop band, passband to 95 % of Nyquist


def resample(wave: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """(N,) or (C, N) samples at ``orig_rate`` -> float32 at ``new_rate`` (the same array when the
    rates are equal)."""
    wave = np.asarray(wave)
    if int(orig_rate) == int(new_rate):
        return wave
    x = np.ascontiguousarray(wave.T if wave.ndim == 2 else wave, dtype=np.float32)
    out = soxr.resample(x, int(orig_rate), int(new_rate), quality=QUALITY)
    return np.ascontiguousarray(out.T) if wave.ndim == 2 else out


class StreamResampler:
    """Mono blocks in at ``orig_rate``, blocks out at ``new_rate``, seamless across blocks."""

    def __init__(self, orig_rate: int, new_rate: int) -> None:
        self.orig_rate, self.new_rate = int(orig_rate), int(new_rate)
        self.same = self.orig_rate == self.new_rate
        self.stream = None
        if not self.same:
            self.stream = soxr.ResampleStream(
                self.orig_rate, self.new_rate, 1, dtype="float32", quality=QUALITY
            )

    def feed(self, block: np.ndarray) -> np.ndarray:
        """Input samples (any length) -> the output samples they complete (float32)."""
        block = np.ascontiguousarray(np.asarray(block).reshape(-1), dtype=np.float32)
        if self.same:
            return block
        return self.stream.resample_chunk(block, last=False)

    def flush(self) -> np.ndarray:
        """The output still held back, at the end of a stream (no more ``feed`` after it)."""
        if self.same:
            return np.zeros(0, np.float32)
        return self.stream.resample_chunk(np.zeros(0, np.float32), last=True)
