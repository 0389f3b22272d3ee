"""The inference stage of the live pipeline, in one process: audio in, frames in, results out.

Audio packets are resampled once to the model's rate (streaming, seamless) into the audio ring;
lost blocks enter as flagged zeros. For each frame the stage takes the ``window_s`` seconds of
audio ending at the frame's capture time, recomputes the audio embedding when ``audio_rate_hz``
says it is due (in stream time, so a paced and an unpaced run do the same work per second of
stream) and reuses it in between, encodes the frame, and turns the raw map into a result. Every
stage is timed. The ZeroMQ inference worker wraps this class.

What comes in is checked first: a packet the stage cannot use (no samples, a rate of zero, a frame
without an image) raises ``BadPacket``, which the worker counts and goes on from, rather than
failing somewhere inside. Grayscale and BGRA frames are converted, and the frame processed is shrunk
to 1080p when it is larger. Non-finite samples enter as zeros flagged like lost audio, and a map
that comes out non-finite is published as "nothing here", so a NaN never reaches a result. A gap
longer than the ring is not resampled as zeros: the resampler restarts after it and the ring
zero-fills the missing time. A sequence number or frame pts that goes backwards means the capture
started again: the stage forgets the old stream's audio instead of aligning new frames with it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from fnac.audio import log_spectrogram, normalize_spectrogram
from fnac.config import AudioConfig, ImageConfig
from fnac.image import preprocess_frames, to_rgb
from fnac.resample import StreamResampler
from realtime.audio_ring import AudioRing, Window
from realtime.engines import Engine
from realtime.messages import (
    AudioPacket,
    AudioSpan,
    EndOfStream,
    FramePacket,
    LiveResult,
    Packet,
)
from realtime.results import ConfidenceSettings, Localization, analyze, spectrum_db
from realtime.sources import fit_frame

log = logging.getLogger(__name__)

MAX_RATE = 384_000  # Hz, the fastest audio hardware; the resampler's filter grows with the rate
MAX_BLOCK_S = 1.0  # s; a live block is tens of ms, and the resampler's memory grows with a block
# The longest a frame waits for its audio (``Intake.next_frame``): a device's block (tens of ms)
# plus the resampler's hold-back, with room; beyond it the audio is late or lost, not coming.
AUDIO_WAIT_S = 0.3
MAX_HELD = 64  # frames held for their audio at most (two seconds of a 30 fps camera)
# Offline, frames held at most before the reader is made to wait: a short read-ahead, so that a
# frame's latency (from its read) is mostly its own processing, not a queue.
OFFLINE_HELD = 2
# A block captured this far from where the sample count puts it restarts the audio clock there
# (the ring's own rule, for the same reasons).
MAX_DRIFT_S = 0.1


class BadPacket(ValueError):
    """A packet that is well-formed on the wire but whose content the stage cannot use."""


def _finite(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise BadPacket(f"{what} is {value!r:.40}, not a number")
    try:
        value = float(value)
    except OverflowError:  # an integer beyond float's range
        value = math.inf
    if not math.isfinite(value):
        raise BadPacket(f"{what} is {value!r}")
    return value


def _index(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise BadPacket(f"{what} is {value!r:.40}, not an integer")
    if not -(2**63) <= value < 2**63:  # JSON integers are unbounded; times derived from them not
        raise BadPacket(f"{what} is out of range")
    return int(value)


def checked_audio(packet: AudioPacket) -> AudioPacket:
    """The packet with (N,) float32 samples, a whole rate in 1..MAX_RATE and finite times, or
    BadPacket. Non-finite samples pass: ``add_audio`` replaces and counts them."""
    rate = _finite(packet.rate, "the audio rate")
    if rate != int(rate) or not 1 <= rate <= MAX_RATE:
        raise BadPacket(f"the audio rate is {packet.rate!r:.40}, not a whole 1..{MAX_RATE} Hz")
    samples = packet.samples
    if not (isinstance(samples, np.ndarray) and samples.dtype.kind == "f" and samples.ndim == 1):
        raise BadPacket(f"the audio samples are {_describe(samples)}, not (N,) float")
    if not 0 < samples.size <= MAX_BLOCK_S * rate:
        raise BadPacket(f"an audio block of {samples.size} samples at {int(rate)} Hz")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, handled later
        samples = samples.astype(np.float32, copy=False)
    t, pts = _finite(packet.t, "the capture time"), _finite(packet.pts, "the pts")
    return AudioPacket(_index(packet.seq, "the block number"), t, pts, samples, int(rate))


def checked_frame(packet: FramePacket) -> FramePacket:
    """The packet with a (H, W, 3) uint8 BGR image and finite times, or BadPacket. Grayscale and
    BGRA images (what some cameras and peers send) are converted."""
    image = packet.image
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8):
        raise BadPacket(f"the frame's image is {_describe(image)}, not a uint8 image")
    try:
        image = to_rgb(image, bgr=False)  # keeps the channel order: BGR stays BGR
    except ValueError as exc:
        raise BadPacket(f"the frame's image is {_describe(image)}: {exc}") from exc
    t, pts = _finite(packet.t, "the capture time"), _finite(packet.pts, "the pts")
    index = _index(packet.index, "the frame number")
    read = None if packet.read is None else _finite(packet.read, "the read time")
    return FramePacket(index, t, pts, image, packet.truth, read)


def _describe(array) -> str:
    if isinstance(array, np.ndarray):
        return f"{array.dtype} {tuple(array.shape)}"
    return repr(array)[:40]


class MapSmoother:
    """An optional steadier map for peak, box and drawing: each raw map blended into the running
    one with weight ``1 - exp(-dt / smooth_s)`` (``dt``: the time since the previous frame), so
    older maps fade with time constant ``smooth_s`` whatever the frame rate. ``smooth_s`` 0: off.
    The raw map each result carries stays the model's own."""

    def __init__(self, smooth_s: float = 0.0) -> None:
        if not (np.isfinite(smooth_s) and smooth_s >= 0):
            raise ValueError(f"the smoothing time constant must be >= 0 s, not {smooth_s}")
        self.smooth_s = float(smooth_s)
        self.forget()

    def forget(self) -> None:
        self.map: np.ndarray | None = None
        self.pts = 0.0

    def update(self, raw: np.ndarray, pts: float, restart: bool = False) -> np.ndarray | None:
        """The smoothed map after ``raw`` (of the frame at ``pts``); None when smoothing is off.
        Starts again from ``raw`` after ``restart`` (lost audio, a broken map), a jump back in
        time, or a map of another shape."""
        if self.smooth_s <= 0:
            return None
        dt = pts - self.pts
        if restart or self.map is None or self.map.shape != raw.shape or dt < 0:
            self.map = raw.astype(np.float32, copy=True)
        else:
            keep = np.float32(np.exp(-dt / self.smooth_s))
            self.map = keep * self.map + (1 - keep) * raw
        self.pts = pts
        return self.map.copy()


