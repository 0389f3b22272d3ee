"""Loaders for every published layout, on tiny generated data, broken files included."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from conftest import make_av_root, write_png, write_wav

from fnac.config import AudioConfig, ImageConfig
from train.datasets import (
    AVDataset,
    DatasetError,
    collate_skipping,
    flickr_entries,
    frames_audio_entries,
    open_testset,
    parse_flickr_xml,
    read_ids,
    video_entries,
)

AUDIO = AudioConfig(sample_rate=8000)
IMAGE = ImageConfig(size=64, train_resize=70)


def flickr_xml(boxes) -> str:
    items = "".join(
        f"<object><bbox><name>x</name><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bbox></object>"
        for b in boxes
    )
    return f"<annotation><filename>f</filename>{items}</annotation>"


def test_training_layout_with_id_list_and_missing_files(av_root, tmp_path, caplog):
    (av_root / "audio" / "s003.wav").unlink()
    ids = tmp_path / "ids.txt"
    ids.write_text("s001\ns002\ns003\nghost\n")
    with caplog.at_level(logging.WARNING):
        entries = frames_audio_entries(av_root, read_ids(ids))
    assert [e.id for e in entries] == ["s001", "s002"]
    assert "2 samples skipped" in caplog.text and "s003" in caplog.text
    assert len(frames_audio_entries(av_root)) == 15


def test_read_ids_takes_first_csv_column_and_skips_header(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("video,audio,label\na,b,non-sounding\nc,d,non-sounding\n")
    assert read_ids(path) == ["a", "c"]
    with pytest.raises(DatasetError, match="does not exist"):
        read_ids(tmp_path / "none.txt")


def test_samples_have_published_shapes(av_root):
    ds = AVDataset(frames_audio_entries(av_root), AUDIO, IMAGE)
    sample = ds[0]
    assert sample["frame"].shape == (3, 64, 64)
    assert sample["spec"].shape == (1, 257, AUDIO.n_frames())
    assert sample["id"] == "s000" and torch.isfinite(sample["spec"]).all()
    train = AVDataset(frames_audio_entries(av_root), AUDIO, IMAGE, train=True)
    assert train[0]["frame"].shape == (3, 64, 64)


def test_spectrogram_masks_are_zero_bands_and_can_be_turned_off(av_root):
    entries = frames_audio_entries(av_root)
    clean = AVDataset(entries, AUDIO, IMAGE)[0]["spec"]
    torch.manual_seed(1)
    masked = AVDataset(entries, AUDIO, IMAGE, train=True)[0]["spec"]
    changed = masked != clean
    assert changed.any() and (masked[changed] == 0).all()  # zeroed bands, nothing else
    unmasked = AVDataset(entries, AUDIO, IMAGE, train=True, spec_masks=False)[0]["spec"]
    assert torch.equal(unmasked, clean)


def test_broken_files_are_skipped_and_counted_never_replaced(av_root, caplog):
    (av_root / "frames" / "s001.png").write_bytes(b"not a png")
    (av_root / "audio" / "s002.wav").write_text("text named .wav")
    ds = AVDataset(frames_audio_entries(av_root), AUDIO, IMAGE)
    with caplog.at_level(logging.WARNING):
        batch = collate_skipping([ds[i] for i in range(4)])
    assert batch["skipped"] == 2
    assert batch["id"] == ["s000", "s003"]
    assert "skipping s001" in caplog.text and "skipping s002" in caplog.text


def test_audio_at_another_rate_is_resampled_and_logged(av_root, caplog):
    ds = AVDataset(frames_audio_entries(av_root), AudioConfig(sample_rate=16000), IMAGE)
    with caplog.at_level(logging.INFO):
        sample = ds[0]
    assert sample["spec"].shape == (1, 257, 200)
    assert "resampled to the model's 16000 Hz" in caplog.text


def test_vggss_testset_with_annotations(av_root):
    ts = open_testset(av_root)
    assert ts.kind == "vggss" and len(ts.entries) == 16
    assert ts.entries[0].boxes and len(ts.entries[0].boxes[0]) == 4


def test_flickr_nested_and_flat_layouts(tmp_path, rng):
    boxes = [[10, 20, 100, 120], [12, 22, 98, 118], [0, 0, 50, 50]]
    for layout in ("nested", "flat"):
        root = tmp_path / layout
        for sid in ("101", "102"):
            data = root / "Data" / sid if layout == "nested" else root
            ann = root / "Annotations" if layout == "nested" else root
            ann.mkdir(parents=True, exist_ok=True)
            (ann / f"{sid}.xml").write_text(flickr_xml(boxes))
            write_png(data / f"{sid}.jpg", rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
            write_wav(data / f"{sid}.wav", rng.uniform(-0.5, 0.5, 8000 * 3), 8000)
        entries = flickr_entries(root)
        assert [e.id for e in entries] == ["101", "102"]
        assert entries[0].boxes == boxes
        ts = open_testset(root)
        assert ts.kind == "flickr"


def test_flickr_xml_errors(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<annotation><object><bbox><n/><xmin>a</xmin>")
    with pytest.raises(DatasetError, match="not a readable annotation"):
        parse_flickr_xml(bad)
    bad.write_text(flickr_xml([["x", 1, 2, 3]]))
    with pytest.raises(DatasetError, match="non-numeric"):
        parse_flickr_xml(bad)


def test_silent_pairs(av_root):
    (av_root / "test_plus_silent.csv").write_text(
        "video,audio,label\ns000,s001,non-sounding\ns002,ghost,non-sounding\n"
    )
    ts = open_testset(av_root)
    assert [e.id for e in ts.silent] == ["s000+s001"]
    assert ts.silent[0].image.stem == "s000" and ts.silent[0].audio.stem == "s001"


def test_duet_layout(tmp_path, rng):
    root = make_av_root(tmp_path / "duet", n=2)
    table = []
    for sid in ("s000", "s001"):
        for k in range(2):
            write_wav(root / "sources" / f"{sid}_{k}.wav", rng.uniform(-0.3, 0.3, 24000), 8000)
        table.append(
            {
                "file": sid,
                "sources": [
                    {"class": "a", "bbox": [[0, 0, 0.5, 0.5]]},
                    {"class": "b", "bbox": [[0.5, 0.5, 1, 1]]},
                ],
            }
        )
    (root / "duet.json").write_text(json.dumps(table))
    (root / "test.json").unlink()
    ts = open_testset(root)
    assert ts.kind == "duet" and len(ts.entries) == 2 and len(ts.entries[0].sources) == 2


def write_mp4(path, seconds=2.0, fps=10, rate=16000, audio=True):
    import av

    container = av.open(str(path), "w")
    video = container.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
    if audio:
        track = container.add_stream("aac", rate=rate)
        track.layout = "mono"
    for i in range(int(seconds * fps)):
        img = np.full((48, 64, 3), (i * 10) % 255, np.uint8)
        for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            container.mux(packet)
    if audio:
        tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)
        for k in range(0, tone.size, 1024):
            frame = av.AudioFrame.from_ndarray(
                tone[None, k : k + 1024].astype(np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = rate, k
            for packet in track.encode(frame):
                container.mux(packet)
        for packet in track.encode():
            container.mux(packet)
    for packet in video.encode():
        container.mux(packet)
    container.close()
    return path


def test_video_files(tmp_path, caplog):
    good = write_mp4(tmp_path / "clip.mp4", seconds=4)
    silent = write_mp4(tmp_path / "mute.mp4", audio=False)
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    entries = video_entries([tmp_path])
    assert sorted(e.id for e in entries) == ["broken", "clip", "mute"]
    ds = AVDataset(entries, AudioConfig(sample_rate=16000), IMAGE)
    by_id = {e.id: i for i, e in enumerate(entries)}
    sample = ds[by_id["clip"]]
    assert sample["frame"].shape == (3, 64, 64) and sample["spec"].shape == (1, 257, 200)
    with caplog.at_level(logging.WARNING):
        assert ds[by_id["mute"]] is None
        assert ds[by_id["broken"]] is None
    assert "no audio track" in caplog.text
    assert good.exists() and silent.exists()


def test_unknown_testset_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="cannot tell what test set"):
        open_testset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        open_testset(tmp_path / "missing")
