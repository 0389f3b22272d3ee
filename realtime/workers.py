"""The live pipeline's processes: capture -> inference -> results, over ZeroMQ.

``capture`` reads a source and pushes every packet (frames and audio blocks, stamped at capture).
``inference`` binds the input, drains it on every turn (audio blocks all go into the stage, in
order; of the frames only the newest is kept, the stale ones are dropped before the expensive
stage and counted; a message whose content the stage cannot use is rejected and counted, never
fatal), processes that one frame and publishes the result with the frame, the map, the per-stage
stamps and the counters. Both send heartbeats to ``realtime.supervisor.Supervisor``, which starts
them, restarts one that dies, and stops both on request. What they send and what they are started
with are the typed messages and specs of ``realtime.messages``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from realtime.messages import (
    AudioPacket,
    CaptureSpec,
    EndOfStream,
    FramePacket,
    Heartbeat,
    InferenceSpec,
    Ready,
    StandbyReady,
    WorkerError,
    packet_from_wire,
)
from realtime.transport import Channel, authenticate_clients
from realtime.wire import Message

if TYPE_CHECKING:
    from realtime.stage import InferenceStage

log = logging.getLogger(__name__)
HEARTBEAT_S = 0.5
DRAIN_LIMIT = 500  # messages taken from the input per turn
DRAIN_SETTLE_MS = 1  # a drain waits this long for the sender's queue to refill the inbox
# The capture -> inference link is bounded by the bytes of the frames in it, not by a count of
# messages shared with audio (ZeroMQ counts messages, not bytes; a block of audio is a few kB, a
# 640x480 frame 0.9 MB, a 1080p one 6.2 MB). The capture side holds as many messages as
# LINK_FRAME_BYTES of its frames (``link_hwm``: 36 of 640x480, 5 of 1080p; audio blocks share
# the count), the inference side INBOX_HWM more (about what arrives while one frame is processed;
# each turn drains the link whole, so frames do not age in it). A producer faster than the
# inference worker fills it and then loses frames, counted, never audio, instead of growing
# memory (with 10 000 messages the worker grew by 2.8 GB in tests/test_pipeline.py's flood).
LINK_FRAME_BYTES = 32 * 2**20
MIN_LINK_HWM, MAX_LINK_HWM = 4, 64
INBOX_HWM = 16
# Offline (a file read unpaced, every frame kept) the link holds only a few packets: the reader
# waits for the inference worker instead of running ahead, and a frame's latency (from its read)
# is its own processing, not a queue.
OFFLINE_LINK_HWM = 4
END_OF_STREAM_WAIT_S = 5.0
# A live frame waits at most this long for room on a full link, then is dropped (counted): by
# the time the consumer could take it, newer frames have come. Audio always waits (a device
# faster than real time loses blocks at its own bounded queue, counted there, not here).
FRAME_WAIT_S = 0.1


def link_hwm(frame_bytes: int | None, realtime: bool) -> int:
    """How many messages the capture side of the link may hold, for frames of ``frame_bytes``
    (None: no frame came): ``LINK_FRAME_BYTES`` of them live, a few offline."""
    if not realtime:
        return OFFLINE_LINK_HWM
    if not frame_bytes:
        return MIN_LINK_HWM
    return max(MIN_LINK_HWM, min(MAX_LINK_HWM, LINK_FRAME_BYTES // frame_bytes))


# Packets read before the first frame (audio) held back while the link waits to be sized by it.
SIZING_PACKETS = 64


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when workers stop


GATE_POLL_S = 0.02  # how often a capture worker waiting at its gate looks


def open_gate(path: str, sample_rate: int) -> None:
    """Let the capture worker that waits at ``path`` open its source, with the model's sample
    rate. The live pipeline starts that worker beside the inference worker, so that its process,
    imports and links are ready while the model loads, and opens the gate once the inference
    worker is ready: a file's or the synthetic world's clock starts when its frames can be
    taken, none is lost to the start-up; a restarted worker finds the gate open. The gate is a
    file in the pipeline's private folder, written whole (no process-shared lock or memory,
    which would hold descriptors for the rest of the process's life)."""
    folder = Path(path).parent
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".gate-")
    with os.fdopen(fd, "w") as fh:
        json.dump({"sample_rate": int(sample_rate)}, fh)
    os.replace(tmp, path)


def _wait_at_gate(path: str) -> int | None:
    """The model's sample rate once the gate at ``path`` is open; None when the process that
    would open it is gone."""
    parent = os.getppid()
    while True:
        try:
            return int(json.loads(Path(path).read_text())["sample_rate"])
        except FileNotFoundError:
            pass
        if os.getppid() != parent:
            return None
        time.sleep(GATE_POLL_S)


