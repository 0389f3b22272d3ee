"""Every subcommand through a subprocess, as a user runs it."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, write_png, write_wav

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
    (root / "small-batch.json").write_text('{"batch_size": 1}')  # a layer flags do not check
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
    assert info["calibration"].startswith("none: the live app uses its defaults")


def test_demo_names_the_shipped_checkpoint_from_any_folder(tmp_path):
    from fnac.weights import DEMO_CHECKPOINT

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for args in (["info", "demo"], ["info"]):
        result = subprocess.run(
            [sys.executable, "-m", "fnac.cli", *args], capture_output=True, text=True,
            cwd=tmp_path, env=env, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["path"] == str(DEMO_CHECKPOINT)
    jsonl = tmp_path / "run.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "fnac.cli", "run", "--source", "synthetic", "--seconds", "1",
         "--jsonl", str(jsonl)], capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0 and jsonl.read_text(), result.stderr[-2000:]  # no --checkpoint


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
        files / "found.json",
    )
    assert result.returncode == 0, result.stderr
    assert "records no sample rate" in result.stderr  # published format: the warning shows
    from PIL import Image

    assert Image.open(out).size == (120, 90)
    payload = json.loads((files / "found.json").read_text())
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
            "has no audio track",
        ),
        (["train", "--data", "{root}/nowhere"], "does not exist"),
        (
            ["train", "--data", "{root}", "--config", "{root}/small-batch.json"],
            "batch-size must be at least 2",
        ),
        (["eval", "--checkpoint", "{root}/model.pth", "--data", "{root}"], "cannot tell"),
        (["export", "--checkpoint", "{root}/model.pth", "--out", "{root}/engine"], "tensorrt"),
        (["bench", "--backends", "int8,magic"], "unknown backend magic: choose from cpu"),
        (["bench", "--backends", "cpu,auto"], "auto is not timed on its own"),
    ],
)
def test_bad_input_gives_one_clear_line(files, args, message):
    result = fnac(*[a.format(root=files) for a in args])
    assert not (files / "fn").exists()  # refused before anything was written
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "fnac: error:" in result.stderr and message in result.stderr


def every_command() -> dict[str, argparse.ArgumentParser]:
    """Every subcommand's parser, as fnac.cli builds them."""
    from fnac.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_live_command_defaults_to_the_auto_backend():
    from realtime.backends import BACKENDS

    with_backend = {}
    for name, parser in every_command().items():
        for action in parser._actions:
            if "--backend" in action.option_strings:
                with_backend[name] = (action.default, tuple(action.choices))
    assert set(with_backend) == {"run", "soak", "live", "demo"}  # bench takes --backends
    assert set(with_backend.values()) == {("auto", BACKENDS)} and BACKENDS[0] == "auto"


def _takes_a_number(action: argparse.Action) -> bool:
    values = action.default if isinstance(action.default, (list, tuple)) else [action.default]
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return action.type in (int, float) or hasattr(action.type, "range") or bool(numbers)


def _outside(bounds: tuple[float, float]) -> str:
    lo, hi = bounds
    return str(lo - 1) if math.isfinite(lo) else str(hi + 1) if math.isfinite(hi) else "nan"


def test_json_means_one_thing_in_every_command():
    """``--json PATH``: a file to write the command's report to, wherever it is taken."""
    takers = []
    for name, parser in every_command().items():
        for action in parser._actions:
            if "--json" in action.option_strings:
                assert action.dest == "json_out" and action.nargs is None, name
                assert action.metavar == "PATH" and "here (JSON)" in action.help, name
                takers.append(name)
    assert set(takers) == {"localize", "eval", "bench-train", "bench", "soak"}


def test_one_name_for_the_test_set_layout(tmp_path):
    """``--testset`` in fnac train and fnac eval, with the same choices; the name of earlier
    builds (``--test-kind``, ``test_kind`` in a config file) is still taken."""
    from train.config import load_config_file

    commands = every_command()
    choices = {}
    for name in ("train", "eval"):
        action = next(a for a in commands[name]._actions if "--testset" in a.option_strings)
        choices[name] = action.choices
    assert choices["train"] == choices["eval"] and "flickr" in choices["eval"]
    old = commands["train"].parse_args(["--data", "x", "--test-kind", "flickr"])
    assert old.testset == "flickr"
    (tmp_path / "old.json").write_text('{"test_kind": "duet"}')
    assert load_config_file(tmp_path / "old.json") == {"testset": "duet"}


