"""How the thread pools of our processes share a few cores.

torch's OpenMP threads spin for a while after each parallel region, waiting for the next one,
and numpy's OpenBLAS keeps a pool of its own. When a capture worker, an inference worker and the
main process share two cores, threads that spin take the cores from those that have work: on this
machine ``fnac bench``'s int8 capacity went from 13.5 to 21-27 frames per second (live: 5 to 15-22)
once the OpenMP threads sleep when idle and numpy's small products stay on one thread.

Both settings are read when the libraries load. ``share_cores`` therefore runs first in the
``fnac`` command, before numpy or torch are imported, and in a supervisor before it spawns its
workers (a spawned process inherits the environment). What the user set is kept.

``PASSIVE`` is an assumption, tuned on one processor; spinning threads made the encoders 20-30 %
faster in isolation on another. ``realtime.threadpolicy`` measures both through the live pipeline
on request (``fnac bench --tune-threads``) and the live pipeline starts its workers with the
verdict (``prefer``), unless the user set the variable.
"""

from __future__ import annotations

import os

SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}
_defaulted: dict[str, str] = {}  # what share_cores set here, not the user


def share_cores() -> None:
    """Set the thread-pool settings above in this process's environment, unless already set."""
    for name, value in SETTINGS.items():
        if name not in os.environ:
            os.environ[name] = _defaulted[name] = value


def user_set(name: str) -> bool:
    """Whether the user set ``name`` (it was in the environment before ``share_cores``)."""
    return name in os.environ and os.environ[name] != _defaulted.get(name)


def prefer(name: str, value: str) -> bool:
    """Set ``name`` to ``value`` for the processes started from now on, unless the user set it;
    whether it was set."""
    if user_set(name):
        return False
    os.environ[name] = _defaulted[name] = value
    return True
