"""The README's Python example runs as written (on files made here in its place)."""

from __future__ import annotations

import re

import numpy as np
import torch
from conftest import REPO, write_png, write_wav

from fnac.checkpoint import save_checkpoint
from fnac.config import AudioConfig, ImageConfig, ModelConfig
from fnac.model import FNAC


def test_python_example_runs(tmp_path, monkeypatch, capsys):
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has no Python example"
    out = tmp_path / "tour-output"  # where `fnac tour` leaves them
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    save_checkpoint(
        out / "tour.pth",
        FNAC(ModelConfig(dim=32)),
        AudioConfig(sample_rate=8000),
        ImageConfig(size=160, train_resize=176),
    )
    write_png(out / "example.png", rng.integers(0, 255, (160, 160, 3), dtype=np.uint8))
    write_wav(out / "example.wav", rng.uniform(-0.5, 0.5, 8000 * 4), 8000)
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert capsys.readouterr().out.strip() == "(5, 5) (160, 160)"
