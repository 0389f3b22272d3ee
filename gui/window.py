"""The live window: video with the heatmap, peak and box; meters, readouts, pickers and controls.

A ``QTimer`` at display rate takes the newest frame from the ``Feed`` (which drains the workers
in its own thread), draws it with the current style and shows it; nothing here waits on a
socket or a process. Worker errors, restarts and stalls go to the status line and the event log.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QImage, QPixmap
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from fnac.overlay import COLORMAPS
from gui.feed import STALL_S, Feed, Shown
from gui.strip import SpectrogramStrip
from realtime.backends import BACKENDS, DEFAULT_BACKEND
from realtime.pipeline import SMOOTH_S, LiveConfig
from realtime.render import Style, annotate

NO_MICROPHONE = "none"
RIGHT_PANEL_PX = 360  # the controls' column: long paths are elided in it, never widen it
LEVEL_FLOOR_DB = -80.0  # the level meter's empty end


@dataclass
class LiveSettings:
    source: str  # what the pipeline opens (a camera index or URL, a file, "synthetic")
    checkpoint: str
    backend: str = DEFAULT_BACKEND
    microphone: str | None = None  # "mic" or "mic:NAME"; paired with a camera or URL
    save_dir: str = "fnac-live"  # snapshots and recordings
    note: str = ""  # why these settings (the fallback to the synthetic world, ...)
    cameras: tuple[str, ...] = ()  # camera indices found at start, offered in the picker
    microphones: tuple[str, ...] = ()  # input device names, offered in the picker
    standby: bool = False  # keep a loaded spare inference worker (fast recovery, more memory)
    engine_dir: str | None = None  # the tensorrt backend's folder (fnac export)
    smooth_s: float = SMOOTH_S  # time constant of the map smoothing (0: off)

    def pipeline_source(self) -> str:
        pairs = self.microphone and self.source != "synthetic" and not Path(self.source).is_file()
        return f"{self.source}+{self.microphone}" if pairs else self.source


def elided(text: str, most: int) -> str:
    """``text`` at most ``most`` characters long, its middle replaced by an ellipsis (a path keeps
    its start and its file name)."""
    if len(text) <= most:
        return text
    head = (most - 1) // 2
    return text[:head] + "\u2026" + text[len(text) - (most - 1 - head) :]


def to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB -> a QImage that owns its pixels."""
    rgb = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def with_button(field: QWidget, label: str, slot) -> QHBoxLayout:
    """A field with a small button beside it (browse, open)."""
    button = QPushButton(label)
    button.clicked.connect(slot)
    row = QHBoxLayout()
    row.addWidget(field, stretch=1)
    row.addWidget(button)
    return row


class ImageView(QLabel):
    """Shows an RGB array scaled to the widget (keeping its aspect ratio, or stretched)."""

    def __init__(self, min_size: tuple[int, int], keep_aspect: bool = True) -> None:
        super().__init__()
        self.aspect = (
            Qt.AspectRatioMode.KeepAspectRatio
            if keep_aspect
            else Qt.AspectRatioMode.IgnoreAspectRatio
        )
        self.setMinimumSize(*min_size)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet("background: #111; color: #ccc;")
        self.picture: QImage | None = None

    def show_rgb(self, rgb: np.ndarray) -> None:
        self.picture = to_qimage(rgb)
        self._rescale()

    def _rescale(self) -> None:
        if self.picture is not None:
            pixmap = QPixmap.fromImage(self.picture).scaled(
                self.size(),
                self.aspect,
                Qt.TransformationMode.SmoothTransformation,
            )
            self.setPixmap(pixmap)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._rescale()


