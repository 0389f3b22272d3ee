"""The synthetic world and its writer: determinism, layouts, ground truth that matches pixels."""

from __future__ import annotations

import argparse
import csv
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from train.commands import register
from train.synth import SynthConfig, sample_scene, stream_script, synthesize
from train.synth_stream import StreamScript
from train.synth_world import COLOURS, World, WorldConfig

TINY = SynthConfig(
    classes=8,
    image_size=64,
    sample_rate=8000,
    clip_seconds=3.5,
    seed=5,
    train=4,
    test=6,
    duet=2,
    silent=3,
    avsbench=4,  # the fourth video's sounding object leaves the picture
    streams=1,
    stream_seconds=1.0,
    stream_fps=8,
    stream_size=(160, 120),
)
HUES = dict(COLOURS)


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    synthesize(out, TINY, progress=False)
    return out


def files_of(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def hsv(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 RGB -> hue in degrees, saturation, value (written here, not imported)."""
    rgb = image.astype(np.float64) / 255
    hi, lo = rgb.max(-1), rgb.min(-1)
    delta = np.where(hi > lo, hi - lo, 1.0)
    r, g, b = np.moveaxis(rgb, -1, 0)
    hue = np.where(hi == r, (g - b) / delta % 6, np.where(hi == g, (b - r) / delta + 2,
                                                          (r - g) / delta + 4))  # fmt: skip
    return hue * 60, np.where(hi > 0, (hi - lo) / np.maximum(hi, 1e-9), 0), hi


def family_mask(image: np.ndarray, colour: str) -> np.ndarray:
    """Pixels of a saturated colour of the named family (hue within 15 degrees)."""
    hue, sat, val = hsv(image)
    distance = np.abs((hue - HUES[colour] + 180) % 360 - 180)
    return (distance < 15) & (sat > 0.45) & (val > 0.15)


def test_identities_are_distinct_and_seeded():
    world = World(WorldConfig(classes=8))
    ids = world.identities
    assert len({c.name for c in ids}) == 8
    assert len({c.shape for c in ids}) == 8 and len({c.colour for c in ids}) == 8
    assert len({c.base_freq for c in ids}) == 8
    json.dumps(world.describe())
    assert World(WorldConfig(classes=8)).identities == ids
    assert World(WorldConfig(classes=8, seed=1)).class_names != world.class_names
    big = World(WorldConfig(classes=32))
    assert len({(c.colour, c.shape) for c in big.identities}) == 32
    with pytest.raises(ValueError, match="classes"):
        WorldConfig(classes=65)


def test_scene_boxes_hold_the_sounding_objects_colour():
    world = World(WorldConfig(image_size=96, sample_rate=8000, clip_seconds=1.0))
    for i in range(12):
        scene = world.scene(np.random.default_rng([7, i]))
        assert scene.image.shape == (96, 96, 3) and scene.image.dtype == np.uint8
        assert scene.audio.shape == (8000,) and scene.audio.dtype == np.float32
        assert np.abs(scene.audio).max() <= 1 and not np.isnan(scene.audio).any()
        assert [o.sounding for o in scene.objects][:1] == [True] and len(scene.sounding) == 1
        assert len(scene.objects) <= 4 and len({o.class_id for o in scene.objects}) == len(
            scene.objects
        )
        outside = np.ones((96, 96), bool)
        for o in scene.objects:
            x0, y0, x1, y1 = o.box
            assert 0 <= x0 < x1 <= 96 and 0 <= y0 < y1 <= 96
            lo, hi = (0.35, 0.7) if o.sounding else (0.2, 0.4)  # SOUNDING_SCALE, SILENT_SCALE
            assert 96 * lo * 0.8 <= max(x1 - x0, y1 - y0) <= 96 * hi + 2
            outside[y0:y1, x0:x1] = False
        obj = scene.sounding[0]
        colour = world.identities[obj.class_id].colour
        mask = family_mask(scene.image, colour)
        x0, y0, x1, y1 = obj.box
        assert mask[y0:y1, x0:x1].mean() > 0.2, (i, colour)
        assert mask[outside].mean() < 0.02  # the clutter is muted: never an object's colour


def test_silent_and_duet_scenes():
    world = World(WorldConfig(sample_rate=8000, clip_seconds=1.0, noise_level=0.02))
    silent = world.scene(np.random.default_rng(1), n_sounding=0, n_silent=2)
    assert not silent.sources and len(silent.objects) == 2
    assert not any(o.sounding for o in silent.objects)
    assert abs(float(silent.audio.std()) - 0.02) < 0.002  # background noise only
    duet = world.scene(np.random.default_rng(2), n_sounding=2, n_silent=3)
    assert len(duet.sources) == 2 and len(duet.sounding) == 2
    classes = [o.class_id for o in duet.objects]
    assert len(set(classes)) == len(classes)
    residual = duet.audio - duet.sources[0] - duet.sources[1]
    assert abs(float(residual.std()) - 0.02) < 0.003
    a, b = (o.box for o in duet.sounding)
    overlap = max(min(a[2], b[2]) - max(a[0], b[0]), 0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    assert overlap <= 0.05 * (a[2] - a[0]) * (a[3] - a[1])


def test_scenes_are_deterministic():
    world = World(WorldConfig(image_size=64, sample_rate=8000, clip_seconds=1.0))
    a, b = (world.scene(np.random.default_rng([3, 4])) for _ in range(2))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.audio, b.audio)
    assert a.objects == b.objects
    c = world.scene(np.random.default_rng([3, 5]))
    assert not np.array_equal(a.image, c.image)


def test_classes_sound_and_look_different():
    rate, n = 8000, 8000
    world = World(WorldConfig(classes=8, sample_rate=rate, noise_level=0.0))
    spectra = np.zeros((8, 4, 129))
    for k in range(8):
        for i in range(4):
            rng = np.random.default_rng([k, i])
            x = world.render_voice(world.voice(rng, k), n, rng)
            frames = x[: n // 256 * 256].reshape(-1, 256) * np.hanning(256)
            spectra[k, i] = np.log(np.mean(np.abs(np.fft.rfft(frames)) ** 2, 0) + 1e-8)
    means = spectra.mean(1)
    # Each instance is nearer to its own class's mean spectrum than to any other class's.
    for k in range(8):
        for i in range(4):
            distance = np.linalg.norm(means - spectra[k, i], axis=1)
            assert int(np.argmin(distance)) == k
    hues = sorted(HUES[c.colour] for c in world.identities)
    assert min(np.diff(hues + [hues[0] + 360])) >= 20  # colour families never meet


def test_stream_frames_and_audio_are_deterministic_and_join():
    world = World(WorldConfig(classes=5, sample_rate=8000))
    a, b = (
        StreamScript.draw(world, np.random.default_rng(3), 12.0, 10, (160, 120), n_objects=3)
        for _ in range(2)
    )
    assert np.array_equal(a.frame(37), b.frame(37)) and a.objects(37) == b.objects(37)
    assert not np.array_equal(a.frame(0), a.frame(30))  # objects move
    n = a.n_samples
    whole = a.audio(0, n)
    cuts = [0, 1, 999, 4096, 5000, 33333, 40000, 71234, n]  # across noise blocks and segments
    parts = [b.audio(lo, hi) for lo, hi in reversed(list(zip(cuts[:-1], cuts[1:], strict=True)))]
    assert np.array_equal(whole, np.concatenate(parts[::-1]))
    assert whole.dtype == np.float32 and np.abs(whole).max() <= 1
    segments = a.segments()
    assert segments[0].start == 0 and segments[-1].end >= n
    assert all(s.end == t.start for s, t in zip(segments, segments[1:], strict=False))
    sounding = {s.source for s in segments} - {None}
    assert len(sounding) >= 2  # the sounding object changes over time
    for i in range(0, a.n_frames, 7):
        objects = a.objects(i)
        assert sum(o.sounding for o in objects) <= 1
        for o in objects:
            assert 0 <= o.box[0] < o.box[2] <= 160 and 0 <= o.box[1] < o.box[3] <= 120
    loud = [s for s in segments if s.source is not None and s.end <= n]
    level = np.sqrt(np.mean(whole[loud[0].start : loud[0].end] ** 2))
    assert level > 3 * 0.02


def test_endless_stream_serves_any_time_in_any_order():
    world = World(WorldConfig(classes=2, sample_rate=8000))
    script = StreamScript.draw(world, np.random.default_rng(9), None, fps=15, size=(64, 48))
    assert script.n_frames is None and len(script.movers) == 2
    late = script.audio(3_000_000, 3_004_000)  # about six minutes in, asked for first
    assert np.array_equal(late[1000:], script.audio(3_001_000, 3_004_000))
    assert script.frame(5400).shape == (48, 64, 3)


def test_layout_and_counts(world_dir):
    for split, n in (("train", 4), ("test", 6 + 3), ("duet_test", 2)):  # test: + silent scenes
        assert len(list((world_dir / split / "frames").glob("*.png"))) == n
        assert len(list((world_dir / split / "audio").glob("*.wav"))) == n
    ids = [f"syn_train_{i:06d}" for i in range(4)]
    assert (world_dir / "train/train.txt").read_text().split() == ids
    rows = list(csv.reader((world_dir / "train/classes.csv").open()))
    assert rows[0] == ["id", "class"] and [r[0] for r in rows[1:]] == ids
    test = json.loads((world_dir / "test/test.json").read_text())
    assert [a["file"] for a in test] == (world_dir / "test/test.csv").read_text().split()
    for a in test:
        assert len(a["bbox"]) == 1 and all(0 <= v <= 1 for v in a["bbox"][0])
        assert (world_dir / f"flickr_test/Data/{a['file']}/{a['file']}.jpg").is_file()
        assert (world_dir / f"flickr_test/Data/{a['file']}/{a['file']}.wav").is_file()
        xml = (world_dir / f"test/Annotations/{a['file']}.xml").read_bytes()
        assert xml == (world_dir / f"flickr_test/Annotations/{a['file']}.xml").read_bytes()
        boxes = [e for child in ET.fromstring(xml) for e in child if e.tag == "bbox"]
        assert len(boxes) == 3 and all(len(list(e)) == 5 for e in boxes)
        truth = np.array(a["bbox"][0]) * 256
        for e in boxes:
            assert np.abs(np.array([int(c.text) for c in list(e)[1:]]) - truth).max() <= 3
    assert list(csv.reader((world_dir / "flickr_test/test.csv").open()))[0] == [
        test[0]["file"],
        "0",
    ]
    duet = json.loads((world_dir / "duet_test/duet.json").read_text())
    assert len(duet) == 2 and all(len(d["sources"]) == 2 for d in duet)
    for d in duet:
        assert len({s["class"] for s in d["sources"]}) == 2
        for k in range(2):
            assert (world_dir / f"duet_test/sources/{d['file']}_{k}.wav").is_file()
    rows = list(csv.DictReader((world_dir / "test/test_plus_silent.csv").open()))
    silent = [r for r in rows if r["video"].startswith("syn_silent_")]
    assert len(silent) == 3 and all(r["video"] == r["audio"] for r in silent)
    meta = json.loads((world_dir / "world.json").read_text())
    assert len(meta["classes"]) == 8 and meta["seed"] == 5 and meta["counts"]["train"] == 4


def test_avsbench_sets_hold_moving_objects_and_the_masks_of_the_sounding_ones(world_dir):
    from PIL import Image
    from scipy.io import wavfile

    from fnac.image import load_mask
    from train.datasets import open_testset
    from train.synth_avsbench import video_for

    world = World(TINY.world_config())
    counts = json.loads((world_dir / "world.json").read_text())["counts"]
    assert counts["avsbench-s4"] == counts["avsbench-ms3"] == 4 + 1  # test, and a val video
    for kind, folder in (("avsbench-s4", "Single-source"), ("avsbench-ms3", "Multi-sources")):
        testset = open_testset(world_dir / "avsbench" / folder)
        assert testset.kind == kind and len(testset.entries) == 4 * 5 and not testset.dropped
        val = open_testset(world_dir / "avsbench", kind, split="val")
        assert len(val.entries) == 5
        for e in testset.entries:
            index = int(e.clip[-6:])
            video = video_for(world, TINY.seed, kind, "test", index)
            frame = np.asarray(Image.open(e.image))
            mask = load_mask(e.mask, (64, 64))
            assert np.array_equal(mask, video.masks[e.frame_index - 1])
            assert np.array_equal(frame, video.frames[e.frame_index - 1])
            colours = [world.identities[k].colour for k in video.classes]
            if kind == "avsbench-s4":
                assert video.classes == [index % 8] and e.klass == world.class_names[index % 8]
            for colour in colours:  # the mask is the sounding objects' pixels, and only theirs
                shown = family_mask(frame, colour)
                if mask.any() and shown.sum() > 20:
                    assert shown[mask].sum() > 0.9 * shown.sum()
            if mask.any():
                assert np.mean([family_mask(frame, c) for c in colours], axis=0)[mask].sum() > (
                    0.6 * mask.sum() / len(colours)
                )
            rate, audio = wavfile.read(e.audio)
            assert rate == 8000 and audio.shape == (5 * 8000,)
        masks = [load_mask(e.mask) for e in testset.entries]
        assert not np.array_equal(masks[0], masks[4])  # objects move between frames 1 and 5
    s4 = open_testset(world_dir / "avsbench/Single-source")
    gone = [load_mask(e.mask).any() for e in s4.entries if e.clip.endswith("_000003")]
    assert gone[0] and not gone[-1]  # the sounding object has left the picture by frame 5
    rate, audio = wavfile.read(s4.entries[-1].audio)
    last_second = audio[-rate:].astype(np.float64) / 32768
    assert np.sqrt(np.mean(last_second**2)) > 3 * TINY.noise_level  # still heard, off screen


def test_boxes_match_the_scenes_and_silent_pairs_never_hear_a_visible_class(world_dir):
    world = World(TINY.world_config())
    test = json.loads((world_dir / "test/test.json").read_text())
    scenes = {a["file"]: sample_scene(world, TINY, "test", i) for i, a in enumerate(test)}
    for a in test:
        (obj,) = scenes[a["file"]].sounding
        assert a["class"] == world.class_names[obj.class_id]
        assert [int(v * 64) for v in a["bbox"][0]] == list(obj.box)
    rows = list(csv.DictReader((world_dir / "test/test_plus_silent.csv").open()))
    assert all(r["label"] == "non-sounding" for r in rows)
    rows = [r for r in rows if not r["video"].startswith("syn_silent_")]
    assert len(rows) == 3
    for r in rows:
        heard = scenes[r["audio"]].sounding[0].class_id
        assert heard not in {o.class_id for o in scenes[r["video"]].objects}


def test_same_seed_same_bytes_other_seed_other_bytes(world_dir, tmp_path):
    config = replace(TINY, workers=2)  # neither the order nor the processes matter
    synthesize(tmp_path / "again", config, progress=False)
    again = tmp_path / "again"
    assert files_of(again) == files_of(world_dir)
    for name in files_of(world_dir):
        if not name.endswith(".mp4"):  # the encoder's bytes may differ; its frames are tested
            assert (again / name).read_bytes() == (world_dir / name).read_bytes(), name
    synthesize(tmp_path / "other", replace(config, seed=6, streams=0), progress=False)
    for name in ("train/frames/syn_train_000000.png", "test/audio/syn_test_000000.wav"):
        assert (tmp_path / "other" / name).read_bytes() != (world_dir / name).read_bytes()


def test_the_loaders_read_every_test_set(world_dir):
    from train.datasets import frames_audio_entries, open_testset

    assert len(frames_audio_entries(world_dir / "train")) == 4
    test = open_testset(world_dir / "test", kind="vggss")
    assert len(test.entries) == 6 and len(test.silent) == 3 + 3  # pairs + silent scenes
    flickr = open_testset(world_dir / "flickr_test")
    assert flickr.kind == "flickr" and len(flickr.entries) == 6
    assert len(flickr.entries[0].boxes) == 3
    duet = open_testset(world_dir / "duet_test")
    assert duet.kind == "duet" and len(duet.entries) == 2 and len(duet.entries[0].sources) == 2


def test_stream_mp4_decodes_with_its_audio_track(world_dir):
    import av

    path = world_dir / "streams/stream_0.mp4"
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.rate == 8000 and stream.channels == 1
        samples = sum(f.samples for f in container.decode(stream))
    assert len(frames) == 8 and frames[0].shape == (120, 160, 3)
    assert 8000 <= samples <= 8000 + 2048  # AAC pads its last frame
    world = World(TINY.world_config())
    script = stream_script(world, TINY, 0)
    assert np.abs(frames[3].astype(int) - script.frame(3)).mean() < 6  # codec noise only
    truth = json.loads(path.with_suffix(".json").read_text())
    assert (truth["fps"], truth["width"], truth["height"], truth["sample_rate"]) == (
        8, 160, 120, 8000
    )  # fmt: skip
    assert [f["index"] for f in truth["frames"]] == list(range(8))
    assert truth["frames"][3]["objects"] == script.truth(3)
    assert [{k: v for k, v in o.items() if k != "outline"} for o in script.truth(3)] == [
        {"class": world.class_names[o.class_id], "box": list(o.box), "sounding": o.sounding}
        for o in script.objects(3)
    ]


def test_synth_subcommand_registers_and_runs(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="fnac")
    register(parser.add_subparsers(dest="command"))
    out = tmp_path / "cli"
    args = parser.parse_args(
        ["synth", str(out), "--classes", "3", "--train", "2", "--test", "2", "--duet", "1",
         "--silent", "1", "--avsbench", "1", "--streams", "0", "--image-size", "48",
         "--sample-rate", "8000",
         "--clip-seconds", "1", "--seed", "2"]
    )  # fmt: skip
    assert args.func(args) == 0
    assert "wrote the synthetic world" in capsys.readouterr().out
    assert len(list((out / "train/frames").glob("*.png"))) == 2
    assert json.loads((out / "world.json").read_text())["config"]["classes"] == 3
