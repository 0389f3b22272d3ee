"""The Torch-TensorRT backend: FP16 engines built once by ``fnac export``, checked when loaded.

Written against Torch-TensorRT 2.11 (for torch 2.11), the ``dynamo`` front end with static
shapes: each encoder is compiled with ``torch_tensorrt.compile(module, ir="dynamo",
arg_inputs=[example])`` and saved as an ExportedProgram with ``torch_tensorrt.save``; loading is
``torch.export.load(path).module()``. Since 2.10 Torch-TensorRT types layers explicitly, so FP16
is asked for by converting the encoder and its example input to half precision (not by
``enabled_precisions``); after building, the engine's output dtype is checked to be float16.

Beside the engines, ``engine.json`` records the input shapes, the precision, the checkpoint's
SHA-256, the torch / Torch-TensorRT / TensorRT versions and the GPU. An engine whose sidecar does
not match the checkpoint, the shapes or this machine is refused with the command that rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from fnac.model import FNAC
from realtime.engines import AudioEncoder, Engine, ImageEncoder

log = logging.getLogger(__name__)
SIDECAR = "engine.json"
FORMAT = "fnac-tensorrt"
FILES = {"image": "image_encoder.ep", "audio": "audio_encoder.ep"}


class StaleEngine(ValueError):
    """The engine on disk was not built for this checkpoint, shape or machine."""


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _require():
    try:
        import torch_tensorrt
    except ImportError as exc:
        raise ValueError(
            "the tensorrt backend needs Torch-TensorRT: pip install 'fnac[tensorrt]' on a "
            "machine with an NVIDIA GPU, or choose --backend cpu / compile / eager"
        ) from exc
    if not torch.cuda.is_available():
        raise ValueError("the tensorrt backend needs an NVIDIA GPU; none is visible")
    return torch_tensorrt


def environment() -> dict[str, str]:
    """What an engine depends on besides its inputs: library versions and the GPU."""
    env = {"torch": str(torch.__version__)}
    try:
        import tensorrt
        import torch_tensorrt

        env["torch_tensorrt"] = str(torch_tensorrt.__version__)
        env["tensorrt"] = str(tensorrt.__version__)
    except ImportError:
        pass
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def expected_sidecar(checkpoint: Path, image_size: int, spec_frames: int) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": 1,
        "checkpoint_sha256": sha256(checkpoint),
        "image_shape": [1, 3, image_size, image_size],
        "spec_shape": [1, 1, 257, spec_frames],
        "precision": "fp16",
        **environment(),
    }


def rebuild_command(checkpoint: Path, engine_dir: Path, sample_rate: int | None = None) -> str:
    """The command that builds the engines of ``checkpoint`` into ``engine_dir``."""
    rate = f" --sample-rate {sample_rate}" if sample_rate else ""
    return f"fnac export --checkpoint {checkpoint} --out {engine_dir}{rate}"


def check_sidecar(
    engine_dir: Path,
    checkpoint: Path,
    image_size: int,
    spec_frames: int,
    sample_rate: int | None = None,
) -> dict[str, Any]:
    """The sidecar of ``engine_dir`` if it matches; StaleEngine naming the mismatch and the
    command that rebuilds it otherwise. Needs no Torch-TensorRT, so it is said first."""
    rebuild = "rebuild it: " + rebuild_command(checkpoint, engine_dir, sample_rate)
    path = engine_dir / SIDECAR
    if not engine_dir.is_dir():
        raise StaleEngine(
            f"no engine in {engine_dir}: build it with "
            + rebuild_command(checkpoint, engine_dir, sample_rate)
            + " on the GPU machine, or pass --engine DIR"
        )
    if not path.is_file():
        raise StaleEngine(
            f"{engine_dir} holds no {SIDECAR}: not an engine of fnac export; " + rebuild
        )
    try:
        found = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StaleEngine(f"{path} is unreadable ({exc}); {rebuild}") from exc
    want = expected_sidecar(checkpoint, image_size, spec_frames)
    stale = [
        f"{k}: built for {found.get(k)!r}, now {v!r}" for k, v in want.items() if found.get(k) != v
    ]
    if stale:
        raise StaleEngine(f"the engine in {engine_dir} is stale ({'; '.join(stale)}); {rebuild}")
    return found


def export(
    model: FNAC, checkpoint: Path, out: Path, image_size: int = 224, spec_frames: int = 200
) -> dict[str, Any]:
    """Build both FP16 engines, save them with their sidecar; returns the sidecar."""
    torch_tensorrt = _require()
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval().cuda().half()
    examples = {
        "image": torch.randn(1, 3, image_size, image_size, device="cuda").half(),
        "audio": torch.randn(1, 1, 257, spec_frames, device="cuda").half(),
    }
    modules = {"image": ImageEncoder(model), "audio": AudioEncoder(model)}
    built: dict[str, Any] = {}
    for key, module in modules.items():
        start = time.perf_counter()
        compiled = torch_tensorrt.compile(module, ir="dynamo", arg_inputs=[examples[key]])
        with torch.no_grad():
            got = compiled(examples[key])
            want = module(examples[key])
        if got.dtype != torch.float16:
            raise RuntimeError(
                f"the {key} engine returns {got.dtype}, not float16: FP16 was not applied"
            )
        torch_tensorrt.save(compiled, str(out / FILES[key]), arg_inputs=[examples[key]])
        built[key] = {
            "seconds": round(time.perf_counter() - start, 1),
            "max_abs_diff_vs_torch_fp16": float((got.float() - want.float()).abs().max()),
        }
    sidecar = {
        **expected_sidecar(checkpoint, image_size, spec_frames),
        "built": built,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    (out / SIDECAR).write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


class TensorRTEngine(Engine):
    name = "tensorrt"

    def __init__(
        self,
        model: FNAC,
        engine_dir: Path,
        checkpoint: Path,
        image_size: int = 224,
        spec_frames: int = 200,
    ) -> None:
        rate = model.info.audio.sample_rate if getattr(model, "info", None) else None
        check_sidecar(engine_dir, checkpoint, image_size, spec_frames, rate)
        _require()
        super().__init__(model, "cuda")
        self.image_fn = torch.export.load(str(engine_dir / FILES["image"])).module()
        self.audio_fn = torch.export.load(str(engine_dir / FILES["audio"])).module()

    def _image(self, frames: torch.Tensor) -> torch.Tensor:
        return self.image_fn(frames.half())

    def _audio(self, spec: torch.Tensor) -> torch.Tensor:
        return self.audio_fn(spec.half())

    def describe(self) -> str:
        return "tensorrt (Torch-TensorRT, FP16, static shapes)"
