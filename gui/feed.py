"""The live window's link to the realtime workers, kept off the UI thread.

``Feed`` runs a ``realtime.pipeline.LivePipeline`` (capture and inference workers under their
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

import numpy as np

from realtime.messages import EndOfStream, LiveResult
from realtime.pipeline import LiveConfig
from realtime.scoring import Pointing
from realtime.stats import Rolling

STALL_S = 2.0  # no result for this long while running: the window says so


@dataclass
class Shown:
    """One processed frame as the window needs it."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    result: LiveResult  # the map, peak, box, confidence, level, counters, truth
    latency_s: float  # capture -> received by the window's process

    @property
    def seq(self) -> int:  # frame index in the source
        return self.result.frame


@dataclass
class FeedStats:
    """Rolling readouts over the newest results, and the pipeline's counters."""

    rolling: Rolling = field(default_factory=Rolling)
    dropped: int = 0
    processed: int = 0
    restarts: int = 0
    # pointing so far, where the source knows the ground truth (the synthetic world)
    score: Pointing = field(default_factory=Pointing)

    def add(self, now: float, latency_s: float, result: LiveResult) -> None:
        self.rolling.add(now, latency_s)
        self.dropped = result.dropped
        self.processed = result.processed
        start = result.audio.start if result.audio is not None else None
        self.score.add(result.truth, result.peak, result.box, result.pts, start)

    def readout(self) -> str:
        """The running pointing accuracy (``realtime.scoring``), "" without ground truth."""
        s = self.score
        if not s.scored:
            return ""
        heard = f"{s.heard_hits / s.heard:.2f} ({s.heard} frames)" if s.heard else "-"
        return f"pointing {heard}, {s.hits / s.scored:.2f} over all {s.scored}"

    @property
    def fps(self) -> float:
        return self.rolling.fps

    def latency_ms(self, q: float) -> float:
        return self.rolling.latency_ms(q)


class Feed:
    """``Feed(LiveConfig(source, checkpoint, ...)).start()``; then ``take()`` the newest frame,
    ``spectra()`` the new spectrogram columns and ``events()`` the news, from any thread."""

    def __init__(self, config: LiveConfig) -> None:
        self.config = config
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
        c = self.config
        self._say(f"starting {c.source} with {c.checkpoint} ({c.backend})")
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
        from realtime.pipeline import LivePipeline

        try:
            with LivePipeline(self.config, say=self._say) as pipeline:
                self.pipeline = pipeline
                self.engine = pipeline.engine
                self.state = "running"
                while not self._stop.is_set():
                    result = pipeline.next(timeout_ms=50)
                    if result is None:
                        continue
                    if isinstance(result, EndOfStream):
                        self.state = "ended"
                        self._say("the source ended")
                        break
                    self._keep(result)
        except Exception as exc:  # shown in the window; the UI stays up
            self.state = "failed"
            self._say(f"error: {exc}")
            return
        finally:
            self.pipeline = None
        if self.state == "running":
            self.state = "stopped"

    def _keep(self, result: LiveResult) -> None:
        now = time.monotonic()
        latency = now - result.origin_time
        shown = Shown(np.ascontiguousarray(result.image[:, :, ::-1]), result, latency)  # BGR->RGB
        with self._lock:
            self._newest, self._fresh = shown, True
            self._columns.append(result.spectrum)
            self.stats.add(now, latency, result)
            self.last_result = now
