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


def run_command(args: argparse.Namespace) -> int:
    import zmq

    from fnac.checkpoint import load_checkpoint
    from realtime.sources import SourceError, open_source
    from realtime.transport import Channel, ipc_endpoint, private_dir
    from realtime.workers import Supervisor, capture_main, inference_main

    load_checkpoint(args.checkpoint, sample_rate=args.sample_rate)  # fail early, clearly
    if args.source.startswith("mic"):
        raise SourceError(
            "a microphone alone gives no picture; pairing a camera with a "
            "microphone is not in fnac run yet: use a video file or 'synthetic'"
        )
    open_source(args.source, realtime=False).close()  # open it here first: a clear error
    folder = private_dir()
    ends = {k: ipc_endpoint(folder, k) for k in ("frames", "results", "status")}
    context = zmq.Context()
    status = Channel(context, zmq.PULL, ends["status"], bind=True)
    results = Channel(context, zmq.SUB, ends["results"], bind=False, hwm=100)
    supervisor = Supervisor(
        {
            "inference": (
                inference_main,
                (
                    args.checkpoint,
                    args.backend,
                    args.sample_rate,
                    ends["frames"],
                    ends["results"],
                    ends["status"],
                    args.audio_rate,
                ),
            ),
            "capture": (
                capture_main,
                (args.source, not args.fast, {}, ends["frames"], ends["status"]),
            ),
        }
    )
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
        supervisor.start("inference")
        ready = status.recv(timeout_ms=120_000)
        while ready is not None and not ready.meta.get("ready"):
            ready = status.recv(timeout_ms=120_000)
        if ready is None:
            raise SourceError("the inference worker did not start within 2 minutes")
        print(
            f"engine: {ready.meta.get('engine')} (inference worker pid {ready.meta.get('pid')})",
            file=sys.stderr,
            flush=True,
        )
        supervisor.start("capture")
        start = time.monotonic()
        while not stopping["flag"]:
            if args.seconds is not None and time.monotonic() - start >= args.seconds:
                break
            for event in supervisor.check():
                print(f"\n{event}", file=sys.stderr, flush=True)
            for msg in status.drain():
                if msg.meta.get("error"):
                    print(f"\n{msg.meta['worker']} worker: {msg.meta['error']}", file=sys.stderr)
                elif msg.meta.get("ready"):
                    print(
                        f"\ninference worker back (pid {msg.meta.get('pid')})",
                        file=sys.stderr,
                        flush=True,
                    )
            msg = results.recv(timeout_ms=200)
            if msg is None:
                continue
            if msg.kind == "status" and msg.meta.get("end_of_stream"):
                break
            if msg.kind != "result":
                continue
            now = time.monotonic()
            processed, dropped = msg.meta["processed"], msg.meta["dropped"]
            latencies.append(now - msg.stamps["capture"])
            all_latencies.append(latencies[-1])
            times.append(now)
            sinks.write(
                {**msg.meta, "frame": msg.seq}, msg.stamps, msg.arrays["map"], msg.arrays["image"]
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
        supervisor.stop()
        sinks.close()
        status.close()
        results.close()
        context.term()
        shutil.rmtree(folder, ignore_errors=True)
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
