"""``fnac pretrain-image``: the synthetic world's stand-in for ImageNet weights.

The published recipe starts the image encoder from torchvision's ImageNet ResNet-18, and that is
where FNAC's maps get their locality: a network trained to name the object in a picture has cells
that fire over the object. Trained from random weights on the synthetic world, the audio-visual
loss alone is happy to read the sounding class from anywhere in the frame, and the maps settle on
the frame's top row whatever the scene (measured: pointing accuracy 0.07-0.19 against 0.24 for a
random cell).

No ImageNet file can be downloaded here, so this module trains the same kind of network on the
synthetic world: a ResNet-18 that names the single object in scenes of the world's classes (clutter
background, no other object). The file it writes has exactly the shape of torchvision's ImageNet
ResNet-18 state dict (1000 outputs, of which the first K are the world's classes), so
``fnac train --imagenet-weights FILE`` and the object-guided ("Obj") maps read it like the real one.
No box, no sound and nothing of the test sets is used: only the class of the one object shown.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from train.config import ABOVE_0, AT_LEAST_0, AT_LEAST_1, opt

log = logging.getLogger(__name__)

IMAGENET_OUTPUTS = 1000  # torchvision's head size, so the file reads as ImageNet weights


@dataclass(frozen=True)
class PretrainConfig:
    """How the classifier trains; the help and ranges are ``fnac pretrain-image``'s flags."""

    images: int = opt(2000, "single-object training scenes", AT_LEAST_1)
    held_out: int = opt(200, "scenes for the accuracy printed at the end", AT_LEAST_1)
    steps: int = opt(200, "optimizer steps", AT_LEAST_1)
    batch_size: int = opt(64, "scenes per step", AT_LEAST_1)
    lr: float = opt(1e-3, "Adam learning rate", ABOVE_0)
    weight_decay: float = opt(1e-4, "Adam weight decay", AT_LEAST_0)
    seed: int = opt(0, "fixes the scenes and the initial weights")
    device: str = opt("auto", "auto, cpu, cuda, cuda:N")


def world_config(world: str | Path):
    """The WorldConfig that wrote ``world`` (its ``world.json``), so the classes are the same."""
    from train.synth_world import WorldConfig

    path = Path(world) / "world.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: pass the folder `fnac synth OUT` wrote (it holds world.json)"
        )
    try:
        return WorldConfig(**json.loads(path.read_text())["config"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a world.json written by `fnac synth` ({exc})") from exc


def object_scenes(world, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` scenes with one object each -> images (N, S, S, 3) uint8 and class ids (N,)."""
    rng = np.random.default_rng([seed, 303])
    images, labels = [], []
    for _ in range(count):
        scene = world.scene(rng, n_sounding=1, n_silent=0)
        images.append(scene.image)
        labels.append(scene.objects[0].class_id)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def _to_tensor(images: np.ndarray):
    import torch

    from fnac.config import ImageConfig

    image = ImageConfig()
    mean = torch.tensor(image.mean).view(1, 3, 1, 1)
    std = torch.tensor(image.std).view(1, 3, 1, 1)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - mean) / std


def pretrain(world: str | Path, out: str | Path, config: PretrainConfig) -> dict:
    """Train the classifier, write its state dict to ``out`` atomically, return a summary."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from fnac.resnet import resnet18
    from train.synth_world import World
    from train.trainer import pick_device

    started = time.perf_counter()
    wcfg = world_config(world)
    w = World(wcfg)
    torch.manual_seed(config.seed)
    images, labels = object_scenes(w, config.images, config.seed)
    held_images, held_labels = object_scenes(w, config.held_out, config.seed + 1)
    x, y = _to_tensor(images), torch.from_numpy(labels)
    device = pick_device(config.device, 0)
    net = resnet18(num_classes=IMAGENET_OUTPUTS).to(device, memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    net.train()
    bar = tqdm(range(config.steps), desc="pretrain-image", unit="step")
    for _ in bar:
        idx = torch.randint(0, len(x), (config.batch_size,), generator=gen)
        batch = x[idx]
        flip = torch.rand(len(idx), generator=gen) < 0.5
        batch[flip] = batch[flip].flip(-1)
        batch = batch.to(device, memory_format=torch.channels_last)
        loss = F.cross_entropy(net(batch)[:, : wcfg.classes], y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    net.eval()
    with torch.no_grad():
        held = _to_tensor(held_images).to(device, memory_format=torch.channels_last)
        predicted = net(held)[:, : wcfg.classes].argmax(1).cpu().numpy()
    accuracy = float((predicted == held_labels).mean())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, tmp)
    os.replace(tmp, out)
    return {
        "out": str(out),
        "classes": wcfg.classes,
        "image_size": wcfg.image_size,
        "held_out_accuracy": accuracy,
        "seconds": time.perf_counter() - started,
        "device": str(device),
    }
