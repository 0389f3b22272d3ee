"""Subcommands of the window: ``fnac live`` and ``fnac demo`` (the window with a display, the
headless demo of ``realtime.demo`` without one)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fnac.flags import positive_float
from fnac.weights import checkpoint_path
from realtime.commands import add_engine_flags, add_smooth_flag, add_standby_flag

LIVE_DOC = """The desktop window over the realtime workers.

With no --source it takes the first camera (with the default microphone when there is one); with
no camera it falls back to the synthetic world, and with no --checkpoint to the demo checkpoint
shipped in fnac/weights, and the window says so. The window's process never imports torch: the
model runs in the inference worker."""

DEMO_DOC = """The live app on whatever this machine has.

With a display it opens the live window (camera and microphone when present, else the synthetic
world and the shipped demo checkpoint). Without one it runs the same multi-process pipeline
headless on the synthetic world for --seconds and writes demo.mp4 (annotated) and summary.json
into --out: fps, capture->result latency percentiles, pointing accuracy (the fraction of sounding
frames whose peak lies in the sounding object's box) and mean box IoU."""


HEADLESS_SECONDS = 20.0  # fnac demo without a display, unless --seconds says otherwise


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("live", help="the live window (PyQt6)", description=LIVE_DOC)
    p.add_argument(
        "--source",
        default=None,
        help="camera index or URL, video file, or 'synthetic' (default: camera 0, else synthetic)",
    )
    p.add_argument(
        "--mic",
        default=None,
        help="microphone paired with a camera: 'mic', 'mic:NAME' or 'mic:INDEX' "
        "(default: the default input when a camera is used)",
    )
    p.add_argument("--checkpoint", default=None, help="default: the shipped demo checkpoint")
    add_engine_flags(p)
    p.add_argument("--save-dir", default="fnac-live", help="snapshots and recordings")
    add_smooth_flag(p)
    add_standby_flag(p)
    p.add_argument(
        "--seconds", type=positive_float, default=None, help="close the window after this long"
    )
    p.add_argument("--screenshot", default=None, help="save the window as PNG when it closes")
    p.set_defaults(func=live_command)

    p = sub.add_parser(
        "demo", help="the live app: a window, or a headless run", description=DEMO_DOC
    )
    p.add_argument(
        "--out", default="demo-output", help="headless: where demo.mp4 and summary.json go"
    )
    p.add_argument(
        "--seconds",
        type=positive_float,
        default=None,
        help=f"how long to run (headless default: {HEADLESS_SECONDS:.0f} s; the window stays "
        "open until closed unless given)",
    )
    p.add_argument("--checkpoint", default=None, help="default: the shipped demo checkpoint")
    add_engine_flags(p)
    add_smooth_flag(p)
    add_standby_flag(p)
    p.add_argument("--headless", action="store_true", help="no window even with a display")
    p.add_argument(
        "--screenshot",
        default=None,
        help="with a display and --seconds: save the window as PNG when it closes",
    )
    p.set_defaults(func=demo_command)


def _window(
    args: argparse.Namespace,
    source: str | None,
    mic: str | None,
    save_dir: str,
    seconds: float | None,
    screenshot: str | None,
) -> int:
    from gui.live import choose_settings, require_display, run_window
    from realtime.pipeline import standby_wanted

    if screenshot and seconds is None:
        raise ValueError("--screenshot is taken when the window closes after --seconds: give both")
    require_display()  # before any camera is probed
    settings = choose_settings(
        source,
        mic,
        checkpoint_path(args.checkpoint),
        shipped=args.checkpoint is None,
        backend=args.backend,
        engine_dir=args.engine,
        save_dir=save_dir,
        standby=standby_wanted(args.standby),
        smooth_s=args.smooth,
    )
    return run_window(settings, seconds, screenshot)


def tune_threads_once(checkpoint: str, backend: str) -> None:
    """The first headless demo on a machine measures OpenMP's wait policy through the live
    pipeline (``realtime.threadpolicy``; what ``fnac bench --tune-threads`` does), so that this
    run and every later live run use the better one; skipped when a verdict is kept or the user
    set ``OMP_WAIT_POLICY``."""
    from fnac.threads import user_set
    from realtime.threadpolicy import TUNE_SECONDS, cached, measure

    if cached() is not None or user_set("OMP_WAIT_POLICY"):
        return
    print(
        f"first run on this machine: measuring OpenMP's thread policy through the live pipeline "
        f"({2 * TUNE_SECONDS:.0f} s, kept for later runs)"
    )
    try:
        print(measure(checkpoint, TUNE_SECONDS, backend)["reason"])
    except Exception as exc:  # the demo goes on with the default policy
        print(f"the thread policy could not be measured ({exc}): the default (PASSIVE) stays")


def live_command(args: argparse.Namespace) -> int:
    return _window(args, args.source, args.mic, args.save_dir, args.seconds, args.screenshot)


def demo_command(args: argparse.Namespace) -> int:
    from gui.live import has_display

    if has_display() and not args.headless:
        live_dir = str(Path(args.out) / "live")
        return _window(args, None, None, live_dir, args.seconds, args.screenshot)
    from realtime.demo import headless_demo
    from realtime.pipeline import LiveConfig, standby_wanted

    checkpoint = checkpoint_path(args.checkpoint)
    out = Path(args.out)
    seconds = HEADLESS_SECONDS if args.seconds is None else args.seconds
    tune_threads_once(checkpoint, args.backend)
    print(
        f"no display: running the live pipeline headless on the synthetic world for "
        f"{seconds:.0f} s ({Path(checkpoint).name}, {args.backend} backend)"
    )
    config = LiveConfig(
        "synthetic",
        checkpoint,
        args.backend,
        engine_dir=args.engine,
        standby=standby_wanted(args.standby),
        smooth_s=args.smooth,
    )
    headless_demo(out, seconds, config)
    print(f"wrote {out / 'demo.mp4'} and {out / 'summary.json'}")
    return 0
