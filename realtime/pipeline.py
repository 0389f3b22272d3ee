"""The live pipeline as one object: the capture and inference workers under a supervisor, seen from
the process that reads their results, and the sinks that results go to.

``LivePipeline(LiveConfig(...))`` is what ``fnac run``, ``fnac demo``, ``fnac soak``, ``fnac bench``
and the window's feed use; ``run_live`` reads it into the sinks until the source ends, a time
passes or the user stops it. No torch here: the window's process imports this module.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from realtime.backends import DEFAULT_BACKEND
from realtime.messages import (
    CaptureSpec,
    EndOfStream,
    Heartbeat,
    InferenceSpec,
    LiveResult,
    Ready,
    StandbyReady,
    WorkerError,
    result_from_wire,
    status_from_wire,
)
from realtime.scoring import RunScore
from realtime.stats import Rolling
from realtime.wire import WireError

if TYPE_CHECKING:
    from realtime.recording import Recorder
    from realtime.sources import Source

# Loading the spare takes a share of the cores for seconds, and the spare holds a model's memory;
# with fewer cores it is only started when asked for.
STANDBY_MIN_CPUS = 4


def standby_wanted(asked: bool | None) -> bool:
    """``--standby`` / ``--no-standby`` as given, else whether this machine has the cores."""
    return asked if asked is not None else (os.cpu_count() or 1) >= STANDBY_MIN_CPUS


# The default time constant of the map smoothing (realtime.stage.MapSmoother): off, as measured
# (README, "Steadier maps").
SMOOTH_S = 0.0


@dataclass(frozen=True)
class LiveConfig:
    """What a live run is made of. ``source=None`` starts no capture worker: the inference worker
    binds ``listen`` (a tcp:// address; CURVE ``server_keys`` unless it is loopback) and ``fnac
    capture`` on another host connects to it."""

    source: str | None
    checkpoint: str
    backend: str = DEFAULT_BACKEND
    engine_dir: str | None = None  # tensorrt: the folder of fnac export
    sample_rate: int | None = None  # overrides the checkpoint's
    realtime: bool = True  # False: a file is read as fast as it decodes
    audio_rate_hz: float = 10.0  # audio embeddings per second of stream
    smooth_s: float = SMOOTH_S  # time constant of the smoothing of peak, box and drawing (0: off)
    listen: str | None = None
    server_keys: dict[str, bytes] | None = None
    standby: bool = False  # a warm spare inference worker
    seconds: float | None = None  # the synthetic source's length (None: endless)
    # the workers' OMP_WAIT_POLICY; None: what this machine measured (realtime.threadpolicy),
    # else fnac/threads.py's PASSIVE, unless the user set it
    omp_wait_policy: str | None = None


class PipelineError(RuntimeError, ValueError):
    """The live pipeline could not start or keep going; the message says which worker and why."""


def _quiet(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


class LivePipeline:
    """The workers of one live run. Use as a context manager: the workers stop and the ipc folder
    goes on exit. ``ready`` is what the inference worker said of its model once it started."""

    def __init__(self, config: LiveConfig, say: Callable[[str], None] | None = None) -> None:
        import zmq

        from realtime.supervisor import Supervisor
        from realtime.transport import Channel, check_exposure, ipc_endpoint, private_dir
        from realtime.workers import inference_main

        self.config = config
        self.say = say or _quiet
        if config.source is None:
            if not config.listen:
                raise PipelineError("give a source, or an address to listen on for fnac capture")
            keys = config.server_keys
            check_exposure(config.listen, keys.get("secret") if keys else None)
        self.policy_was = os.environ.get("OMP_WAIT_POLICY")
        if config.omp_wait_policy:  # asked for: the workers are started with it, then undone
            os.environ["OMP_WAIT_POLICY"] = config.omp_wait_policy
        else:
            from realtime.threadpolicy import apply

            apply()
        self.folder = private_dir()
        ends = {k: ipc_endpoint(self.folder, k) for k in ("frames", "results", "status")}
        self.ends = ends
        self.context = zmq.Context()
        self.status = Channel(self.context, zmq.PULL, ends["status"], bind=True)
        self.results = Channel(self.context, zmq.SUB, ends["results"], bind=False, hwm=100)
        remote = config.source is None
        inference = InferenceSpec(
            checkpoint=config.checkpoint,
            inputs=config.listen if remote else ends["frames"],  # type: ignore[arg-type]
            results=ends["results"],
            status=ends["status"],
            backend=config.backend,
            engine_dir=config.engine_dir,
            sample_rate=config.sample_rate,
            audio_rate_hz=config.audio_rate_hz,
            smooth_s=config.smooth_s,
            every_frame=not (remote or config.realtime),
            curve=config.server_keys if remote else None,
        )
        self.supervisor = Supervisor(
            {"inference": (inference_main, inference)},
            standby={"inference"} if config.standby else set(),
        )
        self.ready: Ready | None = None
        self.errors: dict[str, str] = {}  # worker -> the last error it reported
        self.capture_spec: CaptureSpec | None = None  # what the capture worker opens
        self.malformed = 0  # messages from the workers that did not follow the schema

    @property
    def engine(self) -> str:
        return self.ready.engine if self.ready else ""

    def _statuses(self, timeout_ms: int = 0):
        """The status link's messages, typed; malformed ones counted and dropped."""
        first = self.status.recv(timeout_ms=timeout_ms) if timeout_ms else None
        for msg in ([first] if first else []) + self.status.drain():
            try:
                yield status_from_wire(msg)
            except WireError:
                self.malformed += 1

    def _await_ready(self) -> Ready:
        """The inference worker's ready message; its start-up error, or its death, raised. It
        has the supervisor's start-up deadline (loading, compiling and warming up the engine)."""
        timeout_s = self.supervisor.start_s
        deadline = time.monotonic() + timeout_s
        worker = self.supervisor.processes["inference"]
        while time.monotonic() < deadline:
            said = list(self._statuses(timeout_ms=200))
            for status in said:
                if isinstance(status, WorkerError) and status.worker == "inference":
                    raise PipelineError(f"the inference worker could not start: {status.error}")
                if isinstance(status, WorkerError):  # the capture worker, started beside it
                    self.errors[status.worker] = status.error
                    self.say(f"{status.worker} worker: {status.error}")
                if isinstance(status, Heartbeat):
                    self.supervisor.beat(status.worker)
                if isinstance(status, Ready):
                    return status
            if not said and not worker.is_alive():
                raise PipelineError(
                    f"the inference worker exited while starting (exit code {worker.exitcode})"
                )
        raise PipelineError(f"the inference worker did not start within {timeout_s:.0f} s")

    def __enter__(self) -> LivePipeline:
        from realtime.workers import capture_main, open_gate

        config = self.config
        try:
            self.supervisor.start("inference")
            gate = None
            if config.source is not None:  # started now, it prepares while the model loads
                gate = str(self.folder / "capture.gate")
                capture = CaptureSpec(
                    source=config.source,
                    frames=self.ends["frames"],
                    status=self.ends["status"],
                    realtime=config.realtime,
                    seconds=config.seconds,
                    gate=gate,
                )
                self.supervisor.specs["capture"] = (capture_main, capture)
                self.capture_spec = capture
                self.supervisor.start("capture")
            self.ready = ready = self._await_ready()
            where = "the checkpoint's calibration" if ready.calibrated else "the defaults"
            self.say(
                f"engine: {ready.engine} (inference worker pid {ready.pid}); "
                f"sounding threshold {ready.score_mid:.3f} from {where}"
            )
            if gate is None:
                self.say(f"listening for fnac capture on {config.listen}")
                return self
            # the synthetic world sounds at the model's rate: its class identities depend on
            # the rate, and this is the rate a checkpoint trained on the world has heard
            open_gate(gate, ready.sample_rate)
            self.supervisor.starting("capture")  # its start-up runs from here, not its spawn
        except BaseException:
            self.close()
            raise
        return self

    def next(self, timeout_ms: int = 200) -> LiveResult | EndOfStream | None:
        """The next result or the end of the stream, None when none came in time; restarts and
        worker errors are reported through ``say`` on the way."""
        for event in self.supervisor.check():
            self.say(f"\n{event}")
        for status in self._statuses():
            if isinstance(status, StandbyReady):  # a spare, loaded: not the active worker
                self.say(f"\n{status.worker} standby ready (pid {status.pid})")
                continue
            if isinstance(status, WorkerError):
                self.errors[status.worker] = status.error
                self.say(f"\n{status.worker} worker: {status.error}")
                continue
            if isinstance(status, (Heartbeat, Ready)):  # alive and well
                self.supervisor.beat(status.worker)
            if isinstance(status, Ready):
                self.ready = status
                self.say(f"\ninference worker back (pid {status.pid})")
        for name, why in self.supervisor.gave_up.items():
            last = f"; its last error: {self.errors[name]}" if name in self.errors else ""
            raise PipelineError(
                f"the {name} worker {why} and kept failing when restarted, so it was given up{last}"
            )
        msg = self.results.recv(timeout_ms=timeout_ms)
        if msg is None:
            return None
        if msg.kind == "status" and msg.meta.get("end_of_stream"):
            return EndOfStream(msg.seq)
        try:
            return result_from_wire(msg)
        except WireError:
            self.malformed += 1
            return None

    def replay(self) -> Callable[[], Source] | None:
        """A function that opens this run's source again, unpaced, as its capture worker opened
        it (the synthetic world at the model's rate); None for a source that cannot be read
        again (a camera, a URL, a microphone, a capture peer)."""
        from realtime.recording import replayable
        from realtime.sources import open_source

        spec = self.capture_spec
        if spec is None or self.ready is None or not replayable(spec.source):
            return None
        options = spec.source_options(self.ready.sample_rate)
        return lambda: open_source(spec.source, realtime=False, **options)

    def source_fps(self) -> float | None:
        """The frame rate of a replayable source (its file's, or the synthetic world's)."""
        from realtime.sources import SYNTHETIC_FPS, frame_rate

        source = self.config.source
        if source == "synthetic":
            return SYNTHETIC_FPS
        return frame_rate(source) if source and Path(source).is_file() else None

    def close(self) -> None:
        self.supervisor.stop()
        if self.config.omp_wait_policy:
            if self.policy_was is None:
                os.environ.pop("OMP_WAIT_POLICY", None)
            else:
                os.environ["OMP_WAIT_POLICY"] = self.policy_was
        self.status.close()
        self.results.close()
        self.context.term()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        self.close()


class Sinks:
    """Where a run's results go: one JSON line per processed frame and an annotated mp4
    (``realtime.recording``: written once the pipeline said how to read its source again)."""

    def __init__(self, jsonl: str | None, video: str | None) -> None:
        self.jsonl = open(jsonl, "w") if jsonl else None  # noqa: SIM115 (closed in close())
        self.video_path = video
        self.recorder: Recorder | None = None

    def attach(self, pipeline: LivePipeline) -> None:
        """The pipeline is running: the video replays its source when that can be read again."""
        if self.video_path:
            from realtime.recording import Recorder

            self.recorder = Recorder(self.video_path, pipeline.replay(), pipeline.source_fps())

    def write(self, result: LiveResult) -> None:
        if self.jsonl:
            record = {
                "frame": result.frame,
                "t": round(result.pts, 4),
                "map": np.round(result.raw_map, 4).tolist(),
                "peak": list(result.peak),
                "box": list(result.box),
                "confidence": round(result.confidence, 4),
                "sounding": result.sounding,
                "latency_ms": round(1000 * (result.stamps["publish"] - result.origin_time), 2),
                "audio": result.audio.to_json() if result.audio else None,
            }
            if result.shown_map is not None:
                record["shown_map"] = np.round(result.shown_map, 4).tolist()
            if result.truth is not None:
                record["truth"] = result.truth
            self.jsonl.write(json.dumps(record) + "\n")
        if self.recorder is not None:
            self.recorder.add(result)

    def close(self) -> None:
        if self.jsonl:
            self.jsonl.close()
        if self.recorder is not None:
            self.recorder.close()


def run_live(
    pipeline: LivePipeline,
    sinks: Sinks,
    seconds: float | None = None,
    status_line: bool = True,
    on_result: Callable[[LiveResult], None] | None = None,
    total: int | None = None,
) -> dict[str, Any]:
    """Read results until the source ends, ``seconds`` pass, or SIGINT / SIGTERM; write each to
    the sinks (and give it to ``on_result``); returns the run's summary (``realtime.scoring``:
    speed, and localization when the source carries ground truth). With ``total`` (the frames
    an offline run will process) the status line is a progress bar."""
    stopping = {"flag": False}

    def stop(*_):
        stopping["flag"] = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    score = RunScore()
    rolling = Rolling(window=300)  # the status line's window
    start = time.monotonic()
    try:
        while not stopping["flag"]:
            if seconds is not None and time.monotonic() - start >= seconds:
                break
            result = pipeline.next()
            if result is None:
                continue
            if isinstance(result, EndOfStream):
                break
            now = time.monotonic()
            latency = now - result.origin_time
            score.add(result, latency)
            rolling.add(now, latency)
            sinks.write(result)
            if on_result is not None:
                on_result(result)
            if status_line:
                done = f"{score.frames}/{total}" if total else f"{score.frames}"
                bar = progress_bar(score.frames, total) if total else ""
                print(
                    f"\r{bar}{rolling.fps:5.1f} fps  latency p50 {rolling.latency_ms(50):6.1f} ms  "
                    f"dropped {score.dropped}  frames {done}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return score.summary(time.monotonic() - start)


def progress_bar(done: int, total: int, width: int = 24) -> str:
    """``[#########.......]  37% `` for ``done`` of ``total``."""
    share = min(1.0, done / total) if total > 0 else 1.0
    filled = int(round(width * share))
    return f"[{'#' * filled}{'.' * (width - filled)}] {100 * share:3.0f}%  "


def describe(summary: dict[str, Any]) -> str:
    """One line for people: speed, and localization when it was scored."""
    lat = summary["latency_ms"]
    text = (
        f"processed {summary['frames']} frames in {summary['seconds']:.1f} s "
        f"({summary['fps']:.1f} fps), capture->result latency p50 {lat['p50']:.0f} / "
        f"p95 {lat['p95']:.0f} / p99 {lat['p99']:.0f} ms, dropped {summary['dropped']} stale frames"
    )
    if summary.get("late"):
        text += f", {summary['late']} processed before all their sound had come (it was late)"
    if summary["pointing_accuracy_all"] is not None:
        heard = summary["pointing_accuracy"]
        text += (
            f"; pointing accuracy {heard:.3f}, mean box IoU {summary['mean_box_iou']:.3f} over "
            f"the {summary['scored_frames']} frames whose 3 s of sound came from the sounding "
            "object alone"
            if heard is not None
            else "; no frame whose 3 s of sound came from one object alone"
        )
        text += (
            f" ({summary['pointing_accuracy_all']:.3f} and "
            f"{summary['mean_box_iou_all']:.3f} over all {summary['scored_frames_all']} sounding "
            "frames, those just after the sound changed included)"
        )
    return text
