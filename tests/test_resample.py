"""The one resampler (libsoxr): blocks of any size give the whole signal's samples, time
alignment, no aliasing, and the offline reader and the live stage agree sample for sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fnac.audio import resample as resample_tensor
from fnac.resample import StreamResampler, resample


@pytest.mark.parametrize(
    "orig, new", [(48000, 16000), (44100, 16000), (22050, 16000), (8000, 16000), (96000, 22050)]
)
def test_blocks_of_any_size_give_the_whole_signal_result(orig, new, rng):
    x = rng.uniform(-1, 1, orig).astype(np.float32)
    whole = resample(x, orig, new)
    stream = StreamResampler(orig, new)
    cuts = np.sort(rng.choice(np.arange(1, x.size), 40, replace=False))
    parts = [stream.feed(p) for p in np.split(x, cuts)]
    held = sum(p.size for p in parts)
    parts.append(stream.flush())
    assert np.array_equal(whole, np.concatenate(parts))
    assert whole.size == new  # one second in, one second out
    assert held >= new - 0.1 * new  # the stream holds back at most a tenth of a second


@pytest.mark.parametrize("orig, new", [(48000, 16000), (44100, 16000), (16000, 22050)])
def test_a_tone_stays_in_place_and_in_tune(orig, new):
    t = np.arange(orig) / orig
    out = resample(np.sin(2 * np.pi * 440 * t), orig, new)
    want = np.sin(2 * np.pi * 440 * np.arange(out.size) / new)
    assert np.abs(out[100:-100] - want[100:-100]).max() < 1e-3  # no delay, no distortion


def test_content_above_the_new_nyquist_is_removed():
    t = np.arange(48000) / 48000
    out = resample(np.sin(2 * np.pi * 12000 * t), 48000, 16000)  # above 8 kHz
    assert np.abs(out[100:-100]).max() < 0.01


def test_same_rate_passes_through():
    x = np.arange(5, dtype=np.float32)
    assert np.array_equal(StreamResampler(16000, 16000).feed(x), x)
    assert StreamResampler(16000, 16000).flush().size == 0
    assert resample(x, 16000, 16000) is x


def test_the_offline_reader_resamples_each_channel_as_the_stream_does(rng):
    stereo = rng.uniform(-1, 1, (2, 44100)).astype(np.float32)
    offline = resample_tensor(torch.from_numpy(stereo), 44100, 8000).numpy()
    for channel in range(2):
        stream = StreamResampler(44100, 8000)
        live = np.concatenate(
            [stream.feed(b) for b in np.array_split(stereo[channel], 37)] + [stream.flush()]
        )
        assert np.array_equal(offline[channel], live)
