"""``fnac synth OUT``: the synthetic world written in the published on-disk layouts.

::

    OUT/world.json                       config, classes (look and sound), counts
    OUT/train/frames/<id>.png  audio/<id>.wav  train.txt  classes.csv
    OUT/test/frames/ audio/ test.json (vggss.json style) test.csv Annotations/<id>.xml
             test_plus_silent.csv        (cross pairs and silent scenes, label non-sounding)
    OUT/flickr_test/Annotations/<id>.xml Data/<id>/<id>.jpg|wav test.csv
    OUT/duet_test/frames/ audio/ sources/<id>_<k>.wav duet.json test.csv
    OUT/streams/stream_<k>.mp4 (H.264 + AAC) and stream_<k>.json (per-frame boxes)

Every file is a function of the seed and the sample's index (byte-identical on a re-run, mp4
container bytes aside), whatever order the samples are written in.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from train.world import Scene, StreamScript, World, WorldConfig

log = logging.getLogger(__name__)
SPLITS = {"train": 1, "test": 2, "duet": 3, "silent": 4, "stream": 5}
FLICKR_GRID = 256
ANNOTATORS = 3


@dataclass(frozen=True)
class SynthConfig:
    classes: int = 8
    train: int = 1000
    test: int = 200
    duet: int = 100
    silent: int = 100  # cross pairs; as many silent scenes again
    streams: int = 2
    stream_seconds: float = 20.0
    stream_fps: int = 30
    stream_width: int = 640
    stream_height: int = 480
    image_size: int = 224
    sample_rate: int = 16000
    clip_seconds: float = 4.0
    seed: int = 0

    def world(self) -> World:
        return World(
            WorldConfig(
                classes=self.classes,
                image_size=self.image_size,
                sample_rate=self.sample_rate,
                clip_seconds=self.clip_seconds,
                seed=self.seed,
            )
        )


def _rng(config: SynthConfig, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, SPLITS[split], index])


def _write_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, optimize=False)


def _write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    from scipy.io import wavfile

    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, (np.clip(audio, -1, 1) * 32767).round().astype(np.int16))


def _normalized(box, size: int) -> list[float]:
    return [round(v / size, 6) for v in box]


def flickr_xml(box, size: int, rng: np.random.Generator) -> str:
    """Three annotators' boxes on the 256 grid, each the true box jittered by a few units."""
    items = []
    for _ in range(ANNOTATORS):
        jitter = rng.integers(-3, 4, 4)
        x0, y0, x1, y1 = (
            int(np.clip(round(v * FLICKR_GRID / size) + j, 0, FLICKR_GRID))
            for v, j in zip(box, jitter, strict=True)
        )
        items.append(
            f"  <object>\n    <bbox>\n      <name>sounding</name>\n"
            f"      <xmin>{x0}</xmin>\n      <ymin>{y0}</ymin>\n"
            f"      <xmax>{x1}</xmax>\n      <ymax>{y1}</ymax>\n    </bbox>\n  </object>\n"
        )
    return "<annotation>\n" + "".join(items) + "</annotation>\n"


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="sample", leave=False, dynamic_ncols=True)


def write_train(out: Path, config: SynthConfig, world: World) -> None:
    root = out / "train"
    rows = []
    with _progress(config.train, "train") as bar:
        for i in range(config.train):
            scene = world.scene(_rng(config, "train", i))
            sid = f"syn_train_{i:06d}"
            _write_png(root / "frames" / f"{sid}.png", scene.image)
            _write_wav(root / "audio" / f"{sid}.wav", scene.audio, config.sample_rate)
            rows.append((sid, world.classes[scene.sounding[0].class_id].name))
            bar.update()
    (root / "train.txt").write_text("".join(f"{sid}\n" for sid, _ in rows))
    with (root / "classes.csv").open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([("id", "class"), *rows])


