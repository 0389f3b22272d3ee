"""A checkpoint evaluated on the test sets under a folder, and its report and success curves
written: what ``fnac eval`` and ``fnac tour`` share, so the tour shows exactly what eval measures.

``train.evaluate`` holds the protocol for one test set; this module picks the test sets (one, or
each of a synthetic world's), loads the models, prints one headline per test set and writes the
JSON report and the curves beside it. It imports torch only when it evaluates.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fnac.localization import BOX_LEVEL
from train.avsbench import SPLITS as AVSBENCH_SPLITS
from train.config import AT_LEAST_0, AT_LEAST_1, INF, TESTSET_KINDS, opt

if TYPE_CHECKING:
    from fnac.model import FNAC
    from train.datasets import TestSet

log = logging.getLogger(__name__)
WORLD_TESTSETS = ("test", "flickr_test", "duet_test")  # what `fnac synth` writes, in this order
WORLD_AVSBENCH = "avsbench"  # and its AVSBench sets, in the published layout, under this folder


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and how; the help and ranges are ``fnac eval``'s flags."""

    checkpoint: str = field(metadata={"help": "published or fnac checkpoint (.pth)"})
    data: str = field(metadata={"help": "test set root (or a synthetic world root)"})
    testset: str = opt("auto", "layout of --data (auto: from the folder)", choices=TESTSET_KINDS)
    annotations: str | None = opt(None, "vggss.json-style boxes")
    ids: str | None = opt(None, "id csv (vggss_test.csv, flickr_test.csv, ...)")
    pairs: str | None = opt(None, "silent pairs csv (*_test_plus_silent.csv)")
    split: str = opt("test", "AVSBench split to evaluate", choices=AVSBENCH_SPLITS)
    sample_rate: int | None = opt(
        None, "rate the model was trained at (published checkpoints record none)", (1000, INF)
    )
    alpha: float = opt(0.4, "AV weight in AV+Obj (published 0.4)", (0, 1))
    imagenet_weights: str | None = opt(
        None, "ResNet-18 ImageNet weights for the Obj maps; None: from torch's hub cache"
    )
    overlays: str | None = opt(None, "write per-sample overlay PNGs here")
    batch_size: int = opt(16, "samples per forward pass", AT_LEAST_1)
    workers: int = opt(0, "DataLoader worker processes", AT_LEAST_0)
    device: str = opt("auto", "auto (CUDA when present), cpu, cuda, cuda:N")


def open_testsets(config: EvalConfig) -> list[TestSet]:
    """The test sets under ``config.data``: one; each of a synthetic world's; or both AVSBench
    sets when the folder holds both (``--split`` of each)."""
    from train.avsbench import find_sets
    from train.datasets import open_testset

    root = Path(config.data)

    def avsbench(folder: Path) -> list[TestSet]:
        return [open_testset(f, s.kind, split=config.split) for s, f in find_sets(folder)]

    if config.testset == "auto" and (root / "world.json").is_file():
        sets = [open_testset(root / name) for name in WORLD_TESTSETS if (root / name).is_dir()]
        return sets + avsbench(root / WORLD_AVSBENCH)
    if config.testset == "auto" and len(find_sets(root)) > 1:
        return avsbench(root)
    return [
        open_testset(
            root, config.testset, config.annotations, config.ids, config.pairs, config.split
        )
    ]


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _object_model(weights: str | None, device):
    """The Obj maps' ImageNet ResNet-18, or None (AV maps only) when no weights file was given
    and none is in torch's hub cache; a file that was given must load."""
    from train.imagenet import WeightsNotFound, object_saliency_model

    try:
        return object_saliency_model(weights).to(device)
    except WeightsNotFound as exc:
        if weights:
            raise
        log.warning("%s: reporting the AV maps only", exc)
        return None


