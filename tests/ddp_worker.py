"""Run under torchrun by tests/test_training.py: train, then save this rank's weights."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from conftest import TINY_TRAIN

from train.config import resolve
from train.trainer import Trainer

if __name__ == "__main__":
    data, out = sys.argv[1], sys.argv[2]
    config = resolve(overrides=dict(data=data, out=out, epochs=1, warmup=0, **TINY_TRAIN))
    trainer = Trainer(config)
    trainer.run()
    torch.save(trainer.model.state_dict(), Path(out) / f"rank{dist.get_rank()}.pt")
    dist.destroy_process_group()
