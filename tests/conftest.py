from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import _thread_pools  # noqa: F401  (first: before numpy and torch load)
import numpy as np
import pytest
import torch

# What the tests measure and keep (realtime/cache.py) goes to a folder of their own, never the
# user's cache; and ``--backend auto``, the default of every live command, is pinned to cpu:
# measuring the backends in each test's inference worker would add seconds to every live test.
# tests/test_autoselect.py lifts the pin where it tests the measuring itself.
_CACHE = tempfile.mkdtemp(prefix="fnac-test-cache-")
atexit.register(shutil.rmtree, _CACHE, True)
os.environ["FNAC_CACHE_DIR"] = _CACHE
os.environ["FNAC_BACKEND"] = "cpu"
# Likewise the thread policy: PASSIVE (the default without a verdict), so that the first headless
# demo does not measure it (tests/test_threadpolicy.py tests the measuring).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
METADATA = SHARED / "data" / "metadata"


# Training settings small enough for a test: seconds per epoch on 16 samples of 64 px.
TINY_TRAIN = dict(
    batch_size=8,
    image_size=64,
    dim=16,
    workers=0,
    init="random",
    tensorboard=False,
    progress=False,
    seed=3,
)


@pytest.fixture
def metadata_dir() -> Path:
    if not METADATA.is_dir():
        pytest.skip("../shared/data/metadata is absent (a user's clone has no ../shared)")
    return METADATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _seed_torch():
    torch.manual_seed(0)
    yield


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    from scipy.io import wavfile

    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, rate, (np.clip(samples, -1, 1) * 32767).astype(np.int16))
    return path


def write_png(path: Path, rgb: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path


def tiny_sample(rng: np.random.Generator, index: int, rate: int, size: int, seconds: float):
    """A frame with one coloured square and a tone whose pitch follows the square's colour."""
    klass = index % 2
    rgb = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    s = size // 3
    x0, y0 = int(rng.integers(0, size - s)), int(rng.integers(0, size - s))
    rgb[y0 : y0 + s, x0 : x0 + s] = (230, 40, 40) if klass == 0 else (40, 40, 230)
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.5 * np.sin(2 * np.pi * (300 if klass == 0 else 1200) * t)
    box = [x0 / size, y0 / size, (x0 + s) / size, (y0 + s) / size]
    return rgb, tone + 0.01 * rng.standard_normal(t.size), box, klass


@pytest.fixture
def av_root(tmp_path) -> Path:
    """16 samples in the VGG-SS layout (frames/ audio/ test.json test.csv), 8 kHz, 64 px."""
    return make_av_root(tmp_path / "av", n=16)


def make_av_root(
    root: Path, n: int = 16, rate: int = 8000, size: int = 64, seconds: float = 3.5, seed: int = 0
) -> Path:
    import json

    rng = np.random.default_rng(seed)
    annotations = []
    for i in range(n):
        rgb, audio, box, klass = tiny_sample(rng, i, rate, size, seconds)
        sid = f"s{i:03d}"
        write_png(root / "frames" / f"{sid}.png", rgb)
        write_wav(root / "audio" / f"{sid}.wav", audio, rate)
        annotations.append({"file": sid, "class": ["red", "blue"][klass], "bbox": [box]})
    (root / "test.json").write_text(json.dumps(annotations))
    (root / "test.csv").write_text("".join(f"{a['file']}\n" for a in annotations))
    return root


def live_result(raw_map=None, **fields):
    """A ``realtime.messages.LiveResult`` for tests of what reads results: a 7x7 map, a blank
    64x64 frame, nothing sounding unless ``fields`` say otherwise."""
    from realtime.messages import LiveResult

    values = dict(
        frame=0,
        pts=0.0,
        raw_map=np.zeros((7, 7), np.float32) if raw_map is None else raw_map,
        image=np.zeros((64, 64, 3), np.uint8),
        spectrum=np.zeros(257, np.float32),
        peak=(0, 0),
        box=(0, 0, 1, 1),
        confidence=0.0,
        sounding=False,
        score=0.0,
        level_db=-100.0,
        padded=False,
        gap=False,
        dropped=0,
        rejected=0,
        processed=1,
        truth=None,
        stamps={"capture": 0.0, "publish": 0.0},
    )
    values.update(fields)
    return LiveResult(**values)


def mux_sound(out, track, wave: np.ndarray, fmt: str = "fltp", block: int = 1024) -> None:
    """Encode ``wave`` ((N,) mono or (C, N) float samples at the track's rate) into the PyAV
    ``track`` of container ``out``, in blocks, and flush the encoder: a user's file's sound."""
    from fractions import Fraction

    import av

    samples = np.atleast_2d(np.asarray(wave, np.float32))
    layout = {1: "mono", 2: "stereo"}[samples.shape[0]]  # the encoder resamples to its own
    rate = track.rate
    for k in range(0, samples.shape[1], block):
        chunk = np.ascontiguousarray(samples[:, k : k + block])
        if fmt == "flt":  # packed: one plane, channels interleaved
            chunk = chunk.T.reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, fmt, layout)
        frame.sample_rate, frame.pts, frame.time_base = rate, k, Fraction(1, rate)
        for packet in track.encode(frame):
            out.mux(packet)
    for packet in track.encode():
        out.mux(packet)


def mux_pictures(out, stream, pictures) -> None:
    """Encode the (H, W, 3) uint8 RGB ``pictures`` into the PyAV video ``stream`` of ``out``."""
    import av

    for picture in pictures:
        for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
