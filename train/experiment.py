"""``fnac experiment``: FNAC against the contrastive (EZ-VSL) baseline where false negatives abound.

For each number of classes K, one synthetic world is written; FNAC and the baseline are trained on
it with the same seeds, batch and budget, and evaluated on its test set (AV map, bicubic, the
published protocol). With K classes and batch B, each sample meets about (B - 1) / K same-class
clips in its batch: negatives that are really positives, the false negatives FNAC is about. The
table reports ``ciou@0.5`` and AUC as mean and spread (sample standard deviation) over the seeds,
and the FNAC - baseline gap per K. Finished runs are reused, so an interrupted experiment resumes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.config import AT_LEAST_0, AT_LEAST_1, DROPOUT, INF, opt
from train.synth_world import MAX_CLASSES

log = logging.getLogger(__name__)
LOSSES = ("fnac", "contrastive")
INITS = ("world", "random", "imagenet")


@dataclass(frozen=True)
class ExperimentConfig:
    """The experiment's settings; the help and ranges are ``fnac experiment``'s flags."""

    out: str = opt("runs/false-negatives", "folder of the worlds, the runs and the results")
    classes: tuple[int, ...] = opt(
        (4, 8, 16), "numbers of classes K, one world each", (2, MAX_CLASSES)
    )
    seeds: int = opt(3, "training seeds per (K, loss)", AT_LEAST_1)
    train: int = opt(2000, "training scenes per world", AT_LEAST_1)
    test: int = opt(300, "test scenes per world", AT_LEAST_1)
    epochs: int = opt(10, "training epochs per run", AT_LEAST_1)
    warmup: int = opt(2, "epochs of contrastive loss alone before the FNAC terms join", AT_LEAST_0)
    batch_size: int = opt(64, "batch (contrastive learning needs pairs)", (2, INF))
    image_size: int = opt(224, "frame side", (32, INF))
    sample_rate: int = opt(16000, "the worlds' audio rate in Hz", (8000, INF))
    dim: int = opt(512, "embedding size D", AT_LEAST_1)
    dropout_img: float = opt(
        0.9,
        "dropout on the image map in training (published 0.9; the demo checkpoint's 0.5 learns in "
        "fewer steps)",
        DROPOUT,
    )
    workers: int = opt(2, "DataLoader worker processes", AT_LEAST_0)
    device: str = opt("auto", "auto (CUDA when present), cpu, cuda, cuda:N")
    init: str = opt(
        "world",
        "image encoder start: `world` trains `fnac pretrain-image` on each world first (from "
        "random weights the maps do not localize on the world); imagenet: the real file",
        choices=INITS,
    )
    pretrain_images: int = opt(2000, "for --init world", AT_LEAST_1)
    pretrain_steps: int = opt(200, "for --init world", AT_LEAST_1)
    spec_masks: bool = opt(
        False, "the published SpecAugment bands (off: they drown the world's quiet sounds)"
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))  # a flag's list, a JSON list
        if self.init not in INITS:
            raise ValueError(f"init {self.init!r}: choose one of {INITS}")


def _spread(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if a.size > 1 else 0.0,
        "n": int(a.size),
    }


def _run_config(
    settings: ExperimentConfig, data: Path, run: Path, loss: str, seed: int, init: dict[str, str]
):
    """The training config of one run; ValueError names a bad flag."""
    from train.config import resolve

    return resolve(
        overrides=dict(
            data=str(data),
            out=str(run),
            loss=loss,
            seed=seed,
            epochs=settings.epochs,
            warmup=settings.warmup,
            batch_size=settings.batch_size,
            image_size=settings.image_size,
            dim=settings.dim,
            dropout_img=settings.dropout_img,
            workers=settings.workers,
            device=settings.device,
            spec_masks=settings.spec_masks,
            **init,
            tensorboard=False,
            progress=False,
        )
    )


def run_experiment(settings: ExperimentConfig) -> dict[str, Any]:
    """Every (K, seed, loss) run not finished yet, then the table: ``results.json`` (settings,
    table, runs) and ``results.md`` under ``settings.out``; returns the report."""
    from fnac.checkpoint import load_checkpoint
    from train.datasets import open_testset
    from train.evaluate import evaluate_av
    from train.object_pretrain import PretrainConfig, pretrain
    from train.synth import SynthConfig, synthesize
    from train.trainer import train

    out = Path(settings.out)
    _run_config(settings, out, out, LOSSES[0], 0, {})  # a bad flag is refused before any world
    runs: list[dict[str, Any]] = []
    for k in settings.classes:
        world = out / f"world-k{k}"
        if not (world / "world.json").is_file():
            synthesize(
                world,
                SynthConfig(
                    classes=k,
                    train=settings.train,
                    test=settings.test,
                    duet=0,
                    silent=0,
                    avsbench=0,
                    streams=0,
                    image_size=settings.image_size,
                    sample_rate=settings.sample_rate,
                    seed=1000 + k,
                ),
            )
        testset = open_testset(world / "test")
        init = {"init": settings.init}
        if settings.init == "world":
            objects = world / "objects-resnet18.pth"
            if not objects.is_file():
                config = PretrainConfig(
                    images=settings.pretrain_images,
                    steps=settings.pretrain_steps,
                    device=settings.device,
                )
                pretrain(world, objects, config)
            init = {"init": "imagenet", "imagenet_weights": str(objects)}
        for seed in range(settings.seeds):
            for loss in LOSSES:
                run = out / f"k{k}-{loss}-seed{seed}"
                result_file = run / "result.json"
                if result_file.is_file():
                    runs.append(json.loads(result_file.read_text()))
                    continue
                config = _run_config(settings, world / "train", run, loss, seed, init)
                train(config)
                model = load_checkpoint(run / "latest.pth")
                metrics = evaluate_av(model, testset, model.info.audio, model.info.image)
                record = {"classes": k, "loss": loss, "seed": seed, **metrics}
                result_file.write_text(json.dumps(record, indent=2) + "\n")
                log.info(
                    "K=%d %s seed %d: ciou@0.5 %.3f auc %.3f",
                    k,
                    loss,
                    seed,
                    metrics["ciou@0.5"],
                    metrics["auc"],
                )
                runs.append(record)
    table = []
    for k in settings.classes:
        row: dict[str, Any] = {"classes": k, "same_class_per_sample": (settings.batch_size - 1) / k}
        for loss in LOSSES:
            mine = [r for r in runs if r["classes"] == k and r["loss"] == loss]
            row[loss] = {m: _spread([r[m] for r in mine]) for m in ("ciou@0.5", "auc")}
        row["gap"] = {
            m: row["fnac"][m]["mean"] - row["contrastive"][m]["mean"] for m in ("ciou@0.5", "auc")
        }
        table.append(row)
    report = {
        "settings": asdict(settings),
        "table": table,
        "runs": runs,
    }
    (out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "results.md").write_text(markdown(table))
    return report


def _cell(stats: dict[str, float]) -> str:
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def markdown(table: list[dict[str, Any]]) -> str:
    lines = [
        "| K | same-class clips per batch row | FNAC cIoU@0.5 | baseline cIoU@0.5 | gap | "
        "FNAC AUC | baseline AUC | gap |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table:
        f, c, gap = row["fnac"], row["contrastive"], row["gap"]
        lines.append(
            f"| {row['classes']} | {row['same_class_per_sample']:.1f} | "
            f"{_cell(f['ciou@0.5'])} | {_cell(c['ciou@0.5'])} | {gap['ciou@0.5']:+.3f} | "
            f"{_cell(f['auc'])} | {_cell(c['auc'])} | {gap['auc']:+.3f} |"
        )
    return "\n".join(lines) + "\n"
