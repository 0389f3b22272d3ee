"""Every command the README shows, run as a reader would run it.

``readme_commands`` reads the README's ``bash`` blocks. Each command there has its line in
``PLAN``: either the flags that make it small enough for a test (appended, so they win over the
README's: fewer scenes, fewer seconds, smaller frames) or why it cannot run here (a camera, a GPU,
a second host, a real dataset download). The default suite checks that the README and the plan
name the same commands; the slow suite runs them all, in the README's order, in one folder that
holds what the README calls by name (``best.pth``, ``frame.jpg``, ``clip.wav``, ``clip.mp4``, a
VGG-SS and a Flickr-SoundNet test set in their layouts, ...), each one to exit status 0.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, mux_pictures, mux_sound, write_png, write_wav

# Small sizes, appended to the README's own flags.
WORLD = "--train 16 --test 8 --duet 2 --silent 2 --avsbench 1 --streams 1 --stream-seconds 3"
WORLD += " --image-size 64"
WORLD += " --stream-size 160x120"
TRAIN = "--epochs 1 --batch-size 8 --image-size 64 --dim 16 --workers 0 --no-tensorboard"
EXPERIMENT = (
    "--classes 2 --seeds 1 --train 8 --test 4 --epochs 1 --warmup 0 --batch-size 4 "
    "--image-size 64 --dim 16 --workers 0 --pretrain-images 8 --pretrain-steps 2"
)
PRETRAIN = "--images 16 --steps 2"
LIVE = "--seconds 3"

CAMERA = "needs a camera (and a microphone); the same path runs on a file in this plan"
GPU = "needs an NVIDIA GPU with Torch-TensorRT (tests/test_tensorrt.py covers the backend)"

# README command -> flags appended to run it here, or ("skip", why)
PLAN: dict[str, str | tuple[str, str]] = {
    "make test": ("skip", "this suite is what it runs"),
    "make demo": ("skip", "runs fnac demo, which this plan runs"),
    "fnac live": LIVE,
    "fnac live --source 1 --mic mic:USB --checkpoint runs/fnac/best.pth --backend cpu": (
        "skip",
        CAMERA,
    ),
    "fnac live --source clip.mp4": LIVE,
    "fnac live --source synthetic --seconds 30 --screenshot shot.png": LIVE,
    "fnac live --standby": LIVE,
    "fnac demo": LIVE,
    "fnac demo --seconds 25 --screenshot shot.png": LIVE,
    "fnac demo --headless --seconds 20 --out demo-output": LIVE,
    "fnac tour": ("skip", "the same command as the next, at its default size (minutes)"),
    "fnac tour --out tour-small --train 64 --test 16 --epochs 1": "--train 8 --test 4",
    "fnac localize --checkpoint best.pth --image frame.jpg --audio clip.wav --out overlay.png "
    "--json found.json": "",
    "fnac localize --checkpoint best.pth --image clip.mp4 --at 2.5 --out frame-overlay.png": "",
    "fnac localize --image frame.jpg --audio clip.ogg": "",
    "fnac info best.pth": "",
    "fnac info demo": "",
    "fnac synth world/ --classes 8 --train 1000 --test 200 --duet 100 --silent 100 --avsbench 40 "
    "--streams 2 --seed 0": WORLD,
    "fnac synth world-22k/ --sample-rate 22050 --image-size 160 --stream-size 320x240 "
    "--stream-fps 25": WORLD,
    "fnac pretrain-image world/ --out world/objects-resnet18.pth": PRETRAIN,
    "fnac train --data world/train --test-data world/test --imagenet-weights "
    "world/objects-resnet18.pth --out runs/objects": TRAIN,
    "fnac train --data world/train --test-data world/test --out runs/fnac": TRAIN,
    "fnac train --data VGGSound/ --ids vggss_144k.txt --test-data VGGSS/ --test-annotations "
    "metadata/vggss.json --test-ids metadata/vggss_test.csv --out runs/vgg144k": TRAIN,
    "fnac train --preset cpu-small --data world/train --test-data world/test --loss contrastive": (
        TRAIN + " --out runs/cpu-small"
    ),
    "fnac train --preset demo --data demo-world/train --test-data demo-world/test "
    "--imagenet-weights demo-world/objects-resnet18.pth --out runs/demo": TRAIN,
    "fnac train --config my.json --data world/train --resume --out runs/fnac": TRAIN.replace(
        "--epochs 1", "--epochs 2"
    ),
    "torchrun --nproc-per-node 8 -m fnac.cli train --data ... --batch-size 256": (
        "skip",
        "eight processes of DDP: tests/test_training.py runs two",
    ),
    "fnac eval --checkpoint runs/fnac/best.pth --data world/ --json eval.json --overlays "
    "overlays/": "",
    "fnac eval --checkpoint best.pth --data VGGSS/ --annotations metadata/vggss.json --ids "
    "metadata/vggss_test.csv --pairs metadata/vggss_test_plus_silent.csv --json vggss.json": "",
    "fnac eval --checkpoint best.pth --sample-rate 22050 --data FlickrTest/ --ids "
    "metadata/flickr_test.csv --json flickr.json": "",
    "fnac eval --checkpoint runs/fnac/best.pth --data world/ --calibrate runs/fnac/live.pth": "",
    "fnac eval --checkpoint best.pth --data AVSBench/ --json avsbench.json": "",
    "fnac eval --checkpoint best.pth --data AVSBench/Single-source --split val --overlays "
    "overlays/": "",
    "fnac eval --checkpoint best.pth --data AVSBench/ --testset avsbench-ms3 --json ms3.json": "",
    "fnac bench-train --data world/train --batch-size 16 --image-size 224 --batches 3": (
        "--batch-size 4 --image-size 64 --batches 1"
    ),
    "fnac experiment --classes 4 8 16 --seeds 3 --train 2000 --test 300 --epochs 10 "
    "--batch-size 64 --image-size 224 --out runs/false-negatives": EXPERIMENT,
    "fnac experiment --classes 2 8 --seeds 3 --train 1000 --test 100 --epochs 3 --warmup 1 "
    "--batch-size 32 --image-size 128 --sample-rate 8000 --dim 128 --dropout-img 0.5 --workers 1 "
    "--pretrain-images 1000 --pretrain-steps 100 --out runs/false-negatives-cpu": EXPERIMENT,
    "pip install '.[tensorrt]'": ("skip", GPU),
    "fnac export --checkpoint runs/fnac/best.pth": ("skip", GPU),
    "fnac run --source 0+mic --checkpoint runs/fnac/best.pth --backend tensorrt": ("skip", GPU),
    "fnac export --checkpoint runs/fnac/best.pth --out engines/fnac": ("skip", GPU),
    "fnac run --source synthetic --seconds 10 --jsonl out.jsonl --out out.mp4": LIVE,
    "fnac run --source 0+mic --checkpoint best.pth --backend cpu": ("skip", CAMERA),
    "fnac run --source rtsp://cam/stream+mic:USB --checkpoint best.pth": (
        "skip",
        "needs a camera's stream on the network",
    ),
    "fnac run --source clip.mp4 --checkpoint best.pth --offline --jsonl clip.jsonl --out "
    "clip-fnac.mp4": "",
    "fnac run --source 0+mic --checkpoint best.pth --standby": ("skip", CAMERA),
    "fnac keys keys/": "",
    "fnac run --listen tcp://0.0.0.0:5555 --keys keys/server.key --checkpoint best.pth --out "
    "out.mp4": (
        "skip",
        "waits for fnac capture on another host: tests/test_transport.py pairs them",
    ),
    "fnac capture --source 0+mic --connect tcp://gpu-box:5555 --keys keys/client.key": (
        "skip",
        CAMERA,
    ),
    "fnac bench --seconds 10 --backends eager,cpu,int8 --json bench.json": "--seconds 2",
    "fnac soak --seconds 600 --every 10 --json soak.json": "--seconds 8 --every 2",
    "fnac soak --seconds 60 --checkpoint best.pth --backend int8 --max-growth-mb 32": (
        "--seconds 8 --every 2"
    ),
    "fnac devices": "",
    "fnac synth demo-world --classes 8 --train 3000 --test 200 --duet 40 --silent 40 --streams 1 "
    "--stream-seconds 20 --image-size 224 --sample-rate 8000 --seed 0 --workers 2": WORLD,
    "fnac pretrain-image demo-world --out demo-world/objects-resnet18.pth --steps 80": PRETRAIN,
    "fnac eval --checkpoint runs/demo/best.pth --data demo-world --json runs/demo/eval.json "
    "--calibrate fnac/weights/demo.pth": "",
}


def readme_commands(text: str) -> list[str]:
    """The commands of the README's ``bash`` blocks, in order: continuation lines joined,
    comments and blank lines left out, spaces collapsed."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line:
                commands.append(re.sub(r"\s+", " ", line))
    return commands


