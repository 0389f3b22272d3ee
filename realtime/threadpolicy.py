"""OpenMP's wait policy for the live workers: measured through the live pipeline, not assumed.

``OMP_WAIT_POLICY=ACTIVE`` (threads spin between parallel regions) made the encoders 20-30 %
faster in isolation on a 2-core AMD EPYC; ``PASSIVE`` (they sleep) kept a capture worker, an
inference worker and the main process from taking the cores from each other on the same 2 cores
(``fnac/threads.py``). Which one serves the live pipeline better depends on the processor, its
cores and the backend, and only the whole pipeline tells: timing an encoder alone favours
spinning, since nothing else wants the cores then.

What is measured (``measure``, on request: ``fnac bench --tune-threads``): the live pipeline on
the synthetic stream, paced at 30 fps, with ``--backend auto``, for some seconds under each
policy (the workers are started with it: the OpenMP runtime reads it when it loads, so it cannot
be changed inside a running process): processed frames per second and p95 capture->result
latency. ``ACTIVE`` is taken only when it clearly wins (``clearly_better``): at least ``MARGIN_FPS``
more frames a second, or as many and a p95 at least ``MARGIN_P95`` shorter; ``PASSIVE`` otherwise.

What is kept (``realtime.cache``): the verdict, keyed by the machine (processor, usable cores,
torch's version). ``LivePipeline`` starts its workers with it (``apply``) unless the user set
``OMP_WAIT_POLICY``; without a verdict they get ``PASSIVE``. Not measured: OPENBLAS_NUM_THREADS
(numpy's products in the stage are small; one thread is kept) and torch's thread count.
Torch-free, so that the window's process can apply the verdict.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from fnac.threads import prefer
from realtime import cache

log = logging.getLogger(__name__)

POLICIES = ("PASSIVE", "ACTIVE")
DEFAULT = "PASSIVE"
MARGIN_FPS = 1.0
MARGIN_P95 = 0.9  # ACTIVE's p95 at most this share of PASSIVE's, at the same frame rate
CACHE_KIND = "threads"
TUNE_SECONDS = 5.0  # each policy's run when the headless demo measures them


def machine_key() -> dict[str, Any]:
    from fnac.hardware import processor, usable_cores

    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = ""
    return {**processor(), "cores": usable_cores(), "torch": torch_version}


def cached() -> dict[str, Any] | None:
    """The kept verdict for this machine: {"policy", "reason", ...}, or None."""
    value = cache.read(CACHE_KIND, machine_key())
    if value is None or value.get("policy") not in POLICIES:
        return None
    return value


def apply() -> str | None:
    """Set the kept verdict for the workers started from now on (unless the user set the
    variable); the policy set, or None."""
    verdict = cached()
    if verdict and prefer("OMP_WAIT_POLICY", verdict["policy"]):
        return verdict["policy"]
    return None


def clearly_better(active: dict[str, Any], passive: dict[str, Any]) -> bool:
    """Whether ACTIVE's live run (``fps``, ``latency_ms.p95``) beats PASSIVE's by the margins."""
    if active["fps"] >= passive["fps"] + MARGIN_FPS:
        return True
    same_rate = active["fps"] > passive["fps"] - MARGIN_FPS
    return same_rate and active["latency_ms"]["p95"] <= MARGIN_P95 * passive["latency_ms"]["p95"]


def measure(checkpoint: str, seconds: float = 5.0, backend: str = "auto") -> dict[str, Any]:
    """Both policies through the live pipeline, ``seconds`` each; the verdict, kept."""
    from realtime.bench import live_pipeline

    runs = {}
    for policy in POLICIES:
        runs[policy] = live_pipeline(checkpoint, backend, seconds, omp_wait_policy=policy)
    active, passive = runs["ACTIVE"], runs["PASSIVE"]
    policy = "ACTIVE" if clearly_better(active, passive) else "PASSIVE"
    other = "PASSIVE" if policy == "ACTIVE" else "ACTIVE"
    reason = (
        f"threads: OMP_WAIT_POLICY={policy} (live {runs[policy]['fps']:.1f} fps, p95 "
        f"{runs[policy]['latency_ms']['p95']:.0f} ms vs {other} {runs[other]['fps']:.1f} fps, "
        f"p95 {runs[other]['latency_ms']['p95']:.0f} ms; {backend} backend, {seconds:g} s each)"
    )
    value = {
        "policy": policy,
        "reason": reason,
        "runs": {p: {"fps": r["fps"], "latency_ms": r["latency_ms"]} for p, r in runs.items()},
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    cache.write(CACHE_KIND, machine_key(), value)
    log.info(reason)
    return value
