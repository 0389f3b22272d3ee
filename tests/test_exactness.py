"""Live maps equal the published model's, even when the pipeline falls behind.

A clip made here with PyAV directly (not by the project's writers): a moving disc and square, a
tone that steps in pitch, stereo AAC at 44.1 kHz (so the live path resamples to the demo
checkpoint's 8 kHz). ``fnac run`` plays it in real time with a deliberately slow engine (eager,
the audio embedding recomputed for every frame) while another process keeps a core busy, so frames
are dropped. Every frame it did process is then computed again offline, independently: the frame
decoded by its index, the published test transform (PIL, bicubic), the clip's whole sound
resampled in one go and cut at the span the JSON line records, the published spectrogram, the
float32 model. Frames may be dropped; the maps of those processed must match.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO
from PIL import Image

FPS, RATE, SIZE, SECONDS = 30, 44100, (320, 240), 6.0
DEMO = REPO / "fnac" / "weights" / "demo.pth"


def write_clip(path) -> None:
    import av

    width, height = SIZE
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=RATE)
        audio.layout = "stereo"
        for i in range(int(SECONDS * FPS)):
            t = i / FPS
            image = np.full((height, width, 3), 40, np.uint8)
            cx, cy = 60 + 200 * (0.5 + 0.5 * np.sin(t)), 120 + 60 * np.cos(1.3 * t)
            image[(xx - cx) ** 2 + (yy - cy) ** 2 < 30**2] = (230, 60, 40)
            x0 = int(250 - 150 * (0.5 + 0.5 * np.sin(0.7 * t)))
            image[30:80, x0 : x0 + 50] = (40, 200, 90)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        n = int(SECONDS * RATE)
        t = np.arange(n) / RATE
        pitch = 300 + 200 * np.floor(t % 4)  # a new note every second
        rng = np.random.default_rng(1)
        wave = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / RATE) + 0.05 * rng.standard_normal(n)
        wave[(t % 2) > 1.6] *= 0.1
        stereo = np.stack([wave, 0.8 * wave]).astype(np.float32)
        for start in range(0, n, 1024):
            block = np.ascontiguousarray(stereo[:, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = RATE, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode():
                container.mux(packet)


def decode(path) -> tuple[list[np.ndarray], np.ndarray, int, float]:
    """Every frame (RGB), the mono sound, its rate, and the time of its first sample."""
    import av

    frames, blocks, rate, first = [], [], None, None
    with av.open(str(path)) as container:
        for packet in container.demux():
            for decoded in packet.decode():
                if packet.stream.type == "video":
                    frames.append(decoded.to_ndarray(format="rgb24"))
                else:
                    rate = decoded.sample_rate
                    first = float(decoded.time) if first is None else first
                    blocks.append(decoded.to_ndarray().reshape(2, -1).mean(axis=0))
    return frames, np.concatenate(blocks).astype(np.float32), rate, first


def offline_map(model, frame: np.ndarray, sound: np.ndarray, start: int, end: int) -> np.ndarray:
    """The published preprocessing and the float32 model on one frame and samples [start, end)
    of the sound at the model's rate (zeros before the sound began)."""
    from fnac.audio import log_spectrogram, normalize_spectrogram
    from fnac.image import test_transform

    audio, image = model.info.audio, model.info.image
    window = np.zeros(end - start, np.float32)
    have = sound[max(0, start) : end]
    window[window.size - have.size :] = have
    spec = normalize_spectrogram(
        log_spectrogram(torch.from_numpy(window).clamp(-1, 1), audio.sample_rate, audio), audio
    )
    pixels = test_transform(image)(Image.fromarray(frame))[None]
    with torch.no_grad():
        _, _, raw = model.eval()(pixels, spec[None, None])
    return raw[0].numpy()


@pytest.mark.slow  # a 6 s clip played in real time, then every processed frame again offline
def test_live_maps_match_the_published_model_when_the_pipeline_is_behind(tmp_path):
    from fnac.checkpoint import load_checkpoint
    from fnac.resample import resample

    clip, jsonl = tmp_path / "clip.mp4", tmp_path / "run.jsonl"
    write_clip(clip)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        result = subprocess.run(
            [sys.executable, "-m", "fnac.cli", "run", "--source", str(clip), "--checkpoint",
             str(DEMO), "--backend", "eager", "--audio-rate", "1000", "--jsonl", str(jsonl)],
            capture_output=True, text=True, timeout=300,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    finally:
        busy.kill()
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) >= 10
    dropped = int(result.stderr.rpartition("dropped ")[2].split()[0])
    assert dropped > 0, "the pipeline kept up: this test needs it behind"

    model = load_checkpoint(DEMO)
    rate = model.info.audio.sample_rate
    frames, sound, file_rate, first = decode(clip)
    sound = resample(sound, file_rate, rate)
    compared = 0
    for line in lines:
        span = line["audio"]
        if span is None:  # no sound had come yet: the very first frame
            assert line["frame"] == lines[0]["frame"]
            continue
        start = int(round((span["start"] - first) * rate))
        end = int(round((span["end"] - first) * rate))
        assert end - start == model.info.audio.window_samples
        # the window ends at the frame, or before it by less than half an audio period (1 ms
        # at --audio-rate 1000) where the newest sound had not come yet; times rounded in JSON
        last = span["end"] - 1 / rate
        assert -2e-4 <= line["t"] - last < 0.0005 + 1 / rate + 2e-4
        assert span["zero_filled"] == max(0, -start)  # zeros only before the sound began
        want = offline_map(model, frames[line["frame"]], sound, start, end)
        got = np.array(line["map"])
        corr = np.corrcoef(want.ravel(), got.ravel())[0, 1]
        spread = want.max() - want.min()
        assert corr >= 0.98, (line["frame"], corr)
        assert np.abs(want - got).max() <= 0.12 * spread, line["frame"]
        compared += 1
    assert compared >= 10
