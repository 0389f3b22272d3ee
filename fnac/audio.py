"""The audio front end (spec §3): clip rules, resampling (``fnac.resample``) and the log power
spectrogram.

Everything is torch, batched over leading dimensions, on whatever device the input lives on.
``log_spectrogram`` equals ``log(scipy.signal.spectrogram(x, fs, nperseg=512, noverlap=274)[2]
+ 1e-7)``: Tukey(0.25) periodic window, each segment's mean removed, one-sided density scaling.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
import torchaudio.functional as AF

from fnac.config import AudioConfig
from fnac.resample import resample as resample_samples

log = logging.getLogger(__name__)

_WINDOWS: dict[tuple[int, float, torch.device, torch.dtype], torch.Tensor] = {}


class AudioContentError(ValueError):
    """Audio that decodes but cannot be used: no samples, or NaN / inf samples. Not a format
    problem, so no other decoder is tried (``train.media.load_audio``)."""


def tukey_window(length: int, alpha: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """Periodic Tukey window, as ``scipy.signal.get_window(('tukey', alpha), length)``."""
    key = (length, alpha, torch.device(device or "cpu"), dtype)
    if key not in _WINDOWS:
        m = length + 1  # periodic window = symmetric window of length + 1, last sample dropped
        n = np.arange(m, dtype=np.float64)
        w = np.ones(m)
        if alpha > 0:
            width = int(np.floor(alpha * (m - 1) / 2.0))
            head = n[: width + 1]
            w[: width + 1] = 0.5 * (1 + np.cos(np.pi * (-1 + 2.0 * head / alpha / (m - 1))))
            tail = n[m - width - 1 :]
            w[m - width - 1 :] = 0.5 * (
                1 + np.cos(np.pi * (-2.0 / alpha + 1 + 2.0 * tail / alpha / (m - 1)))
            )
        _WINDOWS[key] = torch.as_tensor(w[:-1], dtype=dtype, device=key[2])
    return _WINDOWS[key]


def power_spectrogram(wave: torch.Tensor, sample_rate: int, config: AudioConfig) -> torch.Tensor:
    """(..., N) -> (..., F, T) one-sided power spectral density, scipy's 'density' scaling."""
    if wave.shape[-1] < config.nperseg:
        raise ValueError(
            f"audio has {wave.shape[-1]} samples, fewer than one {config.nperseg}-sample segment"
        )
    wave = wave if wave.is_floating_point() else wave.float()
    window = tukey_window(config.nperseg, config.tukey_alpha, wave.device, wave.dtype)
    segments = wave.unfold(-1, config.nperseg, config.hop)  # (..., T, nperseg)
    segments = segments - segments.mean(dim=-1, keepdim=True)  # detrend='constant'
    spectrum = torch.fft.rfft(segments * window, n=config.nperseg, dim=-1)  # (..., T, F)
    power = spectrum.real.square() + spectrum.imag.square()
    power = power / (sample_rate * window.square().sum())
    # One-sided: double every bin but DC and (for even nfft) Nyquist.
    scale = torch.full((power.shape[-1],), 2.0, dtype=power.dtype, device=power.device)
    scale[0] = 1.0
    if config.nperseg % 2 == 0:
        scale[-1] = 1.0
    return (power * scale).transpose(-1, -2)  # (..., F, T)


def log_spectrogram(
    wave: torch.Tensor, sample_rate: int, config: AudioConfig | None = None
) -> torch.Tensor:
    """(..., N) float samples in [-1, 1] -> (..., 257, T): log(PSD + 1e-7)."""
    config = config or AudioConfig(sample_rate=sample_rate)
    return torch.log(power_spectrogram(wave, sample_rate, config) + config.log_eps)


def normalize_spectrogram(
    log_spec: torch.Tensor, config: AudioConfig | None = None
) -> torch.Tensor:
    """The published Normalize(mean=0, std=12)."""
    return log_spec / (config or AudioConfig()).norm_std


