"""ImageNet weights from a local file or torch's hub cache, and a clear error when absent."""

from __future__ import annotations

import pytest
import torch
import torchvision

from fnac.model import FNAC
from train.imagenet import WEIGHTS_FILE, WeightsNotFound, init_image_encoder, object_saliency_model


@pytest.fixture
def hub(tmp_path, monkeypatch):
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(previous)


def test_weights_from_the_hub_cache(hub):
    reference = torchvision.models.resnet18()
    (hub / "checkpoints").mkdir(parents=True)
    torch.save(reference.state_dict(), hub / "checkpoints" / WEIGHTS_FILE)
    model = FNAC()
    init_image_encoder(model.imgnet)
    assert torch.equal(model.imgnet.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.imgnet.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var)
    assert torch.equal(object_saliency_model().fc.weight, reference.fc.weight)


def test_weights_from_a_file_and_clear_errors(hub, tmp_path):
    with pytest.raises(WeightsNotFound, match="pass --imagenet-weights FILE") as missing:
        init_image_encoder(FNAC().imgnet)
    assert "--init" not in str(missing.value)  # fnac eval has no such flag: train adds it
    with pytest.raises(WeightsNotFound, match="does not exist"):
        init_image_encoder(FNAC().imgnet, tmp_path / "none.pth")
    other = tmp_path / "other.pth"
    torch.save({"w": torch.zeros(1)}, other)
    with pytest.raises(WeightsNotFound, match="not a torchvision ResNet-18"):
        init_image_encoder(FNAC().imgnet, other)
    good = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), good)
    init_image_encoder(FNAC().imgnet, good)


class RunsCode:
    def __reduce__(self):
        return (open, ("pwned-by-imagenet-weights", "w"))


def test_weights_that_would_run_code_are_refused_and_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "r18.pth"
    torch.save({**torchvision.models.resnet18().state_dict(), "payload": RunsCode()}, evil)
    with pytest.raises(WeightsNotFound, match="not a readable ResNet-18"):
        init_image_encoder(FNAC().imgnet, evil)
    assert not (tmp_path / "pwned-by-imagenet-weights").exists()


def test_training_without_imagenet_weights_names_its_own_way_out(hub, av_root, tmp_path):
    from train.config import TrainConfig
    from train.trainer import Trainer

    config = TrainConfig(
        data=str(av_root), out=str(tmp_path / "run"), device="cpu", batch_size=4, image_size=64
    )
    with pytest.raises(WeightsNotFound, match="or train from random weights: --init random"):
        Trainer(config)
