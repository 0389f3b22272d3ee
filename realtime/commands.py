"""Subcommands of the live side: ``fnac localize`` (one picture and one sound, read as the live
app reads a frame), ``fnac run`` (the headless live loop), ``fnac bench``, ``fnac soak``, ``fnac
export``, ``fnac devices``, and the two halves of a pipeline split across hosts: ``fnac keys``
and ``fnac capture`` (``fnac run --listen`` is the other half).

Each command checks its arguments, builds a config and calls the library (``realtime.pipeline``,
``realtime.bench``, ``realtime.soak``, ``realtime.tensorrt``, ``realtime.still``); nothing below
this module reads an ``argparse.Namespace``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fnac.flags import (
    add_json_flag,
    check_writable,
    non_negative_float,
    positive_float,
    positive_int,
    sample_rate,
    unit,
    write_json,
)
from fnac.weights import checkpoint_path
from realtime.backends import BACKENDS, DEFAULT_BACKEND, default_engine_dir

RUN_DOC = """The headless live loop: capture and inference workers, sinks in this process.

Each processed frame can become one JSON line (frame, t, map, peak, box, confidence, sounding,
latency) and a frame of an annotated mp4. One status line is rewritten in place: processed fps,
capture->result latency, frames dropped as stale."""


def add_engine_flags(p: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--engine``, for every command that runs a model live."""
    p.add_argument(
        "--backend",
        default=DEFAULT_BACKEND,
        choices=BACKENDS,
        help="inference backend (auto: the fastest here whose maps agree with float32's, "
        "measured at the first start and kept in the user's cache)",
    )
    p.add_argument(
        "--engine",
        metavar="DIR",
        default=None,
        help="tensorrt: the folder fnac export wrote (default: CHECKPOINT-tensorrt/ beside the "
        "checkpoint, where fnac export writes by default)",
    )


def add_smooth_flag(p: argparse.ArgumentParser) -> None:
    from realtime.pipeline import SMOOTH_S

    p.add_argument(
        "--smooth",
        metavar="SECONDS",
        type=non_negative_float,
        default=SMOOTH_S,  # see the README's measure of it
        help="steadier maps: peak, box and the drawn heat follow the maps averaged over about "
        "this many seconds (an exponential time constant; 0: off, each frame's own map). "
        "The JSON lines keep each frame's own map",
    )


def add_standby_flag(p: argparse.ArgumentParser) -> None:
    from realtime.pipeline import STANDBY_MIN_CPUS

    p.add_argument(
        "--standby",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep a second, loaded inference worker ready: if the first dies, results resume "
        "in about a second instead of after a model reload (default: on with "
        f"{STANDBY_MIN_CPUS} or more CPU cores, where loading it does not slow the live run)",
    )


LOCALIZE_DOC = """Localize the sound of AUDIO in PICTURE, as the live app localizes a frame.

PICTURE: an image, or a video (its middle frame, or the one at --at SECONDS). AUDIO: any sound file
the live sources read (WAV, FLAC, OGG / Opus, MP3, M4A) or a video's track; left out, a video
PICTURE's own track. The model hears the published clip: the sound's centred 3 s, or, from the
picture's own video, the 3 s centred on its frame. Prints the peak, the box, the sounding
confidence and the verdict; --out draws them as fnac run --out does (heat fading when nothing
sounds, peak, box, confidence), --json writes them with the raw map."""


