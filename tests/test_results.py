"""Peak, box and sounding confidence from raw maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from fnac.localization import analysis_size, hot_region, upsample_heat
from realtime.results import ConfidenceSettings, analyze, confidence, level_db
from realtime.sources import quiet_opencv

TAU = 0.03
RATE = 16000


def blob_map(row: int, col: int, score: float = 0.6, side: int = 2) -> np.ndarray:
    """A raw 7x7 map (similarity / tau) with a hot side x side blob, elsewhere zero."""
    raw = np.full((7, 7), 0.0, np.float32)
    raw[row : row + side, col : col + side] = score / TAU
    return raw


def tone(db: float, seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (10 ** (db / 20) * np.sqrt(2) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_peak_and_box_land_on_the_hot_region():
    out = analyze(blob_map(1, 4), (480, 640), tone(-20), RATE, TAU)
    x, y = out.peak
    # the blob covers columns 4-5 and rows 1-2 of 7: x in [366, 548), y in [69, 206)
    assert 366 <= x < 548 and 69 <= y < 206
    x0, y0, x1, y1 = out.box
    assert x0 <= x < x1 and y0 <= y < y1
    assert 300 < x0 and x1 < 620 and y0 < 120 and y1 < 260  # around the blob, not the frame


@pytest.mark.parametrize(
    "raw_shape, frame",
    [((7, 7), (480, 640)), ((4, 4), (120, 160)), ((1, 1), (5, 9)), ((7, 7), (1080, 1920))],
)
def test_heat_is_opencvs_bicubic_resize_min_max_normalised(raw_shape, frame, rng):
    cv2 = quiet_opencv()
    raw = rng.normal(0, 10, raw_shape).astype(np.float32)
    want = cv2.resize(raw, frame[::-1], interpolation=cv2.INTER_CUBIC)
    if raw.size > 1:
        want = (want - want.min()) / (want.max() - want.min())
    else:
        want = np.zeros_like(want)
    heat = upsample_heat(raw, frame)
    assert heat.shape == frame and heat.dtype == np.float32
    assert np.abs(heat - want).max() < 1e-5


@pytest.mark.parametrize("frame", [(480, 640), (1080, 1920), (100, 150)])
def test_peak_and_box_are_within_an_analysis_pixel_of_the_full_size_answer(frame, rng):
    """Found on a smaller heat and scaled, peak and box stay within one analysis pixel of what the
    full-size heat gives."""
    settings = ConfidenceSettings()
    height, width = frame
    tolerance = max(width / analysis_size(frame)[1], 1.0) + 0.5
    for _ in range(30):
        raw = rng.normal(0, 1, (7, 7)).astype(np.float32)
        heat = upsample_heat(raw, frame)  # the full-size answer, as the evaluation draws it
        y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
        want_box, _ = hot_region(heat, (int(x), int(y)), settings.box_level)
        _, want_peak = hot_region(heat, (int(x), int(y)), settings.peak_level)
        out = analyze(raw, frame, tone(-20), RATE, TAU, settings)
        assert np.abs(np.subtract(out.box, want_box)).max() <= tolerance
        assert np.abs(np.subtract(out.peak, want_peak)).max() <= tolerance
        x0, y0, x1, y1 = out.box
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert x0 <= out.peak[0] < x1 and y0 <= out.peak[1] < y1


def test_level_is_measured_in_dbfs():
    assert level_db(tone(-20)) == pytest.approx(-20, abs=0.1)
    assert level_db(np.zeros(100)) == -200


def test_silence_is_never_sounding_even_with_a_hot_map():
    out = analyze(blob_map(3, 3), (120, 160), np.zeros(3 * RATE, np.float32), RATE, TAU)
    assert out.confidence == 0 and not out.sounding


def test_loud_matching_sound_is_sounding_and_unmatched_is_not():
    # 4x4 = 16 hot cells fill the top quarter (12 of 49): score 0.6
    loud_match = analyze(blob_map(2, 2, score=0.6, side=4), (120, 160), tone(-20), RATE, TAU)
    assert loud_match.sounding and loud_match.confidence > 0.9
    loud_unmatched = analyze(blob_map(2, 2, score=0.05, side=4), (120, 160), tone(-20), RATE, TAU)
    assert not loud_unmatched.sounding and loud_unmatched.confidence < 0.1


def test_confidence_rises_with_level_and_score():
    s = ConfidenceSettings()
    assert confidence(0.6, -70, s) == 0
    assert confidence(0.6, -42, s) < confidence(0.6, -35, s) < confidence(0.6, -20, s)
    assert confidence(0.2, -20, s) < confidence(s.score_mid, -20, s) == pytest.approx(0.5)


def test_live_figures_score_peak_and_box_per_level_against_known_boxes():
    from fnac.localization import BOX_LEVELS, live_figures

    # hot 2x2 blobs: top-left cells on a 7x7 grid, drawn at 224 px (a cell is 32 px)
    raws = np.stack([blob_map(0, 0), blob_map(4, 4)])
    on_target = [[(0, 0, 64, 64)], [(128, 128, 192, 192)]]
    figures = live_figures(raws, on_target, (224, 224))
    assert set(figures["by_box_level"]) == {f"{v:.2f}" for v in BOX_LEVELS}
    assert all(v["pointing"] == 1.0 for v in figures["by_box_level"].values())
    best = figures["by_box_level"][f"{figures['best_box_level']:.2f}"]
    assert best["box_iou"] == max(v["box_iou"] for v in figures["by_box_level"].values())
    assert best["box_iou"] > 0.5
    # higher levels draw tighter boxes around a blob: IoU with a box far larger falls
    wide = live_figures(raws, [[(0, 0, 160, 160)], [(64, 64, 224, 224)]], (224, 224))
    ious = [v["box_iou"] for v in wide["by_box_level"].values()]
    assert ious[0] > ious[-1]
    # a box elsewhere: no hit, IoU 0, and any of several boxes counts
    elsewhere = live_figures(raws[:1], [[(150, 150, 224, 224)]], (224, 224))
    assert all(v == {"pointing": 0.0, "box_iou": 0.0} for v in elsewhere["by_box_level"].values())
    either = live_figures(raws[:1], [[(150, 150, 224, 224), (0, 0, 64, 64)]], (224, 224))
    assert either["by_box_level"]["0.50"]["pointing"] == 1.0
