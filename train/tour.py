"""``fnac tour``: the offline side of the project, end to end, in a few minutes on a CPU.

It writes a small synthetic world, trains FNAC on it for a few minutes, evaluates the result on
every test set of the world (cIoU, AUC, multi-source and silent-pair figures), and leaves
overlays, the success curve, the checkpoint (float16 weights; the run's full training
checkpoints are not kept) and an example image / wav pair in ``tour-output/``, about 70 MB in
all. (``fnac demo`` is the live side.)
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train.config import AT_LEAST_1, INF, opt


@dataclass(frozen=True)
class TourConfig:
    """The tour's size; the help and ranges are ``fnac tour``'s flags."""

    out: str = opt("tour-output", "folder of the world, the run and everything the tour shows")
    train: int = opt(256, "training scenes (a batch needs two)", (2, INF))
    # A quarter of the test scenes are duets and as many silent: 4 gives one of each.
    test: int = opt(64, "test scenes (also duets, silent)", (4, INF))
    epochs: int = opt(3, "training epochs", AT_LEAST_1)
    seed: int = opt(0, "fixes the world and the training")


def keep_weights(run: Path, checkpoint: Path) -> Path:
    """The run's best model as ``checkpoint``, float16 weights without the training state (45
    MB), and the run's two full checkpoints (270 MB each: weights, Adam's moments, RNG states)
    removed; what they would resume, the tour makes again in minutes."""
    from fnac.checkpoint import load_checkpoint, save_again

    save_again(checkpoint, load_checkpoint(run / "best.pth"), half=True, keep_train_state=False)
    for name in ("best.pth", "latest.pth"):
        (run / name).unlink(missing_ok=True)
    return checkpoint


def run_tour(config: TourConfig, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Synthesize, train, evaluate (as ``fnac eval`` does) and localize one example (as ``fnac
    localize`` does), each step announced through ``echo``; returns the summary it writes to
    ``OUT/summary.json``."""
    from fnac.predict import localize_image
    from train.checkpoint_eval import EvalConfig, evaluate_checkpoint, write_outputs
    from train.config import resolve
    from train.synth import SynthConfig, synthesize
    from train.trainer import train

    out = Path(config.out)
    start = time.perf_counter()
    world = out / "world"
    if world.exists():
        shutil.rmtree(world)
    synth = SynthConfig(
        classes=8,
        train=config.train,
        test=config.test,
        duet=config.test // 4,
        silent=config.test // 4,
        avsbench=max(1, config.test // 16),  # AVSBench S4 / MS3 videos of 5 frames each
        streams=0,
        image_size=160,
        sample_rate=8000,
        seed=config.seed,
    )
    echo(f"[1/4] writing a synthetic world ({synth.train} training scenes) to {world}")
    synthesize(world, synth)
    echo(f"[2/4] training FNAC for {config.epochs} epochs on the CPU (a few minutes)")
    run = out / "run"
    training = resolve(
        overrides=dict(
            data=str(world / "train"),
            test_data=str(world / "test"),
            out=str(run),
            epochs=config.epochs,
            warmup=1,
            batch_size=min(32, config.train),
            image_size=synth.image_size,
            dim=128,
            dropout_img=0.5,
            init="random",
            workers=1,
            seed=config.seed,
            tensorboard=False,
        )
    )
    result = train(training)
    checkpoint = keep_weights(run, out / "tour.pth")
    echo("[3/4] evaluating on every test set of the world")
    evaluation = EvalConfig(
        checkpoint=str(checkpoint), data=str(world), overlays=str(out / "overlays")
    )
    model, reports = evaluate_checkpoint(evaluation, echo=echo)
    report = write_outputs(reports, checkpoint, out / "eval.json", echo=echo)
    echo("[4/4] localizing one example with the Python API")
    example = sorted((world / "test" / "frames").glob("syn_test_*.png"))[0]
    shutil.copyfile(example, out / "example.png")
    shutil.copyfile(world / "test" / "audio" / f"{example.stem}.wav", out / "example.wav")
    overlay = out / "example-overlay.png"
    localize_image(model, out / "example.png", out / "example.wav", overlay)
    echo(f"wrote {overlay}")
    headline = report["testsets"][0]["results"]["bicubic"]["av"]
    summary = {
        "seconds": round(time.perf_counter() - start, 1),
        "train_scenes": synth.train,
        "epochs": result["epochs"],
        "test_ciou@0.5": headline["ciou@0.5"],
        "test_auc": headline["auc"],
        "checkpoint": str(checkpoint),
        "overlays": str(out / "overlays"),
        "report": str(out / "eval.json"),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