def register(sub: argparse._SubParsersAction) -> None:
    _register_localize(sub)
    p = sub.add_parser(
        "run",
        help="the headless live loop: source -> FNAC -> JSON lines / mp4",
        description=RUN_DOC,
    )
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--source",
        help="camera index or URL (CAMERA+mic[:NAME] adds a microphone), a video file with "
        "an audio track, or 'synthetic'",
    )
    where.add_argument(
        "--listen",
        metavar="tcp://ADDRESS:PORT",
        help="take frames and audio from fnac capture on another host instead of a source",
    )
    p.add_argument("--keys", default=None, help="with --listen: server.key from fnac keys")
    p.add_argument(
        "--checkpoint", default=None, help="default (or 'demo'): the shipped demo checkpoint"
    )
    p.add_argument("--sample-rate", type=positive_int, default=None)
    add_engine_flags(p)
    p.add_argument("--out", default=None, help="annotated mp4")
    p.add_argument("--jsonl", default=None, help="one JSON line per processed frame")
    p.add_argument("--seconds", type=positive_float, default=None, help="stop after this long")
    p.add_argument(
        "--offline",
        "--fast",
        dest="offline",
        action="store_true",
        help="a video file (or the synthetic world with --seconds): every frame in order, none "
        "dropped, as fast as the engine allows, with a progress bar; latency counts from each "
        "frame's read (--fast is its former name)",
    )
    p.add_argument(
        "--audio-rate", type=positive_float, default=10.0, help="audio embeddings per second"
    )
    add_smooth_flag(p)
    add_standby_flag(p)
    p.set_defaults(func=run_command)

    p = sub.add_parser(
        "bench",
        help="live and capacity figures of every backend vs a reference",
        description="Every backend against a naive reference on the same synthetic 640x480 "
        "stream: live (paced at 30 fps through the real pipeline) and capacity (unpaced), with "
        "each backend's maps held against eager's.",
    )
    p.add_argument(
        "--seconds", type=positive_float, default=10.0, help="per run (live and capacity)"
    )
    add_json_flag(p, "the report")
    p.add_argument("--checkpoint", default=None, help="default: a random 224-px FNAC")
    p.add_argument(
        "--backends", default=None, help="comma-separated (default: every available one)"
    )
    p.add_argument("--engine", metavar="DIR", default=None, help="tensorrt: fnac export's folder")
    p.add_argument(
        "--tune-threads",
        action="store_true",
        help="also run the live pipeline (auto backend) with OMP_WAIT_POLICY=PASSIVE and "
        "ACTIVE, --seconds each, and keep the better for every later live run on this machine",
    )
    p.set_defaults(func=bench_command)

    p = sub.add_parser(
        "soak",
        help="run the live pipeline for minutes and check memory, latency, processes, descriptors",
        description="Soak test: the synthetic stream at 30 fps through the capture and inference "
        "workers; samples memory, descriptors and latency; exits 1 when memory grew past the "
        "bound, latency crept, a worker restarted, or a process or descriptor outlived the run.",
    )
    p.add_argument("--seconds", type=positive_float, default=600.0)
    p.add_argument("--every", type=positive_float, default=10.0, help="seconds between samples")
    p.add_argument("--checkpoint", default=None, help="default: the shipped demo checkpoint")
    add_engine_flags(p)
    p.add_argument("--max-growth-mb", type=non_negative_float, default=64.0)
    add_json_flag(p, "the samples and the verdict")
    p.set_defaults(func=soak_command)

    p = sub.add_parser(
        "export",
        help="build Torch-TensorRT FP16 engines for a checkpoint",
        description="Compile both encoders with Torch-TensorRT (dynamo, static "
        "shapes, FP16) and save them with a JSON sidecar; needs an NVIDIA GPU "
        "and pip install 'fnac[tensorrt]'.",
    )
    p.add_argument("--checkpoint", required=True)
    p.add_argument(
        "--out",
        default=None,
        help="engine folder (default: CHECKPOINT-tensorrt/ beside the checkpoint, where "
        "--backend tensorrt looks)",
    )
    p.add_argument("--sample-rate", type=positive_int, default=None)
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
    p.add_argument(
        "--sample-rate", type=positive_int, default=None, help="synthetic source: audio rate"
    )
    p.add_argument(
        "--seconds", type=positive_float, default=None, help="synthetic source: its length"
    )
    p.set_defaults(func=capture_command)


