"""Drawing a result for people, without Qt: overlay placement, fading, box and peak, the strip."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from conftest import live_result

from fnac.overlay import COLORMAPS, DEFAULT_COLORMAP, colormap_table, draw_marker
from gui.strip import SpectrogramStrip
from realtime.render import TRUTH_COLOUR, Style, annotate, draw_legend, overlay_opacity


def hot_corner(confidence=1.0, sounding=True, box=(40, 20, 80, 60), peak=(60, 40), truth=None):
    """A result whose map is hot in the bottom-right corner."""
    return live_result(
        hot_corner_map(),
        confidence=confidence,
        sounding=sounding,
        box=box,
        peak=peak,
        truth=truth,
    )


def hot_corner_map() -> np.ndarray:
    raw = np.zeros((7, 7), np.float32)
    raw[5:, 5:] = 10.0  # hot in the bottom-right
    return raw


def test_full_opacity_without_fading_shows_the_colormap_hot_where_the_map_is_hot():
    frame = np.full((70, 70, 3), 128, np.uint8)
    style = Style(colormap="jet", opacity=1.0, faded=1.0, clear_below=None, box=False, peak=False)
    style = replace(style, legend=False)
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
    out = annotate(frame, hot_corner(sounding=False), Style(opacity=0.0, legend=False))
    assert np.array_equal(out, frame)
    faint = annotate(frame, hot_corner(confidence=0.0, sounding=False), Style(legend=False))
    strong = annotate(frame, hot_corner(confidence=1.0, sounding=False), Style(legend=False))
    change = lambda img: np.abs(img.astype(int) - frame).mean()  # noqa: E731
    assert 0 < change(faint) < change(strong) / 3


def test_box_and_peak_are_drawn_only_when_sounding_and_when_enabled():
    frame = np.zeros((100, 100, 3), np.uint8)
    off = Style(opacity=0.0, legend=False)
    drawn = annotate(frame, hot_corner(), off)
    assert (drawn[20, 40:80] == 255).all() and (drawn[40, 55:66] == 255).all()
    assert np.array_equal(annotate(frame, hot_corner(sounding=False), off), frame)
    plain = annotate(frame, hot_corner(), Style(opacity=0.0, box=False, peak=False, legend=False))
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


def test_cold_regions_stay_clear_and_the_hot_one_is_coloured():
    frame = np.random.default_rng(1).integers(0, 255, (70, 70, 3), dtype=np.uint8)
    out = annotate(frame, hot_corner(confidence=1.0, sounding=False), Style(legend=False))
    changed = np.abs(out.astype(int) - frame).sum(-1)
    assert (changed[:30, :30] == 0).all()  # the cold corner: the frame as it was
    assert changed[62:, 62:].mean() > 40  # the hot corner: the colormap over it
    # a perceptual colormap by default, and every colormap is one of the listed choices
    assert DEFAULT_COLORMAP == "inferno" and DEFAULT_COLORMAP in COLORMAPS
    lightness = colormap_table().astype(float) @ [0.299, 0.587, 0.114]
    assert (np.diff(lightness) >= -1).all()  # inferno grows lighter from cold to hot


def test_the_legend_shows_the_colour_scale_hot_at_the_top():
    frame = np.zeros((480, 640, 3), np.uint8)
    out = draw_legend(frame, "viridis")
    table = colormap_table("viridis").astype(int)
    column = out[:, 640 - 8 - 5].astype(int)  # through the bar's middle
    top = [y for y in range(480) if (np.abs(column[y] - table[255]) <= 2).all()]
    bottom = [y for y in range(480) if (np.abs(column[y] - table[0]) <= 2).all()]
    assert top and bottom and max(top) < min(bottom) and min(top) < 40
    assert out[:, 540:615].any() and not out[:, :540].any()  # its labels, left of the bar
    assert np.array_equal(
        draw_legend(np.zeros((20, 20, 3), np.uint8), "jet"), np.zeros((20, 20, 3))
    )


def truth_of(box, outline=None, sounding=True):
    obj = {"class": "x", "box": list(box), "sounding": sounding}
    if outline is not None:
        obj["outline"] = outline
    return [obj, {"class": "y", "box": [0, 0, 10, 10], "sounding": False}]


def pixels_of(image, colour):
    return np.abs(image.astype(int) - colour).sum(-1) <= 30


def test_the_true_outline_is_dashed_in_its_own_colour_with_hit_or_miss():
    frame = np.zeros((240, 320, 3), np.uint8)
    style = Style(heat=False, box=False, peak=False)
    diamond = [[160, 60], [220, 120], [160, 180], [100, 120]]
    hit = annotate(
        frame, hot_corner(truth=truth_of((100, 60, 221, 181), diamond), peak=(160, 120)), style
    )
    miss = annotate(
        frame, hot_corner(truth=truth_of((100, 60, 221, 181), diamond), peak=(5, 5)), style
    )
    on = pixels_of(hit, TRUTH_COLOUR)
    assert on[115:125, 96:104].any() and on[56:64, 155:165].any()  # along the diamond
    assert not on[100:140, 140:180].any()  # not filled
    assert not on[60:66, 100:110].any()  # not the box's corner
    # dashed: walking the edge from the left corner up to the top one finds gaps
    edge = [on[120 - i - 1 : 120 - i + 2, 100 + i - 1 : 100 + i + 2].any() for i in range(60)]
    assert 0.3 < np.mean(edge) < 0.9
    reddish = lambda img: (img[..., 0] > 150) & (img[..., 1] < 120)  # noqa: E731
    assert reddish(miss).any() and not reddish(hit).any()  # "miss" in red
    # no truth, or nothing sounding: nothing drawn
    silent = hot_corner(truth=truth_of((100, 60, 221, 181), diamond, sounding=False))
    assert np.array_equal(annotate(frame, silent, style), frame)
    assert np.array_equal(annotate(frame, hot_corner(), style), frame)
    # without an outline the box is drawn
    boxed = pixels_of(
        annotate(frame, hot_corner(truth=truth_of((100, 60, 221, 181))), style), TRUTH_COLOUR
    )
    assert boxed[58:63, 100:221].any() and boxed[60:181, 98:103].any()
