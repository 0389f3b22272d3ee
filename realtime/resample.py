"""Streaming resampling for live audio: blocks in at the device's rate, blocks out at the model's.

A polyphase FIR (Kaiser-windowed sinc, cut-off at the lower Nyquist) evaluated at absolute sample
indices, so cutting the input into blocks of any size gives the same output as resampling it
whole (output sample m is aligned with the input: the filter's delay is compensated, so
that output sample m lies at the time of input sample m * orig / new). An output sample is
emitted once the input it needs has arrived: about 16 samples of the slower rate later.
numpy only. (torchaudio's resample keeps no state between calls, so block by block it would
restart its filter at every block edge; design.md's "torchaudio" gives way here for that reason.)
"""

from __future__ import annotations

from math import gcd

import numpy as np


def lowpass(up: int, down: int, half_width: int = 16, beta: float = 8.0) -> np.ndarray:
    """The anti-aliasing filter of an up/down resampler, applied at the upsampled rate."""
    cutoff = 1.0 / max(up, down)  # fraction of the upsampled Nyquist
    n = np.arange(-half_width * max(up, down), half_width * max(up, down) + 1)
    h = cutoff * np.sinc(cutoff * n) * np.kaiser(n.size, beta)
    return h * up / h.sum()  # unit gain at DC after the zero-stuffing by ``up``


class StreamingResampler:
    def __init__(self, orig_rate: int, new_rate: int) -> None:
        g = gcd(int(orig_rate), int(new_rate))
        self.up, self.down = int(new_rate) // g, int(orig_rate) // g
        self.h = lowpass(self.up, self.down)
        self.centre = (self.h.size - 1) // 2  # filter delay, in upsampled samples
        self.history = np.zeros(0, np.float64)
        self.first = 0  # absolute index of history[0]
        self.received = 0  # input samples so far
        self.next_out = 0  # absolute index of the next output sample

    def feed(self, block: np.ndarray) -> np.ndarray:
        """Input samples (any length) -> the output samples they complete (float32)."""
        if self.up == self.down:
            return np.asarray(block, np.float32)
        block = np.asarray(block, np.float64).reshape(-1)
        self.history = np.concatenate([self.history, block])
        self.received += block.size
        # Output m sits at upsampled index m * down + centre - centre = m * down; it needs
        # inputs n with n * up in [m * down + centre - (L - 1), m * down + centre].
        last_input = self.received - 1
        m_end = (last_input * self.up - self.centre) // self.down + 1  # outputs computable now
        if m_end <= self.next_out:
            return np.zeros(0, np.float32)
        m = np.arange(self.next_out, m_end)
        t = m * self.down + self.centre  # upsampled time of each output's newest tap
        n_hi = t // self.up  # newest input sample each output uses
        taps = self.h.size // self.up + 1
        n = n_hi[:, None] - np.arange(taps)[None, :]  # (M, taps) input indices
        k = t[:, None] - n * self.up  # filter index of each
        ok = (k >= 0) & (k < self.h.size) & (n >= self.first)
        x = np.where(ok & (n >= 0), self.history[np.clip(n - self.first, 0, None)], 0.0)
        out = (x * np.where(ok, self.h[np.clip(k, 0, self.h.size - 1)], 0.0)).sum(axis=1)
        self.next_out = m_end
        keep_from = max(0, (self.next_out * self.down + self.centre - self.h.size) // self.up - 1)
        if keep_from > self.first:
            self.history = self.history[keep_from - self.first :]
            self.first = keep_from
        return out.astype(np.float32)
