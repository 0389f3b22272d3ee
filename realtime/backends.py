"""The names of the inference backends (``realtime.registry`` makes them), importable without
torch: the command line's parsers and the window's picker list them before any model is loaded.
Also where the ``tensorrt`` backend's engines are, by default, for a checkpoint.

``auto`` is not a backend of its own: it measures the others on this machine once and takes the
fastest whose maps agree with float32's (``realtime.autoselect``)."""

from pathlib import Path

BACKENDS = ("auto", "cpu", "int8", "eager", "compile", "tensorrt")  # in the picker's order
CONCRETE = BACKENDS[1:]  # what ``auto`` resolves to, and what ``fnac bench`` times
DEFAULT_BACKEND = "auto"


def default_engine_dir(checkpoint: str | Path) -> Path:
    """The folder ``fnac export`` writes when given no ``--out``, and where ``--backend tensorrt``
    looks when given no ``--engine``: beside the checkpoint, ``best.pth`` -> ``best-tensorrt/``."""
    path = Path(checkpoint)
    return path.with_name(f"{path.stem}-tensorrt")
