"""The offline subcommands: ``fnac synth``, ``pretrain-image``, ``train``, ``eval``,
``bench-train``, ``experiment`` and ``tour``.

This is the one place of ``train`` that knows argparse: each command turns its flags into the
config dataclass of a library function (``SynthConfig``, ``TrainConfig``, ``EvalConfig``, ...),
calls it and prints what it did. Flags that mirror a config's fields are derived from it
(``fnac.flags.add_dataclass_flags``), so their help, defaults and valid ranges live in one place.
Heavy dependencies (torch) are imported inside the commands, so ``fnac --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import train.experiment
import train.throughput
import train.tour
from fnac.flags import (
    add_dataclass_flags,
    add_json_flag,
    check_writable,
    dataclass_values,
    write_json,
)
from train.checkpoint_eval import EvalConfig
from train.config import PRESETS, TESTSET_KINDS, TrainConfig
from train.experiment import ExperimentConfig
from train.object_pretrain import PretrainConfig
from train.synth import SynthConfig
from train.throughput import BenchTrainConfig
from train.tour import TourConfig

# ------------------------------------------------------------------------------------ synth


def _register_synth(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="write the synthetic sounding-objects world (train, test sets, streams)",
        description="Write the synthetic sounding-objects world under OUT in the published "
        "layouts (VGGSound-style train, VGG-SS / Flickr test sets, duets, silent pairs, "
        "AVSBench S4 / MS3 sets, mp4 streams). The same settings write the same files.",
    )
    p.add_argument("out", metavar="OUT", help="folder to write into")
    add_dataclass_flags(p, SynthConfig, skip=("stream_size",))
    p.add_argument(
        "--stream-size",
        default="x".join(map(str, SynthConfig().stream_size)),
        help="WIDTHxHEIGHT of the streams (default %(default)s)",
    )
    p.set_defaults(func=synth_command)


def synth_command(args: argparse.Namespace) -> int:
    from train.synth import synthesize

    try:
        width, height = (int(v) for v in str(args.stream_size).lower().split("x"))
    except ValueError as exc:
        raise ValueError(
            f"--stream-size {args.stream_size!r}: write it as WIDTHxHEIGHT, e.g. 640x480"
        ) from exc
    config = SynthConfig(**{**dataclass_values(args, SynthConfig), "stream_size": (width, height)})
    s = synthesize(args.out, config)
    c, p = s["counts"], s["paths"]
    print(
        f"wrote the synthetic world ({config.classes} classes, seed {config.seed}) to "
        f"{s['out']} in {s['seconds']:.1f} s: {c['train']} training clips in {p['train']} "
        f"(train.txt, classes.csv); {c['test']} test clips in {p['test']} (test.json, test.csv, "
        f"Flickr-style Annotations/) and {p['flickr_test']}, with {c['silent_pairs']} silent "
        f"pairs and {c['silent']} silent scenes (test_plus_silent.csv); {c['duet']} duets in "
        f"{p['duet_test']}; AVSBench S4 and MS3 sets ({c['avsbench-s4']} and "
        f"{c['avsbench-ms3']} videos of 5 frames, test and val) in {p['avsbench']}; "
        f"{c['streams']} streams "
        f"({', '.join(p['streams']) or 'none'}); class identities in {p['world']}."
    )
    return 0


# --------------------------------------------------------------------------- pretrain-image


def _register_pretrain_image(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain-image",
        help="train the synthetic world's stand-in for ImageNet ResNet-18 weights",
        description="Train a ResNet-18 to name the one object in scenes of a synthetic world's "
        "classes and save it in torchvision's ImageNet state-dict shape, for "
        "`fnac train --imagenet-weights FILE` (the published recipe starts from ImageNet).",
    )
    p.add_argument("world", metavar="WORLD", help="the folder `fnac synth` wrote (world.json)")
    p.add_argument("--out", required=True, help="weights file to write (.pth)")
    add_dataclass_flags(
        p, PretrainConfig, only=("images", "steps", "batch_size", "lr", "seed", "device")
    )
    p.set_defaults(func=pretrain_command)


def pretrain_command(args: argparse.Namespace) -> int:
    from train.object_pretrain import pretrain

    config = PretrainConfig(**dataclass_values(args, PretrainConfig))
    s = pretrain(args.world, args.out, config)
    print(
        f"wrote {s['out']}: ResNet-18 naming the {s['classes']} classes of the world at "
        f"{s['image_size']} px, held-out accuracy {s['held_out_accuracy']:.3f}, "
        f"{s['seconds']:.0f} s on {s['device']}. Use it with "
        f"`fnac train --imagenet-weights {s['out']} ...`"
    )
    return 0


# ------------------------------------------------------------------------------------ train


def _register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train FNAC (or the contrastive baseline) on a dataset",
        description="Train FNAC. Every hyper-parameter is a flag and a key of --config (JSON); "
        "precedence: defaults < --preset < --config < flags. Several GPUs or nodes: launch "
        "with torchrun.",
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default=None)
    p.add_argument("--config", dest="config_file", default=None, help="JSON file of settings")
    p.add_argument("--resume", action="store_true", help="continue from OUT/latest.pth")
    # Only the flags given override: a preset or a config file may have set the others.
    add_dataclass_flags(p, TrainConfig, suppress_defaults=True)
    p.add_argument(  # the name of earlier builds, still taken (one name is shown: --testset)
        "--test-kind", dest="testset", choices=TESTSET_KINDS, default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
    )  # fmt: skip
    p.set_defaults(func=train_command)


def train_command(args: argparse.Namespace) -> int:
    from train.config import resolve
    from train.trainer import train

    config = resolve(args.preset, args.config_file, dataclass_values(args, TrainConfig))
    result = train(config, resume=args.resume)
    best = result["best"]
    summary = ", ".join(f"{k} {v:.4f}" for k, v in best.items()) or "no test set given"
    print(f"trained {result['epochs']} epochs -> {result['out']}/best.pth ({summary})")
    return 0


# ------------------------------------------------------------------------------------- eval


def _register_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint on a test set (the published protocol)",
        description="Evaluate a published or fnac checkpoint: cIoU@0.5, cIoU@0.3, AUC and mean "
        "cIoU for AV, Obj and AV+Obj maps with bicubic and bilinear upsampling; multi-source "
        "figures on duet sets, AP / max-F1 on silent pairs; on AVSBench S4 / MS3 also against "
        "the masks' boxes, mIoU and F-score.",
    )
    add_dataclass_flags(p, EvalConfig)
    add_json_flag(p, "the report (figures, per-sample lists)")
    p.add_argument(
        "--calibrate",
        metavar="OUT.pth",
        default=None,
        help="write the checkpoint again with the live app's sounding threshold set from the "
        "silent pairs (the score at max-F1) and its box level from the boxes (the level of the "
        "best mean box IoU); OUT may be the checkpoint itself",
    )
    p.add_argument("--plot", default=None, help="success-curve PNG (default: beside --json)")
    p.set_defaults(func=eval_command)


_NO_SILENT_PAIRS = (
    "--calibrate needs silent pairs to measure the threshold on: give --pairs "
    "(*_test_plus_silent.csv) or a synthetic world, which has them"
)


def _calibrate(model, reports: list[dict], out: str, data: str) -> None:
    """``--calibrate``: the score at max-F1 on the silent pairs becomes the checkpoint's
    ``score_mid``, where the live app's confidence is one half."""
    from fnac.checkpoint import save_calibrated

    silent = [r for r in reports if "score_at_max_f1" in r.get("silent", {})]
    if not silent:
        raise ValueError(_NO_SILENT_PAIRS + " (none of them could be loaded)")
    score = silent[0]["silent"]["score_at_max_f1"]
    source = f"max-F1 on the silent pairs of {silent[0].get('root', data)}"
    boxed = [r for r in reports if "live" in r]
    level = boxed[0]["live"]["best_box_level"] if boxed else None
    if level is not None:
        source += f"; box level: the best mean box IoU on {boxed[0].get('root', data)}"
    save_calibrated(out, model, score, source, level)
    silent[0]["silent"]["calibrated"] = str(out)
    said = f", the box level {level:.2f}" if level is not None else ""
    print(f"wrote {out}: the live app's sounding threshold (score_mid) is {score:.3f}{said}")


