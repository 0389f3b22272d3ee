"""The live window's start-up: what to open (the first camera with the default microphone, else the
synthetic world; the shipped demo checkpoint when none is given), and the Qt application around the
window. This process never imports torch: the model runs in the inference worker."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from gui.window import LiveSettings


def has_display() -> bool:
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and platform not in ("xcb", "wayland"):
        return True  # offscreen, vnc, ...: Qt needs no display server
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def choose_settings(
    source: str | None,
    microphone: str | None,
    checkpoint: str,
    shipped: bool,
    **rest,
) -> LiveSettings:
    """The window's settings: the given source, or the first camera (with the default
    microphone), or the synthetic world when there is no camera; a note for the window says
    which fallback was taken. ``shipped``: the checkpoint is the demo one, not the user's.
    ``rest``: the other ``LiveSettings`` fields (backend, engine_dir, save_dir, standby).
    A file given as the source is opened here first: a bad one is one clear line, not a window
    of worker restarts."""
    from realtime.sources import (
        URL_SCHEMES,
        VIDEO_SUFFIXES,
        SourceError,
        cameras,
        input_devices,
        open_source,
    )

    given = (source or "").strip()
    if (
        given
        and not given.lower().startswith(URL_SCHEMES)
        and (Path(given).is_file() or Path(given).suffix.lower() in VIDEO_SUFFIXES)
    ):
        open_source(given, realtime=False).close()

    try:
        mics = tuple(d["name"] for d in input_devices())
    except SourceError:
        mics = ()
    found = tuple(str(c["index"]) for c in cameras())
    notes = []
    if shipped:
        notes.append("using the demo checkpoint trained on the synthetic world")
    if source is None:
        if found:
            source = found[0]
            microphone = microphone or ("mic" if mics else None)
            if not mics:
                notes.append("no microphone found: the picture runs without sound")
        else:
            source = "synthetic"
            notes.insert(0, "no camera found: showing the synthetic world")
    return LiveSettings(
        source=source,
        checkpoint=checkpoint,
        microphone=microphone,
        note="; ".join(notes),
        cameras=found,
        microphones=mics,
        **rest,
    )


def require_display() -> None:
    if not has_display():
        raise ValueError(
            "no display: fnac live needs a desktop session (or QT_QPA_PLATFORM=offscreen); "
            "fnac demo and fnac run work headless"
        )


def run_window(settings: LiveSettings, seconds: float | None, screenshot: str | None) -> int:
    """Open the window over ``settings`` until it is closed (or ``seconds`` pass, then save
    ``screenshot``)."""
    require_display()
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    from gui.window import LiveWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = LiveWindow(settings)
    window.resize(1200, 720)
    window.fit_screen()
    window.show()
    if seconds is not None:

        def finish() -> None:
            if screenshot:
                window.grab().save(screenshot)
                print(f"wrote {screenshot}")
            window.close()

        QTimer.singleShot(int(1000 * seconds), finish)
    app.exec()
    return 0
