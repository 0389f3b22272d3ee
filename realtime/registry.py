"""The engine registry: a backend's name -> an engine for a model, for every command and worker.

The names (``realtime.backends``) are torch-free so that parsers and the window can list them; this
module imports the backends' modules, which import ``realtime.engines`` and nothing above them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fnac.config import AudioConfig, ImageConfig
from fnac.model import FNAC
from realtime.backends import BACKENDS, default_engine_dir
from realtime.engines import CompileEngine, CpuEngine, Engine


def make_engine(
    name: str,
    model: FNAC,
    device: str | None = None,
    image_size: int | None = None,
    spec_frames: int | None = None,
    engine_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    bf16: bool = False,
) -> Engine:
    """The backend called ``name`` for ``model``. Shapes and the checkpoint's path default to what
    ``model.info`` records (``load_checkpoint`` sets it). ``tensorrt`` loads the engines that
    ``fnac export`` built from ``engine_dir``, by default the folder ``fnac export`` writes for
    the checkpoint (``default_engine_dir``). ``bf16``: the ``cpu`` backend under bf16 autocast.
    ``auto`` measures the others once on this machine (``realtime.autoselect``) and returns the
    one it chose, with why in its ``choice``; a ``device`` of "cpu" keeps it off the GPU."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    info = getattr(model, "info", None)
    audio = info.audio if info else AudioConfig()
    image_size = image_size or (info.image.size if info else ImageConfig().size)
    if name == "auto":
        from realtime.autoselect import choose

        verdict, engine = choose(
            model,
            audio,
            image_size,
            engine_dir=engine_dir,
            checkpoint=checkpoint,
            cuda=None if device is None else device.startswith("cuda"),
        )
        if engine is None:
            engine = make_engine(
                verdict.backend,
                model,
                verdict.device or device,
                image_size,
                spec_frames,
                engine_dir,
                checkpoint,
                verdict.bf16,
            )
        engine.choice = verdict.reason
        return engine
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if name == "eager":
        return Engine(model, device)
    if name == "cpu":
        return CpuEngine(model, bf16=bf16)
    if name == "compile":
        return CompileEngine(model, device)
    if name == "int8":
        from realtime.quantize import Int8Engine

        return Int8Engine(model, audio, ImageConfig(size=image_size))
    from realtime.tensorrt import TensorRTEngine

    checkpoint = checkpoint or (info.path if info else None)
    if checkpoint is None:
        raise ValueError("the tensorrt backend needs the checkpoint its engines were built from")
    folder = Path(engine_dir) if engine_dir else default_engine_dir(checkpoint)
    return TensorRTEngine(
        model, folder, Path(checkpoint), image_size, spec_frames or audio.n_frames()
    )


def describe(engine: Engine) -> str:
    """The engine on one line, and why ``--backend auto`` chose it when it did."""
    return f"{engine.describe()}; {engine.choice}" if engine.choice else engine.describe()
