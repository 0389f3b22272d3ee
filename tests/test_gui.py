"""The live window, offscreen, fed by a running pipeline (synthetic world + the shipped demo
checkpoint): frames and heatmaps arrive, the overlay is hottest on the sounding object, the
controls change what is drawn, a killed worker shows and recovers; and ``gui`` never imports
torch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import REPO

pytest.importorskip("PyQt6.QtWidgets", exc_type=ImportError)

from fnac.overlay import colormap_table  # noqa: E402
from fnac.weights import DEMO_CHECKPOINT  # noqa: E402
from realtime.render import Style  # noqa: E402
from realtime.scoring import sounding_box  # noqa: E402

START_MS = 120_000  # spawn, import torch, load and warm up the model on a busy 2-core machine


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    from gui.window import LiveSettings, LiveWindow

    settings = LiveSettings(
        source="synthetic",
        checkpoint=str(DEMO_CHECKPOINT),
        save_dir=str(tmp_path_factory.mktemp("live")),
        note="no camera found: showing the synthetic world",
    )
    win = LiveWindow(settings)
    win.resize(1000, 640)
    win.show()
    yield win
    win.close()


def wait_frames(qtbot, window, n: int, timeout_ms: int = 60_000) -> None:
    """Wait until ``n`` new frames have been drawn."""
    seen = []

    def drawn():
        shown = window.current
        if shown is not None and (not seen or seen[-1] is not shown):
            seen.append(shown)
        return len(seen) > n

    qtbot.waitUntil(drawn, timeout=timeout_ms)


def decode_heat(rgb: np.ndarray) -> np.ndarray:
    """Invert the jet colormap (the overlay at full opacity without fading is pure colormap)."""
    table = colormap_table("jet").astype(np.int32)
    small = rgb[::4, ::4].reshape(-1, 1, 3).astype(np.int32)
    index = ((small - table[None]) ** 2).sum(-1).argmin(1)
    return (index / 255).reshape(rgb[::4, ::4].shape[:2])


def test_gui_imports_no_torch():
    code = (
        "import sys, gui.window, gui.live, gui.commands, gui.feed, gui.strip, fnac.cli\n"
        "fnac.cli.build_parser()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_frames_heatmaps_spectrogram_and_readouts_arrive(qtbot, window):
    qtbot.waitUntil(lambda: window.feed.state == "running", timeout=START_MS)
    wait_frames(qtbot, window, 5)
    assert window.displayed.shape == (480, 640, 3)
    assert window.current.result.raw_map.shape == (7, 7)  # the demo checkpoint's 224 px frame
    assert window.strip.columns is not None and window.strip.columns.shape[0] == 257
    assert window.video.pixmap() is not None and not window.video.pixmap().isNull()
    assert "fps" in window.readout.text() and window.feed.stats.fps > 0
    assert "synthetic world" in window.note.text() and window.note.isVisible()
    assert window.level_meter.value() > -80  # the world is never silent for long
    picker = window.backend_pick  # auto first, and the default
    assert picker.itemText(0) == "auto" and picker.currentText() == "auto"


def overlay_checks(window) -> tuple:
    """The overlay's check boxes, all on when the window opens."""
    return (
        window.fade_check,
        window.clear_check,
        window.legend_check,
        window.truth_check,
        window.box_check,
        window.peak_check,
    )


def plain_colours(window) -> None:
    """Overlay controls under which every pixel is a jet colour: full opacity everywhere, no
    fading, nothing drawn over the heat."""
    window.colormap_pick.setCurrentText("jet")
    window.opacity_slider.setValue(100)
    for check in overlay_checks(window):
        check.setChecked(False)


def default_look(window) -> None:
    """The overlay controls as the window opens."""
    style = Style()
    window.colormap_pick.setCurrentText(style.colormap)
    window.opacity_slider.setValue(int(100 * style.opacity))
    for check in overlay_checks(window):
        check.setChecked(True)
    assert window.style_ == style


