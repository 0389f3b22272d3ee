"""Metrics on hand-made maps with known answers, and every VGG-SS box from ../shared."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fnac.metrics import (
    FSCORE_THRESHOLDS,
    auc,
    ciou,
    flickr_gt_map,
    fmeasure_curve,
    mask_box_map,
    mask_iou,
    max_fscore,
    median_threshold,
    success_curve,
    summarize,
    vggss_gt_map,
)


def test_ciou_of_a_perfect_and_a_disjoint_prediction():
    gt = np.zeros((4, 4))
    gt[:2] = 1  # top half
    assert ciou(gt.copy(), gt, threshold=0.5) == 1.0
    assert ciou(1 - gt, gt, threshold=0.5) == 0.0


def test_ciou_hand_computed():
    gt = np.zeros((2, 4))
    gt[:, :2] = 1  # 4 pixels
    pred = np.array([[1, 1, 1, 0], [0, 0, 0, 0]], dtype=float)  # 2 inside, 1 outside
    # 2 / (4 + 1)
    assert ciou(pred, gt, threshold=0.5) == pytest.approx(0.4)


def test_median_rule_turns_on_about_half_the_pixels():
    pred = np.arange(16, dtype=float).reshape(4, 4) / 15
    thr = median_threshold(pred)
    assert thr == pytest.approx(8 / 15)  # sorted value at index int(16 / 2) = 8
    gt = np.zeros((4, 4))
    gt[2:] = 1  # the 8 hottest pixels
    assert ciou(pred, gt) == 1.0


def test_flickr_consensus_map():
    boxes = [[0, 0, 128, 128], [0, 0, 64, 64], [128, 128, 256, 256]]
    gt = flickr_gt_map(boxes)
    assert gt.shape == (224, 224)
    assert gt[0, 0] == 1.0  # two annotators overlap
    assert gt[100, 100] == 0.5  # one annotator
    assert gt[200, 200] == 0.5
    assert gt[150, 50] == 0.0
    assert gt[:112, :112].sum() == 56 * 56 * 1.0 + (112 * 112 - 56 * 56) * 0.5


def test_flickr_ciou_counts_half_weight_pixels():
    gt = flickr_gt_map([[0, 0, 128, 256]])  # one annotator: left half at 0.5
    half = np.zeros((224, 224))
    half[:, :112] = 1
    assert ciou(half, gt, threshold=0.5) == pytest.approx(1.0)  # 0.5 N / (0.5 N + 0)
    everywhere = np.ones((224, 224))
    assert ciou(everywhere, gt, threshold=0.5) == pytest.approx(1 / 3)  # 0.5 N / (0.5 N + N)


def test_vggss_boxes_clip_and_scale():
    gt = vggss_gt_map([[0.25, 0.5, 0.75, 1.0]])
    assert gt.sum() == 112 * 112 and gt[112, 56] == 1 and gt[111, 56] == 0
    assert vggss_gt_map([[-5, -5, 1e10, 1e10]]).sum() == 224 * 224
    assert vggss_gt_map([[2.0, 3.0, 1e10, 1e10]]).sum() == 0  # sentinel: empty after clipping


def test_summary_hand_computed():
    cious = [0.0, 0.25, 0.5, 1.0]
    s = summarize(cious)
    assert s["ciou@0.5"] == 0.5 and s["ciou@0.3"] == 0.5 and s["mean_ciou"] == 0.4375
    curve = success_curve(cious)
    assert curve[0] == 1.0 and curve[-1] == 0.25 and curve[5] == 0.75  # t = 0.25
    # Step function: 1 on [0,0], 0.75 up to 0.25, 0.5 up to 0.5, 0.25 to 1 -> trapezoids:
    want = 0.05 * (np.sum((curve[1:] + curve[:-1]) / 2))
    assert s["auc"] == pytest.approx(want) == pytest.approx(auc(cious))
    assert 0.25 < s["auc"] < 0.5
    assert summarize([1.0])["auc"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        summarize([])


def test_every_vggss_box_parses(metadata_dir):
    entries = json.loads((metadata_dir / "vggss.json").read_text())
    assert len(entries) == 5158
    assert len({e["class"] for e in entries}) == 221
    empty = 0
    for entry in entries:
        gt = vggss_gt_map(entry["bbox"])
        assert gt.shape == (224, 224) and set(np.unique(gt)) <= {0.0, 1.0}
        empty += gt.sum() == 0
    assert empty < len(entries) / 10


def test_average_precision_and_max_f1_hand_computed():
    from fnac.metrics import average_precision, max_f1, max_f1_threshold

    # ranking: pos (0.9), neg (0.8), pos (0.7), neg (0.1)
    scores, labels = [0.9, 0.8, 0.7, 0.1], [True, False, True, False]
    # precision at the positives: 1/1 and 2/3 -> AP = (1 + 2/3) / 2
    assert average_precision(scores, labels) == pytest.approx((1 + 2 / 3) / 2)
    # thresholds: P/R = (1, .5) F1 .667; (.5, .5) .5; (.667, 1) .8; (.5, 1) .667
    assert max_f1(scores, labels) == pytest.approx(0.8)
    assert max_f1_threshold(scores, labels) == 0.7  # the best F1 counts >= 0.7 as sounding
    assert average_precision([0.5, 0.5], [True, False]) == pytest.approx(0.5)  # a tie
    with pytest.raises(ValueError):
        average_precision([0.1], [False])


def test_multi_source_ciou_and_confidence():
    from fnac.metrics import multi_source_ciou, sounding_confidence

    left, right = np.zeros((4, 4)), np.zeros((4, 4))
    left[:, :2], right[:, 2:] = 1, 1
    heat_left = left * 0.9 + 0.05  # max 0.95: binarised at 0.475 -> the left half
    assert multi_source_ciou([heat_left, heat_left], [left, right]) == pytest.approx(0.5)
    assert multi_source_ciou([heat_left, 1 - heat_left], [left, right]) == pytest.approx(1.0)
    raw = np.arange(8, dtype=float).reshape(2, 4)
    assert sounding_confidence(raw) == pytest.approx(6.5)  # top 25 % of 8 values: 7 and 6


def test_mask_iou_by_hand_and_the_empty_mask_rule():
    pred = np.array([[0.9, 0.8, 0.1, 0.0], [0.7, 0.6, 0.2, 0.3]])
    # median rule: sorted value at index int(8 / 2) = 4 is 0.6: the two left columns are on
    mask = np.array([[1, 1, 1, 0], [0, 0, 0, 0]], dtype=bool)
    assert mask_iou(pred, mask) == pytest.approx(2 / 5)  # 2 shared, 4 + 3 - 2 in the union
    assert mask_iou(pred, mask) == ciou(pred, mask)  # with a binary mask cIoU is the IoU
    assert mask_iou(pred, mask, threshold=0.75) == pytest.approx(2 / 3)
    empty = np.zeros_like(mask)
    assert mask_iou(pred, empty) == pytest.approx(4 / 8)  # AVSBench: the backgrounds' IoU
    assert ciou(pred, empty) == 0.0  # while cIoU has nothing to score
    with pytest.raises(ValueError, match="differ in shape"):
        mask_iou(pred, mask[:, :2])


def test_fmeasure_curve_by_hand():
    heat = np.array([[1.0, 0.5], [0.25, 0.0]], dtype=np.float32)
    mask = np.array([[1, 0], [1, 0]], dtype=bool)
    curve = fmeasure_curve(heat, mask, thresholds=np.array([0, 0.3, 0.6, 1.0, 1.01]))
    f = lambda p, r: 1.3 * p * r / (0.3 * p + r)  # noqa: E731
    # t = 0: all 4 on, both mask pixels hit; 0.3: 1.0 and 0.5 on, one hit; 0.6 and 1.0: the
    # 1.0 pixel alone, a hit; 1.01: nothing on (F 0, not NaN)
    assert curve == pytest.approx([f(0.5, 1), f(0.5, 0.5), f(1, 0.5), f(1, 0.5), 0])
    assert fmeasure_curve(heat, np.zeros_like(mask)) is None  # AVSBench leaves such frames out
    assert FSCORE_THRESHOLDS.size == 255 and FSCORE_THRESHOLDS[0] == 0
    assert FSCORE_THRESHOLDS[-1] == 1.0  # 1 - 1e-10 in float32, as AVSBench's torch makes it
    assert fmeasure_curve(heat, mask).shape == (255,)


def test_the_fscore_averages_frames_over_the_whole_set_then_takes_the_maximum():
    a, b = np.array([0.2, 0.8]), np.array([0.6, 0.0])
    assert max_fscore([a, None, b]) == pytest.approx(0.4)  # mean [0.4, 0.4]
    # per batch of one frame, as AVSBench's loop with a batch of 1 would: max 0.8 and 0.6, 0.7
    assert np.mean([max_fscore([a]), max_fscore([b])]) == pytest.approx(0.7)
    with pytest.raises(ValueError, match="no frame with a non-empty mask"):
        max_fscore([None, None])


def test_the_box_of_a_mask_spans_every_object():
    mask = np.zeros((6, 8), dtype=bool)
    mask[1:3, 1:3] = True
    mask[4, 6] = True
    box = mask_box_map(mask)
    assert box.sum() == 4 * 6 and box[1:5, 1:7].all()
    assert not mask_box_map(np.zeros((6, 8))).any()
