"""The inference stage on the synthetic stream: every frame gets a result, the audio embedding
runs at its own rate, padding and gaps are flagged; bad packets are refused, NaN never comes out,
a long gap costs no memory and a restarted capture is a new stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fnac.config import AudioConfig, ImageConfig, ModelConfig
from fnac.model import FNAC
from realtime.engines import Engine
from realtime.messages import AudioPacket, FramePacket
from realtime.sources import SyntheticSource
from realtime.stage import BadPacket, InferenceStage, Intake


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
    # 4 s of stream at 10 Hz; a few more where the resampler's hold-back (8 -> 16 kHz) ends a
    # window before its frame, which brings the next one forward: none is a period old
    assert 40 <= stage.audio_encodes <= 44
    assert sum(r.audio_fresh for r in results) == stage.audio_encodes
    first, last = results[0], results[-1]
    assert first.padded and not last.padded  # 3 s of audio arrive at t = 3 s
    assert last.raw_map.shape == (4, 4) and within(last.localization, (120, 160))
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


def within(loc, frame_size) -> bool:
    """Box and peak lie in a frame of (height, width), the peak inside the box."""
    height, width = frame_size
    x0, y0, x1, y1 = loc.box
    x, y = loc.peak
    return 0 <= x0 <= x < x1 <= width and 0 <= y0 <= y < y1 <= height


def new_stage(engine) -> InferenceStage:
    return InferenceStage(engine, AudioConfig(sample_rate=16000), ImageConfig(size=128))


def stream(seconds, t0=100.0, seed=0, frame_first=False, rate=8000, block=1024, fps=4):
    """Noise (seeded) and one fixed picture, in capture order; at equal pts the frame comes first
    when ``frame_first``."""
    rng = np.random.default_rng(seed)
    audio = (0.3 * rng.standard_normal(int(seconds * rate))).astype(np.float32)
    image = np.random.default_rng(99).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    packets = [
        AudioPacket(seq, t0 + n / rate, n / rate, audio[n : n + block], rate)
        for seq, n in enumerate(range(0, audio.size - block + 1, block))
    ]
    packets += [FramePacket(i, t0 + i / fps, i / fps, image) for i in range(int(seconds * fps))]
    return sorted(packets, key=lambda p: (p.pts, isinstance(p, AudioPacket) == frame_first))


def feed(stage, packets):
    results = []
    for packet in packets:
        if isinstance(packet, AudioPacket):
            stage.add_audio(packet)
        else:
            results.append(stage.process(packet))
    return results


def test_packets_the_stage_cannot_use_are_refused_and_leave_it_untouched(engine):
    stage = new_stage(engine)
    noise = np.full(1024, 0.1, np.float32)
    bad_audio = [
        dict(samples=np.zeros(0, np.float32)),  # no samples
        dict(samples=None),  # a message without its array
        dict(samples=np.zeros(1024, np.int16)),
        dict(samples=np.zeros((1024, 2), np.float32)),
        dict(samples=np.zeros(16001, np.float32)),  # longer than a live block
        *(dict(rate=r) for r in (0, -16000, 0.5, "fast", None, float("nan"), 10**400, 10**6)),
        dict(t=None),
        dict(t=float("inf")),
        dict(pts="0"),
        dict(seq=10**30),
    ]
    for bad in bad_audio:
        fields = dict(seq=0, t=1.0, pts=0.0, samples=noise, rate=16000) | bad
        with pytest.raises(BadPacket):
            stage.add_audio(AudioPacket(**fields))
    image = np.zeros((120, 160, 3), np.uint8)
    bad_frames = [
        dict(image=None),
        dict(image=np.zeros((0, 0, 3), np.uint8)),
        dict(image=np.zeros((120, 160, 3), np.float32)),
        dict(image=np.zeros((120, 160, 2), np.uint8)),
        dict(image=np.zeros((120, 160, 3, 1), np.uint8)),
        dict(t=None),
        dict(pts=None),
        dict(pts=float("nan")),
    ]
    for bad in bad_frames:
        fields = dict(index=0, t=1.0, pts=0.0, image=image) | bad
        with pytest.raises(BadPacket):
            stage.process(FramePacket(**fields))
    assert stage.ring.written == 0 and stage.last_seq is None and stage.last_pts is None
    results = feed(stage, stream(3.5))
    assert not results[-1].padded and not results[-1].gap


@pytest.mark.parametrize(
    "shape, shown",
    [
        ((120, 160), (120, 160)),  # grayscale
        ((120, 160, 1), (120, 160)),
        ((120, 160, 4), (120, 160)),  # BGRA
        ((1, 1, 3), (1, 1)),
        ((121, 163, 3), (121, 163)),  # odd sizes
        ((2160, 3840, 3), (1080, 1920)),  # 4K: shrunk to 1080p where it enters
    ],
)
def test_frames_of_every_common_layout_and_size_get_a_result(engine, shape, shown):
    stage = new_stage(engine)
    feed(stage, [p for p in stream(1.0) if isinstance(p, AudioPacket)])
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    result = stage.process(FramePacket(0, 101.0, 1.0, image))
    assert within(result.localization, shown)
    assert np.isfinite(result.raw_map).all()
    if len(shape) == 3 and shape[2] == 4:  # the alpha channel is dropped, not mistaken for red
        same = stage.process(FramePacket(1, 101.1, 1.1, np.ascontiguousarray(image[:, :, :3])))
        assert np.allclose(result.raw_map, same.raw_map, atol=1e-5)


def test_a_4k_frame_is_shrunk_with_its_truth_boxes():
    from realtime.sources import MAX_FRAME_PIXELS, fit_frame

    image = np.zeros((2160, 3840, 3), np.uint8)
    image[1080:1620, 1920:2880] = 255  # a white box at (1920, 1080)-(2880, 1620)
    truth = [{"class": "bell", "box": [1920.0, 1080.0, 2880.0, 1620.0], "sounding": True}]
    small = fit_frame(FramePacket(0, 1.0, 0.0, image, truth))
    h, w = small.image.shape[:2]
    assert h * w <= MAX_FRAME_PIXELS and (w, h) == (1920, 1080)
    assert small.truth[0]["box"] == [960.0, 540.0, 1440.0, 810.0]
    assert small.image[600, 1200].min() == 255 and small.image[400, 800].max() == 0
    assert small.truth[0]["class"] == "bell" and truth[0]["box"][0] == 1920.0  # not modified
    tiny = FramePacket(0, 1.0, 0.0, np.zeros((480, 640, 3), np.uint8))
    assert fit_frame(tiny) is tiny


def test_nan_and_inf_samples_enter_as_flagged_zeros_and_never_reach_a_result(engine):
    stage = new_stage(engine)
    packets = stream(7.0)
    burst = [p for p in packets if isinstance(p, AudioPacket)][20:23]  # 2.56-2.94 s
    burst[0].samples = burst[0].samples.copy()
    burst[0].samples[::2] = np.nan
    burst[1].samples = np.full(burst[1].samples.size, 1e300)  # inf once it is float32
    burst[2].samples = np.where(burst[2].samples > 0, np.inf, -np.inf).astype(np.float32)
    results = feed(stage, packets)
    for r in results:
        numbers = [r.localization.score, r.localization.confidence, r.localization.level_db]
        assert np.isfinite(r.raw_map).all() and np.isfinite(r.spectrum).all()
        assert np.isfinite(numbers).all() and within(r.localization, (120, 160))
    assert stage.nonfinite == 512 + 2 * 1024
    assert [r.gap for r in results] == [2.56 <= r.pts < 2.94 + 3.0 for r in results]


@pytest.mark.parametrize(
    "gain", [30.0, 1e6]
)  # hard clipping at full scale; a float device gone wild
def test_clipped_and_overloud_audio_gives_finite_sounding_results(engine, gain):
    stage = new_stage(engine)
    packets = stream(4.0)
    for p in packets:
        if isinstance(p, AudioPacket):
            loud = p.samples * gain
            p.samples = np.clip(loud, -1.0, 1.0) if gain < 100 else loud.astype(np.float32)
    results = feed(stage, packets)
    for r in results:
        loc = r.localization
        assert np.isfinite(r.raw_map).all() and within(loc, (120, 160))
        assert np.isfinite([loc.score, loc.level_db]).all() and 0.0 <= loc.confidence <= 1.0
    assert stage.nonfinite == 0 and not any(r.gap for r in results)
    assert results[-1].localization.level_db > -30.0  # loud is loud, not mistaken for silence


def test_a_map_that_comes_out_non_finite_is_published_as_nothing_sounding(engine, monkeypatch):
    stage = new_stage(engine)
    maps = engine.maps
    monkeypatch.setattr(engine, "maps", lambda v, a: maps(v, a) * float("nan"))
    result = feed(stage, stream(1.0))[-1]
    assert np.array_equal(result.raw_map, np.zeros_like(result.raw_map))
    assert result.localization.confidence == 0 and not result.localization.sounding
    assert np.isfinite(result.localization.score) and stage.nonfinite_maps == 4


def test_a_huge_jump_in_seq_fills_the_ring_not_memory(engine):
    stage = new_stage(engine)
    feed(stage, stream(2.0))  # blocks 0-14 of 1024 samples at 8 kHz, from t = 100 s
    jump = 10**9  # 4 TB of zeros at 8 kHz: the old stage tried to allocate them
    later = [
        AudioPacket(seq, 100.0 + seq * 0.128, seq * 0.128, np.full(1024, 0.1, np.float32), 8000)
        for seq in range(jump, jump + 40)
    ]
    stage.add_audio(later[0])
    t = later[0].t + 0.1
    first = stage.process(FramePacket(0, t, later[0].pts + 0.1, np.zeros((120, 160, 3), np.uint8)))
    assert first.gap and not first.padded
    window = stage.ring.window(t).samples
    assert np.allclose(window[-1000:], 0.1, atol=0.02) and not window[:-2100].any()
    for packet in later[1:]:  # the clock carried on across the gap: new audio lines up
        stage.add_audio(packet)
    t = later[-1].t
    last = stage.process(FramePacket(1, t, later[-1].pts, np.zeros((120, 160, 3), np.uint8)))
    assert not last.gap and not last.padded and stage.ring.window(t).lag_s < 0.01


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000, 96000])
def test_a_click_lands_where_it_was_captured_at_any_source_rate(engine, rate):
    stage = new_stage(engine)  # 16 kHz: equal rates, where the resampler passes blocks through
    for seq in range(40):
        block = np.zeros(rate // 10, np.float32)
        block[0] = float(seq == 20)  # captured at 102.0 s
        stage.add_audio(AudioPacket(seq, 100.0 + seq * 0.1, seq * 0.1, block, rate))
    window = stage.ring.window(103.0)  # the 3 s ending at 103.0 s: the click is 1 s from its end
    assert int(np.argmax(np.abs(window.samples))) == window.samples.size - 1 - 16000


@pytest.mark.parametrize("frame_first", [False, True])
@pytest.mark.parametrize("t0", [0.0, 110.0])  # the capture clock starts again too, or carries on
def test_a_restarted_capture_is_processed_as_a_new_stream(engine, t0, frame_first):
    stage = new_stage(engine)
    feed(stage, stream(2.0, seed=1))
    again = stream(1.5, t0=t0, seed=2, frame_first=frame_first)  # seq and pts from 0 again
    restarted = feed(stage, again)
    fresh = feed(new_stage(engine), again)
    assert len(restarted) == len(fresh) == 6
    for r, f in zip(restarted, fresh, strict=True):
        assert (r.padded, r.gap, r.audio_fresh) == (f.padded, f.gap, f.audio_fresh)
        assert r.localization.level_db == pytest.approx(f.localization.level_db)
        np.testing.assert_allclose(r.raw_map, f.raw_map, rtol=1e-5, atol=1e-6)


def _stage(engine, rate=16000):
    return InferenceStage(
        engine, AudioConfig(sample_rate=rate), ImageConfig(size=64), audio_rate_hz=10.0
    )


def _frame(index, t, shape=(48, 64, 3)):
    return FramePacket(index, t, t, np.zeros(shape, np.uint8))


def _block(seq, t, n=800, rate=16000):
    return AudioPacket(seq, t, t, np.full(n, 0.1, np.float32), rate)


def test_a_frame_waits_for_its_audio_then_goes(engine):
    from realtime.stage import Intake

    stage = _stage(engine)
    intake = Intake(stage)
    assert intake.next_frame([_frame(0, 0.0)]) is not None  # no sound yet: nothing to wait for
    # audio up to 0.1 s has come; a frame at 0.2 s (its embedding due) waits for the rest
    assert intake.next_frame([_block(0, 0.0, 1600), _frame(1, 0.2)]) is None
    assert intake.held and intake.next_frame([]) is None
    got = intake.next_frame([_block(1, 0.1, 1600), _block(2, 0.2, 800)])  # now up to 0.25 s
    assert got is not None and got.index == 1 and intake.late == 0
    stage.process(got)
    # a frame whose embedding is reused does not wait
    assert intake.next_frame([_frame(2, 0.27)]) is not None


def test_the_wait_is_bounded_from_the_oldest_held_frame(engine, monkeypatch):
    import time

    import realtime.stage as stage_module
    from realtime.stage import Intake

    monkeypatch.setattr(stage_module, "AUDIO_WAIT_S", 0.1)
    intake = Intake(_stage(engine))
    intake.next_frame([_block(0, 0.0, 1600)])
    assert intake.next_frame([_frame(0, 0.5)]) is None
    time.sleep(0.06)
    intake.next_frame([_block(1, 0.1, 160)])  # a little audio: the sound goes on, late
    assert intake.next_frame([_frame(1, 0.55)]) is None and len(intake.held) == 2
    time.sleep(0.05)  # the audio up to the frames never comes: the newest goes, counted late
    got = intake.next_frame([])
    assert got is not None and got.index == 1 and intake.late == 1 and intake.dropped == 1


def test_the_end_of_the_stream_releases_the_held_frame_with_all_its_audio(engine):
    from realtime.messages import EndOfStream
    from realtime.stage import Intake

    stage = _stage(engine, rate=8000)
    intake = Intake(stage)
    blocks = [AudioPacket(i, i * 0.05, i * 0.05, np.full(2205, 0.1, np.float32), 44100)
              for i in range(20)]  # fmt: skip
    # 1 s at 44.1 kHz: the resampler holds its newest output back until the end
    assert intake.next_frame([*blocks, _frame(0, 0.99)]) is None
    frame = intake.next_frame([EndOfStream(20)])
    assert frame is not None and intake.late == 0
    result = stage.process(frame)
    span = result.audio
    assert span.end == pytest.approx(0.99 + 1 / 8000, abs=1e-3)
    assert span.end - span.start == pytest.approx(3.0)
    assert span.zero_filled == round(-span.start * 8000)  # the time before the sound began


def test_a_reused_embedding_reports_the_span_it_was_computed_from(engine):
    stage = _stage(engine)
    for i in range(10):
        stage.add_audio(_block(i, i * 0.05))
    first = stage.process(_frame(0, 0.2))
    second = stage.process(_frame(1, 0.25))  # within 0.1 s: the embedding is reused
    assert first.audio_fresh and not second.audio_fresh
    assert second.audio == first.audio and first.audio.end == pytest.approx(0.2 + 1 / 16000)


class GuardedEngine(Engine):
    """Stands in for ``torch.compile``: remembers what each method was called with during the
    warm-up (shape, strides, dtype, grad mode: what compile's guards check) and counts the calls
    that come later with something new, each of which would be a recompile of seconds."""

    def __init__(self, model) -> None:
        super().__init__(model)
        self.seen: set[tuple] = set()
        self.warm = False
        self.new_after_warm_up: list[tuple] = []

    def _signature(self, method: str, x: torch.Tensor) -> tuple:
        return (method, tuple(x.shape), x.stride(), x.dtype, torch.is_inference_mode_enabled())

    def _note(self, method: str, x: torch.Tensor) -> None:
        signature = self._signature(method, x)
        if self.warm and signature not in self.seen:
            self.new_after_warm_up.append(signature)
        self.seen.add(signature)

    def _image(self, frames):
        self._note("image", frames)
        return super()._image(frames)

    def _audio(self, spec):
        self._note("audio", spec)
        return super()._audio(spec)


def test_the_warm_up_makes_exactly_the_calls_of_the_live_frames():
    """A frame of the live stream calls the engine with nothing the warm-up did not: a compiled
    engine recompiles on nothing after it (a spectrogram of other strides once cost seconds on
    the first frame, and the supervisor restarted the worker as hung)."""
    torch.manual_seed(0)
    engine = GuardedEngine(FNAC(ModelConfig(dim=16)).eval())
    stage = InferenceStage(engine, AudioConfig(sample_rate=16000), ImageConfig(size=64))
    stage.warm_up()
    engine.warm = True
    frames = 0
    with SyntheticSource(
        size=(160, 120), fps=10, sample_rate=16000, seconds=1.0, realtime=False
    ) as source:
        for packet in source:
            if isinstance(packet, AudioPacket):
                stage.add_audio(packet)
            else:
                stage.process(packet)
                frames += 1
    assert frames >= 5 and stage.audio_encodes >= 5
    assert engine.new_after_warm_up == []


def test_the_newest_frame_whose_audio_is_there_goes_and_newer_ones_wait(engine):
    from realtime.stage import Intake

    stage = _stage(engine)
    intake = Intake(stage)
    intake.next_frame([_block(0, 0.0, 640)])  # audio up to 0.04 s
    frames = [_frame(i, 0.05 + 0.033 * i) for i in range(4)]  # 0.05, 0.083, 0.116, 0.149
    got = intake.next_frame(frames)  # audio trails the newest frame: no chase, no wait
    assert got is not None and got.index == 1 and intake.late == 0  # within half a period
    assert [f.index for f in intake.held] == [2, 3] and intake.dropped == 1
    result = stage.process(got)
    assert result.audio.end == pytest.approx(0.04, abs=1e-6)  # its window ends at the newest
    assert intake.next_frame([]).index == 2  # 76 ms after that end: reused, no wait
    assert intake.next_frame([]) is None  # frame 3 is a period past it: due, waits
    got = intake.next_frame([_block(1, 0.04, 1280)])  # audio up to 0.12 s
    assert got.index == 3 and intake.dropped == 1 and intake.late == 0


def test_a_due_frame_does_not_wait_once_the_sound_has_stopped(engine, monkeypatch):
    import time

    import realtime.stage as stage_module
    from realtime.stage import Intake

    monkeypatch.setattr(stage_module, "AUDIO_WAIT_S", 0.05)
    intake = Intake(_stage(engine))
    intake.next_frame([_block(0, 0.0, 1600)])
    time.sleep(0.06)  # no audio since: a frame far beyond it goes at once, counted late
    got = intake.next_frame([_frame(0, 5.0)])
    assert got is not None and intake.late == 1


def test_frames_held_from_a_stream_that_started_again_are_dropped(engine):
    from realtime.stage import Intake

    intake = Intake(_stage(engine))
    intake.next_frame([_block(5, 1.0, 1600)])
    assert intake.next_frame([_frame(30, 1.5)]) is None  # waits for audio up to 1.5 s
    intake.next_frame([_block(0, 0.0, 800)])  # block numbers from 0 again: a new capture
    assert not intake.held and intake.dropped == 1


def test_after_a_rate_change_the_ring_and_the_stage_count_the_same_time(engine):
    stage = _stage(engine, rate=8000)
    for i in range(10):  # 1 s at 44.1 kHz, then the device comes back at 48 kHz
        stage.add_audio(AudioPacket(i, i * 0.1, i * 0.1, np.full(4410, 0.1, np.float32), 44100))
    for i in range(10, 20):
        stage.add_audio(AudioPacket(i, i * 0.1, i * 0.1, np.full(4800, 0.1, np.float32), 48000))
    newest = stage.audio_anchor + stage.emitted / 8000
    assert stage.ring.time_of(stage.ring.written) == pytest.approx(newest, abs=1e-6)
    window = stage.ring.window(1.8)  # (the resampler holds the newest 0.16 s at most back)
    assert window.end_time == pytest.approx(1.8, abs=1 / 8000)
    before_start = round((3.0 - 1.8) * 8000)  # the window reaches back before the sound began
    assert not window.gap and abs(window.zero_filled - before_start) <= 1  # the old rate's
    # held-back tail was flushed into the ring when the rate changed, not lost


def test_the_span_is_on_the_frames_clock_when_the_sound_has_its_own(engine):
    stage = _stage(engine)
    for i in range(10):  # a microphone whose pts count from its own opening, 7 s after the
        t = 100.0 + i * 0.05  # camera's
        stage.add_audio(AudioPacket(i, t, t - 7.0 - 93.0, np.full(800, 0.1, np.float32), 16000))
    result = stage.process(FramePacket(0, 100.3, 0.3, np.zeros((48, 64, 3), np.uint8)))
    assert result.audio.end == pytest.approx(0.3 + 1 / 16000, abs=1e-6)  # the frame's pts clock


def test_a_device_clock_that_drifts_from_the_sample_count_is_followed(engine):
    stage = _stage(engine)
    for i in range(300):  # 30 s of a device whose stamps run 0.5 % ahead of its sample count
        t = i * 0.1 * 1.005
        stage.add_audio(AudioPacket(i, t, t, np.full(1600, 0.1, np.float32), 16000))
    newest = stage.ring.time_of(stage.ring.written)  # just after the last sample
    assert abs(newest - (299 * 0.1 * 1.005 + 0.1)) <= 0.1 + 0.01  # without: 0.15 s behind
    assert stage.ring.time_of(stage.ring.written) == pytest.approx(
        stage.audio_anchor + stage.emitted / 16000
    )


def test_the_run_summary_says_how_many_frames_went_without_all_their_sound():
    from conftest import live_result

    from realtime.pipeline import describe
    from realtime.scoring import RunScore

    score = RunScore()
    score.add(live_result(late=3), 0.02)
    assert score.summary(1.0)["late"] == 3
    assert "3 processed before all their sound had come" in describe(score.summary(1.0))


def test_the_map_smoother_fades_old_maps_with_its_time_constant():
    from realtime.stage import MapSmoother

    assert MapSmoother(0.0).update(np.ones((7, 7)), 0.0) is None  # off: no smoothed map
    smoother = MapSmoother(0.5)
    first = smoother.update(np.zeros((7, 7), np.float32), 0.0)
    assert np.array_equal(first, np.zeros((7, 7)))  # the first map as it is
    after = smoother.update(np.ones((7, 7), np.float32), 0.5)  # one time constant later
    assert np.allclose(after, 1 - np.exp(-1))
    # the same half second in two steps gives the same map: the frame rate does not matter
    twice = MapSmoother(0.5)
    twice.update(np.zeros((7, 7), np.float32), 0.0)
    twice.update(np.ones((7, 7), np.float32), 0.25)
    assert np.allclose(twice.update(np.ones((7, 7), np.float32), 0.5), after)
    # a jump back in time, a restart or another shape starts from the new map
    assert np.array_equal(smoother.update(np.full((7, 7), 3.0), 0.1), np.full((7, 7), 3.0))
    assert np.array_equal(
        smoother.update(np.full((7, 7), 5.0), 0.2, restart=True), np.full((7, 7), 5.0)
    )
    assert smoother.update(np.ones((4, 4)), 0.3).shape == (4, 4)
    with pytest.raises(ValueError, match=">= 0 s"):
        MapSmoother(float("nan"))


def test_with_smoothing_peak_and_box_follow_the_smoothed_map_and_the_raw_map_stays(engine):
    stage = InferenceStage(
        engine, AudioConfig(sample_rate=16000), ImageConfig(size=128), smooth_s=0.3
    )
    plain = InferenceStage(engine, AudioConfig(sample_rate=16000), ImageConfig(size=128))
    with SyntheticSource(
        size=(160, 120), fps=20, sample_rate=8000, seconds=2.0, realtime=False
    ) as source:
        pairs = []
        for packet in source:
            if isinstance(packet, AudioPacket):
                stage.add_audio(packet)
                plain.add_audio(packet)
            elif isinstance(packet, FramePacket):
                pairs.append((stage.process(packet), plain.process(packet), packet))
    for smoothed, unsmoothed, _ in pairs:
        assert np.array_equal(smoothed.raw_map, unsmoothed.raw_map)  # the model's own map
        assert unsmoothed.shown_map is None and smoothed.shown_map is not None
    changed = [not np.allclose(s.shown_map, s.raw_map) for s, _, _ in pairs[1:]]
    assert np.mean(changed) > 0.5
    smoothed, _, packet = pairs[-1]
    message = Intake(stage).publish(smoothed, packet)
    assert np.array_equal(message.drawn_map, smoothed.shown_map)
    assert np.array_equal(message.raw_map, smoothed.raw_map)