def _register_localize(sub: argparse._SubParsersAction) -> None:
    from fnac.overlay import COLORMAPS, DEFAULT_COLORMAP, OPACITY

    p = sub.add_parser(
        "localize",
        help="where the sound of an audio (or video) file is in an image (or video frame)",
        description=LOCALIZE_DOC,
    )
    p.add_argument(
        "--checkpoint", default=None, help="default (or 'demo'): the shipped demo checkpoint"
    )
    p.add_argument("--image", required=True, metavar="PICTURE", help="image or video file")
    p.add_argument(
        "--audio", default=None, help="sound or video file (default: PICTURE's own track)"
    )
    p.add_argument(
        "--at", type=non_negative_float, default=None, metavar="SECONDS",
        help="a video PICTURE's frame at this time (default: its middle)",
    )  # fmt: skip
    p.add_argument(
        "--sample-rate",
        type=sample_rate,
        default=None,
        help="rate the model was trained at (published checkpoints record none)",
    )
    p.add_argument("--out", default=None, help="write the drawn picture here (PNG, JPEG)")
    p.add_argument("--opacity", type=unit, default=OPACITY, help="of the heat at full confidence")
    p.add_argument("--colormap", choices=COLORMAPS, default=DEFAULT_COLORMAP)
    add_json_flag(p, "the raw map, peak, box, confidence and sounding verdict")
    p.set_defaults(func=localize_command)


def localize_command(args: argparse.Namespace) -> int:
    check_writable(args.out, args.json_out)
    if args.out:
        from PIL import Image

        if Path(args.out).suffix.lower() not in Image.registered_extensions():
            raise ValueError(f"--out {args.out}: give an image file name (.png, .jpg, ...)")
    from realtime.still import read_inputs

    inputs = read_inputs(args.image, args.audio, args.at)  # a bad file: one line, before the model
    from fnac.checkpoint import load_checkpoint
    from realtime.recording import drawn
    from realtime.render import Style
    from realtime.still import localize_still

    model = load_checkpoint(checkpoint_path(args.checkpoint), sample_rate=args.sample_rate)
    found = localize_still(model, inputs)
    height, width = inputs.picture.shape[:2]
    verdict = "sounding" if found.sounding else "not sounding"
    print(
        f"peak at x={found.peak[0]}, y={found.peak[1]} of {width}x{height}, box "
        f"{list(found.box)}; confidence {found.confidence:.2f} ({verdict})"
    )
    if args.out:
        from PIL import Image

        style = Style(colormap=args.colormap, opacity=args.opacity)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(drawn(inputs.picture.copy(), found, style)).save(args.out)
        print(f"wrote {args.out}")
    size = {"width": width, "height": height}
    at = {} if inputs.frame_time is None else {"frame_time": round(inputs.frame_time, 4)}
    write_json(args.json_out, {**found.to_json(), "picture": size, **at})
    return 0


def run_command(args: argparse.Namespace) -> int:
    from realtime.pipeline import (
        LiveConfig,
        LivePipeline,
        Sinks,
        describe,
        run_live,
        standby_wanted,
    )
    from realtime.sources import SourceError, open_source
    from realtime.transport import check_exposure, read_key_file

    # checked here without torch: this process never imports it (2 s of start-up); the worker
    # reads the file and says in one line what is wrong with one that is no checkpoint
    args.checkpoint = checkpoint_path(args.checkpoint)
    check_writable(args.jsonl, args.out)
    server_keys = read_key_file(args.keys, "server") if args.keys else None
    total, wall_s, source_s = offline_plan(args)  # said before any source is opened
    if args.listen:
        check_exposure(args.listen, server_keys["secret"] if server_keys else None)
    elif args.source.startswith("mic"):
        raise SourceError(
            "a microphone alone gives no picture: pair it with a camera (--source 0+mic) "
            "or use a video file or 'synthetic'"
        )
    else:
        open_source(args.source, realtime=False).close()  # open it here first: a clear error
    config = LiveConfig(
        source=args.source,
        checkpoint=args.checkpoint,
        backend=args.backend,
        engine_dir=args.engine,
        sample_rate=args.sample_rate,
        realtime=not args.offline,
        audio_rate_hz=args.audio_rate,
        smooth_s=args.smooth,
        listen=args.listen,
        server_keys=server_keys,
        standby=standby_wanted(args.standby),
        seconds=source_s,
    )
    sinks = Sinks(args.jsonl, args.out)
    try:
        with LivePipeline(config) as pipeline:
            sinks.attach(pipeline)
            summary = run_live(pipeline, sinks, wall_s, total=total)
    finally:
        sinks.close()
    print("\n" + describe(summary), file=sys.stderr)
    for target in (args.jsonl, args.out):
        if target:
            print(f"wrote {target}")
    return 0


