"""Localization and speed figures of a live run, from per-frame ground truth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
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
    assert summary["scored_frames_all"] == 2
    assert summary["pointing_accuracy_all"] == 0.5 and summary["mean_box_iou_all"] == 0.5
    assert summary["scored_frames"] == 0  # none says which audio its map came from
    assert summary["latency_ms"]["p50"] == 250.0
    assert sounding_box(truth(None)) is None and sounding_box(None) is None


def test_without_truth_localization_is_none():
    score = RunScore()
    score.add(live_result(peak=(1, 1), box=(0, 0, 2, 2)), 0.05)
    summary = score.summary(1.0)
    assert summary["pointing_accuracy"] is None and summary["mean_box_iou"] is None
    assert summary["pointing_accuracy_all"] is None and summary["scored_frames_all"] == 0


def test_frames_just_after_the_sound_changed_count_only_among_all():
    from realtime.messages import AudioSpan

    score = RunScore()
    # object 0 sounds from t = 0, object 1 from t = 4; the maps come from the last 3 s of sound,
    # and the peak stays on object 0 (as it would while the window still holds its sound)
    for t in np.arange(0.0, 8.0, 0.5):
        window = AudioSpan(t - 3.0, t, 0)
        sounding = 0 if t < 4 else 1
        result = live_result(peak=(50, 50), box=(0, 0, 100, 100), truth=truth(sounding))
        score.add(replace(result, pts=float(t), audio=window), 0.01)
    summary = score.summary(8.0)
    # heard alone: object 0 at t = 3.0, 3.5 (hits); object 1 at t = 7.0, 7.5 (misses)
    assert summary["scored_frames"] == 4 and summary["pointing_accuracy"] == 0.5
    assert summary["scored_frames_all"] == 16 and summary["pointing_accuracy_all"] == 0.5
    # a silent gap starts the count again, even for the same object
    gap = RunScore()
    for t, who in ((0.0, 0), (3.0, 0), (3.5, None), (4.0, 0), (6.5, 0), (7.0, 0)):
        result = live_result(peak=(50, 50), box=(0, 0, 100, 100), truth=truth(who))
        gap.add(replace(result, pts=t, audio=AudioSpan(t - 3.0, t, 0)), 0.01)
    assert gap.summary(7.0)["scored_frames"] == 2  # t = 3.0 and t = 7.0
