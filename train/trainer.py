"""The FNAC training loop: Adam, warmup, mixed precision, DDP through torchrun, exact resume."""

from __future__ import annotations

import json
import logging
import os
import random
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from fnac.checkpoint import load_checkpoint, save_checkpoint
from fnac.config import AudioConfig, ImageConfig, ModelConfig
from fnac.hardware import cpu_has_native_bf16
from fnac.losses import loss_terms
from fnac.model import FNAC
from train.config import TrainConfig, to_dict
from train.datasets import (
    AVDataset,
    DatasetError,
    Entry,
    collate_skipping,
    first_usable,
    frames_audio_entries,
    open_testset,
    read_ids,
    video_entries,
)
from train.media import VIDEO_SUFFIXES

log = logging.getLogger(__name__)
TERMS = ("contrastive", "fns_audio", "tns", "fns_image")


# ---------------------------------------------------------------------------------------------
# Environment: processes, devices, precision


def distributed_context() -> tuple[int, int, int]:
    """(rank, world size, local rank), starting the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if world > 1:
        return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))
    return 0, 1, 0


def pick_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is available; use cpu")
    return device


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``--amp`` on this device (None = float32)."""
    if mode == "off":
        return None
    if mode == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if mode == "fp16" and device.type != "cuda":
        raise ValueError("--amp fp16 needs a CUDA GPU; use bf16 or off on CPU")
    return torch.float16 if mode == "fp16" else torch.bfloat16


# ---------------------------------------------------------------------------------------------
# Data


def training_entries(config: TrainConfig) -> list[Entry]:
    root = Path(config.data)
    if not root.exists():
        raise DatasetError(f"training data {root} does not exist")
    if root.is_dir() and (root / "frames").is_dir():
        ids = read_ids(config.ids) if config.ids else None
        return frames_audio_entries(root, ids)
    if root.is_file() or any(p.suffix.lower() in VIDEO_SUFFIXES for p in root.iterdir()):
        return video_entries([root])
    raise DatasetError(f"{root} is neither a frames/ + audio/ training root nor holds videos")


