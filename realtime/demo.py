"""The headless demo: the synthetic world through the live pipeline with a checkpoint, an annotated
mp4 and a summary (fps, capture->result latency percentiles, pointing accuracy: the fraction of
sounding frames whose peak lies in the sounding object's box, mean box IoU). ``fnac demo`` runs it
when there is no display (the window otherwise)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from realtime.pipeline import LiveConfig, LivePipeline, Sinks, describe, run_live


def headless_demo(out: Path, seconds: float, config: LiveConfig) -> dict[str, Any]:
    """Run ``config`` (its source is the synthetic world) for ``seconds``; writes ``demo.mp4``
    and ``summary.json`` into ``out`` and returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    video = out / "demo.mp4"
    sinks = Sinks(None, str(video))
    try:
        with LivePipeline(config, say=lambda text: None) as pipeline:
            sinks.attach(pipeline)
            summary = run_live(pipeline, sinks, seconds, status_line=False)
            engine = pipeline.engine
    finally:
        sinks.close()
    summary = {
        **summary,
        "source": config.source,
        "checkpoint": config.checkpoint,
        "engine": engine,
        "video": str(video),
        "machine": f"{platform.machine()}, {_cpu_count()} cores",
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(describe(summary))
    return summary


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
