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

from fnac.threads import share_cores
from realtime.transport import Channel, authenticate_clients
from realtime.wire import Message

log = logging.getLogger(__name__)
HEARTBEAT_S = 0.5
DRAIN_LIMIT = 500  # messages taken from the input per turn
# The capture -> inference link holds at most this many messages on each side (ZeroMQ counts
# messages, not bytes): 32 frames of 640x480 are 29 MB, of 1080p 199 MB. Live, that is about half
# a second of packets; a producer faster than the inference worker fills it and then loses
# packets, counted, instead of growing the worker's memory (with 10 000 it grew by 2.8 GB in
# the 10 s of tests/test_pipeline.py's 640x480 flood).
LINK_HWM = 32
END_OF_STREAM_WAIT_S = 5.0


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
    from realtime.sources import AudioPacket, fit_frame, open_source

    context = zmq.Context()
    out = Channel(context, zmq.PUSH, endpoint, bind=False, hwm=LINK_HWM, curve=curve)
    status = None
    if status_endpoint:
        _ignore_sigint()
        status = Channel(context, zmq.PUSH, status_endpoint, bind=False)
    sent, unsent = 0, 0
    last_beat = 0.0

    def beat() -> None:
        nonlocal last_beat
        if status and time.monotonic() - last_beat > HEARTBEAT_S:
            stamps = {"now": time.monotonic()}
            status.send(
                Message("heartbeat", sent, stamps, meta={"worker": "capture", "unsent": unsent})
            )
            last_beat = time.monotonic()

    try:
        with open_source(source, realtime=realtime, **options) as packets:
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
                    packet = fit_frame(packet)  # a 4K frame is 25 MB on the link
                    msg = Message(
                        "frame",
                        packet.index,
                        {"capture": packet.t},
                        {"image": packet.image},
                        {"pts": packet.pts, "truth": packet.truth},
                    )
                if _deliver(out, msg, wait_s=None if not realtime else 0.0, idle=beat):
                    sent += 1
                else:
                    unsent += 1
                    if unsent == 1:
                        log.warning("the inference side is behind: packets are dropped, counted")
                beat()
        end = Message("status", sent, meta={"end_of_stream": True, "unsent": unsent})
        _deliver(out, end, wait_s=END_OF_STREAM_WAIT_S, idle=beat)
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


def _deliver(out: Channel, msg: Message, wait_s: float | None, idle) -> bool:
    """Send ``msg`` when the link has room within ``wait_s`` seconds (None: however long it
    takes, calling ``idle`` every quarter second so that the heartbeats go on). A live source
    waits 0: what the consumer cannot take now is stale by the time it could."""
    deadline = None if wait_s is None else time.monotonic() + wait_s
    while True:
        if out.send(msg, block=False):
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        out.socket.poll(250 if deadline is None else 50, zmq.POLLOUT)
        idle()


def inference_main(
    checkpoint: str,
    backend: str,
    sample_rate: int | None,
    in_endpoint: str,
    out_endpoint: str,
    status_endpoint: str,
    audio_rate_hz: float,
    curve: dict[str, bytes] | None = None,
    go: Any = None,
) -> None:
    """Process entry: the inference stage between a PULL input and a PUB output. With ``curve``
    (server keys), the input is encrypted and only the client key they name may connect.

    With ``go`` (an event) it is a warm standby: it loads the model and warms the engine, says
    so, and binds nothing until the supervisor sets ``go`` because the active worker died; then
    results resume as soon as the peers reconnect, with no model to load."""
    _ignore_sigint()
    from fnac.checkpoint import load_checkpoint
    from realtime.engines import make_engine
    from realtime.results import ConfidenceSettings
    from realtime.sources import AudioPacket, FramePacket, fit_frame
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
        settings = ConfidenceSettings.for_checkpoint(info.calibration)
        stage = InferenceStage(engine, info.audio, info.image, audio_rate_hz, settings=settings)
        stage.warm_up()  # compile / allocate before the first real frame, not during it
        if go is not None:
            status.send(Message("status", 0, meta={"worker": "inference", "standby": os.getpid()}))
            if not _promoted(go):
                context.destroy(linger=0)
                return
        auth = authenticate_clients(context, curve["client_public"]) if curve else None
        inbox = Channel(context, zmq.PULL, in_endpoint, bind=True, hwm=LINK_HWM, curve=curve)
        outbox = Channel(context, zmq.PUB, out_endpoint, bind=True, hwm=100)
    except Exception as exc:  # a bad checkpoint, backend or address: said once, then exit
        who = "inference" if go is None else "inference standby"
        status.send(Message("status", 0, meta={"worker": who, "error": str(exc)}))
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
                "score_mid": settings.score_mid,
                "calibrated": bool(info.calibration),
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
                frame = fit_frame(frames[-1])  # the image published is the one localized
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


