"""How the thread pools of our processes share a few cores.

torch's OpenMP threads spin for a while after each parallel region, waiting for the next one,
and numpy's OpenBLAS keeps a pool of its own. When a capture worker, an inference worker and the
main process share two cores, threads that spin take the cores from those that have work: on this
machine ``fnac bench``'s int8 capacity went from 13.5 to 21-27 frames per second (live: 5 to 15-22)
once the OpenMP threads sleep when idle and numpy's small products stay on one thread.

Both settings are read when the libraries load. ``share_cores`` therefore runs first in the
``fnac`` command, before numpy or torch are imported, and in a supervisor before it spawns its
workers (a spawned process inherits the environment). What the user set is kept.
"""

from __future__ import annotations

import os

SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}


def share_cores() -> None:
    """Set the thread-pool settings above in this process's environment, unless already set."""
    for name, value in SETTINGS.items():
        os.environ.setdefault(name, value)
