"""The synthetic world: determinism, layouts the loaders read, ground truth that matches pixels."""

from __future__ import annotations

import csv
import filecmp
import json
from pathlib import Path

import numpy as np
import pytest

from train.synth import SynthConfig, synthesize
from train.world import StreamScript, World, WorldConfig, class_identities

TINY = SynthConfig(
    classes=8,
    train=6,
    test=5,
    duet=2,
    silent=3,
    streams=1,
    stream_seconds=1.0,
    stream_fps=8,
    stream_width=160,
    stream_height=120,
    image_size=64,
    sample_rate=8000,
    clip_seconds=3.5,
    seed=5,
)


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    synthesize(out, TINY)
    return out


def files_of(root: Path) -> list[Path]:
    return sorted(
        p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.suffix != ".mp4"
    )


def test_same_seed_same_bytes_other_seed_other_bytes(world_dir, tmp_path):
    again = tmp_path / "again"
    synthesize(again, TINY)
    assert files_of(again) == files_of(world_dir)
    _, mismatch, errors = filecmp.cmpfiles(
        world_dir, again, [str(p) for p in files_of(again)], shallow=False
    )
    assert not mismatch and not errors
    other = tmp_path / "other"
    synthesize(other, SynthConfig(**{**TINY.__dict__, "seed": 6, "streams": 0}))
    assert (other / "train/frames/syn_train_000000.png").read_bytes() != (
        world_dir / "train/frames/syn_train_000000.png"
    ).read_bytes()


def test_layout_and_counts(world_dir):
    assert len(list((world_dir / "train/frames").glob("*.png"))) == 6
    assert (world_dir / "train/train.txt").read_text().split() == [
        f"syn_train_{i:06d}" for i in range(6)
    ]
    table = json.loads((world_dir / "test/test.json").read_text())
    assert len(table) == 5 and all(len(a["bbox"]) == 1 for a in table)
    assert len(list((world_dir / "test/Annotations").glob("*.xml"))) == 5
    assert len(list((world_dir / "flickr_test/Data").rglob("*.jpg"))) == 5
    duet = json.loads((world_dir / "duet_test/duet.json").read_text())
    assert len(duet) == 2 and all(len(d["sources"]) == 2 for d in duet)
    assert len(list((world_dir / "duet_test/sources").glob("*.wav"))) == 4
    meta = json.loads((world_dir / "world.json").read_text())
    assert len(meta["classes"]) == 8 and meta["config"]["seed"] == 5


def test_the_loaders_read_every_split(world_dir):
    from train.datasets import frames_audio_entries, open_testset

    assert len(frames_audio_entries(world_dir / "train")) == 6
    test = open_testset(world_dir / "test")
    assert test.kind == "vggss" and len(test.entries) == 5 and len(test.silent) == 6
    flickr = open_testset(world_dir / "flickr_test")
    assert flickr.kind == "flickr" and len(flickr.entries) == 5
    assert len(flickr.entries[0].boxes) == 3  # three annotators
    assert open_testset(world_dir / "duet_test").kind == "duet"


def test_box_holds_the_sounding_objects_colour():
    world = World(WorldConfig(classes=8, image_size=128))
    for i in range(10):
        scene = world.scene(np.random.default_rng(i), n_silent=0)
        obj = scene.sounding[0]
        x0, y0, x1, y1 = obj.box
        inside = scene.image[y0:y1, x0:x1].reshape(-1, 3).astype(float)
        import colorsys

        target = np.array(colorsys.hsv_to_rgb(obj.hue % 1, 0.85, 0.95)) * 255
        # the object's pixels are its colour (or a darker shade of it, for textures)
        share = np.mean(
            [np.allclose(p / max(p.max(), 1), target / target.max(), atol=0.08) for p in inside]
        )
        assert share > 0.3, (i, share)


def test_classes_look_and_sound_different():
    classes = class_identities(8)
    assert len({c.name for c in classes}) == 8
    assert len({(c.shape, round(c.hue, 2)) for c in classes}) == 8
    world = World(WorldConfig(classes=8, sample_rate=16000, noise_level=0.0))
    spectra = []
    for k in range(8):
        obj = world.make_object(np.random.default_rng(0), k, (0, 0, 1, 1), True)
        from train.world import class_sound

        t = np.arange(16000) / 16000
        spectra.append(np.abs(np.fft.rfft(class_sound(classes[k], obj, t, 16000))))
    centroids = [float((s * np.arange(s.size)).sum() / s.sum()) for s in spectra]
    assert len({round(c, -1) for c in centroids}) == 8  # every class has its own pitch region


def test_silent_rows_never_pair_a_visible_class(world_dir):
    table = {a["file"]: a["class"] for a in json.loads((world_dir / "test/test.json").read_text())}
    rows = list(csv.DictReader((world_dir / "test/test_plus_silent.csv").open()))
    assert rows and all(r["label"] == "non-sounding" for r in rows)
    cross = [r for r in rows if r["video"] != r["audio"]]
    for r in cross:
        assert table[r["video"]] != table[r["audio"]]
    scenes = [r for r in rows if r["video"] == r["audio"]]
    assert len(scenes) == 3 and all(
        (world_dir / f"test/frames/{r['video']}.png").is_file() for r in scenes
    )


def test_stream_is_deterministic_and_chunks_join():
    world = World(WorldConfig(classes=5, sample_rate=8000))
    a = StreamScript(world, seed=3, width=160, height=120, fps=10, seconds=12)
    b = StreamScript(world, seed=3, width=160, height=120, fps=10, seconds=12)
    assert np.array_equal(a.frame(17)[0], b.frame(17)[0])
    whole = a.audio(1000, 9000)
    parts = np.concatenate([b.audio(1000, 1001), b.audio(1001, 5000), b.audio(5000, 9000)])
    assert np.array_equal(whole, parts)
    owners = {seg.sounding for seg in a.segments}
    assert len(owners - {None}) >= 2  # the sounding object changes over time
    frame, objects = a.frame(0)
    assert frame.shape == (120, 160, 3)
    assert sum(o.sounding for o in objects) <= 1


def test_stream_mp4_decodes_with_audio(world_dir):
    import av

    path = world_dir / "streams/stream_0.mp4"
    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        samples = sum(f.samples for f in container.decode(audio))
        assert audio.rate == 8000
    assert frames == 8
    assert 8000 <= samples <= 8000 + 2048  # AAC pads its last frame
    gt = json.loads(path.with_suffix(".json").read_text())
    assert len(gt["frames"]) == 8 and gt["fps"] == 8
    assert all(len(f["objects"]) >= 2 for f in gt["frames"])
