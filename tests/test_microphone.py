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