def test_the_plan_names_every_command_of_the_readme():
    commands = readme_commands((REPO / "README.md").read_text())
    assert len(commands) > 40
    assert [c for c in commands if c not in PLAN] == [], "a README command without its plan"
    assert [c for c in PLAN if c not in commands] == [], "a plan for a command the README lost"
    for command, how in PLAN.items():
        if isinstance(how, tuple):
            assert how[0] == "skip" and len(how[1]) > 20, command
    # no optional parts in brackets, no elisions, in what a reader copies to run
    assert [c for c in commands if re.search(r" \[", c)] == []
    assert [c for c in commands if "..." in c and not isinstance(PLAN[c], tuple)] == []


def _workspace(root: Path) -> dict[str, str]:
    """What the README's commands call by name, made here; the environment to run them in."""
    import av

    from fnac.checkpoint import save_checkpoint
    from fnac.config import AudioConfig, ImageConfig
    from fnac.model import FNAC, ModelConfig
    from train.synth import SynthConfig, synthesize

    rng = np.random.default_rng(0)
    save_checkpoint(
        root / "best.pth",
        FNAC(ModelConfig(dim=16)),
        AudioConfig(sample_rate=16000),
        ImageConfig(size=64, train_resize=72),
    )
    write_png(root / "frame.jpg", rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    t = np.arange(16000 * 4) / 16000
    write_wav(root / "clip.wav", 0.4 * np.sin(2 * np.pi * 440 * t), 16000)
    with av.open(str(root / "clip.ogg"), "w") as out:
        wave = 0.4 * np.sin(2 * np.pi * 440 * np.arange(48000 * 4) / 48000)
        track = out.add_stream("libopus", rate=48000)
        track.layout = "mono"
        mux_sound(out, track, wave, fmt="flt", block=960)
    # a user's clip: 5 s of a moving square with a tone, written by FFmpeg (not by fnac synth)
    with av.open(str(root / "clip.mp4"), "w") as out:
        video = out.add_stream("mpeg4", rate=10)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        sound = out.add_stream("aac", rate=16000)
        sound.layout = "mono"
        pictures = []
        for i in range(50):
            picture = np.full((120, 160, 3), 40, np.uint8)
            picture[40:80, 10 + 2 * i : 50 + 2 * i] = (230, 80, 40)
            pictures.append(picture)
        mux_pictures(out, video, pictures)
        mux_sound(out, sound, 0.4 * np.sin(2 * np.pi * 440 * np.arange(16000 * 5) / 16000))
    (root / "my.json").write_text('{"epochs": 2}\n')
    # the published test sets' layouts and metadata files, from a small world of their own
    given = root / "given"
    small = SynthConfig(train=16, test=8, duet=0, silent=4, avsbench=2, streams=0, image_size=64)
    synthesize(given, small)
    shutil.copytree(given / "train", root / "VGGSound")
    shutil.copyfile(given / "train" / "train.txt", root / "vggss_144k.txt")
    shutil.copytree(given / "test", root / "VGGSS")
    shutil.copytree(given / "flickr_test", root / "FlickrTest")
    shutil.copytree(given / "avsbench", root / "AVSBench")  # Single-source/, Multi-sources/
    metadata = root / "metadata"
    metadata.mkdir()
    for source, name in (
        (given / "test" / "test.json", "vggss.json"),
        (given / "test" / "test.csv", "vggss_test.csv"),
        (given / "test" / "test_plus_silent.csv", "vggss_test_plus_silent.csv"),
        (given / "flickr_test" / "test.csv", "flickr_test.csv"),
    ):
        shutil.copyfile(source, metadata / name)
    (root / "fnac" / "weights").mkdir(parents=True)  # the last command calibrates into it
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TORCH_HOME=str(root / "torch-home"))
    env.pop("DISPLAY", None)  # as on a machine without one: fnac demo runs headless
    return env


