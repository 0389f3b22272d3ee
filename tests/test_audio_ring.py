"""Alignment: a click at a known time lands at the right place in the window; gaps and padding."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.audio_ring import AudioRing

RATE = 1000  # samples per second: one sample per millisecond keeps the arithmetic readable


def feed(ring, signal, t0=100.0, block=50, skip=()):
    for seq, start in enumerate(range(0, signal.size, block)):
        if seq in skip:
            continue
        ring.write(signal[start : start + block], t0 + start / RATE, seq)


def test_a_click_lands_where_it_was_captured():
    ring = AudioRing(RATE, window_s=3.0, capacity_s=10.0)
    signal = np.zeros(5 * RATE, np.float32)
    signal[2500] = 1.0  # captured at t0 + 2.5 s
    feed(ring, signal)
    w = ring.window(100.0 + 4.0)  # the 3 s ending at t0 + 4 s: [1.001 s, 4.0 s]
    assert w.samples.shape == (3000,) and not w.padded and not w.gap and w.lag_s == 0
    assert int(np.argmax(w.samples)) == 2500 - 1001
    assert w.end_time == pytest.approx(104.0)


def test_start_of_stream_is_padded_and_flagged():
    ring = AudioRing(RATE, window_s=3.0)
    signal = np.ones(RATE, np.float32)
    feed(ring, signal)
    w = ring.window(100.0 + 0.999)
    assert w.padded and not w.gap
    assert np.all(w.samples[:2000] == 0) and np.all(w.samples[2000:] == 1)
    empty = AudioRing(RATE).window(5.0)
    assert empty.padded and not empty.samples.any()


def test_lost_blocks_are_zero_filled_and_flagged():
    ring = AudioRing(RATE, window_s=1.0)
    signal = np.ones(2 * RATE, np.float32)
    feed(ring, signal, skip={30})  # block 30 = samples 1500..1549 never arrives
    w = ring.window(100.0 + 1.999)
    assert w.gap and not w.padded
    assert np.all(w.samples[500:550] == 0) and w.samples[499] == 1 and w.samples[550] == 1
    assert ring.gaps == 1 and ring.gap_samples == 50
    later = ring.window(100.0 + 1.2)  # a window before the gap is clean
    assert not later.gap


def test_missing_time_without_sequence_numbers_is_filled():
    ring = AudioRing(RATE, window_s=1.0)
    ring.write(np.ones(500, np.float32), 10.0)
    ring.write(np.ones(500, np.float32), 10.8)  # 300 ms went missing
    w = ring.window(11.299)
    assert w.gap and np.all(w.samples[200:500] == 0) and w.samples[199] == 1
    assert ring.time_of(ring.written - 1) == pytest.approx(11.299)


def test_audio_behind_the_frame_reports_lag():
    ring = AudioRing(RATE, window_s=1.0)
    ring.write(np.ones(1500, np.float32), 0.0)
    w = ring.window(1.6)
    assert w.lag_s == pytest.approx(0.101) and w.end_time == pytest.approx(1.499)


def test_ring_wraps_and_keeps_the_newest_audio():
    ring = AudioRing(RATE, window_s=1.0, capacity_s=2.0)
    signal = np.arange(7 * RATE, dtype=np.float32)
    feed(ring, signal, t0=0.0)
    w = ring.window(6.999)
    assert np.array_equal(w.samples, signal[6000:7000])
    old = ring.window(4.5)  # older than the ring holds: padded with zeros
    assert old.padded


def test_a_gap_longer_than_the_ring_leaves_it_all_gap_and_allocates_no_more():
    ring = AudioRing(RATE, window_s=1.0, capacity_s=2.0)
    block = np.ones(50, np.float32)
    ring.write(block, 100.0, seq=0)
    ring.write(block, 100.0 + 100 * 0.05, seq=100)  # 4.95 s lost: more than the ring holds
    w = ring.window(100.0 + 100 * 0.05 + 0.049)
    assert w.gap and not w.padded and np.all(w.samples[-50:] == 1) and not w.samples[:-50].any()
    assert ring.gaps == 1 and ring.gap_samples == 99 * 50
    jump = 10**12  # 50 * 10**12 samples: the old ring tried to allocate 200 TB of zeros
    t = 100.0 + jump * 0.05
    ring.write(block, t, seq=jump)
    w = ring.window(t + 0.049)
    assert w.gap and np.all(w.samples[-50:] == 1) and not w.samples[:-50].any()
    assert ring.gap_samples == 99 * 50 + (jump - 101) * 50 and ring.written < 3 * ring.capacity
    ring.write(block, t + 0.05, seq=jump + 1)  # the clock moved on with the gap: no re-anchoring
    assert ring.time_of(ring.written - 1) == pytest.approx(t + 0.099, abs=1e-3)


def test_capture_time_that_jumps_far_ahead_is_filled_without_allocating_it():
    ring = AudioRing(RATE, window_s=1.0, capacity_s=2.0)
    ring.write(np.ones(500, np.float32), 10.0)
    ring.write(np.ones(500, np.float32), 1e9)  # 10**12 samples of missing time
    w = ring.window(1e9 + 0.499)  # (a sample either way: times this large round)
    assert w.gap and np.all(w.samples[-499:] == 1) and not w.samples[:-501].any()
    assert ring.gaps == 1 and ring.time_of(ring.written - 1) == pytest.approx(1e9 + 0.499, abs=2e-3)
