"""Localization metrics exactly as the published evaluation computes them (spec §5).

Maps are numpy arrays (H, W); the ground-truth grid is 224 x 224 unless ``size`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

#: cIoU thresholds of the success curve: 0, 0.05, ..., 1.0 (computed as 0.05 * i, as published).
SUCCESS_THRESHOLDS = np.array([0.05 * i for i in range(21)])
FLICKR_GRID = 256  # Flickr-SoundNet boxes are given on a 256 x 256 grid
#: AVSBench's F-score: beta^2 = 0.3 (precision weighs more than recall) and 255 thresholds evenly
#: spaced in [0, 1 - 1e-10], in float32 as its torch code makes them (where 1 - 1e-10 is 1.0).
FSCORE_BETA2 = 0.3
FSCORE_THRESHOLDS = np.linspace(0.0, 1.0 - 1e-10, 255).astype(np.float32)


def median_threshold(pred_map: np.ndarray) -> float:
    """The published binarisation threshold: the sorted map's value at index int(H * W / 2)."""
    h, w = pred_map.shape
    return float(np.sort(pred_map.flatten())[int(h * w / 2)])


def ciou(pred_map: np.ndarray, gt_map: np.ndarray, threshold: float | None = None) -> float:
    """Consensus IoU of a [0, 1] heatmap against a ground-truth map (binary or Flickr's 0/0.5/1).

    The prediction is ``pred_map >= threshold``; ``None`` uses the published median rule.
    cIoU = sum(P * G) / (sum(G) + sum(P * (G == 0))).
    """
    pred_map = np.asarray(pred_map, dtype=np.float64)
    gt_map = np.asarray(gt_map, dtype=np.float64)
    if pred_map.shape != gt_map.shape:
        raise ValueError(
            f"prediction {pred_map.shape} and ground truth {gt_map.shape} differ in shape"
        )
    thr = median_threshold(pred_map) if threshold is None else threshold
    pred = (pred_map >= thr).astype(np.float64)
    denom = np.sum(gt_map) + np.sum(pred * (gt_map == 0))
    return float(np.sum(pred * gt_map) / denom) if denom > 0 else 0.0


def flickr_gt_map(boxes: Iterable[Sequence[float]], size: int = 224) -> np.ndarray:
    """Annotator boxes [xmin, ymin, xmax, ymax] on the 256 grid -> consensus map (size, size).

    Each box is scaled by size / 256 and truncated; the box masks are summed, halved and clipped at
    1, so one annotator gives 0.5 and two or more overlapping give 1.
    """
    gt = np.zeros((size, size))
    for box in boxes:
        xmin, ymin, xmax, ymax = (int(size * int(v) / FLICKR_GRID) for v in box)
        mask = np.zeros((size, size))
        mask[ymin:ymax, xmin:xmax] = 1
        gt += mask
    gt /= 2
    gt[gt > 1] = 1
    return gt


def vggss_gt_map(boxes: Iterable[Sequence[float]], size: int = 224) -> np.ndarray:
    """Normalised boxes [xmin, ymin, xmax, ymax] -> binary union map (size, size).

    Coordinates are clipped to [0, 1] first: the sentinel boxes in vggss.json become empty.
    """
    gt = np.zeros((size, size))
    for box in boxes:
        xmin, ymin, xmax, ymax = (np.clip(np.asarray(box, dtype=np.float64), 0, 1) * size).astype(
            int
        )
        gt[ymin:ymax, xmin:xmax] = 1
    return gt


def mask_box_map(mask: np.ndarray) -> np.ndarray:
    """A segmentation mask -> the binary map of its bounding box (one box around every foreground
    pixel, same shape), the ground truth of the papers that score a mask set with boxes. An empty
    mask gives an empty map."""
    mask = np.asarray(mask) > 0
    box = np.zeros(mask.shape)
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if rows.size:
        box[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] = 1
    return box


def mask_iou(pred_map: np.ndarray, mask: np.ndarray, threshold: float | None = None) -> float:
    """AVSBench's per-frame IoU (its ``mask_iou``, one frame at a time): the binary prediction
    ``pred_map >= threshold`` (``None``: the published median rule, as for cIoU) against a binary
    mask. A frame whose mask is empty scores the IoU of the backgrounds instead: the pixels left
    off over all pixels."""
    pred_map = np.asarray(pred_map, dtype=np.float64)
    mask = np.asarray(mask) > 0
    if pred_map.shape != mask.shape:
        raise ValueError(f"prediction {pred_map.shape} and mask {mask.shape} differ in shape")
    thr = median_threshold(pred_map) if threshold is None else threshold
    pred = pred_map >= thr
    if not mask.any():
        return float(np.sum(~pred) / pred.size)
    return float(np.sum(pred & mask) / np.sum(pred | mask))


