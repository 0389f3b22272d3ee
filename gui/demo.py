"""``fnac demo``: the live app on whatever this machine has.

With a display it opens the live window (camera and microphone when present, else the synthetic
world and the shipped demo checkpoint). Without one it runs the same multi-process pipeline
headless on the synthetic world and the demo checkpoint for ``--seconds``, and writes
``demo-output/demo.mp4`` (annotated) and ``demo-output/summary.json``: fps, capture->result
latency percentiles, pointing accuracy (the fraction of sounding frames whose peak lies in the
sounding object's box) and mean box IoU.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from realtime.backends import BACKENDS, DEFAULT_BACKEND


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="the live app: a window, or a headless run", description=__doc__
    )
    p.add_argument(
        "--out", default="demo-output", help="headless: where demo.mp4 and summary.json go"
    )
    p.add_argument("--seconds", type=float, default=20.0, help="headless: how long to run")
    p.add_argument("--checkpoint", default=None, help="default: the shipped demo checkpoint")
    p.add_argument("--backend", default=DEFAULT_BACKEND, choices=BACKENDS)
    p.add_argument("--headless", action="store_true", help="no window even with a display")
    p.set_defaults(func=demo_command)


def headless_demo(out: Path, seconds: float, checkpoint: str, backend: str) -> dict:
    """The synthetic world through the live pipeline; returns (and writes) the summary."""
    from realtime.run import LivePipeline, Sinks, describe, run_live

    out.mkdir(parents=True, exist_ok=True)
    video = out / "demo.mp4"
    sinks = Sinks(None, str(video))
    try:
        with LivePipeline("synthetic", checkpoint, backend, say=lambda text: None) as pipeline:
            summary = run_live(pipeline, sinks, seconds, status_line=False)
            engine = pipeline.engine
    finally:
        sinks.close()
    summary = {
        **summary,
        "source": "synthetic",
        "checkpoint": checkpoint,
        "engine": engine,
        "video": str(video),
        "machine": f"{platform.machine()}, {_cpu_count()} cores",
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(describe(summary))
    return summary


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def demo_command(args: argparse.Namespace) -> int:
    from gui.live import default_checkpoint, has_display

    if has_display() and not args.headless:
        from gui.live import live_command

        live_args = argparse.Namespace(
            source=None,
            mic=None,
            checkpoint=args.checkpoint,
            backend=args.backend,
            save_dir=str(Path(args.out) / "live"),
            seconds=None,
            screenshot=None,
        )
        return live_command(live_args)
    checkpoint = default_checkpoint(args.checkpoint)
    out = Path(args.out)
    print(
        f"no display: running the live pipeline headless on the synthetic world for "
        f"{args.seconds:.0f} s ({Path(checkpoint).name}, {args.backend} backend)"
    )
    headless_demo(out, args.seconds, checkpoint, args.backend)
    print(f"wrote {out / 'demo.mp4'} and {out / 'summary.json'}")
    return 0
