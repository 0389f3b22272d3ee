"""Every subcommand through a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import write_png, write_wav

from fnac.config import AudioConfig
from fnac.model import FNAC, ModelConfig


def fnac(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "fnac.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from fnac.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    save_checkpoint(root / "model.pth", FNAC(ModelConfig(dim=32)), AudioConfig(sample_rate=16000))
    published = root / "published.pth"
    torch.save({"model": {f"module.{k}": v for k, v in FNAC().state_dict().items()}}, published)
    write_png(root / "frame.png", rng.integers(0, 255, (90, 120, 3), dtype=np.uint8))
    write_wav(root / "clip.wav", rng.uniform(-0.5, 0.5, 22050 * 4), 22050)
    (root / "garbage.pth").write_bytes(rng.bytes(3000))
    return root


def test_help_lists_the_commands():
    result = fnac("--help")
    assert result.returncode == 0
    for command in (
        "localize",
        "info",
        "synth",
        "train",
        "eval",
        "bench-train",
        "pretrain-image",
        "soak",
        "experiment",
        "demo",
        "tour",
        "live",
        "run",
        "capture",
        "keys",
        "bench",
        "export",
        "devices",
    ):
        assert command in result.stdout


def test_info(files):
    result = fnac("info", files / "model.pth")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["format"] == "fnac" and info["model"]["dim"] == 32
    assert info["audio"]["sample_rate"] == 16000


def test_localize_writes_an_overlay(files):
    out = files / "overlay.png"
    result = fnac(
        "localize",
        "--checkpoint",
        files / "published.pth",
        "--image",
        files / "frame.png",
        "--audio",
        files / "clip.wav",
        "--out",
        out,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert "records no sample rate" in result.stderr  # published format: the warning shows
    from PIL import Image

    assert Image.open(out).size == (120, 90)
    payload = json.loads(result.stdout.splitlines()[-1])
    assert np.asarray(payload["map"]).shape == (7, 7)
    assert 0 <= payload["peak"][0] < 120 and 0 <= payload["peak"][1] < 90


@pytest.mark.parametrize(
    "args, message",
    [
        (["info", "{root}/garbage.pth"], "not a PyTorch checkpoint"),
        (["info", "{root}/missing.pth"], "does not exist"),
        (
            [
                "localize",
                "--checkpoint",
                "{root}/model.pth",
                "--image",
                "{root}/clip.wav",
                "--audio",
                "{root}/clip.wav",
            ],
            "not a readable image",
        ),
        (
            [
                "localize",
                "--checkpoint",
                "{root}/model.pth",
                "--image",
                "{root}/frame.png",
                "--audio",
                "{root}/frame.png",
            ],
            "not a readable WAV",
        ),
        (["train", "--data", "{root}/nowhere"], "does not exist"),
        (["train", "--data", "{root}", "--batch-size", "1"], "batch-size must be at least 2"),
        (["eval", "--checkpoint", "{root}/model.pth", "--data", "{root}"], "cannot tell"),
        (["export", "--checkpoint", "{root}/model.pth", "--out", "{root}/engine"], "tensorrt"),
        (["experiment", "--dropout-img", "1.5", "--out", "{root}/fn"], "must be in [0, 1)"),
        (["bench", "--backends", "int8,magic"], "unknown backend magic: choose from cpu"),
    ],
)
def test_bad_input_gives_one_clear_line(files, args, message):
    result = fnac(*[a.format(root=files) for a in args])
    assert not (files / "fn").exists()  # refused before anything was written
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "fnac: error:" in result.stderr and message in result.stderr


def test_train_then_eval(av_root, tmp_path):
    out = tmp_path / "run"
    result = fnac(
        "train",
        "--data",
        av_root,
        "--out",
        out,
        "--test-data",
        av_root,
        "--epochs",
        1,
        "--batch-size",
        8,
        "--image-size",
        64,
        "--dim",
        16,
        "--workers",
        0,
        "--init",
        "random",
        "--no-tensorboard",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "best.pth" in result.stdout
    report = tmp_path / "eval" / "report.json"
    result = fnac("eval", "--checkpoint", out / "best.pth", "--data", av_root, "--json", report)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(report.read_text())
    assert set(data["results"]["bicubic"]["av"]) >= {"ciou@0.5", "ciou@0.3", "auc", "mean_ciou"}
    assert len(data["per_sample"]) == 16
    assert report.with_suffix(".png").is_file()


def test_synth_then_eval_every_test_set_of_the_world(files, tmp_path):
    world = tmp_path / "world"
    result = fnac(
        "synth",
        world,
        "--classes",
        8,
        "--train",
        2,
        "--test",
        4,
        "--duet",
        2,
        "--silent",
        2,
        "--streams",
        0,
        "--image-size",
        64,
        "--sample-rate",
        8000,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wrote the synthetic world" in result.stdout
    report, calibrated = tmp_path / "report.json", tmp_path / "calibrated.pth"
    result = fnac(
        "eval", "--checkpoint", files / "model.pth", "--data", world, "--json", report,
        "--calibrate", calibrated,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    reports = json.loads(report.read_text())["testsets"]
    assert [r["testset"] for r in reports] == ["vggss", "flickr", "duet"]
    assert "multi-source cIoU@0.3" in result.stdout and "silent pairs: AP" in result.stdout
    score = reports[0]["silent"]["score_at_max_f1"]
    info = json.loads(fnac("info", calibrated).stdout)
    assert info["calibration"]["score_mid"] == pytest.approx(score)
    assert "silent pairs" in info["calibration"]["source"]
    assert f"score_mid) is {score:.3f}" in result.stdout
    no_pairs = fnac(
        "eval", "--checkpoint", files / "model.pth", "--data", world / "duet_test", "--testset",
        "duet", "--calibrate", tmp_path / "never.pth",
    )  # fmt: skip
    assert no_pairs.returncode == 2 and "--calibrate needs silent pairs" in no_pairs.stderr
    assert not (tmp_path / "never.pth").exists()


@pytest.mark.slow  # synth, train, eval: each has its own command's test here by default
def test_tour_end_to_end(tmp_path):
    out = tmp_path / "tour"
    result = fnac("tour", "--out", out, "--train", 16, "--test", 8, "--epochs", 1)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["test_ciou@0.5"] <= 1 and summary["epochs"] == 1
    for name in (
        "tour.pth",
        "eval.json",
        "eval.png",
        "example.png",
        "example.wav",
        "example-overlay.png",
    ):
        assert (out / name).is_file(), name
    assert len(list((out / "overlays").rglob("*.png"))) >= 8


def test_demo_headless_writes_the_video_and_the_summary(tmp_path):
    result = fnac("demo", "--headless", "--seconds", 6, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["frames"] >= 3 and summary["fps"] > 0
    assert set(summary["latency_ms"]) == {"p50", "p95", "p99"}
    assert 0 <= summary["pointing_accuracy"] <= 1 and 0 <= summary["mean_box_iou"] <= 1
    assert (tmp_path / "out" / "demo.mp4").stat().st_size > 1000
    assert "pointing accuracy" in result.stdout and "summary.json" in result.stdout


def test_devices_lists_inputs_and_cameras():
    result = fnac("devices")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "microphones" in result.stdout and "cameras" in result.stdout
    assert "WARN" not in result.stderr  # OpenCV's own probing noise is silenced


def test_the_command_sets_the_thread_pool_settings_and_keeps_the_users(monkeypatch):
    from fnac.threads import SETTINGS, share_cores

    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    code = "import os, fnac.cli; fnac.cli.main([]); print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.splitlines()[-1] == "PASSIVE", out.stderr

    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    share_cores()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"  # the user's choice
    assert os.environ["OPENBLAS_NUM_THREADS"] == SETTINGS["OPENBLAS_NUM_THREADS"]