def offline_plan(args: argparse.Namespace) -> tuple[int | None, float | None, float | None]:
    """For ``fnac run``: (frames an --offline run will process, for its progress bar; how long
    to run by the clock; the synthetic source's length). Offline, the synthetic world is
    ``--seconds`` of stream, however long processing it takes."""
    from realtime.sources import SYNTHETIC_FPS, frame_count

    if not args.offline:
        return None, args.seconds, None
    if args.listen or not (args.source == "synthetic" or Path(args.source).is_file()):
        raise ValueError(
            "--offline reads a video file (or 'synthetic' with --seconds) frame by frame; "
            "a camera, a URL or --listen runs live: leave --offline out"
        )
    if args.source == "synthetic":
        if args.seconds is None:
            raise ValueError("--offline with the endless synthetic world needs --seconds")
        return round(args.seconds * SYNTHETIC_FPS), None, args.seconds
    return frame_count(args.source), args.seconds, None


def bench_command(args: argparse.Namespace) -> int:
    from realtime.bench import bench, chosen_backends, table

    backends = chosen_backends(args.backends)
    check_writable(args.json_out)
    if args.checkpoint is not None:  # 'demo' names the shipped one; none: a random 224-px model
        args.checkpoint = checkpoint_path(args.checkpoint)
    report = bench(args.checkpoint, backends, args.seconds, args.engine)
    print(table(report))
    if args.tune_threads:
        from realtime.threadpolicy import measure

        report["threads"] = measure(checkpoint_path(args.checkpoint), args.seconds)
        print(report["threads"]["reason"])
    write_json(args.json_out, report)
    return 0


def soak_command(args: argparse.Namespace) -> int:
    from realtime.pipeline import LiveConfig
    from realtime.soak import soak

    checkpoint = checkpoint_path(args.checkpoint)
    check_writable(args.json_out)
    config = LiveConfig("synthetic", checkpoint, args.backend, engine_dir=args.engine)
    report = soak(config, args.seconds, args.every, args.max_growth_mb)
    write_json(args.json_out, report)
    print(
        f"{'ok' if report['ok'] else 'FAILED'}: {report['frames']} frames in "
        f"{args.seconds:.0f} s; memory {report['rss_first_mb']:.0f} -> "
        f"{report['rss_last_mb']:.0f} MiB (growth {report['growth_mb']:+.1f}, bound "
        f"{report['max_growth_mb']:.0f}); p95 {report['p95_first_ms']:.0f} -> "
        f"{report['p95_last_ms']:.0f} ms (limit {report['p95_limit_ms']:.0f}); restarts "
        f"{report['restarts']}; processes left {len(report['processes_left'])}; descriptors "
        f"{report['fds_before']} -> {report['fds_after']}"
    )
    return 0 if report["ok"] else 1


def export_command(args: argparse.Namespace) -> int:
    from fnac.checkpoint import load_checkpoint
    from realtime.tensorrt import export

    model = load_checkpoint(args.checkpoint, sample_rate=args.sample_rate)
    info = model.info
    out = Path(args.out) if args.out else default_engine_dir(args.checkpoint)
    sidecar = export(model, Path(args.checkpoint), out, info.image.size, info.audio.n_frames())
    print(json.dumps(sidecar, indent=2))
    print(f"wrote {out} (use it with --backend tensorrt --engine {out})")
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
    from realtime.messages import CaptureSpec
    from realtime.sources import open_source
    from realtime.transport import TransportError, is_loopback, read_key_file
    from realtime.workers import capture_main

    keys = read_key_file(args.keys, "client") if args.keys else None
    if keys is None and not is_loopback(args.connect):
        raise TransportError(
            f"{args.connect} is another host: pass --keys client.key (fnac keys writes it) so "
            "that frames and audio travel encrypted"
        )
    spec = CaptureSpec(
        source=args.source,
        frames=args.connect,
        realtime=True,
        sample_rate=args.sample_rate or 16000,
        seconds=args.seconds,
        curve=keys,
    )
    open_source(spec.source, realtime=False, **spec.source_options()).close()  # a clear error
    print(f"capturing {args.source} -> {args.connect}", flush=True)
    try:
        capture_main(spec)
    except KeyboardInterrupt:
        pass
    return 0
