"""The live window's link to the realtime workers, kept off the UI thread.

``Feed`` runs a ``realtime.run.LivePipeline`` (capture and inference workers under their
supervisor) in a background thread that drains the results as they come and keeps only the
newest; the window takes that one at display rate and never waits on a socket. Everything the
pipeline says (engine, worker errors, restarts) and the feed's own state changes are queued as
events for the window to show. No Qt and no torch here, so it is tested on its own.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STALL_S = 2.0  # no result for this long while running: the window says so


@dataclass
class Shown:
    """One processed frame as the window needs it."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    raw_map: np.ndarray  # (h, w) float32
    meta: dict[str, Any]  # peak, box, confidence, sounding, level_db, dropped, processed, truth
    latency_s: float  # capture -> received by the window's process
    seq: int  # frame index in the source


@dataclass
class FeedStats:
    """Rolling readouts over the last ``window`` results."""

    arrivals: deque = field(default_factory=lambda: deque(maxlen=60))
    latencies: deque = field(default_factory=lambda: deque(maxlen=60))
    dropped: int = 0
    processed: int = 0
    restarts: int = 0

    def add(self, now: float, latency_s: float, meta: dict[str, Any]) -> None:
        self.arrivals.append(now)
        self.latencies.append(latency_s)
        self.dropped = int(meta.get("dropped", self.dropped))
        self.processed = int(meta.get("processed", self.processed))

    @property
    def fps(self) -> float:
        if len(self.arrivals) < 2:
            return 0.0
        return (len(self.arrivals) - 1) / max(self.arrivals[-1] - self.arrivals[0], 1e-9)

    def latency_ms(self, q: float) -> float:
        return 1000 * float(np.percentile(self.latencies, q)) if self.latencies else 0.0


class Feed:
    """``Feed(source, checkpoint, backend).start()``; then ``take()`` the newest frame,
    ``spectra()`` the new spectrogram columns and ``events()`` the news, from any thread."""

    def __init__(
        self,
        source: str,
        checkpoint: str,
        backend: str = "cpu",
        realtime: bool = True,
        standby: bool = False,
    ) -> None:
        self.source, self.checkpoint, self.backend = source, checkpoint, backend
        self.realtime, self.standby = realtime, standby
        self.state = "idle"  # idle, starting, running, ended, failed, stopped
        self.engine = ""
        self.stats = FeedStats()
        self.pipeline = None  # the LivePipeline, once started (its supervisor knows the pids)
        self.last_result = 0.0  # monotonic time of the newest result
        self._lock = threading.Lock()
        self._newest: Shown | None = None
        self._fresh = False
        self._columns: deque[np.ndarray] = deque(maxlen=256)
        self._events: deque[str] = deque(maxlen=200)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fnac-feed", daemon=True)

    # ------------------------------------------------------------------ the window's side

    def start(self) -> Feed:
        self.state = "starting"
        self._say(f"starting {self.source} with {self.checkpoint} ({self.backend})")
        self._thread.start()
        return self

    def stop(self, wait: bool = True) -> None:
        """Stop the workers; with ``wait=False`` the pipeline closes in the background."""
        self._stop.set()
        if wait and self._thread.is_alive():
            self._thread.join(timeout=10.0)

    def take(self) -> Shown | None:
        """The newest frame when it was not taken yet, else None."""
        with self._lock:
            if not self._fresh:
                return None
            self._fresh = False
            return self._newest

    def spectra(self) -> list[np.ndarray]:
        with self._lock:
            out = list(self._columns)
            self._columns.clear()
        return out

    def events(self) -> list[str]:
        with self._lock:
            out = list(self._events)
            self._events.clear()
        return out

    def stalled_for(self) -> float:
        """Seconds without a result while running (0 when results flow or before the first)."""
        if self.state != "running" or not self.last_result:
            return 0.0
        return max(0.0, time.monotonic() - self.last_result)

    # ------------------------------------------------------------------ the feed's thread

    def _say(self, text: str) -> None:
        text = text.strip()
        if text:
            with self._lock:
                self._events.append(text)
            if "restarted" in text:
                self.stats.restarts += 1

    def _run(self) -> None:
        from realtime.run import LivePipeline

        try:
            with LivePipeline(
                self.source,
                self.checkpoint,
                self.backend,
                realtime=self.realtime,
                say=self._say,
                standby=self.standby,
            ) as pipeline:
                self.pipeline = pipeline
                self.engine = pipeline.engine
                self.state = "running"
                while not self._stop.is_set():
                    msg = pipeline.next(timeout_ms=50)
                    if msg is None:
                        continue
                    if msg.kind == "status":
                        self.state = "ended"
                        self._say("the source ended")
                        break
                    self._keep(msg)
        except Exception as exc:  # shown in the window; the UI stays up
            self.state = "failed"
            self._say(f"error: {exc}")
            return
        finally:
            self.pipeline = None
        if self.state == "running":
            self.state = "stopped"

    def _keep(self, msg) -> None:
        now = time.monotonic()
        latency = now - msg.stamps["capture"]
        shown = Shown(
            np.ascontiguousarray(msg.arrays["image"][:, :, ::-1]),  # BGR -> RGB
            msg.arrays["map"],
            msg.meta,
            latency,
            msg.seq,
        )
        with self._lock:
            self._newest, self._fresh = shown, True
            if "spectrum" in msg.arrays:
                self._columns.append(msg.arrays["spectrum"])
            self.stats.add(now, latency, msg.meta)
            self.last_result = now
