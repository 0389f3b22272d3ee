"""The evaluation protocol of spec §5 over a test set: AV, Obj and AV+Obj maps, both upsamplings,
multi-source (duet) and silent-pair figures, per-sample cIoU, success curve and overlays; on the
AVSBench sets (masks) also cIoU against the masks' boxes, mIoU and the F-score."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from fnac.config import AudioConfig, ImageConfig
from fnac.heatmap import UPSAMPLE_MODES, heatmap, min_max
from fnac.localization import live_figures
from fnac.metrics import (
    SUCCESS_THRESHOLDS,
    average_precision,
    ciou,
    fmeasure_curve,
    mask_box_map,
    mask_iou,
    max_f1,
    max_f1_threshold,
    max_fscore,
    median_threshold,
    multi_source_ciou,
    sounding_confidence,
    success_curve,
    summarize,
    vggss_gt_map,
)
from fnac.model import FNAC, resnet_trunk
from train.datasets import GT_SIZE, AVDataset, Entry, TestSet, collate_skipping, ground_truth

log = logging.getLogger(__name__)
EVAL_SIZE = GT_SIZE  # the ground-truth grid of every published test set


def _loader(
    entries: list[Entry], audio: AudioConfig, image: ImageConfig, batch: int, workers: int
) -> DataLoader:
    return DataLoader(
        AVDataset(entries, audio, image),
        batch_size=batch,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_skipping,
    )


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@dataclass
class Maps:
    indices: list[int]  # entries that loaded
    raw: torch.Tensor  # (N, h, w) raw maps
    obj: torch.Tensor | None  # (N, 224, 224) object maps, when an ImageNet model was given
    frames: torch.Tensor | None  # (N, 3, S, S), only when kept (overlays)
    skipped: int
    masks: torch.Tensor | None = None  # (N, 224, 224) bool, on a mask set (AVSBench)


@torch.no_grad()
def raw_maps(
    model: FNAC,
    entries: list[Entry],
    audio: AudioConfig,
    image: ImageConfig,
    batch: int = 16,
    workers: int = 0,
    obj_model: torch.nn.Module | None = None,
    keep_frames: bool = False,
) -> Maps:
    """The raw maps of every entry that loads, and per batch the object maps; frames are kept
    only when asked (a VGG-SS test set's frames alone take about 3 GB)."""
    model.eval()
    device = _device(model)
    indices, maps, objs, frames, masks, skipped = [], [], [], [], [], 0
    for b in _loader(entries, audio, image, batch, workers):
        skipped += b["skipped"]
        if "frame" not in b:
            continue
        v = model.encode_image(b["frame"].to(device))
        a = model.encode_audio(b["spec"].to(device))
        maps.append(model.localize(v, a).float().cpu())
        if obj_model is not None:
            objs.append(object_maps(obj_model, b["frame"]))
        if keep_frames:
            frames.append(b["frame"])
        if "mask" in b:
            masks.append(b["mask"])
        indices += list(b["index"])
    return Maps(
        indices,
        torch.cat(maps) if maps else torch.empty(0),
        torch.cat(objs) if objs else None,
        torch.cat(frames) if frames else None,
        skipped,
        torch.cat(masks) if masks else None,
    )


@torch.no_grad()
def object_maps(obj_model: torch.nn.Module, frames: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """ImageNet ResNet-18 saliency: mean |feature| over channels, bilinear (align_corners) to
    224, min-max normalised. (N, 3, S, S) -> (N, 224, 224)."""
    device = _device(obj_model)
    out = []
    for i in range(0, len(frames), batch):
        feat = resnet_trunk(obj_model, frames[i : i + batch].to(device))  # (B, 512, h, w)
        sal = feat.abs().mean(dim=1, keepdim=True)
        up = F.interpolate(sal, size=(EVAL_SIZE, EVAL_SIZE), mode="bilinear", align_corners=True)
        out.append(min_max(up.squeeze(1)).float().cpu())
    return torch.cat(out)


def _none_loaded(root: Path, skipped: int) -> str:
    return (
        f"no sample of {root} could be loaded ({skipped} skipped, each named in a warning "
        "above); fix or remove the bad files"
    )


def _masks(found: Maps, root: Path) -> np.ndarray | None:
    """A mask set's (N, 224, 224) masks, or None; a set whose every mask is empty is refused."""
    if found.masks is None:
        return None
    masks = found.masks.numpy()
    if not masks.any():
        raise ValueError(
            f"every mask of {root} read as empty: masks are read as PIL mode '1' (foreground "
            "where a pixel is above 127), so masks stored as values 0 / 1 read as empty; "
            "rescale them to 0 / 255"
        )
    return masks


def mask_figures(heat: np.ndarray, masks: np.ndarray) -> tuple[dict[str, Any], dict[str, list]]:
    """One map variant on a mask set: (N, 224, 224) heatmaps and bool masks -> its figures and
    the per-frame values (``ciou``, ``box``, ``iou``).

    cIoU against the mask (``ciou@0.5``, ...) and against the mask's bounding box (``box/...``)
    count every frame, by the cIoU formula with the mask (or its box) as the ground truth: a
    frame whose mask is empty has nothing to point at and scores 0 whatever the map; ``miou``
    counts every frame (AVSBench's rule: an empty mask scores the backgrounds' IoU); ``fscore``
    the frames whose mask is not empty, averaged over the whole set (AVSBench's rule without its
    dependence on the batch size). One median binarisation serves cIoU, box cIoU and IoU."""
    cious: list[float] = []
    boxes: list[float] = []
    ious, curves = [], []
    for h, m in zip(heat, masks, strict=True):
        thr = median_threshold(h)
        cious.append(ciou(h, m, thr))
        boxes.append(ciou(h, mask_box_map(m), thr))
        ious.append(mask_iou(h, m, thr))
        curves.append(fmeasure_curve(h, m))
    figures: dict[str, Any] = {**summarize(cious), "curve": success_curve(cious).tolist()}
    figures.update({f"box/{k}": v for k, v in summarize(boxes).items()})
    figures["box/curve"] = success_curve(boxes).tolist()
    figures["miou"] = float(np.mean(ious))
    figures["fscore"] = max_fscore(curves)
    return figures, {"ciou": cious, "box": boxes, "iou": ious}


def _ground_truths(testset: TestSet, indices: list[int], masks: np.ndarray | None) -> list:
    if masks is not None:
        return list(masks)
    return [ground_truth(testset.entries[i], testset.kind, EVAL_SIZE) for i in indices]


def evaluate_av(
    model: FNAC, testset: TestSet, audio: AudioConfig, image: ImageConfig
) -> dict[str, float]:
    """Headline figures (AV map, bicubic): ``ciou@0.5``, ``ciou@0.3``, ``auc``, ``mean_ciou``
    (on a mask set, against the masks, as ``mask_figures`` counts them)."""
    result = raw_maps(model, testset.entries, audio, image)
    indices, maps = result.indices, result.raw
    if not indices:
        raise ValueError(_none_loaded(testset.root, result.skipped))
    heat = heatmap(maps, (EVAL_SIZE, EVAL_SIZE)).numpy()
    masks = _masks(result, testset.root)
    if masks is not None:
        figures, _ = mask_figures(heat, masks)
        return {k: figures[k] for k in ("ciou@0.5", "ciou@0.3", "auc", "mean_ciou")}
    gts = _ground_truths(testset, indices, None)
    return summarize([ciou(h, g) for h, g in zip(heat, gts, strict=True)])


def evaluate(
    model: FNAC,
    testset: TestSet,
    audio: AudioConfig,
    image: ImageConfig,
    alpha: float = 0.4,
    obj_model: torch.nn.Module | None = None,
    overlays: str | Path | None = None,
    batch: int = 16,
    workers: int = 0,
) -> dict[str, Any]:
    """The full protocol on one test set; returns a JSON-ready report."""
    if testset.kind == "duet":
        return evaluate_duet(model, testset, audio, image, batch, workers)
    found = raw_maps(
        model,
        testset.entries,
        audio,
        image,
        batch,
        workers,
        obj_model,
        keep_frames=overlays is not None,
    )
    indices, maps, frames, skipped = found.indices, found.raw, found.frames, found.skipped
    if not indices:
        raise ValueError(_none_loaded(testset.root, skipped))
    masks = _masks(found, testset.root)
    gts = _ground_truths(testset, indices, masks)
    obj = found.obj.numpy() if found.obj is not None else None
    report: dict[str, Any] = {
        "testset": testset.kind,
        "root": str(testset.root),
        "samples": len(indices),
        "skipped": skipped,
        "alpha": alpha,
        "results": {},
        "per_sample": [],
    }
    per_sample = [{"id": testset.entries[i].id} for i in indices]
    if masks is not None:  # AVSBench: the frame's video, number and category; what is left out
        empty = int((~masks.any(axis=(1, 2))).sum())
        report.update(
            split=testset.split,
            videos=len({testset.entries[i].clip for i in indices}),
            empty_masks=empty,
            dropped=testset.dropped,
        )
        for rec, i in zip(per_sample, indices, strict=True):
            e = testset.entries[i]
            rec.update(video=e.clip, frame=e.frame_index, category=e.klass)
    for mode in UPSAMPLE_MODES:
        av = heatmap(maps, (EVAL_SIZE, EVAL_SIZE), mode).numpy()
        variants = {"av": av}
        if obj is not None:
            variants["obj"] = obj
            variants["av+obj"] = min_max(torch.from_numpy(alpha * av + (1 - alpha) * obj)).numpy()
        report["results"][mode] = {}
        for name, heat in variants.items():
            if masks is not None:
                figures, values = mask_figures(heat, masks)
                report["results"][mode][name] = figures
                for k, rec in enumerate(per_sample):
                    rec[f"{mode}/{name}"] = values["ciou"][k]
                    rec[f"{mode}/{name}/box"] = values["box"][k]
                    rec[f"{mode}/{name}/iou"] = values["iou"][k]
                continue
            cious = [ciou(h, g) for h, g in zip(heat, gts, strict=True)]
            report["results"][mode][name] = summarize(cious)
            report["results"][mode][name]["curve"] = success_curve(cious).tolist()
            for rec, value in zip(per_sample, cious, strict=True):
                rec[f"{mode}/{name}"] = value
    report["per_sample"] = per_sample
    boxed = [(k, i) for k, i in enumerate(indices) if testset.entries[i].boxes]
    if boxed:  # the live app's peak and box on this set, and the box level that fits it
        report["live"] = live_figures(
            maps[[k for k, _ in boxed]].numpy(),
            [_pixel_boxes(testset.entries[i], testset.kind, EVAL_SIZE) for _, i in boxed],
            (EVAL_SIZE, EVAL_SIZE),
        )
    if obj is None:
        report["note"] = "Obj and AV+Obj need ImageNet ResNet-18 weights (--imagenet-weights)"
    if testset.silent:
        report["silent"] = evaluate_silent(model, testset, maps, audio, image, batch, workers)
    if overlays:
        write_overlays(
            Path(overlays),
            testset,
            indices,
            frames,
            heatmap(maps, (EVAL_SIZE, EVAL_SIZE)).numpy(),
            image,
            masks,
        )
    return report


def evaluate_silent(
    model: FNAC,
    testset: TestSet,
    sounding_maps: torch.Tensor,
    audio: AudioConfig,
    image: ImageConfig,
    batch: int,
    workers: int,
) -> dict[str, Any]:
    """Sounding vs non-sounding pairs (SLAVC protocol): AP and max-F1 of the map confidence."""
    silent = raw_maps(model, testset.silent, audio, image, batch, workers)
    silent_maps, skipped = silent.raw, silent.skipped
    scores = [sounding_confidence(m) for m in sounding_maps.numpy()]
    scores += [sounding_confidence(m) for m in silent_maps.numpy()]
    labels = [True] * len(sounding_maps) + [False] * len(silent_maps)
    if not len(silent_maps):
        return {"error": "no silent pair could be loaded", "skipped": skipped}
    return {
        "sounding": len(sounding_maps),
        "non_sounding": len(silent_maps),
        "skipped": skipped,
        "ap": average_precision(scores, labels),
        "max_f1": max_f1(scores, labels),
        # in cosine units, like the live app's ConfidenceSettings.score_mid
        "score_at_max_f1": max_f1_threshold(scores, labels) * model.tau,
    }


@torch.no_grad()
def evaluate_duet(
    model: FNAC, testset: TestSet, audio: AudioConfig, image: ImageConfig, batch: int, workers: int
) -> dict[str, Any]:
    """Two sounding objects per image: one map per source's audio (DSOL protocol)."""
    n_sources = len(testset.entries[0].sources)
    per_source = []
    for k in range(n_sources):
        entries = [
            Entry(e.id, e.image, e.sources[k]["audio"], boxes=e.sources[k]["boxes"])
            for e in testset.entries
        ]
        found = raw_maps(model, entries, audio, image, batch, workers)
        indices, maps = found.indices, found.raw
        heat = heatmap(maps, (EVAL_SIZE, EVAL_SIZE)).numpy()
        per_source.append(dict(zip(indices, heat, strict=True)))
    scores, ids = [], []
    for i, entry in enumerate(testset.entries):
        if not all(i in maps for maps in per_source):
            continue
        gts = [vggss_gt_map(src["boxes"], EVAL_SIZE) for src in entry.sources]
        scores.append(multi_source_ciou([maps[i] for maps in per_source], gts))
        ids.append(entry.id)
    if not scores:
        raise ValueError(f"no duet sample of {testset.root} could be loaded")
    summary = summarize(scores)
    return {
        "testset": "duet",
        "root": str(testset.root),
        "samples": len(scores),
        "skipped": len(testset.entries) - len(scores),
        "multi_source": {
            "ciou@0.3": summary["ciou@0.3"],
            "auc": summary["auc"],
            "mean_ciou": summary["mean_ciou"],
        },
        "per_sample": [{"id": i, "multi_source_ciou": s} for i, s in zip(ids, scores, strict=True)],
    }


def _denormalize(frame: torch.Tensor, image: ImageConfig) -> np.ndarray:
    mean = torch.tensor(image.mean).view(3, 1, 1)
    std = torch.tensor(image.std).view(3, 1, 1)
    rgb = (frame.float() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
    return (rgb * 255 + 0.5).astype(np.uint8)


def _pixel_boxes(entry: Entry, kind: str, size: int) -> list[tuple[int, int, int, int]]:
    if kind == "flickr":
        return [tuple(int(size * int(v) / 256) for v in b) for b in entry.boxes]
    return [
        tuple((np.clip(np.asarray(b, dtype=float), 0, 1) * size).astype(int)) for b in entry.boxes
    ]


def write_overlays(
    folder: Path,
    testset: TestSet,
    indices: list[int],
    frames: torch.Tensor,
    heat: np.ndarray,
    image: ImageConfig,
    masks: np.ndarray | None = None,
) -> None:
    """One PNG per sample: the heatmap over the frame, ground-truth boxes (or the outline of the
    mask, on a mask set) in white."""
    from PIL import Image

    from fnac.overlay import blend, draw_box, draw_outline

    folder.mkdir(parents=True, exist_ok=True)
    for k, (idx, frame, h) in enumerate(zip(indices, frames, heat, strict=True)):
        rgb = np.asarray(Image.fromarray(_denormalize(frame, image)).resize((EVAL_SIZE, EVAL_SIZE)))
        out = blend(rgb, h, 0.5)
        if masks is not None:
            out = draw_outline(out, masks[k])
        for box in _pixel_boxes(testset.entries[idx], testset.kind, EVAL_SIZE):
            out = draw_box(out, box)
        Image.fromarray(out).save(folder / f"{testset.entries[idx].id}.png")


def plot_success_curves(report: dict[str, Any], path: str | Path) -> Path:
    """cIoU threshold vs fraction of samples, one line per variant, AUC in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
    for mode, variants in report["results"].items():
        for name, res in variants.items():
            style = "-" if mode == "bicubic" else "--"
            ax.plot(
                SUCCESS_THRESHOLDS,
                res["curve"],
                style,
                label=f"{name.upper()} {mode} (AUC {res['auc']:.3f})",
            )
            if "box/curve" in res:  # a mask set: the curve against the masks' boxes too
                ax.plot(
                    SUCCESS_THRESHOLDS,
                    res["box/curve"],
                    ":" if mode == "bicubic" else "-.",
                    label=f"{name.upper()} {mode}, box (AUC {res['box/auc']:.3f})",
                )
    ax.set_xlabel("cIoU threshold")
    ax.set_ylabel("fraction of samples with cIoU >= threshold")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{report['testset']}: {report['samples']} samples")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def write_report(report: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
