"""Subcommands ``fnac train`` and ``fnac eval``."""

from __future__ import annotations

import argparse
import logging
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

from train.config import PRESETS, TrainConfig

log = logging.getLogger(__name__)


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; only flags given on the command line override."""
    hints = get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        if kind is bool:
            p.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{f.metadata.get('help', '')} (default {f.default})",
            )
            continue
        base = next(
            (t for t in (int, float, str) if t == kind or t in getattr(kind, "__args__", ())), str
        )
        p.add_argument(
            flag,
            dest=f.name,
            type=base,
            default=argparse.SUPPRESS,
            help=f"{f.metadata.get('help', '')} (default {f.default})",
        )


def register(sub: argparse._SubParsersAction) -> None:
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
    _add_config_flags(p)
    p.set_defaults(func=train_command)

    p = sub.add_parser(
        "eval",
        help="evaluate a checkpoint on a test set (spec §5 protocol)",
        description="Evaluate a published or fnac checkpoint: cIoU@0.5, cIoU@0.3, AUC and mean "
        "cIoU for AV, Obj and AV+Obj maps with bicubic and bilinear upsampling; multi-source "
        "figures on duet sets, AP / max-F1 on silent pairs.",
    )
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="test set root (or a synthetic world root)")
    p.add_argument("--testset", default="auto", choices=["auto", "vggss", "flickr", "duet"])
    p.add_argument("--annotations", default=None, help="vggss.json-style boxes")
    p.add_argument("--ids", default=None, help="id csv (vggss_test.csv, flickr_test.csv, ...)")
    p.add_argument("--pairs", default=None, help="silent pairs csv (*_test_plus_silent.csv)")
    p.add_argument("--sample-rate", type=int, default=None)
    p.add_argument("--alpha", type=float, default=0.4, help="AV weight in AV+Obj (published 0.4)")
    p.add_argument(
        "--imagenet-weights",
        default=None,
        help="ResNet-18 ImageNet weights for the Obj maps (default: torch hub cache)",
    )
    p.add_argument("--json", dest="json_out", default=None, help="write the report here")
    p.add_argument(
        "--calibrate",
        metavar="OUT.pth",
        default=None,
        help="write the checkpoint again with the live app's sounding threshold set from the "
        "silent pairs (the score at max-F1); OUT may be the checkpoint itself",
    )
    p.add_argument("--plot", default=None, help="success-curve PNG (default: beside --json)")
    p.add_argument("--overlays", default=None, help="write per-sample overlay PNGs here")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=eval_command)


def train_command(args: argparse.Namespace) -> int:
    from train.config import resolve
    from train.trainer import train

    names = {f.name for f in fields(TrainConfig)}
    overrides = {k: v for k, v in vars(args).items() if k in names}
    config = resolve(args.preset, args.config_file, overrides)
    result = train(config, resume=args.resume)
    best = result["best"]
    summary = ", ".join(f"{k} {v:.4f}" for k, v in best.items()) or "no test set given"
    print(f"trained {result['epochs']} epochs -> {result['out']}/best.pth ({summary})")
    return 0


def _testsets(args: argparse.Namespace) -> list[Any]:
    """The test sets under --data: one, or each of a synthetic world's."""
    from train.datasets import open_testset

    root = Path(args.data)
    world = [root / name for name in ("test", "flickr_test", "duet_test")]
    if args.testset == "auto" and (root / "world.json").is_file():
        return [open_testset(p) for p in world if p.is_dir()]
    return [open_testset(root, args.testset, args.annotations, args.ids, args.pairs)]


def _headline(report: dict[str, Any]) -> str:
    if "multi_source" in report:
        ms = report["multi_source"]
        return f"multi-source cIoU@0.3 {ms['ciou@0.3']:.4f}, AUC {ms['auc']:.4f}"
    lines = []
    for mode, variants in report["results"].items():
        for name, res in variants.items():
            lines.append(
                f"{name.upper():7s} {mode:8s} cIoU@0.5 {res['ciou@0.5']:.4f}  "
                f"cIoU@0.3 {res['ciou@0.3']:.4f}  AUC {res['auc']:.4f}  "
                f"mean {res['mean_ciou']:.4f}"
            )
    if "silent" in report and "ap" in report["silent"]:
        lines.append(
            f"silent pairs: AP {report['silent']['ap']:.4f}, "
            f"max-F1 {report['silent']['max_f1']:.4f} at a map score of "
            f"{report['silent']['score_at_max_f1']:.3f} (cosine; the live app's score_mid)"
        )
    return "\n  ".join(lines)


_NO_SILENT_PAIRS = (
    "--calibrate needs silent pairs to measure the threshold on: give --pairs "
    "(*_test_plus_silent.csv) or a synthetic world, which has them"
)


def _calibrate(model, reports: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """``--calibrate``: the score at max-F1 on the silent pairs becomes the checkpoint's
    ``score_mid``, where the live app's confidence is one half."""
    from fnac.checkpoint import save_calibrated

    silent = [r for r in reports if "score_at_max_f1" in r.get("silent", {})]
    if not silent:
        raise ValueError(_NO_SILENT_PAIRS + " (none of them could be loaded)")
    score = silent[0]["silent"]["score_at_max_f1"]
    source = f"max-F1 on the silent pairs of {silent[0].get('root', args.data)}"
    save_calibrated(args.calibrate, model, score, source)
    silent[0]["silent"]["calibrated"] = str(args.calibrate)
    print(f"wrote {args.calibrate}: the live app's sounding threshold (score_mid) is {score:.3f}")


def eval_command(args: argparse.Namespace) -> int:
    import torch

    from fnac.checkpoint import load_checkpoint
    from train.evaluate import evaluate, plot_success_curves, write_report
    from train.imagenet import WeightsNotFound, object_saliency_model

    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    model = load_checkpoint(args.checkpoint, sample_rate=args.sample_rate).to(device)
    try:
        obj_model = object_saliency_model(args.imagenet_weights).to(device)
    except WeightsNotFound as exc:
        if args.imagenet_weights:
            raise
        log.warning("%s: reporting the AV maps only", exc)
        obj_model = None
    reports = []
    testsets = _testsets(args)
    if args.calibrate and not any(getattr(t, "silent", None) for t in testsets):
        raise ValueError(_NO_SILENT_PAIRS)  # said before the evaluation, not after it
    if args.calibrate and Path(args.calibrate).is_dir():
        raise ValueError(f"--calibrate {args.calibrate} is a folder: give the file to write")
    for testset in testsets:
        overlays = Path(args.overlays) / testset.root.name if args.overlays else None
        report = evaluate(
            model,
            testset,
            model.info.audio,
            model.info.image,
            args.alpha,
            obj_model,
            overlays,
            args.batch_size,
            args.workers,
        )
        reports.append(report)
        print(
            f"{testset.kind} ({testset.root}, {report['samples']} samples):\n  {_headline(report)}"
        )
    if args.calibrate:
        _calibrate(model, reports, args)
    combined = reports[0] if len(reports) == 1 else {"testsets": reports}
    combined = {"checkpoint": str(args.checkpoint), **combined}
    if args.json_out:
        write_report(combined, args.json_out)
        print(f"wrote {args.json_out}")
    plot = args.plot or (str(Path(args.json_out).with_suffix(".png")) if args.json_out else None)
    if plot:
        for i, report in enumerate(r for r in reports if "results" in r):
            target = plot if i == 0 else str(Path(plot).with_name(f"{Path(plot).stem}-{i}.png"))
            plot_success_curves(report, target)
            print(f"wrote {target}")
    return 0
