"""The synthetic world's AVSBench sets (``fnac synth --avsbench N``): 5 s videos whose objects
move, written in AVSBench's S4 and MS3 layouts (``train.avsbench`` reads them, as it reads the
real ones).

A video: a cluttered background, its sounding objects (one in S4; two in MS3, whose sound is the
mix of both) and 0-2 silent objects of other classes, each moving in a straight line, bouncing off
the borders. Five frames a second apart, taken as AVSBench takes them (the last of 16 samples of
each second, t = i - 1/16 s), each with the mask of its sounding objects' pixels (where their
sprite is at least half opaque: sounding objects are drawn over silent ones, so the mask is what
shows of them). In every fourth video a sounding object does not bounce but leaves the picture
during the clip: its mask shrinks at the border and, in S4, the last frames have an empty mask
while it goes on sounding off screen. The WAV holds the whole 5 s.

Every video draws from its own generator seeded by (seed, set, split, index), so the files do not
depend on the order or the number of workers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from train.avsbench import FRAMES, MS3, S4, SETS
from train.synth_world import SILENT_SCALE, SOUNDING_SCALE, Sprite, World, fold, paste

SECONDS = 5.0  # AVSBench's clips
SAMPLES_PER_SECOND = 16  # AVSBench samples 16 frames a second and keeps the last of each second
LEAVES_EVERY = 4  # every fourth video, a sounding object leaves the picture
SET_CODES = {S4.kind: 7, MS3.kind: 8}  # seed streams, apart from train.synth.SPLIT_CODES'
SPLIT_CODES = {"test": 0, "val": 1}
META_HEADERS = {S4.kind: ("name", "start_time", "category", "split"), MS3.kind: ("name", "split")}


def frame_time(i: int) -> float:
    """Seconds into the clip of frame ``i`` (1..5)."""
    return i - 1 / SAMPLES_PER_SECOND


def video_name(kind: str, split: str, index: int) -> str:
    return f"syn_{kind.split('-')[-1]}_{split}_{index:06d}"


@dataclass(frozen=True)
class Mover:
    """An object moving in a straight line; ``bounce`` False: it leaves the picture."""

    class_id: int
    sprite: Sprite
    origin: tuple[float, float]  # top-left of the sprite's box at t = 0
    velocity: tuple[float, float]  # pixels per second
    bounce: bool
    sounding: bool

    def place(self, t: float, side: int) -> tuple[int, int]:
        """Top-left corner of the sprite's array at time ``t``."""
        bx0, by0, bx1, by1 = self.sprite.box
        x = self.origin[0] + self.velocity[0] * t
        y = self.origin[1] + self.velocity[1] * t
        if self.bounce:
            x, y = fold(x, side - (bx1 - bx0)), fold(y, side - (by1 - by0))
        return int(round(x)) - bx0, int(round(y)) - by0


@dataclass
class Video:
    """One synthetic AVSBench video: 5 frames, their masks, the 5 s of sound."""

    frames: list[np.ndarray]  # (S, S, 3) uint8 RGB each
    masks: list[np.ndarray]  # (S, S) bool each: the sounding objects' visible pixels
    audio: np.ndarray  # (N,) float32 in [-1, 1]
    classes: list[int]  # the sounding classes


def _leaving(rng: np.random.Generator, class_id: int, sprite: Sprite, side: int) -> Mover:
    """A mover in the picture at the start that is wholly out of it after 2.5-4 s."""
    bx0, by0, bx1, by1 = sprite.box
    w, h = bx1 - bx0, by1 - by0
    x, y = rng.uniform(0, side - w), rng.uniform(0, side - h)
    gone = rng.uniform(2.5, 4.0)
    heading = int(rng.integers(4))  # towards the right, left, bottom or top border
    distance = (side - x, x + w, side - y, y + h)[heading] + 1
    unit = ((1, 0), (-1, 0), (0, 1), (0, -1))[heading]
    speed = distance / gone
    return Mover(class_id, sprite, (x, y), (unit[0] * speed, unit[1] * speed), False, True)


def _bouncing(
    rng: np.random.Generator, class_id: int, sprite: Sprite, side: int, sounding: bool
) -> Mover:
    bx0, by0, bx1, by1 = sprite.box
    x, y = rng.uniform(0, side - (bx1 - bx0)), rng.uniform(0, side - (by1 - by0))
    speed, angle = side * rng.uniform(0.04, 0.12), rng.uniform(0, 2 * math.pi)
    velocity = (speed * math.cos(angle), speed * math.sin(angle))
    return Mover(class_id, sprite, (x, y), velocity, True, sounding)


