"""Every entry point that reads audio or images refuses content it cannot use (no samples, NaN or
inf samples, an empty or truncated image, a video without frames, data where no sample loads)
with one line that names the file, before the model is loaded where it can be: never a traceback,
never a result computed from NaN. Run the way a user runs them: ``fnac.cli.main`` returning 2
with ``fnac: error: ...`` on stderr, or the library function raising."""

from __future__ import annotations

import json
import logging
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_av_root, write_png, write_wav
from scipy.io import wavfile

from fnac.audio import AudioContentError, center_clip, clip_spectrogram, load_wav
from fnac.cli import main
from fnac.config import AudioConfig, ImageConfig
from fnac.image import load_image
from fnac.model import FNAC, ModelConfig
from fnac.predict import localize_files
from realtime.sources import SourceError, open_source
from train.datasets import AVDataset, DatasetError, frames_audio_entries, open_testset
from train.media import MediaError, load_audio, video_frame

RATE = 16000


def float_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """A float32 WAV as soundfile or scipy writes it: NaN and inf go in as they are."""
    wavfile.write(path, rate, np.asarray(samples, np.float32))
    return path


def write_mkv(path: Path, frames: int = 10, audio: str | None = "tone", seconds: float = 2.0):
    """A 64x48 mkv at 10 fps with a float32 PCM track: ``tone``, ``nan``, ``inf``, ``empty`` (a
    track without samples) or None (no track); ``frames=0``: a video track without frames."""
    import av

    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        track = out.add_stream("pcm_f32le", rate=RATE) if audio else None
        if track is not None:
            track.layout = "mono"
        for i in range(frames):
            image = np.full((48, 64, 3), 20 * i, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if track is not None and audio != "empty":
            n = int(seconds * RATE)
            rng = np.random.default_rng(7)
            wave = {
                "tone": 0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / RATE),
                "nan": np.full(n, np.nan),
                "inf": np.full(n, np.inf),
                "noise": 0.1 * rng.standard_normal(n),
            }[audio].astype(np.float32)
            for k in range(0, n, 1024):
                frame = av.AudioFrame.from_ndarray(wave[None, k : k + 1024], "flt", "mono")
                frame.sample_rate, frame.pts, frame.time_base = RATE, k, Fraction(1, RATE)
                for packet in track.encode(frame):
                    out.mux(packet)
        if track is not None:
            for packet in track.encode():
                out.mux(packet)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """One good image and WAV, a checkpoint, and every kind of bad audio and image file."""
    from fnac.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    save_checkpoint(root / "model.pth", FNAC(ModelConfig(dim=16)), AudioConfig(sample_rate=RATE))
    write_png(root / "frame.png", rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    write_wav(root / "clip.wav", rng.uniform(-0.5, 0.5, RATE * 3), RATE)
    float_wav(root / "empty.wav", np.zeros(0))
    float_wav(root / "nan.wav", np.full(RATE * 3, np.nan))
    some = rng.uniform(-0.5, 0.5, RATE * 3)
    some[RATE] = np.nan
    float_wav(root / "one-nan.wav", some)
    float_wav(root / "inf.wav", np.full(RATE * 3, np.inf))
    float_wav(root / "minus-inf.wav", np.where(np.arange(RATE * 3) % 2, 0.1, -np.inf))
    (root / "zero.png").write_bytes(b"")
    png = (root / "frame.png").read_bytes()
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    return root


BAD_AUDIO = [
    ("empty.wav", "holds no audio samples"),
    ("nan.wav", "holds NaN or inf samples (48000 of 48000"),
    ("one-nan.wav", "holds NaN or inf samples (1 of 48000, the first at sample 16000)"),
    ("inf.wav", "holds NaN or inf samples (48000 of 48000"),
    ("minus-inf.wav", "holds NaN or inf samples (24000 of 48000, the first at sample 0)"),
]
BAD_IMAGES = [
    ("zero.png", "zero.png is empty (0 bytes)"),
    ("truncated.png", "truncated.png is not a readable image (image file is truncated)"),
]


def one_error_line(capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("fnac: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- fnac localize ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, message", BAD_AUDIO)
def test_localize_refuses_bad_audio_before_loading_the_model(files, capsys, name, message):
    # the checkpoint does not exist: the audio must be the complaint, so it was read first
    args = ["localize", "--checkpoint", str(files / "missing.pth"), "--image"]
    code = main([*args, str(files / "frame.png"), "--audio", str(files / name)])
    assert code == 2
    one_error_line(capsys, str(files / name), message)


@pytest.mark.parametrize("name, message", BAD_IMAGES)
def test_localize_refuses_bad_images_before_loading_the_model(files, capsys, name, message):
    args = ["localize", "--checkpoint", str(files / "missing.pth"), "--image", str(files / name)]
    assert main([*args, "--audio", str(files / "clip.wav")]) == 2
    line = one_error_line(capsys, str(files / name), message)
    assert "JPEG or PNG" in line  # the fix


@pytest.mark.parametrize("name", ["nan.wav", "inf.wav"])
def test_localize_gives_no_result_for_non_finite_audio(files, capsys, name):
    """The review's finding: a WAV of NaN gave 'peak at x=0, y=0 ... raw map max nan' and one of
    inf a plausible map (the clip rule's clamp made it full scale), both with exit code 0."""
    args = ["localize", "--checkpoint", str(files / "model.pth"), "--json", str(files / "j")]
    code = main([*args, "--image", str(files / "frame.png"), "--audio", str(files / name)])
    assert code == 2
    assert capsys.readouterr().out == "" and not (files / "j").exists()  # no map, no peak


def test_localize_files_refuses_non_finite_audio(files):
    model = FNAC(ModelConfig(dim=16))
    raw, _ = localize_files(model, files / "frame.png", files / "clip.wav")
    assert np.isfinite(raw).all()
    for name, message in BAD_AUDIO:
        with pytest.raises(AudioContentError, match=re.escape(message)):
            localize_files(model, files / "frame.png", files / name)


# -- the library functions every entry point reads through ------------------------------------


def test_wav_and_audio_loaders_refuse_empty_and_non_finite_files(files):
    for name, message in BAD_AUDIO:
        pattern = re.escape(message)
        with pytest.raises(AudioContentError, match=pattern):
            load_wav(files / name)
        with pytest.raises(AudioContentError, match=pattern):  # not retried through FFmpeg
            load_audio(files / name)
    (files / "zero.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="zero.wav is empty"):
        load_wav(files / "zero.wav")


def test_the_clip_rule_refuses_non_finite_samples_before_its_clamp():
    wave = np.full((1, RATE * 3), np.inf, np.float32)
    with pytest.raises(ValueError, match="NaN or inf"):
        center_clip(wave, RATE)
    with pytest.raises(ValueError, match="NaN or inf"):
        clip_spectrogram(wave, RATE, AudioConfig(sample_rate=RATE))


def test_image_loader_refuses_empty_and_truncated_files(files):
    for name, message in BAD_IMAGES:
        with pytest.raises(ValueError, match=re.escape(message)):
            load_image(files / name)


def test_video_tracks_without_frames_or_usable_sound(tmp_path):
    with pytest.raises(MediaError, match="no.mkv: its video track holds no frame"):
        video_frame(write_mkv(tmp_path / "no.mkv", frames=0))
    with pytest.raises(AudioContentError, match="nan.mkv's audio track holds NaN or inf"):
        load_audio(write_mkv(tmp_path / "nan.mkv", audio="nan"))
    with pytest.raises(AudioContentError, match="empty.mkv's audio track holds no audio samples"):
        load_audio(write_mkv(tmp_path / "empty.mkv", audio="empty"))
    audio, rate = load_audio(write_mkv(tmp_path / "good.mkv"))
    assert rate == RATE and audio.shape == (1, 2 * RATE) and np.isfinite(audio).all()


# -- fnac run, fnac live, fnac capture: sources -----------------------------------------------


BAD_VIDEOS = [
    ({"frames": 0}, "holds no video frame that decodes"),
    ({"audio": "nan"}, "its audio track holds only NaN or inf samples (32000)"),
    ({"audio": "inf"}, "its audio track holds only NaN or inf samples (32000)"),
    ({"audio": "empty"}, "its audio track holds no samples"),
]


@pytest.mark.parametrize("options, message", BAD_VIDEOS)
def test_a_file_source_without_frames_or_usable_sound_is_refused_when_opened(
    tmp_path, options, message
):
    path = write_mkv(tmp_path / "bad.mkv", **options)
    with pytest.raises(SourceError, match=re.escape(message)):
        open_source(str(path), realtime=False)


def test_a_file_source_with_a_sound_track_or_none_still_opens(tmp_path):
    for options in ({}, {"audio": None}, {"audio": "noise"}):
        with open_source(str(write_mkv(tmp_path / "ok.mkv", **options)), realtime=False) as src:
            assert sum(p.__class__.__name__ == "FramePacket" for p in src) == 10


@pytest.mark.parametrize("options, message", BAD_VIDEOS[:2])
def test_run_refuses_a_bad_video_before_any_worker_starts(
    files, tmp_path, capsys, options, message
):
    path = write_mkv(tmp_path / "bad.mkv", **options)
    args = ["run", "--checkpoint", str(files / "model.pth"), "--source", str(path), "--fast"]
    assert main([*args, "--jsonl", str(tmp_path / "out.jsonl")]) == 2
    one_error_line(capsys, str(path), message)
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("options, message", BAD_VIDEOS[:2])
def test_live_refuses_a_bad_video_before_the_window_opens(
    files, tmp_path, capsys, monkeypatch, options, message
):
    pytest.importorskip("PyQt6")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    path = write_mkv(tmp_path / "bad.mkv", **options)
    args = ["live", "--checkpoint", str(files / "model.pth"), "--source", str(path)]
    assert main([*args, "--seconds", "1", "--save-dir", str(tmp_path / "saved")]) == 2
    one_error_line(capsys, str(path), message)


# -- fnac train and fnac eval: datasets --------------------------------------------------------


def test_train_refuses_a_folder_whose_only_clip_is_bad(tmp_path, capsys):
    folder = tmp_path / "videos"
    folder.mkdir()
    write_mkv(folder / "clip.mkv", audio="nan")
    out = tmp_path / "run"
    args = ["train", "--data", str(folder), "--out", str(out), "--batch-size", "2"]
    assert main([*args, "--init", "random", "--workers", "0", "--no-tensorboard"]) == 2
    one_error_line(capsys, f"training data {folder}: none of its 1 samples can be loaded", "NaN")
    assert not out.exists()  # refused before the model was built or anything written


def test_train_refuses_frames_and_audio_of_which_none_loads(tmp_path, capsys):
    """It used to train on them: 'epoch 1: loss nan', and a best.pth of NaN weights."""
    root = make_av_root(tmp_path / "data", n=4, rate=RATE)
    for wav in (root / "audio").glob("*.wav"):
        float_wav(wav, np.full(RATE * 3, np.nan))
    out = tmp_path / "run"
    args = ["train", "--data", str(root), "--out", str(out), "--epochs", "1", "--batch-size", "2"]
    tiny = ["--image-size", "64", "--dim", "16", "--init", "random", "--workers", "0"]
    assert main([*args, *tiny, "--no-tensorboard", "--no-progress"]) == 2
    one_error_line(capsys, "none of its 4 samples can be loaded", "fix or remove")
    assert not out.exists()


def test_a_bad_sample_is_skipped_and_counted_never_scored(files, tmp_path, capsys, caplog):
    root = make_av_root(tmp_path / "test", n=4, rate=RATE)
    float_wav(root / "audio" / "s001.wav", np.full(RATE * 3, np.nan))
    (root / "frames" / "s002.png").write_bytes(b"")
    report = tmp_path / "report.json"
    args = ["eval", "--checkpoint", str(files / "model.pth"), "--data", str(root)]
    with caplog.at_level(logging.WARNING):
        assert main([*args, "--json", str(report), "--batch-size", "4"]) == 0
    result = json.loads(report.read_text())
    assert (result["samples"], result["skipped"]) == (2, 2)
    assert [r["id"] for r in result["per_sample"]] == ["s000", "s003"]
    assert np.isfinite(result["results"]["bicubic"]["av"]["mean_ciou"])
    assert "skipping s001" in caplog.text and "skipping s002" in caplog.text


def test_eval_refuses_a_test_set_of_which_no_sample_loads(files, tmp_path, capsys):
    root = make_av_root(tmp_path / "test", n=3, rate=RATE)
    for wav in (root / "audio").glob("*.wav"):
        float_wav(wav, np.zeros(0))
    args = ["eval", "--checkpoint", str(files / "model.pth"), "--data", str(root)]
    assert main(args) == 2
    one_error_line(capsys, f"test set {root}: none of its 3 samples", "holds no audio samples")


def test_datasets_skip_bad_content_and_refuse_an_index_of_nothing_usable(files, tmp_path, caplog):
    root = make_av_root(tmp_path / "test", n=3, rate=RATE)
    float_wav(root / "audio" / "s000.wav", np.full(RATE * 3, np.inf))
    dataset = AVDataset(frames_audio_entries(root), AudioConfig(sample_rate=RATE), ImageConfig())
    with caplog.at_level(logging.WARNING):
        assert dataset[0] is None  # skipped, never replaced by another sample
    assert "skipping s000" in caplog.text and "NaN or inf" in caplog.text
    assert torch.isfinite(dataset[1]["spec"]).all()
    assert len(open_testset(root).entries) == 3  # one bad sample: the others are used
    for wav in (root / "audio").glob("*.wav"):
        float_wav(wav, np.full(RATE * 3, np.nan))
    with pytest.raises(DatasetError, match="none of its 3 samples can be loaded"):
        open_testset(root)
