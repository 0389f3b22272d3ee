"""Drawing a result for people, without Qt: overlay placement, fading, box and peak, the strip."""

from __future__ import annotations

import numpy as np
from conftest import live_result

from fnac.overlay import colormap_table, draw_marker
from gui.strip import SpectrogramStrip
from realtime.render import Style, annotate, overlay_opacity


def hot_corner(confidence=1.0, sounding=True, box=(40, 20, 80, 60), peak=(60, 40)):
    """A result whose map is hot in the bottom-right corner."""
    return live_result(
        hot_corner_map(), confidence=confidence, sounding=sounding, box=box, peak=peak
    )


def hot_corner_map() -> np.ndarray:
    raw = np.zeros((7, 7), np.float32)
    raw[5:, 5:] = 10.0  # hot in the bottom-right
    return raw


def test_full_opacity_without_fading_shows_the_colormap_hot_where_the_map_is_hot():
    frame = np.full((70, 70, 3), 128, np.uint8)
    style = Style(opacity=1.0, faded=1.0, box=False, peak=False)
    out = annotate(frame, hot_corner(confidence=0.0), style)
    table = colormap_table("jet").astype(np.int32)
    # every pixel is a colormap entry; decode the heat back from the colours
    distance = ((out.reshape(-1, 1, 3).astype(np.int32) - table[None]) ** 2).sum(-1)
    heat = distance.argmin(1).reshape(70, 70) / 255
    assert distance.min(1).max() == 0
    assert heat[60:, 60:].mean() > 0.8 and heat[:30, :30].mean() < 0.1


def test_the_overlay_fades_with_confidence_and_opacity_zero_leaves_the_frame():
    style = Style(opacity=0.6, faded=0.15)
    assert overlay_opacity(1.0, style) == 0.6
    assert abs(overlay_opacity(0.0, style) - 0.09) < 1e-9
    frame = np.random.default_rng(0).integers(0, 255, (70, 70, 3), dtype=np.uint8)
    out = annotate(frame, hot_corner(sounding=False), Style(opacity=0.0))
    assert np.array_equal(out, frame)
    faint = annotate(frame, hot_corner(confidence=0.0, sounding=False), Style())
    strong = annotate(frame, hot_corner(confidence=1.0, sounding=False), Style())
    change = lambda img: np.abs(img.astype(int) - frame).mean()  # noqa: E731
    assert 0 < change(faint) < change(strong) / 3


def test_box_and_peak_are_drawn_only_when_sounding_and_when_enabled():
    frame = np.zeros((100, 100, 3), np.uint8)
    off = Style(opacity=0.0)
    drawn = annotate(frame, hot_corner(), off)
    assert (drawn[20, 40:80] == 255).all() and (drawn[40, 55:66] == 255).all()
    assert np.array_equal(annotate(frame, hot_corner(sounding=False), off), frame)
    plain = annotate(frame, hot_corner(), Style(opacity=0.0, box=False, peak=False))
    assert np.array_equal(plain, frame)


def test_marker_is_clipped_at_the_border():
    out = draw_marker(np.zeros((10, 10, 3), np.uint8), (0, 9), size=3)
    assert (out[9, 0:4] == 255).all() and (out[6:10, 0] == 255).all()
    assert out.sum() > 0 and (out[:5, 5:] == 0).all()


def test_spectrogram_strip_scrolls_left_with_low_frequencies_at_the_bottom():
    strip = SpectrogramStrip(width=4, floor_db=-100, ceiling_db=0)
    assert strip.image().shape == (1, 4, 3)
    low = np.full(8, -100.0)
    low[0] = 0.0  # loud at the lowest frequency
    strip.push(low)
    strip.push(np.full(8, -100.0))
    picture = strip.image("gray")
    assert picture.shape == (8, 4, 3)
    assert picture[-1, 2, 0] == 255  # bottom row, second newest column
    assert picture[:-1].max() == 0 and picture[-1, 3, 0] == 0