def capture_main(spec: CaptureSpec) -> None:
    """Process entry: read the source and push its packets to ``spec.frames`` (with CURVE client
    keys when it is another host's). Under a supervisor (``spec.status`` given) heartbeats and
    errors go there and Ctrl-C is left to the supervisor; ``fnac capture`` runs it in the
    foreground with neither. With ``spec.gate`` it prepares, then waits for the gate to open
    (``open_gate``)."""
    from realtime.sources import fit_frame, open_source, prepare

    context = zmq.Context()
    out: Channel | None = None  # opened once the first frame says how large frames are
    ended = False
    status = None
    if spec.status:
        _ignore_sigint()
        status = Channel(context, zmq.PUSH, spec.status, bind=False)
    sent, unsent = 0, 0
    last_beat = 0.0

    def beat() -> None:
        nonlocal last_beat
        if status and time.monotonic() - last_beat > HEARTBEAT_S:
            status.send(Heartbeat("capture", sent, time.monotonic(), dropped=unsent).to_wire())
            last_beat = time.monotonic()

    try:
        rate = None
        if spec.gate is not None:  # no heartbeat yet: one says the source opened and reads
            prepare(spec.source)
            rate = _wait_at_gate(spec.gate)
            if rate is None:  # the pipeline is gone: nothing to capture for
                return

        def send(packet: FramePacket | AudioPacket) -> None:
            nonlocal sent, unsent
            wait_s = None  # audio is never dropped here: it waits for room
            if isinstance(packet, FramePacket):
                wait_s = FRAME_WAIT_S if spec.realtime else None
            if _deliver(out, packet.to_wire(), wait_s=wait_s, idle=beat):
                sent += 1
            else:
                unsent += 1
                if unsent == 1:
                    log.warning("the inference side is behind: frames are dropped, counted")
            beat()

        def open_link(first_frame: FramePacket | None) -> Channel:
            size = first_frame.image.nbytes if first_frame is not None else None
            hwm = link_hwm(size, spec.realtime)
            return Channel(context, zmq.PUSH, spec.frames, bind=False, hwm=hwm, curve=spec.curve)

        held: list[FramePacket | AudioPacket] = []  # until the first frame sizes the link
        options = spec.source_options(rate)
        with open_source(spec.source, realtime=spec.realtime, **options) as packets:
            for packet in packets:
                if isinstance(packet, FramePacket):
                    packet = fit_frame(packet)  # a 4K frame is 25 MB on the link
                    if not spec.realtime:  # offline: its latency starts now, when it was read
                        packet.read = time.monotonic()
                if out is None:
                    held.append(packet)
                    beat()  # alive while the link waits for its first frame
                    if isinstance(packet, FramePacket) or len(held) >= SIZING_PACKETS:
                        frame = packet if isinstance(packet, FramePacket) else None
                        out = open_link(frame)
                        for waiting in held:
                            send(waiting)
                        held.clear()
                    continue
                send(packet)
        if out is None:  # the source ended before its first frame
            out = open_link(None)
            for waiting in held:
                send(waiting)
        end = EndOfStream(sent, unsent).to_wire()
        _deliver(out, end, wait_s=None if not spec.realtime else END_OF_STREAM_WAIT_S, idle=beat)
        ended = True  # what is still queued is delivered before the link closes
        if status and not spec.realtime:  # under the pipeline's supervisor, offline
            _stay_connected(beat)
    except Exception as exc:  # reported to the supervisor, which shows it and restarts
        if status:
            status.send(WorkerError("capture", str(exc), sent).to_wire())
        raise
    finally:
        time.sleep(0.2)  # let the last messages leave
        if out is not None:  # after the end: the queue's last packets and the end go first
            out.socket.close(linger=int(END_OF_STREAM_WAIT_S * 1000) if ended else 0)
        if status:
            status.close()
        context.term()


def _stay_connected(beat) -> None:
    """Offline, after the last packet: keep the link open (and beating) until the pipeline stops
    this worker. The inference worker takes the last packets only as it gets to them, and a
    peer that disconnects first loses what it had queued (ZeroMQ drops a gone peer's pipe), so
    the reader must not leave before the end of the stream has been taken."""
    parent = os.getppid()
    while os.getppid() == parent:
        beat()
        time.sleep(0.25)


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


