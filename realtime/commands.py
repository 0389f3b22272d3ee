"""Subcommands of the live side: ``fnac export`` and ``fnac devices`` (so far)."""

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

    p = sub.add_parser(
        "devices",
        help="list microphones and cameras",
        description="List the audio inputs PortAudio sees and the camera indexes "
        "OpenCV can open (0-5).",
    )
    p.set_defaults(func=devices_command)


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


def devices_command(args: argparse.Namespace) -> int:
    from realtime.sources import cameras, input_devices

    mics = input_devices()
    print("microphones (--source CAMERA+mic:INDEX or CAMERA+mic:NAME):")
    for d in mics:
        print(f"  {d['index']:3d}  {d['name']}  ({d['channels']} ch, {d['default_rate']:.0f} Hz)")
    if not mics:
        print("  none")
    print("cameras (--source INDEX):")
    found = cameras()
    for c in found:
        print(f"  {c['index']:3d}  {c['width']}x{c['height']}")
    if not found:
        print("  none")
    return 0
