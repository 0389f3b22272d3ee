"""Streaming resampling: block boundaries never show, time alignment, no aliasing."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.resample import StreamingResampler


@pytest.mark.parametrize(
    "orig, new", [(48000, 16000), (44100, 16000), (22050, 16000), (8000, 16000), (96000, 22050)]
)
def test_blocks_of_any_size_give_the_whole_signal_result(orig, new, rng):
    x = rng.uniform(-1, 1, orig)
    whole = StreamingResampler(orig, new).feed(x)
    stream = StreamingResampler(orig, new)
    cuts = np.sort(rng.choice(np.arange(1, x.size), 40, replace=False))
    parts = np.concatenate([stream.feed(p) for p in np.split(x, cuts)])
    assert np.array_equal(whole, parts)
    assert new - 40 <= whole.size <= new  # all but the last filter half-width


@pytest.mark.parametrize("orig, new", [(48000, 16000), (44100, 16000), (16000, 22050)])
def test_a_tone_stays_in_place_and_in_tune(orig, new):
    t = np.arange(orig) / orig
    out = StreamingResampler(orig, new).feed(np.sin(2 * np.pi * 440 * t))
    want = np.sin(2 * np.pi * 440 * np.arange(out.size) / new)
    assert np.abs(out[100:-100] - want[100:-100]).max() < 1e-3  # no delay, no distortion


def test_content_above_the_new_nyquist_is_removed():
    t = np.arange(48000) / 48000
    out = StreamingResampler(48000, 16000).feed(np.sin(2 * np.pi * 12000 * t))  # above 8 kHz
    assert np.abs(out[100:-100]).max() < 0.01


def test_same_rate_passes_through():
    x = np.arange(5, dtype=np.float32)
    assert np.array_equal(StreamingResampler(16000, 16000).feed(x), x)
