"""The checkpoint shipped with the package: FNAC trained on the synthetic world.

It is what ``fnac live`` and ``fnac demo`` use when no checkpoint is given. The recipe is
``fnac train --preset demo`` on ``fnac synth`` with the settings in the README ("The embedded
demo checkpoint"), saved in float16 (``fnac export-half`` halves any checkpoint the same way).
This module imports nothing heavy: the GUI reads the path without importing torch.
"""

from __future__ import annotations

from pathlib import Path

DEMO_CHECKPOINT = Path(__file__).with_name("demo.pth")
