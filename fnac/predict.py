"""One-shot localization of an image file and an audio file with a loaded model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fnac.audio import clip_spectrogram, load_wav
from fnac.config import AudioConfig, ImageConfig
from fnac.heatmap import heatmap
from fnac.image import load_image, test_transform
from fnac.model import FNAC


def configs_of(model: FNAC) -> tuple[AudioConfig, ImageConfig]:
    info = getattr(model, "info", None)
    return (info.audio, info.image) if info is not None else (AudioConfig(), ImageConfig())


def read_inputs(
    image_path: str | Path, audio_path: str | Path
) -> tuple[Image.Image, np.ndarray, int]:
    """(image file, WAV file) -> (RGB image, (C, N) float32 samples, rate), both checked: a file
    that is missing, empty, truncated, without pixels or samples, or with NaN / inf samples is
    one ValueError (FileNotFoundError) naming it. Cheap: call it before loading a model."""
    return (load_image(image_path), *load_wav(audio_path))


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
    image, wave, rate = read_inputs(image_path, audio_path)
    return localize_arrays(model, image, wave, rate, size, mode)


@torch.no_grad()
def localize_arrays(
    model: FNAC,
    image: Image.Image | np.ndarray,
    wave: np.ndarray,
    rate: int,
    size: tuple[int, int] | None = None,
    mode: str = "bicubic",
) -> tuple[np.ndarray, np.ndarray]:
    """``localize_files`` on what the files held: an RGB image (PIL, or an (H, W, 3) uint8 array),
    (C, N) samples at ``rate``. The sound goes through the published clip rule (its centred 3 s)
    and the picture through the published test transform."""
    audio_cfg, image_cfg = configs_of(model)
    device = next(model.parameters()).device
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
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


@dataclass(frozen=True)
class Localization:
    """Where the sound of an audio file is in an image, at the image's own size."""

    raw: np.ndarray  # (h, w) raw similarity map / tau
    heat: np.ndarray  # (H, W) heatmap in [0, 1]
    image: np.ndarray  # (H, W, 3) uint8 RGB, as read
    peak: tuple[int, int]  # (x, y) of the hottest pixel


def localize_image(
    model: FNAC,
    image_path: str | Path,
    audio_path: str | Path,
    overlay: str | Path | None = None,
    opacity: float = 0.5,
    colormap: str = "jet",
) -> Localization:
    """``localize_files`` at the image's size, and the heatmap blended over the image as a PNG at
    ``overlay`` when given: what ``fnac localize`` and ``fnac tour`` show of one pair."""
    from PIL import Image

    from fnac.overlay import blend

    image = np.asarray(load_image(image_path))
    raw, heat = localize_files(model, image_path, audio_path, size=image.shape[:2])
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    if overlay is not None:
        Image.fromarray(blend(image, heat, opacity, colormap)).save(overlay)
    return Localization(raw, heat, image, (int(x), int(y)))
