"""The checkpoint shipped with the package: FNAC trained on the synthetic world.

It is what ``fnac live`` and ``fnac demo`` use when no checkpoint is given. The recipe is
``fnac train --preset demo`` on ``fnac synth`` with the settings in the README ("The embedded
demo checkpoint"); the preset's ``compact_best`` saves ``best.pth`` as float16 weights.
This module imports nothing heavy: the GUI reads the path without importing torch.
"""

from __future__ import annotations

from pathlib import Path

DEMO_CHECKPOINT = Path(__file__).with_name("demo.pth")
