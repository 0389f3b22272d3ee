"""From the raw h x w similarity map to a display / evaluation heatmap (spec §5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

UPSAMPLE_MODES = ("bicubic", "bilinear")


def upsample(
    maps: torch.Tensor, size: tuple[int, int] = (224, 224), mode: str = "bicubic"
) -> torch.Tensor:
    """(B, h, w) raw maps -> (B, H, W), bicubic with align_corners False (the published default)
    or bilinear with align_corners True (the authors' second setting)."""
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"unknown upsampling {mode!r}; choose one of {UPSAMPLE_MODES}")
    align = mode == "bilinear"
    return F.interpolate(maps.unsqueeze(1), size=size, mode=mode, align_corners=align).squeeze(1)


def min_max(maps: torch.Tensor) -> torch.Tensor:
    """(B, H, W) -> each map scaled to [0, 1]; a constant map is left as it is (as published)."""
    flat = maps.flatten(1)
    lo = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - lo
    scaled = torch.where(span > 0, (flat - lo) / torch.where(span > 0, span, 1), flat)
    return scaled.view_as(maps)


def heatmap(
    maps: torch.Tensor, size: tuple[int, int] = (224, 224), mode: str = "bicubic"
) -> torch.Tensor:
    """(B, h, w) raw maps -> (B, H, W) min-max normalised heatmaps."""
    return min_max(upsample(maps, size, mode))