def detect_sample_rate(entries: list[Entry], where: str | Path = "the training data") -> int:
    """The audio rate of the first entry that loads (bad ones before it are skipped, as training
    skips them); a DatasetError naming the first problem when none loads."""
    return first_usable(entries, where)[1]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": np.random.get_state()[2],
        "python": repr(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import ast

    torch.set_rng_state(state["torch"])
    np.random.set_state(
        ("MT19937", state["numpy"].numpy().astype(np.uint32), int(state["numpy_pos"]), 0, 0.0)
    )
    random.setstate(ast.literal_eval(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------
# The loop


class Trainer:
    def __init__(self, config: TrainConfig) -> None:
        self.rank, self.world, local_rank = distributed_context()
        self.device = pick_device(config.device, local_rank)
        self.main = self.rank == 0
        entries = training_entries(config)
        if not entries:
            raise DatasetError(f"{config.data} holds no usable training samples")
        # before the model is built: data of which no sample loads is one clear error
        rate = detect_sample_rate(entries, f"training data {config.data}")
        if config.sample_rate is None:
            config = replace(config, sample_rate=rate)
        self.config = config
        self.out = Path(config.out)
        self.audio = AudioConfig(sample_rate=config.sample_rate, window_s=config.window_s)
        self.image = ImageConfig(size=config.image_size, train_resize=int(config.image_size * 1.1))
        self.dataset = AVDataset(
            entries, self.audio, self.image, train=True, spec_masks=self.config.spec_masks
        )
        if len(self.dataset) < config.batch_size:
            raise DatasetError(
                f"{len(self.dataset)} training samples are fewer than one batch of "
                f"{config.batch_size}; lower --batch-size"
            )
        self.testset = None
        if config.test_data:
            self.testset = open_testset(
                config.test_data, config.testset, config.test_annotations, config.test_ids
            )
        self.amp = amp_dtype(config.amp, self.device)
        seed_everything(config.seed)
        model = FNAC(
            ModelConfig(
                dim=config.dim,
                tau=config.tau,
                dropout_img=config.dropout_img,
                dropout_aud=config.dropout_aud,
            )
        )
        if config.init == "imagenet":
            from train.imagenet import WeightsNotFound, init_image_encoder

            try:
                init_image_encoder(model.imgnet, config.imagenet_weights)
            except WeightsNotFound as exc:  # training has a way out that evaluating has not
                way_out = "or train from random weights: --init random"
                raise WeightsNotFound(f"{exc}, {way_out}") from exc
        self.model = model.to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self.ddp = (
            DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
            if self.world > 1
            else None
        )
        self.epoch = 0
        self.best: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        self.skipped = 0

    # -- persistence ---------------------------------------------------------------------------

    def train_state(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "best": dict(self.best),
            "rng": rng_state(),
            "history": self.history,
            "config": to_dict(self.config),
        }

    def save(self, name: str, metrics: dict[str, float], compact: bool = False) -> Path:
        """``compact``: float16 weights and no optimizer state (cannot be resumed from)."""
        return save_checkpoint(
            self.out / name,
            self.model,
            self.audio,
            self.image,
            trained_on=self.config.data,
            epoch=self.epoch,
            metrics=metrics,
            train_state=None if compact else self.train_state(),
            half=compact,
        )

    def resume(self) -> bool:
        latest = self.out / "latest.pth"
        if not latest.is_file():
            log.info("no %s to resume from: starting fresh", latest)
            return False
        loaded = load_checkpoint(latest, sample_rate=self.audio.sample_rate)
        state = loaded.info.raw.get("train_state")
        if state is None:
            raise ValueError(f"{latest} holds no training state; it cannot be resumed")
        self.model.load_state_dict(loaded.state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch = int(state["epoch"])
        self.best = dict(state.get("best") or {})
        self.history = list(state.get("history") or [])
        set_rng_state(state["rng"])
        log.info("resumed from %s at epoch %d", latest, self.epoch)
        return True

    # -- one epoch -----------------------------------------------------------------------------

    def loader(self, epoch: int) -> DataLoader:
        sampler = DistributedSampler(
            self.dataset,
            num_replicas=self.world,
            rank=self.rank,
            shuffle=True,
            seed=self.config.seed,
            drop_last=True,
        )
        sampler.set_epoch(epoch)
        generator = torch.Generator().manual_seed(self.config.seed * 1009 + epoch * 31 + self.rank)
        workers = self.config.workers
        return DataLoader(
            self.dataset,
            batch_size=self.config.batch_size // self.world,
            sampler=sampler,
            num_workers=workers,
            drop_last=True,
            collate_fn=collate_skipping,
            worker_init_fn=_seed_worker,
            generator=generator,
            persistent_workers=False,
            pin_memory=self.device.type == "cuda",
        )

    def step(self, batch: dict[str, Any], epoch: int) -> dict[str, float]:
        cfg = self.config
        fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
        frames = batch["frame"].to(self.device, non_blocking=True).contiguous(memory_format=fmt)
        spec = batch["spec"].to(self.device, non_blocking=True).contiguous(memory_format=fmt)
        net = self.ddp or self.model
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp)
            if self.amp is not None
            else nullcontext()
        )
        with autocast:
            v, a, _ = net(frames, spec)
        terms = loss_terms(v.float(), a.float(), cfg.tau)
        loss = terms["contrastive"]
        if cfg.loss == "fnac" and epoch >= cfg.warmup:
            loss = (
                loss
                + cfg.w_fns_audio * terms["fns_audio"]
                + cfg.w_tns * terms["tns"]
                + cfg.w_fns_image * terms["fns_image"]
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        out = {k: float(v.detach()) for k, v in terms.items()}
        out["loss"] = float(loss.detach())
        return out

    def train_epoch(self, epoch: int) -> dict[str, float]:
        from tqdm import tqdm

        self.model.train()
        loader = self.loader(epoch)
        sums: dict[str, float] = {}
        seen, steps, start = 0, 0, time.perf_counter()
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{self.config.epochs}",
            unit="batch",
            disable=not (self.main and self.config.progress),
            dynamic_ncols=True,
        )
        for batch in bar:
            self.skipped += batch["skipped"]
            if "frame" not in batch or batch["frame"].shape[0] < 2:
                continue
            terms = self.step(batch, epoch)
            steps += 1
            seen += batch["frame"].shape[0] * self.world
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
            rate = seen / (time.perf_counter() - start)
            bar.set_postfix(
                {**{k: f"{terms[k]:.3f}" for k in ("loss", *TERMS)}, "samples/s": f"{rate:.1f}"}
            )
        if steps == 0:
            raise DatasetError("no batch could be loaded this epoch (see the skipped files above)")
        means = {k: v / steps for k, v in sums.items()}
        means["samples_per_s"] = seen / (time.perf_counter() - start)
        return means

    # -- the run -------------------------------------------------------------------------------

    def evaluate(self) -> dict[str, float]:
        from train.evaluate import evaluate_av

        return evaluate_av(self.model, self.testset, self.audio, self.image)

    def run(self) -> dict[str, Any]:
        cfg = self.config
        writer = None
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.json").write_text(json.dumps(to_dict(cfg), indent=2) + "\n")
            if cfg.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                writer = SummaryWriter(str(self.out / "tb"))
            log.info(
                "training on %d samples (%s), %d process(es), device %s, amp %s, loss %s",
                len(self.dataset),
                cfg.data,
                self.world,
                self.device,
                self.amp or "off",
                cfg.loss,
            )
        try:
            while self.epoch < cfg.epochs:
                epoch = self.epoch
                train_means = self.train_epoch(epoch)
                self.epoch = epoch + 1
                if self.world > 1:  # batch-norm statistics drift per rank: take rank 0's
                    for buf in self.model.buffers():
                        dist.broadcast(buf, src=0)
                metrics: dict[str, float] = {}
                if self.main and self.testset is not None and self.epoch % cfg.eval_every == 0:
                    metrics = self.evaluate()
                record = {
                    "epoch": self.epoch,
                    **{f"train/{k}": v for k, v in train_means.items()},
                    **{f"test/{k}": v for k, v in metrics.items()},
                }
                self.history.append(record)
                if self.main:
                    self._log_epoch(record, writer)
                    improved = not self.best or (
                        metrics
                        and (metrics["ciou@0.5"], metrics["auc"])
                        > (self.best.get("ciou@0.5", -1), self.best.get("auc", -1))
                    )
                    if metrics and improved:
                        self.best = dict(metrics)
                    self.save("latest.pth", metrics)
                    if improved or not metrics:
                        self.save("best.pth", metrics, compact=self.config.compact_best)
                if self.world > 1:
                    dist.barrier()
        finally:
            if writer is not None:
                writer.close()
        if self.skipped:
            log.warning("%d training samples could not be loaded and were skipped", self.skipped)
        return {
            "epochs": self.epoch,
            "best": self.best,
            "history": self.history,
            "skipped": self.skipped,
            "out": str(self.out),
        }

    def _log_epoch(self, record: dict[str, Any], writer) -> None:
        shown = ", ".join(
            f"{k.split('/')[1]} {v:.4g}"
            for k, v in record.items()
            if k != "epoch" and k.split("/")[1] in ("loss", "ciou@0.5", "auc", "samples_per_s")
        )
        log.info("epoch %d: %s", record["epoch"], shown)
        if writer is not None:
            for k, v in record.items():
                if k != "epoch":
                    writer.add_scalar(k, v, record["epoch"])
            writer.flush()


def train(config: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Run a training job; returns the history and the best test metrics."""
    trainer = Trainer(config)
    try:
        if resume:
            trainer.resume()
        return trainer.run()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
