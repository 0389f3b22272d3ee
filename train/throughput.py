"""``fnac bench-train``: samples/s of ``fnac train`` against a plain float32 eager loop.

Both run in one process on the same data, model and batch size. The plain loop is what a first
implementation does: float32, contiguous tensors, data decoded in the training process
(``num_workers=0``). ``fnac train`` adds channels_last, mixed precision where the hardware has it
and DataLoader worker processes that decode the next batches while the model trains.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench-train",
        help="training samples/s: fnac train vs a plain fp32 loop",
        description=__doc__,
    )
    p.add_argument("--data", required=True, help="training root (frames/ + audio/)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batches", type=int, default=8, help="timed batches per variant")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", dest="json_out", default=None)
    p.set_defaults(func=bench_train_command)


def bench_train_command(args: argparse.Namespace) -> int:
    from train.config import resolve

    config = resolve(
        overrides=dict(
            data=args.data,
            batch_size=args.batch_size,
            image_size=args.image_size,
            workers=args.workers,
            device=args.device,
            init="random",
            out="/nonexistent",
        )
    )
    res = measure(config, args.batches)
    print(f"plain float32 eager loop: {res['plain_fp32_eager']['samples_per_s']:.2f} samples/s")
    print(
        f"fnac train ({res['fnac_train']['amp']}, channels_last, {args.workers} workers): "
        f"{res['fnac_train']['samples_per_s']:.2f} samples/s  -> x{res['speedup']:.2f}"
    )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(res, indent=2) + "\n")
    return 0
