"""Streams of the synthetic world for the live pipeline: moving objects, the sounding one
changing over time, as a deterministic script of frames and audio that can be asked for in any
order (see ``train.synth_world`` for the world itself; it imports nothing of this module, so the
arrow points one way: streams are built on the world)."""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from train.synth_world import (
    STREAM_SCALE,
    TAG_STREAM,
    SceneObject,
    Sprite,
    Voice,
    World,
    fold,
    paste,
)


@dataclass(frozen=True)
class Segment:
    """Samples [start, end) during which on-screen object ``source`` sounds (None: a gap)."""

    start: int
    end: int
    source: int | None


@dataclass(frozen=True)
class _Mover:
    class_id: int
    sprite: Sprite
    voice: Voice
    origin: tuple[float, float]  # box top-left at t = 0 (unfolded)
    velocity: tuple[float, float]  # pixels per second


class StreamScript:
    """A deterministic stream: 2-3 moving objects, one of which sounds at a time.

    ``frame(i)`` / ``objects(i)`` give frame ``i`` (time ``i / fps``) and its ground truth;
    ``audio(n0, n1)`` gives samples [n0, n1). Any order of calls gives the same values, and audio
    asked for in chunks equals audio asked for at once. The sounding object changes every 4-7 s
    (longer than the model's 3 s window, so most frames hear one source only),
    never the same one twice in a row and mostly the one that waited longest, with 0.4-1.2 s
    silent gaps a quarter of the time.
    Objects may pass over each other; the ground truth keeps every object's full box.
    """

    NOISE_BLOCK = 4096  # samples per independently seeded block of background noise
    FADE_S = 0.015  # fade in / out of every sounding segment (no clicks at the switches)

    def __init__(
        self,
        world: World,
        key: int,
        seconds: float | None = 20.0,
        fps: float = 30.0,
        size: tuple[int, int] = (640, 480),
        n_objects: int | None = None,
    ) -> None:
        self.world, self.key, self.fps = world, int(key), float(fps)
        self.width, self.height = (int(v) for v in size)
        self.sample_rate = world.config.sample_rate
        self.seconds = seconds
        self.n_frames = None if seconds is None else int(round(seconds * fps))
        self.n_samples = None if seconds is None else int(round(seconds * self.sample_rate))
        rng = self._rng(0, 0)
        classes = world.config.classes
        n_objects = min(int(rng.integers(2, 4)), classes) if n_objects is None else int(n_objects)
        if not 1 <= n_objects <= classes:
            raise ValueError(f"a stream needs 1 to {classes} objects, not {n_objects}")
        side = min(self.width, self.height)
        self.background = np.clip(
            world.background(rng, self.height, self.width) + 0.5, 0, 255
        ).astype(np.uint8)  # (H, W, 3)
        self.movers: list[_Mover] = []
        for class_id in rng.choice(classes, n_objects, replace=False):
            sprite = world.sprite(world.look(rng, int(class_id), side, scale=STREAM_SCALE))
            voice = world.voice(rng, int(class_id))
            speed, angle = side * rng.uniform(0.05, 0.2), rng.uniform(0, 2 * math.pi)
            origin = (rng.uniform(0, self.width), rng.uniform(0, self.height))
            velocity = (speed * math.cos(angle), speed * math.sin(angle))
            self.movers.append(_Mover(int(class_id), sprite, voice, origin, velocity))
        self._segments: list[Segment] = []
        self._starts: list[int] = []
        self._last_sounded: dict[int, int] = {}  # object -> index of its latest segment
        self._signals: OrderedDict[int, np.ndarray] = OrderedDict()
        self._outlines: dict[int, np.ndarray] = {}  # object -> outline about its box's corner

    @classmethod
    def draw(
        cls,
        world: World,
        rng: np.random.Generator,
        seconds: float | None,
        fps: float = 30.0,
        size: tuple[int, int] = (640, 480),
        n_objects: int | None = None,
    ) -> StreamScript:
        """A stream of ``world`` keyed by one draw from ``rng`` (``seconds=None``: endless)."""
        return cls(world, int(rng.integers(2**62)), seconds, fps, size, n_objects)

    def _rng(self, tag: int, index: int) -> np.random.Generator:
        return np.random.default_rng([self.world.config.seed, TAG_STREAM, self.key, tag, index])

    # ------------------------------------------------------------------------------ frames

    def boxes(self, index: int) -> list[tuple[int, int, int, int]]:
        """Every object's box in frame ``index``."""
        t = index / self.fps
        out = []
        for m in self.movers:
            bx0, by0, bx1, by1 = m.sprite.box
            bw, bh = bx1 - bx0, by1 - by0
            x = int(round(fold(m.origin[0] + m.velocity[0] * t, self.width - bw)))
            y = int(round(fold(m.origin[1] + m.velocity[1] * t, self.height - bh)))
            out.append((x, y, x + bw, y + bh))
        return out

    def objects(self, index: int) -> list[SceneObject]:
        """Ground truth of frame ``index``: every object's class, box and sounding flag."""
        source = self.segment_at(int(round(index * self.sample_rate / self.fps))).source
        return [
            SceneObject(m.class_id, box, j == source)
            for j, (m, box) in enumerate(zip(self.movers, self.boxes(index), strict=True))
        ]

    def outline(self, j: int, box: tuple[int, int, int, int]) -> list[list[int]]:
        """Object ``j``'s outline placed at ``box`` (its box in a frame): the polygon, in frame
        pixels, around where its sprite is at least half opaque."""
        if j not in self._outlines:
            import cv2

            sprite = self.movers[j].sprite
            mask = (sprite.alpha >= 0.5).astype(np.uint8)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            largest = max(contours, key=cv2.contourArea)
            polygon = cv2.approxPolyDP(largest, 1.0, True).reshape(-1, 2)
            self._outlines[j] = polygon - np.asarray(sprite.box[:2])
        return (self._outlines[j] + np.asarray(box[:2])).tolist()

    def truth(self, index: int) -> list[dict]:
        """Frame ``index``'s ground truth as the live pipeline and the stream's JSON carry it:
        every object's class name, box and sounding flag, and the sounding one's outline."""
        names = self.world.class_names
        out = []
        for j, o in enumerate(self.objects(index)):
            entry = {"class": names[o.class_id], "box": list(o.box), "sounding": o.sounding}
            if o.sounding:
                entry["outline"] = self.outline(j, o.box)
            out.append(entry)
        return out

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` -> (H, W, 3) uint8 RGB."""
        canvas = self.background.copy()
        for m, box in zip(self.movers, self.boxes(index), strict=True):
            paste(
                canvas,
                m.sprite.rgb,
                m.sprite.alpha,
                box[0] - m.sprite.box[0],
                box[1] - m.sprite.box[1],
            )
        return canvas

    def render(self, index: int) -> tuple[np.ndarray, list[SceneObject]]:
        return self.frame(index), self.objects(index)

    # ------------------------------------------------------------------------------- audio

    def _extend(self) -> None:
        j = len(self._segments)
        start = self._segments[-1].end if j else 0
        rng = self._rng(1, j)
        gap = rng.random() < 0.25 and j > 0 and self._segments[-1].source is not None
        duration = rng.uniform(0.4, 1.2) if gap else rng.uniform(4.0, 7.0)
        previous = next((s.source for s in reversed(self._segments) if s.source is not None), None)
        choices = [k for k in range(len(self.movers)) if k != previous] or [0]
        # Mostly the object that has waited longest (so every object gets its turns), else any.
        waited = min(choices, key=lambda k: self._last_sounded.get(k, -1))
        pick = waited if rng.random() < 0.7 else choices[int(rng.integers(len(choices)))]
        source = None if gap else int(pick)
        if source is not None:
            self._last_sounded[source] = j
        end = start + int(round(duration * self.sample_rate))
        self._segments.append(Segment(start, end, source))
        self._starts.append(start)

    def segment_index(self, sample: int) -> int:
        """Index of the segment that holds absolute sample ``sample``."""
        while not self._segments or self._segments[-1].end <= sample:
            self._extend()
        return bisect.bisect_right(self._starts, sample) - 1

    def segment_at(self, sample: int) -> Segment:
        return self._segments[self.segment_index(sample)]

    def segments(self, end: int | None = None) -> list[Segment]:
        """The segments that cover samples [0, end) (default: the whole stream)."""
        end = self.n_samples if end is None else end
        if end is None:
            raise ValueError("an endless stream needs an end sample")
        return self._segments[: self.segment_index(max(end - 1, 0)) + 1]

    def _signal(self, j: int) -> np.ndarray:
        if j not in self._signals:
            seg = self._segments[j]
            n = seg.end - seg.start
            voice = self.movers[seg.source].voice
            x = self.world.render_voice(voice, n, self._rng(2, j), start=seg.start)
            fade = min(int(self.FADE_S * self.sample_rate), n // 2)
            if fade:
                ramp = np.linspace(0, 1, fade, endpoint=False, dtype=np.float32)
                x[:fade] *= ramp
                x[n - fade :] *= ramp[::-1]
            self._signals[j] = x
            while len(self._signals) > 8:
                self._signals.popitem(last=False)
        self._signals.move_to_end(j)
        return self._signals[j]

    def audio(self, n0: int, n1: int) -> np.ndarray:
        """Samples [n0, n1) -> (n1 - n0,) float32 in [-1, 1]."""
        if n1 < n0 or n0 < 0:
            raise ValueError(f"bad sample range [{n0}, {n1})")
        out = np.empty(n1 - n0, np.float32)
        if n1 == n0:
            return out
        block = self.NOISE_BLOCK
        level = np.float32(self.world.config.noise_level)
        for b in range(n0 // block, (n1 - 1) // block + 1):
            noise = self._rng(3, b).standard_normal(block, dtype=np.float32) * level
            a, e = max(n0, b * block), min(n1, (b + 1) * block)
            out[a - n0 : e - n0] = noise[a - b * block : e - b * block]
        j = self.segment_index(n0)
        self.segment_index(n1 - 1)
        while j < len(self._segments) and self._segments[j].start < n1:
            seg = self._segments[j]
            if seg.source is not None:
                a, e = max(n0, seg.start), min(n1, seg.end)
                out[a - n0 : e - n0] += self._signal(j)[a - seg.start : e - seg.start]
            j += 1
        return np.clip(out, -1.0, 1.0)

    def describe(self) -> dict:
        """Size, rates, objects and (for a finite stream) the sounding schedule, JSON-ready."""
        names = self.world.class_names
        out = {
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "sample_rate": self.sample_rate,
            "seconds": self.seconds,
            "objects": [names[m.class_id] for m in self.movers],
        }
        if self.n_samples is not None:
            out["segments"] = [
                {"start": s.start, "end": s.end, "source": s.source} for s in self.segments()
            ]
        return out
