"""What crosses a process boundary in the live pipeline, as typed messages, and their wire form.

The capture worker sends ``FramePacket`` and ``AudioPacket`` (and ``EndOfStream``); the inference
worker publishes ``LiveResult`` and says ``Ready``, ``StandbyReady`` or ``WorkerError`` on the
status link; both send ``Heartbeat``. Each message turns into a ``realtime.wire.Message`` with
``to_wire()`` and back with ``from_wire``, so readers use attributes, never string keys. The
workers' start-up arguments are the frozen ``CaptureSpec`` and ``InferenceSpec``.

Packets come from a peer that may be another host, so ``from_wire`` hands their fields on as sent
(missing parts as None) for the inference stage to check (``realtime.stage.BadPacket``). Results
and status messages come from our own workers: a missing or mistyped field is a ``WireError``,
which receivers drop and count like any malformed message.

Numpy only (no torch): the window's process reads results through this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from realtime.backends import DEFAULT_BACKEND
from realtime.wire import Message, WireError, is_seconds

# --------------------------------------------------------------------------- capture -> inference


@dataclass
class FramePacket:
    index: int  # frame number in the source
    t: float  # capture time, time.monotonic() seconds
    pts: float  # seconds from the source's start
    image: np.ndarray  # (H, W, 3) uint8 BGR
    truth: list[dict[str, Any]] | None = None  # synthetic source: objects, boxes, sounding
    # offline (a file read unpaced): time.monotonic() when it was read, where latency starts;
    # ``t`` is then the source's clock (start + pts), which keeps frames and audio aligned
    read: float | None = None

    def to_wire(self) -> Message:
        return Message(
            "frame",
            self.index,
            {"capture": self.t} | ({} if self.read is None else {"read": self.read}),
            {"image": self.image},
            {"pts": self.pts, "truth": self.truth},
        )


@dataclass
class AudioPacket:
    seq: int  # block number: a jump means blocks were lost
    t: float  # capture time of the first sample
    pts: float
    samples: np.ndarray  # (N,) float32 mono in [-1, 1]
    rate: int

    def to_wire(self) -> Message:
        return Message(
            "audio",
            self.seq,
            {"capture": self.t},
            {"samples": self.samples},
            {"rate": self.rate, "pts": self.pts},
        )


@dataclass(frozen=True)
class EndOfStream:
    """The source ended; ``count`` is what the sender sent (capture) or processed (inference)."""

    count: int = 0
    unsent: int = 0  # packets the capture side dropped because the link was full

    def to_wire(self) -> Message:
        return Message("status", self.count, meta={"end_of_stream": True, "unsent": self.unsent})


# --------------------------------------------------------------------------- inference -> readers


@dataclass(frozen=True)
class AudioSpan:
    """The audio a result's map was computed from: ``[start, end)`` in the source's own time (the
    frames' pts clock for a file or the synthetic world; capture time for a device), and how many
    of its samples were zeros standing in for audio the source had not delivered (before the
    stream began, or lost). Where the audio embedding is reused, the span is the one it was
    computed from."""

    start: float
    end: float
    zero_filled: int

    def to_json(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 5),
            "end": round(self.end, 5),
            "zero_filled": self.zero_filled,
        }


@dataclass(frozen=True)
class LiveResult:
    """One processed frame as the inference worker publishes it."""

    frame: int  # index of the frame in its source
    pts: float  # the frame's time in the source
    raw_map: np.ndarray  # (h, w) float32 similarity / tau
    image: np.ndarray  # (H, W, 3) uint8 BGR: the frame that was localized
    spectrum: np.ndarray  # (F,) dB spectrum of the newest audio (the window's strip)
    peak: tuple[int, int]  # x, y in frame pixels
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels
    confidence: float  # 0..1: does the sound come from something in view
    sounding: bool
    score: float  # top-quarter mean of the raw map, cosine units
    level_db: float  # RMS of the newest audio, dBFS
    padded: bool  # fewer than window_s seconds of audio had arrived
    gap: bool  # the window holds zero-filled lost audio
    dropped: int  # frames dropped as stale so far
    rejected: int  # packets the stage could not use so far
    processed: int  # frames processed so far
    truth: list[dict[str, Any]] | None  # what the synthetic source knows of the frame
    stamps: dict[str, float] = field(default_factory=dict)  # stage -> monotonic seconds
    audio: AudioSpan | None = None  # the audio behind the map (None: no audio had come)
    late: int = 0  # frames so far processed before all their audio had come (it waited 0.3 s)
    # the smoothed map peak and box came from, with --smooth (None: they came from raw_map)
    shown_map: np.ndarray | None = None

    @property
    def drawn_map(self) -> np.ndarray:
        """The map to draw: the smoothed one where there is one, else the model's."""
        return self.raw_map if self.shown_map is None else self.shown_map

    @property
    def capture_time(self) -> float:
        return self.stamps["capture"]

    @property
    def origin_time(self) -> float:
        """Where the frame's latency starts: its capture, or (offline) when it was read."""
        return self.stamps.get("read", self.stamps["capture"])

    def to_wire(self) -> Message:
        return Message(
            "result",
            self.frame,
            self.stamps,
            {"map": self.raw_map, "image": self.image, "spectrum": self.spectrum}
            | ({} if self.shown_map is None else {"shown": self.shown_map}),
            {
                "pts": self.pts,
                "peak": list(self.peak),
                "box": list(self.box),
                "confidence": self.confidence,
                "sounding": self.sounding,
                "score": self.score,
                "level_db": self.level_db,
                "padded": self.padded,
                "gap": self.gap,
                "dropped": self.dropped,
                "rejected": self.rejected,
                "processed": self.processed,
                "truth": self.truth,
                "audio": self.audio.to_json() if self.audio else None,
                "late": self.late,
            },
        )


@dataclass(frozen=True)
class Ready:
    """The inference worker loaded its model and is taking input."""

    engine: str  # the engine's description
    pid: int
    sample_rate: int
    image_size: int
    tau: float
    score_mid: float  # the sounding threshold in use
    calibrated: bool  # whether it is the checkpoint's own (fnac eval --calibrate)
    worker: str = "inference"

    def to_wire(self) -> Message:
        meta = {
            "ready": True,
            "worker": self.worker,
            "engine": self.engine,
            "pid": self.pid,
            "sample_rate": self.sample_rate,
            "image_size": self.image_size,
            "tau": self.tau,
            "score_mid": self.score_mid,
            "calibrated": self.calibrated,
        }
        return Message("status", 0, meta=meta)


@dataclass(frozen=True)
class StandbyReady:
    """A spare inference worker is loaded and waits to be promoted."""

    worker: str
    pid: int

    def to_wire(self) -> Message:
        return Message("status", 0, meta={"worker": self.worker, "standby": self.pid})


@dataclass(frozen=True)
class WorkerError:
    """A worker could not start or stopped on an error; the text is for people."""

    worker: str
    error: str
    count: int = 0

    def to_wire(self) -> Message:
        return Message("status", self.count, meta={"worker": self.worker, "error": self.error})


@dataclass(frozen=True)
class Heartbeat:
    """A worker is alive; ``count`` is what it sent or processed so far."""

    worker: str
    count: int
    now: float  # monotonic seconds when it was sent
    dropped: int = 0  # inference: stale frames dropped; capture: packets the link refused
    rejected: int = 0  # inference: packets it could not use

    def to_wire(self) -> Message:
        meta = {"worker": self.worker, "dropped": self.dropped, "rejected": self.rejected}
        return Message("heartbeat", self.count, {"now": self.now}, meta=meta)


Packet = FramePacket | AudioPacket | EndOfStream
Status = Ready | StandbyReady | WorkerError | Heartbeat | EndOfStream


# --------------------------------------------------------------------------- reading


def _need(meta: dict[str, Any], key: str, kinds: type | tuple[type, ...]) -> Any:
    value = meta.get(key)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _tuple(kinds)):
        raise WireError(f"{key!r} is {value!r:.40}, not {_names(kinds)}")
    return value


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _names(kinds: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _tuple(kinds))


