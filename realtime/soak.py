"""``fnac soak``: the full live pipeline on the synthetic stream for minutes, watched for leaks.

Every ``--every`` seconds it samples the resident memory of this process and of each worker, their
open file descriptors and the window's latency percentiles; at the end it stops the pipeline and
checks that no process and no descriptor outlived it. The verdict compares the last sample with
the first one taken after the warm-up (models loaded, first results out):

- memory growth (all processes together) within ``--max-growth-mb``;
- no latency creep: the last window's p95 at most ``CREEP_FACTOR`` x the first window's p95 plus
  ``CREEP_SLACK_MS`` (a 2-core machine's scheduling jitter);
- no worker process left, this process's descriptors back to what they were, the ipc folder gone.

Linux only (it reads ``/proc``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from realtime.messages import LiveResult
from realtime.pipeline import LiveConfig, LivePipeline
from realtime.stats import percentiles_ms

CREEP_FACTOR = 1.5
CREEP_SLACK_MS = 30.0
DEFAULT_MAX_GROWTH_MB = 64.0


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def descendants(pid: int) -> list[int]:
    """Live processes below ``pid`` (children, grandchildren, ...)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":  # a zombie holds nothing but its exit status
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def leftover_processes(pid: int, before: set[int]) -> list[int]:
    """Processes below ``pid`` that were not there ``before``, except multiprocessing's resource
    tracker: the spawn start method starts one per parent on first use and keeps it for the
    parent's lifetime (it is shared, not leaked)."""
    return [
        p for p in descendants(pid) if p not in before and "resource_tracker" not in _cmdline(p)
    ]


def soak(
    config: LiveConfig,
    seconds: float,
    every: float = 10.0,
    max_growth_mb: float = DEFAULT_MAX_GROWTH_MB,
    say=None,
) -> dict[str, Any]:
    """Run ``config`` (the synthetic stream) through the workers for ``seconds``; returns the
    samples and the verdict."""
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    from multiprocessing import resource_tracker

    me = os.getpid()
    resource_tracker.ensure_running()  # before counting: its pipe is the parent's for good
    fds_before = open_fds(me)
    processes_before = set(descendants(me))
    samples: list[dict[str, Any]] = []
    window: list[float] = []
    frames = 0
    pipeline = LivePipeline(config, say=say)
    folder = pipeline.folder
    with pipeline:
        start = time.monotonic()
        next_sample = start + every
        while time.monotonic() - start < seconds:
            result = pipeline.next()
            if isinstance(result, LiveResult):
                window.append(time.monotonic() - result.origin_time)
                frames += 1
            if time.monotonic() < next_sample:
                continue
            next_sample += every
            workers = {n: p.pid for n, p in pipeline.supervisor.processes.items() if p.is_alive()}
            lat = percentiles_ms(window)
            samples.append(
                {
                    "t_s": round(time.monotonic() - start, 1),
                    "rss_mb": {
                        "main": round(rss_mb(me), 1),
                        **{n: round(rss_mb(p), 1) for n, p in workers.items()},
                    },
                    "fds": {"main": open_fds(me), **{n: open_fds(p) for n, p in workers.items()}},
                    "fps": round(len(window) / every, 2),
                    "p50_ms": lat["p50"],
                    "p95_ms": lat["p95"],
                    "restarts": dict(pipeline.supervisor.restarts),
                }
            )
            window = []
            s = samples[-1]
            say(
                f"{s['t_s']:6.0f} s  rss {sum(s['rss_mb'].values()):7.1f} MiB  "
                f"{s['fps']:5.1f} fps  p95 {s['p95_ms']:6.1f} ms"
            )
    time.sleep(0.5)  # let the reaped workers' descriptors close
    left = leftover_processes(me, processes_before)
    report: dict[str, Any] = {
        "seconds": seconds,
        "every_s": every,
        "backend": config.backend,
        "frames": frames,
        "samples": samples,
        "processes_left": left,
        "fds_before": fds_before,
        "fds_after": open_fds(me),
        "ipc_folder_left": Path(folder).exists(),
    }
    report.update(verdict(samples, max_growth_mb))
    report["ok"] = bool(
        report["ok"]
        and not left
        and report["fds_after"] <= fds_before
        and not report["ipc_folder_left"]
    )
    return report


def verdict(samples: list[dict[str, Any]], max_growth_mb: float) -> dict[str, Any]:
    """Growth and creep between the first sample after warm-up (the second) and the last."""
    if len(samples) < 3:
        raise ValueError("a soak needs at least 3 samples: raise --seconds or lower --every")
    first, last = samples[1], samples[-1]
    growth = sum(last["rss_mb"].values()) - sum(first["rss_mb"].values())
    creep_limit = CREEP_FACTOR * first["p95_ms"] + CREEP_SLACK_MS
    restarts = sum(last["restarts"].values())
    return {
        "rss_first_mb": round(sum(first["rss_mb"].values()), 1),
        "rss_last_mb": round(sum(last["rss_mb"].values()), 1),
        "growth_mb": round(growth, 1),
        "max_growth_mb": max_growth_mb,
        "p95_first_ms": first["p95_ms"],
        "p95_last_ms": last["p95_ms"],
        "p95_limit_ms": round(creep_limit, 1),
        "restarts": restarts,
        "ok": growth <= max_growth_mb and last["p95_ms"] <= creep_limit and restarts == 0,
    }