def _promoted(go: Any) -> bool:
    """Wait until ``go`` is set (True), or until the supervisor that would set it is gone."""
    parent = os.getppid()
    while not go.wait(0.5):
        if os.getppid() != parent:
            return False
    return True


@dataclass
class Supervisor:
    """Starts the workers, restarts one that dies or whose heartbeats stop, stops them all.

    A worker's heartbeat clock starts with its first heartbeat, so loading a model or compiling
    an engine before that never counts as a stall. A worker that dies again before its first
    heartbeat (a camera that is gone, a model that no longer loads) is restarted after a delay
    that doubles each time, and given up after ``give_up_after`` such attempts: restarting it at
    once, for ever, would only spin the CPU and flood the log.

    For the workers named in ``standby`` it keeps a warm spare (started with a ``go`` event once
    the active one is healthy, so the two never load at once); a restart promotes the spare
    instead of starting from nothing."""

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
    standby: set[str] = field(default_factory=set)  # names that keep a warm spare
    spares: dict[str, tuple[mp.Process, Any]] = field(default_factory=dict)  # name -> (spare, go)
    spare_failures: dict[str, int] = field(default_factory=dict)
    max_spare_failures: int = 3

    def __post_init__(self) -> None:
        self.context = mp.get_context("spawn")
        share_cores()  # the workers inherit it: their libraries load after the spawn

    def _release(self, name: str) -> None:
        """Close a finished worker's Process object: its pipes stay open until closed (or
        garbage collected), one pair per start, which a long run would pile up."""
        old = self.processes.get(name)
        if old is not None and not old.is_alive():
            old.join(0)
            old.close()

    def _spawn(self, name: str, go: Any = None) -> mp.Process:
        target, args = self.specs[name]
        kwargs = {} if go is None else {"go": go}
        label = f"fnac-{name}" if go is None else f"fnac-{name}-standby"
        proc = self.context.Process(
            target=target, args=args, kwargs=kwargs, name=label, daemon=True
        )
        proc.start()
        return proc

    def start(self, name: str) -> bool:
        """Start worker ``name``: promote its warm spare if one is alive, else a new process.
        Returns whether it was a promotion."""
        self._release(name)
        proc, go = self.spares.pop(name, (None, None))
        promoted = proc is not None and proc.is_alive()
        if promoted:
            go.set()
        else:
            if proc is not None:
                proc.close()
            proc = self._spawn(name)
        self.processes[name] = proc
        self.beats.pop(name, None)
        return promoted

    def _keep_spare(self, name: str) -> None:
        """Start a spare for ``name`` once its active worker is healthy and none is alive; a
        spare that dies unused is counted, and after a few no more are started."""
        if name in self.gave_up or name not in self.beats:
            return
        proc, _ = self.spares.get(name, (None, None))
        if proc is not None and proc.is_alive():
            return
        if proc is not None:
            failures = self.spare_failures[name] = self.spare_failures.get(name, 0) + 1
            log.warning("%s standby exited (exit code %s)", name, proc.exitcode)
            proc.close()
            del self.spares[name]
            if failures >= self.max_spare_failures:
                log.error("%s standby failed %d times: running without one", name, failures)
        if self.spare_failures.get(name, 0) >= self.max_spare_failures:
            return
        go = self.context.Event()
        self.spares[name] = (self._spawn(name, go), go)

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
        how = "restarted from the warm standby" if self.start(name) else "restarted"
        event = f"{name} worker {why}; {how} ({self.restarts[name]})"
        log.warning(event)
        return event

    def check(self) -> list[str]:
        """Restart workers that died (not those that finished cleanly) or stalled, with back-off;
        returns what happened. ``gave_up`` names the workers it stopped restarting."""
        events = []
        now = time.monotonic()
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
        for name, (when, why) in list(self.pending.items()):  # due now, or scheduled just above
            if now >= when:
                del self.pending[name]
                events.append(self._restart(name, why))
        for name in self.standby:
            self._keep_spare(name)
        return [e for e in events if e]

    def stop(self, timeout: float = 3.0) -> None:
        everyone = [*self.processes.values(), *(proc for proc, _ in self.spares.values())]
        for proc in everyone:
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in everyone:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        for name in list(self.processes):
            self._release(name)
        self.processes = {name: p for name, p in self.processes.items() if _open(p)}
        for proc, _ in self.spares.values():
            if not proc.is_alive():
                proc.close()
        self.spares = {}


def _open(proc: mp.Process) -> bool:
    """Whether ``proc`` was not closed (a closed Process answers nothing, not even is_alive)."""
    try:
        proc.is_alive()
    except ValueError:
        return False
    return True
