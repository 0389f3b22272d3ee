"""``fnac run``: the headless live loop (capture and inference workers, sinks in this process).

Each processed frame can become one JSON line (``frame``, ``t``, ``map``, ``peak``, ``box``,
``confidence``, ``sounding``, plus the stage latencies) and a frame of an annotated mp4. One status
line is rewritten in place: processed fps, capture->result latency, frames dropped as stale.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from collections import deque
from typing import Any

import numpy as np


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="the headless live loop: source -> FNAC -> JSON lines / mp4",
        description=__doc__,
    )
    p.add_argument(
        "--source",
        required=True,
        help="camera index, URL, video file with an audio track, or 'synthetic'",
    )
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--sample-rate", type=int, default=None)
    p.add_argument("--backend", default="cpu", choices=["eager", "cpu", "compile", "tensorrt"])
    p.add_argument("--out", default=None, help="annotated mp4")
    p.add_argument("--jsonl", default=None, help="one JSON line per processed frame")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.add_argument("--fast", action="store_true", help="read files unpaced (as fast as possible)")
    p.add_argument("--audio-rate", type=float, default=10.0, help="audio embeddings per second")
    p.set_defaults(func=run_command)


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

        from fnac.overlay import blend, draw_box
        from realtime.results import analyze

        if self.writer is None:
            h, w = image.shape[:2]
            self.writer = cv2.VideoWriter(
                self.video_path, cv2.VideoWriter_fourcc(*"mp4v"), 30, (w, h)
            )
        heat = analyze(raw, image.shape[:2], np.zeros(0, np.float32), 16000, 1.0).heat
        opacity = 0.15 + 0.45 * float(meta["confidence"])  # the overlay fades when nothing sounds
        rgb = blend(image[:, :, ::-1], heat, opacity)
        if meta["sounding"]:
            rgb = draw_box(rgb, tuple(meta["box"]))
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


class LivePipeline:
    """The capture and inference workers under a supervisor, seen from the process that reads
    their results. Use as a context manager: the workers stop and the ipc folder goes on exit."""

    def __init__(
        self,
        source: str,
        checkpoint: str,
        backend: str = "cpu",
        sample_rate: int | None = None,
        realtime: bool = True,
        audio_rate: float = 10.0,
        say=None,
    ) -> None:
        import zmq

        from realtime.transport import Channel, ipc_endpoint, private_dir
        from realtime.workers import Supervisor, capture_main, inference_main

        self.say = say or (lambda text: print(text, file=sys.stderr, flush=True))
        self.folder = private_dir()
        ends = {k: ipc_endpoint(self.folder, k) for k in ("frames", "results", "status")}
        self.context = zmq.Context()
        self.status = Channel(self.context, zmq.PULL, ends["status"], bind=True)
        self.results = Channel(self.context, zmq.SUB, ends["results"], bind=False, hwm=100)
        inference = (
            checkpoint,
            backend,
            sample_rate,
            ends["frames"],
            ends["results"],
            ends["status"],
            audio_rate,
        )
        capture = (source, realtime, {}, ends["frames"], ends["status"])
        self.supervisor = Supervisor(
            {"inference": (inference_main, inference), "capture": (capture_main, capture)}
        )
        self.engine = ""

    def __enter__(self) -> LivePipeline:
        from realtime.sources import SourceError

        try:
            self.supervisor.start("inference")
            ready = self.status.recv(timeout_ms=120_000)
            while ready is not None and not ready.meta.get("ready"):
                ready = self.status.recv(timeout_ms=120_000)
            if ready is None:
                raise SourceError("the inference worker did not start within 2 minutes")
            self.engine = ready.meta.get("engine", "")
            self.say(f"engine: {self.engine} (inference worker pid {ready.meta.get('pid')})")
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
            if msg.meta.get("worker"):
                self.supervisor.beat(msg.meta["worker"])
            if msg.meta.get("error"):
                self.say(f"\n{msg.meta['worker']} worker: {msg.meta['error']}")
            elif msg.meta.get("ready"):
                self.say(f"\ninference worker back (pid {msg.meta.get('pid')})")
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


def run_command(args: argparse.Namespace) -> int:
    from fnac.checkpoint import load_checkpoint
    from realtime.sources import SourceError, open_source

    load_checkpoint(args.checkpoint, sample_rate=args.sample_rate)  # fail early, clearly
    if args.source.startswith("mic"):
        raise SourceError(
            "a microphone alone gives no picture; pairing a camera with a "
            "microphone is not in fnac run yet: use a video file or 'synthetic'"
        )
    open_source(args.source, realtime=False).close()  # open it here first: a clear error
    stopping = {"flag": False}

    def stop(*_):
        stopping["flag"] = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    sinks = Sinks(args.jsonl, args.out)
    latencies: deque[float] = deque(maxlen=300)  # the rolling status line's window
    all_latencies: list[float] = []
    times: deque[float] = deque(maxlen=60)
    processed, dropped, start = 0, 0, time.monotonic()
    try:
        with LivePipeline(
            args.source,
            args.checkpoint,
            args.backend,
            args.sample_rate,
            not args.fast,
            args.audio_rate,
        ) as pipeline:
            start = time.monotonic()
            while not stopping["flag"]:
                if args.seconds is not None and time.monotonic() - start >= args.seconds:
                    break
                msg = pipeline.next()
                if msg is None:
                    continue
                if msg.kind == "status":  # end of stream
                    break
                now = time.monotonic()
                processed, dropped = msg.meta["processed"], msg.meta["dropped"]
                latencies.append(now - msg.stamps["capture"])
                all_latencies.append(latencies[-1])
                times.append(now)
                sinks.write(
                    {**msg.meta, "frame": msg.seq},
                    msg.stamps,
                    msg.arrays["map"],
                    msg.arrays["image"],
                )
                fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
                p50 = 1000 * float(np.median(latencies))
                print(
                    f"\r{fps:5.1f} fps  latency p50 {p50:6.1f} ms  dropped {dropped}  "
                    f"frames {processed}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        sinks.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    elapsed = time.monotonic() - start
    summary = f"\nprocessed {processed} frames in {elapsed:.1f} s ({processed / elapsed:.1f} fps)"
    if all_latencies:
        p50, p95, p99 = (1000 * np.percentile(all_latencies, q) for q in (50, 95, 99))
        summary += f", capture->result latency p50 {p50:.0f} / p95 {p95:.0f} / p99 {p99:.0f} ms"
    print(f"{summary}, dropped {dropped} stale frames", file=sys.stderr)
    for target in (args.jsonl, args.out):
        if target:
            print(f"wrote {target}")
    return 0
