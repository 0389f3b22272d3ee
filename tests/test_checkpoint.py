"""Checkpoints: the published format, the project's format, and clear errors for bad files."""

from __future__ import annotations

import logging
import os
import pickle

import numpy as np
import pytest
import torch

from fnac.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from fnac.config import AudioConfig, ModelConfig
from fnac.model import FNAC


@pytest.fixture(scope="module")
def model() -> FNAC:
    torch.manual_seed(7)
    m = FNAC(ModelConfig(dim=512))
    # Make batch-norm statistics non-trivial so that a wrong load would show in the maps.
    with torch.no_grad():
        for name, buf in m.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    return m.eval()


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, 3, 224, 224, generator=g), torch.randn(2, 1, 257, 200, generator=g)


def maps_of(model, batch):
    with torch.no_grad():
        return model(*batch)[2]


def test_published_format_with_module_prefixes_loads_identically(tmp_path, model, batch, caplog):
    published = {
        "model": {f"module.{k}": v for k, v in model.state_dict().items()},
        "optimizer": torch.optim.Adam(model.parameters()).state_dict(),
        "epoch": 19,
        "best_cIoU": np.float64(0.3527),  # numpy scalars appear in the authors' files
        "best_Auc": np.float64(0.38),
    }
    path = tmp_path / "best.pth"
    torch.save(published, path)
    with caplog.at_level(logging.WARNING):
        loaded = load_checkpoint(path)
    assert "records no sample rate" in caplog.text
    assert loaded.info.format == "published" and loaded.info.audio.sample_rate == 16000
    assert loaded.info.epoch == 19 and loaded.info.metrics["best_cIoU"] == pytest.approx(0.3527)
    assert not loaded.training
    assert torch.equal(maps_of(loaded, batch), maps_of(model, batch))


def test_bare_state_dict_and_explicit_rate(tmp_path, model, batch):
    path = tmp_path / "bare.pth"
    torch.save(model.state_dict(), path)
    loaded = load_checkpoint(path, sample_rate=22050)
    assert loaded.info.audio.sample_rate == 22050
    assert torch.equal(maps_of(loaded, batch), maps_of(model, batch))


def test_own_format_round_trip(tmp_path, batch):
    small = FNAC(ModelConfig(dim=64, tau=0.05)).eval()
    path = save_checkpoint(
        tmp_path / "run" / "best.pth",
        small,
        AudioConfig(sample_rate=22050),
        trained_on="synthetic k=8",
        epoch=3,
        metrics={"ciou@0.5": 0.4},
    )
    loaded = load_checkpoint(path)
    assert loaded.info.format == "fnac" and loaded.config == small.config
    assert loaded.info.audio.sample_rate == 22050 and loaded.info.trained_on == "synthetic k=8"
    assert loaded.info.epoch == 3 and loaded.info.metrics == {"ciou@0.5": 0.4}
    assert loaded.info.versions["torch"] == torch.__version__
    assert torch.equal(maps_of(loaded, batch), maps_of(small, batch))
    assert not [p for p in os.listdir(path.parent) if p.endswith(".tmp")]


def test_half_precision_storage_is_close(tmp_path, model, batch):
    path = save_checkpoint(tmp_path / "half.pth", model, AudioConfig(), half=True)
    assert path.stat().st_size < 60e6
    loaded = load_checkpoint(path)
    assert next(loaded.parameters()).dtype == torch.float32
    assert (maps_of(loaded, batch) - maps_of(model, batch)).abs().max() < 0.05 / model.tau


class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-checkpoint",))


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (os.urandom(4096), "not"),
        (b"PK\x03\x04truncated zip", "not a readable PyTorch checkpoint"),
    ],
)
def test_unreadable_files_give_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_truncated_checkpoint(tmp_path, model):
    path = tmp_path / "cut.pth"
    torch.save({"model": model.state_dict()}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_pickled_code_is_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="never runs pickled code"):
        load_checkpoint(path)
    assert not (tmp_path / "pwned-by-checkpoint").exists()
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError):
        load_checkpoint(raw)
    assert not (tmp_path / "pwned-by-checkpoint").exists()


def test_another_models_checkpoint(tmp_path):
    import torchvision

    path = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(CheckpointError, match="not an FNAC checkpoint.*img_proj.weight"):
        load_checkpoint(path)


