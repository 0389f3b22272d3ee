"""The names of the inference backends (``realtime.registry`` makes them), importable without
torch: the command line's parsers and the window's picker list them before any model is loaded.
Also where the ``tensorrt`` backend's engines are, by default, for a checkpoint."""

from pathlib import Path

BACKENDS = ("cpu", "int8", "eager", "compile", "tensorrt")  # in the picker's order
DEFAULT_BACKEND = "cpu"


def default_engine_dir(checkpoint: str | Path) -> Path:
    """The folder ``fnac export`` writes when given no ``--out``, and where ``--backend tensorrt``
    looks when given no ``--engine``: beside the checkpoint, ``best.pth`` -> ``best-tensorrt/``."""
    path = Path(checkpoint)
    return path.with_name(f"{path.stem}-tensorrt")
