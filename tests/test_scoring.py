"""Localization and speed figures of a live run, from per-frame ground truth."""

from __future__ import annotations

from conftest import live_result

from fnac.metrics import box_iou, point_in_box
from realtime.scoring import RunScore, sounding_box


def truth(sounding_index: int | None):
    boxes = [[0, 0, 100, 100], [200, 200, 300, 300]]
    return [{"class": "c", "box": b, "sounding": i == sounding_index} for i, b in enumerate(boxes)]


def test_box_iou_and_point_in_box():
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == 50 / 150
    assert box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert point_in_box((0, 0), (0, 0, 10, 10)) and not point_in_box((10, 5), (0, 0, 10, 10))


def test_only_sounding_frames_are_scored():
    score = RunScore()
    score.add(live_result(peak=(50, 50), box=(0, 0, 100, 100), truth=truth(0)), 0.1)
    score.add(live_result(peak=(50, 50), box=(0, 0, 100, 100), truth=truth(1)), 0.2)
    score.add(live_result(peak=(50, 50), box=(0, 0, 100, 100), truth=truth(None)), 0.3)
    score.add(live_result(peak=(50, 50), box=(0, 0, 100, 100), dropped=7), 0.4)  # a camera
    summary = score.summary(2.0)
    assert summary["frames"] == 4 and summary["fps"] == 2.0 and summary["dropped"] == 7
    assert summary["scored_frames"] == 2
    assert summary["pointing_accuracy"] == 0.5 and summary["mean_box_iou"] == 0.5
    assert summary["latency_ms"]["p50"] == 250.0
    assert sounding_box(truth(None)) is None and sounding_box(None) is None


def test_without_truth_localization_is_none():
    score = RunScore()
    score.add(live_result(peak=(1, 1), box=(0, 0, 2, 2)), 0.05)
    summary = score.summary(1.0)
    assert summary["pointing_accuracy"] is None and summary["mean_box_iou"] is None