def write_test(out: Path, config: SynthConfig, world: World) -> None:
    root, flickr = out / "test", out / "flickr_test"
    size = config.image_size
    annotations, scenes = [], []
    with _progress(config.test, "test") as bar:
        for i in range(config.test):
            rng = _rng(config, "test", i)
            scene = world.scene(rng)
            sid = f"syn_test_{i:06d}"
            box = scene.sounding[0].box
            _write_png(root / "frames" / f"{sid}.png", scene.image)
            _write_wav(root / "audio" / f"{sid}.wav", scene.audio, config.sample_rate)
            xml = flickr_xml(box, size, rng)
            for folder in (root / "Annotations", flickr / "Annotations"):
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{sid}.xml").write_text(xml)
            data = flickr / "Data" / sid
            data.mkdir(parents=True, exist_ok=True)
            from PIL import Image

            Image.fromarray(scene.image).save(data / f"{sid}.jpg", quality=95)
            _write_wav(data / f"{sid}.wav", scene.audio, config.sample_rate)
            annotations.append(
                {
                    "file": sid,
                    "class": world.classes[scene.sounding[0].class_id].name,
                    "bbox": [_normalized(box, size)],
                }
            )
            scenes.append((sid, scene))
            bar.update()
    (root / "test.json").write_text(json.dumps(annotations, indent=1) + "\n")
    (root / "test.csv").write_text("".join(f"{a['file']}\n" for a in annotations))
    (flickr / "test.csv").write_text("".join(f"{a['file']},0\n" for a in annotations))
    write_silent(root, config, world, scenes)


def _visible_classes(scene: Scene) -> set[int]:
    return {o.class_id for o in scene.objects}


def write_silent(
    root: Path, config: SynthConfig, world: World, scenes: list[tuple[str, Scene]]
) -> None:
    """Non-sounding rows: a frame with another clip whose sounding class it does not show, and
    silent scenes (nothing in the picture sounds: noise, or a sound from off screen)."""
    rows = [("video", "audio", "label")]
    rng = _rng(config, "silent", 0)
    for _ in range(config.silent if len(scenes) > 1 else 0):
        for _attempt in range(50):
            a, b = rng.choice(len(scenes), 2, replace=False)
            sounding = scenes[b][1].sounding[0].class_id
            if sounding not in _visible_classes(scenes[a][1]):
                rows.append((scenes[a][0], scenes[b][0], "non-sounding"))
                break
    if len(rows) - 1 < config.silent:
        log.warning(
            "only %d of %d silent pairs found: with %d classes most frames show the "
            "other clips' sounding class",
            len(rows) - 1,
            config.silent,
            config.classes,
        )
    for i in range(config.silent):
        rng = _rng(config, "silent", i + 1)
        offscreen = int(rng.integers(config.classes)) if rng.random() < 0.5 else None
        scene = world.scene(
            rng, n_sounding=0, n_silent=int(rng.integers(1, 4)), offscreen=offscreen
        )
        sid = f"syn_silent_{i:06d}"
        _write_png(root / "frames" / f"{sid}.png", scene.image)
        _write_wav(root / "audio" / f"{sid}.wav", scene.audio, config.sample_rate)
        rows.append((sid, sid, "non-sounding"))
    with (root / "test_plus_silent.csv").open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def write_duet(out: Path, config: SynthConfig, world: World) -> None:
    root = out / "duet_test"
    table = []
    with _progress(config.duet, "duet") as bar:
        for i in range(config.duet):
            scene = world.scene(_rng(config, "duet", i), n_sounding=2)
            sid = f"syn_duet_{i:06d}"
            _write_png(root / "frames" / f"{sid}.png", scene.image)
            _write_wav(root / "audio" / f"{sid}.wav", scene.audio, config.sample_rate)
            for k, source in enumerate(scene.sources):
                _write_wav(root / "sources" / f"{sid}_{k}.wav", source, config.sample_rate)
            table.append(
                {
                    "file": sid,
                    "sources": [
                        {
                            "class": world.classes[o.class_id].name,
                            "bbox": [_normalized(o.box, config.image_size)],
                        }
                        for o in scene.sounding
                    ],
                }
            )
            bar.update()
    if table:
        (root / "duet.json").write_text(json.dumps(table, indent=1) + "\n")
        (root / "test.csv").write_text("".join(f"{t['file']}\n" for t in table))


