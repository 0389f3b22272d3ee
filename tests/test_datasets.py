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
    duet_entries,
    flickr_entries,
    frames_audio_entries,
    open_testset,
    parse_flickr_xml,
    read_ids,
    vggss_entries,
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


def make_flickr_root(root, rng, boxes, ids=("101", "102"), nested=True):
    for sid in ids:
        data = root / "Data" / sid if nested else root
        ann = root / "Annotations" if nested else root
        ann.mkdir(parents=True, exist_ok=True)
        (ann / f"{sid}.xml").write_text(flickr_xml(boxes))
        write_png(data / f"{sid}.jpg", rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
        write_wav(data / f"{sid}.wav", rng.uniform(-0.5, 0.5, 8000 * 3), 8000)
    return root


def test_flickr_nested_and_flat_layouts(tmp_path, rng):
    boxes = [[10, 20, 100, 120], [12, 22, 98, 118], [0, 0, 50, 50]]
    for layout in ("nested", "flat"):
        root = make_flickr_root(tmp_path / layout, rng, boxes, nested=layout == "nested")
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


@pytest.mark.parametrize(
    "text, problem",
    [
        pytest.param(flickr_xml([["1e999", 1, 2, 3]]), "non-finite", id="1e999"),  # OverflowError
        pytest.param(flickr_xml([[0, "-inf", 2, 3]]), "non-finite", id="-inf"),
        pytest.param(flickr_xml([[0, 1, "nan", 3]]), "non-finite", id="nan"),
        pytest.param(
            '<?xml version="1.0" encoding="nope"?><annotation/>', "not a readable", id="encoding"
        ),  # was an uncaught LookupError
        pytest.param(
            "<annotation><object><bbox><n/><x>1</x><y>2</y></bbox></object></annotation>",
            "2 coordinates, not 4",
            id="two-coordinates",
        ),
    ],
)
def test_flickr_xml_malformed_coordinates_are_one_dataset_error(tmp_path, text, problem):
    path = tmp_path / "bad.xml"
    path.write_text(text)
    with pytest.raises(DatasetError, match=problem):
        parse_flickr_xml(path)


def test_flickr_malformed_annotation_skips_that_sample_only(tmp_path, rng, caplog):
    root = make_flickr_root(tmp_path / "f", rng, [[10, 20, 100, 120]], ids=("101", "102", "103"))
    (root / "Annotations" / "102.xml").write_text(flickr_xml([["1e999", 1, 2, 3]]))
    with caplog.at_level(logging.WARNING):
        entries = flickr_entries(root)
    assert [e.id for e in entries] == ["101", "103"]
    assert "1 samples skipped, annotations malformed" in caplog.text
    assert "102" in caplog.text and "non-finite" in caplog.text
    for sid in ("101", "103"):
        (root / "Annotations" / f"{sid}.xml").write_text("<annotation><object>")
    with pytest.raises(
        DatasetError, match="none of the 3 annotations is usable.*101.xml is not a readable"
    ):
        open_testset(root)


def write_table(path, table):
    path.write_text(json.dumps(table))  # NaN / Infinity are written as JSON's extension allows
    return path


def test_vggss_boxes_are_floats_and_the_class_is_kept(av_root):
    entries = vggss_entries(av_root, av_root / "test.json")
    assert all(isinstance(v, float) for e in entries for b in e.boxes for v in b)
    assert entries[0].klass == "red"


MALFORMED_BOXES = [
    pytest.param(5, "is not a list of boxes", id="bbox-int"),  # was TypeError
    pytest.param([5], "is not a list", id="box-int"),  # was TypeError
    pytest.param(["x", 1, 2, 3], "is not a list", id="flat-box"),  # was ValueError
    pytest.param([["x", 1, 2, 3]], "non-numeric", id="text-coordinate"),
    pytest.param([[True, 0, 1, 1]], "non-numeric", id="bool-coordinate"),
    pytest.param([[0, 0, 1]], "3 coordinates", id="three-coordinates"),
    pytest.param([[float("nan"), 0, 1, 1]], "non-finite", id="nan"),
    pytest.param([[0, float("inf"), 1, 1]], "non-finite", id="inf"),
    pytest.param([[10**400, 0, 1, 1]], "non-finite", id="beyond-float"),
    pytest.param(None, "is not a list of boxes", id="null"),
]


@pytest.mark.parametrize("bbox, problem", MALFORMED_BOXES)
def test_vggss_malformed_boxes_skip_that_entry_with_a_warning(av_root, caplog, bbox, problem):
    table = json.loads((av_root / "test.json").read_text())
    table[3]["bbox"] = bbox
    with caplog.at_level(logging.WARNING):
        entries = vggss_entries(av_root, write_table(av_root / "test.json", table))
    assert len(entries) == 15 and "s003" not in {e.id for e in entries}
    assert "1 samples skipped, annotations malformed" in caplog.text
    assert "s003" in caplog.text and problem in caplog.text


@pytest.mark.parametrize(
    "change, problem",
    [
        pytest.param(lambda a: a.pop("bbox"), '"bbox" None', id="no-bbox"),  # was no ground truth
        pytest.param(lambda a: a.pop("file"), "item #3", id="no-file"),  # was an id "None"
        pytest.param(lambda a: a.update(file=["s003"]), "is not a sample id", id="list-file"),
        pytest.param(lambda a: a.update({"class": {"n": 1}}), "is not a name", id="dict-class"),
    ],
)
def test_vggss_entry_missing_a_key_is_skipped(av_root, caplog, change, problem):
    table = json.loads((av_root / "test.json").read_text())
    change(table[3])
    with caplog.at_level(logging.WARNING):
        entries = vggss_entries(av_root, write_table(av_root / "test.json", table))
    assert len(entries) == 15 and "s003" not in {e.id for e in entries}
    assert problem in caplog.text


@pytest.mark.parametrize(
    "table, problem",
    [
        ({"file": "s000", "bbox": [[0, 0, 1, 1]]}, "holds a JSON dict, not a list"),
        (5, "holds a JSON int, not a list"),
        ([{"file": "s000", "bbox": [[0, 0, 1, 1]]}, "s001"], "item #1 is a JSON str"),
    ],
)
def test_annotations_json_that_is_not_a_list_of_objects_is_one_error(
    av_root, tmp_path, table, problem
):
    path = write_table(tmp_path / "odd.json", table)
    with pytest.raises(DatasetError, match=problem) as err:
        vggss_entries(av_root, path)
    assert str(path) in str(err.value) and '"bbox": [[xmin' in str(err.value)


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000, "[" + "1" * 5000 + "]", b"\xff\xfe[]"],  # recursion, digit limit, bad UTF-8
    ids=["deep", "long-int", "not-utf8"],
)
def test_unreadable_annotations_json_is_one_error(av_root, tmp_path, text):
    path = tmp_path / "odd.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(DatasetError, match="not a readable JSON"):
        vggss_entries(av_root, path)


