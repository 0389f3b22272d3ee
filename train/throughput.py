"""``fnac bench-train``: samples/s of ``fnac train`` against a plain float32 eager loop.

Both run in one process on the same data, model and batch size. The plain loop is what a first
implementation does: float32, contiguous tensors, data decoded in the training process
(``num_workers=0``). ``fnac train`` adds channels_last, mixed precision where the hardware has it
and DataLoader worker processes that decode the next batches while the model trains.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from train.config import AT_LEAST_0, AT_LEAST_1, INF, opt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchTrainConfig:
    """What ``fnac bench-train`` times; the help and ranges are its flags."""

    data: str = field(metadata={"help": "training root (frames/ + audio/)"})  # required
    batch_size: int = opt(32, "samples per step (contrastive learning needs pairs)", (2, INF))
    image_size: int = opt(224, "frame side", (32, INF))
    batches: int = opt(8, "timed batches per variant", AT_LEAST_1)
    workers: int = opt(2, "DataLoader worker processes of fnac train's variant", AT_LEAST_0)
    device: str = opt("auto", "auto (CUDA when present), cpu, cuda, cuda:N")


def _time_steps(trainer, loader, batches: int, warmup: int = 1) -> float:
    """Samples per second over ``batches`` steps (after ``warmup`` untimed ones)."""
    it = iter(loader)
    for _ in range(warmup):
        trainer.step(next(it), epoch=trainer.config.warmup)
    seen, start = 0, time.perf_counter()
    for _ in range(batches):
        batch = next(it)
        trainer.step(batch, epoch=trainer.config.warmup)  # past warmup: all FNAC terms
        seen += batch["frame"].shape[0]
    return seen / (time.perf_counter() - start)


def measure(config, batches: int = 8) -> dict[str, Any]:
    from train.trainer import Trainer

    plain_cfg = replace(
        config, amp="off", channels_last=False, workers=0, progress=False, tensorboard=False
    )
    fast_cfg = replace(config, progress=False, tensorboard=False)
    results = {}
    for name, cfg in (("plain_fp32_eager", plain_cfg), ("fnac_train", fast_cfg)):
        trainer = Trainer(cfg)
        trainer.model.train()
        rate = _time_steps(trainer, trainer.loader(0), batches)
        results[name] = {
            "samples_per_s": rate,
            "amp": str(trainer.amp or "off"),
            "channels_last": cfg.channels_last,
            "workers": cfg.workers,
        }
        log.info("%s: %.2f samples/s", name, rate)
    results["speedup"] = (
        results["fnac_train"]["samples_per_s"] / results["plain_fp32_eager"]["samples_per_s"]
    )
    results["batch_size"] = config.batch_size
    results["image_size"] = config.image_size
    results["batches"] = batches
    return results


def bench_train(settings: BenchTrainConfig) -> dict[str, Any]:
    """``measure`` on the training config these settings make (random init: no weights file is
    needed to time a step; no run folder is written)."""
    from train.config import resolve

    config = resolve(
        overrides=dict(
            data=settings.data,
            batch_size=settings.batch_size,
            image_size=settings.image_size,
            workers=settings.workers,
            device=settings.device,
            init="random",
            out="/nonexistent",
        )
    )
    return measure(config, settings.batches)
