"""``fnac synth``: write the synthetic sounding-objects world in the published dataset layouts.

Layout under OUT (the loaders in ``train.datasets`` read exactly this):

- ``train/``: ``frames/<id>.png``, ``audio/<id>.wav``, ``train.txt`` (ids), ``classes.csv``
  (``id,class``);
- ``test/``: ``frames/``, ``audio/``, ``test.json`` (vggss.json style, normalised boxes),
  ``test.csv``, ``Annotations/<id>.xml`` (Flickr style, 3 annotators on the 256 grid) and
  ``test_plus_silent.csv``: non-sounding rows, frames paired with audio of a class that is nowhere
  in them, and silent scenes (``syn_silent_*``: background noise only, video == audio);
- ``flickr_test/``: the same test samples as ``Annotations/<id>.xml`` + ``Data/<id>/<id>.jpg|wav``
  + ``test.csv`` (``id,0``);
- ``duet_test/``: ``frames/``, ``audio/`` (the mixture), ``sources/<id>_<k>.wav``, ``duet.json``,
  ``test.csv``;
- ``avsbench/Single-source/`` and ``avsbench/Multi-sources/``: AVSBench's S4 and MS3 layouts
  (meta CSV, 5 frames a video, their masks, 5 s WAVs; ``train.synth_avsbench``), ``--avsbench``
  test videos each and a quarter as many val videos;
- ``streams/stream_<k>.mp4`` (H.264 + AAC) and ``stream_<k>.json`` (per-frame boxes);
- ``world.json``: the world's config, class identities and the counts.

Every sample draws from its own generator seeded by (seed, split, index), so the same SynthConfig
writes byte-identical PNG / WAV / JPEG / JSON files whatever the order or the number of workers.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import shutil
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from train.avsbench import SETS as AVSBENCH_SETS
from train.config import ABOVE_0, AT_LEAST_0, AT_LEAST_1, INF, opt
from train.synth_avsbench import META_HEADERS, write_video
from train.synth_stream import StreamScript
from train.synth_world import MAX_CLASSES, Scene, World, WorldConfig

log = logging.getLogger(__name__)

SPLIT_CODES = {"train": 1, "test": 2, "duet": 3, "silent": 4, "stream": 5, "pairs": 6}
# Silent scenes live beside the test set and are listed in its test_plus_silent.csv with
# video == audio, as the extended VGG-SS list does, so the test set's loader evaluates them.
SPLIT_DIRS = {"train": "train", "test": "test", "duet": "duet_test", "silent": "test"}
FLICKR_GRID = 256  # Flickr-SoundNet annotations live on a 256 x 256 grid
ANNOTATORS = 3  # boxes per Flickr-style annotation, as in Flickr-SoundNet
ANNOTATOR_JITTER = 2  # grid units each annotator's box may differ from the truth, per side


@dataclass(frozen=True)
class SynthConfig:
    """What ``synthesize`` writes: the world's settings plus the size of every split. The help and
    ranges are ``fnac synth``'s flags (``stream_size`` is written WIDTHxHEIGHT there)."""

    classes: int = opt(8, "number of object classes", (2, MAX_CLASSES))
    image_size: int = opt(224, "side of the frames", (32, INF))
    sample_rate: int = opt(16000, "audio rate in Hz", (8000, INF))
    clip_seconds: float = opt(4.0, "seconds of audio per clip", ABOVE_0)
    noise_level: float = opt(0.02, "background hiss (standard deviation)", AT_LEAST_0)
    seed: int = opt(0, "fixes the classes and every sample")
    train: int = opt(
        1000,
        "training clips (a few thousand make the correspondence learnable in a few epochs)",
        AT_LEAST_0,
    )
    test: int = opt(
        200, "single-source test clips (200: cIoU@0.5 to within a few points)", AT_LEAST_0
    )
    duet: int = opt(100, "two-source test clips, for the multi-source protocol", AT_LEAST_0)
    silent: int = opt(100, "silent pairs and as many silent scenes", AT_LEAST_0)
    avsbench: int = opt(
        40, "AVSBench-layout test videos (5 frames, masks) per set, S4 and MS3", AT_LEAST_0
    )
    streams: int = opt(2, "mp4 streams, for the live pipeline, its tests and the demo", AT_LEAST_0)
    stream_seconds: float = opt(20.0, "several changes of the sounding object per stream", ABOVE_0)
    stream_fps: int = opt(30, "frames per second of the streams (a webcam's rate)", AT_LEAST_1)
    stream_size: tuple[int, int] = (640, 480)  # (width, height), a webcam's size
    workers: int = opt(1, "processes writing clips; the files do not depend on it", AT_LEAST_1)

    def __post_init__(self) -> None:
        for name in ("train", "test", "duet", "silent", "avsbench", "streams"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must not be negative")
        width, height = self.stream_size
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError(f"stream size {width}x{height}: use even sizes of at least 16")
        if self.stream_fps <= 0 or self.stream_seconds <= 0:
            raise ValueError("--stream-fps and --stream-seconds must be positive")
        self.world_config()  # validates the world's fields

    def world_config(self) -> WorldConfig:
        return WorldConfig(
            self.classes,
            self.image_size,
            self.sample_rate,
            self.clip_seconds,
            self.noise_level,
            self.seed,
        )


def sample_id(split: str, index: int) -> str:
    return f"syn_{split}_{index:06d}"


@functools.lru_cache(maxsize=4)
def world_for(config: WorldConfig) -> World:
    return World(config)


def sample_scene(world: World, config: SynthConfig, split: str, index: int) -> Scene:
    """The scene ``synthesize`` writes as sample ``index`` of ``split``: train and test scenes
    cycle through the classes, duets have two sounding objects, silent scenes none."""
    rng = np.random.default_rng([config.seed, SPLIT_CODES[split], index])
    if split in ("train", "test"):
        return world.scene(rng, 1, classes=[index % world.config.classes])
    if split == "duet":
        return world.scene(rng, 2)
    if split == "silent":
        return world.scene(rng, 0)
    raise ValueError(f"unknown split {split!r}; choose one of {sorted(SPLIT_DIRS)}")


def stream_script(world: World, config: SynthConfig, index: int) -> StreamScript:
    """The script ``synthesize`` writes as ``streams/stream_<index>.mp4``."""
    rng = np.random.default_rng([config.seed, SPLIT_CODES["stream"], index])
    return StreamScript.draw(
        world, rng, config.stream_seconds, config.stream_fps, config.stream_size
    )


def normalised_box(box: Iterable[int], width: int, height: int) -> list[float]:
    """Pixel box -> [0, 1] coordinates that truncate back to the same pixels on the image grid."""
    out = []
    for v, size in zip(box, (width, height, width, height), strict=True):
        f = v / size
        if int(f * size) < v:  # floating point landed just below: step up one ulp
            f = float(np.nextafter(f, 2.0))
        out.append(f)
    return out


def annotator_boxes(box: Iterable[int], image_size: int, rng: np.random.Generator) -> list[list]:
    """The true box on the 256 grid, as ANNOTATORS annotators would draw it (a little off)."""
    grid = [int(round(v * FLICKR_GRID / image_size)) for v in box]
    out = []
    for _ in range(ANNOTATORS):
        x0, y0, x1, y1 = np.clip(
            np.add(grid, rng.integers(-ANNOTATOR_JITTER, ANNOTATOR_JITTER + 1, 4)), 0, FLICKR_GRID
        ).tolist()
        out.append(
            [min(x0, FLICKR_GRID - 1), min(y0, FLICKR_GRID - 1), max(x1, x0 + 1), max(y1, y0 + 1)]
        )
    return out


def flickr_xml(sample: str, boxes: list[list[int]]) -> bytes:
    """Flickr-SoundNet style annotation: one ``object`` per annotator, each holding a ``bbox`` of
    5 children (a name, then xmin, ymin, xmax, ymax on the 256 grid)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = f"{sample}.jpg"
    for box in boxes:
        bbox = ET.SubElement(ET.SubElement(root, "object"), "bbox")
        ET.SubElement(bbox, "name").text = "sounding"
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True):
            ET.SubElement(bbox, tag).text = str(int(value))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """16-bit PCM mono."""
    from scipy.io import wavfile  # here: 0.25 s of every fnac command's start otherwise

    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16)
    wavfile.write(path, rate, pcm)


def _write_sample(task: tuple[str, SynthConfig, str, int]) -> dict[str, Any]:
    """Render and write one sample; returns its record (id, classes, boxes, visible classes)."""
    out, config, split, index = task
    world = world_for(config.world_config())
    scene = sample_scene(world, config, split, index)
    sid, root, rate = sample_id(split, index), Path(out), config.sample_rate
    folder = root / SPLIT_DIRS[split]
    Image.fromarray(scene.image).save(folder / "frames" / f"{sid}.png", compress_level=1)
    write_wav(folder / "audio" / f"{sid}.wav", scene.audio, rate)
    sounding = scene.sounding
    record = {
        "id": sid,
        "classes": [o.class_id for o in sounding],
        "boxes": [list(o.box) for o in sounding],
        "visible": sorted({o.class_id for o in scene.objects}),
    }
    if split == "duet":
        for k, source in enumerate(scene.sources):
            write_wav(folder / "sources" / f"{sid}_{k}.wav", source, rate)
    if split == "test":
        rng = np.random.default_rng([config.seed, SPLIT_CODES[split], index, 1])
        xml = flickr_xml(sid, annotator_boxes(sounding[0].box, config.image_size, rng))
        (folder / "Annotations" / f"{sid}.xml").write_bytes(xml)
        flickr = root / "flickr_test"
        (flickr / "Annotations" / f"{sid}.xml").write_bytes(xml)
        data = flickr / "Data" / sid
        data.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scene.image).save(data / f"{sid}.jpg", quality=95)
        shutil.copyfile(folder / "audio" / f"{sid}.wav", data / f"{sid}.wav")
    return record


def avsbench_videos(count: int) -> dict[str, int]:
    """Videos per split of each AVSBench set for ``--avsbench count``: that many test videos and
    a quarter as many (rounded up) val videos."""
    return {"test": count, "val": (count + 3) // 4}


def _write_avsbench(task: tuple[str, SynthConfig, str, str, int]) -> dict[str, Any]:
    out, config, kind, split, index = task
    root = Path(out) / "avsbench" / AVSBENCH_SETS[kind].folder
    return write_video(root, world_for(config.world_config()), config.seed, kind, split, index)


def _run(
    tasks: list, fn: Callable[[Any], Any], workers: int, desc: str, progress: bool
) -> list[Any]:
    bar = tqdm(total=len(tasks), desc=desc, unit="clip", disable=not progress or not tasks)
    results = []
    with bar:
        if workers > 1 and len(tasks) > 1:
            with ProcessPoolExecutor(workers) as pool:
                for r in pool.map(fn, tasks, chunksize=8):
                    results.append(r)
                    bar.update()
        else:
            for task in tasks:
                results.append(fn(task))
                bar.update()
    return results


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


def _write_json_list(path: Path, items: list[Any]) -> None:
    """A JSON list, one item per line (compact like vggss.json, still diffable)."""
    path.write_text("[\n" + ",\n".join(json.dumps(item) for item in items) + "\n]\n")


def _write_csv(path: Path, rows: Iterable[Iterable[Any]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    path.write_text(buffer.getvalue())


def silent_pairs(records: list[dict], count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` (frame id, audio id) pairs whose audio's sounding class is nowhere in the frame.

    Frames are taken in turn; each gets the audio of a random test clip that qualifies.
    """
    rng = np.random.default_rng([seed, SPLIT_CODES["pairs"]])
    rows: list[tuple[str, str]] = []
    n = len(records)
    for r in range(count if n > 1 else 0):
        for attempt in range(n):
            frame = records[(r + attempt) % n]
            fits = [a for a in records if a["classes"][0] not in frame["visible"]]
            if fits:
                rows.append((frame["id"], fits[int(rng.integers(len(fits)))]["id"]))
                break
        else:
            break
    if len(rows) < count:
        log.warning(
            "only %d of %d silent pairs could be made (too few test clips or classes)",
            len(rows),
            count,
        )
    return rows


def write_stream(path: Path, script: StreamScript, progress: bool = False) -> dict[str, Any]:
    """Encode a finite stream script as mp4 (H.264, else MPEG-4 part 2; AAC, else MP3) and its
    per-frame ground truth as ``path.with_suffix('.json')``."""
    from train.media import Mp4Writer

    if script.n_frames is None:
        raise ValueError("an endless stream cannot be written to a file; give it a length")
    rate, fps = script.sample_rate, script.fps
    frames = []
    writer = Mp4Writer(path, script.width, script.height, fps, rate, crf=18)
    try:
        position = 0
        bar = tqdm(range(script.n_frames), desc=path.name, unit="frame", disable=not progress)
        for i in bar:
            writer.frame(script.frame(i))
            frames.append({"index": i, "t": i / fps, "objects": script.truth(i)})
            target = min(int(round((i + 1) * rate / fps)), script.n_samples)
            if i == script.n_frames - 1:
                target = script.n_samples
            if target > position:
                writer.sound(script.audio(position, target))
                position = target
    finally:
        writer.close()
    meta = {"fps": fps, "width": script.width, "height": script.height, "sample_rate": rate}
    meta.update({k: v for k, v in script.describe().items() if k not in meta})
    meta["frames"] = frames
    path.with_suffix(".json").write_text(json.dumps(meta))
    return {
        "path": str(path),
        "frames": script.n_frames,
        "video": writer.video_codec,
        "audio": writer.audio_codec,
    }


def synthesize(
    out_dir: str | Path, config: SynthConfig | None = None, progress: bool = True
) -> dict[str, Any]:
    """Write the whole world under ``out_dir`` (see the module docstring); returns a summary of
    paths and counts."""
    config = config or SynthConfig()
    started = time.perf_counter()
    out = Path(out_dir)
    world = world_for(config.world_config())
    names = world.class_names
    dirs = {split: out / d for split, d in SPLIT_DIRS.items()}
    for split, folder in dirs.items():
        if getattr(config, split) > 0:
            for sub in ("frames", "audio"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
    if config.test:
        (dirs["test"] / "Annotations").mkdir(exist_ok=True)
        (out / "flickr_test" / "Annotations").mkdir(parents=True, exist_ok=True)
    if config.duet:
        (dirs["duet"] / "sources").mkdir(exist_ok=True)

    records = {}
    for split in SPLIT_DIRS:
        tasks = [(str(out), config, split, i) for i in range(getattr(config, split))]
        records[split] = _run(tasks, _write_sample, config.workers, split, progress)

    if config.train:
        _write_lines(dirs["train"] / "train.txt", (r["id"] for r in records["train"]))
        _write_csv(
            dirs["train"] / "classes.csv",
            [("id", "class")] + [(r["id"], names[r["classes"][0]]) for r in records["train"]],
        )
    pairs: list[tuple[str, str]] = []
    if config.test:
        test, size = records["test"], config.image_size
        table = [
            {
                "file": r["id"],
                "class": names[r["classes"][0]],
                "bbox": [normalised_box(b, size, size) for b in r["boxes"]],
            }
            for r in test
        ]
        _write_json_list(dirs["test"] / "test.json", table)
        _write_lines(dirs["test"] / "test.csv", (r["id"] for r in test))
        _write_csv(out / "flickr_test" / "test.csv", [(r["id"], 0) for r in test])
        pairs = silent_pairs(test, config.silent, config.seed)
        scenes = [(r["id"], r["id"]) for r in records["silent"]]
        _write_csv(
            dirs["test"] / "test_plus_silent.csv",
            [("video", "audio", "label")] + [(v, a, "non-sounding") for v, a in pairs + scenes],
        )
    if config.duet:
        size = config.image_size
        table = [
            {
                "file": r["id"],
                "sources": [
                    {"class": names[k], "bbox": [normalised_box(b, size, size)]}
                    for k, b in zip(r["classes"], r["boxes"], strict=True)
                ],
            }
            for r in records["duet"]
        ]
        _write_json_list(dirs["duet"] / "duet.json", table)
        _write_lines(dirs["duet"] / "test.csv", (r["id"] for r in records["duet"]))
    avsbench = {}
    for kind, spec in AVSBENCH_SETS.items():
        tasks = [
            (str(out), config, kind, split, i)
            for split, n in avsbench_videos(config.avsbench).items()
            for i in range(n)
        ]
        written = _run(tasks, _write_avsbench, config.workers, kind, progress)
        if written:
            root = out / "avsbench" / spec.folder
            _write_csv(root / spec.meta, [META_HEADERS[kind]] + [w["row"] for w in written])
        avsbench[kind] = written
    streams = []
    if config.streams:
        (out / "streams").mkdir(parents=True, exist_ok=True)
    for k in range(config.streams):
        script = stream_script(world, config, k)
        streams.append(write_stream(out / "streams" / f"stream_{k}.mp4", script, progress))

    counts = {split: len(records[split]) for split in SPLIT_DIRS}
    counts.update(silent_pairs=len(pairs), streams=len(streams))
    for kind, written in avsbench.items():
        counts[kind] = len(written)
        counts[f"{kind} empty masks"] = sum(w["empty_masks"] for w in written)
    description = world.describe()
    settings = {k: v for k, v in asdict(config).items() if k != "workers"}  # no effect on files
    description.update(seed=config.seed, counts=counts, synth=settings)
    (out / "world.json").write_text(json.dumps(description, indent=2) + "\n")
    summary = {
        "out": str(out),
        "classes": names,
        "counts": counts,
        "paths": {
            "train": str(dirs["train"]),
            "test": str(dirs["test"]),
            "flickr_test": str(out / "flickr_test"),
            "duet_test": str(dirs["duet"]),
            "avsbench": str(out / "avsbench"),
            "streams": [s["path"] for s in streams],
            "world": str(out / "world.json"),
        },
        "seconds": time.perf_counter() - started,
    }
    log.info("synthetic world written to %s in %.1f s", out, summary["seconds"])
    return summary
