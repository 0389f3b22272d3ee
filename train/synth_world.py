"""The synthetic sounding-objects world: K classes that each look and sound their own way.

No public dataset can be downloaded here, so the project trains, tests and demonstrates on this
world (design notes, "The synthetic sounding-objects world"). Everything is numpy and derives
from seeds, never from a generator shared between calls:

- ``World(config)`` holds K class identities drawn from ``config.seed``: a visual identity (shape,
  colour family, texture) and a sound identity (kind, register, rhythm, harmonic profile).
  ``World.look`` / ``World.voice`` draw one instance of a class (size, aspect, rotation, hue,
  pitch, rhythm and loudness jitter), so classes are learnable but not trivially separable.
- ``World.scene(rng, ...)`` -> ``Scene``: a cluttered background, 0-2 sounding objects and 0-3
  silent objects of other classes, the mixture audio, each source's own signal and the boxes.
- ``train.synth_stream.StreamScript.draw(world, rng, ...)``: a deterministic video + audio
  script for the live pipeline, built on this module (which knows nothing of streams). Objects
  move linearly, bouncing off the borders, and the sounding object changes every 2-4 s (with
  short silent gaps). Frame ``i`` and any audio range ``[n0, n1)`` can be asked
  for in any order: each sounding segment's signal and each block of background noise is drawn
  from a generator seeded by (world seed, stream key, segment or block index).

Coordinates: images are (H, W, 3) uint8 RGB; boxes are (x0, y0, x1, y1) pixels, x1 / y1 exclusive.
Audio is float32 mono in [-1, 1] at ``config.sample_rate``.
"""

from __future__ import annotations

import colorsys
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

log = logging.getLogger(__name__)

SHAPES = ("circle", "square", "triangle", "diamond", "star", "ring", "cross", "hexagon")
#: Colour families: name and hue centre in degrees (far enough apart that +-8 degrees of jitter
#: never meet).
COLOURS = (
    ("red", 0.0),
    ("orange", 28.0),
    ("yellow", 55.0),
    ("green", 120.0),
    ("cyan", 185.0),
    ("blue", 228.0),
    ("purple", 275.0),
    ("pink", 320.0),
)
TEXTURES = ("solid", "stripes", "dots", "checker")
SOUND_KINDS = ("tone", "warble", "noise", "knock")
PROFILES = ("bright", "mellow", "hollow")  # harmonic amplitude 1/n, 1/n^2, odd harmonics 1/n
RHYTHMS = (0.0, 2.0, 3.5, 6.0)  # pulses per second of tone / warble / noise; 0 = steady
KNOCK_RHYTHMS = (2.0, 3.0, 4.5, 7.0)  # knocks per second
MAX_CLASSES = len(SHAPES) * len(COLOURS)  # every class has its own (colour, shape) pair
#: Object sides as fractions of the frame side, for one and for two sounding objects, and for
#: silent ones. Sounding boxes cover about 12-50 % of the frame, as on VGG-SS: the evaluation
#: predicts the hotter half of the pixels, so a box below a quarter of the frame could never
#: reach cIoU 0.5 and the headline metric would say nothing.
SOUNDING_SCALE = ((0.35, 0.7), (0.3, 0.5))
SILENT_SCALE = (0.2, 0.4)
#: Object sides in live streams, as fractions of the frame's shorter side: two or three objects
#: move in a 4:3 frame, large enough to stay in the range the scenes train on once squeezed to
#: the model's square input.
STREAM_SCALE = (0.45, 0.62)
HUE_JITTER = 8.0  # degrees of hue variation inside a class
_REGISTER_HZ = (200.0, 2400.0)  # class registers are log-spaced over this range (at 16 kHz)
TAG_IDENTITY, TAG_STREAM = 101, 202  # distinct seed streams for identities and streams


