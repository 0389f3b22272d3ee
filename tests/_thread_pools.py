"""Imported first by conftest.py: this process's thread pools set as the fnac command sets its own
(fnac/threads.py), torch's OpenMP threads sleeping when idle and numpy's small products on one
thread. Both are read once, when numpy and torch load. On 2 cores shared with other work, threads
that spin made in-process training 3-5x slower. What was set here leaves the environment again
once read, so that the processes the tests start still show whether the fnac command and the
supervisor set it themselves. What the user set is kept."""

from __future__ import annotations

import os

SETTINGS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "1"}

set_here = [name for name in SETTINGS if name not in os.environ]
os.environ.update({name: SETTINGS[name] for name in set_here})

import numpy  # noqa: E402, F401
import torch  # noqa: E402, F401

for name in set_here:
    del os.environ[name]