def headline(report: dict[str, Any]) -> str:
    """The figures of one test set's report, one line per map and upsampling."""
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
            if "miou" in res:  # a mask set (AVSBench)
                lines.append(
                    f"{'':16s} box: cIoU@0.5 {res['box/ciou@0.5']:.4f}  "
                    f"cIoU@0.3 {res['box/ciou@0.3']:.4f}  AUC {res['box/auc']:.4f}  "
                    f"mean {res['box/mean_ciou']:.4f};  mIoU {res['miou']:.4f}  "
                    f"F-score {res['fscore']:.4f}"
                )
    if "empty_masks" in report:
        dropped = ", ".join(f"{n} {why}" for why, n in report["dropped"].items())
        lines.append(
            f"split {report['split']}: {report['videos']} videos, {report['samples']} frames, "
            f"{report['empty_masks']} with an empty mask (cIoU 0; left out of F-score), "
            f"{report['skipped']} skipped at loading (see the warnings)"
            + (f"; left out: {dropped}" if dropped else "")
        )
    if "live" in report:
        live = report["live"]
        best = live["by_box_level"][f"{live['best_box_level']:.2f}"]
        default = live["by_box_level"].get(f"{BOX_LEVEL:.2f}")
        lines.append(
            f"live peak and box: pointing {best['pointing']:.4f}, box IoU {best['box_iou']:.4f} "
            f"at the best box level {live['best_box_level']:.2f}"
            + (f" ({default['box_iou']:.4f} at the default {BOX_LEVEL:.2f})" if default else "")
        )
    if "silent" in report and "ap" in report["silent"]:
        lines.append(
            f"silent pairs: AP {report['silent']['ap']:.4f}, "
            f"max-F1 {report['silent']['max_f1']:.4f} at a map score of "
            f"{report['silent']['score_at_max_f1']:.3f} (cosine; the live app's score_mid)"
        )
    return "\n  ".join(lines)


def evaluate_checkpoint(
    config: EvalConfig,
    testsets: list[TestSet] | None = None,
    echo: Callable[[str], None] = print,
) -> tuple[FNAC, list[dict[str, Any]]]:
    """``train.evaluate.evaluate`` of the checkpoint on each test set (default: those of
    ``open_testsets``), each headline passed to ``echo``; -> (the model, one report per set)."""
    from fnac.checkpoint import load_checkpoint
    from train.evaluate import evaluate

    testsets = open_testsets(config) if testsets is None else testsets
    device = _device(config.device)
    model = load_checkpoint(config.checkpoint, sample_rate=config.sample_rate).to(device)
    obj_model = _object_model(config.imagenet_weights, device)
    reports = []
    for testset in testsets:
        overlays = Path(config.overlays) / testset.root.name if config.overlays else None
        report = evaluate(
            model,
            testset,
            model.info.audio,
            model.info.image,
            config.alpha,
            obj_model,
            overlays,
            config.batch_size,
            config.workers,
        )
        reports.append(report)
        echo(f"{testset.kind} ({testset.root}, {report['samples']} samples):\n  {headline(report)}")
    return model, reports


def write_outputs(
    reports: list[dict[str, Any]],
    checkpoint: str | Path,
    json_out: str | Path | None = None,
    plot: str | Path | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The combined report (one test set's, or ``{"testsets": [...]}``) written to ``json_out``
    and a success-curve PNG per test set with single-source results at ``plot`` (default: beside
    ``json_out``; ``-1``, ``-2``, ... for the later sets); returns the combined report."""
    from train.evaluate import plot_success_curves, write_report

    combined = reports[0] if len(reports) == 1 else {"testsets": reports}
    combined = {"checkpoint": str(checkpoint), **combined}
    if json_out:
        write_report(combined, json_out)
        echo(f"wrote {json_out}")
    plot = plot or (str(Path(json_out).with_suffix(".png")) if json_out else None)
    if plot:
        for i, report in enumerate(r for r in reports if "results" in r):
            target = (
                str(plot) if i == 0 else str(Path(plot).with_name(f"{Path(plot).stem}-{i}.png"))
            )
            plot_success_curves(report, target)
            echo(f"wrote {target}")
    return combined
