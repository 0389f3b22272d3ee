"""``fnac localize``: one picture and one sound, any format the live sources read, drawn as
``fnac run --out`` draws a frame, its figures in ``--json PATH``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import mux_pictures, mux_sound, write_png, write_wav
from PIL import Image

from fnac.checkpoint import load_checkpoint, save_calibrated, save_checkpoint
from fnac.cli import main
from fnac.config import AudioConfig
from fnac.model import FNAC, ModelConfig

RATE = 16000
SECONDS = 4.0


def tone(pitch: float, rate: int = RATE, seconds: float = SECONDS) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.4 * np.sin(2 * np.pi * pitch * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))) / 1.5


def write_audio(path: Path, wave: np.ndarray, codec: str, rate: int) -> Path:
    """``wave`` encoded by FFmpeg (PyAV) with ``codec``, as a user's file would be."""
    import av

    with av.open(str(path), "w") as out:
        track = out.add_stream(codec, rate=rate)
        track.layout = "mono"
        mux_sound(out, track, wave, fmt="flt", block=960)
    return path


def write_video(path: Path, picture: np.ndarray, wave: np.ndarray, fps: int = 10) -> Path:
    """An mp4 showing ``picture`` throughout, with ``wave`` (at RATE) as its AAC track."""
    import av

    frames = int(round(wave.size / RATE * fps))
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = picture.shape[1], picture.shape[0], "yuv420p"
        track = out.add_stream("aac", rate=RATE)
        track.layout = "mono"
        mux_pictures(out, video, [picture] * frames)
        mux_sound(out, track, wave)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("localize")
    torch.manual_seed(0)
    save_checkpoint(root / "model.pth", FNAC(ModelConfig(dim=16)), AudioConfig(sample_rate=RATE))
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    picture[30:70, 40:90] = (230, 60, 40)
    write_png(root / "picture.png", picture)
    write_wav(root / "low.wav", tone(330), RATE)
    write_wav(root / "high.wav", tone(2500), RATE)
    write_wav(root / "silence.wav", np.zeros(int(RATE * SECONDS)), RATE)
    write_audio(root / "low.flac", tone(330), "flac", RATE)
    write_audio(root / "low.ogg", tone(330, 48000), "libopus", 48000)
    write_audio(root / "low.mp3", tone(330, 44100), "libmp3lame", 44100)
    write_video(root / "low.mp4", picture, tone(330))
    return root


def localize(files: Path, *args: str, checkpoint: str = "model.pth") -> dict:
    out = files / f"{abs(hash(args))}.json"
    code = main(["localize", "--checkpoint", str(files / checkpoint), *args, "--json", str(out)])
    assert code == 0
    return json.loads(out.read_text())


def distance(a: dict, b: dict) -> float:
    """The largest difference of two maps, as a share of the first's range."""
    x, y = np.asarray(a["map"]), np.asarray(b["map"])
    return float(np.abs(x - y).max() / (x.max() - x.min()))


def test_every_sound_format_run_reads_gives_the_wav_s_map(files):
    picture = str(files / "picture.png")
    wav = localize(files, "--image", picture, "--audio", str(files / "low.wav"))
    other = localize(files, "--image", picture, "--audio", str(files / "high.wav"))
    apart = distance(wav, other)  # what another sound changes: the maps do depend on it
    assert apart > 0.005
    for name in ("low.flac", "low.ogg", "low.mp3", "low.mp4"):
        found = localize(files, "--image", picture, "--audio", str(files / name))
        assert distance(wav, found) < apart / 3, name  # the same sound, through a codec
        assert found["picture"] == {"width": 128, "height": 96}
    # a video alone: its frame and the 3 s of its own track around that frame (at 2 s of 4: the
    # same 3 s as the centred window of the whole WAV)
    video = localize(files, "--image", str(files / "low.mp4"), "--at", "2.0")
    assert video["frame_time"] == pytest.approx(2.0, abs=0.11)
    frame_and_wav = ["--image", str(files / "low.mp4"), "--at", "2.0", "--audio"]
    assert distance(localize(files, *frame_and_wav, str(files / "low.wav")), video) < apart / 3