@dataclass
class Result:
    frame: int  # index of the frame in its source
    pts: float  # the frame's time in the source
    raw_map: np.ndarray  # (h, w) similarity / tau
    localization: Localization
    padded: bool  # fewer than window_s seconds of audio had arrived
    gap: bool  # the window holds zero-filled lost audio
    audio_fresh: bool  # the audio embedding was recomputed for this frame
    spectrum: np.ndarray  # (F,) dB spectrum of the newest audio, for the live window's strip
    stamps: dict[str, float] = field(default_factory=dict)  # stage -> monotonic seconds
    audio: AudioSpan | None = None  # the audio the embedding was computed from
    shown_map: np.ndarray | None = None  # the smoothed map peak and box came from (--smooth)


class InferenceStage:
    def __init__(
        self,
        engine: Engine,
        audio: AudioConfig,
        image: ImageConfig,
        audio_rate_hz: float = 10.0,
        resize: str = "fast",
        settings: ConfidenceSettings | None = None,
        smooth_s: float = 0.0,
    ) -> None:
        self.engine, self.audio, self.image = engine, audio, image
        self.smoother = MapSmoother(smooth_s)
        self.audio_period = 1.0 / audio_rate_hz
        self.resize = resize
        self.settings = settings or ConfidenceSettings()
        self.audio_encodes = 0
        self.nonfinite = 0  # audio samples that came in as NaN or inf (entered as zeros)
        self.nonfinite_maps = 0  # maps that came out non-finite (published as "nothing here")
        self.resets = 0  # times the stream started again
        self._forget()

    def reset(self) -> None:
        """Forget the stream: its audio, its clocks and the embedding computed from it (counted:
        ``Intake`` drops the frames it holds of the old stream)."""
        self.resets += 1
        self._forget()

    def _forget(self) -> None:
        self.ring = AudioRing(
            self.audio.sample_rate,
            self.audio.window_s,
            capacity_s=max(10.0, 2 * self.audio.window_s),
        )
        self.resampler: StreamResampler | None = None
        self.source_rate: int | None = None
        self.audio_anchor: float | None = None  # capture time of the resampler's first sample
        self.fed = 0  # samples fed to the resampler since the anchor (at the source's rate)
        self.emitted = 0  # samples it returned (at the model's rate)
        self.last_seq: int | None = None
        self.last_block = 0
        self.last_pts: float | None = None  # the newest frame's pts
        self.embedding: torch.Tensor | None = None
        self.embedding_pts = -np.inf
        self.embedding_span: AudioSpan | None = None
        self.smoother.forget()

    def warm_up(self, runs: int = 2) -> None:
        """Run the engine on a blank frame and silent audio through the very calls ``process``
        makes (``_spectrogram``, ``_preprocess``, the engine's three methods): first calls
        compile, allocate and tune here, not on the first real frames. The same calls, not just
        the same shapes: ``torch.compile`` also guards on strides, and a spectrogram of the right
        shape but other strides made it recompile for seconds on the first live frame, long
        enough for the supervisor to take the worker for hung."""
        silence = np.zeros(self.ring.window_n, np.float32)
        blank = np.zeros((480, 640, 3), np.uint8)  # any size: frames are resized to (S, S)
        for _ in range(runs):
            embedding = self.engine.encode_audio(self._spectrogram(silence))
            v = self.engine.encode_image(self._preprocess(blank))
            self.engine.maps(v, embedding)

    def add_audio(self, packet: AudioPacket) -> None:
        """Resample a block to the model's rate and append it to the ring; BadPacket if it is
        unusable. Blocks lost before it (a jump in ``seq``) enter as flagged zeros, a block that
        holds NaN or inf as a flagged block with those samples zeroed."""
        packet = checked_audio(packet)
        if self.last_seq is not None and packet.seq <= self.last_seq:
            self.reset()  # the capture started again: its blocks are numbered from 0 anew
        if self.resampler is None or packet.rate != self.source_rate:
            self.end_audio()  # the old rate's held-back tail first
            self._anchor(packet.rate, packet.t)
        elif packet.seq > self.last_seq + 1:
            lost = (packet.seq - self.last_seq - 1) * self.last_block
            if lost * self.ring.rate < self.ring.capacity * self.source_rate:
                self._append(np.zeros(lost, np.float32), valid=False)
            else:  # the ring would hold nothing but zeros: it fills the time, not the resampler
                t = self.audio_anchor + (self.fed + lost) / packet.rate
                self.end_audio()
                self._anchor(packet.rate, t)
        elif abs(packet.t - (self.audio_anchor + self.fed / packet.rate)) > MAX_DRIFT_S:
            # the device's clock and the sample count have drifted apart (a sound card runs
            # 10-100 ppm off the monotonic clock; a pause): trust the capture time again
            self.end_audio()
            self._anchor(packet.rate, packet.t)
        self.last_seq, self.last_block = packet.seq, packet.samples.size
        samples, finite = packet.samples, np.isfinite(packet.samples)
        if not finite.all():
            self.nonfinite += int(finite.size - finite.sum())
            samples = np.where(finite, samples, np.float32(0))
        self._append(samples, valid=bool(finite.all()))

    def end_audio(self) -> None:
        """The source ended: the resampler's held-back tail goes into the ring (a stream that
        starts again starts a new resampler)."""
        if self.resampler is not None:
            tail = self.resampler.flush()
            if tail.size:
                t = self.audio_anchor + self.emitted / self.audio.sample_rate
                self.ring.write(tail, t)
                self.emitted += tail.size
            self.resampler = None

    def _anchor(self, rate: int, t: float) -> None:
        """Start resampling anew from ``rate``, the next sample fed being captured at t; the
        ring's clock restarts there too (the time in between zero-filled), so that the ring
        and this stage count the same time."""
        self.resampler = StreamResampler(rate, self.audio.sample_rate)
        self.source_rate, self.audio_anchor = rate, t
        self.fed = self.emitted = 0
        self.ring.restart_at(t)

    def _append(self, samples: np.ndarray, valid: bool) -> None:
        # counted here: at equal rates the resampler passes blocks through without counting
        out = self.resampler.feed(samples)
        if out.size:
            t = self.audio_anchor + self.emitted / self.audio.sample_rate
            self.ring.write(out, t, valid=valid)
        self.fed += samples.size
        self.emitted += out.size

    def _due(self, pts: float) -> bool:
        """Whether the audio embedding is to be recomputed for a frame at ``pts``: the one there
        is ends one audio period or more before it."""
        return self.embedding is None or pts - self.embedding_pts >= self.audio_period - 1e-9

    def ready_for(self, frame: FramePacket) -> bool:
        """Whether ``frame`` can be processed exactly now: its audio embedding is reused, or the
        audio up to half an audio period before the frame's capture time has been resampled into
        the ring (or no audio has come at all: a source without sound). The embedding then ends
        at the newest sample, before the frame by less than half a period (a microphone's block
        and the resampler's hold-back are tens of ms: frames need not wait for them), and is due
        again one period after its own end: no frame uses one that ends a period or more before
        it."""
        if not self._due(frame.pts) or self.audio_anchor is None:
            return True
        newest = self.audio_anchor + self.emitted / self.audio.sample_rate  # just after the last
        return frame.t - newest < self.audio_period / 2 - 1e-6

    def _span(self, window: Window, frame: FramePacket) -> AudioSpan | None:
        """The window's time on the frames' clock (their pts: a file's or the synthetic world's
        time, a camera's since it opened), through the capture clock both are stamped on; None
        before any audio came."""
        if self.audio_anchor is None:
            return None
        end = frame.pts + (window.end_time + 1 / self.ring.rate - frame.t)
        return AudioSpan(end - self.ring.window_n / self.ring.rate, end, window.zero_filled)

    def _audio_embedding(self, window: Window, frame: FramePacket) -> bool:
        if not self._due(frame.pts):
            return False
        self.embedding_span = span = self._span(window, frame)
        self.embedding = self.engine.encode_audio(self._spectrogram(window.samples))
        # its time on the frames' clock: the frame's, or its window's end when that is earlier
        self.embedding_pts = min(frame.pts, span.end) if span else frame.pts
        self.audio_encodes += 1
        return True

    def _spectrogram(self, window: np.ndarray) -> torch.Tensor:
        """(N,) float32 samples -> (1, 1, F, T), the audio encoder's input."""
        wave = torch.from_numpy(window).clamp(-1, 1)
        spec = normalize_spectrogram(
            log_spectrogram(wave, self.audio.sample_rate, self.audio), self.audio
        )
        return spec[None, None]

    def _preprocess(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) uint8 BGR -> (1, 3, S, S), the image encoder's input."""
        return preprocess_frames([image], self.image, method=self.resize)

    def process(self, frame: FramePacket) -> Result:
        """One frame -> its result, with the time of every stage; BadPacket if it is unusable."""
        frame = fit_frame(checked_frame(frame))  # shrunk here, not for the stale ones dropped
        if self.last_pts is not None and frame.pts < self.last_pts:
            self.reset()  # the capture started again: the audio so far belongs to the old stream
        self.last_pts = frame.pts
        stamps = {"capture": frame.t, "start": time.monotonic()}
        if frame.read is not None:
            stamps["read"] = frame.read
        window = self.ring.window(frame.t)
        fresh = self._audio_embedding(window, frame)
        stamps["audio"] = time.monotonic()
        batch = self._preprocess(frame.image)
        stamps["preprocess"] = time.monotonic()
        v = self.engine.encode_image(batch)
        raw = self.engine.maps(v, self.embedding)[0].numpy()
        stamps["infer"] = time.monotonic()
        broken = not np.isfinite(raw).all()  # an engine's overflow: no map is better than NaN
        if broken:
            self.nonfinite_maps += 1
            raw = np.zeros_like(raw)
        shown = self.smoother.update(raw, frame.pts, restart=broken)
        loc = analyze(
            raw,
            frame.image.shape[:2],
            window.samples,
            self.audio.sample_rate,
            self.engine.tau,
            self.settings,
            shown,
        )
        if broken:
            loc = replace(loc, confidence=0.0, sounding=False)
        stamps["result"] = time.monotonic()
        spectrum = spectrum_db(window.samples, n_fft=512)
        return Result(
            frame.index,
            frame.pts,
            raw,
            loc,
            window.padded,
            window.gap,
            fresh,
            spectrum,
            stamps,
            self.embedding_span,
            shown,
        )


