"""ImageNet ResNet-18 weights from a local file or torch's hub cache (never downloaded here)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from fnac.resnet import resnet18

log = logging.getLogger(__name__)

WEIGHTS_FILE = "resnet18-f37072fd.pth"  # torchvision's ResNet18_Weights.IMAGENET1K_V1
WEIGHTS_URL = f"https://download.pytorch.org/models/{WEIGHTS_FILE}"


class WeightsNotFound(FileNotFoundError):
    """ImageNet weights were asked for and are not on this machine."""


def find_weights(path: str | Path | None = None) -> Path:
    """The given file, else ``resnet18-f37072fd.pth`` in torch's hub cache."""
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise WeightsNotFound(f"ImageNet weights file {path} does not exist")
        return path
    cached = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
    if cached.is_file():
        return cached
    raise WeightsNotFound(
        f"ImageNet weights for ResNet-18 are not on this machine (looked for {cached}). "
        f"Download {WEIGHTS_URL} into {cached.parent}, pass --imagenet-weights FILE (on the "
        "synthetic world: the file `fnac pretrain-image WORLD --out FILE` writes)"
    )


def imagenet_state(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet ResNet-18 state dict (with ``fc.*``), read with weights_only."""
    found = find_weights(path)
    try:
        state = torch.load(found, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file: one clear error
        raise WeightsNotFound(f"{found} is not a readable ResNet-18 state dict ({exc})") from exc
    expected = set(resnet18().state_dict())
    if not isinstance(state, dict) or set(state) != expected:
        raise WeightsNotFound(f"{found} is not a torchvision ResNet-18 state dict")
    log.info("ImageNet ResNet-18 weights from %s", found)
    return state


def init_image_encoder(imgnet: torch.nn.Module, path: str | Path | None = None) -> None:
    """Load ImageNet weights into FNAC's image trunk (no ``fc``)."""
    state = {k: v for k, v in imagenet_state(path).items() if not k.startswith("fc.")}
    imgnet.load_state_dict(state, strict=True)


def object_saliency_model(path: str | Path | None = None) -> torch.nn.Module:
    """The ImageNet ResNet-18 used for the object-guided ("Obj") maps, in eval mode."""
    net = resnet18()
    net.load_state_dict(imagenet_state(path))
    return net.eval()