def _array(msg: Message, name: str) -> np.ndarray:
    if name not in msg.arrays:
        raise WireError(f"a {msg.kind} message without its {name!r} array")
    return msg.arrays[name]


def _ints(value: Any, n: int, key: str) -> tuple[int, ...]:
    if not (isinstance(value, list) and len(value) == n and all(type(v) is int for v in value)):
        raise WireError(f"{key!r} is {value!r:.60}, not {n} integers")
    return tuple(value)


NUMBER = (int, float)


def packet_from_wire(msg: Message) -> Packet | None:
    """A capture peer's message as a packet, its fields as sent (the stage checks them); None for
    a kind that is not a packet."""
    if msg.kind == "audio":
        meta = msg.meta
        return AudioPacket(
            msg.seq,
            msg.stamps.get("capture"),
            meta.get("pts", 0.0),
            msg.arrays.get("samples"),
            meta.get("rate"),
        )
    if msg.kind == "frame":
        meta = msg.meta
        return FramePacket(
            msg.seq,
            msg.stamps.get("capture"),
            meta.get("pts"),
            msg.arrays.get("image"),
            meta.get("truth"),
            msg.stamps.get("read"),
        )
    if msg.kind == "status" and msg.meta.get("end_of_stream"):
        return EndOfStream(msg.seq, int(msg.meta.get("unsent") or 0))
    return None