def test_every_numeric_flag_is_checked_when_parsed(capsys):
    commands = every_command()
    assert list(commands) == [
        "info", "synth", "pretrain-image", "train", "eval", "bench-train", "experiment", "tour",
        "localize", "run", "bench", "soak", "export", "devices", "keys", "capture", "live", "demo",
    ]  # fmt: skip
    checked = []
    for name, parser in commands.items():
        needed = []  # the positionals and required flags, so only the flag under test is wrong
        for action in parser._actions:
            if action.required:
                needed += [*action.option_strings[:1], "x"]
        for action in parser._actions:
            if not action.option_strings or not _takes_a_number(action):
                continue
            flag = f"fnac {name} {action.option_strings[0]}"
            assert hasattr(action.type, "range"), f"{flag} takes a number unchecked"
            bad = _outside(action.type.bounds)
            with pytest.raises(SystemExit) as exit_:
                parser.parse_args([*needed, f"{action.option_strings[0]}={bad}"])
            err = capsys.readouterr().err
            assert exit_.value.code == 2, flag
            assert action.option_strings[0] in err and action.type.range in err, (flag, err)
            checked.append(flag)
    assert len(checked) > 60  # every command's numbers, not a parser that lost its flags
    assert {
        "fnac train --batch-size",
        "fnac experiment --classes",
        "fnac localize --opacity",
        "fnac run --seconds",
        "fnac soak --every",
        "fnac demo --seconds",
    } <= {*checked}


@pytest.mark.parametrize(
    "command, flag, value, message",
    [
        ("train", "--batch-size", "1", "[2, inf)"),
        ("experiment", "--dropout-img", "1.5", "[0, 1)"),
        ("eval", "--alpha", "2", "[0, 1]"),
        ("synth", "--classes", "65", "[2, 64]"),
        ("tour", "--epochs", "zero", "'zero' is not a whole number in [1, inf)"),
    ],
)
def test_a_bad_number_is_refused_with_its_range(capsys, command, flag, value, message):
    parser = every_command()[command]
    needed = [a.option_strings[0] for a in parser._actions if a.required and a.option_strings]
    positional = [a for a in parser._actions if a.required and not a.option_strings]
    argv = [a for f in needed for a in (f, "x")] + ["x"] * len(positional)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args([*argv, flag, value])
    assert exit_.value.code == 2
    assert f"argument {flag}: " in (err := capsys.readouterr().err) and message in err


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
        "--avsbench",
        1,
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
    assert [r["testset"] for r in reports] == [
        "vggss", "flickr", "duet", "avsbench-s4", "avsbench-ms3"
    ]  # fmt: skip
    assert "multi-source cIoU@0.3" in result.stdout and "silent pairs: AP" in result.stdout
    assert "mIoU" in result.stdout and "F-score" in result.stdout
    for avs in reports[3:]:
        assert avs["samples"] == 5 and avs["split"] == "test"
        assert {"miou", "fscore", "box/ciou@0.5"} <= set(avs["results"]["bicubic"]["av"])
    assert report.with_name("report-3.png").is_file()  # the success curve of the MS3 set
    score = reports[0]["silent"]["score_at_max_f1"]
    info = json.loads(fnac("info", calibrated).stdout)
    assert info["calibration"]["score_mid"] == pytest.approx(score, abs=1e-4)  # 4 decimals
    assert "silent pairs" in info["calibration"]["source"]
    assert f"score_mid) is {score:.3f}" in result.stdout
    live = reports[0]["live"]  # the live app's peak and box on the boxes, per box level
    assert set(live["by_box_level"]) >= {"0.30", "0.50", "0.90"}
    assert info["calibration"]["box_level"] == live["best_box_level"]
    assert "live peak and box: pointing" in result.stdout
    assert f"the box level {live['best_box_level']:.2f}" in result.stdout
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
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    assert size <= 150e6, f"the tour leaves {size / 1e6:.0f} MB"
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### `fnac tour`") : readme.index("### `fnac localize`")]
    for entry in out.iterdir():  # every output is documented where the README shows the tour
        assert f"`{entry.name}" in section, entry.name


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