class NaiveStage(InferenceStage):
    """The reference: eager, audio embedding on every frame, scipy spectrogram, PIL resize."""

    def __init__(self, engine, audio, image) -> None:
        super().__init__(engine, audio, image, audio_rate_hz=1e9, resize="reference")

    def _spectrogram(self, window: np.ndarray) -> torch.Tensor:
        import scipy.signal

        _, _, psd = scipy.signal.spectrogram(
            window, self.audio.sample_rate, nperseg=self.audio.nperseg, noverlap=self.audio.noverlap
        )
        spec = torch.from_numpy(np.log(psd + self.audio.log_eps) / self.audio.norm_std).float()
        return spec[None, None]


class Intake:
    """One turn of the inference loop's input, for the worker and the bench alike: every audio
    packet goes into the stage, in order; of the frames only the newest is kept (the stale ones
    are dropped before the expensive stage and counted); a packet the stage cannot use is
    rejected and counted, never fatal. ``publish`` turns the stage's result into the message.

    ``next_frame`` also holds frames back until their audio is there: a frame whose audio
    embedding is due waits until the ring holds the audio up to the frame's capture time (a
    microphone delivers a block after its last sample was captured, the resampler holds its
    newest output back for tens of ms, a file's audio packet may come after the frame in the
    file), so that its window never misses samples the source delivered. Of the frames held, the
    newest one whose audio is there goes, the older ones are dropped, the newer ones wait on:
    audio that always trails the newest frame never starves the stage. A frame waits at most
    ``AUDIO_WAIT_S`` (from when the oldest held frame came), then the newest goes with what
    audio there is, counted as ``late``; so it does at once while no audio has come for that
    long (a sound that stopped, a file whose sound ends first). A restarted stream (the stage
    reset) drops what was held of the old one."""

    def __init__(self, stage: InferenceStage, every_frame: bool = False) -> None:
        self.stage = stage
        # offline: every frame goes, oldest first, and none is dropped; the caller stops taking
        # packets in while ``full`` (the link then fills and the reader waits)
        self.every_frame = every_frame
        self.dropped = 0  # stale frames
        self.rejected = 0  # packets the stage could not use
        self.processed = 0  # frames processed (the caller counts them)
        self.late = 0  # frames processed without all their audio (it had not come in time)
        self.ended = False  # an end-of-stream came in
        self.held: list[FramePacket] = []  # frames waiting for their audio, oldest first
        self.held_since = 0.0  # monotonic time the oldest held frame came
        self.audio_at = -math.inf  # monotonic time the last audio packet came
        self.resets = stage.resets

    def _take_all(self, packets: Iterable[Packet | None]) -> list[FramePacket]:
        """Feed the audio of ``packets`` to the stage; their usable frames, in order."""
        frames = []
        for packet in packets:
            try:
                if isinstance(packet, AudioPacket):
                    self.stage.add_audio(packet)
                    self.audio_at = time.monotonic()
                elif isinstance(packet, FramePacket):
                    frames.append(checked_frame(packet))  # a bad one never hides a good one
                    if len(frames) > MAX_HELD and not self.every_frame:
                        del frames[0]  # stale already: dropped as it comes, not after a flood
                        self.dropped += 1
                elif isinstance(packet, EndOfStream):
                    self.ended = True
                    self.stage.end_audio()
            except BadPacket as exc:
                self.rejected += 1
                if self.rejected == 1:
                    log.warning("rejected a packet: %s (more are counted)", exc)
        return frames

    def next_frame(self, packets: Iterable[Packet | None]) -> FramePacket | None:
        """Take ``packets`` in; the frame to process now, if there is one (see the class)."""
        frames = self._take_all(packets)
        now = time.monotonic()
        if self.stage.resets != self.resets:  # the stream started again: the old one's frames
            self.resets = self.stage.resets  # are not aligned with its audio
            self.dropped += len(self.held)
            self.held = []
        if frames and not self.held:
            self.held_since = now
        self.held.extend(frames)
        if len(self.held) > MAX_HELD and not self.every_frame:
            self.dropped += len(self.held) - MAX_HELD
            del self.held[:-MAX_HELD]
        if not self.held:
            return None
        if self.every_frame:
            return self._oldest(now)
        chosen = next(
            (i for i in range(len(self.held) - 1, -1, -1) if self.stage.ready_for(self.held[i])),
            None,
        )
        if chosen is None:
            waited = now - self.held_since >= AUDIO_WAIT_S
            silent = now - self.audio_at >= AUDIO_WAIT_S
            if not (self.ended or waited or silent):
                return None
            chosen = len(self.held) - 1
            self.late += 1
        frame = self.held[chosen]
        self.dropped += chosen
        self.held = self.held[chosen + 1 :]
        self.held_since = now
        return frame

    @property
    def full(self) -> bool:
        """Offline: take no packets in until a frame goes: a short read-ahead held and the
        oldest frame's audio there, or the most frames held that may be."""
        if not self.every_frame or len(self.held) < OFFLINE_HELD:
            return False
        return len(self.held) >= MAX_HELD or self.stage.ready_for(self.held[0])

    def _oldest(self, now: float) -> FramePacket | None:
        """Offline: the oldest held frame once its audio is there (or it waited, no audio came
        for as long, the stream ended, or the hold is full: then it goes late, counted)."""
        oldest = self.held[0]
        if not self.stage.ready_for(oldest):
            waited = now - self.held_since >= AUDIO_WAIT_S
            silent = now - self.audio_at >= AUDIO_WAIT_S
            if not (self.ended or waited or silent or len(self.held) >= MAX_HELD):
                return None
            self.late += 1
        self.held = self.held[1:]
        self.held_since = now
        return oldest

    def publish(self, result: Result, frame: FramePacket) -> LiveResult:
        """The message of ``result`` (of ``frame``), stamped as it leaves, with the counters."""
        loc = result.localization
        return LiveResult(
            frame=result.frame,
            pts=result.pts,
            raw_map=result.raw_map.astype(np.float32),
            image=frame.image,
            spectrum=result.spectrum,
            **loc.fields(),
            padded=bool(result.padded),
            gap=bool(result.gap),
            dropped=self.dropped,
            rejected=self.rejected,
            processed=self.processed,
            truth=frame.truth,
            stamps={**result.stamps, "publish": time.monotonic()},
            audio=result.audio,
            late=self.late,
            shown_map=None if result.shown_map is None else result.shown_map.astype(np.float32),
        )
