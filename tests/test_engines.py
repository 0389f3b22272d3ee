"""Every backend against eager on the same inputs; the TensorRT sidecar's staleness rules."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from fnac.config import ModelConfig
from fnac.model import FNAC
from realtime.engines import CpuEngine, Engine
from realtime.registry import make_engine


@pytest.fixture(scope="module")
def model() -> FNAC:
    torch.manual_seed(0)
    return FNAC(ModelConfig(dim=64)).eval()


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 224, 224, generator=g), torch.randn(2, 1, 257, 200, generator=g)


def maps(engine, frames, spec):
    return engine.maps(engine.encode_image(frames), engine.encode_audio(spec))


def test_eager_matches_the_model(model, inputs):
    with torch.no_grad():
        want = model(*inputs)[2]
    got = maps(Engine(model), *inputs)
    assert torch.allclose(got, want, atol=1e-5)


def test_cpu_backend_fp32_agrees_with_eager(model, inputs):
    # Tolerance: 1e-3 on raw maps (|S| <= 1 / tau = 33): folding batch norm into the
    # convolutions only reorders float32 arithmetic.
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in CpuEngine(model).model.modules())
    eager = maps(Engine(model), *inputs)
    fast = CpuEngine(model, bf16=False)
    assert (maps(fast, *inputs) - eager).abs().max() < 1e-3


def test_cpu_backend_bf16_stays_close(model, inputs):
    # bf16 keeps 8 bits of mantissa: maps within 3 % of their range, same peak region.
    eager = maps(Engine(model), *inputs)
    fast = maps(CpuEngine(model, bf16=True), *inputs)
    span = eager.amax(dim=(1, 2)) - eager.amin(dim=(1, 2))
    assert ((fast - eager).abs().amax(dim=(1, 2)) / span).max() < 0.03


@pytest.fixture(scope="module")
def int8_engine(model):
    return make_engine("int8", model, image_size=224)


def test_int8_backend_stays_close_on_the_pictures_and_sounds_it_was_made_for(model, int8_engine):
    import numpy as np

    from fnac.config import AudioConfig, ImageConfig
    from realtime.quantize import calibration_inputs

    engine = int8_engine
    for graph in (engine.image_fn.graph, engine.audio_fn.graph):
        text = str(graph)  # the 20 convolutions of each ResNet-18 trunk in int8
        assert text.count("quantized::conv2d") == 20 and "aten::conv2d" not in text
        float_convs = [line for line in text.splitlines() if "aten::_convolution" in line]
        assert all("img_proj" in line for line in float_convs)  # the 1x1 projection only
    frames, specs = calibration_inputs(AudioConfig(), ImageConfig(size=224), 6, seed=3)  # unseen
    eager, int8 = maps(Engine(model), frames, specs), maps(engine, frames, specs)
    assert int8.dtype == torch.float32 and int8.shape == eager.shape
    # int8 moves the maps a little (the hot cell can move to a neighbour of close value);
    # tests/test_demo_checkpoint.py scores what that does to the localization
    corr = [np.corrcoef(a.flatten(), b.flatten())[0, 1] for a, b in zip(eager, int8, strict=True)]
    assert min(corr) > 0.95, corr


def test_int8_graphs_are_kept_and_a_later_start_loads_them(model, int8_engine):
    from fnac.config import AudioConfig, ImageConfig
    from realtime.quantize import Int8Engine, cached_graphs, graph_key

    audio, image = AudioConfig(), ImageConfig(size=224)
    key = graph_key(int8_engine.model, audio, image, 16)
    assert all(path.exists() for path in cached_graphs(key).values())  # kept when built
    loaded = Int8Engine(model, audio, image)
    assert loaded.cached and "from the cache" in loaded.describe()
    frames, specs = torch.randn(2, 3, 224, 224), torch.randn(2, 1, 257, 200)
    assert torch.equal(maps(loaded, frames, specs), maps(int8_engine, frames, specs))
    other = copy.deepcopy(model)  # other weights: other graphs, never the kept ones
    with torch.no_grad():
        other.img_proj.bias.add_(0.01)
    assert graph_key(other, audio, image, 16) != key
    assert graph_key(model, audio, ImageConfig(size=128), 16) != key


@pytest.mark.slow  # builds the graphs twice
def test_a_broken_kept_graph_is_rebuilt_with_a_warning(model, tmp_path, monkeypatch, caplog):
    from fnac.config import AudioConfig, ImageConfig
    from realtime.quantize import Int8Engine

    monkeypatch.setenv("FNAC_CACHE_DIR", str(tmp_path))
    audio, image = AudioConfig(sample_rate=8000), ImageConfig(size=64)
    assert not Int8Engine(model, audio, image, calibration=4).cached
    kept = sorted(tmp_path.glob("int8-*.pt"))
    assert len(kept) == 2
    kept[0].write_bytes(b"not a graph")
    again = Int8Engine(model, audio, image, calibration=4)
    assert not again.cached and "rebuilding" in caplog.text
    assert kept[0].stat().st_size > 1000  # written anew


@pytest.mark.slow
def test_compile_backend_agrees_with_eager(model, inputs):
    eager = maps(Engine(model), *inputs)
    compiled = make_engine("compile", model, device="cpu")
    assert (maps(compiled, *inputs) - eager).abs().max() < 1e-3


def test_unknown_backend(model):
    with pytest.raises(ValueError, match="unknown backend"):
        make_engine("magic", model)


def test_tensorrt_sidecar_staleness(tmp_path, model):
    from realtime.tensorrt import StaleEngine, check_sidecar, expected_sidecar

    checkpoint = tmp_path / "best.pth"
    torch.save(model.state_dict(), checkpoint)
    engines = tmp_path / "engine"
    engines.mkdir()
    with pytest.raises(StaleEngine, match="no engine.json"):
        check_sidecar(engines, checkpoint, 224, 200)
    (engines / "engine.json").write_text(json.dumps(expected_sidecar(checkpoint, 224, 200)))
    assert check_sidecar(engines, checkpoint, 224, 200)["precision"] == "fp16"
    with pytest.raises(StaleEngine, match="image_shape"):
        check_sidecar(engines, checkpoint, 160, 200)
    checkpoint.write_bytes(checkpoint.read_bytes() + b"changed")
    with pytest.raises(StaleEngine, match="checkpoint_sha256.*fnac export"):
        check_sidecar(engines, checkpoint, 224, 200)


@pytest.mark.tensorrt
@pytest.mark.cuda
def test_tensorrt_backend_agrees_with_eager(tmp_path, model, inputs):
    pytest.importorskip("torch_tensorrt")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    from realtime.tensorrt import export

    checkpoint = tmp_path / "best.pth"
    torch.save(model.state_dict(), checkpoint)
    export(model, checkpoint, tmp_path / "engine")
    trt = make_engine(
        "tensorrt",
        FNAC(ModelConfig(dim=64)).eval().cuda(),
        engine_dir=tmp_path / "engine",
        checkpoint=checkpoint,
    )
    trt.model.load_state_dict(model.state_dict())
    eager = maps(Engine(model.float().cpu()), inputs[0][:1], inputs[1][:1])
    got = maps(trt, inputs[0][:1].cuda(), inputs[1][:1].cuda())
    # FP16: within 3 % of each map's range.
    assert (got - eager).abs().max() / (eager.max() - eager.min()) < 0.03


def test_bench_agreement_measures_what_it_says():
    from realtime.bench import agreement

    eager = torch.zeros(2, 7, 7)
    eager[:, 1, 1] = 10.0  # range 10, hottest cell (1, 1)
    moved = eager.clone()
    moved[0, 2, 2] = 10.5  # map 0: hottest cell a diagonal neighbour away, differs by 10.5
    moved[1, 5, 5] = 12.0  # map 1: hottest cell four rows and columns away, differs by 12

    class Shifted:  # an engine whose maps are ``moved`` whatever it is given
        def encode_image(self, frames):
            return frames

        def encode_audio(self, specs):
            return specs

        def maps(self, v, a):
            return moved

    got = agreement(Shifted(), eager, torch.zeros(2), torch.zeros(2))
    assert got["max_diff"] == pytest.approx(12.0 / 10.0)
    assert got["peak_within_1"] == 0.5
    want_corr = min(
        float(torch.corrcoef(torch.stack([eager[i].flatten(), moved[i].flatten()]))[0, 1])
        for i in range(2)
    )
    assert got["min_corr"] == pytest.approx(want_corr)


def test_a_missing_tensorrt_engine_names_the_command_that_builds_it(tmp_path, model):
    """Said from the engine folder alone, before Torch-TensorRT is needed, and the command it
    names is one the CLI takes."""
    import shlex

    from fnac.checkpoint import load_checkpoint, save_checkpoint
    from fnac.cli import build_parser
    from fnac.config import AudioConfig
    from realtime.backends import default_engine_dir
    from realtime.tensorrt import StaleEngine

    checkpoint = tmp_path / "best.pth"
    save_checkpoint(checkpoint, model, AudioConfig(sample_rate=16000))
    loaded = load_checkpoint(checkpoint)
    for given, where in (
        (tmp_path / "mine", tmp_path / "mine"),
        (None, tmp_path / "best-tensorrt"),
    ):
        with pytest.raises(StaleEngine) as refused:
            make_engine("tensorrt", loaded, engine_dir=given)
        text = str(refused.value)
        command = f"fnac export --checkpoint {checkpoint} --out {where} --sample-rate 16000"
        assert f"no engine in {where}" in text and command in text and "\n" not in text
        args = build_parser().parse_args(shlex.split(command)[1:])
        assert args.func.__name__ == "export_command" and args.out == str(where)
    assert default_engine_dir(checkpoint) == tmp_path / "best-tensorrt"
