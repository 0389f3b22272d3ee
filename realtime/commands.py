"""Subcommands of the live side: ``fnac export``, ``fnac devices``, and the two halves of a
pipeline split across hosts: ``fnac keys`` and ``fnac capture`` (``fnac run --listen`` is the
other half)."""

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

    p = sub.add_parser(
        "keys",
        help="CURVE keys for capture and inference on different hosts",
        description="Write DIR/server.key (for fnac run --listen) and DIR/client.key (for fnac "
        "capture), readable by this user only. Copy client.key to the capture host over a "
        "channel you trust; the inference side accepts only that client.",
    )
    p.add_argument("dir")
    p.set_defaults(func=keys_command)

    p = sub.add_parser(
        "capture",
        help="send a source's frames and audio to fnac run --listen on another host",
        description="The capture worker on its own: reads the source and pushes every frame "
        "and audio block, stamped at capture, to the inference host (CURVE-encrypted with "
        "--keys; a non-loopback address without keys is refused).",
    )
    p.add_argument("--source", required=True, help="as fnac run --source")
    p.add_argument("--connect", required=True, metavar="tcp://HOST:PORT")
    p.add_argument("--keys", default=None, help="client.key from fnac keys")
    p.add_argument("--sample-rate", type=int, default=None, help="synthetic source: audio rate")
    p.add_argument("--seconds", type=float, default=None, help="synthetic source: its length")
    p.set_defaults(func=capture_command)


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


def keys_command(args: argparse.Namespace) -> int:
    from realtime.transport import write_key_files

    server, client = write_key_files(args.dir)
    print(f"wrote {server} (fnac run --listen ... --keys {server})")
    print(f"wrote {client} (fnac capture ... --keys {client}, on the capture host)")
    return 0


def capture_command(args: argparse.Namespace) -> int:
    from realtime.sources import open_source
    from realtime.transport import TransportError, is_loopback, read_key_file
    from realtime.workers import capture_main

    keys = read_key_file(args.keys, "client") if args.keys else None
    if keys is None and not is_loopback(args.connect):
        raise TransportError(
            f"{args.connect} is another host: pass --keys client.key (fnac keys writes it) so "
            "that frames and audio travel encrypted"
        )
    options = {}
    if args.source == "synthetic":
        options = {"sample_rate": args.sample_rate or 16000, "seconds": args.seconds}
    open_source(args.source, realtime=False, **options).close()  # a clear error, here
    print(f"capturing {args.source} -> {args.connect}", flush=True)
    try:
        capture_main(args.source, True, options, args.connect, None, keys)
    except KeyboardInterrupt:
        pass
    return 0