def write_stream(path: Path, script: StreamScript) -> dict[str, Any]:
    """The script as an mp4 (H.264 video, AAC audio) plus per-frame ground truth beside it."""
    import av

    n_frames = int(round(script.seconds * script.fps))
    rate = script.sample_rate
    path.parent.mkdir(parents=True, exist_ok=True)
    frames_gt = []
    with av.open(str(path), "w") as container:
        video = container.add_stream(
            "libx264" if "libx264" in av.codecs_available else "mpeg4", rate=int(script.fps)
        )
        video.width, video.height, video.pix_fmt = script.width, script.height, "yuv420p"
        video.options = {"crf": "20", "preset": "veryfast"} if video.name == "libx264" else {}
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        block = 1024
        n_samples = int(round(script.seconds * rate))
        next_sample = 0
        for i in range(n_frames):
            image, objects = script.frame(i)
            frames_gt.append(
                {
                    "index": i,
                    "t": round(i / script.fps, 6),
                    "objects": [
                        {
                            "class": script.world.classes[o.class_id].name,
                            "box": list(o.box),
                            "sounding": o.sounding,
                        }
                        for o in objects
                    ],
                }
            )
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
            upto = min(n_samples, int(round((i + 1) / script.fps * rate)))
            while next_sample + block <= upto or (i == n_frames - 1 and next_sample < upto):
                chunk = script.audio(next_sample, min(next_sample + block, upto))
                frame = av.AudioFrame.from_ndarray(chunk[None], format="flt", layout="mono")
                frame.sample_rate, frame.pts = rate, next_sample
                for packet in audio.encode(frame):
                    container.mux(packet)
                next_sample += chunk.size
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)
    gt = {
        "fps": script.fps,
        "width": script.width,
        "height": script.height,
        "sample_rate": rate,
        "seconds": script.seconds,
        "frames": frames_gt,
    }
    path.with_suffix(".json").write_text(json.dumps(gt) + "\n")
    return gt


def synthesize(out_dir: str | Path, config: SynthConfig) -> dict[str, Any]:
    """Write the whole world under ``out_dir``; returns the counts written."""
    out = Path(out_dir)
    if config.classes < 2:
        raise ValueError("--classes must be at least 2")
    if config.image_size < 32 or config.sample_rate < 4000 or config.clip_seconds <= 0:
        raise ValueError("--image-size must be >= 32, --sample-rate >= 4000, --clip-seconds > 0")
    out.mkdir(parents=True, exist_ok=True)
    world = config.world()
    write_train(out, config, world)
    write_test(out, config, world)
    write_duet(out, config, world)
    for k in range(config.streams):
        script = StreamScript(
            world,
            seed=config.seed * 1000 + k,
            width=config.stream_width,
            height=config.stream_height,
            fps=config.stream_fps,
            seconds=config.stream_seconds,
        )
        write_stream(out / "streams" / f"stream_{k}.mp4", script)
    summary = {
        "config": asdict(config),
        "classes": [asdict(c) for c in world.classes],
        "counts": {
            "train": config.train,
            "test": config.test,
            "duet": config.duet,
            "silent_pairs": config.silent,
            "silent_scenes": config.silent,
            "streams": config.streams,
        },
    }
    (out / "world.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth",
        help="write the synthetic sounding-objects world",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out", metavar="OUT")
    defaults = SynthConfig()
    for name in (
        "classes",
        "train",
        "test",
        "duet",
        "silent",
        "streams",
        "stream_fps",
        "image_size",
        "sample_rate",
        "seed",
    ):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    for name in ("stream_seconds", "clip_seconds"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(defaults, name))
    p.add_argument("--stream-size", default="640x480", help="WxH of the streams")
    p.set_defaults(func=synth_command)


def synth_command(args: argparse.Namespace) -> int:
    try:
        width, height = (int(v) for v in args.stream_size.lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"--stream-size must look like 640x480, not {args.stream_size!r}") from exc
    fields = {k: getattr(args, k) for k in SynthConfig.__dataclass_fields__ if hasattr(args, k)}
    config = SynthConfig(**fields, stream_width=width, stream_height=height)
    summary = synthesize(args.out, config)
    c = summary["counts"]
    print(
        f"wrote the synthetic world to {args.out}: {config.classes} classes; train {c['train']}, "
        f"test {c['test']} (+ {c['silent_pairs']} silent pairs, {c['silent_scenes']} silent "
        f"scenes), duet {c['duet']}, {c['streams']} streams of {config.stream_seconds:g} s"
    )
    return 0
