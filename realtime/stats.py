"""Speed figures of a live run, computed one way everywhere: latency percentiles in milliseconds and
the rolling rate and latency that status lines and the window show. Numpy only."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import numpy as np

PERCENTILES = (50, 95, 99)


def percentiles_ms(latencies_s: Iterable[float], digits: int = 1) -> dict[str, float]:
    """``{"p50": ms, "p95": ms, "p99": ms}`` of latencies given in seconds (zeros when none)."""
    values = np.asarray(list(latencies_s), dtype=np.float64) * 1000
    if values.size == 0:
        values = np.zeros(1)
    return {f"p{q}": round(float(np.percentile(values, q)), digits) for q in PERCENTILES}


class Rolling:
    """The rate and latency over the newest ``window`` results."""

    def __init__(self, window: int = 60) -> None:
        self.arrivals: deque[float] = deque(maxlen=window)
        self.latencies: deque[float] = deque(maxlen=window)

    def add(self, now: float, latency_s: float) -> None:
        self.arrivals.append(now)
        self.latencies.append(latency_s)

    @property
    def fps(self) -> float:
        if len(self.arrivals) < 2:
            return 0.0
        return (len(self.arrivals) - 1) / max(self.arrivals[-1] - self.arrivals[0], 1e-9)

    def latency_ms(self, q: float) -> float:
        return 1000 * float(np.percentile(self.latencies, q)) if self.latencies else 0.0
