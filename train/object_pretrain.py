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

import argparse
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

IMAGENET_OUTPUTS = 1000  # torchvision's head size, so the file reads as ImageNet weights


@dataclass(frozen=True)
class PretrainConfig:
    images: int = 2000  # single-object training scenes
    held_out: int = 200  # scenes for the accuracy printed at the end
    steps: int = 200
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"


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
    from torchvision.models import resnet18
    from tqdm import tqdm

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


def register(sub: argparse._SubParsersAction) -> None:
    d = PretrainConfig()
    p = sub.add_parser(
        "pretrain-image",
        help="train the synthetic world's stand-in for ImageNet ResNet-18 weights",
        description="Train a ResNet-18 to name the one object in scenes of a synthetic world's "
        "classes and save it in torchvision's ImageNet state-dict shape, for "
        "`fnac train --imagenet-weights FILE` (the published recipe starts from ImageNet).",
    )
    p.add_argument("world", metavar="WORLD", help="the folder `fnac synth` wrote (world.json)")
    p.add_argument("--out", required=True, help="weights file to write (.pth)")
    p.add_argument("--images", type=int, default=d.images, help="single-object training scenes")
    p.add_argument("--steps", type=int, default=d.steps, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:N")
    p.set_defaults(func=pretrain_command)


def pretrain_command(args: argparse.Namespace) -> int:
    for name in ("images", "steps", "batch_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    config = PretrainConfig(
        images=args.images,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
    )
    s = pretrain(args.world, args.out, config)
    print(
        f"wrote {s['out']}: ResNet-18 naming the {s['classes']} classes of the world at "
        f"{s['image_size']} px, held-out accuracy {s['held_out_accuracy']:.3f}, "
        f"{s['seconds']:.0f} s on {s['device']}. Use it with "
        f"`fnac train --imagenet-weights {s['out']} ...`"
    )
    return 0
