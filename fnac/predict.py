"""One-shot localization of an image file and an audio file with a loaded model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fnac.audio import clip_spectrogram, load_wav
from fnac.config import AudioConfig, ImageConfig
from fnac.heatmap import heatmap
from fnac.image import load_image, test_transform
from fnac.model import FNAC


def _configs(model: FNAC) -> tuple[AudioConfig, ImageConfig]:
    info = getattr(model, "info", None)
    return (info.audio, info.image) if info is not None else (AudioConfig(), ImageConfig())


def read_inputs(
    image_path: str | Path, audio_path: str | Path
) -> tuple[Image.Image, np.ndarray, int]:
    """(image file, WAV file) -> (RGB image, (C, N) float32 samples, rate), both checked: a file
    that is missing, empty, truncated, without pixels or samples, or with NaN / inf samples is
    one ValueError (FileNotFoundError) naming it. Cheap: call it before loading a model."""
    return (load_image(image_path), *load_wav(audio_path))


@torch.no_grad()
def localize_files(
    model: FNAC,
    image_path: str | Path,
    audio_path: str | Path,
    size: tuple[int, int] | None = None,
    mode: str = "bicubic",
) -> tuple[np.ndarray, np.ndarray]:
    """(image file, WAV file) -> (raw h x w map, heatmap in [0, 1] of ``size``).

    ``size`` defaults to the model's input size (224 x 224, the evaluation grid); pass the image's
    (height, width) for an overlay. Audio at another rate is resampled to the model's.
    """
    audio_cfg, image_cfg = _configs(model)
    device = next(model.parameters()).device
    image, wave, rate = read_inputs(image_path, audio_path)
    frame = test_transform(image_cfg)(image).unsqueeze(0).to(device)
    spec = clip_spectrogram(wave, rate, audio_cfg).unsqueeze(0).to(device)  # (1, 1, F, T)
    _, _, raw = model.eval()(frame, spec)  # (1, h, w)
    if not torch.isfinite(raw).all():  # the inputs are finite: the weights are not
        raise ValueError(
            "the model's map is not finite (NaN or inf) for finite inputs: the checkpoint's "
            "weights are broken; use another checkpoint"
        )
    size = size or (image_cfg.size, image_cfg.size)
    heat = heatmap(raw, size=size, mode=mode)
    return raw[0].cpu().numpy(), heat[0].cpu().numpy()