def fmeasure_curve(
    heat: np.ndarray,
    mask: np.ndarray,
    thresholds: np.ndarray = FSCORE_THRESHOLDS,
    beta2: float = FSCORE_BETA2,
) -> np.ndarray | None:
    """One frame's F-measure at every threshold, as AVSBench's ``Eval_Fmeasure`` computes it:
    precision and recall of ``heat >= t`` against the mask, F = (1 + beta2) P R / (beta2 P + R),
    0 where undefined. ``heat`` is used as it is (a [0, 1] heatmap; AVSBench applies a sigmoid to
    its models' logits first). ``None`` for an empty mask, which AVSBench leaves out."""
    values = np.asarray(heat, dtype=np.float32).ravel()
    foreground = np.asarray(mask).ravel() > 0
    if values.shape != foreground.shape:
        raise ValueError(f"heatmap {np.shape(heat)} and mask {np.shape(mask)} differ in shape")
    if not foreground.any():
        return None
    thresholds = np.asarray(thresholds, dtype=np.float32)
    # Pixels at or above each threshold, counted on the sorted values.
    hot = values.size - np.searchsorted(np.sort(values), thresholds, side="left")
    hits = np.sort(values[foreground])
    true_pos = (hits.size - np.searchsorted(hits, thresholds, side="left")).astype(np.float64)
    precision = true_pos / np.maximum(hot, 1)  # no pixel on: no true positive either
    recall = true_pos / hits.size
    denom = beta2 * precision + recall
    return np.where(denom > 0, (1 + beta2) * precision * recall / np.where(denom > 0, denom, 1), 0)


def max_fscore(curves: Iterable[np.ndarray | None]) -> float:
    """The F-score AVSBench reports: the per-threshold F averaged over the frames (those with an
    empty mask, ``None``, left out), then its maximum over the thresholds. Averaged over every
    frame given at once: AVSBench averages per test batch, so its figure moves with the batch
    size; give the whole split."""
    kept = [c for c in curves if c is not None]
    if not kept:
        raise ValueError("no frame with a non-empty mask to compute the F-score on")
    return float(np.max(np.mean(kept, axis=0)))


def success_curve(cious: Sequence[float]) -> np.ndarray:
    """Fraction of samples with cIoU >= t for every t in SUCCESS_THRESHOLDS."""
    values = np.asarray(cious, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no cIoU values to summarise")
    return np.array([np.sum(values >= t) / values.size for t in SUCCESS_THRESHOLDS])


def auc(cious: Sequence[float]) -> float:
    """Trapezoidal area under the success curve (as sklearn.metrics.auc computes it)."""
    curve = success_curve(cious)
    return float(
        np.sum((SUCCESS_THRESHOLDS[1:] - SUCCESS_THRESHOLDS[:-1]) * (curve[1:] + curve[:-1]) / 2)
    )


def summarize(cious: Sequence[float]) -> dict[str, float]:
    """``ciou@0.5`` (what tables call cIoU, i.e. AP50), ``ciou@0.3``, ``auc``, ``mean_ciou``."""
    values = np.asarray(cious, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no cIoU values to summarise")
    return {
        "ciou@0.5": float(np.sum(values >= 0.5) / values.size),
        "ciou@0.3": float(np.sum(values >= 0.3) / values.size),
        "auc": auc(values),
        "mean_ciou": float(values.mean()),
    }


def multi_source_ciou(heatmaps: Sequence[np.ndarray], gt_maps: Sequence[np.ndarray]) -> float:
    """Multi-source score of one image (DSOL protocol): each source's [0, 1] heatmap binarised at
    half its maximum, cIoU against that source's ground truth, averaged over the sources."""
    if len(heatmaps) != len(gt_maps) or not heatmaps:
        raise ValueError("need one heatmap per sounding source, and at least one source")
    scores = [
        ciou(h, g, threshold=0.5 * float(np.max(h))) for h, g in zip(heatmaps, gt_maps, strict=True)
    ]
    return float(np.mean(scores))


def sounding_confidence(raw_map: np.ndarray, top_fraction: float = 0.25) -> float:
    """Mean of the top ``top_fraction`` of a raw similarity map's values (at least one value)."""
    values = np.sort(np.asarray(raw_map, dtype=np.float64).ravel())[::-1]
    return float(values[: max(1, int(values.size * top_fraction))].mean())


def _pr_points(scores: Sequence[float], labels: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at every distinct score threshold, highest first."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if scores.shape != labels.shape or scores.size == 0:
        raise ValueError("scores and labels must be equally long and not empty")
    if not labels.any():
        raise ValueError("average precision needs at least one positive sample")
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.r_[np.nonzero(np.diff(scores))[0], scores.size - 1]
    tps = np.cumsum(labels)[last]
    fps = last + 1 - tps
    return tps / (tps + fps), tps / tps[-1]


def average_precision(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """AP of "sounding" detection, as sklearn.metrics.average_precision_score computes it."""
    precision, recall = _pr_points(scores, labels)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _f1_points(scores: Sequence[float], labels: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """F1 at every distinct score threshold, and the thresholds, highest first."""
    precision, recall = _pr_points(scores, labels)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall + 1e-12), 0)
    return f1, np.unique(np.asarray(scores, dtype=np.float64))[::-1]


def max_f1(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The best F1 over all confidence thresholds."""
    f1, _ = _f1_points(scores, labels)
    return float(f1.max())


def max_f1_threshold(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The score threshold (``score >= threshold`` counts as sounding) with the best F1."""
    f1, thresholds = _f1_points(scores, labels)
    return float(thresholds[int(np.argmax(f1))])


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes (x1, y1 exclusive)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def point_in_box(point: Sequence[float], box: Sequence[float]) -> bool:
    """Whether the (x, y) point lies in the [x0, y0, x1, y1] box (x1, y1 exclusive)."""
    return box[0] <= point[0] < box[2] and box[1] <= point[1] < box[3]
