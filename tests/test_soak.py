"""The soak benchmark: its verdict, and a 30 s run of the full pipeline (the docs hold 10 min)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fnac.weights import DEMO_CHECKPOINT
from realtime.pipeline import LiveConfig
from realtime.soak import descendants, soak, verdict


def sample(t, rss, p95, restarts=0):
    return {"t_s": t, "rss_mb": {"main": rss}, "p95_ms": p95, "restarts": {"inference": restarts}}


def test_the_verdict_catches_growth_creep_and_restarts():
    steady = [sample(0, 900, 300), sample(10, 500, 100), sample(20, 510, 110), sample(30, 505, 120)]
    assert verdict(steady, 64)["ok"]  # the warm-up sample (900 MiB, 300 ms) is not the baseline
    assert not verdict([*steady, sample(40, 600, 110)], 64)["ok"]  # +100 MiB
    assert not verdict([*steady, sample(40, 505, 400)], 64)["ok"]  # 100 -> 400 ms
    assert not verdict([*steady, sample(40, 505, 110, restarts=1)], 64)["ok"]
    with pytest.raises(ValueError, match="at least 3 samples"):
        verdict(steady[:2], 64)


def test_descendants_sees_a_grandchild_and_forgets_it_when_it_ends():
    child = subprocess.Popen(
        [sys.executable, "-c", "import subprocess,sys; subprocess.run(['sleep','30'])"]
    )
    try:
        for _ in range(100):
            below = descendants(os.getpid())
            if len(below) >= 2:
                break
            subprocess.run(["sleep", "0.05"])
        assert child.pid in below and len(below) >= 2
    finally:
        for pid in descendants(child.pid):
            os.kill(pid, 9)
        child.kill()
        child.wait()
    assert child.pid not in descendants(os.getpid())


@pytest.mark.slow  # 30 s; by default the pipeline tests check that nothing is left running
def test_thirty_seconds_of_the_live_pipeline_leak_nothing():
    config = LiveConfig("synthetic", str(DEMO_CHECKPOINT))
    report = soak(config, seconds=30, every=5, say=lambda text: None)
    assert report["frames"] > 30
    assert report["processes_left"] == [] and not report["ipc_folder_left"]
    assert report["fds_after"] <= report["fds_before"]
    assert report["ok"], report
