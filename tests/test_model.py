"""The FNAC model: shapes, norms, gradients, batch consistency, dropout only in training."""

from __future__ import annotations

import subprocess
import sys

import torch

from fnac.config import ModelConfig
from fnac.losses import similarity_logits
from fnac.model import FNAC


def inputs(B=2, T=200, size=224, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, 3, size, size, generator=g), torch.randn(B, 1, 257, T, generator=g)


def test_shapes_and_unit_norms():
    model = FNAC(ModelConfig(dim=64)).eval()
    frames, spec = inputs()
    with torch.no_grad():
        v, a, maps = model(frames, spec)
    assert v.shape == (2, 64, 7, 7) and a.shape == (2, 64) and maps.shape == (2, 7, 7)
    assert torch.allclose(v.norm(dim=1), torch.ones(2, 7, 7), atol=1e-5)
    assert torch.allclose(a.norm(dim=1), torch.ones(2), atol=1e-5)
    assert torch.allclose(maps, similarity_logits(v, a, model.tau)[[0, 1], [0, 1]], atol=1e-5)
    assert maps.abs().max() <= 1 / model.tau + 1e-3


def test_state_dict_names_match_the_published_layout():
    keys = set(FNAC().state_dict())
    assert {
        "img_proj.weight",
        "img_proj.bias",
        "aud_proj.weight",
        "aud_proj.bias",
        "imgnet.conv1.weight",
        "audnet.conv1.weight",
        "imgnet.layer4.1.bn2.running_var",
    } <= keys
    assert not any(k.startswith(("imgnet.fc", "audnet.fc")) for k in keys)
    assert FNAC().state_dict()["audnet.conv1.weight"].shape == (64, 1, 7, 7)


def test_batch_equals_samples_one_by_one():
    model = FNAC(ModelConfig(dim=32)).eval()
    frames, spec = inputs(B=3)
    with torch.no_grad():
        _, _, batch = model(frames, spec)
        single = torch.cat([model(frames[i : i + 1], spec[i : i + 1])[2] for i in range(3)])
    assert torch.allclose(batch, single, atol=1e-4)


def test_gradient_reaches_every_trainable_parameter():
    from fnac.losses import loss_terms

    model = FNAC(ModelConfig(dim=32, dropout_img=0.5)).train()
    frames, spec = inputs(B=4, T=64, size=64)
    v, a, _ = model(frames, spec)
    terms = loss_terms(v, a, model.tau)
    (
        terms["contrastive"] + 100 * (terms["fns_audio"] + terms["tns"] + terms["fns_image"])
    ).backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or p.grad.abs().sum() == 0)
    ]
    assert not missing


def test_dropout_only_in_training():
    model = FNAC(ModelConfig(dim=16, dropout_img=0.9))
    frames, spec = inputs(B=2, T=64, size=64)
    with torch.no_grad():
        model.eval()
        first, second = model.encode_image(frames), model.encode_image(frames)
        assert torch.equal(first, second)
        model.train()
        assert not torch.allclose(model.encode_image(frames), model.encode_image(frames))


def test_import_fnac_pulls_in_no_io_or_gui_packages():
    code = (
        "import sys, fnac, fnac.model, fnac.checkpoint, fnac.audio, fnac.metrics, fnac.image; "
        "bad = [m for m in ('cv2', 'zmq', 'PyQt6', 'sounddevice') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_our_resnet18_is_torchvisions_in_names_initial_weights_and_outputs():
    import torchvision

    from fnac.resnet import resnet18

    torch.manual_seed(3)
    theirs = torchvision.models.resnet18(weights=None).eval()
    torch.manual_seed(3)
    ours = resnet18().eval()
    a, b = theirs.state_dict(), ours.state_dict()
    assert list(a) == list(b)  # the same names, in the same order
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same seed, the same initial weights
    trained = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in a.items()}
    trained.update({k: v.abs() + 0.5 for k, v in trained.items() if k.endswith("running_var")})
    theirs.load_state_dict(trained)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 3, 96, 128)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))


def test_the_live_path_does_not_import_torchvision():
    import subprocess
    import sys

    code = (
        "import sys; import fnac.checkpoint, fnac.image, realtime.stage, realtime.registry; "
        "print('torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # its import costs 1.8 s of every worker's start
