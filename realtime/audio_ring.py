"""Audio/video alignment: a ring of audio at the model's rate, addressed by capture time.

Blocks arrive with a sequence number and the monotonic capture time of their first sample. The
ring keeps one clock: sample n was captured at ``anchor_t + (n - anchor_n) / rate``, anchored on
the first block and re-anchored when the source's clock and the sample count drift apart by more
than ``max_drift_s`` (a device that paused, a dropped USB buffer). Missing blocks (a jump in the
sequence numbers) and missing time are zero-filled and flagged, never skipped silently; a gap
longer than the ring leaves the ring all gap, whatever its length.

``window(t)`` returns the ``window_s`` seconds of audio ending at capture time t: the audio that
belongs with a frame captured at t. Before that much audio has arrived the window is zero-padded
at the front and flagged; if t lies beyond the newest sample the window ends at the newest sample
and ``lag_s`` says by how much.

numpy only: the GUI and the capture workers use it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    samples: np.ndarray  # (window_s * rate,) float32
    padded: bool  # the start of the stream is inside the window: zeros in front
    gap: bool  # the window holds zero-filled missing audio
    lag_s: float  # how far t lies beyond the newest sample (0 when audio is on time)
    end_time: float  # capture time of the window's last sample
    zero_filled: int  # samples that are zeros standing in for audio not delivered


class AudioRing:
    def __init__(
        self,
        sample_rate: int,
        window_s: float = 3.0,
        capacity_s: float = 10.0,
        max_drift_s: float = 0.1,
    ) -> None:
        if capacity_s < window_s:
            raise ValueError("the ring must hold at least one window")
        self.rate = int(sample_rate)
        self.window_n = int(round(window_s * self.rate))
        self.capacity = int(round(capacity_s * self.rate))
        self.max_drift_s = max_drift_s
        self.buffer = np.zeros(self.capacity, np.float32)
        self.valid = np.zeros(self.capacity, bool)  # False where zero-filled
        self.written = 0  # samples written since the start (absolute index of the next one)
        self.anchor_n = 0
        self.anchor_t: float | None = None
        self.last_seq: int | None = None
        self.last_block = 0
        self.gaps = 0  # zero-filled stretches so far
        self.gap_samples = 0

    def time_of(self, n: int) -> float:
        """Capture time of absolute sample n."""
        if self.anchor_t is None:
            raise ValueError("no audio has arrived yet")
        return self.anchor_t + (n - self.anchor_n) / self.rate

    def _put(self, samples: np.ndarray, valid: bool) -> None:
        n = samples.size
        if n >= self.capacity:
            samples = samples[-self.capacity :]
            self.written += n - self.capacity
            n = self.capacity
        start = self.written % self.capacity
        first = min(n, self.capacity - start)
        self.buffer[start : start + first] = samples[:first]
        self.valid[start : start + first] = valid
        self.buffer[: n - first] = samples[first:]
        self.valid[: n - first] = valid
        self.written += n

    def _fill(self, n: int) -> None:
        """Zero-fill n lost samples, flagged. Of a gap longer than the ring only the ring's worth
        is written (a window inside it is all gap either way) and the clock moves on by the rest,
        so that a sequence number or capture time that jumps far ahead allocates nothing more
        and leaves the sample indices small."""
        if n > 0:
            skip = max(0, n - self.capacity)
            self.anchor_t += skip / self.rate
            self._put(np.zeros(n - skip, np.float32), valid=False)
            self.gaps += 1
            self.gap_samples += n

    def write(
        self, samples: np.ndarray, t_capture: float, seq: int | None = None, valid: bool = True
    ) -> None:
        """Append a block (mono float at ``sample_rate``) captured from ``t_capture`` on;
        ``valid=False`` marks samples that stand in for lost audio (zeros, flagged as a gap)."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self.anchor_t is None:
            self.anchor_t, self.anchor_n = float(t_capture), self.written
        else:
            if seq is not None and self.last_seq is not None and seq > self.last_seq + 1:
                self._fill((seq - self.last_seq - 1) * self.last_block)  # lost blocks
            drift = t_capture - self.time_of(self.written)
            if drift > self.max_drift_s:  # time went missing: fill it, then continue
                self._fill(int(round(drift * self.rate)))
                drift = t_capture - self.time_of(self.written)
            if abs(drift) > self.max_drift_s:  # the clocks disagree: trust the capture time
                self.anchor_t, self.anchor_n = float(t_capture), self.written
        self.last_seq = seq if seq is not None else self.last_seq
        self.last_block = samples.size
        if not valid:
            self.gaps += 1
            self.gap_samples += samples.size
        self._put(samples, valid=valid)

    def restart_at(self, t: float) -> None:
        """The next sample written is captured at t (a writer that restarted its own clock: a
        new rate, a long gap). The missing time before t is zero-filled and flagged; a t before
        the ring's clock moves the clock back to t. Nothing to do before the first write."""
        if self.anchor_t is None:
            return
        missing = t - self.time_of(self.written)
        if missing > 0:
            self._fill(int(round(missing * self.rate)))
        self.anchor_t, self.anchor_n = float(t), self.written

    def window(self, t: float) -> Window:
        """The ``window_s`` seconds of audio ending at capture time t."""
        if self.anchor_t is None:
            return Window(np.zeros(self.window_n, np.float32), True, False, 0.0, t, self.window_n)
        end = self._end(t)
        lag = 0.0
        if end > self.written:
            lag = (end - self.written) / self.rate
            end = self.written
        oldest = max(0, self.written - self.capacity)
        start = end - self.window_n
        have = max(start, oldest)
        out = np.zeros(self.window_n, np.float32)
        valid = np.ones(self.window_n, bool)
        if end > have:
            idx = np.arange(have, end) % self.capacity
            out[have - start :] = self.buffer[idx]
            valid[have - start :] = self.valid[idx]
        padded = start < oldest or start < 0
        front = max(0, min(have, end) - start)  # zeros before the stream (or the ring) began
        zero_filled = front + int((~valid[front:]).sum())
        if padded:
            valid[:front] = True  # padding is flagged as such, not as a gap
        gap = bool((~valid).any())
        return Window(out, padded, gap, lag, self.time_of(end - 1), zero_filled)

    def _end(self, t: float) -> int:
        """The absolute index just after the sample captured at t."""
        return int(np.floor((t - self.anchor_t) * self.rate + 1e-6)) + self.anchor_n + 1