def eval_command(args: argparse.Namespace) -> int:
    from train.checkpoint_eval import evaluate_checkpoint, open_testsets, write_outputs

    config = EvalConfig(**dataclass_values(args, EvalConfig))
    check_writable(args.json_out, args.plot, args.calibrate)
    testsets = open_testsets(config)
    # Said before the evaluation, not after it.
    if args.calibrate and not any(getattr(t, "silent", None) for t in testsets):
        raise ValueError(_NO_SILENT_PAIRS)
    model, reports = evaluate_checkpoint(config, testsets)
    if args.calibrate:
        _calibrate(model, reports, args.calibrate, config.data)
    write_outputs(reports, config.checkpoint, args.json_out, args.plot)
    return 0


# ------------------------------------------------------------------------------ bench-train


def _register_bench_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench-train",
        help="training samples/s: fnac train vs a plain fp32 loop",
        description=train.throughput.__doc__,
    )
    add_dataclass_flags(p, BenchTrainConfig)
    add_json_flag(p, "the figures")
    p.set_defaults(func=bench_train_command)


def bench_train_command(args: argparse.Namespace) -> int:
    from train.throughput import bench_train

    settings = BenchTrainConfig(**dataclass_values(args, BenchTrainConfig))
    check_writable(args.json_out)
    res = bench_train(settings)
    print(f"plain float32 eager loop: {res['plain_fp32_eager']['samples_per_s']:.2f} samples/s")
    print(
        f"fnac train ({res['fnac_train']['amp']}, channels_last, {settings.workers} workers): "
        f"{res['fnac_train']['samples_per_s']:.2f} samples/s  -> x{res['speedup']:.2f}"
    )
    write_json(args.json_out, res)
    return 0


