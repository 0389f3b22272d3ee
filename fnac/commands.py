"""Subcommands on single files: ``fnac localize`` and ``fnac info``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "localize",
        help="heatmap of where the sound of a WAV file is in an image",
        description="Localize the sound of AUDIO in IMAGE with a checkpoint.",
    )
    p.add_argument("--checkpoint", required=True, help="published or fnac checkpoint (.pth)")
    p.add_argument("--image", required=True, help="image file (jpg, png, ...)")
    p.add_argument("--audio", required=True, help="WAV file; its centred 3 s are used")
    p.add_argument(
        "--sample-rate",
        type=int,
        default=None,
        help="rate the model was trained at (published checkpoints record none)",
    )
    p.add_argument("--out", default=None, help="write the overlay PNG here")
    p.add_argument("--opacity", type=float, default=0.5)
    p.add_argument("--colormap", default="jet")
    p.add_argument("--json", action="store_true", help="print the raw map and peak as JSON")
    p.set_defaults(func=localize_command)

    p = sub.add_parser(
        "info",
        help="describe a checkpoint",
        description="Print what a checkpoint file records, as JSON.",
    )
    p.add_argument("checkpoint")
    p.add_argument("--sample-rate", type=int, default=None)
    p.set_defaults(func=info_command)


def localize_command(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from fnac.checkpoint import load_checkpoint
    from fnac.image import load_image
    from fnac.overlay import blend
    from fnac.predict import localize_files, read_inputs

    read_inputs(args.image, args.audio)  # a bad file is one clear line, before the model loads
    model = load_checkpoint(args.checkpoint, sample_rate=args.sample_rate)
    image = np.asarray(load_image(args.image))
    raw, heat = localize_files(model, args.image, args.audio, size=image.shape[:2])
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    if args.out:
        Image.fromarray(blend(image, heat, args.opacity, args.colormap)).save(args.out)
        print(f"wrote {args.out}")
    if args.json:
        print(json.dumps({"map": raw.round(5).tolist(), "peak": [int(x), int(y)]}))
    elif not args.out:
        print(
            f"peak at x={x}, y={y} of {image.shape[1]}x{image.shape[0]}; "
            f"raw map max {raw.max():.3f}, min {raw.min():.3f}"
        )
    return 0


def info_command(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from fnac.checkpoint import load_checkpoint

    model = load_checkpoint(args.checkpoint, sample_rate=args.sample_rate)
    info = model.info
    print(
        json.dumps(
            {
                "path": str(Path(args.checkpoint)),
                "format": info.format,
                "model": asdict(model.config),
                "audio": asdict(info.audio),
                "image": asdict(info.image),
                "trained_on": info.trained_on,
                "epoch": info.epoch,
                "metrics": info.metrics,
                "versions": info.versions,
                "calibration": info.calibration,
                "parameters": sum(p.numel() for p in model.parameters()),
            },
            indent=2,
        )
    )
    return 0
