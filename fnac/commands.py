"""``fnac info``: what a checkpoint file records."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fnac.flags import sample_rate


def register(sub: argparse._SubParsersAction) -> None:
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
