"""Subcommands on single files: ``fnac localize`` and ``fnac info``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fnac.flags import sample_rate, unit


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
        type=sample_rate,
        default=None,
        help="rate the model was trained at (published checkpoints record none)",
    )
    p.add_argument("--out", default=None, help="write the overlay PNG here")
    p.add_argument("--opacity", type=unit, default=0.5, help="of the heatmap over the image")
    p.add_argument("--colormap", default="jet")
    p.add_argument("--json", action="store_true", help="print the raw map and peak as JSON")
    p.set_defaults(func=localize_command)

    p = sub.add_parser(
        "info",
        help="describe a checkpoint",
        description="Print what a checkpoint file records, as JSON.",
    )
    p.add_argument(
        "checkpoint",
        nargs="?",
        default=None,
        help="a .pth file (default, or 'demo': the shipped one)",
    )
    p.add_argument("--sample-rate", type=sample_rate, default=None)
    p.set_defaults(func=info_command)


def localize_command(args: argparse.Namespace) -> int:
    from fnac.checkpoint import load_checkpoint
    from fnac.predict import localize_image, read_inputs

    read_inputs(args.image, args.audio)  # a bad file is one clear line, before the model loads
    model = load_checkpoint(args.checkpoint, sample_rate=args.sample_rate)
    found = localize_image(model, args.image, args.audio, args.out, args.opacity, args.colormap)
    x, y = found.peak
    if args.out:
        print(f"wrote {args.out}")
    if args.json:
        print(json.dumps({"map": found.raw.round(5).tolist(), "peak": [x, y]}))
    elif not args.out:
        height, width = found.image.shape[:2]
        print(
            f"peak at x={x}, y={y} of {width}x{height}; "
            f"raw map max {found.raw.max():.3f}, min {found.raw.min():.3f}"
        )
    return 0


def rounded(values: dict) -> dict:
    """``values`` with its floats at 4 decimals (a figure, not a float's last digits)."""
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in (values or {}).items()}


def info_command(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from fnac.checkpoint import load_checkpoint
    from fnac.weights import checkpoint_path

    args.checkpoint = checkpoint_path(args.checkpoint)
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
                "metrics": rounded(info.metrics),
                "versions": info.versions,
                "calibration": rounded(info.calibration)
                or "none: the live app uses its defaults (fnac eval --calibrate sets them)",
                "parameters": sum(p.numel() for p in model.parameters()),
            },
            indent=2,
        )
    )
    return 0
