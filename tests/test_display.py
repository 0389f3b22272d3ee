"""The window as a user with a display runs it: ``fnac demo`` under a real X server (Xvfb), a
screenshot checked, a clean exit and no process left. Skipped where xvfb-run is not installed
(``make test`` installs it with the other Debian packages)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fnac.overlay import colormap_table

REPO = Path(__file__).resolve().parents[1]
XVFB = shutil.which("xvfb-run")
SCREEN = (1280, 800)

pytestmark = pytest.mark.skipif(XVFB is None, reason="needs xvfb-run (Debian's xvfb package)")


def session_processes(sid: int) -> list[str]:
    """The processes still running in session ``sid`` (the test starts the command in its own);
    exited ones that wait to be reaped (zombies) do not count."""
    listing = subprocess.run(
        ["ps", "-eo", "sid=,pid=,stat=,args="], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split(maxsplit=3) for line in listing.splitlines()]
    return [" ".join(r) for r in rows if r[0] == str(sid) and not r[2].startswith("Z")]


def legend_columns(rgb: np.ndarray, colormap: str = "inferno") -> int:
    """How many pixel columns hold the colour legend: a vertical run of at least 60 pixels whose
    colours are the colormap's, going from near its hot end down towards its cold one."""
    table = colormap_table(colormap).astype(np.int32)
    found = 0
    for column in rgb.transpose(1, 0, 2).astype(np.int32):  # (W, H, 3), one column at a time
        distance = ((column[:, None, :] - table[None]) ** 2).sum(-1)  # (H, 256)
        index = np.where(distance.min(-1) <= 3 * 12**2, distance.argmin(-1), -1)
        run, top, prev = 0, 0, -1
        for value in index:
            if value < 0:
                run, prev = 0, -1
                continue
            if prev < 0 or value > prev + 8:
                run, top = 0, value
            run, prev = run + 1, value
            if run >= 60 and top - value > 150:
                found += 1
                break
    return found


def test_fnac_demo_with_a_display_opens_the_window_that_fits_and_draws_the_map(tmp_path):
    from PIL import Image

    # a checkpoint under a long path: the window must not grow wider than the screen for it
    deep = tmp_path / ("a-folder-with-a-rather-long-name-" * 4) / "checkpoints"
    deep.mkdir(parents=True)
    checkpoint = deep / "demo.pth"
    shutil.copy(REPO / "fnac" / "weights" / "demo.pth", checkpoint)
    shot = tmp_path / "shot.png"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    command = [
        XVFB, "-a", "-s", f"-screen 0 {SCREEN[0]}x{SCREEN[1]}x24",
        sys.executable, "-m", "fnac.cli", "demo", "--seconds", "12",
        "--checkpoint", str(checkpoint), "--screenshot", str(shot), "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=env, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
    assert proc.returncode == 0, output[-3000:]
    assert f"wrote {shot}" in output and "Traceback" not in output
    deadline = time.monotonic() + 5.0  # xvfb-run signals the X server as it leaves
    while session_processes(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session_processes(proc.pid) == []  # the workers and the X server are gone
    picture = np.asarray(Image.open(shot).convert("RGB"))
    height, width = picture.shape[:2]
    assert width <= SCREEN[0] and height <= SCREEN[1], (width, height)
    video = picture[: int(height * 0.7), : int(width * 0.65)]  # the video area's side
    assert len(np.unique(video.reshape(-1, 3), axis=0)) > 2000  # a picture, not a blank area
    assert legend_columns(video[::2, ::1]) >= 3  # the heat's colour legend is drawn over it