class LiveWindow(QMainWindow):
    def __init__(self, settings: LiveSettings, display_hz: float = 30.0) -> None:
        super().__init__()
        self.settings = settings
        self.style_ = Style()
        self.feed: Feed | None = None
        self.current: Shown | None = None  # the frame on screen
        self.displayed: np.ndarray | None = None  # what was drawn for it (RGB)
        self.paused = False
        self.recorder = None  # cv2.VideoWriter while recording
        self.recording_path: Path | None = None
        self.strip = SpectrogramStrip()
        self.setWindowTitle("fnac live: where the sound comes from")
        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(max(1, int(1000 / display_hz)))
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        if settings.note:
            self.log(settings.note)
        self.start_feed()

    # ------------------------------------------------------------------------- layout

    def _build(self) -> None:
        self.video = ImageView((480, 360))
        self.video.setText("starting the workers ...")
        self.spectrogram = ImageView((480, 70), keep_aspect=False)
        self.spectrogram.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.spectrogram.setFixedHeight(80)
        self.note = QLabel(self.settings.note)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: #b36b00;")
        self.note.setVisible(bool(self.settings.note))
        self.status = QLabel("starting")
        self.status.setWordWrap(True)
        self.readout = QLabel("-")
        self.readout.setStyleSheet("font-family: monospace;")
        self.readout.setWordWrap(True)  # a long readout wraps, it never widens the window

        left = QVBoxLayout()
        left.addWidget(self.note)
        left.addWidget(self.video, stretch=1)
        left.addWidget(self.spectrogram)
        left.addWidget(self.readout)
        left.addWidget(self.status)

        right = QVBoxLayout()
        right.addWidget(self._source_box())
        right.addWidget(self._view_box())
        right.addWidget(self._meter_box())
        right.addWidget(self._action_box())
        self.events = QPlainTextEdit()
        self.events.setReadOnly(True)
        self.events.setMaximumBlockCount(200)
        right.addWidget(QLabel("events"))
        right.addWidget(self.events, stretch=1)

        body = QHBoxLayout()
        panel = QWidget()
        panel.setLayout(right)
        panel.setMaximumWidth(RIGHT_PANEL_PX)
        body.addLayout(left, stretch=3)
        body.addWidget(panel, stretch=1)
        root = QWidget()
        root.setLayout(body)
        self.setCentralWidget(root)

    def _source_box(self) -> QGroupBox:
        box = QGroupBox("source")
        form = QFormLayout(box)
        self.source_pick = QComboBox()
        self.source_pick.setEditable(True)  # a URL or a path can be typed in
        # a long path must not widen the window: the box keeps a modest width, the line edit
        # scrolls, and the whole text is in the tooltip
        self.source_pick.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.source_pick.setMinimumContentsLength(12)
        choices = ["synthetic", *self.settings.cameras]
        if self.settings.source not in choices:
            choices.append(self.settings.source)
        self.source_pick.addItems(choices)
        self.source_pick.setCurrentText(self.settings.source)
        form.addRow("picture", with_button(self.source_pick, "file ...", self._choose_file))
        self.mic_pick = QComboBox()
        self.mic_pick.addItems([NO_MICROPHONE, "default", *self.settings.microphones])
        if self.settings.microphone:
            name = self.settings.microphone.partition(":")[2] or "default"
            if self.mic_pick.findText(name) < 0:
                self.mic_pick.addItem(name)
            self.mic_pick.setCurrentText(name)
        form.addRow("microphone", self.mic_pick)
        self.sound_note = QLabel()
        self.sound_note.setWordWrap(True)
        self.sound_note.setStyleSheet("color: #666;")
        form.addRow(self.sound_note)
        self.mic_pick.currentTextChanged.connect(self._describe_sound)
        self.source_pick.currentTextChanged.connect(self._describe_sound)
        self._describe_sound()
        self.checkpoint_edit = QLineEdit(self.settings.checkpoint)
        self.checkpoint_edit.setToolTip(self.settings.checkpoint)
        self.checkpoint_edit.setCursorPosition(0)  # the start of the path, not its last letters
        self.checkpoint_edit.textChanged.connect(self.checkpoint_edit.setToolTip)
        form.addRow("checkpoint", with_button(self.checkpoint_edit, "...", self._choose_checkpoint))
        self.backend_pick = QComboBox()
        self.backend_pick.addItems(BACKENDS)
        self.backend_pick.setCurrentText(self.settings.backend)
        form.addRow("backend", self.backend_pick)
        self.apply_button = QPushButton("start")
        self.apply_button.clicked.connect(self.apply_source)
        form.addRow(self.apply_button)
        return box

    def _describe_sound(self, *_) -> None:
        """Say under the pickers where the sound comes from: the microphone, or the picture
        source's own track (a file, a stream, the synthetic world), or nowhere (a camera)."""
        source = self.source_pick.currentText().strip()
        self.source_pick.setToolTip(source)
        mic = self.mic_pick.currentText()
        if source == "synthetic":  # a file and the world keep their own sound (pipeline_source)
            text = "sound: the synthetic world's own"
        elif Path(source).is_file():
            text = f"sound: the track of {elided(source, 40)}"
        elif mic != NO_MICROPHONE:
            text = f"sound: the microphone ({mic})"
        elif source.isdigit():
            text = "sound: none (a camera has no sound of its own: pick a microphone)"
        else:
            text = f"sound: the track of {elided(source, 40)}"
        self.sound_note.setText(text)

    def fit_screen(self) -> None:
        """Never wider or taller than the screen the window opens on."""
        screen = self.screen()
        if screen is None:
            return
        room = screen.availableGeometry()
        self.setMaximumSize(room.width(), room.height())
        self.resize(min(self.width(), room.width()), min(self.height(), room.height()))

    def _view_box(self) -> QGroupBox:
        box = QGroupBox("overlay")
        form = QFormLayout(box)
        self.colormap_pick = QComboBox()
        self.colormap_pick.addItems(COLORMAPS)
        self.colormap_pick.setCurrentText(self.style_.colormap)
        self.colormap_pick.currentTextChanged.connect(lambda name: self.restyle(colormap=name))
        form.addRow("colormap", self.colormap_pick)
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(100 * self.style_.opacity))
        self.opacity_slider.valueChanged.connect(lambda v: self.restyle(opacity=v / 100))
        form.addRow("opacity", self.opacity_slider)
        self.fade_check = QCheckBox("fade when nothing sounds")
        self.fade_check.setChecked(True)
        self.fade_check.toggled.connect(lambda on: self.restyle(faded=Style.faded if on else 1.0))
        form.addRow(self.fade_check)
        self.clear_check = QCheckBox("clear where cold")
        self.clear_check.setChecked(self.style_.clear_below is not None)
        self.clear_check.toggled.connect(
            lambda on: self.restyle(clear_below=Style.clear_below if on else None)
        )
        self.legend_check = QCheckBox("legend")
        self.legend_check.setChecked(self.style_.legend)
        self.legend_check.toggled.connect(lambda on: self.restyle(legend=on))
        row = QHBoxLayout()
        row.addWidget(self.clear_check)
        row.addWidget(self.legend_check)
        form.addRow(row)
        self.box_check = QCheckBox("box")
        self.box_check.setChecked(True)
        self.box_check.toggled.connect(lambda on: self.restyle(box=on))
        self.peak_check = QCheckBox("peak")
        self.peak_check.setChecked(True)
        self.peak_check.toggled.connect(lambda on: self.restyle(peak=on))
        self.truth_check = QCheckBox("truth")
        self.truth_check.setToolTip(
            "the sounding object's true outline (dashed) and hit / miss, where the source "
            "knows it (the synthetic world, fnac synth's streams)"
        )
        self.truth_check.setChecked(self.style_.truth)
        self.truth_check.toggled.connect(lambda on: self.restyle(truth=on))
        row = QHBoxLayout()
        row.addWidget(self.box_check)
        row.addWidget(self.peak_check)
        row.addWidget(self.truth_check)
        form.addRow(row)
        return box

    def _meter_box(self) -> QGroupBox:
        box = QGroupBox("meters")
        form = QFormLayout(box)
        self.confidence_meter = QProgressBar()
        self.confidence_meter.setRange(0, 100)
        self.confidence_meter.setFormat("%v %")
        form.addRow("sounding", self.confidence_meter)
        self.level_meter = QProgressBar()
        self.level_meter.setRange(int(LEVEL_FLOOR_DB), 0)
        self.level_meter.setFormat("%v dBFS")
        self.level_meter.setValue(int(LEVEL_FLOOR_DB))
        form.addRow("audio level", self.level_meter)
        return box

    def _action_box(self) -> QGroupBox:
        box = QGroupBox("capture")
        row = QHBoxLayout(box)
        self.pause_button = QPushButton("pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.set_paused)
        self.snapshot_button = QPushButton("snapshot")
        self.snapshot_button.clicked.connect(self.snapshot)
        self.record_button = QPushButton("record")
        self.record_button.setCheckable(True)
        self.record_button.toggled.connect(self.set_recording)
        for button in (self.pause_button, self.snapshot_button, self.record_button):
            row.addWidget(button)
        return box

    # ------------------------------------------------------------------------- actions

    def log(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.events.appendPlainText(f"{stamp}  {text}")

    def start_feed(self) -> None:
        if self.feed is not None:
            self.feed.stop(wait=False)  # the old workers close in the background
        s = self.settings
        config = LiveConfig(
            s.pipeline_source(),
            s.checkpoint,
            s.backend,
            s.engine_dir,
            standby=s.standby,
            smooth_s=s.smooth_s,
        )
        self.feed = Feed(config).start()
        self.current = None
        self.video.setText(f"starting {s.pipeline_source()} ...")

    def apply_source(self) -> None:
        """Restart the workers with what the pickers say."""
        mic = self.mic_pick.currentText()
        microphone = None if mic == NO_MICROPHONE else ("mic" if mic == "default" else f"mic:{mic}")
        self.settings = replace(
            self.settings,
            source=self.source_pick.currentText().strip(),
            microphone=microphone,
            checkpoint=self.checkpoint_edit.text().strip(),
            backend=self.backend_pick.currentText(),
            note="",
        )
        self.note.setVisible(False)
        self.start_feed()

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "video file with an audio track", "", "Videos (*.mp4 *.mkv *.mov *.webm *.avi)"
        )
        if path:
            self.source_pick.setCurrentText(path)

    def _choose_checkpoint(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "FNAC checkpoint", "", "Checkpoints (*.pth)")
        if path:
            self.checkpoint_edit.setText(path)

    def restyle(self, **changes) -> None:
        self.style_ = replace(self.style_, **changes)
        if self.current is not None:
            self._draw(self.current)  # paused or not, the change shows at once

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.pause_button.setText("resume" if paused else "pause")

    def _save_path(self, suffix: str) -> Path:
        folder = Path(self.settings.save_dir)
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"fnac-{time.strftime('%Y%m%d-%H%M%S')}"
        path, n = folder / f"{stem}{suffix}", 1
        while path.exists():  # two snapshots in one second
            path, n = folder / f"{stem}-{n}{suffix}", n + 1
        return path

    def snapshot(self) -> Path | None:
        if self.displayed is None:
            self.log("snapshot: no frame yet")
            return None
        path = self._save_path(".png")
        if not to_qimage(self.displayed).save(str(path)):
            self.log(f"snapshot: could not write {path}")
            return None
        self.log(f"snapshot saved: {path}")
        return path

    def set_recording(self, on: bool) -> None:
        if on:
            self.recording_path = self._save_path(".mp4")
            self.log(f"recording to {self.recording_path}")
            self.record_button.setText("stop recording")
        else:
            if self.recorder is not None:
                self.recorder.release()
                self.log(f"recording saved: {self.recording_path}")
            self.recorder = None
            self.record_button.setText("record")

    def _record(self, rgb: np.ndarray) -> None:
        import cv2

        if self.recorder is None:
            h, w = rgb.shape[:2]
            self.recorder = cv2.VideoWriter(
                str(self.recording_path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (w, h)
            )
        self.recorder.write(np.ascontiguousarray(rgb[:, :, ::-1]))

    # ------------------------------------------------------------------------- display

    def _draw(self, shown: Shown) -> None:
        self.displayed = annotate(shown.image, shown.result, self.style_)
        self.video.show_rgb(self.displayed)

    def refresh(self) -> None:
        """One display tick: news, the newest frame, meters and readouts. Never blocks."""
        feed = self.feed
        if feed is None:
            return
        for event in feed.events():
            self.log(event)
            self.status.setText(event)
            self.status.setStyleSheet(
                "color: #c0392b;" if ("error" in event or "restarted" in event) else ""
            )
        for column in feed.spectra():
            self.strip.push(column)
        self.spectrogram.show_rgb(self.strip.image())
        shown = feed.take()
        if shown is not None and not self.paused:
            self.current = shown
            self._draw(shown)
            if self.record_button.isChecked():
                self._record(self.displayed)
            self.confidence_meter.setValue(int(round(100 * shown.result.confidence)))
            level = max(LEVEL_FLOOR_DB, min(0.0, shown.result.level_db))
            self.level_meter.setValue(int(level))
        self._readouts(feed)

    def _readouts(self, feed: Feed) -> None:
        stats = feed.stats
        text = (
            f"{stats.fps:5.1f} fps   latency p50 {stats.latency_ms(50):5.0f} ms  "
            f"p95 {stats.latency_ms(95):5.0f} ms   dropped {stats.dropped}   "
            f"restarts {stats.restarts}   {feed.state}"
        )
        pointing = stats.readout()
        if pointing:
            text += f"   {pointing}"
        if feed.engine:  # why auto chose it is one long line: in the event log and the tooltip
            engine, _, why = feed.engine.partition("; auto: ")
            text += f"   {engine} (auto)" if why else f"   {engine}"
            self.readout.setToolTip(f"auto: {why}" if why else "")
        if self.paused:
            text += "   PAUSED"
        stalled = feed.stalled_for()
        if stalled > STALL_S:
            text += f"   no result for {stalled:.0f} s"
        self.readout.setText(text)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.timer.stop()
        if self.recorder is not None:
            self.set_recording(False)
        if self.feed is not None:
            self.feed.stop(wait=True)
        super().closeEvent(event)