def test_the_json_holds_the_live_app_s_reading(files):
    found = localize(
        files, "--image", str(files / "picture.png"), "--audio", str(files / "low.wav")
    )
    assert np.asarray(found["map"]).shape == (7, 7)
    x0, y0, x1, y1 = found["box"]
    assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 96
    assert x0 <= found["peak"][0] < x1 and y0 <= found["peak"][1] < y1
    assert 0.0 <= found["confidence"] <= 1.0 and isinstance(found["sounding"], bool)
    silent = localize(
        files, "--image", str(files / "picture.png"), "--audio", str(files / "silence.wav")
    )
    assert silent["confidence"] == 0.0 and silent["sounding"] is False  # nothing heard
    assert silent["level_db"] <= -99


def test_the_overlay_is_run_s_with_peak_box_and_confidence(files, tmp_path):
    """A checkpoint calibrated so that the tone counts as sounding: the PNG is what the annotated
    video of ``fnac run`` draws for that frame, box and peak included; with silence the same
    picture is drawn faded, without box."""
    from realtime.recording import drawn
    from realtime.render import Style
    from realtime.still import StillResult

    model = load_checkpoint(files / "model.pth")
    save_calibrated(tmp_path / "eager.pth", model, -1.0, "test: everything sounds")
    picture = np.asarray(Image.open(files / "picture.png").convert("RGB"))
    shown = {}
    for sound in ("low.wav", "silence.wav"):
        png = tmp_path / f"{sound}.png"
        found = localize(
            files,
            "--image", str(files / "picture.png"), "--audio", str(files / sound),
            "--out", str(png), checkpoint=str(tmp_path / "eager.pth"),
        )  # fmt: skip
        result = StillResult(
            raw_map=np.asarray(found["map"], np.float32),
            peak=tuple(found["peak"]),
            box=tuple(found["box"]),
            confidence=found["confidence"],
            sounding=found["sounding"],
            score=found["score"],
            level_db=found["level_db"],
        )
        expected = drawn(picture.copy(), result, Style())
        shown[sound] = np.asarray(Image.open(png).convert("RGB"))
        difference = np.abs(shown[sound].astype(int) - expected.astype(int))
        assert difference.max() <= 2, sound  # the map's JSON is rounded to 5 decimals
        assert found["sounding"] is (sound == "low.wav")
    x0, y0, x1, y1 = localize(
        files, "--image", str(files / "picture.png"), "--audio", str(files / "low.wav"),
        checkpoint=str(tmp_path / "eager.pth"),
    )["box"]  # fmt: skip
    edge = shown["low.wav"][y0, x0:x1]
    assert (edge.min(axis=1) >= 230).mean() > 0.5  # the white box's top edge
    assert (shown["silence.wav"][y0, x0:x1].min(axis=1) >= 230).mean() < 0.5  # no box


PAIR = ["--image", "{root}/picture.png", "--audio", "{root}/low.wav"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--image", "{root}/picture.png", "--at", "1"], "is an image: leave --at out"),
        (["--image", "{root}/picture.png"], "is an image, which has no sound: give --audio"),
        (["--image", "{root}/picture.png", "--audio", "{root}/picture.png"], "no audio track"),
        ([*PAIR, "--out", "{root}/low.wav/x.png"], "low.wav is a file, not a folder"),
        ([*PAIR, "--json", "{root}"], "is a folder"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_before_the_model_loads(files, capsys, args, message):
    missing = str(files / "missing.pth")  # never read: the complaint comes first
    code = main(["localize", "--checkpoint", missing, *[a.format(root=files) for a in args]])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fnac: error:") and message in err[0], err