def _imagenet_stand_in(root: Path, env: dict[str, str]) -> None:
    """After ``fnac pretrain-image``: its file where torch's hub cache keeps ImageNet's, as on a
    machine that has them (``fnac train`` starts from them by default)."""
    cache = Path(env["TORCH_HOME"]) / "hub" / "checkpoints"
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / "world" / "objects-resnet18.pth", cache / "resnet18-f37072fd.pth")


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 50 commands, each a process that imports torch
def test_every_readme_command_runs_as_written(tmp_path):
    env = _workspace(tmp_path)
    ran = []
    for command in readme_commands((REPO / "README.md").read_text()):
        how = PLAN[command]
        if isinstance(how, tuple):
            continue
        argv = shlex.split(command) + shlex.split(how)
        if argv[0] == "fnac":  # the console script, as typed (``python -m`` would import a
            argv[0] = str(Path(sys.executable).parent / "fnac")  # ./fnac folder first)
        result = subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, (command, result.stdout[-1500:], result.stderr[-3000:])
        assert "Traceback" not in result.stderr, command
        ran.append(command)
        if command.startswith("fnac pretrain-image world/"):
            _imagenet_stand_in(tmp_path, env)
    assert len(ran) >= 35
    made = ["overlay.png", "found.json", "eval.json", "vggss.json", "flickr.json", "out.mp4"]
    made += ["avsbench.json", "ms3.json"]
    made += ["runs/fnac/live.pth", "clip-fnac.mp4", "bench.json", "soak.json", "shot.png"]
    made += ["demo-output/summary.json", "fnac/weights/demo.pth", "tour-small/tour.pth"]
    assert [name for name in made if not (tmp_path / name).is_file()] == []