# ------------------------------------------------------------------------------- experiment


def _register_experiment(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiment",
        help="FNAC vs the contrastive baseline on the synthetic world",
        description=train.experiment.__doc__,
    )
    add_dataclass_flags(p, ExperimentConfig)
    p.set_defaults(func=experiment_command)


def experiment_command(args: argparse.Namespace) -> int:
    from train.experiment import markdown, run_experiment

    settings = ExperimentConfig(**dataclass_values(args, ExperimentConfig))
    report = run_experiment(settings)
    print(markdown(report["table"]), end="")
    out = Path(settings.out)
    print(f"wrote {out / 'results.json'} and {out / 'results.md'}")
    return 0


# ------------------------------------------------------------------------------------- tour


def _register_tour(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tour",
        help="synthesize, train, evaluate and localize, end to end",
        description=train.tour.__doc__,
    )
    add_dataclass_flags(p, TourConfig)
    p.set_defaults(func=tour_command)


def tour_command(args: argparse.Namespace) -> int:
    from train.tour import run_tour

    config = TourConfig(**dataclass_values(args, TourConfig))
    summary = run_tour(config)
    print(
        f"done in {summary['seconds']} s: test cIoU@0.5 {summary['test_ciou@0.5']:.3f}, "
        f"AUC {summary['test_auc']:.3f}. See {config.out}/ (eval.json, eval.png, overlays/, "
        "example-overlay.png, tour.pth)"
    )
    return 0


# ----------------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    """Every offline subcommand, in the order ``fnac --help`` lists them."""
    for add in (
        _register_synth,
        _register_pretrain_image,
        _register_train,
        _register_eval,
        _register_bench_train,
        _register_experiment,
        _register_tour,
    ):
        add(sub)
