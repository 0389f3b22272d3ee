"""Image preprocessing (spec §3) for numpy frames and image files.

``reference`` is the published test transform: PIL bicubic resize to exactly 224 x 224 (PIL's
resize antialiases and rounds back to uint8), RGB, ImageNet normalisation. ``fast`` does the same
resize in torch, batched and without PIL: on the CPU on the uint8 frames themselves (rounded like
PIL's, within one grey level of it, and several times faster than resizing floats), on a GPU in
float; the colour channels are swapped on the small image. How far its maps move from the reference
is measured in ``tests/test_image.py`` and stated in the README.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fnac.config import ImageConfig

RESIZE_METHODS = ("reference", "fast")


def _normalize(chw: torch.Tensor, config: ImageConfig) -> torch.Tensor:
    """(..., 3, H, W) float in [0, 1] -> ImageNet-normalised."""
    mean = torch.tensor(config.mean, dtype=chw.dtype, device=chw.device).view(3, 1, 1)
    std = torch.tensor(config.std, dtype=chw.dtype, device=chw.device).view(3, 1, 1)
    return (chw - mean) / std


def to_rgb(frame: np.ndarray, bgr: bool = True) -> np.ndarray:
    """Any common frame layout -> (H, W, 3) uint8 RGB.

    Accepts (H, W) grayscale, (H, W, 1), (H, W, 3) and (H, W, 4) with alpha (dropped).
    ``bgr`` says the colour channels come in OpenCV's order.
    """
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 images, got dtype {frame.dtype}")
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if (
        frame.ndim != 3
        or frame.shape[2] not in (1, 3, 4)
        or frame.shape[0] < 1
        or frame.shape[1] < 1
    ):
        raise ValueError(
            f"expected an image shaped (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {frame.shape}"
        )
    if frame.shape[2] == 1:
        return np.repeat(frame, 3, axis=2)
    frame = frame[:, :, :3]
    return np.ascontiguousarray(frame[:, :, ::-1] if bgr else frame)


def test_transform(config: ImageConfig | None = None):
    """The published test transform for PIL images (torchvision's, imported here: importing it
    costs a second and a half, which the live path, resizing with torch, does not pay)."""
    from torchvision import transforms

    config = config or ImageConfig()
    return transforms.Compose(
        [
            transforms.Resize((config.size, config.size), transforms.InterpolationMode.BICUBIC),
            transforms.ToTensor(),
            transforms.Normalize(config.mean, config.std),
        ]
    )


def train_transform(config: ImageConfig | None = None):
    """The published training augmentation for PIL images."""
    from torchvision import transforms

    config = config or ImageConfig()
    return transforms.Compose(
        [
            transforms.Resize(config.train_resize, transforms.InterpolationMode.BICUBIC),
            transforms.RandomCrop((config.size, config.size)),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(config.mean, config.std),
        ]
    )


def load_image(path: str | Path) -> Image.Image:
    """An image file -> PIL RGB image, with a clear error for what is not an image: an empty
    file, a truncated one (PIL's partial decode is never accepted), one without pixels."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes): it is not an image; give a JPEG or PNG")
    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        # SyntaxError, ValueError: what some of PIL's decoders raise for a malformed file
        raise ValueError(
            f"{path} is not a readable image ({exc}); re-save it as JPEG or PNG"
        ) from exc
    if rgb.width < 1 or rgb.height < 1:
        raise ValueError(f"{path} is a {rgb.width}x{rgb.height} image: it holds no pixels")
    return rgb


def load_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A ground-truth mask file -> (H, W) bool, read as AVSBench's own S4 loader reads it:
    ``Image.convert('1')``, so a binary 0 / 255 mask (grey, palette or RGB) is foreground where
    its pixel is above 127 (grey levels between would be dithered, as there). ``size`` (width,
    height): the size it must have (its frame's), else a ValueError naming both."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask file {path} does not exist")
    try:
        with Image.open(path) as img:
            mask = np.array(img.convert("1"), dtype=bool)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path} is not a readable mask image ({exc}); re-save it as PNG") from exc
    if size is not None and (mask.shape[1], mask.shape[0]) != tuple(size):
        raise ValueError(
            f"mask {path} is {mask.shape[1]}x{mask.shape[0]}, its frame {size[0]}x{size[1]}: "
            "a mask must be drawn on its own frame; replace it with that frame's mask"
        )
    return mask


def preprocess_frame(
    frame: np.ndarray, config: ImageConfig | None = None, bgr: bool = True
) -> torch.Tensor:
    """One (H, W[, C]) uint8 frame -> (3, size, size) with the published test transform."""
    return test_transform(config)(Image.fromarray(to_rgb(frame, bgr)))


def preprocess_frames(
    frames: list[np.ndarray] | np.ndarray,
    config: ImageConfig | None = None,
    method: str = "reference",
    bgr: bool = True,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Frames (each (H, W[, C]) uint8) -> (B, 3, size, size) normalised RGB.

    ``method='reference'`` is the published PIL transform; ``'fast'`` resizes on ``device`` with
    torch's antialiased bicubic, for frames of equal size.
    """
    config = config or ImageConfig()
    if isinstance(frames, np.ndarray) and frames.ndim in (2, 3) and frames.dtype == np.uint8:
        if frames.ndim == 2 or frames.shape[-1] in (1, 3, 4):
            frames = [frames]
    if method == "reference":
        batch = torch.stack([preprocess_frame(f, config, bgr) for f in frames])
        return batch.to(device) if device is not None else batch
    if method != "fast":
        raise ValueError(f"unknown resize method {method!r}; choose one of {RESIZE_METHODS}")
    # (B, H, W, 3) in the frames' own channel order; one frame is not copied
    same = [to_rgb(f, bgr=False) for f in frames]
    x = torch.from_numpy(same[0][None] if len(same) == 1 else np.stack(same)).to(device)
    x = x.permute(0, 3, 1, 2)  # a channels_last view, as the uint8 resize wants it
    size = (config.size, config.size)
    if x.device.type == "cpu":
        x = F.interpolate(x, size=size, mode="bicubic", antialias=True).float().div_(255.0)
    else:
        x = F.interpolate(x.float().div_(255.0), size=size, mode="bicubic", antialias=True)
        x = x.clamp_(0.0, 1.0)
    if bgr:
        x = x.flip(1)
    return _normalize(x, config).contiguous()
