"""The checkpoint shipped with the package: FNAC trained on the synthetic world.

It is what ``fnac run``, ``live``, ``demo`` and ``soak`` use when no checkpoint is given, and
what the name ``demo`` stands for wherever a checkpoint is asked for (``fnac info demo``), from
any folder. The recipe is
``fnac train --preset demo`` on ``fnac synth`` with the settings in the README ("The embedded
demo checkpoint"); the preset's ``compact_best`` saves ``best.pth`` as float16 weights.
This module imports nothing heavy: the GUI reads the path without importing torch.
"""

from __future__ import annotations

from pathlib import Path

DEMO_CHECKPOINT = Path(__file__).with_name("demo.pth")

DEMO_NAME = "demo"


def checkpoint_path(given: str | None) -> str:
    """The checkpoint a command was given: a path, ``demo`` (the shipped one, unless a file of
    that name is in the folder), or None for the shipped one. A path that is no readable file
    is one ValueError that says so (checked without torch: the file is read later)."""
    import os

    if given is None or (given == DEMO_NAME and not Path(given).exists()):
        path = DEMO_CHECKPOINT
        fix = "reinstall fnac, or pass --checkpoint with a .pth file"
    else:
        path = Path(given)
        fix = "check the path (--checkpoint names a .pth file, or demo for the shipped one)"
    if not path.is_file():
        raise ValueError(f"checkpoint {path} does not exist: {fix}")
    if not os.access(path, os.R_OK):
        raise ValueError(f"checkpoint {path} cannot be read: check its permissions")
    return str(path)
