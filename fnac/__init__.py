"""FNAC: audio-visual sound source localization (False Negative Aware Contrastive learning).

The public API is imported lazily, so ``import fnac.overlay`` (numpy only) stays light for the GUI.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "FNAC": "fnac.model",
    "ModelConfig": "fnac.config",
    "AudioConfig": "fnac.config",
    "ImageConfig": "fnac.config",
    "load_checkpoint": "fnac.checkpoint",
    "save_checkpoint": "fnac.checkpoint",
    "CheckpointError": "fnac.checkpoint",
    "CheckpointInfo": "fnac.checkpoint",
    "loss_terms": "fnac.losses",
    "log_spectrogram": "fnac.audio",
    "heatmap": "fnac.heatmap",
    "localize_files": "fnac.predict",
}

__all__ = [
    "FNAC",
    "AudioConfig",
    "CheckpointError",
    "CheckpointInfo",
    "ImageConfig",
    "ModelConfig",
    "__version__",
    "heatmap",
    "load_checkpoint",
    "localize_files",
    "log_spectrogram",
    "loss_terms",
    "save_checkpoint",
]

if TYPE_CHECKING:  # pragma: no cover
    from fnac.audio import log_spectrogram
    from fnac.checkpoint import CheckpointError, CheckpointInfo, load_checkpoint, save_checkpoint
    from fnac.config import AudioConfig, ImageConfig, ModelConfig
    from fnac.heatmap import heatmap
    from fnac.losses import loss_terms
    from fnac.model import FNAC
    from fnac.predict import localize_files


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fnac' has no attribute {name!r}")
