"""``fnac tour``: the offline side of the project, end to end, in a few minutes on a CPU.

It writes a small synthetic world, trains FNAC on it for a few minutes, evaluates the result on
every test set of the world (cIoU, AUC, multi-source and silent-pair figures), and leaves
overlays, the success curve, the checkpoint and an example image / wav pair in ``tour-output/``.
(``fnac demo`` is the live side.)
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tour", help="synthesize, train, evaluate and localize, end to end", description=__doc__
    )
    p.add_argument("--out", default="tour-output")
    p.add_argument("--train", type=int, default=256, help="training scenes")
    p.add_argument("--test", type=int, default=64, help="test scenes (also duets, silent)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=tour_command)


def tour_command(args: argparse.Namespace) -> int:
    from train.config import resolve
    from train.synth import SynthConfig, synthesize
    from train.trainer import train

    out = Path(args.out)
    start = time.perf_counter()
    world = out / "world"
    if world.exists():
        shutil.rmtree(world)
    synth = SynthConfig(
        classes=8,
        train=args.train,
        test=args.test,
        duet=args.test // 4,
        silent=args.test // 4,
        streams=0,
        image_size=160,
        sample_rate=8000,
        seed=args.seed,
    )
    print(f"[1/4] writing a synthetic world ({synth.train} training scenes) to {world}")
    synthesize(world, synth)
    print(f"[2/4] training FNAC for {args.epochs} epochs on the CPU (a few minutes)")
    run = out / "run"
    config = resolve(
        overrides=dict(
            data=str(world / "train"),
            test_data=str(world / "test"),
            out=str(run),
            epochs=args.epochs,
            warmup=1,
            batch_size=min(32, args.train),
            image_size=synth.image_size,
            dim=128,
            dropout_img=0.5,
            init="random",
            workers=1,
            seed=args.seed,
            tensorboard=False,
        )
    )
    result = train(config)
    shutil.copyfile(run / "best.pth", out / "tour.pth")
    print("[3/4] evaluating on every test set of the world")
    from fnac import cli

    code = cli.main(
        [
            "eval",
            "--checkpoint",
            str(out / "tour.pth"),
            "--data",
            str(world),
            "--json",
            str(out / "eval.json"),
            "--overlays",
            str(out / "overlays"),
        ]
    )
    if code:
        return code
    print("[4/4] localizing one example with the Python API")
    example = sorted((world / "test" / "frames").glob("syn_test_*.png"))[0]
    shutil.copyfile(example, out / "example.png")
    shutil.copyfile(world / "test" / "audio" / f"{example.stem}.wav", out / "example.wav")
    code = cli.main(
        [
            "localize",
            "--checkpoint",
            str(out / "tour.pth"),
            "--image",
            str(out / "example.png"),
            "--audio",
            str(out / "example.wav"),
            "--out",
            str(out / "example-overlay.png"),
        ]
    )
    report = json.loads((out / "eval.json").read_text())
    headline = report["testsets"][0]["results"]["bicubic"]["av"]
    summary = {
        "seconds": round(time.perf_counter() - start, 1),
        "train_scenes": synth.train,
        "epochs": result["epochs"],
        "test_ciou@0.5": headline["ciou@0.5"],
        "test_auc": headline["auc"],
        "checkpoint": str(out / "tour.pth"),
        "overlays": str(out / "overlays"),
        "report": str(out / "eval.json"),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"done in {summary['seconds']} s: test cIoU@0.5 {headline['ciou@0.5']:.3f}, "
        f"AUC {headline['auc']:.3f}. See {out}/ (eval.json, eval.png, overlays/, "
        "example-overlay.png, tour.pth)"
    )
    return code
