"""The inference stage on the synthetic stream: every frame gets a result, the audio embedding
runs at its own rate, padding and gaps are flagged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fnac.config import AudioConfig, ImageConfig, ModelConfig
from fnac.model import FNAC
from realtime.engines import Engine
from realtime.sources import AudioPacket, FramePacket, SyntheticSource
from realtime.stage import InferenceStage


@pytest.fixture(scope="module")
def engine() -> Engine:
    torch.manual_seed(0)
    return Engine(FNAC(ModelConfig(dim=32)).eval())


def run(engine, skip_seq=None, seconds=4.0):
    stage = InferenceStage(
        engine, AudioConfig(sample_rate=16000), ImageConfig(size=128), audio_rate_hz=10.0
    )
    results = []
    with SyntheticSource(
        size=(160, 120), fps=20, sample_rate=8000, seconds=seconds, realtime=False
    ) as source:
        for packet in source:
            if isinstance(packet, AudioPacket):
                if packet.seq != skip_seq:
                    stage.add_audio(packet)
            elif isinstance(packet, FramePacket):
                results.append(stage.process(packet))
    return stage, results


def test_every_frame_gets_a_result_and_audio_runs_at_10_hz(engine):
    stage, results = run(engine)
    assert len(results) == 80
    assert stage.audio_encodes == 40  # 4 s of stream at 10 Hz
    assert sum(r.audio_fresh for r in results) == 40
    first, last = results[0], results[-1]
    assert first.padded and not last.padded  # 3 s of audio arrive at t = 3 s
    assert last.raw_map.shape == (4, 4) and last.localization.heat.shape == (120, 160)
    assert not any(r.gap for r in results)
    for key in ("capture", "start", "audio", "preprocess", "infer", "result"):
        assert key in last.stamps
    assert last.stamps["result"] >= last.stamps["infer"] >= last.stamps["preprocess"]


def test_lost_audio_is_flagged_in_the_windows_that_hold_it(engine):
    _, results = run(engine, skip_seq=10, seconds=2.5)  # block 10 = 1.28-1.41 s at 8 kHz
    flagged = [r.pts for r in results if r.gap]
    assert flagged and min(flagged) >= 1.28
    assert not any(r.gap for r in results if r.pts < 1.28)


def test_silence_gives_no_sounding_result(engine):
    stage = InferenceStage(engine, AudioConfig(sample_rate=16000), ImageConfig(size=128))
    for seq in range(60):
        stage.add_audio(
            AudioPacket(seq, seq * 0.064, seq * 0.064, np.zeros(1024, np.float32), 16000)
        )
    image = np.zeros((120, 160, 3), np.uint8)
    result = stage.process(FramePacket(0, 3.5, 3.5, image))
    assert result.localization.confidence == 0 and not result.localization.sounding
