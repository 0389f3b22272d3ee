"""The live pipeline's processes: capture -> inference -> results, over ZeroMQ.

``capture`` reads a source and pushes every packet (frames and audio blocks, stamped at capture).
``inference`` binds the input, drains it on every turn (audio blocks all go into the stage, in
order; of the frames only the newest is kept, the stale ones are dropped before the expensive
stage and counted; a message whose content the stage cannot use is rejected and counted, never
fatal), processes that one frame and publishes the result with the frame, the map, the per-stage
stamps and the counters. Both send heartbeats; ``Supervisor`` starts them, restarts one that dies,
and stops both on request, leaving no process behind.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from realtime.transport import Channel, authenticate_clients
from realtime.wire import Message

log = logging.getLogger(__name__)
HEARTBEAT_S = 0.5
DRAIN_LIMIT = 500  # messages taken from the input per turn


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when workers stop


def capture_main(
    source: str,
    realtime: bool,
    options: dict[str, Any],
    endpoint: str,
    status_endpoint: str | None,
    curve: dict[str, bytes] | None = None,
) -> None:
    """Process entry: read ``source`` and push its packets to ``endpoint`` (with CURVE client
    keys when it is another host's). Under a supervisor (``status_endpoint`` given) heartbeats
    and errors go there and Ctrl-C is left to the supervisor; ``fnac capture`` runs it in the
    foreground with neither."""
    from realtime.sources import AudioPacket, open_source

    context = zmq.Context()
    out = Channel(context, zmq.PUSH, endpoint, bind=False, hwm=10000, curve=curve)
    status = None
    if status_endpoint:
        _ignore_sigint()
        status = Channel(context, zmq.PUSH, status_endpoint, bind=False)
    sent = 0
    try:
        with open_source(source, realtime=realtime, **options) as packets:
            last_beat = 0.0
            for packet in packets:
                if isinstance(packet, AudioPacket):
                    msg = Message(
                        "audio",
                        packet.seq,
                        {"capture": packet.t},
                        {"samples": packet.samples},
                        {"rate": packet.rate, "pts": packet.pts},
                    )
                else:
                    msg = Message(
                        "frame",
                        packet.index,
                        {"capture": packet.t},
                        {"image": packet.image},
                        {"pts": packet.pts, "truth": packet.truth},
                    )
                out.send(msg)
                sent += 1
                if status and time.monotonic() - last_beat > HEARTBEAT_S:
                    status.send(
                        Message(
                            "heartbeat", sent, {"now": time.monotonic()}, meta={"worker": "capture"}
                        )
                    )
                    last_beat = time.monotonic()
        out.send(Message("status", sent, meta={"end_of_stream": True}))
    except Exception as exc:  # reported to the supervisor, which shows it and restarts
        if status:
            status.send(Message("status", sent, meta={"worker": "capture", "error": str(exc)}))
        raise
    finally:
        time.sleep(0.2)  # let the last messages leave
        out.close()
        if status:
            status.close()
        context.term()


def inference_main(
    checkpoint: str,
    backend: str,
    sample_rate: int | None,
    in_endpoint: str,
    out_endpoint: str,
    status_endpoint: str,
    audio_rate_hz: float,
    curve: dict[str, bytes] | None = None,
) -> None:
    """Process entry: the inference stage between a PULL input and a PUB output. With ``curve``
    (server keys), the input is encrypted and only the client key they name may connect."""
    _ignore_sigint()
    from fnac.checkpoint import load_checkpoint
    from realtime.engines import make_engine
    from realtime.sources import AudioPacket, FramePacket
    from realtime.stage import BadPacket, InferenceStage, checked_frame

    context = zmq.Context()
    status = Channel(context, zmq.PUSH, status_endpoint, bind=False)
    auth = None
    try:
        model = load_checkpoint(checkpoint, sample_rate=sample_rate)
        info = model.info
        engine = make_engine(
            backend,
            model,
            image_size=info.image.size,
            spec_frames=info.audio.n_frames(),
            checkpoint=checkpoint,
        )
        stage = InferenceStage(engine, info.audio, info.image, audio_rate_hz)
        stage.warm_up()  # compile / allocate before the first real frame, not during it
        auth = authenticate_clients(context, curve["client_public"]) if curve else None
        inbox = Channel(context, zmq.PULL, in_endpoint, bind=True, hwm=10000, curve=curve)
        outbox = Channel(context, zmq.PUB, out_endpoint, bind=True, hwm=100)
    except Exception as exc:  # a bad checkpoint, backend or address: said once, then exit
        status.send(Message("status", 0, meta={"worker": "inference", "error": str(exc)}))
        time.sleep(0.2)  # let it leave
        if auth is not None:
            auth.stop()
        context.destroy(linger=0)  # closes whichever sockets were opened
        raise SystemExit(3) from exc
    dropped, rejected, processed, last_beat = 0, 0, 0, 0.0
    status.send(
        Message(
            "status",
            0,
            meta={
                "worker": "inference",
                "ready": True,
                "engine": engine.describe(),
                "pid": os.getpid(),
                "sample_rate": info.audio.sample_rate,
                "image_size": info.image.size,
                "tau": engine.tau,
            },
        )
    )
    try:
        while True:
            first = inbox.recv(timeout_ms=100)
            # bounded, so that a flood (a device delivering faster than real time) cannot keep
            # this loop from processing frames and sending heartbeats
            batch = ([first] if first else []) + inbox.drain(limit=DRAIN_LIMIT)
            frames = []
            for msg in batch:
                # packets as sent, missing parts as None: the stage checks them (BadPacket)
                try:
                    if msg.kind == "audio":
                        stage.add_audio(
                            AudioPacket(
                                msg.seq,
                                msg.stamps.get("capture"),
                                msg.meta.get("pts", 0.0),
                                msg.arrays.get("samples"),
                                msg.meta.get("rate"),
                            )
                        )
                    elif msg.kind == "frame":  # checked now, so a bad one never hides a good one
                        frames.append(
                            checked_frame(
                                FramePacket(
                                    msg.seq,
                                    msg.stamps.get("capture"),
                                    msg.meta.get("pts"),
                                    msg.arrays.get("image"),
                                    msg.meta.get("truth"),
                                )
                            )
                        )
                    elif msg.kind == "status" and msg.meta.get("end_of_stream"):
                        outbox.send(Message("status", processed, meta={"end_of_stream": True}))
                except BadPacket as exc:
                    rejected += 1
                    if rejected == 1:
                        log.warning(
                            "rejected %s message %d: %s (more are counted)", msg.kind, msg.seq, exc
                        )
            if frames:
                dropped += len(frames) - 1
                frame = frames[-1]
                result = stage.process(frame)
                loc = result.localization
                processed += 1
                stamps = {**result.stamps, "publish": time.monotonic()}
                outbox.send(
                    Message(
                        "result",
                        result.frame,
                        stamps,
                        {
                            "map": result.raw_map.astype(np.float32),
                            "image": frame.image,
                            "spectrum": result.spectrum,
                        },
                        {
                            "pts": result.pts,
                            "peak": list(loc.peak),
                            "box": list(loc.box),
                            "confidence": loc.confidence,
                            "sounding": bool(loc.sounding),
                            "score": loc.score,
                            "level_db": loc.level_db,
                            "padded": result.padded,
                            "gap": result.gap,
                            "dropped": dropped,
                            "rejected": rejected,
                            "processed": processed,
                            "truth": frame.truth,
                        },
                    )
                )
            if time.monotonic() - last_beat > HEARTBEAT_S:
                status.send(
                    Message(
                        "heartbeat",
                        processed,
                        {"now": time.monotonic()},
                        meta={"worker": "inference", "dropped": dropped, "rejected": rejected},
                    )
                )
                last_beat = time.monotonic()
    finally:
        for channel in (inbox, outbox, status):
            channel.close()
        if auth is not None:
            auth.stop()
        context.term()


@dataclass
class Supervisor:
    """Starts the workers, restarts one that dies or whose heartbeats stop, stops them all.

    A worker's heartbeat clock starts with its first heartbeat, so loading a model or compiling
    an engine before that never counts as a stall. A worker that dies again before its first
    heartbeat (a camera that is gone, a model that no longer loads) is restarted after a delay
    that doubles each time, and given up after ``give_up_after`` such attempts: restarting it at
    once, for ever, would only spin the CPU and flood the log."""

    specs: dict[str, tuple[Any, tuple]]  # name -> (target, args)
    stall_s: float = 5.0  # no heartbeat for this long: the worker is hung
    backoff_s: float = 0.5  # delay before the first restart; doubles while starts keep failing
    backoff_max_s: float = 8.0
    give_up_after: int = 5  # failed starts in a row (no heartbeat in between)
    processes: dict[str, mp.Process] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)
    beats: dict[str, float] = field(default_factory=dict)  # name -> last heartbeat (monotonic)
    failing: dict[str, int] = field(default_factory=dict)  # name -> failed starts in a row
    pending: dict[str, tuple[float, str]] = field(default_factory=dict)  # name -> (when, why)
    gave_up: dict[str, str] = field(default_factory=dict)  # name -> why

    def __post_init__(self) -> None:
        self.context = mp.get_context("spawn")

    def _release(self, name: str) -> None:
        """Close a finished worker's Process object: its pipes stay open until closed (or
        garbage collected), one pair per start, which a long run would pile up."""
        old = self.processes.get(name)
        if old is not None and not old.is_alive():
            old.join(0)
            old.close()

    def start(self, name: str) -> None:
        self._release(name)
        target, args = self.specs[name]
        proc = self.context.Process(target=target, args=args, name=f"fnac-{name}", daemon=True)
        proc.start()
        self.processes[name] = proc
        self.beats.pop(name, None)

    def start_all(self) -> None:
        for name in self.specs:
            self.start(name)

    def beat(self, name: str) -> None:
        """Record a heartbeat (or any sign of life) from worker ``name``."""
        if name in self.processes:
            self.beats[name] = time.monotonic()

    def _schedule(self, name: str, why: str, now: float) -> str:
        """Plan the restart of a worker that died or hung: at once after a run that sent
        heartbeats, later and later while it keeps failing before its first one."""
        streak = 1 if name in self.beats else self.failing.get(name, 0) + 1
        self.failing[name] = streak
        if streak > self.give_up_after:
            self.gave_up[name] = why
            event = f"{name} worker {why}; gave up after {streak - 1} failed restarts"
            log.error(event)
            return event
        delay = 0.0 if streak == 1 else min(self.backoff_s * 2 ** (streak - 2), self.backoff_max_s)
        self.pending[name] = (now + delay, why)
        return "" if delay == 0 else f"{name} worker {why}; restarting in {delay:.1f} s"

    def _restart(self, name: str, why: str) -> str:
        self.restarts[name] = self.restarts.get(name, 0) + 1
        event = f"{name} worker {why}; restarted ({self.restarts[name]})"
        log.warning(event)
        self.start(name)
        return event

    def check(self) -> list[str]:
        """Restart workers that died (not those that finished cleanly) or stalled, with back-off;
        returns what happened. ``gave_up`` names the workers it stopped restarting."""
        events = []
        now = time.monotonic()
        for name, (when, why) in list(self.pending.items()):
            if now >= when:
                del self.pending[name]
                events.append(self._restart(name, why))
        for name, proc in list(self.processes.items()):
            if name in self.finished or name in self.pending or name in self.gave_up:
                continue
            if proc.is_alive():
                last = self.beats.get(name)
                if last is None or now - last <= self.stall_s:
                    continue
                proc.kill()
                proc.join(2.0)
                why = f"sent no heartbeat for {now - last:.1f} s"
            elif proc.exitcode == 0:
                self.finished.add(name)
                continue
            else:
                why = f"died (exit code {proc.exitcode})"
            events.append(self._schedule(name, why, now))
            if name in self.pending and self.pending[name][0] <= now:
                del self.pending[name]
                events[-1] = self._restart(name, why)
        return [e for e in events if e]

    def stop(self, timeout: float = 3.0) -> None:
        for proc in self.processes.values():
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.processes.values():
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        for name in list(self.processes):
            self._release(name)
        self.processes = {name: p for name, p in self.processes.items() if _open(p)}


def _open(proc: mp.Process) -> bool:
    """Whether ``proc`` was not closed (a closed Process answers nothing, not even is_alive)."""
    try:
        proc.is_alive()
    except ValueError:
        return False
    return True