def test_the_overlay_is_hottest_on_the_sounding_object(qtbot, window):
    plain_colours(window)
    inside, outside, frames = [], [], set()
    shown = None

    def collect():
        nonlocal shown
        current = window.current
        if current is not None and current is not shown:
            shown = current
            box = sounding_box(current.result.truth)
            if box is not None:
                heat = decode_heat(window.displayed)
                mask = np.zeros(heat.shape, bool)
                x0, y0, x1, y1 = (int(v) // 4 for v in box)
                mask[y0:y1, x0:x1] = True
                inside.append(heat[mask].mean())
                outside.append(heat[~mask].mean())
                frames.add(current.seq)
        return len(frames) >= 30

    qtbot.waitUntil(collect, timeout=120_000)
    default_look(window)
    assert np.mean(inside) > np.mean(outside) + 0.15, (np.mean(inside), np.mean(outside))


def test_controls_change_what_is_drawn(qtbot, window, tmp_path):
    wait_frames(qtbot, window, 1)
    window.set_paused(True)
    shown = window.current
    plain_colours(window)
    window.opacity_slider.setValue(0)
    assert np.array_equal(window.displayed, shown.image)  # nothing over the frame
    window.opacity_slider.setValue(100)
    jet = window.displayed.copy()
    window.colormap_pick.setCurrentText("gray")
    gray = window.displayed
    assert not np.array_equal(jet, gray)
    assert np.array_equal(gray[..., 0], gray[..., 1])  # gray: R == G == B
    qtbot.wait(500)
    assert window.current is shown  # paused: the picture holds while the workers go on
    window.set_paused(False)
    wait_frames(qtbot, window, 2)
    assert window.current is not shown
    default_look(window)


def test_the_default_overlay_shows_the_legend_the_truth_and_the_running_pointing(qtbot, window):
    assert window.colormap_pick.currentText() == "inferno" and window.style_ == Style()
    wait_frames(qtbot, window, 10)
    window.set_paused(True)
    shown = window.current
    with_all = window.displayed.copy()
    window.legend_check.setChecked(False)
    no_legend = window.displayed.copy()
    window.truth_check.setChecked(False)
    no_truth = window.displayed.copy()
    h, w = with_all.shape[:2]
    corner = (slice(0, h // 3), slice(w - 40, w))
    assert not np.array_equal(with_all[corner], no_legend[corner])  # the colour bar
    if sounding_box(shown.result.truth) is not None:  # the dashed outline in its own colour
        green = lambda img: (img[..., 1] > 200) & (img[..., 0] < 120)  # noqa: E731
        assert green(no_legend).sum() > green(no_truth).sum()
    stats = window.feed.stats
    assert stats.score.scored > 0 and stats.readout() in window.readout.text()
    assert f"over all {stats.score.scored}" in stats.readout()
    window.set_paused(False)
    default_look(window)


def test_snapshot_and_recording_write_files(qtbot, window):
    wait_frames(qtbot, window, 1)
    path = window.snapshot()
    picture = cv2.imread(str(path))
    assert picture.shape == (480, 640, 3)
    window.record_button.setChecked(True)
    wait_frames(qtbot, window, 6)
    window.record_button.setChecked(False)
    capture = cv2.VideoCapture(str(window.recording_path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames >= 5
    assert "recording saved" in window.events.toPlainText()


def test_a_killed_worker_shows_in_the_status_and_recovers(qtbot, window):
    wait_frames(qtbot, window, 1)
    killed = window.feed.pipeline.supervisor.processes["inference"].pid
    os.kill(killed, signal.SIGKILL)
    qtbot.waitUntil(lambda: "restarted" in window.status.text(), timeout=30_000)
    assert "inference worker died" in window.events.toPlainText()
    qtbot.waitUntil(lambda: window.feed.stats.restarts >= 1, timeout=5_000)
    assert "restarts 1" in window.readout.text()
    wait_frames(qtbot, window, 3, timeout_ms=START_MS)  # results resume
    assert window.feed.pipeline.supervisor.processes["inference"].pid != killed


def test_a_killed_capture_worker_shows_and_frames_come_back(qtbot, window):
    wait_frames(qtbot, window, 1)
    killed = window.feed.pipeline.supervisor.processes["capture"].pid
    restarts = window.feed.stats.restarts
    os.kill(killed, signal.SIGKILL)
    qtbot.waitUntil(lambda: "capture worker died" in window.events.toPlainText(), timeout=30_000)
    assert window.feed.stats.restarts == restarts + 1
    assert "capture worker died" in window.status.text() and "restarted" in window.status.text()
    wait_frames(qtbot, window, 3, timeout_ms=START_MS)
    assert window.feed.pipeline.supervisor.processes["capture"].pid != killed


def test_a_bad_checkpoint_is_shown_in_the_window(qtbot, window, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    window.checkpoint_edit.setText(str(bad))
    window.apply_button.click()
    qtbot.waitUntil(lambda: window.feed.state == "failed", timeout=START_MS)
    qtbot.waitUntil(lambda: "could not start" in window.status.text(), timeout=5_000)
    assert "bad.pth" in window.status.text()
    window.checkpoint_edit.setText(str(DEMO_CHECKPOINT))  # and back, for the tests after
    window.apply_button.click()
    qtbot.waitUntil(lambda: window.feed.state == "running", timeout=START_MS)


def test_live_without_a_display_is_a_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    result = subprocess.run(
        [sys.executable, "-m", "fnac.cli", "live"],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert result.returncode == 2 and "no display" in result.stderr
    assert "Traceback" not in result.stderr