def load_stage(spec: InferenceSpec) -> tuple[InferenceStage, Ready]:
    """The checkpoint read (once, in this process), its engine made and warmed up, the stage
    around it; and the ready message that describes them."""
    import torch

    from fnac.checkpoint import load_checkpoint
    from realtime.registry import describe, make_engine
    from realtime.results import ConfidenceSettings
    from realtime.stage import InferenceStage

    if spec.threads:
        torch.set_num_threads(spec.threads)
    model = load_checkpoint(spec.checkpoint, sample_rate=spec.sample_rate)
    info = model.info
    engine = make_engine(spec.backend, model, engine_dir=spec.engine_dir)
    settings = ConfidenceSettings.for_checkpoint(info.calibration)
    stage = InferenceStage(
        engine,
        info.audio,
        info.image,
        spec.audio_rate_hz,
        settings=settings,
        smooth_s=spec.smooth_s,
    )
    stage.warm_up()  # compile / allocate before the first real frame, not during it
    ready = Ready(
        engine=describe(engine),
        pid=os.getpid(),
        sample_rate=info.audio.sample_rate,
        image_size=info.image.size,
        tau=engine.tau,
        score_mid=settings.score_mid,
        calibrated=bool(info.calibration),
    )
    return stage, ready


def inference_main(spec: InferenceSpec, go: Any = None) -> None:
    """Process entry: the inference stage between a PULL input and a PUB output. With
    ``spec.curve`` (server keys), the input is encrypted and only the client key they name may
    connect.

    With ``go`` (an event) it is a warm standby: it loads the model and warms the engine, says
    so, and binds nothing until the supervisor sets ``go`` because the active worker died; then
    results resume as soon as the peers reconnect, with no model to load."""
    _ignore_sigint()
    context = zmq.Context()
    status = Channel(context, zmq.PUSH, spec.status, bind=False)
    auth = None
    try:
        stage, ready = load_stage(spec)
        if go is not None:
            status.send(StandbyReady("inference", os.getpid()).to_wire())
            if not _promoted(go):
                context.destroy(linger=0)
                return
        auth = authenticate_clients(context, spec.curve["client_public"]) if spec.curve else None
        hwm = OFFLINE_LINK_HWM if spec.every_frame else INBOX_HWM
        inbox = Channel(context, zmq.PULL, spec.inputs, bind=True, hwm=hwm, curve=spec.curve)
        outbox = Channel(context, zmq.PUB, spec.results, bind=True, hwm=100)
    except Exception as exc:  # a bad checkpoint, backend or address: said once, then exit
        who = "inference" if go is None else "inference standby"
        status.send(WorkerError(who, str(exc)).to_wire())
        time.sleep(0.2)  # let it leave
        if auth is not None:
            auth.stop()
        context.destroy(linger=0)  # closes whichever sockets were opened
        raise SystemExit(3) from exc
    status.send(ready.to_wire())
    try:
        _serve(stage, inbox, outbox, status, spec.every_frame)
    finally:
        for channel in (inbox, outbox, status):
            channel.close()
        if auth is not None:
            auth.stop()
        context.term()


def _serve(
    stage: InferenceStage,
    inbox: Channel,
    outbox: Channel,
    status: Channel,
    every_frame: bool = False,
) -> None:
    """Drain the input on every turn (bounded, so that a flood cannot keep this loop from
    processing frames and sending heartbeats), process the newest frame, publish its result.
    ``every_frame`` (offline): the oldest frame instead, none dropped; while the intake holds
    all it may, nothing is taken in, so the link fills and the reader waits."""
    from realtime.sources import fit_frame
    from realtime.stage import Intake

    intake = Intake(stage, every_frame=every_frame)
    last_beat = 0.0
    while True:
        batch: Iterable[Message] = ()
        if not intake.full:
            first = inbox.recv(timeout_ms=5 if intake.held else 100)
            # live: the whole link, not one inbox's worth (INBOX_HWM), since what stays at the
            # sender ages; offline the link is the reader's brake and only the inbox is taken.
            # Read lazily: the intake keeps the newest frames only, so a flood never piles up.
            settle = 0 if every_frame else DRAIN_SETTLE_MS
            if first is not None:
                batch = itertools.chain([first], inbox.take(DRAIN_LIMIT, settle))
        frame = intake.next_frame(packet_from_wire(msg) for msg in batch)
        if frame is not None:
            frame = fit_frame(frame)  # the image published is the one localized
            result = stage.process(frame)
            intake.processed += 1
            outbox.send(intake.publish(result, frame).to_wire())
        if intake.ended and not intake.held:
            outbox.send(EndOfStream(intake.processed).to_wire())
            intake.ended = False
        if time.monotonic() - last_beat > HEARTBEAT_S:
            beat = Heartbeat(
                "inference", intake.processed, time.monotonic(), intake.dropped, intake.rejected
            )
            status.send(beat.to_wire())
            last_beat = time.monotonic()


def _promoted(go: Any) -> bool:
    """Wait until ``go`` is set (True), or until the supervisor that would set it is gone."""
    parent = os.getppid()
    while not go.wait(0.5):
        if os.getppid() != parent:
            return False
    return True
