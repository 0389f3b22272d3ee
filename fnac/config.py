"""Frozen configuration of the FNAC model and of its input front ends.

Every default is the published implementation's value (``spec/fnac-reference.md``); the reason sits
beside it. A checkpoint in the project's own format records all three configs, so a model always
travels with the preprocessing it was trained with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    dim: int = 512  # D: embedding size of both projections (published: 512)
    tau: float = 0.03  # temperature dividing every similarity (published: 0.03)
    dropout_img: float = 0.9  # dropout on the 512 x h x w image map, training only (published)
    dropout_aud: float = 0.0  # dropout on the pooled audio feature (published: 0)


@dataclass(frozen=True)
class AudioConfig:
    sample_rate: int = 16000  # VGGSound / VGG-SS are 16 kHz; Flickr-SoundNet is 22050
    window_s: float = 3.0  # seconds of audio per frame (published: 3 s centred window)
    nperseg: int = 512  # scipy.signal.spectrogram segment length
    noverlap: int = 274  # overlap between segments: hop = 238 samples
    tukey_alpha: float = 0.25  # scipy's default window is ('tukey', 0.25)
    log_eps: float = 1e-7  # log(PSD + eps)
    norm_std: float = 12.0  # Normalize(mean=0, std=12) after the log

    @property
    def hop(self) -> int:
        return self.nperseg - self.noverlap

    @property
    def window_samples(self) -> int:
        return int(self.sample_rate * self.window_s)

    @property
    def n_freq(self) -> int:
        return self.nperseg // 2 + 1

    def n_frames(self, n_samples: int | None = None) -> int:
        """T for a signal of n_samples (default: one window)."""
        n = self.window_samples if n_samples is None else n_samples
        return (n - self.nperseg) // self.hop + 1


@dataclass(frozen=True)
class ImageConfig:
    size: int = 224  # test transform: resize to exactly size x size (aspect not kept)
    train_resize: int = 246  # training: shorter side to int(224 * 1.1), then a random 224 crop
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)  # ImageNet statistics
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


def config_to_dict(config: Any) -> dict[str, Any]:
    return asdict(config)


def config_from_dict(cls: type, values: dict[str, Any] | None):
    """Build ``cls`` from a saved dict, ignoring keys a newer version may have added."""
    values = values or {}
    known = {f.name for f in fields(cls)}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in known}
    return cls(**kwargs)
