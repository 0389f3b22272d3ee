"""Image preprocessing: the published transform and the fast path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fnac.config import ImageConfig
from fnac.image import load_image, preprocess_frames, to_rgb


def test_reference_path_equals_pil_bicubic_resize(rng):
    bgr = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    got = preprocess_frames(bgr)[0]
    rgb = bgr[:, :, ::-1]
    resized = np.asarray(Image.fromarray(rgb).resize((224, 224), Image.BICUBIC)).astype(np.float32)
    mean = np.array([0.485, 0.456, 0.406])
    std = np.array([0.229, 0.224, 0.225])
    want = ((resized / 255.0 - mean) / std).transpose(2, 0, 1)
    assert got.shape == (3, 224, 224)
    assert np.abs(got.numpy() - want).max() < 1e-5


ONE_GREY_LEVEL = 1 / 255 / min(ImageConfig().std)  # after normalisation


def test_fast_path_is_within_a_grey_level_of_the_reference(rng):
    y, x = np.mgrid[0:480, 0:640]
    smooth = np.stack([x * 255 // 640, y * 255 // 480, (x + y) * 255 // 1120], -1).astype(np.uint8)
    noise = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)  # the worst case for rounding
    for frame in (smooth, noise):
        ref = preprocess_frames(frame)
        fast = preprocess_frames(frame, method="fast")
        assert fast.shape == ref.shape
        assert (fast - ref).abs().max() <= ONE_GREY_LEVEL * 1.01


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3), (5, 7, 4), (1, 1, 3)])
def test_to_rgb_accepts_common_layouts(shape, rng):
    frame = rng.integers(0, 256, shape, dtype=np.uint8)
    out = to_rgb(frame)
    assert out.shape == (shape[0], shape[1], 3) and out.dtype == np.uint8
    if len(shape) == 3 and shape[2] >= 3:
        assert (out[..., 0] == frame[..., 2]).all()  # BGR -> RGB


def test_to_rgb_rejects_wrong_input():
    with pytest.raises(ValueError, match="uint8"):
        to_rgb(np.zeros((4, 4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="expected an image"):
        to_rgb(np.zeros((4, 4, 2), dtype=np.uint8))


def test_load_image_errors(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"\x00\x01 not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        load_image(tmp_path / "x.jpg")
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "none.png")


def test_grayscale_frame_goes_through_both_paths():
    gray = np.full((30, 40), 128, dtype=np.uint8)
    for method in ("reference", "fast"):
        out = preprocess_frames(gray, method=method)
        assert out.shape == (1, 3, 224, 224) and torch.isfinite(out).all()


def test_fast_path_maps_stay_close_to_the_reference():
    """How far the live path's resize moves the maps (figures in the README)."""
    from fnac.heatmap import heatmap
    from fnac.model import FNAC
    from train.synth_stream import StreamScript
    from train.synth_world import World, WorldConfig

    torch.manual_seed(0)
    model = FNAC().eval()
    world = World(WorldConfig(classes=8))
    script = StreamScript.draw(world, np.random.default_rng(0), 20.0, size=(640, 480))
    frames = [script.frame(i * 45)[:, :, ::-1].copy() for i in range(6)]  # BGR, as OpenCV gives
    with torch.no_grad():
        a = model.encode_audio(torch.randn(1, 1, 257, 200)).expand(len(frames), -1)
        ref = model.localize(model.encode_image(preprocess_frames(frames)), a)
        fast = model.localize(model.encode_image(preprocess_frames(frames, method="fast")), a)
    span = ref.amax(dim=(1, 2)) - ref.amin(dim=(1, 2))
    assert ((fast - ref).abs().amax(dim=(1, 2)) / span).max() < 0.01  # measured: 0.22 %
    diff = (heatmap(fast, (480, 640)) - heatmap(ref, (480, 640))).abs()
    assert diff.max() < 0.01  # measured: 0.0021 max, 0.0004 mean