def result_from_wire(msg: Message) -> LiveResult:
    """A result message of the inference worker; WireError when it is not one."""
    if msg.kind != "result":
        raise WireError(f"a {msg.kind} message where a result was expected")
    meta = msg.meta
    if "capture" not in msg.stamps:
        raise WireError("a result without its capture stamp")
    truth = meta.get("truth")
    if truth is not None and not isinstance(truth, list):
        raise WireError("a result whose truth is not a list")
    return LiveResult(
        frame=msg.seq,
        pts=float(_need(meta, "pts", NUMBER)),
        raw_map=_array(msg, "map"),
        image=_array(msg, "image"),
        spectrum=_array(msg, "spectrum"),
        peak=_ints(meta.get("peak"), 2, "peak"),  # type: ignore[arg-type]
        box=_ints(meta.get("box"), 4, "box"),  # type: ignore[arg-type]
        confidence=float(_need(meta, "confidence", NUMBER)),
        sounding=_need(meta, "sounding", bool),
        score=float(_need(meta, "score", NUMBER)),
        level_db=float(_need(meta, "level_db", NUMBER)),
        padded=_need(meta, "padded", bool),
        gap=_need(meta, "gap", bool),
        dropped=_need(meta, "dropped", int),
        rejected=_need(meta, "rejected", int),
        processed=_need(meta, "processed", int),
        truth=truth,
        stamps=dict(msg.stamps),
        audio=_span(meta.get("audio")),
        late=_count(meta.get("late", 0), "late"),
        shown_map=_array(msg, "shown") if "shown" in msg.arrays else None,
    )


def _count(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise WireError(f"{key!r} is {value!r:.40}, not a count")
    return value


def _span(value: Any) -> AudioSpan | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise WireError("a result whose audio span is not an object")
    start, end = _need(value, "start", NUMBER), _need(value, "end", NUMBER)
    zero_filled = _need(value, "zero_filled", int)
    if not (is_seconds(start) and is_seconds(end) and 0 <= zero_filled <= 2**31):
        raise WireError(f"an audio span that is not finite times and a count: {value!r:.80}")
    return AudioSpan(float(start), float(end), zero_filled)


def status_from_wire(msg: Message) -> Status:
    """A heartbeat or status message of a worker; WireError when it is neither."""
    meta = msg.meta
    if msg.kind == "heartbeat":
        return Heartbeat(
            _need(meta, "worker", str),
            msg.seq,
            msg.stamps.get("now", 0.0),
            int(meta.get("dropped") or 0),
            int(meta.get("rejected") or 0),
        )
    if msg.kind != "status":
        raise WireError(f"a {msg.kind} message on the status link")
    if meta.get("end_of_stream"):
        return EndOfStream(msg.seq, int(meta.get("unsent") or 0))
    worker = _need(meta, "worker", str)
    if "error" in meta:
        return WorkerError(worker, str(meta["error"]), msg.seq)
    if "standby" in meta:
        return StandbyReady(worker, _need(meta, "standby", int))
    if meta.get("ready"):
        return Ready(
            engine=_need(meta, "engine", str),
            pid=_need(meta, "pid", int),
            sample_rate=_need(meta, "sample_rate", int),
            image_size=_need(meta, "image_size", int),
            tau=float(_need(meta, "tau", NUMBER)),
            score_mid=float(_need(meta, "score_mid", NUMBER)),
            calibrated=_need(meta, "calibrated", bool),
            worker=worker,
        )
    raise WireError(f"a status message of the {worker} worker that says nothing known")


# --------------------------------------------------------------------------- start-up specs


@dataclass(frozen=True)
class CaptureSpec:
    """What the capture worker needs: the source, how to read it, where packets go."""

    source: str  # as ``realtime.sources.open_source`` takes it
    frames: str  # endpoint the packets are pushed to
    status: str | None = None  # supervisor's status endpoint; None: run in the foreground
    realtime: bool = True  # paced as a live source; False: a file as fast as it reads
    sample_rate: int | None = None  # the synthetic source sounds at the model's rate
    seconds: float | None = None  # the synthetic source's length
    curve: dict[str, bytes] | None = None  # CURVE client keys, for another host
    # the gate file (``realtime.workers.open_gate``): the worker starts while the model loads
    # and opens its source when the gate opens (the model is ready), with the model's rate
    gate: str | None = None

    def source_options(self, sample_rate: int | None = None) -> dict[str, Any]:
        if self.source != "synthetic":
            return {}
        options: dict[str, Any] = {"seconds": self.seconds}
        if sample_rate or self.sample_rate:
            options["sample_rate"] = sample_rate or self.sample_rate
        return options


@dataclass(frozen=True)
class InferenceSpec:
    """What the inference worker needs: the model, the engine and the three links."""

    checkpoint: str
    inputs: str  # endpoint it binds for packets (ipc://, or tcp:// with --listen)
    results: str  # endpoint it binds for results
    status: str  # the supervisor's status endpoint
    backend: str = DEFAULT_BACKEND
    engine_dir: str | None = None  # the tensorrt backend's folder (fnac export)
    sample_rate: int | None = None  # overrides the checkpoint's (published files carry none)
    audio_rate_hz: float = 10.0  # audio embeddings per second of stream
    smooth_s: float = 0.0  # time constant of the map smoothing (0: off)
    every_frame: bool = False  # offline: every frame in order, none dropped (a file unpaced)
    threads: int | None = None  # torch's intra-op threads; None: torch's default
    curve: dict[str, bytes] | None = None  # CURVE server keys when inputs is another host's
