"""The real sounddevice path, through a virtual ALSA microphone (ALSA's ``file`` plugin)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO

ASOUNDRC = """pcm.fnacmic {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{infile}"
    format "raw"
}}
"""

CAPTURE = """
import json, numpy as np
from realtime.sources import MicrophoneSource, input_devices, open_source
names = [d["name"] for d in input_devices()]
packets = []
with open_source("mic:fnacmic", sample_rate=16000, block=800) as mic:
    for packet in mic:
        packets.append(packet)
        if len(packets) == 20:
            break
    counts = {"overflows": mic.overflows, "dropped": mic.dropped}
audio = np.concatenate([p.samples for p in packets])
spectrum = np.abs(np.fft.rfft(audio[:16000]))
print(json.dumps({"names": names, "seqs": [p.seq for p in packets],
                  "peak_hz": int(np.argmax(spectrum)), "level": float(np.abs(audio).max()),
                  "times_increase": all(b.t > a.t for a, b in zip(packets, packets[1:])),
                  "rate": packets[0].rate, **counts}))
"""


def run_with_alsa(tmp_path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )


@pytest.fixture
def virtual_mic(tmp_path):
    pytest.importorskip("sounddevice", exc_type=OSError)  # PortAudio (libportaudio2) missing
    t = np.arange(16000 * 3) / 16000
    (0.5 * np.sin(2 * np.pi * 440 * t)).astype("<f4").tofile(tmp_path / "mic.raw")
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(infile=tmp_path / "mic.raw"))
    return tmp_path


def test_microphone_blocks_arrive_in_order_with_the_tone(virtual_mic):
    result = run_with_alsa(virtual_mic, CAPTURE)
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert "fnacmic" in got["names"]
    assert got["seqs"] == list(range(20)) and got["rate"] == 16000
    assert got["peak_hz"] == 440 and 0.45 < got["level"] <= 0.5 + 1e-6
    assert got["times_increase"]


def test_unknown_microphone_is_a_clear_error(virtual_mic):
    code = (
        "from realtime.sources import open_source, SourceError\n"
        "try:\n    open_source('mic:nonexistent')\n"
        "except SourceError as exc:\n    print('ERR', exc)\n"
    )
    result = run_with_alsa(virtual_mic, code)
    assert "ERR no input device 'nonexistent'" in result.stdout, result.stderr[-2000:]


VANISHING = """
import os, time, numpy as np
from realtime.sources import SourceError, open_source
os.mkfifo("mic.fifo")
# the device: one second of sound, then it stays open and delivers nothing. Opened read-write
# here, the fifo never blocks ALSA's opens (nor its probes) and never breaks the pipe.
device = os.open("mic.fifo", os.O_RDWR)
os.write(device, (0.5 * np.ones(16000)).astype("<f4").tobytes())  # fits the pipe's 64 KiB
blocks = 0
start = time.monotonic()
try:
    with open_source("mic:fnacmic", sample_rate=16000, block=800, stall_s=1.0) as mic:
        for packet in mic:
            blocks += 1
    print("ENDED", blocks)
except SourceError as exc:
    print(f"ERR after {time.monotonic() - start:.1f} s, {blocks} blocks: {exc}")
"""


def test_a_microphone_that_stops_delivering_is_an_error_not_an_end(tmp_path):
    pytest.importorskip("sounddevice", exc_type=OSError)
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(infile=tmp_path / "mic.fifo"))
    result = run_with_alsa(tmp_path, VANISHING)
    assert "ERR after" in result.stdout, (result.stdout, result.stderr[-2000:])
    assert "'fnacmic' stopped delivering audio" in result.stdout and "unplugged" in result.stdout
    seconds = float(result.stdout.split("ERR after ")[1].split(" s")[0])
    assert seconds < 10  # found within seconds: the device itself never ends


def test_a_machine_without_any_input_device_is_a_clear_error(tmp_path):
    pytest.importorskip("sounddevice", exc_type=OSError)
    code = (
        "from realtime.sources import input_devices, open_source, SourceError\n"
        "assert input_devices() == [], input_devices()\n"
        "try:\n    open_source('mic')\n"
        "except SourceError as exc:\n    print('ERR', exc)\n"
    )
    result = run_with_alsa(tmp_path, code)  # no .asoundrc: ALSA here has no capture device
    if "AssertionError" in result.stderr:
        pytest.skip("this machine has an input device")
    assert "ERR no microphone found" in result.stdout, result.stderr[-2000:]


PAIRED = """
import json, numpy as np
from realtime.messages import AudioPacket, FramePacket
from realtime.sources import PairedSource, open_source
frames, audio = [], []
with open_source("{clip}+mic:fnacmic", sample_rate=16000, block=800) as pair:
    assert isinstance(pair, PairedSource)
    for packet in pair:
        (frames if isinstance(packet, FramePacket) else audio).append(packet)
        if len(audio) >= 20 and len(frames) >= 10:
            break
samples = np.concatenate([p.samples for p in audio])
spectrum = np.abs(np.fft.rfft(samples[:16000]))
print(json.dumps({{"frames": len(frames), "shape": list(frames[0].image.shape),
                  "rates": sorted({{p.rate for p in audio}}), "peak_hz": int(np.argmax(spectrum)),
                  "seqs": [p.seq for p in audio][:20]}}))
"""


@pytest.fixture
def clip(tmp_path):
    """A 6 s synthetic stream as mp4 (H.264 + AAC at 16 kHz), 160x120 at 10 fps."""
    sys.path.insert(0, str(REPO))
    from train.synth import write_stream
    from train.synth_stream import StreamScript
    from train.synth_world import World, WorldConfig

    world = World(WorldConfig(classes=8, sample_rate=16000))
    script = StreamScript.draw(world, np.random.default_rng(0), 6.0, fps=10, size=(160, 120))
    write_stream(tmp_path / "clip.mp4", script)
    return tmp_path / "clip.mp4"


def test_a_picture_source_pairs_with_the_microphone(virtual_mic, clip):
    result = run_with_alsa(virtual_mic, PAIRED.format(clip=clip))
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["frames"] >= 10 and got["shape"] == [120, 160, 3]
    # the sound is the microphone's 440 Hz tone, not the file's own track (which is dropped)
    assert got["rates"] == [16000] and got["peak_hz"] == 440
    assert got["seqs"] == list(range(20))


@pytest.mark.slow  # the whole pipeline; the pairing itself is tested above by default
def test_fnac_run_takes_a_camera_with_a_microphone(virtual_mic, clip):
    """Through the whole pipeline. The virtual microphone delivers about 100x faster than real
    time (ALSA's null device has no clock), so frames queue behind its audio: the test asks
    that the run keeps its heartbeats (no restart), processes frames and ends cleanly."""
    import torch

    from fnac.checkpoint import save_checkpoint
    from fnac.config import AudioConfig
    from fnac.model import FNAC, ModelConfig

    checkpoint = virtual_mic / "model.pth"
    save_checkpoint(checkpoint, FNAC(ModelConfig(dim=16)), AudioConfig(sample_rate=16000))
    del torch
    code = (
        "import sys; from fnac.cli import main; sys.exit(main(['run', '--source', "
        f"'{clip}+mic:fnacmic', '--checkpoint', '{checkpoint}', '--seconds', '8', "
        f"'--jsonl', '{virtual_mic / 'out.jsonl'}']))"
    )
    result = run_with_alsa(virtual_mic, code)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = (virtual_mic / "out.jsonl").read_text().splitlines()
    assert len(lines) >= 1 and "processed" in result.stderr, result.stderr[-3000:]
    assert "restarted" not in result.stderr