def _stamp(mask: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """Set ``mask`` where ``alpha`` (placed at top-left x, y) is at least half opaque."""
    h, w = alpha.shape
    side_y, side_x = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, side_x), min(y + h, side_y)
    if x1 > x0 and y1 > y0:
        mask[y0:y1, x0:x1] |= alpha[y0 - y : y1 - y, x0 - x : x1 - x] >= 0.5


def avsbench_video(world: World, rng: np.random.Generator, sounding: list[int], leaves: bool):
    """A video with the ``sounding`` classes (1 or 2) and 0-2 silent ones; ``leaves``: the first
    sounding object leaves the picture during the clip."""
    c = world.config
    side, n_sounding = c.image_size, len(sounding)
    others = [k for k in range(c.classes) if k not in sounding]
    silent = [int(k) for k in rng.choice(others, min(int(rng.integers(0, 3)), len(others)), False)]
    background = world.background(rng, side, side)
    movers = []
    for k in silent:  # drawn first: sounding objects are never hidden
        sprite = world.sprite(world.look(rng, k, side, scale=SILENT_SCALE))
        movers.append(_bouncing(rng, k, sprite, side, False))
    for j, k in enumerate(sounding):
        sprite = world.sprite(world.look(rng, k, side, scale=SOUNDING_SCALE[n_sounding - 1]))
        if leaves and j == 0:
            movers.append(_leaving(rng, k, sprite, side))
        else:
            movers.append(_bouncing(rng, k, sprite, side, True))
    frames, masks = [], []
    for i in range(1, FRAMES + 1):
        canvas, mask = background.copy(), np.zeros((side, side), bool)
        for m in movers:
            x, y = m.place(frame_time(i), side)
            paste(canvas, m.sprite.rgb, m.sprite.alpha, x, y)
            if m.sounding:
                _stamp(mask, m.sprite.alpha, x, y)
        frames.append(np.clip(canvas + 0.5, 0, 255).astype(np.uint8))
        masks.append(mask)
    n = int(round(SECONDS * c.sample_rate))
    audio = world.noise(rng, n)
    for k in sounding:
        audio += world.render_voice(world.voice(rng, k), n, rng)
    return Video(frames, masks, np.clip(audio, -1.0, 1.0), list(sounding))


def video_for(world: World, seed: int, kind: str, split: str, index: int) -> Video:
    """The video ``train.synth`` writes as video ``index`` of ``split`` of the ``kind`` set."""
    rng = np.random.default_rng([seed, SET_CODES[kind], SPLIT_CODES[split], index])
    classes = world.config.classes
    if kind == S4.kind:  # the classes in turn, as the world's test set
        sounding = [index % classes]
    else:
        sounding = [int(k) for k in rng.choice(classes, 2, replace=False)]
    return avsbench_video(world, rng, sounding, index % LEAVES_EVERY == LEAVES_EVERY - 1)


def write_video(
    root: Path, world: World, seed: int, kind: str, split: str, index: int
) -> dict[str, Any]:
    """Write one video's frames, masks and WAV under ``root`` (the set's folder, the one of its
    meta CSV) in the published layout; returns its CSV row and what it holds."""
    from train.synth import write_wav

    s = SETS[kind]
    video = video_for(world, seed, kind, split, index)
    name = video_name(kind, split, index)
    data = root / s.data
    if kind == S4.kind:
        category = world.class_names[video.classes[0]]
        level = (split, category)
        frames = data.joinpath("visual_frames", *level, name)
        row = (name, 0, category, split)
    else:  # MS3: frames without a split level, named as AVSBench's loader reads them
        level = (split,)
        frames = data / "visual_frames" / name
        row = (name, split)
    masks = data.joinpath("gt_masks", *level, name)
    audio = data.joinpath("audio_wav", *level, f"{name}.wav")
    for folder in (frames, masks, audio.parent):
        folder.mkdir(parents=True, exist_ok=True)
    for i, (frame, mask) in enumerate(zip(video.frames, video.masks, strict=True), start=1):
        frame_name = f"{name}_{i}.png" if kind == S4.kind else f"{name}.mp4_{i}.png"
        Image.fromarray(frame).save(frames / frame_name, compress_level=1)
        Image.fromarray(mask).save(masks / f"{name}_{i}.png")  # a 1-bit PNG
    write_wav(audio, video.audio, world.config.sample_rate)
    return {
        "row": row,
        "classes": [world.class_names[k] for k in video.classes],
        "empty_masks": sum(not m.any() for m in video.masks),
    }