def resample(wave: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """(..., N) at orig_rate -> (..., N') at new_rate, float32, by ``fnac.resample`` (the one
    resampler the live ring uses too)."""
    if orig_rate == new_rate:
        return wave
    flat = wave.reshape(-1, wave.shape[-1]).float().numpy()
    out = torch.from_numpy(resample_samples(flat, orig_rate, new_rate))
    return out.reshape(*wave.shape[:-1], out.shape[-1])


def center_clip(
    wave: torch.Tensor | np.ndarray, sample_rate: int, window_s: float = 3.0
) -> torch.Tensor:
    """The published clip rule: (C, N) or (N,) -> (window_s * rate,) mono.

    A window_s window centred on the clip's middle (start = max(duration / 2 - window_s / 2, 0));
    samples clipped to [-1, 1], then mixed to mono by the mean over channels; a shorter clip is
    tiled (repeated) and cut to exactly window_s seconds.
    """
    wave = torch.as_tensor(wave)
    if wave.ndim == 1:
        wave = wave.unsqueeze(0)
    if wave.ndim != 2 or wave.shape[-1] == 0:
        raise ValueError(
            f"expected audio shaped (channels, samples) with samples, got {tuple(wave.shape)}"
        )
    wave = wave.float()
    if not torch.isfinite(wave).all():  # before the clamp, which would turn inf into +-1
        raise AudioContentError(
            f"the audio holds {int((~torch.isfinite(wave)).sum())} NaN or inf samples"
        )
    n_window = int(sample_rate * window_s)
    duration = wave.shape[-1] / sample_rate
    start = int(max(duration / 2 - window_s / 2, 0.0) * sample_rate)
    wave = wave[:, start : start + n_window]
    mono = wave.clamp(-1.0, 1.0).mean(dim=0)  # (N,)
    if mono.shape[0] < n_window:
        mono = mono.repeat(math.ceil(n_window / mono.shape[0]))
    return mono[:n_window]


def clip_spectrogram(
    wave: torch.Tensor | np.ndarray, sample_rate: int, config: AudioConfig
) -> torch.Tensor:
    """Raw clip at its own rate -> (1, F, T) normalised log spectrogram at config.sample_rate."""
    wave = torch.as_tensor(wave).float()
    if sample_rate != config.sample_rate:
        log.info(
            "resampling audio from %d Hz to the model's %d Hz", sample_rate, config.sample_rate
        )
        wave = resample(wave, sample_rate, config.sample_rate)
    mono = center_clip(wave, config.sample_rate, config.window_s)
    spec = log_spectrogram(mono, config.sample_rate, config)  # (F, T)
    return normalize_spectrogram(spec, config).unsqueeze(0)


def pcm_to_float(data: np.ndarray) -> np.ndarray:
    """Samples of any PCM dtype -> float32 in [-1, 1] (integers scaled by their full range)."""
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.integer):
        return data.astype(np.float32) / float(-np.iinfo(data.dtype).min)
    return data.astype(np.float32)


def check_samples(
    samples: np.ndarray,
    where: str | Path,
    fix: str = "re-export it as PCM WAV or fix the program that wrote it",
) -> np.ndarray:
    """``samples`` (C, N) as they are, or an AudioContentError naming ``where`` and ``fix``.

    Refused: no samples at all, and any NaN or inf sample (a float file gone wrong: the clip
    rule's clamp would turn inf into full scale and NaN would reach the map).
    """
    if samples.size == 0:
        raise AudioContentError(f"{where} holds no audio samples (0 s of sound): {fix}")
    finite = np.isfinite(samples)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        first = int(np.argmin(finite.all(axis=0)))
        raise AudioContentError(
            f"{where} holds NaN or inf samples ({bad} of {finite.size}, the first at sample "
            f"{first}): {fix}"
        )
    return samples


def load_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a WAV file -> (float32 samples shaped (C, N) in [-1, 1], sample rate).

    Integer PCM is scaled by its full range; float WAV is taken as is. A file without samples or
    with NaN / inf samples is an ``AudioContentError``.
    """
    from scipy.io import wavfile

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes): it is not a WAV file; convert it to PCM WAV")
    try:
        rate, data = wavfile.read(path)
    except (ValueError, EOFError, OSError) as exc:
        raise ValueError(
            f"{path} is not a readable WAV file ({exc}); convert it to PCM WAV"
        ) from exc
    samples = pcm_to_float(data)
    if samples.ndim == 1:
        samples = samples[:, None]
    samples = check_samples(samples.T, path)  # (C, N)
    return np.ascontiguousarray(samples), int(rate)


def spec_augment(spec: torch.Tensor, max_width: int = 10) -> torch.Tensor:
    """Training augmentation: zero one frequency band and one time band of random width below
    ``max_width`` at random positions. (1, F, T) -> (1, F, T); draws from torch's global RNG."""
    spec = AF.mask_along_axis(spec, mask_param=max_width, mask_value=0.0, axis=1)
    return AF.mask_along_axis(spec, mask_param=max_width, mask_value=0.0, axis=2)
