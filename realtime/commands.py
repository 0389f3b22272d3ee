"""Subcommands of the live side: ``fnac export`` (so far)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="build Torch-TensorRT FP16 engines for a checkpoint",
        description="Compile both encoders with Torch-TensorRT (dynamo, static "
        "shapes, FP16) and save them with a JSON sidecar; needs an NVIDIA GPU "
        "and pip install 'fnac[tensorrt]'.",
    )
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="engine folder")
    p.add_argument("--sample-rate", type=int, default=None)
    p.set_defaults(func=export_command)


def export_command(args: argparse.Namespace) -> int:
    from fnac.checkpoint import load_checkpoint
    from realtime.tensorrt import export

    model = load_checkpoint(args.checkpoint, sample_rate=args.sample_rate)
    info = model.info
    sidecar = export(
        model, Path(args.checkpoint), Path(args.out), info.image.size, info.audio.n_frames()
    )
    print(json.dumps(sidecar, indent=2))
    return 0