def test_run_hands_the_engine_folder_to_the_inference_worker(files):
    """--backend tensorrt --engine DIR travels from the command through the worker's spec to the
    engine, whose refusal (no engine there) comes back as one line naming the build command."""
    engine = files / "no-engine-here"
    result = fnac(
        "run",
        "--source",
        "synthetic",
        "--checkpoint",
        files / "model.pth",
        "--seconds",
        2,
        "--backend",
        "tensorrt",
        "--engine",
        engine,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"no engine in {engine}: build it with fnac export --checkpoint" in result.stderr


def test_every_live_command_takes_the_engine_folder(files, monkeypatch):
    """demo, soak and bench put --engine into what they run; live and the window too."""
    import realtime.bench
    import realtime.demo
    import realtime.soak
    from fnac.cli import main

    seen = {}

    class Reached(Exception):
        """What the stand-ins raise once they have seen their arguments."""

    def stand_in(name, pick):
        def record(*args):
            seen[name] = pick(*args)
            raise Reached

        return record

    monkeypatch.setattr(realtime.demo, "headless_demo", stand_in("demo", lambda o, s, c: c))
    monkeypatch.setattr(realtime.soak, "soak", stand_in("soak", lambda c, *rest: c))
    monkeypatch.setattr(realtime.bench, "bench", stand_in("bench", lambda *a: a[-1]))
    engine = str(files / "engines")
    common = ["--backend", "tensorrt", "--engine", engine]
    for argv in (
        ["demo", "--headless", "--seconds", "1", *common],
        ["soak", "--seconds", "1", *common],
        ["bench", "--backends", "tensorrt", "--engine", engine],
    ):
        with pytest.raises(Reached):
            main(argv)
    assert seen["demo"].engine_dir == engine and seen["demo"].backend == "tensorrt"
    assert seen["soak"].engine_dir == engine and seen["bench"] == engine

    from gui.live import choose_settings
    from gui.window import LiveWindow

    settings = choose_settings(
        "synthetic", None, str(files / "model.pth"), False, engine_dir=engine
    )
    made = []

    class Recorded:
        def __init__(self, config):
            made.append(config)

        def start(self):
            return self

    import gui.window

    monkeypatch.setattr(gui.window, "Feed", Recorded)
    LiveWindow.start_feed(type("W", (), {"feed": None, "settings": settings, "video": _Label()})())
    assert made[0].engine_dir == engine


class _Label:
    def setText(self, text):  # noqa: N802 (Qt's name)
        self.text = text


def test_every_help_is_plain_text_with_its_defaults_and_takes_verbose_after_the_command():
    from fnac.cli import main

    for name, parser in every_command().items():
        text = parser.format_help()
        assert "``" not in text and "§" not in text, name
        for action in parser._actions:
            has_default = not (action.default is None or action.default is False)
            has_default = has_default and action.default is not argparse.SUPPRESS
            if action.option_strings and has_default and action.help != argparse.SUPPRESS:
                flag = action.option_strings[0]
                shown = parser._get_formatter()._get_help_string(action)
                assert "default" in shown, f"fnac {name} {flag} hides its default"
    assert main(["info", "-v", "demo"]) == 0  # -v after the command, as before it


def test_every_flag_a_message_or_a_help_names_exists():
    """A flag named in any string of the code (errors that name the fix, help, hints) is a flag
    of fnac or of one of its commands: a renamed flag leaves no message pointing nowhere."""
    import ast
    import re

    known = {o for a in build_parser_actions() for o in a.option_strings}
    unknown = {}
    for package in ("fnac", "realtime", "gui", "train"):
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]", node.value):
                        if flag not in known:
                            unknown.setdefault(flag, path.relative_to(REPO).as_posix())
    assert not unknown, unknown


def build_parser_actions() -> list[argparse.Action]:
    from fnac.cli import build_parser

    parser = build_parser()
    actions = list(parser._actions)
    for command in every_command().values():
        actions += command._actions
    return actions