@dataclass(frozen=True)
class WorldConfig:
    """What the world looks and sounds like; ``seed`` fixes the class identities."""

    classes: int = 8  # few classes: many same-class pairs per batch (FNAC's false negatives)
    image_size: int = 224  # the model's input side, so frames need no resizing
    sample_rate: int = 16000  # VGGSound's rate, the rate the published checkpoints expect
    clip_seconds: float = 4.0  # covers the centred 3 s window the model reads, with margin
    # Std of the white background hiss (about -34 dBFS): real silence is never digital zero, so a
    # sounding detector must look past the level; a source is about 15-20 dB louder.
    noise_level: float = 0.02
    seed: int = 0  # class identities derive from it (samples use their own seeded generators)

    def __post_init__(self) -> None:
        if not 2 <= self.classes <= MAX_CLASSES:
            raise ValueError(f"classes must be between 2 and {MAX_CLASSES}, not {self.classes}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be at least 32 pixels, not {self.image_size}")
        if self.sample_rate < 8000:
            raise ValueError(f"sample_rate must be at least 8000 Hz, not {self.sample_rate}")
        if self.clip_seconds <= 0 or self.noise_level < 0:
            raise ValueError("clip_seconds must be positive and noise_level not negative")


@dataclass(frozen=True)
class ClassIdentity:
    """One class: how it looks and how it sounds (before the per-instance variation)."""

    id: int
    name: str  # "<colour>-<shape>-<sound word>", e.g. "red-star-pulse"
    shape: str
    colour: str
    hue: float  # degrees, centre of the colour family
    texture: str
    sound: str  # one of SOUND_KINDS
    word: str  # what it sounds like: hum, beep, warble, trill, hiss, pulse, knock, rattle
    base_freq: float  # Hz: fundamental (tone, warble), band centre (noise), resonance (knock)
    rhythm: float  # pulses per second, 0 = steady
    profile: str  # harmonic profile of tone / warble

    def describe(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Look:
    """One drawn instance of a class."""

    class_id: int
    size: int  # pixels: the shape spans about size x size before aspect and rotation
    stretch: tuple[float, float]  # (x, y) scale of the shape, the larger one 1
    rotation: float  # radians
    colour: tuple[float, float, float]  # RGB 0-255, main colour
    shade: tuple[float, float, float]  # RGB 0-255, texture colour (a dark shade of the same hue)
    period: float  # texture period in pixels
    phase: float  # texture phase, 0-1
    light: tuple[float, float]  # brightness gradient direction and strength


@dataclass(frozen=True)
class Sprite:
    """A rendered look: colour (s, s, 3) float32 0-255, alpha (s, s) float32, tight box in it."""

    rgb: np.ndarray
    alpha: np.ndarray
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Voice:
    """One sounding instance of a class."""

    class_id: int
    freq: float  # Hz
    rhythm: float  # pulses per second, 0 = steady
    duty: float  # fraction of a pulse period that sounds
    offset: float  # rhythm phase, 0-1
    harmonics: tuple[float, ...]  # amplitudes of harmonics 1, 2, ...
    phases: tuple[float, ...]  # their starting phases (radians)
    vibrato: tuple[float, float]  # (depth as a fraction of freq, rate in Hz); warble only
    bandwidth: float  # octaves; noise only
    decay: float  # seconds; knock only
    gain: float  # RMS of the source


@dataclass(frozen=True)
class SceneObject:
    """Ground truth of one object in a frame."""

    class_id: int
    box: tuple[int, int, int, int]  # pixels, x1 / y1 exclusive
    sounding: bool


@dataclass
class Scene:
    """One still scene; ``sources[k]`` is the k-th sounding object's own signal (no noise)."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    audio: np.ndarray  # (N,) float32 in [-1, 1]: the sources + background noise
    objects: list[SceneObject]  # the sounding ones first, in the order of ``sources``
    sources: list[np.ndarray]
    sample_rate: int

    @property
    def sounding(self) -> list[SceneObject]:
        return [o for o in self.objects if o.sounding]


def _hsv(hue_deg: float, sat: float, val: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, sat, val)
    return (255.0 * r, 255.0 * g, 255.0 * b)


def _polygon(u: np.ndarray, v: np.ndarray, normals_deg: Sequence[float], apothem: float):
    f = None
    for a in np.deg2rad(normals_deg):
        d = u * math.cos(a) + v * math.sin(a)
        f = d if f is None else np.maximum(f, d)
    return f / apothem, 1.0 / apothem


def _shape_field(shape: str, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, float]:
    """Field f <= 1 inside the shape (unit coordinates, v down, the shape within about [-1, 1])
    and the size of its gradient near the edge (for a one-pixel soft edge)."""
    if shape == "circle":
        return np.hypot(u, v), 1.0
    if shape == "square":
        return _polygon(u, v, (0, 90, 180, 270), 0.78)
    if shape == "triangle":  # apex up, circumradius 1.15, centred on its vertical extent
        return _polygon(u, v - 0.2875, (90, 210, 330), 0.575)
    if shape == "diamond":
        return np.abs(u) / 0.72 + np.abs(v) / 1.05, 1.6
    if shape == "star":  # five points, straight-ish edges between 0.45 and 1.05
        r = np.hypot(u, v)
        tri = np.abs(np.mod(np.arctan2(u, -v) * (5 / (2 * np.pi)), 1.0) - 0.5) * 2
        return r / (0.45 + 0.6 * tri), 1.4
    if shape == "ring":
        return np.abs(np.hypot(u, v) - 0.72) / 0.28, 1 / 0.28
    if shape == "cross":
        au, av = np.abs(u), np.abs(v)
        return np.minimum(np.maximum(au + 0.66, av), np.maximum(au, av + 0.66)), 1.0
    if shape == "hexagon":
        return _polygon(u, v, (0, 60, 120, 180, 240, 300), 0.88)
    raise ValueError(f"unknown shape {shape!r}; choose one of {SHAPES}")


def _texture(texture: str, x: np.ndarray, y: np.ndarray, period: float, phase: float):
    """Texture mask (float32, 1 = shade colour) in the object's rotated pixel frame."""
    if texture == "solid":
        return np.zeros(np.broadcast(x, y).shape, np.float32)
    a, b = x / period + phase, y / period + phase
    if texture == "stripes":
        return (np.mod(a + 0.3 * b, 1.0) < 0.5).astype(np.float32)
    if texture == "dots":
        return ((np.mod(a, 1.0) - 0.5) ** 2 + (np.mod(b, 1.0) - 0.5) ** 2 < 0.09).astype(np.float32)
    if texture == "checker":
        return (np.mod(np.floor(a) + np.floor(b), 2) > 0).astype(np.float32)
    raise ValueError(f"unknown texture {texture!r}; choose one of {TEXTURES}")


def paste(canvas: np.ndarray, colour: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend ``colour`` ((h, w, 3) or (3,), 0-255) with ``alpha`` (h, w) into ``canvas``
    (H, W, 3) at top-left (x, y), in place; parts outside the canvas are dropped. A uint8 canvas
    is blended through float32 on the covered crop only."""
    h, w = alpha.shape
    height, width = canvas.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)
    if x1 <= x0 or y1 <= y0:
        return
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x, None]
    c = colour if colour.ndim == 1 else colour[y0 - y : y1 - y, x0 - x : x1 - x]
    region = canvas[y0:y1, x0:x1].astype(np.float32)
    region += a * (c - region)
    canvas[y0:y1, x0:x1] = region + 0.5 if canvas.dtype == np.uint8 else region


def _soft_disc(d2: np.ndarray, radius_px: float) -> np.ndarray:
    """Alpha of ``sqrt(d2) <= 1`` (normalised squared distance) with a one-pixel soft edge."""
    return np.clip(0.5 + (1.0 - np.sqrt(d2)) * radius_px, 0.0, 1.0).astype(np.float32)


def _smooth_weights(n: int, cells: int) -> np.ndarray:
    """(n, cells) smoothstep interpolation weights from a coarse grid onto n pixels."""
    pos = np.linspace(0, cells - 1, n)
    i0 = np.minimum(np.floor(pos).astype(int), cells - 2)
    t = pos - i0
    t = t * t * (3 - 2 * t)
    w = np.zeros((n, cells), np.float32)
    w[np.arange(n), i0] = 1 - t
    w[np.arange(n), i0 + 1] = t
    return w


def _muted(rng: np.random.Generator) -> np.ndarray:
    """A low-saturation clutter colour: never in an object's saturated colour family."""
    return np.array(_hsv(rng.uniform(0, 360), rng.uniform(0.03, 0.3), rng.uniform(0.25, 0.75)))


def fold(p: float, length: float) -> float:
    """Position ``p`` reflected into [0, length] (motion bouncing off both ends)."""
    if length <= 0:
        return 0.0
    m = p % (2 * length)
    return m if m <= length else 2 * length - m


class World:
    """K class identities derived from ``config.seed``, and the renderers that draw from them."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()
        self.identities = self._make_identities()
        self.class_names = [c.name for c in self.identities]

    def _make_identities(self) -> list[ClassIdentity]:
        c = self.config
        rng = np.random.default_rng([c.seed, TAG_IDENTITY])
        shape_p, colour_p = rng.permutation(len(SHAPES)), rng.permutation(len(COLOURS))
        texture_p, kind_p = rng.permutation(len(TEXTURES)), rng.permutation(len(SOUND_KINDS))
        rhythm_p, profile_p = rng.permutation(len(RHYTHMS)), rng.permutation(len(PROFILES))
        # Noise bands sit an octave above the register: keep them below 0.3 x the sample rate.
        top = min(_REGISTER_HZ[1], 0.15 * c.sample_rate)
        registers = np.geomspace(_REGISTER_HZ[0], top, c.classes)[rng.permutation(c.classes)]
        out = []
        for k in range(c.classes):
            # (k % 8, (k + k // 8) % 8) is a different (shape, colour) pair for every k < 64; kind
            # and rhythm together differ for every k < 16; every class has its own register.
            shape = SHAPES[shape_p[k % 8]]
            colour, hue = COLOURS[colour_p[(k + k // 8) % 8]]
            texture = TEXTURES[texture_p[(k + k // 4) % 4]]
            kind = SOUND_KINDS[kind_p[k % 4]]
            r = rhythm_p[(k // 4 + k // 16) % 4]
            profile = PROFILES[profile_p[(k // 4) % 3]]
            register = float(registers[k])
            if kind == "knock":
                rhythm, freq = KNOCK_RHYTHMS[r], register * 1.5
                word = "knock" if rhythm < 4 else "rattle"
            else:
                rhythm = RHYTHMS[r]
                freq = register * 2 if kind == "noise" else register
                word = {"tone": ("hum", "beep"), "warble": ("warble", "trill")}.get(
                    kind, ("hiss", "pulse")
                )[rhythm > 0]
            freq = round(min(freq, 0.3 * c.sample_rate), 1)
            name = f"{colour}-{shape}-{word}"
            out.append(
                ClassIdentity(
                    id=k, name=name, shape=shape, colour=colour, hue=hue, texture=texture,
                    sound=kind, word=word, base_freq=freq, rhythm=rhythm, profile=profile,
                )
            )  # fmt: skip
        return out

    def describe(self) -> dict:
        """The config and every class identity, JSON-ready."""
        return {
            "config": asdict(self.config),
            "classes": [c.describe() for c in self.identities],
        }

    # ----------------------------------------------------------------------------- visuals

    def look(
        self,
        rng: np.random.Generator,
        class_id: int,
        side: int,
        scale: tuple[float, float] = (1 / 6, 1 / 2.5),
    ) -> Look:
        """One instance of class ``class_id``, about ``scale`` x ``side`` pixels across."""
        ident = self.identities[class_id]
        size = max(6, int(round(side * rng.uniform(*scale))))
        a = rng.uniform(-0.15, 0.15)
        sx, sy = math.exp(-a), math.exp(a)
        m = max(sx, sy)
        rotation = math.radians(rng.uniform(-20, 20))
        hue = ident.hue + rng.uniform(-HUE_JITTER, HUE_JITTER)
        sat, val = rng.uniform(0.6, 0.95), rng.uniform(0.72, 1.0)
        colour = _hsv(hue, sat, val)
        shade = _hsv(hue, sat * 0.95, val * rng.uniform(0.38, 0.55))
        period = max(3.0, size / rng.uniform(3.5, 5.5))
        light_angle, light = rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.2)
        return Look(
            class_id,
            size,
            (sx / m, sy / m),
            rotation,
            colour,
            shade,
            period,
            rng.uniform(0, 1),
            (light * math.cos(light_angle), light * math.sin(light_angle)),
        )

    def sprite(self, look: Look) -> Sprite:
        """Render a look on a transparent square with room for its rotation."""
        ident = self.identities[look.class_id]
        half = look.size / 2
        n = look.size + 2 * (int(math.ceil(0.15 * look.size)) + 1)
        p = np.arange(n, dtype=np.float32) - (n - 1) / 2
        cos, sin = math.cos(look.rotation), math.sin(look.rotation)
        xr = p[None, :] * cos + p[:, None] * sin  # (n, n) rotated object frame, pixels
        yr = -p[None, :] * sin + p[:, None] * cos
        sx, sy = look.stretch
        f, g = _shape_field(ident.shape, xr / (half * sx), yr / (half * sy))
        alpha = np.clip(0.5 + (1.0 - f) * half * min(sx, sy) / g, 0.0, 1.0).astype(np.float32)
        m = _texture(ident.texture, xr, yr, look.period, look.phase)[..., None]
        colour, shade = np.array(look.colour, np.float32), np.array(look.shade, np.float32)
        light = 1.0 + (xr * look.light[0] + yr * look.light[1]) / half
        rgb = (colour * (1 - m) + shade * m) * light[..., None]
        rgb = np.clip(rgb, 0, 255).astype(np.float32)
        rows, cols = np.nonzero(alpha.max(axis=1) > 0.5)[0], np.nonzero(alpha.max(axis=0) > 0.5)[0]
        box = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
        return Sprite(rgb, alpha, box)

    def background(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        """Clutter: a smooth muted colour field, blobs, strokes and sensor noise -> (H, W, 3)
        float32 0-255."""
        gh, gw = (int(v) for v in rng.integers(2, 6, size=2))
        grid = np.stack([_muted(rng) for _ in range(gh * gw)]).reshape(gh, gw, 3).astype(np.float32)
        wy, wx = _smooth_weights(height, gh), _smooth_weights(width, gw)
        img = (wy @ grid.reshape(gh, gw * 3)).reshape(height, gw, 3).transpose(0, 2, 1)
        img = np.ascontiguousarray((img @ wx.T).transpose(0, 2, 1))  # (H, W, 3)
        side = min(height, width)
        for _ in range(int(rng.integers(4, 11))):  # blobs: soft ellipses
            rx, ry = side * rng.uniform(0.03, 0.14, size=2)
            cx, cy = rng.uniform(0, width), rng.uniform(0, height)
            x0, y0 = int(cx - rx) - 1, int(cy - ry) - 1
            xs = np.arange(x0, int(cx + rx) + 2, dtype=np.float32)
            ys = np.arange(y0, int(cy + ry) + 2, dtype=np.float32)
            d2 = ((xs[None, :] - cx) / rx) ** 2 + ((ys[:, None] - cy) / ry) ** 2
            alpha = _soft_disc(d2, min(rx, ry)) * rng.uniform(0.4, 0.85)
            paste(img, _muted(rng).astype(np.float32), alpha, x0, y0)
        for _ in range(int(rng.integers(3, 9))):  # strokes: thick segments
            p0 = np.array([rng.uniform(0, width), rng.uniform(0, height)])
            p1 = p0 + rng.normal(0, side * 0.2, size=2)
            half_w = side * rng.uniform(0.004, 0.015) + 0.8
            lo, hi = np.floor(np.minimum(p0, p1) - half_w - 1), np.ceil(np.maximum(p0, p1) + half_w)
            xs = np.arange(lo[0], hi[0] + 1, dtype=np.float32)
            ys = np.arange(lo[1], hi[1] + 1, dtype=np.float32)
            d = p1 - p0
            t = ((xs[None, :] - p0[0]) * d[0] + (ys[:, None] - p0[1]) * d[1]) / max(d @ d, 1e-6)
            t = np.clip(t, 0, 1)
            dist = np.hypot(xs[None, :] - p0[0] - t * d[0], ys[:, None] - p0[1] - t * d[1])
            alpha = np.clip(half_w + 0.5 - dist, 0, 1).astype(np.float32) * rng.uniform(0.5, 0.9)
            paste(img, _muted(rng).astype(np.float32), alpha, int(lo[0]), int(lo[1]))
        img += (rng.random(img.shape, dtype=np.float32) - 0.5) * 10.0  # sensor noise, std 2.9
        return img

    # ------------------------------------------------------------------------------ sounds

    def voice(self, rng: np.random.Generator, class_id: int) -> Voice:
        """One instance of class ``class_id``'s sound: pitch, rhythm, timbre and level jitter."""
        ident = self.identities[class_id]
        freq = ident.base_freq * math.exp(rng.uniform(-0.04, 0.04))
        profile = {"bright": 1.0, "mellow": 2.0, "hollow": 1.0}[ident.profile]
        amps = []
        for h in range(1, 9):
            a = h**-profile * math.exp(rng.uniform(-0.25, 0.25))
            amps.append(0.0 if ident.profile == "hollow" and h % 2 == 0 else a)
        phases = tuple(float(v) for v in rng.uniform(0, 2 * math.pi, size=8))
        vibrato = (rng.uniform(0.025, 0.05), rng.uniform(4.5, 7.0))
        return Voice(
            class_id,
            float(freq),
            float(ident.rhythm * math.exp(rng.uniform(-0.12, 0.12))),
            float(rng.uniform(0.35, 0.6)),
            float(rng.uniform(0, 1)),
            tuple(amps),
            phases,
            vibrato if ident.sound == "warble" else (0.0, 0.0),
            float(rng.uniform(0.35, 0.7)),
            float(rng.uniform(0.025, 0.04)),
            float(rng.uniform(0.1, 0.18)),
        )

    def render_voice(
        self, voice: Voice, n: int, rng: np.random.Generator, start: int = 0
    ) -> np.ndarray:
        """``n`` samples of a voice from absolute sample ``start`` -> (n,) float32 of RMS
        ``voice.gain`` before the rhythm gate (less where peaks would pass 0.7). Only noise sounds
        draw from ``rng``; the others are functions of time alone."""
        rate = self.config.sample_rate
        kind = self.identities[voice.class_id].sound
        t = (start + np.arange(n, dtype=np.float64)) / rate
        if kind in ("tone", "warble"):
            depth, vib_rate = voice.vibrato
            base = 2 * np.pi * np.mod(voice.freq * t, 1.0)
            if depth > 0:
                base += voice.freq * depth / vib_rate * np.sin(2 * np.pi * vib_rate * t)
            base = np.mod(base, 2 * np.pi).astype(np.float32)  # float32 sines are 5x faster
            x = np.zeros(n, np.float32)
            for h, (a, ph) in enumerate(zip(voice.harmonics, voice.phases, strict=True), 1):
                if a > 0 and h * voice.freq * (1 + depth) < 0.45 * rate:
                    x += np.float32(a) * np.sin(np.float32(h) * base + np.float32(ph))
        elif kind == "noise":
            spectrum = np.fft.rfft(rng.standard_normal(n))
            octaves = np.log2(np.maximum(np.fft.rfftfreq(n, 1 / rate), 1.0) / voice.freq)
            spectrum *= np.exp(-0.5 * (octaves / (voice.bandwidth / 2)) ** 2)
            x = np.fft.irfft(spectrum, n).astype(np.float32)
        else:  # knock: decaying resonant strikes at the rhythm's rate
            since = np.mod(voice.rhythm * t + voice.offset, 1.0) / voice.rhythm  # s since strike
            since = since.astype(np.float32)
            w = np.float32(2 * np.pi * voice.freq)
            ring = np.sin(w * since) + np.float32(0.5) * np.sin(np.float32(2.76) * w * since)
            x = np.exp(-since / np.float32(voice.decay)) * ring
        # Loudness: RMS ``gain``, but peaks (knocks have a high crest factor) below 0.7.
        rms, peak = float(np.sqrt(np.mean(x * x))), float(np.abs(x).max())
        x *= np.float32(min(voice.gain / max(rms, 1e-9), 0.7 / max(peak, 1e-9)))
        if voice.rhythm > 0 and kind != "knock":
            phase = np.mod(voice.rhythm * t + voice.offset, 1.0)
            ramp = 0.02 * voice.rhythm  # 20 ms attack and release, in rhythm phase units
            gate = np.clip(phase / ramp, 0, 1) * np.clip((voice.duty - phase) / ramp, 0, 1)
            x *= (gate * gate * (3 - 2 * gate)).astype(np.float32)
        return x

    def noise(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Background hiss: (n,) float32 white noise of std ``config.noise_level``."""
        return rng.standard_normal(n, dtype=np.float32) * np.float32(self.config.noise_level)

    # ------------------------------------------------------------------------------ scenes

    def scene(
        self,
        rng: np.random.Generator,
        n_sounding: int = 1,
        n_silent: int | None = None,
        classes: Sequence[int] | None = None,
    ) -> Scene:
        """A still scene with ``n_sounding`` sounding objects of distinct classes (``classes`` or
        random) and ``n_silent`` silent objects of other classes (None: random 0-3).

        Silent scenes (``n_sounding=0``) hold background noise only: the "off-screen sound" case
        is covered by pairing a frame with another clip's audio (see ``train.synth``).
        """
        c = self.config
        size = c.image_size
        if classes is None:
            sounding = [int(k) for k in rng.choice(c.classes, n_sounding, replace=False)]
        else:
            sounding = [int(k) for k in classes]
            if len(set(sounding)) != len(sounding) or len(sounding) != n_sounding:
                raise ValueError(f"classes {classes} must be {n_sounding} distinct class ids")
        others = [k for k in range(c.classes) if k not in sounding]
        if n_silent is None:
            n_silent = int(rng.integers(0, min(3, len(others)) + 1))
        if n_silent > len(others):
            raise ValueError(
                f"{n_silent} silent objects need {n_silent} classes besides the "
                f"sounding ones; the world has {c.classes} classes"
            )
        silent = [int(k) for k in rng.choice(others, n_silent, replace=False)]
        canvas = self.background(rng, size, size)
        placed: list[tuple[Sprite, int, int, SceneObject]] = []
        covered: list[float] = []  # area of each sounding box hidden under silent objects
        for k, class_id in enumerate(sounding + silent):
            is_sounding = k < len(sounding)
            scale = SOUNDING_SCALE[min(len(sounding), 2) - 1] if is_sounding else SILENT_SCALE
            sprite = self.sprite(self.look(rng, class_id, size, scale=scale))
            bx0, by0, bx1, by1 = sprite.box
            bw, bh = bx1 - bx0, by1 - by0
            best = None
            for _ in range(40):
                x, y = int(rng.integers(0, size - bw + 1)), int(rng.integers(0, size - bh + 1))
                box = (x, y, x + bw, y + bh)
                hidden = [_overlap(box, o.box) for _, _, _, o in placed[: len(sounding)]]
                if is_sounding:  # sounding objects barely touch each other
                    area = bw * bh
                    bad = sum(
                        h > 0.05 * min(area, _area(o.box))
                        for h, (*_, o) in zip(hidden, placed, strict=False)
                    )
                else:  # at most a quarter of any sounding object hides under silent ones
                    bad = sum(
                        covered[i] + h > 0.25 * _area(placed[i][3].box)
                        for i, h in enumerate(hidden)
                    )
                if best is None or bad < best[0]:
                    best = (bad, box, hidden)
                if bad == 0:
                    break
            bad, box, hidden = best
            if bad and not is_sounding:
                log.debug("no room for a silent object of class %d; left out", class_id)
                continue
            if is_sounding:
                covered.append(0.0)
            else:
                covered = [a + h for a, h in zip(covered, hidden, strict=True)]
            obj = SceneObject(class_id, box, is_sounding)
            placed.append((sprite, box[0] - bx0, box[1] - by0, obj))
        for i in rng.permutation(len(placed)):
            sprite, x, y, _ = placed[i]
            paste(canvas, sprite.rgb, sprite.alpha, x, y)
        image = np.clip(canvas + 0.5, 0, 255).astype(np.uint8)
        n = int(round(c.clip_seconds * c.sample_rate))
        sources = [self.render_voice(self.voice(rng, k), n, rng) for k in sounding]
        audio = self.noise(rng, n)
        for s in sources:
            audio += s
        audio = np.clip(audio, -1.0, 1.0)
        return Scene(image, audio, [p[3] for p in placed], sources, c.sample_rate)


def _area(box: Sequence[int]) -> int:
    return max(box[2] - box[0], 0) * max(box[3] - box[1], 0)


def _overlap(a: Sequence[int], b: Sequence[int]) -> int:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
