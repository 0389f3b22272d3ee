"""Training: one epoch, exact resume, torchrun with gloo, and evaluation on known answers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, make_av_root
from conftest import TINY_TRAIN as TINY

from fnac.checkpoint import load_checkpoint
from fnac.config import AudioConfig, ImageConfig, ModelConfig
from fnac.model import FNAC
from train.config import resolve
from train.datasets import Entry, TestSet
from train.evaluate import evaluate
from train.trainer import train


def test_one_epoch_writes_checkpoints_with_finite_terms(av_root, tmp_path):
    out = tmp_path / "run"
    result = train(
        resolve(
            overrides=dict(
                data=str(av_root), out=str(out), epochs=1, warmup=0, test_data=str(av_root), **TINY
            )
        )
    )
    record = result["history"][0]
    for term in ("contrastive", "fns_audio", "tns", "fns_image", "loss"):
        assert np.isfinite(record[f"train/{term}"]), term
    assert 0 <= record["test/ciou@0.5"] <= 1
    for name in ("best.pth", "latest.pth", "config.json"):
        assert (out / name).is_file()
    model = load_checkpoint(out / "best.pth")
    assert model.info.audio.sample_rate == 8000 and model.info.image.size == 64
    assert model.info.epoch == 1 and model.config.dim == 16
    assert json.loads((out / "config.json").read_text())["sample_rate"] == 8000


def test_resume_equals_an_uninterrupted_run(tmp_path):
    root = make_av_root(tmp_path / "av", n=8)  # two batches of 4 an epoch, 1 s of audio each
    tiny = {**TINY, "batch_size": 4, "window_s": 1.0}
    straight = tmp_path / "straight"
    train(resolve(overrides=dict(data=str(root), out=str(straight), epochs=2, warmup=1, **tiny)))
    split = tmp_path / "split"
    train(resolve(overrides=dict(data=str(root), out=str(split), epochs=1, warmup=1, **tiny)))
    train(
        resolve(overrides=dict(data=str(root), out=str(split), epochs=2, warmup=1, **tiny)),
        resume=True,
    )
    a = load_checkpoint(straight / "latest.pth").state_dict()
    b = load_checkpoint(split / "latest.pth").state_dict()
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different
    # and the run did train: weights moved away from the initial ones
    first = load_checkpoint(split / "latest.pth")
    assert first.info.epoch == 2


def _train_cli(root: Path, out: Path, *extra: str) -> subprocess.Popen:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if not isinstance(v, bool)]
    cmd = [sys.executable, "-m", "fnac.cli", "train", "--data", str(root), "--out", str(out)]
    cmd += [*flags, "--no-tensorboard", "--no-progress", "--epochs", "4", "--warmup", "1", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    log = open(out.parent / f"{out.name}.log", "a")  # a pipe left unread could fill and block
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.slow  # three runs of 4 epochs on 48 samples; a short resume runs by default
def test_sigkill_mid_epoch_then_resume_ends_with_the_uninterrupted_weights(tmp_path):
    root = make_av_root(tmp_path / "av", n=48)
    straight = _train_cli(root, tmp_path / "straight")
    assert straight.wait(timeout=300) == 0, (tmp_path / "straight.log").read_text()[-3000:]

    killed_out = tmp_path / "killed"
    killed = _train_cli(root, killed_out)
    deadline = time.monotonic() + 240
    while not (killed_out / "latest.pth").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)  # the first epoch's checkpoint is on disk: the second epoch runs
    time.sleep(0.3)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=30) == -signal.SIGKILL  # killed, not finished
    survivor = load_checkpoint(killed_out / "latest.pth")  # never a half-written file
    assert 1 <= survivor.info.epoch < 4

    resumed = _train_cli(root, killed_out, "--resume")
    assert resumed.wait(timeout=300) == 0, (tmp_path / "killed.log").read_text()[-3000:]
    a = load_checkpoint(tmp_path / "straight" / "latest.pth").state_dict()
    b = load_checkpoint(killed_out / "latest.pth").state_dict()
    assert load_checkpoint(killed_out / "latest.pth").info.epoch == 4
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_torchrun_two_processes_gloo_identical_weights(av_root, tmp_path):
    import socket

    out = tmp_path / "ddp"
    with socket.socket() as s:  # a free port: another run of the suite may hold a fixed one
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        str(port),
        str(REPO / "tests" / "ddp_worker.py"),
        str(av_root),
        str(out),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    r0 = torch.load(out / "rank0.pt", weights_only=True)
    r1 = torch.load(out / "rank1.pt", weights_only=True)
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    assert (out / "best.pth").is_file()


class PlantedMaps(FNAC):
    """A model whose map is hot in the top rows for 'up' audio and the bottom rows otherwise."""

    def encode_image(self, frames):
        B = frames.shape[0]
        v = torch.zeros(B, 2, 7, 7)
        v[:, 0, :3] = 1  # top three rows
        v[:, 1, 4:] = 1  # bottom three rows
        v[:, :, 3] = 0.5**0.5  # middle row: equal to both
        return v

    def encode_audio(self, spec):
        up = spec.flatten(1).mean(dim=1) > -10  # any real audio -> "up"
        return torch.stack([up.float(), 1 - up.float()], dim=1)


def test_evaluation_on_known_answers(tmp_path, rng):
    from conftest import write_png, write_wav

    entries = []
    for i in range(4):
        image = write_png(tmp_path / f"{i}.png", rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
        audio = write_wav(tmp_path / f"{i}.wav", rng.uniform(-0.5, 0.5, 8000 * 3), 8000)
        # ground truth: top half for samples 0, 1 (predicted exactly), bottom half for 2, 3
        box = [0, 0, 1, 0.5] if i < 2 else [0, 0.5, 1, 1]
        entries.append(Entry(str(i), image, audio, boxes=[box]))
    model = PlantedMaps(ModelConfig(dim=2, tau=1.0)).eval()
    report = evaluate(
        model,
        TestSet("vggss", tmp_path, entries),
        AudioConfig(sample_rate=8000),
        ImageConfig(size=64),
        overlays=tmp_path / "overlays",
    )
    per = {r["id"]: r["bicubic/av"] for r in report["per_sample"]}
    assert per["0"] == pytest.approx(1.0) and per["1"] == pytest.approx(1.0)
    assert per["2"] == pytest.approx(0.0) and per["3"] == pytest.approx(0.0)
    summary = report["results"]["bicubic"]["av"]
    assert summary["ciou@0.5"] == 0.5 and summary["mean_ciou"] == pytest.approx(0.5)
    # success curve: 1 at t = 0, 0.5 on (0, 1] -> 0.05 * (1 + 0.5) / 2 + 0.95 * 0.5
    assert summary["auc"] == pytest.approx(0.5125)
    assert len(list(Path(tmp_path / "overlays").glob("*.png"))) == 4


@pytest.mark.slow  # a world, its pretraining and four training runs
def test_false_negative_experiment_runs_and_reports(tmp_path):
    from train.experiment import ExperimentConfig, run_experiment

    settings = ExperimentConfig(
        out=str(tmp_path / "fn"),
        classes=(3,),
        seeds=2,
        train=8,
        test=4,
        epochs=1,
        warmup=0,
        batch_size=4,
        image_size=64,
        sample_rate=8000,
        dim=16,
        dropout_img=0.5,
        workers=0,
        device="cpu",
        init="world",
        pretrain_images=8,
        pretrain_steps=2,
        spec_masks=False,
    )
    report = run_experiment(settings)
    (row,) = report["table"]
    assert row["classes"] == 3 and row["same_class_per_sample"] == 1.0
    for loss in ("fnac", "contrastive"):
        assert row[loss]["ciou@0.5"]["n"] == 2
        assert 0 <= row[loss]["auc"]["mean"] <= 1
    assert "| 3 |" in (tmp_path / "fn" / "results.md").read_text()
    assert len(report["runs"]) == 4
    assert (tmp_path / "fn" / "world-k3" / "objects-resnet18.pth").is_file()
    config = json.loads((tmp_path / "fn" / "k3-fnac-seed0" / "config.json").read_text())
    assert config["dropout_img"] == 0.5 and config["loss"] == "fnac"
    again = run_experiment(settings)  # finished runs are reused, not retrained
    assert again["runs"] == report["runs"]
