"""``fnac run``: the headless live loop (capture and inference workers, sinks in this process).

Each processed frame can become one JSON line (``frame``, ``t``, ``map``, ``peak``, ``box``,
``confidence``, ``sounding``, plus the stage latencies) and a frame of an annotated mp4. One status
line is rewritten in place: processed fps, capture->result latency, frames dropped as stale.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from collections import deque
from typing import Any

import numpy as np

from realtime.backends import BACKENDS, DEFAULT_BACKEND
from realtime.scoring import RunScore


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="the headless live loop: source -> FNAC -> JSON lines / mp4",
        description=__doc__,
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--source",
        help="camera index or URL (CAMERA+mic[:NAME] adds a microphone), a video file with "
        "an audio track, or 'synthetic'",
    )
    where.add_argument(
        "--listen",
        metavar="tcp://ADDRESS:PORT",
        help="take frames and audio from fnac capture on another host instead of a source",
    )
    p.add_argument("--keys", default=None, help="with --listen: server.key from fnac keys")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--sample-rate", type=int, default=None)
    p.add_argument("--backend", default=DEFAULT_BACKEND, choices=BACKENDS)
    p.add_argument("--out", default=None, help="annotated mp4")
    p.add_argument("--jsonl", default=None, help="one JSON line per processed frame")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.add_argument("--fast", action="store_true", help="read files unpaced (as fast as possible)")
    p.add_argument("--audio-rate", type=float, default=10.0, help="audio embeddings per second")
    p.add_argument(
        "--standby",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep a second, loaded inference worker ready: if the first dies, results resume "
        "in about a second instead of after a model reload (default: on with "
        f"{STANDBY_MIN_CPUS} or more CPU cores, where loading it does not slow the live run)",
    )
    p.set_defaults(func=run_command)


# Loading the spare takes a share of the cores for seconds, and the spare holds a model's memory;
# with fewer cores it is only started when asked for.
STANDBY_MIN_CPUS = 4


def standby_wanted(asked: bool | None) -> bool:
    """``--standby`` / ``--no-standby`` as given, else whether this machine has the cores."""
    return asked if asked is not None else (os.cpu_count() or 1) >= STANDBY_MIN_CPUS


class Sinks:
    def __init__(self, jsonl: str | None, video: str | None) -> None:
        self.jsonl = open(jsonl, "w") if jsonl else None  # noqa: SIM115 (closed in close())
        self.video_path = video
        self.writer = None

    def write(
        self, meta: dict[str, Any], stamps: dict[str, float], raw: np.ndarray, image: np.ndarray
    ) -> None:
        if self.jsonl:
            record = {
                "frame": meta["frame"],
                "t": round(meta["pts"], 4),
                "map": np.round(raw, 4).tolist(),
                "peak": meta["peak"],
                "box": meta["box"],
                "confidence": round(meta["confidence"], 4),
                "sounding": meta["sounding"],
                "latency_ms": round(1000 * (stamps["publish"] - stamps["capture"]), 2),
            }
            self.jsonl.write(json.dumps(record) + "\n")
        if self.video_path:
            self._frame(meta, raw, image)

    def _frame(self, meta: dict[str, Any], raw: np.ndarray, image: np.ndarray) -> None:
        import cv2

        from realtime.render import Style, annotate

        if self.writer is None:
            h, w = image.shape[:2]
            self.writer = cv2.VideoWriter(
                self.video_path, cv2.VideoWriter_fourcc(*"mp4v"), 30, (w, h)
            )
        rgb = annotate(image[:, :, ::-1], raw, meta, Style())
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        cv2.putText(
            bgr,
            f"confidence {meta['confidence']:.2f}",
            (8, 20),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (255, 255, 255),
            1,
        )
        self.writer.write(bgr)

    def close(self) -> None:
        if self.jsonl:
            self.jsonl.close()
        if self.writer is not None:
            self.writer.release()


class PipelineError(RuntimeError, ValueError):
    """The live pipeline could not start; the message says which worker and why."""


class LivePipeline:
    """The capture and inference workers under a supervisor, seen from the process that reads
    their results. Use as a context manager: the workers stop and the ipc folder goes on exit.

    ``source=None`` starts no capture worker: the inference worker binds ``listen`` (a tcp://
    address; CURVE ``server_keys`` unless it is loopback) and ``fnac capture`` on another host
    connects to it."""

    def __init__(
        self,
        source: str | None,
        checkpoint: str,
        backend: str = "cpu",
        sample_rate: int | None = None,
        realtime: bool = True,
        audio_rate: float = 10.0,
        say=None,
        listen: str | None = None,
        server_keys: dict[str, bytes] | None = None,
        standby: bool = False,
    ) -> None:
        import zmq

        from realtime.transport import Channel, check_exposure, ipc_endpoint, private_dir
        from realtime.workers import Supervisor, inference_main

        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.folder = private_dir()
        ends = {k: ipc_endpoint(self.folder, k) for k in ("frames", "results", "status")}
        self.context = zmq.Context()
        self.status = Channel(self.context, zmq.PULL, ends["status"], bind=True)
        self.results = Channel(self.context, zmq.SUB, ends["results"], bind=False, hwm=100)
        if source is None:
            if not listen:
                raise PipelineError("give a source, or an address to listen on for fnac capture")
            check_exposure(listen, server_keys.get("secret") if server_keys else None)
        inference = (
            checkpoint,
            backend,
            sample_rate,
            listen if source is None else ends["frames"],
            ends["results"],
            ends["status"],
            audio_rate,
            server_keys if source is None else None,
        )
        self.capture = (source, realtime, ends["frames"], ends["status"])
        self.listen = listen
        self.supervisor = Supervisor(
            {"inference": (inference_main, inference)},
            standby={"inference"} if standby else set(),
        )
        self.engine = ""
        self.model: dict = {}  # what the inference worker says of its checkpoint
        self.errors: dict[str, str] = {}  # worker -> the last error it reported

    def _await_ready(self, timeout_s: float = 120.0):
        """The inference worker's ready message; its start-up error, or its death, raised."""
        deadline = time.monotonic() + timeout_s
        worker = self.supervisor.processes["inference"]
        while time.monotonic() < deadline:
            msg = self.status.recv(timeout_ms=200)
            if msg is not None and msg.meta.get("error"):
                raise PipelineError(f"the inference worker could not start: {msg.meta['error']}")
            if msg is not None and msg.meta.get("ready"):
                return msg
            if msg is None and not worker.is_alive():
                raise PipelineError(
                    f"the inference worker exited while starting (exit code {worker.exitcode})"
                )
        raise PipelineError(f"the inference worker did not start within {timeout_s:.0f} s")

    def __enter__(self) -> LivePipeline:
        from realtime.workers import capture_main

        try:
            self.supervisor.start("inference")
            ready = self._await_ready()
            self.engine = ready.meta.get("engine", "")
            keys = ("sample_rate", "image_size", "tau", "score_mid", "calibrated")
            self.model = {k: ready.meta.get(k) for k in keys}
            where = "the checkpoint's calibration" if self.model["calibrated"] else "the defaults"
            self.say(
                f"engine: {self.engine} (inference worker pid {ready.meta.get('pid')}); "
                f"sounding threshold {self.model['score_mid']:.3f} from {where}"
            )
            source, realtime, frames, status = self.capture
            if source is None:
                self.say(f"listening for fnac capture on {self.listen}")
                return self
            # The synthetic world sounds at the model's rate: its class identities depend on
            # the rate, and this is the rate a checkpoint trained on the world has heard.
            options = {"sample_rate": self.model["sample_rate"]} if source == "synthetic" else {}
            self.supervisor.specs["capture"] = (
                capture_main,
                (source, realtime, options, frames, status),
            )
            self.supervisor.start("capture")
        except BaseException:
            self.close()
            raise
        return self

    def next(self, timeout_ms: int = 200):
        """The next result or end-of-stream message, None when none came in time; restarts and
        worker errors are reported through ``say`` on the way."""
        for event in self.supervisor.check():
            self.say(f"\n{event}")
        for msg in self.status.drain():
            if msg.meta.get("standby"):  # a spare, loaded and waiting: not the active worker
                self.say(f"\n{msg.meta['worker']} standby ready (pid {msg.meta['standby']})")
                continue
            if msg.meta.get("worker") and not msg.meta.get("error"):  # alive and well
                self.supervisor.beat(msg.meta["worker"])
            if msg.meta.get("error"):
                self.errors[msg.meta.get("worker", "?")] = msg.meta["error"]
                self.say(f"\n{msg.meta['worker']} worker: {msg.meta['error']}")
            elif msg.meta.get("ready"):
                self.say(f"\ninference worker back (pid {msg.meta.get('pid')})")
        for name, why in self.supervisor.gave_up.items():
            last = f"; its last error: {self.errors[name]}" if name in self.errors else ""
            raise PipelineError(
                f"the {name} worker {why} and kept failing when restarted, so it was given up{last}"
            )
        msg = self.results.recv(timeout_ms=timeout_ms)
        if msg is None or msg.kind == "result":
            return msg
        return msg if msg.kind == "status" and msg.meta.get("end_of_stream") else None

    def close(self) -> None:
        self.supervisor.stop()
        self.status.close()
        self.results.close()
        self.context.term()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        self.close()