def test_annotations_json_with_nothing_usable_names_the_problem(av_root):
    table = [{"file": f"s{i:03d}", "bbox": 5} for i in range(16)]
    with pytest.raises(DatasetError, match="none of the 16 annotations is usable.*s000"):
        open_testset(av_root, annotations=write_table(av_root / "test.json", table))


def test_silent_pairs(av_root):
    (av_root / "test_plus_silent.csv").write_text(
        "video,audio,label\ns000,s001,non-sounding\ns002,ghost,non-sounding\n"
    )
    ts = open_testset(av_root)
    assert [e.id for e in ts.silent] == ["s000+s001"]
    assert ts.silent[0].image.stem == "s000" and ts.silent[0].audio.stem == "s001"


def make_duet_root(root, rng, n=2):
    """``n`` two-source scenes; returns the root and its duet.json table, to break and rewrite."""
    make_av_root(root, n=n)
    table = []
    for i in range(n):
        sid = f"s{i:03d}"
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
    write_table(root / "duet.json", table)
    (root / "test.json").unlink()
    return root, table


def test_duet_layout(tmp_path, rng):
    root, _ = make_duet_root(tmp_path / "duet", rng)
    ts = open_testset(root)
    assert ts.kind == "duet" and len(ts.entries) == 2 and len(ts.entries[0].sources) == 2
    assert ts.entries[1].sources[1]["boxes"] == [[0.5, 0.5, 1.0, 1.0]]


@pytest.mark.parametrize(
    "change, problem",
    [
        pytest.param(lambda a: a.pop("sources"), '"sources" None', id="no-sources"),  # KeyError
        pytest.param(lambda a: a.update(sources=5), '"sources" 5', id="int-sources"),  # TypeError
        pytest.param(lambda a: a.update(sources=[]), '"sources" []', id="empty"),  # was kept
        pytest.param(lambda a: a.update(sources=[5, 6]), "not a {", id="int-source"),  # TypeError
        pytest.param(lambda a: a["sources"][0].pop("bbox"), '"bbox" None', id="no-bbox"),
        pytest.param(
            lambda a: a["sources"][1].update(bbox=[5]), "box 5 is not a list", id="box-int"
        ),
        pytest.param(
            lambda a: a["sources"][1].update(bbox=[["x", 1, 2, 3]]), "non-numeric", id="text"
        ),
        pytest.param(
            lambda a: a["sources"][0].update(bbox=[[0, 0, float("inf"), 1]]), "non-finite", id="inf"
        ),
        pytest.param(lambda a: a.pop("file"), "item #1", id="no-file"),  # was KeyError
    ],
)
def test_duet_malformed_entry_is_skipped_with_a_warning(tmp_path, rng, caplog, change, problem):
    root, table = make_duet_root(tmp_path / "duet", rng, n=3)
    change(table[1])
    write_table(root / "duet.json", table)
    with caplog.at_level(logging.WARNING):
        entries = duet_entries(root)
    assert [e.id for e in entries] == ["s000", "s002"]
    assert "1 samples skipped, annotations malformed" in caplog.text and problem in caplog.text


def test_duet_json_that_is_not_a_list_is_one_error(tmp_path, rng):
    root, table = make_duet_root(tmp_path / "duet", rng)
    write_table(root / "duet.json", {"s000": table[0]})  # was TypeError: string indices
    with pytest.raises(DatasetError, match=r"duet.json holds a JSON dict.*\"sources\""):
        open_testset(root)


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
