"""The audio front end against scipy and the published clip rules."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
from scipy.io import wavfile

from fnac.audio import (
    center_clip,
    clip_spectrogram,
    load_wav,
    log_spectrogram,
    resample,
    tukey_window,
)
from fnac.config import AudioConfig


@pytest.mark.parametrize("rate", [16000, 22050, 48000])
def test_log_spectrogram_matches_scipy(rate, rng):
    x = rng.uniform(-1, 1, int(rate * 3)).astype(np.float32)
    x[: rate // 2] *= 0.001  # a quiet stretch exercises the 1e-7 floor
    _, _, psd = scipy.signal.spectrogram(x, rate, nperseg=512, noverlap=274)
    want = np.log(psd + 1e-7)
    got = log_spectrogram(torch.from_numpy(x), rate).numpy()
    assert got.shape == want.shape == (257, (len(x) - 512) // 238 + 1)
    assert np.abs(got - want).max() <= 1e-3


def test_log_spectrogram_is_batched(rng):
    x = torch.from_numpy(rng.uniform(-1, 1, (2, 3, 16000)).astype(np.float32))
    batch = log_spectrogram(x, 16000)
    assert batch.shape == (2, 3, 257, 66)
    assert torch.allclose(batch[1, 2], log_spectrogram(x[1, 2], 16000), atol=1e-5)


def test_tukey_window_matches_scipy():
    want = scipy.signal.get_window(("tukey", 0.25), 512)
    assert np.allclose(tukey_window(512, 0.25).numpy(), want, atol=1e-7)


def test_three_seconds_give_200_frames_at_16k():
    assert AudioConfig(sample_rate=16000).n_frames() == 200
    assert AudioConfig(sample_rate=22050).n_frames() == 276  # scipy's count for 66150 samples


def test_center_clip_takes_the_middle_window():
    rate = 100
    wave = np.arange(1000, dtype=np.float32) / 1000  # 10 s ramp
    got = center_clip(wave, rate, window_s=3.0).numpy()
    # start = 10 / 2 - 1.5 = 3.5 s -> sample 350
    assert got.shape == (300,) and got[0] == pytest.approx(0.35) and got[-1] == pytest.approx(0.649)


def test_center_clip_clips_then_mixes_to_mono():
    wave = np.array([[2.0, -3.0, 0.5], [0.0, 1.0, 0.5]], dtype=np.float32)
    got = center_clip(wave, 1, window_s=3.0).numpy()
    assert np.allclose(got, [0.5, 0.0, 0.5])  # mean(clip(2)=1, 0), mean(-1, 1), mean(.5, .5)


def test_center_clip_tiles_short_audio():
    got = center_clip(np.array([1.0, 2.0, 3.0]) / 4, 2, window_s=4.0).numpy()
    assert np.allclose(got * 4, [1, 2, 3, 1, 2, 3, 1, 2])


def test_resample_changes_rate_and_keeps_a_tone(rng):
    t = np.arange(48000) / 48000
    tone = torch.from_numpy(np.sin(2 * np.pi * 440 * t).astype(np.float32))
    out = resample(tone, 48000, 16000)
    assert out.shape[-1] == 16000
    spectrum = np.abs(np.fft.rfft(out.numpy()))
    assert np.argmax(spectrum) == 440  # 1 Hz bins over 1 s


def test_clip_spectrogram_resamples_to_the_model_rate(rng):
    cfg = AudioConfig(sample_rate=16000)
    spec = clip_spectrogram(rng.uniform(-1, 1, (2, 44100 * 4)).astype(np.float32), 44100, cfg)
    assert spec.shape == (1, 257, 200)
    assert torch.isfinite(spec).all()


def test_load_wav_scales_pcm_and_float(tmp_path):
    pcm = np.array([[0, -32768], [16384, 32767]], dtype=np.int16)  # 2 frames, stereo
    wavfile.write(tmp_path / "a.wav", 22050, pcm)
    samples, rate = load_wav(tmp_path / "a.wav")
    assert rate == 22050 and samples.shape == (2, 2)
    assert np.allclose(samples, [[0, 0.5], [-1, 32767 / 32768]])
    wavfile.write(tmp_path / "f.wav", 8000, np.array([0.25, -0.5], dtype=np.float32))
    samples, rate = load_wav(tmp_path / "f.wav")
    assert rate == 8000 and np.allclose(samples, [[0.25, -0.5]])


def test_load_wav_rejects_non_wav(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is a text file")
    with pytest.raises(ValueError, match="not a readable WAV"):
        load_wav(bad)
    with pytest.raises(FileNotFoundError):
        load_wav(tmp_path / "missing.wav")