def run_live(
    pipeline: LivePipeline,
    sinks: Sinks,
    seconds: float | None = None,
    status_line: bool = True,
) -> dict[str, Any]:
    """Read results until the source ends, ``seconds`` pass, or SIGINT / SIGTERM; write each to
    the sinks; returns the run's summary (``realtime.scoring``: speed, and localization when the
    source carries ground truth)."""
    stopping = {"flag": False}

    def stop(*_):
        stopping["flag"] = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    score = RunScore()
    latencies: deque[float] = deque(maxlen=300)  # the rolling status line's window
    times: deque[float] = deque(maxlen=60)
    start = time.monotonic()
    try:
        while not stopping["flag"]:
            if seconds is not None and time.monotonic() - start >= seconds:
                break
            msg = pipeline.next()
            if msg is None:
                continue
            if msg.kind == "status":  # end of stream
                break
            now = time.monotonic()
            meta = {**msg.meta, "frame": msg.seq}
            score.add(meta, now - msg.stamps["capture"])
            latencies.append(now - msg.stamps["capture"])
            times.append(now)
            sinks.write(meta, msg.stamps, msg.arrays["map"], msg.arrays["image"])
            if status_line:
                fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
                print(
                    f"\r{fps:5.1f} fps  latency p50 {1000 * np.median(latencies):6.1f} ms  "
                    f"dropped {score.dropped}  frames {score.frames}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return score.summary(time.monotonic() - start)


def describe(summary: dict[str, Any]) -> str:
    """One line for people: speed, and localization when it was scored."""
    lat = summary["latency_ms"]
    text = (
        f"processed {summary['frames']} frames in {summary['seconds']:.1f} s "
        f"({summary['fps']:.1f} fps), capture->result latency p50 {lat['p50']:.0f} / "
        f"p95 {lat['p95']:.0f} / p99 {lat['p99']:.0f} ms, dropped {summary['dropped']} stale frames"
    )
    if summary["pointing_accuracy"] is not None:
        text += (
            f"; pointing accuracy {summary['pointing_accuracy']:.3f}, mean box IoU "
            f"{summary['mean_box_iou']:.3f} over {summary['scored_frames']} sounding frames"
        )
    return text


def run_command(args: argparse.Namespace) -> int:
    from fnac.checkpoint import load_checkpoint
    from realtime.sources import SourceError, open_source
    from realtime.transport import check_exposure, read_key_file

    load_checkpoint(args.checkpoint, sample_rate=args.sample_rate)  # fail early, clearly
    server_keys = read_key_file(args.keys, "server") if args.keys else None
    if args.listen:
        check_exposure(args.listen, server_keys["secret"] if server_keys else None)
    elif args.source.startswith("mic"):
        raise SourceError(
            "a microphone alone gives no picture: pair it with a camera (--source 0+mic) "
            "or use a video file or 'synthetic'"
        )
    else:
        open_source(args.source, realtime=False).close()  # open it here first: a clear error
    sinks = Sinks(args.jsonl, args.out)
    try:
        with LivePipeline(
            args.source,
            args.checkpoint,
            args.backend,
            args.sample_rate,
            not args.fast,
            args.audio_rate,
            listen=args.listen,
            server_keys=server_keys,
            standby=standby_wanted(args.standby),
        ) as pipeline:
            summary = run_live(pipeline, sinks, args.seconds)
    finally:
        sinks.close()
    print("\n" + describe(summary), file=sys.stderr)
    for target in (args.jsonl, args.out):
        if target:
            print(f"wrote {target}")
    return 0
