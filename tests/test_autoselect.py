"""``--backend auto``: the fastest candidate whose maps agree with float32's, measured once and
kept. The timings are given (a fake timer), so each test says what machine it stands for; the
engines are real, small ones, except the stand-ins for an int8 engine that disagrees."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from fnac.config import AudioConfig, ModelConfig
from fnac.model import FNAC
from realtime import autoselect, cache
from realtime.autoselect import MAX_MAP_DIFF, Candidate, choose, map_agreement
from realtime.engines import CpuEngine, Engine
from realtime.registry import describe, make_engine

SIZE = 64
AUDIO = AudioConfig(sample_rate=8000)  # half the spectrogram of 16 kHz: faster agreements


@pytest.fixture(scope="module")
def model() -> FNAC:
    torch.manual_seed(0)
    return FNAC(ModelConfig(dim=16)).eval()


@pytest.fixture(autouse=True)
def unpinned(monkeypatch, tmp_path):
    """A cache folder of the test's own, and auto free to choose (tests/conftest.py pins it);
    agreement on 2 scenes, not 6 (seconds in all)."""
    monkeypatch.setattr(autoselect, "AGREEMENT_SCENES", 2)
    monkeypatch.setenv("FNAC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(autoselect.PIN_ENV, raising=False)
    monkeypatch.delenv(autoselect.REMEASURE_ENV, raising=False)


class Upside(Engine):
    """An int8 stand-in whose maps are float32's turned upside down: fast, and wrong."""

    name = "int8"

    def maps(self, v, a):
        return -super().maps(v, a)


def candidates(model, int8=None) -> list[Candidate]:
    """The CPU candidates as stand-ins that compute in float32 (they agree), cheap to make,
    except for the int8 one that ``int8`` makes."""
    return [
        Candidate("eager", "eager", True, lambda: Engine(model)),
        Candidate("cpu", "cpu", True, lambda: Engine(model)),
        Candidate("cpu-bf16", "cpu", False, lambda: Engine(model), bf16=True),
        Candidate("int8", "int8", False, int8 or (lambda: Engine(model))),
    ]


class Timings:
    """A timer that says ``ms[label]`` for each candidate, and remembers whom it timed."""

    def __init__(self, **ms: float) -> None:
        self.ms = {k.replace("_", "-"): v for k, v in ms.items()}
        self.timed: list[str] = []

    def __call__(self, label, engine, limit_ms):
        self.timed.append(label)
        return self.ms[label], False


def test_a_machine_where_bf16_measures_slower_gets_float32(model):
    timer = Timings(eager=50.0, cpu=30.0, cpu_bf16=45.0, int8=80.0)
    verdict, engine = choose(model, AUDIO, SIZE, candidates=candidates(model), timer=timer)
    assert (verdict.label, verdict.backend, verdict.bf16) == ("cpu", "cpu", False)
    assert isinstance(engine, Engine)  # the engine measured, handed on
    assert verdict.reason.startswith(
        "auto: cpu (30.0 ms a frame vs cpu-bf16 45.0, eager 50.0, int8 80.0; "
    )
    assert sorted(timer.timed) == ["cpu", "cpu-bf16", "eager", "int8"]


def test_a_machine_where_bf16_measures_faster_gets_bf16_when_its_maps_agree(model):
    timer = Timings(eager=50.0, cpu=30.0, cpu_bf16=20.0, int8=80.0)
    verdict, engine = choose(model, AUDIO, SIZE, candidates=candidates(model), timer=timer)
    assert (verdict.label, verdict.backend, verdict.bf16) == ("cpu-bf16", "cpu", True)
    assert "cpu-bf16 maps within 0.00 of fp32" in verdict.reason


def test_an_int8_engine_whose_maps_disagree_is_refused(model, monkeypatch):
    timer = Timings(eager=50.0, cpu=30.0, cpu_bf16=90.0, int8=10.0)
    fake = candidates(model, int8=lambda: Upside(model))
    verdict, _ = choose(model, AUDIO, SIZE, candidates=fake, timer=timer)
    assert verdict.label == "cpu"
    assert "int8 10.0 refused (maps 1.00 from fp32's" in verdict.reason
    # an int8 that agrees is taken (measured again: the refusal is kept for these weights)
    monkeypatch.setenv(autoselect.REMEASURE_ENV, "1")
    verdict, _ = choose(model, AUDIO, SIZE, candidates=candidates(model), timer=timer)
    assert verdict.label == "int8" and "int8 maps within 0.00 of fp32" in verdict.reason


