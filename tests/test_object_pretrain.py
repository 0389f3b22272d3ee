"""``fnac pretrain-image``: a ResNet-18 that names the world's objects, in ImageNet's file shape."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from fnac.model import FNAC
from train.imagenet import init_image_encoder, object_saliency_model
from train.object_pretrain import PretrainConfig, pretrain, world_config
from train.synth_world import World, WorldConfig


@pytest.fixture
def world_root(tmp_path):
    world = World(WorldConfig(classes=3, image_size=64, sample_rate=8000, seed=4))
    (tmp_path / "world.json").write_text(json.dumps(world.describe()))
    return tmp_path


@pytest.mark.slow  # 40 steps of a ResNet-18 and 200 held-out scenes: the slow set
def test_it_learns_the_classes_and_writes_imagenet_shaped_weights(world_root, tmp_path):
    out = tmp_path / "objects.pth"
    summary = pretrain(world_root, out, PretrainConfig(images=96, steps=40, batch_size=16))
    assert world_config(world_root).classes == summary["classes"] == 3
    # three classes: a third by chance; the objects' colour and shape make it easy
    assert summary["held_out_accuracy"] >= 0.8
    model = FNAC()
    before = model.imgnet.conv1.weight.clone()
    init_image_encoder(model.imgnet, out)  # read exactly as the ImageNet file is
    assert not torch.equal(before, model.imgnet.conv1.weight)
    assert object_saliency_model(out).fc.weight.shape == (1000, 512)


def test_a_folder_without_world_json_is_refused_with_the_fix(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "fnac.cli", "pretrain-image", str(tmp_path), "--out", "x.pth"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "world.json" in result.stderr and "fnac synth" in result.stderr
    assert "Traceback" not in result.stderr