def test_missing_and_mismatched_keys_are_summarised(tmp_path, model):
    state = dict(model.state_dict())
    del state["audnet.layer4.1.bn2.weight"]
    state["extra.weight"] = torch.zeros(1)
    state["aud_proj.weight"] = torch.zeros(512, 256)
    path = tmp_path / "odd.pth"
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    text = str(err.value)
    assert "missing keys: 1 (audnet.layer4.1.bn2.weight)" in text
    assert "unexpected keys: 1 (extra.weight)" in text
    assert "aud_proj.weight (512, 256) vs (512, 512)" in text


def test_not_a_state_dict(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="not an FNAC checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pth")


def raw_of(path):
    return torch.load(path, weights_only=True)


def test_a_calibration_travels_in_the_checkpoint_and_reaches_the_live_settings(tmp_path, caplog):
    from fnac.checkpoint import save_calibrated
    from realtime.results import ConfidenceSettings

    torch.manual_seed(0)
    trained = FNAC(ModelConfig(dim=16))
    plain = save_checkpoint(
        tmp_path / "plain.pth",
        trained,
        AudioConfig(sample_rate=8000),
        epoch=3,
        train_state={"step": 7},
        half=True,
    )
    loaded = load_checkpoint(plain)
    assert loaded.info.calibration == {}
    assert ConfidenceSettings.for_checkpoint({}) == ConfidenceSettings()
    out = save_calibrated(tmp_path / "calibrated.pth", loaded, 0.31, "max-F1 on world/test")
    again = load_checkpoint(out)
    assert again.info.calibration == {"score_mid": 0.31, "source": "max-F1 on world/test"}
    assert ConfidenceSettings.for_checkpoint(again.info.calibration).score_mid == 0.31
    assert again.info.epoch == 3 and again.info.audio.sample_rate == 8000
    assert again.info.raw["train_state"] == {"step": 7}  # --resume still works from it
    assert again.info.raw["model"]["img_proj.weight"].dtype == torch.float16  # stays as small
    for name, tensor in loaded.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name
    raw = raw_of(out)
    leveled = save_calibrated(tmp_path / "leveled.pth", loaded, 0.31, "test", box_level=0.65)
    settings = ConfidenceSettings.for_checkpoint(load_checkpoint(leveled).info.calibration)
    assert (settings.score_mid, settings.box_level) == (0.31, 0.65)
    torch.save(
        {**raw_of(leveled), "calibration": {"score_mid": 0.3, "box_level": 4}}, tmp_path / "b.pth"
    )
    assert load_checkpoint(tmp_path / "b.pth").info.calibration == {"score_mid": 0.3, "source": ""}
    for damaged in ({"score_mid": float("nan")}, {"score_mid": "high"}, [0.3], {"score_mid": 7}):
        torch.save({**raw, "calibration": damaged}, tmp_path / "damaged.pth")
        with caplog.at_level(logging.WARNING):
            assert load_checkpoint(tmp_path / "damaged.pth").info.calibration == {}
        assert "ignoring a calibration entry" in caplog.text


def test_a_loaded_model_is_the_file_s_whatever_the_random_state(tmp_path, monkeypatch):
    """load_checkpoint builds the model without drawing its random initialisation (the weights
    come from the file): the model it gives equals one built the plain way and given the same
    state, and no tensor is left on the meta device."""
    torch.manual_seed(5)
    saved = FNAC(ModelConfig(dim=16))
    path = save_checkpoint(tmp_path / "m.pth", saved, AudioConfig(), half=True)
    torch.manual_seed(6)

    def drawn(*args, **kwargs):
        raise AssertionError("a random initialisation was drawn for a model given its weights")

    with monkeypatch.context() as patched:  # the ResNets' init: never run on the way in
        patched.setattr(torch.nn.init, "kaiming_normal_", drawn)
        loaded = load_checkpoint(path)
    assert not any(t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])
    plain = FNAC(ModelConfig(dim=16))
    state = torch.load(path, weights_only=True)["model"]
    plain.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    frame, spec = torch.rand(2, 3, 224, 224), torch.rand(2, 1, 257, 94)
    for a, b in zip(loaded.eval()(frame, spec), plain.eval()(frame, spec), strict=True):
        assert torch.equal(a, b)
    assert loaded.imgnet.conv1.weight.requires_grad  # trainable, as a plain model's
