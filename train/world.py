"""The synthetic sounding-objects world: classes with a look and a sound, scenes and streams.

numpy only and cheap to import: ``fnac synth`` writes datasets from it and the live pipeline
streams it. Everything is a pure function of the seed (and of time, for streams), so a frame or an
audio chunk can be regenerated in any order and chunks join without a seam.

A class k has a visual identity (shape, hue family, texture) and a sound identity (a harmonic
tone, a band of noise or a pulsed tone around a class-specific pitch, with a rhythm). Samples of a
class vary in size, hue, pitch and rhythm, so classes are learnable but not trivially separable.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

SHAPES = ("circle", "square", "triangle", "diamond", "star", "ring", "cross", "hexagon")
TEXTURES = ("solid", "stripes", "dots", "checker")
SOUNDS = ("tone", "noise", "pulse")
NOISE_BLOCK = 4096  # background noise is drawn per aligned block of samples: chunks join exactly


@dataclass(frozen=True)
class WorldConfig:
    classes: int = 8  # K: design asks for at least 8; few classes = many same-class pairs
    image_size: int = 224  # square frames, the model's input size
    sample_rate: int = 16000  # the VGGSound rate
    clip_seconds: float = 4.0  # longer than the 3 s window, so the centred crop is exercised
    noise_level: float = 0.05  # background noise amplitude (sounds peak near 0.5)
    seed: int = 0


@dataclass(frozen=True)
class ClassIdentity:
    name: str
    shape: str
    hue: float  # centre of the colour family, 0..1
    texture: str
    sound: str
    pitch: float  # Hz: fundamental (tone, pulse) or band centre (noise)
    rhythm: float  # Hz: amplitude-modulation rate


@dataclass
class WorldObject:
    class_id: int
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1 / y1 exclusive
    sounding: bool
    hue: float = 0.0
    pitch: float = 0.0
    rhythm: float = 0.0
    phase: float = 0.0


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    audio: np.ndarray  # (N,) float32 in [-1, 1]
    objects: list[WorldObject]
    sources: list[np.ndarray] = field(default_factory=list)  # each sounding object's own audio

    @property
    def sounding(self) -> list[WorldObject]:
        return [o for o in self.objects if o.sounding]


def _hue_name(hue: float) -> str:
    names = (
        "red",
        "orange",
        "yellow",
        "lime",
        "green",
        "teal",
        "cyan",
        "azure",
        "blue",
        "violet",
        "magenta",
        "pink",
    )
    return names[int(round(hue * len(names))) % len(names)]


def class_identities(classes: int) -> list[ClassIdentity]:
    """K identities: shapes, hues, textures and sounds spread so that neighbours differ."""
    if classes < 2:
        raise ValueError("the world needs at least 2 classes")
    pitches = np.geomspace(180.0, 1500.0, classes)  # noise bands reach 1.4x: below 2.1 kHz
    order = np.random.default_rng(classes).permutation(classes)  # decouple pitch from hue
    out = []
    for k in range(classes):
        shape = SHAPES[k % len(SHAPES)]
        hue = (k * 0.381966) % 1.0  # golden-ratio steps keep hues apart for any K
        texture = TEXTURES[(k // len(SHAPES) + k) % len(TEXTURES)]
        sound = SOUNDS[k % len(SOUNDS)]
        pitch = float(pitches[order[k]])
        rhythm = 1.5 + (k * 7 % 11) * 0.6
        name = f"{_hue_name(hue)}-{shape}-{sound}"
        if sum(c.name.startswith(name) for c in out):
            name = f"{name}-{k}"
        out.append(ClassIdentity(name, shape, hue, texture, sound, pitch, rhythm))
    return out


# ---------------------------------------------------------------------------------------------
# Pictures


def _shape_mask(shape: str, h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j]
    r = np.hypot(x, y)
    if shape == "circle":
        return r <= 1.0
    if shape == "square":
        return np.maximum(abs(x), abs(y)) <= 0.92
    if shape == "triangle":
        return (y >= -0.9 + 1.8 * abs(x)) & (y <= 0.9)
    if shape == "diamond":
        return abs(x) + abs(y) <= 1.0
    if shape == "star":
        theta = np.arctan2(y, x)
        return r <= 0.5 + 0.5 * np.abs(np.cos(2.5 * theta)) ** 2
    if shape == "ring":
        return (r <= 1.0) & (r >= 0.55)
    if shape == "cross":
        return ((abs(x) <= 0.33) & (abs(y) <= 1)) | ((abs(y) <= 0.33) & (abs(x) <= 1))
    if shape == "hexagon":
        return (abs(y) <= 0.87) & (abs(x) + abs(y) * 0.577 <= 1.0)
    raise ValueError(f"unknown shape {shape!r}")


def _texture(texture: str, h: int, w: int) -> np.ndarray:
    """(h, w) shading factor in [0.55, 1]."""
    y, x = np.mgrid[0:h, 0:w]
    period = max(4, min(h, w) // 5)
    if texture == "stripes":
        pattern = ((x + y) // (period // 2 + 1)) % 2
    elif texture == "dots":
        pattern = np.hypot((x % period) - period / 2, (y % period) - period / 2) < period / 4
    elif texture == "checker":
        pattern = ((x // period) + (y // period)) % 2
    else:
        pattern = np.zeros((h, w))
    return 1.0 - 0.45 * pattern


def _rgb(hue: float, sat: float, val: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(hue % 1.0, sat, val)) * 255


def draw_object(canvas: np.ndarray, identity: ClassIdentity, obj: WorldObject) -> None:
    """Paint an object into its box (clipped to the canvas), in place."""
    x0, y0, x1, y1 = obj.box
    h, w = y1 - y0, x1 - x0
    if h < 2 or w < 2:
        return
    mask = _shape_mask(identity.shape, h, w)
    shade = _texture(identity.texture, h, w)
    color = _rgb(obj.hue, 0.85, 0.95)
    H, W = canvas.shape[:2]
    cy0, cx0, cy1, cx1 = max(y0, 0), max(x0, 0), min(y1, H), min(x1, W)
    if cy1 <= cy0 or cx1 <= cx0:
        return
    sub = (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
    m = mask[sub]
    region = canvas[cy0:cy1, cx0:cx1]
    region[m] = (shade[sub][m, None] * color).astype(np.uint8)


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A cluttered backdrop: a smooth muted colour field plus random strokes."""
    coarse = rng.uniform(40, 150, (4, 4, 3))
    ys = np.linspace(0, 3, height)
    xs = np.linspace(0, 3, width)
    y0, x0 = np.floor(ys).astype(int).clip(0, 2), np.floor(xs).astype(int).clip(0, 2)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
    bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
    img = top * (1 - fy) + bottom * fy
    img += rng.normal(0, 6, (height, width, 1))
    for _ in range(int(rng.integers(4, 9))):  # strokes: thin bars in muted colours
        color = rng.uniform(30, 170, 3)
        if rng.random() < 0.5:
            y, t = int(rng.integers(0, height)), int(rng.integers(1, max(2, height // 40) + 1))
            a, b = sorted(rng.integers(0, width, 2))
            img[y : y + t, a:b] = color
        else:
            x, t = int(rng.integers(0, width)), int(rng.integers(1, max(2, width // 40) + 1))
            a, b = sorted(rng.integers(0, height, 2))
            img[a:b, x : x + t] = color
    return img.clip(0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Sounds: pure functions of absolute time, so streams can be generated chunk by chunk


def class_sound(identity: ClassIdentity, obj: WorldObject, t: np.ndarray, rate: int) -> np.ndarray:
    """The object's sound at times t (seconds): (N,) float64, peak about 0.5. Partials above
    0.45 * rate are left out (no aliasing)."""
    f0, phase = obj.pitch, obj.phase
    if identity.sound == "tone":
        wave = sum(
            np.sin(2 * np.pi * h * f0 * t + phase * h) / h
            for h in (1, 2, 3, 4)
            if h * f0 < 0.45 * rate
        )
        wave = wave / 1.6
    elif identity.sound == "noise":
        # band-limited noise as a fixed random sum of partials inside [0.7 f0, 1.4 f0]
        rng = np.random.default_rng(int(f0 * 1000) + int(phase * 1e6))
        freqs = rng.uniform(0.7 * f0, 1.4 * f0, 24)
        phases = rng.uniform(0, 2 * np.pi, 24)
        wave = np.sin(2 * np.pi * freqs[:, None] * t[None] + phases[:, None]).sum(0) / 5.0
    else:  # pulse: a tone gated by a rhythm
        gate = np.clip(np.sin(2 * np.pi * obj.rhythm * t + phase) * 3, 0, 1)
        second = 0.5 * np.sin(4 * np.pi * f0 * t) if 2 * f0 < 0.45 * rate else 0.0
        wave = (np.sin(2 * np.pi * f0 * t + phase) + second) * gate
        return 0.5 * wave / 1.5
    tremolo = 0.75 + 0.25 * np.sin(2 * np.pi * obj.rhythm * t + phase)
    return 0.5 * wave * tremolo


def noise(seed: int, n0: int, n1: int, level: float) -> np.ndarray:
    """Background noise for samples [n0, n1), drawn per aligned block: any chunking agrees."""
    if n1 <= n0:
        return np.zeros(0)
    first, last = n0 // NOISE_BLOCK, (n1 - 1) // NOISE_BLOCK
    blocks = [
        np.random.default_rng([seed, 7919, b]).standard_normal(NOISE_BLOCK)
        for b in range(first, last + 1)
    ]
    joined = np.concatenate(blocks)
    return level * joined[n0 - first * NOISE_BLOCK : n1 - first * NOISE_BLOCK]


# ---------------------------------------------------------------------------------------------
# The world


class World:
    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()
        self.classes = class_identities(self.config.classes)

    def make_object(
        self, rng: np.random.Generator, class_id: int, box, sounding: bool
    ) -> WorldObject:
        ident = self.classes[class_id]
        return WorldObject(
            class_id,
            tuple(int(v) for v in box),
            sounding,
            hue=ident.hue + rng.uniform(-0.03, 0.03),
            pitch=ident.pitch * rng.uniform(0.94, 1.06),
            rhythm=ident.rhythm * rng.uniform(0.85, 1.15),
            phase=float(rng.uniform(0, 2 * np.pi)),
        )

    def _random_box(self, rng: np.random.Generator, height: int, width: int):
        side = min(height, width)
        s = int(rng.uniform(side / 6, side / 2.5))
        sx = int(s * rng.uniform(0.85, 1.15))
        x0 = int(rng.integers(0, max(1, width - sx)))
        y0 = int(rng.integers(0, max(1, height - s)))
        return (x0, y0, x0 + sx, y0 + s)

    def scene(
        self,
        rng: np.random.Generator,
        n_sounding: int = 1,
        n_silent: int | None = None,
        offscreen: int | None = None,
    ) -> Scene:
        """A frame and its clip: ``n_sounding`` sounding objects, ``n_silent`` (default 0-3)
        silent objects of other classes; with ``offscreen`` = a class id, that class sounds but is
        not in the picture (a silent scene's distractor)."""
        cfg = self.config
        size = cfg.image_size
        if n_silent is None:
            n_silent = int(rng.integers(0, 4))
        n_total = min(n_sounding + n_silent, cfg.classes - (offscreen is not None))
        pool = [k for k in range(cfg.classes) if k != offscreen]
        class_ids = rng.choice(pool, size=n_total, replace=False)
        image = background(rng, size, size)
        objects = []
        for i, k in enumerate(class_ids):
            sounding = i < n_sounding
            objects.append(
                self.make_object(rng, int(k), self._random_box(rng, size, size), sounding)
            )
        for obj in sorted(objects, key=lambda o: o.sounding):  # sounding objects on top
            draw_object(image, self.classes[obj.class_id], obj)
        n = int(cfg.clip_seconds * cfg.sample_rate)
        t = np.arange(n) / cfg.sample_rate
        rate = cfg.sample_rate
        sources = [class_sound(self.classes[o.class_id], o, t, rate) for o in objects if o.sounding]
        if offscreen is not None:
            ghost = self.make_object(rng, offscreen, (0, 0, 0, 0), True)
            sources_audio = [class_sound(self.classes[offscreen], ghost, t, rate)]
        else:
            sources_audio = sources
        bg = noise(int(rng.integers(2**31)), 0, n, cfg.noise_level)
        audio = (sum(sources_audio) if sources_audio else 0) + bg
        return Scene(
            image,
            np.clip(audio, -1, 1).astype(np.float32),
            objects,
            [np.clip(s + bg, -1, 1).astype(np.float32) for s in sources],
        )


# ---------------------------------------------------------------------------------------------
# Streams: moving objects, the sounding one changing over time


def _bounce(p0: float, v: float, t: float, span: float) -> float:
    """Position of a point moving at v inside [0, span], reflecting at the ends."""
    if span <= 0:
        return 0.0
    q = (p0 + v * t) % (2 * span)
    return q if q <= span else 2 * span - q


@dataclass(frozen=True)
class Segment:
    start: float  # seconds
    end: float
    sounding: int | None  # index into the stream's objects, None = a silent gap


class StreamScript:
    """A deterministic scene in motion: ``frame(i)`` and ``audio(n0, n1)`` in any order.

    2-3 objects of distinct classes drift and bounce off the borders; every 2-4 s another one of
    them becomes the sounding object, sometimes after a short silent gap.
    """

    FADE_S = 0.02  # fade in / out at segment edges: no clicks

    def __init__(
        self,
        world: World,
        seed: int,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        seconds: float = 600.0,
    ) -> None:
        self.world, self.seed = world, seed
        self.width, self.height, self.fps, self.seconds = width, height, fps, seconds
        self.sample_rate = world.config.sample_rate
        rng = np.random.default_rng([seed, 31337])
        self.backdrop = background(rng, height, width)
        n = int(rng.integers(2, 4)) if world.config.classes >= 3 else 2
        class_ids = rng.choice(world.config.classes, size=n, replace=False)
        side = min(width, height)
        self.objects, self.motion = [], []
        for k in class_ids:
            s = int(rng.uniform(side / 5, side / 3))
            obj = world.make_object(rng, int(k), (0, 0, s, s), False)
            self.objects.append(obj)
            speed = rng.uniform(0.05, 0.15) * side
            angle = rng.uniform(0, 2 * np.pi)
            self.motion.append(
                (
                    rng.uniform(0, width - s),
                    rng.uniform(0, height - s),
                    speed * np.cos(angle),
                    speed * np.sin(angle),
                    s,
                )
            )
        self.segments = self._schedule(rng, n)

    def _schedule(self, rng: np.random.Generator, n: int) -> list[Segment]:
        segments, t, last = [], 0.0, None
        while t < self.seconds:
            if segments and rng.random() < 0.15:
                length, who = rng.uniform(0.6, 1.2), None
            else:
                length = rng.uniform(2.0, 4.0)
                who = int(rng.choice([i for i in range(n) if i != last]))
                last = who
            segments.append(Segment(t, t + length, who))
            t += length
        return segments

    def segment_at(self, t: float) -> Segment:
        for seg in self.segments:
            if seg.start <= t < seg.end:
                return seg
        return self.segments[-1]

    def objects_at(self, t: float) -> list[WorldObject]:
        """The objects with their boxes at time t and whether each is sounding."""
        seg = self.segment_at(t)
        out = []
        for i, (obj, (x0, y0, vx, vy, s)) in enumerate(zip(self.objects, self.motion, strict=True)):
            x = int(_bounce(x0, vx, t, self.width - s))
            y = int(_bounce(y0, vy, t, self.height - s))
            out.append(
                WorldObject(
                    obj.class_id,
                    (x, y, x + s, y + s),
                    seg.sounding == i,
                    obj.hue,
                    obj.pitch,
                    obj.rhythm,
                    obj.phase,
                )
            )
        return out

    def frame(self, index: int) -> tuple[np.ndarray, list[WorldObject]]:
        """Frame ``index`` (t = index / fps) -> ((H, W, 3) uint8 RGB, its objects)."""
        objects = self.objects_at(index / self.fps)
        image = self.backdrop.copy()
        for obj in sorted(objects, key=lambda o: o.sounding):
            draw_object(image, self.world.classes[obj.class_id], obj)
        return image, objects

    def audio(self, n0: int, n1: int) -> np.ndarray:
        """Samples [n0, n1) of the soundtrack: (n1 - n0,) float32."""
        t = np.arange(n0, n1) / self.sample_rate
        out = noise(self.seed, n0, n1, self.world.config.noise_level)
        if t.size == 0:
            return out.astype(np.float32)
        for seg in self.segments:
            if seg.sounding is None or seg.end <= t[0]:
                continue
            if seg.start > t[-1]:
                break
            sel = (t >= seg.start) & (t < seg.end)
            obj = self.objects[seg.sounding]
            ts = t[sel]
            env = np.minimum(1.0, np.minimum(ts - seg.start, seg.end - ts) / self.FADE_S)
            sound = class_sound(self.world.classes[obj.class_id], obj, ts, self.sample_rate)
            out[sel] += env * sound
        return np.clip(out, -1, 1).astype(np.float32)
