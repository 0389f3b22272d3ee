"""``fnac live``: the desktop window over the realtime workers.

With no ``--source`` it takes the first camera (with the default microphone when there is one);
with no camera it falls back to the synthetic world, and with no ``--checkpoint`` to the demo
checkpoint shipped in ``fnac/weights``, and the window says so. This process never imports torch:
the model runs in the inference worker.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from realtime.backends import BACKENDS, DEFAULT_BACKEND


def register(sub: argparse._SubParsersAction) -> None:
    from realtime.run import STANDBY_MIN_CPUS

    p = sub.add_parser("live", help="the live window (PyQt6)", description=__doc__)
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
    p.add_argument("--backend", default=DEFAULT_BACKEND, choices=BACKENDS)
    p.add_argument("--save-dir", default="fnac-live", help="snapshots and recordings")
    p.add_argument(
        "--standby",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep a loaded spare inference worker: back in about a second after a crash "
        f"(default: on with {STANDBY_MIN_CPUS} or more CPU cores)",
    )
    p.add_argument("--seconds", type=float, default=None, help="close the window after this long")
    p.add_argument("--screenshot", default=None, help="save the window as PNG when it closes")
    p.set_defaults(func=live_command)


def has_display() -> bool:
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and platform not in ("xcb", "wayland"):
        return True  # offscreen, vnc, ...: Qt needs no display server
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def default_checkpoint(given: str | None) -> str:
    from fnac.weights import DEMO_CHECKPOINT

    path = Path(given) if given else DEMO_CHECKPOINT
    if not path.is_file():
        fix = "check the path" if given else "reinstall fnac or pass --checkpoint"
        raise FileNotFoundError(f"checkpoint {path} not found: {fix}")
    return str(path)


def choose_settings(args: argparse.Namespace):
    """What to open, and a note for the window when it is a fallback."""
    from gui.window import LiveSettings
    from realtime.run import standby_wanted
    from realtime.sources import (
        URL_SCHEMES,
        VIDEO_SUFFIXES,
        SourceError,
        cameras,
        input_devices,
        open_source,
    )

    given = (args.source or "").strip()
    if (
        given
        and not given.lower().startswith(URL_SCHEMES)
        and (Path(given).is_file() or Path(given).suffix.lower() in VIDEO_SUFFIXES)
    ):  # a file: a bad one is one clear line here, not a window of worker restarts
        open_source(given, realtime=False).close()
    try:
        mics = tuple(d["name"] for d in input_devices())
    except SourceError:
        mics = ()
    found = tuple(str(c["index"]) for c in cameras())
    checkpoint = default_checkpoint(args.checkpoint)
    notes = []
    if args.checkpoint is None:
        notes.append("using the demo checkpoint trained on the synthetic world")
    source, mic = args.source, args.mic
    if source is None:
        if found:
            source = found[0]
            mic = mic or ("mic" if mics else None)
            if not mics:
                notes.append("no microphone found: the picture runs without sound")
        else:
            source = "synthetic"
            notes.insert(0, "no camera found: showing the synthetic world")
    return LiveSettings(
        source=source,
        checkpoint=checkpoint,
        backend=args.backend,
        microphone=mic,
        save_dir=args.save_dir,
        note="; ".join(notes),
        cameras=found,
        microphones=mics,
        standby=standby_wanted(args.standby),
    )


def live_command(args: argparse.Namespace) -> int:
    if not has_display():
        raise ValueError(
            "no display: fnac live needs a desktop session (or QT_QPA_PLATFORM=offscreen); "
            "fnac demo and fnac run work headless"
        )
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from gui.window import LiveWindow

    settings = choose_settings(args)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = LiveWindow(settings)
    window.resize(1200, 720)
    window.show()
    if args.seconds is not None:

        def finish() -> None:
            if args.screenshot:
                window.grab().save(args.screenshot)
                print(f"wrote {args.screenshot}")
            window.close()

        QTimer.singleShot(int(1000 * args.seconds), finish)
    app.exec()
    return 0
