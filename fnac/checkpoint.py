"""Checkpoints: the authors' published format and the project's self-describing one.

Published files are ``torch.save({'model': state_dict, 'optimizer': ..., 'epoch': ...,
'best_cIoU': ..., 'best_Auc': ...})`` (or a bare state dict), keys possibly prefixed ``module.``.
They carry no sample rate, so the caller supplies it.

The project's format adds ``format: 'fnac'``, ``format_version``, the model / audio / image configs,
``trained_on`` and the library versions, plus optional training state under ``train_state``.

Files are always read with ``torch.load(weights_only=True)``: pickled code is never executed.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import platform
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fnac.config import AudioConfig, ImageConfig, ModelConfig, config_from_dict, config_to_dict
from fnac.model import FNAC

log = logging.getLogger(__name__)

FORMAT = "fnac"
FORMAT_VERSION = 1
PUBLISHED_DEFAULT_RATE = 16000
_PREFIXES = ("module.",)
_REQUIRED = ("img_proj.weight", "img_proj.bias", "aud_proj.weight", "aud_proj.bias")

# numpy scalars appear in published files (best_cIoU / best_Auc as np.float64); these globals only
# rebuild plain numbers and dtypes, so they are allowed on top of torch's tensor-only allow-list.
_NUMPY_SAFE: list[Any] = [np.dtype]
for _name in ("numpy._core.multiarray", "numpy.core.multiarray"):
    try:
        _NUMPY_SAFE.append(__import__(_name, fromlist=["scalar"]).scalar)
    except (ImportError, AttributeError):
        pass
_NUMPY_SAFE += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]


class CheckpointError(ValueError):
    """A file that cannot be used as an FNAC checkpoint; the message says why and what to do."""


@dataclass
class CheckpointInfo:
    """What a checkpoint file says about its model (``load_checkpoint`` sets ``model.info``)."""

    path: Path
    audio: AudioConfig
    image: ImageConfig
    format: str  # 'fnac' or 'published'
    trained_on: str | None = None
    epoch: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    # what the live app's sounding confidence should use for this model ({"score_mid": cosine,
    # "source": where it was measured}); empty: the defaults
    calibration: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def _read(path: Path, mmap: bool = False) -> Any:
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is an empty file; re-download or re-train it")
    try:
        with torch.serialization.safe_globals(_NUMPY_SAFE):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        reason = next(
            (
                line.split("WeightsUnpickler error:", 1)[1].strip()
                for line in text.splitlines()
                if "WeightsUnpickler error:" in line
            ),
            "",
        )
        if "GLOBAL" in text:
            glob = text.split("GLOBAL", 1)[1].split()[0] if "GLOBAL" in text else "unknown"
            raise CheckpointError(
                f"{path} holds Python objects other than tensors and numbers ({glob}), and fnac "
                "never runs pickled code. If you trust the file, re-save its state dict: "
                "torch.save(obj['model'], 'clean.pth')"
            ) from exc
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint ({reason or 'cannot be unpickled'})"
        ) from exc
    except (
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        OSError,
        ValueError,
        KeyError,
        AttributeError,
        TypeError,
        IndexError,
    ) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} is not a readable PyTorch checkpoint: it may be truncated or not a "
            f"checkpoint at all ({first})"
        ) from exc


def _strip_prefixes(state: dict[str, Any]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value
    return out


def _summarize(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(keys[:limit])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > limit else ''})"


def _state_dict_of(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        state = obj["model"]
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
    else:
        raise CheckpointError(
            f"{path} is a PyTorch file but not an FNAC checkpoint: expected a state dict or a dict "
            "with a 'model' state dict"
        )
    state = _strip_prefixes(state)
    absent = [k for k in _REQUIRED if k not in state]
    if absent:
        foreign = sorted(k for k in state if not k.startswith(("imgnet.", "audnet.")))
        raise CheckpointError(
            f"{path} is not an FNAC checkpoint (another model's?): it lacks {_summarize(absent)}"
            + (f"; it has {_summarize(foreign)}" if foreign else "")
        )
    return state


def _model_from(config: ModelConfig, state: dict[str, torch.Tensor], path: Path) -> FNAC:
    """An FNAC model holding ``state``. It is built without its random initialisation (on the
    meta device, then given the file's tensors): the two ResNet-18s' initialisation is 0.5 s of
    a live start-up on 2 cores, all of it overwritten. Should anything be left unset (a tensor
    the file does not hold), it is built the plain way instead."""
    with torch.device("meta"):
        model = FNAC(config)
    _load_state(model, state, path, assign=True)
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.is_meta for t in tensors):
        model = FNAC(config)
        _load_state(model, state, path)
    return model


def _load_state(
    model: FNAC, state: dict[str, torch.Tensor], path: Path, assign: bool = False
) -> None:
    expected = model.state_dict()
    missing = sorted(k for k in expected if k not in state)
    unexpected = sorted(k for k in state if k not in expected)
    mismatched = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    )
    problems = []
    if missing:
        problems.append(f"missing keys: {_summarize(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_summarize(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches (file vs model): {_summarize(mismatched)}")
    if problems:
        raise CheckpointError(f"{path} does not fit the FNAC model: " + "; ".join(problems))
    values = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(values, assign=assign)


def _configs(
    obj: Any, state: dict[str, torch.Tensor], path: Path, sample_rate: int | None, tau: float | None
) -> tuple[ModelConfig, CheckpointInfo]:
    """The model config and the info a read checkpoint records, with the overrides applied."""
    own = isinstance(obj, dict) and obj.get("format") == FORMAT
    if own:
        if int(obj.get("format_version", 0)) > FORMAT_VERSION:
            raise CheckpointError(
                f"{path} has format version {obj['format_version']}, newer than this fnac "
                f"understands ({FORMAT_VERSION}); upgrade fnac"
            )
        configs = obj.get("config", {})
        model_cfg = config_from_dict(ModelConfig, configs.get("model"))
        audio_cfg = config_from_dict(AudioConfig, configs.get("audio"))
        image_cfg = config_from_dict(ImageConfig, configs.get("image"))
        if sample_rate is not None and sample_rate != audio_cfg.sample_rate:
            log.warning(
                "%s was trained at %d Hz; using %d Hz as asked",
                path,
                audio_cfg.sample_rate,
                sample_rate,
            )
    else:
        model_cfg = ModelConfig(dim=int(state["img_proj.weight"].shape[0]))
        audio_cfg = AudioConfig()
        image_cfg = ImageConfig()
        if sample_rate is None:
            log.warning(
                "%s is a published-format checkpoint, which records no sample rate: assuming "
                "%d Hz (VGGSound). Pass sample_rate=22050 (--sample-rate) for Flickr-SoundNet "
                "models.",
                path,
                PUBLISHED_DEFAULT_RATE,
            )
    if sample_rate is not None:
        audio_cfg = config_from_dict(
            AudioConfig, {**config_to_dict(audio_cfg), "sample_rate": int(sample_rate)}
        )
    if tau is not None:
        model_cfg = config_from_dict(ModelConfig, {**config_to_dict(model_cfg), "tau": float(tau)})
    metrics = {}
    if isinstance(obj, dict):
        for key in ("best_cIoU", "best_Auc"):
            if key in obj:
                metrics[key] = float(obj[key])
        metrics.update({k: float(v) for k, v in (obj.get("metrics") or {}).items()})
    epoch = obj.get("epoch") if isinstance(obj, dict) else None
    info = CheckpointInfo(
        path=path,
        audio=audio_cfg,
        image=image_cfg,
        format=FORMAT if own else "published",
        trained_on=obj.get("trained_on") if own else None,
        epoch=int(epoch) if epoch is not None else None,
        metrics=metrics,
        versions=dict(obj.get("versions") or {}) if own else {},
        calibration=_calibration_of(obj.get("calibration")) if own else {},
        raw=obj if isinstance(obj, dict) else {},
    )
    return model_cfg, info


def read_checkpoint_info(path: str | os.PathLike, sample_rate: int | None = None) -> CheckpointInfo:
    """What a checkpoint records, without building the model: the file is memory-mapped, so its
    weights are not read (for commands that check a checkpoint and leave loading it to a worker).
    Raises ``CheckpointError`` as ``load_checkpoint`` does for a file that is no checkpoint."""
    path = Path(path)
    try:
        obj = _read(path, mmap=True)
    except CheckpointError:  # a file in torch's legacy (not zip) format cannot be mapped
        obj = _read(path)
    _, info = _configs(obj, _state_dict_of(obj, path), path, sample_rate, None)
    info.raw = {}  # the mapped tensors are not kept
    return info


def load_checkpoint(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    tau: float | None = None,
    map_location: str | torch.device = "cpu",
) -> FNAC:
    """Read a published or project checkpoint into an FNAC model in eval mode.

    The returned model's ``info`` (a ``CheckpointInfo``) holds the audio and image configs the
    model expects, the file's format, epoch, metrics, versions and its raw contents.

    ``sample_rate`` overrides the rate the model expects; published files carry none and default
    to 16000 Hz with a warning. ``tau`` overrides the temperature (published files carry none;
    0.03 by default).
    """
    path = Path(path)
    obj = _read(path)
    state = _state_dict_of(obj, path)
    model_cfg, info = _configs(obj, state, path, sample_rate, tau)
    model = _model_from(model_cfg, state, path)
    model.eval().to(map_location)
    model.info = info
    return model


def _calibration_of(value: Any) -> dict[str, Any]:
    """A stored calibration when it is usable (a finite cosine score, and a box level in (0, 1)
    when there is one), else none: a damaged entry must not stop the model from loading, the
    defaults then apply."""
    if isinstance(value, dict):
        mid = value.get("score_mid")
        if isinstance(mid, int | float) and math.isfinite(mid) and -1.0 <= mid <= 1.0:
            found = {"score_mid": float(mid), "source": str(value.get("source", ""))}
            level = value.get("box_level")
            if isinstance(level, int | float) and 0.0 < level < 1.0:
                found["box_level"] = float(level)
            return found
    if value is not None:
        log.warning("ignoring a calibration entry that is not a cosine score: %r", value)
    return {}


def save_calibrated(
    path: str | os.PathLike,
    model: FNAC,
    score_mid: float,
    source: str,
    box_level: float | None = None,
) -> Path:
    """Write ``model`` (as loaded, with its configs, metrics and any training state) to ``path``
    with the live app's sounding calibration (and box level, when measured); float16 when the
    file it came from was."""
    calibration = {"score_mid": float(score_mid), "source": source}
    if box_level is not None:
        calibration["box_level"] = float(box_level)
    return save_again(path, model, calibration=calibration)


def save_again(
    path: str | os.PathLike,
    model: FNAC,
    *,
    calibration: dict[str, Any] | None = None,
    half: bool | None = None,
    keep_train_state: bool = True,
) -> Path:
    """Write a loaded ``model`` to ``path`` as its file recorded it (configs, what it was
    trained on, epoch, metrics, training state, calibration, precision), with ``calibration``,
    ``half`` (None: as read) and, with ``keep_train_state`` False, without the training state
    (the weights alone, for a model that will not be trained further)."""
    info = model.info
    if half is None:
        stored = info.raw.get("model") if isinstance(info.raw.get("model"), dict) else info.raw
        tensors = [v for v in stored.values() if isinstance(v, torch.Tensor)]
        half = any(v.dtype == torch.float16 for v in tensors)
    return save_checkpoint(
        path,
        model,
        info.audio,
        info.image,
        trained_on=info.trained_on,
        epoch=info.epoch,
        metrics=info.metrics,
        train_state=info.raw.get("train_state") if keep_train_state else None,
        half=half,
        calibration=(info.calibration or None) if calibration is None else calibration,
    )


def library_versions() -> dict[str, str]:
    import torchaudio
    import torchvision

    from fnac import __version__

    return {
        "fnac": __version__,
        "torch": str(torch.__version__),
        "torchaudio": str(torchaudio.__version__),
        "torchvision": str(torchvision.__version__),
        "python": platform.python_version(),
    }


def save_checkpoint(
    path: str | os.PathLike,
    model: FNAC,
    audio: AudioConfig,
    image: ImageConfig | None = None,
    trained_on: str | None = None,
    epoch: int | None = None,
    metrics: dict[str, float] | None = None,
    train_state: dict[str, Any] | None = None,
    half: bool = False,
    calibration: dict[str, Any] | None = None,
) -> Path:
    """Write the project's self-describing format atomically (temp file + rename).

    ``half`` stores floating weights as float16 (loading casts them back to float32).
    ``train_state`` holds what ``--resume`` needs (optimizer, scaler, RNG states).
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"{path} is a folder: give a file name to write, such as {path}/model.pth"
        )
    state = {
        k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu()
        for k, v in model.state_dict().items()
    }
    obj: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": state,
        "config": {
            "model": config_to_dict(model.config),
            "audio": config_to_dict(audio),
            "image": config_to_dict(image or ImageConfig()),
        },
        "trained_on": trained_on,
        "epoch": epoch,
        "metrics": dict(metrics or {}),
        "versions": library_versions(),
    }
    if train_state is not None:
        obj["train_state"] = train_state
    if calibration:
        obj["calibration"] = dict(calibration)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