def test_the_verdict_is_kept_read_back_without_measuring_and_keyed(model, monkeypatch):
    first = Timings(eager=50.0, cpu=30.0, cpu_bf16=45.0, int8=80.0)
    verdict, _ = choose(model, AUDIO, SIZE, candidates=candidates(model), timer=first)
    files = list(cache.cache_dir().glob("auto-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["value"]["timings_ms"]["cpu"] == 30

    def no_timing(*args):
        raise AssertionError("measured again")

    again, engine = choose(model, AUDIO, SIZE, candidates=candidates(model), timer=no_timing)
    assert again.label == "cpu" and not again.measured and engine is None
    assert again.reason == verdict.reason + " (cached)"
    # another image size, another torch: measured anew, each in a file of its own
    other = Timings(**first.ms)
    choose(model, AUDIO, SIZE + 32, candidates=candidates(model), timer=other)
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    choose(model, AUDIO, SIZE, candidates=candidates(model), timer=other)
    assert len(other.timed) == 8 and len(list(cache.cache_dir().glob("auto-*.json"))) == 3


def test_new_weights_measure_the_agreement_again_but_not_the_timings(model):
    timer = Timings(eager=50.0, cpu=30.0, cpu_bf16=45.0, int8=10.0)
    choose(model, AUDIO, SIZE, candidates=candidates(model), timer=timer)
    torch.manual_seed(1)
    retrained = FNAC(ModelConfig(dim=16)).eval()  # same shapes, other weights
    no_timing = Timings()  # raises KeyError if asked
    verdict, _ = choose(
        retrained, AUDIO, SIZE, candidates=candidates(retrained, lambda: Upside(retrained)),
        timer=no_timing,
    )  # fmt: skip
    assert verdict.label == "cpu" and verdict.measured and no_timing.timed == []
    kept = json.loads(next(cache.cache_dir().glob("auto-*.json")).read_text())["value"]
    assert [a["int8"]["ok"] for a in kept["agreement"].values()] == [True, False]


def test_a_corrupt_cache_file_is_ignored_with_a_warning(model, caplog):
    timer = Timings(eager=50.0, cpu=30.0, cpu_bf16=45.0, int8=80.0)
    choose(model, AUDIO, SIZE, candidates=candidates(model), timer=timer)
    path = next(cache.cache_dir().glob("auto-*.json"))
    entry = json.loads(path.read_text())
    odd = {**entry, "value": {**entry["value"], "timings_ms": ["cpu", 1]}}  # another version's
    garbage = ["{not json", json.dumps({**entry, "value": []}), "\xff", json.dumps(odd)]
    for text in garbage:
        path.write_text(text)
        timer.timed.clear()
        with caplog.at_level(logging.WARNING, logger="realtime.cache"):
            verdict, _ = choose(model, AUDIO, SIZE, candidates=candidates(model), timer=timer)
        assert verdict.label == "cpu" and len(timer.timed) == 4  # measured again
        assert f"ignoring the cache file {path}" in caplog.text
        assert json.loads(path.read_text())["value"]["timings_ms"]["eager"] == 50  # rewritten
        caplog.clear()


def test_make_engine_auto_builds_the_kept_verdict_and_says_why(model, monkeypatch):
    timer = Timings(eager=50.0, cpu=30.0, cpu_bf16=45.0, int8=80.0)
    audio = AudioConfig()  # what make_engine takes for a model without a checkpoint
    want, _ = choose(model, audio, SIZE, candidates=candidates(model), timer=timer)
    monkeypatch.setattr(autoselect, "time_engine", Timings())  # nothing to measure now
    engine = make_engine("auto", model, image_size=SIZE, device="cpu")
    assert isinstance(engine, CpuEngine) and not engine.bf16
    assert engine.choice == want.reason + " (cached)"
    assert describe(engine) == f"cpu (folded batch norm, channels_last, fp32); {engine.choice}"


def test_a_pinned_backend_is_taken_without_measuring(model, monkeypatch):
    monkeypatch.setenv(autoselect.PIN_ENV, "eager")
    engine = make_engine("auto", model, image_size=SIZE, device="cpu")
    assert (
        type(engine) is Engine and engine.choice == "auto: eager (FNAC_BACKEND=eager: not measured)"
    )
    monkeypatch.setenv(autoselect.PIN_ENV, "magic")
    with pytest.raises(
        ValueError, match="FNAC_BACKEND='magic' is not a backend: give one of eager"
    ):
        make_engine("auto", model, image_size=SIZE)


def test_map_agreement_measures_what_it_says():
    reference = torch.zeros(2, 7, 7)
    reference[:, 1, 1] = 10.0
    near = reference.clone()
    near[0, 2, 2] = 11.0  # hottest a diagonal neighbour away; normalised, 1 - 0 = 1 apart there
    assert map_agreement(reference * 3 + 5, reference) == {
        "max_diff": 0.0, "peak_near": True, "ok": True
    }  # fmt: skip
    got = map_agreement(near, reference)
    assert got["peak_near"] and got["max_diff"] == pytest.approx(1.0) and not got["ok"]
    slight = reference + 0.1 * MAX_MAP_DIFF * torch.rand(2, 7, 7)
    assert map_agreement(slight, reference)["ok"]
    far = reference.clone()
    far[1, 5, 5] = 12.0
    assert not map_agreement(far, reference)["peak_near"]


@pytest.mark.slow  # calibrates a real int8 engine: seconds
def test_auto_measures_for_real_and_keeps_it(model):
    engine = make_engine("auto", model, image_size=SIZE, device="cpu")
    assert engine.choice.startswith(f"auto: {engine.name}") and "ms a frame vs" in engine.choice
    again = make_engine("auto", model, image_size=SIZE, device="cpu")
    assert again.choice.endswith("(cached)") and again.name == engine.name


def test_a_candidate_far_slower_than_the_fastest_so_far_is_stopped_early():
    import time

    class Sleepy:  # 40 ms an image, nothing for the audio
        device = torch.device("cpu")

        def __init__(self) -> None:
            self.calls = 0

        def encode_image(self, frames):
            self.calls += 1
            time.sleep(0.04)

        def encode_audio(self, spec):
            pass

    none = torch.zeros(1)
    slow = Sleepy()
    ms, stopped = autoselect.time_engine(slow, none, none, limit_ms=10.0)
    assert stopped and ms >= 40 and slow.calls == 2  # its first call may set up: let through
    ms, stopped = autoselect.time_engine(Sleepy(), none, none, limit_ms=None)
    assert not stopped and 40 <= ms < 200
